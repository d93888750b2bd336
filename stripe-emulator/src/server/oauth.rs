//! The HTTP side of the OAuth endpoints (see [`crate::oauth`]): the key (Bearer, Basic or the
//! form field `client_secret`), the form body, the answer, and the request log.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::form::Params;
use crate::http::{api_key, read_body, respond_json};
use crate::ids;
use crate::oauth::{self, Answer, param};
use crate::state::Emulator;
use crate::state::oauth::{ClientKind, OAuthError};

/// The Connect token endpoint.
pub const CONNECT_TOKEN: &str = "/connect/oauth/token";
/// The Connect deauthorize endpoint.
pub const CONNECT_DEAUTHORIZE: &str = "/connect/oauth/deauthorize";
/// The Apps token endpoint.
pub const APP_TOKEN: &str = "/v1/oauth/token";

/// Whether `method` `path` is one of the OAuth endpoints.
pub fn is_oauth_endpoint(method: &str, path: &str) -> bool {
    method == "POST" && [CONNECT_TOKEN, CONNECT_DEAUTHORIZE, APP_TOKEN].contains(&path)
}

/// Answers `POST` to an OAuth endpoint.
pub async fn serve(
    emulator: &Emulator,
    req: &HttpRequest,
    payload: web::Payload,
    request_id: &str,
) -> HttpResponse {
    let path = req.path().to_owned();
    let body = match read_body(payload).await {
        Ok(body) => body,
        Err(error) => {
            let (status, body) =
                oauth::error_body(&OAuthError::new("invalid_request", error.message.clone()));
            return respond_json(status, &body, request_id);
        }
    };
    let params = match Params::parse(&[req.query_string().as_bytes(), &body]) {
        Ok(params) => params,
        Err(error) => {
            let (status, body) =
                oauth::error_body(&OAuthError::new("invalid_request", error.message.clone()));
            return respond_json(status, &body, request_id);
        }
    };
    // The key: the Authorization header, else the form field `client_secret` (as the
    // official libraries may send it).
    let key = match (api_key(req), param(&params, "client_secret")) {
        (Ok(key), _) => key,
        (Err(error), secret) => {
            let from_form = secret.filter(|s| {
                ["sk_test_", "sk_live_"]
                    .iter()
                    .any(|p| s.len() > p.len() && s.starts_with(p))
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            match from_form {
                Some(secret) => secret.to_owned(),
                None => {
                    let body =
                        json!({"error": "invalid_client", "error_description": error.message});
                    return respond_json(401, &body, request_id);
                }
            }
        }
    };
    let state = emulator.key_state(&key);
    let (status, answer): Answer = match path.as_str() {
        CONNECT_TOKEN => oauth::token(emulator, &state, &key, ClientKind::Connect, &params),
        APP_TOKEN => oauth::token(emulator, &state, &key, ClientKind::App, &params),
        _ => oauth::deauthorize(emulator, &state, &key, &params),
    };
    state.lock().record(json!({
        "object": "emulator.request",
        "request_id": request_id,
        "created": ids::now(),
        "method": "POST",
        "path": path,
        "query": req.query_string(),
        "stripe_account": Value::Null,
        "idempotency_key": Value::Null,
        "params": params.to_json(),
        "status": status,
        "idempotent_replayed": false,
        "client_port": req.peer_addr().map(|peer| peer.port()),
        "received_ms": chrono::Utc::now().timestamp_millis(),
    }));
    respond_json(status, &answer, request_id)
}
