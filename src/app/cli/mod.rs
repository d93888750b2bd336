//! The `sales-block` command line: serve, migrate, tenants, tokens, the emulator, the demo.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::app::startup::Application;
use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::db::Database;
use crate::tenants;

mod secrets;
mod sync;
mod tenant;
mod webhook;
use tenant::TenantCommand;
use webhook::WebhookCommand;

#[derive(Debug, Parser)]
#[command(
    name = "sales-block",
    version,
    about = "The 23blocks sales block's Stripe routes"
)]
pub struct Cli {
    /// Production mode (as SALES_ENV=production): refuse to start without SALES_MASTER_KEY.
    #[arg(long, global = true)]
    production: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve {
        /// Address to bind, e.g. 127.0.0.1:8080 (overrides the configured `bind`).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Run pending database migrations and exit.
    Migrate,
    /// Manage tenants (apps).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage a tenant's Stripe webhook endpoints.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Ask a running service's `GET /health` (a container's HEALTHCHECK): prints its answer,
    /// exit status 0 only for a 200.
    Health {
        /// Default: http://127.0.0.1:<the port of `bind`>/health.
        #[arg(long)]
        url: Option<String>,
    },
    /// Mint a development JWT for a tenant; the token alone is on the last line.
    Token {
        /// The tenant's api key (AppId).
        #[arg(long)]
        tenant: String,
        /// The subject (user id) the token names.
        #[arg(long)]
        sub: String,
        /// Make the token an admin's (`role: admin`).
        #[arg(long)]
        admin: bool,
        /// Lifetime: seconds, or a duration such as 15m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// For RS256 tenants: the private key (PEM) to sign with.
        #[arg(long)]
        jwt_rs256_private_key: Option<PathBuf>,
    },
    /// Re-encrypt every stored secret under a new master key, in one transaction. The current
    /// key (SALES_MASTER_KEY, and any SALES_MASTER_KEY_PREVIOUS) decrypts; then run the service
    /// with SALES_MASTER_KEY=<new key> (and the old one in SALES_MASTER_KEY_PREVIOUS until no
    /// instance runs on it any more). Prints what was re-encrypted as JSON.
    RotateMasterKey {
        /// A file holding the new key, base64 of 32 random bytes (e.g. `openssl rand -base64
        /// 32`), or `-` for stdin; or set SALES_NEW_MASTER_KEY instead.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
        /// Refused: a key on the command line shows in `ps` and the shell's history.
        #[arg(long, hide = true)]
        new_key: Option<String>,
    },
    /// Queue a historical sync of a tenant's Stripe account into the mirror (run by the
    /// service's sync workers); `--wait` shows its progress until it ends. `sync status`
    /// prints the tenant's jobs and reconciliation state as JSON.
    #[command(args_conflicts_with_subcommands = true)]
    Sync {
        #[command(subcommand)]
        command: Option<SyncCommand>,
        /// The tenant's api key (AppId).
        #[arg(long)]
        tenant: Option<String>,
        /// Object types, comma-separated (default: all): products, prices, customers,
        /// subscriptions, invoices, payment_intents, charges, refunds, checkout_sessions,
        /// payment_links, payment_methods.
        #[arg(long, value_delimiter = ',')]
        objects: Vec<String>,
        /// Follow the job until it ends (exit status 1 if it fails or is canceled).
        #[arg(long)]
        wait: bool,
    },
    /// Run the in-repo Stripe emulator (for tests and local development).
    #[cfg(feature = "emulator")]
    StripeEmulator {
        #[arg(long, default_value_t = 12111)]
        port: u16,
    },
    /// Start the emulator and the service on SQLite, create a demo tenant, print how to call it.
    #[cfg(feature = "emulator")]
    Demo {
        /// Port of the Stripe emulator (0 picks a free one).
        #[arg(long, default_value_t = 12111)]
        emulator_port: u16,
    },
}

#[derive(Debug, Subcommand)]
enum SyncCommand {
    /// The tenant's sync jobs (newest first) and reconciliation state, as JSON.
    Status {
        /// The tenant's api key (AppId).
        #[arg(long)]
        tenant: String,
    },
}

/// Parses `3600` as seconds, and `15m`, `1h`, `7d` as durations.
pub fn parse_ttl(raw: &str) -> anyhow::Result<Duration> {
    let raw = raw.trim();
    let ttl = match raw.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(raw).with_context(|| format!("--ttl {raw:?}"))?,
    };
    anyhow::ensure!(!ttl.is_zero(), "--ttl must be positive");
    Ok(ttl)
}

pub(crate) fn open_database(settings: &Settings) -> anyhow::Result<(Database, MasterKey)> {
    let master = MasterKey::from_settings(settings)?;
    let db = Database::connect(&settings.database_url, 2)?;
    db.migrate()?;
    Ok((db, master))
}

pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load()?;
    if cli.production {
        settings.env = "production".to_owned();
    }
    crate::telemetry::init(settings.log_format, &settings.log_filter);
    match cli.command.unwrap_or(Command::Serve { bind: None }) {
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                settings.bind = bind;
            }
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "sales-block listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let db = Database::connect(&settings.database_url, 1)?;
            tokio::task::spawn_blocking(move || db.migrate()).await??;
            println!("migrations are up to date");
        }
        Command::Tenant { command } => println!("{}", tenant::run(settings, command).await?),
        Command::Webhook { command } => println!("{}", webhook::run(settings, command).await?),
        Command::Health { url } => println!("{}", health(&settings, url).await?),
        Command::Token {
            tenant,
            sub,
            admin,
            ttl,
            jwt_rs256_private_key,
        } => {
            let ttl = parse_ttl(&ttl)?;
            let private_key = jwt_rs256_private_key
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))
                })
                .transpose()?;
            let token = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
                let (db, master) = open_database(&settings)?;
                let mut conn = db.get()?;
                let row = crate::db::tenants::find_by_api_key(&mut conn, &tenant)?
                    .with_context(|| format!("no tenant has the api key {tenant:?}"))?;
                tenants::mint_token(&row, &master, &sub, admin, ttl, private_key.as_deref())
            })
            .await??;
            println!("{token}");
        }
        Command::Sync {
            command: Some(SyncCommand::Status { tenant }),
            ..
        } => {
            let output =
                tokio::task::spawn_blocking(move || sync::status(&settings, &tenant)).await??;
            println!("{output}");
        }
        Command::Sync {
            command: None,
            tenant,
            objects,
            wait,
        } => {
            let tenant = tenant.context("--tenant is required")?;
            sync::start(settings, tenant, objects, wait).await?;
        }
        Command::RotateMasterKey {
            new_key_file,
            new_key,
        } => {
            let new_key = new_master_key(new_key, new_key_file)?;
            let output = tokio::task::spawn_blocking(move || {
                rotate_master_key(&settings, new_key.expose_secret())
            })
            .await??;
            println!("{output}");
        }
        #[cfg(feature = "emulator")]
        Command::StripeEmulator { port } => {
            stripe_emulator::run(&format!("127.0.0.1:{port}")).await?;
        }
        #[cfg(feature = "emulator")]
        Command::Demo { emulator_port } => crate::app::demo::run(settings, emulator_port).await?,
    }
    Ok(())
}

/// An API error as the CLI reports it: its detail.
pub(crate) fn failed(err: crate::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", err.detail)
}

/// The new master key, from `--new-key-file` or SALES_NEW_MASTER_KEY; never from the command
/// line.
fn new_master_key(
    on_command_line: Option<String>,
    file: Option<PathBuf>,
) -> anyhow::Result<SecretString> {
    anyhow::ensure!(
        on_command_line.is_none(),
        "--new-key is not taken: a key on the command line shows in `ps` and the shell's history. \
         Pass it with --new-key-file - (stdin), --new-key-file PATH or SALES_NEW_MASTER_KEY"
    );
    if let Some(path) = file {
        return secrets::read_secret(&path, "the new master key");
    }
    match std::env::var("SALES_NEW_MASTER_KEY") {
        Ok(key) if !key.trim().is_empty() => Ok(SecretString::from(key)),
        _ => anyhow::bail!(
            "give the new key with --new-key-file - (stdin), --new-key-file PATH or SALES_NEW_MASTER_KEY"
        ),
    }
}

/// `GET /health` of the service at `url` (default: this configuration's `bind`, on loopback
/// when it binds every address); its body when it answers 200.
async fn health(settings: &Settings, url: Option<String>) -> anyhow::Result<String> {
    let url = url.unwrap_or_else(|| {
        let address = match settings.bind.parse::<std::net::SocketAddr>() {
            Ok(addr) if addr.ip().is_unspecified() => {
                let loopback: std::net::IpAddr = if addr.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                };
                std::net::SocketAddr::new(loopback, addr.port()).to_string()
            }
            _ => settings.bind.clone(),
        };
        format!("http://{address}/health")
    });
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    anyhow::ensure!(status.is_success(), "GET {url}: {status} {body}");
    Ok(body)
}

fn rotate_master_key(settings: &Settings, new_key: &str) -> anyhow::Result<String> {
    // The key that sealed what is stored must be given, not generated: a fresh file key
    // would decrypt nothing.
    anyhow::ensure!(
        !settings.master_key.expose_secret().trim().is_empty(),
        "rotate-master-key needs the current key in SALES_MASTER_KEY (a development install keeps it in {}: export SALES_MASTER_KEY=$(cat {}))",
        settings.master_key_file.display(),
        settings.master_key_file.display()
    );
    let current = MasterKey::from_settings(settings)?;
    let new = MasterKey::from_base64(new_key).context("the new master key")?;
    let new_id = new.id().to_owned();
    // The new key already current (a second run, after instances on the old key wrote
    // meanwhile): re-encrypt what the previous keys still seal.
    let keys = if new_id == current.id() {
        current
    } else {
        new.with_previous_keys(vec![current])?
    };
    let db = Database::connect(&settings.database_url, 1)?;
    db.migrate()?;
    let mut conn = db.get()?;
    let resealed = crate::rekey::rotate(&mut conn, &keys)?;
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "master_key_id": new_id,
        "resealed": resealed,
        "next": "run every instance with SALES_MASTER_KEY=<the new key> and SALES_MASTER_KEY_PREVIOUS=<the old key>; once none runs on the old key, run rotate-master-key again with the same new key (it re-encrypts what old instances wrote meanwhile) and drop SALES_MASTER_KEY_PREVIOUS",
    }))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_takes_seconds_or_durations() {
        assert_eq!(parse_ttl("3600").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("soon").is_err());
    }
}
