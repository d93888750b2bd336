//! Issue 14, operator tooling, from the real binary: secrets read from stdin or a file, a
//! tenant disabled and enabled (and how soon a running instance sees it), its api key, JWT
//! secret and Stripe key rotated, its webhook endpoints created, listed and rolled at the
//! emulator, and `health`.

use std::time::{Duration, Instant};

use reqwest::Method;
use sales_block::tenants::{CreatedTenant, TenantSpec};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::cli::run_sales_block;
use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, eventually, sign_hs256, spawn_app, spawn_app_with,
};
use crate::on_both_databases;
use crate::receiver::{deliver_raw, endpoint, event, events_stored, stripe_signature};

/// How long these tests' instances keep a tenant (`tenant_cache_secs`): short, so a change
/// made by the CLI is seen within the test.
const CACHE_SECS: u64 = 2;

/// The binary, run against the app's database and master key.
struct Cli {
    database_url: String,
    master_key: String,
    env: Vec<(String, String)>,
}

impl Cli {
    fn of(app: &TestApp) -> Self {
        Self {
            database_url: app.state.settings.database_url.clone(),
            master_key: app.state.settings.master_key.expose_secret().to_owned(),
            // Webhook endpoints point at this app's receiver; the CLI tells how soon a change
            // reaches the service from the configuration they share.
            env: vec![
                ("SALES_PUBLIC_URL".into(), app.address.clone()),
                (
                    "SALES_TENANT_CACHE_SECS".into(),
                    app.state.settings.tenant_cache_secs.to_string(),
                ),
            ],
        }
    }

    /// Runs `args` (with `stdin` as input): whether it succeeded, its stdout and stderr.
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let (url, key, env) = (
            self.database_url.clone(),
            self.master_key.clone(),
            self.env.clone(),
        );
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let stdin = stdin.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> =
                env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            run_sales_block(&url, &key, &args, &env, stdin.as_deref())
        })
        .await
        .unwrap()
    }

    /// Runs `args`, expecting success and JSON on stdout.
    async fn json(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let (ok, out, err) = self.run(args, stdin).await;
        assert!(ok, "sales-block {args:?}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// Runs `args`, expecting failure; returns stderr.
    async fn refused(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.run(args, stdin).await;
        assert!(!ok, "sales-block {args:?} should fail: {out}");
        err
    }
}

/// `GET /stripe/customers` as `token` of the app with `api_key`.
async fn list_customers(app: &TestApp, api_key: &str, token: &str) -> reqwest::Response {
    app.request(Method::GET, "/stripe/customers")
        .header("AppId", api_key)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A tenant `tenant create` printed, as the tests' helpers take tenants.
fn printed_tenant(created: &Value, stripe_key: &str) -> TestTenant {
    let text = |name: &str| created[name].as_str().map(str::to_owned);
    TestTenant {
        created: CreatedTenant {
            id: text("id").unwrap(),
            name: text("name").unwrap(),
            api_key: text("api_key").unwrap(),
            jwt_algorithm: text("jwt_algorithm").unwrap(),
            jwt_secret: text("jwt_secret"),
            stripe_api_base: text("stripe_api_base"),
            require_app_binding: created["require_app_binding"].as_bool().unwrap(),
            max_token_lifetime_secs: created["max_token_lifetime_secs"].as_i64().unwrap(),
        },
        stripe_key: stripe_key.to_owned(),
    }
}

/// What `stripe_key` wrote at Stripe (the emulator), as `METHOD /path` lines.
async fn writes_with(app: &TestApp, tenant: &TestTenant, stripe_key: &str) -> Vec<String> {
    let as_key = TestTenant {
        created: tenant.created.clone(),
        stripe_key: stripe_key.to_owned(),
    };
    app.stripe_requests(&as_key)
        .await
        .iter()
        .filter(|r| r["method"] != "GET")
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect()
}

/// Creates a customer through the API as an admin of `tenant`; the status.
async fn create_customer(app: &TestApp, tenant: &TestTenant, email: &str) -> u16 {
    app.post_json(
        "/stripe/customers",
        tenant,
        &tenant.admin_token(),
        &json!({"customer": {"email": email}}),
    )
    .await
    .status()
    .as_u16()
}

async fn secrets_come_from_stdin_or_a_file_never_a_live_key_from_the_command_line(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let cli = Cli::of(&app);
    let emulator = app.emulator.base_url();
    let create = |name: &'static str, key_args: Vec<String>| {
        let mut args: Vec<String> = ["tenant", "create", "--name", name, "--stripe-api-base"]
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
        args.push(emulator.clone());
        args.extend(key_args);
        args
    };

    // From stdin, the line break an `echo` leaves trimmed.
    let args = create(
        "from-stdin",
        vec!["--stripe-secret-key-file".into(), "-".into()],
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let by_stdin = cli.json(&argv, Some("sk_test_fromstdin1\n")).await;
    // From a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stripe.key");
    std::fs::write(&file, "sk_test_fromfile1\r\n").unwrap();
    let args = create(
        "from-file",
        vec![
            "--stripe-secret-key-file".into(),
            file.display().to_string(),
        ],
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let by_file = cli.json(&argv, None).await;

    // Each tenant calls Stripe with the key it was given.
    for (created, key) in [
        (&by_stdin, "sk_test_fromstdin1"),
        (&by_file, "sk_test_fromfile1"),
    ] {
        let tenant = printed_tenant(created, key);
        assert_eq!(create_customer(&app, &tenant, "op@example.com").await, 201);
        assert_eq!(
            writes_with(&app, &tenant, key).await,
            vec!["POST /v1/customers"]
        );
    }

    // A live key is never taken from the command line (`ps`, shell history); nothing is made.
    let args = create(
        "live-argv",
        vec![
            "--stripe-secret-key".into(),
            "sk_live_onthecommandline".into(),
        ],
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = cli.refused(&argv, None).await;
    assert!(stderr.contains("--stripe-secret-key-file -"), "{stderr}");
    // A test key still is, with a warning; both forms at once are refused.
    let args = create(
        "test-argv",
        vec![
            "--stripe-secret-key".into(),
            "sk_test_onthecommandline".into(),
        ],
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, stderr) = cli.run(&argv, None).await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("warning: --stripe-secret-key"), "{stderr}");
    let mut args = create(
        "both",
        vec!["--stripe-secret-key".into(), "sk_test_both".into()],
    );
    args.extend(["--stripe-secret-key-file".into(), "-".into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    cli.refused(&argv, Some("sk_test_both\n")).await;
    // Nothing read: refused.
    let args = create("empty", vec!["--stripe-secret-key-file".into(), "-".into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = cli.refused(&argv, Some("\n")).await;
    assert!(stderr.contains("nothing was read"), "{stderr}");

    let listed = cli.json(&["tenant", "list"], None).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["from-stdin", "from-file", "test-argv"]);
}

async fn a_disabled_tenant_is_refused_within_the_cache_lifetime_and_its_deliveries_wait(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| s.tenant_cache_secs = CACHE_SECS).await;
    let cli = Cli::of(&app);
    let tenant = app.tenant().await;
    let other = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let token = tenant.admin_token();
    let deliver = |id: &str| {
        let body = event(
            id,
            "customer.created",
            1_700_000_000,
            json!({"id": format!("cus_{id}"), "object": "customer", "email": "d@example.com",
                   "created": 1_700_000_000, "metadata": {}}),
        )
        .to_string();
        let signature = stripe_signature(&body, &ep.secret, chrono::Utc::now().timestamp());
        let (app, url_id) = (&app, ep.url_id.clone());
        async move { deliver_raw(app, &url_id, &body, Some(signature)).await }
    };
    // Served (and so cached) before.
    assert_eq!(
        list_customers(&app, tenant.api_key(), &token)
            .await
            .status(),
        200
    );
    assert_eq!(deliver("evt_before").await.status(), 200);

    let disabled = cli
        .json(&["tenant", "disable", "--api-key", tenant.api_key()], None)
        .await;
    let since = Instant::now();
    assert!(disabled["disabled_at"].as_str().is_some(), "{disabled}");
    assert_eq!(disabled["takes_effect_within_secs"], CACHE_SECS);
    // Refused within the cache's lifetime (plus this machine's slack), with a clear error.
    let refused = eventually(10, || async {
        let response = list_customers(&app, tenant.api_key(), &token).await;
        (response.status() == 403).then_some(response)
    })
    .await;
    let waited = since.elapsed();
    assert!(
        waited <= Duration::from_secs(CACHE_SECS) + Duration::from_millis(1500),
        "a disabled tenant was served for {waited:?}"
    );
    let error = assert_error(refused, 403, "tenant_disabled").await;
    assert!(error["detail"].as_str().unwrap().contains("disabled"));
    // Only a caller with a valid token learns it; other tenants are served.
    let response = list_customers(&app, tenant.api_key(), "not.a.token").await;
    assert_error(response, 401, "invalid_token").await;
    assert_eq!(
        list_customers(&app, other.api_key(), &other.admin_token())
            .await
            .status(),
        200
    );
    // Stripe's deliveries are answered 503 (Stripe retries them) and not stored, once the
    // receiver's copy of the endpoint has expired too (deliveries before that are stored).
    let mut probes = 0;
    let (refused_id, response) = eventually(10, || {
        probes += 1;
        let id = format!("evt_probe_{probes}");
        async move {
            let response = deliver(&id).await;
            (response.status() == 503).then_some((id, response))
        }
    })
    .await;
    let waited = since.elapsed();
    assert!(
        waited <= Duration::from_secs(CACHE_SECS) + Duration::from_millis(1500),
        "a disabled tenant's deliveries were stored for {waited:?}"
    );
    assert!(response.headers().get("retry-after").is_some());
    assert_error(response, 503, "tenant_disabled").await;
    let stored: Vec<String> = events_stored(&app)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(!stored.contains(&refused_id), "{stored:?}");
    assert_eq!(deliver(&refused_id).await.status(), 503, "still refused");
    // Not reconciled on its own while disabled.
    let due = app
        .query(|conn| {
            sales_block::db::sync_jobs::due_for_reconcile(
                conn,
                chrono::Utc::now().naive_utc() + chrono::Duration::days(1),
                100,
            )
        })
        .await;
    let due: Vec<&str> = due.iter().map(|(id, _)| id.as_str()).collect();
    assert!(!due.contains(&tenant.created.id.as_str()), "{due:?}");
    assert!(due.contains(&other.created.id.as_str()), "{due:?}");
    let listed = cli.json(&["tenant", "list"], None).await;
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["api_key"] == tenant.api_key())
        .unwrap()
        .clone();
    assert!(row["disabled_at"].as_str().is_some(), "{row}");

    // Enabled again: served, and Stripe's retry of the refused delivery is stored.
    let enabled = cli
        .json(&["tenant", "enable", "--api-key", tenant.api_key()], None)
        .await;
    assert_eq!(enabled["disabled_at"], Value::Null);
    eventually(10, || async {
        let response = list_customers(&app, tenant.api_key(), &token).await;
        (response.status() == 200).then_some(())
    })
    .await;
    eventually(10, || async {
        (deliver(&refused_id).await.status() == 200).then_some(())
    })
    .await;
    let stored: Vec<String> = events_stored(&app)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(stored.last(), Some(&refused_id));
    // An unknown api key changes nothing and says so.
    let stderr = cli
        .refused(&["tenant", "disable", "--api-key", "pk_test_nobody"], None)
        .await;
    assert!(stderr.contains("no tenant has the api key"), "{stderr}");
}

async fn the_api_key_and_jwt_secret_are_rotated_and_the_old_ones_stop_working(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.tenant_cache_secs = CACHE_SECS).await;
    let cli = Cli::of(&app);
    let tenant = app.tenant().await;
    let token = tenant.admin_token();
    assert_eq!(
        list_customers(&app, tenant.api_key(), &token)
            .await
            .status(),
        200
    );

    let rotated = cli
        .json(
            &["tenant", "rotate-api-key", "--api-key", tenant.api_key()],
            None,
        )
        .await;
    let new_key = rotated["api_key"].as_str().unwrap().to_owned();
    assert!(new_key.starts_with("pk_test_"), "{rotated}");
    assert_ne!(new_key, tenant.api_key());
    assert_eq!(rotated["previous_api_key"], tenant.api_key());
    // The new key works at once; the old one names no app once the cache has expired.
    assert_eq!(list_customers(&app, &new_key, &token).await.status(), 200);
    let refused = eventually(10, || async {
        let response = list_customers(&app, tenant.api_key(), &token).await;
        (response.status() == 401).then_some(response)
    })
    .await;
    assert_error(refused, 401, "invalid_api_key").await;

    let rotated = cli
        .json(
            &["tenant", "rotate-jwt-secret", "--api-key", &new_key],
            None,
        )
        .await;
    let secret = rotated["jwt_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32, "{rotated}");
    assert_ne!(secret, tenant.secret());
    let now = chrono::Utc::now().timestamp();
    let new_token = sign_hs256(
        &secret,
        &json!({"sub": "ops", "role": "admin", "iat": now, "exp": now + 600}),
    );
    // Tokens signed with the old secret are refused, the new secret's are served.
    let refused = eventually(10, || async {
        let response = list_customers(&app, &new_key, &token).await;
        (response.status() == 401).then_some(response)
    })
    .await;
    assert_error(refused, 401, "invalid_token").await;
    assert_eq!(
        list_customers(&app, &new_key, &new_token).await.status(),
        200
    );
    // Shown once: never listed.
    let listed = cli.json(&["tenant", "list"], None).await;
    assert!(!listed.to_string().contains(&secret));

    // An RS256 tenant has no secret of ours to rotate.
    let public = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rs256_public.pem"
    ))
    .unwrap();
    let rs = app
        .tenant_with(TenantSpec {
            stripe_api_base: Some(app.emulator.base_url()),
            jwt_rs256_public_key: Some(public),
            ..TenantSpec::default()
        })
        .await;
    let stderr = cli
        .refused(
            &["tenant", "rotate-jwt-secret", "--api-key", rs.api_key()],
            None,
        )
        .await;
    assert!(stderr.contains("public key"), "{stderr}");
}

async fn a_new_stripe_key_is_tried_at_stripe_before_it_replaces_the_old_one(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.tenant_cache_secs = CACHE_SECS).await;
    let cli = Cli::of(&app);
    let tenant = app.tenant().await;
    let set = ["tenant", "set-stripe-key", "--api-key", tenant.api_key()];
    let from_stdin = [&set[..], &["--stripe-secret-key-file", "-"]].concat();

    // Stripe refuses it (the emulator takes no `-` in a key): nothing changes.
    let stderr = cli.refused(&from_stdin, Some("sk_test_mis-typed\n")).await;
    assert!(
        stderr.contains("Stripe did not take the new key"),
        "{stderr}"
    );
    // Another mode is another set of Stripe objects: refused before any call.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.key");
    std::fs::write(&file, "sk_live_othermode\n").unwrap();
    let file = file.display().to_string();
    let stderr = cli
        .refused(
            &[&set[..], &["--stripe-secret-key-file", &file]].concat(),
            None,
        )
        .await;
    assert!(stderr.contains("test mode"), "{stderr}");
    tokio::time::sleep(Duration::from_secs(CACHE_SECS) + Duration::from_millis(200)).await;
    assert_eq!(create_customer(&app, &tenant, "old@example.com").await, 201);
    assert_eq!(
        writes_with(&app, &tenant, &tenant.stripe_key).await,
        vec!["POST /v1/customers"]
    );

    // The rolled key: tried, stored, used by the running instance within its cache's life.
    let changed = cli.json(&from_stdin, Some("sk_test_rolledkey1\n")).await;
    assert_eq!(changed["api_key"], tenant.api_key());
    assert_eq!(changed["takes_effect_within_secs"], CACHE_SECS);
    assert!(
        !changed.to_string().contains("sk_test_rolledkey1"),
        "never printed"
    );
    eventually(10, || async {
        create_customer(&app, &tenant, "new@example.com").await;
        let writes = writes_with(&app, &tenant, "sk_test_rolledkey1").await;
        writes
            .contains(&"POST /v1/customers".to_owned())
            .then_some(())
    })
    .await;
}

async fn webhook_endpoints_are_created_listed_and_rolled_from_the_cli(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.tenant_cache_secs = CACHE_SECS).await;
    let cli = Cli::of(&app);
    let tenant = app.tenant().await;
    let key = tenant.api_key();

    // Registered at Stripe, pointing at this service's receiver; the secret shown once.
    let created = cli
        .json(
            &[
                "webhook",
                "create",
                "--tenant",
                key,
                "--events",
                "customer.created,customer.updated",
            ],
            None,
        )
        .await;
    let url_id = created["url_id"].as_str().unwrap().to_owned();
    let secret = created["signing_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(
        created["url"],
        format!("{}/stripe/{url_id}/webhook", app.address)
    );
    assert_eq!(
        created["events"],
        json!(["customer.created", "customer.updated"])
    );
    let at_stripe = app.stripe_list(&tenant, "/v1/webhook_endpoints").await;
    assert_eq!(at_stripe.len(), 1);
    assert_eq!(at_stripe[0]["url"], created["url"]);
    // Stripe's own deliveries verify against the stored secret and are stored.
    assert_eq!(
        create_customer(&app, &tenant, "hook@example.com").await,
        201
    );
    eventually(15, || async {
        let kinds = events_stored(&app).await;
        (kinds.len() == 1).then_some(())
    })
    .await;

    // Listed, never with a secret; refused input changes nothing at Stripe.
    let listed = cli.json(&["webhook", "list", "--tenant", key], None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["url_id"], url_id.as_str());
    assert!(listed[0].get("signing_secret").is_none(), "{listed}");
    let stderr = cli
        .refused(
            &[
                "webhook",
                "create",
                "--tenant",
                key,
                "--events",
                "customer.nonsense",
            ],
            None,
        )
        .await;
    assert!(stderr.contains("not a Stripe event type"), "{stderr}");
    let stderr = cli
        .refused(&["webhook", "list", "--tenant", "pk_test_nobody"], None)
        .await;
    assert!(stderr.contains("no tenant has the api key"), "{stderr}");
    assert_eq!(
        app.stripe_list(&tenant, "/v1/webhook_endpoints")
            .await
            .len(),
        1
    );

    // Rolled in Stripe's Dashboard (the emulator's stand-in), retiring the old secret at once
    // there and here: the new secret is read from stdin.
    let we = at_stripe[0]["id"].as_str().unwrap();
    let rolled_at_stripe: Value = app
        .http
        .post(format!(
            "{}/_emulator/webhook_endpoints/{we}/roll_secret",
            app.emulator.base_url()
        ))
        .bearer_auth(&tenant.stripe_key)
        .json(&json!({"expires_in_secs": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_secret = rolled_at_stripe["secret"].as_str().unwrap().to_owned();
    let roll = [
        "webhook",
        "roll-secret",
        "--tenant",
        key,
        "--id",
        &url_id,
        "--signing-secret-file",
        "-",
        "--expire-previous-in",
        "0",
    ];
    let rolled = cli.json(&roll, Some(&format!("{new_secret}\n"))).await;
    assert!(rolled["previous_expires_at"].as_str().is_some(), "{rolled}");
    assert!(!rolled.to_string().contains(&new_secret), "never echoed");
    let send = |secret: String, id: &'static str| {
        let body = event(
            id,
            "customer.updated",
            1_700_000_000,
            json!({"id": "cus_rolled", "object": "customer", "email": "r@example.com",
                   "created": 1_700_000_000, "metadata": {}}),
        )
        .to_string();
        let signature = stripe_signature(&body, &secret, chrono::Utc::now().timestamp());
        let (app, url_id) = (&app, url_id.clone());
        async move {
            deliver_raw(app, &url_id, &body, Some(signature))
                .await
                .status()
                .as_u16()
        }
    };
    // The new secret verifies within a second (a signature that fails against the receiver's
    // cached secrets, read over a second ago, is checked against the stored ones); the old one
    // stops once the cache expires.
    let since = Instant::now();
    eventually(5, || async {
        (send(new_secret.clone(), "evt_new_secret").await == 200).then_some(())
    })
    .await;
    assert!(
        since.elapsed() < Duration::from_secs(2),
        "{:?}",
        since.elapsed()
    );
    eventually(10, || async {
        (send(secret.clone(), "evt_old_secret").await == 400).then_some(())
    })
    .await;
    // Stripe's next delivery is signed with the new secret only, and verifies.
    let before = events_stored(&app).await.len();
    assert_eq!(
        create_customer(&app, &tenant, "after@example.com").await,
        201
    );
    eventually(15, || async {
        (events_stored(&app).await.len() == before + 1).then_some(())
    })
    .await;
    // Not this tenant's endpoint, not a whsec_ secret, an overlap past Stripe's: refused.
    let other = app.tenant().await;
    let stderr = cli
        .refused(
            &[
                "webhook",
                "roll-secret",
                "--tenant",
                other.api_key(),
                "--id",
                &url_id,
                "--signing-secret-file",
                "-",
            ],
            Some("whsec_anothersecret1\n"),
        )
        .await;
    assert!(stderr.contains("No webhook endpoint"), "{stderr}");
    let stderr = cli.refused(&roll, Some("sk_test_notasecret\n")).await;
    assert!(stderr.contains("whsec_"), "{stderr}");
    let mut too_long = roll.to_vec();
    too_long[9] = "25h";
    let stderr = cli.refused(&too_long, Some("whsec_anothersecret1\n")).await;
    assert!(stderr.contains("between 0 and 86400"), "{stderr}");
}

/// `sales-block health`: what a container's HEALTHCHECK runs.
async fn health_answers_for_a_running_service_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let cli = Cli::of(&app);
    let url = format!("{}/health", app.address);
    let health = cli.json(&["health", "--url", &url], None).await;
    assert_eq!(health["status"], "ok", "{health}");
    // Nothing listens on port 9.
    cli.refused(&["health", "--url", "http://127.0.0.1:9/health"], None)
        .await;
}

on_both_databases!(
    secrets_come_from_stdin_or_a_file_never_a_live_key_from_the_command_line,
    a_disabled_tenant_is_refused_within_the_cache_lifetime_and_its_deliveries_wait,
    the_api_key_and_jwt_secret_are_rotated_and_the_old_ones_stop_working,
    a_new_stripe_key_is_tried_at_stripe_before_it_replaces_the_old_one,
    webhook_endpoints_are_created_listed_and_rolled_from_the_cli,
);

#[tokio::test]
async fn health_answers_for_a_running_service_only_sqlite() {
    health_answers_for_a_running_service_only(Backend::Sqlite).await;
}
