//! Draft invoices: the lines (with the customer's pending items), the discounts each line
//! takes, and the totals.

use serde_json::{Map, Value, json};

use crate::fixtures::fixture;
use crate::ids;
use crate::json::{id_of, int_field, metadata_of, opt_str, set, str_field};
use crate::list::list_object;
use crate::money::{share_of, sum_amounts};
use crate::objects::coupons;
use crate::objects::invoices::lines::{LineSpec, line_from_item, line_object, pending_items};
use crate::store::{Store, kinds};

/// What a new invoice is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInvoice {
    /// The customer.
    pub customer: String,
    /// Lower-case currency.
    pub currency: String,
    /// The subscription.
    pub subscription: Option<String>,
    /// `subscription_create`, `subscription_update`, `subscription_cycle`, `manual`...
    pub billing_reason: String,
    /// `charge_automatically` or `send_invoice`.
    pub collection_method: String,
    /// For `send_invoice`.
    pub days_until_due: Option<i64>,
    /// Lines besides pending invoice items.
    pub lines: Vec<LineSpec>,
    /// Whether the customer's pending invoice items (of this subscription, or of none) are
    /// pulled in.
    pub include_pending: bool,
    /// Discount ids.
    pub discounts: Vec<String>,
    /// Period (start, end).
    pub period: (i64, i64),
    /// Description.
    pub description: Option<String>,
    /// Metadata.
    pub metadata: Map<String, Value>,
    /// A payment method for this invoice only.
    pub default_payment_method: Option<String>,
}

/// Recomputes `subtotal`, discounts and `total` of an invoice from its lines.
pub fn compute_totals(store: &Store, invoice: &mut Value) {
    let Some(lines) = invoice
        .pointer_mut("/lines/data")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let subtotal = sum_amounts(lines.iter().map(|l| int_field(l, "amount")));
    for line in lines.iter_mut() {
        set(line, "discount_amounts", json!([]));
    }
    let discount_ids: Vec<String> = invoice
        .get("discounts")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|v| id_of(v).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut total_discounts = Vec::new();
    let mut total_discount: i64 = 0;
    for discount in &discount_ids {
        let Some(coupon) = coupons::coupon_of_discount(store, discount) else {
            continue;
        };
        let Some(lines) = invoice
            .pointer_mut("/lines/data")
            .and_then(Value::as_array_mut)
        else {
            break;
        };
        // What each discountable line still owes after earlier discounts.
        let remaining: Vec<i64> = lines
            .iter()
            .map(|l| {
                if l.get("discountable").and_then(Value::as_bool) != Some(true) {
                    return 0;
                }
                let taken: i64 = l
                    .get("discount_amounts")
                    .and_then(Value::as_array)
                    .map(|a| sum_amounts(a.iter().map(|d| int_field(d, "amount"))))
                    .unwrap_or(0);
                int_field(l, "amount").saturating_sub(taken).max(0)
            })
            .collect();
        let base = sum_amounts(remaining.iter().copied());
        let amount = coupons::discount_amount(&coupon, base);
        if amount == 0 {
            continue;
        }
        // Spread the discount over the lines in proportion, the rest on the last one.
        let last = remaining.iter().rposition(|r| *r > 0);
        let mut given: i64 = 0;
        for (index, line) in lines.iter_mut().enumerate() {
            if remaining[index] == 0 {
                continue;
            }
            let share = if Some(index) == last {
                amount - given
            } else {
                share_of(amount, remaining[index], base)
            };
            given = given.saturating_add(share);
            if let Some(amounts) = line
                .get_mut("discount_amounts")
                .and_then(Value::as_array_mut)
            {
                amounts.push(json!({"amount": share, "discount": discount}));
            }
        }
        total_discount = total_discount.saturating_add(amount);
        total_discounts.push(json!({"amount": amount, "discount": discount}));
    }
    let total = subtotal.saturating_sub(total_discount);
    for (key, value) in [
        ("subtotal", json!(subtotal)),
        ("subtotal_excluding_tax", json!(subtotal)),
        ("total", json!(total)),
        ("total_excluding_tax", json!(total)),
        ("total_discount_amounts", json!(total_discounts)),
    ] {
        set(invoice, key, value);
    }
    if str_field(invoice, "status") == Some("draft") {
        let starting = int_field(invoice, "starting_balance");
        let due = total.saturating_add(starting).max(0);
        set(invoice, "amount_due", json!(due));
        set(invoice, "amount_remaining", json!(due));
    }
}

/// Stores a draft invoice and returns its id.
pub fn create_draft(store: &mut Store, now: i64, spec: &NewInvoice) -> String {
    let id = ids::long_id("in");
    let mut lines = spec.lines.clone();
    if spec.include_pending {
        lines.extend(take_pending_items(store, spec, &id));
    }
    let livemode = store.livemode;
    let line_objects: Vec<Value> = lines
        .iter()
        .map(|l| line_object(l, &id, &spec.currency, livemode))
        .collect();
    let customer = store
        .get(kinds::CUSTOMER, &spec.customer)
        .map(|r| r.object.clone())
        .unwrap_or_else(|| json!({}));
    let parent = parent_of(store, spec);
    let mut invoice = draft_object(&id, spec, now, livemode, line_objects, &customer, parent);
    if spec.collection_method == "send_invoice" {
        let days = spec.days_until_due.unwrap_or(30);
        set(&mut invoice, "due_date", json!(now + days * 86_400));
    }
    compute_totals(store, &mut invoice);
    let mut internal = Map::new();
    if let Some(sub) = &spec.subscription {
        internal.insert("subscription".into(), json!(sub));
    }
    store.insert_with(kinds::INVOICE, invoice, internal);
    id
}

/// Moves the customer's pending invoice items (of the invoice's subscription, or of none)
/// onto invoice `id`; returns their lines.
fn take_pending_items(store: &mut Store, spec: &NewInvoice, id: &str) -> Vec<LineSpec> {
    let mut lines = Vec::new();
    for item in pending_items(store, &spec.customer, spec.subscription.as_deref()) {
        if let Some(line) = line_from_item(store, &item) {
            lines.push(line);
        }
        if let Some(record) = store.get_live_mut(kinds::INVOICE_ITEM, &item) {
            set(&mut record.object, "invoice", json!(id));
        }
    }
    lines
}

/// The `parent` of an invoice: its subscription (with the subscription's metadata).
fn parent_of(store: &Store, spec: &NewInvoice) -> Value {
    match &spec.subscription {
        Some(sub) => {
            let metadata = store
                .get(kinds::SUBSCRIPTION, sub)
                .map_or_else(|| json!({}), |r| json!(metadata_of(&r.object)));
            json!({
                "quote_details": null,
                "subscription_details": {"metadata": metadata, "subscription": sub},
                "type": "subscription_details",
            })
        }
        None => Value::Null,
    }
}

/// A draft invoice object: its lines, the customer as it is now, no payment yet.
fn draft_object(
    id: &str,
    spec: &NewInvoice,
    now: i64,
    livemode: bool,
    line_objects: Vec<Value>,
    customer: &Value,
    parent: Value,
) -> Value {
    let mut invoice = fixture(kinds::INVOICE);
    // The fixture predates this version, where an invoice names its subscription only in
    // `parent.subscription_details`.
    if let Some(map) = invoice.as_object_mut() {
        map.remove("subscription");
    }
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("invoice")),
        ("account_country", json!("US")),
        ("account_name", json!("Stripe Emulator")),
        ("account_tax_ids", Value::Null),
        ("amount_due", json!(0)),
        ("amount_overpaid", json!(0)),
        ("amount_paid", json!(0)),
        ("amount_remaining", json!(0)),
        ("amount_shipping", json!(0)),
        ("application", Value::Null),
        ("attempt_count", json!(0)),
        ("attempted", json!(false)),
        ("auto_advance", json!(true)),
        (
            "automatic_tax",
            json!({"disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null}),
        ),
        ("automatically_finalizes_at", Value::Null),
        ("billing_reason", json!(spec.billing_reason)),
        ("collection_method", json!(spec.collection_method)),
        ("confirmation_secret", Value::Null),
        ("created", json!(now)),
        ("currency", json!(spec.currency)),
        ("custom_fields", Value::Null),
        ("customer", json!(spec.customer)),
        ("customer_account", Value::Null),
        (
            "customer_address",
            customer.get("address").cloned().unwrap_or(Value::Null),
        ),
        (
            "customer_email",
            customer.get("email").cloned().unwrap_or(Value::Null),
        ),
        (
            "customer_name",
            customer.get("name").cloned().unwrap_or(Value::Null),
        ),
        (
            "customer_phone",
            customer.get("phone").cloned().unwrap_or(Value::Null),
        ),
        ("customer_shipping", Value::Null),
        (
            "customer_tax_exempt",
            customer.get("tax_exempt").cloned().unwrap_or(json!("none")),
        ),
        ("customer_tax_ids", json!([])),
        (
            "default_payment_method",
            opt_str(spec.default_payment_method.as_deref()),
        ),
        ("default_source", Value::Null),
        ("default_tax_rates", json!([])),
        ("description", opt_str(spec.description.as_deref())),
        ("discounts", json!(spec.discounts)),
        ("due_date", Value::Null),
        ("effective_at", Value::Null),
        ("ending_balance", Value::Null),
        ("footer", Value::Null),
        ("from_invoice", Value::Null),
        ("hosted_invoice_url", Value::Null),
        ("invoice_pdf", Value::Null),
        ("issuer", json!({"type": "self"})),
        ("last_finalization_error", Value::Null),
        ("latest_revision", Value::Null),
        (
            "lines",
            json!({
                "object": "list",
                "data": line_objects,
                "has_more": false,
                "url": format!("/v1/invoices/{id}/lines"),
            }),
        ),
        ("livemode", json!(livemode)),
        ("metadata", Value::Object(spec.metadata.clone())),
        ("next_payment_attempt", Value::Null),
        ("number", Value::Null),
        ("on_behalf_of", Value::Null),
        ("parent", parent),
        (
            "payment_settings",
            json!({"default_mandate": null, "payment_method_options": null, "payment_method_types": null}),
        ),
        (
            "payments",
            list_object(
                &format!("/v1/invoice_payments?invoice={id}"),
                Vec::new(),
                false,
            ),
        ),
        ("period_end", json!(spec.period.1)),
        ("period_start", json!(spec.period.0)),
        ("post_payment_credit_notes_amount", json!(0)),
        ("pre_payment_credit_notes_amount", json!(0)),
        ("receipt_number", Value::Null),
        ("rendering", Value::Null),
        ("shipping_cost", Value::Null),
        ("shipping_details", Value::Null),
        ("starting_balance", json!(0)),
        ("statement_descriptor", Value::Null),
        ("status", json!("draft")),
        (
            "status_transitions",
            json!({"finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null}),
        ),
        ("test_clock", Value::Null),
        ("total_pretax_credit_amounts", json!([])),
        ("total_taxes", json!([])),
        ("webhooks_delivered_at", Value::Null),
    ] {
        set(&mut invoice, key, value);
    }
    invoice
}
