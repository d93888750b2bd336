//! Checkout sessions: validated input, creation at Stripe, the mirror, and refresh on read.

use serde::Deserialize;

use crate::caller::Caller;
use crate::db::checkout_sessions::{self as rows, CheckoutSessionRow};
use crate::domain::{Email, Metadata, bounded, optional_text, parse_web_url, stripe_id};
use crate::error::ApiError;
use crate::services::policy::{Choice, Gate};
use crate::services::{mirror, owned};
use crate::state::AppState;
use crate::stripe::requests::NewCheckout;

/// One line item as the spec sends it (`price_id`), or with Stripe's name (`price`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LineItemFields {
    pub price_id: Option<String>,
    pub price: Option<String>,
    pub quantity: Option<i64>,
}

/// The raw fields of a create-session request (spec and SDK shapes).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateSessionFields {
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    /// `payment` (default), `subscription` or `setup`.
    pub mode: Option<String>,
    /// The spec's items.
    pub line_items: Option<Vec<LineItemFields>>,
    /// The SDK's single item.
    pub price: Option<String>,
    pub quantity: Option<i64>,
    /// A `cus_` id, our customer unique id or the user unique id.
    pub customer_id: Option<String>,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub trial_period_days: Option<i64>,
    pub allow_promotion_codes: Option<bool>,
    pub coupon_id: Option<String>,
    pub coupon: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

const MODES: [&str; 3] = ["payment", "subscription", "setup"];

fn quantity(raw: Option<i64>, pointer: &str) -> Result<u64, ApiError> {
    let q = bounded(raw.unwrap_or(1), 1, 999_999, pointer, "quantity")?;
    Ok(u64::try_from(q).unwrap_or(1))
}

/// Validates the request; the customer reference is resolved separately (it needs the
/// database).
/// A checked session request: what to send Stripe, the customer as named, and the
/// money-moving choices it makes (the tenant's policy decides).
pub struct SessionRequest {
    pub new: NewCheckout,
    pub customer: Option<String>,
    pub gates: Vec<Gate>,
}

pub fn parse(fields: CreateSessionFields, at: &str) -> Result<SessionRequest, ApiError> {
    let mut gates = Vec::new();
    let url = |raw: Option<String>, name: &str| -> Result<String, ApiError> {
        let pointer = format!("{at}/{name}");
        match optional_text(raw, &pointer, 2048)? {
            Some(u) => parse_web_url(&u, &pointer),
            None => Err(ApiError::validation(pointer, format!("{name} is required"))),
        }
    };
    let success_url = url(fields.success_url, "success_url")?;
    let cancel_url = url(fields.cancel_url, "cancel_url")?;
    let mode = fields
        .mode
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .unwrap_or("payment")
        .to_owned();
    if !MODES.contains(&mode.as_str()) {
        return Err(ApiError::validation(
            format!("{at}/mode"),
            format!("mode must be payment, subscription or setup (got {mode:?})"),
        ));
    }
    let mut line_items = Vec::new();
    if let Some(items) = fields.line_items {
        for (i, item) in items.into_iter().enumerate() {
            let pointer = format!("{at}/line_items/{i}");
            let raw = item.price_id.or(item.price).ok_or_else(|| {
                ApiError::validation(format!("{pointer}/price_id"), "price_id is required")
            })?;
            let price = stripe_id(
                &raw,
                &["price_", "plan_"],
                &format!("{pointer}/price_id"),
                "price",
            )?;
            gates.push(Gate::Price(price.clone(), format!("{pointer}/price_id")));
            line_items.push((
                price,
                quantity(item.quantity, &format!("{pointer}/quantity"))?,
            ));
        }
    }
    if let Some(raw) = fields.price {
        let price = stripe_id(&raw, &["price_", "plan_"], &format!("{at}/price"), "price")?;
        gates.push(Gate::Price(price.clone(), format!("{at}/price")));
        line_items.push((price, quantity(fields.quantity, &format!("{at}/quantity"))?));
    }
    if mode != "setup" && line_items.is_empty() {
        return Err(ApiError::validation(
            format!("{at}/line_items"),
            format!("a {mode} session needs line_items (or price and quantity)"),
        ));
    }
    if line_items.len() > 100 {
        return Err(ApiError::validation(
            format!("{at}/line_items"),
            "at most 100 line items",
        ));
    }
    let trial_period_days = match fields.trial_period_days {
        Some(days) => {
            let days = bounded(
                days,
                0,
                730,
                &format!("{at}/trial_period_days"),
                "trial_period_days",
            )?;
            if days > 0 && mode != "subscription" {
                return Err(ApiError::validation(
                    format!("{at}/trial_period_days"),
                    "trial_period_days applies to subscription mode only",
                ));
            }
            if days > 0 {
                gates.push(Gate::Choice(
                    Choice::TrialPeriodDays,
                    format!("{at}/trial_period_days"),
                ));
            }
            u32::try_from(days).ok()
        }
        None => None,
    };
    let customer_email =
        match optional_text(fields.customer_email, &format!("{at}/customer_email"), 512)? {
            Some(raw) => Some(
                Email::parse(&raw, &format!("{at}/customer_email"))?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        };
    let customer = optional_text(
        fields.customer_id.or(fields.customer),
        &format!("{at}/customer_id"),
        255,
    )?;
    let coupon = optional_text(
        fields.coupon_id.or(fields.coupon),
        &format!("{at}/coupon_id"),
        255,
    )?;
    if let Some(coupon) = &coupon {
        gates.push(Gate::Coupon(coupon.clone(), format!("{at}/coupon_id")));
    }
    // A promotion-code field lets the buyer apply codes nobody offered them.
    if fields.allow_promotion_codes == Some(true) {
        gates.push(Gate::Choice(
            Choice::Coupons,
            format!("{at}/allow_promotion_codes"),
        ));
    }
    Ok(SessionRequest {
        new: NewCheckout {
            mode,
            success_url,
            cancel_url,
            line_items,
            customer: None,
            customer_email,
            trial_period_days,
            allow_promotion_codes: fields.allow_promotion_codes,
            coupon,
            description: optional_text(fields.description, &format!("{at}/description"), 500)?,
            metadata: Metadata::parse(fields.metadata.as_ref(), &format!("{at}/metadata"))?.0,
        },
        customer,
        gates,
    })
}

/// Creates the session at Stripe and mirrors it.
pub async fn create_session(
    state: &AppState,
    caller: &Caller,
    request: SessionRequest,
) -> Result<CheckoutSessionRow, ApiError> {
    crate::services::policy::enforce(state, caller, &request.gates).await?;
    let mut new = request.new;
    if let Some(raw) = request.customer {
        new.customer = Some(
            owned::resolve_customer(state, caller, &raw)
                .await?
                .stripe_id,
        );
    }
    let snapshot = caller
        .tenant
        .stripe
        .create_checkout_session(new, caller.stripe_key())
        .await?;
    mirror::checkout_session(state, caller, snapshot).await
}

/// Reads the session from Stripe (our unique id or the `cs_` id), updates the mirror and
/// returns it. A session the caller cannot see is 404.
pub async fn refresh_session(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<CheckoutSessionRow, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let (visibility, wanted) = (caller.visibility(), any_id.to_owned());
    let row = state
        .db
        .run(move |conn| {
            rows::find_visible(conn, &tenant_id, &wanted, &visibility).map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("No checkout session {any_id:?} in this app."))
        })?;
    let snapshot = caller
        .tenant
        .stripe
        .retrieve_checkout_session(&row.stripe_session_id)
        .await?;
    let tenant_id = caller.tenant.id.clone();
    state
        .db
        .run(move |conn| {
            let now = chrono::Utc::now().timestamp();
            rows::record(conn, &tenant_id, &row.owner_subject, &snapshot, now)
                .map_err(ApiError::from)
        })
        .await
}
