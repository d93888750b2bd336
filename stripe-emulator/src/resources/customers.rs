//! Customers: create, retrieve, update, delete, list.
//!
//! Deleting a customer cancels its subscriptions and leaves a tombstone
//! (`{"id","object":"customer","deleted":true}`), which `GET /v1/customers/:id` keeps
//! answering (as Stripe does) while lists skip it and every other use reports the customer
//! as missing.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::form::{Param, Params, param_name};
use crate::ids;
use crate::json::{metadata_of, opt_str, set, set_in};
use crate::list::ListParams;
use crate::objects::customers::{LABEL, new_object, require_live};
use crate::objects::payment_methods::{self, PmRef};
use crate::objects::subscriptions::record::cancel_all_of_customer;
use crate::params::merge_metadata;
use crate::resources::ctx::Ctx;
use crate::store::{Store, kinds};

/// The simple fields of create and update, as `Some(None)` = unset, `Some(Some(v))` = set.
struct Fields<'p> {
    strings: Vec<(&'static str, Option<&'p str>)>,
    address: Option<Value>,
    balance: Option<i64>,
    tax_exempt: Option<&'p str>,
    preferred_locales: Option<Vec<String>>,
    footer: Option<Option<&'p str>>,
}

fn validate_email(email: &str) -> ApiResult<()> {
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(
            ApiError::invalid_request(format!("Invalid email address: {email}"))
                .with_code("email_invalid")
                .with_param("email"),
        )
    }
}

fn read_fields(p: &Params) -> ApiResult<Fields<'_>> {
    let mut strings = Vec::new();
    for field in ["email", "name", "phone", "description"] {
        if let Some(value) = p.nullable_string(&[field])? {
            if field == "email"
                && let Some(email) = value
            {
                validate_email(email)?;
            }
            strings.push((field, value));
        }
    }
    let address = match p.get(&["address"]) {
        None => None,
        Some(Param::Str(s)) if s.is_empty() => Some(Value::Null),
        Some(Param::Str(_)) => return Err(ApiError::invalid_param("address", "Invalid hash")),
        Some(Param::Map(_)) => {
            let mut address = Map::new();
            for part in ["city", "country", "line1", "line2", "postal_code", "state"] {
                let value = p.nullable_string(&["address", part])?.flatten();
                address.insert(part.to_owned(), opt_str(value));
            }
            Some(Value::Object(address))
        }
    };
    let tax_exempt = p.string(&["tax_exempt"])?.filter(|s| !s.is_empty());
    if let Some(value) = tax_exempt
        && !matches!(value, "none" | "exempt" | "reverse")
    {
        return Err(ApiError::invalid_param(
            "tax_exempt",
            format!("Invalid tax_exempt: must be one of none, exempt, or reverse (got {value})"),
        ));
    }
    let preferred_locales = if p.has(&["preferred_locales"]) {
        Some(p.string_list(&["preferred_locales"])?)
    } else {
        None
    };
    Ok(Fields {
        strings,
        address,
        balance: p.integer(&["balance"])?,
        tax_exempt,
        preferred_locales,
        footer: p.nullable_string(&["invoice_settings", "footer"])?,
    })
}

fn apply_fields(object: &mut Value, fields: Fields<'_>) {
    for (field, value) in fields.strings {
        set(object, field, opt_str(value));
    }
    if let Some(address) = fields.address {
        set(object, "address", address);
    }
    if let Some(balance) = fields.balance {
        set(object, "balance", json!(balance));
    }
    if let Some(tax_exempt) = fields.tax_exempt {
        set(object, "tax_exempt", json!(tax_exempt));
    }
    if let Some(locales) = fields.preferred_locales {
        set(object, "preferred_locales", json!(locales));
    }
    if let Some(footer) = fields.footer {
        set_in(object, &["invoice_settings", "footer"], opt_str(footer));
    }
}

/// `POST /v1/customers`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let fields = read_fields(p)?;
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;
    let id = ids::short_id("cus");

    let pm_arg = p.string(&["payment_method"])?.filter(|s| !s.is_empty());
    let pm = match pm_arg {
        Some(value) => {
            let pm = payment_methods::resolve(ctx.store, value, "payment_method")?;
            payment_methods::check_attachable(ctx.store, &pm, &id, "payment_method")?;
            Some(pm)
        }
        None => None,
    };
    let default_param = ["invoice_settings", "default_payment_method"];
    if let Some(default) = p.nullable_string(&default_param)?.flatten() {
        let names_pm = match &pm {
            Some(PmRef::Stored(pm_id)) => default == pm_id,
            Some(PmRef::Token(card)) => default == card.token,
            None => false,
        };
        if !names_pm {
            return Err(default_not_attached(
                ctx.store,
                default,
                &param_name(&default_param),
            ));
        }
    }

    let mut object = new_object(&id, ctx.now, ctx.livemode());
    apply_fields(&mut object, fields);
    set(&mut object, "metadata", Value::Object(metadata));
    ctx.store.insert(kinds::CUSTOMER, object);

    if let Some(pm) = pm {
        let pm_id = payment_methods::attach_ref(ctx.store, ctx.now, &pm, &id);
        if let Some(record) = ctx.store.get_mut(kinds::CUSTOMER, &id) {
            set_in(
                &mut record.object,
                &["invoice_settings", "default_payment_method"],
                json!(pm_id),
            );
        }
    }
    retrieve(ctx, &id)
}

fn default_not_attached(store: &Store, pm: &str, param: &str) -> ApiError {
    if store.get_live(kinds::PAYMENT_METHOD, pm).is_none() {
        return ApiError::resource_missing(payment_methods::LABEL, pm, param);
    }
    ApiError::invalid_param(
        param,
        format!(
            "The customer does not have a payment method with the ID {pm}. The payment method must be attached to the customer."
        ),
    )
    .with_code("resource_missing")
}

/// `GET /v1/customers/:id` (a deleted customer answers its tombstone).
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    ctx.store
        .get(kinds::CUSTOMER, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}

/// `POST /v1/customers/:id`: the fields of create; metadata merges (an empty value deletes
/// a key, `metadata=` clears it); an empty string unsets a nullable field.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = require_live(ctx.store, id, "id")?.object.clone();
    let fields = read_fields(p)?;
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let default_param = ["invoice_settings", "default_payment_method"];
    let default = p.nullable_string(&default_param)?;
    if let Some(Some(pm)) = default {
        let attached = ctx
            .store
            .get_live(kinds::PAYMENT_METHOD, pm)
            .and_then(|r| r.object.get("customer").and_then(Value::as_str))
            == Some(id);
        if !attached {
            return Err(default_not_attached(
                ctx.store,
                pm,
                &param_name(&default_param),
            ));
        }
    }

    let Some(record) = ctx.store.get_live_mut(kinds::CUSTOMER, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    apply_fields(&mut record.object, fields);
    set(&mut record.object, "metadata", Value::Object(metadata));
    if let Some(default) = default {
        set_in(&mut record.object, &default_param, opt_str(default));
    }
    Ok(record.object.clone())
}

/// `DELETE /v1/customers/:id`: detaches the customer's payment methods and leaves a
/// tombstone.
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    require_live(ctx.store, id, "id")?;
    cancel_all_of_customer(ctx.store, ctx.now, id);
    for pm in payment_methods::attached_to(ctx.store, id) {
        payment_methods::detach_stored(ctx.store, &pm, id);
    }
    let mut tombstone = fixture("deleted_customer");
    set(&mut tombstone, "id", json!(id));
    set(&mut tombstone, "object", json!("customer"));
    set(&mut tombstone, "deleted", json!(true));
    if let Some(record) = ctx.store.get_mut(kinds::CUSTOMER, id) {
        record.object = tombstone.clone();
    }
    Ok(tombstone)
}

/// `GET /v1/customers` with `email`, `created` and paging.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let email = ctx.params.string(&["email"])?.filter(|s| !s.is_empty());
    let paging = ListParams::parse(ctx.params, ctx.store, kinds::CUSTOMER, LABEL)?;
    if email.is_none() {
        return Ok(paging.page_plain("/v1/customers", ctx.store));
    }
    let records = paging
        .walk_where(ctx.store, &[("email", email)])
        .filter(|r| email.is_none_or(|e| r.object.get("email").and_then(Value::as_str) == Some(e)));
    Ok(paging.page("/v1/customers", records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(validate_email("a@b.co").is_ok());
        assert!(validate_email("a@b").is_ok());
        for bad in ["", "ab", "@b.co", "a@", "a b@c.de", "a@b@c"] {
            let err = validate_email(bad).unwrap_err();
            assert_eq!(err.code.as_deref(), Some("email_invalid"), "{bad}");
        }
    }
}
