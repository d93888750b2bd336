//! The account's balance, computed from its charges and refunds.
//!
//! Simplified from Stripe: no fees (Stripe takes its processing fee before funds reach the
//! balance), no payouts, and funds of a card charge move from `pending` to `available`
//! [`AVAILABLE_AFTER`] after the charge (Stripe's standard two-day schedule), while a
//! refund is taken from `available` at once, as Stripe does (so `available` can go
//! negative).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::fixtures::fixture;
use crate::json::{int_field, set, str_field};
use crate::store::{Store, kinds};

/// Seconds after a charge when its funds become available (two days).
pub const AVAILABLE_AFTER: i64 = 2 * 86_400;

/// Available and pending amounts of one currency.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Funds {
    available: i64,
    pending: i64,
}

/// The `balance` object of the account at `now`: one entry per currency it has charged in
/// (`usd` with zeros when it has none), sorted by currency.
pub fn balance(store: &Store, now: i64) -> Value {
    let mut funds: BTreeMap<String, Funds> = BTreeMap::new();
    store.scan(kinds::CHARGE, |record| {
        let charge = &record.object;
        if str_field(charge, "status") != Some("succeeded") {
            return;
        }
        let currency = str_field(charge, "currency").unwrap_or("usd").to_owned();
        let captured = int_field(charge, "amount_captured");
        let entry = funds.entry(currency).or_default();
        if int_field(charge, "created") + AVAILABLE_AFTER <= now {
            entry.available = entry.available.saturating_add(captured);
        } else {
            entry.pending = entry.pending.saturating_add(captured);
        }
    });
    store.scan(kinds::REFUND, |record| {
        let refund = &record.object;
        if !matches!(
            str_field(refund, "status"),
            Some("succeeded" | "pending" | "requires_action")
        ) {
            return;
        }
        let currency = str_field(refund, "currency").unwrap_or("usd").to_owned();
        let entry = funds.entry(currency).or_default();
        entry.available = entry.available.saturating_sub(int_field(refund, "amount"));
    });
    if funds.is_empty() {
        funds.insert("usd".into(), Funds::default());
    }
    let side = |pick: fn(&Funds) -> i64| -> Value {
        funds
            .iter()
            .map(|(currency, f)| {
                json!({"amount": pick(f), "currency": currency, "source_types": {"card": pick(f)}})
            })
            .collect()
    };
    let mut object = fixture("balance");
    if let Some(map) = object.as_object_mut() {
        // Only Connect platforms have reserved funds.
        map.remove("connect_reserved");
    }
    set(&mut object, "object", json!("balance"));
    set(&mut object, "available", side(|f| f.available));
    set(&mut object, "pending", side(|f| f.pending));
    set(&mut object, "livemode", json!(store.livemode));
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_pending_then_available_and_refunds_come_off_available() {
        let mut store = Store::new(false);
        assert_eq!(
            balance(&store, 0)["available"],
            json!([{"amount": 0, "currency": "usd", "source_types": {"card": 0}}])
        );
        for (id, created, status) in [
            ("ch_1", 0, "succeeded"),
            ("ch_2", 100, "succeeded"),
            ("ch_3", 100, "failed"),
        ] {
            store.insert(
                kinds::CHARGE,
                json!({"id": id, "created": created, "status": status, "currency": "eur", "amount_captured": 1000}),
            );
        }
        store.insert(
            kinds::REFUND,
            json!({"id": "re_1", "status": "succeeded", "currency": "eur", "amount": 300}),
        );
        let b = balance(&store, AVAILABLE_AFTER + 50);
        assert_eq!(b["available"][0]["amount"], 700);
        assert_eq!(b["pending"][0]["amount"], 1000);
        assert_eq!(b["pending"][0]["currency"], "eur");
        assert!(b.get("connect_reserved").is_none());
    }
}
