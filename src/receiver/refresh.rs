//! Settling a same-second tie: the object is re-read from Stripe and that current state is
//! written (see the module's Ordering).

use crate::db::{self, Database, DbError, Freshness, events};
use crate::error::ApiError;
use crate::stripe::{GatewayError, StripeApi};
use crate::tenant_cache::TenantCache;

use super::apply::apply;
use super::event::Event;
use super::target::{Target, target_of};

/// Stripe's current state of the object `seen` is a state of. Customers, subscriptions,
/// payments and checkout sessions are re-read through their typed calls. The others (a
/// product, price, invoice, charge, refund, payment method or payment link) are re-read as JSON and
/// read as an `*.updated` event would carry them; one Stripe no longer has (404: a deleted product, price
/// or draft invoice) is the event's state marked deleted, so the tie settles instead of
/// failing on every retry. Targets not under the watermark rule never tie: `Nothing`.
pub(super) async fn reread(stripe: &dyn StripeApi, seen: &Target) -> Result<Target, GatewayError> {
    match seen {
        Target::Customer(c) => return stripe.retrieve_customer(&c.id).await.map(Target::Customer),
        Target::Subscription(s) => {
            return stripe
                .retrieve_subscription(&s.id)
                .await
                .map(Target::Subscription);
        }
        Target::Payment(p) => {
            return stripe
                .retrieve_payment_intent(&p.id)
                .await
                .map(Target::Payment);
        }
        Target::Checkout(c) => {
            return stripe
                .retrieve_checkout_session(&c.id)
                .await
                .map(Target::Checkout);
        }
        _ => {}
    }
    // Not under the watermark rule (never a tie): nothing to re-read.
    let Some((kind, path)) = seen.json_reread() else {
        return Ok(Target::Nothing);
    };
    match stripe.retrieve_json(&path).await {
        Ok(object) => Ok(target_of(kind, &object)),
        Err(GatewayError::Stripe(failure)) if failure.http_status == 404 => {
            Ok(match seen.clone() {
                Target::Product(mut p) => {
                    p.deleted = true;
                    Target::Product(p)
                }
                Target::Price(mut p) => {
                    p.deleted = true;
                    Target::Price(p)
                }
                Target::Invoice(mut i) => {
                    i.deleted = true;
                    Target::Invoice(i)
                }
                // Charges, refunds, payment methods and payment links are never deleted at
                // Stripe.
                _ => return Err(GatewayError::Stripe(failure)),
            })
        }
        Err(err) => Err(err),
    }
}

/// Re-reads a tied object from Stripe and writes that current state. A failure is a 503, so
/// Stripe delivers again and the retry finishes the refresh.
pub(super) async fn refresh(
    db: &Database,
    tenants: &TenantCache,
    tenant_id: &str,
    event: &Event,
) -> Result<(), ApiError> {
    let tenant = tenants
        .by_id(tenant_id)
        .await?
        .ok_or_else(|| ApiError::internal("an endpoint's tenant is gone"))?;
    let gateway_failed = |err: GatewayError| {
        tracing::warn!(stripe.event_id = %event.id, error = %err, "re-read for a same-second tie failed");
        ApiError::unavailable("Stripe could not be reached to settle two same-second events")
    };
    let fresh = reread(tenant.stripe.as_ref(), &event.target)
        .await
        .map_err(gateway_failed)?;
    let (tenant_id, event_id, created) = (tenant_id.to_owned(), event.id.clone(), event.created);
    db.run(move |conn| {
        db::write_transaction(conn, |conn| {
            apply(conn, &tenant_id, &fresh, Freshness::Current(created))?;
            events::set_outcome(conn, &tenant_id, &event_id, events::REFRESHED)
        })
        .map_err(DbError::from)
    })
    .await
    // Any storage failure is transient for Stripe: a non-2xx makes it retry.
    .map_err(ApiError::unavailable)
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use serde_json::{Value, json};

    use super::*;
    use crate::stripe::objects::{
        CheckoutSnapshot, CreatedEndpoint, CustomerSnapshot, EndpointState, PaymentLinkSnapshot,
        PaymentMethodSnapshot, PaymentSnapshot, PortalSession, PriceSnapshot, ProductSnapshot,
        RefundSnapshot, SubscriptionSnapshot,
    };
    use crate::stripe::requests::{
        CustomerChange, CustomerParams, NewCheckout, NewPayment, NewPaymentLink, NewProduct,
        NewProductPrice, NewRefund, NewSubscription, PaymentConfirmation, PaymentLinkChange,
        PriceChange, ProductChange, SubscriptionChange,
    };
    use crate::stripe::{Key, StripeFailure};

    /// A Stripe that answers re-reads as JSON from a fixed list (paths it does not have: 404)
    /// and refuses every other call.
    struct FakeStripe {
        objects: Vec<(&'static str, Value)>,
    }

    fn not_here<T>() -> Result<T, GatewayError> {
        Err(GatewayError::Config("not used by this test".into()))
    }

    fn no_such(path: &str) -> GatewayError {
        GatewayError::Stripe(Box::new(StripeFailure {
            http_status: 404,
            error_type: "invalid_request_error".into(),
            code: Some("resource_missing".into()),
            decline_code: None,
            param: Some("id".into()),
            message: format!("No such object: {path}"),
            request_id: Some("req_fake".into()),
            payment_intent: None,
            retry_after: None,
        }))
    }

    #[async_trait]
    impl StripeApi for FakeStripe {
        async fn retrieve_json(&self, path: &str) -> Result<Value, GatewayError> {
            self.objects
                .iter()
                .find(|(known, _)| *known == path)
                .map(|(_, object)| object.clone())
                .ok_or_else(|| no_such(path))
        }
        async fn list_json(
            &self,
            path: &str,
            _: &[(String, String)],
            _: &'static crate::stripe::objects::Fields,
        ) -> Result<Value, GatewayError> {
            Err(no_such(path))
        }
        async fn create_customer(
            &self,
            _: CustomerParams<'_>,
            _: Key<'_>,
        ) -> Result<CustomerSnapshot, GatewayError> {
            not_here()
        }
        async fn retrieve_customer(&self, _: &str) -> Result<CustomerSnapshot, GatewayError> {
            not_here()
        }
        async fn update_webhook_endpoint(
            &self,
            _: &str,
            _: Option<bool>,
            _: Option<&[String]>,
            _: Key<'_>,
        ) -> Result<EndpointState, GatewayError> {
            not_here()
        }
        async fn delete_webhook_endpoint(&self, _: &str, _: Key<'_>) -> Result<(), GatewayError> {
            not_here()
        }
        async fn update_customer(
            &self,
            _: &str,
            _: &CustomerChange,
            _: Key<'_>,
        ) -> Result<CustomerSnapshot, GatewayError> {
            not_here()
        }
        async fn delete_customer(
            &self,
            _: &str,
            _: Key<'_>,
        ) -> Result<CustomerSnapshot, GatewayError> {
            not_here()
        }
        async fn create_portal_session(
            &self,
            _: &str,
            _: &str,
            _: Key<'_>,
        ) -> Result<PortalSession, GatewayError> {
            not_here()
        }
        async fn attach_card(
            &self,
            _: &str,
            _: &str,
            _: bool,
            _: Key<'_>,
        ) -> Result<PaymentMethodSnapshot, GatewayError> {
            not_here()
        }
        async fn detach_card(
            &self,
            _: &str,
            _: Key<'_>,
        ) -> Result<PaymentMethodSnapshot, GatewayError> {
            not_here()
        }
        async fn create_product(
            &self,
            _: &NewProduct,
            _: Key<'_>,
        ) -> Result<ProductSnapshot, GatewayError> {
            not_here()
        }
        async fn create_product_price(
            &self,
            _: &NewProductPrice,
            _: Key<'_>,
        ) -> Result<PriceSnapshot, GatewayError> {
            not_here()
        }
        async fn create_payment_link(
            &self,
            _: &NewPaymentLink,
            _: Key<'_>,
        ) -> Result<PaymentLinkSnapshot, GatewayError> {
            not_here()
        }
        async fn update_product(
            &self,
            _: &str,
            _: &ProductChange,
            _: Key<'_>,
        ) -> Result<ProductSnapshot, GatewayError> {
            not_here()
        }
        async fn update_price(
            &self,
            _: &str,
            _: &PriceChange,
            _: Key<'_>,
        ) -> Result<PriceSnapshot, GatewayError> {
            not_here()
        }
        async fn update_payment_link(
            &self,
            _: &str,
            _: &PaymentLinkChange,
            _: Key<'_>,
        ) -> Result<PaymentLinkSnapshot, GatewayError> {
            not_here()
        }
        async fn create_checkout_session(
            &self,
            _: NewCheckout,
            _: Key<'_>,
        ) -> Result<CheckoutSnapshot, GatewayError> {
            not_here()
        }
        async fn retrieve_checkout_session(
            &self,
            _: &str,
        ) -> Result<CheckoutSnapshot, GatewayError> {
            not_here()
        }
        async fn create_payment_intent(
            &self,
            _: NewPayment,
            _: Key<'_>,
        ) -> Result<PaymentSnapshot, GatewayError> {
            not_here()
        }
        async fn confirm_payment_intent(
            &self,
            _: &str,
            _: PaymentConfirmation,
            _: Key<'_>,
        ) -> Result<PaymentSnapshot, GatewayError> {
            not_here()
        }
        async fn retrieve_payment_intent(&self, _: &str) -> Result<PaymentSnapshot, GatewayError> {
            not_here()
        }
        async fn create_refund(
            &self,
            _: &NewRefund,
            _: Key<'_>,
        ) -> Result<RefundSnapshot, GatewayError> {
            not_here()
        }
        async fn create_subscription(
            &self,
            _: NewSubscription,
            _: Key<'_>,
        ) -> Result<SubscriptionSnapshot, GatewayError> {
            not_here()
        }
        async fn retrieve_subscription(
            &self,
            _: &str,
        ) -> Result<SubscriptionSnapshot, GatewayError> {
            not_here()
        }
        async fn update_subscription(
            &self,
            _: &str,
            _: SubscriptionChange,
            _: Key<'_>,
        ) -> Result<SubscriptionSnapshot, GatewayError> {
            not_here()
        }
        async fn cancel_subscription(
            &self,
            _: &str,
            _: Key<'_>,
        ) -> Result<SubscriptionSnapshot, GatewayError> {
            not_here()
        }
        async fn create_webhook_endpoint(
            &self,
            _: &str,
            _: &[String],
            _: Key<'_>,
        ) -> Result<CreatedEndpoint, GatewayError> {
            not_here()
        }
        async fn proxy(
            &self,
            _: crate::stripe::fetch::FetchMethod,
            _: &crate::stripe::fetch::FetchPath,
            _: &serde_json::Map<String, Value>,
            _: Key<'_>,
        ) -> Result<Value, GatewayError> {
            not_here()
        }
    }

    fn product(id: &str, name: &str) -> Target {
        target_of(
            "product.updated",
            &json!({"id": id, "object": "product", "name": name, "active": true,
                    "created": 1_700_000_000, "metadata": {}}),
        )
    }

    fn price(id: &str, unit_amount: i64, nickname: &str) -> Value {
        json!({"id": id, "object": "price", "product": "prod_1", "active": true,
               "currency": "usd", "unit_amount": unit_amount, "type": "one_time",
               "nickname": nickname, "created": 1_700_000_000, "metadata": {}})
    }

    #[tokio::test]
    async fn a_product_stripe_no_longer_has_is_the_events_state_marked_deleted() {
        let stripe = FakeStripe { objects: vec![] };
        let seen = product("prod_gone", "Old name");
        let fresh = reread(&stripe, &seen).await.unwrap();
        let Target::Product(product) = fresh else {
            panic!("a product's re-read is a product: {fresh:?}");
        };
        assert_eq!(product.id, "prod_gone");
        assert_eq!(product.name, "Old name");
        assert!(product.deleted);
    }

    #[tokio::test]
    async fn a_price_is_read_as_stripe_answers_it_now() {
        let stripe = FakeStripe {
            objects: vec![("/prices/price_1", price("price_1", 1500, "Now"))],
        };
        let seen = target_of("price.updated", &price("price_1", 999, "Then"));
        let fresh = reread(&stripe, &seen).await.unwrap();
        let Target::Price(price) = fresh else {
            panic!("a price's re-read is a price: {fresh:?}");
        };
        assert_eq!(price.id, "price_1");
        assert_eq!(price.unit_amount, Some(1500));
        assert_eq!(price.nickname.as_deref(), Some("Now"));
        assert!(!price.deleted);
    }

    #[tokio::test]
    async fn a_charge_is_read_as_stripe_answers_it_now() {
        let charge = |refunded: i64| {
            json!({"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "amount": 500,
                   "amount_refunded": refunded, "currency": "usd", "paid": true,
                   "status": "succeeded", "created": 1_700_000_000, "metadata": {}})
        };
        let stripe = FakeStripe {
            objects: vec![("/charges/ch_1", charge(200))],
        };
        let seen = target_of("charge.refunded", &charge(100));
        assert!(matches!(seen, Target::Charge(_)), "{seen:?}");
        let Target::Charge(fresh) = reread(&stripe, &seen).await.unwrap() else {
            panic!("a charge's re-read is a charge");
        };
        assert_eq!((fresh.id.as_str(), fresh.amount_refunded), ("ch_1", 200));
        // A refund's event under the charge's family carries a refund, a dispute's nothing.
        let refund = json!({"id": "re_1", "object": "refund", "amount": 100, "currency": "usd",
                            "charge": "ch_1", "status": "succeeded", "created": 1});
        assert!(matches!(
            target_of("charge.refund.updated", &refund),
            Target::Refund(_)
        ));
        assert!(matches!(
            target_of(
                "charge.dispute.created",
                &json!({"id": "dp_1", "charge": "ch_1"})
            ),
            Target::Nothing
        ));
    }

    #[tokio::test]
    async fn a_refund_stripe_does_not_have_stays_a_failure() {
        let stripe = FakeStripe { objects: vec![] };
        let seen = target_of(
            "refund.updated",
            &json!({"id": "re_1", "object": "refund", "amount": 100, "currency": "usd",
                    "status": "succeeded", "payment_intent": "pi_1", "created": 1_700_000_000}),
        );
        assert!(matches!(seen, Target::Refund(_)), "{seen:?}");
        let failed = reread(&stripe, &seen).await.unwrap_err();
        assert!(
            matches!(&failed, GatewayError::Stripe(f) if f.http_status == 404),
            "{failed}"
        );
        // Not under the watermark rule: nothing to re-read.
        assert!(matches!(
            reread(&stripe, &Target::Nothing).await,
            Ok(Target::Nothing)
        ));
    }
}
