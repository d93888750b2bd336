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

/// `None` without an id, a url or the signing secret.
pub fn webhook_endpoint(obj: &Value) -> Option<CreatedEndpoint> {
    Some(CreatedEndpoint {
        id: text(obj, "id")?,
        url: text(obj, "url")?,
        secret: text(obj, "secret")?,
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
