//! Builds the application exactly as production runs it, so tests boot the same thing.

use std::net::TcpListener;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::db::Database;
use crate::http;
use crate::state::AppState;

/// Headers browsers may send (API_CONTRACT.md, Headers).
const CORS_HEADERS: [&str; 9] = [
    "content-type",
    "accept",
    "authorization",
    "x-api-key",
    "appid",
    "api-key",
    "tenant-id",
    "x-request-id",
    "idempotency-key",
];

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    worker: Option<crate::outbound::notifications::WorkerHandle>,
    /// The historical sync worker (`crate::sync`).
    sync: Option<crate::sync::SyncWorker>,
}

impl Application {
    /// Opens the database, runs migrations, loads the master key and binds the listener (port 0
    /// works: ask `port()`).
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        // First, so a production instance without its key stops before touching anything.
        let master = MasterKey::from_settings(&settings)?;
        crate::domain::fetch::AllowList::of_settings(&settings)?;
        let db = Database::connect_with_deadlines(
            &settings.database_url,
            settings.database_pool_size,
            crate::db::Deadlines {
                busy: Duration::from_millis(settings.database_busy_timeout_ms),
                statement: Duration::from_millis(settings.database_statement_timeout_ms),
                lock: Duration::from_millis(settings.database_lock_timeout_ms),
                connect: Duration::from_secs(settings.database_connect_timeout_secs),
            },
        )?;
        let migrating = db.clone();
        tokio::task::spawn_blocking(move || migrating.migrate()).await??;
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        if settings.public_url.trim().is_empty() {
            // No public URL configured: Stripe is to call this very listener.
            settings.public_url = format!("http://{}", listener.local_addr()?);
        }
        tokio::spawn(crate::idempotency::purge_expired_keys(db.clone()));
        tokio::spawn(fold_list_counts(db.clone()));
        tokio::spawn(crate::retention::run_every_hour(
            db.clone(),
            crate::retention::Retention::from_settings(&settings),
        ));
        let state = web::Data::new(AppState::new(db, master, settings)?);
        let server = serve(listener, state.clone())?;
        let worker =
            crate::outbound::notifications::start_worker(crate::outbound::notifications::Worker {
                db: state.db.clone(),
                master: state.master.clone(),
                egress: state.egress,
                settings: state.settings.clone(),
            });
        crate::ratelimit::start_pruning(state.limits.clone());
        let sync = state.settings.sync_worker.then(|| {
            crate::sync::start_worker(
                state.clone(),
                crate::sync::SyncLimits::from_settings(&state.settings),
            )
        });
        Ok(Self {
            port,
            server,
            state,
            worker,
            sync,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM, SIGINT, or the handle): stops accepting, lets requests
    /// in flight finish (receiver batches commit before they answer) within
    /// `shutdown_grace_secs`, then stops the notification worker the same way.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(sync) = self.sync {
            sync.stop(grace(&self.state.settings)).await;
        }
        if let Some(worker) = self.worker {
            worker.stop(grace(&self.state.settings)).await;
        }
        served
    }
}

fn cors(origins: &[String]) -> anyhow::Result<Cors> {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers(CORS_HEADERS)
        .expose_headers(["x-request-id", crate::idempotency::REPLAYED_HEADER])
        .max_age(3600);
    for origin in origins {
        let origin = origin.trim();
        if origin == "*" {
            cors = cors.allow_any_origin();
        } else if !origin.is_empty() {
            url::Url::parse(origin)
                .with_context(|| format!("CORS origin {origin:?} is not a URL"))?;
            cors = cors.allowed_origin(origin);
        }
    }
    Ok(cors)
}

/// How long a stop waits for work in flight (`shutdown_grace_secs`).
fn grace(settings: &crate::config::Settings) -> Duration {
    Duration::from_secs(settings.shutdown_grace_secs)
}

fn serve(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let origins = state.settings.cors_origins.clone();
    let _checked = cors(&origins)?; // refuse a bad origin at start, not on the first request
    let limit = state.settings.max_body_bytes;
    let shutdown = grace(&state.settings);
    let server = HttpServer::new(move || {
        // Checked above; an empty CORS policy is the safe fallback.
        let cors = cors(&origins).unwrap_or_default();
        App::new()
            .app_data(state.clone())
            // Innermost: its 400s still carry CORS headers and the request id.
            .wrap(from_fn(http::ids::bounded_ids))
            .wrap(cors)
            .wrap(from_fn(http::request_id::request_id))
            // Outermost: counts and times every answer, the middlewares' own included.
            .wrap(from_fn(crate::metrics::record_requests))
            .configure(|cfg| http::configure(cfg, limit))
    })
    .shutdown_timeout(shutdown.as_secs())
    .listen(listener)?
    .run();
    Ok(server)
}

/// Every ten minutes, folds the list counters of PostgreSQL connections that are gone
/// (db::counts), so a list's total stays a sum of a handful of rows.
async fn fold_list_counts(db: Database) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10 * 60));
    every.tick().await;
    loop {
        every.tick().await;
        let folded = db
            .run(|conn| crate::db::counts::fold_gone_shards(conn).map_err(crate::db::DbError::from))
            .await;
        if let Err(err) = folded {
            tracing::warn!(error = %err, "folding list counts");
        }
    }
}
