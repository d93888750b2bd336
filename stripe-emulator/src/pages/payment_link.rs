//! A payment link's hosted page at `{base}/b/:id` (the link's `url`, no key needed): its
//! items and total, and a "Pay" button whose `POST` opens a checkout session for the link
//! (as a client of `POST /v1/checkout/sessions` would) and redirects `303` to that
//! session's hosted page; after payment, the confirmation (or the inactive message).

use actix_web::HttpResponse;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::events::record::{Origin, commit};
use crate::form::Params;
use crate::http::{html_response, respond_error};
use crate::ids;
use crate::json::{id_of, int_field, metadata_of, set, str_field};
use crate::money::{format_amount, sum_amounts};
use crate::objects::prices;
use crate::resources::checkout;
use crate::resources::ctx::Ctx;
use crate::resources::payment_links::{PAGE_PREFIX, line_items, stored};
use crate::state::Emulator;
use crate::store::{Store, kinds};

/// A request for a payment link's hosted page.
pub struct LinkPage<'r> {
    pub method: &'r str,
    /// The link id (the path after the page prefix).
    pub link: &'r str,
    pub query: &'r str,
    /// The emulator's base URL as the client reached it.
    pub base_url: &'r str,
    pub request_id: &'r str,
}

/// A payment link's hosted page: `GET` shows the link (and, with `?session=`, the
/// confirmation of a completed session of it), `POST` opens a checkout session for it and
/// redirects `303` to the session's page.
pub fn payment_link_page(emulator: &Emulator, page: &LinkPage<'_>) -> HttpResponse {
    let not_found = || {
        respond_error(
            &ApiError::unrecognized_url(page.method, &format!("{}{}", PAGE_PREFIX, page.link)),
            page.request_id,
        )
    };
    let Some(owner) = emulator.payment_link_page(page.link) else {
        return not_found();
    };
    let state = emulator.key_state(&owner.key);
    let mut data = state.lock();
    // Under the lock: `created` follows the order objects are stored in.
    let now = ids::now();
    let mut error = None;
    let mut status = 200;
    if page.method == "POST" {
        let params = Params::default();
        let mut ctx = Ctx {
            store: data.store(&owner.account),
            params: &params,
            base_url: page.base_url,
            now,
            emulator,
            key: &owner.key,
            account: &owner.account,
        };
        let result = start_checkout(&mut ctx, page.link);
        // Automatic events (as the hosted page makes them): no request.
        let dispatches = commit(&mut data, &owner.account, Origin::default(), now);
        emulator.deliveries.enqueue(&state, dispatches, false);
        match result {
            Ok(url) => {
                return HttpResponse::SeeOther()
                    .insert_header(("Request-Id", page.request_id))
                    .insert_header(("Location", url))
                    .finish();
            }
            Err(e) => {
                status = e.status;
                error = Some(e.message.clone());
            }
        }
    }
    let store = data.store(&owner.account);
    let completed = Params::parse(&[page.query.as_bytes()])
        .ok()
        .and_then(|q| q.non_empty(&["session"]).ok().flatten().map(str::to_owned))
        .is_some_and(|session| completed_session(store, page.link, &session));
    match page_data(store, page.link) {
        Some((link, items)) => html_response(
            status,
            render_page(&link, &items, completed, error.as_deref()),
            page.request_id,
        ),
        None => not_found(),
    }
}

/// The checkout session parameters a link's "Pay" button opens (`base_url` is where the
/// page was reached).
fn checkout_form(link: &Value, items: &[Value], base_url: &str) -> String {
    let id = str_field(link, "id").unwrap_or_default();
    let page = format!("{base_url}{PAGE_PREFIX}{id}");
    let subscription = items
        .iter()
        .any(|item| item.get("price").is_some_and(prices::is_recurring));
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair(
        "mode",
        if subscription {
            "subscription"
        } else {
            "payment"
        },
    );
    for (index, item) in items.iter().enumerate() {
        let price = item.get("price").and_then(id_of).unwrap_or_default();
        form.append_pair(&format!("line_items[{index}][price]"), price);
        form.append_pair(
            &format!("line_items[{index}][quantity]"),
            &int_field(item, "quantity").to_string(),
        );
    }
    let success = link
        .pointer("/after_completion/redirect/url")
        .and_then(Value::as_str)
        .map_or_else(
            || format!("{page}?session={{CHECKOUT_SESSION_ID}}"),
            str::to_owned,
        );
    form.append_pair("success_url", &success);
    form.append_pair("cancel_url", &page);
    if link.get("allow_promotion_codes").and_then(Value::as_bool) == Some(true) {
        form.append_pair("allow_promotion_codes", "true");
    }
    if let Some(submit_type) = str_field(link, "submit_type") {
        form.append_pair("submit_type", submit_type);
    }
    if !subscription && let Some(creation) = str_field(link, "customer_creation") {
        form.append_pair("customer_creation", creation);
    }
    let (data, prefix) = if subscription {
        (link.get("subscription_data"), "subscription_data")
    } else {
        (link.get("payment_intent_data"), "payment_intent_data")
    };
    if let Some(data) = data.filter(|d| d.is_object()) {
        if let Some(description) = str_field(data, "description") {
            form.append_pair(&format!("{prefix}[description]"), description);
        }
        for (key, value) in metadata_of(data) {
            if let Some(value) = value.as_str() {
                form.append_pair(&format!("{prefix}[metadata][{key}]"), value);
            }
        }
        if let Some(days) = data.get("trial_period_days").and_then(Value::as_i64) {
            form.append_pair(&format!("{prefix}[trial_period_days]"), &days.to_string());
        }
    }
    form.finish()
}

/// What the link's "Pay" button does: opens a checkout session for the link's items (with
/// `payment_link` set) in `ctx`'s account and returns the session's hosted page URL.
/// `ctx.params` is not read.
pub fn start_checkout(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<String> {
    let link = stored(ctx.store, id)?;
    if link.get("active").and_then(Value::as_bool) != Some(true) {
        return Err(ApiError::invalid_request(
            str_field(&link, "inactive_message")
                .unwrap_or("This payment link is no longer active.")
                .to_owned(),
        ));
    }
    let form = checkout_form(&link, &line_items(ctx.store, id), ctx.base_url);
    let params = Params::parse(&[form.as_bytes()])?;
    let mut inner = Ctx {
        store: &mut *ctx.store,
        params: &params,
        base_url: ctx.base_url,
        now: ctx.now,
        emulator: ctx.emulator,
        key: ctx.key,
        account: ctx.account,
    };
    let session = checkout::create(&mut inner)?;
    let session_id = str_field(&session, "id").unwrap_or_default().to_owned();
    if let Some(record) = ctx.store.get_live_mut(kinds::CHECKOUT_SESSION, &session_id) {
        set(&mut record.object, "payment_link", json!(id));
    }
    str_field(&session, "url")
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid_request("The checkout session has no hosted page."))
}

/// The link and its line items, for the hosted page.
pub fn page_data(store: &Store, id: &str) -> Option<(Value, Vec<Value>)> {
    let link = stored(store, id).ok()?;
    Some((link, line_items(store, id)))
}

/// Whether `session` is a completed checkout session of the link `id`.
pub fn completed_session(store: &Store, id: &str, session: &str) -> bool {
    store
        .get_live(kinds::CHECKOUT_SESSION, session)
        .is_some_and(|r| {
            str_field(&r.object, "payment_link") == Some(id)
                && str_field(&r.object, "status") == Some("complete")
        })
}

/// The HTML of a link's hosted page: its items, the total, and a "Pay" button (or the
/// confirmation after payment, or the inactive message).
pub fn render_page(link: &Value, items: &[Value], completed: bool, error: Option<&str>) -> String {
    use crate::text::escape_html as esc;
    let id = str_field(link, "id").unwrap_or_default();
    let currency = str_field(link, "currency").unwrap_or("usd");
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
    let total = sum_amounts(items.iter().map(|i| int_field(i, "amount_subtotal")));
    let active = link.get("active").and_then(Value::as_bool) == Some(true);
    let body = if completed {
        let message = link
            .pointer("/after_completion/hosted_confirmation/custom_message")
            .and_then(Value::as_str)
            .unwrap_or("Thanks for your payment.");
        format!("<p id=\"confirmation\">{}</p>", esc(message))
    } else if active {
        format!(
            "<p>Total: <strong id=\"total\">{}</strong></p><form method=\"post\" action=\"{PAGE_PREFIX}{}\"><button type=\"submit\">Pay</button></form>",
            esc(&money(total)),
            esc(id)
        )
    } else {
        format!(
            "<p id=\"inactive\">{}</p>",
            esc(str_field(link, "inactive_message")
                .unwrap_or("This payment link is no longer active."))
        )
    };
    let error = error
        .map(|e| format!("<p id=\"error\" style=\"color:#b00\">{}</p>", esc(e)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Payment link (Stripe emulator)</title></head>\
         <body><h1>Payment link</h1><p>Stripe emulator stand-in for payment link <code>{}</code>.</p>\
         <table><tr><th>Item</th><th>Qty</th><th>Amount</th></tr>{rows}</table>{error}{body}</body></html>",
        esc(id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::line_items::item_object;

    #[test]
    fn checkout_forms() {
        let link = json!({"id": "plink_1", "active": true, "after_completion": {"type": "hosted_confirmation"},
            "allow_promotion_codes": false, "submit_type": "auto", "customer_creation": "if_required",
            "payment_intent_data": {"description": "D", "metadata": {"k": "v"}}});
        let price =
            json!({"id": "price_1", "currency": "usd", "unit_amount": 500, "type": "one_time"});
        let items = vec![item_object(&price, 2, "Shirt", 0)];
        let form = checkout_form(&link, &items, "http://127.0.0.1:1");
        let params = Params::parse(&[form.as_bytes()]).unwrap();
        assert_eq!(params.non_empty(&["mode"]).unwrap(), Some("payment"));
        assert_eq!(
            params.non_empty(&["line_items", "0", "price"]).unwrap(),
            Some("price_1")
        );
        assert_eq!(
            params.non_empty(&["success_url"]).unwrap(),
            Some("http://127.0.0.1:1/b/plink_1?session={CHECKOUT_SESSION_ID}")
        );
        assert_eq!(
            params
                .non_empty(&["payment_intent_data", "metadata", "k"])
                .unwrap(),
            Some("v")
        );

        let html = render_page(&link, &items, false, None);
        assert!(html.contains("$10.00"), "{html}");
        assert!(html.contains("action=\"/b/plink_1\""));
        let mut inactive = link.clone();
        inactive["active"] = json!(false);
        inactive["inactive_message"] = json!("Sold <out>");
        let html = render_page(&inactive, &items, false, None);
        assert!(html.contains("Sold &lt;out&gt;"));
        assert!(!html.contains("<form"));
    }
}
