//! The REST adapter: actix-web routes over the application's use cases.
//!
//! Status codes and the JSON error envelope are decided here and nowhere else.
//! [`run`] starts the server the same way for the binary and for the API tests.

pub mod auth;
pub mod dto;
pub mod error;
pub mod limits;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod session_key;
pub mod storefront;

pub use session_key::SessionKey;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use auth::JwtKeys;
use ipnet::IpNet;
use limits::{LimiterClock, Limiters, RateLimits};
use lms_use_cases::Services;
use std::fmt;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Request body limits.
pub const JSON_LIMIT: usize = 16 * 1024;
pub const WEBHOOK_LIMIT: usize = 256 * 1024;

/// HTTP-level settings (everything else belongs to the adapters behind `Services`).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Mark the session cookie `Secure` (and send HSTS).
    pub cookie_secure: bool,
    /// Frontend origins allowed to call with credentials.
    pub cors_origins: Vec<String>,
    /// Where the frontend shows a successful purchase; `{CHECKOUT_SESSION_ID}` placeholders
    /// are dropped when a free course completes without any session.
    pub success_url: String,
    pub json_limit: usize,
    pub webhook_limit: usize,
    pub shutdown_timeout: Duration,
    /// Worker threads; `None` for half the cores (at least one).
    pub workers: Option<usize>,
    /// Abuse limits on sign-in and sign-up; on by default ([`RateLimits::default`]),
    /// [`RateLimits::off`] turns them off.
    pub rate_limits: RateLimits,
    /// Reverse proxies whose `X-Forwarded-For` names the client (addresses or CIDR networks,
    /// [`limits::parse_networks`]). Empty by default: the TCP peer is the client.
    pub trusted_proxies: Vec<IpNet>,
}

impl ApiSettings {
    pub fn new(success_url: impl Into<String>) -> Self {
        Self {
            cookie_secure: true,
            cors_origins: Vec::new(),
            success_url: success_url.into(),
            json_limit: JSON_LIMIT,
            webhook_limit: WEBHOOK_LIMIT,
            shutdown_timeout: Duration::from_secs(30),
            workers: None,
            rate_limits: RateLimits::default(),
            trusted_proxies: Vec::new(),
        }
    }

    /// The success URL without the `session_id={CHECKOUT_SESSION_ID}` query parameter.
    pub fn success_url_without_session(&self) -> String {
        let Some((base, query)) = self.success_url.split_once('?') else {
            return self.success_url.clone();
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.is_empty() && !pair.contains("{CHECKOUT_SESSION_ID}"))
            .collect();
        if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub services: Arc<Services>,
    pub jwt: JwtKeys,
    pub settings: Arc<ApiSettings>,
    pub started_at: Instant,
    /// The sign-in and sign-up limiters, shared by every worker.
    pub limits: Arc<Limiters>,
}

impl fmt::Debug for ApiState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    pub fn new(services: Arc<Services>, jwt_secret: &[u8], settings: ApiSettings) -> Self {
        Self {
            services,
            jwt: JwtKeys::new(jwt_secret),
            limits: Arc::new(Limiters::new(
                &settings.rate_limits,
                LimiterClock::monotonic(),
            )),
            settings: Arc::new(settings),
            started_at: Instant::now(),
        }
    }

    /// Runs the limiters on `clock` (tests pass a manual one), starting them afresh.
    pub fn with_limiter_clock(mut self, clock: LimiterClock) -> Self {
        self.limits = Arc::new(Limiters::new(&self.settings.rate_limits, clock));
        self
    }

    /// The client address of a request, as the limits key it.
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> std::net::IpAddr {
        limits::client_ip(req, &self.settings.trusted_proxies)
    }
}

/// Registers the routes, extractor configs and the 404 fallback on a service config.
pub fn configure(cfg: &mut web::ServiceConfig, state: &ApiState) {
    cfg.app_data(web::Data::new(state.clone()))
        .app_data(
            web::JsonConfig::default()
                .limit(state.settings.json_limit)
                .error_handler(error::json_error),
        )
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .configure(|cfg| routes::configure(cfg, &state.settings))
        .configure(storefront::configure)
        .default_service(web::to(error::not_found));
}

/// Starts the server on an already bound listener (port 0 in tests).
///
/// # Errors
/// When the listener cannot be used.
pub fn run(listener: TcpListener, state: ApiState) -> std::io::Result<Server> {
    let settings = Arc::clone(&state.settings);
    let server = HttpServer::new(move || {
        App::new()
            .configure(|cfg| configure(cfg, &state))
            .wrap(middleware::cors(&state.settings.cors_origins))
            .wrap(middleware::security_headers(state.settings.cookie_secure))
            .wrap(ErrorHandlers::new().default_handler(error::envelope_fallback))
            .wrap(from_fn(middleware::request_id))
    })
    .listen(listener)?
    .shutdown_timeout(settings.shutdown_timeout.as_secs());
    let workers = settings.workers.unwrap_or_else(default_workers);
    Ok(server.workers(workers).run())
}

/// Half the cores, at least one. On 2 cores (`lms-bench compare --postgres`, the bench's
/// README, "HTTP workers on 2 cores"), two workers answer status reads faster than one, but
/// webhook deliveries slower and at more CPU each (their grouped commits spread over twice the
/// lanes): one worker is the better trade for the path that moves money. The cores left
/// over run the password hashing pool and often the database itself.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_url_loses_only_the_session_placeholder() {
        let url = |u: &str| ApiSettings::new(u).success_url_without_session();
        assert_eq!(
            url("http://localhost:5173/payment/success?session_id={CHECKOUT_SESSION_ID}"),
            "http://localhost:5173/payment/success"
        );
        assert_eq!(
            url("https://x.io/ok?a=1&session_id={CHECKOUT_SESSION_ID}&b=2"),
            "https://x.io/ok?a=1&b=2"
        );
        assert_eq!(url("https://x.io/ok"), "https://x.io/ok");
    }
}
