//! Prices: one-time and recurring (`per_unit` only), create, retrieve, update, list.
//!
//! Price data given inline (`line_items[0][price_data]`, `items[0][price_data]`,
//! `default_price_data`) is read by [`read_price_data`] and stored by [`insert`] as a price
//! of its own, as Stripe does; inline prices are retrievable but not listed.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::form::Params;
use crate::json::{metadata_of, opt_str, set, str_field};
use crate::list::ListParams;
use crate::money;
use crate::objects::prices::{
    Extras, LABEL, Recurrence, insert, interval_of, read_price_data, read_product_ref, require,
    resolve_product,
};
use crate::params::{merge_metadata, one_of};
use crate::resources::ctx::Ctx;
use crate::store::{Store, kinds};

/// Longest `lookup_key` Stripe accepts.
const MAX_LOOKUP_KEY_LEN: usize = 200;

fn read_lookup_key(p: &Params) -> ApiResult<Option<Option<&str>>> {
    let key = p.nullable_string(&["lookup_key"])?;
    if let Some(Some(key)) = key
        && key.chars().count() > MAX_LOOKUP_KEY_LEN
    {
        return Err(ApiError::invalid_param(
            "lookup_key",
            format!("lookup_key must be at most {MAX_LOOKUP_KEY_LEN} characters."),
        ));
    }
    Ok(key)
}

/// The price already using `key`, other than `except`.
fn holder_of_lookup_key(store: &Store, key: &str, except: Option<&str>) -> Option<String> {
    store
        .live_newest_first(kinds::PRICE)
        .find(|r| {
            str_field(&r.object, "lookup_key") == Some(key) && str_field(&r.object, "id") != except
        })
        .and_then(|r| str_field(&r.object, "id").map(str::to_owned))
}

fn check_lookup_key(
    store: &Store,
    key: &str,
    transfer: bool,
    except: Option<&str>,
) -> ApiResult<Option<String>> {
    match holder_of_lookup_key(store, key, except) {
        Some(holder) if !transfer => Err(ApiError::invalid_param(
            "lookup_key",
            format!(
                "A price (`{holder}`) already uses that lookup key. Set `transfer_lookup_key` to move it to this price."
            ),
        )),
        holder => Ok(holder),
    }
}

fn clear_lookup_key(store: &mut Store, holder: Option<String>) {
    if let Some(holder) = holder
        && let Some(record) = store.get_live_mut(kinds::PRICE, &holder)
    {
        set(&mut record.object, "lookup_key", Value::Null);
    }
}

/// `POST /v1/prices`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    if let Some(scheme) = one_of(p, &["billing_scheme"], &["per_unit", "tiered"])?
        && scheme == "tiered"
    {
        return Err(ApiError::invalid_param(
            "billing_scheme",
            "The Stripe emulator supports only per_unit prices.",
        ));
    }
    let data = read_price_data(p, &[], Recurrence::Allowed)?;
    let product = read_product_ref(p, &[], ctx.store)?;
    let lookup_key = read_lookup_key(p)?.flatten();
    let transfer = p.boolean(&["transfer_lookup_key"])?.unwrap_or(false);
    let holder = match lookup_key {
        Some(key) => check_lookup_key(ctx.store, key, transfer, None)?,
        None => None,
    };
    let extras = Extras {
        active: p.boolean(&["active"])?.unwrap_or(true),
        nickname: p.non_empty(&["nickname"])?.map(str::to_owned),
        lookup_key: lookup_key.map(str::to_owned),
        metadata: merge_metadata(&Map::new(), p.hash(&["metadata"])?)?,
        inline: false,
    };

    clear_lookup_key(ctx.store, holder);
    let product = resolve_product(ctx.store, ctx.now, product);
    let id = insert(ctx.store, ctx.now, &data, &product, extras);
    retrieve(ctx, &id)
}

/// `GET /v1/prices/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    require(ctx.store, id, "id").map(|r| r.object.clone())
}

/// `POST /v1/prices/:id`: `active`, `metadata`, `nickname`, `lookup_key` (with
/// `transfer_lookup_key`), `tax_behavior`.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = require(ctx.store, id, "id")?.object.clone();
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let active = p.boolean(&["active"])?;
    let nickname = p.nullable_string(&["nickname"])?;
    let lookup_key = read_lookup_key(p)?;
    let transfer = p.boolean(&["transfer_lookup_key"])?.unwrap_or(false);
    let holder = match lookup_key {
        Some(Some(key)) => check_lookup_key(ctx.store, key, transfer, Some(id))?,
        _ => None,
    };
    let tax_behavior = one_of(
        p,
        &["tax_behavior"],
        &["exclusive", "inclusive", "unspecified"],
    )?;

    clear_lookup_key(ctx.store, holder);
    let Some(record) = ctx.store.get_live_mut(kinds::PRICE, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    set(&mut record.object, "metadata", Value::Object(metadata));
    if let Some(active) = active {
        set(&mut record.object, "active", json!(active));
    }
    if let Some(nickname) = nickname {
        set(&mut record.object, "nickname", opt_str(nickname));
    }
    if let Some(key) = lookup_key {
        set(&mut record.object, "lookup_key", opt_str(key));
    }
    if let Some(tax_behavior) = tax_behavior {
        set(&mut record.object, "tax_behavior", json!(tax_behavior));
    }
    Ok(record.object.clone())
}

/// `GET /v1/prices` with `active`, `currency`, `product`, `type`, `lookup_keys[]`,
/// `recurring[interval]`, `created`.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let active = p.boolean(&["active"])?;
    let currency = money::currency(p, &["currency"])?;
    let product = p.non_empty(&["product"])?;
    let type_ = one_of(p, &["type"], &["one_time", "recurring"])?;
    let lookup_keys = p.string_list(&["lookup_keys"])?;
    let interval = one_of(
        p,
        &["recurring", "interval"],
        &["day", "week", "month", "year"],
    )?;
    let paging = ListParams::parse(p, ctx.store, kinds::PRICE, LABEL)?;
    let records = paging
        .walk_where(ctx.store, &[("product", product)])
        .filter(|r| {
            let o = &r.object;
            !r.internal.contains_key("inline")
                && active.is_none_or(|a| o.get("active").and_then(Value::as_bool) == Some(a))
                && currency
                    .as_deref()
                    .is_none_or(|c| str_field(o, "currency") == Some(c))
                && product.is_none_or(|id| str_field(o, "product") == Some(id))
                && type_.is_none_or(|t| str_field(o, "type") == Some(t))
                && (lookup_keys.is_empty()
                    || lookup_keys
                        .iter()
                        .any(|k| str_field(o, "lookup_key") == Some(k)))
                && interval.is_none_or(|i| interval_of(o).is_some_and(|(iv, _)| iv == i))
        });
    Ok(paging.page("/v1/prices", records))
}
