//! Creating a subscription (validated by the caller): its items, discounts and first invoice,
//! charged as `payment_behavior` says, and the status that leaves it in.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, ErrorType};
use crate::fixtures::fixture;
use crate::ids;
use crate::json::{opt_str, set, str_field};
use crate::money::line_amount;
use crate::objects::coupons;
use crate::objects::invoices::draft::{NewInvoice, create_draft};
use crate::objects::invoices::lines::{LineSpec, insert_item};
use crate::objects::invoices::payment::{finalize, pay};
use crate::objects::payment_methods;
use crate::objects::prices;
use crate::objects::subscriptions::items::{item_object, price_label, product_name};
use crate::objects::subscriptions::record::period_end;
use crate::store::{Store, kinds};

/// Everything a new subscription is made of (validated).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubscription {
    /// The customer.
    pub customer: String,
    /// `(price, quantity, metadata)` of each item; prices are stored recurring prices.
    pub items: Vec<(Value, i64, Map<String, Value>)>,
    /// `(price, quantity)` one-time charges on the first invoice.
    pub add_invoice_items: Vec<(Value, i64)>,
    /// End of the trial, if any.
    pub trial_end: Option<i64>,
    /// A stored payment method attached to the customer.
    pub default_payment_method: Option<String>,
    /// Coupon ids.
    pub coupons: Vec<String>,
    /// Metadata.
    pub metadata: Map<String, Value>,
    /// Description.
    pub description: Option<String>,
    /// Cancel at the end of the first period.
    pub cancel_at_period_end: bool,
    /// Cancel at this time.
    pub cancel_at: Option<i64>,
    /// `allow_incomplete`, `default_incomplete`, `error_if_incomplete`,
    /// `pending_if_incomplete`.
    pub payment_behavior: String,
    /// `charge_automatically` or `send_invoice`.
    pub collection_method: String,
    /// For `send_invoice`.
    pub days_until_due: Option<i64>,
    /// The checkout session creating it (for its discounts).
    pub checkout_session: Option<String>,
}

/// The amount the first invoice of `spec` will ask for (before the customer's balance).
fn first_invoice_amount(store: &Store, spec: &NewSubscription, now: i64) -> i64 {
    let recurring: i64 = if spec.trial_end.is_some() {
        0
    } else {
        spec.items
            .iter()
            .map(|(price, qty, _)| line_amount(prices::unit_amount(price), *qty))
            .fold(0, i64::saturating_add)
    };
    let one_time: i64 = spec
        .add_invoice_items
        .iter()
        .map(|(price, qty)| line_amount(prices::unit_amount(price), *qty))
        .fold(0, i64::saturating_add);
    let mut total = recurring.saturating_add(one_time);
    for coupon in &spec.coupons {
        if let Ok(coupon) = coupons::require(store, coupon, "coupon", now) {
            total -= coupons::discount_amount(&coupon, total);
        }
    }
    total
}

/// The payment method a new subscription would be charged with.
fn charge_method(store: &Store, spec: &NewSubscription) -> Option<String> {
    spec.default_payment_method.clone().or_else(|| {
        store
            .get_live(kinds::CUSTOMER, &spec.customer)?
            .object
            .pointer("/invoice_settings/default_payment_method")
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

/// The 402 a payment with `pm` would give, if it declines.
pub fn predicted_decline(store: &Store, pm: &str) -> Option<ApiError> {
    let decline = payment_methods::decline_of(store, pm)?;
    Some(
        ApiError::new(402, ErrorType::Card, decline.message)
            .with_code(decline.code)
            .with_decline_code(decline.decline_code),
    )
}

/// Creates a subscription (validated by the caller) with its first invoice, charging it as
/// `payment_behavior` says. Returns the subscription id.
pub fn create_stored(store: &mut Store, now: i64, spec: &NewSubscription) -> ApiResult<String> {
    let currency = spec
        .items
        .first()
        .and_then(|(price, _, _)| str_field(price, "currency"))
        .unwrap_or("usd")
        .to_owned();
    let amount = first_invoice_amount(store, spec, now);
    let charging = spec.collection_method == "charge_automatically"
        && spec.payment_behavior != "default_incomplete";
    if spec.payment_behavior == "error_if_incomplete" && charging && amount > 0 {
        match charge_method(store, spec) {
            None => {
                return Err(ApiError::invalid_request(
                    "This customer has no attached payment source or default payment method. Please consider adding a default payment method.",
                )
                .with_code("resource_missing"));
            }
            Some(pm) => {
                if let Some(error) = predicted_decline(store, &pm) {
                    return Err(error);
                }
            }
        }
    }

    let id = ids::long_id("sub");
    let (interval, count) = spec
        .items
        .first()
        .and_then(|(price, _, _)| prices::interval_of(price))
        .unwrap_or_else(|| ("month".into(), 1));
    let end = spec
        .trial_end
        .unwrap_or_else(|| period_end(now, &interval, count));
    let mut items = Vec::new();
    let mut lines = Vec::new();
    for (price, qty, metadata) in &spec.items {
        let si = ids::short_id("si");
        items.push(item_object(
            &si,
            &id,
            price,
            *qty,
            metadata,
            (now, end),
            now,
        ));
        let name = product_name(store, price);
        lines.push(LineSpec {
            amount: if spec.trial_end.is_some() {
                0
            } else {
                line_amount(prices::unit_amount(price), *qty)
            },
            quantity: *qty,
            description: if spec.trial_end.is_some() {
                format!("Trial period for {name}")
            } else {
                format!("{qty} × {name} (at {})", price_label(price))
            },
            price: Some(price.clone()),
            period: (now, end),
            proration: false,
            subscription: Some(id.clone()),
            subscription_item: Some(si),
            invoice_item: None,
            discountable: true,
        });
    }
    let discounts: Vec<String> = spec
        .coupons
        .iter()
        .map(|coupon| {
            coupons::apply(
                store,
                coupon,
                coupons::Target {
                    customer: Some(&spec.customer),
                    subscription: Some(&id),
                    checkout_session: spec.checkout_session.as_deref(),
                    invoice: None,
                },
                now,
            )
        })
        .collect();
    let cancel_at = if spec.cancel_at_period_end {
        Some(end)
    } else {
        spec.cancel_at
    };
    let mut sub = fixture(kinds::SUBSCRIPTION);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("subscription")),
        ("application", Value::Null),
        ("application_fee_percent", Value::Null),
        (
            "automatic_tax",
            json!({"disabled_reason": null, "enabled": false, "liability": null}),
        ),
        ("billing_cycle_anchor", json!(spec.trial_end.unwrap_or(now))),
        ("billing_cycle_anchor_config", Value::Null),
        (
            "billing_mode",
            json!({"flexible": {"proration_discounts": "included"}, "type": "flexible", "updated_at": null}),
        ),
        ("billing_schedules", json!([])),
        ("billing_thresholds", Value::Null),
        ("cancel_at", cancel_at.map_or(Value::Null, |c| json!(c))),
        ("cancel_at_period_end", json!(spec.cancel_at_period_end)),
        ("canceled_at", Value::Null),
        (
            "cancellation_details",
            json!({"comment": null, "feedback": null, "reason": null}),
        ),
        ("collection_method", json!(spec.collection_method)),
        ("created", json!(now)),
        ("currency", json!(currency)),
        ("customer", json!(spec.customer)),
        ("customer_account", Value::Null),
        (
            "days_until_due",
            spec.days_until_due.map_or(Value::Null, |d| json!(d)),
        ),
        (
            "default_payment_method",
            opt_str(spec.default_payment_method.as_deref()),
        ),
        ("default_source", Value::Null),
        ("default_tax_rates", json!([])),
        ("description", opt_str(spec.description.as_deref())),
        ("discounts", json!(discounts)),
        ("ended_at", Value::Null),
        (
            "invoice_settings",
            json!({"account_tax_ids": null, "custom_fields": null, "description": null, "footer": null, "issuer": {"type": "self"}}),
        ),
        (
            "items",
            json!({
                "object": "list",
                "data": items,
                "has_more": false,
                "total_count": spec.items.len(),
                "url": format!("/v1/subscription_items?subscription={id}"),
            }),
        ),
        ("latest_invoice", Value::Null),
        ("livemode", json!(store.livemode)),
        ("managed_payments", Value::Null),
        ("metadata", Value::Object(spec.metadata.clone())),
        ("next_pending_invoice_item_invoice", Value::Null),
        ("on_behalf_of", Value::Null),
        ("pause_collection", Value::Null),
        (
            "payment_settings",
            json!({"payment_method_options": null, "payment_method_types": null, "save_default_payment_method": "off"}),
        ),
        ("pending_invoice_item_interval", Value::Null),
        ("pending_setup_intent", Value::Null),
        ("pending_update", Value::Null),
        ("schedule", Value::Null),
        ("start_date", json!(now)),
        ("status", json!("incomplete")),
        ("test_clock", Value::Null),
        ("transfer_data", Value::Null),
        (
            "trial_end",
            spec.trial_end.map_or(Value::Null, |t| json!(t)),
        ),
        (
            "trial_settings",
            json!({"end_behavior": {"missing_payment_method": "create_invoice"}}),
        ),
        (
            "trial_start",
            spec.trial_end.map_or(Value::Null, |_| json!(now)),
        ),
    ] {
        set(&mut sub, key, value);
    }
    store.insert(kinds::SUBSCRIPTION, sub);

    // One-time items join the first invoice as invoice items.
    for (price, qty) in &spec.add_invoice_items {
        let line = LineSpec {
            amount: line_amount(prices::unit_amount(price), *qty),
            quantity: *qty,
            description: product_name(store, price),
            price: Some(price.clone()),
            period: (now, now),
            proration: false,
            subscription: Some(id.clone()),
            subscription_item: None,
            invoice_item: None,
            discountable: true,
        };
        insert_item(store, now, &spec.customer, &currency, &line, None);
    }
    let invoice = create_draft(
        store,
        now,
        &NewInvoice {
            customer: spec.customer.clone(),
            currency: currency.clone(),
            subscription: Some(id.clone()),
            billing_reason: "subscription_create".into(),
            collection_method: spec.collection_method.clone(),
            days_until_due: spec.days_until_due,
            lines,
            include_pending: true,
            discounts: discounts.clone(),
            period: (now, now),
            description: None,
            metadata: Map::new(),
            default_payment_method: None,
        },
    );
    finalize(store, now, &invoice);
    drop_used_once_discounts(store, &id, &discounts);
    if let Some(record) = store.get_live_mut(kinds::SUBSCRIPTION, &id) {
        set(&mut record.object, "latest_invoice", json!(invoice));
    }
    if charging {
        // A decline leaves the invoice open and the subscription incomplete.
        let _ = pay(store, now, &invoice, None);
    }
    settle_new(store, now, &id, &invoice);
    Ok(id)
}

/// Discounts from `once` coupons apply to one invoice only: they leave the subscription
/// once that invoice exists.
pub fn drop_used_once_discounts(store: &mut Store, subscription: &str, used: &[String]) {
    let once: Vec<String> = used
        .iter()
        .filter(|di| {
            coupons::coupon_of_discount(store, di)
                .is_some_and(|c| str_field(&c, "duration") == Some("once"))
        })
        .cloned()
        .collect();
    if once.is_empty() {
        return;
    }
    if let Some(record) = store.get_live_mut(kinds::SUBSCRIPTION, subscription) {
        let remaining: Vec<Value> = record
            .object
            .get("discounts")
            .and_then(Value::as_array)
            .map(|d| {
                d.iter()
                    .filter(|v| !once.iter().any(|o| Some(o.as_str()) == v.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        set(&mut record.object, "discounts", Value::Array(remaining));
    }
}

/// The status of a new subscription once its first invoice is settled (or not).
fn settle_new(store: &mut Store, now: i64, id: &str, invoice: &str) {
    let invoice_status = store
        .get(kinds::INVOICE, invoice)
        .and_then(|r| str_field(&r.object, "status").map(str::to_owned));
    let Some(record) = store.get_live_mut(kinds::SUBSCRIPTION, id) else {
        return;
    };
    let o = &mut record.object;
    if str_field(o, "status") != Some("incomplete") {
        return;
    }
    let send_invoice = str_field(o, "collection_method") == Some("send_invoice");
    if invoice_status.as_deref() == Some("paid") || send_invoice {
        let trialing = o
            .get("trial_end")
            .and_then(Value::as_i64)
            .is_some_and(|t| t > now);
        set(
            o,
            "status",
            json!(if trialing { "trialing" } else { "active" }),
        );
    }
}
