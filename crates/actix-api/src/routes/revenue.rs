//! `GET /api/v1/instructor/revenue`: the revenue report, as JSON or as CSV.

use crate::auth::AuthenticatedUser;
use crate::dto::json_response;
use crate::error::{ApiError, FieldError};
use crate::openapi as doc;
use crate::ApiState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use lms_domain::UserId;
use lms_ports::RevenueLine;
use lms_use_cases::{RevenueReport, RevenueRequest, RevenueTotals};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};

/// The CSV's header line: one column per figure, amounts in minor units.
pub const CSV_HEADER: &str = "course_id,course_title,instructor_id,currency,purchases,gross,discounts,tax,paid,refunds,disputes_lost,net";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct RevenueQuery {
    /// Sales at or after this: a date `YYYY-MM-DD` (its start, UTC) or an RFC 3339 instant.
    /// Unbounded when absent or empty.
    #[param(example = "2026-03-01")]
    from: Option<String>,
    /// Sales before this: a date `YYYY-MM-DD` (that whole day included, UTC) or an RFC 3339
    /// instant (excluded). Unbounded when absent or empty.
    #[param(example = "2026-03-31")]
    to: Option<String>,
    /// One instructor's courses (admins; an instructor may only name themselves).
    #[param(format = Uuid)]
    instructor_id: Option<String>,
    /// `csv` for the CSV (as `Accept: text/csv` does), `json` for JSON whatever `Accept` says.
    #[param(example = "csv")]
    format: Option<String>,
}

/// The sales of one course in one currency; amounts in minor units of `currency`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevenueLineDto {
    #[schema(format = Uuid)]
    course_id: String,
    #[schema(example = "Rust for web backends")]
    course_title: String,
    #[schema(format = Uuid)]
    instructor_id: String,
    /// ISO 4217, upper case: the currency the purchases were paid in.
    #[schema(example = "USD")]
    currency: &'static str,
    /// Paid purchases (held, unpaid and free ones earn nothing and are not counted).
    #[schema(example = 3)]
    purchases: u64,
    /// List prices billed.
    #[schema(example = 6000)]
    gross_cents: i64,
    /// Taken off by promotion codes.
    #[schema(example = 500)]
    discount_cents: i64,
    /// Tax billed.
    #[schema(example = 400)]
    tax_cents: i64,
    /// What the customers paid.
    #[schema(example = 5900)]
    paid_cents: i64,
    /// Given back by refunds.
    #[schema(example = 500)]
    refund_cents: i64,
    /// Taken back by lost disputes.
    #[schema(example = 2400)]
    disputes_lost_cents: i64,
    /// What was kept, less the tax in it.
    #[schema(example = 3000)]
    net_cents: i64,
}

impl From<&RevenueLine> for RevenueLineDto {
    fn from(line: &RevenueLine) -> Self {
        Self {
            course_id: line.course_id.to_string(),
            course_title: line.course_title.clone(),
            instructor_id: line.instructor_id.to_string(),
            currency: line.currency.code(),
            purchases: line.purchases,
            gross_cents: line.gross,
            discount_cents: line.discounts,
            tax_cents: line.tax,
            paid_cents: line.paid,
            refund_cents: line.refunds,
            disputes_lost_cents: line.disputes_lost,
            net_cents: line.net,
        }
    }
}

/// The lines of one currency added up (currencies are never added together).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevenueTotalsDto {
    #[schema(example = "USD")]
    currency: &'static str,
    #[schema(example = 4)]
    purchases: u64,
    #[schema(example = 9000)]
    gross_cents: i64,
    #[schema(example = 500)]
    discount_cents: i64,
    #[schema(example = 400)]
    tax_cents: i64,
    #[schema(example = 8900)]
    paid_cents: i64,
    #[schema(example = 500)]
    refund_cents: i64,
    #[schema(example = 2400)]
    disputes_lost_cents: i64,
    #[schema(example = 6000)]
    net_cents: i64,
}

impl From<&RevenueTotals> for RevenueTotalsDto {
    fn from(totals: &RevenueTotals) -> Self {
        Self {
            currency: totals.currency.code(),
            purchases: totals.purchases,
            gross_cents: totals.gross,
            discount_cents: totals.discounts,
            tax_cents: totals.tax,
            paid_cents: totals.paid,
            refund_cents: totals.refunds,
            disputes_lost_cents: totals.disputes_lost,
            net_cents: totals.net,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevenueData {
    /// RFC 3339: the range's start as applied (`null`: unbounded).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    from: Option<OffsetDateTime>,
    /// RFC 3339: the range's end as applied, excluded (`null`: unbounded).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    to: Option<OffsetDateTime>,
    /// Per course and currency, by course title.
    lines: Vec<RevenueLineDto>,
    /// Per currency, by currency code.
    totals: Vec<RevenueTotalsDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevenueResponse {
    #[schema(example = true)]
    success: bool,
    data: RevenueData,
}

/// One end of the range: a date means its start (`from`) or the start of the next day (`to`,
/// so that the day is included); an instant is itself.
fn bound(
    field: &'static str,
    raw: Option<&str>,
    end: bool,
) -> Result<Option<OffsetDateTime>, FieldError> {
    let Some(raw) = raw.map(str::trim).filter(|raw| !raw.is_empty()) else {
        return Ok(None);
    };
    if let Ok(date) = Date::parse(raw, format_description!("[year]-[month]-[day]")) {
        let start = date.midnight().assume_utc();
        return Ok(Some(if end { start + Duration::DAY } else { start }));
    }
    OffsetDateTime::parse(raw, &Rfc3339).map(Some).map_err(|_| {
        FieldError::new(
            field,
            "must be a date (YYYY-MM-DD) or an RFC 3339 time such as 2026-03-01T09:00:00Z",
        )
    })
}

/// What the query asks for, or every field it got wrong.
fn request_of(query: &RevenueQuery) -> Result<RevenueRequest, ApiError> {
    let mut errors = Vec::new();
    let mut keep = |result: Result<Option<OffsetDateTime>, FieldError>| {
        result.unwrap_or_else(|error| {
            errors.push(error);
            None
        })
    };
    let from = keep(bound("from", query.from.as_deref(), false));
    let to = keep(bound("to", query.to.as_deref(), true));
    // As written, `to` as a date names the start of its day: `from` a later day is after it,
    // although the range (which includes the day) would merely be empty.
    let to_as_written = bound("to", query.to.as_deref(), false).ok().flatten();
    if let (Some(from), Some(to)) = (from, to_as_written) {
        if from > to {
            errors.push(FieldError::new("from", "must not be after `to`"));
        }
    }
    let instructor = match query.instructor_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => raw.parse::<UserId>().map(Some).unwrap_or_else(|_| {
            errors.push(FieldError::new(
                "instructorId",
                "must be a user id (a UUID)",
            ));
            None
        }),
    };
    if errors.is_empty() {
        Ok(RevenueRequest {
            instructor,
            from,
            to,
        })
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Whether the answer is CSV: `format` decides when given, else `Accept` naming `text/csv`.
fn wants_csv(query: &RevenueQuery, req: &HttpRequest) -> Result<bool, ApiError> {
    match query.format.as_deref().map(str::trim) {
        Some(format) if format.eq_ignore_ascii_case("csv") => return Ok(true),
        Some(format) if format.eq_ignore_ascii_case("json") => return Ok(false),
        None | Some("") => {}
        Some(_) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "format",
                "must be csv or json",
            )]))
        }
    }
    Ok(req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|entry| entry.split(';').next())
        .any(|media| media.trim().eq_ignore_ascii_case("text/csv")))
}

/// A title a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return) gets a leading `'`, so that a course title cannot become a formula in the
/// instructor's spreadsheet.
fn defused(title: &str) -> std::borrow::Cow<'_, str> {
    if title.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{title}").into()
    } else {
        title.into()
    }
}

/// The report as CSV (RFC 4180: fields quoted when they need it, CRLF-ended records): the
/// header line, then one record per line of the report.
///
/// # Errors
/// Only if the writer failed, which writing into memory does not.
pub fn csv_of(lines: &[RevenueLine]) -> Result<String, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(128 * (lines.len() + 1)));
    let header = CSV_HEADER.split(',');
    writer.write_record(header)?;
    for line in lines {
        let amounts = [
            line.gross,
            line.discounts,
            line.tax,
            line.paid,
            line.refunds,
            line.disputes_lost,
            line.net,
        ];
        let mut record = vec![
            line.course_id.to_string(),
            defused(&line.course_title).into_owned(),
            line.instructor_id.to_string(),
            line.currency.code().to_owned(),
            line.purchases.to_string(),
        ];
        record.extend(amounts.iter().map(i64::to_string));
        writer.write_record(&record)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|err| csv::Error::from(err.into_error()))?;
    // Every field written is a `str`.
    String::from_utf8(bytes).map_err(|err| csv::Error::from(std::io::Error::other(err)))
}

/// `GET /api/v1/instructor/revenue?from=&to=&instructorId=&format=`
#[utoipa::path(
    get,
    path = "/api/v1/instructor/revenue",
    tag = "instructor",
    summary = "Revenue report",
    description = "Per course and currency, the paid purchases and their gross, discounts, \
        tax, what was paid, refunds, disputes lost and net, for the sales (by time of payment) \
        in `[from, to)`; per currency, their totals. An instructor sees their own courses, an \
        admin every course or one instructor's (`instructorId`). `Accept: text/csv` or \
        `format=csv` gives the lines as CSV (amounts in minor units, RFC 4180 quoting; a \
        title a spreadsheet would take for a formula is prefixed with `'`).",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(RevenueQuery),
    responses(
        (status = 200, description = "The report.",
            content(
                (RevenueResponse = "application/json"),
                (String = "text/csv", example = json!("course_id,course_title,instructor_id,currency,purchases,gross,discounts,tax,paid,refunds,disputes_lost,net\r\n5d2c1f0e-8a3b-4c6d-9e7f-1a2b3c4d5e6f,\"Rust, for the web\",7c6b5a49-3827-4615-9504-f3e2d1c0b9a8,USD,3,6000,500,400,5900,500,2400,3000\r\n")),
            ),
            headers(("Content-Disposition" = String, description = "With CSV: `attachment; filename=\"revenue.csv\"`."))),
        (status = 401, response = doc::Unauthorized),
        (status = 403, description = "A student, or an instructor naming another instructor.",
            body = crate::openapi::ErrorEnvelope,
            example = json!(doc::example(403, "FORBIDDEN", "You are not allowed to do this."))),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn revenue(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    req: HttpRequest,
    query: web::Query<RevenueQuery>,
) -> Result<HttpResponse, ApiError> {
    let request = request_of(&query)?;
    let csv = wants_csv(&query, &req)?;
    let report: RevenueReport = state.services.revenue(&actor.0, request).await?;
    if csv {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"revenue.csv\"",
            ))
            .body(csv_of(&report.lines).map_err(ApiError::internal)?));
    }
    json_response(
        HttpResponse::Ok(),
        &RevenueResponse {
            success: true,
            data: RevenueData {
                from: request.from,
                to: request.to,
                lines: report.lines.iter().map(RevenueLineDto::from).collect(),
                totals: report.totals.iter().map(RevenueTotalsDto::from).collect(),
            },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lms_domain::{CourseId, Currency};

    fn line(title: &str) -> RevenueLine {
        RevenueLine {
            course_id: CourseId::from_uuid(uuid::Uuid::from_u128(1)),
            course_title: title.to_owned(),
            instructor_id: UserId::from_uuid(uuid::Uuid::from_u128(2)),
            currency: Currency::USD,
            purchases: 3,
            gross: 6000,
            discounts: 500,
            tax: 400,
            paid: 5900,
            refunds: 500,
            disputes_lost: 2400,
            net: 3000,
        }
    }

    /// The course title's field in a one-line report.
    fn field(title: &str) -> String {
        let csv = csv_of(&[line(title)]).unwrap();
        let record = csv.split_once("\r\n").unwrap().1;
        let after_id = record.split_once(',').unwrap().1;
        let end = after_id
            .rfind(",00000000-0000-0000-0000-000000000002,")
            .unwrap();
        after_id[..end].to_owned()
    }

    #[test]
    fn fields_are_quoted_exactly_when_rfc_4180_needs_it() {
        assert_eq!(field("Rust for the web"), "Rust for the web");
        assert_eq!(field("Rust, for the web"), "\"Rust, for the web\"");
        assert_eq!(field("The \"Rust\" book"), "\"The \"\"Rust\"\" book\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\rlf"), "\"cr\rlf\"");
        assert_eq!(field(""), "");
        assert_eq!(field("Ünïcödé ✓"), "Ünïcödé ✓");
    }

    #[test]
    fn a_title_a_spreadsheet_would_run_is_defused() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("-1"), "'-1");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("a=b"), "a=b");
    }

    #[test]
    fn the_csv_is_a_header_and_one_crlf_record_per_line() {
        let csv = csv_of(&[line("Rust, \"advanced\""), line("Go")]).unwrap();
        assert_eq!(
            csv,
            format!(
                "{CSV_HEADER}\r\n\
                 00000000-0000-0000-0000-000000000001,\"Rust, \"\"advanced\"\"\",00000000-0000-0000-0000-000000000002,USD,3,6000,500,400,5900,500,2400,3000\r\n\
                 00000000-0000-0000-0000-000000000001,Go,00000000-0000-0000-0000-000000000002,USD,3,6000,500,400,5900,500,2400,3000\r\n"
            )
        );
        assert_eq!(csv_of(&[]).unwrap(), format!("{CSV_HEADER}\r\n"));
    }

    #[test]
    fn a_date_is_a_whole_utc_day_and_an_instant_is_itself() {
        use time::macros::datetime;
        assert_eq!(
            bound("from", Some("2026-03-01"), false),
            Ok(Some(datetime!(2026-03-01 00:00 UTC)))
        );
        assert_eq!(
            bound("to", Some("2026-03-31"), true),
            Ok(Some(datetime!(2026-04-01 00:00 UTC)))
        );
        assert_eq!(
            bound("to", Some("2026-03-31T12:30:00+02:00"), true),
            Ok(Some(datetime!(2026-03-31 10:30 UTC)))
        );
        assert_eq!(bound("from", Some("  "), false), Ok(None));
        assert_eq!(bound("from", None, false), Ok(None));
        for bad in ["2026-13-01", "yesterday", "2026-03-01 10:00", "1711000000"] {
            assert_eq!(
                bound("from", Some(bad), false).unwrap_err().field,
                "from",
                "{bad}"
            );
        }
    }
}
