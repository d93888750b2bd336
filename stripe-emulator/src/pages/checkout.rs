//! The hosted checkout page at `{base}/c/pay/:id`: `GET` shows the session (its items, the
//! total, a test-card form); `POST` completes it and redirects `303` to `success_url` with
//! `{CHECKOUT_SESSION_ID}` filled in, or shows the decline with status 402. The same
//! completion serves `POST /_emulator/checkout/sessions/:id/complete`.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use serde_json::Value;

use crate::error::ApiError;
use crate::events::record::{Origin, commit};
use crate::form::Params;
use crate::http::{html_response, read_body, respond_error};
use crate::ids;
use crate::json::{int_field, str_field};
use crate::money::format_amount;
use crate::objects::payment_methods::TEST_CARDS;
use crate::resources::checkout::complete;
use crate::resources::checkout::session::{PAGE_PREFIX, expire_if_due, line_items, stored};
use crate::state::{Emulator, KeyState};
use crate::store::Store;

/// The session and its line items, for the hosted page.
pub fn page_data(store: &Store, id: &str, now: i64) -> Option<(Value, Vec<Value>)> {
    let mut session = stored(store, id).ok()?;
    expire_if_due(&mut session, now);
    Some((session, line_items(store, id)))
}

/// Where the hosted page sends the customer after completion: `success_url` with
/// `{CHECKOUT_SESSION_ID}` filled in.
pub fn success_redirect(session: &Value) -> Option<String> {
    let id = str_field(session, "id")?;
    str_field(session, "success_url").map(|url| url.replace("{CHECKOUT_SESSION_ID}", id))
}

/// The HTML of a hosted checkout page: the items, the total, a form to pay with a test
/// card, and a link back to `cancel_url`.
pub fn render_page(session: &Value, items: &[Value], error: Option<&str>) -> String {
    use crate::text::escape_html as esc;
    let id = str_field(session, "id").unwrap_or_default();
    let currency = str_field(session, "currency").unwrap_or("usd");
    let money = |amount: i64| format_amount(amount, currency);
    let rows: String = items
        .iter()
        .map(|item| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(str_field(item, "description").unwrap_or_default()),
                int_field(item, "quantity"),
                esc(&money(int_field(item, "amount_subtotal")))
            )
        })
        .collect();
    let status = str_field(session, "status").unwrap_or_default();
    let body = if status == "open" {
        let cards: String = TEST_CARDS
            .iter()
            .map(|card| {
                format!(
                    "<option value=\"{0}\">{0} ({1} •••• {2})</option>",
                    card.token, card.brand, card.last4
                )
            })
            .collect();
        let total = session
            .get("amount_total")
            .and_then(Value::as_i64)
            .map(|t| {
                format!(
                    "<p>Total due today: <strong id=\"total\">{}</strong></p>",
                    esc(&money(t))
                )
            })
            .unwrap_or_default();
        let promo = if session
            .get("allow_promotion_codes")
            .and_then(Value::as_bool)
            == Some(true)
        {
            "<label>Promotion code <input name=\"promotion_code\"></label> "
        } else {
            ""
        };
        let cancel = str_field(session, "cancel_url")
            .map(|url| {
                format!(
                    "<p><a id=\"cancel\" href=\"{0}\">Cancel and return to {0}</a></p>",
                    esc(url)
                )
            })
            .unwrap_or_default();
        format!(
            "{total}<form method=\"post\" action=\"{PAGE_PREFIX}{}\"><label>Test card <select name=\"payment_method\">{cards}</select></label> {promo}\
             <button type=\"submit\">Pay</button></form>{cancel}",
            esc(id)
        )
    } else {
        format!(
            "<p id=\"status\">This Checkout Session is {}.</p>",
            esc(status)
        )
    };
    let error = error
        .map(|e| format!("<p id=\"error\" style=\"color:#b00\">{}</p>", esc(e)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Checkout (Stripe emulator)</title></head>\
         <body><h1>Checkout</h1><p>Stripe emulator stand-in for session <code>{}</code> ({} mode).</p>\
         <table><tr><th>Item</th><th>Qty</th><th>Amount</th></tr>{rows}</table>{error}{body}</body></html>",
        esc(id),
        esc(str_field(session, "mode").unwrap_or_default())
    )
}

/// Reads `payment_method` from a JSON or form body (`pm_card_visa` when absent).
pub fn parse_payment_method(body: &[u8]) -> Result<String, ApiError> {
    let invalid = || ApiError::invalid_param("payment_method", "payment_method must be a string");
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(json) => match json.get("payment_method") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(invalid()),
            },
            Err(_) => Params::parse(&[body])?
                .non_empty(&["payment_method"])?
                .map(str::to_owned),
        }
    };
    Ok(value
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "pm_card_visa".to_owned()))
}

/// Reads the optional `promotion_code` (the code the customer typed) from a JSON or form
/// body.
pub fn parse_promotion_code(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(json) => match json.get("promotion_code") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(ApiError::invalid_param(
                    "promotion_code",
                    "promotion_code must be a string",
                ));
            }
        },
        Err(_) => Params::parse(&[body])?
            .non_empty(&["promotion_code"])?
            .map(str::to_owned),
    };
    Ok(value.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

/// `POST /_emulator/checkout/sessions/:id/complete`: completes a checkout session as its
/// hosted page would.
pub fn complete_checkout(
    emulator: &Emulator,
    state: &Arc<KeyState>,
    account: &str,
    session: &str,
    body: &[u8],
) -> (u16, Value) {
    let (pm, promo) = match (parse_payment_method(body), parse_promotion_code(body)) {
        (Ok(pm), Ok(promo)) => (pm, promo),
        (Err(error), _) | (_, Err(error)) => return (error.status, error.to_json()),
    };
    let result = {
        let mut data = state.lock();
        // Under the lock: `created` follows the order objects are stored in.
        let now = ids::now();
        let result = complete(data.store(account), now, session, &pm, promo.as_deref());
        // Automatic events (as the hosted page makes them): no request.
        let dispatches = commit(&mut data, account, Origin::default(), now);
        emulator.deliveries.enqueue(state, dispatches, false);
        result
    };
    match result {
        Ok(value) => (200, value),
        Err(error) => (error.status, error.to_json()),
    }
}

/// The hosted checkout page: `GET` shows the session, `POST` (form `payment_method`)
/// completes it and redirects to `success_url` (or shows the decline).
pub async fn checkout_page(
    emulator: &Emulator,
    method: &str,
    session: &str,
    payload: web::Payload,
    request_id: &str,
) -> HttpResponse {
    let not_found = || {
        respond_error(
            &ApiError::unrecognized_url(method, &format!("{}{session}", PAGE_PREFIX)),
            request_id,
        )
    };
    let Some(page) = emulator.checkout_page(session) else {
        return not_found();
    };
    let state = emulator.key_state(&page.key);
    let mut error = None;
    let mut status = 200;
    if method == "POST" {
        let body = match read_body(payload).await {
            Ok(body) => body,
            Err(error) => return respond_error(&error, request_id),
        };
        let (code, outcome) = complete_checkout(emulator, &state, &page.account, session, &body);
        if code == 200 {
            if let Some(url) = success_redirect(&outcome) {
                return HttpResponse::SeeOther()
                    .insert_header(("Request-Id", request_id))
                    .insert_header(("Location", url))
                    .finish();
            }
        } else {
            status = code;
            error = outcome
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
    }
    let data = {
        let mut data = state.lock();
        page_data(data.store(&page.account), session, ids::now())
    };
    match data {
        Some((session, items)) => html_response(
            status,
            render_page(&session, &items, error.as_deref()),
            request_id,
        ),
        None => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::line_items::item_object;
    use serde_json::json;

    #[test]
    fn pages() {
        let session = json!({"id": "cs_test_1", "status": "open", "currency": "usd", "amount_total": 2700,
            "mode": "payment", "cancel_url": "https://e.com/?a=<b>", "success_url": "https://e.com/ok?s={CHECKOUT_SESSION_ID}"});
        let items = vec![item_object(
            &json!({"currency": "usd", "unit_amount": 1500}),
            2,
            "Shirt",
            300,
        )];
        let html = render_page(&session, &items, Some("Your card was declined."));
        assert!(html.contains("$27.00"));
        assert!(html.contains("action=\"/c/pay/cs_test_1\""));
        assert!(html.contains("pm_card_visa"));
        assert!(html.contains("a=&lt;b&gt;"));
        assert!(html.contains("Your card was declined."));
        assert_eq!(
            success_redirect(&session).as_deref(),
            Some("https://e.com/ok?s=cs_test_1")
        );
    }

    #[test]
    fn payment_method_bodies() {
        assert_eq!(parse_payment_method(b"").unwrap(), "pm_card_visa");
        assert_eq!(
            parse_payment_method(br#"{"payment_method": "pm_card_mastercard"}"#).unwrap(),
            "pm_card_mastercard"
        );
        assert_eq!(
            parse_payment_method(b"payment_method=pm_card_chargeDeclined").unwrap(),
            "pm_card_chargeDeclined"
        );
        assert_eq!(parse_payment_method(b"{}").unwrap(), "pm_card_visa");
        assert!(parse_payment_method(br#"{"payment_method": 5}"#).is_err());
    }
}
