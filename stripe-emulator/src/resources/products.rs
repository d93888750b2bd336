//! Products: create (optionally with `default_price_data`), retrieve, update, delete, list.
//!
//! A product that has prices cannot be deleted (as in Stripe); a deleted product leaves a
//! tombstone that retrieval keeps answering.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::form::Params;
use crate::ids;
use crate::json::{metadata_of, opt_str, set, str_field};
use crate::list::ListParams;
use crate::objects::prices;
use crate::objects::products::{LABEL, new_object, require_live};
use crate::params::{merge_metadata, one_of};
use crate::resources::ctx::Ctx;
use crate::store::kinds;

/// Stripe's limit on `images`.
const MAX_IMAGES: usize = 8;

/// Fields shared by create and update.
struct Fields<'p> {
    name: Option<&'p str>,
    active: Option<bool>,
    strings: Vec<(&'static str, Option<&'p str>)>,
    images: Option<Vec<String>>,
    shippable: Option<bool>,
    marketing_features: Option<Vec<String>>,
}

fn read_fields(p: &Params) -> ApiResult<Fields<'_>> {
    let mut strings = Vec::new();
    for field in [
        "description",
        "statement_descriptor",
        "tax_code",
        "unit_label",
        "url",
    ] {
        if let Some(value) = p.nullable_string(&[field])? {
            strings.push((field, value));
        }
    }
    if let Some(Some(descriptor)) = p.nullable_string(&["statement_descriptor"])?
        && descriptor.chars().count() > 22
    {
        return Err(ApiError::invalid_param(
            "statement_descriptor",
            "The statement descriptor must be at most 22 characters.",
        ));
    }
    let images = if p.has(&["images"]) {
        let images = p.string_list(&["images"])?;
        if images.len() > MAX_IMAGES {
            return Err(ApiError::invalid_param(
                "images",
                format!("You may only specify up to {MAX_IMAGES} images."),
            ));
        }
        Some(images)
    } else {
        None
    };
    let marketing_features = if p.has(&["marketing_features"]) {
        let mut names = Vec::new();
        for index in p.indexed(&["marketing_features"])? {
            names.push(
                p.required_string(&["marketing_features", &index, "name"])?
                    .to_owned(),
            );
        }
        Some(names)
    } else {
        None
    };
    let name = p.string(&["name"])?;
    if name == Some("") {
        return Err(ApiError::invalid_param("name", "You must provide a name."));
    }
    Ok(Fields {
        name,
        active: p.boolean(&["active"])?,
        strings,
        images,
        shippable: p.boolean(&["shippable"])?,
        marketing_features,
    })
}

fn apply_fields(product: &mut Value, fields: Fields<'_>) {
    if let Some(name) = fields.name {
        set(product, "name", json!(name));
    }
    if let Some(active) = fields.active {
        set(product, "active", json!(active));
    }
    for (field, value) in fields.strings {
        set(product, field, opt_str(value));
    }
    if let Some(images) = fields.images {
        set(product, "images", json!(images));
    }
    if let Some(shippable) = fields.shippable {
        set(product, "shippable", json!(shippable));
    }
    if let Some(features) = fields.marketing_features {
        let features: Vec<Value> = features.iter().map(|n| json!({"name": n})).collect();
        set(product, "marketing_features", Value::Array(features));
    }
}

/// `POST /v1/products`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let name = p.required_string(&["name"])?;
    let fields = read_fields(p)?;
    let type_ = one_of(p, &["type"], &["good", "service"])?.unwrap_or("service");
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;
    let id = match p.non_empty(&["id"])? {
        Some(id) => {
            if ctx.store.get(kinds::PRODUCT, id).is_some() {
                return Err(ApiError::invalid_param("id", "Product already exists.")
                    .with_code("resource_already_exists"));
            }
            id.to_owned()
        }
        None => ids::short_id("prod"),
    };
    let default_price = if p.has(&["default_price_data"]) {
        Some(prices::read_price_data(
            p,
            &["default_price_data"],
            prices::Recurrence::Allowed,
        )?)
    } else {
        None
    };

    let mut product = new_object(&id, name, ctx.now, ctx.livemode());
    apply_fields(&mut product, fields);
    set(&mut product, "type", json!(type_));
    set(&mut product, "metadata", Value::Object(metadata));
    ctx.store.insert(kinds::PRODUCT, product);
    if let Some(data) = default_price {
        let price = prices::insert(ctx.store, ctx.now, &data, &id, prices::Extras::default());
        if let Some(record) = ctx.store.get_mut(kinds::PRODUCT, &id) {
            set(&mut record.object, "default_price", json!(price));
        }
    }
    retrieve(ctx, &id)
}

/// `GET /v1/products/:id` (a deleted product answers its tombstone).
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    ctx.store
        .get(kinds::PRODUCT, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}

/// `POST /v1/products/:id`.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = require_live(ctx.store, id, "id")?.object.clone();
    let fields = read_fields(p)?;
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let default_price = p.nullable_string(&["default_price"])?;
    if let Some(Some(price)) = default_price {
        let record = prices::require(ctx.store, price, "default_price")?;
        if str_field(&record.object, "product") != Some(id) {
            return Err(ApiError::invalid_param(
                "default_price",
                format!("The price `{price}` does not belong to the product `{id}`."),
            ));
        }
    }
    let now = ctx.now;
    let Some(record) = ctx.store.get_live_mut(kinds::PRODUCT, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    apply_fields(&mut record.object, fields);
    set(&mut record.object, "metadata", Value::Object(metadata));
    if let Some(price) = default_price {
        set(&mut record.object, "default_price", opt_str(price));
    }
    set(&mut record.object, "updated", json!(now));
    Ok(record.object.clone())
}

/// `DELETE /v1/products/:id`: only products without prices can be deleted.
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    require_live(ctx.store, id, "id")?;
    let has_prices = ctx
        .store
        .live_newest_first(kinds::PRICE)
        .any(|r| str_field(&r.object, "product") == Some(id));
    if has_prices {
        return Err(ApiError::invalid_request(
            "This product cannot be deleted because it has one or more user-created prices.",
        ));
    }
    let mut tombstone = fixture("deleted_product");
    set(&mut tombstone, "id", json!(id));
    set(&mut tombstone, "object", json!("product"));
    set(&mut tombstone, "deleted", json!(true));
    if let Some(record) = ctx.store.get_mut(kinds::PRODUCT, id) {
        record.object = tombstone.clone();
    }
    Ok(tombstone)
}

/// `GET /v1/products` with `active`, `ids[]`, `shippable`, `type`, `url`, `created`.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let active = p.boolean(&["active"])?;
    let shippable = p.boolean(&["shippable"])?;
    let ids = p.string_list(&["ids"])?;
    let type_ = one_of(p, &["type"], &["good", "service"])?;
    let url = p.non_empty(&["url"])?;
    let paging = ListParams::parse(p, ctx.store, kinds::PRODUCT, LABEL)?;
    if active.is_none() && shippable.is_none() && ids.is_empty() && type_.is_none() && url.is_none()
    {
        return Ok(paging.page_plain("/v1/products", ctx.store));
    }
    let records = paging.walk(ctx.store).filter(|r| {
        let o = &r.object;
        active.is_none_or(|a| o.get("active").and_then(Value::as_bool) == Some(a))
            && shippable.is_none_or(|s| o.get("shippable").and_then(Value::as_bool) == Some(s))
            && (ids.is_empty() || ids.iter().any(|id| str_field(o, "id") == Some(id)))
            && type_.is_none_or(|t| str_field(o, "type") == Some(t))
            && url.is_none_or(|u| str_field(o, "url") == Some(u))
    });
    Ok(paging.page("/v1/products", records))
}
