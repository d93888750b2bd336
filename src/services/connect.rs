//! Connecting a tenant's Stripe account (issue 18, ../shared/docs/CONNECT.md): the login that
//! sends an admin to Stripe, the callback Stripe sends the browser back to (a flow we led, or
//! an install started on Stripe's side that a signed-in admin then claims), what the tenant is
//! connected to, and disconnecting it.

use chrono::{NaiveDateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::caller::Caller;
use crate::config::Settings;
use crate::crypto::random_token;
use crate::db::connect::{
    self as rows, ACCESS_APP, ACCESS_CONNECT, ACCESS_NONE, ClaimRow, NewConnection, StateRow,
};
use crate::db::{DbError, tenants};
use crate::error::ApiError;
use crate::state::AppState;
use crate::stripe::oauth::{Grant, OAuthError};
use crate::tenants::platform::{ACCESS_TOKEN_LIFETIME, Platform};
use actix_web::http::StatusCode;

/// How long a login's `state` and an install's claim token stay valid.
const PENDING_MINUTES: i64 = 10;
/// The longest value of any callback parameter we accept (Stripe's are far shorter).
const MAX_PARAM_CHARS: usize = 2048;
/// The callback's path under the public URL (the `redirect_uri` given to Stripe).
pub const CALLBACK_PATH: &str = "/stripe/public/auth/callback";

/// The two ways to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Classic Connect OAuth: the platform's key plus `Stripe-Account`.
    Connect,
    /// Installing the platform's Stripe App: OAuth access and refresh tokens.
    App,
}

impl Flow {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "connect" => Some(Flow::Connect),
            "app" => Some(Flow::App),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Connect => "connect",
            Flow::App => "app",
        }
    }

    fn access(self) -> &'static str {
        match self {
            Flow::Connect => ACCESS_CONNECT,
            Flow::App => ACCESS_APP,
        }
    }
}

fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn not_configured(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "connect_not_configured",
        "Connect not configured",
        format!("This service is not set up for that: the operator must set {what}."),
    )
}

/// The platform, and the client id of the flow, or 409 saying what the operator must set.
fn configured(state: &AppState, flow: Flow) -> Result<(&std::sync::Arc<Platform>, &str), ApiError> {
    let platform = state
        .tenants
        .platform()
        .ok_or_else(|| not_configured("stripe_platform_secret_key"))?;
    let client_id = match flow {
        Flow::Connect => state.settings.stripe_connect_client_id.trim(),
        Flow::App => state.settings.stripe_app_client_id.trim(),
    };
    if client_id.is_empty() {
        return Err(not_configured(match flow {
            Flow::Connect => "stripe_connect_client_id",
            Flow::App => "stripe_app_client_id",
        }));
    }
    Ok((platform, client_id))
}

/// What a login answers: where to send the browser.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Authorization {
    pub flow: String,
    pub authorize_url: String,
    /// The state is single use and expires then.
    pub expires_at: String,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct LoginQuery {
    /// `connect` (default) or `app`.
    pub flow: Option<String>,
    /// Where the browser returns once connected; its origin must be allowed for the app.
    pub return_url: Option<String>,
}

/// The origins a `return_url` may have: the tenant's own list, else the operator's, else the
/// CORS origins (never `*`: a wildcard would make the callback an open redirect).
fn return_origins(settings: &Settings, tenant_list: Option<&str>) -> Vec<String> {
    if let Some(list) = tenant_list.and_then(|l| serde_json::from_str::<Vec<String>>(l).ok()) {
        return list;
    }
    let configured = if settings.connect_return_origins.is_empty() {
        &settings.cors_origins
    } else {
        &settings.connect_return_origins
    };
    configured
        .iter()
        .map(|o| o.trim().trim_end_matches('/').to_owned())
        .filter(|o| !o.is_empty() && o != "*")
        .collect()
}

/// A `return_url` checked against the allowed origins: absolute http(s), no user info, no
/// fragment, its origin listed.
fn check_return_url(url: &str, allowed: &[String]) -> Result<url::Url, ApiError> {
    let invalid = |detail: String| ApiError::invalid_parameter("return_url", detail);
    if url.chars().count() > MAX_PARAM_CHARS {
        return Err(invalid(format!(
            "return_url is longer than {MAX_PARAM_CHARS} characters"
        )));
    }
    let parsed = url::Url::parse(url)
        .map_err(|err| invalid(format!("return_url is not an absolute URL: {err}")))?;
    if !matches!(parsed.scheme(), "https" | "http")
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.fragment().is_some()
    {
        return Err(invalid(
            "return_url must be an http(s) URL without user info or fragment".into(),
        ));
    }
    let origin = parsed.origin().ascii_serialization();
    if !allowed.contains(&origin) {
        return Err(invalid(format!(
            "return_url's origin {origin} is not one this app may return to (an operator adds it with `sales-block tenant set-return-origins`)"
        )));
    }
    Ok(parsed)
}

/// `GET /stripe/auth/login`: a single-use state for this tenant and caller, and the URL of
/// Stripe's authorize page (Connect) or install link (Stripe Apps).
pub async fn login(
    state: &AppState,
    caller: &Caller,
    query: LoginQuery,
) -> Result<Authorization, ApiError> {
    caller.require_admin("connect a Stripe account")?;
    let flow_name = query.flow.as_deref().unwrap_or("connect");
    let flow = Flow::parse(flow_name).ok_or_else(|| {
        ApiError::invalid_parameter("flow", "flow must be `connect` or `app`".to_owned())
    })?;
    let (_, client_id) = configured(state, flow)?;
    let tenant_id = caller.tenant.id.clone();
    let row = state
        .db
        .run(move |conn| tenants::find_by_id(conn, &tenant_id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("This app no longer exists."))?;
    let return_url = match query.return_url.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(url) => {
            let allowed = return_origins(&state.settings, row.connect_return_origins.as_deref());
            Some(check_return_url(url.trim(), &allowed)?.to_string())
        }
        None => None,
    };
    let secret = random_token("", 32);
    let created = now();
    let expires = created + chrono::Duration::minutes(PENDING_MINUTES);
    let pending = StateRow {
        state_hash: sha256_hex(&secret),
        tenant_id: caller.tenant.id.clone(),
        subject: caller.subject.clone(),
        flow: flow.as_str().to_owned(),
        return_url,
        created_at: created,
        expires_at: expires,
    };
    state
        .db
        .run(move |conn| rows::insert_state(conn, &pending).map_err(ApiError::from))
        .await?;
    let redirect_uri = format!("{}{CALLBACK_PATH}", state.settings.public_url());
    let authorize_url = match flow {
        Flow::Connect => url_with(
            &format!(
                "{}/oauth/authorize",
                state.settings.stripe_connect_base.trim_end_matches('/')
            ),
            &[
                ("response_type", "code"),
                ("client_id", client_id),
                ("scope", "read_write"),
                ("state", &secret),
                ("redirect_uri", &redirect_uri),
            ],
        )?,
        Flow::App => url_with(
            &format!(
                "{}/oauth/v2/authorize",
                state.settings.stripe_marketplace_base.trim_end_matches('/')
            ),
            &[
                ("client_id", client_id),
                ("redirect_uri", &redirect_uri),
                ("state", &secret),
            ],
        )?,
    };
    Ok(Authorization {
        flow: flow.as_str().to_owned(),
        authorize_url,
        expires_at: crate::domain::time::timestamp(expires),
    })
}

fn url_with(base: &str, pairs: &[(&str, &str)]) -> Result<String, ApiError> {
    let mut url = url::Url::parse(base).map_err(|err| {
        ApiError::internal(format!(
            "the configured Stripe host {base} is not a URL: {err}"
        ))
    })?;
    url.query_pairs_mut().extend_pairs(pairs);
    Ok(url.to_string())
}

/// What Stripe sends the browser back with.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub user_id: Option<String>,
    pub account_id: Option<String>,
    pub stripe_user_id: Option<String>,
    pub install_signature: Option<String>,
    pub livemode: Option<String>,
}

impl CallbackQuery {
    fn check_lengths(&self) -> Result<(), ApiError> {
        let fields = [
            ("code", &self.code),
            ("state", &self.state),
            ("scope", &self.scope),
            ("error", &self.error),
            ("error_description", &self.error_description),
            ("user_id", &self.user_id),
            ("account_id", &self.account_id),
            ("stripe_user_id", &self.stripe_user_id),
            ("install_signature", &self.install_signature),
            ("livemode", &self.livemode),
        ];
        for (name, value) in fields {
            if value
                .as_deref()
                .is_some_and(|v| v.chars().count() > MAX_PARAM_CHARS)
            {
                return Err(ApiError::invalid_parameter(
                    name,
                    format!("{name} is longer than {MAX_PARAM_CHARS} characters"),
                ));
            }
        }
        Ok(())
    }
}

/// Where the callback sends the browser, or the small page it shows.
#[derive(Debug)]
pub enum CallbackOutcome {
    Redirect(String),
    Page {
        status: StatusCode,
        title: String,
        message: String,
    },
}

fn page(status: StatusCode, title: &str, message: String) -> CallbackOutcome {
    CallbackOutcome::Page {
        status,
        title: title.to_owned(),
        message,
    }
}

/// `return_url` with the extra query pairs.
fn back_to(return_url: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(return_url).ok()?;
    url.query_pairs_mut().extend_pairs(pairs);
    Some(url.to_string())
}

fn exchange_error(err: OAuthError) -> ApiError {
    match err {
        OAuthError::Refused {
            error, description, ..
        } if error == "invalid_grant" => ApiError::bad_request(
            "invalid_grant",
            format!(
                "Stripe refused the authorization code (it is single use and expires after 5 minutes): {description}"
            ),
        ),
        OAuthError::Refused {
            error, description, ..
        } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "stripe_oauth_error",
            "Stripe refused the exchange",
            format!("Stripe refused the token exchange ({error}): {description}"),
        ),
        OAuthError::Unreachable(_) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "stripe_unreachable",
            "Stripe unreachable",
            "Stripe could not be reached to finish connecting. Start again from the login.",
        ),
        OAuthError::BadResponse(cause) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "stripe_bad_response",
            "Unexpected Stripe response",
            format!("Stripe's answer to the token exchange could not be read: {cause}"),
        ),
    }
}

fn account_in_use(account: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "account_in_use",
        "Account already connected",
        format!(
            "The Stripe account {account} is already connected to another app of this service; disconnect it there first."
        ),
    )
}

/// The credentials a grant gives, encrypted, ready to store.
struct Credentials {
    account: String,
    livemode: bool,
    scope: Option<String>,
    refresh_token_enc: Option<String>,
    access_token_enc: Option<String>,
    access_token_expires_at: Option<NaiveDateTime>,
}

fn credentials(state: &AppState, flow: Flow, grant: Grant) -> Result<Credentials, ApiError> {
    if !grant.stripe_user_id.starts_with("acct_") || grant.stripe_user_id.len() > 255 {
        return Err(exchange_error(OAuthError::BadResponse(
            "no stripe_user_id of an account".into(),
        )));
    }
    let (refresh, access, expires) = match flow {
        Flow::Connect => (None, None, None),
        Flow::App => {
            let (Some(access), Some(refresh)) = (grant.access_token, grant.refresh_token) else {
                return Err(exchange_error(OAuthError::BadResponse(
                    "no access and refresh tokens".into(),
                )));
            };
            let expires =
                now() + chrono::Duration::from_std(ACCESS_TOKEN_LIFETIME).unwrap_or_default();
            (
                Some(state.master.encrypt(&refresh)),
                Some(state.master.encrypt(&access)),
                Some(expires),
            )
        }
    };
    Ok(Credentials {
        account: grant.stripe_user_id,
        livemode: grant.livemode,
        scope: grant.scope,
        refresh_token_enc: refresh,
        access_token_enc: access,
        access_token_expires_at: expires,
    })
}

/// Who asked for the historical sync queued when an account is connected (`requested_by`).
pub const CONNECTED_BY: &str = "stripe-connect";

/// Binds credentials to a tenant, with a historical sync of every type queued in the same
/// transaction (`sync_on_connect`); 409 when another tenant holds the account.
async fn bind(
    state: &AppState,
    tenant_id: &str,
    flow: Flow,
    creds: Credentials,
) -> Result<String, ApiError> {
    let tenant = tenant_id.to_owned();
    let account = creds.account.clone();
    let sync_on_connect = state.settings.sync_on_connect;
    let bound = state
        .db
        .run(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                // Whose Stripe account the tenant reads now (`None`: its own key's).
                let before = tenants::find_by_id(conn, &tenant)?
                    .and_then(|t| t.stripe_account_id.map(|account| (account, t.stripe_livemode)));
                let bound = rows::connect(
                    conn,
                    &tenant,
                    &NewConnection {
                        access: flow.access(),
                        account: &creds.account,
                        livemode: creds.livemode,
                        scope: creds.scope.as_deref(),
                        refresh_token_enc: creds.refresh_token_enc.as_deref(),
                        access_token_enc: creds.access_token_enc.as_deref(),
                        access_token_expires_at: creds.access_token_expires_at,
                        at: now(),
                    },
                )?;
                if bound && sync_on_connect {
                    // Another account, or the same one in the other mode (a mode not
                    // stored is not taken for a different one).
                    let switched = before.as_ref().is_none_or(|(account, livemode)| {
                        *account != creds.account
                            || livemode.is_some_and(|mode| mode != creds.livemode)
                    });
                    // In a savepoint: a failure to queue the sync is logged and leaves the
                    // account connected (the OAuth state is spent; the admin can start a
                    // sync), instead of undoing the connection.
                    let queued = crate::db::write_transaction(conn, |conn| {
                        crate::sync::queue_sync_of_connected(
                            conn,
                            &tenant,
                            switched,
                            CONNECTED_BY,
                            "queued when the Stripe account was connected",
                        )
                    });
                    if let Err(err) = queued {
                        tracing::warn!(tenant.id = %tenant, error = %err.detail, "stripe account connected, but its historical sync could not be queued");
                    }
                }
                Ok::<_, ApiError>(bound)
            })
        })
        .await?;
    if !bound {
        return Err(account_in_use(&account));
    }
    state.tenants.forget(tenant_id);
    if sync_on_connect {
        state.sync_queued();
    }
    tracing::info!(tenant.id = %tenant_id, stripe.account = %account, flow = flow.as_str(), "stripe account connected");
    Ok(account)
}

/// `GET /stripe/public/auth/callback`.
pub async fn callback(state: &AppState, query: CallbackQuery) -> Result<CallbackOutcome, ApiError> {
    query.check_lengths()?;
    match query.state.as_deref().filter(|s| !s.is_empty()) {
        Some(secret) => led_by_us(state, secret, &query).await,
        None => started_on_stripe(state, &query).await,
    }
}

/// The flow a login of ours started: the state says for which tenant.
async fn led_by_us(
    state: &AppState,
    secret: &str,
    query: &CallbackQuery,
) -> Result<CallbackOutcome, ApiError> {
    let hash = sha256_hex(secret);
    let pending = state
        .db
        .run(move |conn| rows::take_state(conn, &hash).map_err(ApiError::from))
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_state",
                "This sign-in link is unknown or was already used: start again from the login.",
            )
            .with_parameter("state")
        })?;
    if pending.expires_at < now() {
        return Err(ApiError::bad_request(
            "state_expired",
            "This sign-in link expired (10 minutes): start again from the login.",
        )
        .with_parameter("state"));
    }
    let flow = Flow::parse(&pending.flow)
        .ok_or_else(|| ApiError::internal(format!("stored flow {}", pending.flow)))?;
    if let Some(error) = query.error.as_deref() {
        let description = query
            .error_description
            .clone()
            .unwrap_or_else(|| error.to_owned());
        tracing::info!(tenant.id = %pending.tenant_id, error, "stripe authorization not granted");
        return Ok(
            match pending
                .return_url
                .as_deref()
                .and_then(|u| back_to(u, &[("error", error), ("error_description", &description)]))
            {
                Some(url) => CallbackOutcome::Redirect(url),
                None => page(
                    StatusCode::OK,
                    "Not connected",
                    format!("The Stripe account was not connected: {description}"),
                ),
            },
        );
    }
    let code = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("missing_code", "Stripe's answer has no code.")
                .with_parameter("code")
        })?;
    let (platform, _) = configured(state, flow)?;
    let grant = match flow {
        Flow::Connect => platform.oauth.exchange_connect_code(code).await,
        Flow::App => platform.oauth.exchange_app_code(code).await,
    }
    .map_err(exchange_error)?;
    let creds = credentials(state, flow, grant)?;
    let account = bind(state, &pending.tenant_id, flow, creds).await?;
    Ok(
        match pending
            .return_url
            .as_deref()
            .and_then(|u| back_to(u, &[("connected", &account)]))
        {
            Some(url) => CallbackOutcome::Redirect(url),
            None => page(
                StatusCode::OK,
                "Connected",
                format!("The Stripe account {account} is now connected. You can close this page."),
            ),
        },
    )
}

/// The compact JSON an install signature signs, keys in Stripe's order (`state` null when
/// the install has none).
fn install_payload(state: Option<&str>, user_id: &str, account_id: &str) -> String {
    let text = |v: &str| serde_json::Value::String(v.to_owned()).to_string();
    format!(
        "{{\"state\":{},\"user_id\":{},\"account_id\":{}}}",
        state.map_or_else(|| "null".to_owned(), text),
        text(user_id),
        text(account_id)
    )
}

/// An install started on Stripe's side: verify its signature when present, exchange the code,
/// and keep the credentials for a signed-in admin to claim.
async fn started_on_stripe(
    state: &AppState,
    query: &CallbackQuery,
) -> Result<CallbackOutcome, ApiError> {
    if let Some(error) = query.error.as_deref() {
        let description = query.error_description.as_deref().unwrap_or(error);
        return Ok(page(
            StatusCode::OK,
            "Not connected",
            format!("The Stripe App was not installed: {description}"),
        ));
    }
    let (platform, _) = configured(state, Flow::App)?;
    state.limits.check_install()?;
    let claim_url = state.settings.connect_claim_url.trim();
    if claim_url.is_empty() {
        return Err(not_configured("connect_claim_url"));
    }
    let code = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("missing_code", "Stripe's answer has no code.")
                .with_parameter("code")
        })?;
    if let Some(signature) = query.install_signature.as_deref() {
        let secret = state.settings.stripe_app_secret.expose_secret().trim();
        if secret.is_empty() {
            return Err(not_configured("stripe_app_secret"));
        }
        let (user, account) = (
            query.user_id.as_deref().unwrap_or_default(),
            query.account_id.as_deref().unwrap_or_default(),
        );
        // Without a state of ours, Stripe's payload may carry `"state":null` or `""`: either
        // verifies (an HMAC each), nothing else does.
        let payloads = match query.state.as_deref() {
            Some(state) => vec![install_payload(Some(state), user, account)],
            None => vec![
                install_payload(None, user, account),
                install_payload(Some(""), user, account),
            ],
        };
        let now = Utc::now().timestamp();
        let mut verified = Err(crate::signature::SignatureError::Mismatch);
        for payload in &payloads {
            // Stripe's webhook scheme and its 300 s tolerance (`signature::TOLERANCE_SECS`).
            verified = crate::signature::verify(
                Some(signature),
                payload.as_bytes(),
                &[secret.to_owned()],
                now,
            );
            if !matches!(verified, Err(crate::signature::SignatureError::Mismatch)) {
                break;
            }
        }
        verified.map_err(|err| {
            ApiError::bad_request("invalid_signature", format!("install_signature: {err}."))
                .with_parameter("install_signature")
        })?;
    }
    let grant = platform
        .oauth
        .exchange_app_code(code)
        .await
        .map_err(exchange_error)?;
    // Only the exchange's stripe_user_id is trusted, never the query's account ids.
    let creds = credentials(state, Flow::App, grant)?;
    let token = random_token("clm_", 32);
    let created = now();
    let claim = ClaimRow {
        token_hash: sha256_hex(&token),
        flow: Flow::App.as_str().to_owned(),
        stripe_account_id: creds.account,
        livemode: creds.livemode,
        scope: creds.scope,
        refresh_token_enc: creds.refresh_token_enc,
        access_token_enc: creds.access_token_enc,
        access_token_expires_at: creds.access_token_expires_at,
        created_at: created,
        expires_at: created + chrono::Duration::minutes(PENDING_MINUTES),
    };
    state
        .db
        .run(move |conn| rows::insert_claim(conn, &claim).map_err(ApiError::from))
        .await?;
    let url = back_to(claim_url, &[("claim_token", &token)])
        .ok_or_else(|| ApiError::internal("connect_claim_url is not a URL"))?;
    Ok(CallbackOutcome::Redirect(url))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ClaimFields {
    pub claim_token: Option<String>,
}

/// `POST /stripe/auth/claim`: binds an install's credentials to the caller's tenant.
pub async fn claim(
    state: &AppState,
    caller: &Caller,
    fields: ClaimFields,
    at: &str,
) -> Result<AccountView, ApiError> {
    caller.require_admin("connect a Stripe account")?;
    let token = fields
        .claim_token
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            ApiError::validation(format!("{at}/claim_token"), "claim_token is required")
        })?;
    if token.chars().count() > MAX_PARAM_CHARS {
        return Err(ApiError::validation(
            format!("{at}/claim_token"),
            "claim_token is not one this service issued",
        ));
    }
    let hash = sha256_hex(token.trim());
    let row = state
        .db
        .run(move |conn| rows::take_claim(conn, &hash).map_err(ApiError::from))
        .await?
        .ok_or_else(|| {
            ApiError::not_found("No installation waits under this claim token (it is single use).")
        })?;
    if row.expires_at < now() {
        return Err(ApiError::new(
            StatusCode::GONE,
            "claim_expired",
            "Claim expired",
            "This installation waited more than 10 minutes to be claimed: install again.",
        ));
    }
    let flow = Flow::parse(&row.flow).unwrap_or(Flow::App);
    bind(
        state,
        &caller.tenant.id,
        flow,
        Credentials {
            account: row.stripe_account_id,
            livemode: row.livemode,
            scope: row.scope,
            refresh_token_enc: row.refresh_token_enc,
            access_token_enc: row.access_token_enc,
            access_token_expires_at: row.access_token_expires_at,
        },
    )
    .await?;
    account(state, caller).await
}

/// How the tenant reaches Stripe; never a secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    /// `secret_key`, `connect`, `app`, or `none` (disconnected).
    pub access: String,
    /// `connected` or `disconnected`.
    pub status: String,
    pub stripe_account_id: Option<String>,
    pub livemode: Option<bool>,
    pub scope: Option<String>,
    pub connected_at: Option<String>,
    pub disconnected_at: Option<String>,
}

/// `GET /stripe/account`.
pub async fn account(state: &AppState, caller: &Caller) -> Result<AccountView, ApiError> {
    caller.require_admin("see how this app reaches Stripe")?;
    let tenant_id = caller.tenant.id.clone();
    let row = state
        .db
        .run(move |conn| tenants::find_by_id(conn, &tenant_id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("This app no longer exists."))?;
    let ts = |t: Option<NaiveDateTime>| t.map(crate::domain::time::timestamp);
    Ok(AccountView {
        status: if row.stripe_access == ACCESS_NONE {
            "disconnected"
        } else {
            "connected"
        }
        .to_owned(),
        access: row.stripe_access,
        stripe_account_id: row.stripe_account_id,
        livemode: row.stripe_livemode,
        scope: row.stripe_scope,
        connected_at: ts(row.stripe_connected_at),
        disconnected_at: ts(row.stripe_disconnected_at),
    })
}

/// `DELETE /stripe/account`: Connect accounts are deauthorized at Stripe; an app's tokens are
/// forgotten (the app itself is uninstalled from the account's Dashboard).
pub async fn disconnect(state: &AppState, caller: &Caller) -> Result<AccountView, ApiError> {
    let current = account(state, caller).await?;
    let not_connected = |detail: &str| {
        ApiError::new(
            StatusCode::CONFLICT,
            "not_connected",
            "Not connected",
            detail.to_owned(),
        )
    };
    match current.access.as_str() {
        ACCESS_CONNECT => {
            let (platform, client_id) = configured(state, Flow::Connect)?;
            let account = current.stripe_account_id.clone().unwrap_or_default();
            match platform.oauth.deauthorize(client_id, &account).await {
                Ok(()) => {}
                // Already disconnected at Stripe: forget it here too.
                Err(OAuthError::Refused {
                    status: 400, error, ..
                }) if error == "invalid_client" || error == "invalid_request" => {}
                Err(err) => return Err(exchange_error(err)),
            }
        }
        ACCESS_APP => {}
        ACCESS_NONE => {
            return Err(not_connected(
                "This app's Stripe account is already disconnected.",
            ));
        }
        _ => {
            return Err(not_connected(
                "This app reaches Stripe with its own secret key: there is no connected account to disconnect.",
            ));
        }
    }
    let tenant_id = caller.tenant.id.clone();
    state
        .db
        .run(move |conn| {
            rows::disconnect(conn, &tenant_id, None, now())
                .map_err(|e| ApiError::from(DbError::from(e)))
        })
        .await?;
    state.tenants.forget(&caller.tenant.id);
    account(state, caller).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_install_payload_keeps_stripes_key_order_and_escapes() {
        assert_eq!(
            install_payload(Some(""), "usr_1", "acct_\"x"),
            r#"{"state":"","user_id":"usr_1","account_id":"acct_\"x"}"#
        );
        assert_eq!(
            install_payload(None, "usr_1", "acct_1"),
            r#"{"state":null,"user_id":"usr_1","account_id":"acct_1"}"#
        );
    }

    #[test]
    fn return_urls_must_be_on_an_allowed_origin() {
        let allowed = vec!["https://app.example".to_owned()];
        assert!(check_return_url("https://app.example/settings?x=1", &allowed).is_ok());
        for bad in [
            "https://evil.example/",
            "https://app.example.evil.example/",
            "https://user@app.example/",
            "javascript:alert(1)",
            "//app.example/",
            "https://app.example:444/",
            "http://app.example/",
            "https://app.example/#frag",
        ] {
            assert!(check_return_url(bad, &allowed).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_cors_origin_allows_no_return_url() {
        let mut settings = crate::config::Settings::load().expect("defaults");
        settings.cors_origins = vec!["*".into()];
        settings.connect_return_origins = Vec::new();
        assert!(return_origins(&settings, None).is_empty());
        assert_eq!(
            return_origins(&settings, Some(r#"["https://a.example"]"#)),
            vec!["https://a.example".to_owned()]
        );
    }
}
