//! Webhook endpoints: create (answering the `whsec_` signing secret once), retrieve,
//! update, delete, list; at most 16 per account, as in Stripe.
//!
//! The signing secrets are kept with each endpoint (internal, newest first, each with an
//! optional expiry for rolled secrets) so that event delivery can sign with them and pick
//! endpoints (see [`crate::objects::webhook_endpoints`]).
//!
//! Events are recorded by [`crate::events`] and delivered by [`crate::delivery`]: each
//! event goes to the enabled endpoints of its account whose `enabled_events` hold its type
//! or `*` (and, for a connected account's event, to the platform's `connect` endpoints),
//! signed with every live secret.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::events::types as event_types;
use crate::fixtures::fixture;
use crate::form::Params;
use crate::ids;
use crate::json::{metadata_of, opt_str, set};
use crate::list::ListParams;
use crate::objects::webhook_endpoints::{LABEL, new_secret};
use crate::params::merge_metadata;
use crate::resources::ctx::Ctx;
use crate::store::{Store, kinds};
use crate::text::is_url;

/// Stripe's limit on endpoints per account (and mode).
pub const MAX_ENDPOINTS: usize = 16;

/// Longest description.
const MAX_DESCRIPTION_LEN: usize = 5000;

fn read_url(p: &Params, livemode: bool, required: bool) -> ApiResult<Option<String>> {
    let url = if required {
        Some(p.required_string(&["url"])?)
    } else {
        p.non_empty(&["url"])?
    };
    let Some(url) = url else {
        return Ok(None);
    };
    if !is_url(url) {
        return Err(
            ApiError::invalid_request("Invalid URL: URL must be a valid URL.")
                .with_code("url_invalid")
                .with_param("url"),
        );
    }
    if livemode && !url.starts_with("https://") {
        return Err(ApiError::invalid_request(
            "Invalid URL: URL must be publicly accessible and use HTTPS in live mode.",
        )
        .with_code("url_invalid")
        .with_param("url"));
    }
    Ok(Some(url.to_owned()))
}

fn read_events(p: &Params, required: bool) -> ApiResult<Option<Vec<String>>> {
    if !p.has(&["enabled_events"]) {
        return if required {
            Err(ApiError::parameter_missing("enabled_events"))
        } else {
            Ok(None)
        };
    }
    let events = p.string_list(&["enabled_events"])?;
    if events.is_empty() {
        return Err(ApiError::parameter_missing("enabled_events"));
    }
    for event in &events {
        if !event_types::is_known(event) {
            return Err(ApiError::invalid_param(
                "enabled_events",
                format!(
                    "Invalid enabled_events: `{event}` is not a valid event type. See https://docs.stripe.com/api/events/types for the event types."
                ),
            ));
        }
    }
    let mut unique = Vec::new();
    for event in events {
        if !unique.contains(&event) {
            unique.push(event);
        }
    }
    Ok(Some(unique))
}

/// Whether `version` reads like a Stripe API version: `2026-09-30` or `2026-09-30.endive`.
fn is_api_version(version: &str) -> bool {
    let (date, name) = version.split_once('.').unwrap_or((version, "x"));
    let parts: Vec<&str> = date.split('-').collect();
    parts.len() == 3
        && [4, 2, 2]
            .iter()
            .zip(&parts)
            .all(|(len, part)| part.len() == *len && part.chars().all(|c| c.is_ascii_digit()))
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase())
}

fn read_description(p: &Params) -> ApiResult<Option<Option<&str>>> {
    let description = p.nullable_string(&["description"])?;
    if let Some(Some(text)) = description
        && text.chars().count() > MAX_DESCRIPTION_LEN
    {
        return Err(ApiError::invalid_param(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_LEN} characters."),
        ));
    }
    Ok(description)
}

/// `POST /v1/webhook_endpoints`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let url = read_url(p, ctx.livemode(), true)?.unwrap_or_default();
    let events = read_events(p, true)?.unwrap_or_default();
    let description = read_description(p)?.flatten();
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;
    let api_version = p.non_empty(&["api_version"])?;
    if let Some(version) = api_version
        && !is_api_version(version)
    {
        return Err(ApiError::invalid_param(
            "api_version",
            format!("Invalid API version: {version}"),
        ));
    }
    let connect = p.boolean(&["connect"])?.unwrap_or(false);
    if ctx.store.live_newest_first(kinds::WEBHOOK_ENDPOINT).count() >= MAX_ENDPOINTS {
        let mode = if ctx.livemode() { "live" } else { "test" };
        return Err(ApiError::invalid_request(format!(
            "You have reached the maximum of {MAX_ENDPOINTS} {mode} webhook endpoints."
        )));
    }

    let id = ids::long_id("we");
    let secret = new_secret();
    let mut endpoint = fixture(kinds::WEBHOOK_ENDPOINT);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("webhook_endpoint")),
        ("api_version", opt_str(api_version)),
        ("application", Value::Null),
        ("created", json!(ctx.now)),
        ("description", opt_str(description)),
        ("enabled_events", json!(events)),
        ("livemode", json!(ctx.livemode())),
        ("metadata", Value::Object(metadata)),
        ("status", json!("enabled")),
        ("url", json!(url)),
    ] {
        set(&mut endpoint, key, value);
    }
    if let Some(map) = endpoint.as_object_mut() {
        map.remove("secret");
    }
    let mut internal = Map::new();
    internal.insert(
        "secrets".into(),
        json!([{"secret": secret, "expires_at": null}]),
    );
    internal.insert("connect".into(), json!(connect));
    ctx.store
        .insert_with(kinds::WEBHOOK_ENDPOINT, endpoint.clone(), internal);
    // The secret is answered on creation only.
    set(&mut endpoint, "secret", json!(secret));
    Ok(endpoint)
}

fn stored(store: &Store, id: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::WEBHOOK_ENDPOINT, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}

/// `GET /v1/webhook_endpoints/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id)
}

/// `POST /v1/webhook_endpoints/:id`: `url`, `enabled_events`, `description`, `metadata`,
/// `disabled`.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id)?;
    let url = read_url(p, ctx.livemode(), false)?;
    let events = read_events(p, false)?;
    let description = read_description(p)?;
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let disabled = p.boolean(&["disabled"])?;
    let Some(record) = ctx.store.get_live_mut(kinds::WEBHOOK_ENDPOINT, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    let o = &mut record.object;
    if let Some(url) = url {
        set(o, "url", json!(url));
    }
    if let Some(events) = events {
        set(o, "enabled_events", json!(events));
    }
    if let Some(description) = description {
        set(o, "description", opt_str(description));
    }
    set(o, "metadata", Value::Object(metadata));
    if let Some(disabled) = disabled {
        set(
            o,
            "status",
            json!(if disabled { "disabled" } else { "enabled" }),
        );
    }
    Ok(record.object.clone())
}

/// `DELETE /v1/webhook_endpoints/:id`.
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id)?;
    ctx.store.remove(kinds::WEBHOOK_ENDPOINT, id);
    let mut tombstone = fixture("deleted_webhook_endpoint");
    set(&mut tombstone, "id", json!(id));
    set(&mut tombstone, "object", json!("webhook_endpoint"));
    set(&mut tombstone, "deleted", json!(true));
    Ok(tombstone)
}

/// `GET /v1/webhook_endpoints` (secrets are never listed).
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let paging = ListParams::parse(ctx.params, ctx.store, kinds::WEBHOOK_ENDPOINT, LABEL)?;
    let records = paging.walk(ctx.store);
    Ok(paging.page("/v1/webhook_endpoints", records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions() {
        assert!(is_api_version("2026-09-30.endive"));
        assert!(is_api_version("2020-08-27"));
        assert!(!is_api_version("2020-8-27"));
        assert!(!is_api_version("latest"));
        assert!(!is_api_version("2026-09-30."));
    }
}
