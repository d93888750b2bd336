//! `GET/POST /stripe/customers`, `GET /stripe/customers/{unique_id}` and
//! `POST /stripe/customers/{unique_id}/portal`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::customers::Customer;
use crate::domain::Metadata;
use crate::error::ApiError;
use crate::http::jsonapi::{self, ListMeta, parse_body, timestamp, unix_timestamp};
use crate::services::customers::{
    self, CreateCustomerFields, CustomerUpdate, ListCustomersQuery, NewCustomerInput, PortalFields,
    UpdateCustomerFields,
};
use crate::state::AppState;

/// A customer as clients read it (API_CONTRACT.md, POST /stripe/customers).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerAttributes {
    pub unique_id: String,
    /// Same as `unique_id` (the SDK's name).
    pub customer_id: String,
    /// The `cus_...` id.
    pub stripe_customer_id: String,
    /// Same as `stripe_customer_id`.
    pub stripe_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub description: Option<String>,
    pub default_payment_method: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub user_unique_id: Option<String>,
    pub identity_type: String,
    pub company_unique_id: Option<String>,
    pub entity_unique_id: Option<String>,
    pub entity_type: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// When it was deleted (only in the answer to `DELETE`: deleted customers are 404).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

impl From<Customer> for CustomerAttributes {
    fn from(c: Customer) -> Self {
        Self {
            customer_id: c.id.clone(),
            unique_id: c.id,
            stripe_id: c.stripe_customer_id.clone(),
            stripe_customer_id: c.stripe_customer_id,
            email: c.email,
            name: c.name,
            phone: c.phone,
            description: c.description,
            default_payment_method: c.default_payment_method,
            metadata: Metadata::from_stored(&c.metadata),
            user_unique_id: c.user_unique_id,
            identity_type: c.identity_type,
            company_unique_id: c.company_unique_id,
            entity_unique_id: c.entity_unique_id,
            entity_type: c.entity_type,
            created_at: timestamp(c.created_at),
            updated_at: timestamp(c.updated_at),
            deleted_at: c.deleted_at.map(timestamp),
        }
    }
}

/// A billing portal session (API_CONTRACT.md, POST /stripe/customers/:unique_id/portal).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortalAttributes {
    pub url: String,
    pub return_url: Option<String>,
    /// Stripe's portal links are short-lived: five minutes after creation.
    pub expires_at: Option<String>,
    pub stripe_session_id: String,
    /// The `cus_...` id.
    pub customer: String,
    /// Our customer unique id.
    pub customer_id: String,
    pub created_at: Option<String>,
}

/// How long Stripe keeps a billing portal session URL usable.
const PORTAL_SESSION_SECS: i64 = 5 * 60;

#[utoipa::path(
    post, path = "/stripe/customers", tag = "customers",
    request_body(content = CreateCustomerFields, description = "Wrapped as {\"customer\": {...}}"),
    responses(
        (status = 201, description = "The customer, created at Stripe and mirrored", body = CustomerAttributes),
        (status = 403, description = "identity_not_yours: a user named another user, company or entity as the customer's identity (only admins may)"),
        (status = 401, description = "Missing or invalid api key or token"),
        (status = 422, description = "Invalid attribute, or refused by Stripe"),
        (status = 502, description = "Stripe unreachable"),
        (status = 504, description = "Stripe timed out"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn create_customer(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<CreateCustomerFields>(body.into_inner(), "customer")?;
    let input = NewCustomerInput::parse(fields, &at)?;
    let customer = customers::create_customer(&state, &caller, input).await?;
    let id = customer.id.clone();
    Ok(jsonapi::resource(
        StatusCode::CREATED,
        KIND,
        &id,
        &CustomerAttributes::from(customer),
    ))
}

const KIND: &str = "stripe_customer";

#[utoipa::path(
    get, path = "/stripe/customers", tag = "customers",
    params(ListCustomersQuery),
    responses(
        (status = 200, description = "The customers the caller sees (admins: all of the app's), not deleted, newest first. With limit/starting_after/ending_before, meta has has_more, limit, per_page, total_count, totalRecords; with page/records, meta has current_page, total_pages, total_count, per_page, totalPages, totalRecords and has_more", body = [CustomerAttributes]),
        (status = 400, description = "limit, page or records out of range, both kinds of paging, both cursors, or a cursor naming no customer the caller sees"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn list_customers(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListCustomersQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = customers::parse_list(&query)?;
    let page = customers::list_customers(&state, &caller, paging.clone()).await?;
    let meta = ListMeta::new(&paging, page.total, page.has_more);
    let items: Vec<(String, CustomerAttributes)> = page
        .rows
        .into_iter()
        .map(|row| (row.id.clone(), CustomerAttributes::from(row)))
        .collect();
    Ok(jsonapi::list(KIND, &items, &meta))
}

/// `GET /stripe/customers/{unique_id}`'s query.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct GetCustomerQuery {
    /// `true`: read the customer from Stripe and update the mirror first.
    pub refresh: Option<bool>,
}

fn render(status: StatusCode, customer: Customer) -> HttpResponse {
    let id = customer.id.clone();
    jsonapi::resource(status, KIND, &id, &CustomerAttributes::from(customer))
}

#[utoipa::path(
    get, path = "/stripe/customers/{unique_id}", tag = "customers",
    params(("unique_id" = String, Path, description = "Our customer unique id, the user unique id it was created for, or the cus_ id"), GetCustomerQuery),
    responses(
        (status = 200, description = "The customer, from the mirror (refreshed from Stripe first with refresh=true)", body = CustomerAttributes),
        (status = 400, description = "refresh is not true or false"),
        (status = 404, description = "No such customer for this caller (or deleted, at Stripe too)"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn get_customer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<GetCustomerQuery>,
) -> Result<HttpResponse, ApiError> {
    let any_id = path.into_inner();
    let customer = if query.refresh == Some(true) {
        customers::refresh_customer(&state, &caller, &any_id).await?
    } else {
        customers::find_customer(&state, &caller, &any_id).await?
    };
    Ok(render(StatusCode::OK, customer))
}

#[utoipa::path(
    put, path = "/stripe/customers/{unique_id}", tag = "customers",
    params(("unique_id" = String, Path, description = "Our customer unique id, the user unique id it was created for, or the cus_ id")),
    request_body(content = UpdateCustomerFields, description = "Wrapped as {\"customer\": {...}}"),
    responses(
        (status = 200, description = "The customer, changed at Stripe and mirrored", body = CustomerAttributes),
        (status = 404, description = "No such customer for this caller (admins: any of the app's; others: their own)"),
        (status = 422, description = "Invalid field, nothing to change, a card that is not the customer's, or refused by Stripe"),
        (status = 502, description = "Stripe unreachable"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn update_customer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<UpdateCustomerFields>(body.into_inner(), "customer")?;
    let update = CustomerUpdate::parse(fields, &at)?;
    let customer = customers::update_customer(&state, &caller, &path.into_inner(), update).await?;
    Ok(render(StatusCode::OK, customer))
}

#[utoipa::path(
    delete, path = "/stripe/customers/{unique_id}", tag = "customers",
    params(("unique_id" = String, Path, description = "Our customer unique id, the user unique id it was created for, or the cus_ id")),
    responses(
        (status = 200, description = "Deleted at Stripe, which cancels the customer's subscriptions at once; the mirror marks it deleted (deleted_at set) and its subscriptions canceled. Later reads are 404", body = CustomerAttributes),
        (status = 404, description = "No such customer for this caller (or already deleted)"),
        (status = 502, description = "Stripe unreachable"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn delete_customer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let customer = customers::delete_customer(&state, &caller, &path.into_inner()).await?;
    Ok(render(StatusCode::OK, customer))
}

#[utoipa::path(
    post, path = "/stripe/customers/{unique_id}/portal", tag = "customers",
    params(("unique_id" = String, Path, description = "Our customer unique id, the user unique id it was created for, or the cus_ id")),
    request_body(content = PortalFields, description = "Wrapped as {\"portal\": {...}}"),
    responses(
        (status = 200, description = "A billing portal session", body = PortalAttributes),
        (status = 404, description = "No such customer for this caller"),
        (status = 422, description = "Invalid return_url"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn create_portal(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<PortalFields>(body.into_inner(), "portal")?;
    let (customer, session) =
        customers::open_portal(&state, &caller, &path.into_inner(), fields, &at).await?;
    let attributes = PortalAttributes {
        url: session.url,
        return_url: session.return_url,
        expires_at: unix_timestamp(session.created + PORTAL_SESSION_SECS),
        stripe_session_id: session.id.clone(),
        customer: customer.stripe_customer_id,
        customer_id: customer.id,
        created_at: unix_timestamp(session.created),
    };
    Ok(jsonapi::resource(
        StatusCode::OK,
        "portal_session",
        &session.id,
        &attributes,
    ))
}
