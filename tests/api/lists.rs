//! The lists at any size: totals kept by the database as the mirror is written (what the
//! watermark refuses changes nothing), offset pages read from either end, and Stripe's
//! cursors on every list, through real deliveries and real HTTP.

use diesel::prelude::*;
use reqwest::Method;
use sales_block::db::schema::subscriptions;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, json_body, spawn_app};
use crate::on_both_databases;
use crate::receiver::{deliver, endpoint, event};

on_both_databases!(
    deep_pages_found_by_counted_weeks_are_the_slices_they_name,
    totals_follow_every_delivery_and_ignore_what_the_watermark_refuses,
    every_page_and_cursor_walk_is_the_slice_of_the_list_it_names,
    payments_page_by_cursor_too,
    damaged_counters_never_give_a_negative_total,
    a_shallow_page_is_one_statement_and_a_deep_one_a_snapshot,
    a_start_recounts_only_when_what_is_counted_changed,
);

/// Counters damaged below zero (rows written with the triggers off, a partial restore) count
/// as an empty week: the list answers 200 with a total that is never negative, and the rows
/// the counters do know stay listed.
async fn damaged_counters_never_give_a_negative_total(backend: Backend) {
    use diesel::prelude::*;
    use sales_block::db::schema::list_counts;
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    app.customer(&tenant, &tenant.admin_token(), "counted@example.com")
        .await;
    let admin = tenant.admin_token();
    let first_page = || get(&app, &tenant, &admin, "/stripe/customers?page=1");
    let tenant_id = tenant.created.id.clone();
    app.query(move |conn| {
        diesel::insert_into(list_counts::table)
            .values((
                list_counts::tenant_id.eq(&tenant_id),
                list_counts::list.eq("customers"),
                list_counts::bucket.eq("live"),
                list_counts::span.eq(1_i64),
                list_counts::shard.eq(-7_i64),
                list_counts::n.eq(-50_i64),
            ))
            .execute(conn)
    })
    .await;
    let body = first_page().await;
    assert_eq!(body["meta"]["total_count"], 1, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");

    // The all-time counter a first page's total is read from, damaged the same way: the
    // bucket counts as empty, the total is 0, not -49, and the row is still listed.
    count_customers_that_are_not_there(&app, &tenant, -50).await;
    let body = first_page().await;
    assert_eq!(body["meta"]["total_count"], 0, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
}

const T0: i64 = 1_760_000_000;

fn subscription(id: &str, status: &str, created: i64) -> Value {
    json!({"id": id, "object": "subscription", "customer": "cus_lists", "status": status,
           "cancel_at_period_end": false, "created": created, "metadata": {},
           "items": {"object": "list", "data": [{"id": format!("si_{id}"), "quantity": 1,
               "current_period_start": created, "current_period_end": created + 2_592_000,
               "price": {"id": "price_lists", "unit_amount": 900, "currency": "usd",
                         "recurring": {"interval": "month"}}}]}})
}

fn payment(id: &str, status: &str, created: i64) -> Value {
    json!({"id": id, "object": "payment_intent", "amount": 1500, "currency": "usd",
           "status": status, "customer": null, "created": created, "metadata": {}})
}

async fn get(app: &TestApp, tenant: &TestTenant, token: &str, path: &str) -> Value {
    let response = app
        .authed(Method::GET, path, tenant, token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{path}");
    json_body(response).await
}

async fn total(app: &TestApp, tenant: &TestTenant, path: &str) -> i64 {
    let body = get(app, tenant, &tenant.admin_token(), path).await;
    body["meta"]["total_count"].as_i64().unwrap()
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn subscription_totals(app: &TestApp, tenant: &TestTenant) -> Vec<i64> {
    let mut out = vec![total(app, tenant, "/stripe/subscriptions").await];
    for status in ["active", "trialing", "past_due", "canceled"] {
        out.push(
            total(
                app,
                tenant,
                &format!("/stripe/subscriptions?status={status}"),
            )
            .await,
        );
    }
    out
}

async fn totals_follow_every_delivery_and_ignore_what_the_watermark_refuses(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tenant, other) = (app.tenant().await, app.tenant().await);
    let (ep, other_ep) = (endpoint(&app, &tenant).await, endpoint(&app, &other).await);
    let statuses = ["active", "trialing", "past_due"];
    for i in 0..10i64 {
        let status = statuses[(i % 3) as usize];
        let sub = subscription(&format!("sub_l{i}"), status, T0 + i);
        deliver(
            &app,
            &ep,
            &event(
                &format!("evt_c{i}"),
                "customer.subscription.created",
                T0 + i,
                sub,
            ),
        )
        .await;
    }
    for i in 0..3i64 {
        let sub = subscription(&format!("sub_o{i}"), "active", T0 + i);
        deliver(
            &app,
            &other_ep,
            &event(
                &format!("evt_o{i}"),
                "customer.subscription.created",
                T0 + i,
                sub,
            ),
        )
        .await;
    }
    // all, active, trialing, past_due, canceled
    assert_eq!(
        subscription_totals(&app, &tenant).await,
        vec![10, 4, 3, 3, 0]
    );
    assert_eq!(subscription_totals(&app, &other).await, vec![3, 3, 0, 0, 0]);

    // A trial converts, a past-due subscription is deleted (canceled).
    let converted = subscription("sub_l1", "active", T0 + 1);
    deliver(
        &app,
        &ep,
        &event(
            "evt_u1",
            "customer.subscription.updated",
            T0 + 100,
            converted,
        ),
    )
    .await;
    let deleted = subscription("sub_l2", "canceled", T0 + 2);
    deliver(
        &app,
        &ep,
        &event("evt_d2", "customer.subscription.deleted", T0 + 101, deleted),
    )
    .await;
    assert_eq!(
        subscription_totals(&app, &tenant).await,
        vec![10, 5, 2, 2, 1]
    );

    // Older states arriving late change no row, so no count; nor does a repeat.
    let stale = subscription("sub_l1", "trialing", T0 + 1);
    deliver(
        &app,
        &ep,
        &event("evt_s1", "customer.subscription.updated", T0 + 50, stale),
    )
    .await;
    let stale = subscription("sub_l0", "canceled", T0);
    deliver(
        &app,
        &ep,
        &event("evt_s0", "customer.subscription.updated", T0 - 50, stale),
    )
    .await;
    let again = subscription("sub_l2", "canceled", T0 + 2);
    deliver(
        &app,
        &ep,
        &event("evt_d2", "customer.subscription.deleted", T0 + 101, again),
    )
    .await;
    assert_eq!(
        subscription_totals(&app, &tenant).await,
        vec![10, 5, 2, 2, 1]
    );

    // What the database holds agrees, status by status.
    let tenant_id = tenant_id_of(&app, "sub_l0").await;
    let truth: Vec<(String, i64)> = app
        .query(move |conn| {
            subscriptions::table
                .filter(subscriptions::tenant_id.eq(tenant_id))
                .group_by(subscriptions::status)
                .select((subscriptions::status, diesel::dsl::count_star()))
                .order(subscriptions::status.asc())
                .load(conn)
        })
        .await;
    assert_eq!(
        truth,
        vec![
            ("active".to_owned(), 5),
            ("canceled".to_owned(), 1),
            ("past_due".to_owned(), 2),
            ("trialing".to_owned(), 2)
        ]
    );

    // Customers: a deleted one leaves the list's total; payments: counted by status.
    for i in 0..3 {
        let customer = json!({"id": format!("cus_t{i}"), "object": "customer",
            "email": format!("t{i}@example.com"), "created": T0 + i, "metadata": {}});
        deliver(
            &app,
            &ep,
            &event(&format!("evt_cc{i}"), "customer.created", T0 + i, customer),
        )
        .await;
    }
    let gone = json!({"id": "cus_t1", "object": "customer", "email": "t1@example.com",
        "created": T0 + 1, "metadata": {}});
    deliver(
        &app,
        &ep,
        &event("evt_cd1", "customer.deleted", T0 + 200, gone),
    )
    .await;
    assert_eq!(total(&app, &tenant, "/stripe/customers").await, 2);
    deliver(
        &app,
        &ep,
        &event(
            "evt_p0",
            "payment_intent.succeeded",
            T0,
            payment("pi_t0", "succeeded", T0),
        ),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event(
            "evt_p1",
            "payment_intent.succeeded",
            T0 + 1,
            payment("pi_t1", "succeeded", T0 + 1),
        ),
    )
    .await;
    let failed = payment("pi_t2", "requires_payment_method", T0 + 2);
    deliver(
        &app,
        &ep,
        &event("evt_p2", "payment_intent.payment_failed", T0 + 2, failed),
    )
    .await;
    assert_eq!(total(&app, &tenant, "/stripe/payments").await, 3);
    assert_eq!(
        total(&app, &tenant, "/stripe/payments?status=succeeded").await,
        2
    );
    assert_eq!(
        total(&app, &tenant, "/stripe/payments?status=failed").await,
        1
    );
    assert_eq!(total(&app, &other, "/stripe/payments").await, 0);
}

async fn tenant_id_of(app: &TestApp, sub: &str) -> String {
    let sub = sub.to_owned();
    app.query(move |conn| {
        subscriptions::table
            .filter(subscriptions::stripe_subscription_id.eq(sub))
            .select(subscriptions::tenant_id)
            .first::<String>(conn)
    })
    .await
}

/// Our ids of the tenant's subscriptions (of `status` if given), in the list's order.
async fn reference(app: &TestApp, tenant_id: &str, status: Option<&str>) -> Vec<String> {
    let (tenant_id, status) = (tenant_id.to_owned(), status.map(str::to_owned));
    app.query(move |conn| {
        let mut query = subscriptions::table
            .filter(subscriptions::tenant_id.eq(tenant_id))
            .into_boxed();
        if let Some(status) = status {
            query = query.filter(subscriptions::status.eq(status));
        }
        query
            .order((
                subscriptions::stripe_created.desc(),
                subscriptions::created_at.desc(),
                subscriptions::id.desc(),
            ))
            .select(subscriptions::id)
            .load::<String>(conn)
    })
    .await
}

async fn every_page_and_cursor_walk_is_the_slice_of_the_list_it_names(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tenant, other) = (app.tenant().await, app.tenant().await);
    let ep = endpoint(&app, &tenant).await;
    // 23 subscriptions, three to a second of Stripe's `created` (ties settled by our order).
    for i in 0..23i64 {
        let status = if i % 4 == 0 { "canceled" } else { "active" };
        let sub = subscription(&format!("sub_p{i:02}"), status, T0 + i / 3);
        deliver(
            &app,
            &ep,
            &event(
                &format!("evt_p{i}"),
                "customer.subscription.created",
                T0 + i,
                sub,
            ),
        )
        .await;
    }
    let admin = tenant.admin_token();
    let tenant_id = tenant_id_of(&app, "sub_p00").await;
    for status in [None, Some("active")] {
        let all = reference(&app, &tenant_id, status).await;
        let filter = status.map_or(String::new(), |s| format!("&status={s}"));
        for records in [4usize, 5] {
            let pages = all.len().div_ceil(records);
            for page in 1..=pages + 1 {
                let path = format!("/stripe/subscriptions?page={page}&records={records}{filter}");
                let body = get(&app, &tenant, &admin, &path).await;
                let expected: Vec<String> = all
                    .iter()
                    .skip((page - 1) * records)
                    .take(records)
                    .cloned()
                    .collect();
                assert_eq!(ids(&body), expected, "{path}");
                assert_eq!(body["meta"]["total_count"], all.len(), "{path}");
                assert_eq!(body["meta"]["has_more"], page < pages, "{path}");
            }
        }
        // Forwards with starting_after, from the newest to the oldest.
        let mut walked: Vec<String> = Vec::new();
        let mut cursor = String::new();
        loop {
            let path = format!("/stripe/subscriptions?limit=4{filter}{cursor}");
            let body = get(&app, &tenant, &admin, &path).await;
            walked.extend(ids(&body));
            assert_eq!(body["meta"]["total_count"], all.len());
            if body["meta"]["has_more"] == false {
                break;
            }
            cursor = format!("&starting_after={}", walked.last().unwrap());
        }
        assert_eq!(walked, all);
        // Backwards with ending_before, from the oldest (by its sub_ id) to the newest.
        let oldest = get(
            &app,
            &tenant,
            &admin,
            &format!("/stripe/subscriptions?page={}&records=1{filter}", all.len()),
        )
        .await;
        let mut before = oldest["data"][0]["attributes"]["stripe_subscription_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut backwards: Vec<String> = Vec::new();
        loop {
            let path = format!("/stripe/subscriptions?limit=4&ending_before={before}{filter}");
            let body = get(&app, &tenant, &admin, &path).await;
            let page = ids(&body);
            backwards.splice(0..0, page.iter().cloned());
            if body["meta"]["has_more"] == false {
                break;
            }
            before = page[0].clone();
        }
        assert_eq!(backwards, all[..all.len() - 1]);
    }

    // A cursor must name a subscription the caller sees; paging kinds do not mix.
    let theirs = ids(&get(&app, &tenant, &admin, "/stripe/subscriptions?limit=1").await);
    for (who, token) in [
        (&other, other.admin_token()),
        (&tenant, tenant.user_token("u_nobody")),
    ] {
        let path = format!("/stripe/subscriptions?starting_after={}", theirs[0]);
        let response = app
            .authed(Method::GET, &path, who, &token)
            .send()
            .await
            .unwrap();
        let error = assert_error(response, 400, "invalid_query").await;
        assert_eq!(error["source"]["parameter"], "starting_after");
    }
    let response = app
        .authed(
            Method::GET,
            "/stripe/subscriptions?page=2&limit=3",
            &tenant,
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_query").await;
}

async fn payments_page_by_cursor_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    for i in 0..7i64 {
        let pi = payment(&format!("pi_c{i}"), "succeeded", T0 + i);
        deliver(
            &app,
            &ep,
            &event(
                &format!("evt_pc{i}"),
                "payment_intent.succeeded",
                T0 + i,
                pi,
            ),
        )
        .await;
    }
    let admin = tenant.admin_token();
    let all = ids(&get(&app, &tenant, &admin, "/stripe/payments?records=100").await);
    assert_eq!(all.len(), 7);
    let first = get(&app, &tenant, &admin, "/stripe/payments?limit=3").await;
    assert_eq!(ids(&first), all[..3]);
    assert_eq!(first["meta"]["has_more"], true);
    assert_eq!(first["meta"]["limit"], 3);
    let path = "/stripe/payments?limit=3&starting_after=pi_c4";
    let next = get(&app, &tenant, &admin, path).await;
    assert_eq!(ids(&next), all[3..6]);
    let path = format!("/stripe/payments?limit=5&ending_before={}", all[3]);
    let previous = get(&app, &tenant, &admin, &path).await;
    assert_eq!(ids(&previous), all[..3]);
    assert_eq!(previous["meta"]["has_more"], false);
    // The last page of an offset list, read from the oldest end.
    let last = get(&app, &tenant, &admin, "/stripe/payments?page=3&records=3").await;
    assert_eq!(ids(&last), all[6..]);
    assert_eq!(last["meta"]["has_more"], false);
}

/// Two instances writing the same tenant's subscriptions at once, each over several
/// connections (so several counter shards), with states racing for the same rows: the
/// totals still equal what the rows say. Then shards of connections that are gone fold into
/// one without changing a total.
#[tokio::test]
async fn postgres_concurrent_writers_keep_exact_totals_and_folding_keeps_them() {
    use crate::receiver::stripe_signature;
    use sales_block::db::schema::list_counts;
    let app = spawn_app(Backend::Postgres).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let second = app.second_instance().await;
    let statuses = ["active", "trialing", "past_due", "canceled", "unpaid"];
    let mut deliveries = Vec::new();
    for i in 0..60i64 {
        // 20 subscriptions, each written three times with different statuses and times,
        // delivered in an order that races the states.
        let sub = format!("sub_r{}", i % 20);
        let status = statuses[usize::try_from(i % 5).unwrap()];
        let body = event(
            &format!("evt_r{i}"),
            "customer.subscription.updated",
            T0 + (i * 7) % 60,
            subscription(&sub, status, T0),
        )
        .to_string();
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            second.clone()
        };
        deliveries.push((base, body));
    }
    let sends = deliveries.into_iter().map(|(base, body)| {
        let http = app.http.clone();
        let signature = stripe_signature(&body, &ep.secret, chrono::Utc::now().timestamp());
        let url = format!("{base}/stripe/{}/webhook", ep.url_id);
        tokio::spawn(async move {
            let response = http
                .post(url)
                .header("Stripe-Signature", signature)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        })
    });
    for send in sends.collect::<Vec<_>>() {
        assert_eq!(send.await.unwrap(), 200);
    }
    let tenant_id = tenant_id_of(&app, "sub_r0").await;
    let counted = tenant_id.clone();
    let rows: Vec<(String, i64)> = app
        .query(move |conn| {
            subscriptions::table
                .filter(subscriptions::tenant_id.eq(counted))
                .group_by(subscriptions::status)
                .select((subscriptions::status, diesel::dsl::count_star()))
                .load(conn)
        })
        .await;
    assert_eq!(rows.iter().map(|(_, n)| n).sum::<i64>(), 20);
    assert_eq!(total(&app, &tenant, "/stripe/subscriptions").await, 20);
    for (status, n) in &rows {
        let path = format!("/stripe/subscriptions?status={status}");
        assert_eq!(total(&app, &tenant, &path).await, *n, "{status}");
    }

    // A shard left by a connection that is gone (no live backend has this pid) folds into
    // shard 0; the totals stay.
    let (dead_tenant, dead_status) = (tenant_id.clone(), rows[0].0.clone());
    app.query(move |conn| {
        diesel::insert_into(list_counts::table)
            .values((
                list_counts::tenant_id.eq(dead_tenant),
                list_counts::list.eq("subscriptions"),
                list_counts::bucket.eq(dead_status),
                list_counts::span.eq(T0 / sales_block::db::counts::SPAN_SECS),
                list_counts::shard.eq(2_000_000_000i64),
                list_counts::n.eq(0i64),
            ))
            .execute(conn)
    })
    .await;
    let (dead_tenant, dead_status) = (tenant_id.clone(), rows[0].0.clone());
    app.query(move |conn| {
        use sales_block::db::schema::list_totals;
        diesel::insert_into(list_totals::table)
            .values((
                list_totals::tenant_id.eq(dead_tenant),
                list_totals::list.eq("subscriptions"),
                list_totals::bucket.eq(dead_status),
                list_totals::shard.eq(2_000_000_000i64),
                list_totals::n.eq(0i64),
            ))
            .execute(conn)
    })
    .await;
    app.query(sales_block::db::counts::fold_gone_shards).await;
    let shards: Vec<i64> = app
        .query(|conn| {
            use sales_block::db::schema::list_totals;
            let mut shards: Vec<i64> = list_counts::table
                .filter(list_counts::list.eq("subscriptions"))
                .select(list_counts::shard)
                .load(conn)?;
            shards.extend(
                list_totals::table
                    .filter(list_totals::list.eq("subscriptions"))
                    .select(list_totals::shard)
                    .load::<i64>(conn)?,
            );
            Ok(shards)
        })
        .await;
    assert!(!shards.contains(&2_000_000_000), "{shards:?}");
    assert_eq!(total(&app, &tenant, "/stripe/subscriptions").await, 20);
    for (status, n) in &rows {
        let path = format!("/stripe/subscriptions?status={status}");
        assert_eq!(total(&app, &tenant, &path).await, *n, "{status}");
    }
}

/// Mirrors `n` subscriptions and payments straight into the tables, in one transaction,
/// spread unevenly over many weeks with ties and empty weeks.
async fn mirror_many(app: &TestApp, tenant_id: &str, n: i64) {
    use sales_block::db::schema::payments;
    let tenant_id = tenant_id.to_owned();
    app.query(move |conn| {
        conn.transaction(|conn| {
            let now = chrono::Utc::now().naive_utc();
            let created = |i: i64| T0 + (i * i) % (n * 9_000) + (i % 3) * 86_400 * 10;
            let subs: Vec<_> = (0..n)
                .map(|i| {
                    (
                        subscriptions::id.eq(format!("row_s{i:04}")),
                        subscriptions::tenant_id.eq(tenant_id.clone()),
                        subscriptions::stripe_subscription_id.eq(format!("sub_m{i}")),
                        subscriptions::stripe_customer_id.eq("cus_m"),
                        subscriptions::status.eq(if i % 3 == 0 { "canceled" } else { "active" }),
                        subscriptions::cancel_at_period_end.eq(false),
                        subscriptions::metadata.eq("{}"),
                        subscriptions::stripe_created.eq(created(i) / 7 * 7),
                        subscriptions::created_at.eq(now),
                        subscriptions::updated_at.eq(now),
                    )
                })
                .collect();
            for sub in subs {
                diesel::insert_into(subscriptions::table)
                    .values(sub)
                    .execute(conn)?;
            }
            let pays: Vec<_> = (0..n)
                .map(|i| {
                    let at = chrono::DateTime::from_timestamp(created(i), 0)
                        .unwrap()
                        .naive_utc();
                    (
                        payments::id.eq(format!("row_p{i:04}")),
                        payments::tenant_id.eq(tenant_id.clone()),
                        payments::stripe_payment_intent_id.eq(format!("pi_m{i}")),
                        payments::amount.eq(100),
                        payments::currency.eq("usd"),
                        payments::status.eq(if i % 4 == 0 { "canceled" } else { "succeeded" }),
                        payments::metadata.eq("{}"),
                        payments::owner_subject.eq(""),
                        payments::created_at.eq(at),
                        payments::updated_at.eq(now),
                        payments::amount_refunded.eq(0),
                    )
                })
                .collect();
            for pay in pays {
                diesel::insert_into(payments::table)
                    .values(pay)
                    .execute(conn)?;
            }
            Ok(())
        })
    })
    .await;
}

/// An app whose tenant has one delivered subscription and 700 more (and 700 payments)
/// mirrored straight into the tables: the tenant's id with them.
async fn with_701_subscriptions(backend: Backend) -> (TestApp, TestTenant, String) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let sub = subscription("sub_first", "active", T0);
    deliver(
        &app,
        &ep,
        &event("evt_first", "customer.subscription.created", T0, sub),
    )
    .await;
    let tenant_id = tenant_id_of(&app, "sub_first").await;
    mirror_many(&app, &tenant_id, 700).await;
    (app, tenant, tenant_id)
}

async fn deep_pages_found_by_counted_weeks_are_the_slices_they_name(backend: Backend) {
    use sales_block::db::schema::payments;
    let (app, tenant, tenant_id) = with_701_subscriptions(backend).await;
    let admin = tenant.admin_token();
    for status in [None, Some("active")] {
        let all = reference(&app, &tenant_id, status).await;
        let filter = status.map_or(String::new(), |s| format!("&status={s}"));
        let pages = all.len().div_ceil(7);
        for page in [
            1,
            20,
            33,
            pages / 2,
            pages / 2 + 1,
            pages - 31,
            pages - 1,
            pages,
        ] {
            let path = format!("/stripe/subscriptions?page={page}&records=7{filter}");
            let body = get(&app, &tenant, &admin, &path).await;
            let expected: Vec<String> = all.iter().skip((page - 1) * 7).take(7).cloned().collect();
            assert_eq!(ids(&body), expected, "{path}");
            assert_eq!(body["meta"]["total_count"], all.len(), "{path}");
        }
    }
    let filter_tenant = tenant_id.clone();
    let all_payments: Vec<String> = app
        .query(move |conn| {
            payments::table
                .filter(payments::tenant_id.eq(filter_tenant))
                .filter(payments::status.eq("succeeded"))
                .order((payments::created_at.desc(), payments::id.desc()))
                .select(payments::id)
                .load(conn)
        })
        .await;
    let pages = all_payments.len().div_ceil(9);
    for page in [1, 30, pages / 2, pages - 29, pages] {
        let path = format!("/stripe/payments?status=succeeded&page={page}&records=9");
        let body = get(&app, &tenant, &admin, &path).await;
        let expected: Vec<String> = all_payments
            .iter()
            .skip((page - 1) * 9)
            .take(9)
            .cloned()
            .collect();
        assert_eq!(ids(&body), expected, "{path}");
    }
}

/// The statements `work` sends on the connection it runs on (Diesel's instrumentation).
fn statements_of<T>(
    conn: &mut sales_block::db::AnyConnection,
    work: impl FnOnce(&mut sales_block::db::AnyConnection) -> T,
) -> (T, Vec<String>) {
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use std::sync::{Arc, Mutex};
    let sent = Arc::new(Mutex::new(Vec::new()));
    let record = sent.clone();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            record.lock().unwrap().push(query.to_string());
        }
    });
    let out = work(conn);
    conn.set_instrumentation(None::<Box<dyn Instrumentation>>);
    let sent = sent.lock().unwrap().clone();
    (out, sent)
}

/// A list's first pages cost the database one statement, its rows and total together with no
/// transaction around them (BEGIN and COMMIT are a round trip each on every request) and the
/// all-time counters, not the weeks'; a deep page reads the weeks' counters and its rows on
/// one snapshot. Each page is still the slice it names.
async fn a_shallow_page_is_one_statement_and_a_deep_one_a_snapshot(backend: Backend) {
    use sales_block::db::customers::Visibility;
    use sales_block::db::listing::{self, PageStart};
    use sales_block::db::subscriptions::{ListFilter, list};
    let (app, _, tenant_id) = with_701_subscriptions(backend).await;
    let all = reference(&app, &tenant_id, None).await;
    // (offset, status filter, read in one statement, reads the weeks' counters)
    let last = all.len() as i64 - 20;
    for (offset, status, one_statement, seeks) in [
        (0, None, true, false),
        (140, None, true, false),
        (0, Some("active"), true, false),
        // An empty list's first page: still one statement.
        (0, Some("unpaid"), true, false),
        (listing::DEEP, None, false, true),
        (220, Some("active"), false, true),
        (last, None, false, true),
    ] {
        let listed = reference(&app, &tenant_id, status).await;
        let tenant_id = tenant_id.clone();
        let filter = ListFilter {
            stripe_customer_id: None,
            status: status.map(str::to_owned),
        };
        let (page, sent) = app
            .query(move |conn| {
                Ok(statements_of(conn, |conn| {
                    listing::snapshot(conn, Some(offset), |conn| {
                        list(
                            conn,
                            &tenant_id,
                            &Visibility::All,
                            &filter,
                            &PageStart::Offset(offset),
                            20,
                        )
                    })
                }))
            })
            .await;
        let page = page.unwrap();
        let reference = &listed;
        let expected: Vec<&String> = reference.iter().skip(offset as usize).take(20).collect();
        let got: Vec<&String> = page.rows.iter().map(|row| &row.id).collect();
        assert_eq!(got, expected, "offset {offset} status {status:?}");
        assert_eq!(page.total, reference.len() as i64, "offset {offset}");
        assert_eq!(page.has_more, offset + 20 < page.total, "offset {offset}");
        let began = sent.iter().any(|s| s.trim_start().starts_with("BEGIN"));
        if one_statement {
            assert_eq!(
                sent.len(),
                1,
                "offset {offset} status {status:?}: {sent:#?}"
            );
        } else {
            assert!(began, "a deep page runs on a snapshot: {sent:#?}");
        }
        let weeks = sent.iter().any(|s| s.contains("list_counts"));
        assert_eq!(weeks, seeks, "offset {offset} status {status:?}: {sent:#?}");
    }

    // Read inside a caller's transaction, a deep page joins it instead of failing on a
    // second BEGIN.
    let (tenant, filter) = (tenant_id.clone(), ListFilter::default());
    let page = app
        .query(move |conn| {
            conn.transaction(|conn| {
                listing::snapshot(conn, Some(listing::DEEP), |conn| {
                    list(
                        conn,
                        &tenant,
                        &Visibility::All,
                        &filter,
                        &PageStart::Offset(listing::DEEP),
                        20,
                    )
                })
            })
        })
        .await;
    let expected: Vec<&String> = all.iter().skip(listing::DEEP as usize).take(20).collect();
    let got: Vec<&String> = page.rows.iter().map(|row| &row.id).collect();
    assert_eq!(got, expected);
}

/// At start, an instance reinstalls the list triggers whose definition changed. When only the
/// triggers' code changed (the definition an earlier release stored is what is counted,
/// without the code's version), the counts are kept as they are: a recount would lock every
/// list's table for the time it reads it. When what is counted changed, the list is
/// recounted. Either way the triggers installed go on counting.
async fn a_start_recounts_only_when_what_is_counted_changed(backend: Backend) {
    use sales_block::db::schema::list_count_definitions;
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    app.customer(&tenant, &admin, "one@example.com").await;
    let counted = || total(&app, &tenant, "/stripe/customers?page=1");
    assert_eq!(counted().await, 1);
    // Five rows the counters know of and the table does not: only a recount forgets them.
    count_customers_that_are_not_there(&app, &tenant, 5).await;
    assert_eq!(counted().await, 6);
    let stored = || {
        app.query(|conn| {
            list_count_definitions::table
                .filter(list_count_definitions::list.eq("customers"))
                .select(list_count_definitions::definition)
                .first::<String>(conn)
        })
    };
    let current = stored().await;
    let (counting, code) = current
        .split_once(';')
        .expect("the definition names the triggers' code");
    assert!(code.contains("triggers"), "{current}");

    let stores = |definition: String| {
        app.query(move |conn| {
            diesel::update(list_count_definitions::table)
                .filter(list_count_definitions::list.eq("customers"))
                .set(list_count_definitions::definition.eq(definition))
                .execute(conn)
        })
    };
    // As an earlier release left it: what is counted, no code version.
    stores(counting.to_owned()).await;
    app.second_instance().await;
    assert_eq!(stored().await, current, "the triggers were reinstalled");
    assert_eq!(counted().await, 6, "the counts were kept, not recounted");
    app.customer(&tenant, &admin, "two@example.com").await;
    assert_eq!(counted().await, 7, "the reinstalled triggers count");

    // What is counted changed: the list is counted afresh from its rows.
    stores(counting.replacen("v3", "v2", 1)).await;
    app.second_instance().await;
    assert_eq!(stored().await, current);
    assert_eq!(counted().await, 2, "recounted from the rows");
    app.customer(&tenant, &admin, "three@example.com").await;
    assert_eq!(counted().await, 3);
}

/// Counters damaged: `n` customers of the tenant's live list in the all-time counter of a
/// shard no connection has, as rows written with the triggers off or a partial restore
/// leave them.
async fn count_customers_that_are_not_there(app: &TestApp, tenant: &TestTenant, n: i64) {
    use sales_block::db::schema::list_totals;
    let tenant_id = tenant.created.id.clone();
    app.query(move |conn| {
        diesel::insert_into(list_totals::table)
            .values((
                list_totals::tenant_id.eq(&tenant_id),
                list_totals::list.eq("customers"),
                list_totals::bucket.eq("live"),
                list_totals::shard.eq(-7_i64),
                list_totals::n.eq(n),
            ))
            .execute(conn)
    })
    .await;
}
