//! `GET/PUT /stripe/policy` (admins): what the app lets its end users choose that moves money,
//! and where unknown orders are looked up.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::http::jsonapi::{self, parse_body};
use crate::services::policy::{self, Choice, Policy};
use crate::state::AppState;

const WHO: &str = "read or change the app's policy";

/// The fields of `PUT /stripe/policy`; those left out keep their value.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct PolicyFields {
    /// The choices users may make: any of `amount`, `refunds`, `coupons`,
    /// `trial_period_days`, `proration_none`, `uncatalogued_prices`. Replaces the list.
    pub allow: Option<Vec<String>>,
    /// Coupon ids users may apply although `coupons` is not allowed. Replaces the list.
    pub offered_coupons: Option<Vec<String>>,
    /// Where unknown orders are looked up (GET <url>/<order_unique_id>, signed); null removes
    /// it. Each new URL gets a new signing secret, shown once in this answer.
    #[serde(default, deserialize_with = "crate::domain::present")]
    #[schema(value_type = Option<String>)]
    pub order_lookup_url: Option<Option<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyAttributes {
    pub allow: Vec<&'static str>,
    /// Every choice a policy can allow.
    pub choices: Vec<&'static str>,
    pub offered_coupons: Vec<String>,
    pub order_lookup_url: Option<String>,
    /// Verifies `Sales-Signature` on order lookups; only in the answer that set a new URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_lookup_signing_secret: Option<String>,
}

fn render(tenant_id: &str, policy: Policy, secret: Option<String>) -> HttpResponse {
    jsonapi::resource(
        StatusCode::OK,
        "stripe_policy",
        tenant_id,
        &PolicyAttributes {
            allow: policy.allow_names(),
            choices: Choice::ALL.iter().map(|c| c.name()).collect(),
            offered_coupons: policy.offered_coupons.into_iter().collect(),
            order_lookup_url: policy.order_lookup_url,
            order_lookup_signing_secret: secret,
        },
    )
}

#[utoipa::path(
    get, path = "/stripe/policy", tag = "policy",
    responses(
        (status = 200, description = "The app's policy", body = PolicyAttributes),
        (status = 403, description = "Admins only"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn get_policy(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin(WHO)?;
    let policy = policy::load(&state, &caller.tenant.id).await?;
    Ok(render(&caller.tenant.id, policy, None))
}

#[utoipa::path(
    put, path = "/stripe/policy", tag = "policy",
    request_body(content = PolicyFields, description = "Wrapped as {\"policy\": {...}}"),
    responses(
        (status = 200, description = "Saved", body = PolicyAttributes),
        (status = 403, description = "Admins only"),
        (status = 422, description = "An unknown choice, a bad coupon id, or an order_lookup_url the egress policy refuses"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn put_policy(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin(WHO)?;
    let (fields, at) = parse_body::<PolicyFields>(body.into_inner(), "policy")?;
    let change = policy::parse_change(fields.allow, fields.offered_coupons, &at)?;
    let url = match fields.order_lookup_url {
        None => None,
        Some(None) => Some(None),
        Some(Some(raw)) => {
            let pointer = format!("{at}/order_lookup_url");
            let checked = state.egress.check_url(&raw, &pointer).await?;
            Some(Some(checked.to_string()))
        }
    };
    let (policy, secret) = policy::save(&state, &caller.tenant.id, change, url).await?;
    Ok(render(&caller.tenant.id, policy, secret))
}
