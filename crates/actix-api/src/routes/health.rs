use crate::ApiState;
use actix_web::{web, HttpResponse};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

/// Resident memory of this process in bytes (Linux), for the health report.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `GET /api/v1/healthcheck`: 200 when the store answers, 503 (same shape) when not.
///
/// The route is public, so it says only whether things work: no paths, URLs, versions or pool
/// counts (the store's own detail goes to the log at start-up).
pub async fn healthcheck(state: web::Data<ApiState>) -> HttpResponse {
    let report = state.services.health().await;
    let healthy = report.is_healthy();
    let health = |ok: bool| if ok { "healthy" } else { "unhealthy" };
    let body = json!({
        "status": if healthy { "OK" } else { "ERROR" },
        "timeStamp": report.checked_at.format(&Rfc3339).unwrap_or_default(),
        "services": {
            "databases": {
                "status": health(healthy),
                "details": {
                    "isConnected": healthy,
                    "readyState": if healthy { "connected" } else { "disconnected" },
                },
            },
            "server": {
                "status": health(true),
                "uptime": state.started_at.elapsed().as_secs_f64(),
                "memoryUsage": { "rss": resident_memory_bytes().unwrap_or(0) },
            },
        },
    });
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
