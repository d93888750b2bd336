//! A delivery as the receiver carries it: the parts of the event it relies on, and where
//! the delivery came from.

use serde_json::Value;

use super::target::Target;

/// The parts of an event the receiver relies on.
#[derive(Debug, Clone)]
pub(super) struct Event {
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) created: i64,
    pub(super) object_id: Option<String>,
    pub(super) api_version: Option<String>,
    pub(super) target: Target,
    /// What the tenant's app is told once this event is applied (`crate::outbound::notifications`).
    pub(super) notification: Option<(&'static str, Value)>,
}

/// A verified delivery on its way to storage.
pub(crate) struct Pending {
    pub(super) tenant_id: String,
    pub(super) endpoint_id: String,
    pub(super) event: Event,
    pub(super) payload: String,
    /// The tenant has a notify_url: applied events are announced to its app.
    pub(super) notify: bool,
}
