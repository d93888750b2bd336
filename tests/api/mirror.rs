//! The rest of the mirror (products, prices, invoices and their lines, subscription items,
//! refunds and refunded totals, payment methods): kept by webhook deliveries under the same
//! watermark rule, children following their parent.

use diesel::prelude::*;
use sales_block::db::schema::{
    invoice_lines, invoices, payment_methods, payments, prices, products, refunds,
    subscription_items,
};
use serde_json::{Value, json};

use crate::helpers::eventually;
use crate::helpers::{Backend, TestApp, json_body, spawn_app};
use crate::on_both_databases;
use crate::receiver::{deliver, endpoint, event, events_stored, receiving_endpoint};

const T: i64 = 1_800_000_000;

fn product(name: &str, active: bool) -> Value {
    json!({"id": "prod_m", "object": "product", "name": name, "active": active,
           "description": null, "created": T, "metadata": {}, "unknown": [1, 2]})
}

fn invoice(status: &str, lines: &[(&str, i64)]) -> Value {
    let data: Vec<Value> = lines
        .iter()
        .map(|(id, amount)| {
            json!({"id": id, "object": "line_item", "amount": amount,
            "currency": "usd", "quantity": 1, "description": format!("line {id}"),
            "pricing": {"price_details": {"price": "price_m", "product": "prod_m"}}})
        })
        .collect();
    let total: i64 = lines.iter().map(|(_, a)| a).sum();
    json!({"id": "in_m", "object": "invoice", "customer": "cus_m", "status": status,
           "currency": "usd", "amount_due": total, "amount_paid": if status == "paid" { total } else { 0 },
           "amount_remaining": if status == "paid" { 0 } else { total }, "total": total,
           "created": T, "metadata": {},
           "parent": {"subscription_details": {"subscription": "sub_m"}},
           "lines": {"object": "list", "data": data}})
}

async fn product_row(app: &TestApp) -> (String, bool, bool) {
    app.query(|conn| {
        products::table
            .select((
                products::name,
                products::active,
                products::deleted_at.is_not_null(),
            ))
            .first::<(String, bool, bool)>(conn)
    })
    .await
}

async fn invoice_state(app: &TestApp) -> (Option<String>, i64, Option<String>, Vec<(String, i64)>) {
    app.query(|conn| {
        let (status, paid, sub) = invoices::table
            .select((
                invoices::status,
                invoices::amount_paid,
                invoices::stripe_subscription_id,
            ))
            .first::<(Option<String>, i64, Option<String>)>(conn)?;
        let lines = invoice_lines::table
            .filter(invoice_lines::stripe_invoice_id.eq("in_m"))
            .order(invoice_lines::position.asc())
            .select((invoice_lines::stripe_line_id, invoice_lines::amount))
            .load::<(String, i64)>(conn)?;
        Ok((status, paid, sub, lines))
    })
    .await
}

async fn catalogue_and_invoices_follow_the_watermark(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;

    // Reversed: the newer name arrives first and stays.
    deliver(
        &app,
        &ep,
        &event("evt_p2", "product.updated", T + 10, product("Gold", true)),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event("evt_p1", "product.created", T, product("Silver", true)),
    )
    .await;
    assert_eq!(product_row(&app).await, ("Gold".to_owned(), true, false));
    // Deleted, then a late older update: stays deleted.
    deliver(
        &app,
        &ep,
        &event("evt_p4", "product.deleted", T + 20, product("Gold", false)),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event("evt_p3", "product.updated", T + 15, product("Bronze", true)),
    )
    .await;
    assert_eq!(product_row(&app).await, ("Gold".to_owned(), false, true));

    let price = json!({"id": "price_m", "object": "price", "product": "prod_m", "active": true,
        "currency": "eur", "unit_amount": 1200, "type": "recurring", "created": T,
        "recurring": {"interval": "year", "interval_count": 2}, "metadata": {"tier": "gold"}});
    deliver(&app, &ep, &event("evt_pr1", "price.created", T, price)).await;
    let stored = app
        .query(|conn| {
            prices::table
                .select((
                    prices::stripe_product_id,
                    prices::unit_amount,
                    prices::recurring_interval,
                    prices::recurring_interval_count,
                    prices::metadata,
                ))
                .first::<(String, Option<i64>, Option<String>, Option<i64>, String)>(conn)
        })
        .await;
    assert_eq!(
        stored,
        (
            "prod_m".to_owned(),
            Some(1200),
            Some("year".to_owned()),
            Some(2),
            r#"{"tier":"gold"}"#.to_owned()
        )
    );

    // The invoice's lines belong to the state the row holds: the paid state (one line) is
    // newer than the draft (two lines) that arrives after it.
    deliver(
        &app,
        &ep,
        &event(
            "evt_i2",
            "invoice.paid",
            T + 10,
            invoice("paid", &[("il_a", 700)]),
        ),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event(
            "evt_i1",
            "invoice.created",
            T,
            invoice("draft", &[("il_a", 500), ("il_b", 300)]),
        ),
    )
    .await;
    assert_eq!(
        invoice_state(&app).await,
        (
            Some("paid".to_owned()),
            700,
            Some("sub_m".to_owned()),
            vec![("il_a".to_owned(), 700)]
        )
    );
    // A newer state replaces the lines.
    deliver(
        &app,
        &ep,
        &event(
            "evt_i3",
            "invoice.updated",
            T + 20,
            invoice("paid", &[("il_c", 100), ("il_d", 600)]),
        ),
    )
    .await;
    assert_eq!(
        invoice_state(&app).await.3,
        vec![("il_c".to_owned(), 100), ("il_d".to_owned(), 600)]
    );
    let outcomes = events_stored(&app).await;
    let outcome = |id: &str| outcomes.iter().find(|(e, _)| e == id).unwrap().1.clone();
    assert_eq!(
        (outcome("evt_p1"), outcome("evt_p3"), outcome("evt_i1")),
        ("stale".to_owned(), "stale".to_owned(), "stale".to_owned())
    );
    assert_eq!(outcome("evt_i3"), "applied");
}

fn subscription(items: &[(&str, &str)]) -> Value {
    let data: Vec<Value> = items
        .iter()
        .map(|(id, price)| {
            json!({"id": id, "quantity": 2, "current_period_start": T,
            "current_period_end": T + 100, "price": {"id": price, "unit_amount": 100,
            "currency": "usd", "recurring": {"interval": "month"}}})
        })
        .collect();
    json!({"id": "sub_m", "object": "subscription", "customer": "cus_m", "status": "active",
           "cancel_at_period_end": false, "created": T, "metadata": {},
           "items": {"object": "list", "data": data}})
}

async fn items(app: &TestApp) -> Vec<(String, Option<String>)> {
    app.query(|conn| {
        subscription_items::table
            .order(subscription_items::position.asc())
            .select((
                subscription_items::stripe_item_id,
                subscription_items::price_id,
            ))
            .load::<(String, Option<String>)>(conn)
    })
    .await
}

async fn subscription_items_follow_their_subscription(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let two = subscription(&[("si_1", "price_a"), ("si_2", "price_b")]);
    deliver(
        &app,
        &ep,
        &event("evt_s2", "customer.subscription.updated", T + 10, two),
    )
    .await;
    // The older state had one item: it does not come back.
    let one = subscription(&[("si_1", "price_a")]);
    deliver(
        &app,
        &ep,
        &event("evt_s1", "customer.subscription.created", T, one),
    )
    .await;
    let expected = vec![
        ("si_1".to_owned(), Some("price_a".to_owned())),
        ("si_2".to_owned(), Some("price_b".to_owned())),
    ];
    assert_eq!(items(&app).await, expected);
    let swapped = subscription(&[("si_3", "price_c")]);
    deliver(
        &app,
        &ep,
        &event("evt_s3", "customer.subscription.updated", T + 20, swapped),
    )
    .await;
    assert_eq!(
        items(&app).await,
        vec![("si_3".to_owned(), Some("price_c".to_owned()))]
    );
}

fn card(customer: Option<&str>) -> Value {
    json!({"id": "pm_m", "object": "payment_method", "type": "card", "customer": customer,
           "created": T, "metadata": {},
           "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2031}})
}

async fn refunds_totals_and_cards_are_mirrored(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let pi = json!({"id": "pi_m", "object": "payment_intent", "amount": 5000, "currency": "usd",
        "status": "succeeded", "created": T, "metadata": {}});
    deliver(
        &app,
        &ep,
        &event("evt_pi", "payment_intent.succeeded", T, pi),
    )
    .await;
    let charge = |refunded: i64| {
        json!({"id": "ch_m", "object": "charge", "payment_intent": "pi_m",
        "amount": 5000, "amount_refunded": refunded, "refunded": refunded == 5000, "created": T})
    };
    deliver(
        &app,
        &ep,
        &event("evt_c2", "charge.refunded", T + 20, charge(3000)),
    )
    .await;
    // An earlier, smaller total arriving late cannot lower it.
    deliver(
        &app,
        &ep,
        &event("evt_c1", "charge.refunded", T + 10, charge(1000)),
    )
    .await;
    let refunded = app
        .query(|conn| {
            payments::table
                .select(payments::amount_refunded)
                .first::<i64>(conn)
        })
        .await;
    assert_eq!(refunded, 3000);

    let refund = |status: &str| {
        json!({"id": "re_m", "object": "refund", "amount": 2000,
        "currency": "usd", "payment_intent": "pi_m", "charge": "ch_m", "status": status,
        "reason": "requested_by_customer", "created": T, "metadata": {}})
    };
    deliver(
        &app,
        &ep,
        &event("evt_r2", "refund.updated", T + 10, refund("succeeded")),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event("evt_r1", "refund.created", T, refund("pending")),
    )
    .await;
    let stored = app
        .query(|conn| {
            refunds::table
                .select((
                    refunds::stripe_payment_intent_id,
                    refunds::amount,
                    refunds::status,
                ))
                .load::<(Option<String>, i64, String)>(conn)
        })
        .await;
    assert_eq!(
        stored,
        vec![(Some("pi_m".to_owned()), 2000, "succeeded".to_owned())]
    );

    // A card attached, then detached; the attachment delivered late does not re-attach it.
    deliver(
        &app,
        &ep,
        &event("evt_m2", "payment_method.detached", T + 10, card(None)),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event("evt_m1", "payment_method.attached", T, card(Some("cus_m"))),
    )
    .await;
    let method = app
        .query(|conn| {
            payment_methods::table
                .select((
                    payment_methods::stripe_customer_id,
                    payment_methods::card_brand,
                    payment_methods::card_last4,
                    payment_methods::card_exp_year,
                ))
                .first::<(Option<String>, Option<String>, Option<String>, Option<i64>)>(conn)
        })
        .await;
    assert_eq!(
        method,
        (
            None,
            Some("visa".to_owned()),
            Some("4242".to_owned()),
            Some(2031)
        )
    );
}

/// A refund made at Stripe (the dashboard) reaches the mirror through Stripe's deliveries.
async fn a_refund_at_stripe_reaches_the_mirror(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let _endpoint = receiving_endpoint(&app, &tenant).await;
    let token = tenant.user_token("buyer");
    let paid = json_body(
        app.post_json("/stripe/payments", &tenant, &token,
            &json!({"payment": {"amount": 4000, "currency": "usd", "payment_method": "pm_card_visa"}}))
            .await,
    )
    .await;
    let pi = paid["data"]["attributes"]["stripe_payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.stripe_post(
        &tenant,
        "/v1/refunds",
        &[("payment_intent", pi.as_str()), ("amount", "1500")],
    )
    .await;
    let wanted = pi.clone();
    let (amount, refunded) = eventually(15, || {
        let pi = wanted.clone();
        async {
            app.query(move |conn| {
                let refund = refunds::table
                    .filter(refunds::stripe_payment_intent_id.eq(&pi))
                    .select(refunds::amount)
                    .first::<i64>(conn)
                    .optional()?;
                let refunded = payments::table
                    .filter(payments::stripe_payment_intent_id.eq(&pi))
                    .select(payments::amount_refunded)
                    .first::<i64>(conn)?;
                Ok(refund
                    .filter(|_| refunded > 0)
                    .map(|amount| (amount, refunded)))
            })
            .await
        }
    })
    .await;
    assert_eq!((amount, refunded), (1500, 1500));
}

/// Two states of a product from one second cannot be ordered: the product is read from Stripe.
async fn a_same_second_product_tie_is_read_from_stripe(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let created = app
        .stripe_post(&tenant, "/v1/products", &[("name", "As Stripe has it")])
        .await;
    let id = created["id"].as_str().unwrap();
    let named = |name: &str| {
        json!({"id": id, "object": "product", "name": name, "active": true,
        "created": T, "metadata": {}})
    };
    deliver(
        &app,
        &ep,
        &event("evt_t1", "product.updated", T, named("First")),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event("evt_t2", "product.updated", T, named("Second")),
    )
    .await;
    assert_eq!(product_row(&app).await.0, "As Stripe has it");
    let outcomes = events_stored(&app).await;
    assert_eq!(outcomes[1], ("evt_t2".to_owned(), "refreshed".to_owned()));

    // A tie over a product Stripe no longer has (deleted): it settles as deleted instead of
    // failing every retry.
    let gone = |name: &str| {
        json!({"id": "prod_gone", "object": "product", "name": name,
        "active": true, "created": T, "metadata": {}})
    };
    deliver(
        &app,
        &ep,
        &event("evt_g1", "product.updated", T, gone("Old")),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event("evt_g2", "product.deleted", T, gone("Old")),
    )
    .await;
    let deleted = app
        .query(|conn| {
            products::table
                .filter(products::stripe_product_id.eq("prod_gone"))
                .select((products::active, products::deleted_at.is_not_null()))
                .first::<(bool, bool)>(conn)
        })
        .await;
    assert_eq!(deleted, (false, true));
    let outcomes = events_stored(&app).await;
    assert_eq!(
        outcomes.last().unwrap(),
        &("evt_g2".to_owned(), "refreshed".to_owned())
    );
}

on_both_databases!(
    catalogue_and_invoices_follow_the_watermark,
    subscription_items_follow_their_subscription,
    refunds_totals_and_cards_are_mirrored,
    a_refund_at_stripe_reaches_the_mirror,
    a_same_second_product_tie_is_read_from_stripe,
);
