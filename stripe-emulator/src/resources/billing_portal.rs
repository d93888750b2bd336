//! Billing portal sessions, and the emulator's stand-in for the hosted portal page.
//!
//! A session's `url` points back at the emulator (`{base}/p/session/test_...`), where a
//! minimal page names the customer and links to the session's `return_url`, so a browser
//! walk-through of the flow works offline.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::ids;
use crate::json::{opt_str, set};
use crate::objects::customers;
use crate::resources::ctx::Ctx;
use crate::state::PortalPage;
use crate::store::kinds;
use crate::text::{escape_html, is_url};

/// Path prefix of hosted portal pages.
pub const PAGE_PREFIX: &str = "/p/session/";

/// `POST /v1/billing_portal/sessions` with `customer` (required), `return_url`,
/// `configuration`, `locale`, `on_behalf_of`.
pub fn create_session(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let customer = p.required_string(&["customer"])?;
    customers::require_live(ctx.store, customer, "customer")?;
    let return_url = p.string(&["return_url"])?.filter(|s| !s.is_empty());
    if let Some(url) = return_url
        && !is_url(url)
    {
        return Err(ApiError::invalid_request("Not a valid URL")
            .with_code("url_invalid")
            .with_param("return_url"));
    }
    let configuration = match p.string(&["configuration"])?.filter(|s| !s.is_empty()) {
        Some(configuration) => configuration.to_owned(),
        None => ctx
            .store
            .singleton("billing_portal.configuration", || ids::long_id("bpc")),
    };
    let locale = p.string(&["locale"])?.filter(|s| !s.is_empty());
    let on_behalf_of = p.string(&["on_behalf_of"])?.filter(|s| !s.is_empty());

    let id = ids::long_id("bps");
    let secret = format!(
        "{}_{}",
        if ctx.livemode() { "live" } else { "test" },
        ids::random_alnum(40)
    );
    let url = format!("{}{PAGE_PREFIX}{secret}", ctx.base_url);
    let mut session = fixture(kinds::BILLING_PORTAL_SESSION);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("billing_portal.session")),
        ("configuration", json!(configuration)),
        ("created", json!(ctx.now)),
        ("customer", json!(customer)),
        ("customer_account", Value::Null),
        ("flow", Value::Null),
        ("livemode", json!(ctx.livemode())),
        ("locale", opt_str(locale)),
        ("on_behalf_of", opt_str(on_behalf_of)),
        ("return_url", opt_str(return_url)),
        ("url", json!(url)),
    ] {
        set(&mut session, key, value);
    }
    ctx.store
        .insert(kinds::BILLING_PORTAL_SESSION, session.clone());
    ctx.emulator.add_portal_page(
        secret,
        PortalPage {
            session: id,
            customer: customer.to_owned(),
            return_url: return_url.map(str::to_owned),
        },
    );
    Ok(session)
}

/// The HTML of a hosted portal page.
pub fn render_page(page: &PortalPage) -> String {
    let back = match &page.return_url {
        Some(url) => format!(
            "<p><a id=\"return\" href=\"{0}\">Return to {0}</a></p>",
            escape_html(url)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Billing portal (Stripe emulator)</title></head>\
         <body><h1>Billing portal</h1><p>Stripe emulator stand-in for session <code>{}</code> of customer \
         <code>{}</code>.</p>{back}</body></html>",
        escape_html(&page.session),
        escape_html(&page.customer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape() {
        let page = PortalPage {
            session: "bps_1".into(),
            customer: "cus_<x>".into(),
            return_url: Some("https://e.com/?a=1&b=\"2\"".into()),
        };
        let html = render_page(&page);
        assert!(html.contains("cus_&lt;x&gt;"));
        assert!(html.contains("a=1&amp;b=&quot;2&quot;"));
    }
}
