//! End-to-end with the real async-stripe client: products, prices, coupons, payment
//! intents and charges, subscriptions and invoices, checkout sessions, webhook endpoints.
//! Every call must deserialize into async-stripe's type and carry the values sent.

mod common;

use common::{Raw, big_stack, client, metadata, start, stripe_error, test_key};
use stripe_billing::invoice::{
    CreateInvoice, CreateInvoicePendingInvoiceItemsBehavior, FinalizeInvoiceInvoice, ListInvoice,
    PayInvoice, RetrieveInvoice,
};
use stripe_billing::invoice_item::ListInvoiceItem;
use stripe_billing::subscription::{
    CancelSubscription, CancelSubscriptionCancellationDetails, CreateSubscription,
    CreateSubscriptionAddInvoiceItems, CreateSubscriptionItems, CreateSubscriptionPaymentBehavior,
    DiscountsDataParam, ListSubscription, ListSubscriptionStatus, RetrieveSubscription,
    UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior,
};
use stripe_billing::subscription_item::{ListSubscriptionItem, RetrieveSubscriptionItem};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionDiscounts, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionLineItemsPriceData, CreateCheckoutSessionSubscriptionData,
    ExpireCheckoutSession, ListCheckoutSession, ListLineItemsCheckoutSession,
    RetrieveCheckoutSession,
};
use stripe_core::charge::{ListCharge, RetrieveCharge};
use stripe_core::customer::{
    CreateCustomer, ListCustomer, RetrieveCustomer, RetrieveCustomerReturned, UpdateCustomer,
    UpdateCustomerInvoiceSettings,
};
use stripe_core::payment_intent::{
    CancelPaymentIntent, CancelPaymentIntentCancellationReason, CapturePaymentIntent,
    ConfirmPaymentIntent, CreatePaymentIntent, CreatePaymentIntentAutomaticPaymentMethods,
    CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects, CreatePaymentIntentOffSession,
    ListPaymentIntent, RetrievePaymentIntent, UpdatePaymentIntent,
};
use stripe_core::setup_intent::RetrieveSetupIntent;
use stripe_misc::webhook_endpoint::{
    CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents, DeleteWebhookEndpoint,
    ListWebhookEndpoint, RetrieveWebhookEndpoint, UpdateWebhookEndpoint,
    UpdateWebhookEndpointEnabledEvents,
};
use stripe_payment::payment_method::{AttachPaymentMethod, RetrievePaymentMethod};
use stripe_product::coupon::{
    CreateCoupon, DeleteCoupon, ListCoupon, RetrieveCoupon, UpdateCoupon,
};
use stripe_product::price::{
    CreatePrice, CreatePriceProductData, CreatePriceRecurring, CreatePriceRecurringInterval,
    ListPrice, RetrievePrice, UpdatePrice,
};
use stripe_product::product::{
    CreateProduct, CreateProductDefaultPriceData, DeleteProduct, ListProduct, RetrieveProduct,
    UpdateProduct,
};
use stripe_shared::{
    ApiErrorsCode, ApiErrorsType, ChargeStatus, CheckoutSessionMode, CheckoutSessionPaymentStatus,
    CheckoutSessionStatus, CouponDuration, InvoiceBillingReason, InvoiceStatus,
    PaymentIntentAllowedPaymentMethodTypes, PaymentIntentCaptureMethod, PaymentIntentStatus,
    PriceType, RecurringInterval, SetupIntentStatus, SubscriptionStatus,
};
use stripe_types::{Currency, Expandable};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A recurring price of a new product.
async fn recurring_price(
    stripe: &stripe::Client,
    amount: i64,
    interval: CreatePriceRecurringInterval,
) -> stripe_shared::Price {
    CreatePrice::new(Currency::USD)
        .unit_amount(amount)
        .recurring(CreatePriceRecurring::new(interval))
        .product_data(CreatePriceProductData::new("Plan"))
        .send(stripe)
        .await
        .expect("recurring price")
}

/// A one-time price of a new product.
async fn one_time_price(stripe: &stripe::Client, amount: i64) -> stripe_shared::Price {
    CreatePrice::new(Currency::USD)
        .unit_amount(amount)
        .product_data(CreatePriceProductData::new("Setup fee"))
        .send(stripe)
        .await
        .expect("one-time price")
}

#[test]
fn products_and_prices() {
    big_stack(|| async {
        let emulator = start().await;
        let stripe = client(&emulator, &test_key());
        let before = now();

        let product = CreateProduct::new("Pro plan")
            .description("Everything")
            .metadata(metadata(&[("tier", "pro")]))
            .send(&stripe)
            .await
            .expect("product");
        assert!(product.id.as_str().starts_with("prod_"), "{}", product.id);
        assert_eq!(product.name, "Pro plan");
        assert_eq!(product.description.as_deref(), Some("Everything"));
        assert!(product.active);
        assert!(product.default_price.is_none());
        assert_eq!(product.metadata, metadata(&[("tier", "pro")]));
        assert!(product.created.abs_diff(before) <= 5);

        let monthly = CreatePrice::new(Currency::USD)
            .product(product.id.as_str())
            .unit_amount(2000)
            .recurring(CreatePriceRecurring {
                interval_count: Some(3),
                ..CreatePriceRecurring::new(CreatePriceRecurringInterval::Month)
            })
            .lookup_key("pro_quarterly")
            .nickname("Pro quarterly")
            .metadata(metadata(&[("k", "v")]))
            .send(&stripe)
            .await
            .expect("recurring price");
        assert!(monthly.id.as_str().starts_with("price_1"), "{}", monthly.id);
        assert_eq!(monthly.type_, PriceType::Recurring);
        assert_eq!(monthly.unit_amount, Some(2000));
        assert_eq!(monthly.unit_amount_decimal.as_deref(), Some("2000"));
        assert_eq!(monthly.currency, Currency::USD);
        assert_eq!(monthly.product.id(), &product.id);
        assert_eq!(monthly.lookup_key.as_deref(), Some("pro_quarterly"));
        assert_eq!(monthly.nickname.as_deref(), Some("Pro quarterly"));
        let recurring = monthly.recurring.as_ref().expect("recurring");
        assert_eq!(recurring.interval, RecurringInterval::Month);
        assert_eq!(recurring.interval_count, 3);

        let setup = CreatePrice::new(Currency::EUR)
            .unit_amount(5000)
            .product_data(CreatePriceProductData::new("Setup"))
            .send(&stripe)
            .await
            .expect("one-time price with product_data");
        assert_eq!(setup.type_, PriceType::OneTime);
        assert!(setup.recurring.is_none());
        assert_eq!(setup.currency, Currency::EUR);
        let setup_product = RetrieveProduct::new(setup.product.id().clone())
            .send(&stripe)
            .await
            .expect("product made from product_data");
        assert_eq!(setup_product.name, "Setup");

        // Expanding the product on a price.
        let expanded = RetrievePrice::new(monthly.id.clone())
            .expand(vec!["product".to_owned()])
            .send(&stripe)
            .await
            .expect("retrieve expanded");
        let Expandable::Object(owner) = expanded.product else {
            panic!("product not expanded")
        };
        assert_eq!(owner.name, "Pro plan");

        // default_price_data creates the price and sets it as the default.
        let yearly_product = CreateProduct::new("Yearly")
            .default_price_data(CreateProductDefaultPriceData {
                unit_amount: Some(10000),
                ..CreateProductDefaultPriceData::new(Currency::USD)
            })
            .send(&stripe)
            .await
            .expect("product with default price");
        let default_price = yearly_product.default_price.expect("default price");
        let default_price = RetrievePrice::new(default_price.id().clone())
            .send(&stripe)
            .await
            .expect("default price");
        assert_eq!(default_price.unit_amount, Some(10000));
        assert_eq!(default_price.product.id(), &yearly_product.id);

        // Filters.
        let of_product = ListPrice::new()
            .product(product.id.as_str())
            .send(&stripe)
            .await
            .expect("list by product");
        assert_eq!(
            of_product
                .data
                .iter()
                .map(|p| p.id.clone())
                .collect::<Vec<_>>(),
            vec![monthly.id.clone()]
        );
        let one_time = ListPrice::new()
            .type_(PriceType::OneTime)
            .send(&stripe)
            .await
            .expect("list one-time");
        assert_eq!(
            one_time
                .data
                .iter()
                .map(|p| p.id.clone())
                .collect::<Vec<_>>(),
            vec![default_price.id.clone(), setup.id.clone()]
        );
        assert_eq!(
            ListPrice::new()
                .send(&stripe)
                .await
                .expect("all")
                .data
                .len(),
            3
        );

        let archived = UpdatePrice::new(setup.id.clone())
            .active(false)
            .nickname("old")
            .send(&stripe)
            .await
            .expect("archive price");
        assert!(!archived.active);
        assert_eq!(archived.nickname.as_deref(), Some("old"));
        let active = ListPrice::new()
            .active(true)
            .send(&stripe)
            .await
            .expect("active prices");
        assert_eq!(active.data.len(), 2);
        assert!(active.data.iter().all(|p| p.active));

        // A lookup key is unique unless transferred.
        let (error, status) = stripe_error(
            CreatePrice::new(Currency::USD)
                .product(product.id.as_str())
                .unit_amount(100)
                .lookup_key("pro_quarterly")
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.param.as_deref(), Some("lookup_key"));
        let moved = CreatePrice::new(Currency::USD)
            .product(product.id.as_str())
            .unit_amount(100)
            .lookup_key("pro_quarterly")
            .transfer_lookup_key(true)
            .send(&stripe)
            .await
            .expect("transfer lookup key");
        assert_eq!(moved.lookup_key.as_deref(), Some("pro_quarterly"));
        let by_key = ListPrice::new()
            .lookup_keys(vec!["pro_quarterly".to_owned()])
            .send(&stripe)
            .await
            .expect("by lookup key");
        assert_eq!(
            by_key.data.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
            vec![moved.id.clone()]
        );

        // Products: update, list, and deletion rules.
        let updated = UpdateProduct::new(product.id.clone())
            .name("Pro")
            .default_price(monthly.id.as_str())
            .metadata(metadata(&[("tier", ""), ("x", "y")]))
            .send(&stripe)
            .await
            .expect("update product");
        assert_eq!(updated.name, "Pro");
        assert_eq!(
            updated.default_price.map(|p| p.id().clone()),
            Some(monthly.id.clone())
        );
        assert_eq!(updated.metadata, metadata(&[("x", "y")]));
        let products = ListProduct::new().send(&stripe).await.expect("products");
        assert_eq!(products.data.len(), 3);
        assert_eq!(products.data[0].id, yearly_product.id, "newest first");
        let (error, status) =
            stripe_error(DeleteProduct::new(product.id.clone()).send(&stripe).await);
        assert_eq!(status, 400);
        assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
        let lonely = CreateProduct::new("Lonely").send(&stripe).await.expect("p");
        let deleted = DeleteProduct::new(lonely.id.clone())
            .send(&stripe)
            .await
            .expect("delete");
        assert_eq!(deleted.id, lonely.id);
        assert_eq!(
            ListProduct::new()
                .send(&stripe)
                .await
                .expect("products")
                .data
                .len(),
            3
        );

        // Errors.
        let (error, status) = stripe_error(RetrievePrice::new("price_nope").send(&stripe).await);
        assert_eq!(status, 404);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        assert_eq!(
            error.message.as_deref(),
            Some("No such price: 'price_nope'")
        );
        assert_eq!(error.param.as_deref(), Some("id"));
        let (error, status) = stripe_error(
            CreatePrice::new(Currency::USD)
                .unit_amount(100)
                .product("prod_nope")
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        assert_eq!(error.param.as_deref(), Some("product"));
        assert_eq!(
            error.message.as_deref(),
            Some("No such product: 'prod_nope'")
        );
        let (error, status) = stripe_error(
            CreatePrice::new(Currency::USD)
                .product(product.id.as_str())
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.code, Some(ApiErrorsCode::ParameterMissing));
        assert_eq!(error.param.as_deref(), Some("unit_amount"));
        emulator.stop().await;
    });
}

#[test]
fn coupons() {
    big_stack(|| async {
        let emulator = start().await;
        let stripe = client(&emulator, &test_key());

        let percent = CreateCoupon::new()
            .percent_off(25.5)
            .duration(CouponDuration::Repeating)
            .duration_in_months(3)
            .name("Launch")
            .send(&stripe)
            .await
            .expect("percent coupon");
        assert_eq!(percent.percent_off, Some(25.5));
        assert_eq!(percent.duration, CouponDuration::Repeating);
        assert_eq!(percent.duration_in_months, Some(3));
        assert_eq!(percent.name.as_deref(), Some("Launch"));
        assert!(percent.amount_off.is_none());
        assert!(percent.valid);
        assert_eq!(percent.times_redeemed, 0);
        assert_eq!(percent.id.as_str().len(), 8);

        let amount = CreateCoupon::new()
            .id("TENOFF")
            .amount_off(1000)
            .currency(Currency::USD)
            .duration(CouponDuration::Forever)
            .max_redemptions(5)
            .send(&stripe)
            .await
            .expect("amount coupon");
        assert_eq!(amount.id.as_str(), "TENOFF");
        assert_eq!(amount.amount_off, Some(1000));
        assert_eq!(amount.currency, Some(Currency::USD));
        assert_eq!(amount.max_redemptions, Some(5));

        let fetched = RetrieveCoupon::new("TENOFF")
            .send(&stripe)
            .await
            .expect("retrieve");
        assert_eq!(fetched.duration, CouponDuration::Forever);
        let renamed = UpdateCoupon::new("TENOFF")
            .name("Ten off")
            .send(&stripe)
            .await
            .expect("update");
        assert_eq!(renamed.name.as_deref(), Some("Ten off"));
        let listed = ListCoupon::new().send(&stripe).await.expect("list");
        assert_eq!(
            listed
                .data
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>(),
            vec!["TENOFF", percent.id.as_str()]
        );

        let (error, status) = stripe_error(
            CreateCoupon::new()
                .id("TENOFF")
                .percent_off(5.0)
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceAlreadyExists));
        let (error, _) = stripe_error(CreateCoupon::new().amount_off(100).send(&stripe).await);
        assert_eq!(error.param.as_deref(), Some("currency"));
        let (error, _) = stripe_error(
            CreateCoupon::new()
                .percent_off(10.0)
                .duration(CouponDuration::Repeating)
                .send(&stripe)
                .await,
        );
        assert_eq!(error.param.as_deref(), Some("duration_in_months"));
        let (error, _) = stripe_error(CreateCoupon::new().percent_off(120.0).send(&stripe).await);
        assert_eq!(error.param.as_deref(), Some("percent_off"));

        let deleted = DeleteCoupon::new("TENOFF")
            .send(&stripe)
            .await
            .expect("delete");
        assert_eq!(deleted.id.as_str(), "TENOFF");
        let (error, status) = stripe_error(RetrieveCoupon::new("TENOFF").send(&stripe).await);
        assert_eq!(status, 404);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        assert_eq!(error.message.as_deref(), Some("No such coupon: 'TENOFF'"));
        emulator.stop().await;
    });
}

/// A payment intent confirmed at creation with `payment_method` (card payments only, so
/// no `return_url` is needed).
fn card_intent(amount: i64, payment_method: &str) -> CreatePaymentIntent {
    CreatePaymentIntent::new(amount, Currency::USD)
        .payment_method(payment_method)
        .allowed_payment_method_types(vec![PaymentIntentAllowedPaymentMethodTypes::Card])
        .confirm(true)
}

#[test]
fn payment_intents_and_charges() {
    big_stack(|| async {
        let emulator = start().await;
        let stripe = client(&emulator, &test_key());
        let customer = CreateCustomer::new()
            .email("payer@example.com")
            .send(&stripe)
            .await
            .expect("customer");

        // A succeeding test card.
        let paid = card_intent(2500, "pm_card_visa")
            .customer(customer.id.as_str())
            .description("Order 1")
            .metadata(metadata(&[("order", "1")]))
            .send(&stripe)
            .await
            .expect("paid intent");
        assert!(paid.id.as_str().starts_with("pi_1"), "{}", paid.id);
        assert_eq!(paid.status, PaymentIntentStatus::Succeeded);
        assert_eq!(paid.amount, 2500);
        assert_eq!(paid.amount_received, 2500);
        assert_eq!(paid.currency, Currency::USD);
        assert_eq!(paid.description.as_deref(), Some("Order 1"));
        assert_eq!(paid.metadata, metadata(&[("order", "1")]));
        assert_eq!(
            paid.customer.as_ref().map(|c| c.id().clone()),
            Some(customer.id.clone())
        );
        assert!(
            paid.client_secret
                .as_deref()
                .is_some_and(|s| s.starts_with(&format!("{}_secret_", paid.id)))
        );
        let charge_id = paid
            .latest_charge
            .as_ref()
            .expect("latest_charge")
            .id()
            .clone();
        assert!(charge_id.as_str().starts_with("ch_1"), "{charge_id}");
        let charge = RetrieveCharge::new(charge_id.clone())
            .send(&stripe)
            .await
            .expect("charge");
        assert_eq!(charge.status, ChargeStatus::Succeeded);
        assert!(charge.paid && charge.captured);
        assert_eq!(charge.amount, 2500);
        assert_eq!(charge.amount_captured, 2500);
        assert_eq!(
            charge.payment_intent.as_ref().map(|p| p.id().clone()),
            Some(paid.id.clone())
        );
        let card = charge
            .payment_method_details
            .as_ref()
            .and_then(|d| d.card.as_ref())
            .expect("card details");
        assert_eq!(card.last4.as_deref(), Some("4242"));
        // An unattached test card is single-use.
        let pm_id = paid.payment_method.as_ref().expect("pm").id().clone();
        let (error, status) = stripe_error(
            card_intent(1000, pm_id.as_str())
                .customer(customer.id.as_str())
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.param.as_deref(), Some("payment_method"));

        // Declines: 402 card_error with the intent, stored as requires_payment_method.
        for (token, code, decline_code) in [
            (
                "pm_card_chargeDeclined",
                ApiErrorsCode::CardDeclined,
                "generic_decline",
            ),
            (
                "pm_card_declined",
                ApiErrorsCode::CardDeclined,
                "generic_decline",
            ),
            (
                "pm_card_chargeDeclinedInsufficientFunds",
                ApiErrorsCode::CardDeclined,
                "insufficient_funds",
            ),
            (
                "pm_card_chargeDeclinedExpiredCard",
                ApiErrorsCode::ExpiredCard,
                "expired_card",
            ),
            (
                "pm_card_chargeDeclinedIncorrectCvc",
                ApiErrorsCode::IncorrectCvc,
                "incorrect_cvc",
            ),
        ] {
            let (error, status) = stripe_error(
                card_intent(1000, token)
                    .customer(customer.id.as_str())
                    .send(&stripe)
                    .await,
            );
            assert_eq!(status, 402, "{token}");
            assert_eq!(error.type_, ApiErrorsType::CardError, "{token}");
            assert_eq!(error.code, Some(code), "{token}");
            assert_eq!(error.decline_code.as_deref(), Some(decline_code), "{token}");
            assert!(error.param.is_none(), "{token}: declines carry no param");
            let intent = error.payment_intent.expect("the intent rides along");
            assert_eq!(intent.status, PaymentIntentStatus::RequiresPaymentMethod);
            assert!(intent.payment_method.is_none());
            let last = intent.last_payment_error.expect("last_payment_error");
            assert_eq!(last.decline_code.as_deref(), Some(decline_code));
            assert_eq!(last.type_, ApiErrorsType::CardError);
            let failed = RetrieveCharge::new(error.charge.expect("failed charge").as_str())
                .send(&stripe)
                .await
                .expect("failed charge");
            assert_eq!(failed.status, ChargeStatus::Failed);
            assert!(!failed.paid);
            let stored = RetrievePaymentIntent::new(intent.id.clone())
                .send(&stripe)
                .await
                .expect("stored intent");
            assert_eq!(stored.status, PaymentIntentStatus::RequiresPaymentMethod);
            if token == "pm_card_chargeDeclined" {
                // Retrying with a good card succeeds.
                let retried = ConfirmPaymentIntent::new(intent.id.clone())
                    .payment_method("pm_card_mastercard")
                    .send(&stripe)
                    .await
                    .expect("retry");
                assert_eq!(retried.status, PaymentIntentStatus::Succeeded);
                assert!(retried.last_payment_error.is_none());
            }
        }

        // No payment method → requires_payment_method; with one but unconfirmed →
        // requires_confirmation; then confirm.
        let open = CreatePaymentIntent::new(1500, Currency::USD)
            .customer(customer.id.as_str())
            .send(&stripe)
            .await
            .expect("open intent");
        assert_eq!(open.status, PaymentIntentStatus::RequiresPaymentMethod);
        assert!(open.automatic_payment_methods.is_some_and(|a| a.enabled));
        let attached = AttachPaymentMethod::new("pm_card_visa")
            .customer(customer.id.to_string())
            .send(&stripe)
            .await
            .expect("attach");
        let updated = UpdatePaymentIntent::new(open.id.clone())
            .payment_method(attached.id.as_str())
            .amount(1800)
            .send(&stripe)
            .await
            .expect("update");
        assert_eq!(updated.status, PaymentIntentStatus::RequiresConfirmation);
        assert_eq!(updated.amount, 1800);
        // Automatic payment methods need a return_url to confirm, as in Stripe.
        let (error, status) = stripe_error(
            ConfirmPaymentIntent::new(open.id.clone())
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.param.as_deref(), Some("return_url"));
        let confirmed = ConfirmPaymentIntent::new(open.id.clone())
            .return_url("https://app.example.com/done")
            .send(&stripe)
            .await
            .expect("confirm");
        assert_eq!(confirmed.status, PaymentIntentStatus::Succeeded);
        assert_eq!(confirmed.amount_received, 1800);
        // The attached method is reusable, off-session too.
        let again = CreatePaymentIntent::new(900, Currency::USD)
            .customer(customer.id.as_str())
            .payment_method(attached.id.as_str())
            .automatic_payment_methods(CreatePaymentIntentAutomaticPaymentMethods {
                allow_redirects: Some(
                    CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects::Never,
                ),
                ..CreatePaymentIntentAutomaticPaymentMethods::new(true)
            })
            .off_session(CreatePaymentIntentOffSession::Bool(true))
            .confirm(true)
            .send(&stripe)
            .await
            .expect("off-session");
        assert_eq!(again.status, PaymentIntentStatus::Succeeded);
        let (error, _) = stripe_error(
            UpdatePaymentIntent::new(again.id.clone())
                .amount(1000)
                .send(&stripe)
                .await,
        );
        assert_eq!(
            error.code,
            Some(ApiErrorsCode::PaymentIntentUnexpectedState)
        );

        // Manual capture, partial.
        let held = card_intent(3000, "pm_card_visa")
            .capture_method(PaymentIntentCaptureMethod::Manual)
            .send(&stripe)
            .await
            .expect("authorize");
        assert_eq!(held.status, PaymentIntentStatus::RequiresCapture);
        assert_eq!(held.amount_capturable, 3000);
        let captured = CapturePaymentIntent::new(held.id.clone())
            .amount_to_capture(2000)
            .send(&stripe)
            .await
            .expect("capture");
        assert_eq!(captured.status, PaymentIntentStatus::Succeeded);
        assert_eq!(captured.amount_received, 2000);
        let charge = RetrieveCharge::new(captured.latest_charge.expect("charge").id().clone())
            .send(&stripe)
            .await
            .expect("captured charge");
        assert!(charge.captured);
        assert_eq!(charge.amount_captured, 2000);
        let (error, _) = stripe_error(
            CapturePaymentIntent::new(held.id.clone())
                .send(&stripe)
                .await,
        );
        assert_eq!(
            error.code,
            Some(ApiErrorsCode::PaymentIntentUnexpectedState)
        );

        // Cancel.
        let canceled = CancelPaymentIntent::new(open.id.clone())
            .send(&stripe)
            .await;
        let (error, _) = stripe_error(canceled);
        assert_eq!(
            error.code,
            Some(ApiErrorsCode::PaymentIntentUnexpectedState)
        );
        let to_cancel = CreatePaymentIntent::new(700, Currency::EUR)
            .send(&stripe)
            .await
            .expect("intent");
        let canceled = CancelPaymentIntent::new(to_cancel.id.clone())
            .cancellation_reason(CancelPaymentIntentCancellationReason::RequestedByCustomer)
            .send(&stripe)
            .await
            .expect("cancel");
        assert_eq!(canceled.status, PaymentIntentStatus::Canceled);
        assert!(canceled.canceled_at.is_some());

        // Lists.
        let of_customer = ListPaymentIntent::new()
            .customer(customer.id.as_str())
            .send(&stripe)
            .await
            .expect("list intents");
        assert_eq!(of_customer.data.len(), 8);
        assert_eq!(of_customer.data[0].id, again.id, "newest first");
        let charges = ListCharge::new()
            .payment_intent(paid.id.as_str())
            .send(&stripe)
            .await
            .expect("list charges");
        assert_eq!(
            charges
                .data
                .iter()
                .map(|c| c.id.clone())
                .collect::<Vec<_>>(),
            vec![charge_id]
        );

        // Validation.
        let (error, status) = stripe_error(
            CreatePaymentIntent::new(49, Currency::USD)
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.code, Some(ApiErrorsCode::AmountTooSmall));
        assert_eq!(error.param.as_deref(), Some("amount"));
        assert_eq!(
            error.message.as_deref(),
            Some("Amount must be at least $0.50 usd")
        );
        let (error, status) = stripe_error(
            CreatePaymentIntent::new(1000, Currency::USD)
                .customer("cus_nope")
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        assert_eq!(error.param.as_deref(), Some("customer"));
        // A payment method of another customer.
        let other = CreateCustomer::new().send(&stripe).await.expect("other");
        let (error, status) = stripe_error(
            card_intent(1000, attached.id.as_str())
                .customer(other.id.as_str())
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.param.as_deref(), Some("payment_method"));
        let pm = RetrievePaymentMethod::new(attached.id.clone())
            .send(&stripe)
            .await
            .expect("pm");
        assert_eq!(
            pm.customer.map(|c| c.id().clone()),
            Some(customer.id.clone())
        );
        let (_, status) = stripe_error(RetrievePaymentIntent::new("pi_nope").send(&stripe).await);
        assert_eq!(status, 404);
        emulator.stop().await;
    });
}

fn item(price: &stripe_shared::Price, quantity: u64) -> CreateSubscriptionItems {
    CreateSubscriptionItems {
        price: Some(price.id.to_string()),
        quantity: Some(quantity),
        ..Default::default()
    }
}

fn coupon(id: &str) -> DiscountsDataParam {
    DiscountsDataParam {
        coupon: Some(id.to_owned()),
        ..Default::default()
    }
}

async fn latest_invoice(
    stripe: &stripe::Client,
    sub: &stripe_shared::Subscription,
) -> stripe_shared::Invoice {
    let id = sub
        .latest_invoice
        .as_ref()
        .expect("latest_invoice")
        .id()
        .clone()
        .expect("invoice id");
    RetrieveInvoice::new(id)
        .expand(vec!["payments".to_owned()])
        .send(stripe)
        .await
        .expect("invoice")
}

/// The payment intent of an invoice (`payments` expanded).
fn invoice_intent(invoice: &stripe_shared::Invoice) -> String {
    invoice
        .payments
        .as_ref()
        .and_then(|p| p.data.first())
        .and_then(|p| p.payment.payment_intent.as_ref())
        .map(|pi| pi.id().to_string())
        .expect("invoice payment intent")
}

/// A customer whose default payment method is the test card `token`.
async fn customer_with_card(stripe: &stripe::Client, token: &str) -> stripe_shared::Customer {
    CreateCustomer::new()
        .email("sub@example.com")
        .payment_method(token)
        .invoice_settings(stripe_core::customer::CreateCustomerInvoiceSettings {
            default_payment_method: Some(token.to_owned()),
            ..Default::default()
        })
        .send(stripe)
        .await
        .expect("customer with card")
}

#[test]
fn subscription_trials_charges_and_declines() {
    big_stack(|| async {
        let emulator = start().await;
        let stripe = client(&emulator, &test_key());
        let monthly = recurring_price(&stripe, 2000, CreatePriceRecurringInterval::Month).await;
        let setup_fee = one_time_price(&stripe, 5000).await;

        // A 14-day trial, no payment method: trialing, $0 first invoice paid.
        let plain = CreateCustomer::new().send(&stripe).await.expect("customer");
        let trial = CreateSubscription::new()
            .customer(plain.id.as_str())
            .items(vec![item(&monthly, 1)])
            .trial_period_days(14u32)
            .metadata(metadata(&[("plan", "pro")]))
            .description("Pro with trial")
            .send(&stripe)
            .await
            .expect("trial subscription");
        let now = now();
        assert!(trial.id.as_str().starts_with("sub_1"), "{}", trial.id);
        assert_eq!(trial.status, SubscriptionStatus::Trialing);
        let trial_end = trial.trial_end.expect("trial_end");
        assert!(trial_end.abs_diff(now + 14 * 86_400) <= 5, "{trial_end}");
        assert!(trial.trial_start.expect("trial_start").abs_diff(now) <= 5);
        assert_eq!(trial.metadata, metadata(&[("plan", "pro")]));
        assert_eq!(trial.description.as_deref(), Some("Pro with trial"));
        assert_eq!(trial.customer.id(), &plain.id);
        assert_eq!(trial.items.data.len(), 1);
        let first = &trial.items.data[0];
        assert!(first.id.as_str().starts_with("si_"));
        assert_eq!(first.price.id, monthly.id);
        assert_eq!(first.price.unit_amount, Some(2000));
        assert_eq!(first.quantity, Some(1));
        assert_eq!(first.current_period_end, trial_end);
        assert!(first.current_period_start.abs_diff(now) <= 5);
        let invoice = latest_invoice(&stripe, &trial).await;
        assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
        assert_eq!(invoice.total, 0);
        assert_eq!(
            invoice.billing_reason,
            Some(InvoiceBillingReason::SubscriptionCreate)
        );
        assert_eq!(
            invoice.lines.data[0].description.as_deref(),
            Some("Trial period for Plan")
        );
        let items = ListSubscriptionItem::new(trial.id.as_str())
            .send(&stripe)
            .await
            .expect("items");
        assert_eq!(items.data.len(), 1);
        let fetched = RetrieveSubscriptionItem::new(first.id.clone())
            .send(&stripe)
            .await
            .expect("item");
        assert_eq!(fetched.subscription, trial.id.to_string());

        // Paid at once with the customer's default card, a setup fee and a 25% coupon.
        let payer = customer_with_card(&stripe, "pm_card_visa").await;
        CreateCoupon::new()
            .id("QUARTER")
            .percent_off(25.0)
            .duration(CouponDuration::Forever)
            .send(&stripe)
            .await
            .expect("coupon");
        let active = CreateSubscription::new()
            .customer(payer.id.as_str())
            .items(vec![item(&monthly, 1)])
            .add_invoice_items(vec![CreateSubscriptionAddInvoiceItems {
                price: Some(setup_fee.id.to_string()),
                ..Default::default()
            }])
            .discounts(vec![coupon("QUARTER")])
            .send(&stripe)
            .await
            .expect("active subscription");
        assert_eq!(active.status, SubscriptionStatus::Active);
        assert!(active.trial_end.is_none());
        assert_eq!(active.discounts.len(), 1);
        let period = &active.items.data[0];
        let month = chrono::DateTime::from_timestamp(period.current_period_start, 0)
            .expect("start")
            .checked_add_months(chrono::Months::new(1))
            .expect("month")
            .timestamp();
        assert_eq!(period.current_period_end, month);
        let invoice = latest_invoice(&stripe, &active).await;
        assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
        assert_eq!(invoice.subtotal, 7000);
        assert_eq!(invoice.total, 5250);
        assert_eq!(invoice.amount_due, 5250);
        assert_eq!(invoice.amount_paid, 5250);
        assert_eq!(invoice.amount_remaining, 0);
        assert_eq!(invoice.lines.data.len(), 2);
        assert_eq!(
            invoice
                .total_discount_amounts
                .as_ref()
                .map(|d| d.iter().map(|a| a.amount).sum::<i64>()),
            Some(1750)
        );
        assert!(
            invoice
                .number
                .as_deref()
                .is_some_and(|n| n.ends_with("-0001"))
        );
        let paid_intent = RetrievePaymentIntent::new(invoice_intent(&invoice))
            .send(&stripe)
            .await
            .expect("invoice intent");
        assert_eq!(paid_intent.status, PaymentIntentStatus::Succeeded);
        assert_eq!(paid_intent.amount, 5250);
        // `payments` is only there when expanded, as in Stripe.
        let plain_invoice = RetrieveInvoice::new(invoice.id.clone().expect("id"))
            .send(&stripe)
            .await
            .expect("invoice");
        assert!(plain_invoice.payments.is_none());
        let with_discounts = RetrieveSubscription::new(active.id.clone())
            .expand(vec!["discounts".to_owned()])
            .send(&stripe)
            .await
            .expect("expanded discounts");
        let Some(Expandable::Object(discount)) = with_discounts.discounts.first() else {
            panic!("discount not expanded")
        };
        assert!(discount.id.as_str().starts_with("di_"));
        assert_eq!(
            discount.source.coupon.as_ref().map(|c| c.id().as_str()),
            Some("QUARTER")
        );
        assert_eq!(discount.subscription.as_deref(), Some(active.id.as_str()));
        let coupon_used = RetrieveCoupon::new("QUARTER")
            .send(&stripe)
            .await
            .expect("c");
        assert_eq!(coupon_used.times_redeemed, 1);

        // A declining card: incomplete, invoice open; paying it with a good card activates.
        let decliner = customer_with_card(&stripe, "pm_card_chargeDeclined").await;
        let incomplete = CreateSubscription::new()
            .customer(decliner.id.as_str())
            .items(vec![item(&monthly, 2)])
            .send(&stripe)
            .await
            .expect("incomplete subscription");
        assert_eq!(incomplete.status, SubscriptionStatus::Incomplete);
        let invoice = latest_invoice(&stripe, &incomplete).await;
        assert_eq!(invoice.status, Some(InvoiceStatus::Open));
        assert_eq!(invoice.amount_due, 4000);
        assert_eq!(invoice.amount_paid, 0);
        let intent = RetrievePaymentIntent::new(invoice_intent(&invoice))
            .send(&stripe)
            .await
            .expect("intent");
        assert_eq!(intent.status, PaymentIntentStatus::RequiresPaymentMethod);
        assert_eq!(
            intent
                .last_payment_error
                .and_then(|e| e.decline_code)
                .as_deref(),
            Some("generic_decline")
        );
        let (error, status) = stripe_error(
            PayInvoice::new(invoice.id.clone().expect("id"))
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 402);
        assert_eq!(error.code, Some(ApiErrorsCode::CardDeclined));
        let paid = PayInvoice::new(invoice.id.clone().expect("id"))
            .payment_method("pm_card_visa")
            .send(&stripe)
            .await
            .expect("pay with a good card");
        assert_eq!(paid.status, Some(InvoiceStatus::Paid));
        assert_eq!(paid.amount_paid, 4000);
        let now_active = RetrieveSubscription::new(incomplete.id.clone())
            .send(&stripe)
            .await
            .expect("retrieve");
        assert_eq!(now_active.status, SubscriptionStatus::Active);

        // No payment method at all: incomplete until the invoice's intent is confirmed.
        let pending = CreateSubscription::new()
            .customer(plain.id.as_str())
            .items(vec![item(&monthly, 1)])
            .send(&stripe)
            .await
            .expect("no payment method");
        assert_eq!(pending.status, SubscriptionStatus::Incomplete);
        let invoice = latest_invoice(&stripe, &pending).await;
        assert_eq!(invoice.status, Some(InvoiceStatus::Open));
        let confirmed = ConfirmPaymentIntent::new(invoice_intent(&invoice))
            .payment_method("pm_card_mastercard")
            .send(&stripe)
            .await
            .expect("confirm the invoice's intent");
        assert_eq!(confirmed.status, PaymentIntentStatus::Succeeded);
        let invoice = latest_invoice(&stripe, &pending).await;
        assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
        let sub = RetrieveSubscription::new(pending.id.clone())
            .send(&stripe)
            .await
            .expect("retrieve");
        assert_eq!(sub.status, SubscriptionStatus::Active);

        // error_if_incomplete: the decline comes back and nothing is created.
        let (error, status) = stripe_error(
            CreateSubscription::new()
                .customer(decliner.id.as_str())
                .items(vec![item(&monthly, 1)])
                .payment_behavior(CreateSubscriptionPaymentBehavior::ErrorIfIncomplete)
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 402);
        assert_eq!(error.decline_code.as_deref(), Some("generic_decline"));
        let of_decliner = ListSubscription::new()
            .customer(decliner.id.as_str())
            .send(&stripe)
            .await
            .expect("list");
        assert_eq!(of_decliner.data.len(), 1);

        // Lists by customer, price and status.
        let trialing = ListSubscription::new()
            .status(ListSubscriptionStatus::Trialing)
            .send(&stripe)
            .await
            .expect("trialing");
        assert_eq!(
            trialing
                .data
                .iter()
                .map(|s| s.id.clone())
                .collect::<Vec<_>>(),
            vec![trial.id.clone()]
        );
        let by_price = ListSubscription::new()
            .price(monthly.id.as_str())
            .send(&stripe)
            .await
            .expect("by price");
        assert_eq!(by_price.data.len(), 4);
        let invoices = ListInvoice::new()
            .subscription(active.id.as_str())
            .send(&stripe)
            .await
            .expect("invoices of a subscription");
        assert_eq!(invoices.data.len(), 1);
        emulator.stop().await;
    });
}

#[test]
fn subscription_changes_prorations_and_cancellation() {
    big_stack(|| async {
        let emulator = start().await;
        let stripe = client(&emulator, &test_key());
        let basic = recurring_price(&stripe, 2000, CreatePriceRecurringInterval::Month).await;
        let pro = recurring_price(&stripe, 5000, CreatePriceRecurringInterval::Month).await;
        let yearly = recurring_price(&stripe, 20000, CreatePriceRecurringInterval::Year).await;
        let customer = customer_with_card(&stripe, "pm_card_visa").await;
        let sub = CreateSubscription::new()
            .customer(customer.id.as_str())
            .items(vec![item(&basic, 1)])
            .send(&stripe)
            .await
            .expect("subscription");
        assert_eq!(sub.status, SubscriptionStatus::Active);
        let si = sub.items.data[0].id.clone();
        let first_invoice = sub.latest_invoice.as_ref().expect("invoice").id().clone();

        // always_invoice: prorations invoiced and paid at once.
        let upgraded = UpdateSubscription::new(sub.id.clone())
            .items(vec![UpdateSubscriptionItems {
                id: Some(si.to_string()),
                price: Some(pro.id.to_string()),
                ..Default::default()
            }])
            .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
            .send(&stripe)
            .await
            .expect("upgrade");
        assert_eq!(upgraded.status, SubscriptionStatus::Active);
        assert_eq!(upgraded.items.data.len(), 1);
        assert_eq!(upgraded.items.data[0].id, si, "the item keeps its id");
        assert_eq!(upgraded.items.data[0].price.id, pro.id);
        let invoice = latest_invoice(&stripe, &upgraded).await;
        assert_ne!(invoice.id, first_invoice);
        assert_eq!(
            invoice.billing_reason,
            Some(InvoiceBillingReason::SubscriptionUpdate)
        );
        assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
        assert_eq!(invoice.lines.data.len(), 2);
        let credit = invoice.lines.data[0].amount;
        let charge = invoice.lines.data[1].amount;
        assert!((-2000..=-1990).contains(&credit), "credit {credit}");
        assert!((4980..=5000).contains(&charge), "charge {charge}");
        assert!(
            invoice.lines.data[0]
                .description
                .as_deref()
                .is_some_and(|d| d.starts_with("Unused time on Plan after "))
        );
        assert_eq!(invoice.total, credit + charge);
        assert_eq!(invoice.amount_paid, invoice.total);
        assert!(invoice.lines.data.iter().all(|l| {
            l.parent
                .as_ref()
                .and_then(|p| p.invoice_item_details.as_ref())
                .is_some_and(|d| d.proration)
        }));

        // create_prorations: pending invoice items, no invoice yet.
        let downgraded = UpdateSubscription::new(sub.id.clone())
            .items(vec![UpdateSubscriptionItems {
                id: Some(si.to_string()),
                price: Some(basic.id.to_string()),
                quantity: Some(2),
                ..Default::default()
            }])
            .send(&stripe)
            .await
            .expect("create_prorations is the default");
        assert_eq!(downgraded.items.data[0].quantity, Some(2));
        assert_eq!(
            downgraded.latest_invoice.as_ref().map(|i| i.id().clone()),
            Some(invoice.id.clone()),
            "no new invoice"
        );
        let pending = ListInvoiceItem::new()
            .customer(customer.id.as_str())
            .pending(true)
            .send(&stripe)
            .await
            .expect("pending items");
        assert_eq!(pending.data.len(), 2);
        assert!(
            pending
                .data
                .iter()
                .all(|i| i.proration && i.invoice.is_none())
        );
        let net: i64 = pending.data.iter().map(|i| i.amount).sum();
        assert!((-1010..=-990).contains(&net), "net {net}");
        // They can be invoiced by hand: draft → open/paid.
        let draft = CreateInvoice::new()
            .customer(customer.id.as_str())
            .subscription(sub.id.as_str())
            .pending_invoice_items_behavior(CreateInvoicePendingInvoiceItemsBehavior::Include)
            .send(&stripe)
            .await
            .expect("draft");
        assert_eq!(draft.status, Some(InvoiceStatus::Draft));
        assert_eq!(draft.lines.data.len(), 2);
        assert_eq!(draft.total, net);
        let finalized = FinalizeInvoiceInvoice::new(draft.id.clone().expect("id"))
            .send(&stripe)
            .await
            .expect("finalize");
        // A credit: nothing to pay, the customer's balance takes it.
        assert_eq!(finalized.status, Some(InvoiceStatus::Paid));
        assert_eq!(finalized.amount_due, 0);
        assert_eq!(finalized.ending_balance, Some(net));
        assert!(
            ListInvoiceItem::new()
                .customer(customer.id.as_str())
                .pending(true)
                .send(&stripe)
                .await
                .expect("pending")
                .data
                .is_empty()
        );

        // proration_behavior=none: nothing billed.
        UpdateSubscription::new(sub.id.clone())
            .items(vec![UpdateSubscriptionItems {
                id: Some(si.to_string()),
                quantity: Some(3),
                ..Default::default()
            }])
            .proration_behavior(UpdateSubscriptionProrationBehavior::None)
            .send(&stripe)
            .await
            .expect("no prorations");
        assert!(
            ListInvoiceItem::new()
                .customer(customer.id.as_str())
                .pending(true)
                .send(&stripe)
                .await
                .expect("pending")
                .data
                .is_empty()
        );

        // Monthly → yearly resets the period and invoices at once.
        let switched = UpdateSubscription::new(sub.id.clone())
            .items(vec![UpdateSubscriptionItems {
                id: Some(si.to_string()),
                price: Some(yearly.id.to_string()),
                quantity: Some(1),
                ..Default::default()
            }])
            .send(&stripe)
            .await
            .expect("interval change");
        let period = &switched.items.data[0];
        assert!(period.current_period_start.abs_diff(now()) <= 5);
        let year = chrono::DateTime::from_timestamp(period.current_period_start, 0)
            .expect("start")
            .checked_add_months(chrono::Months::new(12))
            .expect("year")
            .timestamp();
        assert_eq!(period.current_period_end, year);
        let invoice = latest_invoice(&stripe, &switched).await;
        assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
        assert!(invoice.lines.data.iter().any(|l| l.amount == 20000));

        // cancel_at_period_end, then back.
        let ending = UpdateSubscription::new(sub.id.clone())
            .cancel_at_period_end(true)
            .metadata(metadata(&[("reason", "moving")]))
            .send(&stripe)
            .await
            .expect("cancel at period end");
        assert!(ending.cancel_at_period_end);
        assert_eq!(ending.cancel_at, Some(year));
        assert_eq!(ending.status, SubscriptionStatus::Active);
        assert_eq!(ending.metadata, metadata(&[("reason", "moving")]));
        let kept = UpdateSubscription::new(sub.id.clone())
            .cancel_at_period_end(false)
            .send(&stripe)
            .await
            .expect("keep");
        assert!(!kept.cancel_at_period_end);
        assert!(kept.cancel_at.is_none());

        // Cancel now.
        let canceled = CancelSubscription::new(sub.id.clone())
            .cancellation_details(CancelSubscriptionCancellationDetails {
                comment: Some("too pricey".to_owned()),
                ..Default::default()
            })
            .send(&stripe)
            .await
            .expect("cancel");
        assert_eq!(canceled.status, SubscriptionStatus::Canceled);
        assert!(canceled.canceled_at.expect("canceled_at").abs_diff(now()) <= 5);
        assert!(canceled.ended_at.expect("ended_at").abs_diff(now()) <= 5);
        assert_eq!(
            canceled
                .cancellation_details
                .and_then(|d| d.comment)
                .as_deref(),
            Some("too pricey")
        );
        let listed = ListSubscription::new()
            .customer(customer.id.as_str())
            .send(&stripe)
            .await
            .expect("list");
        assert!(
            listed.data.is_empty(),
            "canceled subscriptions are not listed by default"
        );
        let all = ListSubscription::new()
            .customer(customer.id.as_str())
            .status(ListSubscriptionStatus::All)
            .send(&stripe)
            .await
            .expect("list all");
        assert_eq!(all.data.len(), 1);
        let (error, status) = stripe_error(
            UpdateSubscription::new(sub.id.clone())
                .cancel_at_period_end(true)
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
        emulator.stop().await;
    });
}

#[test]
fn subscription_errors() {
    big_stack(|| async {
        let emulator = start().await;
        let key = test_key();
        let stripe = client(&emulator, &key);
        let monthly = recurring_price(&stripe, 2000, CreatePriceRecurringInterval::Month).await;
        let once = one_time_price(&stripe, 900).await;
        let customer = CreateCustomer::new().send(&stripe).await.expect("customer");

        let (error, status) = stripe_error(
            CreateSubscription::new()
                .customer("cus_nope")
                .items(vec![item(&monthly, 1)])
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        assert_eq!(error.param.as_deref(), Some("customer"));
        assert_eq!(
            error.message.as_deref(),
            Some("No such customer: 'cus_nope'")
        );

        let (error, status) = stripe_error(
            CreateSubscription::new()
                .customer(customer.id.as_str())
                .items(vec![CreateSubscriptionItems {
                    price: Some("price_nope".to_owned()),
                    ..Default::default()
                }])
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        assert_eq!(error.param.as_deref(), Some("items[0][price]"));
        assert_eq!(
            error.message.as_deref(),
            Some("No such price: 'price_nope'")
        );

        let (error, status) = stripe_error(
            CreateSubscription::new()
                .customer(customer.id.as_str())
                .items(vec![item(&once, 1)])
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.param.as_deref(), Some("items[0][price]"));
        assert!(
            error
                .message
                .as_deref()
                .is_some_and(|m| m.contains("type=one_time")),
            "{:?}",
            error.message
        );

        let (error, status) = stripe_error(
            CreateSubscription::new()
                .customer(customer.id.as_str())
                .items(vec![item(&monthly, 1)])
                .discounts(vec![coupon("NOPE")])
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        assert_eq!(error.param.as_deref(), Some("discounts[0][coupon]"));
        assert_eq!(error.message.as_deref(), Some("No such coupon: 'NOPE'"));
        // The legacy `coupon` parameter is gone at this API version: refused as unknown.
        let raw = Raw::new(&emulator, &key)
            .post(
                "/v1/subscriptions",
                &format!(
                    "customer={}&items[0][price]={}&coupon=NOPE",
                    customer.id, monthly.id
                ),
            )
            .await;
        assert_eq!(raw.status, 400);
        assert_eq!(raw.json["error"]["param"], "coupon");
        assert_eq!(raw.json["error"]["code"], "parameter_unknown");

        let other = customer_with_card(&stripe, "pm_card_visa").await;
        let foreign_pm = other
            .invoice_settings
            .and_then(|s| s.default_payment_method)
            .expect("pm")
            .id()
            .to_string();
        let (error, status) = stripe_error(
            CreateSubscription::new()
                .customer(customer.id.as_str())
                .items(vec![item(&monthly, 1)])
                .default_payment_method(foreign_pm.as_str())
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.param.as_deref(), Some("default_payment_method"));

        let (error, status) = stripe_error(
            CreateSubscription::new()
                .customer(customer.id.as_str())
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.code, Some(ApiErrorsCode::ParameterMissing));
        assert_eq!(error.param.as_deref(), Some("items"));

        // A test token as default_payment_method is attached and charged.
        let sub = CreateSubscription::new()
            .customer(customer.id.as_str())
            .items(vec![item(&monthly, 1)])
            .default_payment_method("pm_card_visa")
            .send(&stripe)
            .await
            .expect("token as default payment method");
        assert_eq!(sub.status, SubscriptionStatus::Active);
        let pm = sub.default_payment_method.expect("pm").id().clone();
        let pm = RetrievePaymentMethod::new(pm)
            .send(&stripe)
            .await
            .expect("pm");
        assert_eq!(
            pm.customer.map(|c| c.id().clone()),
            Some(customer.id.clone())
        );

        // Nothing is left behind by the rejected calls.
        let all = ListSubscription::new()
            .status(ListSubscriptionStatus::All)
            .send(&stripe)
            .await
            .expect("list");
        assert_eq!(all.data.len(), 1);
        let (error, status) =
            stripe_error(RetrieveSubscription::new("sub_nope").send(&stripe).await);
        assert_eq!(status, 404);
        assert_eq!(
            error.message.as_deref(),
            Some("No such subscription: 'sub_nope'")
        );
        // Updating the customer's default keeps working.
        UpdateCustomer::new(customer.id.clone())
            .invoice_settings(UpdateCustomerInvoiceSettings {
                default_payment_method: Some(pm.id.to_string()),
                ..Default::default()
            })
            .send(&stripe)
            .await
            .expect("customer default");
        // Deleting the customer cancels its subscriptions.
        stripe_core::customer::DeleteCustomer::new(customer.id.clone())
            .send(&stripe)
            .await
            .expect("delete customer");
        let ended = RetrieveSubscription::new(sub.id.clone())
            .send(&stripe)
            .await
            .expect("subscription");
        assert_eq!(ended.status, SubscriptionStatus::Canceled);
        assert!(ended.ended_at.is_some());
        emulator.stop().await;
    });
}

fn line(price: &stripe_shared::Price, quantity: u64) -> CreateCheckoutSessionLineItems {
    CreateCheckoutSessionLineItems {
        price: Some(price.id.to_string()),
        quantity: Some(quantity),
        ..Default::default()
    }
}

/// Completes a checkout session through the emulator's test helper.
async fn complete(raw: &Raw, session: &str, body: &str) -> common::Reply {
    raw.send(
        raw.request(
            reqwest::Method::POST,
            &format!("/_emulator/checkout/sessions/{session}/complete"),
        )
        .header("content-type", "application/json")
        .body(body.to_owned()),
    )
    .await
}

#[test]
fn checkout_sessions() {
    big_stack(|| async {
        let emulator = start().await;
        let key = test_key();
        let stripe = client(&emulator, &key);
        let raw = Raw::new(&emulator, &key);
        let monthly = recurring_price(&stripe, 2000, CreatePriceRecurringInterval::Month).await;
        let setup_fee = one_time_price(&stripe, 5000).await;
        CreateCoupon::new()
            .id("HALF")
            .percent_off(50.0)
            .send(&stripe)
            .await
            .expect("coupon");

        // Subscription mode with a trial, a setup fee and a coupon.
        let session = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .success_url("https://app.example.com/done?session={CHECKOUT_SESSION_ID}")
            .cancel_url("https://app.example.com/pricing")
            .customer_email("new@example.com")
            .line_items(vec![line(&monthly, 1), line(&setup_fee, 1)])
            .discounts(vec![CreateCheckoutSessionDiscounts {
                coupon: Some("HALF".to_owned()),
                ..Default::default()
            }])
            .subscription_data(CreateCheckoutSessionSubscriptionData {
                trial_period_days: Some(7),
                description: Some("Team plan".to_owned()),
                ..Default::default()
            })
            .metadata(metadata(&[("order", "42")]))
            .send(&stripe)
            .await
            .expect("subscription session");
        assert!(
            session.id.as_str().starts_with("cs_test_"),
            "{}",
            session.id
        );
        assert_eq!(session.status, Some(CheckoutSessionStatus::Open));
        assert_eq!(session.payment_status, CheckoutSessionPaymentStatus::Unpaid);
        assert_eq!(session.mode, CheckoutSessionMode::Subscription);
        assert_eq!(
            session.url.as_deref(),
            Some(format!("{}/c/pay/{}", emulator.base_url(), session.id).as_str())
        );
        assert_eq!(session.expires_at, session.created + 24 * 60 * 60);
        assert_eq!(session.currency, Some(Currency::USD));
        assert_eq!(
            session.amount_subtotal,
            Some(5000),
            "the trial defers the plan"
        );
        assert_eq!(session.amount_total, Some(2500));
        assert_eq!(
            session.total_details.as_ref().map(|t| t.amount_discount),
            Some(2500)
        );
        assert_eq!(session.customer_email.as_deref(), Some("new@example.com"));
        assert!(session.customer.is_none());
        assert!(session.subscription.is_none());
        assert_eq!(session.metadata, Some(metadata(&[("order", "42")])));
        let items = ListLineItemsCheckoutSession::new(session.id.clone())
            .send(&stripe)
            .await
            .expect("line items");
        assert_eq!(items.data.len(), 2);
        assert_eq!(
            items.data[0].price.as_ref().map(|p| p.id.clone()),
            Some(monthly.id.clone())
        );
        assert_eq!(items.data[1].amount_subtotal, 5000);
        let expanded = RetrieveCheckoutSession::new(session.id.clone())
            .expand(vec!["line_items".to_owned()])
            .send(&stripe)
            .await
            .expect("expanded line items");
        assert_eq!(expanded.line_items.map(|l| l.data.len()), Some(2));

        let done = complete(&raw, session.id.as_str(), "{}").await;
        assert_eq!(done.status, 200, "{}", done.text);
        let session = RetrieveCheckoutSession::new(session.id.clone())
            .send(&stripe)
            .await
            .expect("completed session");
        assert_eq!(session.status, Some(CheckoutSessionStatus::Complete));
        assert_eq!(session.payment_status, CheckoutSessionPaymentStatus::Paid);
        assert!(session.url.is_none());
        let customer_id = session
            .customer
            .as_ref()
            .expect("customer created")
            .id()
            .clone();
        assert_eq!(
            session
                .customer_details
                .as_ref()
                .and_then(|d| d.email.as_deref()),
            Some("new@example.com")
        );
        let sub_id = session
            .subscription
            .as_ref()
            .expect("subscription")
            .id()
            .clone();
        let sub = RetrieveSubscription::new(sub_id.clone())
            .send(&stripe)
            .await
            .expect("the subscription retrieves");
        assert_eq!(sub.status, SubscriptionStatus::Trialing);
        assert_eq!(sub.customer.id(), &customer_id);
        assert!(
            sub.trial_end
                .expect("trial_end")
                .abs_diff(now() + 7 * 86_400)
                <= 5
        );
        assert_eq!(sub.description.as_deref(), Some("Team plan"));
        assert!(sub.default_payment_method.is_some());
        let invoice = latest_invoice(&stripe, &sub).await;
        assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
        assert_eq!(invoice.amount_paid, 2500);
        assert_eq!(
            session.invoice.as_ref().and_then(|i| i.id().clone()),
            invoice.id.clone()
        );
        match RetrieveCustomer::new(customer_id.clone())
            .send(&stripe)
            .await
            .expect("customer")
        {
            RetrieveCustomerReturned::Customer(c) => {
                assert_eq!(c.email.as_deref(), Some("new@example.com"))
            }
            RetrieveCustomerReturned::DeletedCustomer(_) => panic!("deleted"),
        }
        // A completed session cannot complete again.
        let again = complete(&raw, session.id.as_str(), "{}").await;
        assert_eq!(again.status, 400);

        // Payment mode with inline price data: a declined card leaves it open.
        let pay = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .success_url("https://app.example.com/thanks")
            .line_items(vec![CreateCheckoutSessionLineItems {
                price_data: Some(CreateCheckoutSessionLineItemsPriceData {
                    unit_amount: Some(1500),
                    product_data: Some(stripe_checkout::checkout_session::ProductData::new(
                        "T-shirt",
                    )),
                    ..CreateCheckoutSessionLineItemsPriceData::new(Currency::USD)
                }),
                quantity: Some(2),
                ..Default::default()
            }])
            .send(&stripe)
            .await
            .expect("payment session");
        assert_eq!(pay.amount_total, Some(3000));
        assert!(pay.cancel_url.is_none());
        let declined = complete(
            &raw,
            pay.id.as_str(),
            r#"{"payment_method": "pm_card_chargeDeclined"}"#,
        )
        .await;
        assert_eq!(declined.status, 402);
        assert_eq!(declined.json["error"]["decline_code"], "generic_decline");
        let still_open = RetrieveCheckoutSession::new(pay.id.clone())
            .send(&stripe)
            .await
            .expect("open");
        assert_eq!(still_open.status, Some(CheckoutSessionStatus::Open));
        let paid = complete(&raw, pay.id.as_str(), "").await;
        assert_eq!(paid.status, 200, "{}", paid.text);
        let pay = RetrieveCheckoutSession::new(pay.id.clone())
            .send(&stripe)
            .await
            .expect("paid session");
        assert_eq!(pay.payment_status, CheckoutSessionPaymentStatus::Paid);
        assert!(
            pay.customer.is_none(),
            "no customer_creation=always, no customer"
        );
        let intent = RetrievePaymentIntent::new(pay.payment_intent.expect("pi").id().clone())
            .send(&stripe)
            .await
            .expect("intent");
        assert_eq!(intent.status, PaymentIntentStatus::Succeeded);
        assert_eq!(intent.amount, 3000);

        // Setup mode for an existing customer.
        let customer = CreateCustomer::new()
            .email("setup@example.com")
            .send(&stripe)
            .await
            .expect("customer");
        let setup = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Setup)
            .currency(Currency::USD)
            .customer(customer.id.as_str())
            .success_url("https://app.example.com/saved")
            .send(&stripe)
            .await
            .expect("setup session");
        assert_eq!(
            setup.payment_status,
            CheckoutSessionPaymentStatus::NoPaymentRequired
        );
        assert!(setup.amount_total.is_none());
        let saved = complete(
            &raw,
            setup.id.as_str(),
            r#"{"payment_method": "pm_card_mastercard"}"#,
        )
        .await;
        assert_eq!(saved.status, 200, "{}", saved.text);
        let setup = RetrieveCheckoutSession::new(setup.id.clone())
            .send(&stripe)
            .await
            .expect("setup done");
        assert_eq!(setup.status, Some(CheckoutSessionStatus::Complete));
        assert_eq!(
            setup.payment_status,
            CheckoutSessionPaymentStatus::NoPaymentRequired
        );
        let seti = RetrieveSetupIntent::new(setup.setup_intent.expect("seti").id().clone())
            .send(&stripe)
            .await
            .expect("setup intent");
        assert_eq!(seti.status, SetupIntentStatus::Succeeded);
        let pm = RetrievePaymentMethod::new(seti.payment_method.expect("pm").id().clone())
            .send(&stripe)
            .await
            .expect("saved pm");
        assert_eq!(
            pm.customer.map(|c| c.id().clone()),
            Some(customer.id.clone())
        );
        assert_eq!(pm.card.map(|c| c.last4), Some("4444".to_owned()));

        // Expire.
        let to_expire = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .success_url("https://app.example.com/thanks")
            .line_items(vec![line(&setup_fee, 1)])
            .send(&stripe)
            .await
            .expect("session");
        let expired = ExpireCheckoutSession::new(to_expire.id.clone())
            .send(&stripe)
            .await
            .expect("expire");
        assert_eq!(expired.status, Some(CheckoutSessionStatus::Expired));
        assert!(expired.url.is_none());
        let (_, status) = stripe_error(
            ExpireCheckoutSession::new(to_expire.id.clone())
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(complete(&raw, to_expire.id.as_str(), "").await.status, 400);

        // Lists.
        let all = ListCheckoutSession::new()
            .send(&stripe)
            .await
            .expect("list");
        assert_eq!(all.data.len(), 4);
        assert_eq!(all.data[0].id, to_expire.id, "newest first");
        let of_customer = ListCheckoutSession::new()
            .customer(customer.id.as_str())
            .send(&stripe)
            .await
            .expect("by customer");
        assert_eq!(of_customer.data.len(), 1);
        // Customers: the one checkout created and the one made here.
        assert_eq!(
            ListCustomer::new()
                .send(&stripe)
                .await
                .expect("c")
                .data
                .len(),
            2
        );
        emulator.stop().await;
    });
}

#[test]
fn checkout_validation_and_hosted_page() {
    big_stack(|| async {
        let emulator = start().await;
        let key = test_key();
        let stripe = client(&emulator, &key);
        let monthly = recurring_price(&stripe, 2000, CreatePriceRecurringInterval::Month).await;
        let once = one_time_price(&stripe, 1200).await;
        let base = || {
            CreateCheckoutSession::new()
                .success_url("https://app.example.com/done")
                .mode(CheckoutSessionMode::Payment)
        };

        let (error, status) = stripe_error(
            base()
                .line_items(vec![line(&monthly, 1)])
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.param.as_deref(), Some("line_items[0][price]"));
        assert!(
            error
                .message
                .as_deref()
                .is_some_and(|m| m.contains("recurring price"))
        );
        let (error, _) = stripe_error(
            base()
                .mode(CheckoutSessionMode::Subscription)
                .line_items(vec![line(&once, 1)])
                .send(&stripe)
                .await,
        );
        assert_eq!(error.param.as_deref(), Some("line_items"));
        let (error, status) = stripe_error(
            base()
                .line_items(vec![CreateCheckoutSessionLineItems {
                    price: Some("price_nope".to_owned()),
                    quantity: Some(1),
                    ..Default::default()
                }])
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        assert_eq!(error.param.as_deref(), Some("line_items[0][price]"));
        assert_eq!(
            error.message.as_deref(),
            Some("No such price: 'price_nope'")
        );
        let (error, _) = stripe_error(
            base()
                .line_items(vec![line(&once, 1)])
                .discounts(vec![CreateCheckoutSessionDiscounts {
                    coupon: Some("NOPE".to_owned()),
                    ..Default::default()
                }])
                .send(&stripe)
                .await,
        );
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        assert_eq!(error.param.as_deref(), Some("discounts[0][coupon]"));
        assert_eq!(error.message.as_deref(), Some("No such coupon: 'NOPE'"));
        let (error, _) = stripe_error(base().send(&stripe).await);
        assert_eq!(error.code, Some(ApiErrorsCode::ParameterMissing));
        assert_eq!(error.param.as_deref(), Some("line_items"));
        let (error, _) = stripe_error(
            CreateCheckoutSession::new()
                .mode(CheckoutSessionMode::Payment)
                .line_items(vec![line(&once, 1)])
                .send(&stripe)
                .await,
        );
        assert_eq!(error.param.as_deref(), Some("success_url"));
        let (error, _) = stripe_error(
            base()
                .line_items(vec![line(&once, 1)])
                .customer("cus_nope")
                .send(&stripe)
                .await,
        );
        assert_eq!(
            error.message.as_deref(),
            Some("No such customer: 'cus_nope'")
        );
        assert_eq!(error.param.as_deref(), Some("customer"));
        assert!(
            ListCheckoutSession::new()
                .send(&stripe)
                .await
                .expect("list")
                .data
                .is_empty(),
            "rejected sessions leave nothing"
        );

        // The hosted page: shows the total, pays, redirects to success_url.
        let session = base()
            .success_url("https://app.example.com/done?s={CHECKOUT_SESSION_ID}")
            .cancel_url("https://app.example.com/cart")
            .line_items(vec![line(&once, 3)])
            .send(&stripe)
            .await
            .expect("session");
        let url = session.url.clone().expect("url");
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("browser");
        let page = browser.get(&url).send().await.expect("page");
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("html");
        assert!(html.contains("$36.00"), "{html}");
        assert!(
            html.contains("href=\"https://app.example.com/cart\""),
            "{html}"
        );
        let declined = browser
            .post(&url)
            .form(&[("payment_method", "pm_card_chargeDeclinedInsufficientFunds")])
            .send()
            .await
            .expect("declined");
        assert_eq!(declined.status(), 402);
        assert!(
            declined
                .text()
                .await
                .expect("html")
                .contains("insufficient funds")
        );
        let paid = browser
            .post(&url)
            .form(&[("payment_method", "pm_card_visa")])
            .send()
            .await
            .expect("paid");
        assert_eq!(paid.status(), 303);
        assert_eq!(
            paid.headers().get("location").and_then(|l| l.to_str().ok()),
            Some(format!("https://app.example.com/done?s={}", session.id).as_str())
        );
        let session = RetrieveCheckoutSession::new(session.id.clone())
            .send(&stripe)
            .await
            .expect("session");
        assert_eq!(session.status, Some(CheckoutSessionStatus::Complete));
        assert_eq!(session.amount_total, Some(3600));
        let page = browser.get(&url).send().await.expect("page");
        assert!(page.text().await.expect("html").contains("is complete"));
        let unknown = browser
            .get(format!("{}/c/pay/cs_test_nope", emulator.base_url()))
            .send()
            .await
            .expect("unknown");
        assert_eq!(unknown.status(), 404);
        emulator.stop().await;
    });
}

#[test]
fn webhook_endpoints() {
    big_stack(|| async {
        let emulator = start().await;
        let stripe = client(&emulator, &test_key());
        let created = CreateWebhookEndpoint::new(
            vec![
                CreateWebhookEndpointEnabledEvents::CustomerSubscriptionCreated,
                CreateWebhookEndpointEnabledEvents::InvoicePaid,
            ],
            "https://hooks.example.com/stripe",
        )
        .description("billing events")
        .metadata(metadata(&[("env", "test")]))
        .send(&stripe)
        .await
        .expect("endpoint");
        assert!(created.id.as_str().starts_with("we_1"), "{}", created.id);
        let secret = created
            .secret
            .clone()
            .expect("the secret comes with the create");
        assert!(
            secret.starts_with("whsec_") && secret.len() == 38,
            "{secret}"
        );
        assert_eq!(created.status, "enabled");
        assert_eq!(created.url, "https://hooks.example.com/stripe");
        assert_eq!(
            created.enabled_events,
            vec!["customer.subscription.created", "invoice.paid"]
        );
        assert_eq!(created.description.as_deref(), Some("billing events"));
        assert_eq!(created.metadata, metadata(&[("env", "test")]));
        assert!(created.api_version.is_none());

        let fetched = RetrieveWebhookEndpoint::new(created.id.clone())
            .send(&stripe)
            .await
            .expect("retrieve");
        assert!(
            fetched.secret.is_none(),
            "only the create answers the secret"
        );
        assert_eq!(fetched.enabled_events, created.enabled_events);
        let listed = ListWebhookEndpoint::new()
            .send(&stripe)
            .await
            .expect("list");
        assert_eq!(listed.data.len(), 1);
        assert!(listed.data[0].secret.is_none());

        let updated = UpdateWebhookEndpoint::new(created.id.clone())
            .enabled_events(vec![UpdateWebhookEndpointEnabledEvents::All])
            .url("https://hooks.example.com/v2")
            .disabled(true)
            .send(&stripe)
            .await
            .expect("update");
        assert_eq!(updated.status, "disabled");
        assert_eq!(updated.enabled_events, vec!["*"]);
        assert_eq!(updated.url, "https://hooks.example.com/v2");
        assert_eq!(updated.description.as_deref(), Some("billing events"));
        let enabled = UpdateWebhookEndpoint::new(created.id.clone())
            .disabled(false)
            .send(&stripe)
            .await
            .expect("enable");
        assert_eq!(enabled.status, "enabled");

        // Validation.
        let (error, status) = stripe_error(
            CreateWebhookEndpoint::new(
                vec![CreateWebhookEndpointEnabledEvents::Unknown(
                    "customer.nope".to_owned(),
                )],
                "https://hooks.example.com/x",
            )
            .send(&stripe)
            .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
        assert_eq!(error.param.as_deref(), Some("enabled_events"));
        let (error, status) = stripe_error(
            CreateWebhookEndpoint::new(vec![CreateWebhookEndpointEnabledEvents::All], "not a url")
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.code, Some(ApiErrorsCode::UrlInvalid));
        assert_eq!(error.param.as_deref(), Some("url"));

        // At most 16 per account.
        for i in 1..16 {
            CreateWebhookEndpoint::new(
                vec![CreateWebhookEndpointEnabledEvents::All],
                format!("https://hooks.example.com/{i}"),
            )
            .send(&stripe)
            .await
            .expect("endpoint within the limit");
        }
        let (error, status) = stripe_error(
            CreateWebhookEndpoint::new(
                vec![CreateWebhookEndpointEnabledEvents::All],
                "https://hooks.example.com/17",
            )
            .send(&stripe)
            .await,
        );
        assert_eq!(status, 400);
        assert!(
            error.message.as_deref().is_some_and(|m| m.contains("16")),
            "{:?}",
            error.message
        );

        let deleted = DeleteWebhookEndpoint::new(created.id.clone())
            .send(&stripe)
            .await
            .expect("delete");
        assert_eq!(deleted.id, created.id);
        let (error, status) = stripe_error(
            RetrieveWebhookEndpoint::new(created.id.clone())
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 404);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        // Room for one again.
        CreateWebhookEndpoint::new(
            vec![CreateWebhookEndpointEnabledEvents::CheckoutSessionCompleted],
            "https://hooks.example.com/again",
        )
        .send(&stripe)
        .await
        .expect("after a delete");
        let all = ListWebhookEndpoint::new()
            .limit(100)
            .send(&stripe)
            .await
            .expect("list");
        assert_eq!(all.data.len(), 16);
        emulator.stop().await;
    });
}
