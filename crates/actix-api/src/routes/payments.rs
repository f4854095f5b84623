use crate::auth::AuthenticatedUser;
use crate::dto::{CourseDto, PurchaseDto};
use crate::error::ApiError;
use crate::routes::courses::course_id;
use crate::ApiState;
use actix_web::{web, HttpRequest, HttpResponse};
use lms_domain::{Purchase, PurchaseId};
use lms_ports::GatewaySession;
use lms_use_cases::{CheckoutStarted, UseCaseError};
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutBody {
    course_id: String,
}

#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    session_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundBody {
    amount_cents: Option<i64>,
    reason: Option<String>,
}

/// The session as Stripe spells it (snake_case keys, lower-case currency, unix seconds): the
/// seed frontend reads `data.session.url`.
fn session_json(session: &GatewaySession) -> Value {
    json!({
        "id": session.id,
        "url": session.url,
        "status": session.status.as_str(),
        "payment_status": session.payment_status.as_str(),
        "amount_total": session.amount_total,
        "currency": session.currency.code().to_ascii_lowercase(),
        "expires_at": session.expires_at.unix_timestamp(),
        "metadata": session.metadata,
        "client_reference_id": session.purchase_id.map(|id| id.to_string()),
    })
}

/// A free enrolment, in the same shape: nothing to pay, straight to the success page.
fn free_session_json(purchase: &Purchase, success_url: String) -> Value {
    json!({
        "id": Value::Null,
        "url": success_url,
        "status": "complete",
        "payment_status": "no_payment_required",
        "amount_total": 0,
        "currency": purchase.price.currency().code().to_ascii_lowercase(),
        "expires_at": Value::Null,
        "metadata": {
            "purchase_id": purchase.id.to_string(),
            "course_id": purchase.course_id.to_string(),
            "user_id": purchase.user_id.to_string(),
        },
        "client_reference_id": purchase.id.to_string(),
    })
}

/// `POST /api/v1/payments/create-checkout-session`: 201 for a new session (or a free
/// enrolment), 200 when the user's open session is handed out again.
pub async fn create_checkout_session(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    body: web::Json<CheckoutBody>,
) -> Result<HttpResponse, ApiError> {
    let course = course_id(&body.course_id)?;
    let started = state.services.start_checkout(&actor.0, course).await?;
    let (mut response, message, session) = match &started {
        CheckoutStarted::Created { session, .. } => (
            HttpResponse::Created(),
            "Stripe checkout initiated successfully.",
            session_json(session),
        ),
        CheckoutStarted::Reused { session, .. } => (
            HttpResponse::Ok(),
            "Stripe checkout initiated successfully.",
            session_json(session),
        ),
        CheckoutStarted::FreeEnrollment { purchase } => (
            HttpResponse::Created(),
            "This course is free: you are enrolled.",
            free_session_json(purchase, state.settings.success_url_without_session()),
        ),
    };
    Ok(response.json(json!({
        "success": true,
        "message": message,
        "data": {
            "session": session,
            "purchase": PurchaseDto::from(started.purchase()),
        },
    })))
}

/// `POST /api/v1/payments/webhook`: the raw body and the signature header go to the use case,
/// which verifies before parsing. 2xx only once the event is safely stored (or is a duplicate,
/// ignored or not ours); 400 on a bad signature; 5xx otherwise so the gateway retries.
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
    Ok(HttpResponse::Ok().json(json!({"received": true})))
}

/// `GET /api/v1/payments/courses/{courseId}/purchase-status?session_id=`
pub async fn purchase_status(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
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
        .purchase_status(&actor.0, course, session_id)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "data": {
            "course": CourseDto::from(&view.course),
            "isPurchased": view.is_purchased(),
            "purchaseStatus": view.wire_status(),
            "purchase": view.purchase.as_ref().map(PurchaseDto::from),
        },
    })))
}

/// `GET /api/v1/payments/purchased-courses`: the course fields plus the purchase's.
pub async fn purchased_courses(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
) -> Result<HttpResponse, ApiError> {
    let items = state.services.purchased_courses(&actor.0).await?;
    let mut data = Vec::with_capacity(items.len());
    for item in &items {
        let mut entry =
            serde_json::to_value(CourseDto::from(&item.course)).map_err(ApiError::internal)?;
        if let Some(object) = entry.as_object_mut() {
            object.insert("purchaseId".to_owned(), json!(item.purchase.id.to_string()));
            object.insert("amountCents".to_owned(), json!(item.purchase.price.minor()));
            // What was paid, in the currency paid (the course price may have changed since).
            object.insert(
                "currency".to_owned(),
                json!(item.purchase.price.currency().code()),
            );
            object.insert(
                "purchasedAt".to_owned(),
                json!(item
                    .purchase
                    .created_at
                    .format(&Rfc3339)
                    .unwrap_or_default()),
            );
        }
        data.push(entry);
    }
    Ok(HttpResponse::Ok().json(json!({"success": true, "data": data})))
}

/// `POST /api/v1/payments/purchases/{purchaseId}/refund`: 202, the purchase turns `refunded`
/// when the gateway confirms.
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
    Ok(HttpResponse::Accepted().json(json!({
        "success": true,
        "message": "Refund requested.",
        "data": { "purchase": PurchaseDto::from(&purchase) },
    })))
}
