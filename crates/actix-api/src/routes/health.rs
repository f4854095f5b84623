use crate::dto::wire_names;
use crate::ApiState;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use utoipa::openapi::schema::Object;
use utoipa::ToSchema;

fn overall_schema() -> Object {
    wire_names(["OK", "ERROR"], "OK")
}

fn health_schema() -> Object {
    wire_names(["healthy", "unhealthy"], "healthy")
}

fn ready_state_schema() -> Object {
    wire_names(["connected", "disconnected"], "connected")
}

/// The health report, in the original backend's shape, for 200 and 503 alike.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    #[schema(schema_with = overall_schema)]
    status: &'static str,
    /// RFC 3339, when the store was asked.
    #[schema(format = DateTime)]
    time_stamp: String,
    services: HealthServices,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthServices {
    databases: DatabaseHealth,
    server: ServerHealth,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseHealth {
    #[schema(schema_with = health_schema)]
    status: &'static str,
    details: DatabaseDetails,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseDetails {
    is_connected: bool,
    #[schema(schema_with = ready_state_schema)]
    ready_state: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerHealth {
    /// Always `healthy`: the server answered.
    #[schema(schema_with = health_schema)]
    status: &'static str,
    /// Seconds since start-up.
    #[schema(example = 3600.25)]
    uptime: f64,
    memory_usage: MemoryUsage,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryUsage {
    /// Resident memory in bytes (0 where the platform does not say).
    #[schema(example = 52_428_800)]
    rss: u64,
}

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
#[utoipa::path(
    get,
    path = "/api/v1/healthcheck",
    tag = "health",
    summary = "Health",
    description = "Public: whether the database answers. No paths, URLs, versions or pool counts.",
    responses(
        (status = 200, description = "The database answers.", body = HealthReport,
            example = json!({
                "status": "OK",
                "timeStamp": "2025-01-01T12:00:00Z",
                "services": {
                    "databases": {"status": "healthy", "details": {"isConnected": true, "readyState": "connected"}},
                    "server": {"status": "healthy", "uptime": 3600.25, "memoryUsage": {"rss": 52_428_800}},
                },
            })),
        (status = 503, description = "The database does not answer; same shape.", body = HealthReport,
            example = json!({
                "status": "ERROR",
                "timeStamp": "2025-01-01T12:00:00Z",
                "services": {
                    "databases": {"status": "unhealthy", "details": {"isConnected": false, "readyState": "disconnected"}},
                    "server": {"status": "healthy", "uptime": 3600.25, "memoryUsage": {"rss": 52_428_800}},
                },
            })),
    ),
)]
pub async fn healthcheck(state: web::Data<ApiState>) -> HttpResponse {
    let report = state.services.health().await;
    let healthy = report.is_healthy();
    let health = |ok: bool| if ok { "healthy" } else { "unhealthy" };
    let body = HealthReport {
        status: if healthy { "OK" } else { "ERROR" },
        time_stamp: report.checked_at.format(&Rfc3339).unwrap_or_default(),
        services: HealthServices {
            databases: DatabaseHealth {
                status: health(healthy),
                details: DatabaseDetails {
                    is_connected: healthy,
                    ready_state: if healthy { "connected" } else { "disconnected" },
                },
            },
            server: ServerHealth {
                status: health(true),
                uptime: state.started_at.elapsed().as_secs_f64(),
                memory_usage: MemoryUsage {
                    rss: resident_memory_bytes().unwrap_or(0),
                },
            },
        },
    };
    let response = if healthy {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    // The health route answers whatever happens; it has no error of its own to return.
    crate::dto::json_response(response, &body)
        .unwrap_or_else(|err| actix_web::ResponseError::error_response(&err))
}
