//! `GET /openapi.json`: the handlers' annotations, completed by [`wire`] with what the routes
//! share on the wire: the JSON:API envelopes around their attributes, the `errors` document of
//! every refusal, and the answers every authenticated route, body, keyed write and Stripe call
//! can give. A test holds it against the route table (`http::ROUTES`), so a route can be
//! neither left out nor described twice; the integration suite checks every answer it gets
//! against it (tests/api/wire.rs), and scripts/fuzz.sh fuzzes the service with it.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use serde_json::{Map, Value, json};
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
    modifiers(&Security)
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "app_id",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "AppId",
                "The app's key (the spec's AppId header); x-api-key (the SDK's), api-key and \
                 X-App-Id are accepted too. Sent together with the bearer token.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The user's JWT, signed with the app's key (HS256 secret or RS256 public \
                         key); role admin or scope sales:admin makes an admin",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as served (see the module's doc), built once.
pub fn document() -> &'static Value {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
        let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        wire(&mut document);
        document
    });
    &DOCUMENT
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// Answers that are not JSON:API documents (health, readiness, metrics, the OAuth callback's
/// page, Stripe's acknowledgements): their bodies are described here.
fn bare_answer(method: &str, path: &str, status: &str) -> Option<Value> {
    let schema = |media: &str, schema: Value| json!({ media: { "schema": schema } });
    Some(match (method, path, status) {
        ("get", "/health", "200") => schema(
            "application/json",
            json!({
                "type": "object", "required": ["service", "status", "version", "timestamp"],
                "additionalProperties": false,
                "properties": {
                    "service": {"type": "string"}, "status": {"type": "string"},
                    "version": {"type": "string"}, "timestamp": {"type": "string"}}}),
        ),
        ("get", "/ready", "200" | "503") => schema(
            "application/json",
            json!({"$ref": "#/components/schemas/Readiness"}),
        ),
        ("get", "/metrics", "200") => schema("text/plain", json!({"type": "string"})),
        ("get", "/stripe/public/auth/callback", "200") => {
            schema("text/html", json!({"type": "string"}))
        }
        ("post", "/stripe/public/webhook" | "/stripe/{url_id}/webhook", "200") => schema(
            "application/json",
            json!({
                "type": "object", "required": ["received"], "additionalProperties": false,
                "properties": {"received": {"type": "boolean", "const": true}}}),
        ),
        _ => return None,
    })
}

/// Schemas the completed operations refer to.
fn shared_schemas() -> Value {
    let error = json!({
        "type": "object",
        "required": ["status", "code", "title", "detail"],
        "additionalProperties": false,
        "properties": {
            "status": {"type": "string", "description": "The HTTP status, as text"},
            "code": {"type": "string", "description": "What went wrong, for programs"},
            "title": {"type": "string"},
            "detail": {"type": "string", "description": "What went wrong, for people"},
            "source": {
                "type": "object", "additionalProperties": false,
                "description": "Where: a JSON pointer into the body, a query parameter or a header",
                "properties": {
                    "pointer": {"type": "string"},
                    "parameter": {"type": "string"},
                    "header": {"type": "string"}}},
            "meta": {
                "type": "object",
                "description": "request_id; retry_after (429, 503); Stripe's stripe_type, stripe_status, stripe_code, decline_code, param, stripe_request_id",
                "properties": {
                    "request_id": {"type": "string"},
                    "retry_after": {"type": "integer"}}}}
    });
    json!({
        "Errors": {
            "type": "object", "required": ["errors"], "additionalProperties": false,
            "description": "A JSON:API error document: one error, its status the HTTP status",
            "properties": {"errors": {"type": "array", "minItems": 1, "items": error}}
        },
        "ListMeta": {
            "description": "Paging of a list. With page/records (the default): current_page, per_page, total_count, total_pages, totalPages, totalRecords (and has_more on most lists); with limit/starting_after/ending_before: has_more, limit, per_page, total_count, totalRecords",
            "anyOf": [
                {"type": "object", "additionalProperties": false,
                 "required": ["current_page", "per_page", "total_count", "total_pages", "totalPages", "totalRecords"],
                 "properties": {
                    "current_page": {"type": "integer"}, "per_page": {"type": "integer"},
                    "total_count": {"type": "integer"}, "total_pages": {"type": "integer"},
                    "totalPages": {"type": "integer"}, "totalRecords": {"type": "integer"},
                    "has_more": {"type": "boolean"}}},
                {"type": "object", "additionalProperties": false,
                 "required": ["has_more", "limit", "per_page", "total_count", "totalRecords"],
                 "properties": {
                    "has_more": {"type": "boolean"}, "limit": {"type": "integer"},
                    "per_page": {"type": "integer"}, "total_count": {"type": "integer"},
                    "totalRecords": {"type": "integer"}}}
            ]
        },
        "Readiness": {
            "type": "object", "required": ["status", "database", "receiver"],
            "properties": {
                "status": {"type": "string", "enum": ["ready", "not_ready"]},
                "database": {"type": "string", "enum": ["ok", "unreachable"]},
                "receiver": {"type": "object",
                    "required": ["writers", "backlog", "bound", "status"],
                    "properties": {
                        "writers": {"type": "integer"}, "backlog": {"type": "integer"},
                        "bound": {"type": "integer"},
                        "status": {"type": "string", "enum": ["ok", "backlogged", "stopped"]}}}}
        }
    })
}

/// One resource object around `attributes`.
fn resource_object(attributes: Value) -> Value {
    json!({
        "type": "object", "required": ["id", "type", "attributes"],
        "additionalProperties": false,
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string"},
            "attributes": attributes,
        }
    })
}

/// The JSON:API document a success body is sent in: `{"data": {...}}` around an attributes
/// schema, `{"data": [...], "meta": {...}}` around an array of them (`jsonapi::resource`,
/// `jsonapi::list`).
fn envelope(schema: Value) -> Value {
    if schema["type"] == "array" {
        json!({
            "type": "object", "required": ["data", "meta"], "additionalProperties": false,
            "properties": {
                "data": {"type": "array", "items": resource_object(schema["items"].clone())},
                "meta": {"$ref": "#/components/schemas/ListMeta"},
            }
        })
    } else {
        json!({
            "type": "object", "required": ["data"], "additionalProperties": false,
            "properties": {"data": resource_object(schema)}
        })
    }
}

/// Adds `status` with `description`, or appends `description` to the one it has.
fn answer(responses: &mut Map<String, Value>, status: &str, description: &str) {
    match responses.get_mut(status) {
        None => {
            responses.insert(status.to_owned(), json!({ "description": description }));
        }
        Some(response) => {
            let had = response["description"].as_str().unwrap_or_default();
            if !had.contains(description) {
                response["description"] = Value::String(if had.is_empty() {
                    description.to_owned()
                } else {
                    format!("{had}; {description}")
                });
            }
        }
    }
}

/// What a route's kind and annotations imply (see the module's doc).
fn complete(path: &str, method: &str, kind: &str, operation: &mut Value) {
    let authenticated = operation["security"]
        .as_array()
        .is_some_and(|requirements| requirements.iter().any(|r| r.get("app_id").is_some()));
    // Stripe's deliveries are read as bytes, not parsed as a JSON body of ours.
    let has_body = operation.get("requestBody").is_some() && kind != "receiver";
    let calls_stripe = operation["responses"].get("502").is_some();
    let keyed = kind == "keyed" && method != "get";

    let parameters = operation
        .as_object_mut()
        .map(|op| op.entry("parameters").or_insert_with(|| json!([])));
    if let Some(Value::Array(parameters)) = parameters {
        if authenticated {
            parameters.push(json!({
                "name": "tenant-id", "in": "header", "required": false,
                "description": "Sent by the SDK: when present it must name the app of the key (its id or name), else 401 tenant_mismatch",
                "schema": {"type": "string"}}));
        }
        if keyed {
            parameters.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "1 to 255 characters. A retry with the same key, route, caller and body gets the first answer again (Idempotent-Replayed: true); the key, suffixed per call, is passed on to Stripe. Kept 24 h. See docs/API.md, Idempotency-Key.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255}}));
        }
        if parameters.is_empty() {
            operation.as_object_mut().map(|op| op.remove("parameters"));
        }
    }

    let Some(responses) = operation["responses"].as_object_mut() else {
        return;
    };
    answer(
        responses,
        "400",
        "invalid_path or invalid_query: a path segment or query value that is not an acceptable id (too long, not UTF-8, a control character)",
    );
    if authenticated {
        answer(
            responses,
            "400",
            "invalid_header: a credential header that is not text",
        );
        answer(
            responses,
            "401",
            "missing_api_key, invalid_api_key, tenant_mismatch, missing_token, invalid_authorization or invalid_token",
        );
        answer(
            responses,
            "403",
            "tenant_disabled: the app is disabled by its operator (`sales-block tenant disable`)",
        );
        answer(
            responses,
            "429",
            "rate_limited: over the app's or the caller's request rate (Retry-After)",
        );
    }
    if has_body {
        answer(
            responses,
            "400",
            "missing_body, invalid_json or invalid_body: the body is not a JSON object",
        );
        answer(
            responses,
            "413",
            "payload_too_large: a body over the service's limit",
        );
        answer(
            responses,
            "422",
            "validation_error: a field of the wrong type or an unacceptable value; source.pointer names it",
        );
    }
    if keyed {
        answer(
            responses,
            "400",
            "invalid_idempotency_key: empty, longer than 255 characters or not text",
        );
        answer(
            responses,
            "409",
            "idempotency_error: the Idempotency-Key was used for another request, or its first request is still in progress",
        );
    }
    if calls_stripe {
        answer(
            responses,
            "404",
            "Stripe's resource_missing, passed through",
        );
        answer(
            responses,
            "409",
            "not_connected: the app's Stripe account is disconnected; or Stripe's conflict, passed through",
        );
        answer(
            responses,
            "422",
            "Stripe's refusal of a value (code and meta as Stripe sent them)",
        );
        answer(responses, "429", "Stripe's rate limit, passed through");
        answer(
            responses,
            "502",
            "stripe_unreachable, stripe_bad_response, or Stripe refused the app's key or failed",
        );
        answer(
            responses,
            "504",
            "stripe_timeout: Stripe did not answer in time; nothing was confirmed",
        );
    }
    if kind == "receiver" {
        answer(
            responses,
            "413",
            "payload_too_large: an event over 1 MiB; nothing written",
        );
        answer(
            responses,
            "503",
            "tenant_disabled: the endpoint's app is disabled; nothing written, Stripe retries",
        );
    }
    if authenticated || has_body || kind == "receiver" {
        answer(
            responses,
            "503",
            "service_unavailable: the database is unreachable or did not answer in time (Retry-After when retrying soon helps)",
        );
        answer(
            responses,
            "500",
            "internal_error: a fault of the service, logged under the request id",
        );
    }

    for (status, response) in responses.iter_mut() {
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        if let Some(content) = bare_answer(method, path, status) {
            response.insert("content".to_owned(), content);
        } else if status.starts_with('2') {
            if let Some(schema) = response
                .get_mut("content")
                .and_then(|c| c.get_mut("application/json"))
                .and_then(|c| c.get_mut("schema"))
            {
                *schema = envelope(schema.take());
            }
        } else if status.starts_with('4') || status.starts_with('5') {
            response.insert(
                "content".to_owned(),
                json!({"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}),
            );
            if matches!(status.as_str(), "429" | "503") {
                let headers = response.entry("headers").or_insert_with(|| json!({}));
                headers["Retry-After"] = json!({
                    "description": "Seconds to wait before retrying (also in meta.retry_after); on 503 only when a retry soon is expected to succeed",
                    "schema": {"type": "string"}});
            }
        }
        if keyed {
            let headers = response.entry("headers").or_insert_with(|| json!({}));
            headers["Idempotent-Replayed"] = json!({
                "description": "`true` when the answer is a saved one, replayed for a retry",
                "schema": {"type": "string"}});
        }
    }
}

/// Completes the generated document (see the module's doc).
fn wire(document: &mut Value) {
    if let (Some(schemas), Value::Object(shared)) = (
        document["components"]["schemas"].as_object_mut(),
        shared_schemas(),
    ) {
        schemas.extend(shared);
    }
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let kind = crate::http::RESOURCES
            .iter()
            .find(|(_, p)| p == path)
            .map_or("open", |(kind, _)| kind);
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                complete(path, method, kind, operation);
            }
        }
    }
    close_attributes(document);
}

/// Attributes are what the handlers render, no more: a field sent but not described fails
/// the document's own check (tests/api/wire.rs).
fn close_attributes(document: &mut Value) {
    let mut named = std::collections::BTreeSet::new();
    let mut seen = |schema: &Value| {
        if let Some(name) = schema["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
        {
            named.insert(name.to_owned());
        }
    };
    for item in document["paths"]
        .as_object()
        .into_iter()
        .flat_map(Map::values)
    {
        for operation in item.as_object().into_iter().flat_map(Map::values) {
            for response in operation["responses"]
                .as_object()
                .into_iter()
                .flat_map(Map::values)
            {
                let data = &response["content"]["application/json"]["schema"]["properties"]["data"];
                seen(&data["properties"]["attributes"]);
                seen(&data["items"]["properties"]["attributes"]);
            }
        }
    }
    for name in named {
        let schema = &mut document["components"]["schemas"][&name];
        if schema["type"] == "object" && schema.get("additionalProperties").is_none() {
            schema["additionalProperties"] = Value::Bool(false);
        }
    }
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

    /// What every route shares on the wire is in the served document (the integration suite
    /// checks each real answer against it: tests/api/wire.rs).
    #[test]
    fn the_served_document_carries_the_wire_format() {
        let document = document();
        let operation = |method: &str, path: &str| document["paths"][path][method].clone();
        let errors = json!({"$ref": "#/components/schemas/Errors"});

        // AppId and the Bearer token are one requirement, both needed.
        let get_customer = operation("get", "/stripe/customers/{unique_id}");
        assert_eq!(
            get_customer["security"],
            json!([{"app_id": [], "bearer": []}])
        );
        assert_eq!(
            document["components"]["securitySchemes"]["app_id"]["name"],
            "AppId"
        );
        // The JSON:API envelope around the attributes; errors in their document.
        let ok = &get_customer["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(
            ok["properties"]["data"]["properties"]["attributes"]["$ref"],
            "#/components/schemas/CustomerAttributes"
        );
        let list = operation("get", "/stripe/customers");
        let list = &list["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(list["required"], json!(["data", "meta"]));
        for status in ["400", "401", "404", "429", "500", "503"] {
            assert_eq!(
                get_customer["responses"][status]["content"]["application/json"]["schema"], errors,
                "{status}"
            );
        }
        // Keyed writes take Idempotency-Key and may answer 409; Stripe's receivers do not.
        let create = operation("post", "/stripe/customers");
        let names: Vec<&Value> = create["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| &p["name"])
            .collect();
        assert!(names.contains(&&json!("Idempotency-Key")), "{names:?}");
        for status in ["409", "413", "422", "502", "504"] {
            assert!(create["responses"].get(status).is_some(), "{status}");
        }
        for receiver in ["/stripe/{url_id}/webhook", "/stripe/public/webhook"] {
            let post = operation("post", receiver);
            assert!(post.get("security").is_none(), "{receiver}");
            assert!(!post.to_string().contains("Idempotency-Key"), "{receiver}");
            assert!(post["responses"].get("401").is_none(), "{receiver}");
        }
        // Attributes are closed: a field sent but not described is a violation.
        assert_eq!(
            document["components"]["schemas"]["CustomerAttributes"]["additionalProperties"],
            false
        );
    }
}
