//! What a handler works with.

use crate::form::Params;
use crate::state::Emulator;
use crate::store::Store;

/// What a handler works with.
pub struct Ctx<'a> {
    /// The account's objects.
    pub store: &'a mut Store,
    /// The request's parameters (query string and body).
    pub params: &'a Params,
    /// The emulator's own base URL as the client reached it, e.g. `http://127.0.0.1:12111`.
    pub base_url: &'a str,
    /// Unix seconds at the start of the request.
    pub now: i64,
    /// Emulator-wide state (hosted pages).
    pub emulator: &'a Emulator,
    /// The secret key of the request (hosted pages act on its state).
    pub key: &'a str,
    /// The `Stripe-Account` of the request (`""` for the key's own account).
    pub account: &'a str,
}

impl Ctx<'_> {
    /// Whether objects are created in live mode.
    pub fn livemode(&self) -> bool {
        self.store.livemode
    }
}
