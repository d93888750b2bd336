//! What the bench binaries share: the real service run as a child process on a fresh
//! PostgreSQL database (`service`) and what a run costs the machine (`procfs`).
//! `receiver-load` (src/main.rs) loads the webhook receiver, `list-load` (src/list/) the admin
//! lists; see docs/BENCHMARKS.md.

pub mod procfs;
pub mod service;
