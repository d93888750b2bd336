//! Billing portal sessions (not mirrored: returned to the caller).

use serde_json::Value;

use super::{int, text};

/// A created billing portal session, reduced to what we return.
#[derive(Debug, Clone)]
pub struct PortalSession {
    pub id: String,
    pub url: String,
    pub return_url: Option<String>,
    pub created: i64,
}

pub fn portal_session(obj: &Value) -> Option<PortalSession> {
    Some(PortalSession {
        id: text(obj, "id")?,
        url: text(obj, "url")?,
        return_url: text(obj, "return_url"),
        created: int(obj, "created").unwrap_or_default(),
    })
}
