//! The route table: every endpoint of the service, in one place.

pub mod cards;
pub mod catalog;
pub mod customers;
pub mod health;
pub mod idempotency;
pub mod ids;
pub mod jsonapi;
pub mod notifications;
pub mod openapi;
pub mod orders;
pub mod payments;
pub mod policy;
pub mod receiver;
pub mod refunds;
pub mod request_id;
pub mod sessions;
pub mod subscriptions;
pub mod webhooks;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

/// Registers every route. `max_body_bytes` bounds JSON bodies (413 beyond).
pub fn configure(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.app_data(json_config(max_body_bytes))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .service(route("/health").route(web::get().to(health::health)))
        .service(route("/ready").route(web::get().to(health::ready)))
        .service(route("/openapi.json").route(web::get().to(openapi::openapi_json)))
        .service(
            keyed("/stripe/customers")
                .route(web::get().to(customers::list_customers))
                .route(web::post().to(customers::create_customer)),
        )
        .service(
            route("/stripe/customers/{unique_id}").route(web::get().to(customers::get_customer)),
        )
        .service(
            keyed("/stripe/customers/{unique_id}/portal")
                .route(web::post().to(customers::create_portal)),
        )
        .service(keyed("/stripe/sessions").route(web::post().to(sessions::create_session)))
        .service(route("/stripe/sessions/{session_id}").route(web::get().to(sessions::get_session)))
        .service(
            keyed("/stripe/payments")
                .route(web::get().to(payments::list_payments))
                .route(web::post().to(payments::create_payment)),
        )
        .service(
            keyed("/stripe/payments/{unique_id}/confirm")
                .route(web::post().to(payments::confirm_payment)),
        )
        .service(
            keyed("/stripe/orders/{order_unique_id}")
                .route(web::get().to(orders::get_order))
                .route(web::put().to(orders::put_order)),
        )
        .service(
            keyed("/stripe/policy")
                .route(web::get().to(policy::get_policy))
                .route(web::put().to(policy::put_policy)),
        )
        .service(
            keyed("/stripe/subscriptions")
                .route(web::get().to(subscriptions::list_subscriptions))
                .route(web::post().to(subscriptions::create_subscription)),
        )
        .service(
            keyed("/stripe/subscriptions/{stripe_subscription_id}")
                .route(web::put().to(subscriptions::update_subscription))
                .route(web::delete().to(subscriptions::cancel_subscription)),
        )
        .service(
            keyed("/stripe/cards")
                .route(web::get().to(cards::list_cards))
                .route(web::post().to(cards::save_card)),
        )
        .service(keyed("/stripe/cards/{card_id}").route(web::delete().to(cards::delete_card)))
        .service(
            keyed("/stripe/products")
                .route(web::get().to(catalog::list_products))
                .route(web::post().to(catalog::create_product)),
        )
        .service(
            keyed("/stripe/prices")
                .route(web::get().to(catalog::list_prices))
                .route(web::post().to(catalog::create_price)),
        )
        .service(keyed("/stripe/payment_links").route(web::post().to(catalog::create_payment_link)))
        .service(
            keyed("/stripe/notifications/settings")
                .route(web::put().to(notifications::put_settings)),
        )
        .service(
            route("/stripe/notifications").route(web::get().to(notifications::list_notifications)),
        )
        .service(
            keyed("/stripe/refunds")
                .route(web::get().to(refunds::list_refunds))
                .route(web::post().to(refunds::create_refund)),
        )
        .service(
            keyed("/stripe/webhooks")
                .route(web::get().to(webhooks::list_webhooks))
                .route(web::post().to(webhooks::create_webhook)),
        )
        .service(
            keyed("/stripe/webhooks/{webhook_id}/secrets")
                .route(web::post().to(webhooks::roll_secret)),
        )
        // Authenticated by Stripe's signature and deduplicated by event id: no Idempotency-Key.
        .service(
            route("/stripe/{url_id}/webhook")
                .app_data(web::PayloadConfig::new(receiver::MAX_EVENT_BYTES))
                .route(web::post().to(receiver::receive_event)),
        )
        .default_service(web::to(no_route));
}

/// A resource whose unmatched methods answer 405 in the error format.
fn route(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// A resource whose writes honour `Idempotency-Key` (GETs on it pass through untouched).
fn keyed(
    path: &str,
) -> actix_web::Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    route(path).wrap(from_fn(idempotency::idempotent))
}

async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        "Not found",
        format!("There is no route {} {}.", req.method(), req.path()),
    ))
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    if req.method() == actix_web::http::Method::OPTIONS {
        // A preflight for an origin CORS did not allow: nothing to add.
        return HttpResponse::NoContent().finish();
    }
    actix_web::ResponseError::error_response(&ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
        format!("{} is not supported on {}.", req.method(), req.path()),
    ))
}

fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        // curl's -d sends form content types; the body is still read as JSON.
        .content_type_required(false)
        .error_handler(move |err, _req| {
            let api = match &err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => payload_too_large(limit),
                JsonPayloadError::Deserialize(e)
                    if e.is_eof() && e.line() == 1 && e.column() == 0 =>
                {
                    ApiError::bad_request("missing_body", "The request needs a JSON body.")
                }
                JsonPayloadError::Deserialize(e) => ApiError::bad_request(
                    "invalid_json",
                    format!("The body is not valid JSON: {e}."),
                ),
                other => ApiError::bad_request(
                    "invalid_body",
                    format!("The body could not be read: {other}."),
                ),
            };
            api.into()
        })
}

/// 413 for a body over `limit` bytes.
pub(crate) fn payload_too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "Payload too large",
        format!("The body is larger than the {limit} bytes this service accepts."),
    )
}

fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_path", format!("Invalid path parameter: {err}.")).into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_query", format!("Invalid query parameter: {err}.")).into()
}
