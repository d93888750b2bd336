//! `sales-block tenant ...`: creating, listing and updating tenants, their policy and their
//! notification target, from the command line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};

use super::{open_database, parse_ttl, secrets};
use crate::config::Settings;
use crate::tenants::{self, TenantSpec, TenantSummary};

#[derive(Debug, Subcommand)]
pub(super) enum TenantCommand {
    /// Create a tenant; prints one JSON object with its api_key (and jwt_secret for HS256).
    Create {
        #[arg(long)]
        name: String,
        /// A file holding the tenant's Stripe secret (sk_) or restricted (rk_) key, `-` for
        /// stdin (the form to use: the key never shows in `ps` or the shell's history).
        #[arg(long, required_unless_present = "stripe_secret_key")]
        stripe_secret_key_file: Option<PathBuf>,
        /// The key itself: test-mode keys only (live keys are refused here), with a warning.
        #[arg(long, conflicts_with = "stripe_secret_key_file")]
        stripe_secret_key: Option<String>,
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
        /// Accept only tokens bound to this app: an `app_id` claim equal to its api key
        /// (needed when several tenants share one RS256 identity provider).
        #[arg(long)]
        require_app_binding: bool,
        /// The longest token lifetime accepted (`exp - iat`), e.g. 1h, 24h (the default).
        #[arg(long)]
        max_token_lifetime: Option<String>,
    },
    /// Change the rules a tenant's tokens must satisfy; prints the tenant as JSON.
    Update {
        /// The tenant's api key.
        #[arg(long)]
        api_key: String,
        /// Accept only tokens carrying `app_id` = the api key.
        #[arg(long, conflicts_with = "no_require_app_binding")]
        require_app_binding: bool,
        /// Accept tokens without `app_id` again (a token naming another app stays refused).
        #[arg(long)]
        no_require_app_binding: bool,
        /// The longest token lifetime accepted (`exp - iat`), e.g. 1h, 24h.
        #[arg(long)]
        max_token_lifetime: Option<String>,
    },
    /// Narrow what the tenant's admins may call through POST /stripe/fetch to some of the
    /// operator's `fetch_allowed` rules, or give it the operator's list again; prints the
    /// tenant as JSON.
    SetFetchAllow {
        /// The tenant's api key.
        #[arg(long)]
        api_key: String,
        /// A rule of the operator's list, e.g. "GET /v1/customers/{id}" (repeat for several;
        /// replaces the tenant's list).
        #[arg(long, required_unless_present_any = ["none", "operator_list"])]
        allow: Vec<String>,
        /// Allow nothing.
        #[arg(long, conflicts_with_all = ["allow", "operator_list"])]
        none: bool,
        /// Back to the operator's whole list.
        #[arg(long, conflicts_with = "allow")]
        operator_list: bool,
    },
    /// Set the origins a Stripe Connect login may send the browser back to (its
    /// `return_url`), or go back to the operator's default (connect_return_origins, else
    /// cors_origins); prints them as JSON.
    SetReturnOrigins {
        /// The tenant's api key.
        #[arg(long)]
        api_key: String,
        /// An origin such as https://app.example.com (repeat for several; replaces the list).
        #[arg(long, required_unless_present = "default")]
        origin: Vec<String>,
        /// Back to the operator's default.
        #[arg(long, conflicts_with = "origin")]
        default: bool,
    },
    /// List tenants as JSON (no secrets).
    List,
    /// Show or change what the tenant's end users may choose that moves money (its policy);
    /// prints the policy as JSON (and a new order lookup signing secret, shown once).
    Policy {
        /// The tenant's api key.
        #[arg(long)]
        api_key: String,
        /// Let users make this choice (repeat for several; replaces the list): amount, refunds,
        /// coupons, trial_period_days, proration_none, uncatalogued_prices.
        #[arg(long, conflicts_with = "close")]
        allow: Vec<String>,
        /// Let users make none of the choices.
        #[arg(long)]
        close: bool,
        /// A coupon users may apply (repeat for several; replaces the list).
        #[arg(long)]
        offer_coupon: Vec<String>,
        /// Offer no coupon.
        #[arg(long, conflicts_with = "offer_coupon")]
        no_coupons: bool,
        /// Where unknown orders are looked up (GET <url>/<order_unique_id>, signed).
        #[arg(long, conflicts_with = "no_order_lookup")]
        order_lookup_url: Option<String>,
        /// Stop looking orders up.
        #[arg(long)]
        no_order_lookup: bool,
    },
    /// Replace the tenant's Stripe key (a key rolled at Stripe): tried at Stripe first, then
    /// stored encrypted; prints the tenant as JSON. Running instances use it within
    /// `tenant_cache_secs`.
    SetStripeKey {
        /// The tenant's api key.
        #[arg(long)]
        api_key: String,
        /// A file holding the new sk_/rk_ key, `-` for stdin.
        #[arg(long, required_unless_present = "stripe_secret_key")]
        stripe_secret_key_file: Option<PathBuf>,
        /// The key itself: test-mode keys only, with a warning.
        #[arg(long, conflicts_with = "stripe_secret_key_file")]
        stripe_secret_key: Option<String>,
    },
    /// Disable the tenant: its API calls answer 403 `tenant_disabled`, Stripe's deliveries for
    /// it 503 (Stripe retries them), and it is not reconciled on its own; on every instance
    /// within `tenant_cache_secs`. Prints the tenant as JSON.
    Disable {
        /// The tenant's api key.
        #[arg(long)]
        api_key: String,
    },
    /// Enable a disabled tenant again; prints the tenant as JSON.
    Enable {
        /// The tenant's api key.
        #[arg(long)]
        api_key: String,
    },
    /// Give the tenant a new api key (the old one stops naming it within `tenant_cache_secs`);
    /// prints both as JSON.
    RotateApiKey {
        /// The tenant's current api key.
        #[arg(long)]
        api_key: String,
    },
    /// Give an HS256 tenant a new JWT secret, printed this once; tokens signed with the old one
    /// are refused within `tenant_cache_secs` (no overlap: switch the app's token issuer at
    /// once).
    RotateJwtSecret {
        /// The tenant's api key.
        #[arg(long)]
        api_key: String,
    },
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

/// Runs a `tenant` command; returns what to print.
pub(super) async fn run(settings: Settings, command: TenantCommand) -> anyhow::Result<String> {
    match command {
        TenantCommand::SetStripeKey {
            api_key,
            stripe_secret_key_file,
            stripe_secret_key,
        } => {
            let key = secrets::stripe_key(
                "stripe-secret-key",
                stripe_secret_key,
                stripe_secret_key_file.as_deref(),
            )?;
            set_stripe_key(settings, api_key, key).await
        }
        command => tokio::task::spawn_blocking(move || tenant_command(&settings, command)).await?,
    }
}

/// A changed tenant as JSON, with how long running instances may take to see the change.
fn changed(settings: &Settings, mut tenant: serde_json::Value) -> anyhow::Result<String> {
    tenant["takes_effect_within_secs"] = settings.tenant_cache_secs.max(1).into();
    Ok(serde_json::to_string_pretty(&tenant)?)
}

/// Checks the new key against the tenant (format, mode, access), tries it at Stripe (a
/// one-item customer list, which the service needs to be able to read anyway), and only then
/// stores it: a mistyped or revoked key is refused and changes nothing.
async fn set_stripe_key(
    settings: Settings,
    api_key: String,
    key: SecretString,
) -> anyhow::Result<String> {
    let (db, master) = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || open_database(&settings)).await??
    };
    let (target_db, target_key, target_api_key) = (db.clone(), key.clone(), api_key.clone());
    let tenant = tokio::task::spawn_blocking(move || {
        let mut conn = target_db.get()?;
        tenants::stripe_key_target(&mut conn, &target_api_key, target_key.expose_secret())
    })
    .await??;
    let timeout = Duration::from_secs(settings.stripe_timeout_secs.max(1));
    let stripe = crate::stripe::LiveStripe::new(
        tenants::checked_stripe_key(key.expose_secret())?,
        tenant.stripe_api_base.as_deref(),
        timeout,
    )
    .map_err(|err| anyhow::anyhow!("the new key: {err}"))?;
    crate::stripe::StripeApi::list_json(
        &stripe,
        "/customers",
        &[("limit".into(), "1".into())],
        &crate::stripe::objects::Fields::All,
    )
    .await
    .map_err(|err| {
        anyhow::anyhow!("Stripe did not take the new key, nothing was changed: {err}")
    })?;
    let updated = tokio::task::spawn_blocking(move || {
        let mut conn = db.get()?;
        tenants::set_stripe_key(&mut conn, &master, &api_key, key.expose_secret())
    })
    .await??;
    changed(&settings, serde_json::to_value(updated)?)
}

fn tenant_command(settings: &Settings, command: TenantCommand) -> anyhow::Result<String> {
    let (db, master) = open_database(settings)?;
    let mut conn = db.get()?;
    match command {
        TenantCommand::Create {
            name,
            stripe_secret_key_file,
            stripe_secret_key,
            stripe_api_base,
            jwt_rs256_public_key,
            jwt_issuer,
            jwt_audience,
            require_app_binding,
            max_token_lifetime,
        } => {
            let max_token_lifetime = max_token_lifetime
                .map(|raw| parse_ttl(&raw).context("--max-token-lifetime"))
                .transpose()?;
            let public_key = jwt_rs256_public_key
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))
                })
                .transpose()?;
            let stripe_secret_key = secrets::stripe_key(
                "stripe-secret-key",
                stripe_secret_key,
                stripe_secret_key_file.as_deref(),
            )?;
            let created = tenants::create_tenant(
                &mut conn,
                &master,
                &TenantSpec {
                    name,
                    stripe_secret_key: stripe_secret_key.expose_secret().to_owned(),
                    stripe_api_base,
                    jwt_rs256_public_key: public_key,
                    jwt_issuer,
                    jwt_audience,
                    require_app_binding,
                    max_token_lifetime,
                },
            )?;
            Ok(serde_json::to_string_pretty(&created)?)
        }
        TenantCommand::Update {
            api_key,
            require_app_binding,
            no_require_app_binding,
            max_token_lifetime,
        } => {
            let update = tenants::TokenRulesUpdate {
                require_app_binding: match (require_app_binding, no_require_app_binding) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                max_token_lifetime: max_token_lifetime
                    .map(|raw| parse_ttl(&raw).context("--max-token-lifetime"))
                    .transpose()?,
            };
            let updated = tenants::update_token_rules(&mut conn, &api_key, &update)?;
            Ok(serde_json::to_string_pretty(&updated)?)
        }
        TenantCommand::Notify {
            api_key,
            url,
            off: _,
        } => {
            let tenant = crate::db::tenants::find_by_api_key(&mut conn, &api_key)?
                .with_context(|| format!("no tenant has the api key {api_key:?}"))?;
            let egress = crate::outbound::egress::EgressPolicy::from_settings(settings);
            let url = url
                .map(|u| egress.check_url_blocking(&u, "--url").map(String::from))
                .transpose()
                .map_err(|err| anyhow::anyhow!("--url: {}", err.detail))?;
            let secret = crate::outbound::notifications::set_target(
                &master,
                &mut conn,
                &tenant.id,
                url.as_deref(),
            )
            .map_err(|err| anyhow::anyhow!("{}", err.detail))?;
            Ok(serde_json::to_string_pretty(
                &serde_json::json!({"notify_url": url, "signing_secret": secret}),
            )?)
        }
        TenantCommand::Policy {
            api_key,
            allow,
            close,
            offer_coupon,
            no_coupons,
            order_lookup_url,
            no_order_lookup,
        } => {
            let tenant = crate::db::tenants::find_by_api_key(&mut conn, &api_key)?
                .with_context(|| format!("no tenant has the api key {api_key:?}"))?;
            let detail = |err: crate::error::ApiError| anyhow::anyhow!("{}", err.detail);
            let allow = (close || !allow.is_empty()).then_some(allow);
            let coupons = (no_coupons || !offer_coupon.is_empty()).then_some(offer_coupon);
            let change =
                crate::services::policy::parse_change(allow, coupons, "--").map_err(detail)?;
            let url = match (order_lookup_url, no_order_lookup) {
                (Some(raw), _) => Some(Some(
                    crate::outbound::egress::EgressPolicy::from_settings(settings)
                        .check_url_blocking(&raw, "--order-lookup-url")
                        .map_err(detail)?
                        .to_string(),
                )),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let (policy, secret) =
                crate::services::policy::save_with(&mut conn, &master, &tenant.id, change, url)
                    .map_err(detail)?;
            Ok(serde_json::to_string_pretty(&serde_json::json!({
                "allow": policy.allow_names(),
                "offered_coupons": policy.offered_coupons,
                "order_lookup_url": policy.order_lookup_url,
                "order_lookup_signing_secret": secret,
            }))?)
        }
        TenantCommand::SetFetchAllow {
            api_key,
            allow,
            none: _,
            operator_list,
        } => {
            let operator = crate::domain::fetch::AllowList::of_settings(settings)?;
            let rules = (!operator_list).then_some(allow);
            let updated =
                tenants::set_fetch_allow(&mut conn, &api_key, rules.as_deref(), &operator)?;
            Ok(serde_json::to_string_pretty(&updated)?)
        }
        TenantCommand::SetReturnOrigins {
            api_key,
            origin,
            default,
        } => {
            let origins = if default {
                None
            } else {
                Some(
                    origin
                        .iter()
                        .map(|o| return_origin(o))
                        .collect::<anyhow::Result<Vec<String>>>()?,
                )
            };
            let tenant = crate::db::tenants::find_by_api_key(&mut conn, &api_key)?
                .ok_or_else(|| anyhow::anyhow!("no tenant has the api key {api_key}"))?;
            let stored = origins.as_ref().map(serde_json::to_string).transpose()?;
            crate::db::connect::set_return_origins(&mut conn, &tenant.id, stored.as_deref())?;
            Ok(serde_json::to_string_pretty(&serde_json::json!({
                "api_key": api_key,
                "return_origins": origins,
            }))?)
        }
        TenantCommand::Disable { api_key } => changed(
            settings,
            serde_json::to_value(tenants::set_disabled(&mut conn, &api_key, true)?)?,
        ),
        TenantCommand::Enable { api_key } => changed(
            settings,
            serde_json::to_value(tenants::set_disabled(&mut conn, &api_key, false)?)?,
        ),
        TenantCommand::RotateApiKey { api_key } => changed(
            settings,
            serde_json::to_value(tenants::rotate_api_key(&mut conn, &master, &api_key)?)?,
        ),
        TenantCommand::RotateJwtSecret { api_key } => changed(
            settings,
            serde_json::to_value(tenants::rotate_jwt_secret(&mut conn, &master, &api_key)?)?,
        ),
        TenantCommand::SetStripeKey { .. } => {
            anyhow::bail!("set-stripe-key runs through tenant::run")
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

/// An origin (`scheme://host[:port]`) as browsers serialize it; anything with a path, query,
/// user info or another scheme than http(s) is refused.
fn return_origin(raw: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(raw.trim()).with_context(|| format!("{raw} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        anyhow::bail!("{raw} is not an origin like https://app.example.com");
    }
    Ok(url.origin().ascii_serialization())
}
