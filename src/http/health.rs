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
