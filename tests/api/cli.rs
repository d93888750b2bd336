//! The operator's path: `tenant create` and `token` from the real binary, then a call to the
//! service with what they printed.

use std::process::Command;

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};
use crate::on_both_databases;

fn sales_block(database_url: &str, master_key: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sales-block"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("SALES_MASTER_KEY", master_key)
        .env("SALES_LOG_FILTER", "warn")
        .output()
        .expect("run sales-block");
    assert!(
        output.status.success(),
        "sales-block {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

async fn a_tenant_and_token_from_the_cli_can_create_a_customer(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = app.state.settings.database_url.clone();
    let key = app.state.settings.master_key.expose_secret().to_owned();
    let emulator = app.emulator.base_url();
    let (created, listed, token) = tokio::task::spawn_blocking(move || {
        let created: Value = serde_json::from_str(&sales_block(
            &url,
            &key,
            &[
                "tenant",
                "create",
                "--name",
                "cli-shop",
                "--stripe-secret-key",
                "sk_test_cli123",
                "--stripe-api-base",
                &emulator,
            ],
        ))
        .expect("tenant create prints JSON");
        let listed: Value =
            serde_json::from_str(&sales_block(&url, &key, &["tenant", "list"])).expect("JSON list");
        let api_key = created["api_key"].as_str().expect("api_key").to_owned();
        let out = sales_block(
            &url,
            &key,
            &[
                "token", "--tenant", &api_key, "--sub", "ops", "--admin", "--ttl", "15m",
            ],
        );
        let token = out.lines().last().expect("a token line").trim().to_owned();
        (created, listed, token)
    })
    .await
    .unwrap();
    assert!(created["api_key"].as_str().unwrap().starts_with("pk_test_"));
    assert_eq!(created["jwt_algorithm"], "HS256");
    assert!(created["jwt_secret"].as_str().unwrap().len() >= 32);
    assert_eq!(listed[0]["name"], "cli-shop");
    assert!(
        listed[0].get("jwt_secret").is_none(),
        "no secrets in the list"
    );

    let response = app
        .http
        .post(format!("{}/stripe/customers", app.address))
        .header("AppId", created["api_key"].as_str().unwrap())
        .bearer_auth(&token)
        .json(&json!({"customer": {"email": "cli@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
}

on_both_databases!(a_tenant_and_token_from_the_cli_can_create_a_customer);
