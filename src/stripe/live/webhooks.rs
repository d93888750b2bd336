//! Webhook endpoints.

use std::str::FromStr;

use stripe_misc::webhook_endpoint::{
    CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents, DeleteWebhookEndpoint,
    UpdateWebhookEndpoint, UpdateWebhookEndpointEnabledEvents,
};

use super::LiveStripe;
use crate::stripe::objects::{self, CreatedEndpoint, EndpointState};
use crate::stripe::{GatewayError, Key};

/// Whether Stripe knows this event type (or it is `*`), by async-stripe's list of Stripe's
/// event names.
pub fn is_known_event_type(name: &str) -> bool {
    !matches!(
        CreateWebhookEndpointEnabledEvents::from_str(name),
        Ok(CreateWebhookEndpointEnabledEvents::Unknown(_)) | Err(_)
    )
}

pub(super) async fn create_endpoint(
    stripe: &LiveStripe,
    url: &str,
    events: &[String],
    key: Key<'_>,
) -> Result<CreatedEndpoint, GatewayError> {
    let parsed: Vec<CreateWebhookEndpointEnabledEvents> = events
        .iter()
        .filter_map(|e| CreateWebhookEndpointEnabledEvents::from_str(e).ok())
        .collect();
    let request = CreateWebhookEndpoint::new(parsed, url);
    stripe
        .send(&request, key, "webhook_endpoint", objects::webhook_endpoint)
        .await
}

pub(super) async fn update_endpoint(
    stripe: &LiveStripe,
    id: &str,
    disabled: Option<bool>,
    events: Option<&[String]>,
    key: Key<'_>,
) -> Result<EndpointState, GatewayError> {
    let mut request = UpdateWebhookEndpoint::new(id);
    if let Some(disabled) = disabled {
        request = request.disabled(disabled);
    }
    if let Some(events) = events {
        let parsed: Vec<UpdateWebhookEndpointEnabledEvents> = events
            .iter()
            .filter_map(|e| UpdateWebhookEndpointEnabledEvents::from_str(e).ok())
            .collect();
        request = request.enabled_events(parsed);
    }
    stripe
        .send(
            &request,
            key,
            "update_webhook_endpoint",
            objects::endpoint_state,
        )
        .await
}

pub(super) async fn delete_endpoint(
    stripe: &LiveStripe,
    id: &str,
    key: Key<'_>,
) -> Result<(), GatewayError> {
    stripe
        .send(
            &DeleteWebhookEndpoint::new(id),
            key,
            "delete_webhook_endpoint",
            |o| o.get("id").map(|_| ()),
        )
        .await
}
