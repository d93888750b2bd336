//! `sales-block demo`: the emulator and the service together on SQLite, a demo tenant bound
//! to the emulator, and a curl line that works.

use std::time::Duration;

use crate::app::startup::Application;
use crate::config::Settings;
use crate::crypto::random_token;
use crate::state::AppState;
use crate::stripe::requests::{NewProduct, NewProductPrice, Recurring};
use crate::tenants::{self, TenantSpec};

pub async fn run(mut settings: Settings, emulator_port: u16) -> anyhow::Result<()> {
    // A demo's notify_url is an app on this machine, usually plain http.
    settings.egress_allow_http = true;
    settings.egress_allow_loopback = true;
    let emulator = match stripe_emulator::spawn(&format!("127.0.0.1:{emulator_port}")).await {
        Ok(handle) => handle,
        // The usual port is taken (another demo?): any free one will do.
        Err(_) => stripe_emulator::spawn("127.0.0.1:0").await?,
    };
    if !settings.database_url.starts_with("postgres") {
        tracing::info!(database = %settings.database_url, "demo on SQLite");
    }
    let connect = demo_platform(&mut settings, &emulator.base_url()).await?;
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let emulator_base = emulator.base_url();
    let master = state.master.clone();
    let (created, token) = state
        .db
        .run(move |conn| -> anyhow::Result<_> {
            let created = tenants::create_tenant(
                conn,
                &master,
                &TenantSpec {
                    name: "demo".into(),
                    stripe_secret_key: random_token("sk_test_demo_", 12),
                    stripe_api_base: Some(emulator_base),
                    ..TenantSpec::default()
                },
            )?;
            let row = crate::db::tenants::find_by_api_key(conn, &created.api_key)?
                .ok_or_else(|| anyhow::anyhow!("the demo tenant vanished"))?;
            let token = tenants::mint_token(
                &row,
                &master,
                "demo-admin",
                true,
                Duration::from_secs(24 * 3600),
                None,
            )?;
            Ok((created, token))
        })
        .await?;
    // A catalogue to try the session and subscription routes with.
    let tenant = state
        .tenant_by_api_key(&created.api_key)
        .await
        .map_err(|err| anyhow::anyhow!("loading the demo tenant: {err}"))?
        .ok_or_else(|| anyhow::anyhow!("the demo tenant vanished"))?;
    let one_time = demo_price(&state, &tenant, "Demo one-time", 4999, None).await?;
    let monthly = demo_price(&state, &tenant, "Demo monthly", 1999, Some("month")).await?;
    println!(
        "\nsales-block demo is running (Ctrl-C to stop)\n\
         \n  service:          {base}\
         \n  stripe emulator:  {}\
         \n  api key (AppId):  {}\
         \n  admin token:      {token}\
         \n  prices:           {one_time} ($49.99 one-time), {monthly} ($19.99 / month)\n\
         \nCreate a customer:\n\
         \n  curl -sS -X POST {base}/stripe/customers -H 'AppId: {}' -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{{\"customer\":{{\"email\":\"user@example.com\",\"name\":\"John Doe\"}}}}'\n",
        emulator.base_url(),
        created.api_key,
        created.api_key,
    );
    if connect {
        println!(
            "Connect a Stripe account instead of the demo key (Stripe Connect OAuth, played by the emulator):\n\
             \n  curl -sS '{base}/stripe/auth/login?flow=connect' -H 'AppId: {}' -H 'Authorization: Bearer {token}'\n\
             \nOpen the authorize_url it answers in a browser and press Approve (flow=app installs the\n\
             platform's Stripe App instead). Then GET {base}/stripe/account shows the connected account,\n\
             and every call of this app acts on it; its events arrive at {base}/stripe/public/webhook.\n",
            created.api_key,
        );
    }
    let result = app.run_until_stopped().await;
    emulator.stop().await;
    Ok(result?)
}

/// Unless the operator configured a platform, makes the emulator the demo's platform: a
/// platform key, a Connect client and a Stripe App registered at the emulator, and a Connect
/// webhook endpoint pointing at this service. `Ok(true)` when Connect is available.
async fn demo_platform(settings: &mut Settings, emulator: &str) -> anyhow::Result<bool> {
    use secrecy::ExposeSecret;
    if !settings
        .stripe_platform_secret_key
        .expose_secret()
        .is_empty()
    {
        return Ok(true);
    }
    let public = settings.public_url().to_owned();
    if public.is_empty() {
        return Ok(false);
    }
    let key = random_token("sk_test_platform_", 12);
    let (connect, app, app_secret) = (
        random_token("ca_", 12),
        random_token("app_", 12),
        random_token("absec_", 16),
    );
    let http = reqwest::Client::new();
    for body in [
        serde_json::json!({"client_id": connect, "kind": "connect", "name": "sales-block demo"}),
        serde_json::json!({"client_id": app, "kind": "app", "signing_secret": app_secret, "name": "sales-block demo"}),
    ] {
        http.post(format!("{emulator}/_emulator/oauth/clients"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?
            .error_for_status()?;
    }
    let endpoint = http
        .post(format!("{emulator}/v1/webhook_endpoints"))
        .bearer_auth(&key)
        .form(&[
            ("url", format!("{public}/stripe/public/webhook").as_str()),
            ("enabled_events[]", "*"),
            ("connect", "true"),
        ])
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let endpoint: serde_json::Value = serde_json::from_slice(&endpoint)?;
    let secret = endpoint["secret"].as_str().unwrap_or_default().to_owned();
    settings.stripe_platform_secret_key = key.into();
    settings.stripe_connect_client_id = connect;
    settings.stripe_app_client_id = app;
    settings.stripe_app_secret = app_secret.into();
    settings.stripe_platform_webhook_secrets = secret.into();
    settings.stripe_connect_base = format!("{emulator}/connect");
    settings.stripe_marketplace_base = format!("{emulator}/marketplace");
    settings.stripe_api_base = emulator.to_owned();
    Ok(true)
}

/// A product with one price, created at Stripe and mirrored as the catalogue routes do;
/// returns the `price_` id.
async fn demo_price(
    state: &AppState,
    tenant: &crate::tenants::TenantContext,
    name: &str,
    unit_amount: i64,
    interval: Option<&str>,
) -> anyhow::Result<String> {
    let product = tenant
        .stripe
        .create_product(
            &NewProduct {
                name: name.to_owned(),
                description: None,
                metadata: Default::default(),
            },
            None,
        )
        .await?;
    let price = tenant
        .stripe
        .create_product_price(
            &NewProductPrice {
                product: product.id.clone(),
                currency: "usd".into(),
                unit_amount,
                recurring: interval.map(|interval| Recurring {
                    interval: interval.to_owned(),
                    interval_count: 1,
                }),
                nickname: None,
                metadata: Default::default(),
            },
            None,
        )
        .await?;
    let (tenant_id, now) = (tenant.id.clone(), chrono::Utc::now().timestamp());
    let id = price.id.clone();
    state
        .db
        .run(move |conn| {
            crate::db::catalog::record_product(conn, &tenant_id, &product, now)?;
            crate::db::catalog::record_price(conn, &tenant_id, &price, now)
                .map_err(crate::db::DbError::from)
        })
        .await?;
    Ok(id)
}
