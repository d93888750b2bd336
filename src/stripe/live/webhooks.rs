//! Webhook endpoints.

use std::str::FromStr;

use stripe_misc::webhook_endpoint::{CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents};

use super::LiveStripe;
use crate::stripe::objects::{self, CreatedEndpoint};
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
