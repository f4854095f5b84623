//! The hosted checkout page: what Stripe Checkout's page does, minus the polish. No script,
//! no external asset: plain forms that work in any browser and in tests.
//!
//! Elements a test may rely on: `#product`, the summary (`#amount-subtotal`,
//! `#amount-discount` when a code took something off, `#amount-tax` with automatic tax,
//! `#conversion` when presented in another currency), `#amount-due`; the promotion code
//! field `#promotion-code` with its button `#apply-promotion-code` (only on a session that
//! allows codes) and `#promotion-code-applied` once one is; `#card_number` and `#pay` (with
//! nothing due there is no card field and `#pay` reads "Complete order"), `#bank-debit`,
//! `#cancel`; `#error` (role `alert`) for a declined card or a refused code; `#closed` for a
//! session no longer open. The receipt page (a charge's `receipt_url`) has `#receipt`,
//! `#receipt-amount` and `#receipt-refunded`.

use crate::http::error_response;
use crate::ledger::{PaymentMethod, PaymentOutcome, PROMOTION_CODES};
use crate::Inner;
use actix_web::{http::header, http::StatusCode, web, HttpResponse};
use serde_json::Value;
use std::sync::Arc;

type State = web::Data<Arc<Inner>>;

#[derive(serde::Deserialize)]
pub(crate) struct PayForm {
    method: String,
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    promotion_code: String,
}

/// The hosted page's address: `/checkout/pay/{session id}/{secret}`. Only the session's
/// `url` carries the secret, so knowing a session id is not enough to see or pay it.
#[derive(serde::Deserialize)]
pub(crate) struct PageLink {
    id: String,
    secret: String,
}

/// What an unknown session, a wrong secret and a link without one all get: Stripe answers
/// a mangled checkout link with "not found", never saying which part was wrong.
pub(crate) async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body("<h1>Unknown checkout session</h1>")
}

pub(crate) async fn show(link: web::Path<PageLink>, inner: State) -> HttpResponse {
    let session = {
        let mut ledger = inner.ledger();
        ledger.expire_due(inner.now());
        ledger.session_for_page(&link.id, &link.secret)
    };
    match session {
        Some(session) => render(&session, &link.secret, None),
        None => not_found().await,
    }
}

pub(crate) async fn submit(
    link: web::Path<PageLink>,
    form: web::Form<PayForm>,
    inner: State,
) -> HttpResponse {
    let PageLink {
        id: session_id,
        secret,
    } = link.into_inner();
    let Some(session) = inner.ledger().session_for_page(&session_id, &secret) else {
        return not_found().await;
    };
    let method = match form.method.as_str() {
        "card" => PaymentMethod::Card(form.card_number.clone()),
        "bank_debit" => PaymentMethod::BankDebit,
        "promotion_code" => return apply_code(&inner, &session_id, &secret, &form.promotion_code),
        "cancel" => return redirect(session["cancel_url"].as_str().unwrap_or("/")),
        _ => return render(&session, &secret, Some("Choose a payment method.")),
    };
    let outcome = inner.ledger().pay(&session_id, &method, inner.now());
    inner.new_events.notify_one();
    match outcome {
        Ok(PaymentOutcome::Paid | PaymentOutcome::NoPaymentRequired) => {
            redirect(&success_url(&session))
        }
        Ok(PaymentOutcome::Processing) => {
            let settle_inner = Arc::clone(&inner);
            let delay = inner.config.settlement_delay;
            let id = session_id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let now = settle_inner.now();
                if let Err(error) = settle_inner.ledger().settle(&id, true, now) {
                    tracing::warn!(%error, "sandbox bank debit could not settle");
                }
                settle_inner.new_events.notify_one();
            });
            redirect(&success_url(&session))
        }
        Ok(PaymentOutcome::Declined(message)) => render(&session, &secret, Some(&message)),
        Err(error) if error.status == 400 => render(&session, &secret, Some(&error.message)),
        Err(error) => error_response(&error),
    }
}

/// The promotion code form: the page again, with the code applied or the reason it was not
/// (nothing charged either way).
fn apply_code(inner: &Inner, session_id: &str, secret: &str, code: &str) -> HttpResponse {
    let mut ledger = inner.ledger();
    let applied = ledger.apply_promotion_code(session_id, code, inner.now());
    let Some(session) = ledger.session_for_page(session_id, secret) else {
        drop(ledger);
        return HttpResponse::NotFound()
            .content_type("text/html; charset=utf-8")
            .body("<h1>Unknown checkout session</h1>");
    };
    drop(ledger);
    match applied {
        Ok(_) => render(&session, secret, None),
        Err(error) if error.status == 400 => render_with_status(
            &session,
            secret,
            Some(&error.message),
            StatusCode::BAD_REQUEST,
        ),
        Err(error) => error_response(&error),
    }
}

/// `GET /receipts/payment/{token}`: a charge's receipt, as its `receipt_url` links to it.
pub(crate) async fn receipt(token: web::Path<String>, inner: State) -> HttpResponse {
    let Some((charge, name)) = inner.ledger().receipt(&token) else {
        return HttpResponse::NotFound()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .body("<h1>Unknown receipt</h1>");
    };
    let currency = charge["currency"].as_str().unwrap_or_default();
    let amount = display_amount(charge["amount_captured"].as_i64().unwrap_or(0), currency);
    let refunded = display_amount(charge["amount_refunded"].as_i64().unwrap_or(0), currency);
    let paid_at = charge["created"]
        .as_i64()
        .and_then(|unix| time::OffsetDateTime::from_unix_timestamp(unix).ok())
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Receipt - Stripe sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<p>Stripe sandbox: no real money moved.</p>
<main id="receipt">
<h1>Receipt</h1>
<p id="receipt-product">{name}</p>
<dl>
<dt>Amount paid</dt><dd id="receipt-amount">{amount}</dd>
<dt>Refunded</dt><dd id="receipt-refunded">{refunded}</dd>
<dt>Date paid</dt><dd id="receipt-date">{paid_at}</dd>
<dt>Payment</dt><dd id="receipt-charge">{charge_id}</dd>
</dl>
</main>
</body></html>"#,
        name = escape(&name),
        charge_id = escape(charge["id"].as_str().unwrap_or_default()),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(html)
}

fn success_url(session: &Value) -> String {
    let id = session["id"].as_str().unwrap_or_default();
    session["success_url"]
        .as_str()
        .unwrap_or("/")
        .replace("{CHECKOUT_SESSION_ID}", id)
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            other => other.to_string(),
        })
        .collect()
}

/// Minor units to a display string without floats (`1999`, `usd` -> `19.99 USD`).
fn display_amount(minor: i64, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    if code == "JPY" {
        return format!("{minor} {code}");
    }
    format!("{}.{:02} {code}", minor / 100, minor % 100)
}

/// The summary above the amount due: subtotal, the discount and its code, tax, and the
/// price's own currency when the session is presented in another.
fn summary(session: &Value) -> String {
    let currency = session["currency"].as_str().unwrap_or("");
    let amount = |value: &Value| display_amount(value.as_i64().unwrap_or(0), currency);
    let mut rows = format!(
        "<dt>Subtotal</dt><dd id=\"amount-subtotal\">{}</dd>\n",
        amount(&session["amount_subtotal"])
    );
    let discount = &session["total_details"]["amount_discount"];
    if discount.as_i64().unwrap_or(0) > 0 {
        rows.push_str(&format!(
            "<dt>Discount</dt><dd id=\"amount-discount\">-{}</dd>\n",
            amount(discount)
        ));
    }
    if session["automatic_tax"]["enabled"] == true {
        let label = if session["line_items_sandbox"]["tax_behavior"] == "inclusive" {
            "Tax (included)"
        } else {
            "Tax"
        };
        rows.push_str(&format!(
            "<dt>{label}</dt><dd id=\"amount-tax\">{}</dd>\n",
            amount(&session["total_details"]["amount_tax"])
        ));
    }
    let conversion = &session["currency_conversion"];
    let converted = if conversion.is_object() {
        let source = conversion["source_currency"].as_str().unwrap_or("");
        format!(
            "<p class=\"hint\" id=\"conversion\">Converted from {} at {} {} per {}.</p>\n",
            display_amount(conversion["amount_total"].as_i64().unwrap_or(0), source),
            escape(conversion["fx_rate"].as_str().unwrap_or("")),
            escape(&currency.to_ascii_uppercase()),
            escape(&source.to_ascii_uppercase()),
        )
    } else {
        String::new()
    };
    format!("<dl id=\"summary\">\n{rows}</dl>\n{converted}")
}

/// The promotion code form, on an open session that allows codes, with the code applied.
fn promotion_form(session: &Value, action: &str, open: bool) -> String {
    if !open || session["allow_promotion_codes"] != true {
        return String::new();
    }
    let applied = session["discounts"][0]["promotion_code"]
        .as_str()
        .and_then(|id| PROMOTION_CODES.iter().find(|promotion| promotion.id == id));
    let applied_line = applied
        .map(|promotion| {
            format!(
                "<p id=\"promotion-code-applied\">{} applied.</p>\n",
                escape(promotion.code)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<form method="post" action="{action}" id="promotion-code-form">
  <input type="hidden" name="method" value="promotion_code">
  <label for="promotion-code">Promotion code</label>
  <input id="promotion-code" name="promotion_code" autocomplete="off" value="{value}">
  <button id="apply-promotion-code" class="secondary" type="submit">Apply code</button>
</form>
{applied_line}"#,
        value = escape(applied.map_or("", |promotion| promotion.code)),
    )
}

fn render(session: &Value, secret: &str, error: Option<&str>) -> HttpResponse {
    let status = if error.is_some() {
        StatusCode::PAYMENT_REQUIRED
    } else {
        StatusCode::OK
    };
    render_with_status(session, secret, error, status)
}

fn render_with_status(
    session: &Value,
    secret: &str,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let id = escape(session["id"].as_str().unwrap_or_default());
    let secret = escape(secret);
    let action = format!("/checkout/pay/{id}/{secret}");
    let name = escape(
        session["line_items_sandbox"]["name"]
            .as_str()
            .unwrap_or("Your purchase"),
    );
    let due = session["amount_total"].as_i64().unwrap_or(0);
    let amount = display_amount(due, session["currency"].as_str().unwrap_or(""));
    let open = session["status"] == "open";
    let status_line = if open {
        String::new()
    } else {
        format!(
            "<p class=\"closed\" id=\"closed\">This checkout session is {}.</p>",
            escape(session["status"].as_str().unwrap_or("closed"))
        )
    };
    let error_line = error
        .map(|e| {
            format!(
                "<p class=\"error\" id=\"error\" role=\"alert\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let disabled = if open { "" } else { " disabled" };
    let summary = summary(session);
    let promotion = promotion_form(session, &action, open);
    // With nothing due (a 100%-off code) Stripe's page asks for no payment method.
    let payment = if due == 0 {
        format!(
            r#"<form method="post" action="{action}">
  <input type="hidden" name="method" value="card">
  <button id="pay" type="submit"{disabled}>Complete order</button>
</form>"#
        )
    } else {
        format!(
            r#"<form method="post" action="{action}">
  <input type="hidden" name="method" value="card">
  <label for="card_number">Card number</label>
  <input id="card_number" name="card_number" inputmode="numeric" autocomplete="cc-number" placeholder="4242 4242 4242 4242"{disabled}>
  <p class="hint">4242 4242 4242 4242 succeeds; 4000 0000 0000 0002 is declined.</p>
  <button id="pay" type="submit"{disabled}>Pay {amount}</button>
</form>
<form method="post" action="{action}">
  <input type="hidden" name="method" value="bank_debit">
  <button id="bank-debit" class="secondary" type="submit"{disabled}>Pay by bank debit (settles later)</button>
</form>"#
        )
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pay {name} - Stripe sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; color: #1a1f36; }}
.banner {{ background: #fff4e5; border: 1px solid #f5a623; padding: .5rem .75rem; border-radius: 6px; font-size: .9rem; }}
.amount {{ font-size: 2rem; font-weight: 600; margin: .25rem 0 1.5rem; }}
dl {{ display: grid; grid-template-columns: 1fr auto; gap: .25rem 1rem; margin: 1rem 0 .5rem; }}
dd {{ margin: 0; text-align: right; }}
label {{ display: block; margin: .75rem 0 .25rem; }}
input {{ width: 100%; padding: .6rem; font-size: 1rem; box-sizing: border-box; }}
button {{ margin-top: 1rem; width: 100%; padding: .75rem; font-size: 1rem; border-radius: 6px; border: 0; background: #635bff; color: #fff; cursor: pointer; }}
button.secondary {{ background: #e3e8ee; color: #1a1f36; }}
.error {{ color: #c0123c; }} .hint {{ color: #697386; font-size: .85rem; }}
</style></head>
<body>
<p class="banner">Stripe sandbox: no real money moves.</p>
<h1 id="product">{name}</h1>
{summary}<p>Amount due</p>
<p class="amount" id="amount-due" aria-live="polite">{amount}</p>
{status_line}{error_line}
{promotion}
{payment}
<form method="post" action="{action}">
  <input type="hidden" name="method" value="cancel">
  <button id="cancel" class="secondary" type="submit">Cancel and go back</button>
</form>
</body></html>"#
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // The address holds the session's secret: never send it on as a Referer.
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(html)
}
