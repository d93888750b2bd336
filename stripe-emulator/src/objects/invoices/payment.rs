//! Finalizing and paying invoices: numbering, the customer's balance, the payment intent for
//! the amount due, and charging it with the invoice's payment method.

use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::ids;
use crate::json::{int_field, set, set_in, str_field};
use crate::money::minimum_amount;
use crate::objects::invoices::draft::compute_totals;
use crate::objects::invoices::record::{intent_of, stored};
use crate::objects::payment_intents::{self, NewIntent};
use crate::store::{Store, kinds};

/// Finalizes a draft: numbers it, applies the customer's balance, and either marks it paid
/// (nothing due) or opens it with a payment intent for the amount due.
pub fn finalize(store: &mut Store, now: i64, id: &str) {
    let Ok(mut invoice) = stored(store, id, "id") else {
        return;
    };
    if str_field(&invoice, "status") != Some("draft") {
        return;
    }
    // Announce a draft made in this same request as the draft it was (`invoice.created`),
    // after its new items, before announcing its finalization.
    let items: Vec<String> = store
        .live_where(kinds::INVOICE_ITEM, &[("invoice", id)])
        .filter_map(|r| str_field(&r.object, "id").map(str::to_owned))
        .collect();
    for item in items {
        store.flush_change(kinds::INVOICE_ITEM, &item);
    }
    store.flush_change(kinds::INVOICE, id);
    let customer = str_field(&invoice, "customer")
        .unwrap_or_default()
        .to_owned();
    let currency = str_field(&invoice, "currency").unwrap_or("usd").to_owned();
    let (starting, number) = match store.get_live_mut(kinds::CUSTOMER, &customer) {
        Some(record) => {
            let o = &mut record.object;
            let sequence = o
                .get("next_invoice_sequence")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            set(o, "next_invoice_sequence", json!(sequence + 1));
            let prefix = str_field(o, "invoice_prefix")
                .unwrap_or("EMULATOR")
                .to_owned();
            (int_field(o, "balance"), format!("{prefix}-{sequence:04}"))
        }
        None => (0, format!("EMULATOR-{}", ids::random_alnum(4))),
    };
    set(&mut invoice, "status", json!("open"));
    set(&mut invoice, "starting_balance", json!(starting));
    compute_totals(store, &mut invoice);
    let total = int_field(&invoice, "total");
    let owed = total.saturating_add(starting);
    let minimum = minimum_amount(&currency);
    let (due, ending) = if owed <= 0 {
        (0, owed)
    } else if owed < minimum {
        // Too small to charge: carried over to the customer's balance.
        (0, owed)
    } else {
        (owed, 0)
    };
    for (key, value) in [
        ("number", json!(number)),
        ("amount_due", json!(due)),
        ("amount_remaining", json!(due)),
        ("ending_balance", json!(ending)),
        ("effective_at", json!(now)),
        ("webhooks_delivered_at", json!(now)),
    ] {
        set(&mut invoice, key, value);
    }
    set_in(
        &mut invoice,
        &["status_transitions", "finalized_at"],
        json!(now),
    );
    if let Some(record) = store.get_live_mut(kinds::CUSTOMER, &customer) {
        set(&mut record.object, "balance", json!(ending));
    }
    let mut intent = None;
    if due == 0 {
        set(&mut invoice, "status", json!("paid"));
        set(&mut invoice, "auto_advance", json!(false));
        set_in(&mut invoice, &["status_transitions", "paid_at"], json!(now));
    } else {
        let description = match str_field(&invoice, "billing_reason") {
            Some("subscription_create") => "Subscription creation",
            Some("subscription_update") => "Subscription update",
            Some("subscription_cycle") => "Subscription cycle",
            _ => "Invoice payment",
        };
        let mut spec = NewIntent::card(due, &currency);
        spec.customer = Some(customer.clone());
        spec.description = Some(description.to_owned());
        spec.invoice = Some(id.to_owned());
        let pi = payment_intents::insert(store, now, &spec);
        let secret = store
            .get(kinds::PAYMENT_INTENT, &pi)
            .and_then(|r| str_field(&r.object, "client_secret").map(str::to_owned));
        set(
            &mut invoice,
            "confirmation_secret",
            json!({"client_secret": secret, "type": "payment_intent"}),
        );
        let payment = json!({
            "id": ids::long_id("inpay"),
            "object": "invoice_payment",
            "amount_paid": null,
            "amount_requested": due,
            "created": now,
            "currency": currency,
            "invoice": id,
            "is_default": true,
            "livemode": store.livemode,
            "payment": {"type": "payment_intent", "payment_intent": pi},
            "status": "open",
            "status_transitions": {"canceled_at": null, "paid_at": null},
        });
        set_in(&mut invoice, &["payments", "data"], json!([payment]));
        intent = Some(pi);
    }
    if let Some(record) = store.get_live_mut(kinds::INVOICE, id) {
        record.object = invoice;
        if let Some(pi) = &intent {
            record.internal.insert("payment_intent".into(), json!(pi));
        }
    }
    // `payment_intent.created` and `invoice.finalized` show the open invoice, before any
    // payment in this same request.
    if let Some(pi) = &intent {
        store.flush_change(kinds::PAYMENT_INTENT, pi);
    }
    store.flush_change(kinds::INVOICE, id);
}

/// The payment method an invoice is charged with: its own, its subscription's default, or
/// its customer's default.
pub fn payment_method_for(store: &Store, invoice: &Value) -> Option<String> {
    if let Some(pm) = str_field(invoice, "default_payment_method") {
        return Some(pm.to_owned());
    }
    let subscription = invoice
        .pointer("/parent/subscription_details/subscription")
        .and_then(Value::as_str);
    if let Some(sub) = subscription
        && let Some(record) = store.get(kinds::SUBSCRIPTION, sub)
        && let Some(pm) = str_field(&record.object, "default_payment_method")
    {
        return Some(pm.to_owned());
    }
    let customer = str_field(invoice, "customer")?;
    store
        .get_live(kinds::CUSTOMER, customer)?
        .object
        .pointer("/invoice_settings/default_payment_method")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Attempts to pay an open invoice with `pm` (or the payment method it would be charged
/// with). `Ok(true)`: paid; `Ok(false)`: no payment method to charge; `Err`: a 402 decline
/// (the invoice stays open).
pub fn pay(store: &mut Store, now: i64, id: &str, pm: Option<&str>) -> ApiResult<bool> {
    let invoice = stored(store, id, "id")?;
    if str_field(&invoice, "status") == Some("paid") {
        return Ok(true);
    }
    let Some(pm) = pm
        .map(str::to_owned)
        .or_else(|| payment_method_for(store, &invoice))
    else {
        return Ok(false);
    };
    let Some(pi) = intent_of(store, id) else {
        return Ok(false);
    };
    if let Some(record) = store.get_live_mut(kinds::INVOICE, id) {
        let o = &mut record.object;
        set(o, "attempted", json!(true));
        set(o, "attempt_count", json!(int_field(o, "attempt_count") + 1));
    }
    if let Some(record) = store.get_live_mut(kinds::PAYMENT_INTENT, &pi) {
        set(&mut record.object, "payment_method", json!(pm));
        set(&mut record.object, "status", json!("requires_confirmation"));
    }
    let result = payment_intents::confirm_stored(store, now, &pi).map(|_| true);
    if result.is_err() {
        // `invoice.payment_failed` follows the payment's `charge.failed` and
        // `payment_intent.payment_failed`, as in Stripe.
        store.touch(kinds::INVOICE, id);
    }
    result
}
