//! `GET /health` (the SDK's `sales.health()`) and `GET /ready` (the database answers).

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
    responses((status = 200, description = "The database answers"), (status = 503, description = "It does not")))]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .db
        .run(|conn| {
            diesel::sql_query("SELECT 1")
                .execute(conn)
                .map_err(ApiError::unavailable)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "database": "ok" })))
}
