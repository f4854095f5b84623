//! The demo storefront: a static page and its script and style, the reference client of the REST
//! contract. Embedded in the binary (`include_str!`), no build step, no CDN, no inline script.
//!
//! `GET /`, `/payment/success`, `/payment/cancel`, `/orders` (the buyer's order history),
//! `/revenue` (instructors' and admins' revenue report) and `/operations` (admins' review queue)
//! all serve the same page; the script decides what to show from the path. The page gets its own CSP (`default-src 'self'` and nothing
//! looser); every other response keeps the API's `default-src 'none'` from the middleware, which
//! only adds a header a response does not set itself.

use crate::error::method_not_allowed;
use actix_web::http::header;
use actix_web::{web, HttpResponse};

const INDEX_HTML: &str = include_str!("../storefront/index.html");
const APP_JS: &str = include_str!("../storefront/app.js");
const STYLE_CSS: &str = include_str!("../storefront/style.css");
const FAVICON_SVG: &str = include_str!("../storefront/favicon.svg");

/// The page's content security policy: same-origin script, style and `fetch` only.
pub const PAGE_CSP: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/// Paths that serve the page.
pub const PAGE_PATHS: [&str; 6] = [
    "/",
    "/payment/success",
    "/payment/cancel",
    "/orders",
    "/revenue",
    "/operations",
];
pub const SCRIPT_PATH: &str = "/storefront/app.js";
pub const STYLE_PATH: &str = "/storefront/style.css";
pub const ICON_PATH: &str = "/storefront/favicon.svg";

/// Registers the page and its three assets. Anything else under `/storefront/` falls through to
/// the app's 404 envelope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = |path: &str| web::resource(path).default_service(web::to(method_not_allowed));
    for path in PAGE_PATHS {
        cfg.service(resource(path).route(web::get().to(page)));
    }
    cfg.service(resource(SCRIPT_PATH).route(web::get().to(script)))
        .service(resource(STYLE_PATH).route(web::get().to(style)))
        .service(resource(ICON_PATH).route(web::get().to(icon)));
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .body(INDEX_HTML)
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(APP_JS)
}

async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(STYLE_CSS)
}

async fn icon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .body(FAVICON_SVG)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::{error, middleware};
    use actix_web::http::StatusCode;
    use actix_web::middleware::ErrorHandlers;
    use actix_web::test::{call_service, init_service, read_body, TestRequest};
    use actix_web::App;

    /// A response, read whole.
    struct Res {
        status: StatusCode,
        headers: header::HeaderMap,
        body: String,
    }

    impl Res {
        fn header(&self, name: &str) -> &str {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        }
    }

    /// The storefront inside what the server puts around it (the app's 404, the security
    /// headers, the envelope fallback), with no use case behind it: it needs none. The whole
    /// server serving it is checked by the app's API suite.
    async fn call(request: TestRequest) -> Res {
        let app = init_service(
            App::new()
                .configure(configure)
                .default_service(web::to(error::not_found))
                .wrap(middleware::security_headers(true))
                .wrap(ErrorHandlers::new().default_handler(error::envelope_fallback)),
        )
        .await;
        let res = call_service(&app, request.to_request()).await;
        let status = res.status();
        let headers = res.headers().clone();
        let body = String::from_utf8(read_body(res).await.to_vec()).unwrap();
        Res {
            status,
            headers,
            body,
        }
    }

    #[actix_web::test]
    async fn pages_are_the_same_html_with_a_strict_csp() {
        for path in PAGE_PATHS {
            let res = call(TestRequest::get().uri(&format!("{path}?session_id=cs_test_1"))).await;
            assert_eq!(res.status, 200, "{path}");
            assert_eq!(
                res.header("content-type"),
                "text/html; charset=utf-8",
                "{path}"
            );
            assert_eq!(res.header("content-security-policy"), PAGE_CSP);
            assert_eq!(res.header("x-content-type-options"), "nosniff");
            assert_eq!(res.header("x-frame-options"), "DENY");
            assert_eq!(res.body, INDEX_HTML, "{path}");
        }
    }

    #[actix_web::test]
    async fn assets_have_their_types_and_keep_the_api_csp() {
        for (path, content_type, body) in [
            (SCRIPT_PATH, "text/javascript; charset=utf-8", APP_JS),
            (STYLE_PATH, "text/css; charset=utf-8", STYLE_CSS),
            (ICON_PATH, "image/svg+xml", FAVICON_SVG),
        ] {
            let res = call(TestRequest::get().uri(path)).await;
            assert_eq!(res.status, 200, "{path}");
            assert_eq!(res.header("content-type"), content_type);
            assert_eq!(
                res.header("content-security-policy"),
                "default-src 'none'; frame-ancestors 'none'"
            );
            assert_eq!(res.body, body);
        }
    }

    #[actix_web::test]
    async fn unknown_storefront_file_is_the_404_envelope() {
        let res = call(TestRequest::get().uri("/storefront/x")).await;
        assert_eq!(res.status, 404);
        assert!(res.header("content-type").starts_with("application/json"));
        let body: serde_json::Value = serde_json::from_str(&res.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "success": false,
                "status": "fail",
                "message": "Route not found.",
                "code": "NOT_FOUND",
            })
        );
    }

    #[actix_web::test]
    async fn wrong_method_on_the_page_is_the_405_envelope() {
        let res = call(TestRequest::post().uri("/")).await;
        assert_eq!(res.status, 405);
        let body: serde_json::Value = serde_json::from_str(&res.body).unwrap();
        assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
    }

    #[test]
    fn the_page_loads_only_same_origin_files_and_no_inline_script() {
        assert!(INDEX_HTML.contains(&format!("<script src=\"{SCRIPT_PATH}\" defer></script>")));
        assert!(INDEX_HTML.contains(&format!("href=\"{STYLE_PATH}\"")));
        assert!(INDEX_HTML.contains(&format!("href=\"{ICON_PATH}\"")));
        assert_eq!(
            INDEX_HTML.matches("<script").count(),
            1,
            "one external script"
        );
        assert!(!INDEX_HTML.contains("<style"), "no inline style");
        let handler = INDEX_HTML
            .split(|c: char| c.is_whitespace() || c == '<')
            .find(|word| word.starts_with("on") && word.contains('='));
        assert_eq!(handler, None, "no inline event handler");
        assert!(
            !INDEX_HTML.contains("//"),
            "no absolute or protocol-relative URL"
        );
        for id in [
            "signup-form",
            "signin-form",
            "courses",
            "purchase-status",
            "my-courses",
            "operations",
            "held-purchases",
            "ops-events",
            "audit-trail",
            "order-history",
            "revenue-lines",
        ] {
            assert!(INDEX_HTML.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(!APP_JS.contains("innerHTML"), "API text never becomes HTML");
    }
}
