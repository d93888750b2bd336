//! The Stripe resources the emulator serves, and the router that maps `/v1` paths to them.
//!
//! Each handler is synchronous: it gets a [`Ctx`] (the account's store, the parsed
//! parameters, ...) and returns the JSON object to answer with, or an [`ApiError`]. Handlers
//! validate everything before changing anything, so a rejected request leaves no trace.

pub mod billing_portal;
pub mod charges;
pub mod checkout;
pub mod coupons;
pub mod customers;
pub mod event_types;
pub mod events;
pub mod invoices;
pub mod payment_intents;
pub mod payment_links;
pub mod payment_methods;
pub mod prices;
pub mod products;
pub mod refunds;
pub mod setup_intents;
pub mod subscriptions;
pub mod webhook_endpoints;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::expand;
use crate::form::{HashArg, Params, param_name};
use crate::state::Emulator;
use crate::store::Store;

/// What a handler works with.
pub struct Ctx<'a> {
    /// The account's objects.
    pub store: &'a mut Store,
    /// The request's parameters (query string and body).
    pub params: &'a Params,
    /// The emulator's own base URL as the client reached it, e.g. `http://127.0.0.1:12111`.
    pub base_url: &'a str,
    /// Unix seconds at the start of the request.
    pub now: i64,
    /// Emulator-wide state (hosted pages).
    pub emulator: &'a Emulator,
    /// The secret key of the request (hosted pages act on its state).
    pub key: &'a str,
    /// The `Stripe-Account` of the request (`""` for the key's own account).
    pub account: &'a str,
}

impl Ctx<'_> {
    /// Whether objects are created in live mode.
    pub fn livemode(&self) -> bool {
        self.store.livemode
    }
}

/// Routes a `/v1` request (`segs` are the path segments after `/v1/`). `None` when no
/// endpoint matches (the caller answers Stripe's "Unrecognized request URL").
pub fn route(ctx: &mut Ctx<'_>, method: &str, segs: &[&str]) -> Option<ApiResult<Value>> {
    let result = match (method, segs) {
        ("POST", ["customers"]) => customers::create(ctx),
        ("GET", ["customers"]) => customers::list(ctx),
        ("GET", ["customers", id]) => customers::retrieve(ctx, id),
        ("POST", ["customers", id]) => customers::update(ctx, id),
        ("DELETE", ["customers", id]) => customers::delete(ctx, id),
        ("GET", ["customers", id, "payment_methods"]) => {
            payment_methods::list_for_customer(ctx, id)
        }
        ("GET", ["customers", id, "payment_methods", pm]) => {
            payment_methods::retrieve_for_customer(ctx, id, pm)
        }
        ("GET", ["payment_methods"]) => payment_methods::list(ctx),
        ("GET", ["payment_methods", id]) => payment_methods::retrieve(ctx, id),
        ("POST", ["payment_methods", id]) => payment_methods::update(ctx, id),
        ("POST", ["payment_methods", id, "attach"]) => payment_methods::attach(ctx, id),
        ("POST", ["payment_methods", id, "detach"]) => payment_methods::detach(ctx, id),
        ("POST", ["billing_portal", "sessions"]) => billing_portal::create_session(ctx),
        ("POST", ["products"]) => products::create(ctx),
        ("GET", ["products"]) => products::list(ctx),
        ("GET", ["products", id]) => products::retrieve(ctx, id),
        ("POST", ["products", id]) => products::update(ctx, id),
        ("DELETE", ["products", id]) => products::delete(ctx, id),
        ("POST", ["prices"]) => prices::create(ctx),
        ("GET", ["prices"]) => prices::list(ctx),
        ("GET", ["prices", id]) => prices::retrieve(ctx, id),
        ("POST", ["prices", id]) => prices::update(ctx, id),
        ("POST", ["coupons"]) => coupons::create(ctx),
        ("GET", ["coupons"]) => coupons::list(ctx),
        ("GET", ["coupons", id]) => coupons::retrieve(ctx, id),
        ("POST", ["coupons", id]) => coupons::update(ctx, id),
        ("DELETE", ["coupons", id]) => coupons::delete(ctx, id),
        ("POST", ["payment_intents"]) => payment_intents::create(ctx),
        ("GET", ["payment_intents"]) => payment_intents::list(ctx),
        ("GET", ["payment_intents", id]) => payment_intents::retrieve(ctx, id),
        ("POST", ["payment_intents", id]) => payment_intents::update(ctx, id),
        ("POST", ["payment_intents", id, "confirm"]) => payment_intents::confirm(ctx, id),
        ("POST", ["payment_intents", id, "capture"]) => payment_intents::capture(ctx, id),
        ("POST", ["payment_intents", id, "cancel"]) => payment_intents::cancel(ctx, id),
        ("GET", ["charges"]) => charges::list(ctx),
        ("GET", ["charges", id]) => charges::retrieve(ctx, id),
        ("POST", ["refunds"]) => refunds::create(ctx),
        ("GET", ["refunds"]) => refunds::list(ctx),
        ("GET", ["refunds", id]) => refunds::retrieve(ctx, id),
        ("POST", ["refunds", id]) => refunds::update(ctx, id),
        ("POST", ["subscriptions"]) => subscriptions::create(ctx),
        ("GET", ["subscriptions"]) => subscriptions::list(ctx),
        ("GET", ["subscriptions", id]) => subscriptions::retrieve(ctx, id),
        ("POST", ["subscriptions", id]) => subscriptions::update(ctx, id),
        ("DELETE", ["subscriptions", id]) => subscriptions::cancel(ctx, id),
        ("GET", ["subscription_items"]) => subscriptions::list_items(ctx),
        ("GET", ["subscription_items", id]) => subscriptions::retrieve_item(ctx, id),
        ("POST", ["invoices"]) => invoices::create(ctx),
        ("GET", ["invoices"]) => invoices::list(ctx),
        ("GET", ["invoices", id]) => invoices::retrieve(ctx, id),
        ("GET", ["invoices", id, "lines"]) => invoices::lines(ctx, id),
        ("POST", ["invoices", id, "finalize"]) => invoices::finalize_endpoint(ctx, id),
        ("POST", ["invoices", id, "pay"]) => invoices::pay_endpoint(ctx, id),
        ("POST", ["invoices", id, "void"]) => invoices::void(ctx, id),
        ("GET", ["invoiceitems"]) => invoices::list_items(ctx),
        ("GET", ["invoiceitems", id]) => invoices::retrieve_item(ctx, id),
        ("POST", ["checkout", "sessions"]) => checkout::create(ctx),
        ("GET", ["checkout", "sessions"]) => checkout::list(ctx),
        ("GET", ["checkout", "sessions", id]) => checkout::retrieve(ctx, id),
        ("GET", ["checkout", "sessions", id, "line_items"]) => checkout::list_line_items(ctx, id),
        ("POST", ["checkout", "sessions", id, "expire"]) => checkout::expire(ctx, id),
        ("POST", ["payment_links"]) => payment_links::create(ctx),
        ("GET", ["payment_links"]) => payment_links::list(ctx),
        ("GET", ["payment_links", id]) => payment_links::retrieve(ctx, id),
        ("POST", ["payment_links", id]) => payment_links::update(ctx, id),
        ("GET", ["payment_links", id, "line_items"]) => payment_links::list_line_items(ctx, id),
        ("GET", ["setup_intents", id]) => setup_intents::retrieve(ctx, id),
        ("GET", ["events"]) => events::list(ctx),
        ("GET", ["events", id]) => events::retrieve(ctx, id),
        ("POST", ["webhook_endpoints"]) => webhook_endpoints::create(ctx),
        ("GET", ["webhook_endpoints"]) => webhook_endpoints::list(ctx),
        ("GET", ["webhook_endpoints", id]) => webhook_endpoints::retrieve(ctx, id),
        ("POST", ["webhook_endpoints", id]) => webhook_endpoints::update(ctx, id),
        ("DELETE", ["webhook_endpoints", id]) => webhook_endpoints::delete(ctx, id),
        _ => return None,
    };
    Some(result.and_then(|mut value| {
        let paths = ctx.params.expand()?;
        if !paths.is_empty() {
            expand::apply(ctx.store, &mut value, &paths)?;
        }
        invoices::strip_includable(&mut value, &paths);
        Ok(value)
    }))
}

/// Stripe's metadata limits.
const METADATA_MAX_KEYS: usize = 50;
const METADATA_MAX_KEY_LEN: usize = 40;
const METADATA_MAX_VALUE_LEN: usize = 500;

/// Applies a `metadata` argument to existing metadata as Stripe does: `metadata=` clears
/// it, `metadata[k]=v` sets `k`, `metadata[k]=` deletes `k`. Returns the new metadata after
/// checking Stripe's limits (50 keys, keys up to 40 characters, values up to 500).
pub fn merge_metadata(
    existing: &Map<String, Value>,
    arg: Option<HashArg>,
) -> ApiResult<Map<String, Value>> {
    let mut merged: BTreeMap<String, Value> = existing.clone().into_iter().collect();
    match arg {
        None => {}
        Some(HashArg::Clear) => merged.clear(),
        Some(HashArg::Entries(entries)) => {
            for (key, value) in entries {
                if key.chars().count() > METADATA_MAX_KEY_LEN {
                    return Err(ApiError::invalid_param(
                        &format!("metadata[{key}]"),
                        format!(
                            "Metadata key length can't exceed {METADATA_MAX_KEY_LEN} characters."
                        ),
                    ));
                }
                if value.chars().count() > METADATA_MAX_VALUE_LEN {
                    return Err(ApiError::invalid_param(
                        &format!("metadata[{key}]"),
                        format!(
                            "Metadata values can have up to {METADATA_MAX_VALUE_LEN} characters, but you passed in a value that is {} characters.",
                            value.chars().count()
                        ),
                    ));
                }
                if value.is_empty() {
                    merged.remove(&key);
                } else {
                    merged.insert(key, Value::String(value));
                }
            }
        }
    }
    if merged.len() > METADATA_MAX_KEYS {
        return Err(ApiError::invalid_param(
            "metadata",
            format!(
                "Invalid metadata: metadata can have up to {METADATA_MAX_KEYS} keys, but you have passed in {} keys.",
                merged.len()
            ),
        ));
    }
    Ok(merged.into_iter().collect())
}

/// The `metadata` object of a stored object (empty if it has none).
pub fn metadata_of(object: &Value) -> Map<String, Value> {
    object
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Sets `object[key] = value` if `object` is a JSON object.
pub fn set(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

/// Sets `object[a][b] = value`, creating `object[a]` if needed.
pub fn set_in(object: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for seg in parents {
        let Some(map) = node.as_object_mut() else {
            return;
        };
        let child = map
            .entry((*seg).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !child.is_object() {
            *child = Value::Object(Map::new());
        }
        node = child;
    }
    set(node, last, value);
}

/// Currencies Stripe accepts (ISO 4217, lower case).
const CURRENCIES: &[&str] = &[
    "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
    "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad",
    "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
    "etb", "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl",
    "htg", "huf", "idr", "ils", "inr", "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr", "kmf",
    "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl", "mga", "mkd",
    "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok",
    "npr", "nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar", "ron", "rsd",
    "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl",
    "thb", "tjs", "tnd", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "uyu", "uzs", "vnd",
    "vuv", "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw",
];

/// Currencies without a minor unit (amounts are whole units).
pub const ZERO_DECIMAL_CURRENCIES: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// A `currency` parameter, lower-cased and checked against Stripe's currencies.
pub fn currency(p: &Params, path: &[&str]) -> ApiResult<Option<String>> {
    let Some(value) = p.non_empty(path)? else {
        return Ok(None);
    };
    let lower = value.trim().to_ascii_lowercase();
    if CURRENCIES.contains(&lower.as_str()) {
        Ok(Some(lower))
    } else {
        Err(ApiError::invalid_param(
            &param_name(path),
            format!(
                "Invalid currency: {value}. Stripe currently supports these currencies: {}",
                CURRENCIES.join(", ")
            ),
        ))
    }
}

/// A required `currency` parameter.
pub fn required_currency(p: &Params, path: &[&str]) -> ApiResult<String> {
    currency(p, path)?.ok_or_else(|| ApiError::parameter_missing(&param_name(path)))
}

/// The id an expandable field holds: the string itself, or the `id` of an expanded object.
pub fn id_of(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Object(map) => map.get("id").and_then(Value::as_str),
        _ => None,
    }
}

/// `object[key]` as a string, if it is one.
pub fn str_field<'v>(object: &'v Value, key: &str) -> Option<&'v str> {
    object.get(key).and_then(Value::as_str)
}

/// `object[key]` as an integer (0 if missing).
pub fn int_field(object: &Value, key: &str) -> i64 {
    object.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// A non-negative integer parameter (`param` named in the error when negative).
pub fn non_negative(p: &Params, path: &[&str]) -> ApiResult<Option<i64>> {
    match p.integer(path)? {
        Some(n) if n < 0 => Err(ApiError::invalid_request(
            "This value must be greater than or equal to 0.",
        )
        .with_code("parameter_invalid_integer")
        .with_param(param_name(path))),
        other => Ok(other),
    }
}

/// Checks that a parameter holds one of `allowed` values (when sent and non-empty).
pub fn one_of<'p>(p: &'p Params, path: &[&str], allowed: &[&str]) -> ApiResult<Option<&'p str>> {
    let Some(value) = p.non_empty(path)? else {
        return Ok(None);
    };
    if allowed.contains(&value) {
        Ok(Some(value))
    } else {
        let name = param_name(path);
        Err(ApiError::invalid_param(
            &name,
            format!("Invalid {name}: must be one of {}", allowed.join(", ")),
        ))
    }
}

/// Rejects parameters this endpoint knows but the emulator does not implement, rather
/// than silently ignoring something that changes the outcome.
pub fn unsupported(p: &Params, names: &[&str]) -> ApiResult<()> {
    for name in names {
        if p.has(&[name]) {
            return Err(ApiError::invalid_param(
                name,
                format!("The Stripe emulator does not support the `{name}` parameter."),
            ));
        }
    }
    Ok(())
}

/// `unit × quantity`, saturating (amounts and quantities come from clients).
pub fn line_amount(unit: i64, quantity: i64) -> i64 {
    unit.saturating_mul(quantity)
}

/// A saturating sum of amounts.
pub fn sum_amounts(amounts: impl IntoIterator<Item = i64>) -> i64 {
    amounts.into_iter().fold(0, i64::saturating_add)
}

/// `amount × part / whole` (rounded down) without overflow; 0 when `whole` is 0.
pub fn share_of(amount: i64, part: i64, whole: i64) -> i64 {
    if whole == 0 {
        return 0;
    }
    i64::try_from(i128::from(amount) * i128::from(part) / i128::from(whole)).unwrap_or(0)
}

/// A string value, or JSON `null` for `None`.
pub fn opt_str(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_merges_like_stripe() {
        let existing = json!({"a": "1", "b": "2"}).as_object().cloned().unwrap();
        let entries = HashArg::Entries(
            [
                ("a".to_owned(), String::new()),
                ("c".to_owned(), "3".to_owned()),
            ]
            .into(),
        );
        let merged = merge_metadata(&existing, Some(entries)).unwrap();
        assert_eq!(Value::Object(merged), json!({"b": "2", "c": "3"}));
        assert!(
            merge_metadata(&existing, Some(HashArg::Clear))
                .unwrap()
                .is_empty()
        );
        assert_eq!(merge_metadata(&existing, None).unwrap(), existing);
        let too_long = HashArg::Entries([("k".repeat(41), "v".to_owned())].into());
        assert!(merge_metadata(&existing, Some(too_long)).is_err());
        let big_value = HashArg::Entries([("k".to_owned(), "v".repeat(501))].into());
        assert!(merge_metadata(&existing, Some(big_value)).is_err());
        let many = HashArg::Entries((0..51).map(|i| (format!("k{i}"), "v".to_owned())).collect());
        assert_eq!(
            merge_metadata(&Map::new(), Some(many))
                .unwrap_err()
                .param
                .as_deref(),
            Some("metadata")
        );
    }

    #[test]
    fn set_in_creates_parents() {
        let mut v = json!({"invoice_settings": null});
        set_in(
            &mut v,
            &["invoice_settings", "default_payment_method"],
            json!("pm_1"),
        );
        assert_eq!(v["invoice_settings"]["default_payment_method"], "pm_1");
    }
}
