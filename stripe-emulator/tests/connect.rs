//! Stripe Connect OAuth and Stripe Apps OAuth over HTTP: the authorize pages and their
//! redirects, the token exchanges and their errors, refresh rotation, access tokens acting on
//! the connected account's store, disconnection, and the `account.application.*` events
//! delivered to a real Connect webhook receiver on loopback.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine as _;
use common::{Raw, Reply, start, test_key};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use stripe_emulator::spec;

/// A webhook receiver that keeps every event it gets.
struct Receiver {
    url: String,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let data = web::Data::from(Arc::clone(&events));
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).default_service(web::to(
                |body: web::Bytes, events: web::Data<Mutex<Vec<Value>>>| async move {
                    let event = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    events.lock().expect("events").push(event);
                    HttpResponse::Ok().finish()
                },
            ))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("receiver binds");
        let addr = server.addrs()[0];
        tokio::spawn(server.run());
        Receiver {
            url: format!("http://{addr}/hook"),
            events,
        }
    }

    /// The first event received of `event_type` for `account`, waiting up to 10 s.
    async fn event(&self, event_type: &str, account: &str) -> Value {
        for _ in 0..200 {
            let found = self
                .events
                .lock()
                .expect("events")
                .iter()
                .find(|e| e["type"] == event_type && e["account"] == account)
                .cloned();
            if let Some(event) = found {
                return event;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {event_type} event of {account} was delivered");
    }
}

/// An HTTP client that does not follow redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

/// GETs an authorize page: the status, the `Location` query as a map (empty if none), the
/// `Location` itself and the body.
async fn visit(raw: &Raw, path_and_query: &str) -> (u16, HashMap<String, String>, String, String) {
    let response = browser()
        .get(format!("{}{path_and_query}", raw.base))
        .send()
        .await
        .expect("page answers");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let query = location
        .split_once('?')
        .map(|(_, q)| {
            form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect::<HashMap<_, _>>()
        })
        .unwrap_or_default();
    let body = response.text().await.expect("body");
    (status, query, location, body)
}

/// POSTs a form to an OAuth endpoint with the key as HTTP basic auth.
async fn oauth_post(raw: &Raw, path: &str, key: &str, form: &str) -> Reply {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    raw.send(
        raw.http
            .post(format!("{}{path}", raw.base))
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned()),
    )
    .await
}

async fn register(raw: &Raw, body: Value) {
    let reply = raw
        .send(
            raw.request(reqwest::Method::POST, "/_emulator/oauth/clients")
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

async fn set_config(raw: &Raw, body: Value) {
    let reply = raw
        .send(
            raw.request(reqwest::Method::POST, "/_emulator/config")
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// A Connect webhook endpoint of the platform, sending everything to `receiver`.
async fn connect_endpoint(raw: &Raw, receiver: &Receiver) {
    let url: String = form_urlencoded::byte_serialize(receiver.url.as_bytes()).collect();
    let reply = raw
        .post(
            "/v1/webhook_endpoints",
            &format!("url={url}&enabled_events[]=*&connect=true"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// Creates a customer on `account` with the platform key.
async fn customer_on(raw: &Raw, account: &str) -> Reply {
    raw.send(
        raw.request(reqwest::Method::POST, "/v1/customers")
            .header("stripe-account", account)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=ada%40example.com"),
    )
    .await
}

/// Creates a customer with a bearer token (no `Stripe-Account`).
async fn customer_with_token(raw: &Raw, token: &str) -> Reply {
    raw.send(
        raw.http
            .post(format!("{}/v1/customers", raw.base))
            .bearer_auth(token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=grace%40example.com"),
    )
    .await
}

/// The key's logged requests to `path`.
async fn logged(raw: &Raw, path: &str) -> Vec<Value> {
    let log = raw.get("/_emulator/requests").await;
    log.json["data"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|r| r["path"] == path)
        .cloned()
        .collect()
}

fn assert_valid_event(event: &Value) {
    let spec = spec::spec().expect("the definition parses");
    let problems = spec::check_event(spec, event, "event");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn connect_flow_connects_the_account_and_a_reused_code_revokes_it() {
    let emulator = start().await;
    let key = test_key();
    let raw = Raw::new(&emulator, &key);
    let receiver = Receiver::start().await;
    connect_endpoint(&raw, &receiver).await;
    register(
        &raw,
        json!({"client_id": "ca_platform1", "kind": "connect"}),
    )
    .await;

    // The page itself, then an approval by a chosen account.
    let query = "/connect/oauth/authorize?response_type=code&client_id=ca_platform1\
                 &scope=read_write&state=st%201&redirect_uri=https%3A%2F%2Fapp.example%2Fcb";
    let (status, _, _, page) = visit(&raw, query).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"approve\"") && page.contains("id=\"deny\""));
    let (status, back, location, _) = visit(
        &raw,
        &format!("{query}&emulator_approve=1&emulator_account=acct_1Tenant"),
    )
    .await;
    assert_eq!(status, 302);
    assert!(
        location.starts_with("https://app.example/cb?"),
        "{location}"
    );
    assert_eq!(back["scope"], "read_write");
    assert_eq!(back["state"], "st 1");
    let code = back["code"].clone();
    assert!(code.starts_with("ac_"));

    // The platform's key redeems it.
    let reply = oauth_post(
        &raw,
        "/connect/oauth/token",
        &key,
        &format!("grant_type=authorization_code&code={code}"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["token_type"], "bearer");
    assert_eq!(reply.json["scope"], "read_write");
    assert_eq!(reply.json["livemode"], false);
    assert_eq!(reply.json["stripe_user_id"], "acct_1Tenant");
    assert!(reply.json.get("access_token").is_none());
    assert!(
        reply.json["stripe_publishable_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("pk_test_"))
    );
    let authorized = receiver
        .event("account.application.authorized", "acct_1Tenant")
        .await;
    assert_eq!(authorized["data"]["object"]["id"], "ca_platform1");
    assert_valid_event(&authorized);

    // Calls on the account reach the platform's Connect endpoint with `account` set.
    let created = customer_on(&raw, "acct_1Tenant").await;
    assert_eq!(created.status, 200, "{}", created.text);
    let event = receiver.event("customer.created", "acct_1Tenant").await;
    assert_eq!(event["data"]["object"]["id"], created.json["id"]);

    // Redeeming the code again fails and revokes the connection.
    let reply = oauth_post(
        &raw,
        "/connect/oauth/token",
        &key,
        &format!("grant_type=authorization_code&code={code}"),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"], "invalid_grant", "{}", reply.text);
    assert!(reply.json["error_description"].is_string());
    let revoked = customer_on(&raw, "acct_1Tenant").await;
    assert_eq!(revoked.status, 403, "{}", revoked.text);
    assert_eq!(revoked.json["error"]["code"], "account_invalid");
    assert!(
        revoked.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not have access to account 'acct_1Tenant'"))
    );
    receiver
        .event("account.application.deauthorized", "acct_1Tenant")
        .await;
    // Both exchanges are in the platform's request log.
    assert_eq!(logged(&raw, "/connect/oauth/token").await.len(), 2);
    emulator.stop().await;
}

#[tokio::test]
async fn connect_authorize_and_token_errors() {
    let emulator = start().await;
    let key = test_key();
    let raw = Raw::new(&emulator, &key);
    register(&raw, json!({"client_id": "ca_errors", "kind": "connect"})).await;
    let base =
        "/connect/oauth/authorize?client_id=ca_errors&redirect_uri=https%3A%2F%2Fa.example%2Fcb";

    // Errors Stripe shows itself.
    for bad in [
        "/connect/oauth/authorize?response_type=code&client_id=ca_nobody&redirect_uri=https%3A%2F%2Fa.example%2Fcb&emulator_approve=1".to_owned(),
        format!("{base}&response_type=token&emulator_approve=1"),
        format!("{base}&response_type=code&scope=admin&emulator_approve=1"),
        "/connect/oauth/authorize?response_type=code&client_id=ca_errors&emulator_approve=1".to_owned(),
    ] {
        let (status, _, location, page) = visit(&raw, &bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(location.is_empty() && page.contains("id=\"error\""), "{bad}");
    }
    // A denial comes back as a redirect.
    let (status, back, _, _) = visit(
        &raw,
        &format!("{base}&response_type=code&state=s9&emulator_deny=1"),
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["state"], "s9");
    assert!(back.contains_key("error_description") && !back.contains_key("code"));

    let approve = format!("{base}&response_type=code&scope=read_write&emulator_approve=1");
    let (_, back, _, _) = visit(&raw, &approve).await;
    let code = back["code"].clone();
    let exchange = |key: String, form: String| {
        let raw = &raw;
        async move { oauth_post(raw, "/connect/oauth/token", &key, &form).await }
    };
    let reply = exchange(key.clone(), "grant_type=authorization_code".into()).await;
    assert_eq!(
        (reply.status, reply.json["error"].clone()),
        (400, json!("invalid_request"))
    );
    let reply = exchange(key.clone(), format!("grant_type=password&code={code}")).await;
    assert_eq!(reply.json["error"], "unsupported_grant_type");
    // Another platform's key, then a live key, cannot redeem it.
    let reply = exchange(
        test_key(),
        format!("grant_type=authorization_code&code={code}"),
    )
    .await;
    assert_eq!(reply.json["error"], "invalid_grant", "{}", reply.text);
    let live = test_key().replace("sk_test_", "sk_live_");
    let reply = exchange(live, format!("grant_type=authorization_code&code={code}")).await;
    assert_eq!(reply.json["error"], "invalid_grant");
    assert!(reply.text.contains("test mode"), "{}", reply.text);
    // ... so it is still good for its own platform.
    let reply = exchange(
        key.clone(),
        format!("grant_type=authorization_code&code={code}"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    // No key at all.
    let reply = raw
        .send(
            raw.http
                .post(format!("{}/connect/oauth/token", raw.base))
                .body(format!("grant_type=authorization_code&code={code}")),
        )
        .await;
    assert_eq!(reply.status, 401);

    // An expired code.
    set_config(&raw, json!({"code_lifetime_secs": 0})).await;
    let (_, back, _, _) = visit(&raw, &approve).await;
    let reply = exchange(
        key.clone(),
        format!("grant_type=authorization_code&code={}", back["code"]),
    )
    .await;
    assert_eq!(reply.json["error"], "invalid_grant");
    assert!(reply.text.contains("expired"), "{}", reply.text);
    emulator.stop().await;
}

#[tokio::test]
async fn deauthorize_disconnects_and_announces() {
    let emulator = start().await;
    let key = test_key();
    let raw = Raw::new(&emulator, &key);
    let receiver = Receiver::start().await;
    connect_endpoint(&raw, &receiver).await;
    register(
        &raw,
        json!({"client_id": "ca_deauth", "kind": "connect", "redirect_uris": ["https://a.example/cb"]}),
    )
    .await;
    for account in ["acct_1One", "acct_1Two"] {
        // No redirect_uri: the registered one is used.
        let (status, back, location, _) = visit(
            &raw,
            &format!(
                "/connect/oauth/authorize?response_type=code&client_id=ca_deauth\
                 &emulator_approve=1&emulator_account={account}"
            ),
        )
        .await;
        assert_eq!(status, 302);
        assert!(location.starts_with("https://a.example/cb?"));
        assert_eq!(back["scope"], "read_only");
        let reply = oauth_post(
            &raw,
            "/connect/oauth/token",
            &key,
            &format!("grant_type=authorization_code&code={}", back["code"]),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }

    // The platform disconnects the first account.
    let reply = oauth_post(
        &raw,
        "/connect/oauth/deauthorize",
        &key,
        "client_id=ca_deauth&stripe_user_id=acct_1One",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json, json!({"stripe_user_id": "acct_1One"}));
    let event = receiver
        .event("account.application.deauthorized", "acct_1One")
        .await;
    assert_eq!(
        event["data"]["object"],
        json!({"id": "ca_deauth", "object": "application", "name": null})
    );
    assert_valid_event(&event);
    let again = oauth_post(
        &raw,
        "/connect/oauth/deauthorize",
        &key,
        "client_id=ca_deauth&stripe_user_id=acct_1One",
    )
    .await;
    assert_eq!(again.status, 400);
    assert_eq!(again.json["error"], "invalid_client");
    assert_eq!(customer_on(&raw, "acct_1One").await.status, 403);

    // The second account's owner disconnects from their Dashboard.
    assert_eq!(customer_on(&raw, "acct_1Two").await.status, 200);
    let reply = raw
        .post("/_emulator/accounts/acct_1Two/deauthorize", "")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["client_ids"], json!(["ca_deauth"]));
    receiver
        .event("account.application.deauthorized", "acct_1Two")
        .await;
    assert_eq!(customer_on(&raw, "acct_1Two").await.status, 403);
    let reply = raw
        .post("/_emulator/accounts/acct_1Two/deauthorize", "")
        .await;
    assert_eq!(reply.status, 400);

    // Accounts never connected through OAuth stay open, as before.
    assert_eq!(customer_on(&raw, "acct_1Anything").await.status, 200);
    assert_eq!(logged(&raw, "/connect/oauth/deauthorize").await.len(), 2);
    emulator.stop().await;
}

#[tokio::test]
async fn app_flow_tokens_act_on_the_account_and_refresh_rotates() {
    let emulator = start().await;
    let key = test_key();
    let raw = Raw::new(&emulator, &key);
    let receiver = Receiver::start().await;
    connect_endpoint(&raw, &receiver).await;
    register(
        &raw,
        json!({"client_id": "com.example.app", "kind": "app", "signing_secret": "absec_test1"}),
    )
    .await;
    let (status, back, _, _) = visit(
        &raw,
        "/marketplace/oauth/v2/authorize?client_id=com.example.app\
         &redirect_uri=https%3A%2F%2Fapp.example%2Fstripe&state=xyz&emulator_approve=1\
         &emulator_account=acct_1AppUser",
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(back["state"], "xyz");
    assert_eq!(back["stripe_user_id"], "acct_1AppUser");
    let code = back["code"].clone();

    // An Apps code is no Connect code.
    let reply = oauth_post(
        &raw,
        "/connect/oauth/token",
        &key,
        &format!("grant_type=authorization_code&code={code}"),
    )
    .await;
    assert_eq!(reply.json["error"], "invalid_grant");
    let reply = oauth_post(
        &raw,
        "/v1/oauth/token",
        &key,
        &format!("grant_type=authorization_code&code={code}"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["scope"], "stripe_apps");
    assert_eq!(reply.json["token_type"], "bearer");
    assert_eq!(reply.json["stripe_user_id"], "acct_1AppUser");
    assert_eq!(reply.json["livemode"], false);
    let access = reply.json["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let refresh = reply.json["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();

    // The access token acts on the account: the platform key + Stripe-Account sees it.
    let created = customer_with_token(&raw, &access).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let id = created.json["id"].as_str().expect("id");
    let seen = raw
        .send(
            raw.request(reqwest::Method::GET, &format!("/v1/customers/{id}"))
                .header("stripe-account", "acct_1AppUser"),
        )
        .await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_eq!(raw.get(&format!("/v1/customers/{id}")).await.status, 404);
    let event = receiver.event("customer.created", "acct_1AppUser").await;
    assert_eq!(event["data"]["object"]["id"], id);

    // Refreshing rotates the refresh token; the old one is void.
    let reply = oauth_post(
        &raw,
        "/v1/oauth/token",
        &key,
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let access2 = reply.json["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let refresh2 = reply.json["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_ne!(refresh2, refresh);
    assert_ne!(access2, access);
    let reuse = oauth_post(
        &raw,
        "/v1/oauth/token",
        &key,
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    )
    .await;
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.json["error"], "invalid_grant");
    let reply = oauth_post(
        &raw,
        "/v1/oauth/token",
        &key,
        &format!("grant_type=refresh_token&refresh_token={refresh2}"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(customer_with_token(&raw, &access2).await.status, 200);

    let exchanges = logged(&raw, "/v1/oauth/token").await;
    let grants: Vec<&str> = exchanges
        .iter()
        .map(|r| r["params"]["grant_type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        grants,
        [
            "authorization_code",
            "refresh_token",
            "refresh_token",
            "refresh_token"
        ]
    );
    emulator.stop().await;
}

#[tokio::test]
async fn expired_and_revoked_access_tokens_get_401() {
    let emulator = start().await;
    let key = test_key();
    let raw = Raw::new(&emulator, &key);
    register(&raw, json!({"client_id": "app_expiry", "kind": "app"})).await;
    set_config(&raw, json!({"access_token_lifetime_secs": 0})).await;
    let (_, back, _, _) = visit(
        &raw,
        "/marketplace/oauth/v2/authorize?client_id=app_expiry\
         &redirect_uri=https%3A%2F%2Fapp.example%2Fcb&emulator_approve=1",
    )
    .await;
    let account = back["stripe_user_id"].clone();
    assert!(account.starts_with("acct_"));
    assert!(!back.contains_key("install_signature"), "no signing secret");
    let reply = oauth_post(
        &raw,
        "/v1/oauth/token",
        &key,
        &format!("grant_type=authorization_code&code={}", back["code"]),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let expired = reply.json["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let refresh = reply.json["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let reply = customer_with_token(&raw, &expired).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.json["error"]["code"], "api_key_expired");
    assert_eq!(reply.json["error"]["type"], "invalid_request_error");

    set_config(&raw, json!({"access_token_lifetime_secs": 3600})).await;
    let reply = oauth_post(
        &raw,
        "/v1/oauth/token",
        &key,
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    )
    .await;
    let fresh = reply.json["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let refresh = reply.json["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_eq!(customer_with_token(&raw, &fresh).await.status, 200);

    // The owner uninstalls: the token and the refresh token stop working.
    let reply = raw
        .post(&format!("/_emulator/accounts/{account}/deauthorize"), "")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = customer_with_token(&raw, &fresh).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    let reply = oauth_post(
        &raw,
        "/v1/oauth/token",
        &key,
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    )
    .await;
    assert_eq!(reply.json["error"], "invalid_grant");
    emulator.stop().await;
}

#[tokio::test]
async fn marketplace_install_is_signed_with_the_app_secret() {
    let emulator = start().await;
    let key = test_key();
    let raw = Raw::new(&emulator, &key);
    register(
        &raw,
        json!({"client_id": "app_market", "kind": "app", "signing_secret": "absec_market"}),
    )
    .await;
    let (status, back, _, _) = visit(
        &raw,
        "/marketplace/install?client_id=app_market&redirect_uri=https%3A%2F%2Fapp.example%2Finstalled\
         &emulator_approve=1&emulator_account=acct_1Market",
    )
    .await;
    assert_eq!(status, 302);
    assert!(!back.contains_key("state"));
    assert_eq!(back["account_id"], "acct_1Market");
    assert_eq!(back["stripe_user_id"], "acct_1Market");
    let user_id = back["user_id"].clone();
    assert!(user_id.starts_with("usr_"));
    let signature = back["install_signature"].clone();
    let t: i64 = signature
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .expect("t=");
    assert!((chrono::Utc::now().timestamp() - t).abs() <= 300);
    let v1 = signature
        .split(',')
        .find_map(|p| p.strip_prefix("v1="))
        .expect("v1=");
    let payload = format!(r#"{{"state":null,"user_id":"{user_id}","account_id":"acct_1Market"}}"#);
    let sign = |secret: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac");
        mac.update(format!("{t}.{payload}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    assert_eq!(v1, sign("absec_market"));
    assert_ne!(v1, sign("absec_other"));
    // The code redeems like any Apps code.
    let reply = oauth_post(
        &raw,
        "/v1/oauth/token",
        &key,
        &format!("grant_type=authorization_code&code={}", back["code"]),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["stripe_user_id"], "acct_1Market");
    emulator.stop().await;
}

#[tokio::test]
async fn app_pages_deny_and_refuse_unknown_clients() {
    let emulator = start().await;
    let key = test_key();
    let raw = Raw::new(&emulator, &key);
    register(&raw, json!({"client_id": "app_deny", "kind": "app"})).await;
    // A Connect client id is no app, and an unknown one is refused.
    register(&raw, json!({"client_id": "ca_notanapp", "kind": "connect"})).await;
    for client in ["app_nobody", "ca_notanapp"] {
        let (status, _, _, page) = visit(
            &raw,
            &format!(
                "/marketplace/oauth/v2/authorize?client_id={client}\
                 &redirect_uri=https%3A%2F%2Fapp.example%2Fcb&emulator_approve=1"
            ),
        )
        .await;
        assert_eq!(status, 400, "{client}");
        assert!(page.contains("id=\"error\""));
    }
    let (status, back, location, _) = visit(
        &raw,
        "/marketplace/oauth/v2/authorize?client_id=app_deny\
         &redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=q&emulator_deny=1",
    )
    .await;
    assert_eq!(status, 302);
    assert!(location.starts_with("https://app.example/cb?"));
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["state"], "q");
    // The page's own Approve button posts the form back.
    let reply = browser()
        .post(format!("{}/marketplace/oauth/v2/authorize", raw.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_id=app_deny&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=q&decision=approve&account=acct_1Posted")
        .send()
        .await
        .expect("answers");
    assert_eq!(reply.status().as_u16(), 302);
    let location = reply.headers()["location"].to_str().expect("location");
    assert!(
        location.contains("stripe_user_id=acct_1Posted"),
        "{location}"
    );
    emulator.stop().await;
}
