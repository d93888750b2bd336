//! `PUT /stripe/orders/{order_unique_id}` (admins record what an order charges) and
//! `GET /stripe/orders/{order_unique_id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::orders::OrderRow;
use crate::domain::Metadata;
use crate::error::ApiError;
use crate::http::jsonapi::{self, parse_body, timestamp};
use crate::services::orders::{self, OrderFields};
use crate::state::AppState;

const KIND: &str = "stripe_order";

/// An order as clients read it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderAttributes {
    pub unique_id: String,
    /// The app's own order id.
    pub order_unique_id: String,
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// The user it is for; null: any user of the app may pay it.
    pub user_unique_id: Option<String>,
    /// `recorded` (PUT by an admin) or `lookup` (answered by the app's order_lookup_url).
    pub source: String,
    /// The `pi_...` id of its payment, once one was created.
    pub payment_intent_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<OrderRow> for OrderAttributes {
    fn from(o: OrderRow) -> Self {
        Self {
            unique_id: o.id,
            order_unique_id: o.order_unique_id,
            amount: o.amount,
            currency: o.currency,
            description: o.description,
            metadata: Metadata::from_stored(&o.metadata),
            user_unique_id: o.user_unique_id,
            source: o.source,
            payment_intent_id: o.stripe_payment_intent_id,
            created_at: timestamp(o.created_at),
            updated_at: timestamp(o.updated_at),
        }
    }
}

fn render(status: StatusCode, row: OrderRow) -> HttpResponse {
    let id = row.id.clone();
    jsonapi::resource(status, KIND, &id, &OrderAttributes::from(row))
}

#[utoipa::path(
    put, path = "/stripe/orders/{order_unique_id}", tag = "orders",
    params(("order_unique_id" = String, Path, description = "The app's own order id")),
    request_body(content = OrderFields, description = "Wrapped as {\"order\": {...}}"),
    responses(
        (status = 201, description = "Recorded", body = OrderAttributes),
        (status = 200, description = "Changed (or the same terms again)", body = OrderAttributes),
        (status = 403, description = "Admins only"),
        (status = 409, description = "order_paid: the order has a payment and its terms differ"),
        (status = 422, description = "Invalid attribute"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn put_order(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin("record orders")?;
    let id = orders::order_id(&path.into_inner(), "/order_unique_id")
        .map_err(|err| ApiError::bad_request("invalid_path", err.detail.clone()))?;
    let (fields, at) = parse_body::<OrderFields>(body.into_inner(), "order")?;
    let terms = orders::parse_terms(fields, &at)?;
    let (row, created) = orders::record(&state, &caller, id, terms).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(render(status, row))
}

#[utoipa::path(
    get, path = "/stripe/orders/{order_unique_id}", tag = "orders",
    params(("order_unique_id" = String, Path, description = "The app's own order id")),
    responses(
        (status = 200, description = "The order", body = OrderAttributes),
        (status = 404, description = "No such order, or not the caller's (admins read every order)"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn get_order(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = orders::order_id(&path.into_inner(), "/order_unique_id")
        .map_err(|err| ApiError::bad_request("invalid_path", err.detail.clone()))?;
    Ok(render(
        StatusCode::OK,
        orders::read(&state, &caller, &id).await?,
    ))
}
