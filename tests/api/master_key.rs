//! Issue 12, point 12: the master key. Production refuses to start without one, it is never
//! printed, and it can be rolled: `sales-block rotate-master-key` re-encrypts every stored
//! secret, after which the service runs on the new key (with and then without the old one).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use sales_block::app::startup::Application;
use sales_block::crypto::MasterKey;
use sales_block::db::schema::{idempotency_keys, tenant_policies, tenants, webhook_secrets};
use sales_block::tenants::TenantSpec;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{
    Backend, TestApp, TestTenant, json_body, sign_rs256, spawn_app, test_settings,
};
use crate::on_both_databases;

fn sales_block(envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sales-block"));
    command
        .args(args)
        .env_remove("SALES_MASTER_KEY")
        .env_remove("SALES_MASTER_KEY_PREVIOUS")
        .env_remove("SALES_ENV")
        .env("SALES_LOG_FILTER", "warn");
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().expect("run sales-block")
}

#[test]
fn production_without_a_master_key_refuses_to_start_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    let db_file = dir.path().join("sales.db");
    let database_url = format!("sqlite://{}", db_file.display());
    let key_file_text = key_file.display().to_string();
    let envs = [
        ("DATABASE_URL", database_url.as_str()),
        ("SALES_MASTER_KEY_FILE", key_file_text.as_str()),
    ];

    // SALES_ENV=production, or --production.
    let by_env = sales_block(
        &[envs[0], envs[1], ("SALES_ENV", "production")],
        &["tenant", "list"],
    );
    let by_flag = sales_block(&envs, &["--production", "tenant", "list"]);
    for output in [by_env, by_flag] {
        assert!(!output.status.success(), "started without a master key");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("SALES_MASTER_KEY"), "{stderr}");
        assert!(stderr.contains("production"), "{stderr}");
    }
    assert!(!key_file.exists(), "no key was generated");
    assert!(!db_file.exists(), "nothing was touched");

    // The server itself: it stops at once instead of serving.
    let mut serve = Command::new(env!("CARGO_BIN_EXE_sales-block"))
        .args(["serve", "--production", "--bind", "127.0.0.1:0"])
        .env_remove("SALES_MASTER_KEY")
        .env_remove("SALES_ENV")
        .env("DATABASE_URL", &database_url)
        .env("SALES_MASTER_KEY_FILE", &key_file)
        .env("SALES_LOG_FILTER", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = serve.kill();
            let _ = serve.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.is_some_and(|s| !s.success()),
        "serve --production ran without a master key"
    );
    assert!(!key_file.exists());

    // Outside production the development default still works: a key generated into the file.
    let dev = sales_block(&envs, &["tenant", "list"]);
    assert!(
        dev.status.success(),
        "{}",
        String::from_utf8_lossy(&dev.stderr)
    );
    assert!(key_file.exists());
}

#[tokio::test]
async fn the_application_refuses_production_without_a_key_and_never_prints_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(format!("sqlite://{}", dir.path().join("s.db").display()));
    let previous = MasterKey::generate().to_base64();
    settings.master_key_previous = previous.clone().into();
    let shown = format!("{settings:?} {settings:#?}");
    let current = settings.master_key.expose_secret().to_owned();
    for secret in [&current, &previous] {
        assert!(!shown.contains(secret.as_str()), "{shown}");
        assert!(!shown.contains(&secret[..12]), "{shown}");
    }

    settings.env = "production".into();
    settings.master_key = String::new().into();
    let err = Application::build(settings).await.err().expect("refused");
    let err = format!("{err:#}");
    assert!(err.contains("SALES_MASTER_KEY"), "{err}");
}

/// Stripe's signature scheme, written out independently of the service.
fn stripe_signature(body: &str, secret: &str) -> String {
    let t = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

struct Before {
    hs: TestTenant,
    rs: TestTenant,
    url_id: String,
    whsec: String,
    replay: Value,
}

/// What must keep working on an instance at `address`: both tenants authenticate and reach
/// Stripe, the saved idempotent answer replays, and the receiver verifies with the endpoint's
/// secret (and refuses another).
async fn everything_works_on(app: &TestApp, address: &str, before: &Before, run: &str) {
    let rs_token = sign_rs256(
        include_str!("../fixtures/rs256_private.pem"),
        &json!({"sub": "u1", "iat": chrono::Utc::now().timestamp(),
            "exp": chrono::Utc::now().timestamp() + 600}),
    );
    for (tenant, token) in [
        (&before.hs, before.hs.user_token("u1")),
        (&before.rs, rs_token),
    ] {
        let response = app
            .http
            .post(format!("{address}/stripe/customers"))
            .header("AppId", tenant.api_key())
            .bearer_auth(token)
            .json(&json!({"customer": {"email": format!("{run}@example.com")}}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            201,
            "{run}: {}",
            response.text().await.unwrap()
        );
    }
    let replay = app
        .http
        .post(format!("{address}/stripe/customers"))
        .header("AppId", before.hs.api_key())
        .header("Idempotency-Key", "before-rotation")
        .bearer_auth(before.hs.user_token("u1"))
        .json(&json!({"customer": {"email": "kept@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true", "{run}");
    assert_eq!(json_body(replay).await, before.replay, "{run}");
    // The order lookup's secret decrypts: the lookup is sent (and fails at the closed port),
    // not refused as an internal error.
    let lookup = app
        .http
        .post(format!("{address}/stripe/payments"))
        .header("AppId", before.hs.api_key())
        .bearer_auth(before.hs.user_token("u1"))
        .json(&json!({"payment": {"order_unique_id": format!("ord-{run}")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(lookup.status().as_u16(), 502, "{run}");
    assert_eq!(
        json_body(lookup).await["errors"][0]["code"],
        "order_lookup_failed",
        "{run}"
    );

    let body = json!({"id": format!("evt_{run}"), "type": "test.rotation",
        "created": chrono::Utc::now().timestamp(), "data": {"object": {}}})
    .to_string();
    for (secret, status) in [(before.whsec.as_str(), 200), ("whsec_not_it", 400)] {
        let response = app
            .http
            .post(format!("{address}/stripe/{}/webhook", before.url_id))
            .header("content-type", "application/json")
            .header("Stripe-Signature", stripe_signature(&body, secret))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{run}");
    }
}

async fn after_a_rotation_every_tenant_and_endpoint_works_with_the_new_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let old_key = app.state.settings.master_key.expose_secret().to_owned();
    let hs = app.tenant().await;
    let rs = app
        .tenant_with(TenantSpec {
            stripe_api_base: Some(app.emulator.base_url()),
            jwt_rs256_public_key: Some(include_str!("../fixtures/rs256_public.pem").to_owned()),
            ..TenantSpec::default()
        })
        .await;
    let endpoint = json_body(
        app.post_json(
            "/stripe/webhooks",
            &hs,
            &hs.admin_token(),
            &json!({"webhook": {"events": ["*"], "url": "http://127.0.0.1:9/elsewhere"}}),
        )
        .await,
    )
    .await["data"]["attributes"]
        .clone();
    let notify = app
        .authed(
            Method::PUT,
            "/stripe/notifications/settings",
            &hs,
            &hs.admin_token(),
        )
        .json(&json!({"notification_settings": {"url": "http://127.0.0.1:9/hooks"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(notify.status().as_u16(), 200);
    // An order lookup URL (a closed port: a lookup reaches it only if its secret decrypts).
    let policy = app
        .authed(Method::PUT, "/stripe/policy", &hs, &hs.admin_token())
        .json(&json!({"policy": {"order_lookup_url": "http://127.0.0.1:9/orders"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(policy.status().as_u16(), 200);
    let keyed = app
        .authed(Method::POST, "/stripe/customers", &hs, &hs.user_token("u1"))
        .header("Idempotency-Key", "before-rotation")
        .json(&json!({"customer": {"email": "kept@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status().as_u16(), 201);
    let before = Before {
        hs,
        rs,
        url_id: endpoint["url_id"].as_str().unwrap().to_owned(),
        whsec: endpoint["signing_secret"].as_str().unwrap().to_owned(),
        replay: json_body(keyed).await,
    };

    let new_key = MasterKey::generate();
    let (url, new_base64) = (app.state.settings.database_url.clone(), new_key.to_base64());
    let old = old_key.clone();
    let (on_command_line, output) = tokio::task::spawn_blocking(move || {
        let envs = [
            ("DATABASE_URL", url.as_str()),
            ("SALES_MASTER_KEY", old.as_str()),
        ];
        // Never taken from the command line (`ps`, shell history): from a file (or stdin).
        let refused = sales_block(&envs, &["rotate-master-key", "--new-key", &new_base64]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("new.key");
        std::fs::write(&file, format!("{new_base64}\n")).unwrap();
        let file = file.display().to_string();
        (
            refused,
            sales_block(&envs, &["rotate-master-key", "--new-key-file", &file]),
        )
    })
    .await
    .unwrap();
    assert!(!on_command_line.status.success());
    let stderr = String::from_utf8_lossy(&on_command_line.stderr);
    assert!(stderr.contains("--new-key-file"), "{stderr}");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["master_key_id"], new_key.id());
    assert_eq!(report["resealed"]["tenants"], 2, "{report}");
    // hs: JWT secret, Stripe key, notification secret; rs: Stripe key.
    assert_eq!(report["resealed"]["tenant_secrets"], 4, "{report}");
    assert_eq!(report["resealed"]["webhook_secrets"], 1, "{report}");
    assert_eq!(report["resealed"]["order_lookup_secrets"], 1, "{report}");
    assert!(
        report["resealed"]["idempotent_answers"].as_u64().unwrap() >= 1,
        "{report}"
    );

    // Every stored secret now names the new key.
    let prefix = format!("mk1:{}:", new_key.id());
    let mut sealed: Vec<Option<String>> = app
        .query(|conn| {
            tenants::table
                .select((
                    tenants::jwt_secret_enc,
                    tenants::stripe_secret_key_enc.nullable(),
                    tenants::notify_secret_enc,
                ))
                .load::<(Option<String>, Option<String>, Option<String>)>(conn)
        })
        .await
        .into_iter()
        .flat_map(|(a, b, c)| [a, b, c])
        .collect();
    sealed.extend(
        app.query(|conn| {
            webhook_secrets::table
                .select(webhook_secrets::secret_enc.nullable())
                .load(conn)
        })
        .await,
    );
    sealed.extend(
        app.query(|conn| {
            tenant_policies::table
                .select(tenant_policies::order_lookup_secret_enc)
                .load(conn)
        })
        .await,
    );
    sealed.extend(
        app.query(|conn| {
            idempotency_keys::table
                .select(idempotency_keys::response_body)
                .load(conn)
        })
        .await,
    );
    let sealed: Vec<String> = sealed.into_iter().flatten().collect();
    assert!(sealed.len() >= 6, "{sealed:?}");
    assert!(sealed.iter().all(|s| s.starts_with(&prefix)), "{sealed:?}");

    // Run again once instances use the new key: nothing is left under the old one.
    let (url, new_base64, old) = (
        app.state.settings.database_url.clone(),
        new_key.to_base64(),
        old_key.clone(),
    );
    let again = tokio::task::spawn_blocking(move || {
        sales_block(
            &[
                ("DATABASE_URL", url.as_str()),
                ("SALES_MASTER_KEY", new_base64.as_str()),
                ("SALES_MASTER_KEY_PREVIOUS", old.as_str()),
                ("SALES_NEW_MASTER_KEY", new_base64.as_str()),
            ],
            &["rotate-master-key"],
        )
    })
    .await
    .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let again: Value = serde_json::from_slice(&again.stdout).expect("JSON report");
    assert_eq!(again["resealed"]["tenants"], 0, "{again}");
    assert_eq!(
        again["resealed"]["already_current"],
        sealed.len(),
        "{again}"
    );

    // The new key with the old one as previous, then the new key alone.
    let with_previous = app
        .second_instance_with(|s| {
            s.master_key = new_key.to_base64().into();
            s.master_key_previous = old_key.clone().into();
        })
        .await;
    everything_works_on(&app, &with_previous, &before, "with_previous").await;
    let alone = app
        .second_instance_with(|s| {
            s.master_key = new_key.to_base64().into();
            s.master_key_previous = String::new().into();
        })
        .await;
    everything_works_on(&app, &alone, &before, "alone").await;
}

on_both_databases!(after_a_rotation_every_tenant_and_endpoint_works_with_the_new_key);
