//! The real service as a child process on a fresh PostgreSQL database: the binary, the
//! database, tenants and tokens through its CLI, `serve` until `GET /health` answers; and the
//! set-up the receiver needs on top (a webhook endpoint with its signing secret, registered at
//! the in-repo Stripe emulator, which is stopped before the load starts).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use base64::Engine;
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::{Value, json};

/// `$CARGO_TARGET_DIR/release/sales-block`, else the workspace's `target/release/sales-block`.
pub fn default_service_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    target.join("release").join("sales-block")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The newest modification time of the service's sources (to warn about a stale binary).
fn newest_source(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|e| newest_source(&e.path()))
        .max()
}

/// Fails if there is no binary; warns if it is older than the sources.
pub fn check_service_bin(bin: &Path) -> anyhow::Result<()> {
    let built = std::fs::metadata(bin)
        .and_then(|m| m.modified())
        .with_context(|| {
            format!(
                "no service binary at {}: build it first with `cargo build --release -p sales-block` \
                 (or pass --service-bin)",
                bin.display()
            )
        })?;
    let root = workspace();
    let sources = ["src", "migrations", "stripe-emulator/src", "Cargo.lock"]
        .iter()
        .filter_map(|p| newest_source(&root.join(p)))
        .max();
    if sources.is_some_and(|s| s > built) {
        eprintln!(
            "warning: {} is older than the sources; rebuild with `cargo build --release -p sales-block`",
            bin.display()
        );
    }
    Ok(())
}

/// A PostgreSQL database made for one run, dropped (WITH (FORCE)) on drop.
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

    /// Kills the process at once (SIGKILL: `kill -9`, nothing runs on its side) and reaps it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.kill()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
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

/// How to run `sales-block` for one run (one level of the receiver's load).
pub struct ServiceEnv {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub database_url: String,
    pub master_key: String,
    pub pool_size: u32,
    pub receiver_writers: u32,
    /// More settings of this run (`SALES_...`), applied last.
    pub extra_env: Vec<(String, String)>,
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
            extra_env: Vec::new(),
        }
    }

    /// A command with only this run's settings: no `SALES_*`, `RUST_LOG` or `DATABASE_URL`
    /// of the caller, and a scratch working directory (no `.env`, no `config/local.toml`).
    fn command(&self, args: &[&str]) -> Command {
        self.command_of(&self.bin, args)
    }

    /// [`command`](Self::command) for another program of the build (the emulator's own).
    fn command_of(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
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
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
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
        self.spawn_program(&self.bin, name, args, log, extra_env)
    }

    fn spawn_program(
        &self,
        program: &Path,
        name: &'static str,
        args: &[&str],
        log: &str,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<ChildGuard> {
        let log_path = self.dir.join(log);
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = self
            .command_of(program, args)
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

/// A tenant made by `sales-block tenant create`.
pub struct Tenant {
    pub id: String,
    pub api_key: String,
    /// Its Stripe key (at the emulator, when bound to one).
    pub stripe_key: String,
}

impl ServiceEnv {
    /// `sales-block tenant create` (which also runs the migrations).
    pub fn create_tenant(&self, name: &str, stripe_api_base: &str) -> anyhow::Result<Tenant> {
        let stripe_key = format!("sk_test_bench{}", uuid::Uuid::new_v4().simple());
        let created = self.output(&[
            "tenant",
            "create",
            "--name",
            name,
            "--stripe-secret-key",
            &stripe_key,
            "--stripe-api-base",
            stripe_api_base,
        ])?;
        let created: Value = serde_json::from_str(&created)
            .with_context(|| format!("tenant create printed {created:?}"))?;
        let field = |key: &str| {
            created[key]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("no {key} in {created}"))
        };
        Ok(Tenant {
            id: field("id")?,
            api_key: field("api_key")?,
            stripe_key,
        })
    }

    /// `sales-block tenant notify`: the tenant's app is notified at `url` (the egress policy
    /// of this run's settings applies).
    pub fn set_notify_url(&self, api_key: &str, url: &str) -> anyhow::Result<()> {
        self.output(&["tenant", "notify", "--api-key", api_key, "--url", url])?;
        Ok(())
    }

    /// `sales-block token`: a bearer token of the tenant for `subject`.
    pub fn token(&self, api_key: &str, subject: &str, admin: bool) -> anyhow::Result<String> {
        let mut args = vec!["token", "--tenant", api_key, "--sub", subject];
        if admin {
            args.push("--admin");
        }
        let token = self.output(&args)?;
        Ok(token
            .lines()
            .last()
            .context("`sales-block token` printed nothing")?
            .trim()
            .to_owned())
    }

    /// Starts `sales-block serve` on a free port and waits until `GET /health` answers 2xx;
    /// returns the process and its base URL.
    pub async fn serve(&self, http: &reqwest::Client) -> anyhow::Result<(ChildGuard, String)> {
        self.serve_with(http, &[]).await
    }

    /// [`ServiceEnv::serve`] with more settings for this process only.
    pub async fn serve_with(
        &self,
        http: &reqwest::Client,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<(ChildGuard, String)> {
        let service = self
            .serve_on(http, free_port()?, extra_env, "service.log")
            .await?;
        Ok(service)
    }

    /// [`ServiceEnv::serve_with`] on `port` (a service started again where it was), its
    /// output into `log` in the run's directory.
    pub async fn serve_on(
        &self,
        http: &reqwest::Client,
        port: u16,
        extra_env: &[(&str, &str)],
        log: &str,
    ) -> anyhow::Result<(ChildGuard, String)> {
        let base_url = format!("http://127.0.0.1:{port}");
        let bind = format!("127.0.0.1:{port}");
        let mut service_env = vec![
            ("SALES_BIND", bind.as_str()),
            ("SALES_PUBLIC_URL", base_url.as_str()),
        ];
        service_env.extend_from_slice(extra_env);
        let mut service = self.spawn("the service", &["serve"], log, &service_env)?;
        let log_path = self.dir.join(log);
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
                return Ok((service, base_url));
            }
            if Instant::now() > deadline {
                bail!("the service did not answer GET /health within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The running service with a webhook endpoint to deliver to.
pub struct Running {
    pub service: ChildGuard,
    pub base_url: String,
    pub url_id: String,
    pub signing_secret: String,
    /// The tenant's `AppId`, and an admin token of it.
    pub api_key: String,
    pub token: String,
}

/// Where an endpoint points whose deliveries from the emulator should go nowhere (the bench
/// signs its own events with the endpoint's secret).
pub const NOWHERE: Option<&str> = Some("http://127.0.0.1:9/nowhere");

/// Starts the emulator and the service, creates a tenant and an endpoint, stops the emulator.
pub async fn start(env: &ServiceEnv, http: &reqwest::Client) -> anyhow::Result<Running> {
    let stack = start_stack(env, http, &[]).await?;
    // An endpoint whose deliveries (from the emulator) would go nowhere: the bench signs its
    // own events with the secret.
    let (url_id, signing_secret) = create_endpoint(http, &stack.admin(), &["*"], NOWHERE).await?;
    stack.emulator.stop()?;
    Ok(Running {
        service: stack.service,
        base_url: stack.base_url,
        url_id,
        signing_secret,
        api_key: stack.api_key,
        token: stack.token,
    })
}

/// The emulator on a free port, and its base URL once it listens (see [`start_emulator_on`]).
pub async fn start_emulator(env: &ServiceEnv) -> anyhow::Result<(ChildGuard, String)> {
    start_emulator_on(env, free_port()?, "emulator.log").await
}

/// The emulator on `port` (one started again where it was), its output into `log` in the
/// run's directory: the `stripe-emulator` binary beside the service's when it was built
/// (`cargo build --release -p stripe-emulator`: the same emulator with an allocator of its own,
/// so that Stripe's side costs the benchmarks less), else `sales-block stripe-emulator`.
pub async fn start_emulator_on(
    env: &ServiceEnv,
    port: u16,
    log: &str,
) -> anyhow::Result<(ChildGuard, String)> {
    let port_arg = port.to_string();
    let own = env.bin.with_file_name("stripe-emulator");
    let mut emulator = if own.is_file() {
        env.spawn_program(
            &own,
            "the Stripe emulator",
            &["--port", &port_arg],
            log,
            &[],
        )?
    } else {
        eprintln!(
            "note: no {} (cargo build --release -p stripe-emulator); using `sales-block stripe-emulator`",
            own.display()
        );
        env.spawn(
            "the Stripe emulator",
            &["stripe-emulator", "--port", &port_arg],
            log,
            &[],
        )?
    };
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
    let tenant = env.create_tenant("bench", &emulator_base)?;
    let token = env.token(&tenant.api_key, "bench-admin", true)?;
    let (service, base_url) = env.serve_with(http, extra_env).await?;
    Ok(Stack {
        emulator,
        emulator_base,
        stripe_key: tenant.stripe_key,
        service,
        base_url,
        api_key: tenant.api_key,
        token,
    })
}

impl Stack {
    /// The tenant's admin, calling the service.
    pub fn admin(&self) -> Admin<'_> {
        Admin {
            base_url: &self.base_url,
            api_key: &self.api_key,
            token: &self.token,
        }
    }
}

/// A tenant's admin calling the service: where, the tenant's `AppId` and an admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a> {
    pub base_url: &'a str,
    pub api_key: &'a str,
    pub token: &'a str,
}

/// Creates a webhook endpoint through the API (`POST /stripe/webhooks`) for `events`; without
/// a `url` it points at the service's own receiver, so the emulator delivers to it. Returns
/// its `url_id` and signing secret.
pub async fn create_endpoint(
    http: &reqwest::Client,
    admin: &Admin<'_>,
    events: &[&str],
    url: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let mut webhook = json!({ "events": events });
    if let Some(url) = url {
        webhook["url"] = json!(url);
    }
    let response = http
        .post(format!("{}/stripe/webhooks", admin.base_url))
        .header("AppId", admin.api_key)
        .bearer_auth(admin.token)
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

#[derive(diesel::QueryableByName)]
struct BackendPid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

/// The pids of the PostgreSQL backends connected to database `name` (the service's pool):
/// their CPU is the database's share of a run, apart from whatever else the cluster serves.
pub fn backend_pids(admin_url: &str, name: &str) -> anyhow::Result<Vec<u32>> {
    let mut conn = PgConnection::establish(admin_url)
        .with_context(|| format!("connecting to PostgreSQL at {admin_url}"))?;
    let rows: Vec<BackendPid> = diesel::sql_query(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind::<diesel::sql_types::Text, _>(name)
    .load(&mut conn)
    .context("reading pg_stat_activity")?;
    Ok(rows
        .into_iter()
        .filter_map(|r| u32::try_from(r.pid).ok())
        .collect())
}
