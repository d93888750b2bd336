//! `GET /health` (the SDK's `sales.health()`, a liveness probe) and `GET /ready` (the
//! database answers, the receiver's writers run and its queue is not near its bound).

use actix_web::{HttpResponse, web};
use chrono::{SecondsFormat, Utc};
use diesel::RunQueryDsl;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "{service, status, version, timestamp}")))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "service": "sales",
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
    }))
}

#[utoipa::path(get, path = "/ready", tag = "health",
    responses((status = 200, description = "Ready: the database answers, the receiver's writers run, its queue is under three quarters of its bound"),
              (status = 503, description = "Not ready, with what is wrong (a load balancer stops sending traffic here)")))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let database = state
        .db
        .run(|conn| {
            diesel::sql_query("SELECT 1")
                .execute(conn)
                .map_err(ApiError::unavailable)
        })
        .await
        .is_ok();
    let writers = state.receiver.writers_alive();
    let (backlog, bound) = state.receiver.backlog();
    let queue_ok = backlog * 4 < bound * 3;
    let ready = database && writers > 0 && queue_ok;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "database": if database { "ok" } else { "unreachable" },
        "receiver": {"writers": writers, "backlog": backlog, "bound": bound,
                     "status": if writers == 0 { "stopped" } else if queue_ok { "ok" } else { "backlogged" }},
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format (version 0.0.4)"),
              (status = 401, description = "metrics_token is set and the request's Bearer token is not it")))]
pub async fn metrics(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    use secrecy::ExposeSecret;
    use subtle::ConstantTimeEq;
    let token = state.settings.metrics_token.expose_secret();
    if !token.is_empty() {
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            return Err(ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                "GET /metrics needs Authorization: Bearer <metrics_token>.",
            ));
        }
    }
    let notifications_pending = state
        .db
        .run(|conn| crate::db::notifications::pending_count(conn).map_err(ApiError::unavailable))
        .await
        .ok();
    let (pool_connections, pool_idle) = state.db.pool_state();
    let (receiver_backlog, receiver_bound) = state.receiver.backlog();
    let text = crate::metrics::render(&crate::metrics::Gauges {
        pool_connections,
        pool_idle,
        receiver_writers: state.receiver.writers_alive(),
        receiver_backlog,
        receiver_bound,
        notifications_pending,
    });
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text))
}
