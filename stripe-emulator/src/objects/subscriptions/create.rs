//! Creating a subscription (validated by the caller): its items, discounts and first invoice,
//! charged as `payment_behavior` says, and the status that leaves it in.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, ErrorType};
use crate::ids;
use crate::json::{set, str_field};
use crate::money::line_amount;
use crate::objects::coupons;
use crate::objects::invoices::draft::{NewInvoice, create_draft};
use crate::objects::invoices::lines::{LineSpec, insert_item};
use crate::objects::invoices::payment::{finalize, pay};
use crate::objects::payment_methods;
use crate::objects::prices;
use crate::objects::subscriptions::items::{item_object, price_label, product_name};
use crate::objects::subscriptions::record::period_end;
use crate::objects::subscriptions::spec::{NewSubscription, subscription_object};
use crate::store::{Store, kinds};

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
        check_chargeable(store, spec)?;
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
    let (items, lines) = items_and_lines(store, now, spec, &id, end);
    let discounts = apply_coupons(store, now, spec, &id);
    let sub = subscription_object(
        store.livemode,
        now,
        spec,
        &id,
        &currency,
        end,
        items,
        &discounts,
    );
    store.insert(kinds::SUBSCRIPTION, sub);
    add_invoice_items(store, now, spec, &id, &currency);
    let invoice = bill_first_invoice(store, now, spec, &id, &currency, lines, &discounts);
    if charging {
        // A decline leaves the invoice open and the subscription incomplete.
        let _ = pay(store, now, &invoice, None);
    }
    settle_new(store, now, &id, &invoice);
    Ok(id)
}

/// With `payment_behavior=error_if_incomplete`: the error the first charge would end in
/// (no payment method, or a card that declines), before anything is made.
fn check_chargeable(store: &Store, spec: &NewSubscription) -> ApiResult<()> {
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
    Ok(())
}

/// The item objects of a new subscription, and the lines of its first invoice.
fn items_and_lines(
    store: &Store,
    now: i64,
    spec: &NewSubscription,
    id: &str,
    end: i64,
) -> (Vec<Value>, Vec<LineSpec>) {
    let mut items = Vec::new();
    let mut lines = Vec::new();
    for (price, qty, metadata) in &spec.items {
        let si = ids::short_id("si");
        items.push(item_object(&si, id, price, *qty, metadata, (now, end), now));
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
            subscription: Some(id.to_owned()),
            subscription_item: Some(si),
            invoice_item: None,
            discountable: true,
        });
    }
    (items, lines)
}

/// Applies the subscription's coupons (each a new discount); returns the discount ids.
fn apply_coupons(store: &mut Store, now: i64, spec: &NewSubscription, id: &str) -> Vec<String> {
    spec.coupons
        .iter()
        .map(|coupon| {
            coupons::apply(
                store,
                coupon,
                coupons::Target {
                    customer: Some(&spec.customer),
                    subscription: Some(id),
                    checkout_session: spec.checkout_session.as_deref(),
                    invoice: None,
                },
                now,
            )
        })
        .collect()
}

/// One-time items join the first invoice as invoice items.
fn add_invoice_items(
    store: &mut Store,
    now: i64,
    spec: &NewSubscription,
    id: &str,
    currency: &str,
) {
    for (price, qty) in &spec.add_invoice_items {
        let line = LineSpec {
            amount: line_amount(prices::unit_amount(price), *qty),
            quantity: *qty,
            description: product_name(store, price),
            price: Some(price.clone()),
            period: (now, now),
            proration: false,
            subscription: Some(id.to_owned()),
            subscription_item: None,
            invoice_item: None,
            discountable: true,
        };
        insert_item(store, now, &spec.customer, currency, &line, None);
    }
}

/// The first invoice (`subscription_create`): drafted with the pending items, finalized,
/// and set as the subscription's `latest_invoice`. Returns its id.
fn bill_first_invoice(
    store: &mut Store,
    now: i64,
    spec: &NewSubscription,
    id: &str,
    currency: &str,
    lines: Vec<LineSpec>,
    discounts: &[String],
) -> String {
    let invoice = create_draft(
        store,
        now,
        &NewInvoice {
            customer: spec.customer.clone(),
            currency: currency.to_owned(),
            subscription: Some(id.to_owned()),
            billing_reason: "subscription_create".into(),
            collection_method: spec.collection_method.clone(),
            days_until_due: spec.days_until_due,
            lines,
            include_pending: true,
            discounts: discounts.to_vec(),
            period: (now, now),
            description: None,
            metadata: Map::new(),
            default_payment_method: None,
        },
    );
    finalize(store, now, &invoice);
    drop_used_once_discounts(store, id, discounts);
    if let Some(record) = store.get_live_mut(kinds::SUBSCRIPTION, id) {
        set(&mut record.object, "latest_invoice", json!(invoice));
    }
    invoice
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
