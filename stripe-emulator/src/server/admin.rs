//! The `/_emulator/...` test endpoints of a key: its data, latency, request log, checkout
//! completion and webhooks (see [`crate::webhook_admin`]).

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::form::Params;
use crate::http::{read_body, respond_error, respond_json};
use crate::list;
use crate::oauth;
use crate::pages::checkout::complete_checkout;
use crate::state::oauth::{Client, ClientKind};
use crate::state::{Emulator, KeyState};
use crate::webhook_admin;

/// Largest latency `POST /_emulator/config` accepts (10 minutes).
pub const MAX_LATENCY_MS: u64 = 600_000;

/// A `/_emulator/...` request.
pub struct AdminCall<'r> {
    pub method: &'r str,
    /// The path after `/_emulator/`.
    pub action: &'r str,
    /// The secret key (for an Apps access token, its platform key).
    pub key: &'r str,
    /// The `Stripe-Account` (`""` for the key's own account).
    pub account: &'r str,
    pub query: &'r str,
    pub request_id: &'r str,
}

/// The `/_emulator/...` test endpoints.
pub async fn admin(
    emulator: &Emulator,
    state: &Arc<KeyState>,
    call: &AdminCall<'_>,
    payload: web::Payload,
) -> HttpResponse {
    let AdminCall {
        method,
        action,
        account,
        request_id,
        ..
    } = *call;
    let body = if method == "POST" {
        match read_body(payload).await {
            Ok(body) => body,
            Err(error) => return respond_error(&error, request_id),
        }
    } else {
        web::Bytes::new()
    };
    let segs: Vec<&str> = action.split('/').collect();
    let result: Result<Value, ApiError> = match (method, segs.as_slice()) {
        ("POST", ["checkout", "sessions", session, "complete"]) if !session.is_empty() => {
            let (status, body) = complete_checkout(emulator, state, account, session, &body);
            return respond_json(status, &body, request_id);
        }
        ("DELETE", ["data"]) => {
            emulator.oauth().forget_key(call.key);
            state.lock().clear();
            state.delivery.reset();
            Ok(json!({"object": "emulator.data", "deleted": true}))
        }
        ("GET", ["config"]) => Ok(state.config.to_json()),
        ("POST", ["config"]) => parse_config(&body).map(|change| {
            if let Some(ms) = change.latency_ms {
                state.config.set_latency_ms(ms);
            }
            if let Some(secs) = change.access_token_lifetime_secs {
                state.config.set_access_token_lifetime_secs(secs);
            }
            if let Some(secs) = change.code_lifetime_secs {
                state.config.set_code_lifetime_secs(secs);
            }
            if let Some(n) = change.rate_limit_per_sec {
                state.config.set_rate_limit_per_sec(n);
            }
            if let Some(secs) = change.retry_after_secs {
                state.config.set_retry_after_secs(secs);
            }
            if let Some(path) = change.fail_path {
                state.config.fail_path.set(path);
            }
            if let Some(path) = change.missing_path {
                state.config.missing_path.set(path);
            }
            if let Some(path) = change.stuck_path {
                state.config.stuck_path.set(path);
            }
            if let Some(bytes) = change.answer_padding_bytes {
                state.config.set_answer_padding_bytes(bytes);
            }
            state.config.to_json()
        }),
        ("GET", ["requests"]) => {
            let requests = state.lock().requests();
            Ok(list::list_object("/_emulator/requests", requests, false))
        }
        ("DELETE", ["requests"]) => {
            state.lock().clear_requests();
            Ok(json!({"object": "emulator.requests", "deleted": true}))
        }
        ("POST", ["oauth", "clients"]) => register_client(emulator, state, call.key, &body),
        ("GET", ["oauth", "clients"]) => Ok(list_clients(emulator, call.key)),
        ("POST", ["accounts", acct, "deauthorize"]) => {
            let clients = oauth::owner_deauthorizes(emulator, state, call.key, acct);
            if clients.is_empty() {
                Err(ApiError::invalid_request(format!(
                    "The account {acct} is not connected to this key through OAuth."
                ))
                .with_param("account"))
            } else {
                Ok(json!({
                    "object": "emulator.deauthorization",
                    "account": acct,
                    "client_ids": clients,
                }))
            }
        }
        ("POST", ["seed"]) => seed(state, account, &body),
        ("GET", ["deliveries"]) => webhook_admin::deliveries(state, call.query),
        ("DELETE", ["deliveries"]) => {
            state.delivery.clear_attempts();
            Ok(json!({"object": "emulator.deliveries", "deleted": true}))
        }
        ("GET", ["delivery"]) => Ok(webhook_admin::status(state)),
        ("POST", ["delivery"]) => webhook_admin::pause(emulator, state, &body),
        ("POST", ["delivery", "flush"]) => webhook_admin::flush(emulator, state, &body).await,
        ("GET", ["delivery", "config"]) => Ok(webhook_admin::config(state)),
        ("POST", ["delivery", "config"]) => webhook_admin::set_config(state, &body),
        ("POST", ["events", "age"]) => webhook_admin::age_events(state, account, &body),
        ("POST", ["events"]) => webhook_admin::create_event(emulator, state, account, &body),
        ("POST", ["events", id, "redeliver"]) => {
            webhook_admin::redeliver(emulator, state, account, id, &body)
        }
        ("POST", ["webhook_endpoints", id, "roll_secret"]) => {
            webhook_admin::roll_secret(state, account, id, &body)
        }
        _ => Err(ApiError::unrecognized_url(
            method,
            &format!("/_emulator/{action}"),
        )),
    };
    match result {
        Ok(value) => respond_json(200, &value, request_id),
        Err(error) => respond_error(&error, request_id),
    }
}

/// `POST /_emulator/seed` (see [`crate::seed`]): many objects in the account's store, no
/// events.
fn seed(state: &KeyState, account: &str, body: &[u8]) -> Result<Value, ApiError> {
    let body = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        _ if body.iter().all(u8::is_ascii_whitespace) => serde_json::Map::new(),
        _ => {
            return Err(ApiError::invalid_request(
                "The request body must be a JSON object.",
            ));
        }
    };
    let spec = crate::seed::SeedSpec::parse(&body, crate::ids::now())?;
    let mut data = state.lock();
    Ok(crate::seed::seed(data.store(account), &spec))
}

/// Longest client id, signing secret or redirect URI `/_emulator/oauth/clients` takes.
const MAX_OAUTH_TEXT: usize = 2048;

fn client_json(client_id: &str, client: &Client) -> Value {
    json!({
        "object": "emulator.oauth_client",
        "client_id": client_id,
        "kind": client.kind.as_str(),
        "livemode": client.livemode,
        "name": client.name,
        "redirect_uris": client.redirect_uris,
        "has_signing_secret": client.signing_secret.is_some(),
    })
}

/// `GET /_emulator/oauth/clients`: the client ids registered with the key.
fn list_clients(emulator: &Emulator, key: &str) -> Value {
    let clients: Vec<Value> = emulator
        .oauth()
        .clients_of(key)
        .iter()
        .map(|(id, client)| client_json(id, client))
        .collect();
    list::list_object("/_emulator/oauth/clients", clients, false)
}

/// `POST /_emulator/oauth/clients` `{"client_id", "kind": "connect" | "app",
/// "signing_secret"?, "redirect_uris"?, "name"?}`: binds the client id to the key.
fn register_client(
    emulator: &Emulator,
    state: &KeyState,
    key: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::invalid_request(
            "The request body must be a JSON object.",
        ));
    };
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_OAUTH_TEXT => {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(ApiError::invalid_param(
                name,
                format!("{name} must be a non-empty string of at most {MAX_OAUTH_TEXT} bytes"),
            )),
        }
    };
    let client_id = text("client_id")?.ok_or_else(|| ApiError::parameter_missing("client_id"))?;
    if !client_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(ApiError::invalid_param(
            "client_id",
            "client_id may have only letters, digits, `_`, `-` and `.`",
        ));
    }
    let kind = match text("kind")?.as_deref() {
        Some("connect") => ClientKind::Connect,
        Some("app") => ClientKind::App,
        None => return Err(ApiError::parameter_missing("kind")),
        Some(_) => {
            return Err(ApiError::invalid_param(
                "kind",
                "kind must be connect or app",
            ));
        }
    };
    if kind == ClientKind::Connect && !client_id.starts_with("ca_") {
        return Err(ApiError::invalid_param(
            "client_id",
            "a Connect client id starts with `ca_`",
        ));
    }
    let redirect_uris = match body.get("redirect_uris") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(uris)) => uris
            .iter()
            .map(|uri| match uri.as_str() {
                Some(uri) if crate::text::is_url(uri) && uri.len() <= MAX_OAUTH_TEXT => {
                    Ok(uri.to_owned())
                }
                _ => Err(ApiError::invalid_param(
                    "redirect_uris",
                    "redirect_uris must be http(s) URLs",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "redirect_uris",
                "redirect_uris must be an array of URLs",
            ));
        }
    };
    let client = Client {
        key: key.to_owned(),
        kind,
        signing_secret: text("signing_secret")?,
        redirect_uris,
        livemode: state.livemode(),
        name: text("name")?,
    };
    let answer = client_json(&client_id, &client);
    emulator
        .oauth()
        .register(&client_id, client)
        .map_err(|message| ApiError::invalid_param("client_id", message))?;
    Ok(answer)
}

/// Largest rate limit `POST /_emulator/config` accepts (requests per second; 0: none).
pub const MAX_RATE_LIMIT: u64 = 1_000_000;
/// The longest `Retry-After` the rate-limit mode can be set to answer.
pub const MAX_RETRY_AFTER_SECS: u64 = 3_600;

/// The most spaces the padding mode can append to an answer (128 MiB).
pub const MAX_ANSWER_PADDING_BYTES: u64 = 128 << 20;

/// Largest OAuth lifetime `POST /_emulator/config` accepts (a year).
pub const MAX_LIFETIME_SECS: u64 = 365 * 86_400;

/// The settings a `POST /_emulator/config` body changes (absent: unchanged).
#[derive(Debug, Default, PartialEq, Eq)]
struct ConfigChange {
    latency_ms: Option<u64>,
    access_token_lifetime_secs: Option<u64>,
    code_lifetime_secs: Option<u64>,
    rate_limit_per_sec: Option<u64>,
    retry_after_secs: Option<u64>,
    answer_padding_bytes: Option<u64>,
    /// `Some(None)`: no path fails any more.
    fail_path: Option<Option<String>>,
    /// `Some(None)`: no path is missing any more.
    missing_path: Option<Option<String>>,
    /// `Some(None)`: no list is stuck any more.
    stuck_path: Option<Option<String>>,
}

/// Reads `{"latency_ms": N, "access_token_lifetime_secs": N, "code_lifetime_secs": N}`
/// (JSON, or the same names as a form), each optional.
fn parse_config(body: &[u8]) -> Result<ConfigChange, ApiError> {
    let json = serde_json::from_slice::<Value>(body).ok();
    let params = match json {
        Some(_) => None,
        None => Some(Params::parse(&[body])?),
    };
    let read = |name: &str, max: u64| -> Result<Option<u64>, ApiError> {
        let invalid =
            || ApiError::invalid_param(name, format!("{name} must be an integer from 0 to {max}"));
        let value = match (&json, &params) {
            (Some(json), _) => match json.get(name) {
                None | Some(Value::Null) => return Ok(None),
                Some(v) => v.as_u64().ok_or_else(invalid)?,
            },
            (None, Some(params)) => match params.integer(&[name]).map_err(|_| invalid())? {
                None => return Ok(None),
                Some(n) => u64::try_from(n).map_err(|_| invalid())?,
            },
            (None, None) => return Ok(None),
        };
        if value > max {
            return Err(invalid());
        }
        Ok(Some(value))
    };
    Ok(ConfigChange {
        latency_ms: read("latency_ms", MAX_LATENCY_MS)?,
        access_token_lifetime_secs: read("access_token_lifetime_secs", MAX_LIFETIME_SECS)?,
        code_lifetime_secs: read("code_lifetime_secs", MAX_LIFETIME_SECS)?,
        rate_limit_per_sec: read("rate_limit_per_sec", MAX_RATE_LIMIT)?,
        retry_after_secs: read("retry_after_secs", MAX_RETRY_AFTER_SECS)?,
        answer_padding_bytes: read("answer_padding_bytes", MAX_ANSWER_PADDING_BYTES)?,
        fail_path: read_path("fail_path", json.as_ref(), params.as_ref())?,
        missing_path: read_path("missing_path", json.as_ref(), params.as_ref())?,
        stuck_path: read_path("stuck_path", json.as_ref(), params.as_ref())?,
    })
}

/// `"fail_path"`: a `/v1/...` path whose requests are refused from now on, or `""` for none.
fn read_path(
    name: &str,
    json: Option<&Value>,
    params: Option<&Params>,
) -> Result<Option<Option<String>>, ApiError> {
    let invalid = || {
        ApiError::invalid_param(
            name,
            format!("{name} must be a path under /v1/ (at most 200 bytes), or empty for none"),
        )
    };
    let value = match (json, params) {
        (Some(json), _) => match json.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(path)) => path.clone(),
            Some(_) => return Err(invalid()),
        },
        (None, Some(params)) => match params.string(&[name])? {
            None => return Ok(None),
            Some(path) => path.to_owned(),
        },
        (None, None) => return Ok(None),
    };
    if value.is_empty() {
        return Ok(Some(None));
    }
    if !value.starts_with("/v1/") || value.len() > 200 {
        return Err(invalid());
    }
    Ok(Some(Some(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bodies() {
        let latency = |body: &[u8]| parse_config(body).map(|c| c.latency_ms);
        assert_eq!(latency(br#"{"latency_ms": 250}"#).unwrap(), Some(250));
        assert_eq!(latency(b"latency_ms=5").unwrap(), Some(5));
        assert_eq!(parse_config(b"{}").unwrap(), ConfigChange::default());
        assert_eq!(
            parse_config(br#"{"access_token_lifetime_secs": 0, "code_lifetime_secs": 7}"#).unwrap(),
            ConfigChange {
                latency_ms: None,
                access_token_lifetime_secs: Some(0),
                code_lifetime_secs: Some(7),
                rate_limit_per_sec: None,
                retry_after_secs: None,
                answer_padding_bytes: None,
                fail_path: None,
                missing_path: None,
                stuck_path: None,
            }
        );
        let padding = |body: &[u8]| parse_config(body).map(|c| c.answer_padding_bytes);
        assert_eq!(padding(b"answer_padding_bytes=5").unwrap(), Some(5));
        assert!(padding(br#"{"answer_padding_bytes": 134217729}"#).is_err());
        let retry_after = |body: &[u8]| parse_config(body).map(|c| c.retry_after_secs);
        assert_eq!(retry_after(br#"{"retry_after_secs": 3}"#).unwrap(), Some(3));
        assert_eq!(retry_after(b"retry_after_secs=0").unwrap(), Some(0));
        assert!(retry_after(br#"{"retry_after_secs": 3601}"#).is_err());
        let fail = |body: &[u8]| parse_config(body).map(|c| c.fail_path);
        assert_eq!(
            fail(br#"{"fail_path": "/v1/invoices"}"#).unwrap(),
            Some(Some("/v1/invoices".into()))
        );
        assert_eq!(
            fail(b"fail_path=/v1/prices").unwrap(),
            Some(Some("/v1/prices".into()))
        );
        assert_eq!(fail(br#"{"fail_path": ""}"#).unwrap(), Some(None));
        assert!(fail(br#"{"fail_path": "/_emulator/config"}"#).is_err());
        assert!(fail(br#"{"fail_path": 3}"#).is_err());
        let missing = |body: &[u8]| parse_config(body).map(|c| c.missing_path);
        assert_eq!(
            missing(b"missing_path=/v1/invoices/in_1/lines").unwrap(),
            Some(Some("/v1/invoices/in_1/lines".into()))
        );
        assert!(missing(br#"{"missing_path": "/v2/x"}"#).is_err());
        let stuck = |body: &[u8]| parse_config(body).map(|c| c.stuck_path);
        assert_eq!(
            stuck(br#"{"stuck_path": "/v1/customers"}"#).unwrap(),
            Some(Some("/v1/customers".into()))
        );
        assert_eq!(stuck(b"stuck_path=").unwrap(), Some(None));
        assert!(parse_config(br#"{"code_lifetime_secs": -1}"#).is_err());
        assert!(parse_config(br#"{"latency_ms": -1}"#).is_err());
        assert!(parse_config(br#"{"latency_ms": 600001}"#).is_err());
        assert!(parse_config(b"latency_ms=abc").is_err());
    }
}
