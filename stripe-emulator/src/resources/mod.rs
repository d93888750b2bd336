//! The Stripe resources the emulator serves, and the router that maps `/v1` paths to them.
//!
//! Each handler is synchronous: it gets a [`Ctx`] (the account's store, the parsed
//! parameters, ...) and returns the JSON object to answer with, or an
//! [`ApiError`](crate::error::ApiError). Handlers validate everything before changing
//! anything, so a rejected request leaves no trace. A handler reads its request and calls
//! the object rules of [`crate::objects`]; it never calls another resource's handler.

pub mod balance;
pub mod billing_portal;
pub mod charges;
pub mod checkout;
pub mod coupons;
pub mod ctx;
pub mod customers;
pub mod events;
pub mod invoice_payments;
pub mod invoices;
pub mod payment_intents;
pub mod payment_links;
pub mod payment_methods;
pub mod prices;
pub mod products;
pub mod promotion_codes;
pub mod refunds;
pub mod search;
pub mod setup_intents;
pub mod subscriptions;
pub mod webhook_endpoints;

use serde_json::Value;

use crate::error::ApiResult;
use crate::expand;
use crate::list;
use crate::objects::invoices::record::strip_includable;
use crate::resources::ctx::Ctx;

/// Routes a `/v1` request (`segs` are the path segments after `/v1/`). `None` when no
/// endpoint matches (the caller answers Stripe's "Unrecognized request URL").
pub fn route(ctx: &mut Ctx<'_>, method: &str, segs: &[&str]) -> Option<ApiResult<Value>> {
    let result = match (method, segs) {
        ("GET", ["balance"]) => balance::retrieve(ctx),
        // Stripe's search endpoints: the ones the emulator implements, and the others
        // answered "Unrecognized request URL" rather than read as an id.
        ("GET", ["customers", "search"]) => search::customers(ctx),
        ("GET", ["payment_intents", "search"]) => search::payment_intents(ctx),
        ("GET", [_, "search"]) => return None,
        ("POST", ["customers"]) => customers::create(ctx),
        ("GET", ["customers"]) => customers::list(ctx),
        ("GET", ["customers", id]) => customers::retrieve(ctx, id),
        ("POST", ["customers", id]) => customers::update(ctx, id),
        ("DELETE", ["customers", id]) => customers::delete(ctx, id),
        ("GET", ["customers", id, "payment_methods"]) => {
            payment_methods::list_for_customer(ctx, id)
        }
        ("GET", ["customers", id, "payment_methods", pm]) => {
            payment_methods::retrieve_for_customer(ctx, id, pm)
        }
        ("GET", ["payment_methods"]) => payment_methods::list(ctx),
        ("GET", ["payment_methods", id]) => payment_methods::retrieve(ctx, id),
        ("POST", ["payment_methods", id]) => payment_methods::update(ctx, id),
        ("POST", ["payment_methods", id, "attach"]) => payment_methods::attach(ctx, id),
        ("POST", ["payment_methods", id, "detach"]) => payment_methods::detach(ctx, id),
        ("POST", ["billing_portal", "sessions"]) => billing_portal::create_session(ctx),
        ("POST", ["products"]) => products::create(ctx),
        ("GET", ["products"]) => products::list(ctx),
        ("GET", ["products", id]) => products::retrieve(ctx, id),
        ("POST", ["products", id]) => products::update(ctx, id),
        ("DELETE", ["products", id]) => products::delete(ctx, id),
        ("POST", ["prices"]) => prices::create(ctx),
        ("GET", ["prices"]) => prices::list(ctx),
        ("GET", ["prices", id]) => prices::retrieve(ctx, id),
        ("POST", ["prices", id]) => prices::update(ctx, id),
        ("POST", ["coupons"]) => coupons::create(ctx),
        ("GET", ["coupons"]) => coupons::list(ctx),
        ("GET", ["coupons", id]) => coupons::retrieve(ctx, id),
        ("POST", ["coupons", id]) => coupons::update(ctx, id),
        ("DELETE", ["coupons", id]) => coupons::delete(ctx, id),
        ("POST", ["promotion_codes"]) => promotion_codes::create(ctx),
        ("GET", ["promotion_codes"]) => promotion_codes::list(ctx),
        ("GET", ["promotion_codes", id]) => promotion_codes::retrieve(ctx, id),
        ("POST", ["promotion_codes", id]) => promotion_codes::update(ctx, id),
        ("POST", ["payment_intents"]) => payment_intents::create(ctx),
        ("GET", ["payment_intents"]) => payment_intents::list(ctx),
        ("GET", ["payment_intents", id]) => payment_intents::retrieve(ctx, id),
        ("POST", ["payment_intents", id]) => payment_intents::update(ctx, id),
        ("POST", ["payment_intents", id, "confirm"]) => payment_intents::confirm(ctx, id),
        ("POST", ["payment_intents", id, "capture"]) => payment_intents::capture(ctx, id),
        ("POST", ["payment_intents", id, "cancel"]) => payment_intents::cancel(ctx, id),
        ("GET", ["charges"]) => charges::list(ctx),
        ("GET", ["charges", id]) => charges::retrieve(ctx, id),
        ("POST", ["refunds"]) => refunds::create(ctx),
        ("GET", ["refunds"]) => refunds::list(ctx),
        ("GET", ["refunds", id]) => refunds::retrieve(ctx, id),
        ("POST", ["refunds", id]) => refunds::update(ctx, id),
        ("POST", ["subscriptions"]) => subscriptions::create(ctx),
        ("GET", ["subscriptions"]) => subscriptions::list(ctx),
        ("GET", ["subscriptions", id]) => subscriptions::retrieve(ctx, id),
        ("POST", ["subscriptions", id]) => subscriptions::update(ctx, id),
        ("DELETE", ["subscriptions", id]) => subscriptions::cancel(ctx, id),
        ("GET", ["subscription_items"]) => subscriptions::list_items(ctx),
        ("GET", ["subscription_items", id]) => subscriptions::retrieve_item(ctx, id),
        ("POST", ["invoices"]) => invoices::create(ctx),
        ("GET", ["invoices"]) => invoices::list(ctx),
        ("GET", ["invoices", id]) => invoices::retrieve(ctx, id),
        ("GET", ["invoices", id, "lines"]) => invoices::lines(ctx, id),
        ("POST", ["invoices", id, "finalize"]) => invoices::finalize_endpoint(ctx, id),
        ("POST", ["invoices", id, "pay"]) => invoices::pay_endpoint(ctx, id),
        ("POST", ["invoices", id, "void"]) => invoices::void(ctx, id),
        ("GET", ["invoice_payments"]) => invoice_payments::list(ctx),
        ("GET", ["invoice_payments", id]) => invoice_payments::retrieve(ctx, id),
        ("GET", ["invoiceitems"]) => invoices::list_items(ctx),
        ("GET", ["invoiceitems", id]) => invoices::retrieve_item(ctx, id),
        ("POST", ["checkout", "sessions"]) => checkout::create(ctx),
        ("GET", ["checkout", "sessions"]) => checkout::list(ctx),
        ("GET", ["checkout", "sessions", id]) => checkout::retrieve(ctx, id),
        ("GET", ["checkout", "sessions", id, "line_items"]) => checkout::list_line_items(ctx, id),
        ("POST", ["checkout", "sessions", id, "expire"]) => checkout::expire(ctx, id),
        ("POST", ["payment_links"]) => payment_links::create(ctx),
        ("GET", ["payment_links"]) => payment_links::list(ctx),
        ("GET", ["payment_links", id]) => payment_links::retrieve(ctx, id),
        ("POST", ["payment_links", id]) => payment_links::update(ctx, id),
        ("GET", ["payment_links", id, "line_items"]) => payment_links::list_line_items(ctx, id),
        ("POST", ["setup_intents"]) => setup_intents::create(ctx),
        ("GET", ["setup_intents"]) => setup_intents::list(ctx),
        ("GET", ["setup_intents", id]) => setup_intents::retrieve(ctx, id),
        ("POST", ["setup_intents", id, "confirm"]) => setup_intents::confirm(ctx, id),
        ("POST", ["setup_intents", id, "cancel"]) => setup_intents::cancel(ctx, id),
        ("GET", ["events"]) => events::list(ctx),
        ("GET", ["events", id]) => events::retrieve(ctx, id),
        ("POST", ["webhook_endpoints"]) => webhook_endpoints::create(ctx),
        ("GET", ["webhook_endpoints"]) => webhook_endpoints::list(ctx),
        ("GET", ["webhook_endpoints", id]) => webhook_endpoints::retrieve(ctx, id),
        ("POST", ["webhook_endpoints", id]) => webhook_endpoints::update(ctx, id),
        ("DELETE", ["webhook_endpoints", id]) => webhook_endpoints::delete(ctx, id),
        _ => return None,
    };
    Some(result.and_then(|mut value| {
        let paths = ctx.params.expand()?;
        if !paths.is_empty() {
            expand::apply(ctx.store, &mut value, &paths)?;
        }
        strip_includable(&mut value, &paths);
        // Stripe embeds at most 10 invoice lines and subscription items; the rest are
        // paged from the nested list's `url`.
        list::cap_nested_lists(&mut value);
        Ok(value)
    }))
}
