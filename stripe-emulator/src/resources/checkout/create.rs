//! `POST /v1/checkout/sessions`: reads and checks the request (see [`read_session`]), stores
//! inline prices, spreads the coupon over the line items, and stores the open session (with
//! its hosted page when Stripe would host it).

use serde_json::{Map, Value, json};

use crate::error::ApiResult;
use crate::fixtures::fixture;
use crate::ids;
use crate::json::{id_of, opt_str, set, set_or_omit, str_field};
use crate::money::{line_amount, share_of};
use crate::objects::coupons;
use crate::objects::line_items::item_object;
use crate::objects::prices;
use crate::resources::checkout::create_lines::{Line, RequestedLine};
use crate::resources::checkout::create_request::{SessionRequest, read_session};
use crate::resources::checkout::session::{PAGE_PREFIX, respond};
use crate::resources::ctx::Ctx;
use crate::state::CheckoutPage;
use crate::store::{Store, kinds};

/// A line item with its price stored: price, quantity, description.
pub(crate) type PricedItem = (Value, i64, String);

/// What the session asks for: due at completion before discounts, and the discount.
#[derive(Debug, Clone, Copy)]
struct Amounts {
    due_now: i64,
    discount: i64,
}

/// `POST /v1/checkout/sessions`.
/// The session's fields that Stripe's definition makes optional and not nullable: Stripe
/// omits them when unset (the others are sent as `null`).
const OMITTED_WHEN_UNSET: &[&str] = &[
    "branding_settings",
    "excluded_payment_method_types",
    "name_collection",
    "presentment_details",
    "redirect_on_completion",
    "return_url",
    "tax_id_collection",
];

pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let now = ctx.now;
    let mut request = read_session(ctx.params, ctx.store, now)?;

    // Store.
    let id = format!(
        "cs_{}_{}",
        if ctx.livemode() { "live" } else { "test" },
        ids::random_alnum(58)
    );
    let trialing = request.mode_data.trial_days.is_some() || request.mode_data.trial_end.is_some();
    let lines = std::mem::take(&mut request.lines);
    let (items, due_now) = store_prices(ctx.store, now, lines, trialing)?;
    let discount = request
        .coupon
        .as_ref()
        .map_or(0, |c| coupons::discount_amount(c, due_now));
    let item_objects = discounted_items(&items, discount, due_now);
    let hosted = request.redirects.hosted;
    let url = hosted.then(|| format!("{}{PAGE_PREFIX}{id}", ctx.base_url));
    let client_secret = (!hosted).then(|| format!("{id}_secret_{}", ids::random_alnum(24)));
    let amounts = Amounts { due_now, discount };
    let mut session = fixture(kinds::CHECKOUT_SESSION);
    for (key, value) in session_fields(&id, &request, amounts, now, ctx.livemode())
        .into_iter()
        .chain(redirect_fields(&request, url, client_secret))
    {
        if OMITTED_WHEN_UNSET.contains(&key) {
            set_or_omit(&mut session, key, value);
        } else {
            set(&mut session, key, value);
        }
    }
    if let Some(map) = session.as_object_mut() {
        map.remove("line_items");
    }
    let internal = internal_of(&request, item_objects, now);
    ctx.store
        .insert_with(kinds::CHECKOUT_SESSION, session, internal);
    if hosted {
        ctx.emulator.add_checkout_page(
            id.clone(),
            CheckoutPage {
                key: ctx.key.to_owned(),
                account: ctx.account.to_owned(),
            },
        );
    }
    respond(ctx, &id)
}

/// Stores the inline prices of the line items: each item's price, quantity and description
/// (its product's name), and what is due at completion (recurring items of a trialing
/// subscription are not).
fn store_prices(
    store: &mut Store,
    now: i64,
    lines: Vec<RequestedLine>,
    trialing: bool,
) -> ApiResult<(Vec<PricedItem>, i64)> {
    let mut items = Vec::new();
    let mut due_now: i64 = 0;
    for (line, quantity, _, recurring, _) in lines {
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
        if !(trialing && recurring.is_some()) {
            due_now = due_now.saturating_add(line_amount(prices::unit_amount(&price), quantity));
        }
        items.push((price, quantity, description));
    }
    Ok((items, due_now))
}

/// The line item objects, with the discount spread over the items in proportion, the
/// rest on the last one.
pub(crate) fn discounted_items(items: &[PricedItem], discount: i64, due_now: i64) -> Vec<Value> {
    let mut given: i64 = 0;
    let count = items.len();
    items
        .iter()
        .enumerate()
        .map(|(index, (price, quantity, description))| {
            let subtotal = line_amount(prices::unit_amount(price), *quantity);
            let share = if discount == 0 || due_now == 0 {
                0
            } else if index + 1 == count {
                discount - given
            } else {
                share_of(discount, subtotal, due_now)
            };
            given = given.saturating_add(share);
            item_object(price, *quantity, description, share)
        })
        .collect()
}

/// The session's fields but for its URLs and page: amounts, customer, payment settings.
fn session_fields(
    id: &str,
    request: &SessionRequest<'_>,
    Amounts { due_now, discount }: Amounts,
    now: i64,
    livemode: bool,
) -> Vec<(&'static str, Value)> {
    let mode = request.mode.as_str();
    let payment_required = mode != "setup" && due_now.saturating_sub(discount) > 0;
    let amounts = mode != "setup";
    vec![
        ("id", json!(id)),
        ("object", json!("checkout.session")),
        ("adaptive_pricing", Value::Null),
        ("after_expiration", Value::Null),
        (
            "allow_promotion_codes",
            request
                .allow_promotion_codes
                .map_or(Value::Null, |a| json!(a)),
        ),
        ("allowed_payment_method_types", Value::Null),
        (
            "amount_subtotal",
            if amounts { json!(due_now) } else { Value::Null },
        ),
        (
            "amount_total",
            if amounts {
                json!(due_now.saturating_sub(discount))
            } else {
                Value::Null
            },
        ),
        (
            "automatic_tax",
            json!({"enabled": false, "liability": null, "provider": null, "status": null}),
        ),
        ("billing_address_collection", Value::Null),
        ("branding_settings", Value::Null),
        ("client_reference_id", opt_str(request.client_reference_id)),
        ("collected_information", Value::Null),
        ("consent", Value::Null),
        ("consent_collection", Value::Null),
        ("created", json!(now)),
        ("currency", opt_str(request.currency.as_deref())),
        ("currency_conversion", Value::Null),
        ("custom_fields", json!([])),
        (
            "custom_text",
            json!({"after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null}),
        ),
        ("customer", opt_str(request.customer.as_deref())),
        ("customer_account", Value::Null),
        ("customer_creation", opt_str(request.customer_creation)),
        ("customer_details", Value::Null),
        ("customer_email", opt_str(request.customer_email.as_deref())),
        (
            "discounts",
            discounts_field(
                request.coupon.as_ref().and_then(|c| str_field(c, "id")),
                request.promotion_code.as_deref(),
            ),
        ),
        ("excluded_payment_method_types", Value::Null),
        ("expires_at", json!(request.expires_at)),
        ("integration_identifier", Value::Null),
        ("invoice", Value::Null),
        ("invoice_creation", Value::Null),
        ("livemode", json!(livemode)),
        ("locale", opt_str(request.locale)),
        ("managed_payments", Value::Null),
        ("metadata", Value::Object(request.metadata.clone())),
        ("mode", json!(mode)),
        ("name_collection", Value::Null),
        ("optional_items", Value::Null),
        ("origin_context", Value::Null),
        ("payment_intent", Value::Null),
        ("payment_link", Value::Null),
        (
            "payment_method_collection",
            if mode == "payment" {
                Value::Null
            } else {
                json!("always")
            },
        ),
        ("payment_method_configuration_details", Value::Null),
        ("payment_method_options", json!({})),
        ("payment_method_types", json!(["card"])),
        (
            "payment_status",
            json!(if payment_required {
                "unpaid"
            } else {
                "no_payment_required"
            }),
        ),
        ("permissions", Value::Null),
        ("phone_number_collection", json!({"enabled": false})),
        ("presentment_details", Value::Null),
        ("recovered_from", Value::Null),
        ("saved_payment_method_options", Value::Null),
        ("setup_intent", Value::Null),
        ("shipping_address_collection", Value::Null),
        ("shipping_cost", Value::Null),
        ("shipping_options", json!([])),
        ("status", json!("open")),
        ("submit_type", opt_str(request.submit_type)),
        ("subscription", Value::Null),
        ("tax_id_collection", Value::Null),
        (
            "total_details",
            if amounts {
                json!({"amount_discount": discount, "amount_shipping": 0, "amount_tax": 0})
            } else {
                Value::Null
            },
        ),
        ("wallet_options", Value::Null),
    ]
}

/// The session's `discounts`: its promotion code, or else its coupon.
pub(crate) fn discounts_field(coupon: Option<&str>, promotion_code: Option<&str>) -> Value {
    match (promotion_code, coupon) {
        (Some(promo), _) => json!([{"coupon": null, "promotion_code": promo}]),
        (None, Some(coupon)) => json!([{"coupon": coupon, "promotion_code": null}]),
        (None, None) => json!([]),
    }
}

/// Where the session's page is and where it leads: `ui_mode`, `url` (hosted) or
/// `client_secret` (embedded), and the redirect URLs.
fn redirect_fields(
    request: &SessionRequest<'_>,
    url: Option<String>,
    client_secret: Option<String>,
) -> Vec<(&'static str, Value)> {
    let redirects = &request.redirects;
    vec![
        ("cancel_url", opt_str(redirects.cancel_url.as_deref())),
        ("client_secret", opt_str(client_secret.as_deref())),
        (
            "redirect_on_completion",
            if redirects.hosted {
                Value::Null
            } else {
                json!("always")
            },
        ),
        ("return_url", opt_str(redirects.return_url.as_deref())),
        ("success_url", opt_str(redirects.success_url.as_deref())),
        ("ui_mode", json!(redirects.ui_mode)),
        ("url", opt_str(url.as_deref())),
    ]
}

/// What the session keeps for its completion (internal): line items, coupon, trial end,
/// and the data for the subscription or payment intent it will make.
fn internal_of(
    request: &SessionRequest<'_>,
    item_objects: Vec<Value>,
    now: i64,
) -> Map<String, Value> {
    let data = &request.mode_data;
    let mut internal = Map::new();
    internal.insert("line_items".into(), Value::Array(item_objects));
    if let Some(coupon) = &request.coupon {
        internal.insert(
            "coupon".into(),
            coupon.get("id").cloned().unwrap_or_default(),
        );
    }
    if let Some(promo) = &request.promotion_code {
        internal.insert("promotion_code".into(), json!(promo));
    }
    if let Some(days) = data.trial_days {
        internal.insert("trial_end".into(), json!(now + days * 86_400));
    }
    if let Some(end) = data.trial_end {
        internal.insert("trial_end".into(), json!(end));
    }
    internal.insert(
        "subscription_description".into(),
        opt_str(data.sub_description.as_deref()),
    );
    internal.insert(
        "subscription_metadata".into(),
        Value::Object(data.sub_metadata.clone()),
    );
    internal.insert(
        "pi_description".into(),
        opt_str(data.pi_description.as_deref()),
    );
    internal.insert(
        "pi_metadata".into(),
        Value::Object(data.pi_metadata.clone()),
    );
    internal.insert(
        "pi_setup_future_usage".into(),
        opt_str(data.pi_sfu.as_deref()),
    );
    internal
}
