//! Boots the real application on port 0 against a fresh database (SQLite in a temp dir, or a
//! uniquely named PostgreSQL database dropped at the end) and the in-repo Stripe emulator.

use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, Response};
use reqwest_middleware::{ClientWithMiddleware, RequestBuilder};
use sales_block::app::startup::Application;
use sales_block::config::{LogFormat, Settings};
use sales_block::crypto::{MasterKey, random_token};
use sales_block::state::AppState;
use sales_block::tenants::{self, CreatedTenant, TenantSpec};
use serde_json::{Value, json};
use stripe_emulator::EmulatorHandle;

/// Runs each named scenario `async fn(Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn sqlite() {
                    super::$scenario($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$scenario($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The server PostgreSQL tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that lives as long as the test: a temp dir, or a PostgreSQL database dropped on
/// drop.
enum TestDatabase {
    Sqlite { _dir: tempfile::TempDir },
    Postgres(String),
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres(name) = self {
            let name = name.clone();
            // Off the async runtime: Diesel is blocking.
            let _ = std::thread::spawn(move || {
                if let Ok(mut conn) = PgConnection::establish(&postgres_admin_url()) {
                    let _ = diesel::sql_query(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    ))
                    .execute(&mut conn);
                }
            })
            .join();
        }
    }
}

fn create_database(backend: Backend) -> (TestDatabase, String) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("sales.db").display());
            (TestDatabase::Sqlite { _dir: dir }, url)
        }
        Backend::Postgres => {
            let name = format!("sales_test_{}", uuid::Uuid::new_v4().simple());
            let admin = postgres_admin_url();
            let mut conn = PgConnection::establish(&admin).unwrap_or_else(|err| {
                panic!("PostgreSQL must be running for these tests ({admin}): {err}")
            });
            diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .expect("create test database");
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            let url = format!("{base}/{name}");
            (TestDatabase::Postgres(name), url)
        }
    }
}

pub fn test_settings(database_url: String) -> Settings {
    Settings {
        bind: "127.0.0.1:0".into(),
        database_url,
        database_pool_size: 4,
        database_busy_timeout_ms: 10_000,
        database_statement_timeout_ms: 30_000,
        database_lock_timeout_ms: 10_000,
        database_connect_timeout_secs: 5,
        // Empty: the address the app binds, so the emulator can deliver webhooks to it.
        public_url: String::new(),
        master_key: MasterKey::generate().to_base64().into(),
        master_key_previous: Default::default(),
        metrics_token: Default::default(),
        master_key_file: "unused".into(),
        env: String::new(),
        log_format: LogFormat::Pretty,
        log_filter: "warn".into(),
        cors_origins: vec!["http://localhost:3000".into()],
        max_body_bytes: 64 * 1024,
        stripe_timeout_secs: 10,
        // As config/default.toml (tests/api/cli.rs shortens it to see a CLI change arrive).
        tenant_cache_secs: 30,
        receiver_writers: 0,
        receiver_queue: 4096,
        shutdown_grace_secs: 10,
        receiver_answer_timeout_ms: 15_000,
        notify_worker: true,
        notify_poll_ms: 50,
        notify_retry_base_ms: 100,
        notify_max_attempts: 10,
        // Off: the retention tests run it themselves, with ages of their choosing.
        event_payload_retention_days: 0,
        notification_retention_days: 0,
        // The tenants' apps of these tests listen on loopback over http.
        egress_allow_http: true,
        egress_allow_loopback: true,
        // Limits far above what any scenario sends (tests/api/rate_limits.rs sets small ones).
        rate_limit_tenant_per_sec: 10_000,
        rate_limit_tenant_burst: 10_000,
        rate_limit_caller_per_sec: 10_000,
        rate_limit_caller_burst: 10_000,
        // Connect is off unless a test turns it on (tests/api/connect.rs).
        stripe_platform_secret_key: Default::default(),
        stripe_connect_client_id: String::new(),
        stripe_app_client_id: String::new(),
        stripe_app_secret: Default::default(),
        stripe_platform_webhook_secrets: Default::default(),
        connect_claim_url: String::new(),
        connect_return_origins: Vec::new(),
        stripe_connect_base: "https://connect.stripe.com".into(),
        stripe_marketplace_base: "https://marketplace.stripe.com".into(),
        stripe_api_base: String::new(),
        // Fast for tests: the emulator has no rate limit unless a test sets one.
        sync_worker: true,
        sync_requests_per_sec: 1_000,
        sync_poll_ms: 50,
        sync_lease_secs: 5,
        // Off: tests that count Stripe requests must not meet a periodic reconciliation.
        reconcile_interval_secs: 0,
        // Off for the same reason; the sync tests turn it on.
        sync_on_connect: false,
        // What config/default.toml allows (tests/api/fetch.rs narrows it per tenant).
        fetch_allowed: default_fetch_allowed(),
    }
}

/// `fetch_allowed` as config/default.toml sets it.
pub fn default_fetch_allowed() -> Vec<String> {
    config::Config::builder()
        .add_source(config::File::from_str(
            include_str!("../../config/default.toml"),
            config::FileFormat::Toml,
        ))
        .build()
        .and_then(|defaults| defaults.get("fetch_allowed"))
        .expect("fetch_allowed in config/default.toml")
}

pub struct TestApp {
    pub address: String,
    pub emulator: EmulatorHandle,
    pub state: actix_web::web::Data<AppState>,
    /// Checks every answer of the service against its OpenAPI document (`crate::wire`).
    pub http: ClientWithMiddleware,
    _db: TestDatabase,
}

/// A tenant made for one test, with its own emulator key.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub created: CreatedTenant,
    pub stripe_key: String,
}

impl TestTenant {
    pub fn api_key(&self) -> &str {
        &self.created.api_key
    }

    pub fn secret(&self) -> &str {
        self.created.jwt_secret.as_deref().expect("HS256 tenant")
    }

    /// A valid HS256 token for `sub`.
    pub fn token(&self, sub: &str, admin: bool) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({ "sub": sub, "iat": now, "exp": now + 600 });
        if admin {
            claims["role"] = json!("admin");
        }
        sign_hs256(self.secret(), &claims)
    }

    pub fn user_token(&self, sub: &str) -> String {
        self.token(sub, false)
    }

    pub fn admin_token(&self) -> String {
        self.token("admin-1", true)
    }
}

pub fn sign_hs256(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

pub fn sign_rs256(private_pem: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("pem"),
    )
    .expect("sign")
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, customize: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_emulator(backend, |settings, _| customize(settings)).await
}

/// Like [`spawn_app_with`], with the emulator's base URL known to `customize` (Connect's
/// hosts point at it).
pub async fn spawn_app_with_emulator(
    backend: Backend,
    customize: impl FnOnce(&mut Settings, &str),
) -> TestApp {
    let emulator = stripe_emulator::spawn("127.0.0.1:0")
        .await
        .expect("start the Stripe emulator");
    spawn_app_on(backend, emulator, customize).await
}

/// A service using an emulator the test already set up.
pub async fn spawn_app_on(
    backend: Backend,
    emulator: EmulatorHandle,
    customize: impl FnOnce(&mut Settings, &str),
) -> TestApp {
    let (db, url) = tokio::task::spawn_blocking(move || create_database(backend))
        .await
        .expect("create database");
    let mut settings = test_settings(url);
    customize(&mut settings, &emulator.base_url());
    let app = Application::build(settings).await.expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        emulator,
        state,
        http: crate::wire::client(Duration::from_secs(30)),
        _db: db,
    }
}

impl TestApp {
    /// Another instance of the service on the same database and master key (what a second
    /// replica behind a load balancer is); returns its base address.
    pub async fn second_instance(&self) -> String {
        self.second_instance_with(|_| {}).await
    }

    /// Another instance on the same database, with its own settings changes.
    pub async fn second_instance_with(&self, customize: impl FnOnce(&mut Settings)) -> String {
        let mut settings = self.state.settings.clone();
        settings.bind = "127.0.0.1:0".into();
        customize(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("build second instance");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        address
    }

    /// Another instance on the same database, with its own settings changes, and the handle
    /// that stops it (as SIGTERM would).
    pub async fn stoppable_instance(
        &self,
        customize: impl FnOnce(&mut Settings),
    ) -> actix_web::dev::ServerHandle {
        let mut settings = self.state.settings.clone();
        settings.bind = "127.0.0.1:0".into();
        customize(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("build another instance");
        let handle = app.server_handle();
        tokio::spawn(app.run_until_stopped());
        handle
    }

    /// The PostgreSQL database this test runs on (`None` on SQLite).
    pub fn postgres_database(&self) -> Option<String> {
        match &self._db {
            TestDatabase::Postgres(name) => Some(name.clone()),
            TestDatabase::Sqlite { .. } => None,
        }
    }

    /// A tenant bound to this test's emulator with a fresh Stripe key, whose policy lets its
    /// users make every money-moving choice (amounts, refunds, coupons, trials, any price):
    /// what the tests of those routes exercise. The default policy, closed, is tested with
    /// [`Self::strict_tenant`] (policy.rs).
    pub async fn tenant(&self) -> TestTenant {
        let base = self.emulator.base_url();
        self.tenant_with(TenantSpec {
            stripe_api_base: Some(base),
            ..TenantSpec::default()
        })
        .await
    }

    /// A tenant with the default policy: its users may make none of the money-moving choices.
    pub async fn strict_tenant(&self) -> TestTenant {
        let base = self.emulator.base_url();
        self.tenant_with_policy(
            TenantSpec {
                stripe_api_base: Some(base),
                ..TenantSpec::default()
            },
            false,
        )
        .await
    }

    /// A tenant made from `spec`, with every choice open to users (see [`Self::tenant`]).
    pub async fn tenant_with(&self, spec: TenantSpec) -> TestTenant {
        self.tenant_with_policy(spec, true).await
    }

    async fn tenant_with_policy(&self, mut spec: TenantSpec, open: bool) -> TestTenant {
        let stripe_key = random_token("sk_test_", 12);
        spec.stripe_secret_key = stripe_key.clone();
        if spec.name.is_empty() {
            spec.name = random_token("tenant-", 4);
        }
        let master = self.state.master.clone();
        let created = self
            .state
            .db
            .run(move |conn| {
                let created = tenants::create_tenant(conn, &master, &spec)?;
                if open {
                    let all = sales_block::services::policy::Choice::ALL
                        .into_iter()
                        .collect();
                    let change = sales_block::services::policy::PolicyChange {
                        allow: Some(all),
                        offered_coupons: None,
                    };
                    sales_block::services::policy::save_with(
                        conn,
                        &master,
                        &created.id,
                        change,
                        None,
                    )
                    .map_err(|err| anyhow::anyhow!("{}", err.detail))?;
                }
                anyhow::Ok(created)
            })
            .await
            .expect("create tenant");
        TestTenant {
            created,
            stripe_key,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.address))
    }

    /// A request authenticated as `token` of `tenant`, with the spec's `AppId` header.
    pub fn authed(
        &self,
        method: Method,
        path: &str,
        tenant: &TestTenant,
        token: &str,
    ) -> RequestBuilder {
        self.request(method, path)
            .header("AppId", tenant.api_key())
            .bearer_auth(token)
    }

    pub async fn post_json(
        &self,
        path: &str,
        tenant: &TestTenant,
        token: &str,
        body: &Value,
    ) -> Response {
        self.authed(Method::POST, path, tenant, token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put_json(
        &self,
        path: &str,
        tenant: &TestTenant,
        token: &str,
        body: &Value,
    ) -> Response {
        self.authed(Method::PUT, path, tenant, token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str, tenant: &TestTenant, token: &str) -> Response {
        self.authed(Method::DELETE, path, tenant, token)
            .send()
            .await
            .expect("request")
    }

    /// How many writes (any method but GET) the tenant's key made to the emulator.
    pub async fn stripe_writes(&self, tenant: &TestTenant) -> usize {
        self.stripe_requests(tenant)
            .await
            .iter()
            .filter(|r| r["method"] != "GET")
            .count()
    }

    /// The requests a tenant's key made to the emulator.
    pub async fn stripe_requests(&self, tenant: &TestTenant) -> Vec<Value> {
        self.stripe_list(tenant, "/_emulator/requests").await
    }

    /// GETs a Stripe (emulator) path with the tenant's key and returns the JSON.
    pub async fn stripe_get(&self, tenant: &TestTenant, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.emulator.base_url()))
            .bearer_auth(&tenant.stripe_key)
            .send()
            .await
            .expect("emulator call")
            .json()
            .await
            .expect("emulator json")
    }

    /// The items of a Stripe-style list (`{"data": [...]}`) or a bare array.
    pub async fn stripe_list(&self, tenant: &TestTenant, path: &str) -> Vec<Value> {
        match self.stripe_get(tenant, path).await {
            Value::Array(items) => items,
            Value::Object(mut map) => match map.remove("data") {
                Some(Value::Array(items)) => items,
                _ => panic!("{path}: not a list"),
            },
            _ => panic!("{path}: not a list"),
        }
    }

    /// `GET path` as the tenant's admin: asserts a 200 and returns the body.
    pub async fn admin_json(&self, tenant: &TestTenant, path: &str) -> Value {
        let response = self
            .authed(Method::GET, path, tenant, &tenant.admin_token())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        json_body(response).await
    }

    /// Runs a query on the app's database (to check what the mirror holds).
    pub async fn query<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut sales_block::db::AnyConnection) -> diesel::QueryResult<T>
        + Send
        + 'static,
    ) -> T {
        self.state
            .db
            .run(move |conn| work(conn).map_err(sales_block::db::DbError::from))
            .await
            .expect("database query")
    }

    /// Number of mirrored customers across all tenants.
    pub async fn customer_count(&self) -> i64 {
        use diesel::QueryDsl;
        use sales_block::db::schema::customers;
        self.query(|conn| customers::table.count().get_result::<i64>(conn))
            .await
    }
}

/// Polls `check` until it returns `Some`, failing after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met within {secs} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Reads a JSON body, asserting the content type the SDK requires.
pub async fn json_body(response: Response) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?}"
    );
    response.json().await.expect("json body")
}

/// Asserts a JSON:API error with this status and code, and returns the error object.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let body = json_body(response).await;
    let error = body["errors"][0].clone();
    assert_eq!(error["status"], json!(status.to_string()), "{body}");
    assert_eq!(error["code"], json!(code), "{body}");
    assert!(
        error["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "an error needs a detail: {body}"
    );
    error
}

impl TestApp {
    /// Calls the emulator as Stripe's API with the tenant's key (what a dashboard user would
    /// do to create prices and coupons), returning the JSON object.
    pub async fn stripe_post(
        &self,
        tenant: &TestTenant,
        path: &str,
        form: &[(&str, &str)],
    ) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.emulator.base_url()))
            .bearer_auth(&tenant.stripe_key)
            .form(form)
            .send()
            .await
            .expect("emulator call");
        let status = response.status();
        let body: Value = response.json().await.expect("emulator json");
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// A price at the emulator: recurring monthly when `interval` is given.
    pub async fn price(&self, tenant: &TestTenant, amount: i64, interval: Option<&str>) -> String {
        let amount = amount.to_string();
        let mut form = vec![
            ("currency", "usd"),
            ("unit_amount", amount.as_str()),
            ("product_data[name]", "Plan"),
        ];
        if let Some(interval) = interval {
            form.push(("recurring[interval]", interval));
        }
        let price = self.stripe_post(tenant, "/v1/prices", &form).await;
        price["id"].as_str().expect("price id").to_owned()
    }

    /// Creates a customer through our API and returns its attributes.
    pub async fn customer(&self, tenant: &TestTenant, token: &str, email: &str) -> Value {
        let response = self
            .post_json(
                "/stripe/customers",
                tenant,
                token,
                &json!({"customer": {"email": email}}),
            )
            .await;
        assert_eq!(response.status().as_u16(), 201);
        json_body(response).await["data"]["attributes"].clone()
    }

    /// Stripe-side form parameters of the tenant's requests to `path` (oldest first).
    pub async fn stripe_params(&self, tenant: &TestTenant, method: &str, path: &str) -> Vec<Value> {
        self.stripe_requests(tenant)
            .await
            .into_iter()
            .filter(|r| r["method"] == method && r["path"] == path)
            .map(|r| r["params"].clone())
            .collect()
    }
}
