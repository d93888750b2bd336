//! `Idempotency-Key` on our own POST/PUT/DELETE routes (STRIPE_RULES.md, Idempotency), as a
//! middleware the route table puts on each such route.
//!
//! Keys belong to the caller (tenant + JWT subject): another caller's use of the same key is
//! a request of its own and learns nothing of the first. The first request with a key claims
//! it (a row `in_flight`, atomic across instances) and runs with the key in scope, so its
//! Stripe calls are keyed too; its answer is then saved, sealed with the master key (answers
//! hold secrets: `whsec_`, `nsec_`, client secrets), and replayed, errors included, for every
//! retry with the same method, path and body (`Idempotent-Replayed: true`). Not saved, so that a retry runs again: 5xx answers, and 4xx
//! answers given before any work started (no Stripe write was sent), like Stripe's own
//! validation errors. The same key on another request, or while the first is in flight, is
//! 409 `idempotency_error`. Without the header nothing changes; a keyed request without a
//! valid tenant and token gets the handler's refusal from here, and claims nothing.

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use chrono::Utc;
use futures_util::StreamExt;

use crate::caller::Caller;
use crate::crypto::MasterKey;
use crate::db::idempotency_keys::{self as rows, Claim, IdempotencyRow, Lapse, NewClaim};
use crate::db::{Database, DbError};
use crate::error::ApiError;
use crate::idempotency::{IN_FLIGHT_LEASE, IdempotencyKey, KEY_TTL, REPLAYED_HEADER, request_hash};
use crate::state::AppState;

/// The middleware (see the module's doc).
pub async fn idempotent(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let keyed_method = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !keyed_method {
        return pass(req, next).await;
    }
    let key = match IdempotencyKey::from_headers(req.headers()) {
        Ok(Some(key)) => key,
        Ok(None) => return pass(req, next).await,
        Err(err) => return Ok(req.error_response(err)),
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return pass(req, next).await;
    };
    let mut caller = match Caller::authenticate(state.clone(), req.headers()).await {
        Ok(caller) => caller,
        // The handler's own authentication would refuse it the same way: answered here, so a
        // refused request is not verified twice (nor charged twice to its rate limit).
        Err(err) => return Ok(req.error_response(err)),
    };
    // The handler's Stripe writes take their keys from this one (`Caller::stripe_key`).
    let stripe_key = key.for_request(&caller.subject);
    caller.key = Some(stripe_key.clone());
    req.extensions_mut().insert(caller.clone());
    let body = match read_body(&mut req, state.settings.max_body_bytes).await {
        Ok(body) => body,
        Err(err) => return Ok(req.error_response(err)),
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or(req.path(), |p| p.as_str())
        .to_owned();
    let request = KeyedRequest {
        id: crate::db::new_row_id(),
        tenant_id: caller.tenant.id.clone(),
        subject: caller.subject.clone(),
        key: key.clone(),
        method: req.method().to_string(),
        path: req.path().to_owned(),
        hash: request_hash(
            req.method().as_str(),
            &path_and_query,
            &caller.subject,
            &body,
        ),
    };
    req.set_payload(body.into());

    match claim(&state.db, &request).await {
        Ok(Claim::Claimed) => {}
        Ok(Claim::Held(row)) => {
            return Ok(req.into_response(answer_held(&state.master, &row, &request)));
        }
        Err(err) => return Ok(req.error_response(ApiError::from(err))),
    }
    let mut claim = ClaimGuard {
        db: state.db.clone(),
        master: state.master.clone(),
        id: Some(request.id),
    };
    let result = next.call(req).await;
    let wrote_to_stripe = stripe_key.wrote();
    let response = match result {
        Ok(response) => response,
        Err(err) => {
            claim.release().await;
            return Err(err);
        }
    };
    let status = response.status();
    let started = wrote_to_stripe || status.is_success();
    if status.is_server_error() || !started {
        claim.release().await;
        return Ok(response.map_into_boxed_body());
    }
    claim.save(response).await
}

/// What identifies a keyed request and what a retry must repeat.
struct KeyedRequest {
    /// The id of its claim.
    id: String,
    tenant_id: String,
    /// The caller's JWT subject: the key is theirs.
    subject: String,
    key: IdempotencyKey,
    method: String,
    path: String,
    hash: String,
}

/// Claims the request's key, or finds who holds it.
async fn claim(db: &Database, request: &KeyedRequest) -> Result<Claim, DbError> {
    let id = request.id.clone();
    let tenant_id = request.tenant_id.clone();
    let subject = request.subject.clone();
    let key = request.key.clone();
    let (method, path, hash) = (
        request.method.clone(),
        request.path.clone(),
        request.hash.clone(),
    );
    db.run(move |conn| {
        let now = Utc::now().naive_utc();
        let new = NewClaim {
            id: &id,
            tenant_id: &tenant_id,
            idempotency_key: key.as_str(),
            method: &method,
            path: &path,
            request_hash: &hash,
            state: rows::IN_FLIGHT,
            created_at: now,
            updated_at: now,
            caller_subject: &subject,
        };
        let lapse = Lapse {
            expired_before: now - KEY_TTL,
            abandoned_before: now - IN_FLIGHT_LEASE,
        };
        rows::claim(conn, &new, lapse).map_err(DbError::from)
    })
    .await
}

async fn pass(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Reads the whole body (to fingerprint it) up to the service's limit.
async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut payload = req.parts_mut().1.take();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| {
            ApiError::bad_request(
                "invalid_body",
                format!("The body could not be read: {err}."),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(super::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn idempotency_error(detail: &str) -> HttpResponse {
    actix_web::ResponseError::error_response(
        &ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_error",
            "Idempotency error",
            detail,
        )
        .with_header("Idempotency-Key"),
    )
}

/// The answer for a key another request of the same caller holds.
fn answer_held(master: &MasterKey, row: &IdempotencyRow, request: &KeyedRequest) -> HttpResponse {
    if row.method != request.method || row.path != request.path {
        return idempotency_error(
            "This Idempotency-Key was first used for another route. Keys can only be reused to retry the same request; use a new key for a new request.",
        );
    }
    if row.request_hash != request.hash {
        return idempotency_error(
            "This Idempotency-Key was first used with different parameters (another body or query). Keys can only be reused to retry the same request; use a new key for a new request.",
        );
    }
    let (Some(status), Some(sealed)) = (row.response_status, row.response_body.as_deref()) else {
        return idempotency_error(
            "A request with this Idempotency-Key is in progress. Retry once it has finished to get its answer.",
        );
    };
    let body = match master.decrypt(sealed) {
        Ok(body) => body,
        Err(err) => {
            // The operator's master key setting, not the client: logged, and a plain 500.
            return actix_web::ResponseError::error_response(&ApiError::internal(format!(
                "a saved idempotent answer does not decrypt: {err:#}"
            )));
        }
    };
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .insert_header((REPLAYED_HEADER, HeaderValue::from_static("true")))
        .body(body)
}

/// The claim of a request on its key. Dropped while still held (the client went away and the
/// handler was cancelled), it is released, so a retry runs again; its Stripe calls were keyed,
/// so Stripe replays them instead of creating anything twice.
struct ClaimGuard {
    db: Database,
    master: MasterKey,
    id: Option<String>,
}

impl ClaimGuard {
    async fn release(&mut self) {
        let Some(id) = self.id.take() else { return };
        if let Err(err) = release(&self.db, id).await {
            tracing::warn!(error = %err, "releasing an idempotency key");
        }
    }

    /// Saves the response (read whole, then sent on) as the key's answer.
    async fn save(
        &mut self,
        response: ServiceResponse<impl MessageBody>,
    ) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
        let status = response.status();
        let (http_req, res) = response.into_parts();
        let (res, body) = res.into_parts();
        let bytes = match to_bytes(body).await {
            Ok(bytes) => bytes,
            Err(err) => {
                self.release().await;
                let err: Box<dyn std::error::Error> = err.into();
                return Err(ApiError::internal(format!("reading a response body: {err}")).into());
            }
        };
        match std::str::from_utf8(&bytes) {
            Ok(text) => self.complete(status, text.to_owned()).await,
            Err(_) => self.release().await,
        }
        let res = res.set_body(bytes).map_into_boxed_body();
        Ok(ServiceResponse::new(http_req, res))
    }

    /// Saves the answer. If that fails the key is released instead (a retry then runs again,
    /// replaying at Stripe), never left in flight.
    async fn complete(&mut self, status: StatusCode, body: String) {
        let Some(id) = self.id.take() else { return };
        let body = self.master.encrypt(&body);
        let saved = {
            let id = id.clone();
            self.db
                .run(move |conn| {
                    let now = Utc::now().naive_utc();
                    rows::complete(conn, &id, status.as_u16(), &body, now).map_err(DbError::from)
                })
                .await
        };
        match saved {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("an idempotency key was taken over before its answer was saved")
            }
            Err(err) => {
                tracing::warn!(error = %err, "saving an idempotent answer");
                if let Err(err) = release(&self.db, id).await {
                    tracing::warn!(error = %err, "releasing an idempotency key");
                }
            }
        }
    }
}

async fn release(db: &Database, id: String) -> Result<(), DbError> {
    db.run(move |conn| rows::release(conn, &id).map_err(DbError::from))
        .await
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let db = self.db.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = release(&db, id).await {
                    tracing::warn!(error = %err, "releasing an abandoned idempotency key");
                }
            });
        }
    }
}
