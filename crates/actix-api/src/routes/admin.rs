//! The operators' API (`/api/v1/admin/...`): the event inbox and its replay, the purchases held
//! for review and their resolution, the audit trail. Every route is for admins only; the use
//! cases decide that (`Operator::Admin`), this module only speaks HTTP.

use crate::auth::AuthenticatedUser;
use crate::dto::{json_response, purchase_status_schema, wire_names, BillDto, PurchaseDto};
use crate::error::{ApiError, FieldError};
use crate::openapi::{self as doc, ErrorEnvelope};
use crate::routes::courses::{blank_as_none, Pagination};
use crate::ApiState;
use actix_web::{web, HttpResponse};
use lms_domain::{Purchase, PurchaseId};
use lms_ports::{
    AuditAction, AuditActor, AuditEntry, EventFilter, EventOutcome, InboxRecord, PageRequest,
};
use lms_use_cases::{Operator, Resource, UseCaseError, WebhookOutcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::openapi::schema::Object;
use utoipa::{IntoParams, ToSchema};

/// Operators read more at a time than shoppers do.
const DEFAULT_LIMIT: u32 = 20;

fn page_of(page: Option<u32>, limit: Option<u32>) -> PageRequest {
    PageRequest::new(page.unwrap_or(1), limit.unwrap_or(DEFAULT_LIMIT))
}

fn event_outcome_schema() -> Object {
    let mut schema = wire_names(
        EventOutcome::ALL.map(EventOutcome::as_str),
        EventOutcome::Failed.as_str(),
    );
    schema.description = Some(
        "`applied` (its facts were merged), `held` (merged, and the purchase is held for \
         review), `ignored` (a type not acted on), `unmatched` (about no purchase of ours), \
         `failed` (could not be applied; see `error`)."
            .to_owned(),
    );
    schema
}

fn replay_outcome_schema() -> Object {
    wire_names(
        [
            "applied",
            "held",
            "duplicate",
            "ignored",
            "unmatched",
            "failed",
        ],
        "applied",
    )
}

fn audit_action_schema() -> Object {
    wire_names(
        AuditAction::ALL.map(AuditAction::as_str),
        AuditAction::AcceptHeld.as_str(),
    )
}

fn actor_kind_schema() -> Object {
    wire_names(ACTOR_KINDS, "user")
}

const ACTOR_KINDS: [&str; 3] = ["user", "operator", "system"];

// ---- query strings and bodies ------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with this outcome.
    #[serde(default)]
    #[param(schema_with = event_outcome_schema)]
    outcome: Option<String>,
    /// Only events first received at or after this instant (RFC 3339).
    #[serde(default)]
    #[param(format = DateTime, example = "2025-01-01T00:00:00Z")]
    since: Option<String>,
    /// 1-based; 1 when absent or empty.
    #[serde(default, deserialize_with = "blank_as_none")]
    #[param(minimum = 1, example = 1)]
    page: Option<u32>,
    /// Events per page, clamped to 1..=100; 20 when absent or empty.
    #[serde(default, deserialize_with = "blank_as_none")]
    #[param(minimum = 1, maximum = 100, example = 20)]
    limit: Option<u32>,
}

impl EventsQuery {
    /// The filter, or every invalid field.
    fn filter(&self) -> Result<EventFilter, ApiError> {
        let mut errors = Vec::new();
        let outcome = match self.outcome.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => {
                let parsed = EventOutcome::parse(&name.to_ascii_lowercase());
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        "outcome",
                        "must be one of applied, held, ignored, unmatched, failed",
                    ));
                }
                parsed
            }
        };
        let since = match self.since.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let parsed = OffsetDateTime::parse(text, &Rfc3339).ok();
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        "since",
                        "must be an RFC 3339 time such as 2025-01-01T00:00:00Z",
                    ));
                }
                parsed
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(EventFilter { outcome, since })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminPageQuery {
    /// 1-based; 1 when absent or empty.
    #[serde(default, deserialize_with = "blank_as_none")]
    #[param(minimum = 1, example = 1)]
    page: Option<u32>,
    /// Items per page, clamped to 1..=100; 20 when absent or empty.
    #[serde(default, deserialize_with = "blank_as_none")]
    #[param(minimum = 1, maximum = 100, example = 20)]
    limit: Option<u32>,
}

/// Why an operator resolves a held purchase this way; kept in the audit trail.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"reason": "The customer paid the old price; honoured."}))]
pub struct ResolveBody {
    /// 1 to 500 characters.
    reason: String,
}

// ---- wire shapes ---------------------------------------------------------------------------

/// One event in the inbox, without its payload.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!(event_example()))]
pub struct InboxEvent {
    /// The payment provider's event id (`evt_...`).
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    livemode: bool,
    /// When the payment provider created it.
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    first_received_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_received_at: OffsetDateTime,
    /// How many times it was delivered (replays do not count).
    delivery_count: u32,
    #[schema(schema_with = event_outcome_schema)]
    outcome: &'static str,
    /// Why it failed, for `failed`.
    error: Option<String>,
    /// The purchase it concerns, when known.
    #[schema(format = Uuid)]
    purchase_id: Option<String>,
    /// False once the payload was pruned after the retention period: it can no longer be replayed.
    has_payload: bool,
}

impl From<&InboxRecord> for InboxEvent {
    fn from(record: &InboxRecord) -> Self {
        Self {
            event_id: record.event_id.clone(),
            event_type: record.event_type.clone(),
            livemode: record.livemode,
            created: record.created,
            first_received_at: record.first_received_at,
            last_received_at: record.last_received_at,
            delivery_count: record.delivery_count,
            outcome: record.outcome.as_str(),
            error: record.error.clone(),
            purchase_id: record.purchase_id.map(|id| id.to_string()),
            has_payload: record.payload.is_some(),
        }
    }
}

fn event_example() -> Value {
    serde_json::json!({
        "eventId": "evt_1QxAbc",
        "type": "checkout.session.completed",
        "livemode": false,
        "created": "2025-01-01T12:00:00Z",
        "firstReceivedAt": "2025-01-01T12:00:01Z",
        "lastReceivedAt": "2025-01-01T12:05:01Z",
        "deliveryCount": 2,
        "outcome": "failed",
        "error": "another purchase is already linked to this event's payment intent id",
        "purchaseId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "hasPayload": true,
    })
}

/// One event with its payload.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxEventDetail {
    #[serde(flatten)]
    event: InboxEvent,
    /// The event as the payment provider sent it; `null` once pruned. A stored payload that
    /// is not JSON (none should be) is given as a string.
    #[schema(value_type = Option<Object>)]
    payload: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventsResponse {
    #[schema(example = true)]
    success: bool,
    /// Most recently first received first.
    data: Vec<InboxEvent>,
    pagination: Pagination,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventResponse {
    #[schema(example = true)]
    success: bool,
    data: InboxEventDetail,
}

/// What a replay did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "eventId": "evt_1QxAbc",
    "outcome": "applied",
    "purchaseId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "purchaseStatus": "completed",
    "error": null,
}))]
pub struct ReplayResult {
    event_id: String,
    /// As for a delivery; `duplicate` when the event was already applied or held (left alone).
    #[schema(schema_with = replay_outcome_schema)]
    outcome: &'static str,
    /// The purchase it changed (`applied`, `held`).
    #[schema(format = Uuid)]
    purchase_id: Option<String>,
    /// The purchase's status after an `applied` replay; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = purchase_status_schema)]
    purchase_status: Option<&'static str>,
    /// Why it failed again, for `failed`.
    error: Option<String>,
}

impl ReplayResult {
    fn new(event_id: String, outcome: &WebhookOutcome) -> Self {
        let (purchase_id, purchase_status, error) = match outcome {
            WebhookOutcome::Applied {
                purchase_id,
                status,
            } => (Some(purchase_id.to_string()), Some(status.as_str()), None),
            WebhookOutcome::Held { purchase_id } => (Some(purchase_id.to_string()), None, None),
            WebhookOutcome::Failed { error } => (None, None, Some(error.clone())),
            WebhookOutcome::Duplicate | WebhookOutcome::Ignored | WebhookOutcome::Unmatched => {
                (None, None, None)
            }
        };
        Self {
            event_id,
            outcome: outcome.label(),
            purchase_id,
            purchase_status,
            error,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayResponse {
    #[schema(example = true)]
    success: bool,
    #[schema(example = "Event replayed.")]
    message: &'static str,
    data: ReplayResult,
}

/// A purchase held for review: the purchase, the payment it received, and what the payment
/// provider billed (a payment that is not the bill's total, or a bill for another price).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldPurchase {
    #[serde(flatten)]
    purchase: PurchaseDto,
    /// What was captured, in minor units of `receivedCurrency` (`amountCents` is the price).
    #[schema(example = 999)]
    received_cents: Option<i64>,
    #[schema(example = "USD")]
    received_currency: Option<&'static str>,
    /// What the payment provider billed, when it said (`null` for a payment it reported
    /// without its checkout's amounts).
    bill: Option<BillDto>,
    /// The payment provider's payment (`pi_...`), which a refund goes to.
    #[schema(example = "pi_3QxAbc")]
    payment_intent_id: Option<String>,
}

impl From<&Purchase> for HeldPurchase {
    fn from(purchase: &Purchase) -> Self {
        let received = purchase.captured();
        Self {
            purchase: PurchaseDto::from(purchase),
            received_cents: received.map(|money| money.minor()),
            received_currency: received.map(|money| money.currency().code()),
            bill: purchase.bill().as_ref().map(BillDto::from),
            payment_intent_id: purchase.payment_intent_id.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeldPurchasesResponse {
    #[schema(example = true)]
    success: bool,
    /// Oldest first.
    data: Vec<HeldPurchase>,
    pagination: Pagination,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResolvedData {
    purchase: PurchaseDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResolvedResponse {
    #[schema(example = true)]
    success: bool,
    #[schema(example = "Held purchase accepted: the course is unlocked.")]
    message: &'static str,
    data: ResolvedData,
}

/// Who did it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AuditActor)]
pub struct AuditActorDto {
    /// `user` (a signed-in admin or instructor), `operator` (the command line), `system` (an
    /// automatic refund).
    #[schema(schema_with = actor_kind_schema)]
    kind: &'static str,
    /// For `user`.
    #[schema(format = Uuid)]
    user_id: Option<String>,
}

impl From<AuditActor> for AuditActorDto {
    fn from(actor: AuditActor) -> Self {
        let [user, operator, system] = ACTOR_KINDS;
        match actor {
            AuditActor::User(id) => Self {
                kind: user,
                user_id: Some(id.to_string()),
            },
            AuditActor::Operator => Self {
                kind: operator,
                user_id: None,
            },
            AuditActor::System => Self {
                kind: system,
                user_id: None,
            },
        }
    }
}

/// An amount of money.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Amount)]
pub struct AmountDto {
    /// Minor units.
    #[schema(example = 999)]
    cents: i64,
    #[schema(example = "USD")]
    currency: &'static str,
}

/// One line of the audit trail: who did what, when, to what, and why.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AuditEntry)]
pub struct AuditEntryDto {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    actor: AuditActorDto,
    #[schema(schema_with = audit_action_schema)]
    action: &'static str,
    #[schema(format = Uuid)]
    purchase_id: Option<String>,
    event_id: Option<String>,
    /// A user the action concerned (a role granted), when not a purchase's.
    #[schema(format = Uuid)]
    subject_user_id: Option<String>,
    /// The money moved (a refund's amount, the payment accepted), when any.
    amount: Option<AmountDto>,
    /// Why, in the actor's words (or the system's).
    reason: String,
}

impl From<&AuditEntry> for AuditEntryDto {
    fn from(entry: &AuditEntry) -> Self {
        Self {
            at: entry.at,
            actor: AuditActorDto::from(entry.actor),
            action: entry.action.as_str(),
            purchase_id: entry.purchase_id.map(|id| id.to_string()),
            event_id: entry.event_id.clone(),
            subject_user_id: entry.subject_user_id.map(|id| id.to_string()),
            amount: entry.amount.map(|money| AmountDto {
                cents: money.minor(),
                currency: money.currency().code(),
            }),
            reason: entry.reason.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditResponse {
    #[schema(example = true)]
    success: bool,
    /// Newest first.
    data: Vec<AuditEntryDto>,
    pagination: Pagination,
}

// ---- handlers ------------------------------------------------------------------------------

/// A path id that is not a UUID names no purchase.
fn purchase_id(raw: &str) -> Result<PurchaseId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::from(UseCaseError::NotFound(Resource::Purchase)))
}

/// `GET /api/v1/admin/events?outcome=&since=&page=&limit=`
#[utoipa::path(
    get,
    path = "/api/v1/admin/events",
    tag = "admin",
    summary = "Inbox events",
    description = "Admins only. Every verified event the payment provider delivered, with what \
        became of it (`applied`, `held`, `ignored`, `unmatched`, `failed`), most recently first \
        received first. The payload is left out: `GET /admin/events/{eventId}` shows it.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(EventsQuery),
    responses(
        (status = 200, description = "One page of inbox events.", body = EventsResponse),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn events(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.filter()?;
    let page = page_of(query.page, query.limit);
    let result = state
        .services
        .list_events(Operator::Admin(&actor.0), filter, page)
        .await?;
    json_response(
        HttpResponse::Ok(),
        &EventsResponse {
            success: true,
            data: result.items.iter().map(InboxEvent::from).collect(),
            pagination: Pagination::of(page, result.total),
        },
    )
}

/// `GET /api/v1/admin/events/{eventId}`
#[utoipa::path(
    get,
    path = "/api/v1/admin/events/{eventId}",
    tag = "admin",
    summary = "One inbox event with its payload",
    description = "Admins only. The event's inbox row and the event as the payment provider \
        sent it (`payload`, `null` once pruned after the retention period).",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(("eventId" = String, Path, description = "The payment provider's event id.", example = "evt_1QxAbc")),
    responses(
        (status = 200, description = "The event.", body = EventResponse),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::EventNotFound),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn event(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = state
        .services
        .event(Operator::Admin(&actor.0), &path)
        .await?;
    let payload = record
        .payload
        .as_deref()
        .map(|raw| serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned())));
    json_response(
        HttpResponse::Ok(),
        &EventResponse {
            success: true,
            data: InboxEventDetail {
                event: InboxEvent::from(&record),
                payload,
            },
        },
    )
}

/// `POST /api/v1/admin/events/{eventId}/replay`
#[utoipa::path(
    post,
    path = "/api/v1/admin/events/{eventId}/replay",
    tag = "admin",
    summary = "Replay an inbox event",
    description = "Admins only. Processes the stored event again through the same exactly-once \
        path as a delivery (once its cause is fixed, a `failed` event applies). An event already \
        applied or held is left alone (`duplicate`). Written to the audit trail.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(("eventId" = String, Path, description = "The payment provider's event id.", example = "evt_1QxAbc")),
    responses(
        (status = 200, description = "What the replay did.", body = ReplayResponse),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::EventNotFound),
        (status = 409, description = "The event cannot be replayed.", body = ErrorEnvelope,
            example = json!(doc::example(409, "NOT_REPLAYABLE", "This event cannot be replayed: its payload was pruned after the retention period."))),
        (status = 500, response = doc::InternalError),
        (status = 502, response = doc::PaymentProviderError),
        (status = 503, response = doc::UnavailableOrProvider),
    ),
)]
pub async fn replay(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let event_id = path.into_inner();
    let outcome = state
        .services
        .replay_event(Operator::Admin(&actor.0), &event_id)
        .await?;
    json_response(
        HttpResponse::Ok(),
        &ReplayResponse {
            success: true,
            message: "Event replayed.",
            data: ReplayResult::new(event_id, &outcome),
        },
    )
}

/// `GET /api/v1/admin/purchases/held?page=&limit=`
#[utoipa::path(
    get,
    path = "/api/v1/admin/purchases/held",
    tag = "admin",
    summary = "Purchases held for review",
    description = "Admins only. Purchases whose captured payment does not match the price \
        (amount or currency), oldest first. They stay `pending` and locked until an admin \
        accepts or refunds them.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(AdminPageQuery),
    responses(
        (status = 200, description = "One page of held purchases.", body = HeldPurchasesResponse),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn held_purchases(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    query: web::Query<AdminPageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_of(query.page, query.limit);
    let result = state
        .services
        .list_held(Operator::Admin(&actor.0), page)
        .await?;
    json_response(
        HttpResponse::Ok(),
        &HeldPurchasesResponse {
            success: true,
            data: result.items.iter().map(HeldPurchase::from).collect(),
            pagination: Pagination::of(page, result.total),
        },
    )
}

/// `POST /api/v1/admin/purchases/{purchaseId}/accept`
#[utoipa::path(
    post,
    path = "/api/v1/admin/purchases/{purchaseId}/accept",
    tag = "admin",
    summary = "Accept a held purchase",
    description = "Admins only. Accepts the payment a held purchase received as paying for the \
        course: it turns `completed` and unlocks. Written to the audit trail with the reason.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(("purchaseId" = String, Path, format = Uuid, description = "The purchase's id; one that is not a UUID is not found.")),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "Accepted.", body = ResolvedResponse),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::PurchaseNotFound),
        (status = 409, response = doc::NotHeld),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn accept_held(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    path: web::Path<String>,
    body: web::Json<ResolveBody>,
) -> Result<HttpResponse, ApiError> {
    let id = purchase_id(&path)?;
    let purchase = state
        .services
        .accept_held(Operator::Admin(&actor.0), id, &body.reason)
        .await?;
    resolved(
        HttpResponse::Ok(),
        "Held purchase accepted: the course is unlocked.",
        &purchase,
    )
}

/// `POST /api/v1/admin/purchases/{purchaseId}/refund`: 202, as a refund is confirmed by the
/// payment provider (at once for cards; the status turns `refunded` then).
#[utoipa::path(
    post,
    path = "/api/v1/admin/purchases/{purchaseId}/refund",
    tag = "admin",
    summary = "Refund a held purchase",
    description = "Admins only. Refunds everything a held purchase captured through the payment \
        provider; it turns `refunded` when the provider confirms. Written to the audit trail \
        with the reason.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(("purchaseId" = String, Path, format = Uuid, description = "The purchase's id; one that is not a UUID is not found.")),
    request_body = ResolveBody,
    responses(
        (status = 202, description = "Refund requested.", body = ResolvedResponse,
            example = json!({"success": true, "message": "Held purchase refunded.", "data": {"purchase": {
                "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                "courseId": "5d2c1f0e-8a3b-4c6d-9e7f-1a2b3c4d5e6f",
                "userId": "0b5f8a4e-4c1e-4d0a-9a57-3f1c2b7d9e10",
                "status": "refunded",
                "amountCents": 1999,
                "currency": "USD",
                "refundedCents": 999,
                "createdAt": "2025-01-01T12:00:00Z",
                "updatedAt": "2025-01-01T12:30:00Z"
            }}})),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::PurchaseNotFound),
        (status = 409, description = "Not held for review, nothing to refund, or another refund of it under way.", body = ErrorEnvelope,
            examples(
                ("NOT_HELD" = (value = json!(doc::example(409, "NOT_HELD", "This purchase is not held for review: it never was, or it was already resolved.")))),
                ("NOT_REFUNDABLE" = (value = json!(doc::example(409, "NOT_REFUNDABLE", "This purchase cannot be refunded: there is no payment to refund.")))),
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
pub async fn refund_held(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    path: web::Path<String>,
    body: web::Json<ResolveBody>,
) -> Result<HttpResponse, ApiError> {
    let id = purchase_id(&path)?;
    let purchase = state
        .services
        .refund_held(Operator::Admin(&actor.0), id, &body.reason)
        .await?;
    resolved(
        HttpResponse::Accepted(),
        "Held purchase refunded.",
        &purchase,
    )
}

/// The answer to a resolution of a held purchase: the purchase as it is now.
fn resolved(
    status: actix_web::HttpResponseBuilder,
    message: &'static str,
    purchase: &Purchase,
) -> Result<HttpResponse, ApiError> {
    json_response(
        status,
        &ResolvedResponse {
            success: true,
            message,
            data: ResolvedData {
                purchase: PurchaseDto::from(purchase),
            },
        },
    )
}

/// `GET /api/v1/admin/audit?page=&limit=`
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit",
    tag = "admin",
    summary = "The audit trail",
    description = "Admins only. Every refund, review decision, replay and role change: who, \
        when, what, why; newest first.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(AdminPageQuery),
    responses(
        (status = 200, description = "One page of the audit trail.", body = AuditResponse),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn audit(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    query: web::Query<AdminPageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_of(query.page, query.limit);
    let result = state
        .services
        .audit_trail(Operator::Admin(&actor.0), page)
        .await?;
    json_response(
        HttpResponse::Ok(),
        &AuditResponse {
            success: true,
            data: result.items.iter().map(AuditEntryDto::from).collect(),
            pagination: Pagination::of(page, result.total),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(outcome: Option<&str>, since: Option<&str>) -> EventsQuery {
        EventsQuery {
            outcome: outcome.map(str::to_owned),
            since: since.map(str::to_owned),
            page: None,
            limit: None,
        }
    }

    #[test]
    fn the_events_filter_reads_every_outcome_and_an_rfc3339_time() {
        for outcome in EventOutcome::ALL {
            let filter = query(Some(outcome.as_str()), None).filter().unwrap();
            assert_eq!(filter.outcome, Some(outcome));
        }
        let filter = query(Some(" FAILED "), Some("2025-01-02T03:04:05+01:00"))
            .filter()
            .unwrap();
        assert_eq!(filter.outcome, Some(EventOutcome::Failed));
        assert_eq!(
            filter.since.map(OffsetDateTime::unix_timestamp),
            Some(1_735_783_445)
        );
        // A form's empty fields mean no filter.
        assert_eq!(
            query(Some(""), Some(" ")).filter().unwrap(),
            EventFilter::default()
        );
    }

    #[test]
    fn a_bad_outcome_and_a_bad_time_are_both_named() {
        let err = query(Some("duplicate"), Some("yesterday"))
            .filter()
            .unwrap_err();
        assert_eq!(err.code, "VALIDATION_ERROR");
        let fields: Vec<&str> = err.errors.iter().map(|e| e.field.as_ref()).collect();
        assert_eq!(fields, ["outcome", "since"]);
    }

    #[test]
    fn actors_have_a_kind_and_only_users_an_id() {
        let id = lms_domain::UserId::from_uuid(uuid::Uuid::new_v4());
        let user = serde_json::to_value(AuditActorDto::from(AuditActor::User(id))).unwrap();
        assert_eq!(
            user,
            serde_json::json!({"kind": "user", "userId": id.to_string()})
        );
        for (actor, kind) in [
            (AuditActor::Operator, "operator"),
            (AuditActor::System, "system"),
        ] {
            let json = serde_json::to_value(AuditActorDto::from(actor)).unwrap();
            assert_eq!(json, serde_json::json!({"kind": kind, "userId": null}));
        }
    }
}
