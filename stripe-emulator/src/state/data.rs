//! The lockable part of a key's state: the stores of its accounts, its idempotency keys and
//! the requests `/_emulator/requests` remembers.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use crate::idempotency::IdempotencyCache;
use crate::store::Store;

/// How many requests per key `/_emulator/requests` remembers (oldest dropped first).
pub const MAX_RECORDED_REQUESTS: usize = 10_000;

/// The lockable part of a key's state.
#[derive(Debug)]
pub struct KeyData {
    livemode: bool,
    stores: HashMap<String, Store>,
    /// Saved responses of `Idempotency-Key` requests.
    pub idempotency: IdempotencyCache,
    requests: VecDeque<Value>,
}

impl KeyData {
    /// No objects, idempotency keys or remembered requests yet.
    pub fn new(livemode: bool) -> Self {
        KeyData {
            livemode,
            stores: HashMap::new(),
            idempotency: IdempotencyCache::default(),
            requests: VecDeque::new(),
        }
    }

    /// The store of an account (`""` for the key's own account), created on first use.
    pub fn store(&mut self, account: &str) -> &mut Store {
        let livemode = self.livemode;
        self.stores
            .entry(account.to_owned())
            .or_insert_with(|| Store::new(livemode))
    }

    /// The store of an account, if it has one.
    pub fn existing_store(&self, account: &str) -> Option<&Store> {
        self.stores.get(account)
    }

    /// Remembers a request for `GET /_emulator/requests`.
    pub fn record(&mut self, request: Value) {
        if self.requests.len() >= MAX_RECORDED_REQUESTS {
            self.requests.pop_front();
        }
        self.requests.push_back(request);
    }

    /// The remembered requests, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.iter().cloned().collect()
    }

    /// Forgets the remembered requests.
    pub fn clear_requests(&mut self) {
        self.requests.clear();
    }

    /// Forgets all objects, idempotency keys and remembered requests.
    pub fn clear(&mut self) {
        self.stores.clear();
        self.idempotency.clear();
        self.requests.clear();
    }
}
