//! What a delivery must be before it is stored: signed with one of the endpoint's live
//! secrets, and a Stripe event of bounded ids, without NUL characters.

use actix_web::web::Bytes;
use serde_json::Value;

use super::event::Event;
use super::target::Target;
use super::target::target_of;
use crate::error::ApiError;
use crate::signature::{self, SignatureError};

pub(super) fn signature_error(err: SignatureError) -> ApiError {
    let code = match err {
        SignatureError::Missing => "missing_signature",
        _ => "invalid_signature",
    };
    ApiError::bad_request(code, format!("{err}.")).with_header("stripe-signature")
}

/// Bodies larger than this are verified on the blocking pool: hashing them (once per secret,
/// up to 1 MiB) must not hold an async worker that serves other requests.
const INLINE_VERIFY_BYTES: usize = 16 * 1024;

/// `signature::verify`, off the async workers for a large body. The outer error is the
/// blocking pool failing (503: Stripe retries).
pub(super) async fn verify(
    header: Option<&str>,
    body: &Bytes,
    secrets: Vec<String>,
    now: i64,
) -> Result<Result<(), SignatureError>, ApiError> {
    if body.len() <= INLINE_VERIFY_BYTES {
        return Ok(signature::verify(header, body, &secrets, now));
    }
    let (header, body) = (header.map(str::to_owned), body.clone());
    actix_web::web::block(move || signature::verify(header.as_deref(), &body, &secrets, now))
        .await
        .map_err(ApiError::unavailable)
}

pub(super) fn parse_event(body: &[u8]) -> Result<Event, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        ApiError::bad_request("invalid_event", "The body is not a JSON Stripe event.")
    })?;
    event_of(&value)
}

/// [`parse_event`] of a value already parsed (the platform webhook reads `account` from the
/// same value; reconciliation has the events of a list page).
pub(super) fn event_of(value: &Value) -> Result<Event, ApiError> {
    let bad = |detail: &str| ApiError::bad_request("invalid_event", detail.to_owned());
    // PostgreSQL cannot store a NUL: refused here, not a storage error Stripe retries for days.
    if has_nul(value) {
        return Err(bad("The event contains a NUL character."));
    }
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| stripe_id_shape(id))
        .ok_or_else(|| bad("The event has no id of at most 255 ASCII characters."))?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .filter(|kind| stripe_id_shape(kind))
        .ok_or_else(|| bad("The event has no type of at most 255 ASCII characters."))?;
    let created = value
        .get("created")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("The event has no created time."))?;
    let object = value.pointer("/data/object");
    let object_id = object
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if object_id.as_deref().is_some_and(|id| !stripe_id_shape(id)) {
        return Err(bad(
            "The event's object id is not at most 255 ASCII characters.",
        ));
    }
    let target = object.map_or(Target::Nothing, |obj| target_of(kind, obj));
    let notification = object.and_then(|obj| crate::outbound::notifications::for_event(kind, obj));
    Ok(Event {
        id: id.to_owned(),
        kind: kind.to_owned(),
        created,
        object_id,
        api_version: value
            .get("api_version")
            .and_then(Value::as_str)
            .map(str::to_owned),
        target,
        notification,
    })
}

/// Whether a Stripe object can be kept in the mirror: no NUL anywhere (PostgreSQL cannot
/// store one), its id of Stripe's shape. An object listed by a sync that is not is skipped,
/// as a delivery carrying it is refused ([`event_of`]).
pub(super) fn storable(object: &Value) -> bool {
    !has_nul(object)
        && object
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(stripe_id_shape)
}

/// Stripe's ids and event types: ASCII without spaces or control characters, 1 to 255 bytes.
fn stripe_id_shape(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_graphic())
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}
