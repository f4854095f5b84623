//! Runs the Stripe sandbox on its own, e.g. to point a locally running app at it:
//!
//! ```text
//! SANDBOX_WEBHOOK_URL=http://127.0.0.1:4000/api/v1/payments/webhook cargo run -p lms-stripe-sandbox
//! ```
//! then start the app with `STRIPE_API_BASE=http://127.0.0.1:12111`,
//! `STRIPE_SECRET_KEY=sk_test_sandbox` and `STRIPE_WEBHOOK_SECRET=whsec_sandbox`.
//!
//! `SANDBOX_HOST` (default `127.0.0.1`) is the address to listen on; `SANDBOX_PUBLIC_URL` is
//! where a browser reaches it when that differs (a published container port), for the hosted
//! pages' links. `SANDBOX_TAX_RATE_BPS` (default 0) is the flat tax rate, in basis points, of
//! sessions created with automatic tax; `SANDBOX_PRESENTMENT_CURRENCY` with `SANDBOX_FX_RATE`
//! (e.g. `eur` and `0.925`) presents sessions priced in another currency in that one, as
//! Adaptive Pricing would.

use lms_stripe_sandbox::{parse_tax_rate_bps, Presentment, Sandbox, SandboxConfig};
use std::net::{IpAddr, Ipv4Addr, TcpListener};

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match env("SANDBOX_PORT") {
        Some(port) => port
            .parse()
            .map_err(|_| std::io::Error::other("SANDBOX_PORT must be a port number"))?,
        None => 12111,
    };
    let host: IpAddr = match env("SANDBOX_HOST") {
        Some(host) => host.parse().map_err(|_| {
            std::io::Error::other("SANDBOX_HOST must be an IP address (e.g. 0.0.0.0)")
        })?,
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let tax_rate_bps = match env("SANDBOX_TAX_RATE_BPS") {
        Some(raw) => parse_tax_rate_bps(&raw)
            .map_err(|problem| std::io::Error::other(format!("SANDBOX_TAX_RATE_BPS {problem}")))?,
        None => 0,
    };
    let presentment =
        match (env("SANDBOX_PRESENTMENT_CURRENCY"), env("SANDBOX_FX_RATE")) {
            (None, None) => None,
            (Some(currency), Some(rate)) => {
                Some(Presentment::parse(&currency, &rate).map_err(|problem| {
                    std::io::Error::other(format!(
                        "SANDBOX_PRESENTMENT_CURRENCY, SANDBOX_FX_RATE: {problem}"
                    ))
                })?)
            }
            _ => return Err(std::io::Error::other(
                "SANDBOX_PRESENTMENT_CURRENCY and SANDBOX_FX_RATE go together: set both or neither",
            )),
        };
    let defaults = SandboxConfig::default();
    let config = SandboxConfig {
        secret_key: env("STRIPE_SECRET_KEY").unwrap_or(defaults.secret_key.clone()),
        webhook_secrets: env("STRIPE_WEBHOOK_SECRET")
            .map(|secrets| secrets.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or(defaults.webhook_secrets.clone()),
        webhook_url: env("SANDBOX_WEBHOOK_URL"),
        public_base_url: env("SANDBOX_PUBLIC_URL"),
        tax_rate_bps,
        presentment,
        ..defaults
    };
    let webhook_url = config.webhook_url.clone();
    let listener = TcpListener::bind((host, port))?;
    let address = listener.local_addr()?;
    let sandbox = Sandbox::start_on(listener, config).await?;
    println!(
        "Stripe sandbox listening on {address}, API at {}, hosted pages at {}",
        sandbox.base_url(),
        sandbox.page_base()
    );
    match webhook_url {
        Some(url) => println!("delivering signed webhooks to {url}"),
        None => println!("SANDBOX_WEBHOOK_URL is not set: events are kept, not delivered"),
    }
    tokio::signal::ctrl_c().await?;
    sandbox.stop().await;
    Ok(())
}
