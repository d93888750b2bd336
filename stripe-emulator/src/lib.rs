//! A stateful, in-memory stand-in for the Stripe API, for tests, demos and benchmarks.
//!
//! It speaks Stripe's wire protocol as async-stripe 1.0 sends it (form-encoded bodies with
//! `a[b][0]=` nesting, `Authorization: Bearer sk_test_...`, `Idempotency-Key`,
//! `Stripe-Account`) and answers objects shaped from Stripe's own example fixtures at the API
//! version async-stripe pins ([`API_VERSION`]). State is kept per secret key, so parallel
//! tests using different keys never see each other's objects.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let emulator = stripe_emulator::spawn("127.0.0.1:0").await?;
//! let base = emulator.base_url(); // give this to `stripe::ClientBuilder::url`
//! # let _ = base;
//! emulator.stop().await;
//! # Ok(()) }
//! ```
//!
//! Fidelity: [`spec`] embeds Stripe's own definition of [`API_VERSION`] (from the `stripe`
//! npm package's types). Parameters an endpoint does not take are refused as Stripe refuses
//! them, a `Stripe-Version` other than [`API_VERSION`] is a 400, and the conformance suite
//! (`tests/conformance.rs`) checks every answer and event against the definition.
//!
//! Resources (see [`resources`]): customers, payment methods (test tokens), billing portal
//! sessions, products, prices, coupons (and the discounts applying them), payment intents
//! and charges, refunds (`/v1/refunds`: partial and full, of a payment intent's latest
//! charge or of a charge), setup intents (create, confirm, cancel, list), subscriptions and
//! subscription items, invoices, invoice items and invoice payments, checkout sessions,
//! payment links (`/v1/payment_links`, with their line items), promotion codes, webhook
//! endpoints, events, the balance (`/v1/balance`), and search of customers and payment
//! intents (`/v1/customers/search`, `/v1/payment_intents/search`; see [`search`]).
//!
//! OAuth (see [`oauth`]; not part of Stripe's API definition, so outside the conformance
//! flow): Connect at `{base}/connect` (`POST /connect/oauth/token`, `POST
//! /connect/oauth/deauthorize`) and Stripe Apps (`POST /v1/oauth/token`, codes and refresh
//! tokens; every refresh voids the refresh token used). A request with an Apps access token
//! (`Authorization: Bearer rk_test_oa...`) acts as its platform key with `Stripe-Account` set
//! to the connected account (same store, events carry `account` and go to the platform's
//! Connect endpoints); an expired token answers 401 `api_key_expired`, one of a disconnected
//! account 401. Once an account connected through OAuth is disconnected, the platform key with
//! `Stripe-Account` of it answers 403 `account_invalid`; accounts never connected through
//! OAuth stay open to any key. Connecting records `account.application.authorized`,
//! disconnecting `account.application.deauthorized`, in the account.
//!
//! Layout, each layer using only those below it: the foundation ([`store`], [`form`],
//! [`list`], [`json`], [`params`], [`money`], ...); [`state`] (per key: its accounts'
//! stores, idempotency keys, webhook delivery state and test settings such as the rate
//! limit); [`objects`] (the Stripe objects and the rules that change them, shared by
//! everything above); [`events`] (what each change announces) and [`delivery`] (sending
//! webhooks); [`resources`] (one handler module per resource: it reads its request and calls
//! [`objects`], never another handler); [`pages`], [`webhook_admin`] and [`seed`] (bulk
//! objects for tests, made by [`objects`]); [`server`] (HTTP).
//!
//! Lists (see [`list`]): every list is in Stripe's order (newest `created` first, then
//! newest created first within a second) and seeks in the store's ordered index, so a page
//! costs O(log n + limit) wherever it starts: `limit` (1..=100, default 10),
//! `starting_after` / `ending_before` and `created` (`created=<ts>` or
//! `created[gt|gte|lt|lte]`, where Stripe's definition has it). `GET /v1/events` lists the
//! last 30 days only. A subscription's `items` and an invoice's `lines` embed at most 10
//! entries (`has_more: true` when there are more, `url` to page the rest:
//! `GET /v1/subscription_items?subscription=`, `GET /v1/invoices/:id/lines`, both with
//! cursors). `cargo run --release -p stripe-emulator --bin stripe-emulator-bench` seeds
//! 100,000 customers and times a full paging pass (objects/s and resident memory).
//!
//! Memory: objects rest in the [`store`] as compact JSON (about 1.1 KB per 560-byte
//! customer, index included) and are parsed while a request uses them; filtered lists skip
//! unparsed the objects whose JSON cannot match (see [`store::Store::walk_containing`]).
//!
//! Events and webhooks: every state change records the event Stripe sends for it
//! (`customer.updated`, `invoice.paid`, ...; see [`events`] for the types and their order),
//! listed by `GET /v1/events` and delivered to the key's webhook endpoints, signed as
//! Stripe signs and retried with back-off (see [`delivery`]).
//!
//! Hosted pages (no key needed): `GET {base}/p/session/...` (billing portal),
//! `GET {base}/c/pay/:id` (a checkout session: items, total, a test-card form whose `POST`
//! completes the session and redirects `303` to `success_url` with `{CHECKOUT_SESSION_ID}`
//! filled in, or shows the decline with status 402) and `GET {base}/b/:id` (a payment
//! link's `url`: items, total, a "Pay" button whose `POST` opens a checkout session for the
//! link and redirects `303` to its page); see [`pages`]. The OAuth authorize pages (see
//! [`pages::oauth`]): `GET {base}/connect/oauth/authorize` (Connect),
//! `GET {base}/marketplace/oauth/v2/authorize` (an Apps install link) and
//! `GET {base}/marketplace/install` (an install started on Stripe's side, no `state`): an
//! Approve / Deny page, or at once with `emulator_approve=1` / `emulator_deny=1`
//! (`emulator_account=acct_...` picks the account); they redirect `302` to `redirect_uri`.
//!
//! Test-only endpoints (authenticated with the same key; they act on that key's state):
//! - `DELETE /_emulator/data`: forget the key's objects, events, idempotency keys, request
//!   log, queued deliveries and delivery attempts (retries of earlier events are dropped),
//!   and its OAuth clients, codes, tokens and connections.
//! - `POST /_emulator/seed` (JSON; honours `Stripe-Account`; see [`seed`]):
//!   `{"customers", "products", "prices_per_product", "subscriptions",
//!   "items_per_subscription": [min, max], "invoices", "lines_per_invoice": [min, max],
//!   "payment_intents", "created_from", "created_to"}` makes that many objects at once, shaped
//!   as the API answers them, with `created` spread over the range, without events or
//!   deliveries; answers `{"object": "emulator.seed", "created": {type: n}, "counts":
//!   {type: n}}`.
//! - `POST /_emulator/events/age {"seconds": N}`: the account's events become N seconds
//!   older (those past 30 days leave `GET /v1/events`).
//! - `GET /_emulator/config`, `POST /_emulator/config` `{"latency_ms": N}`: delay the answer
//!   to every later `/v1` request of the key by N ms. The request is executed at once; only
//!   the response waits, so a client that times out has still changed state (as when a
//!   response is lost), and an idempotent retry replays. The same body takes
//!   `"access_token_lifetime_secs"` (3600) and `"code_lifetime_secs"` (300): the lifetimes
//!   of the Apps access tokens and authorization codes issued from then on for the key's
//!   OAuth clients (0: expired at once).
//!   `"rate_limit_per_sec": N` (0: none) answers the key's `/v1` requests past N in one
//!   clock second with Stripe's 429 (`{"error": {"type": "invalid_request_error", "code":
//!   "rate_limit", "message": "Request rate limit exceeded. ..."}}`, `Retry-After:
//!   "retry_after_secs"` (up to 3600, 0 taken as 1, default 1), `Stripe-Should-Retry: true`); nothing is
//!   done, the request is logged.
//!   `"fail_path": "/v1/..."` (`""`: none) answers every later request of the key to that
//!   path with a 400 `invalid_request_error` (a fault mode: a list that cannot be read);
//!   nothing is done, the request is logged.
//!   `"missing_path": "/v1/..."` (`""`: none) answers every later request of the key to that
//!   path, or to a path below it, with a 404 `resource_missing` (a fault mode: an object
//!   deleted meanwhile, e.g. `/v1/invoices/in_1` and its `/lines`); nothing is done, the
//!   request is logged.
//!   `"stuck_path": "/v1/..."` (`""`: none) answers every later `GET` of the key to that list
//!   from its start, whatever its `starting_after` or `ending_before` (a fault mode: a list
//!   whose cursor never moves on; its first page, `has_more` and all, again and again).
//!   `"answer_padding_bytes": N` (up to 128 MiB, 0: none) appends N spaces to every later
//!   successful `/v1` answer of the key (a fault mode: the same JSON, as large as asked;
//!   refusals and errors are not padded).
//! - `POST /_emulator/oauth/clients` `{"client_id", "kind": "connect" | "app",
//!   "signing_secret"?: "absec_...", "redirect_uris"?: [...], "name"?}` binds an OAuth client
//!   id to the key (and its mode); `GET` lists them. `POST /_emulator/accounts/:acct/
//!   deauthorize`: the account's owner disconnects every application of the key (as from
//!   their Dashboard), each announced by `account.application.deauthorized`.
//! - `GET /_emulator/requests`: the key's `/v1` and OAuth token/deauthorize requests
//!   (parameters unmasked), oldest first (method, path, query,
//!   idempotency key, parameters as JSON, status); `DELETE /_emulator/requests` clears it.
//! - `POST /_emulator/checkout/sessions/:id/complete` (JSON `{"payment_method": "..."}` or
//!   the form `payment_method=...`; default `pm_card_visa`; an optional `promotion_code`,
//!   the code a customer types, on a session with `allow_promotion_codes`; honours
//!   `Stripe-Account`):
//!   completes an open checkout session as the hosted page would and answers it (see
//!   [`complete`](fn@resources::checkout::complete)); a declining card answers the 402 card error and
//!   leaves the session open; a session that is not open is a 400.
//! - Webhooks (see [`webhook_admin`]): `GET /_emulator/deliveries` (every delivery attempt),
//!   `POST /_emulator/delivery {"paused": bool}`, `POST /_emulator/delivery/flush
//!   {"order": "as_queued" | "reverse"}`, `POST /_emulator/delivery/config` (retries, and
//!   the fault modes `{"fail": true}` and `{"drop_until": unix}`),
//!   `POST /_emulator/events` (an arbitrary event), `POST /_emulator/events/:id/redeliver`,
//!   `POST /_emulator/webhook_endpoints/:id/roll_secret`.
//! - `GET /_emulator/health` (no key needed).

pub mod delivery;
pub mod error;
pub mod events;
pub mod expand;
pub mod fixtures;
pub mod form;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod json;
pub mod list;
pub mod money;
pub mod oauth;
pub mod objects;
pub mod pages;
pub mod params;
pub mod resources;
pub mod search;
pub mod seed;
pub mod server;
pub mod spec;
pub mod state;
pub mod store;
pub mod sync;
pub mod text;
pub mod webhook_admin;

pub use fixtures::API_VERSION;
pub use server::{EmulatorHandle, run, spawn};
