//! Webhook endpoints at Stripe.

use std::str::FromStr;

use stripe_misc::webhook_endpoint::{CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents};

use stripe::StripeRequest;

use super::{GatewayError, StripeGateway, idempotent};

/// Whether Stripe knows this event type (or it is `*`), by async-stripe's list of Stripe's
/// event names.
pub fn is_known_event_type(name: &str) -> bool {
    !matches!(
        CreateWebhookEndpointEnabledEvents::from_str(name),
        Ok(CreateWebhookEndpointEnabledEvents::Unknown(_)) | Err(_)
    )
}

#[derive(Debug, Clone)]
pub struct CreatedEndpoint {
    pub id: String,
    pub url: String,
    pub secret: String,
    pub status: String,
    pub enabled_events: Vec<String>,
}

impl StripeGateway {
    pub async fn create_webhook_endpoint(
        &self,
        url: &str,
        events: &[String],
    ) -> Result<CreatedEndpoint, GatewayError> {
        let parsed: Vec<CreateWebhookEndpointEnabledEvents> = events
            .iter()
            .filter_map(|e| CreateWebhookEndpointEnabledEvents::from_str(e).ok())
            .collect();
        let endpoint = CreateWebhookEndpoint::new(parsed, url)
            .customize()
            .request_strategy(idempotent("webhook_endpoint"))
            .send(&self.client)
            .await?;
        let secret = endpoint.secret.ok_or_else(|| {
            GatewayError::BadResponse("Stripe returned no signing secret".to_owned())
        })?;
        Ok(CreatedEndpoint {
            id: endpoint.id.to_string(),
            url: endpoint.url,
            secret,
            status: endpoint.status,
            enabled_events: endpoint.enabled_events,
        })
    }
}
