//! `GET /openapi.json`, generated from the handlers' annotations; a test holds it against the
//! route table (`http::ROUTES`), so a route can be neither left out nor described twice.

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    cards, catalog, charges, connect, customers, fetch, health, notifications, orders,
    payment_links, payments, policy, receiver, refunds, sessions, subscriptions, sync, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "sales-block", description = "The 23blocks sales block's Stripe routes"),
    paths(
        health::health,
        health::ready,
        health::metrics,
        customers::list_customers,
        customers::get_customer,
        customers::update_customer,
        customers::delete_customer,
        customers::create_customer,
        customers::create_portal,
        sessions::create_session,
        sessions::get_session,
        payments::list_payments,
        payments::create_payment,
        payments::confirm_payment,
        charges::list_charges,
        charges::get_charge,
        orders::put_order,
        orders::get_order,
        policy::get_policy,
        policy::put_policy,
        subscriptions::list_subscriptions,
        subscriptions::create_subscription,
        subscriptions::update_subscription,
        subscriptions::cancel_subscription,
        catalog::create_product,
        catalog::list_products,
        catalog::get_product,
        catalog::update_product,
        catalog::create_price,
        catalog::list_prices,
        catalog::get_price,
        catalog::update_price,
        payment_links::create_payment_link,
        payment_links::list_payment_links,
        payment_links::get_payment_link,
        payment_links::update_payment_link,
        cards::save_card,
        cards::list_cards,
        cards::delete_card,
        notifications::put_settings,
        notifications::list_notifications,
        notifications::retry_notification,
        refunds::create_refund,
        refunds::list_refunds,
        webhooks::list_webhooks,
        webhooks::create_webhook,
        webhooks::roll_secret,
        webhooks::update_webhook,
        webhooks::delete_webhook,
        connect::login,
        connect::callback,
        connect::claim,
        connect::get_account,
        connect::delete_account,
        connect::platform_webhook,
        fetch::fetch_stripe,
        sync::start_sync,
        sync::list_jobs,
        sync::get_job,
        sync::cancel_job,
        sync::start_reconcile,
        sync::get_status,
        receiver::receive_event,
    ),
    components(schemas(
        crate::services::customers::CreateCustomerFields,
        crate::services::customers::PortalFields,
        crate::services::customers::UpdateCustomerFields,
        customers::CustomerAttributes,
        customers::PortalAttributes,
        crate::services::checkout::CreateSessionFields,
        crate::services::checkout::LineItemFields,
        sessions::SessionAttributes,
        crate::services::payments::CreatePaymentFields,
        crate::services::payments::ConfirmPaymentFields,
        payments::PaymentAttributes,
        charges::ChargeAttributes,
        crate::services::orders::OrderFields,
        orders::OrderAttributes,
        policy::PolicyFields,
        policy::PolicyAttributes,
        crate::services::subscriptions::CreateSubscriptionFields,
        crate::services::subscriptions::UpdateSubscriptionFields,
        subscriptions::SubscriptionAttributes,
        crate::services::catalog::CreateProductFields,
        crate::services::catalog::CreatePriceFields,
        crate::services::catalog::UpdateProductFields,
        crate::services::catalog::UpdatePriceFields,
        crate::services::payment_links::CreatePaymentLinkFields,
        crate::services::payment_links::UpdatePaymentLinkFields,
        catalog::ProductAttributes,
        catalog::PriceAttributes,
        payment_links::PaymentLinkAttributes,
        crate::services::cards::SaveCardFields,
        cards::CardAttributes,
        notifications::NotificationSettingsFields,
        notifications::NotificationSettingsAttributes,
        notifications::NotificationAttributes,
        notifications::AttemptAttributes,
        crate::services::refunds::CreateRefundFields,
        refunds::RefundAttributes,
        crate::services::webhook_endpoints::CreateWebhookFields,
        crate::services::webhook_endpoints::RollSecretFields,
        crate::services::webhook_endpoints::UpdateWebhookFields,
        webhooks::WebhookAttributes,
        crate::services::connect::Authorization,
        crate::services::connect::ClaimFields,
        crate::services::connect::AccountView,
        crate::services::sync::SyncFields,
        crate::services::sync::JobView,
        crate::services::sync::SyncStatus,
        crate::sync::TypeProgress,
        crate::services::fetch::FetchFields,
        fetch::StripeResponseAttributes,
    )),
    modifiers(&Security, &Idempotency)
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

/// `Idempotency-Key` on every write the middleware covers (the route table keys every POST,
/// PUT and DELETE but the webhook receiver's), and what it adds to their answers.
struct Idempotency;

const RECEIVER_PATH: &str = "/stripe/{url_id}/webhook";

impl Modify for Idempotency {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{HeaderBuilder, Required, ResponseBuilder};

        let key = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "1 to 255 characters. A retry with the same key, route, caller and body gets the \
                 first answer again (Idempotent-Replayed: true); the key, suffixed per call, is \
                 passed on to Stripe. Kept 24 h. See docs/API.md, Idempotency-Key.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255)),
            ))
            .build();
        let replayed = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(
                "`true` when the answer is a saved one, replayed for a retry",
            ))
            .build();
        let conflict = ResponseBuilder::new()
            .description(
                "idempotency_error: the Idempotency-Key was used for another request, or its first request is still in progress",
            )
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path == RECEIVER_PATH {
                continue;
            }
            for operation in [&mut item.post, &mut item.put, &mut item.delete]
                .into_iter()
                .flatten()
            {
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(key.clone());
                for response in operation.responses.responses.values_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response {
                        response
                            .headers
                            .insert("Idempotent-Replayed".to_owned(), replayed.clone());
                    }
                }
                operation
                    .responses
                    .responses
                    .entry("409".to_owned())
                    .or_insert_with(|| conflict.clone().into());
            }
        }
    }
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Routes served but not described: the document itself.
    const UNDOCUMENTED: [(&str, &str); 1] = [("get", "/openapi.json")];

    #[test]
    fn the_document_describes_exactly_the_route_table() {
        let served: BTreeSet<(String, String)> = crate::http::ROUTES
            .iter()
            .filter(|route| !UNDOCUMENTED.contains(route))
            .map(|(method, path)| (method.to_string(), path.to_string()))
            .collect();
        let mut documented = BTreeSet::new();
        for (path, item) in ApiDoc::openapi().paths.paths {
            let operations = [
                ("get", &item.get),
                ("post", &item.post),
                ("put", &item.put),
                ("patch", &item.patch),
                ("delete", &item.delete),
            ];
            for (method, operation) in operations {
                if operation.is_some() {
                    documented.insert((method.to_owned(), path.clone()));
                }
            }
        }
        let missing: Vec<_> = served.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&served).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "served but not documented: {missing:?}; documented but not served: {extra:?}"
        );
    }
}
