//! Every answer the integration suite gets from the service is held against the OpenAPI
//! document the service serves (issue 14, "OpenAPI true to the wire"): its status must be
//! listed for the route and method, its content type described, and a JSON body valid against
//! the response's schema. [`WireCheck`] is a middleware on `TestApp::http`, the client every
//! shared helper sends through, so each response is checked as it arrives and no test can
//! forget to; a mismatch fails the test that received it, naming route, status and problem.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use serde_json::{Value, json};

/// The document, its route templates, and the validators built so far.
struct Document {
    value: &'static Value,
    templates: Vec<(String, Vec<Option<String>>)>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

static DOCUMENT: LazyLock<Document> = LazyLock::new(|| {
    let value = sales_block::http::openapi::document();
    let templates = value["paths"]
        .as_object()
        .expect("paths in the document")
        .keys()
        .map(|template| {
            let segments = template
                .trim_start_matches('/')
                .split('/')
                .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                .collect();
            (template.clone(), segments)
        })
        .collect();
    Document {
        value,
        templates,
        validators: Mutex::new(HashMap::new()),
    }
});

/// The documented template a request path falls under, as the router picks it: among the
/// templates it matches, the one with the most literal segments (`/stripe/public/webhook`
/// before `/stripe/{url_id}/webhook`).
pub fn template(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    DOCUMENT
        .templates
        .iter()
        .filter(|(_, pattern)| {
            pattern.len() == segments.len()
                && pattern.iter().zip(&segments).all(|(p, s)| match p {
                    Some(literal) => literal == s,
                    None => !s.is_empty(),
                })
        })
        .max_by_key(|(_, pattern)| pattern.iter().filter(|p| p.is_some()).count())
        .map(|(template, _)| template.as_str())
}

/// A validator for `schema`, resolving `#/components/...` against the document.
fn validator(key: String, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
    let mut cache = DOCUMENT.validators.lock().expect("validator cache");
    if let Some(validator) = cache.get(&key) {
        return Ok(validator.clone());
    }
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": DOCUMENT.value["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .map_err(|err| format!("the schema of {key} does not compile: {err}"))?;
    let validator = Arc::new(validator);
    cache.insert(key, validator.clone());
    Ok(validator)
}

/// Checks one answer against the document; `Ok` for requests outside it (the emulator's
/// paths, routes the service does not have).
pub fn check(
    method: &str,
    path: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), String> {
    let method = method.to_ascii_lowercase();
    // CORS preflights and HEAD are answered by the framework, not described.
    if matches!(method.as_str(), "options" | "head") {
        return Ok(());
    }
    let Some(template) = template(path) else {
        return Ok(());
    };
    let operation = &DOCUMENT.value["paths"][template][&method];
    let response = if operation.is_null() {
        // A method the route does not serve: 405 in the error format.
        if status != 405 {
            return Err(format!(
                "{method} is not documented on {template}, so it must answer 405, not {status}"
            ));
        }
        json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}})
    } else {
        let responses = &operation["responses"];
        let exact = status.to_string();
        let range = format!("{}XX", status / 100);
        [exact.as_str(), range.as_str(), "default"]
            .into_iter()
            .map(|key| &responses[key])
            .find(|r| !r.is_null())
            .cloned()
            .ok_or_else(|| {
                let listed: Vec<&String> = responses
                    .as_object()
                    .map(|r| r.keys().collect())
                    .unwrap_or_default();
                format!(
                    "status {status} is not listed for {method} {template} (listed: {listed:?})"
                )
            })?
    };
    let content = response["content"].as_object();
    if body.is_empty() {
        return match content {
            Some(content) if !content.is_empty() => Err(format!(
                "{method} {template} {status} is documented with a body ({:?}) but none was sent",
                content.keys().collect::<Vec<_>>()
            )),
            _ => Ok(()),
        };
    }
    let Some(content) = content else {
        return Err(format!(
            "{method} {template} {status} sent a body, but the document describes none"
        ));
    };
    let essence = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some(media) = content.get(&essence) else {
        return Err(format!(
            "{method} {template} {status} sent {essence:?}, documented: {:?}",
            content.keys().collect::<Vec<_>>()
        ));
    };
    if essence != "application/json" {
        return Ok(());
    }
    let instance: Value = serde_json::from_slice(body)
        .map_err(|err| format!("{method} {template} {status}: the body is not JSON: {err}"))?;
    let schema = &media["schema"];
    let validator = validator(format!("{method} {template} {status}"), schema)?;
    let problems: Vec<String> = validator
        .iter_errors(&instance)
        .map(|err| format!("at {:?}: {err}", err.instance_path().as_str()))
        .take(5)
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{method} {template} {status}: the body does not match the document: {}",
            problems.join("; ")
        ))
    }
}

/// The middleware on `TestApp::http` (see the module's doc): it reads each answer whole,
/// checks it, and hands the test an identical one.
pub struct WireCheck;

#[async_trait::async_trait]
impl Middleware for WireCheck {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut ::http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let method = request.method().as_str().to_owned();
        let path = request.url().path().to_owned();
        let response = next.run(request, extensions).await?;
        if template(&path).is_none() {
            return Ok(response);
        }
        let status = response.status();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if let Err(problem) = check(&method, &path, status.as_u16(), content_type, &body) {
            panic!(
                "{method} {path} answered {status}, which the OpenAPI document does not describe: \
                 {problem}\nbody: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let mut rebuilt = ::http::Response::new(body);
        *rebuilt.status_mut() = status;
        *rebuilt.version_mut() = version;
        *rebuilt.headers_mut() = headers;
        Ok(Response::from(rebuilt))
    }
}

/// The client the tests send through: every answer of the service is checked.
pub fn client(timeout: std::time::Duration) -> reqwest_middleware::ClientWithMiddleware {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("client");
    reqwest_middleware::ClientBuilder::new(client)
        .with(WireCheck)
        .build()
}

#[test]
fn the_check_refuses_what_the_document_does_not_describe() {
    let customer = json!({"data": {"id": "c1", "type": "stripe_customer", "attributes": {
        "unique_id": "c1", "customer_id": "c1", "stripe_customer_id": "cus_1",
        "stripe_id": "cus_1", "email": null, "name": null, "phone": null, "description": null,
        "default_payment_method": null, "metadata": {}, "user_unique_id": null,
        "identity_type": "user", "company_unique_id": null, "entity_unique_id": null,
        "entity_type": null, "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z"}}});
    let json = Some("application/json");
    let body = |v: &Value| serde_json::to_vec(v).expect("json");
    let path = "/stripe/customers/c1";
    check("GET", path, 200, json, &body(&customer)).expect("a customer as sent");

    // Bare attributes, without the envelope.
    let bare = customer["data"]["attributes"].clone();
    assert!(check("GET", path, 200, json, &body(&bare)).is_err());
    // An attribute the document does not describe.
    let mut extra = customer.clone();
    extra["data"]["attributes"]["secret"] = json!("x");
    assert!(check("GET", path, 200, json, &body(&extra)).is_err());
    // A status the route does not answer.
    assert!(check("GET", path, 418, json, &body(&customer)).is_err());
    // An error not in the JSON:API error format.
    let error = json!({"errors": [{"status": "404", "code": "not_found", "title": "Not found",
        "detail": "No such customer."}]});
    check("GET", path, 404, json, &body(&error)).expect("an error as sent");
    assert!(check("GET", path, 404, json, &body(&json!({"error": "nope"}))).is_err());
    // A method the route does not serve must be 405.
    assert!(check("PATCH", path, 200, json, &body(&customer)).is_err());
    // Outside the document: not checked.
    check("GET", "/v1/customers", 200, json, b"{}").expect("the emulator's path");
}
