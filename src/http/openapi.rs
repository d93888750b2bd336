//! `GET /openapi.json`, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{customers, health, payments, receiver, sessions, subscriptions, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "sales-block", description = "The 23blocks sales block's Stripe routes"),
    paths(
        health::health,
        health::ready,
        customers::list_customers,
        customers::get_customer,
        customers::create_customer,
        customers::create_portal,
        sessions::create_session,
        sessions::get_session,
        payments::list_payments,
        payments::create_payment,
        payments::confirm_payment,
        subscriptions::list_subscriptions,
        subscriptions::create_subscription,
        subscriptions::update_subscription,
        subscriptions::cancel_subscription,
        webhooks::list_webhooks,
        webhooks::create_webhook,
        webhooks::roll_secret,
        receiver::receive_event,
    ),
    components(schemas(
        crate::customers::CreateCustomerFields,
        crate::customers::PortalFields,
        customers::CustomerAttributes,
        customers::PortalAttributes,
        crate::checkout::CreateSessionFields,
        crate::checkout::LineItemFields,
        sessions::SessionAttributes,
        crate::payments::CreatePaymentFields,
        crate::payments::ConfirmPaymentFields,
        payments::PaymentAttributes,
        crate::subscriptions::CreateSubscriptionFields,
        crate::subscriptions::UpdateSubscriptionFields,
        subscriptions::SubscriptionAttributes,
        crate::webhook_endpoints::CreateWebhookFields,
        crate::webhook_endpoints::RollSecretFields,
        webhooks::WebhookAttributes,
    )),
    modifiers(&Security)
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "The app's key; AppId, api-key and X-App-Id are accepted too",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
