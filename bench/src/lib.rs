//! What the bench binaries share: the real service as a child process (with the in-repo
//! Stripe emulator), `/proc` sampling, and finding the release binary to run.
//!
//! - `receiver-load`: the webhook receiver under load on PostgreSQL (issue 4).
//! - `sqlite-writes`: concurrent `POST /stripe/customers` on SQLite with the emulator's
//!   deliveries flowing back, beside the same calls against the emulator directly and the
//!   service on PostgreSQL (issue 15).

pub mod procfs;
pub mod service;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;

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

/// Fails if there is no binary at `bin`; warns if it is older than the sources.
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
