//! Remembered misses: lookups that found nothing, answered as unknown for a while without
//! asking the database (or a backend) again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an api key or url_id that named nothing is answered as unknown without asking the
/// database again. A tenant created by the CLI (another process) or an endpoint created through
/// another instance is found at most this long after a request tried its key or url_id before
/// it existed (url_ids are random, so in practice never); this instance forgets a url_id's miss
/// when it creates the endpoint.
pub const UNKNOWN_TTL: Duration = Duration::from_secs(5);

/// The most misses remembered per kind: a flood of distinct random values cannot grow memory
/// past this (expired ones are dropped first, then all).
const UNKNOWN_MAX: usize = 10_000;

/// Recent lookups that found nothing, so a repeated unknown value costs no database (or
/// backend) query: remembered for [`UNKNOWN_TTL`], at most [`UNKNOWN_MAX`] of them.
pub(crate) struct Misses {
    seen: Mutex<HashMap<String, Instant>>,
}

impl Misses {
    pub(crate) fn new() -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.seen
            .lock()
            .ok()
            .and_then(|seen| seen.get(key).map(|at| at.elapsed() < UNKNOWN_TTL))
            .unwrap_or(false)
    }

    pub(crate) fn insert(&self, key: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= UNKNOWN_MAX {
                seen.retain(|_, at| at.elapsed() < UNKNOWN_TTL);
                if seen.len() >= UNKNOWN_MAX {
                    seen.clear();
                }
            }
            seen.insert(key.to_owned(), Instant::now());
        }
    }

    pub(crate) fn remove(&self, key: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(key);
        }
    }
}
