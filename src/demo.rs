//! `sales-block demo`: the emulator and the service together on SQLite, a demo tenant bound
//! to the emulator, and a curl line that works.

use std::time::Duration;

use crate::config::Settings;
use crate::crypto::random_token;
use crate::gateway::catalog::NewPrice;
use crate::startup::Application;
use crate::tenants::{self, TenantSpec};

pub async fn run(settings: Settings, emulator_port: u16) -> anyhow::Result<()> {
    let emulator = match stripe_emulator::spawn(&format!("127.0.0.1:{emulator_port}")).await {
        Ok(handle) => handle,
        // The usual port is taken (another demo?): any free one will do.
        Err(_) => stripe_emulator::spawn("127.0.0.1:0").await?,
    };
    if !settings.database_url.starts_with("postgres") {
        tracing::info!(database = %settings.database_url, "demo on SQLite");
    }
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
    let stripe = state
        .tenant_by_api_key(&created.api_key)
        .await
        .map_err(|err| anyhow::anyhow!("loading the demo tenant: {err}"))?
        .ok_or_else(|| anyhow::anyhow!("the demo tenant vanished"))?
        .stripe
        .clone();
    let one_time = stripe
        .create_price(NewPrice {
            product_name: "Demo one-time".into(),
            unit_amount: 4999,
            currency: "usd".into(),
            interval: None,
        })
        .await?;
    let monthly = stripe
        .create_price(NewPrice {
            product_name: "Demo monthly".into(),
            unit_amount: 1999,
            currency: "usd".into(),
            interval: Some("month".into()),
        })
        .await?;
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
    let result = app.run_until_stopped().await;
    emulator.stop().await;
    Ok(result?)
}
