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
use crate::text::is_url;

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
