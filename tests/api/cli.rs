//! The operator's path: `tenant create` and `token` from the real binary, then a call to the
//! service with what they printed.

use std::io::Write;
use std::process::{Command, Stdio};

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};
use crate::on_both_databases;

pub(crate) fn sales_block(database_url: &str, master_key: &str, args: &[&str]) -> String {
    let (succeeded, stdout, stderr) = try_sales_block(database_url, master_key, args);
    assert!(succeeded, "sales-block {args:?}: {stderr}");
    stdout
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

async fn the_cli_sets_what_users_may_choose(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.strict_tenant().await;
    let url = app.state.settings.database_url.clone();
    let key = app.state.settings.master_key.expose_secret().to_owned();
    let api_key = tenant.api_key().to_owned();
    let user = tenant.user_token("cli-user");
    let pay = json!({"payment": {"amount": 500, "currency": "usd"}});
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay)
        .await;
    crate::helpers::assert_error(response, 403, "forbidden_by_policy").await;

    let (opened, refused) = {
        let (url, key, api_key) = (url.clone(), key.clone(), api_key.clone());
        tokio::task::spawn_blocking(move || {
            let opened: Value = serde_json::from_str(&sales_block(
                &url,
                &key,
                &[
                    "tenant",
                    "policy",
                    "--api-key",
                    &api_key,
                    "--allow",
                    "amount",
                    "--offer-coupon",
                    "SPRING",
                ],
            ))
            .expect("tenant policy prints JSON");
            let refused = try_sales_block(
                &url,
                &key,
                &[
                    "tenant",
                    "policy",
                    "--api-key",
                    &api_key,
                    "--allow",
                    "everything",
                ],
            );
            (opened, refused)
        })
        .await
        .unwrap()
    };
    assert_eq!(opened["allow"], json!(["amount"]));
    assert_eq!(opened["offered_coupons"], json!(["SPRING"]));
    assert!(!refused.0);
    assert!(refused.2.contains("not a policy choice"), "{}", refused.2);
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay)
        .await;
    assert_eq!(response.status().as_u16(), 201);

    let closed: Value = tokio::task::spawn_blocking(move || {
        serde_json::from_str(&sales_block(
            &url,
            &key,
            &["tenant", "policy", "--api-key", &api_key, "--close"],
        ))
        .expect("JSON")
    })
    .await
    .unwrap();
    assert_eq!(closed["allow"], json!([]));
    // The coupons were left as they were.
    assert_eq!(closed["offered_coupons"], json!(["SPRING"]));
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay)
        .await;
    crate::helpers::assert_error(response, 403, "forbidden_by_policy").await;
}

/// Runs the binary and returns whether it succeeded, its stdout and its stderr.
pub(crate) fn try_sales_block(
    database_url: &str,
    master_key: &str,
    args: &[&str],
) -> (bool, String, String) {
    run_sales_block(database_url, master_key, args, &[], None)
}

/// Runs the binary with more environment (`env`) and, when given, `stdin` as its standard
/// input (else none); returns whether it succeeded, its stdout and its stderr.
pub(crate) fn run_sales_block(
    database_url: &str,
    master_key: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sales-block"));
    command
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("SALES_MASTER_KEY", master_key)
        .env("SALES_LOG_FILTER", "warn")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("run sales-block");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let output = child.wait_with_output().expect("run sales-block");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Issue 12, point 2, from the operator's side: apps sharing an RS256 key are told apart by the
/// binding, `tenant update` changes the token rules, and a minted token is bound to its app.
async fn minted_tokens_are_bound_to_their_app_and_tenant_update_sets_the_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = app.state.settings.database_url.clone();
    let key = app.state.settings.master_key.expose_secret().to_owned();
    let emulator = app.emulator.base_url();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let (a, b, token_a, refusals, updated, too_long) = tokio::task::spawn_blocking(move || {
        let public = format!("{fixtures}/rs256_public.pem");
        let private = format!("{fixtures}/rs256_private.pem");
        let create = |name: &str, extra: &[&str]| {
            let mut args = vec![
                "tenant",
                "create",
                "--name",
                name,
                "--stripe-secret-key",
                "sk_test_shared",
                "--stripe-api-base",
                &emulator,
                "--jwt-rs256-public-key",
                &public,
            ];
            args.extend_from_slice(extra);
            try_sales_block(&url, &key, &args)
        };
        let (ok, a, err) = create("bound-a", &["--require-app-binding"]);
        assert!(ok, "{err}");
        let a: Value = serde_json::from_str(&a).unwrap();
        // Told apart from A by A's binding.
        let (ok, b, err) = create("shared-b", &["--max-token-lifetime", "2h"]);
        assert!(ok, "{err}");
        let b: Value = serde_json::from_str(&b).unwrap();
        let a_key = a["api_key"].as_str().unwrap().to_owned();
        let b_key = b["api_key"].as_str().unwrap().to_owned();
        // Neither bound: C and B would accept each other's tokens.
        let refused_create = create("shared-c", &[]);
        let refused_update = try_sales_block(
            &url,
            &key,
            &[
                "tenant",
                "update",
                "--api-key",
                &a_key,
                "--no-require-app-binding",
            ],
        );
        let (ok, updated, err) = try_sales_block(
            &url,
            &key,
            &[
                "tenant",
                "update",
                "--api-key",
                &b_key,
                "--max-token-lifetime",
                "1h",
            ],
        );
        assert!(ok, "{err}");
        let updated: Value = serde_json::from_str(&updated).unwrap();
        let token = |tenant: &str, ttl: &str| {
            try_sales_block(
                &url,
                &key,
                &[
                    "token",
                    "--tenant",
                    tenant,
                    "--sub",
                    "ops",
                    "--ttl",
                    ttl,
                    "--jwt-rs256-private-key",
                    &private,
                ],
            )
        };
        let (ok, out, err) = token(&a_key, "15m");
        assert!(ok, "{err}");
        let token_a = out.lines().last().unwrap().trim().to_owned();
        let too_long = token(&b_key, "2h");
        (
            a,
            b,
            token_a,
            [refused_create, refused_update],
            updated,
            too_long,
        )
    })
    .await
    .unwrap();

    assert_eq!(a["require_app_binding"], true);
    assert_eq!(a["max_token_lifetime_secs"], 86400);
    assert_eq!(b["require_app_binding"], false);
    assert_eq!(b["max_token_lifetime_secs"], 7200);
    for (ok, _, stderr) in &refusals {
        assert!(!ok);
        assert!(stderr.contains("--require-app-binding"), "{stderr}");
    }
    assert_eq!(updated["max_token_lifetime_secs"], 3600);
    assert!(!too_long.0);
    assert!(
        too_long.2.contains("maximum token lifetime"),
        "{}",
        too_long.2
    );

    let call = |api_key: &str| {
        app.http
            .post(format!("{}/stripe/customers", app.address))
            .header("AppId", api_key.to_owned())
            .bearer_auth(&token_a)
            .json(&json!({"customer": {"email": "bound@example.com"}}))
            .send()
    };
    let response = call(a["api_key"].as_str().unwrap()).await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    // The same token, signed by the shared key, is not B's.
    let response = call(b["api_key"].as_str().unwrap()).await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("another app"),
        "{body}"
    );
}

on_both_databases!(
    a_tenant_and_token_from_the_cli_can_create_a_customer,
    the_cli_sets_what_users_may_choose,
    minted_tokens_are_bound_to_their_app_and_tenant_update_sets_the_rules,
);
