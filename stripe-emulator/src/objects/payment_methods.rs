//! Payment methods: Stripe's test card tokens, the `pm_...` objects they become, and the rules
//! for attaching, detaching and paying with them.
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
use crate::json::{opt_str, set, set_in};
use crate::store::{Store, kinds};

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
pub fn attach_ref(store: &mut Store, now: i64, pm: &PmRef, customer: &str) -> String {
    materialize(store, now, pm, Some(customer))
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
    store
        .live_where(kinds::PAYMENT_METHOD, &[("customer", customer)])
        .filter_map(|r| {
            r.object
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests;
