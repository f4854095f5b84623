//! The sandbox's Stripe world: sessions, payment intents, charges, refunds, disputes and the
//! events they emit. Synchronous and deterministic given its inputs (ids aside), so every rule
//! can be tested without a server.

mod pricing;

pub use pricing::{Discount, Presentment, PromotionCode, TaxBehavior, PROMOTION_CODES};

use pricing::Pricing;
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};
use subtle::ConstantTimeEq;

/// A Stripe-shaped API error: HTTP status plus the `{"error": {...}}` body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {kind}: {message}")]
pub struct StripeError {
    pub status: u16,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
}

impl StripeError {
    pub fn invalid(code: &'static str, message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: 400,
            kind: "invalid_request_error",
            code: Some(code),
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }

    pub fn not_found(kind_of_object: &str, id: &str) -> Self {
        Self {
            status: 404,
            kind: "invalid_request_error",
            code: Some("resource_missing"),
            message: format!("No such {kind_of_object}: '{id}'"),
            param: Some("id".into()),
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": {
            "type": self.kind,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "doc_url": self.code.map(|code| format!("https://stripe.com/docs/error-codes/{code}")),
        }})
    }
}

/// Form parameters as Stripe receives them: flat `key[sub][0]=value` pairs.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(body: &[u8]) -> Result<Self, StripeError> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map(Self)
            .map_err(|err| {
                StripeError::invalid(
                    "parameter_invalid_string",
                    format!("malformed form body: {err}"),
                    None,
                )
            })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, key: &str) -> Result<&str, StripeError> {
        self.get(key).filter(|v| !v.is_empty()).ok_or_else(|| {
            StripeError::invalid(
                "parameter_missing",
                format!("Missing required param: {key}."),
                Some(key),
            )
        })
    }

    /// A boolean parameter (`true`/`false`), as Stripe's form encoding writes it.
    fn boolean(&self, key: &str) -> Result<Option<bool>, StripeError> {
        self.get(key)
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(StripeError::invalid(
                    "parameter_invalid_boolean",
                    format!("Invalid boolean: {v}"),
                    Some(key),
                )),
            })
            .transpose()
    }

    fn integer(&self, key: &str) -> Result<Option<i64>, StripeError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    StripeError::invalid(
                        "parameter_invalid_integer",
                        format!("Invalid integer: {v}"),
                        Some(key),
                    )
                })
            })
            .transpose()
    }

    /// `prefix[key]=value` pairs as a JSON object (Stripe metadata).
    fn map(&self, prefix: &str) -> Result<Map<String, Value>, StripeError> {
        let mut map = Map::new();
        for (key, value) in &self.0 {
            if let Some(inner) = key
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('['))
                .and_then(|rest| rest.strip_suffix(']'))
            {
                if inner.len() > 40 || value.len() > 500 {
                    return Err(StripeError::invalid(
                        "parameter_invalid_string",
                        "metadata keys are at most 40 characters, values at most 500",
                        Some(key),
                    ));
                }
                map.insert(inner.to_owned(), Value::String(value.clone()));
            }
        }
        if map.len() > 50 {
            return Err(StripeError::invalid(
                "parameter_invalid_string",
                "at most 50 metadata keys",
                Some(prefix),
            ));
        }
        Ok(map)
    }

    /// A canonical form of the parameters, to tell a replay from a conflicting reuse of an
    /// idempotency key.
    pub fn fingerprint(&self) -> String {
        let mut pairs = self.0.clone();
        pairs.sort();
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
}

/// The smallest charge per currency (minor units); currencies not listed are refused.
fn minimum_charge(currency: &str) -> Option<i64> {
    Some(match currency {
        "usd" | "eur" | "aud" | "cad" | "chf" | "nzd" | "sgd" | "brl" | "inr" | "jpy" => 50,
        "gbp" => 30,
        "aed" | "myr" | "pln" | "ron" => 200,
        "bgn" => 100,
        "czk" => 1500,
        "dkk" => 250,
        "hkd" => 400,
        "huf" => 17500,
        "mxn" | "thb" => 1000,
        "nok" | "sek" => 300,
        _ => return None,
    })
}

/// How the customer tries to pay on the hosted page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentMethod {
    Card(String),
    /// A delayed method: checkout completes unpaid, then settles.
    BankDebit,
}

/// What a payment attempt led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Paid,
    Declined(String),
    Processing,
    /// A promotion code left nothing to pay: the session completed without a payment
    /// (whatever method was offered), as Stripe's page completes it with no card asked.
    NoPaymentRequired,
}

/// The sandbox-wide settings that decide what sessions bill.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerSettings {
    /// The flat tax rate, in basis points (0 to 10000), of sessions created with
    /// `automatic_tax[enabled]=true`.
    pub tax_rate_bps: u32,
    /// Present every session whose price is in another currency in this one, as Adaptive
    /// Pricing does for a customer abroad, unless it was created with
    /// `adaptive_pricing[enabled]=false`.
    pub presentment: Option<Presentment>,
}

/// Stripe's test cards this sandbox knows. Any other well-formed number is declined as
/// Stripe declines unknown test numbers.
fn card_verdict(number: &str) -> Result<(), &'static str> {
    let digits: String = number
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    match digits.as_str() {
        "4242424242424242" | "5555555555554444" => Ok(()),
        "4000000000000002" => Err("Your card was declined."),
        "4000000000009995" => Err("Your card has insufficient funds."),
        _ => Err("Your card number is not a Stripe test card."),
    }
}

#[derive(Debug, Default)]
pub struct Ledger {
    settings: LedgerSettings,
    sessions: HashMap<String, Value>,
    /// `(expires_at, id)` of every session created, soonest first: what `expire_due` looks
    /// at instead of every session (a scan on every payment made paying N sessions take N^2
    /// steps). A session paid or expired before its time stays listed and is passed over.
    expiries: BTreeSet<(i64, String)>,
    /// Per session, what it bills (the price, its code, tax and presentment).
    pricing: HashMap<String, Pricing>,
    /// Per session, where its hosted pages (and its charges' receipts) are linked from.
    page_bases: HashMap<String, String>,
    /// Customers, oldest first.
    customers: Vec<Value>,
    /// Customer id -> its place in `customers`: a checkout names its customer, and a scan
    /// made paying N sessions take N^2 steps (a benchmark pays tens of thousands).
    customer_places: HashMap<String, usize>,
    /// Receipt token (in a charge's `receipt_url`) -> charge id.
    receipts: HashMap<String, String>,
    session_pi_metadata: HashMap<String, Map<String, Value>>,
    /// Per session, the secret its hosted page's URL carries (hex). Kept apart from the
    /// session object so that no API answer other than `url` can show it.
    page_secrets: HashMap<String, String>,
    payment_intents: HashMap<String, Value>,
    charges: HashMap<String, Value>,
    refunds: HashMap<String, Value>,
    disputes: HashMap<String, Value>,
    events: Vec<Value>,
    sequence: u64,
}

impl Ledger {
    /// An empty ledger billing with `settings`.
    pub fn new(settings: LedgerSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.sequence += 1;
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("{prefix}_test_{:06}{}", self.sequence, &random[..18])
    }

    fn emit(&mut self, event_type: &str, object: Value, now: i64) {
        let id = self.next_id("evt");
        self.events.push(json!({
            "id": id,
            "object": "event",
            "api_version": crate::API_VERSION,
            "created": now,
            "livemode": false,
            "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null},
            "type": event_type,
            "data": {"object": object},
        }));
    }

    /// Every event so far, oldest first.
    pub fn events(&self) -> &[Value] {
        &self.events
    }

    pub fn create_session(
        &mut self,
        params: &Params,
        now: i64,
        page_base: &str,
    ) -> Result<Value, StripeError> {
        let mode = params.required("mode")?;
        if mode != "payment" {
            return Err(StripeError::invalid(
                "parameter_invalid_string",
                "this sandbox supports mode=payment only",
                Some("mode"),
            ));
        }
        let currency = params
            .required("line_items[0][price_data][currency]")?
            .to_owned();
        if currency != currency.to_ascii_lowercase() {
            return Err(StripeError::invalid(
                "parameter_invalid_string",
                "currency must be lower case",
                Some("line_items[0][price_data][currency]"),
            ));
        }
        let minimum = minimum_charge(&currency).ok_or_else(|| {
            StripeError::invalid(
                "parameter_invalid_string",
                format!("Invalid currency: {currency}"),
                Some("line_items[0][price_data][currency]"),
            )
        })?;
        let unit_amount = params
            .integer("line_items[0][price_data][unit_amount]")?
            .ok_or_else(|| {
                StripeError::invalid(
                    "parameter_missing",
                    "Missing required param: line_items[0][price_data][unit_amount].",
                    Some("line_items[0][price_data][unit_amount]"),
                )
            })?;
        let quantity = params.integer("line_items[0][quantity]")?.unwrap_or(1);
        let name = params
            .required("line_items[0][price_data][product_data][name]")?
            .to_owned();
        let amount_total = unit_amount
            .checked_mul(quantity)
            .filter(|total| *total >= 0)
            .ok_or_else(|| {
                StripeError::invalid(
                    "parameter_invalid_integer",
                    "amount overflows",
                    Some("line_items[0][quantity]"),
                )
            })?;
        if amount_total < minimum {
            return Err(StripeError::invalid("amount_too_small", format!("The Checkout Session's total amount due must add up to at least {minimum} {currency} minor units."), Some("line_items[0][price_data][unit_amount]")));
        }
        if amount_total > 99_999_999 {
            return Err(StripeError::invalid(
                "amount_too_large",
                "Amount must be no more than 99999999",
                Some("line_items[0][price_data][unit_amount]"),
            ));
        }
        let success_url = params.required("success_url")?.to_owned();
        let cancel_url = params.required("cancel_url")?.to_owned();
        let expires_at = params.integer("expires_at")?.unwrap_or(now + 24 * 3600);
        if expires_at < now + 30 * 60 || expires_at > now + 24 * 3600 {
            return Err(StripeError::invalid(
                "parameter_invalid_integer",
                "expires_at must be between 30 minutes and 24 hours from now",
                Some("expires_at"),
            ));
        }
        let allow_promotion_codes = params.boolean("allow_promotion_codes")?.unwrap_or(false);
        let automatic_tax = params.boolean("automatic_tax[enabled]")?.unwrap_or(false);
        let adaptive_pricing = params.boolean("adaptive_pricing[enabled]")?.unwrap_or(true);
        let tax_behavior = tax_behavior(params, automatic_tax)?;
        let customer = self.checkout_customer(params, automatic_tax)?;
        let metadata = params.map("metadata")?;
        let payment_intent_metadata = params.map("payment_intent_data[metadata]")?;
        let pricing = Pricing {
            subtotal: amount_total,
            currency: currency.clone(),
            tax: tax_behavior.map(|behavior| (behavior, self.settings.tax_rate_bps)),
            presentment: self
                .settings
                .presentment
                .clone()
                .filter(|_| adaptive_pricing),
            promotion: None,
        };
        let id = self.next_id("cs");
        let secret = page_secret()?;
        let mut session = json!({
            "id": id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "created": now,
            "expires_at": expires_at,
            "url": format!("{page_base}/checkout/pay/{id}/{secret}"),
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": params.get("client_reference_id"),
            "customer": customer,
            "customer_email": params.get("customer_email"),
            "allow_promotion_codes": allow_promotion_codes.then_some(true),
            "automatic_tax": {
                "enabled": automatic_tax,
                "liability": automatic_tax.then(|| json!({"type": "self"})),
                "status": automatic_tax.then_some("complete"),
            },
            "adaptive_pricing": {"enabled": adaptive_pricing},
            "metadata": metadata,
            "payment_intent": null,
            "livemode": false,
            "line_items_sandbox": {
                "name": name,
                "unit_amount": unit_amount,
                "quantity": quantity,
                "tax_behavior": tax_behavior.map(|behavior| match behavior {
                    TaxBehavior::Exclusive => "exclusive",
                    TaxBehavior::Inclusive => "inclusive",
                }),
            },
        });
        pricing.write_into(&mut session);
        self.session_pi_metadata
            .insert(id.clone(), payment_intent_metadata);
        self.page_secrets.insert(id.clone(), secret);
        self.page_bases.insert(id.clone(), page_base.to_owned());
        self.pricing.insert(id.clone(), pricing);
        self.expiries.insert((expires_at, id.clone()));
        self.sessions.insert(id, session.clone());
        Ok(public(session))
    }

    /// The customer a checkout is for (`customer`), checked as Stripe checks it: it exists,
    /// comes without `customer_email`, and with automatic tax lets Checkout save the address
    /// it collects (`customer_update[address]=auto`), since the sandbox's customers have none.
    fn checkout_customer(
        &self,
        params: &Params,
        automatic_tax: bool,
    ) -> Result<Option<String>, StripeError> {
        let Some(customer) = params.get("customer").filter(|id| !id.is_empty()) else {
            return Ok(None);
        };
        if params.get("customer_email").is_some() {
            return Err(StripeError::invalid(
                "parameter_invalid_string",
                "You may only specify one of these parameters: customer, customer_email.",
                Some("customer_email"),
            ));
        }
        if self.customer(customer).is_err() {
            return Err(StripeError::invalid(
                "resource_missing",
                format!("No such customer: '{customer}'"),
                Some("customer"),
            ));
        }
        if automatic_tax && params.get("customer_update[address]") != Some("auto") {
            return Err(StripeError::invalid(
                "customer_tax_location_invalid",
                "Automatic tax calculation in Checkout requires a valid address on the Customer. Add a valid address to the Customer or set `customer_update[address]` to 'auto' to save the address entered in Checkout to the Customer.",
                Some("customer_update[address]"),
            ));
        }
        Ok(Some(customer.to_owned()))
    }

    /// `POST /v1/customers`: `email`, `name` and `metadata[...]`, all optional.
    pub fn create_customer(&mut self, params: &Params, now: i64) -> Result<Value, StripeError> {
        let metadata = params.map("metadata")?;
        let id = self.next_id("cus");
        let customer = json!({
            "id": id,
            "object": "customer",
            "email": params.get("email"),
            "name": params.get("name"),
            "metadata": metadata,
            "created": now,
            "livemode": false,
        });
        self.customer_places
            .insert(id.clone(), self.customers.len());
        self.customers.push(customer.clone());
        Ok(customer)
    }

    /// `GET /v1/customers/{id}`.
    pub fn customer(&self, id: &str) -> Result<Value, StripeError> {
        self.customer_places
            .get(id)
            .map(|place| self.customers[*place].clone())
            .ok_or_else(|| StripeError::not_found("customer", id))
    }

    /// Every customer, oldest first.
    pub fn customers(&self) -> &[Value] {
        &self.customers
    }

    /// The customer typed `code` on the hosted page of an open session that allows
    /// promotion codes: the code replaces any applied before, and the session (and its payment
    /// intent, if an attempt made one) bills the discounted amounts.
    ///
    /// # Errors
    /// An unknown or closed session; a session created without `allow_promotion_codes`; an
    /// unknown code (`promotion_code_invalid`); a code that would leave less than the
    /// currency's minimum charge but more than nothing (`amount_too_small`). Nothing changes.
    pub fn apply_promotion_code(
        &mut self,
        session_id: &str,
        code: &str,
        now: i64,
    ) -> Result<Value, StripeError> {
        let session = self.open_session(session_id, now)?;
        if session["allow_promotion_codes"] != true {
            return Err(StripeError::invalid(
                "promotion_codes_not_allowed",
                "This Checkout Session does not accept promotion codes.",
                None,
            ));
        }
        let promotion = PromotionCode::find(code).ok_or_else(|| {
            StripeError::invalid(
                "promotion_code_invalid",
                "This code is invalid.",
                Some("promotion_code"),
            )
        })?;
        let mut pricing = self
            .pricing
            .get(session_id)
            .cloned()
            .ok_or_else(|| StripeError::not_found("checkout.session", session_id))?;
        pricing.promotion = Some(promotion);
        let amounts = pricing.amounts();
        let minimum = minimum_charge(&amounts.currency).unwrap_or(0);
        if amounts.total > 0 && amounts.total < minimum {
            return Err(StripeError::invalid(
                "amount_too_small",
                format!(
                    "This code cannot be applied: it would leave less than the minimum charge of {minimum} {} minor units.",
                    amounts.currency
                ),
                Some("promotion_code"),
            ));
        }
        let session = self
            .sessions
            .get_mut(session_id)
            .ok_or_else(|| StripeError::not_found("checkout.session", session_id))?;
        pricing.write_into(session);
        let payment_intent = session["payment_intent"].as_str().map(str::to_owned);
        self.pricing.insert(session_id.to_owned(), pricing);
        if let Some(intent) = payment_intent.and_then(|id| self.payment_intents.get_mut(&id)) {
            intent["amount"] = json!(amounts.total);
            intent["currency"] = json!(amounts.currency);
        }
        self.session(session_id)
    }

    /// The charge a receipt link shows, with the name of what was bought; `None` for a
    /// token no charge has.
    pub fn receipt(&self, token: &str) -> Option<(Value, String)> {
        let charge = self.charges.get(self.receipts.get(token)?)?.clone();
        let name = self
            .sessions
            .values()
            .find(|session| session["payment_intent"] == charge["payment_intent"])
            .and_then(|session| session["line_items_sandbox"]["name"].as_str())
            .unwrap_or("Your purchase")
            .to_owned();
        Some((charge, name))
    }

    pub fn session(&self, id: &str) -> Result<Value, StripeError> {
        self.sessions
            .get(id)
            .cloned()
            .map(public)
            .ok_or_else(|| StripeError::not_found("checkout.session", id))
    }

    /// The session with the product name and unit amount, for the hosted page, when
    /// `secret` is the one its URL carries; `None` for an unknown session or a wrong secret
    /// alike (as Stripe answers a mangled link: not found). Compared in constant time.
    pub fn session_for_page(&self, id: &str, secret: &str) -> Option<Value> {
        let expected = self.page_secrets.get(id)?;
        if !bool::from(expected.as_bytes().ct_eq(secret.as_bytes())) {
            return None;
        }
        self.sessions.get(id).cloned()
    }

    pub fn sessions_by_payment_intent(&self, payment_intent: &str) -> Vec<Value> {
        let mut found: Vec<Value> = self
            .sessions
            .values()
            .filter(|session| session["payment_intent"] == payment_intent)
            .cloned()
            .map(public)
            .collect();
        found.sort_by_key(|session| std::cmp::Reverse(session["created"].as_i64()));
        found
    }

    fn open_session(&mut self, id: &str, now: i64) -> Result<&mut Value, StripeError> {
        self.expire_due(now);
        let session = self
            .sessions
            .get_mut(id)
            .ok_or_else(|| StripeError::not_found("checkout.session", id))?;
        if session["status"] != "open" {
            return Err(StripeError::invalid(
                "checkout_session_not_open",
                format!(
                    "This Checkout Session is {}.",
                    session["status"].as_str().unwrap_or("closed")
                ),
                None,
            ));
        }
        Ok(session)
    }

    /// Closes every open session whose `expires_at` has passed, as Stripe does on its own.
    pub fn expire_due(&mut self, now: i64) {
        let later = self
            .expiries
            .split_off(&(now.saturating_add(1), String::new()));
        let due = std::mem::replace(&mut self.expiries, later);
        for (_, id) in due {
            let open = self
                .sessions
                .get(&id)
                .is_some_and(|s| s["status"] == "open");
            if open {
                self.close_expired(&id, now);
            }
        }
    }

    fn close_expired(&mut self, id: &str, now: i64) {
        if let Some(session) = self.sessions.get_mut(id) {
            session["status"] = json!("expired");
            session["url"] = Value::Null;
            let snapshot = public(session.clone());
            self.emit("checkout.session.expired", snapshot, now);
        }
    }

    /// `POST /v1/checkout/sessions/{id}/expire`: only while open.
    pub fn expire_session(&mut self, id: &str, now: i64) -> Result<Value, StripeError> {
        self.open_session(id, now)?;
        self.close_expired(id, now);
        self.session(id)
    }

    fn payment_intent_for(&mut self, session_id: &str, now: i64) -> Result<String, StripeError> {
        let session = self
            .sessions
            .get(session_id)
            .ok_or_else(|| StripeError::not_found("checkout.session", session_id))?;
        if let Some(existing) = session["payment_intent"].as_str() {
            return Ok(existing.to_owned());
        }
        let (amount, currency) = (session["amount_total"].clone(), session["currency"].clone());
        let metadata = self
            .session_pi_metadata
            .get(session_id)
            .cloned()
            .unwrap_or_default();
        let id = self.next_id("pi");
        self.payment_intents.insert(
            id.clone(),
            json!({
                "id": id, "object": "payment_intent", "amount": amount, "currency": currency,
                "status": "requires_payment_method", "metadata": metadata, "created": now,
                "latest_charge": null, "livemode": false,
            }),
        );
        if let Some(session) = self.sessions.get_mut(session_id) {
            session["payment_intent"] = json!(id);
        }
        Ok(id)
    }

    fn charge(
        &mut self,
        session_id: &str,
        payment_intent: &str,
        succeeded: bool,
        failure: Option<&str>,
        now: i64,
    ) -> Result<Value, StripeError> {
        let intent = self
            .payment_intents
            .get(payment_intent)
            .cloned()
            .unwrap_or(Value::Null);
        let id = self.next_id("ch");
        let amount = intent["amount"].as_i64().unwrap_or(0);
        // A successful charge has a receipt page, at an unguessable address as at Stripe.
        let receipt_url = if succeeded {
            let token = page_secret()?;
            let base = self.page_bases.get(session_id).cloned().unwrap_or_default();
            self.receipts.insert(token.clone(), id.clone());
            Some(format!("{base}/receipts/payment/{token}"))
        } else {
            None
        };
        let charge = json!({
            "id": id, "object": "charge", "amount": amount,
            "amount_captured": if succeeded { amount } else { 0 },
            "amount_refunded": 0, "refunded": false, "captured": succeeded, "paid": succeeded,
            "currency": intent["currency"], "payment_intent": payment_intent,
            "metadata": intent["metadata"], "status": if succeeded { "succeeded" } else { "failed" },
            "failure_message": failure, "failure_code": failure.map(|_| "card_declined"),
            "disputed": false, "created": now, "livemode": false, "receipt_url": receipt_url,
        });
        self.charges.insert(id.clone(), charge.clone());
        if let Some(intent) = self.payment_intents.get_mut(payment_intent) {
            intent["latest_charge"] = json!(id);
            intent["status"] = json!(if succeeded {
                "succeeded"
            } else {
                "requires_payment_method"
            });
        }
        Ok(charge)
    }

    /// The customer submits the hosted page.
    pub fn pay(
        &mut self,
        session_id: &str,
        method: &PaymentMethod,
        now: i64,
    ) -> Result<PaymentOutcome, StripeError> {
        let session = self.open_session(session_id, now)?;
        if session["amount_total"] == 0 {
            self.complete_without_payment(session_id, now);
            return Ok(PaymentOutcome::NoPaymentRequired);
        }
        let payment_intent = self.payment_intent_for(session_id, now)?;
        match method {
            PaymentMethod::Card(number) => match card_verdict(number) {
                Ok(()) => {
                    let charge = self.charge(session_id, &payment_intent, true, None, now)?;
                    self.emit("charge.succeeded", charge, now);
                    self.emit(
                        "payment_intent.succeeded",
                        self.payment_intents[&payment_intent].clone(),
                        now,
                    );
                    self.complete_session(session_id, "paid", now);
                    Ok(PaymentOutcome::Paid)
                }
                Err(message) => {
                    let charge =
                        self.charge(session_id, &payment_intent, false, Some(message), now)?;
                    self.emit("charge.failed", charge, now);
                    Ok(PaymentOutcome::Declined(message.to_owned()))
                }
            },
            PaymentMethod::BankDebit => {
                if let Some(intent) = self.payment_intents.get_mut(&payment_intent) {
                    intent["status"] = json!("processing");
                }
                self.complete_session(session_id, "unpaid", now);
                Ok(PaymentOutcome::Processing)
            }
        }
    }

    /// A promotion code took the whole price off: the session completes with no payment
    /// required and no payment intent (one made by an earlier attempt is canceled), and only
    /// `checkout.session.completed` is emitted: nothing was charged.
    fn complete_without_payment(&mut self, session_id: &str, now: i64) {
        let earlier_intent = self
            .sessions
            .get_mut(session_id)
            .and_then(|session| session["payment_intent"].take().as_str().map(str::to_owned));
        if let Some(intent) = earlier_intent.and_then(|id| self.payment_intents.get_mut(&id)) {
            intent["status"] = json!("canceled");
        }
        self.complete_session(session_id, "no_payment_required", now);
    }

    fn complete_session(&mut self, session_id: &str, payment_status: &str, now: i64) {
        if let Some(session) = self.sessions.get_mut(session_id) {
            session["status"] = json!("complete");
            session["payment_status"] = json!(payment_status);
            session["url"] = Value::Null;
            let snapshot = public(session.clone());
            self.emit("checkout.session.completed", snapshot, now);
        }
    }

    /// A delayed (bank debit) payment settles, successfully or not.
    pub fn settle(
        &mut self,
        session_id: &str,
        succeeded: bool,
        now: i64,
    ) -> Result<(), StripeError> {
        let session = self
            .sessions
            .get(session_id)
            .ok_or_else(|| StripeError::not_found("checkout.session", session_id))?;
        if session["status"] != "complete" || session["payment_status"] != "unpaid" {
            return Err(StripeError::invalid(
                "payment_intent_unexpected_state",
                "nothing is settling for this session",
                None,
            ));
        }
        let payment_intent = self.payment_intent_for(session_id, now)?;
        let charge = self.charge(
            session_id,
            &payment_intent,
            succeeded,
            (!succeeded).then_some("The bank debit failed."),
            now,
        )?;
        if succeeded {
            self.emit("charge.succeeded", charge, now);
            if let Some(session) = self.sessions.get_mut(session_id) {
                session["payment_status"] = json!("paid");
            }
            let snapshot = self.session(session_id)?;
            self.emit("checkout.session.async_payment_succeeded", snapshot, now);
        } else {
            self.emit("charge.failed", charge, now);
            let snapshot = self.session(session_id)?;
            self.emit("checkout.session.async_payment_failed", snapshot, now);
        }
        Ok(())
    }

    fn captured_charge_mut(&mut self, payment_intent: &str) -> Result<&mut Value, StripeError> {
        let charge_id = self
            .payment_intents
            .get(payment_intent)
            .and_then(|intent| intent["latest_charge"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| StripeError::not_found("payment_intent", payment_intent))?;
        let charge = self
            .charges
            .get_mut(&charge_id)
            .ok_or_else(|| StripeError::not_found("charge", &charge_id))?;
        if charge["status"] != "succeeded" {
            return Err(StripeError::invalid(
                "charge_not_captured",
                "This PaymentIntent has no successful charge to refund.",
                Some("payment_intent"),
            ));
        }
        Ok(charge)
    }

    /// `POST /v1/refunds`.
    pub fn create_refund(&mut self, params: &Params, now: i64) -> Result<Value, StripeError> {
        let payment_intent = params.required("payment_intent")?.to_owned();
        let requested = params.integer("amount")?;
        let reason = params.get("reason").map(str::to_owned);
        if let Some(reason) = &reason {
            if !["duplicate", "fraudulent", "requested_by_customer"].contains(&reason.as_str()) {
                return Err(StripeError::invalid(
                    "parameter_invalid_string",
                    format!("Invalid reason: {reason}"),
                    Some("reason"),
                ));
            }
        }
        let metadata = params.map("metadata")?;
        let charge = self.captured_charge_mut(&payment_intent)?;
        let captured = charge["amount_captured"].as_i64().unwrap_or(0);
        let refunded = charge["amount_refunded"].as_i64().unwrap_or(0);
        let remaining = captured - refunded;
        if remaining == 0 {
            return Err(StripeError::invalid(
                "charge_already_refunded",
                "Charge has already been refunded.",
                None,
            ));
        }
        let amount = requested.unwrap_or(remaining);
        if amount < 1 || amount > remaining {
            return Err(StripeError::invalid("amount_too_large", format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"), Some("amount")));
        }
        charge["amount_refunded"] = json!(refunded + amount);
        charge["refunded"] = json!(refunded + amount == captured);
        let charge_snapshot = charge.clone();
        let id = self.next_id("re");
        let refund = json!({
            "id": id, "object": "refund", "amount": amount, "currency": charge_snapshot["currency"],
            "charge": charge_snapshot["id"], "payment_intent": payment_intent, "reason": reason,
            "metadata": metadata, "status": "succeeded", "created": now,
        });
        self.refunds.insert(id, refund.clone());
        self.emit("charge.refunded", charge_snapshot, now);
        self.emit("refund.created", refund.clone(), now);
        Ok(refund)
    }

    /// The customer's bank opens a dispute on the payment.
    pub fn open_dispute(&mut self, payment_intent: &str, now: i64) -> Result<Value, StripeError> {
        let charge = self.captured_charge_mut(payment_intent)?;
        charge["disputed"] = json!(true);
        let charge = charge.clone();
        let id = self.next_id("dp");
        let dispute = json!({
            "id": id, "object": "dispute", "amount": charge["amount"], "currency": charge["currency"],
            "charge": charge["id"], "payment_intent": payment_intent, "status": "needs_response",
            "reason": "fraudulent", "created": now, "livemode": false, "metadata": {},
        });
        self.disputes.insert(id, dispute.clone());
        self.emit("charge.dispute.created", dispute.clone(), now);
        Ok(dispute)
    }

    pub fn close_dispute(
        &mut self,
        dispute_id: &str,
        won: bool,
        now: i64,
    ) -> Result<Value, StripeError> {
        let dispute = self
            .disputes
            .get_mut(dispute_id)
            .ok_or_else(|| StripeError::not_found("dispute", dispute_id))?;
        dispute["status"] = json!(if won { "won" } else { "lost" });
        let dispute = dispute.clone();
        self.emit("charge.dispute.closed", dispute.clone(), now);
        Ok(dispute)
    }
}

/// The line item's `tax_behavior`: required with automatic tax (the sandbox is an account
/// without a default tax behavior), ignored without.
fn tax_behavior(params: &Params, automatic_tax: bool) -> Result<Option<TaxBehavior>, StripeError> {
    const KEY: &str = "line_items[0][price_data][tax_behavior]";
    let behavior = match params.get(KEY) {
        None | Some("unspecified") => None,
        Some("exclusive") => Some(TaxBehavior::Exclusive),
        Some("inclusive") => Some(TaxBehavior::Inclusive),
        Some(other) => {
            return Err(StripeError::invalid(
                "parameter_invalid_string",
                format!("Invalid tax_behavior: must be one of exclusive, inclusive, or unspecified; got {other}"),
                Some(KEY),
            ))
        }
    };
    match (automatic_tax, behavior) {
        (false, _) => Ok(None),
        (true, Some(behavior)) => Ok(Some(behavior)),
        (true, None) => Err(StripeError::invalid(
            "tax_behavior_required",
            "Automatic tax needs the price's tax_behavior (exclusive or inclusive): this account has no default.",
            Some(KEY),
        )),
    }
}

/// Bytes of OS randomness in a hosted page's secret (256 bits, hex-encoded in the URL).
const PAGE_SECRET_BYTES: usize = 32;

/// A fresh secret for a hosted page's URL, from the OS random source.
fn page_secret() -> Result<String, StripeError> {
    let mut bytes = [0_u8; PAGE_SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|error| StripeError {
        status: 500,
        kind: "api_error",
        code: None,
        message: format!("the sandbox could not draw a random secret: {error}"),
        param: None,
    })?;
    Ok(hex::encode(bytes))
}

/// The session as the API shows it (without the sandbox's private bookkeeping).
fn public(mut session: Value) -> Value {
    if let Some(object) = session.as_object_mut() {
        object.remove("line_items_sandbox");
    }
    session
}

#[cfg(test)]
mod tests;
