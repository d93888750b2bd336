//! Prices: one-time and recurring (`per_unit` only), and price data given inline.
//!
//! Price data given inline (`line_items[0][price_data]`, `items[0][price_data]`,
//! `default_price_data`) is read by [`read_price_data`] and stored by [`insert`] as a price
//! of its own, as Stripe does; inline prices are retrievable but not listed.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::form::{Params, param_name};
use crate::ids;
use crate::json::{int_field, opt_str, set, str_field};
use crate::money::required_currency;
use crate::objects::products;
use crate::params::{merge_metadata, non_negative, one_of};
use crate::store::{Record, Store, kinds};

/// How prices are named in "No such ..." messages.
pub const LABEL: &str = "price";

/// Whether inline price data may, must or must not be recurring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recurrence {
    /// One-time or recurring.
    Allowed,
    /// Must carry `recurring`.
    Required,
    /// Must not carry `recurring`.
    Forbidden,
}

/// `recurring[...]` of a price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurring {
    /// `day`, `week`, `month` or `year`.
    pub interval: String,
    /// Number of intervals between charges (1 to one year's worth).
    pub interval_count: i64,
}

/// The money part of a price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceData {
    /// Lower-case currency.
    pub currency: String,
    /// Amount in the currency's minor unit.
    pub unit_amount: i64,
    /// `None` for a one-time price.
    pub recurring: Option<Recurring>,
    /// `exclusive`, `inclusive` or `unspecified` (`None`: not given).
    pub tax_behavior: Option<String>,
}

/// The descriptive part of a price.
#[derive(Debug, Clone, PartialEq)]
pub struct Extras {
    /// Whether the price can be used for new purchases.
    pub active: bool,
    /// A brief description of the price, hidden from customers.
    pub nickname: Option<String>,
    /// A lookup key, unique among the account's active prices.
    pub lookup_key: Option<String>,
    /// Metadata.
    pub metadata: Map<String, Value>,
    /// Prices created inline (`price_data`) are not listed.
    pub inline: bool,
}

impl Default for Extras {
    fn default() -> Self {
        Extras {
            active: true,
            nickname: None,
            lookup_key: None,
            metadata: Map::new(),
            inline: false,
        }
    }
}

/// `prefix` followed by `leaf`, e.g. `["items", "0", "price_data"]` + `"currency"`.
pub fn at<'a>(prefix: &[&'a str], leaf: &[&'a str]) -> Vec<&'a str> {
    let mut path = prefix.to_vec();
    path.extend_from_slice(leaf);
    path
}

/// The live price `id`, or `resource_missing` on `param` (`No such price: 'x'`).
pub fn require<'s>(store: &'s Store, id: &str, param: &str) -> ApiResult<&'s Record> {
    store
        .get_live(kinds::PRICE, id)
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, param))
}

/// Whether a price object is recurring.
pub fn is_recurring(price: &Value) -> bool {
    str_field(price, "type") == Some("recurring")
}

/// A price's unit amount in minor units.
pub fn unit_amount(price: &Value) -> i64 {
    int_field(price, "unit_amount")
}

/// A recurring price's interval and count.
pub fn interval_of(price: &Value) -> Option<(String, i64)> {
    let recurring = price.get("recurring")?;
    let interval = str_field(recurring, "interval")?.to_owned();
    let count = recurring
        .get("interval_count")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    Some((interval, count))
}

/// The most intervals of each kind Stripe allows (one year).
fn max_interval_count(interval: &str) -> i64 {
    match interval {
        "day" => 365,
        "week" => 52,
        "month" => 12,
        _ => 1,
    }
}

/// Reads `currency`, `unit_amount` (or integral `unit_amount_decimal`), `recurring[...]` and
/// `tax_behavior` under `prefix`.
pub fn read_price_data(
    p: &Params,
    prefix: &[&str],
    recurrence: Recurrence,
) -> ApiResult<PriceData> {
    let currency = required_currency(p, &at(prefix, &["currency"]))?;
    let amount_path = at(prefix, &["unit_amount"]);
    let decimal_path = at(prefix, &["unit_amount_decimal"]);
    let unit_amount = match (non_negative(p, &amount_path)?, p.non_empty(&decimal_path)?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(format!(
                "You may only specify one of these parameters: {}, {}.",
                param_name(&amount_path),
                param_name(&decimal_path)
            ))
            .with_code("parameters_exclusive")
            .with_param(param_name(&amount_path)));
        }
        (Some(amount), None) => amount,
        (None, Some(decimal)) => {
            let value: f64 = decimal.trim().parse().map_err(|_| {
                ApiError::invalid_request(format!("Invalid decimal: {decimal}"))
                    .with_code("parameter_invalid_decimal")
                    .with_param(param_name(&decimal_path))
            })?;
            if value < 0.0 || value.fract() != 0.0 || value > 1e15 {
                return Err(ApiError::invalid_param(
                    &param_name(&decimal_path),
                    "The Stripe emulator supports only whole, non-negative unit_amount_decimal values.",
                ));
            }
            // Checked above: a whole number well inside i64.
            value as i64
        }
        (None, None) => {
            if p.has(&at(prefix, &["custom_unit_amount"])) || p.has(&at(prefix, &["tiers"])) {
                return Err(ApiError::invalid_param(
                    &param_name(&amount_path),
                    "The Stripe emulator supports only per-unit prices with a unit_amount.",
                ));
            }
            return Err(ApiError::parameter_missing(&param_name(&amount_path)));
        }
    };
    if unit_amount > 99_999_999_999 {
        return Err(ApiError::invalid_param(
            &param_name(&amount_path),
            "This value must be less than or equal to 99999999999.",
        )
        .with_code("parameter_invalid_integer"));
    }
    let recurring_path = at(prefix, &["recurring"]);
    let recurring = if p.has(&recurring_path) {
        let interval_path = at(prefix, &["recurring", "interval"]);
        p.required_string(&interval_path)?;
        let interval = one_of(p, &interval_path, &["day", "week", "month", "year"])?
            .unwrap_or("month")
            .to_owned();
        let count_path = at(prefix, &["recurring", "interval_count"]);
        let interval_count = p.integer(&count_path)?.unwrap_or(1);
        if interval_count < 1 || interval_count > max_interval_count(&interval) {
            return Err(ApiError::invalid_param(
                &param_name(&count_path),
                "Invalid interval_count: the maximum billing interval is one year (1 year, 12 months, 52 weeks, or 365 days).",
            ));
        }
        let usage_path = at(prefix, &["recurring", "usage_type"]);
        if one_of(p, &usage_path, &["licensed", "metered"])? == Some("metered") {
            return Err(ApiError::invalid_param(
                &param_name(&usage_path),
                "The Stripe emulator does not support metered prices.",
            ));
        }
        Some(Recurring {
            interval,
            interval_count,
        })
    } else {
        None
    };
    match (recurrence, &recurring) {
        (Recurrence::Required, None) => {
            return Err(ApiError::parameter_missing(&param_name(&recurring_path)));
        }
        (Recurrence::Forbidden, Some(_)) => {
            return Err(ApiError::invalid_param(
                &param_name(&recurring_path),
                format!(
                    "Received unknown parameter: {}",
                    param_name(&recurring_path)
                ),
            )
            .with_code("parameter_unknown"));
        }
        _ => {}
    }
    let tax_behavior = one_of(
        p,
        &at(prefix, &["tax_behavior"]),
        &["exclusive", "inclusive", "unspecified"],
    )?
    .map(str::to_owned);
    Ok(PriceData {
        currency,
        unit_amount,
        recurring,
        tax_behavior,
    })
}

/// A price object.
fn new_object(
    id: &str,
    data: &PriceData,
    product: &str,
    extras: &Extras,
    now: i64,
    livemode: bool,
) -> Value {
    let mut price = fixture(kinds::PRICE);
    let recurring = data.recurring.as_ref().map_or(Value::Null, |r| {
        json!({
            "interval": r.interval,
            "interval_count": r.interval_count,
            "meter": null,
            "usage_type": "licensed",
            "trial_period_days": null
        })
    });
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("price")),
        ("active", json!(extras.active)),
        ("billing_scheme", json!("per_unit")),
        ("created", json!(now)),
        ("currency", json!(data.currency)),
        ("custom_unit_amount", Value::Null),
        ("livemode", json!(livemode)),
        ("lookup_key", opt_str(extras.lookup_key.as_deref())),
        ("metadata", Value::Object(extras.metadata.clone())),
        ("nickname", opt_str(extras.nickname.as_deref())),
        ("product", json!(product)),
        ("recurring", recurring),
        (
            "tax_behavior",
            json!(data.tax_behavior.as_deref().unwrap_or("unspecified")),
        ),
        ("tiers_mode", Value::Null),
        ("transform_quantity", Value::Null),
        (
            "type",
            json!(if data.recurring.is_some() {
                "recurring"
            } else {
                "one_time"
            }),
        ),
        ("unit_amount", json!(data.unit_amount)),
        ("unit_amount_decimal", json!(data.unit_amount.to_string())),
    ] {
        set(&mut price, key, value);
    }
    price
}

/// Stores a new price of `product` and returns its id.
pub fn insert(
    store: &mut Store,
    now: i64,
    data: &PriceData,
    product: &str,
    extras: Extras,
) -> String {
    let id = ids::long_id("price");
    let price = new_object(&id, data, product, &extras, now, store.livemode);
    let mut internal = Map::new();
    if extras.inline {
        internal.insert("inline".into(), json!(true));
    }
    store.insert_with(kinds::PRICE, price, internal);
    id
}

/// Reads inline `price_data` under `prefix` (with `product` or `product_data[name]`),
/// without storing anything. Returns the data and how to find the product.
pub fn read_inline(
    p: &Params,
    prefix: &[&str],
    store: &Store,
    recurrence: Recurrence,
) -> ApiResult<(PriceData, ProductRef)> {
    let data = read_price_data(p, prefix, recurrence)?;
    let product = read_product_ref(p, prefix, store)?;
    Ok((data, product))
}

/// The product a new price belongs to.
#[derive(Debug, Clone, PartialEq)]
pub enum ProductRef {
    /// An existing product.
    Existing(String),
    /// A product to create: name and metadata.
    New(String, Map<String, Value>),
}

pub fn read_product_ref(p: &Params, prefix: &[&str], store: &Store) -> ApiResult<ProductRef> {
    let product_path = at(prefix, &["product"]);
    let data_path = at(prefix, &["product_data"]);
    match (p.non_empty(&product_path)?, p.has(&data_path)) {
        (Some(_), true) => Err(ApiError::invalid_request(format!(
            "You may only specify one of these parameters: {}, {}.",
            param_name(&product_path),
            param_name(&data_path)
        ))
        .with_code("parameters_exclusive")
        .with_param(param_name(&product_path))),
        (Some(product), false) => {
            products::require_live(store, product, &param_name(&product_path))?;
            Ok(ProductRef::Existing(product.to_owned()))
        }
        (None, true) => {
            let name = p.required_string(&at(prefix, &["product_data", "name"]))?;
            let metadata = merge_metadata(
                &Map::new(),
                p.hash(&at(prefix, &["product_data", "metadata"]))?,
            )?;
            Ok(ProductRef::New(name.to_owned(), metadata))
        }
        (None, false) => Err(ApiError::invalid_request(format!(
            "You must specify either `{}` or `{}`.",
            param_name(&product_path),
            param_name(&data_path)
        ))
        .with_code("parameter_missing")
        .with_param(param_name(&product_path))),
    }
}

/// Creates the product if needed and returns its id.
pub fn resolve_product(store: &mut Store, now: i64, product: ProductRef) -> String {
    match product {
        ProductRef::Existing(id) => id,
        ProductRef::New(name, metadata) => products::insert_named(store, now, &name, metadata),
    }
}

/// Stores inline price data read by [`read_inline`] and returns the new price id.
pub fn insert_inline(store: &mut Store, now: i64, data: &PriceData, product: ProductRef) -> String {
    let product = resolve_product(store, now, product);
    insert(
        store,
        now,
        data,
        &product,
        Extras {
            inline: true,
            ..Extras::default()
        },
    )
}

#[cfg(test)]
mod tests;
