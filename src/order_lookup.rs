//! Looking up an order the tenant's backend has not recorded (issue 12, point 5): when the
//! tenant set an `order_lookup_url` in its policy, an unknown `order_unique_id` is fetched with
//! `GET <order_lookup_url>/<order_unique_id>?user_unique_id=<caller's sub>`, signed like our
//! notifications (`Sales-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<path and query>">`
//! under the lookup's own signing secret), through the egress policy (no private addresses,
//! no redirects). The answer, `{amount, currency[, description, metadata, user_unique_id]}` or a
//! JSON:API document carrying them as attributes, is recorded as the order (source `lookup`);
//! a 404 means there is no such order.

use std::time::Duration;

use serde_json::Value;

use crate::auth::Caller;
use crate::db::policies::{self as rows, OrderRow, Recorded};
use crate::error::ApiError;
use crate::orders::{OrderFields, parse_terms};
use crate::state::AppState;

/// The tenant's backend must answer within this.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read (an order is a few hundred bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The header the signature travels in (as for notifications).
pub const SIGNATURE_HEADER: &str = "Sales-Signature";

/// Lookups in flight at once per tenant: a flood of unknown order ids (or a tenant backend, or
/// its name server, that never answers) holds at most this many requests and resolver threads;
/// past it, 429 with `Retry-After`.
const MAX_IN_FLIGHT_PER_TENANT: usize = 4;

/// How long an order the backend did not have (or failed to give) is answered from memory,
/// so repeating an unknown id does not call the backend again.
const REMEMBERED_FOR: Duration = Duration::from_secs(5);

/// Most remembered outcomes (oldest dropped first when full).
const MAX_REMEMBERED: usize = 10_000;

/// What recent lookups left behind, across the process.
#[derive(Default)]
struct Recent {
    in_flight: std::collections::HashMap<String, usize>,
    /// (tenant, order) → when, and whether the backend failed (else: it had no such order).
    outcomes: std::collections::HashMap<(String, String), (std::time::Instant, bool)>,
}

static RECENT: std::sync::LazyLock<std::sync::Mutex<Recent>> =
    std::sync::LazyLock::new(Default::default);

fn recent() -> std::sync::MutexGuard<'static, Recent> {
    RECENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A lookup's place among its tenant's in flight, given back on drop.
struct Slot(String);

impl Slot {
    fn take(tenant_id: &str) -> Option<Self> {
        let mut recent = recent();
        let running = recent.in_flight.entry(tenant_id.to_owned()).or_default();
        if *running >= MAX_IN_FLIGHT_PER_TENANT {
            return None;
        }
        *running += 1;
        Some(Self(tenant_id.to_owned()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut recent = recent();
        if let Some(running) = recent.in_flight.get_mut(&self.0) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                recent.in_flight.remove(&self.0);
            }
        }
    }
}

/// The remembered outcome of looking `order` up: `Some(true)` failed, `Some(false)` missing.
fn remembered(tenant_id: &str, order: &str) -> Option<bool> {
    let mut recent = recent();
    let key = (tenant_id.to_owned(), order.to_owned());
    match recent.outcomes.get(&key) {
        Some((at, failed)) if at.elapsed() < REMEMBERED_FOR => Some(*failed),
        Some(_) => {
            recent.outcomes.remove(&key);
            None
        }
        None => None,
    }
}

fn remember(tenant_id: &str, order: &str, failed: bool) {
    let mut recent = recent();
    if recent.outcomes.len() >= MAX_REMEMBERED {
        recent
            .outcomes
            .retain(|_, (at, _)| at.elapsed() < REMEMBERED_FOR);
        if recent.outcomes.len() >= MAX_REMEMBERED {
            recent.outcomes.clear();
        }
    }
    recent.outcomes.insert(
        (tenant_id.to_owned(), order.to_owned()),
        (std::time::Instant::now(), failed),
    );
}

fn failed(detail: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::BAD_GATEWAY,
        "order_lookup_failed",
        "Order lookup failed",
        format!("The app's order lookup did not give a usable answer: {detail}."),
    )
}

/// The URL for one order: the configured URL with the order id as one more path segment and
/// the caller's subject as a query parameter.
pub fn lookup_url(
    base: &url::Url,
    order_unique_id: &str,
    subject: Option<&str>,
) -> Result<url::Url, ApiError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| failed("the order_lookup_url cannot take a path"))?
        .pop_if_empty()
        .push(order_unique_id);
    if let Some(subject) = subject {
        url.query_pairs_mut().append_pair("user_unique_id", subject);
    }
    Ok(url)
}

/// Looks the order up and records it; `None` when the tenant has no lookup URL or its backend
/// answers 404.
pub async fn look_up(
    state: &AppState,
    caller: &Caller,
    order_unique_id: &str,
) -> Result<Option<OrderRow>, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let policy = state
        .db
        .run(move |conn| rows::find(conn, &tenant_id).map_err(ApiError::from))
        .await?;
    let Some((base, sealed)) =
        policy.and_then(|p| p.order_lookup_url.zip(p.order_lookup_secret_enc))
    else {
        return Ok(None);
    };
    let tenant = caller.tenant.id.clone();
    match remembered(&tenant, order_unique_id) {
        Some(true) => return Err(failed("it failed a moment ago; retry shortly")),
        Some(false) => return Ok(None),
        None => {}
    }
    let Some(_slot) = Slot::take(&tenant) else {
        return Err(ApiError::rate_limited(
            "Too many order lookups for this app are in progress; retry shortly.",
            Duration::from_secs(1),
        ));
    };
    let outcome = fetch(state, caller, order_unique_id, &base, &sealed).await;
    match &outcome {
        Ok(None) => remember(&tenant, order_unique_id, false),
        Err(err) if err.code == "order_lookup_failed" => {
            remember(&tenant, order_unique_id, true);
        }
        _ => {}
    }
    outcome
}

/// One lookup at the tenant's backend, recorded when it answers an order.
async fn fetch(
    state: &AppState,
    caller: &Caller,
    order_unique_id: &str,
    base: &str,
    sealed: &str,
) -> Result<Option<OrderRow>, ApiError> {
    let secret = state.master.decrypt(sealed).map_err(ApiError::internal)?;
    let egress = state.egress;
    // Checked again now: the operator's rules may have tightened since the URL was saved.
    let base = egress
        .check_url(base, "/order_lookup_url")
        .await
        .map_err(|err| failed(&err.detail))?;
    let subject = (!caller.admin).then_some(caller.subject.as_str());
    let url = lookup_url(&base, order_unique_id, subject)?;
    egress.check_target(&url).map_err(failed)?;
    let t = chrono::Utc::now().timestamp();
    let path_and_query = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let signature = crate::signature::sign(path_and_query.as_bytes(), &secret, t);
    let client = egress.client(LOOKUP_TIMEOUT).map_err(ApiError::internal)?;
    // The URL is the tenant's: it is logged for its operators, never shown to its users.
    let mut response = client
        .get(url.clone())
        .header(SIGNATURE_HEADER, signature)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|err| {
            tracing::warn!(order_lookup.url = %url, error = %err, "order lookup failed");
            failed(if err.is_timeout() {
                "no answer in time"
            } else {
                "it could not be reached"
            })
        })?;
    match response.status().as_u16() {
        200 => {}
        404 => return Ok(None),
        other => {
            tracing::warn!(order_lookup.url = %url, status = other, "order lookup refused");
            return Err(failed(format!("it answered HTTP {other}")));
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| failed(format!("reading the answer: {}", err.without_url())))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(failed(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let answer: Value = serde_json::from_slice(&body)
        .map_err(|err| failed(format!("the answer is not JSON: {err}")))?;
    let attributes = match answer.pointer("/data/attributes") {
        Some(attributes) => attributes.clone(),
        None => answer,
    };
    // Held to what a client's body is held to: no NUL, ids bounded.
    crate::http::ids::check_body(&attributes, "").map_err(|err| failed(&err.detail))?;
    let fields: OrderFields = serde_json::from_value(attributes)
        .map_err(|err| failed(format!("the answer is not an order: {err}")))?;
    let mut terms = parse_terms(fields, "").map_err(|err| failed(&err.detail))?;
    if terms.user_unique_id.is_none() {
        // Looked up for this caller: the order is theirs.
        terms.user_unique_id = subject.map(str::to_owned);
    }
    let (tenant_id, wanted) = (caller.tenant.id.clone(), order_unique_id.to_owned());
    let recorded = state
        .db
        .run(move |conn| {
            let claimed_after = chrono::Utc::now().naive_utc() - crate::orders::PAYMENT_LEASE;
            match rows::record_order(conn, &tenant_id, &wanted, &terms, "lookup", claimed_after) {
                Ok(recorded) => Ok(recorded),
                // Another request recorded it meanwhile: theirs stands.
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => rows::find_order(conn, &tenant_id, &wanted)?
                    .map(Recorded::Updated)
                    .ok_or(diesel::result::Error::NotFound),
                Err(err) => Err(err),
            }
            .map_err(ApiError::from)
        })
        .await?;
    Ok(Some(match recorded {
        Recorded::Created(row)
        | Recorded::Updated(row)
        | Recorded::Paid(row)
        | Recorded::Busy(row) => row,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_id_is_one_more_path_segment_and_the_subject_a_query_parameter() {
        let base = url::Url::parse("https://shop.example.com/api/orders/").unwrap();
        let url = lookup_url(&base, "ord 1/../x?y", Some("alice&bob")).unwrap();
        assert_eq!(
            url.as_str(),
            "https://shop.example.com/api/orders/ord%201%2F..%2Fx%3Fy?user_unique_id=alice%26bob"
        );
        let base = url::Url::parse("https://shop.example.com/orders").unwrap();
        assert_eq!(
            lookup_url(&base, "o-2", None).unwrap().as_str(),
            "https://shop.example.com/orders/o-2"
        );
    }
}
