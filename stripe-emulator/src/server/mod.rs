//! The HTTP side: actix-web server, authentication, idempotency, latency injection, request
//! recording, the `/_emulator` test endpoints, and Stripe-shaped responses.
//!
//! One catch-all handler ([`dispatch`]) routes every request itself, so that every answer,
//! including unknown URLs and unreadable bodies, is Stripe-shaped JSON with a `Request-Id`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::events::record::{Origin, commit};
use crate::fixtures::API_VERSION;
use crate::form::Params;
use crate::idempotency::{self, KeyedRequest, Lookup};
use crate::resources::ctx::Ctx;
use crate::resources::{self, billing_portal, checkout, payment_links};
use crate::state::{Emulator, KeyState};
use crate::{ids, list, webhook_admin};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Largest latency `POST /_emulator/config` accepts (10 minutes).
pub const MAX_LATENCY_MS: u64 = 600_000;

/// A running emulator started by [`spawn`](crate::spawn).
#[derive(Debug)]
pub struct EmulatorHandle {
    addr: SocketAddr,
    server: ServerHandle,
    emulator: web::Data<Emulator>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl EmulatorHandle {
    /// The base URL to give a Stripe client, e.g. `http://127.0.0.1:43567` (no trailing
    /// slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port the emulator listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops the emulator gracefully (in-flight requests finish) and every webhook
    /// delivery (in flight, queued or waiting to retry); afterwards connections are
    /// refused.
    pub async fn stop(mut self) {
        self.server.stop(true).await;
        self.emulator.deliveries.stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if self.task.is_some() {
            // Not stopped explicitly: ask the server to stop without waiting.
            drop(self.server.stop(false));
            self.emulator.deliveries.stop();
        }
    }
}

/// The address clients should use: an unspecified bind address (`0.0.0.0`, `::`) is
/// reached through loopback.
fn client_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

fn build(
    addr: &str,
    workers: Option<usize>,
) -> io::Result<(Server, SocketAddr, web::Data<Emulator>)> {
    let emulator = web::Data::new(Emulator::default());
    let shared = emulator.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .default_service(web::to(dispatch))
    })
    .disable_signals()
    .shutdown_timeout(2);
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    let server = server.bind(addr)?;
    let bound = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| io::Error::other("no address was bound"))?;
    Ok((server.run(), client_addr(bound), emulator))
}

/// Binds `addr` (port 0 picks a free port) and serves in the background on the current
/// tokio runtime. Works under `#[tokio::test]` and `#[actix_web::main]`.
pub async fn spawn(addr: &str) -> io::Result<EmulatorHandle> {
    let (server, addr, emulator) = build(addr, Some(2))?;
    let handle = server.handle();
    let task = tokio::spawn(server);
    Ok(EmulatorHandle {
        addr,
        server: handle,
        emulator,
        task: Some(task),
    })
}

/// Binds `addr`, prints `stripe emulator listening on http://...`, and serves until Ctrl-C.
pub async fn run(addr: &str) -> io::Result<()> {
    let (server, addr, emulator) = build(addr, None)?;
    println!("stripe emulator listening on http://{addr}");
    let handle = server.handle();
    let mut task = tokio::spawn(server);
    let result = tokio::select! {
        result = &mut task => result.map_err(io::Error::other),
        _ = tokio::signal::ctrl_c() => {
            handle.stop(true).await;
            task.await.map_err(io::Error::other)
        }
    };
    emulator.deliveries.stop();
    result?
}

/// Reads the API key from `Authorization: Bearer <key>` or HTTP basic auth (key as user).
pub fn api_key(req: &HttpRequest) -> Result<String, ApiError> {
    let Some(header) = req.headers().get(AUTHORIZATION) else {
        return Err(ApiError::missing_api_key());
    };
    let header = header
        .to_str()
        .map_err(|_| ApiError::invalid_api_key(""))?
        .trim();
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    let credentials = credentials.trim();
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        credentials.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| ApiError::invalid_api_key(credentials))?;
        decoded
            .split_once(':')
            .map_or(decoded.as_str(), |(user, _)| user)
            .to_owned()
    } else {
        return Err(ApiError::missing_api_key());
    };
    if key.is_empty() {
        return Err(ApiError::missing_api_key());
    }
    let valid_prefix = ["sk_test_", "sk_live_", "rk_test_", "rk_live_"]
        .iter()
        .any(|prefix| key.len() > prefix.len() && key.starts_with(prefix));
    let valid_chars = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_prefix || !valid_chars {
        return Err(ApiError::invalid_api_key(&key));
    }
    Ok(key)
}

/// A JSON response with Stripe's headers.
fn respond(status: u16, body: String, request_id: &str, extra: &[(&str, &str)]) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    builder
        .insert_header(("Request-Id", request_id))
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header(("Stripe-Version", API_VERSION));
    for (name, value) in extra {
        builder.insert_header((*name, *value));
    }
    builder.body(with_request_log_url(status.as_u16(), body, request_id))
}

/// Stripe's errors link to the request's log in the Dashboard (`request_log_url`), the only
/// place a client library that hides response headers can read the request id from.
fn with_request_log_url(status: u16, body: String, request_id: &str) -> String {
    if status < 400 {
        return body;
    }
    let Ok(mut value) = serde_json::from_str::<Value>(&body) else {
        return body;
    };
    match value.get_mut("error").and_then(Value::as_object_mut) {
        Some(error) if !error.contains_key("request_log_url") => {
            error.insert(
                "request_log_url".to_owned(),
                Value::String(format!(
                    "https://dashboard.stripe.com/test/logs/{request_id}"
                )),
            );
            value.to_string()
        }
        _ => body,
    }
}

fn respond_json(status: u16, body: &Value, request_id: &str) -> HttpResponse {
    respond(status, body.to_string(), request_id, &[])
}

fn respond_error(error: &ApiError, request_id: &str) -> HttpResponse {
    respond_json(error.status, &error.to_json(), request_id)
}

fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

async fn read_body(payload: web::Payload) -> Result<web::Bytes, ApiError> {
    match payload.to_bytes_limited(MAX_BODY_BYTES).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::invalid_request(
            "The request body could not be read.",
        )),
        Err(_) => Err(ApiError::invalid_request(format!(
            "The request body is too large: requests may be at most {MAX_BODY_BYTES} bytes."
        ))
        .with_status(413)),
    }
}

/// The catch-all handler.
async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    emulator: web::Data<Emulator>,
) -> HttpResponse {
    let request_id = ids::request_id();
    let method = req.method().as_str().to_owned();
    let path = req.path().to_owned();

    // Unauthenticated: health check and the hosted portal pages.
    if method == "GET" && path == "/_emulator/health" {
        return respond_json(
            200,
            &json!({"object": "emulator.health", "ok": true, "api_version": API_VERSION}),
            &request_id,
        );
    }
    if method == "GET"
        && let Some(secret) = path.strip_prefix(billing_portal::PAGE_PREFIX)
    {
        return match emulator.portal_page(secret) {
            Some(page) => HttpResponse::Ok()
                .insert_header(("Request-Id", request_id.as_str()))
                .content_type("text/html; charset=utf-8")
                .body(billing_portal::render_page(&page)),
            None => respond_error(&ApiError::unrecognized_url(&method, &path), &request_id),
        };
    }

    if let Some(session) = path.strip_prefix(checkout::PAGE_PREFIX)
        && (method == "GET" || method == "POST")
    {
        return checkout_page(&emulator, &method, session, payload, &request_id).await;
    }

    if let Some(link) = path.strip_prefix(payment_links::PAGE_PREFIX)
        && (method == "GET" || method == "POST")
    {
        let base_url = {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        };
        let page = LinkPage {
            method: &method,
            link,
            query: req.query_string(),
            base_url: &base_url,
            request_id: &request_id,
        };
        return payment_link_page(&emulator, &page);
    }

    let key = match api_key(&req) {
        Ok(key) => key,
        Err(error) => return respond_error(&error, &request_id),
    };
    let state = emulator.key_state(&key);

    if let Some(action) = path.strip_prefix("/_emulator/") {
        let account = header(&req, "stripe-account").unwrap_or_default();
        let query = req.query_string();
        let call = AdminCall {
            method: &method,
            action,
            account,
            query,
            request_id: &request_id,
        };
        return admin(&emulator, &state, &call, payload).await;
    }

    let body = match read_body(payload).await {
        Ok(body) => body,
        Err(error) => return respond_error(&error, &request_id),
    };
    let base_url = {
        let info = req.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    };
    let request = ApiRequest {
        method: &method,
        path: &path,
        query: req.query_string(),
        body: &body,
        account: header(&req, "stripe-account").unwrap_or_default(),
        idempotency_key: header(&req, "idempotency-key").filter(|_| method == "POST"),
        base_url: &base_url,
        request_id: &request_id,
        key: &key,
    };
    let outcome = handle_api(&emulator, &state, &request);
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
    respond(outcome.status, outcome.body, &request_id, &extra)
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
    let now = ids::now();
    let mut data = state.lock();
    let params = Params::parse(&[req.query.as_bytes(), req.body]);
    let outcome = match &params {
        Err(error) => Outcome::error(error),
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
                    let body = with_request_log_url(status, body.to_string(), req.request_id);
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
    }));
    outcome
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

/// Reads `payment_method` from a JSON or form body (`pm_card_visa` when absent).
fn parse_payment_method(body: &[u8]) -> Result<String, ApiError> {
    let invalid = || ApiError::invalid_param("payment_method", "payment_method must be a string");
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(json) => match json.get("payment_method") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(invalid()),
            },
            Err(_) => Params::parse(&[body])?
                .non_empty(&["payment_method"])?
                .map(str::to_owned),
        }
    };
    Ok(value
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "pm_card_visa".to_owned()))
}

/// `POST /_emulator/checkout/sessions/:id/complete`: completes a checkout session as its
/// hosted page would.
fn complete_checkout(
    emulator: &Emulator,
    state: &Arc<KeyState>,
    account: &str,
    session: &str,
    body: &[u8],
) -> (u16, Value) {
    let pm = match parse_payment_method(body) {
        Ok(pm) => pm,
        Err(error) => return (error.status, error.to_json()),
    };
    let now = ids::now();
    let result = {
        let mut data = state.lock();
        let result = checkout::complete(data.store(account), now, session, &pm);
        // Automatic events (as the hosted page makes them): no request.
        let dispatches = commit(&mut data, account, Origin::default(), now);
        emulator.deliveries.enqueue(state, dispatches, false);
        result
    };
    match result {
        Ok(value) => (200, value),
        Err(error) => (error.status, error.to_json()),
    }
}

fn html_response(status: u16, body: String, request_id: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .insert_header(("Request-Id", request_id))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// The hosted checkout page: `GET` shows the session, `POST` (form `payment_method`)
/// completes it and redirects to `success_url` (or shows the decline).
async fn checkout_page(
    emulator: &Emulator,
    method: &str,
    session: &str,
    payload: web::Payload,
    request_id: &str,
) -> HttpResponse {
    let not_found = || {
        respond_error(
            &ApiError::unrecognized_url(method, &format!("{}{session}", checkout::PAGE_PREFIX)),
            request_id,
        )
    };
    let Some(page) = emulator.checkout_page(session) else {
        return not_found();
    };
    let state = emulator.key_state(&page.key);
    let mut error = None;
    let mut status = 200;
    if method == "POST" {
        let body = match read_body(payload).await {
            Ok(body) => body,
            Err(error) => return respond_error(&error, request_id),
        };
        let (code, outcome) = complete_checkout(emulator, &state, &page.account, session, &body);
        if code == 200 {
            if let Some(url) = checkout::success_redirect(&outcome) {
                return HttpResponse::SeeOther()
                    .insert_header(("Request-Id", request_id))
                    .insert_header(("Location", url))
                    .finish();
            }
        } else {
            status = code;
            error = outcome
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
    }
    let data = {
        let mut data = state.lock();
        checkout::page_data(data.store(&page.account), session, ids::now())
    };
    match data {
        Some((session, items)) => html_response(
            status,
            checkout::render_page(&session, &items, error.as_deref()),
            request_id,
        ),
        None => not_found(),
    }
}

/// A request for a payment link's hosted page.
struct LinkPage<'r> {
    method: &'r str,
    /// The link id (the path after the page prefix).
    link: &'r str,
    query: &'r str,
    /// The emulator's base URL as the client reached it.
    base_url: &'r str,
    request_id: &'r str,
}

/// A payment link's hosted page: `GET` shows the link (and, with `?session=`, the
/// confirmation of a completed session of it), `POST` opens a checkout session for it and
/// redirects `303` to the session's page.
fn payment_link_page(emulator: &Emulator, page: &LinkPage<'_>) -> HttpResponse {
    let not_found = || {
        respond_error(
            &ApiError::unrecognized_url(
                page.method,
                &format!("{}{}", payment_links::PAGE_PREFIX, page.link),
            ),
            page.request_id,
        )
    };
    let Some(owner) = emulator.payment_link_page(page.link) else {
        return not_found();
    };
    let state = emulator.key_state(&owner.key);
    let now = ids::now();
    let mut data = state.lock();
    let mut error = None;
    let mut status = 200;
    if page.method == "POST" {
        let params = Params::default();
        let mut ctx = Ctx {
            store: data.store(&owner.account),
            params: &params,
            base_url: page.base_url,
            now,
            emulator,
            key: &owner.key,
            account: &owner.account,
        };
        let result = payment_links::start_checkout(&mut ctx, page.link);
        // Automatic events (as the hosted page makes them): no request.
        let dispatches = commit(&mut data, &owner.account, Origin::default(), now);
        emulator.deliveries.enqueue(&state, dispatches, false);
        match result {
            Ok(url) => {
                return HttpResponse::SeeOther()
                    .insert_header(("Request-Id", page.request_id))
                    .insert_header(("Location", url))
                    .finish();
            }
            Err(e) => {
                status = e.status;
                error = Some(e.message.clone());
            }
        }
    }
    let store = data.store(&owner.account);
    let completed = Params::parse(&[page.query.as_bytes()])
        .ok()
        .and_then(|q| q.non_empty(&["session"]).ok().flatten().map(str::to_owned))
        .is_some_and(|session| payment_links::completed_session(store, page.link, &session));
    match payment_links::page_data(store, page.link) {
        Some((link, items)) => html_response(
            status,
            payment_links::render_page(&link, &items, completed, error.as_deref()),
            page.request_id,
        ),
        None => not_found(),
    }
}

/// A `/_emulator/...` request.
struct AdminCall<'r> {
    method: &'r str,
    /// The path after `/_emulator/`.
    action: &'r str,
    /// The `Stripe-Account` (`""` for the key's own account).
    account: &'r str,
    query: &'r str,
    request_id: &'r str,
}

/// The `/_emulator/...` test endpoints.
async fn admin(
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn key_of(header: Option<&str>) -> Result<String, ApiError> {
        let mut req = TestRequest::default();
        if let Some(h) = header {
            req = req.insert_header((AUTHORIZATION, h));
        }
        api_key(&req.to_http_request())
    }

    #[test]
    fn auth_headers() {
        assert_eq!(key_of(Some("Bearer sk_test_abc")).unwrap(), "sk_test_abc");
        assert_eq!(key_of(Some("bearer rk_live_x1")).unwrap(), "rk_live_x1");
        let basic = base64::engine::general_purpose::STANDARD.encode("sk_test_basic:");
        assert_eq!(
            key_of(Some(&format!("Basic {basic}"))).unwrap(),
            "sk_test_basic"
        );
        for bad in [
            None,
            Some("Bearer "),
            Some("Token sk_test_x"),
            Some("Bearer pk_test_x"),
            Some("Bearer sk_test_"),
            Some("Bearer sk_test_a b"),
        ] {
            let err = key_of(bad).unwrap_err();
            assert_eq!(err.status, 401, "{bad:?}");
        }
        assert!(
            key_of(Some("Bearer pk_test_x"))
                .unwrap_err()
                .message
                .starts_with("Invalid API Key provided")
        );
        assert!(
            key_of(None)
                .unwrap_err()
                .message
                .starts_with("You did not provide an API key")
        );
    }

    #[test]
    fn payment_method_bodies() {
        assert_eq!(parse_payment_method(b"").unwrap(), "pm_card_visa");
        assert_eq!(
            parse_payment_method(br#"{"payment_method": "pm_card_mastercard"}"#).unwrap(),
            "pm_card_mastercard"
        );
        assert_eq!(
            parse_payment_method(b"payment_method=pm_card_chargeDeclined").unwrap(),
            "pm_card_chargeDeclined"
        );
        assert_eq!(parse_payment_method(b"{}").unwrap(), "pm_card_visa");
        assert!(parse_payment_method(br#"{"payment_method": 5}"#).is_err());
    }

    #[test]
    fn config_bodies() {
        assert_eq!(parse_config(br#"{"latency_ms": 250}"#).unwrap(), Some(250));
        assert_eq!(parse_config(b"latency_ms=5").unwrap(), Some(5));
        assert_eq!(parse_config(b"{}").unwrap(), None);
        assert!(parse_config(br#"{"latency_ms": -1}"#).is_err());
        assert!(parse_config(br#"{"latency_ms": 600001}"#).is_err());
        assert!(parse_config(b"latency_ms=abc").is_err());
    }

    #[test]
    fn unspecified_addresses_map_to_loopback() {
        let addr: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert_eq!(client_addr(addr).to_string(), "127.0.0.1:80");
        let addr: SocketAddr = "[::]:80".parse().unwrap();
        assert_eq!(client_addr(addr).to_string(), "[::1]:80");
    }
}
