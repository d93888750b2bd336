//! `POST /stripe/fetch`'s call: the client's method, path and parameters sent with the
//! tenant's own client through [`LiveStripe::send_json`] (so its key, account, timeout and
//! retry strategy are the ones every other call uses), GET and DELETE parameters in the query
//! string, POST parameters form-encoded, both with Stripe's `a[b][0]=` nesting.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};
use stripe_client_core::{RequestBuilder, StripeMethod};

use super::LiveStripe;
use crate::stripe::fetch::{FetchMethod, FetchPath};
use crate::stripe::{GatewayError, Key};

/// What stays as it is in a form key part or value: RFC 3986's unreserved characters.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(super) async fn send(
    stripe: &LiveStripe,
    method: FetchMethod,
    path: &FetchPath,
    params: &Map<String, Value>,
    key: Key<'_>,
) -> Result<Value, GatewayError> {
    let encoded = encode(params);
    let (stripe_method, step) = match method {
        FetchMethod::Get => (StripeMethod::Get, "fetch_get"),
        FetchMethod::Post => (StripeMethod::Post, "fetch_post"),
        FetchMethod::Delete => (StripeMethod::Delete, "fetch_delete"),
    };
    let mut request = RequestBuilder::new(stripe_method, path.api_path());
    match method {
        FetchMethod::Post => request.body = Some(encoded),
        FetchMethod::Get | FetchMethod::Delete => {
            request.query = Some(encoded).filter(|q| !q.is_empty());
        }
    }
    stripe.send_json(request, key, step).await
}

/// `a=1&b[c]=2&d[0]=x`: Stripe's form encoding of a JSON object. Key parts and values are
/// percent-encoded, the brackets between them are not; `null` and empty objects and arrays are
/// sent as an empty value (how Stripe is told to clear a field).
pub(crate) fn encode(params: &Map<String, Value>) -> String {
    let mut pairs = Vec::new();
    for (key, value) in params {
        push(
            &mut pairs,
            utf8_percent_encode(key, FORM).to_string(),
            value,
        );
    }
    pairs.join("&")
}

fn push(pairs: &mut Vec<String>, name: String, value: &Value) {
    let scalar = match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => utf8_percent_encode(s, FORM).to_string(),
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                push(pairs, format!("{name}[{i}]"), item);
            }
            return;
        }
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                push(
                    pairs,
                    format!("{name}[{}]", utf8_percent_encode(key, FORM)),
                    item,
                );
            }
            return;
        }
        Value::Array(_) | Value::Object(_) => String::new(),
    };
    pairs.push(format!("{name}={scalar}"));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_parameters_are_encoded_as_stripe_reads_them() {
        let params = json!({
            "amount": 500,
            "confirm": true,
            "description": "a & b = c",
            "metadata": {"order id": "42", "empty": ""},
            "expand": ["customer", "latest_charge"],
            "items": [{"price": "price_1", "quantity": 2}],
            "shipping": null,
            "tax_id_data": [],
        });
        assert_eq!(
            pairs(&params),
            [
                "amount=500",
                "confirm=true",
                "description=a%20%26%20b%20%3D%20c",
                "expand[0]=customer",
                "expand[1]=latest_charge",
                "items[0][price]=price_1",
                "items[0][quantity]=2",
                "metadata[empty]=",
                "metadata[order%20id]=42",
                "shipping=",
                "tax_id_data=",
            ]
        );
    }

    #[test]
    fn brackets_and_separators_in_keys_and_values_cannot_make_new_parameters() {
        let params = json!({"a&b=c": "x&customer=cus_evil", "d": {"e]&f[": "y"}});
        assert_eq!(
            pairs(&params),
            ["a%26b%3Dc=x%26customer%3Dcus_evil", "d[e%5D%26f%5B]=y"]
        );
    }

    /// The encoded pairs, sorted (a map's order is not the point).
    fn pairs(params: &Value) -> Vec<String> {
        let mut pairs: Vec<String> = encode(params.as_object().unwrap())
            .split('&')
            .map(str::to_owned)
            .collect();
        pairs.sort();
        pairs
    }
}
