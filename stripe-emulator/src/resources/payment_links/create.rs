//! `POST /v1/payment_links`.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::ids;
use crate::json::{id_of, opt_str, set, str_field};
use crate::money;
use crate::objects::line_items::item_object;
use crate::objects::prices;
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::ctx::Ctx;
use crate::resources::payment_links::link::{PAGE_PREFIX, respond};
use crate::resources::payment_links::read::{
    Line, SUBMIT_TYPES, message_param, read_after_completion, read_line_items, read_mode_data,
};
use crate::state::CheckoutPage;
use crate::store::{Store, kinds};

/// `POST /v1/payment_links`: `line_items[N][price]` (or `[price_data]`) and `[quantity]`
/// (required),
/// `metadata`, `after_completion`, `allow_promotion_codes`, `billing_address_collection`,
/// `customer_creation`, `submit_type`, `currency`, `inactive_message`,
/// `payment_intent_data[description|metadata]`,
/// `subscription_data[description|metadata|trial_period_days]`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    unsupported(
        p,
        &[
            "optional_items",
            "shipping_address_collection",
            "shipping_options",
            "automatic_tax",
            "invoice_creation",
            "restrictions",
            "transfer_data",
            "on_behalf_of",
            "application_fee_amount",
            "application_fee_percent",
            "payment_method_types",
        ],
    )?;
    let lines = read_line_items(ctx.store, p)?;
    let currency = lines
        .first()
        .map_or("usd", |(line, _)| line.currency())
        .to_owned();
    if let Some(wanted) = money::currency(p, &["currency"])?
        && wanted != currency
    {
        return Err(ApiError::invalid_param(
            "currency",
            format!(
                "The currency ({wanted}) does not match the line items' currency ({currency})."
            ),
        ));
    }
    let subscription = lines.iter().any(|(line, _)| line.interval().is_some());
    let after_completion = read_after_completion(p)?.unwrap_or_else(
        || json!({"hosted_confirmation": {"custom_message": null}, "type": "hosted_confirmation"}),
    );
    let allow_promotion_codes = p.boolean(&["allow_promotion_codes"])?.unwrap_or(false);
    let billing_address_collection =
        one_of(p, &["billing_address_collection"], &["auto", "required"])?.unwrap_or("auto");
    let customer_creation = one_of(p, &["customer_creation"], &["always", "if_required"])?;
    if customer_creation.is_some() && subscription {
        return Err(ApiError::invalid_param(
            "customer_creation",
            "`customer_creation` can only be used with one-time prices.",
        ));
    }
    let submit_type = one_of(p, &["submit_type"], SUBMIT_TYPES)?.unwrap_or("auto");
    let inactive_message = message_param(p, &["inactive_message"])?.flatten();
    let (payment_intent_data, subscription_data) = read_mode_data(p, subscription)?;
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;

    let id = ids::long_id("plink");
    let items = store_items(ctx.store, ctx.now, lines)?;
    let mut invoice_creation = fixture(kinds::PAYMENT_LINK)
        .get("invoice_creation")
        .cloned()
        .unwrap_or_else(|| json!({"invoice_data": null}));
    set(&mut invoice_creation, "enabled", json!(false));
    let mut link = fixture(kinds::PAYMENT_LINK);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("payment_link")),
        ("active", json!(true)),
        ("after_completion", after_completion),
        ("allow_promotion_codes", json!(allow_promotion_codes)),
        ("application", Value::Null),
        ("application_fee_amount", Value::Null),
        ("application_fee_percent", Value::Null),
        (
            "automatic_tax",
            json!({"enabled": false, "liability": null}),
        ),
        (
            "billing_address_collection",
            json!(billing_address_collection),
        ),
        ("consent_collection", Value::Null),
        ("currency", json!(currency)),
        ("custom_fields", json!([])),
        (
            "custom_text",
            json!({"after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null}),
        ),
        (
            "customer_creation",
            json!(customer_creation.unwrap_or("if_required")),
        ),
        ("inactive_message", opt_str(inactive_message.as_deref())),
        ("invoice_creation", invoice_creation),
        ("livemode", json!(ctx.livemode())),
        ("managed_payments", Value::Null),
        ("metadata", Value::Object(metadata)),
        ("on_behalf_of", Value::Null),
        (
            "payment_intent_data",
            payment_intent_data.unwrap_or(Value::Null),
        ),
        ("payment_method_collection", json!("always")),
        ("payment_method_options", Value::Null),
        ("payment_method_types", Value::Null),
        ("phone_number_collection", json!({"enabled": false})),
        ("restrictions", Value::Null),
        ("shipping_address_collection", Value::Null),
        ("shipping_options", json!([])),
        ("submit_type", json!(submit_type)),
        (
            "subscription_data",
            subscription_data.unwrap_or(Value::Null),
        ),
        (
            "tax_id_collection",
            json!({"enabled": false, "required": "never"}),
        ),
        ("transfer_data", Value::Null),
        ("url", json!(format!("{}{PAGE_PREFIX}{id}", ctx.base_url))),
    ] {
        set(&mut link, key, value);
    }
    let mut internal = Map::new();
    internal.insert("line_items".into(), Value::Array(items));
    ctx.store.insert_with(kinds::PAYMENT_LINK, link, internal);
    ctx.emulator.add_payment_link_page(
        id.clone(),
        CheckoutPage {
            key: ctx.key.to_owned(),
            account: ctx.account.to_owned(),
        },
    );
    respond(ctx, &id)
}

/// Stores the inline prices of the line items; returns the items as the link keeps them.
fn store_items(store: &mut Store, now: i64, lines: Vec<(Line, i64)>) -> ApiResult<Vec<Value>> {
    let mut items: Vec<Value> = Vec::with_capacity(lines.len());
    for (line, quantity) in lines {
        let price = match line {
            Line::Stored(price) => price,
            Line::Inline(data, product) => {
                let price_id = prices::insert_inline(store, now, &data, product);
                prices::require(store, &price_id, "price")?.object.clone()
            }
        };
        let product = price.get("product").and_then(id_of).unwrap_or_default();
        let description = store
            .get(kinds::PRODUCT, product)
            .and_then(|r| str_field(&r.object, "name").map(str::to_owned))
            .unwrap_or_default();
        items.push(item_object(&price, quantity, &description, 0));
    }
    Ok(items)
}
