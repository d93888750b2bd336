//! `POST /stripe/fetch`: a tenant admin's call passed through to Stripe with the tenant's own
//! client, if the operator's allow-list (narrowed by the tenant's) admits its method and path.
//! Everything is checked before Stripe is called; Stripe's refusal is passed back as it is; a
//! write whose answer is a mirrored object is recorded in the mirror the way the receiver
//! records it (`receiver::record_answer`).

use actix_web::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::caller::Caller;
use crate::domain::fetch::never_allowed;
use crate::error::ApiError;
use crate::state::AppState;
use crate::stripe::GatewayError;
use crate::stripe::fetch::{FetchMethod, FetchPath};

/// How deep `params` may nest below its top level (Stripe's deepest, e.g.
/// `subscription_data[items][0][price_data][recurring][interval]`, is 5).
pub const MAX_PARAMS_DEPTH: usize = 5;
/// Values (scalars, objects and arrays) `params` may hold in all.
pub const MAX_PARAMS_VALUES: usize = 1000;
/// The longest parameter name (metadata keys are at most 40 characters at Stripe).
pub const MAX_PARAM_KEY_BYTES: usize = 100;

/// The call to pass through.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct FetchFields {
    /// `GET`, `POST` or `DELETE`. Required.
    pub method: Option<String>,
    /// Stripe's path, starting `/v1/` (e.g. `/v1/customers/cus_123`), with no query string.
    /// Required.
    pub path: Option<String>,
    /// Stripe's parameters as a JSON object (nested objects and arrays are sent as Stripe's
    /// `a[b][0]=` form fields): the query string of a GET or DELETE, the body of a POST.
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
}

/// Stripe's answer to a passed-through call.
#[derive(Debug)]
pub struct FetchAnswer {
    pub method: FetchMethod,
    pub path: FetchPath,
    pub body: Value,
    /// Whether the answer was written to the mirror (a write answered with a mirrored object).
    pub mirrored: bool,
}

pub async fn fetch(
    state: &AppState,
    caller: &Caller,
    fields: FetchFields,
    at: &str,
) -> Result<FetchAnswer, ApiError> {
    caller.require_admin("call Stripe through /stripe/fetch")?;
    let (method, path, params) = parse(fields, at)?;
    let allowed = state.fetch_allowed.admits(method, &path)
        && caller
            .tenant
            .fetch_allow
            .as_ref()
            .is_none_or(|narrowed| narrowed.admits(method, &path));
    if !allowed || never_allowed(&path) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "fetch_not_allowed",
            "Forbidden",
            format!(
                "{} {path} is not allowed through /stripe/fetch for this app.",
                method.as_str()
            ),
        )
        .with_pointer(format!("{at}/path"))
        .with_meta("method", method.as_str())
        .with_meta("path", path.to_string()));
    }
    let body = caller
        .tenant
        .stripe
        .proxy(method, &path, &params, caller.stripe_key())
        .await
        .map_err(passed_through)?;
    let mirrored = if method == FetchMethod::Get {
        false
    } else {
        let tenant_id = caller.tenant.id.clone();
        let object = body.clone();
        let now = chrono::Utc::now().timestamp();
        state
            .db
            .run(move |conn| {
                crate::receiver::record_answer(conn, &tenant_id, &object, now)
                    .map_err(ApiError::from)
            })
            .await?
    };
    Ok(FetchAnswer {
        method,
        path,
        body,
        mirrored,
    })
}

/// Stripe's refusal as the client's error, with Stripe's own HTTP status (and its type, code,
/// decline code, param, message and request id, as every Stripe error here carries them). A
/// 401 is the tenant's key refused, not the caller: 502, with `stripe_status` 401.
fn passed_through(err: GatewayError) -> ApiError {
    let status = match &err {
        GatewayError::Stripe(failure) if failure.http_status != 401 => {
            StatusCode::from_u16(failure.http_status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
        }
        _ => None,
    };
    let error = ApiError::from(err);
    match status {
        Some(status) => error.with_status(status),
        None => error,
    }
}

fn parse(
    fields: FetchFields,
    at: &str,
) -> Result<(FetchMethod, FetchPath, Map<String, Value>), ApiError> {
    let raw_method = fields.method.ok_or_else(|| {
        invalid(
            "invalid_fetch_method",
            format!("{at}/method"),
            "method is required (GET, POST or DELETE).".to_owned(),
        )
    })?;
    let method = FetchMethod::parse(&raw_method).ok_or_else(|| {
        invalid(
            "invalid_fetch_method",
            format!("{at}/method"),
            format!(
                "method must be GET, POST or DELETE (got {:?}).",
                shortened(&raw_method)
            ),
        )
    })?;
    let raw_path = fields.path.ok_or_else(|| {
        invalid(
            "invalid_fetch_path",
            format!("{at}/path"),
            "path is required (e.g. /v1/customers).".to_owned(),
        )
    })?;
    let path = FetchPath::parse(&raw_path).map_err(|why| {
        invalid(
            "invalid_fetch_path",
            format!("{at}/path"),
            format!("The path {:?} {why}.", shortened(&raw_path)),
        )
    })?;
    let params = match fields.params {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => {
            return Err(invalid(
                "invalid_fetch_params",
                format!("{at}/params"),
                "params must be a JSON object of Stripe's parameters.".to_owned(),
            ));
        }
    };
    let mut pointer = format!("{at}/params");
    let mut values = 0;
    for (key, value) in &params {
        check_param(key, value, &mut pointer, 0, &mut values)?;
    }
    Ok((method, path, params))
}

/// One parameter, and what it holds: a name Stripe's form encoding cannot misread (no
/// brackets, no control characters), nested at most [`MAX_PARAMS_DEPTH`] deep, and no more
/// than [`MAX_PARAMS_VALUES`] values in all.
fn check_param(
    key: &str,
    value: &Value,
    pointer: &mut String,
    depth: usize,
    values: &mut usize,
) -> Result<(), ApiError> {
    let len = pointer.len();
    pointer.push('/');
    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
    if key.is_empty()
        || key.len() > MAX_PARAM_KEY_BYTES
        || key.contains(['[', ']'])
        || key.chars().any(char::is_control)
    {
        return Err(invalid(
            "invalid_fetch_params",
            pointer.clone(),
            format!(
                "The parameter name {:?} is not acceptable: 1 to {MAX_PARAM_KEY_BYTES} bytes, no brackets or control characters.",
                shortened(key)
            ),
        ));
    }
    *values += 1;
    if *values > MAX_PARAMS_VALUES {
        return Err(invalid(
            "invalid_fetch_params",
            pointer.clone(),
            format!("params holds more than {MAX_PARAMS_VALUES} values."),
        ));
    }
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    if !children.is_empty() && depth >= MAX_PARAMS_DEPTH {
        return Err(invalid(
            "invalid_fetch_params",
            pointer.clone(),
            format!("params nests deeper than {MAX_PARAMS_DEPTH} levels."),
        ));
    }
    for (child_key, child) in children {
        check_param(&child_key, child, pointer, depth + 1, values)?;
    }
    pointer.truncate(len);
    Ok(())
}

fn invalid(code: &str, pointer: String, detail: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
        "Invalid attribute",
        detail,
    )
    .with_pointer(pointer)
}

/// At most 80 characters of a client's value, for an error's detail.
fn shortened(raw: &str) -> String {
    if raw.chars().count() <= 80 {
        raw.to_owned()
    } else {
        let mut short: String = raw.chars().take(80).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(method: &str, path: &str, params: Value) -> FetchFields {
        FetchFields {
            method: Some(method.to_owned()),
            path: Some(path.to_owned()),
            params: Some(params),
        }
    }

    fn code(result: Result<(FetchMethod, FetchPath, Map<String, Value>), ApiError>) -> String {
        result.expect_err("refused").code.clone()
    }

    #[test]
    fn a_plain_call_parses() {
        let (method, path, params) = parse(
            fields("post", "/v1/customers", json!({"email": "a@b.c"})),
            "/fetch",
        )
        .unwrap();
        assert_eq!(method, FetchMethod::Post);
        assert_eq!(path.to_string(), "/v1/customers");
        assert_eq!(params["email"], "a@b.c");
        let (_, _, params) = parse(fields("GET", "/v1/balance", Value::Null), "/fetch").unwrap();
        assert!(params.is_empty());
    }

    #[test]
    fn params_that_are_not_an_object_or_too_deep_or_too_many_are_refused() {
        for params in [json!([1]), json!("a=b"), json!(5), json!(true)] {
            assert_eq!(
                code(parse(fields("GET", "/v1/customers", params), "/fetch")),
                "invalid_fetch_params"
            );
        }
        let mut deep = json!("x");
        for _ in 0..=MAX_PARAMS_DEPTH {
            deep = json!({ "a": deep });
        }
        assert_eq!(
            code(parse(
                fields("POST", "/v1/customers", json!({"metadata": deep})),
                "/fetch"
            )),
            "invalid_fetch_params"
        );
        // Stripe's deepest shape passes.
        let stripe_deep = json!({"subscription_data": {"items": [{"price_data": {"recurring": {"interval": "month"}}}]}});
        assert!(parse(fields("POST", "/v1/customers", stripe_deep), "/fetch").is_ok());
        let many: Map<String, Value> = (0..=MAX_PARAMS_VALUES)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect();
        assert_eq!(
            code(parse(
                fields("POST", "/v1/customers", Value::Object(many)),
                "/fetch"
            )),
            "invalid_fetch_params"
        );
        for key in ["a[b]", "a]", "", "a\nb"] {
            let mut params = Map::new();
            params.insert(key.to_owned(), json!("x"));
            assert_eq!(
                code(parse(
                    fields("POST", "/v1/customers", Value::Object(params)),
                    "/fetch"
                )),
                "invalid_fetch_params",
                "{key:?}"
            );
        }
    }
}
