//! Connecting a tenant's Stripe account (docs/API.md, "Connecting a Stripe account"):
//! `GET /stripe/auth/login`, `GET /stripe/public/auth/callback` (browsers, from Stripe),
//! `POST /stripe/auth/claim`, `GET`/`DELETE /stripe/account`, and the platform's Connect
//! webhook `POST /stripe/public/webhook` (Stripe).

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::caller::Caller;
use crate::error::ApiError;
use crate::http::jsonapi::{self, parse_body};
use crate::receiver;
use crate::services::connect::{
    self, AccountView, Authorization, CallbackOutcome, CallbackQuery, ClaimFields, LoginQuery,
};
use crate::state::AppState;

const ACCOUNT: &str = "stripe_account";

#[utoipa::path(
    get, path = "/stripe/auth/login", tag = "connect",
    params(LoginQuery),
    responses(
        (status = 200, description = "Where to send the admin's browser: Stripe's authorize page (Connect) or the app's install link; the state inside is single use for 10 minutes", body = Authorization),
        (status = 403, description = "Not an admin"),
        (status = 409, description = "connect_not_configured: the operator has not set the platform's key or client id"),
        (status = 422, description = "An unknown flow, or a return_url whose origin is not allowed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn login(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, ApiError> {
    let authorization = connect::login(&state, &caller, query.into_inner()).await?;
    Ok(jsonapi::resource(
        StatusCode::OK,
        "stripe_authorization",
        &caller.tenant.id,
        &authorization,
    ))
}

#[utoipa::path(
    get, path = "/stripe/public/auth/callback", tag = "connect",
    params(CallbackQuery),
    responses(
        (status = 303, description = "To the login's return_url (with connected=acct_... or error=...), or, for an install started on Stripe's side, to connect_claim_url with claim_token"),
        (status = 200, description = "A small HTML page saying which account is now connected (or why not) when the login had no return_url"),
        (status = 400, description = "invalid_state (unknown or replayed), state_expired, missing_code, invalid_grant (a code used twice or expired), invalid_signature; nothing stored"),
        (status = 409, description = "account_in_use (another app holds the account) or connect_not_configured"),
        (status = 429, description = "Too many installs started on Stripe's side at once"),
        (status = 502, description = "Stripe unreachable or refused the exchange"),
    )
)]
pub async fn callback(
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(match connect::callback(&state, query.into_inner()).await? {
        CallbackOutcome::Redirect(url) => HttpResponse::SeeOther()
            .insert_header((LOCATION, url))
            .insert_header((CACHE_CONTROL, "no-store"))
            .finish(),
        CallbackOutcome::Page {
            status,
            title,
            message,
        } => HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
                 <body><h1>{title}</h1><p>{message}</p></body></html>",
                title = html_escape::encode_text(&title),
                message = html_escape::encode_text(&message),
            )),
    })
}

#[utoipa::path(
    post, path = "/stripe/auth/claim", tag = "connect",
    request_body(content = ClaimFields, description = "Wrapped as {\"claim\": {...}}"),
    responses(
        (status = 200, description = "The installation is now this app's Stripe access", body = AccountView),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No installation waits under this token (single use)"),
        (status = 409, description = "account_in_use: another app holds the account"),
        (status = 410, description = "claim_expired: older than 10 minutes"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn claim(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin("connect a Stripe account")?;
    let (fields, at) = parse_body::<ClaimFields>(body.into_inner(), "claim")?;
    let view = connect::claim(&state, &caller, fields, &at).await?;
    Ok(account_resource(&caller, &view))
}

fn account_resource(caller: &Caller, view: &AccountView) -> HttpResponse {
    jsonapi::resource(StatusCode::OK, ACCOUNT, &caller.tenant.id, view)
}

#[utoipa::path(
    get, path = "/stripe/account", tag = "connect",
    responses(
        (status = 200, description = "How this app reaches Stripe (never a secret)", body = AccountView),
        (status = 403, description = "Not an admin"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn get_account(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let view = connect::account(&state, &caller).await?;
    Ok(account_resource(&caller, &view))
}

#[utoipa::path(
    delete, path = "/stripe/account", tag = "connect",
    responses(
        (status = 200, description = "Disconnected (Connect: deauthorized at Stripe); calls reaching Stripe answer 409 not_connected until an admin connects again", body = AccountView),
        (status = 403, description = "Not an admin"),
        (status = 409, description = "not_connected: already disconnected, or the app uses its own secret key"),
        (status = 502, description = "Stripe unreachable: nothing changed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn delete_account(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin("disconnect the Stripe account")?;
    let view = connect::disconnect(&state, &caller).await?;
    Ok(account_resource(&caller, &view))
}

#[utoipa::path(
    post, path = "/stripe/public/webhook", tag = "webhooks",
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex>[,v1=...], with one of the platform's Connect endpoint secrets")),
    request_body(content = Object, description = "A Stripe event of a connected account (top-level `account`)"),
    responses(
        (status = 200, description = "Stored once for the tenant connected to the event's account and applied, or acknowledged without a tenant: {\"received\": true}"),
        (status = 400, description = "Missing, malformed, stale or wrong signature, or not an event; nothing written"),
        (status = 404, description = "No platform webhook secret is configured"),
        (status = 503, description = "Storage unavailable: Stripe retries"),
    )
)]
pub async fn platform_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = super::receiver::event_body(body)?;
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let secrets: Vec<String> = state
        .settings
        .stripe_platform_webhook_secrets
        .expose_secret()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let outcome = match receiver::receive_platform(&state.receiver, secrets, signature, &body).await
    {
        Ok(outcome) => outcome,
        Err(error) => {
            crate::metrics::delivery(format!("refused_{}", error.status.as_u16()));
            return Err(error);
        }
    };
    crate::metrics::delivery(outcome.to_owned());
    tracing::info!(stripe.outcome = outcome, "stripe platform event");
    Ok(HttpResponse::Ok().json(json!({ "received": true })))
}
