//! Concurrent writes (issue 15): on SQLite every writer of the service (API routes and the
//! receiver's batches) queues on one in-process lock, so none of them waits in SQLite's busy
//! handler. With `busy_timeout` at 0, a write that reached SQLite's lock while another held
//! it would fail at once with "database is locked"; here none may.

use diesel::prelude::*;
use sales_block::db::schema::stripe_events;
use serde_json::json;

use crate::helpers::{Backend, eventually, spawn_app_with};
use crate::on_both_databases;
use crate::receiver::receiving_endpoint;

const WORKERS: usize = 8;
const EACH: usize = 8;

async fn concurrent_customer_creations_with_deliveries_flowing_all_succeed(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.database_busy_timeout_ms = 0;
        settings.database_pool_size = WORKERS as u32;
    })
    .await;
    let tenant = app.tenant().await;
    // The emulator delivers each customer.created back to the receiver while the API writes.
    receiving_endpoint(&app, &tenant).await;
    let token = tenant.admin_token();

    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let (http, address) = (app.http.clone(), app.address.clone());
        let (api_key, token) = (tenant.api_key().to_owned(), token.clone());
        workers.spawn(async move {
            let mut answers = Vec::new();
            for n in 0..EACH {
                let body = json!({"customer": {
                    "email": format!("writer-{worker}-{n}@example.com"),
                    "name": format!("Writer {worker} {n}"),
                }});
                let response = http
                    .post(format!("{address}/stripe/customers"))
                    .header("AppId", &api_key)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("request");
                let status = response.status().as_u16();
                answers.push((status, response.text().await.unwrap_or_default()));
            }
            answers
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = workers.join_next().await {
        answers.extend(done.expect("worker"));
    }
    let failed: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 201)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        answers.len()
    );
    assert_eq!(app.customer_count().await, (WORKERS * EACH) as i64);

    // Every customer.created came back and was stored, each on its first attempt (a
    // delivery answered 503 would have been retried by the emulator, and counted below).
    let stored = eventually(30, || async {
        let stored = app
            .query(|conn| {
                stripe_events::table
                    .filter(stripe_events::event_type.eq("customer.created"))
                    .count()
                    .get_result::<i64>(conn)
            })
            .await;
        (stored == (WORKERS * EACH) as i64).then_some(stored)
    })
    .await;
    assert_eq!(stored, (WORKERS * EACH) as i64);
    let attempts = app.stripe_list(&tenant, "/_emulator/deliveries").await;
    let refused: Vec<_> = attempts
        .iter()
        .filter(|a| {
            a["status"]
                .as_u64()
                .is_none_or(|s| !(200..300).contains(&s))
        })
        .collect();
    assert!(refused.is_empty(), "deliveries not accepted: {refused:?}");
}

on_both_databases!(concurrent_customer_creations_with_deliveries_flowing_all_succeed);
