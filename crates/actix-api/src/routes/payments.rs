use crate::auth::{AuthenticatedUser, SignedSession};
use crate::dto::{
    json_response, purchase_status_schema, wire_names, BillDto, CourseDto, PurchaseDto,
};
use crate::error::{json_body_error, ApiError};
use crate::openapi::{self as doc, ErrorEnvelope};
use crate::routes::courses::{blank_as_none, course_id, Pagination, DEFAULT_LIMIT};
use crate::ApiState;
use actix_web::{web, HttpRequest, HttpResponse};
use lms_domain::{Purchase, PurchaseId};
use lms_ports::{GatewaySession, PageRequest, SessionPaymentStatus, SessionStatus};
use lms_use_cases::{CheckoutStarted, UseCaseError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::openapi::schema::Object;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"courseId": "5d2c1f0e-8a3b-4c6d-9e7f-1a2b3c4d5e6f"}))]
pub struct CheckoutBody {
    #[schema(format = Uuid)]
    course_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// The checkout session the buyer came back from (`cs_...`): while the purchase is pending
    /// the server asks the payment provider about it first, at most once every few seconds.
    #[param(example = "cs_test_a1b2c3")]
    session_id: Option<String>,
}

/// `?page=&limit=` of the order history, as the published courses take them.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// 1-based; 1 when absent or empty.
    #[serde(default, deserialize_with = "blank_as_none")]
    #[param(minimum = 1, example = 1)]
    page: Option<u32>,
    /// Purchases per page, clamped to 1..=100; 10 when absent or empty.
    #[serde(default, deserialize_with = "blank_as_none")]
    #[param(minimum = 1, maximum = 100, example = 10)]
    limit: Option<u32>,
}

/// The buyer's refund request; the body is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Not what I expected."}))]
pub struct RefundRequestBody {
    /// Why, in the buyer's words (at most 500 characters); kept in the audit trail.
    reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"amountCents": 500, "reason": "requested_by_customer"}))]
pub struct RefundBody {
    /// Minor units; the whole remaining amount when absent.
    amount_cents: Option<i64>,
    reason: Option<String>,
}

fn session_status_schema() -> Object {
    let all = [
        SessionStatus::Open,
        SessionStatus::Complete,
        SessionStatus::Expired,
    ];
    wire_names(all.map(SessionStatus::as_str), SessionStatus::Open.as_str())
}

fn session_payment_status_schema() -> Object {
    use SessionPaymentStatus as P;
    let all = [P::Paid, P::Unpaid, P::NoPaymentRequired];
    wire_names(all.map(P::as_str), P::Unpaid.as_str())
}

fn wire_status_schema() -> Object {
    let mut schema = purchase_status_schema();
    schema
        .enum_values
        .get_or_insert_with(Vec::new)
        .push("not purchased".into());
    schema
}

/// The checkout session as Stripe spells it (snake_case keys, lower-case currency, unix
/// seconds). The frontend redirects to `url`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "cs_test_a1b2c3",
    "url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
    "status": "open",
    "payment_status": "unpaid",
    "amount_total": 1999,
    "currency": "usd",
    "expires_at": 1_735_732_800,
    "metadata": {
        "purchase_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "course_id": "5d2c1f0e-8a3b-4c6d-9e7f-1a2b3c4d5e6f",
        "user_id": "0b5f8a4e-4c1e-4d0a-9a57-3f1c2b7d9e10"
    },
    "client_reference_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
}))]
pub struct CheckoutSessionBody {
    /// `null` for a free enrolment (no session).
    id: Option<String>,
    /// Where to send the buyer: the hosted payment page, or the success page of a free course.
    url: Option<String>,
    #[schema(schema_with = session_status_schema)]
    status: &'static str,
    #[schema(schema_with = session_payment_status_schema)]
    payment_status: &'static str,
    /// Minor units.
    amount_total: i64,
    /// ISO 4217, lower case.
    currency: String,
    /// Unix seconds; `null` for a free enrolment.
    expires_at: Option<i64>,
    metadata: BTreeMap<String, String>,
    /// The purchase's id.
    client_reference_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutData {
    session: CheckoutSessionBody,
    purchase: PurchaseDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutResponse {
    #[schema(example = true)]
    success: bool,
    #[schema(example = "Stripe checkout initiated successfully.")]
    message: &'static str,
    data: CheckoutData,
}

/// What the webhook answers once the event is stored (or is a duplicate, or is ignored).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    #[schema(example = true)]
    received: bool,
}

/// A Stripe event as it arrives; documentation only: the body is verified as raw bytes
/// against `Stripe-Signature` before anything parses it.
#[derive(Debug, ToSchema)]
#[schema(example = json!({
    "id": "evt_1a2b3c",
    "object": "event",
    "type": "checkout.session.completed",
    "created": 1_735_732_800,
    "livemode": false,
    "data": {"object": {"id": "cs_test_a1b2c3", "object": "checkout.session"}}
}))]
#[expect(
    dead_code,
    reason = "describes the request body for the OpenAPI document only"
)]
pub struct StripeEvent {
    #[schema(example = "evt_1a2b3c")]
    id: String,
    /// `checkout.session.*`, `charge.*` and `charge.dispute.*` are applied; other types are
    /// acknowledged and ignored.
    #[schema(rename = "type", example = "checkout.session.completed")]
    kind: String,
    /// Unix seconds.
    created: i64,
    livemode: bool,
    /// `{"object": {...}}`: the session, charge or dispute the event is about.
    #[schema(value_type = Object)]
    data: (),
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseStatusData {
    course: CourseDto,
    /// True exactly when the course is unlocked.
    is_purchased: bool,
    #[schema(schema_with = wire_status_schema)]
    purchase_status: &'static str,
    /// The latest purchase of the course by this user, if any.
    purchase: Option<PurchaseDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseStatusResponse {
    #[schema(example = true)]
    success: bool,
    data: PurchaseStatusData,
}

/// A course the user unlocked: the course's fields, with `currency` the currency paid, and the
/// purchase's.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchasedCourse {
    #[serde(flatten)]
    course: CourseDto,
    #[schema(format = Uuid)]
    purchase_id: String,
    /// What was paid, in minor units of `currency`.
    #[schema(example = 1999)]
    amount_cents: i64,
    /// RFC 3339: when the payment completed, as the payment provider reported it; when
    /// checkout started for a free course, or a purchase whose report carried no time.
    #[schema(format = DateTime)]
    purchased_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchasedCoursesResponse {
    #[schema(example = true)]
    success: bool,
    /// Newest first.
    data: Vec<PurchasedCourse>,
}

/// The course of a purchase in the order history, as it is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryCourse {
    #[schema(format = Uuid, example = "5d2c1f0e-8a3b-4c6d-9e7f-1a2b3c4d5e6f")]
    id: String,
    #[schema(example = "Rust for the web")]
    title: String,
}

/// One purchase in the buyer's order history, whatever its status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPurchase {
    #[schema(format = Uuid, example = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")]
    id: String,
    course: HistoryCourse,
    #[schema(schema_with = purchase_status_schema)]
    status: &'static str,
    /// The price of the purchase, in integer minor units of `currency`.
    #[schema(example = 2000)]
    amount_cents: i64,
    #[schema(example = "USD")]
    currency: &'static str,
    /// What the payment provider billed (subtotal, discount, tax, total; and the amounts in
    /// `currency` when presented in another one); `null` until checkout completed.
    #[schema(required = true)]
    bill: Option<BillDto>,
    /// What was paid, in minor units of `paidCurrency` (0 for a 100%-off promotion code);
    /// `null` while nothing was paid.
    #[schema(example = 1500, required = true)]
    paid_cents: Option<i64>,
    /// ISO 4217, upper case: the currency paid in, which may differ from `currency` (a
    /// checkout presented in the customer's currency).
    #[schema(example = "USD", required = true)]
    paid_currency: Option<&'static str>,
    /// Refunded so far, in minor units of the currency paid in.
    #[schema(example = 0)]
    refunded_cents: i64,
    /// The payment provider's receipt page for the payment.
    #[schema(
        example = "https://pay.stripe.com/receipts/payment/CAcaFwoV",
        required = true
    )]
    receipt_url: Option<String>,
    /// The promotion code applied at checkout, as the customer typed it; the provider's id
    /// of it (`promo_...`) when the provider could not say at the time.
    #[schema(example = "SPRING25", required = true)]
    promotion_code: Option<String>,
    /// RFC 3339: until when the buyer may ask for a refund
    /// (`POST /payments/purchases/{purchaseId}/refund-request`); `null` when they may not now
    /// (self-service refunds off, the window closed, nothing left to refund, not completed).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    self_refund_until: Option<OffsetDateTime>,
    /// RFC 3339: when the payment completed, as the payment provider reported it (when
    /// checkout started for a free course, or a payment whose report carried no time);
    /// `null` for a purchase never paid.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    purchased_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: OffsetDateTime,
}

impl HistoryPurchase {
    /// The item of `item`, the buyer's refund window answered by the use cases.
    fn of(item: &lms_ports::PurchasedCourse, services: &lms_use_cases::Services) -> Self {
        let purchase = &item.purchase;
        let paid = purchase.captured();
        Self {
            id: purchase.id.to_string(),
            course: HistoryCourse {
                id: item.course.id.to_string(),
                title: item.course.title.as_str().to_owned(),
            },
            status: purchase.status().as_str(),
            amount_cents: purchase.price.minor(),
            currency: purchase.price.currency().code(),
            bill: purchase.bill().as_ref().map(BillDto::from),
            paid_cents: paid.map(|money| money.minor()),
            paid_currency: paid.map(|money| money.currency().code()),
            refunded_cents: purchase.refunded_amount().minor(),
            receipt_url: purchase.details.receipt_url.clone(),
            promotion_code: purchase.details.promotion_code.clone(),
            self_refund_until: services.self_refund_until(purchase),
            purchased_at: purchase.was_paid().then(|| purchase.paid_at()),
            created_at: purchase.created_at,
            updated_at: purchase.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseHistoryResponse {
    #[schema(example = true)]
    success: bool,
    /// Newest first (by when checkout started).
    data: Vec<HistoryPurchase>,
    pagination: Pagination,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundData {
    purchase: PurchaseDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundResponse {
    #[schema(example = true)]
    success: bool,
    #[schema(example = "Refund requested.")]
    message: &'static str,
    data: RefundData,
}

/// The session as Stripe spells it (snake_case keys, lower-case currency, unix seconds): the
/// seed frontend reads `data.session.url`.
fn session_json(session: &GatewaySession) -> CheckoutSessionBody {
    CheckoutSessionBody {
        id: Some(session.id.clone()),
        url: session.url.clone(),
        status: session.status.as_str(),
        payment_status: session.payment_status.as_str(),
        amount_total: session.amount_total,
        currency: session.currency.code().to_ascii_lowercase(),
        expires_at: Some(session.expires_at.unix_timestamp()),
        metadata: session.metadata.clone(),
        client_reference_id: session.purchase_id.map(|id| id.to_string()),
    }
}

/// A free enrolment, in the same shape: nothing to pay, straight to the success page.
fn free_session_json(purchase: &Purchase, success_url: String) -> CheckoutSessionBody {
    CheckoutSessionBody {
        id: None,
        url: Some(success_url),
        status: "complete",
        payment_status: "no_payment_required",
        amount_total: 0,
        currency: purchase.price.currency().code().to_ascii_lowercase(),
        expires_at: None,
        metadata: BTreeMap::from([
            ("purchase_id".to_owned(), purchase.id.to_string()),
            ("course_id".to_owned(), purchase.course_id.to_string()),
            ("user_id".to_owned(), purchase.user_id.to_string()),
        ]),
        client_reference_id: Some(purchase.id.to_string()),
    }
}

/// `POST /api/v1/payments/create-checkout-session`: 201 for a new session, a free enrolment,
/// and (as the original backend answered) the user's open session handed out again.
#[utoipa::path(
    post,
    path = "/api/v1/payments/create-checkout-session",
    tag = "payments",
    summary = "Start a checkout",
    description = "Opens a Stripe Checkout session for a published course; the frontend \
        redirects to `data.session.url`. The user's open, unexpired session of the same course \
        is handed out again. A free course completes at once without Stripe.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    request_body = CheckoutBody,
    responses(
        (status = 201, description = "A new session, the open one again, or a free enrolment.",
            body = CheckoutResponse),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 404, response = doc::CourseNotFound),
        (status = 409, description = "The course cannot be bought now.", body = ErrorEnvelope,
            examples(
                ("ALREADY_PURCHASED" = (value = json!(doc::example(409, "ALREADY_PURCHASED", "You have already purchased this course.")))),
                ("OWN_COURSE" = (value = json!(doc::example(409, "OWN_COURSE", "Instructors cannot buy their own course.")))),
                ("PAYMENT_IN_PROGRESS" = (value = json!(doc::example(409, "PAYMENT_IN_PROGRESS", "A payment for this course is already in progress. Please wait for it to complete.")))),
            )),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 502, response = doc::PaymentProviderError),
        (status = 503, response = doc::UnavailableOrProvider),
    ),
)]
pub async fn create_checkout_session(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    body: web::Json<CheckoutBody>,
) -> Result<HttpResponse, ApiError> {
    let course = course_id(&body.course_id)?;
    let started = state.services.start_checkout(&actor.0, course).await?;
    let (response, message, session) = match &started {
        CheckoutStarted::Created { session, .. } => (
            HttpResponse::Created(),
            "Stripe checkout initiated successfully.",
            session_json(session),
        ),
        CheckoutStarted::Reused { session, .. } => (
            HttpResponse::Created(),
            "Stripe checkout initiated successfully.",
            session_json(session),
        ),
        CheckoutStarted::FreeEnrollment { purchase } => (
            HttpResponse::Created(),
            "This course is free: you are enrolled.",
            free_session_json(purchase, state.settings.success_url_without_session()),
        ),
    };
    json_response(
        response,
        &CheckoutResponse {
            success: true,
            message,
            data: CheckoutData {
                session,
                purchase: PurchaseDto::from(started.purchase()),
            },
        },
    )
}

/// `POST /api/v1/payments/webhook`: the raw body and the signature header go to the use case,
/// which verifies before parsing. 2xx only once the event is safely stored (or is a duplicate,
/// ignored or not ours); 400 on a bad signature; 5xx otherwise so the gateway retries.
#[utoipa::path(
    post,
    path = "/api/v1/payments/webhook",
    tag = "payments",
    summary = "Stripe webhook",
    description = "Stripe's events, verified over the raw body (256 KiB at most) against \
        `Stripe-Signature` before any parsing. 200 once the event is stored, or is a duplicate \
        or of an ignored type; 400 for any verification failure (nothing is stored); 5xx when \
        it cannot be stored, so Stripe delivers it again. Events apply exactly once, in any order.",
    params(("Stripe-Signature" = String, Header,
        description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">` (several `v1` while a secret is rolled).",
        example = "t=1735732800,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd")),
    request_body(content = StripeEvent, content_type = "application/json",
        description = "The event exactly as Stripe sent it: the signature covers these bytes, so \
            nothing between Stripe and this server may re-encode the JSON."),
    responses(
        (status = 200, description = "Stored, a duplicate, or ignored.", body = WebhookAck),
        (status = 400, description = "Verification failed: a bad or missing signature, a stale \
            timestamp, the other payment mode, or a malformed event.", body = ErrorEnvelope,
            example = json!(doc::example(400, "INVALID_WEBHOOK", "Webhook rejected: the signature is missing or does not match."))),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn webhook(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    let outcome = state.services.handle_webhook(&body, signature).await?;
    tracing::debug!(?outcome, "webhook acknowledged");
    json_response(HttpResponse::Ok(), &WebhookAck { received: true })
}

/// `GET /api/v1/payments/courses/{courseId}/purchase-status?session_id=`
#[utoipa::path(
    get,
    path = "/api/v1/payments/courses/{courseId}/purchase-status",
    tag = "payments",
    summary = "Whether a course is unlocked",
    description = "`purchaseStatus` is `pending`, `completed`, `failed`, `refunded` or \
        `not purchased`; `isPurchased` is true exactly when the course is unlocked. An expired \
        session shows `failed`; a payment held for review shows `pending` and does not unlock; \
        a full refund or a lost dispute shows `refunded` and locks.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(
        ("courseId" = String, Path, format = Uuid, description = "The course's id; one that is not a UUID is not found."),
        StatusQuery,
    ),
    responses(
        (status = 200, description = "The course and the user's purchase of it.", body = PurchaseStatusResponse),
        (status = 401, response = doc::Unauthorized),
        (status = 404, response = doc::CourseNotFound),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 502, response = doc::PaymentProviderError),
        (status = 503, response = doc::UnavailableOrProvider),
    ),
)]
pub async fn purchase_status(
    state: web::Data<ApiState>,
    session: SignedSession,
    path: web::Path<String>,
    query: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let course = course_id(&path)?;
    let session_id = query
        .session_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let view = state
        .services
        .purchase_status(session.0, course, session_id)
        .await?;
    json_response(
        HttpResponse::Ok(),
        &PurchaseStatusResponse {
            success: true,
            data: PurchaseStatusData {
                course: CourseDto::from(&view.course),
                is_purchased: view.is_purchased(),
                purchase_status: view.wire_status(),
                purchase: view.purchase.as_ref().map(PurchaseDto::from),
            },
        },
    )
}

/// `GET /api/v1/payments/purchased-courses`: the course fields plus the purchase's.
#[utoipa::path(
    get,
    path = "/api/v1/payments/purchased-courses",
    tag = "payments",
    summary = "Unlocked courses",
    description = "What unlocks a course for the signed-in user, newest first.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    responses(
        (status = 200, description = "The unlocked courses.", body = PurchasedCoursesResponse),
        (status = 401, response = doc::Unauthorized),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn purchased_courses(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
) -> Result<HttpResponse, ApiError> {
    let items = state.services.purchased_courses(&actor.0).await?;
    let data = items
        .iter()
        .map(|item| PurchasedCourse {
            course: CourseDto {
                // What was paid, in the currency paid (the course price may have changed since).
                currency: item.purchase.price.currency().code(),
                ..CourseDto::from(&item.course)
            },
            purchase_id: item.purchase.id.to_string(),
            amount_cents: item.purchase.price.minor(),
            purchased_at: item.purchase.paid_at().format(&Rfc3339).unwrap_or_default(),
        })
        .collect();
    json_response(
        HttpResponse::Ok(),
        &PurchasedCoursesResponse {
            success: true,
            data,
        },
    )
}

/// `GET /api/v1/payments/purchases?page=&limit=`: the caller's order history.
#[utoipa::path(
    get,
    path = "/api/v1/payments/purchases",
    tag = "payments",
    summary = "Order history",
    description = "Every purchase of the signed-in user, whatever its status, newest first \
        (by when checkout started), one page at a time.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "One page of the user's purchases.", body = PurchaseHistoryResponse),
        (status = 401, response = doc::Unauthorized),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn purchase_history(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::new(
        query.page.unwrap_or(1),
        query.limit.unwrap_or(DEFAULT_LIMIT),
    );
    let result = state.services.purchase_history(&actor.0, page).await?;
    json_response(
        HttpResponse::Ok(),
        &PurchaseHistoryResponse {
            success: true,
            data: result
                .items
                .iter()
                .map(|item| HistoryPurchase::of(item, &state.services))
                .collect(),
            pagination: Pagination::of(page, result.total),
        },
    )
}

/// `POST /api/v1/payments/purchases/{purchaseId}/refund`: 202, the purchase turns `refunded`
/// when the gateway confirms.
#[utoipa::path(
    post,
    path = "/api/v1/payments/purchases/{purchaseId}/refund",
    tag = "payments",
    summary = "Refund a purchase",
    description = "An admin or the course's instructor asks Stripe for a refund (the remaining \
        amount when `amountCents` is absent). The purchase turns `refunded` when Stripe confirms.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(("purchaseId" = String, Path, format = Uuid, description = "The purchase's id; one that is not a UUID is not found.")),
    request_body = RefundBody,
    responses(
        (status = 202, description = "Requested from Stripe.", body = RefundResponse),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::PurchaseNotFound),
        (status = 409, description = "Nothing (more) to refund, or another refund of it under way.", body = ErrorEnvelope,
            examples(
                ("NOT_REFUNDABLE" = (value = json!(doc::example(409, "NOT_REFUNDABLE", "This purchase cannot be refunded: only completed purchases can be refunded.")))),
                ("REFUND_IN_PROGRESS" = (value = json!(doc::example(409, "REFUND_IN_PROGRESS", crate::error::REFUND_IN_PROGRESS)))),
            )),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 502, response = doc::PaymentProviderError),
        (status = 503, response = doc::UnavailableOrProvider),
    ),
)]
pub async fn refund(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    path: web::Path<String>,
    body: web::Json<RefundBody>,
) -> Result<HttpResponse, ApiError> {
    let purchase_id: PurchaseId = path
        .parse()
        .map_err(|_| ApiError::from(UseCaseError::NotFound(lms_use_cases::Resource::Purchase)))?;
    let RefundBody {
        amount_cents,
        reason,
    } = body.into_inner();
    let purchase = state
        .services
        .refund(&actor.0, purchase_id, amount_cents, reason)
        .await?;
    json_response(
        HttpResponse::Accepted(),
        &RefundResponse {
            success: true,
            message: "Refund requested.",
            data: RefundData {
                purchase: PurchaseDto::from(&purchase),
            },
        },
    )
}

/// An optional JSON body: none at all (or `null`) is the default, anything else sent must be
/// JSON of `T`.
fn optional_json<T: serde::de::DeserializeOwned + Default>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let is_json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| {
            let media = media.trim();
            media.eq_ignore_ascii_case("application/json")
                || (media.len() > 5 && media[media.len() - 5..].eq_ignore_ascii_case("+json"))
        });
    if !is_json {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "The request body must be JSON (Content-Type: application/json).",
        ));
    }
    serde_json::from_slice::<Option<T>>(body)
        .map(Option::unwrap_or_default)
        .map_err(|err| json_body_error(&err))
}

/// `POST /api/v1/payments/purchases/{purchaseId}/refund-request`: the buyer asks for their
/// money back within the refund window.
#[utoipa::path(
    post,
    path = "/api/v1/payments/purchases/{purchaseId}/refund-request",
    tag = "payments",
    summary = "Ask for a refund (the buyer)",
    description = "The buyer of a completed purchase asks for everything still refundable back, \
        within `SELF_REFUND_WINDOW_DAYS` of paying (the order history's `selfRefundUntil` says \
        until when). Refunded through Stripe like an admin's refund and written to the audit \
        trail as a refund by the buyer. The body is optional.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(("purchaseId" = String, Path, format = Uuid, description = "The purchase's id; someone else's, or one that is not a UUID, is not found.")),
    request_body(content = Option<RefundRequestBody>, content_type = "application/json",
        description = "Optional: no body at all is the same as `{}`."),
    responses(
        (status = 200, description = "Refunded through Stripe; the status is `refunded` once \
            Stripe confirms (at once for cards).", body = RefundResponse),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 404, response = doc::PurchaseNotFound),
        (status = 409, description = "No refund can be requested now.", body = ErrorEnvelope,
            examples(
                ("SELF_REFUND_UNAVAILABLE" = (value = json!(doc::example(409, "SELF_REFUND_UNAVAILABLE", crate::error::SELF_REFUND_UNAVAILABLE)))),
                ("REFUND_WINDOW_CLOSED" = (value = json!(doc::example(409, "REFUND_WINDOW_CLOSED", "This purchase can no longer be refunded: refunds can be requested within 14 days of payment.")))),
                ("NOT_REFUNDABLE" = (value = json!(doc::example(409, "NOT_REFUNDABLE", "This purchase cannot be refunded: only completed purchases can be refunded.")))),
                ("REFUND_IN_PROGRESS" = (value = json!(doc::example(409, "REFUND_IN_PROGRESS", crate::error::REFUND_IN_PROGRESS)))),
            )),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 502, response = doc::PaymentProviderError),
        (status = 503, response = doc::UnavailableOrProvider),
    ),
)]
pub async fn refund_request(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let purchase_id: PurchaseId = path
        .parse()
        .map_err(|_| ApiError::from(UseCaseError::NotFound(lms_use_cases::Resource::Purchase)))?;
    let RefundRequestBody { reason } = optional_json(&req, &body)?;
    let purchase = state
        .services
        .request_refund(&actor.0, purchase_id, reason)
        .await?;
    json_response(
        HttpResponse::Ok(),
        &RefundResponse {
            success: true,
            message: "Refund requested.",
            data: RefundData {
                purchase: PurchaseDto::from(&purchase),
            },
        },
    )
}
