//! Connecting a tenant's Stripe account (issue 18): Connect OAuth and Stripe Apps, led by us
//! or started on Stripe's side and claimed; the platform webhook routing connected accounts'
//! events; disconnection; Apps token refresh. The emulator plays Stripe (its authorize pages,
//! token endpoints and Connect webhook deliveries); browser steps follow the redirects.

use reqwest::Method;
use sales_block::crypto::random_token;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, eventually, json_body, spawn_app,
    spawn_app_on,
};
use crate::on_both_databases;

const RETURN: &str = "http://localhost:3000/settings/stripe";
const CLAIM: &str = "http://localhost:3000/claim";

/// The platform this test's service runs as, registered at the emulator.
struct Platform {
    key: String,
    connect_client: String,
    app_client: String,
    app_secret: String,
}

/// A service with Connect configured against its emulator: the platform's key, both client
/// ids (registered at the emulator), the app's signing secret, and a Connect webhook endpoint
/// at the emulator pointing at this service's `/stripe/public/webhook`, whose secret is a
/// setting (so the service's address is chosen before it starts).
async fn connect_app(backend: Backend) -> (TestApp, Platform) {
    let platform = Platform {
        key: random_token("sk_test_platform_", 12),
        connect_client: random_token("ca_", 12),
        app_client: random_token("app_", 12),
        app_secret: random_token("absec_", 16),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let emulator = stripe_emulator::spawn("127.0.0.1:0")
        .await
        .expect("start the Stripe emulator");
    let base = emulator.base_url();
    let http = reqwest::Client::new();
    for body in [
        json!({"client_id": platform.connect_client, "kind": "connect"}),
        json!({"client_id": platform.app_client, "kind": "app", "signing_secret": platform.app_secret}),
    ] {
        let response = http
            .post(format!("{base}/_emulator/oauth/clients"))
            .bearer_auth(&platform.key)
            .json(&body)
            .send()
            .await
            .expect("register client");
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    }
    let endpoint: Value = http
        .post(format!("{base}/v1/webhook_endpoints"))
        .bearer_auth(&platform.key)
        .form(&[
            ("url", format!("http://127.0.0.1:{port}/stripe/public/webhook").as_str()),
            ("enabled_events[]", "*"),
            ("connect", "true"),
        ])
        .send()
        .await
        .expect("connect endpoint")
        .json()
        .await
        .expect("endpoint json");
    let secret = endpoint["secret"].as_str().expect("secret").to_owned();
    let (key, connect_client, app_client, app_secret) = (
        platform.key.clone(),
        platform.connect_client.clone(),
        platform.app_client.clone(),
        platform.app_secret.clone(),
    );
    let app = spawn_app_on(backend, emulator, move |s, base| {
        s.bind = format!("127.0.0.1:{port}");
        s.public_url = format!("http://127.0.0.1:{port}");
        s.stripe_platform_secret_key = key.into();
        s.stripe_connect_client_id = connect_client;
        s.stripe_app_client_id = app_client;
        s.stripe_app_secret = app_secret.into();
        s.stripe_platform_webhook_secrets = secret.into();
        s.connect_claim_url = CLAIM.into();
        s.stripe_connect_base = format!("{base}/connect");
        s.stripe_marketplace_base = format!("{base}/marketplace");
        s.stripe_api_base = base.to_owned();
    })
    .await;
    (app, platform)
}

impl Platform {
    /// The platform key's requests at the emulator (token exchanges, refreshes, and the
    /// connected accounts' calls).
    async fn requests(&self, app: &TestApp) -> Vec<Value> {
        let log: Value = app
            .http
            .get(format!("{}/_emulator/requests", app.emulator.base_url()))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("request log")
            .json()
            .await
            .expect("log json");
        match log {
            Value::Array(items) => items,
            mut other => other["data"].take().as_array().cloned().unwrap_or_default(),
        }
    }

    /// Requests to `path`, of one `grant_type` when given.
    async fn count(&self, app: &TestApp, path: &str, grant: Option<&str>) -> usize {
        self.requests(app)
            .await
            .iter()
            .filter(|r| r["path"] == path)
            .filter(|r| grant.is_none_or(|g| r["params"]["grant_type"] == g))
            .count()
    }

    /// An object of a connected account at the emulator (platform key + Stripe-Account).
    async fn get_as(&self, app: &TestApp, account: &str, path: &str) -> reqwest::Response {
        app.http
            .get(format!("{}{path}", app.emulator.base_url()))
            .bearer_auth(&self.key)
            .header("Stripe-Account", account)
            .send()
            .await
            .expect("emulator get")
    }
}

/// A client that does not follow redirects: each browser step is checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser")
}

/// GETs `url` and returns its redirect target (asserting a redirect).
async fn follow(url: &str) -> String {
    let response = browser().get(url).send().await.expect("browser step");
    assert!(
        response.status().is_redirection(),
        "{url}: {} {}",
        response.status(),
        response.text().await.unwrap_or_default()
    );
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Starts a login as the tenant's admin; returns the authorize URL.
async fn login(app: &TestApp, tenant: &TestTenant, flow: &str) -> String {
    let response = app
        .authed(
            Method::GET,
            &format!("/stripe/auth/login?flow={flow}&return_url={RETURN}"),
            tenant,
            &tenant.admin_token(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = json_body(response).await;
    assert_eq!(body["data"]["attributes"]["flow"], flow);
    body["data"]["attributes"]["authorize_url"]
        .as_str()
        .expect("authorize_url")
        .to_owned()
}

/// Logs in, approves at Stripe for `account`, and returns our callback URL (not yet visited).
async fn approved_callback(app: &TestApp, tenant: &TestTenant, flow: &str, account: &str) -> String {
    let authorize = login(app, tenant, flow).await;
    let callback = follow(&format!("{authorize}&emulator_approve=1&emulator_account={account}")).await;
    assert!(
        callback.starts_with(&format!("{}/stripe/public/auth/callback?", app.address)),
        "{callback}"
    );
    callback
}

/// Connects the tenant to `account` by `flow`, end to end.
async fn connect(app: &TestApp, tenant: &TestTenant, flow: &str, account: &str) {
    let callback = approved_callback(app, tenant, flow, account).await;
    let back = follow(&callback).await;
    assert_eq!(back, format!("{RETURN}?connected={account}"));
}

async fn account_of(app: &TestApp, tenant: &TestTenant) -> Value {
    let response = app
        .authed(Method::GET, "/stripe/account", tenant, &tenant.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    json_body(response).await["data"]["attributes"].clone()
}

/// Events stored for the tenant through the platform endpoint, by type.
async fn platform_events(app: &TestApp, tenant_id: &str) -> Vec<String> {
    use diesel::prelude::*;
    use sales_block::db::schema::stripe_events;
    let tenant_id = tenant_id.to_owned();
    app.query(move |conn| {
        stripe_events::table
            .filter(stripe_events::tenant_id.eq(tenant_id))
            .filter(stripe_events::endpoint_id.eq("platform"))
            .order(stripe_events::received_at.asc())
            .select(stripe_events::event_type)
            .load::<String>(conn)
    })
    .await
}

fn account_id() -> String {
    random_token("acct_1", 7)
}

/// The whole Connect flow: login, Stripe's authorize page, our callback, the account in use
/// for the tenant's calls, its events routed to the tenant through the platform endpoint; the
/// callback cannot be replayed, and the code is exchanged exactly once.
async fn connect_flow_end_to_end(backend: Backend) {
    let (app, platform) = connect_app(backend).await;
    let tenant = app.tenant().await;
    let account = account_id();

    let before = account_of(&app, &tenant).await;
    assert_eq!(before["access"], "secret_key");

    let callback = approved_callback(&app, &tenant, "connect", &account).await;
    let back = follow(&callback).await;
    assert_eq!(back, format!("{RETURN}?connected={account}"));
    let now = account_of(&app, &tenant).await;
    assert_eq!(now["access"], "connect");
    assert_eq!(now["status"], "connected");
    assert_eq!(now["stripe_account_id"], account);
    assert_eq!(now["livemode"], false);
    assert!(now["connected_at"].is_string());
    assert_eq!(
        platform.count(&app, "/connect/oauth/token", None).await,
        1,
        "the code is exchanged once"
    );

    // Replayed: the state is single use; nothing is exchanged again.
    assert_error(browser().get(&callback).send().await.unwrap(), 400, "invalid_state").await;
    assert_eq!(platform.count(&app, "/connect/oauth/token", None).await, 1);

    // The tenant's calls now act on the connected account, not on its own key's.
    let customer = app
        .customer(&tenant, &tenant.user_token("u1"), "c@example.com")
        .await;
    let id = customer["stripe_customer_id"].as_str().unwrap();
    assert_eq!(platform.get_as(&app, &account, &format!("/v1/customers/{id}")).await.status().as_u16(), 200);
    let own = app
        .http
        .get(format!("{}/v1/customers/{id}", app.emulator.base_url()))
        .bearer_auth(&tenant.stripe_key)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status().as_u16(), 404, "not on the tenant's own key");

    // Its events come through the platform endpoint and are stored for the tenant.
    let tenant_id = tenant.created.id.clone();
    eventually(15, || async {
        platform_events(&app, &tenant_id)
            .await
            .contains(&"customer.created".to_owned())
            .then_some(())
    })
    .await;
}

on_both_databases!(connect_flow_end_to_end);

/// Unused in the flows above: the service must say it is not set up rather than fail.
async fn unconfigured_service_says_so(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let response = app
        .authed(
            Method::GET,
            "/stripe/auth/login?flow=connect",
            &tenant,
            &tenant.admin_token(),
        )
        .send()
        .await
        .unwrap();
    assert_error(response, 409, "connect_not_configured").await;
    let response = app
        .request(Method::POST, "/stripe/public/webhook")
        .header("stripe-signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

on_both_databases!(unconfigured_service_says_so);
