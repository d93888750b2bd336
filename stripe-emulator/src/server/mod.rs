//! The HTTP side: actix-web server, authentication, idempotency, latency injection, request
//! recording, the `/_emulator` test endpoints, and Stripe-shaped responses.
//!
//! One catch-all handler ([`dispatch`]) routes every request itself, so that every answer,
//! including unknown URLs and unreadable bodies, is Stripe-shaped JSON with a `Request-Id`:
//! the hosted pages ([`crate::pages`]), the `/_emulator` test endpoints ([`admin`](mod@admin)) and
//! the API ([`api`]).

pub mod admin;
pub mod api;
pub mod oauth;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::fixtures::API_VERSION;
use crate::http::{api_key, header, read_body, respond_error, respond_json};
use crate::ids;
use crate::pages::oauth::{Flow, authorize_page};
use crate::pages::payment_link::LinkPage;
use crate::pages::{checkout, payment_link, portal};
use crate::resources::{billing_portal, checkout as checkout_sessions, payment_links};
use crate::server::admin::{AdminCall, admin};
use crate::state::Emulator;
use crate::state::oauth::TokenUse;

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
    // Idle connections are kept longer than the service keeps them (30 s): the client, not
    // the server, ends an idle connection, so a request never meets one being closed under
    // it. actix's default is 5 s.
    .keep_alive(std::time::Duration::from_secs(75))
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
        return portal::portal_page(&emulator, secret, &path, &request_id);
    }

    if let Some(session) = path.strip_prefix(checkout_sessions::PAGE_PREFIX)
        && (method == "GET" || method == "POST")
    {
        return checkout::checkout_page(&emulator, &method, session, payload, &request_id).await;
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
        return payment_link::payment_link_page(&emulator, &page);
    }

    if let Some(flow) = Flow::at(&path)
        && (method == "GET" || method == "POST")
    {
        let body = if method == "POST" {
            match read_body(payload).await {
                Ok(body) => body,
                Err(error) => return respond_error(&error, &request_id),
            }
        } else {
            web::Bytes::copy_from_slice(req.query_string().as_bytes())
        };
        return authorize_page(&emulator, flow, &method, &body, &request_id);
    }

    if oauth::is_oauth_endpoint(&method, &path) {
        return oauth::serve(&emulator, &req, payload, &request_id).await;
    }

    let presented = match api_key(&req) {
        Ok(key) => key,
        Err(error) => return respond_error(&error, &request_id),
    };
    // An Apps access token acts as its platform key on the connected account.
    let token_use = emulator.oauth().token_use(&presented, ids::now());
    let (key, token_account) = match token_use {
        None => (presented.clone(), None),
        Some(TokenUse::Valid { key, account }) => (key, Some(account)),
        Some(TokenUse::Expired) => {
            return respond_error(&ApiError::expired_api_key(&presented), &request_id);
        }
        Some(TokenUse::Revoked) => {
            return respond_error(&ApiError::invalid_api_key(&presented), &request_id);
        }
    };
    let header_account = header(&req, "stripe-account").unwrap_or_default();
    let account = match &token_account {
        Some(account) if !header_account.is_empty() && header_account != account => {
            let error = ApiError::account_invalid(&presented, header_account);
            return respond_error(&error, &request_id);
        }
        Some(account) => account.as_str(),
        None => header_account,
    };
    // A platform whose OAuth connection to the account ended has no access to it any more
    // (accounts never connected through OAuth stay open to any key).
    if token_account.is_none() && !account.is_empty() && emulator.oauth().is_revoked(&key, account)
    {
        return respond_error(&ApiError::account_invalid(&key, account), &request_id);
    }
    let state = emulator.key_state(&key);

    if let Some(action) = path.strip_prefix("/_emulator/") {
        let query = req.query_string();
        let call = AdminCall {
            method: &method,
            action,
            key: &key,
            account,
            query,
            request_id: &request_id,
        };
        return admin(&emulator, &state, &call, payload).await;
    }

    api::serve(&emulator, &state, &req, payload, &key, account, &request_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_map_to_loopback() {
        let addr: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert_eq!(client_addr(addr).to_string(), "127.0.0.1:80");
        let addr: SocketAddr = "[::]:80".parse().unwrap();
        assert_eq!(client_addr(addr).to_string(), "[::1]:80");
    }
}
