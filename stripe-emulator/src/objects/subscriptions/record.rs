//! A subscription as stored: its lookup, its items and current period, billing periods, and
//! canceling every subscription of a customer.

use chrono::{Months, TimeZone, Utc};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::json::{int_field, set, set_in, str_field};
use crate::objects::invoices::record::void_open_of_subscription;
use crate::store::{Record, Store, kinds};

/// How subscriptions are named in "No such ..." messages.
pub const LABEL: &str = "subscription";

/// How subscription items are named in "No such ..." messages.
pub const ITEM_LABEL: &str = "subscription_item";

/// The subscription `id`, or `resource_missing` on `param`.
pub fn require<'s>(store: &'s Store, id: &str, param: &str) -> ApiResult<&'s Record> {
    store
        .get_live(kinds::SUBSCRIPTION, id)
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, param))
}

/// The end of a billing period of `count` × `interval` starting at `start`.
pub fn period_end(start: i64, interval: &str, count: i64) -> i64 {
    let count = count.max(1);
    let months = match interval {
        "day" => return start + count * 86_400,
        "week" => return start + count * 7 * 86_400,
        "year" => count * 12,
        _ => count,
    };
    Utc.timestamp_opt(start, 0)
        .single()
        .zip(u32::try_from(months).ok())
        .and_then(|(t, m)| t.checked_add_months(Months::new(m)))
        .map_or(start + months * 30 * 86_400, |t| t.timestamp())
}

/// The items of a subscription object.
pub fn items_of(sub: &Value) -> Vec<Value> {
    sub.pointer("/items/data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The current period (start, end) of a subscription (of its first item).
pub fn current_period(sub: &Value) -> (i64, i64) {
    let items = items_of(sub);
    let first = items.first();
    (
        first.map_or(0, |i| int_field(i, "current_period_start")),
        first.map_or(0, |i| int_field(i, "current_period_end")),
    )
}

/// Cancels every subscription of a customer now (as deleting the customer does).
pub fn cancel_all_of_customer(store: &mut Store, now: i64, customer: &str) {
    let ids: Vec<String> = store
        .live_where(kinds::SUBSCRIPTION, &[("customer", customer)])
        .filter(|r| {
            !matches!(
                str_field(&r.object, "status"),
                Some("canceled" | "incomplete_expired")
            )
        })
        .filter_map(|r| str_field(&r.object, "id").map(str::to_owned))
        .collect();
    for id in ids {
        void_open_of_subscription(store, now, &id);
        if let Some(record) = store.get_live_mut(kinds::SUBSCRIPTION, &id) {
            let o = &mut record.object;
            set(o, "status", json!("canceled"));
            set(o, "canceled_at", json!(now));
            set(o, "ended_at", json!(now));
            set(o, "cancel_at_period_end", json!(false));
            set_in(
                o,
                &["cancellation_details", "reason"],
                json!("cancellation_requested"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        // 2025-01-31 00:00:00 UTC
        let start = 1_738_281_600;
        assert_eq!(period_end(start, "day", 3), start + 3 * 86_400);
        assert_eq!(period_end(start, "week", 2), start + 14 * 86_400);
        // Month ends clamp: Jan 31 + 1 month = Feb 28.
        assert_eq!(period_end(start, "month", 1), 1_740_700_800);
        assert_eq!(period_end(start, "year", 1), 1_769_817_600);
    }
}
