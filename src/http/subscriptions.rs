//! `GET/POST /stripe/subscriptions`, `PUT/DELETE /stripe/subscriptions/{stripe_subscription_id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::subscriptions::SubscriptionRow;
use crate::domain::Metadata;
use crate::error::ApiError;
use crate::http::jsonapi::{self, ListMeta, parse_body, timestamp};
use crate::services::subscriptions::{
    self, CreateSubscriptionFields, ListQuery, UpdateSubscriptionFields,
};
use crate::state::AppState;

/// A subscription as clients read it (API_CONTRACT.md, POST /stripe/subscriptions).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionAttributes {
    pub unique_id: String,
    pub stripe_subscription_id: String,
    /// Same as `stripe_subscription_id`.
    pub stripe_id: String,
    pub stripe_customer_id: String,
    /// Same as `stripe_customer_id` (the `cus_...` id).
    pub customer_id: String,
    /// trialing, active, past_due, canceled, unpaid, incomplete...
    pub status: String,
    pub current_period_start: Option<String>,
    pub current_period_end: Option<String>,
    pub trial_end: Option<String>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<String>,
    /// Same as `canceled_at`.
    pub cancelled_at: Option<String>,
    pub price_id: Option<String>,
    pub quantity: Option<i64>,
    pub plan_amount: Option<i64>,
    pub plan_currency: Option<String>,
    pub plan_interval: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl From<SubscriptionRow> for SubscriptionAttributes {
    fn from(s: SubscriptionRow) -> Self {
        let canceled_at = s.canceled_at.map(timestamp);
        Self {
            unique_id: s.id,
            stripe_id: s.stripe_subscription_id.clone(),
            stripe_subscription_id: s.stripe_subscription_id,
            customer_id: s.stripe_customer_id.clone(),
            stripe_customer_id: s.stripe_customer_id,
            status: s.status,
            current_period_start: s.current_period_start.map(timestamp),
            current_period_end: s.current_period_end.map(timestamp),
            trial_end: s.trial_end.map(timestamp),
            cancel_at_period_end: s.cancel_at_period_end,
            cancelled_at: canceled_at.clone(),
            canceled_at,
            price_id: s.price_id,
            quantity: s.quantity,
            plan_amount: s.plan_amount,
            plan_currency: s.plan_currency,
            plan_interval: s.plan_interval,
            metadata: Metadata::from_stored(&s.metadata),
            created_at: timestamp(s.created_at),
            updated_at: timestamp(s.updated_at),
        }
    }
}

const KIND: &str = "stripe_subscription";

fn render(status: StatusCode, row: SubscriptionRow) -> HttpResponse {
    let id = row.id.clone();
    jsonapi::resource(status, KIND, &id, &SubscriptionAttributes::from(row))
}

#[utoipa::path(
    get, path = "/stripe/subscriptions", tag = "subscriptions",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of subscriptions from the mirror, newest first. With page/records (the default), meta has current_page, total_pages, total_count, per_page, totalPages, totalRecords and has_more; with limit/starting_after/ending_before, meta has has_more, limit, per_page, total_count, totalRecords", body = [SubscriptionAttributes]),
        (status = 400, description = "page, records, limit or status out of range, both kinds of paging, both cursors, or a cursor naming no subscription the caller sees"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn list_subscriptions(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let request = subscriptions::parse_list(&query)?;
    let paging = request.paging.clone();
    let page = subscriptions::list(&state, &caller, request).await?;
    let items: Vec<(String, SubscriptionAttributes)> = page
        .rows
        .into_iter()
        .map(|row| (row.id.clone(), SubscriptionAttributes::from(row)))
        .collect();
    let meta = ListMeta::new(&paging, page.total, page.has_more);
    Ok(jsonapi::list(KIND, &items, &meta))
}

#[utoipa::path(
    post, path = "/stripe/subscriptions", tag = "subscriptions",
    request_body(content = CreateSubscriptionFields, description = "Wrapped as {\"subscription\": {...}}"),
    responses(
        (status = 201, description = "The subscription, created at Stripe and mirrored", body = SubscriptionAttributes),
        (status = 403, description = "forbidden_by_policy: a user chose what the app's policy keeps for admins (a price outside the catalogue, a coupon not offered, a trial); source.pointer names it"),
        (status = 404, description = "The customer is not one of the caller's"),
        (status = 422, description = "Invalid attribute, or refused by Stripe (unknown price, coupon...)"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn create_subscription(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<CreateSubscriptionFields>(body.into_inner(), "subscription")?;
    let request = subscriptions::parse_new(fields, &at)?;
    let row = subscriptions::create(&state, &caller, request).await?;
    Ok(render(StatusCode::CREATED, row))
}

#[utoipa::path(
    put, path = "/stripe/subscriptions/{stripe_subscription_id}", tag = "subscriptions",
    params(("stripe_subscription_id" = String, Path, description = "The sub_ id or our unique id")),
    request_body(content = UpdateSubscriptionFields, description = "Wrapped as {\"subscription\": {...}}"),
    responses(
        (status = 200, description = "The subscription after the change", body = SubscriptionAttributes),
        (status = 403, description = "forbidden_by_policy: a user chose what the app's policy keeps for admins (a price outside the catalogue, proration); source.pointer names it"),
        (status = 404, description = "No such subscription for this caller"),
        (status = 422, description = "Invalid attribute, or refused by Stripe"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn update_subscription(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<UpdateSubscriptionFields>(body.into_inner(), "subscription")?;
    let change = subscriptions::parse_change(fields, &at)?;
    let row = subscriptions::update(&state, &caller, &path.into_inner(), change).await?;
    Ok(render(StatusCode::OK, row))
}

#[utoipa::path(
    delete, path = "/stripe/subscriptions/{stripe_subscription_id}", tag = "subscriptions",
    params(("stripe_subscription_id" = String, Path, description = "The sub_ id or our unique id")),
    responses(
        (status = 200, description = "Canceled now at Stripe: status canceled, canceled_at set", body = SubscriptionAttributes),
        (status = 404, description = "No such subscription for this caller"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn cancel_subscription(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = subscriptions::cancel(&state, &caller, &path.into_inner()).await?;
    Ok(render(StatusCode::OK, row))
}
