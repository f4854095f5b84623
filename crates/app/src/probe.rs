//! `lms-app healthcheck`: asks a running instance for its health, for container probes.

use crate::HttpSettings;
use anyhow::{bail, Context};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The health route of the instance this configuration describes, reached over loopback when
/// it listens on every interface.
pub fn healthcheck_url(http: &HttpSettings) -> String {
    let host = match http.host {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let authority = match host {
        IpAddr::V4(ip) => format!("{ip}:{}", http.port),
        IpAddr::V6(ip) => format!("[{ip}]:{}", http.port),
    };
    format!("http://{authority}/api/v1/healthcheck")
}

/// `Ok` when `url` answers 200 within `timeout`.
///
/// # Errors
/// What went wrong: unreachable, timed out, or the status it answered.
pub async fn probe(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .context("building the HTTP client")?;
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("no answer from {url}"))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        bail!("{url} answered {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(host: IpAddr, port: u16) -> HttpSettings {
        HttpSettings {
            host,
            port,
            cors_origins: Vec::new(),
            cookie_secure: true,
            trusted_proxies: Vec::new(),
            shutdown_timeout: Duration::from_secs(1),
            workers: None,
        }
    }

    #[test]
    fn every_interface_is_probed_over_loopback() {
        assert_eq!(
            healthcheck_url(&http(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 4000)),
            "http://127.0.0.1:4000/api/v1/healthcheck"
        );
        assert_eq!(
            healthcheck_url(&http(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 9)),
            "http://[::1]:9/api/v1/healthcheck"
        );
        assert_eq!(
            healthcheck_url(&http(
                "10.1.2.3"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                80
            )),
            "http://10.1.2.3:80/api/v1/healthcheck"
        );
    }
}
