//! The refunds of a charge, as its expanded `refunds` list shows them.

use serde_json::Value;

use crate::list::list_object;
use crate::store::{Store, kinds};

/// How many refunds a charge shows in its expanded `refunds` list.
const EMBEDDED_REFUNDS: usize = 10;

/// The `refunds` list of a charge, newest first, as `expand[]=refunds` shows it.
pub fn of_charge(store: &Store, charge: &str) -> Value {
    let mut refunds = store
        .live_where(kinds::REFUND, &[("charge", charge)])
        .map(|r| r.object.clone());
    let data: Vec<Value> = refunds.by_ref().take(EMBEDDED_REFUNDS).collect();
    let has_more = refunds.next().is_some();
    list_object(&format!("/v1/charges/{charge}/refunds"), data, has_more)
}
