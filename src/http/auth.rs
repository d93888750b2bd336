//! The one authentication extractor: the tenant from its api key header, then the caller from
//! a Bearer JWT verified with that tenant's key (API_CONTRACT.md, Headers).

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};

use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Header names that carry the tenant key, in the order they are looked at: the SDK's today,
/// the spec's, then older SDKs' and the vendor docs'.
pub const API_KEY_HEADERS: [&str; 4] = ["x-api-key", "appid", "api-key", "x-app-id"];
const TENANT_ID_HEADER: &str = "tenant-id";

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|s| Some(s.trim()).filter(|s| !s.is_empty()))
            .map_err(|_| {
                ApiError::bad_request("invalid_header", format!("the {name} header is not text"))
                    .with_header(name)
            }),
    }
}

struct Credentials {
    api_key: String,
    tenant_id: Option<String>,
    bearer: Option<String>,
}

fn read_credentials(headers: &HeaderMap) -> Result<Credentials, ApiError> {
    let mut api_key = None;
    for name in API_KEY_HEADERS {
        if let Some(value) = header_text(headers, name)? {
            api_key = Some(value.to_owned());
            break;
        }
    }
    let api_key = api_key.ok_or_else(|| {
        ApiError::unauthorized(
            "missing_api_key",
            "Send your app's key in the x-api-key (or AppId) header.",
        )
        .with_header("x-api-key")
    })?;
    let tenant_id = header_text(headers, TENANT_ID_HEADER)?.map(str::to_owned);
    let bearer = match header_text(headers, AUTHORIZATION.as_str())? {
        None => None,
        Some(value) => {
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
                return Err(ApiError::unauthorized(
                    "invalid_authorization",
                    "The Authorization header must be `Bearer <token>`.",
                )
                .with_header("authorization"));
            }
            Some(token.trim().to_owned())
        }
    };
    Ok(Credentials {
        api_key,
        tenant_id,
        bearer,
    })
}

impl Caller {
    /// Authenticates a request by its headers: what the extractor does, for middleware that
    /// must know the caller before the handler runs (idempotency keys are per caller).
    pub fn authenticate(
        state: web::Data<AppState>,
        headers: &HeaderMap,
    ) -> impl Future<Output = Result<Self, ApiError>> + 'static {
        let credentials = read_credentials(headers);
        async move { authenticate(&state, credentials?).await }
    }
}

async fn authenticate(state: &AppState, credentials: Credentials) -> Result<Caller, ApiError> {
    let tenant = state
        .tenant_by_api_key(&credentials.api_key)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized("invalid_api_key", "No app has this api key.")
                .with_header("x-api-key")
        })?;
    crate::telemetry::record_tenant(&tenant.id);
    if let Some(claimed) = &credentials.tenant_id
        && claimed != &tenant.id
        && claimed != &tenant.name
    {
        return Err(ApiError::unauthorized(
            "tenant_mismatch",
            "The tenant-id header names a different app than the api key.",
        )
        .with_header(TENANT_ID_HEADER));
    }
    let token = credentials.bearer.ok_or_else(|| {
        ApiError::unauthorized(
            "missing_token",
            "Send the user's token as `Authorization: Bearer <token>`.",
        )
        .with_header("authorization")
    })?;
    let principal = tenant.verify(&token).map_err(|why| {
        ApiError::unauthorized(
            "invalid_token",
            format!("The bearer token was refused: {why}."),
        )
        .with_header("authorization")
    })?;
    // The subject is stored and looked up as a user unique id: bounded like any id.
    if let Some(problem) = crate::domain::ids::id_problem(&principal.subject) {
        return Err(ApiError::unauthorized(
            "invalid_token",
            format!("The bearer token was refused: its sub {problem}."),
        )
        .with_header("authorization"));
    }
    // Told only to a caller with a valid token of the app: others learn nothing of its state.
    if tenant.disabled {
        return Err(ApiError::tenant_disabled());
    }
    // Per tenant and per caller, before any work (crate::ratelimit).
    state.limits.check(&tenant.id, &principal.subject)?;
    Ok(Caller {
        tenant,
        subject: principal.subject,
        admin: principal.admin,
        key: None,
    })
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Already authenticated by a middleware of this request (see `http::idempotency`).
        if let Some(caller) = req.extensions().get::<Caller>().cloned() {
            return Box::pin(std::future::ready(Ok(caller)));
        }
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let credentials = read_credentials(req.headers());
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("AppState is not registered"))?;
            authenticate(&state, credentials?).await
        })
    }
}
