//! Connecting a tenant's Stripe account (issue 18): Connect OAuth and Stripe Apps, led by us
//! or started on Stripe's side and claimed; the platform webhook routing connected accounts'
//! events; disconnection; Apps token refresh. The emulator plays Stripe (its authorize pages,
//! token endpoints and Connect webhook deliveries); browser steps follow the redirects.

use std::time::Duration;

use reqwest::Method;
use sales_block::crypto::random_token;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, eventually, json_body, spawn_app, spawn_app_on,
};
use crate::on_both_databases;

const RETURN: &str = "http://localhost:3000/settings/stripe";
const CLAIM: &str = "http://localhost:3000/claim";

/// The platform this test's service runs as, registered at the emulator.
pub(crate) struct Platform {
    pub(crate) key: String,
    connect_client: String,
    app_client: String,
    app_secret: String,
}

/// A service with Connect configured against its emulator: the platform's key, both client
/// ids (registered at the emulator), the app's signing secret, and a Connect webhook endpoint
/// at the emulator pointing at this service's `/stripe/public/webhook`, whose secret is a
/// setting (so the service's address is chosen before it starts).
pub(crate) async fn connect_app(backend: Backend) -> (TestApp, Platform) {
    connect_app_with(backend, |_| {}).await
}

/// [`connect_app`] with more settings changed.
pub(crate) async fn connect_app_with(
    backend: Backend,
    customize: impl FnOnce(&mut sales_block::config::Settings) + Send + 'static,
) -> (TestApp, Platform) {
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
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
    }
    let endpoint: Value = http
        .post(format!("{base}/v1/webhook_endpoints"))
        .bearer_auth(&platform.key)
        .form(&[
            (
                "url",
                format!("http://127.0.0.1:{port}/stripe/public/webhook").as_str(),
            ),
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
        customize(s);
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
async fn approved_callback(
    app: &TestApp,
    tenant: &TestTenant,
    flow: &str,
    account: &str,
) -> String {
    let authorize = login(app, tenant, flow).await;
    let callback = follow(&format!(
        "{authorize}&emulator_approve=1&emulator_account={account}"
    ))
    .await;
    assert!(
        callback.starts_with(&format!("{}/stripe/public/auth/callback?", app.address)),
        "{callback}"
    );
    callback
}

/// Connects the tenant to `account` by `flow`, end to end.
pub(crate) async fn connect(app: &TestApp, tenant: &TestTenant, flow: &str, account: &str) {
    let callback = approved_callback(app, tenant, flow, account).await;
    let back = follow(&callback).await;
    assert_eq!(back, format!("{RETURN}?connected={account}"));
}

async fn account_of(app: &TestApp, tenant: &TestTenant) -> Value {
    app.admin_json(tenant, "/stripe/account").await["data"]["attributes"].clone()
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
    assert_error(
        browser().get(&callback).send().await.unwrap(),
        400,
        "invalid_state",
    )
    .await;
    assert_eq!(platform.count(&app, "/connect/oauth/token", None).await, 1);

    // The tenant's calls now act on the connected account, not on its own key's.
    let customer = app
        .customer(&tenant, &tenant.user_token("u1"), "c@example.com")
        .await;
    let id = customer["stripe_customer_id"].as_str().unwrap();
    assert_eq!(
        platform
            .get_as(&app, &account, &format!("/v1/customers/{id}"))
            .await
            .status()
            .as_u16(),
        200
    );
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

/// A platform event signed with the service's platform webhook secret.
async fn post_platform_event(app: &TestApp, event: &Value) -> reqwest::Response {
    use secrecy::ExposeSecret;
    let body = serde_json::to_vec(event).unwrap();
    let secret = app
        .state
        .settings
        .stripe_platform_webhook_secrets
        .expose_secret()
        .to_owned();
    let signature = sales_block::signature::sign(&body, &secret, chrono::Utc::now().timestamp());
    app.request(Method::POST, "/stripe/public/webhook")
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn deauthorized(account: &str, created: i64) -> Value {
    json!({
        "id": random_token("evt_", 12),
        "object": "event",
        "type": "account.application.deauthorized",
        "account": account,
        "livemode": false,
        "created": created,
        "api_version": "2026-09-30.endive",
        "data": {"object": {"id": "ca_x", "object": "application", "name": null}},
    })
}

async fn stored_events(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use sales_block::db::schema::stripe_events;
    app.query(|conn| stripe_events::table.count().get_result::<i64>(conn))
        .await
}

/// A code redeemed twice is Stripe's `invalid_grant`, shown as a clear 400; Stripe also
/// revokes the connection, and its `account.application.deauthorized` event disconnects the
/// tenant: its Stripe calls then answer 409 without reaching Stripe. A deauthorization older
/// than the connection, or unsigned, changes nothing.
async fn a_code_used_twice_is_refused_and_the_revocation_disconnects(backend: Backend) {
    let (app, platform) = connect_app(backend).await;
    let tenant = app.tenant().await;
    let account = account_id();
    let callback = approved_callback(&app, &tenant, "connect", &account).await;
    let code = query_param(&callback, "code").unwrap();
    follow(&callback).await;

    // An old deauthorization (before this connection) and an unsigned one change nothing.
    let old = deauthorized(&account, chrono::Utc::now().timestamp() - 3600);
    assert_eq!(post_platform_event(&app, &old).await.status().as_u16(), 200);
    let unsigned = app
        .request(Method::POST, "/stripe/public/webhook")
        .json(&deauthorized(&account, chrono::Utc::now().timestamp()))
        .send()
        .await
        .unwrap();
    assert_error(unsigned, 400, "missing_signature").await;
    assert_eq!(account_of(&app, &tenant).await["access"], "connect");

    // The same code again, under a fresh state of ours.
    let second = approved_callback(&app, &tenant, "connect", &account_id()).await;
    let state = query_param(&second, "state").unwrap();
    let replayed = format!(
        "{}/stripe/public/auth/callback?code={code}&scope=read_write&state={state}",
        app.address
    );
    let refused = assert_error(
        browser().get(&replayed).send().await.unwrap(),
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("single use"),
        "{refused}"
    );

    // Stripe revoked the connection and said so to the platform endpoint.
    eventually(15, || async {
        (account_of(&app, &tenant).await["status"] == "disconnected").then_some(())
    })
    .await;
    let now = account_of(&app, &tenant).await;
    assert_eq!(now["access"], "none");
    assert_eq!(now["stripe_account_id"], Value::Null);
    assert!(now["disconnected_at"].is_string());
    let before = platform.requests(&app).await.len();
    let response = app
        .post_json(
            "/stripe/customers",
            &tenant,
            &tenant.user_token("u1"),
            &json!({"customer": {"email": "x@example.com"}}),
        )
        .await;
    assert_error(response, 409, "not_connected").await;
    assert_eq!(
        platform.requests(&app).await.len(),
        before,
        "nothing sent to Stripe"
    );
}

on_both_databases!(a_code_used_twice_is_refused_and_the_revocation_disconnects);

/// Who may start a login, with which return_url, and what a denied, expired or foreign
/// state does: nothing is stored or exchanged in any of them.
async fn logins_are_admin_only_bound_and_single_use(backend: Backend) {
    let (app, platform) = connect_app(backend).await;
    let tenant = app.tenant().await;
    let other = app.tenant().await;
    let user = app
        .authed(
            Method::GET,
            "/stripe/auth/login?flow=connect",
            &tenant,
            &tenant.user_token("u1"),
        )
        .send()
        .await
        .unwrap();
    assert_error(user, 403, "admin_required").await;
    for (query, parameter) in [
        ("flow=oauth", "flow"),
        (
            "flow=connect&return_url=https://evil.example/x",
            "return_url",
        ),
        (
            "flow=connect&return_url=http://localhost:3000@evil.example/",
            "return_url",
        ),
        ("flow=connect&return_url=/relative", "return_url"),
    ] {
        let response = app
            .authed(
                Method::GET,
                &format!("/stripe/auth/login?{query}"),
                &tenant,
                &tenant.admin_token(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 422, "{query}");
        let body = json_body(response).await;
        assert_eq!(
            body["errors"][0]["source"]["parameter"], parameter,
            "{query}: {body}"
        );
    }
    // The authorize URL carries our client id, scope, state and callback.
    let authorize = login(&app, &tenant, "connect").await;
    assert!(authorize.starts_with(&format!(
        "{}/connect/oauth/authorize?",
        app.emulator.base_url()
    )));
    assert_eq!(
        query_param(&authorize, "client_id").unwrap(),
        platform.connect_client
    );
    assert_eq!(query_param(&authorize, "scope").unwrap(), "read_write");
    assert_eq!(query_param(&authorize, "response_type").unwrap(), "code");
    assert_eq!(
        query_param(&authorize, "redirect_uri").unwrap(),
        format!("{}/stripe/public/auth/callback", app.address)
    );
    assert_eq!(query_param(&authorize, "state").unwrap().len(), 64);

    // Denied at Stripe: back to the return_url with the error; nothing stored.
    let denied = follow(&format!("{authorize}&emulator_deny=1")).await;
    let back = follow(&denied).await;
    assert!(
        back.starts_with(&format!("{RETURN}?error=access_denied")),
        "{back}"
    );
    assert_eq!(account_of(&app, &tenant).await["access"], "secret_key");

    // Expired: nothing exchanged.
    let callback = approved_callback(&app, &tenant, "connect", &account_id()).await;
    {
        use diesel::prelude::*;
        use sales_block::db::schema::stripe_oauth_states;
        app.query(|conn| {
            diesel::update(stripe_oauth_states::table)
                .set(
                    stripe_oauth_states::expires_at
                        .eq(chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1)),
                )
                .execute(conn)
        })
        .await;
    }
    assert_error(
        browser().get(&callback).send().await.unwrap(),
        400,
        "state_expired",
    )
    .await;
    assert_eq!(platform.count(&app, "/connect/oauth/token", None).await, 0);

    // A state connects the tenant that asked for it, whoever's browser brings it back.
    let account = account_id();
    let callback = approved_callback(&app, &other, "connect", &account).await;
    follow(&callback).await;
    assert_eq!(account_of(&app, &other).await["stripe_account_id"], account);
    assert_eq!(account_of(&app, &tenant).await["access"], "secret_key");

    // The account is the other tenant's now: connecting it here is refused.
    let callback = approved_callback(&app, &tenant, "connect", &account).await;
    assert_error(
        browser().get(&callback).send().await.unwrap(),
        409,
        "account_in_use",
    )
    .await;
    assert_eq!(account_of(&app, &tenant).await["access"], "secret_key");

    // Unknown state: 400.
    let unknown = format!(
        "{}/stripe/public/auth/callback?code=ac_x&state=nope",
        app.address
    );
    assert_error(
        browser().get(&unknown).send().await.unwrap(),
        400,
        "invalid_state",
    )
    .await;
}

on_both_databases!(logins_are_admin_only_bound_and_single_use);

/// Two tenants connected to two accounts: each one's events reach only its own mirror; an
/// event of an account nobody holds is acknowledged and dropped.
async fn platform_events_reach_only_the_connected_tenant(backend: Backend) {
    let (app, _platform) = connect_app(backend).await;
    let (a, b) = (app.tenant().await, app.tenant().await);
    let (acct_a, acct_b) = (account_id(), account_id());
    connect(&app, &a, "connect", &acct_a).await;
    connect(&app, &b, "connect", &acct_b).await;
    app.customer(&a, &a.user_token("ua"), "a@example.com").await;
    app.customer(&b, &b.user_token("ub"), "b@example.com").await;
    for tenant in [&a, &b] {
        let id = tenant.created.id.clone();
        eventually(15, || async {
            platform_events(&app, &id)
                .await
                .contains(&"customer.created".to_owned())
                .then_some(())
        })
        .await;
    }
    for (tenant, email) in [(&a, "a@example.com"), (&b, "b@example.com")] {
        let listed = json_body(
            app.authed(
                Method::GET,
                "/stripe/customers",
                tenant,
                &tenant.admin_token(),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        let emails: Vec<&str> = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["attributes"]["email"].as_str())
            .collect();
        assert_eq!(emails, vec![email]);
    }
    let before = stored_events(&app).await;
    let stray = json!({
        "id": random_token("evt_", 12), "object": "event", "type": "customer.created",
        "account": account_id(), "livemode": false, "created": chrono::Utc::now().timestamp(),
        "data": {"object": {"id": "cus_stray", "object": "customer"}},
    });
    let response = post_platform_event(&app, &stray).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        stored_events(&app).await,
        before,
        "nothing stored for nobody"
    );
    // The same account in live mode is nobody's either.
    let mut live = stray.clone();
    live["account"] = json!(acct_a);
    live["livemode"] = json!(true);
    live["id"] = json!(random_token("evt_", 12));
    assert_eq!(
        post_platform_event(&app, &live).await.status().as_u16(),
        200
    );
    assert_eq!(stored_events(&app).await, before);
}

on_both_databases!(platform_events_reach_only_the_connected_tenant);

/// DELETE /stripe/account deauthorizes at Stripe; calls then answer 409 not_connected; a
/// second DELETE and a tenant on its own key get 409 too.
async fn disconnecting_deauthorizes_at_stripe(backend: Backend) {
    let (app, platform) = connect_app(backend).await;
    let tenant = app.tenant().await;
    let account = account_id();
    connect(&app, &tenant, "connect", &account).await;
    let user = app
        .delete("/stripe/account", &tenant, &tenant.user_token("u1"))
        .await;
    assert_error(user, 403, "admin_required").await;
    let response = app
        .delete("/stripe/account", &tenant, &tenant.admin_token())
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let body = json_body(response).await;
    assert_eq!(body["data"]["attributes"]["status"], "disconnected");
    let sent: Vec<Value> = platform
        .requests(&app)
        .await
        .into_iter()
        .filter(|r| r["path"] == "/connect/oauth/deauthorize")
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["params"]["stripe_user_id"], account);
    assert_eq!(sent[0]["params"]["client_id"], platform.connect_client);
    let response = app
        .post_json(
            "/stripe/customers",
            &tenant,
            &tenant.user_token("u1"),
            &json!({"customer": {"email": "x@example.com"}}),
        )
        .await;
    assert_error(response, 409, "not_connected").await;
    let again = app
        .delete("/stripe/account", &tenant, &tenant.admin_token())
        .await;
    assert_error(again, 409, "not_connected").await;
    let own = app.tenant().await;
    let response = app
        .delete("/stripe/account", &own, &own.admin_token())
        .await;
    assert_error(response, 409, "not_connected").await;
    // Connecting again works, to the same account.
    connect(&app, &tenant, "connect", &account).await;
    assert_eq!(account_of(&app, &tenant).await["status"], "connected");
}

on_both_databases!(disconnecting_deauthorizes_at_stripe);

/// Sets the emulator's lifetime of the platform's new Apps access tokens.
async fn token_lifetime(app: &TestApp, platform: &Platform, secs: u64) {
    let response = app
        .http
        .post(format!("{}/_emulator/config", app.emulator.base_url()))
        .bearer_auth(&platform.key)
        .json(&json!({"access_token_lifetime_secs": secs}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

/// The tenant's stored refresh token, decrypted.
async fn stored_refresh_token(app: &TestApp, tenant: &TestTenant) -> String {
    use diesel::prelude::*;
    use sales_block::db::schema::tenants;
    let id = tenant.created.id.clone();
    let sealed: Option<String> = app
        .query(move |conn| {
            tenants::table
                .find(id)
                .select(tenants::stripe_refresh_token_enc)
                .first(conn)
        })
        .await;
    app.state
        .master
        .decrypt(&sealed.expect("a refresh token"))
        .unwrap()
}

/// Stripe Apps: connected with tokens; when the access token expires (1 s here, an hour at
/// Stripe), two calls at once cause exactly one refresh, the new refresh token is stored
/// (the old one is void), and both calls succeed on the connected account. When Stripe
/// refuses the refresh token (voided elsewhere), the tenant is disconnected: 409.
async fn app_tokens_are_refreshed_once_and_a_refused_refresh_disconnects(backend: Backend) {
    let (app, platform) = connect_app(backend).await;
    token_lifetime(&app, &platform, 1).await;
    let tenant = app.tenant().await;
    let account = account_id();
    let authorize = login(&app, &tenant, "app").await;
    assert!(authorize.starts_with(&format!(
        "{}/marketplace/oauth/v2/authorize?",
        app.emulator.base_url()
    )));
    assert_eq!(
        query_param(&authorize, "client_id").unwrap(),
        platform.app_client
    );
    let callback = follow(&format!(
        "{authorize}&emulator_approve=1&emulator_account={account}"
    ))
    .await;
    assert_eq!(
        follow(&callback).await,
        format!("{RETURN}?connected={account}")
    );
    let view = account_of(&app, &tenant).await;
    assert_eq!(view["access"], "app");
    assert_eq!(view["scope"], "stripe_apps");
    assert_eq!(view.get("refresh_token"), None);
    let first_refresh = stored_refresh_token(&app, &tenant).await;

    // The first token (1 s) expires; the refreshed one lives long enough for a loaded machine.
    token_lifetime(&app, &platform, 3600).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let token = tenant.user_token("u1");
    let token2 = tenant.user_token("u2");
    let (body1, body2) = (
        json!({"customer": {"email": "one@example.com"}}),
        json!({"customer": {"email": "two@example.com"}}),
    );
    let (one, two) = tokio::join!(
        app.post_json("/stripe/customers", &tenant, &token, &body1),
        app.post_json("/stripe/customers", &tenant, &token2, &body2),
    );
    assert_eq!(one.status().as_u16(), 201);
    assert_eq!(two.status().as_u16(), 201);
    assert_eq!(
        platform
            .count(&app, "/v1/oauth/token", Some("refresh_token"))
            .await,
        1,
        "one refresh for both calls"
    );
    let second_refresh = stored_refresh_token(&app, &tenant).await;
    assert_ne!(
        first_refresh, second_refresh,
        "the new refresh token is stored"
    );
    let id = json_body(one).await["data"]["attributes"]["stripe_customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        platform
            .get_as(&app, &account, &format!("/v1/customers/{id}"))
            .await
            .status()
            .as_u16(),
        200
    );

    // Someone else spends the refresh token: Stripe refuses ours from then on.
    let stolen = app
        .http
        .post(format!("{}/v1/oauth/token", app.emulator.base_url()))
        .bearer_auth(&platform.key)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", second_refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(stolen.status().is_success());
    // Our token is due for a refresh (as an hour later): it is refreshed with a void token.
    {
        use diesel::prelude::*;
        use sales_block::db::schema::tenants;
        let id = tenant.created.id.clone();
        app.query(move |conn| {
            diesel::update(tenants::table.find(id))
                .set(tenants::stripe_access_token_expires_at.eq(chrono::Utc::now().naive_utc()))
                .execute(conn)
        })
        .await;
        app.state.tenants.forget(&tenant.created.id);
    }
    let response = app
        .post_json(
            "/stripe/customers",
            &tenant,
            &token,
            &json!({"customer": {"email": "three@example.com"}}),
        )
        .await;
    assert_error(response, 409, "not_connected").await;
    assert_eq!(account_of(&app, &tenant).await["status"], "disconnected");
}

on_both_databases!(app_tokens_are_refreshed_once_and_a_refused_refresh_disconnects);

/// An install started on Stripe's side: its signature is checked before anything is
/// exchanged (altered ids, a stale or a wrong signature are 400), the credentials wait under
/// a one-time claim token, an admin claims them once (again: 404), and an expired claim is 410.
async fn an_install_from_stripe_is_verified_and_claimed_once(backend: Backend) {
    let (app, platform) = connect_app(backend).await;
    let tenant = app.tenant().await;
    let account = account_id();
    let install = format!(
        "{}/marketplace/install?client_id={}&redirect_uri={}/stripe/public/auth/callback&emulator_approve=1&emulator_account={account}",
        app.emulator.base_url(),
        platform.app_client,
        app.address
    );
    let callback = follow(&install).await;
    let signature = query_param(&callback, "install_signature").expect("signed");
    let user = query_param(&callback, "user_id").unwrap();
    let code = query_param(&callback, "code").unwrap();
    let callback_with = |account_id: &str, signature: &str| {
        let mut url =
            url::Url::parse(&format!("{}/stripe/public/auth/callback", app.address)).unwrap();
        url.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("user_id", &user)
            .append_pair("account_id", account_id)
            .append_pair("stripe_user_id", account_id)
            .append_pair("install_signature", signature);
        url.to_string()
    };
    // Altered account id; a stale signature (right key, 10 minutes old); a wrong key.
    let stale_t = chrono::Utc::now().timestamp() - 600;
    let payload = format!(r#"{{"state":null,"user_id":"{user}","account_id":"{account}"}}"#);
    let stale = sales_block::signature::sign(payload.as_bytes(), &platform.app_secret, stale_t);
    let wrong = sales_block::signature::sign(
        payload.as_bytes(),
        "absec_wrong",
        chrono::Utc::now().timestamp(),
    );
    for url in [
        callback_with(&account_id(), &signature),
        callback_with(&account, &stale),
        callback_with(&account, &wrong),
    ] {
        assert_error(
            browser().get(&url).send().await.unwrap(),
            400,
            "invalid_signature",
        )
        .await;
    }
    assert_eq!(
        platform.count(&app, "/v1/oauth/token", None).await,
        0,
        "nothing exchanged for a bad signature"
    );

    let to_claim = follow(&callback).await;
    assert!(
        to_claim.starts_with(&format!("{CLAIM}?claim_token=clm_")),
        "{to_claim}"
    );
    let claim_token = query_param(&to_claim, "claim_token").unwrap();
    let body = json!({"claim": {"claim_token": claim_token}});
    let user_claim = app
        .post_json(
            "/stripe/auth/claim",
            &tenant,
            &tenant.user_token("u1"),
            &body,
        )
        .await;
    assert_error(user_claim, 403, "admin_required").await;
    let claimed = app
        .post_json("/stripe/auth/claim", &tenant, &tenant.admin_token(), &body)
        .await;
    assert_eq!(claimed.status().as_u16(), 200);
    let view = json_body(claimed).await["data"]["attributes"].clone();
    assert_eq!(view["access"], "app");
    assert_eq!(view["stripe_account_id"], account);
    let again = app
        .post_json("/stripe/auth/claim", &tenant, &tenant.admin_token(), &body)
        .await;
    assert_error(again, 404, "not_found").await;
    // The installation acts on the account.
    let customer = app
        .customer(&tenant, &tenant.user_token("u1"), "c@example.com")
        .await;
    let id = customer["stripe_customer_id"].as_str().unwrap();
    assert_eq!(
        platform
            .get_as(&app, &account, &format!("/v1/customers/{id}"))
            .await
            .status()
            .as_u16(),
        200
    );

    // A second install, claimed too late.
    let other = app.tenant().await;
    let install = install.replace(&account, &account_id());
    let to_claim = follow(&follow(&install).await).await;
    let claim_token = query_param(&to_claim, "claim_token").unwrap();
    {
        use diesel::prelude::*;
        use sales_block::db::schema::stripe_oauth_claims;
        app.query(|conn| {
            diesel::update(stripe_oauth_claims::table)
                .set(
                    stripe_oauth_claims::expires_at
                        .eq(chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1)),
                )
                .execute(conn)
        })
        .await;
    }
    let late = app
        .post_json(
            "/stripe/auth/claim",
            &other,
            &other.admin_token(),
            &json!({"claim": {"claim_token": claim_token}}),
        )
        .await;
    assert_error(late, 410, "claim_expired").await;
    assert_eq!(account_of(&app, &other).await["access"], "secret_key");
}

on_both_databases!(an_install_from_stripe_is_verified_and_claimed_once);

/// `sales-block tenant set-return-origins` replaces where this tenant's logins may return
/// to (the operator's default no longer applies), and `--default` restores it.
async fn return_origins_are_set_per_tenant_by_the_cli(backend: Backend) {
    use secrecy::ExposeSecret;
    let (app, _platform) = connect_app(backend).await;
    let tenant = app.tenant().await;
    let (url, key, api_key) = (
        app.state.settings.database_url.clone(),
        app.state.settings.master_key.expose_secret().to_owned(),
        tenant.api_key().to_owned(),
    );
    let login_status = |return_url: &'static str| {
        let request = app.authed(
            Method::GET,
            &format!("/stripe/auth/login?flow=connect&return_url={return_url}"),
            &tenant,
            &tenant.admin_token(),
        );
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(login_status("https://shop.example/done").await, 422);
    let (u, k, a) = (url.clone(), key.clone(), api_key.clone());
    let out = tokio::task::spawn_blocking(move || {
        crate::cli::sales_block(
            &u,
            &k,
            &[
                "tenant",
                "set-return-origins",
                "--api-key",
                &a,
                "--origin",
                "https://shop.example/",
            ],
        )
    })
    .await
    .unwrap();
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["return_origins"], json!(["https://shop.example"]));
    assert_eq!(login_status("https://shop.example/done").await, 200);
    assert_eq!(
        login_status("http://localhost:3000/x").await,
        422,
        "replaced, not added"
    );
    tokio::task::spawn_blocking(move || {
        crate::cli::sales_block(
            &url,
            &key,
            &[
                "tenant",
                "set-return-origins",
                "--api-key",
                &api_key,
                "--default",
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(login_status("http://localhost:3000/x").await, 200);
    assert_eq!(login_status("https://shop.example/done").await, 422);
}

on_both_databases!(return_origins_are_set_per_tenant_by_the_cli);

/// Two instances, each with the tenant loaded, call Stripe at the token's expiry: one of
/// them refreshes (the lease row), the other waits for and uses the token it stored.
async fn two_instances_refresh_an_apps_token_once(backend: Backend) {
    let (app, platform) = connect_app(backend).await;
    token_lifetime(&app, &platform, 1).await;
    let tenant = app.tenant().await;
    connect(&app, &tenant, "app", &account_id()).await;
    let second = app.second_instance().await;
    token_lifetime(&app, &platform, 3600).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (token1, token2) = (tenant.user_token("u1"), tenant.user_token("u2"));
    let (body1, body2) = (
        json!({"customer": {"email": "one@example.com"}}),
        json!({"customer": {"email": "two@example.com"}}),
    );
    let on_second = app
        .http
        .post(format!("{second}/stripe/customers"))
        .header("AppId", tenant.api_key())
        .bearer_auth(&token2)
        .json(&body2)
        .send();
    let (one, two) = tokio::join!(
        app.post_json("/stripe/customers", &tenant, &token1, &body1),
        on_second
    );
    assert_eq!(one.status().as_u16(), 201);
    assert_eq!(two.unwrap().status().as_u16(), 201);
    assert_eq!(
        platform
            .count(&app, "/v1/oauth/token", Some("refresh_token"))
            .await,
        1,
        "one refresh across both instances"
    );
}

on_both_databases!(two_instances_refresh_an_apps_token_once);
