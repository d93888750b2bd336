//! The real service as a child process (on a fresh PostgreSQL database or a SQLite file) beside
//! the in-repo Stripe emulator, and the set-up a load needs: a tenant bound to the emulator, an
//! admin token, and a webhook endpoint with its signing secret.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::{Value, json};

/// A PostgreSQL database made for one level, dropped (WITH (FORCE)) on drop.
pub struct BenchDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
    keep: bool,
}

impl BenchDatabase {
    pub fn create(admin_url: &str, keep: bool) -> anyhow::Result<Self> {
        let name = format!("sales_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::establish(admin_url)
            .with_context(|| format!("connecting to PostgreSQL at {admin_url}"))?;
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .with_context(|| format!("creating database {name}"))?;
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(admin_url);
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
            keep,
        })
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept database {} ({})", self.name, self.url);
            return;
        }
        let result = PgConnection::establish(&self.admin_url)
            .map_err(anyhow::Error::from)
            .and_then(|mut conn| {
                diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ))
                .execute(&mut conn)
                .map_err(anyhow::Error::from)
            });
        if let Err(err) = result {
            eprintln!("warning: could not drop database {}: {err:#}", self.name);
        }
    }
}

/// A child process killed on drop.
pub struct ChildGuard {
    name: &'static str,
    child: Child,
}

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has exited.
    fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early: {status}", self.name);
        }
        Ok(())
    }

    pub fn stop(mut self) -> anyhow::Result<()> {
        self.kill()
    }

    fn kill(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            self.child
                .kill()
                .with_context(|| format!("stopping {}", self.name))?;
            self.child.wait()?;
        }
        Ok(())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Err(err) = self.kill() {
            eprintln!("warning: {err:#}");
        }
    }
}

/// How to run `sales-block` for one level.
pub struct ServiceEnv {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub database_url: String,
    pub master_key: String,
    pub pool_size: u32,
    pub receiver_writers: u32,
}

impl ServiceEnv {
    pub fn new(bin: PathBuf, dir: &Path, database_url: String, pool_size: u32) -> Self {
        let key: [u8; 32] = rand::random();
        Self {
            bin,
            dir: dir.to_owned(),
            database_url,
            master_key: base64::engine::general_purpose::STANDARD.encode(key),
            pool_size,
            receiver_writers: 0,
        }
    }

    /// A command with only this run's settings: no `SALES_*`, `RUST_LOG` or `DATABASE_URL`
    /// of the caller, and a scratch working directory (no `.env`, no `config/local.toml`).
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).current_dir(&self.dir);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("SALES_") || k == "RUST_LOG" || k == "DATABASE_URL" {
                cmd.env_remove(&key);
            }
        }
        cmd.env("DATABASE_URL", &self.database_url)
            .env("SALES_MASTER_KEY", &self.master_key)
            .env("SALES_MASTER_KEY_FILE", self.dir.join("master.key"))
            .env("SALES_LOG_FILTER", "warn")
            .env("SALES_DATABASE_POOL_SIZE", self.pool_size.to_string())
            .env("SALES_RECEIVER_WRITERS", self.receiver_writers.to_string())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a one-shot subcommand and returns its stdout.
    fn output(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .command(args)
            .output()
            .with_context(|| format!("running {} {}", self.bin.display(), args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "`sales-block {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn spawn(
        &self,
        name: &'static str,
        args: &[&str],
        log: &str,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<ChildGuard> {
        let log_path = self.dir.join(log);
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = self
            .command(args)
            .envs(extra_env.iter().copied())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} {}", self.bin.display(), args.join(" ")))?;
        Ok(ChildGuard { name, child })
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

async fn wait_for_port(child: &mut ChildGuard, port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        child.check_running()?;
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} did not listen on port {port} within 30 s", child.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The running service with a webhook endpoint to deliver to.
pub struct Running {
    pub service: ChildGuard,
    pub base_url: String,
    pub url_id: String,
    pub signing_secret: String,
}

/// Starts the emulator and the service, creates a tenant and an endpoint, stops the emulator.
pub async fn start(env: &ServiceEnv, http: &reqwest::Client) -> anyhow::Result<Running> {
    let stack = start_stack(env, http, &[]).await?;
    // An endpoint whose deliveries (from the emulator) would go nowhere: the bench signs its
    // own events with the secret.
    let (url_id, signing_secret) =
        create_endpoint(http, &stack, &["*"], Some("http://127.0.0.1:9/nowhere")).await?;
    stack.emulator.stop()?;
    Ok(Running {
        service: stack.service,
        base_url: stack.base_url,
        url_id,
        signing_secret,
    })
}

/// `sales-block stripe-emulator` on a free port, and its base URL once it listens.
pub async fn start_emulator(env: &ServiceEnv) -> anyhow::Result<(ChildGuard, String)> {
    let port = free_port()?;
    let mut emulator = env.spawn(
        "the Stripe emulator",
        &["stripe-emulator", "--port", &port.to_string()],
        "emulator.log",
        &[],
    )?;
    wait_for_port(&mut emulator, port).await?;
    Ok((emulator, format!("http://127.0.0.1:{port}")))
}

/// The emulator and the service running, with a tenant bound to the emulator.
pub struct Stack {
    pub emulator: ChildGuard,
    pub emulator_base: String,
    /// The tenant's Stripe key at the emulator.
    pub stripe_key: String,
    pub service: ChildGuard,
    pub base_url: String,
    pub api_key: String,
    /// An admin token of the tenant.
    pub token: String,
}

/// Starts the emulator, creates a tenant bound to it (which also migrates) and an admin token,
/// then starts `sales-block serve` with `extra_env` and waits for `GET /health`.
pub async fn start_stack(
    env: &ServiceEnv,
    http: &reqwest::Client,
    extra_env: &[(&str, &str)],
) -> anyhow::Result<Stack> {
    let (emulator, emulator_base) = start_emulator(env).await?;

    // `tenant create` also runs the migrations.
    let stripe_key = format!("sk_test_bench{}", uuid::Uuid::new_v4().simple());
    let created = env.output(&[
        "tenant",
        "create",
        "--name",
        "bench",
        "--stripe-secret-key",
        &stripe_key,
        "--stripe-api-base",
        &emulator_base,
    ])?;
    let created: Value = serde_json::from_str(&created)
        .with_context(|| format!("tenant create printed {created:?}"))?;
    let api_key = created["api_key"]
        .as_str()
        .with_context(|| format!("no api_key in {created}"))?
        .to_owned();
    let token = env.output(&[
        "token",
        "--tenant",
        &api_key,
        "--sub",
        "bench-admin",
        "--admin",
    ])?;
    let token = token
        .lines()
        .last()
        .context("`sales-block token` printed nothing")?
        .trim()
        .to_owned();

    let port = free_port()?;
    let base_url = format!("http://127.0.0.1:{port}");
    let bind = format!("127.0.0.1:{port}");
    let mut service_env = vec![
        ("SALES_BIND", bind.as_str()),
        ("SALES_PUBLIC_URL", base_url.as_str()),
    ];
    service_env.extend_from_slice(extra_env);
    let mut service = env.spawn("the service", &["serve"], "service.log", &service_env)?;
    let log_path = env.dir.join("service.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        service.check_running().with_context(|| {
            format!(
                "see {}: {}",
                log_path.display(),
                std::fs::read_to_string(&log_path).unwrap_or_default()
            )
        })?;
        let ok = http
            .get(format!("{base_url}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break;
        }
        if Instant::now() > deadline {
            bail!("the service did not answer GET /health within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Stack {
        emulator,
        emulator_base,
        stripe_key,
        service,
        base_url,
        api_key,
        token,
    })
}

/// Creates a webhook endpoint through the API (`POST /stripe/webhooks`) for `events`; without
/// a `url` it points at the service's own receiver, so the emulator delivers to it. Returns
/// its `url_id` and signing secret.
pub async fn create_endpoint(
    http: &reqwest::Client,
    stack: &Stack,
    events: &[&str],
    url: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let mut webhook = json!({ "events": events });
    if let Some(url) = url {
        webhook["url"] = json!(url);
    }
    let response = http
        .post(format!("{}/stripe/webhooks", stack.base_url))
        .header("AppId", &stack.api_key)
        .bearer_auth(&stack.token)
        .json(&json!({ "webhook": webhook }))
        .send()
        .await
        .context("POST /stripe/webhooks")?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .context("POST /stripe/webhooks: not JSON")?;
    anyhow::ensure!(
        status.as_u16() == 201,
        "POST /stripe/webhooks answered {status}: {body}"
    );
    let attributes = &body["data"]["attributes"];
    let url_id = attributes["url_id"]
        .as_str()
        .with_context(|| format!("no url_id in {body}"))?
        .to_owned();
    let signing_secret = attributes["signing_secret"]
        .as_str()
        .with_context(|| format!("no signing_secret in {body}"))?
        .to_owned();
    Ok((url_id, signing_secret))
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// The PostgreSQL settings that decide a commit's cost, for the report.
pub fn server_facts(admin_url: &str) -> anyhow::Result<String> {
    let mut conn = PgConnection::establish(admin_url)
        .with_context(|| format!("connecting to PostgreSQL at {admin_url}"))?;
    let mut facts = Vec::new();
    for setting in [
        "server_version",
        "synchronous_commit",
        "fsync",
        "wal_sync_method",
    ] {
        let row: Setting =
            diesel::sql_query(format!("SELECT current_setting('{setting}') AS value"))
                .get_result(&mut conn)
                .with_context(|| format!("reading {setting}"))?;
        facts.push(format!("{setting}={}", row.value));
    }
    Ok(format!("PostgreSQL {}", facts.join(", ")))
}
