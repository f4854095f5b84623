//! The route table. Every resource answers a wrong method with the 405 envelope.

// Visible to the crate so `crate::openapi` can list the handlers' documentation.
pub(crate) mod admin;
pub(crate) mod courses;
pub(crate) mod health;
pub(crate) mod payments;
pub(crate) mod revenue;
pub(crate) mod users;

use crate::error::method_not_allowed;
use crate::ApiSettings;
use actix_web::web;

/// Registers every route under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig, settings: &ApiSettings) {
    let resource = |path: &str| web::resource(path).default_service(web::to(method_not_allowed));
    cfg.service(
        web::scope("/api/v1")
            .service(resource("/healthcheck").route(web::get().to(health::healthcheck)))
            .service(resource("/openapi.json").route(web::get().to(crate::openapi::serve)))
            .service(resource("/user/signup").route(web::post().to(users::sign_up)))
            .service(resource("/user/signin").route(web::post().to(users::sign_in)))
            .service(resource("/user/signout").route(web::post().to(users::sign_out)))
            .service(resource("/user/profile").route(web::get().to(users::profile)))
            .service(resource("/courses").route(web::post().to(courses::create)))
            .service(resource("/courses/published").route(web::get().to(courses::published)))
            .service(
                resource("/courses/{courseId}")
                    .route(web::get().to(courses::get))
                    .route(web::patch().to(courses::update)),
            )
            .service(
                resource("/payments/create-checkout-session")
                    .route(web::post().to(payments::create_checkout_session)),
            )
            .service(
                resource("/payments/webhook")
                    // Raw bytes, verified before any parsing: no JSON extractor here.
                    .app_data(web::PayloadConfig::new(settings.webhook_limit))
                    .route(web::post().to(payments::webhook)),
            )
            .service(
                resource("/payments/courses/{courseId}/purchase-status")
                    .route(web::get().to(payments::purchase_status)),
            )
            .service(
                resource("/payments/purchased-courses")
                    .route(web::get().to(payments::purchased_courses)),
            )
            .service(
                resource("/payments/purchases").route(web::get().to(payments::purchase_history)),
            )
            .service(
                resource("/payments/purchases/{purchaseId}/refund")
                    .route(web::post().to(payments::refund)),
            )
            .service(
                resource("/payments/purchases/{purchaseId}/refund-request")
                    // An optional JSON body, read as bytes: the same limit as JSON bodies.
                    .app_data(web::PayloadConfig::new(settings.json_limit))
                    .route(web::post().to(payments::refund_request)),
            )
            .service(resource("/instructor/revenue").route(web::get().to(revenue::revenue)))
            .service(resource("/admin/events").route(web::get().to(admin::events)))
            .service(resource("/admin/events/{eventId}").route(web::get().to(admin::event)))
            .service(
                resource("/admin/events/{eventId}/replay").route(web::post().to(admin::replay)),
            )
            .service(resource("/admin/purchases/held").route(web::get().to(admin::held_purchases)))
            .service(
                resource("/admin/purchases/{purchaseId}/accept")
                    .route(web::post().to(admin::accept_held)),
            )
            .service(
                resource("/admin/purchases/{purchaseId}/refund")
                    .route(web::post().to(admin::refund_held)),
            )
            .service(resource("/admin/audit").route(web::get().to(admin::audit))),
    );
}
