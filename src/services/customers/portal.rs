//! Billing portal sessions for a customer of the caller's.

use crate::caller::Caller;
use crate::db::customers::Customer;
use crate::domain::{optional_text, parse_web_url};
use crate::error::ApiError;
use crate::services::owned::find_customer;
use crate::state::AppState;
use crate::stripe::objects::PortalSession;

/// The raw fields of a portal request.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct PortalFields {
    /// Where Stripe sends the customer back to; an absolute http(s) URL.
    pub return_url: Option<String>,
    /// Optional; when given it must name the same customer as the path.
    pub customer_id: Option<String>,
}

/// Opens a Stripe billing portal session for the customer `any_id` names.
pub async fn open_portal(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
    fields: PortalFields,
    at: &str,
) -> Result<(Customer, PortalSession), ApiError> {
    let return_url = match optional_text(fields.return_url, &format!("{at}/return_url"), 2048)? {
        Some(raw) => parse_web_url(&raw, &format!("{at}/return_url"))?,
        None => {
            return Err(ApiError::validation(
                format!("{at}/return_url"),
                "return_url is required: the page Stripe sends the customer back to",
            ));
        }
    };
    let customer = find_customer(state, caller, any_id).await?;
    if let Some(other) = optional_text(fields.customer_id, &format!("{at}/customer_id"), 255)?
        && other != customer.id
        && other != customer.stripe_customer_id
        && customer.user_unique_id.as_deref() != Some(other.as_str())
    {
        return Err(ApiError::validation(
            format!("{at}/customer_id"),
            "customer_id names a different customer than the URL",
        ));
    }
    let session = caller
        .tenant
        .stripe
        .create_portal_session(
            &customer.stripe_customer_id,
            &return_url,
            caller.stripe_key(),
        )
        .await?;
    Ok((customer, session))
}
