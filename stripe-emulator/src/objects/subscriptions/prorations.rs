//! Prorations: the share of an amount for the time left in a period, and the pending
//! invoice item that bills it.

use serde_json::Value;

use crate::objects::invoices::lines::{LineSpec, insert_item};
use crate::store::Store;

/// `round(amount × part / whole)` without overflow.
pub fn prorate(amount: i64, part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    let magnitude = (i128::from(amount).abs() * i128::from(part) * 2 + i128::from(whole))
        / (i128::from(whole) * 2);
    let value = i64::try_from(magnitude).unwrap_or(0);
    if amount < 0 { -value } else { value }
}

#[expect(
    clippy::too_many_arguments,
    reason = "mirrors the Stripe parameters one to one"
)]
pub fn add_proration(
    store: &mut Store,
    now: i64,
    customer: &str,
    currency: &str,
    subscription: &str,
    si: &str,
    price: &Value,
    quantity: i64,
    amount: i64,
    description: String,
    period: (i64, i64),
) {
    let line = LineSpec {
        amount,
        quantity,
        description,
        price: Some(price.clone()),
        period,
        proration: true,
        subscription: Some(subscription.to_owned()),
        subscription_item: Some(si.to_owned()),
        invoice_item: None,
        discountable: false,
    };
    insert_item(store, now, customer, currency, &line, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proration_rounding() {
        assert_eq!(prorate(2000, 15, 30), 1000);
        assert_eq!(prorate(1000, 1, 3), 333);
        assert_eq!(prorate(1000, 2, 3), 667);
        assert_eq!(prorate(1000, 5, 0), 0);
        assert_eq!(prorate(-1000, 1, 2), -500);
    }
}
