//! What the bench binaries share: the real service run as a child process on a fresh
//! PostgreSQL database or a SQLite file, beside the in-repo Stripe emulator (`service`), and
//! what a run costs the machine (`procfs`).
//!
//! - `receiver-load` (src/main.rs): the webhook receiver under load on PostgreSQL (issue 4).
//! - `list-load` (src/list/): the admin lists at scale against raw SQL (issue 15).
//! - `sqlite-writes` (src/sqlite_writes.rs): concurrent `POST /stripe/customers` on SQLite
//!   with the emulator's deliveries flowing back, beside the same calls against the emulator
//!   directly and the service on PostgreSQL (issue 15).

pub mod procfs;
pub mod service;

pub use service::{check_service_bin, default_service_bin};
