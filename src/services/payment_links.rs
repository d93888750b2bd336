//! Payment links: made at Stripe for a price of the catalogue (any caller of the app), kept in
//! the mirror (also current by payment_link.* events), read by every caller, deactivated and
//! reactivated by admins.

use serde::Deserialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::listing::{self, Page};
use crate::db::payment_links::{self as rows, PaymentLinkRow};
use crate::domain::paging::{FirstPage, Paging};
use crate::domain::{Metadata, bounded, optional_text, stripe_id};
use crate::error::ApiError;
use crate::services::catalog::activity;
use crate::services::paging;
use crate::state::AppState;
use crate::stripe::requests::{LinkItem, NewPaymentLink, PaymentLinkChange};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreatePaymentLinkFields {
    /// A `price_` id. Required.
    pub price_id: Option<String>,
    /// 1 by default.
    pub quantity: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// The fields of a payment link change; at least one.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdatePaymentLinkFields {
    /// `false` deactivates the link (its page stops selling); `true` reactivates it.
    pub active: Option<bool>,
    /// Merged into the link's metadata, as Stripe does (an empty value removes a key).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

crate::domain::paging::paged_query! {
    /// `active` and paging of the payment link list (23blocks pages by default).
    pub struct PaymentLinksQuery {
        /// `true` (the default): the active links; `false`: the deactivated ones; `all`: both.
        pub active: Option<String>,
    }
}

const ADMINS: &str = "deactivate or reactivate payment links";

/// A payment link for a price of the catalogue (any caller of the app may make one: it only
/// lets a buyer pay the listed price), mirrored.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    fields: CreatePaymentLinkFields,
    at: &str,
) -> Result<PaymentLinkRow, ApiError> {
    let price = optional_text(fields.price_id, &format!("{at}/price_id"), 255)?
        .ok_or_else(|| ApiError::validation(format!("{at}/price_id"), "price_id is required"))
        .and_then(|p| stripe_id(&p, &["price_", "plan_"], &format!("{at}/price_id"), "price"))?;
    // A link sells its price to whoever opens it: the catalogue's prices only, unless the
    // app's policy opens others.
    let gate = crate::services::policy::Gate::Price(price.clone(), format!("{at}/price_id"));
    crate::services::policy::enforce(state, caller, &[gate]).await?;
    let quantity = bounded(
        fields.quantity.unwrap_or(1),
        1,
        10_000,
        &format!("{at}/quantity"),
        "quantity",
    )?;
    let metadata = Metadata::parse(fields.metadata.as_ref(), &format!("{at}/metadata"))?.0;
    let mut link = caller
        .tenant
        .stripe
        .create_payment_link(
            &NewPaymentLink {
                line_items: vec![LinkItem {
                    price: price.clone(),
                    quantity,
                }],
                metadata,
            },
            caller.stripe_key(),
        )
        .await?;
    // Stripe's answer leaves its line items out (unless expanded): we know the one we sent.
    link.line_item.get_or_insert((price, quantity));
    let tenant_id = caller.tenant.id.clone();
    let now = chrono::Utc::now().timestamp();
    state
        .db
        .run(move |conn| Ok(rows::record_created(conn, &tenant_id, &link, now)?))
        .await
}

/// A payment link of the app, by our unique id or `plink_` id.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<PaymentLinkRow, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let wanted = any_id.to_owned();
    state
        .db
        .run(move |conn| Ok::<_, ApiError>(rows::find(conn, &tenant_id, &wanted)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No payment link {any_id:?} in this app.")))
}

/// One page of the app's payment links (active, deactivated or both), newest first.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    query: &PaymentLinksQuery,
) -> Result<(Page<PaymentLinkRow>, Paging), ApiError> {
    let paging = Paging::parse(query.paging(), FirstPage::Pages)?;
    let activity = activity(query.active.as_deref())?;
    let tenant_id = caller.tenant.id.clone();
    let reading = paging.clone();
    let page = state
        .db
        .run(move |conn| {
            listing::snapshot(conn, reading.offset_page(), |conn| {
                let start = paging::start(&reading, "payment link", |id| {
                    rows::list_position(conn, &tenant_id, id)
                })?;
                rows::list(conn, &tenant_id, activity, &start, reading.limit())
                    .map_err(ApiError::from)
            })
        })
        .await?;
    Ok((page, paging))
}

/// Checks a payment link change (admins only; nothing is asked of Stripe yet).
pub fn parse_change(
    caller: &Caller,
    fields: UpdatePaymentLinkFields,
    at: &str,
) -> Result<PaymentLinkChange, ApiError> {
    caller.require_admin(ADMINS)?;
    let metadata = match fields.metadata {
        None | Some(Value::Null) => None,
        Some(value) => Some(Metadata::parse(Some(&value), &format!("{at}/metadata"))?.0),
    };
    if fields.active.is_none() && metadata.is_none() {
        return Err(ApiError::validation(
            at.to_owned(),
            "nothing to change: send active or metadata",
        ));
    }
    Ok(PaymentLinkChange {
        active: fields.active,
        metadata,
    })
}

/// Changes a payment link of the app at Stripe (deactivates or reactivates it) and mirrors
/// Stripe's answer.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
    change: PaymentLinkChange,
) -> Result<PaymentLinkRow, ApiError> {
    let link = get(state, caller, any_id).await?;
    let snapshot = caller
        .tenant
        .stripe
        .update_payment_link(&link.stripe_payment_link_id, &change, caller.stripe_key())
        .await?;
    let tenant_id = caller.tenant.id.clone();
    let now = chrono::Utc::now().timestamp();
    state
        .db
        .run(move |conn| Ok(rows::record(conn, &tenant_id, &snapshot, now)?))
        .await
}
