//! An order's terms as clients and the tenant's order lookup give them (issue 12, point 5):
//! the fields, their checks, and how long a payment claim on an order lasts. Below both
//! `services::orders` (which records them) and `orders::lookup` (which fetches them).

use serde::Deserialize;

use crate::db::orders::OrderTerms;
use crate::domain::{Metadata, bounded, optional_text, required_currency};
use crate::error::ApiError;

/// Stripe's ceiling for one charge in the smallest unit.
pub const MAX_AMOUNT: i64 = 99_999_999;

/// The fields of `PUT /stripe/orders/{order_unique_id}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct OrderFields {
    /// In the currency's smallest unit. Required.
    pub amount: Option<i64>,
    /// Three-letter ISO code. Required.
    pub currency: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// The user the order is for (a token's `sub`): only they, and admins, read and pay it.
    /// Without it any user of the app may pay it.
    pub user_unique_id: Option<String>,
}

/// Checked order terms, from a body (`at` is where its fields are).
pub fn parse_terms(fields: OrderFields, at: &str) -> Result<OrderTerms, ApiError> {
    let amount = fields.amount.ok_or_else(|| {
        ApiError::validation(
            format!("{at}/amount"),
            "amount is required: an integer in the currency's smallest unit (999 for $9.99)",
        )
    })?;
    let amount = bounded(amount, 1, MAX_AMOUNT, &format!("{at}/amount"), "amount")?;
    let currency = required_currency(fields.currency, &format!("{at}/currency"))?;
    let metadata = Metadata::parse(fields.metadata.as_ref(), &format!("{at}/metadata"))?;
    let user_unique_id =
        optional_text(fields.user_unique_id, &format!("{at}/user_unique_id"), 255)?;
    // What goes in Stripe's metadata must be text PostgreSQL and Stripe accept.
    if let Some(metadata) = &fields.metadata {
        crate::domain::ids::check_body(metadata, &format!("{at}/metadata"))?;
    }
    if user_unique_id
        .as_deref()
        .is_some_and(|u| u.chars().any(char::is_control))
    {
        return Err(ApiError::validation(
            format!("{at}/user_unique_id"),
            "user_unique_id must be printable text",
        ));
    }
    let description = optional_text(fields.description, &format!("{at}/description"), 1000)?;
    if description
        .as_deref()
        .is_some_and(|d| d.chars().any(|c| c.is_control() && c != '\n' && c != '\t'))
    {
        return Err(ApiError::validation(
            format!("{at}/description"),
            "description must be printable text",
        ));
    }
    Ok(OrderTerms {
        amount,
        currency,
        description,
        metadata: crate::db::stored_metadata(&metadata.0),
        user_unique_id,
    })
}

/// How long a request may hold an order's payment claim: far above its Stripe calls.
pub const PAYMENT_LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);
