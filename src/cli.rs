//! The `sales-block` command line: serve, migrate, tenants, tokens, the emulator, the demo.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::db::Database;
use crate::startup::Application;
use crate::tenants::{self, TenantSpec, TenantSummary};

#[derive(Debug, Parser)]
#[command(
    name = "sales-block",
    version,
    about = "The 23blocks sales block's Stripe routes"
)]
pub struct Cli {
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
    /// Run the in-repo Stripe emulator (for tests and local development).
    StripeEmulator {
        #[arg(long, default_value_t = 12111)]
        port: u16,
    },
    /// Start the emulator and the service on SQLite, create a demo tenant, print how to call it.
    Demo {
        /// Port of the Stripe emulator (0 picks a free one).
        #[arg(long, default_value_t = 12111)]
        emulator_port: u16,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints one JSON object with its api_key (and jwt_secret for HS256).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        stripe_secret_key: String,
        /// Stripe API base URL (the emulator's in tests and demos).
        #[arg(long)]
        stripe_api_base: Option<String>,
        /// RSA public key (PEM file): the tenant's tokens are RS256 instead of HS256.
        #[arg(long)]
        jwt_rs256_public_key: Option<PathBuf>,
        #[arg(long)]
        jwt_issuer: Option<String>,
        #[arg(long)]
        jwt_audience: Option<String>,
    },
    /// List tenants as JSON (no secrets).
    List,
    /// Set where the tenant's app is notified of payment events (prints the signing secret,
    /// shown once), or turn notifications off with --off.
    Notify {
        /// The tenant's api key.
        #[arg(long)]
        api_key: String,
        #[arg(long, conflicts_with = "off", required_unless_present = "off")]
        url: Option<String>,
        #[arg(long)]
        off: bool,
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

fn open_database(settings: &Settings) -> anyhow::Result<(Database, MasterKey)> {
    let db = Database::connect(&settings.database_url, 2)?;
    db.migrate()?;
    let master = MasterKey::load_or_create(&settings.master_key, &settings.master_key_file)?;
    Ok((db, master))
}

pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load()?;
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
        Command::Tenant { command } => {
            let output =
                tokio::task::spawn_blocking(move || tenant_command(&settings, command)).await??;
            println!("{output}");
        }
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
        Command::StripeEmulator { port } => {
            stripe_emulator::run(&format!("127.0.0.1:{port}")).await?;
        }
        Command::Demo { emulator_port } => crate::demo::run(settings, emulator_port).await?,
    }
    Ok(())
}

fn tenant_command(settings: &Settings, command: TenantCommand) -> anyhow::Result<String> {
    let (db, master) = open_database(settings)?;
    let mut conn = db.get()?;
    match command {
        TenantCommand::Create {
            name,
            stripe_secret_key,
            stripe_api_base,
            jwt_rs256_public_key,
            jwt_issuer,
            jwt_audience,
        } => {
            let public_key = jwt_rs256_public_key
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))
                })
                .transpose()?;
            let created = tenants::create_tenant(
                &mut conn,
                &master,
                &TenantSpec {
                    name,
                    stripe_secret_key,
                    stripe_api_base,
                    jwt_rs256_public_key: public_key,
                    jwt_issuer,
                    jwt_audience,
                },
            )?;
            Ok(serde_json::to_string_pretty(&created)?)
        }
        TenantCommand::Notify {
            api_key,
            url,
            off: _,
        } => {
            let tenant = crate::db::tenants::find_by_api_key(&mut conn, &api_key)?
                .with_context(|| format!("no tenant has the api key {api_key:?}"))?;
            let egress = crate::egress::EgressPolicy::from_settings(settings);
            let url = url
                .map(|u| egress.check_url_blocking(&u, "--url").map(String::from))
                .transpose()
                .map_err(|err| anyhow::anyhow!("--url: {}", err.detail))?;
            let secret =
                crate::notifications::set_target(&master, &mut conn, &tenant.id, url.as_deref())
                    .map_err(|err| anyhow::anyhow!("{}", err.detail))?;
            Ok(serde_json::to_string_pretty(
                &serde_json::json!({"notify_url": url, "signing_secret": secret}),
            )?)
        }
        TenantCommand::List => {
            let rows: Vec<TenantSummary> = crate::db::tenants::list(&mut conn)?
                .into_iter()
                .map(TenantSummary::from)
                .collect();
            Ok(serde_json::to_string_pretty(&rows)?)
        }
    }
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
