//! Looking up an order the tenant's backend has not recorded (issue 12, point 5): when the
//! tenant set an `order_lookup_url` in its policy, an unknown `order_unique_id` is fetched with
//! `GET <order_lookup_url>/<order_unique_id>?user_unique_id=<caller's sub>`, signed like our
//! notifications (`Sales-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<path and query>">`
//! under the lookup's own signing secret), through the egress policy (no private addresses,
//! no redirects). The answer, `{amount, currency[, description, metadata, user_unique_id]}` or a
//! JSON:API document carrying them as attributes, is recorded as the order (source `lookup`);
//! a 404 means there is no such order.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::crypto::MasterKey;
use crate::db::Database;
use crate::db::orders::{self as rows, OrderRow, Recorded};
use crate::db::policies;
use crate::error::ApiError;
use crate::misses::Misses;
use crate::orders::terms::{OrderFields, PAYMENT_LEASE, parse_terms};
use crate::outbound::egress::EgressPolicy;

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

/// This instance's order lookups: how many are in flight per tenant, and the recent orders
/// its backends did not have or failed to give (answered from memory for
/// [`crate::misses::UNKNOWN_TTL`], so repeating an unknown id does not call the backend again).
pub struct Lookups {
    in_flight: Mutex<HashMap<String, usize>>,
    missing: Misses,
    failed: Misses,
}

impl Default for Lookups {
    fn default() -> Self {
        Self {
            in_flight: Mutex::default(),
            missing: Misses::new(),
            failed: Misses::new(),
        }
    }
}

impl Lookups {
    fn in_flight(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a lookup works with: the database, the master key (the lookup's signing secret is
/// sealed), the egress policy and this instance's [`Lookups`].
pub struct LookupContext<'a> {
    pub db: &'a Database,
    pub master: &'a MasterKey,
    pub egress: EgressPolicy,
    pub lookups: &'a Lookups,
}

/// A lookup's place among its tenant's in flight, given back on drop.
struct Slot<'a> {
    lookups: &'a Lookups,
    tenant_id: String,
}

impl<'a> Slot<'a> {
    fn take(lookups: &'a Lookups, tenant_id: &str) -> Option<Self> {
        let mut in_flight = lookups.in_flight();
        let running = in_flight.entry(tenant_id.to_owned()).or_default();
        if *running >= MAX_IN_FLIGHT_PER_TENANT {
            return None;
        }
        *running += 1;
        Some(Self {
            lookups,
            tenant_id: tenant_id.to_owned(),
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.lookups.in_flight();
        if let Some(running) = in_flight.get_mut(&self.tenant_id) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                in_flight.remove(&self.tenant_id);
            }
        }
    }
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

/// Looks the order up for `tenant_id`'s caller `subject` (`None` for an admin, who asks for
/// no user in particular) and records it; `None` when the tenant has no lookup URL or its
/// backend answers 404.
pub async fn look_up(
    context: &LookupContext<'_>,
    tenant_id: &str,
    subject: Option<&str>,
    order_unique_id: &str,
) -> Result<Option<OrderRow>, ApiError> {
    let tenant = tenant_id.to_owned();
    let policy = context
        .db
        .run(move |conn| policies::find(conn, &tenant).map_err(ApiError::from))
        .await?;
    let Some((base, sealed)) =
        policy.and_then(|p| p.order_lookup_url.zip(p.order_lookup_secret_enc))
    else {
        return Ok(None);
    };
    let lookups = context.lookups;
    let key = format!("{tenant_id}\0{order_unique_id}");
    if lookups.failed.contains(&key) {
        return Err(failed("it failed a moment ago; retry shortly"));
    }
    if lookups.missing.contains(&key) {
        return Ok(None);
    }
    let Some(_slot) = Slot::take(lookups, tenant_id) else {
        return Err(ApiError::rate_limited(
            "Too many order lookups for this app are in progress; retry shortly.",
            Duration::from_secs(1),
        ));
    };
    let outcome = fetch(context, tenant_id, subject, order_unique_id, &base, &sealed).await;
    match &outcome {
        Ok(None) => lookups.missing.insert(&key),
        Err(err) if err.code == "order_lookup_failed" => lookups.failed.insert(&key),
        _ => {}
    }
    outcome
}

/// One lookup at the tenant's backend, recorded when it answers an order.
async fn fetch(
    context: &LookupContext<'_>,
    tenant_id: &str,
    subject: Option<&str>,
    order_unique_id: &str,
    base: &str,
    sealed: &str,
) -> Result<Option<OrderRow>, ApiError> {
    let secret = context.master.decrypt(sealed).map_err(ApiError::internal)?;
    let egress = context.egress;
    // Checked again now: the operator's rules may have tightened since the URL was saved.
    let base = egress
        .check_url(base, "/order_lookup_url")
        .await
        .map_err(|err| failed(&err.detail))?;
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
    let response = client
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
    let body = crate::bounded::read_body(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|err| failed(err.to_string()))?;
    let answer: Value = serde_json::from_slice(&body)
        .map_err(|err| failed(format!("the answer is not JSON: {err}")))?;
    let attributes = match answer.pointer("/data/attributes") {
        Some(attributes) => attributes.clone(),
        None => answer,
    };
    // Held to what a client's body is held to: no NUL, ids bounded.
    crate::domain::ids::check_body(&attributes, "").map_err(|err| failed(&err.detail))?;
    let fields: OrderFields = serde_json::from_value(attributes)
        .map_err(|err| failed(format!("the answer is not an order: {err}")))?;
    let mut terms = parse_terms(fields, "").map_err(|err| failed(&err.detail))?;
    if terms.user_unique_id.is_none() {
        // Looked up for this caller: the order is theirs.
        terms.user_unique_id = subject.map(str::to_owned);
    }
    let (tenant_id, wanted) = (tenant_id.to_owned(), order_unique_id.to_owned());
    let recorded = context
        .db
        .run(move |conn| {
            let claimed_after = chrono::Utc::now().naive_utc() - PAYMENT_LEASE;
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
