//! The hosted checkout page: what Stripe Checkout's page does, minus the polish. No script,
//! no external asset: a plain form that works in any browser and in tests.

use crate::http::error_response;
use crate::ledger::{PaymentMethod, PaymentOutcome};
use crate::Inner;
use actix_web::{http::header, web, HttpResponse};
use serde_json::Value;
use std::sync::Arc;

type State = web::Data<Arc<Inner>>;

#[derive(serde::Deserialize)]
pub(crate) struct PayForm {
    method: String,
    #[serde(default)]
    card_number: String,
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
        "cancel" => return redirect(session["cancel_url"].as_str().unwrap_or("/")),
        _ => return render(&session, &secret, Some("Choose a payment method.")),
    };
    let outcome = inner.ledger().pay(&session_id, &method, inner.now());
    inner.new_events.notify_one();
    match outcome {
        Ok(PaymentOutcome::Paid) => redirect(&success_url(&session)),
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

fn render(session: &Value, secret: &str, error: Option<&str>) -> HttpResponse {
    let id = escape(session["id"].as_str().unwrap_or_default());
    let secret = escape(secret);
    let name = escape(
        session["line_items_sandbox"]["name"]
            .as_str()
            .unwrap_or("Your purchase"),
    );
    let amount = display_amount(
        session["amount_total"].as_i64().unwrap_or(0),
        session["currency"].as_str().unwrap_or(""),
    );
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
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pay {name} - Stripe sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; color: #1a1f36; }}
.banner {{ background: #fff4e5; border: 1px solid #f5a623; padding: .5rem .75rem; border-radius: 6px; font-size: .9rem; }}
.amount {{ font-size: 2rem; font-weight: 600; margin: .25rem 0 1.5rem; }}
label {{ display: block; margin: .75rem 0 .25rem; }}
input {{ width: 100%; padding: .6rem; font-size: 1rem; box-sizing: border-box; }}
button {{ margin-top: 1rem; width: 100%; padding: .75rem; font-size: 1rem; border-radius: 6px; border: 0; background: #635bff; color: #fff; cursor: pointer; }}
button.secondary {{ background: #e3e8ee; color: #1a1f36; }}
.error {{ color: #c0123c; }} .hint {{ color: #697386; font-size: .85rem; }}
</style></head>
<body>
<p class="banner">Stripe sandbox: no real money moves.</p>
<h1 id="product">{name}</h1>
<p class="amount" id="amount">{amount}</p>
{status_line}{error_line}
<form method="post" action="/checkout/pay/{id}/{secret}">
  <input type="hidden" name="method" value="card">
  <label for="card_number">Card number</label>
  <input id="card_number" name="card_number" inputmode="numeric" autocomplete="cc-number" placeholder="4242 4242 4242 4242"{disabled}>
  <p class="hint">4242 4242 4242 4242 succeeds; 4000 0000 0000 0002 is declined.</p>
  <button id="pay" type="submit"{disabled}>Pay {amount}</button>
</form>
<form method="post" action="/checkout/pay/{id}/{secret}">
  <input type="hidden" name="method" value="bank_debit">
  <button id="bank-debit" class="secondary" type="submit"{disabled}>Pay by bank debit (settles later)</button>
</form>
<form method="post" action="/checkout/pay/{id}/{secret}">
  <input type="hidden" name="method" value="cancel">
  <button id="cancel" class="secondary" type="submit">Cancel and go back</button>
</form>
</body></html>"#
    );
    let status = if error.is_some() {
        actix_web::http::StatusCode::PAYMENT_REQUIRED
    } else {
        actix_web::http::StatusCode::OK
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // The address holds the session's secret: never send it on as a Referer.
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(html)
}
