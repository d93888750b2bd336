//! Webhook endpoints, as Stripe answers their creation (the only time it shows the secret).

use serde_json::Value;

use super::text;

#[derive(Debug, Clone)]
pub struct CreatedEndpoint {
    pub id: String,
    pub url: String,
    pub secret: String,
    pub status: String,
    pub enabled_events: Vec<String>,
}

/// A webhook endpoint as Stripe answers a change (no secret then).
#[derive(Debug, Clone)]
pub struct EndpointState {
    pub id: String,
    pub url: String,
    pub status: String,
    pub enabled_events: Vec<String>,
}

/// `None` without an id or a url.
pub fn endpoint_state(obj: &Value) -> Option<EndpointState> {
    Some(EndpointState {
        id: text(obj, "id")?,
        url: text(obj, "url")?,
        status: text(obj, "status").unwrap_or_default(),
        enabled_events: obj
            .get("enabled_events")
            .and_then(Value::as_array)
            .map(|events| {
                events
                    .iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// `None` without an id, a url or the signing secret.
pub fn webhook_endpoint(obj: &Value) -> Option<CreatedEndpoint> {
    let state = endpoint_state(obj)?;
    Some(CreatedEndpoint {
        id: state.id,
        url: state.url,
        secret: text(obj, "secret")?,
        status: state.status,
        enabled_events: state.enabled_events,
    })
}
