//! Payment methods: Stripe's test tokens, attach, detach, retrieve, update and list.
//!
//! A test token such as `pm_card_visa` names a card; using it (on attach, or as a customer's
//! `payment_method`) creates a new `pm_...` object of type `card`, as Stripe does. Cards
//! from the "declined" tokens attach fine and decline only when charged (see [`decline_of`]).

use chrono::Datelike;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::ids;
use crate::list::{ListParams, created_filter};
use crate::store::{Store, kinds};

use super::{Ctx, customers, merge_metadata, metadata_of, opt_str, set, set_in};

/// How payment methods are named in "No such ..." messages.
pub const LABEL: &str = "PaymentMethod";

/// How a test card declines when charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decline {
    /// The error `code`, e.g. `card_declined`.
    pub code: &'static str,
    /// The `decline_code`, e.g. `generic_decline`.
    pub decline_code: &'static str,
    /// The message Stripe shows.
    pub message: &'static str,
}

/// A Stripe test card token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCard {
    /// The token, e.g. `pm_card_visa`.
    pub token: &'static str,
    /// `visa`, `mastercard`, `amex`.
    pub brand: &'static str,
    /// Last four digits of the test card number.
    pub last4: &'static str,
    /// `credit` or `debit`.
    pub funding: &'static str,
    /// `None` when charges succeed.
    pub decline: Option<Decline>,
}

const GENERIC_DECLINE: Decline = Decline {
    code: "card_declined",
    decline_code: "generic_decline",
    message: "Your card was declined.",
};

/// The test tokens the emulator knows.
pub const TEST_CARDS: &[TestCard] = &[
    TestCard {
        token: "pm_card_visa",
        brand: "visa",
        last4: "4242",
        funding: "credit",
        decline: None,
    },
    TestCard {
        token: "pm_card_visa_debit",
        brand: "visa",
        last4: "5556",
        funding: "debit",
        decline: None,
    },
    TestCard {
        token: "pm_card_mastercard",
        brand: "mastercard",
        last4: "4444",
        funding: "credit",
        decline: None,
    },
    TestCard {
        token: "pm_card_amex",
        brand: "amex",
        last4: "8431",
        funding: "credit",
        decline: None,
    },
    TestCard {
        token: "pm_card_chargeDeclined",
        brand: "visa",
        last4: "0002",
        funding: "credit",
        decline: Some(GENERIC_DECLINE),
    },
    TestCard {
        token: "pm_card_declined",
        brand: "visa",
        last4: "0002",
        funding: "credit",
        decline: Some(GENERIC_DECLINE),
    },
    TestCard {
        token: "pm_card_chargeDeclinedInsufficientFunds",
        brand: "visa",
        last4: "9995",
        funding: "credit",
        decline: Some(Decline {
            code: "card_declined",
            decline_code: "insufficient_funds",
            message: "Your card has insufficient funds.",
        }),
    },
    TestCard {
        token: "pm_card_chargeDeclinedExpiredCard",
        brand: "visa",
        last4: "0069",
        funding: "credit",
        decline: Some(Decline {
            code: "expired_card",
            decline_code: "expired_card",
            message: "Your card has expired.",
        }),
    },
    TestCard {
        token: "pm_card_chargeDeclinedIncorrectCvc",
        brand: "visa",
        last4: "0127",
        funding: "credit",
        decline: Some(Decline {
            code: "incorrect_cvc",
            decline_code: "incorrect_cvc",
            message: "Your card's security code is incorrect.",
        }),
    },
];

/// The test card a token names.
pub fn test_card(token: &str) -> Option<&'static TestCard> {
    TEST_CARDS.iter().find(|card| card.token == token)
}

/// How a stored payment method declines when charged (`None`: it succeeds).
pub fn decline_of(store: &Store, pm_id: &str) -> Option<Decline> {
    let record = store.get(kinds::PAYMENT_METHOD, pm_id)?;
    let token = record.internal.get("test_token")?.as_str()?;
    test_card(token)?.decline
}

/// What a `payment_method` argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PmRef {
    /// A test token: attaching it creates a new payment method.
    Token(&'static TestCard),
    /// A stored payment method.
    Stored(String),
}

/// Resolves a payment method argument; unknown → `resource_missing` on `param`.
pub fn resolve(store: &Store, value: &str, param: &str) -> ApiResult<PmRef> {
    if let Some(card) = test_card(value) {
        return Ok(PmRef::Token(card));
    }
    if store.get_live(kinds::PAYMENT_METHOD, value).is_some() {
        return Ok(PmRef::Stored(value.to_owned()));
    }
    Err(ApiError::resource_missing(LABEL, value, param))
}

/// Checks that `pm` may be attached to `customer` (without changing anything).
pub fn check_attachable(store: &Store, pm: &PmRef, customer: &str, param: &str) -> ApiResult<()> {
    let PmRef::Stored(id) = pm else {
        return Ok(());
    };
    let Some(record) = store.get_live(kinds::PAYMENT_METHOD, id) else {
        return Err(ApiError::resource_missing(LABEL, id, param));
    };
    if record
        .internal
        .get("detached")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(ApiError::invalid_param(
            param,
            "This PaymentMethod was previously used without being attached to a Customer or was detached from a Customer, and may not be used again.",
        ));
    }
    match record.object.get("customer").and_then(Value::as_str) {
        Some(owner) if owner != customer => Err(ApiError::invalid_param(
            param,
            "The payment method you provided has already been attached to a customer.",
        )),
        _ => Ok(()),
    }
}

/// Attaches `pm` to `customer` (after [`check_attachable`]) and returns the payment method id.
pub fn attach_ref(ctx: &mut Ctx<'_>, pm: &PmRef, customer: &str) -> String {
    materialize(ctx.store, ctx.now, pm, Some(customer))
}

/// The stored payment method `pm` names: a test token becomes a new payment method
/// (attached to `customer` if given); a stored one is attached to `customer` if given.
pub fn materialize(store: &mut Store, now: i64, pm: &PmRef, customer: Option<&str>) -> String {
    match pm {
        PmRef::Token(card) => {
            let id = ids::long_id("pm");
            let object = card_object(card, &id, now, store.livemode, customer);
            let mut internal = Map::new();
            internal.insert("test_token".into(), json!(card.token));
            store.insert_with(kinds::PAYMENT_METHOD, object, internal);
            id
        }
        PmRef::Stored(id) => {
            if let Some(customer) = customer
                && let Some(record) = store.get_live_mut(kinds::PAYMENT_METHOD, id)
            {
                set(&mut record.object, "customer", json!(customer));
            }
            id.clone()
        }
    }
}

/// The customer a stored payment method is attached to.
pub fn owner_of(store: &Store, pm_id: &str) -> Option<String> {
    store
        .get_live(kinds::PAYMENT_METHOD, pm_id)
        .and_then(|r| r.object.get("customer").and_then(Value::as_str))
        .map(str::to_owned)
}

/// Marks a payment method that was used without being attached to a customer as
/// consumed: like Stripe, it can then be neither reused nor attached.
pub fn consume_if_unattached(store: &mut Store, pm_id: &str) {
    if let Some(record) = store.get_live_mut(kinds::PAYMENT_METHOD, pm_id)
        && record.object.get("customer").is_none_or(Value::is_null)
    {
        record.internal.insert("detached".into(), json!(true));
    }
}

/// Whether a stored payment method was consumed or detached (and so is unusable).
pub fn is_consumed(store: &Store, pm_id: &str) -> bool {
    store
        .get(kinds::PAYMENT_METHOD, pm_id)
        .and_then(|r| r.internal.get("detached"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Checks that `pm` may pay for `customer` (or for no customer): a payment method attached
/// to a customer pays only for that customer, and a consumed one not at all.
pub fn check_usable_for(
    store: &Store,
    pm: &PmRef,
    customer: Option<&str>,
    param: &str,
) -> ApiResult<()> {
    let PmRef::Stored(id) = pm else {
        return Ok(());
    };
    if is_consumed(store, id) {
        return Err(ApiError::invalid_param(
            param,
            "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, shared with a connected account without Customer attachment, or was detached from a Customer. It may not be used again. To use a PaymentMethod multiple times, you must attach it to a Customer first.",
        ));
    }
    match (owner_of(store, id), customer) {
        (Some(owner), Some(customer)) if owner != customer => Err(ApiError::invalid_param(
            param,
            format!(
                "The customer does not have a payment method with the ID {id}. The payment method must be attached to the customer."
            ),
        )
        .with_code("resource_missing")),
        (Some(_), None) => Err(ApiError::invalid_param(
            param,
            "The provided PaymentMethod is attached to a Customer. To use it, you must also provide that Customer's ID in the `customer` parameter.",
        )),
        _ => Ok(()),
    }
}

/// A stable fingerprint per card number, as Stripe gives the same card the same one.
fn fingerprint(card: &TestCard) -> String {
    let digest = Sha256::digest(format!("{}:{}", card.brand, card.last4).as_bytes());
    let alphabet: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    digest
        .iter()
        .take(16)
        .map(|b| alphabet[usize::from(*b) % alphabet.len()])
        .collect()
}

/// A `payment_method` object for a test card, shaped from the fixture.
pub fn card_object(
    card: &TestCard,
    id: &str,
    now: i64,
    livemode: bool,
    customer: Option<&str>,
) -> Value {
    let exp_year = i64::from(chrono::Utc::now().year()) + 2;
    let mut pm = fixture(kinds::PAYMENT_METHOD);
    set(&mut pm, "id", json!(id));
    set(&mut pm, "object", json!("payment_method"));
    set(&mut pm, "created", json!(now));
    set(&mut pm, "livemode", json!(livemode));
    set(&mut pm, "customer", opt_str(customer));
    set(&mut pm, "customer_account", Value::Null);
    set(&mut pm, "metadata", json!({}));
    set(&mut pm, "type", json!("card"));
    set(&mut pm, "allow_redisplay", json!("unspecified"));
    set(
        &mut pm,
        "billing_details",
        json!({
            "address": {"city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null},
            "email": null,
            "name": null,
            "phone": null,
            "tax_id": null
        }),
    );
    let mut details = pm
        .get("card")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    for (key, value) in [
        ("brand", json!(card.brand)),
        ("display_brand", json!(card.brand)),
        ("last4", json!(card.last4)),
        ("funding", json!(card.funding)),
        ("country", json!("US")),
        ("exp_month", json!(12)),
        ("exp_year", json!(exp_year)),
        ("fingerprint", json!(fingerprint(card))),
        (
            "checks",
            json!({"address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass"}),
        ),
        ("generated_from", Value::Null),
        (
            "networks",
            json!({"available": [card.brand], "preferred": null}),
        ),
        ("three_d_secure_usage", json!({"supported": true})),
        ("wallet", Value::Null),
        ("regulated_status", json!("unregulated")),
    ] {
        set(&mut details, key, value);
    }
    set(&mut pm, "card", details);
    pm
}

fn stored(store: &Store, id: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::PAYMENT_METHOD, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}

/// `GET /v1/payment_methods/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id)
}

/// `POST /v1/payment_methods/:id`: `metadata`, `billing_details[name|email|phone]`,
/// `card[exp_month|exp_year]`.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id)?;
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let mut billing = Vec::new();
    for field in ["name", "email", "phone"] {
        if let Some(value) = p.nullable_string(&["billing_details", field])? {
            billing.push((field, opt_str(value)));
        }
    }
    let exp_month = p.integer(&["card", "exp_month"])?;
    if let Some(month) = exp_month
        && !(1..=12).contains(&month)
    {
        return Err(
            ApiError::invalid_request("Your card's expiration month is invalid.")
                .with_code("invalid_expiry_month")
                .with_param("card[exp_month]"),
        );
    }
    let exp_year = p.integer(&["card", "exp_year"])?;
    let Some(record) = ctx.store.get_live_mut(kinds::PAYMENT_METHOD, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    set(&mut record.object, "metadata", Value::Object(metadata));
    for (field, value) in billing {
        set_in(&mut record.object, &["billing_details", field], value);
    }
    if let Some(month) = exp_month {
        set_in(&mut record.object, &["card", "exp_month"], json!(month));
    }
    if let Some(year) = exp_year {
        set_in(&mut record.object, &["card", "exp_year"], json!(year));
    }
    Ok(record.object.clone())
}

/// `POST /v1/payment_methods/:id/attach` with `customer`.
pub fn attach(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let customer = ctx.params.required_string(&["customer"])?.to_owned();
    customers::require_live(ctx.store, &customer, "customer")?;
    let pm = match test_card(id) {
        Some(card) => PmRef::Token(card),
        None => {
            stored(ctx.store, id)?;
            PmRef::Stored(id.to_owned())
        }
    };
    check_attachable(ctx.store, &pm, &customer, "payment_method")?;
    let pm_id = attach_ref(ctx, &pm, &customer);
    stored(ctx.store, &pm_id)
}

/// `POST /v1/payment_methods/:id/detach`.
pub fn detach(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let current = stored(ctx.store, id)?;
    let Some(customer) = current
        .get("customer")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(ApiError::invalid_request(
            "The payment method you provided is not attached to a customer so detachment is impossible.",
        ));
    };
    detach_stored(ctx.store, id, &customer);
    stored(ctx.store, id)
}

/// Detaches a stored payment method from `customer`, and unsets it as the customer's
/// default if it was.
pub fn detach_stored(store: &mut Store, pm_id: &str, customer: &str) {
    if let Some(record) = store.get_mut(kinds::PAYMENT_METHOD, pm_id) {
        set(&mut record.object, "customer", Value::Null);
        record.internal.insert("detached".into(), json!(true));
    }
    if let Some(record) = store.get_live_mut(kinds::CUSTOMER, customer) {
        let default = record
            .object
            .pointer("/invoice_settings/default_payment_method")
            .and_then(Value::as_str);
        if default == Some(pm_id) {
            set_in(
                &mut record.object,
                &["invoice_settings", "default_payment_method"],
                Value::Null,
            );
        }
    }
}

/// Ids of the payment methods attached to `customer`, newest first.
pub fn attached_to(store: &Store, customer: &str) -> Vec<String> {
    store.ids_where(kinds::PAYMENT_METHOD, |r| {
        r.object.get("customer").and_then(Value::as_str) == Some(customer)
    })
}

fn list_filtered(ctx: &mut Ctx<'_>, url: &str, customer: Option<&str>) -> ApiResult<Value> {
    let type_ = ctx
        .params
        .string(&["type"])?
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let created = created_filter(ctx.params)?;
    let paging = ListParams::parse(ctx.params, ctx.store, kinds::PAYMENT_METHOD, LABEL)?;
    let records = ctx
        .store
        .live_newest_first(kinds::PAYMENT_METHOD)
        .filter(|r| {
            let of_customer = customer
                .is_none_or(|c| r.object.get("customer").and_then(Value::as_str) == Some(c));
            let of_type = type_
                .as_deref()
                .is_none_or(|t| r.object.get("type").and_then(Value::as_str) == Some(t));
            of_customer && of_type && created(r)
        });
    Ok(paging.page(url, records))
}

/// `GET /v1/payment_methods?customer=&type=`.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let customer = ctx
        .params
        .string(&["customer"])?
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    if let Some(customer) = &customer {
        customers::require_live(ctx.store, customer, "customer")?;
    }
    list_filtered(ctx, "/v1/payment_methods", customer.as_deref())
}

/// `GET /v1/customers/:id/payment_methods?type=`.
pub fn list_for_customer(ctx: &mut Ctx<'_>, customer: &str) -> ApiResult<Value> {
    customers::require_live(ctx.store, customer, "id")?;
    list_filtered(
        ctx,
        &format!("/v1/customers/{customer}/payment_methods"),
        Some(customer),
    )
}

/// `GET /v1/customers/:id/payment_methods/:pm`.
pub fn retrieve_for_customer(ctx: &mut Ctx<'_>, customer: &str, pm: &str) -> ApiResult<Value> {
    customers::require_live(ctx.store, customer, "id")?;
    let object = stored(ctx.store, pm)?;
    if object.get("customer").and_then(Value::as_str) != Some(customer) {
        return Err(ApiError::resource_missing(LABEL, pm, "id"));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(test_card("pm_card_visa").unwrap().last4, "4242");
        assert_eq!(test_card("pm_card_mastercard").unwrap().brand, "mastercard");
        assert_eq!(
            test_card("pm_card_chargeDeclined")
                .unwrap()
                .decline
                .unwrap()
                .decline_code,
            "generic_decline"
        );
        assert!(test_card("pm_card_declined").unwrap().decline.is_some());
        assert!(test_card("pm_card_nope").is_none());
        let a = fingerprint(test_card("pm_card_visa").unwrap());
        assert_eq!(a.len(), 16);
        assert_eq!(a, fingerprint(test_card("pm_card_visa").unwrap()));
        assert_ne!(a, fingerprint(test_card("pm_card_mastercard").unwrap()));
    }

    #[test]
    fn card_objects() {
        let pm = card_object(
            test_card("pm_card_mastercard").unwrap(),
            "pm_1x",
            7,
            false,
            Some("cus_1"),
        );
        assert_eq!(pm["id"], "pm_1x");
        assert_eq!(pm["customer"], "cus_1");
        assert_eq!(pm["card"]["brand"], "mastercard");
        assert_eq!(pm["card"]["last4"], "4444");
        assert_eq!(pm["card"]["exp_month"], 12);
        assert_eq!(pm["metadata"], json!({}));
        assert_eq!(pm["billing_details"]["email"], Value::Null);
    }
}
