//! Stored records (one field per column) and their exact translation to and from domain
//! values.

use lms_domain::{
    Bill, CheckoutSession, Conversion, Course, CourseId, CourseText, Currency, Email, Money,
    PaymentDetails, PaymentFacts, Purchase, PurchaseId, Role, Sale, User, UserId, UserName,
};
use lms_ports::{BuyerView, Page, PageRequest, PurchasedCourse, RepoError};

use crate::{corrupt, Encoding};

fn money(cents: i64, currency: &str, what: &str) -> Result<Money, RepoError> {
    let currency = Currency::parse(currency).map_err(|e| corrupt(what, e))?;
    Money::new(cents, currency).map_err(|e| corrupt(what, e))
}

pub(crate) fn optional_money(
    cents: Option<i64>,
    currency: Option<&str>,
    what: &str,
) -> Result<Option<Money>, RepoError> {
    match (cents, currency) {
        (Some(cents), Some(currency)) => money(cents, currency, what).map(Some),
        (None, None) => Ok(None),
        _ => Err(corrupt(
            what,
            "amount and currency must both be set or both be empty",
        )),
    }
}

pub(crate) fn split_money(money: Option<Money>) -> (Option<i64>, Option<String>) {
    match money {
        Some(money) => (
            Some(money.minor()),
            Some(money.currency().code().to_owned()),
        ),
        None => (None, None),
    }
}

fn text(field: &'static str, raw: String) -> Result<CourseText, RepoError> {
    // Any length the domain accepts for that field; the stored text was trimmed on the way in.
    let parsed = match field {
        "title" => CourseText::title(&raw),
        "subtitle" => CourseText::subtitle(&raw),
        "description" => CourseText::description(&raw),
        "category" => CourseText::category(&raw),
        _ => CourseText::level(&raw),
    };
    parsed.map_err(|e| corrupt(field, e))
}

fn optional_text(
    field: &'static str,
    raw: Option<String>,
) -> Result<Option<CourseText>, RepoError> {
    raw.map(|raw| text(field, raw)).transpose()
}

/// A stored record and the domain value it holds.
pub trait Record: Sized {
    type Domain;

    /// # Errors
    /// [`RepoError::Unexpected`] for an instant the backend cannot hold.
    fn from_domain(value: &Self::Domain) -> Result<Self, RepoError>;

    /// # Errors
    /// [`RepoError::Unexpected`] for a record the domain refuses.
    fn into_domain(self) -> Result<Self::Domain, RepoError>;
}

/// A `users` row.
#[derive(Debug)]
pub struct UserRecord<E: Encoding> {
    pub id: E::Id,
    pub name: String,
    pub email: String,
    pub role: String,
    pub password_hash: String,
    /// [`User::session_generation`], widened to `bigint` (SQL has no unsigned type).
    pub session_generation: i64,
    pub created_at: E::Instant,
}

/// A stored session generation, as the domain holds it.
///
/// # Errors
/// [`RepoError::Unexpected`] for a value outside `u32` (the schema's CHECK refuses those).
pub fn session_generation(stored: i64) -> Result<u32, RepoError> {
    u32::try_from(stored).map_err(|e| corrupt("session generation", e))
}

impl<E: Encoding> Record for UserRecord<E> {
    type Domain = User;

    fn from_domain(user: &User) -> Result<Self, RepoError> {
        Ok(Self {
            id: E::store_id(user.id.as_uuid()),
            name: user.name.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            role: user.role.name().to_owned(),
            password_hash: user.password_hash.clone(),
            session_generation: i64::from(user.session_generation),
            created_at: E::store_instant(user.created_at)?,
        })
    }

    fn into_domain(self) -> Result<User, RepoError> {
        Ok(User {
            id: UserId::from_uuid(E::load_id(self.id, "user id")?),
            name: UserName::parse(&self.name).map_err(|e| corrupt("user name", e))?,
            email: Email::parse(&self.email).map_err(|e| corrupt("email", e))?,
            role: Role::from_name(&self.role)
                .ok_or_else(|| corrupt("role", format!("unknown role {:?}", self.role)))?,
            password_hash: self.password_hash,
            session_generation: session_generation(self.session_generation)?,
            created_at: E::load_instant(self.created_at, "user creation time")?,
        })
    }
}

/// A `courses` row.
#[derive(Debug)]
pub struct CourseRecord<E: Encoding> {
    pub id: E::Id,
    pub instructor_id: E::Id,
    pub title: String,
    pub subtitle: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub level: Option<String>,
    pub price_cents: i64,
    pub currency: String,
    pub published: bool,
    pub created_at: E::Instant,
    pub updated_at: E::Instant,
}

impl<E: Encoding> Record for CourseRecord<E> {
    type Domain = Course;

    fn from_domain(course: &Course) -> Result<Self, RepoError> {
        let owned = |text: &Option<CourseText>| text.as_ref().map(|t| t.as_str().to_owned());
        Ok(Self {
            id: E::store_id(course.id.as_uuid()),
            instructor_id: E::store_id(course.instructor_id.as_uuid()),
            title: course.title.as_str().to_owned(),
            subtitle: owned(&course.subtitle),
            description: owned(&course.description),
            category: owned(&course.category),
            level: owned(&course.level),
            price_cents: course.price.minor(),
            currency: course.price.currency().code().to_owned(),
            published: course.published,
            created_at: E::store_instant(course.created_at)?,
            updated_at: E::store_instant(course.updated_at)?,
        })
    }

    fn into_domain(self) -> Result<Course, RepoError> {
        Ok(Course {
            id: CourseId::from_uuid(E::load_id(self.id, "course id")?),
            instructor_id: UserId::from_uuid(E::load_id(self.instructor_id, "instructor id")?),
            title: text("title", self.title)?,
            subtitle: optional_text("subtitle", self.subtitle)?,
            description: optional_text("description", self.description)?,
            category: optional_text("category", self.category)?,
            level: optional_text("level", self.level)?,
            price: money(self.price_cents, &self.currency, "course price")?,
            published: self.published,
            created_at: E::load_instant(self.created_at, "course creation time")?,
            updated_at: E::load_instant(self.updated_at, "course update time")?,
        })
    }
}

/// A whole `purchases` row: what is fixed when the purchase begins or its checkout is
/// attached, and its [`StateRecord`].
#[derive(Debug)]
pub struct PurchaseRecord<E: Encoding> {
    pub id: E::Id,
    pub user_id: E::Id,
    pub course_id: E::Id,
    pub price_cents: i64,
    pub currency: String,
    pub checkout_session_id: Option<String>,
    pub checkout_url: Option<String>,
    pub checkout_expires_at: Option<E::Instant>,
    pub state: StateRecord<E>,
    pub created_at: E::Instant,
}

/// The columns of a `purchases` row a fact update may change: the facts, the payment details,
/// the derived status and sale, the slot, the payment intent and `updated_at` (never the ids,
/// the price, the checkout session, or the leases `reconcile_after` and `refund_lease_until`,
/// which are no part of the purchase). `status` and the `sale_*` columns are written for
/// humans, indexes and the revenue report; on load they are derived from the facts by the
/// domain, never read back.
#[derive(Debug)]
pub struct StateRecord<E: Encoding> {
    pub status: String,
    pub payment_intent_id: Option<String>,
    /// [`PaymentFacts::captured`]; `NULL` while nothing was captured.
    pub captured_cents: Option<i64>,
    pub captured_currency: Option<String>,
    /// `NULL` for a payment without a reported time, or stored before times were kept.
    pub paid_at: Option<E::Instant>,
    /// [`PaymentFacts::bill`]: its amounts share `bill_currency`; all `NULL` when none is known.
    pub bill_currency: Option<String>,
    pub bill_subtotal_cents: Option<i64>,
    pub bill_discount_cents: Option<i64>,
    pub bill_tax_cents: Option<i64>,
    pub bill_total_cents: Option<i64>,
    /// The bill's [`Conversion`], in the price's currency; all `NULL` when there is none.
    pub conversion_currency: Option<String>,
    pub conversion_subtotal_cents: Option<i64>,
    pub conversion_total_cents: Option<i64>,
    pub attempt_failed: bool,
    pub processing: bool,
    pub async_payment_failed: bool,
    pub checkout_expired: bool,
    pub checkout_not_started: bool,
    pub refunded_cents: Option<i64>,
    pub refunded_currency: Option<String>,
    pub dispute_opened: bool,
    pub dispute_won: bool,
    pub dispute_lost: bool,
    pub accepted_by_operator: bool,
    /// [`PaymentDetails`].
    pub receipt_url: Option<String>,
    pub promotion_code: Option<String>,
    /// [`Purchase::sale`], derived (all `NULL` when the purchase earned nothing).
    pub sale_currency: Option<String>,
    pub sale_gross_cents: Option<i64>,
    pub sale_discount_cents: Option<i64>,
    pub sale_tax_cents: Option<i64>,
    pub sale_paid_cents: Option<i64>,
    pub sale_refunded_cents: Option<i64>,
    pub sale_disputes_lost_cents: Option<i64>,
    pub sale_net_cents: Option<i64>,
    pub sold_at: Option<E::Instant>,
    pub holds_active_slot: bool,
    pub updated_at: E::Instant,
}

impl<E: Encoding> StateRecord<E> {
    /// The state of `purchase`, as a fact update writes it.
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] for an instant of the purchase the backend cannot hold (any
    /// of them, as when the whole row is written).
    pub fn from_domain(purchase: &Purchase) -> Result<Self, RepoError> {
        PurchaseRecord::<E>::from_domain(purchase).map(|record| record.state)
    }
}

impl<E: Encoding> Record for PurchaseRecord<E> {
    type Domain = Purchase;

    fn from_domain(purchase: &Purchase) -> Result<Self, RepoError> {
        let facts = &purchase.facts;
        let (captured_cents, captured_currency) = split_money(facts.captured);
        let (refunded_cents, refunded_currency) = split_money(facts.refunded);
        let bill = BillColumns::of(facts.bill);
        let sale = SaleColumns::<E>::of(purchase.sale())?;
        let checkout = purchase.checkout.as_ref();
        let checkout_expires_at = checkout
            .map(|c| E::store_instant(c.expires_at))
            .transpose()?;
        let created_at = E::store_instant(purchase.created_at)?;
        let paid_at = facts.paid_at.map(E::store_instant).transpose()?;
        Ok(Self {
            id: E::store_id(purchase.id.as_uuid()),
            user_id: E::store_id(purchase.user_id.as_uuid()),
            course_id: E::store_id(purchase.course_id.as_uuid()),
            price_cents: purchase.price.minor(),
            currency: purchase.price.currency().code().to_owned(),
            checkout_session_id: checkout.map(|c| c.id.clone()),
            checkout_url: checkout.map(|c| c.url.clone()),
            checkout_expires_at,
            state: StateRecord {
                status: purchase.status().as_str().to_owned(),
                payment_intent_id: purchase.payment_intent_id.clone(),
                captured_cents,
                captured_currency,
                paid_at,
                bill_currency: bill.currency,
                bill_subtotal_cents: bill.subtotal,
                bill_discount_cents: bill.discount,
                bill_tax_cents: bill.tax,
                bill_total_cents: bill.total,
                conversion_currency: bill.conversion_currency,
                conversion_subtotal_cents: bill.conversion_subtotal,
                conversion_total_cents: bill.conversion_total,
                attempt_failed: facts.attempt_failed,
                processing: facts.processing,
                async_payment_failed: facts.async_payment_failed,
                checkout_expired: facts.checkout_expired,
                checkout_not_started: facts.checkout_not_started,
                refunded_cents,
                refunded_currency,
                dispute_opened: facts.dispute_opened,
                dispute_won: facts.dispute_won,
                dispute_lost: facts.dispute_lost,
                accepted_by_operator: facts.accepted_by_operator,
                receipt_url: purchase.details.receipt_url.clone(),
                promotion_code: purchase.details.promotion_code.clone(),
                sale_currency: sale.currency,
                sale_gross_cents: sale.gross,
                sale_discount_cents: sale.discount,
                sale_tax_cents: sale.tax,
                sale_paid_cents: sale.paid,
                sale_refunded_cents: sale.refunded,
                sale_disputes_lost_cents: sale.disputes_lost,
                sale_net_cents: sale.net,
                sold_at: sale.sold_at,
                holds_active_slot: purchase.holds_active_slot,
                updated_at: E::store_instant(purchase.updated_at)?,
            },
            created_at,
        })
    }

    fn into_domain(self) -> Result<Purchase, RepoError> {
        let checkout = match (
            self.checkout_session_id,
            self.checkout_url,
            self.checkout_expires_at,
        ) {
            (Some(id), Some(url), Some(expires_at)) => Some(CheckoutSession {
                id,
                url,
                expires_at: E::load_instant(expires_at, "checkout expiry")?,
            }),
            (None, None, None) => None,
            _ => {
                return Err(corrupt(
                    "checkout session",
                    "id, url and expiry must be set together",
                ))
            }
        };
        let state = self.state;
        let bill = BillColumns {
            currency: state.bill_currency,
            subtotal: state.bill_subtotal_cents,
            discount: state.bill_discount_cents,
            tax: state.bill_tax_cents,
            total: state.bill_total_cents,
            conversion_currency: state.conversion_currency,
            conversion_subtotal: state.conversion_subtotal_cents,
            conversion_total: state.conversion_total_cents,
        };
        let facts = PaymentFacts {
            captured: optional_money(
                state.captured_cents,
                state.captured_currency.as_deref(),
                "captured payment",
            )?,
            paid_at: state
                .paid_at
                .map(|at| E::load_instant(at, "purchase payment time"))
                .transpose()?,
            bill: bill.into_bill()?,
            attempt_failed: state.attempt_failed,
            processing: state.processing,
            async_payment_failed: state.async_payment_failed,
            checkout_expired: state.checkout_expired,
            checkout_not_started: state.checkout_not_started,
            refunded: optional_money(
                state.refunded_cents,
                state.refunded_currency.as_deref(),
                "refund",
            )?,
            dispute_opened: state.dispute_opened,
            dispute_won: state.dispute_won,
            dispute_lost: state.dispute_lost,
            accepted_by_operator: state.accepted_by_operator,
        };
        Ok(Purchase {
            id: PurchaseId::from_uuid(E::load_id(self.id, "purchase id")?),
            user_id: UserId::from_uuid(E::load_id(self.user_id, "purchase user id")?),
            course_id: CourseId::from_uuid(E::load_id(self.course_id, "purchase course id")?),
            price: money(self.price_cents, &self.currency, "purchase price")?,
            checkout,
            payment_intent_id: state.payment_intent_id,
            facts,
            details: PaymentDetails {
                receipt_url: state.receipt_url,
                promotion_code: state.promotion_code,
            },
            holds_active_slot: state.holds_active_slot,
            created_at: E::load_instant(self.created_at, "purchase creation time")?,
            updated_at: E::load_instant(state.updated_at, "purchase update time")?,
        })
    }
}

/// A bill as its columns hold it: amounts in `currency`, the conversion's in
/// `conversion_currency`.
struct BillColumns {
    currency: Option<String>,
    subtotal: Option<i64>,
    discount: Option<i64>,
    tax: Option<i64>,
    total: Option<i64>,
    conversion_currency: Option<String>,
    conversion_subtotal: Option<i64>,
    conversion_total: Option<i64>,
}

impl BillColumns {
    fn of(bill: Option<Bill>) -> Self {
        let code = |money: Money| money.currency().code().to_owned();
        let conversion = bill.and_then(|bill| bill.conversion());
        Self {
            currency: bill.map(|bill| code(bill.total())),
            subtotal: bill.map(|bill| bill.subtotal().minor()),
            discount: bill.map(|bill| bill.discount().minor()),
            tax: bill.map(|bill| bill.tax().minor()),
            total: bill.map(|bill| bill.total().minor()),
            conversion_currency: conversion.map(|conversion| code(conversion.total)),
            conversion_subtotal: conversion.map(|conversion| conversion.subtotal.minor()),
            conversion_total: conversion.map(|conversion| conversion.total.minor()),
        }
    }

    fn into_bill(self) -> Result<Option<Bill>, RepoError> {
        let conversion = match (
            self.conversion_currency,
            self.conversion_subtotal,
            self.conversion_total,
        ) {
            (Some(currency), Some(subtotal), Some(total)) => Some(
                Conversion::new(
                    money(subtotal, &currency, "bill conversion")?,
                    money(total, &currency, "bill conversion")?,
                )
                .map_err(|e| corrupt("bill conversion", e))?,
            ),
            (None, None, None) => None,
            _ => {
                return Err(corrupt(
                    "bill conversion",
                    "currency, subtotal and total must be set together",
                ))
            }
        };
        match (
            self.currency,
            self.subtotal,
            self.discount,
            self.tax,
            self.total,
        ) {
            (Some(currency), Some(subtotal), Some(discount), Some(tax), Some(total)) => {
                let amount = |minor| money(minor, &currency, "bill");
                Bill::new(
                    amount(subtotal)?,
                    amount(discount)?,
                    amount(tax)?,
                    amount(total)?,
                    conversion,
                )
                .map(Some)
                .map_err(|e| corrupt("bill", e))
            }
            (None, None, None, None, None) if conversion.is_none() => Ok(None),
            _ => Err(corrupt(
                "bill",
                "currency, subtotal, discount, tax and total must be set together, and a \
                 conversion needs a bill",
            )),
        }
    }
}

/// A purchase's [`Sale`] as its columns hold it (all `None` when it earned nothing).
struct SaleColumns<E: Encoding> {
    currency: Option<String>,
    gross: Option<i64>,
    discount: Option<i64>,
    tax: Option<i64>,
    paid: Option<i64>,
    refunded: Option<i64>,
    disputes_lost: Option<i64>,
    net: Option<i64>,
    sold_at: Option<E::Instant>,
}

impl<E: Encoding> SaleColumns<E> {
    fn of(sale: Option<Sale>) -> Result<Self, RepoError> {
        Ok(Self {
            currency: sale.map(|sale| sale.currency.code().to_owned()),
            gross: sale.map(|sale| sale.gross),
            discount: sale.map(|sale| sale.discount),
            tax: sale.map(|sale| sale.tax),
            paid: sale.map(|sale| sale.paid),
            refunded: sale.map(|sale| sale.refunded),
            disputes_lost: sale.map(|sale| sale.disputes_lost),
            net: sale.map(|sale| sale.net),
            sold_at: sale
                .map(|sale| E::store_instant(sale.sold_at))
                .transpose()?,
        })
    }
}

/// `LIMIT` and `OFFSET` of a page (an offset beyond `i64` is clamped: it selects nothing).
/// A SQL `count(*)` as a page's total (a count is never negative).
pub fn total(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

/// One page of a listing: `rows` turned into domain values, with the listing's `count`.
///
/// # Errors
/// The first row `into_domain` refuses.
pub fn page<R, T>(
    rows: Vec<R>,
    count: i64,
    into_domain: impl Fn(R) -> Result<T, RepoError>,
) -> Result<Page<T>, RepoError> {
    Ok(Page {
        items: rows
            .into_iter()
            .map(into_domain)
            .collect::<Result<_, _>>()?,
        total: total(count),
    })
}

pub fn limit_offset(page: PageRequest) -> (i64, i64) {
    let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
    (i64::from(page.limit), offset)
}

/// The purchases among `rows` (candidates, each with its course: the adapters select those with
/// a captured payment, a fact every unlocking purchase has) that unlock their course as the domain derives
/// it, in the order given. The stored status column plays no part.
///
/// # Errors
/// [`RepoError::Unexpected`] for a record the domain refuses.
pub fn unlocked<E: Encoding>(
    rows: impl IntoIterator<Item = (PurchaseRecord<E>, CourseRecord<E>)>,
) -> Result<Vec<PurchasedCourse>, RepoError> {
    let mut unlocked = Vec::new();
    for (purchase, course) in rows {
        let purchase = purchase.into_domain()?;
        if purchase.unlocks_course() {
            unlocked.push(PurchasedCourse {
                purchase,
                course: course.into_domain()?,
            });
        }
    }
    Ok(unlocked)
}

/// The purchase `id` and the others among `locked` (its buyer's purchases of its course, as a
/// fact update locks them), newest first with ties broken by id, as [`lms_ports::Applied`]
/// returns them.
///
/// # Errors
/// [`RepoError::NotFound`] when `id` is not among them (no such purchase).
pub fn purchase_and_others(
    locked: Vec<Purchase>,
    id: PurchaseId,
) -> Result<(Purchase, Vec<Purchase>), RepoError> {
    let (mut target, mut others): (Vec<Purchase>, Vec<Purchase>) =
        locked.into_iter().partition(|purchase| purchase.id == id);
    let purchase = target.pop().ok_or(RepoError::NotFound)?;
    sort_newest_first(&mut others);
    Ok((purchase, others))
}

/// The order the ports list a buyer's purchases in: newest first, ties broken by id (the
/// greater first).
fn sort_newest_first(purchases: &mut [Purchase]) {
    purchases
        .sort_unstable_by_key(|purchase| std::cmp::Reverse((purchase.created_at, purchase.id)));
}

/// The [`BuyerView`] read by one `users LEFT JOIN courses LEFT JOIN purchases` statement: one
/// row per purchase, in any order, each repeating the user and the course, or a single row
/// without a purchase. No row: no such user. The purchases are put newest first here rather
/// than by the statement: an `ORDER BY` over the join's output makes PostgreSQL plan and run a
/// sort node on every read, which cost it a sixth to a half of the statement's CPU
/// (crates/bench/README.md; the few purchases one buyer has of one course cost nothing to sort
/// here).
///
/// # Errors
/// [`RepoError::Unexpected`] for a record the domain refuses.
pub fn buyer_view<E: Encoding>(
    rows: impl IntoIterator<
        Item = (
            UserRecord<E>,
            Option<CourseRecord<E>>,
            Option<PurchaseRecord<E>>,
        ),
    >,
) -> Result<Option<BuyerView>, RepoError> {
    let mut view: Option<BuyerView> = None;
    for (user, course, purchase) in rows {
        let view = match &mut view {
            Some(view) => view,
            None => view.insert(BuyerView {
                user: user.into_domain()?,
                course: course.map(Record::into_domain).transpose()?,
                purchases: Vec::new(),
            }),
        };
        if let Some(purchase) = purchase {
            view.purchases.push(purchase.into_domain()?);
        }
    }
    if let Some(view) = &mut view {
        sort_newest_first(&mut view.purchases);
    }
    Ok(view)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::Native;
    use uuid::Uuid;

    fn user_record(email: &str) -> UserRecord<Native> {
        UserRecord {
            id: Uuid::new_v4(),
            name: "Ada".to_owned(),
            email: email.to_owned(),
            role: "student".to_owned(),
            password_hash: "x".to_owned(),
            session_generation: 0,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn session_generations_fit_u32_or_are_corrupt() {
        let mut record = user_record("ada@example.com");
        record.session_generation = i64::from(u32::MAX);
        assert_eq!(record.into_domain().unwrap().session_generation, u32::MAX);
        for stored in [-1, i64::from(u32::MAX) + 1] {
            assert!(matches!(
                session_generation(stored),
                Err(RepoError::Unexpected(_))
            ));
        }
    }

    #[test]
    fn records_round_trip_and_refused_ones_are_unexpected() {
        let user = user_record("ada@example.com").into_domain().unwrap();
        let again = UserRecord::<Native>::from_domain(&user).unwrap();
        assert_eq!(again.into_domain().unwrap(), user);
        assert!(matches!(
            user_record("not an email").into_domain(),
            Err(RepoError::Unexpected(_))
        ));
    }

    #[test]
    fn a_buyer_view_lists_the_purchases_newest_first_whatever_the_rows_order() {
        let user = user_record("ada@example.com").into_domain().unwrap();
        let buyer = user.id;
        let course = Course {
            id: CourseId::from_uuid(Uuid::new_v4()),
            instructor_id: UserId::from_uuid(Uuid::new_v4()),
            title: CourseText::parse("title", "Rust", 1, 100).unwrap(),
            subtitle: None,
            description: None,
            category: None,
            level: None,
            price: usd(1999),
            published: true,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let at = |seconds| time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seconds);
        let purchase = |id: u128, created| {
            Purchase::begin(
                PurchaseId::from_uuid(Uuid::from_u128(id)),
                buyer,
                &course,
                at(created),
            )
            .unwrap()
        };
        // Ids 2 and 3 tie on the time: the greater id comes first.
        let stored = [
            purchase(1, 10),
            purchase(2, 30),
            purchase(4, 20),
            purchase(3, 30),
        ];
        let rows = stored.iter().map(|purchase| {
            (
                UserRecord::<Native>::from_domain(&user).unwrap(),
                Some(CourseRecord::<Native>::from_domain(&course).unwrap()),
                Some(PurchaseRecord::<Native>::from_domain(purchase).unwrap()),
            )
        });
        let view = buyer_view(rows).unwrap().unwrap();
        let ids: Vec<u128> = view
            .purchases
            .iter()
            .map(|p| p.id.as_uuid().as_u128())
            .collect();
        assert_eq!(ids, [3, 2, 4, 1]);
    }

    #[test]
    fn pages_become_limit_and_offset() {
        assert_eq!(limit_offset(PageRequest::new(3, 20)), (20, 40));
        assert_eq!(limit_offset(PageRequest::new(1, 1)), (1, 0));
    }

    fn usd(minor: i64) -> Money {
        money(minor, "USD", "test").unwrap()
    }

    fn eur(minor: i64) -> Money {
        money(minor, "EUR", "test").unwrap()
    }

    #[test]
    fn bills_round_trip_through_their_columns_with_and_without_a_conversion() {
        let plain = Bill::new(usd(2000), usd(500), usd(150), usd(1650), None).unwrap();
        let converted = Bill::new(
            eur(1850),
            eur(0),
            eur(0),
            eur(1850),
            Some(Conversion::new(usd(2000), usd(2000)).unwrap()),
        )
        .unwrap();
        for bill in [None, Some(plain), Some(converted)] {
            assert_eq!(BillColumns::of(bill).into_bill().unwrap(), bill);
        }
        let columns = BillColumns::of(Some(converted));
        assert_eq!(
            (
                columns.currency.as_deref(),
                columns.conversion_currency.as_deref()
            ),
            (Some("EUR"), Some("USD"))
        );
    }

    #[test]
    fn a_partial_bill_or_a_conversion_without_a_bill_is_corrupt() {
        let converted = Bill::new(
            eur(1850),
            eur(0),
            eur(0),
            eur(1850),
            Some(Conversion::new(usd(2000), usd(2000)).unwrap()),
        )
        .unwrap();
        let mut no_total = BillColumns::of(Some(converted));
        no_total.total = None;
        let mut no_conversion_total = BillColumns::of(Some(converted));
        no_conversion_total.conversion_total = None;
        let mut conversion_alone = BillColumns::of(Some(converted));
        conversion_alone.currency = None;
        conversion_alone.subtotal = None;
        conversion_alone.discount = None;
        conversion_alone.tax = None;
        conversion_alone.total = None;
        let mut negative = BillColumns::of(Some(converted));
        negative.tax = Some(-1);
        for columns in [no_total, no_conversion_total, conversion_alone, negative] {
            assert!(matches!(columns.into_bill(), Err(RepoError::Unexpected(_))));
        }
    }

    #[test]
    fn money_needs_both_halves() {
        assert_eq!(optional_money(None, None, "refund").unwrap(), None);
        assert!(matches!(
            optional_money(Some(1), None, "refund"),
            Err(RepoError::Unexpected(_))
        ));
        assert_eq!(
            split_money(Some(money(1999, "USD", "price").unwrap())),
            (Some(1999), Some("USD".to_owned()))
        );
    }
}
