//! Completing a checkout session as its hosted page would (also the test helper
//! `POST /_emulator/checkout/sessions/:id/complete`): in `payment` mode a succeeded payment
//! intent (a customer only with `customer_creation=always`, as in Stripe), in
//! `subscription` mode a customer (if none) and a subscription charged to the card, in
//! `setup` mode a customer (if none) and a succeeded setup intent. A declining card
//! answers the 402 and leaves the session open.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, ErrorType};
use crate::json::{int_field, opt_str, set, set_in, str_field};
use crate::objects::coupons;
use crate::objects::customers;
use crate::objects::payment_intents::{self, NewIntent};
use crate::objects::payment_methods::{self, PmRef};
use crate::objects::prices;
use crate::objects::promotion_codes::{self, Purchase};
use crate::objects::setup_intents;
use crate::objects::subscriptions::create::create_stored;
use crate::objects::subscriptions::spec::NewSubscription;
use crate::resources::checkout::create::{PricedItem, discounted_items, discounts_field};
use crate::resources::checkout::session::{
    expire_if_due, internal_map, internal_str, line_items, stored,
};
use crate::store::{Store, kinds};

/// Completes an open session as its hosted page would, paying with `payment_method` (a
/// test token or a payment method of the session's customer) and, on a session with
/// `allow_promotion_codes`, the `promotion_code` the customer typed (its code or id).
/// Returns the session.
pub fn complete(
    store: &mut Store,
    now: i64,
    id: &str,
    payment_method: &str,
    promotion_code: Option<&str>,
) -> ApiResult<Value> {
    let mut session = stored(store, id)?;
    expire_if_due(&mut session, now);
    let status = str_field(&session, "status").unwrap_or_default().to_owned();
    if status != "open" {
        return Err(ApiError::invalid_request(format!(
            "This Checkout Session can no longer be completed: its status is {status}."
        )));
    }
    let mode = str_field(&session, "mode").unwrap_or("payment").to_owned();
    let currency = str_field(&session, "currency").unwrap_or("usd").to_owned();
    let customer = str_field(&session, "customer").map(str::to_owned);
    let pm = payment_methods::resolve(store, payment_method, "payment_method")?;
    payment_methods::check_usable_for(store, &pm, customer.as_deref(), "payment_method")?;
    let typed = match promotion_code {
        Some(code) => Some(typed_promotion_code(
            store,
            &session,
            code,
            now,
            customer.as_deref(),
        )?),
        None => None,
    };
    if typed.is_none()
        && let Some(promo) = internal_str(store, id, "promotion_code")
    {
        // A code given at creation must still be redeemable (it may have been used up since).
        let promo = promotion_codes::require(store, &promo, "promotion_code")?;
        let purchase = Purchase {
            customer: customer.as_deref(),
            currency: Some(&currency),
            amount: Some(int_field(&session, "amount_subtotal")),
        };
        promotion_codes::require_redeemable(store, &promo, "promotion_code", now, purchase)?;
    }
    let amount_total = match &typed {
        Some(typed) => typed.amount_total,
        None => int_field(&session, "amount_total"),
    };
    let payment_required = mode != "setup" && amount_total > 0;
    if payment_required || mode == "subscription" {
        check_card(store, &pm)?;
    }
    let email = str_field(&session, "customer_email").map(str::to_owned);
    let create_customer = customer.is_none()
        && (mode != "payment" || str_field(&session, "customer_creation") == Some("always"));
    let customer = match customer {
        Some(c) => Some(c),
        None if create_customer => Some(customers::insert_minimal(store, now, email.as_deref())),
        None => None,
    };
    if let Some(typed) = &typed {
        apply_typed(store, id, typed);
    }
    let coupon = internal_str(store, id, "coupon");
    let promo = internal_str(store, id, "promotion_code");
    let paying = Paying {
        id,
        now,
        pm: &pm,
        customer: customer.as_deref(),
        coupon: coupon.as_deref(),
    };

    let updates: Vec<(&str, Value)> = match mode.as_str() {
        "payment" => {
            let pi = pay(store, &paying, amount_total, &currency, payment_required)?;
            pi.map(|pi| ("payment_intent", json!(pi)))
                .into_iter()
                .collect()
        }
        "subscription" => {
            let Some(customer) = &customer else {
                return Err(ApiError::invalid_request("A customer is required."));
            };
            subscribe(store, &paying, customer)?
        }
        _ => {
            let Some(customer) = &customer else {
                return Err(ApiError::invalid_request("A customer is required."));
            };
            let pm_id = payment_methods::materialize(store, now, &pm, Some(customer));
            let seti =
                setup_intents::insert_succeeded(store, now, Some(customer), &pm_id, Map::new());
            vec![("setup_intent", json!(seti))]
        }
    };

    if let Some(promo) = &promo {
        promotion_codes::redeem(store, promo);
        let (session, subscription) = (
            json!(id),
            updates
                .iter()
                .find(|(k, _)| *k == "subscription")
                .map(|(_, v)| v.clone()),
        );
        coupons::set_promotion_code(store, promo, |d| {
            d.get("checkout_session") == Some(&session)
                || subscription
                    .as_ref()
                    .is_some_and(|s| d.get("subscription") == Some(s))
        });
    }
    let customer_details = customer_details(store, customer.as_deref(), email);
    let paid = payment_required;
    if let Some(record) = store.get_live_mut(kinds::CHECKOUT_SESSION, id) {
        let o = &mut record.object;
        set(o, "status", json!("complete"));
        set(
            o,
            "payment_status",
            json!(if paid { "paid" } else { "no_payment_required" }),
        );
        set(o, "customer", opt_str(customer.as_deref()));
        set(o, "customer_details", customer_details);
        set(o, "url", Value::Null);
        for (key, value) in updates {
            set(o, key, value);
        }
    }
    stored(store, id)
}

/// A promotion code typed at completion, checked, and the session's amounts with it.
struct TypedCode {
    promo: String,
    coupon: String,
    amount_total: i64,
    discount: i64,
}

/// Checks a promotion code typed on the session's page: the session accepts codes and has
/// no discount yet, and the code can be redeemed on it.
fn typed_promotion_code(
    store: &Store,
    session: &Value,
    code: &str,
    now: i64,
    customer: Option<&str>,
) -> ApiResult<TypedCode> {
    let param = "promotion_code";
    if session
        .get("allow_promotion_codes")
        .and_then(Value::as_bool)
        != Some(true)
    {
        return Err(ApiError::invalid_param(
            param,
            "This Checkout Session does not accept promotion codes (create it with `allow_promotion_codes=true`).",
        ));
    }
    let Some(promo) = promotion_codes::find_by_code(store, code) else {
        return Err(ApiError::invalid_param(
            param,
            format!("This code is invalid: {code}"),
        ));
    };
    let subtotal = int_field(session, "amount_subtotal");
    let purchase = Purchase {
        customer,
        currency: str_field(session, "currency"),
        amount: Some(subtotal),
    };
    let coupon = promotion_codes::require_redeemable(store, &promo, param, now, purchase)?;
    let discount = coupons::discount_amount(&coupon, subtotal);
    Ok(TypedCode {
        promo: str_field(&promo, "id").unwrap_or_default().to_owned(),
        coupon: str_field(&coupon, "id").unwrap_or_default().to_owned(),
        amount_total: subtotal.saturating_sub(discount),
        discount,
    })
}

/// Applies a typed promotion code to the session: its coupon, discounts, totals and line
/// items, as if it had been given at creation.
fn apply_typed(store: &mut Store, id: &str, typed: &TypedCode) {
    let items: Vec<PricedItem> = line_items(store, id)
        .into_iter()
        .map(|item| {
            (
                item.get("price").cloned().unwrap_or_default(),
                int_field(&item, "quantity"),
                str_field(&item, "description")
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let Some(record) = store.get_live_mut(kinds::CHECKOUT_SESSION, id) else {
        return;
    };
    let subtotal = int_field(&record.object, "amount_subtotal");
    let discounted = discounted_items(&items, typed.discount, subtotal);
    record
        .internal
        .insert("line_items".into(), Value::Array(discounted));
    record.internal.insert("coupon".into(), json!(typed.coupon));
    record
        .internal
        .insert("promotion_code".into(), json!(typed.promo));
    let o = &mut record.object;
    set(o, "amount_total", json!(typed.amount_total));
    set_in(
        o,
        &["total_details", "amount_discount"],
        json!(typed.discount),
    );
    set(
        o,
        "discounts",
        discounts_field(Some(&typed.coupon), Some(&typed.promo)),
    );
}

/// What completing a session pays with: the session, the card, its customer and coupon.
struct Paying<'a> {
    id: &'a str,
    now: i64,
    pm: &'a PmRef,
    customer: Option<&'a str>,
    coupon: Option<&'a str>,
}

/// The 402 of a card that declines, before anything is made.
fn check_card(store: &Store, pm: &PmRef) -> ApiResult<()> {
    let decline = match pm {
        PmRef::Token(card) => card.decline,
        PmRef::Stored(id) => payment_methods::decline_of(store, id),
    };
    if let Some(decline) = decline {
        return Err(ApiError::new(402, ErrorType::Card, decline.message)
            .with_code(decline.code)
            .with_decline_code(decline.decline_code));
    }
    Ok(())
}

/// `payment` mode: applies the coupon and, when something is due, pays a new payment
/// intent (returned).
fn pay(
    store: &mut Store,
    paying: &Paying<'_>,
    amount_total: i64,
    currency: &str,
    payment_required: bool,
) -> ApiResult<Option<String>> {
    let Paying {
        id,
        now,
        pm,
        customer,
        coupon,
    } = *paying;
    let save = internal_str(store, id, "pi_setup_future_usage");
    let attach_to = customer.filter(|_| save.is_some());
    let pm_id = payment_methods::materialize(store, now, pm, attach_to);
    if let Some(coupon) = coupon {
        coupons::apply(
            store,
            coupon,
            coupons::Target {
                customer,
                checkout_session: Some(id),
                ..Default::default()
            },
            now,
        );
    }
    if payment_required {
        let mut spec = NewIntent::card(amount_total, currency);
        spec.customer = customer.map(str::to_owned);
        spec.payment_method = Some(pm_id);
        spec.description = internal_str(store, id, "pi_description");
        spec.metadata = internal_map(store, id, "pi_metadata");
        spec.setup_future_usage = save;
        let pi = payment_intents::insert(store, now, &spec);
        payment_intents::confirm_stored(store, now, &pi)?;
        return Ok(Some(pi));
    }
    Ok(None)
}

/// `subscription` mode: a subscription of the session's line items for `customer`, paid
/// with the card; the session's `subscription` and `invoice`.
fn subscribe(
    store: &mut Store,
    paying: &Paying<'_>,
    customer: &str,
) -> ApiResult<Vec<(&'static str, Value)>> {
    let Paying {
        id,
        now,
        pm,
        coupon,
        ..
    } = *paying;
    let pm_id = payment_methods::materialize(store, now, pm, Some(customer));
    let mut recurring = Vec::new();
    let mut one_time = Vec::new();
    for item in line_items(store, id) {
        let price = item.get("price").cloned().unwrap_or_default();
        let quantity = int_field(&item, "quantity");
        if prices::is_recurring(&price) {
            recurring.push((price, quantity, Map::new()));
        } else {
            one_time.push((price, quantity));
        }
    }
    let trial_end = store
        .get(kinds::CHECKOUT_SESSION, id)
        .and_then(|r| r.internal.get("trial_end").and_then(Value::as_i64));
    let spec = NewSubscription {
        customer: customer.to_owned(),
        items: recurring,
        add_invoice_items: one_time,
        trial_end,
        default_payment_method: Some(pm_id),
        coupons: coupon.map(str::to_owned).into_iter().collect(),
        metadata: internal_map(store, id, "subscription_metadata"),
        description: internal_str(store, id, "subscription_description"),
        cancel_at_period_end: false,
        cancel_at: None,
        payment_behavior: "allow_incomplete".into(),
        collection_method: "charge_automatically".into(),
        days_until_due: None,
        checkout_session: Some(id.to_owned()),
    };
    let sub = create_stored(store, now, &spec)?;
    let invoice = store
        .get(kinds::SUBSCRIPTION, &sub)
        .and_then(|r| str_field(&r.object, "latest_invoice").map(str::to_owned));
    Ok(vec![
        ("subscription", json!(sub)),
        ("invoice", opt_str(invoice.as_deref())),
    ])
}

/// The session's `customer_details`: the customer's, else the email the session was given.
fn customer_details(store: &Store, customer: Option<&str>, email: Option<String>) -> Value {
    let details = customer
        .and_then(|c| store.get(kinds::CUSTOMER, c))
        .map(|r| r.object.clone());
    json!({
        "address": details.as_ref().and_then(|d| d.get("address").cloned()).unwrap_or(Value::Null),
        "business_name": null,
        "email": details
            .as_ref()
            .and_then(|d| str_field(d, "email").map(str::to_owned))
            .or(email),
        "individual_name": null,
        "name": details.as_ref().and_then(|d| d.get("name").cloned()).unwrap_or(Value::Null),
        "phone": details.as_ref().and_then(|d| d.get("phone").cloned()).unwrap_or(Value::Null),
        "tax_exempt": "none",
        "tax_ids": [],
    })
}
