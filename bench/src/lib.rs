//! What the bench binaries share: the real service run as a child process on a fresh
//! PostgreSQL database or a SQLite file, beside the in-repo Stripe emulator (`service`), and
//! what a run costs the machine (`procfs`); the receiver's signed event corpus (`corpus`),
//! the load that replays it (`load`) and the check of the mirror against it (`verify`).
//!
//! - `receiver-load` (src/main.rs): the webhook receiver under load on PostgreSQL (issue 4).
//! - `list-load` (src/list/): the admin lists at scale against raw SQL (issue 15).
//! - `sqlite-writes` (src/sqlite_writes.rs): concurrent `POST /stripe/customers` on SQLite
//!   with the emulator's deliveries flowing back, beside the same calls against the emulator
//!   directly and the service on PostgreSQL (issue 15).
//! - `fault-suite` (src/faults/): the service under faults (issue 14; docs/RELIABILITY.md).
//!
//! `statements` reads PostgreSQL's own profile of a load (`pg_stat_statements`); `floor`
//! measures PostgreSQL's own cost for the rows a load wrote (raw SQL, same run).

#![recursion_limit = "256"]

pub mod corpus;
pub mod floor;
pub mod load;
pub mod procfs;
pub mod service;
pub mod statements;
pub mod verify;

pub use service::{check_service_bin, default_service_bin};

use std::path::PathBuf;

/// The options every bench binary takes: where PostgreSQL is, and which service to run.
#[derive(Debug, clap::Args)]
pub struct Setup {
    /// The PostgreSQL server (an admin database on it); each run creates its databases there
    /// and drops them.
    #[arg(
        long,
        env = "TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres_url: String,
    /// The `sales-block` binary [default: $CARGO_TARGET_DIR or the workspace's target/, then
    /// release/sales-block].
    #[arg(long = "service-bin")]
    pub service_bin: Option<PathBuf>,
}

impl Setup {
    /// The service binary to run: there, and warned about when older than the sources.
    pub fn service_bin(&self) -> anyhow::Result<PathBuf> {
        let bin = self.service_bin.clone().unwrap_or_else(default_service_bin);
        check_service_bin(&bin)?;
        Ok(bin)
    }
}
