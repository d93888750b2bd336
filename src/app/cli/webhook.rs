//! `sales-block webhook ...`: a tenant's Stripe webhook endpoints from the command line,
//! through the same use cases as `GET`/`POST /stripe/webhooks` and
//! `POST /stripe/webhooks/{id}/secrets` (`crate::services::webhook_endpoints`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use secrecy::ExposeSecret;

use super::{failed, open_database, parse_ttl, secrets};
use crate::caller::Caller;
use crate::config::Settings;
use crate::http::webhooks::{WebhookAttributes, rolled_attributes};
use crate::services::webhook_endpoints::{
    self as use_case, CreateWebhookFields, RollSecretFields, WebhookStore,
};
use crate::tenants::TenantContext;
use crate::tenants::platform::Platform;

/// The subject the CLI acts as (an admin of the tenant); never stored.
const OPERATOR: &str = "sales-block-cli";

#[derive(Debug, Subcommand)]
pub(super) enum WebhookCommand {
    /// Register a webhook endpoint at Stripe for the tenant, pointing at this service's
    /// receiver (<public_url>/stripe/<url_id>/webhook; set SALES_PUBLIC_URL), and store it with
    /// its signing secret (encrypted). Prints it as JSON, the signing secret this once.
    Create {
        /// The tenant's api key (AppId).
        #[arg(long)]
        tenant: String,
        /// Stripe event types, comma-separated (default `*`: every event; the receiver stores
        /// each and applies those the mirror holds).
        #[arg(long, value_delimiter = ',', default_value = "*")]
        events: Vec<String>,
        /// Deliver elsewhere than this service's receiver (e.g. a forwarding proxy).
        #[arg(long)]
        url: Option<String>,
    },
    /// The tenant's webhook endpoints as JSON, newest first (never their secrets).
    List {
        /// The tenant's api key (AppId).
        #[arg(long)]
        tenant: String,
    },
    /// Give us the secret Stripe shows after "Roll secret" on the endpoint in its Dashboard
    /// (Stripe's API has no roll): from then on the new secret verifies, the previous ones
    /// until --expire-previous-in has passed (choose the same expiry as at Stripe).
    RollSecret {
        /// The tenant's api key (AppId).
        #[arg(long)]
        tenant: String,
        /// The endpoint: our unique id or its url_id.
        #[arg(long)]
        id: String,
        /// A file holding the new whsec_ secret, `-` for stdin.
        #[arg(long)]
        signing_secret_file: PathBuf,
        /// How long the previous secrets keep verifying: seconds or a duration such as 1h;
        /// 0 retires them now; at most 24h (Stripe's longest overlap).
        #[arg(long, default_value = "24h")]
        expire_previous_in: String,
    },
}

/// Runs a `webhook` command; returns what to print.
pub(super) async fn run(settings: Settings, command: WebhookCommand) -> anyhow::Result<String> {
    let api_key = match &command {
        WebhookCommand::Create { tenant, .. }
        | WebhookCommand::List { tenant }
        | WebhookCommand::RollSecret { tenant, .. } => tenant.clone(),
    };
    let (db, master) = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || open_database(&settings)).await??
    };
    let caller = operator_of(&settings, &db, &master, api_key).await?;
    let public_url = settings.public_url();
    let store = WebhookStore {
        db: &db,
        master: &master,
        public_url,
        // This process serves no deliveries; running instances read the change within
        // `tenant_cache_secs` (an endpoint new to them at once).
        endpoints: None,
    };
    match command {
        WebhookCommand::Create { events, url, .. } => {
            if url.is_none() && public_url.is_empty() {
                anyhow::bail!(
                    "set SALES_PUBLIC_URL (or public_url) to the address Stripe reaches this service at, or give --url"
                );
            }
            let fields = CreateWebhookFields {
                events: Some(events),
                enabled_events: None,
                url,
            };
            let new = use_case::parse(fields, "--").map_err(failed)?;
            let (row, secret) = use_case::create(&store, &caller, new)
                .await
                .map_err(failed)?;
            Ok(serde_json::to_string_pretty(&WebhookAttributes::new(
                row,
                Some(secret),
            ))?)
        }
        WebhookCommand::List { .. } => {
            let rows = use_case::list(&store, &caller).await.map_err(failed)?;
            let listed: Vec<WebhookAttributes> = rows
                .into_iter()
                .map(|row| WebhookAttributes::new(row, None))
                .collect();
            Ok(serde_json::to_string_pretty(&listed)?)
        }
        WebhookCommand::RollSecret {
            id,
            signing_secret_file,
            expire_previous_in,
            ..
        } => {
            let secret = secrets::read_secret(&signing_secret_file, "the new signing secret")?;
            let overlap = match expire_previous_in.trim() {
                "0" => 0,
                raw => i64::try_from(parse_ttl(raw).context("--expire-previous-in")?.as_secs())?,
            };
            let fields = RollSecretFields {
                signing_secret: Some(secret.expose_secret().to_owned()),
                expire_previous_in: Some(overlap),
            };
            let (secret, overlap) = use_case::parse_roll(fields, "--").map_err(failed)?;
            let rolled = use_case::roll_secret(&store, &caller, &id, secret, overlap)
                .await
                .map_err(failed)?;
            Ok(serde_json::to_string_pretty(&rolled_attributes(rolled))?)
        }
    }
}

/// The tenant's admin, as the use cases take a caller: its Stripe access loaded as the service
/// loads it (its own key, or the platform's for a connected account).
async fn operator_of(
    settings: &Settings,
    db: &crate::db::Database,
    master: &crate::crypto::MasterKey,
    api_key: String,
) -> anyhow::Result<Caller> {
    let timeout = Duration::from_secs(settings.stripe_timeout_secs.max(1));
    let platform = Platform::from_settings(settings, db.clone(), master.clone(), timeout)?;
    let (db, master) = (db.clone(), master.clone());
    let tenant = tokio::task::spawn_blocking(move || -> anyhow::Result<TenantContext> {
        let mut conn = db.get()?;
        let row = crate::db::tenants::find_by_api_key(&mut conn, &api_key)?
            .with_context(|| format!("no tenant has the api key {api_key:?}"))?;
        TenantContext::load(row, &master, timeout, platform.as_ref())
    })
    .await??;
    Ok(Caller {
        tenant: Arc::new(tenant),
        subject: OPERATOR.to_owned(),
        admin: true,
        key: None,
    })
}
