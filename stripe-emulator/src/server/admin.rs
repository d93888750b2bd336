//! The `/_emulator/...` test endpoints of a key: its data, latency, request log, checkout
//! completion and webhooks (see [`crate::webhook_admin`]).

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::form::Params;
use crate::http::{read_body, respond_error, respond_json};
use crate::list;
use crate::pages::checkout::complete_checkout;
use crate::state::{Emulator, KeyState};
use crate::webhook_admin;

/// Largest latency `POST /_emulator/config` accepts (10 minutes).
pub const MAX_LATENCY_MS: u64 = 600_000;

/// A `/_emulator/...` request.
pub struct AdminCall<'r> {
    pub method: &'r str,
    /// The path after `/_emulator/`.
    pub action: &'r str,
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
            state.lock().clear();
            state.delivery.reset();
            Ok(json!({"object": "emulator.data", "deleted": true}))
        }
        ("GET", ["config"]) => Ok(state.config.to_json()),
        ("POST", ["config"]) => parse_config(&body).map(|latency| {
            if let Some(ms) = latency {
                state.config.set_latency_ms(ms);
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

/// Reads `{"latency_ms": N}` (JSON, or the form `latency_ms=N`).
fn parse_config(body: &[u8]) -> Result<Option<u64>, ApiError> {
    let invalid = || {
        ApiError::invalid_param(
            "latency_ms",
            format!("latency_ms must be an integer from 0 to {MAX_LATENCY_MS}"),
        )
    };
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(json) => match json.get("latency_ms") {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => v.as_u64().ok_or_else(invalid)?,
        },
        Err(_) => {
            let params = Params::parse(&[body])?;
            match params.integer(&["latency_ms"])? {
                None => return Ok(None),
                Some(n) => u64::try_from(n).map_err(|_| invalid())?,
            }
        }
    };
    if value > MAX_LATENCY_MS {
        return Err(invalid());
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bodies() {
        assert_eq!(parse_config(br#"{"latency_ms": 250}"#).unwrap(), Some(250));
        assert_eq!(parse_config(b"latency_ms=5").unwrap(), Some(5));
        assert_eq!(parse_config(b"{}").unwrap(), None);
        assert!(parse_config(br#"{"latency_ms": -1}"#).is_err());
        assert!(parse_config(br#"{"latency_ms": 600001}"#).is_err());
        assert!(parse_config(b"latency_ms=abc").is_err());
    }
}
