//! What a subscription update bills: the items' changes, prorations for the time left in
//! the period, and the invoice made at once for a new period or `always_invoice`.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, ErrorType};
use crate::ids;
use crate::json::{int_field, set, str_field};
use crate::money::line_amount;
use crate::objects::invoices::draft::{NewInvoice, create_draft};
use crate::objects::invoices::lines::LineSpec;
use crate::objects::invoices::payment::{finalize, pay, payment_method_for};
use crate::objects::invoices::record::format_date;
use crate::objects::payment_methods::PmRef;
use crate::objects::prices;
use crate::objects::subscriptions::create::{drop_used_once_discounts, predicted_decline};
use crate::objects::subscriptions::items::{price_label, product_name, quantity_label};
use crate::objects::subscriptions::prorations::{add_proration, prorate};
use crate::objects::subscriptions::record::{current_period, period_end};
use crate::resources::subscriptions::update_request::{UpdateRequest, UpdatedItem};
use crate::store::{Store, kinds};

/// One item change of an update: the item before and after (price, quantity).
pub struct Change {
    si: String,
    before: Option<(Value, i64)>,
    after: Option<(Value, i64)>,
}

/// An item after the update, its price stored: id, price, quantity, metadata.
pub type ResolvedItem = (String, Value, i64, Map<String, Value>);

/// What an update bills for.
pub struct Billing {
    /// The subscription is still trialing after the update.
    pub trialing_after: bool,
    /// The current period before the update.
    pub period_start: i64,
    pub old_period_end: i64,
    /// A new period starts now (interval change, anchor reset, trial end).
    pub resets_period: bool,
    /// An invoice is made now.
    pub will_invoice: bool,
}

impl Billing {
    pub fn of(request: &UpdateRequest<'_>) -> Self {
        let ends_trial = matches!(request.trial, Some(None)) && request.status == "trialing";
        let trialing_after = request.status == "trialing" && !ends_trial;
        let (period_start, old_period_end) = current_period(&request.current);
        let resets_period =
            !trialing_after && (request.interval_changed || request.anchor_now || ends_trial);
        let will_invoice = !trialing_after
            && (resets_period
                || (request.items_changed && request.proration_behavior == "always_invoice"));
        Billing {
            trialing_after,
            period_start,
            old_period_end,
            resets_period,
            will_invoice,
        }
    }

    /// The period of the items after the update.
    pub fn item_period(&self, request: &UpdateRequest<'_>, now: i64) -> (i64, i64) {
        let (interval, count) = request
            .new_interval
            .clone()
            .unwrap_or_else(|| ("month".into(), 1));
        if self.resets_period {
            (now, period_end(now, &interval, count))
        } else {
            let trial_end = match request.trial {
                Some(Some(ts)) => Some(ts),
                _ => None,
            };
            (self.period_start, trial_end.unwrap_or(self.old_period_end))
        }
    }
}

/// With `payment_behavior=error_if_incomplete`, the 402 the invoice of the update would
/// get, before anything changes.
pub fn check_payment(store: &Store, id: &str, request: &UpdateRequest<'_>) -> ApiResult<()> {
    let pm = match &request.default_pm {
        Some(Some(PmRef::Stored(pm))) => Some(pm.clone()),
        Some(Some(PmRef::Token(card))) => {
            if let Some(decline) = card.decline {
                return Err(ApiError::new(402, ErrorType::Card, decline.message)
                    .with_code(decline.code)
                    .with_decline_code(decline.decline_code));
            }
            None
        }
        _ => payment_method_for(
            store,
            &json!({"customer": request.customer, "parent": {"subscription_details": {"subscription": id}}}),
        ),
    };
    if let Some(pm) = pm
        && let Some(error) = predicted_decline(store, &pm)
    {
        return Err(error);
    }
    Ok(())
}

/// The item (price, quantity) `si` had before the update.
fn before_of(old_items: &[Value], si: &str) -> Option<(Value, i64)> {
    old_items
        .iter()
        .find(|i| str_field(i, "id") == Some(si))
        .map(|i| {
            (
                i.get("price").cloned().unwrap_or_default(),
                int_field(i, "quantity"),
            )
        })
}

/// Stores inline prices and gives new items their ids: the changes to bill for, and the
/// items after the update.
pub fn resolve_items(
    store: &mut Store,
    now: i64,
    old_items: &[Value],
    new_items: Vec<UpdatedItem>,
    removed: Vec<UpdatedItem>,
) -> (Vec<Change>, Vec<ResolvedItem>) {
    let mut changes = Vec::new();
    let mut resolved_items = Vec::new();
    for (si, price, qty, meta, price_changed) in new_items {
        let before = before_of(old_items, &si);
        let price = price.resolve(store, now);
        let si = if si.is_empty() {
            ids::short_id("si")
        } else {
            si
        };
        let changed = before.as_ref().is_none_or(|(old_price, old_qty)| {
            (price_changed && str_field(old_price, "id") != str_field(&price, "id"))
                || *old_qty != qty
        });
        if changed {
            changes.push(Change {
                si: si.clone(),
                before: before.clone(),
                after: Some((price.clone(), qty)),
            });
        }
        resolved_items.push((si, price, qty, meta));
    }
    for (si, ..) in removed {
        let before = before_of(old_items, &si);
        changes.push(Change {
            si,
            before,
            after: None,
        });
    }
    (changes, resolved_items)
}

/// Prorations for the time left in the current period: a credit for each changed item as
/// it was, a charge for it as it is (unless a new period starts now).
pub fn bill_prorations(
    store: &mut Store,
    now: i64,
    id: &str,
    request: &UpdateRequest<'_>,
    billing: &Billing,
    changes: &[Change],
) {
    let (customer, currency) = (&request.customer, &request.currency);
    let proration_date = request.proration_date;
    let (period_start, old_period_end) = (billing.period_start, billing.old_period_end);
    let whole = old_period_end - period_start;
    let left = (old_period_end - proration_date).clamp(0, whole.max(0));
    let date = format_date(proration_date);
    for change in changes {
        if let Some((price, qty)) = &change.before {
            let amount = -prorate(line_amount(prices::unit_amount(price), *qty), left, whole);
            if amount != 0 {
                add_proration(
                    store,
                    now,
                    customer,
                    currency,
                    id,
                    &change.si,
                    price,
                    *qty,
                    amount,
                    format!(
                        "Unused time on {} after {date}",
                        quantity_label(store, price, *qty)
                    ),
                    (proration_date, old_period_end),
                );
            }
        }
        if !billing.resets_period
            && let Some((price, qty)) = &change.after
        {
            let amount = prorate(line_amount(prices::unit_amount(price), *qty), left, whole);
            if amount != 0 {
                add_proration(
                    store,
                    now,
                    customer,
                    currency,
                    id,
                    &change.si,
                    price,
                    *qty,
                    amount,
                    format!(
                        "Remaining time on {} after {date}",
                        quantity_label(store, price, *qty)
                    ),
                    (proration_date, old_period_end),
                );
            }
        }
    }
}

/// Invoices the update now (the new period's items, and the pending prorations), and
/// charges it unless `default_incomplete`; a decline leaves the subscription past due.
pub fn invoice_now(
    store: &mut Store,
    now: i64,
    id: &str,
    request: &UpdateRequest<'_>,
    billing: &Billing,
    resolved_items: &[ResolvedItem],
    (item_start, item_end): (i64, i64),
) {
    let lines = if billing.resets_period {
        resolved_items
            .iter()
            .map(|(si, price, qty, _)| {
                let name = product_name(store, price);
                LineSpec {
                    amount: line_amount(prices::unit_amount(price), *qty),
                    quantity: *qty,
                    description: format!("{qty} × {name} (at {})", price_label(price)),
                    price: Some(price.clone()),
                    period: (item_start, item_end),
                    proration: false,
                    subscription: Some(id.to_owned()),
                    subscription_item: Some(si.clone()),
                    invoice_item: None,
                    discountable: true,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let discounts: Vec<String> = store
        .get(kinds::SUBSCRIPTION, id)
        .and_then(|r| r.object.get("discounts").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.as_str().map(str::to_owned))
        .collect();
    let (method, days) = store
        .get(kinds::SUBSCRIPTION, id)
        .map(|r| {
            (
                str_field(&r.object, "collection_method")
                    .unwrap_or("charge_automatically")
                    .to_owned(),
                r.object.get("days_until_due").and_then(Value::as_i64),
            )
        })
        .unwrap_or_else(|| ("charge_automatically".into(), None));
    let invoice = create_draft(
        store,
        now,
        &NewInvoice {
            customer: request.customer.clone(),
            currency: request.currency.clone(),
            subscription: Some(id.to_owned()),
            billing_reason: "subscription_update".into(),
            collection_method: method.clone(),
            days_until_due: days,
            lines,
            include_pending: true,
            discounts: discounts.clone(),
            period: (billing.period_start, now),
            description: None,
            metadata: Map::new(),
            default_payment_method: None,
        },
    );
    finalize(store, now, &invoice);
    drop_used_once_discounts(store, id, &discounts);
    if let Some(record) = store.get_live_mut(kinds::SUBSCRIPTION, id) {
        set(&mut record.object, "latest_invoice", json!(invoice));
    }
    let open = |store: &Store| {
        store
            .get(kinds::INVOICE, &invoice)
            .is_some_and(|r| str_field(&r.object, "status") == Some("open"))
    };
    if open(store)
        && method == "charge_automatically"
        && request.payment_behavior != "default_incomplete"
    {
        // A decline leaves the invoice open; the subscription is then past due.
        let _ = pay(store, now, &invoice, None);
        if open(store)
            && let Some(record) = store.get_live_mut(kinds::SUBSCRIPTION, id)
        {
            set(&mut record.object, "status", json!("past_due"));
        }
    }
}
