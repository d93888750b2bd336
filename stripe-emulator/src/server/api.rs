//! A `/v1` request: parameters, idempotency, the resource's answer, its events and their
//! deliveries, the request log, injected latency, and Stripe's headers.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::events::record::{Origin, commit};
use crate::fixtures::API_VERSION;
use crate::form::Params;
use crate::http::{header, read_body, respond, respond_error, with_request_log_url};
use crate::idempotency::{self, KeyedRequest, Lookup};
use crate::ids;
use crate::resources::{self, ctx::Ctx};
use crate::spec;
use crate::state::{Emulator, KeyState};

/// Answers an authenticated `/v1` request of `key` on `account` (`""` for the key's own
/// account).
pub async fn serve(
    emulator: &Emulator,
    state: &Arc<KeyState>,
    req: &HttpRequest,
    payload: web::Payload,
    key: &str,
    account: &str,
    request_id: &str,
) -> HttpResponse {
    let method = req.method().as_str().to_owned();
    let path = req.path().to_owned();
    if let Some(error) = header(req, "stripe-version").and_then(version_error) {
        return respond_error(&error, request_id);
    }
    let body = match read_body(payload).await {
        Ok(body) => body,
        Err(error) => return respond_error(&error, request_id),
    };
    // When the request came in (unix milliseconds, logged) and the port it came from:
    // requests over one kept-alive connection share it.
    let received_ms = chrono::Utc::now().timestamp_millis();
    let client_port = req.peer_addr().map(|peer| peer.port());
    // A request refused before it is served is logged all the same.
    let log_refused = |error: &ApiError| {
        state.lock().record(json!({
            "object": "emulator.request",
            "request_id": request_id,
            "created": ids::now(),
            "method": method,
            "path": path,
            "query": req.query_string(),
            "stripe_account": if account.is_empty() { Value::Null } else { json!(account) },
            "idempotency_key": header(req, "idempotency-key"),
            "params": Value::Null,
            "status": error.status,
            "idempotent_replayed": false,
            "client_port": client_port,
            "received_ms": received_ms,
        }));
    };
    // Over the key's rate limit (`POST /_emulator/config {"rate_limit_per_sec": N}`):
    // Stripe's 429, with when to retry; nothing is done, but the request is logged.
    if let Some(wait) = state.config.admit(received_ms) {
        let error = ApiError::rate_limited();
        log_refused(&error);
        let wait = wait.to_string();
        return respond(
            error.status,
            error.to_json().to_string(),
            request_id,
            &[("Retry-After", &wait), ("Stripe-Should-Retry", "true")],
        );
    }
    // A path the key's fault mode refuses (`POST /_emulator/config {"fail_path": "/v1/..."}`):
    // a 400, as Stripe answers a request it will never serve; nothing is done.
    if state.config.fail_path.covers(&path, false) {
        let error = ApiError::invalid_request(format!(
            "The emulator refuses every request to {path} (its fault mode fail_path)."
        ));
        log_refused(&error);
        return respond_error(&error, request_id);
    }
    // An object the key's fault mode answers as gone (`{"missing_path": "/v1/..."}`), and
    // every path below it: Stripe's 404 for an object deleted meanwhile; nothing is done.
    if state.config.missing_path.covers(&path, true) {
        let error = ApiError::resource_missing("object", &path, "id");
        log_refused(&error);
        return respond_error(&error, request_id);
    }
    let base_url = {
        let info = req.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    };
    // A list the key's fault mode keeps at its start (`{"stuck_path": "/v1/..."}`): its
    // cursors are dropped, so every page asked for is its first.
    let unmoved;
    let query = if method == "GET" && state.config.stuck_path.covers(&path, false) {
        unmoved = req
            .query_string()
            .split('&')
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or_default();
                name != "starting_after" && name != "ending_before"
            })
            .collect::<Vec<_>>()
            .join("&");
        unmoved.as_str()
    } else {
        req.query_string()
    };
    let request = ApiRequest {
        method: &method,
        path: &path,
        query,
        body: &body,
        account,
        idempotency_key: header(req, "idempotency-key").filter(|_| method == "POST"),
        base_url: &base_url,
        request_id,
        key,
        client_port,
        received_ms,
    };
    let mut outcome = handle_api(emulator, state, &request);
    // The padding mode: trailing whitespace, so the answer stays the same JSON.
    let padding = state.config.answer_padding_bytes();
    if padding > 0 && (200..300).contains(&outcome.status) {
        let padding = usize::try_from(padding).unwrap_or(usize::MAX);
        outcome.body.push_str(&" ".repeat(padding));
    }
    tracing::debug!(
        request_id = %request_id,
        method = %method,
        path = %path,
        status = outcome.status,
        replayed = outcome.replayed_from.is_some(),
        "stripe emulator request"
    );

    // Injected latency delays the answer, not the work: like a response lost to a network
    // timeout, a client that gives up has still changed state (and an idempotent retry
    // replays).
    let latency = state.config.latency_ms();
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    let mut extra: Vec<(&str, &str)> = Vec::new();
    if let Some(key) = request.idempotency_key {
        extra.push(("Idempotency-Key", key));
    }
    if let Some(original) = &outcome.replayed_from {
        extra.push(("Idempotent-Replayed", "true"));
        extra.push(("Original-Request", original));
    }
    respond(outcome.status, outcome.body, request_id, &extra)
}

/// Why a request's `Stripe-Version` cannot be served: the pinned version is; a version
/// Stripe does not know is refused as Stripe refuses it; any other real version is refused
/// too, since the emulator speaks only one.
fn version_error(version: &str) -> Option<ApiError> {
    if version == API_VERSION {
        None
    } else if spec::known_version(version) {
        Some(ApiError::unsupported_api_version(version, API_VERSION))
    } else {
        Some(ApiError::invalid_api_version(version))
    }
}

/// A `/v1` request, read off the wire.
struct ApiRequest<'r> {
    method: &'r str,
    path: &'r str,
    query: &'r str,
    body: &'r [u8],
    account: &'r str,
    idempotency_key: Option<&'r str>,
    base_url: &'r str,
    request_id: &'r str,
    key: &'r str,
    /// The client's port (`None` when the connection has no peer address).
    client_port: Option<u16>,
    received_ms: i64,
}

/// What to answer.
struct Outcome {
    status: u16,
    body: String,
    /// The request id of the original response when this is an idempotent replay.
    replayed_from: Option<String>,
}

impl Outcome {
    fn error(error: &ApiError) -> Self {
        Outcome {
            status: error.status,
            body: error.to_json().to_string(),
            replayed_from: None,
        }
    }
}

/// Handles a `/v1` request under the key's lock (synchronously: no `.await` inside).
fn handle_api(emulator: &Emulator, state: &Arc<KeyState>, req: &ApiRequest<'_>) -> Outcome {
    let mut data = state.lock();
    // Read under the lock, so that `created` never goes backwards in the order objects
    // (and events) are stored: lists order by `created`, then by that order.
    let now = ids::now();
    let params = Params::parse(&[req.query.as_bytes(), req.body]);
    // Parameters the endpoint does not take are refused before the idempotency key is
    // looked at: a typo does not use the key up.
    let unknown = params
        .as_ref()
        .map(|p| spec::unknown_parameters(req.method, req.path, p))
        .unwrap_or_default();
    let outcome = match &params {
        Err(error) => Outcome::error(error),
        Ok(_) if !unknown.is_empty() => Outcome::error(&ApiError::parameter_unknown(&unknown)),
        Ok(params) => {
            let segs: Option<Vec<&str>> = req
                .path
                .strip_prefix("/v1/")
                .map(|rest| rest.split('/').filter(|s| !s.is_empty()).collect());
            let fingerprint = idempotency::fingerprint(req.method, req.path, &params.canonical());
            let keyed = req.idempotency_key.map(|key| KeyedRequest {
                account: req.account,
                key,
                path: req.path,
                fingerprint: &fingerprint,
            });
            let lookup = match &keyed {
                None => Ok(Lookup::Miss),
                Some(keyed) => {
                    idempotency::validate_key(keyed.key).map(|()| data.idempotency.lookup(keyed))
                }
            };
            match (lookup, segs) {
                (Err(error), _) | (Ok(Lookup::Conflict(error)), _) => Outcome::error(&error),
                (Ok(Lookup::Replay(saved)), _) => Outcome {
                    status: saved.status,
                    body: saved.body,
                    replayed_from: Some(saved.request_id),
                },
                (Ok(Lookup::Miss), None) => {
                    Outcome::error(&ApiError::unrecognized_url(req.method, req.path))
                }
                (Ok(Lookup::Miss), Some(segs)) => {
                    let mut ctx = Ctx {
                        store: data.store(req.account),
                        params,
                        base_url: req.base_url,
                        now,
                        emulator,
                        key: req.key,
                        account: req.account,
                    };
                    let (status, body) = match resources::route(&mut ctx, req.method, &segs) {
                        None => {
                            let error = ApiError::unrecognized_url(req.method, req.path);
                            (error.status, error.to_json())
                        }
                        Some(Ok(value)) => (200, value),
                        Some(Err(error)) => (error.status, error.to_json()),
                    };
                    // Saved with its own log link, so a replay answers the very same bytes.
                    let body = with_request_log_url(status, render(&body), req.request_id);
                    if let Some(keyed) = &keyed
                        && idempotency::should_save(status)
                    {
                        data.idempotency.save(keyed, status, &body, req.request_id);
                    }
                    // Every change the request made, a declined payment's included,
                    // is announced.
                    let origin = Origin {
                        request_id: Some(req.request_id),
                        idempotency_key: req.idempotency_key,
                    };
                    let dispatches = commit(&mut data, req.account, origin, now);
                    // Queued (not sent) under the lock, so that deliveries follow the
                    // order the events were recorded in; the HTTP calls happen on the
                    // delivery runtime, which never holds this lock across them.
                    emulator.deliveries.enqueue(state, dispatches, false);
                    Outcome {
                        status,
                        body,
                        replayed_from: None,
                    }
                }
            }
        }
    };
    data.record(json!({
        "object": "emulator.request",
        "request_id": req.request_id,
        "created": ids::now(),
        "method": req.method,
        "path": req.path,
        "query": req.query,
        "stripe_account": if req.account.is_empty() { Value::Null } else { json!(req.account) },
        "idempotency_key": req.idempotency_key,
        "params": params.as_ref().map(Params::to_json).unwrap_or(Value::Null),
        "status": outcome.status,
        "idempotent_replayed": outcome.replayed_from.is_some(),
        "client_port": req.client_port,
        "received_ms": req.received_ms,
    }));
    outcome
}

/// An answer's JSON text, written once into a buffer sized for it up front: a 400 kB page
/// written into a growing `String` (what `to_string` does) is copied at every doubling, and
/// each large reallocation makes the allocator walk its free lists.
fn render(body: &Value) -> String {
    let mut out = Vec::with_capacity(crate::json::size_hint(body));
    match serde_json::to_writer(&mut out, body) {
        // serde_json writes valid UTF-8.
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => body.to_string(),
    }
}
