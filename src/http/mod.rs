//! The route table: every endpoint of the service, in one place.

pub mod auth;
pub mod cards;
pub mod catalog;
pub mod charges;
pub mod connect;
pub mod customers;
pub mod fetch;
pub mod health;
pub mod idempotency;
pub mod ids;
pub mod jsonapi;
pub mod notifications;
pub mod openapi;
pub mod orders;
pub mod payment_links;
pub mod payments;
pub mod policy;
pub mod receiver;
pub mod refunds;
pub mod request_id;
pub mod sessions;
pub mod subscriptions;
pub mod sync;
pub mod webhooks;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

/// Declares the route table once: `configure` registers it, and [`ROUTES`] lists every
/// (method, path) it serves, which the OpenAPI document is checked against (`openapi.rs`).
/// Each entry is `kind "path" { method => handler, ... }`; `keyed` resources honour
/// `Idempotency-Key` on their writes, `open` ones do not, and `receiver` is Stripe's.
macro_rules! route_table {
    ($( $kind:ident $path:literal { $($method:ident => $handler:path),+ $(,)? } )*) => {
        /// Registers every route. `max_body_bytes` bounds JSON bodies (413 beyond).
        pub fn configure(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
            cfg.app_data(json_config(max_body_bytes))
                .app_data(web::PathConfig::default().error_handler(path_error))
                .app_data(web::QueryConfig::default().error_handler(query_error));
            $(
                cfg.service(route_table!(@resource $kind $path)$(.route(web::$method().to($handler)))+);
            )*
            cfg.default_service(web::to(no_route));
        }

        /// Every (method, path) the route table serves, in its order.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path),)+)*];

        /// Every path with its kind: `open`, `keyed` (its writes honour `Idempotency-Key`) or
        /// `receiver` (Stripe's, authenticated by its signature).
        pub const RESOURCES: &[(&str, &str)] = &[$((stringify!($kind), $path),)*];
    };
    (@resource open $path:literal) => { route($path) };
    (@resource keyed $path:literal) => { keyed($path) };
    // Authenticated by Stripe's signature and deduplicated by event id: no Idempotency-Key.
    (@resource receiver $path:literal) => {
        route($path).app_data(web::PayloadConfig::new(receiver::MAX_EVENT_BYTES))
    };
}

route_table! {
    open "/health" { get => health::health }
    open "/metrics" { get => health::metrics }
    open "/ready" { get => health::ready }
    open "/openapi.json" { get => openapi::openapi_json }
    keyed "/stripe/customers" {
        get => customers::list_customers,
        post => customers::create_customer,
    }
    keyed "/stripe/customers/{unique_id}" {
        get => customers::get_customer,
        put => customers::update_customer,
        delete => customers::delete_customer,
    }
    keyed "/stripe/customers/{unique_id}/portal" { post => customers::create_portal }
    keyed "/stripe/sessions" { post => sessions::create_session }
    open "/stripe/sessions/{session_id}" { get => sessions::get_session }
    keyed "/stripe/payments" {
        get => payments::list_payments,
        post => payments::create_payment,
    }
    keyed "/stripe/payments/{unique_id}/confirm" { post => payments::confirm_payment }
    open "/stripe/charges" { get => charges::list_charges }
    open "/stripe/charges/{charge_id}" { get => charges::get_charge }
    keyed "/stripe/orders/{order_unique_id}" {
        get => orders::get_order,
        put => orders::put_order,
    }
    keyed "/stripe/policy" {
        get => policy::get_policy,
        put => policy::put_policy,
    }
    keyed "/stripe/subscriptions" {
        get => subscriptions::list_subscriptions,
        post => subscriptions::create_subscription,
    }
    keyed "/stripe/subscriptions/{stripe_subscription_id}" {
        put => subscriptions::update_subscription,
        delete => subscriptions::cancel_subscription,
    }
    keyed "/stripe/cards" {
        get => cards::list_cards,
        post => cards::save_card,
    }
    keyed "/stripe/cards/{card_id}" { delete => cards::delete_card }
    keyed "/stripe/products" {
        get => catalog::list_products,
        post => catalog::create_product,
    }
    keyed "/stripe/products/{product_id}" {
        get => catalog::get_product,
        put => catalog::update_product,
    }
    keyed "/stripe/prices" {
        get => catalog::list_prices,
        post => catalog::create_price,
    }
    keyed "/stripe/prices/{price_id}" {
        get => catalog::get_price,
        put => catalog::update_price,
    }
    keyed "/stripe/payment_links" {
        get => payment_links::list_payment_links,
        post => payment_links::create_payment_link,
    }
    keyed "/stripe/payment_links/{payment_link_id}" {
        get => payment_links::get_payment_link,
        put => payment_links::update_payment_link,
    }
    keyed "/stripe/notifications/settings" { put => notifications::put_settings }
    open "/stripe/notifications" { get => notifications::list_notifications }
    keyed "/stripe/notifications/{notification_id}/retry" { post => notifications::retry_notification }
    keyed "/stripe/refunds" {
        get => refunds::list_refunds,
        post => refunds::create_refund,
    }
    keyed "/stripe/webhooks" {
        get => webhooks::list_webhooks,
        post => webhooks::create_webhook,
    }
    keyed "/stripe/webhooks/{webhook_id}" {
        put => webhooks::update_webhook,
        delete => webhooks::delete_webhook,
    }
    keyed "/stripe/webhooks/{webhook_id}/secrets" { post => webhooks::roll_secret }
    open "/stripe/auth/login" { get => connect::login }
    open "/stripe/public/auth/callback" { get => connect::callback }
    keyed "/stripe/auth/claim" { post => connect::claim }
    keyed "/stripe/account" {
        get => connect::get_account,
        delete => connect::delete_account,
    }
    // Before the per-tenant receiver, whose pattern it also matches (`public` is never a url_id).
    receiver "/stripe/public/webhook" { post => connect::platform_webhook }
    keyed "/stripe/fetch" { post => fetch::fetch_stripe }
    keyed "/stripe/sync/historical" { post => sync::start_sync }
    keyed "/stripe/sync/reconcile" { post => sync::start_reconcile }
    open "/stripe/sync/status" { get => sync::get_status }
    open "/stripe/sync/jobs" { get => sync::list_jobs }
    keyed "/stripe/sync/jobs/{job_id}" {
        get => sync::get_job,
        delete => sync::cancel_job,
    }
    receiver "/stripe/{url_id}/webhook" { post => receiver::receive_event }
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
