//! Stripe Connect OAuth and Stripe Apps OAuth, standing in for `connect.stripe.com`,
//! `marketplace.stripe.com` and `api.stripe.com/v1/oauth/token` (state in
//! [`crate::state::oauth`]; the hosted authorize pages in [`crate::pages::oauth`]).
//!
//! - `POST {base}/connect/oauth/token` (platform key, Bearer or Basic, or the form field
//!   `client_secret`): `grant_type=authorization_code&code=ac_...` for a Connect code →
//!   `{token_type, scope, livemode, stripe_user_id, stripe_publishable_key}` (no access
//!   token; the platform acts with its key and `Stripe-Account`).
//! - `POST {base}/v1/oauth/token` (the app developer's key): `grant_type=authorization_code
//!   &code=...` for an Apps code, or `grant_type=refresh_token&refresh_token=rt_...` →
//!   `{access_token, refresh_token, livemode, scope: "stripe_apps", stripe_publishable_key,
//!   stripe_user_id, token_type}`. Each refresh voids the refresh token it used.
//! - `POST {base}/connect/oauth/deauthorize` (platform key) `client_id, stripe_user_id` →
//!   `{stripe_user_id}`.
//!
//! Errors are HTTP 400 (401 for a missing or malformed key) `{"error", "error_description"}`
//! with `invalid_request`, `invalid_grant`, `invalid_client` or `unsupported_grant_type`.
//! A redeemed code connects its account to the key and records
//! `account.application.authorized` in the account; a disconnection (deauthorize, the
//! account owner, a code redeemed twice) records `account.application.deauthorized`. Both
//! carry `account` and go to the key's Connect endpoints.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::events::record::{Origin, event_object, store_event};
use crate::form::{Param, Params};
use crate::ids;
use crate::state::oauth::{ClientKind, OAuthError, Revoked};
use crate::state::{Emulator, KeyState};

/// `account.application.authorized`.
pub const AUTHORIZED: &str = "account.application.authorized";
/// `account.application.deauthorized`.
pub const DEAUTHORIZED: &str = "account.application.deauthorized";

/// An OAuth answer: HTTP status and body.
pub type Answer = (u16, Value);

/// The body of an OAuth error.
pub fn error_body(error: &OAuthError) -> Answer {
    (
        error.status,
        json!({"error": error.error, "error_description": error.description}),
    )
}

/// A scalar form parameter, `None` when absent or empty.
pub fn param<'p>(params: &'p Params, name: &str) -> Option<&'p str> {
    params
        .get(&[name])
        .and_then(Param::as_str)
        .filter(|s| !s.is_empty())
}

/// A fresh connected-account id, shaped like Stripe's (`acct_1` and 15 alphanumerics).
pub fn new_account_id() -> String {
    format!("acct_1{}", ids::random_alnum(15))
}

/// Whether `id` looks like an account id (`acct_` then letters and digits).
pub fn is_account_id(id: &str) -> bool {
    id.strip_prefix("acct_").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// A publishable key for an account (deprecated in the answer, but still sent).
fn publishable_key(livemode: bool) -> String {
    let mode = if livemode { "live" } else { "test" };
    format!("pk_{mode}_{}", ids::random_alnum(24))
}

/// Records `event_type` (an `application` object) in `account` of `state`'s key and queues
/// its deliveries (to the key's Connect endpoints).
pub fn announce(
    emulator: &Emulator,
    state: &Arc<KeyState>,
    account: &str,
    event_type: &str,
    client_id: &str,
) {
    let name = emulator
        .oauth()
        .client(client_id)
        .and_then(|c| c.name.clone());
    let object = json!({"id": client_id, "object": "application", "name": name});
    let mut data = state.lock();
    let livemode = state.livemode();
    let event = event_object(
        &ids::long_id("evt"),
        event_type,
        object,
        None,
        ids::now(),
        livemode,
        account,
        Origin::default(),
    );
    let dispatch = store_event(&mut data, account, event);
    // Queued under the lock, like the API's events, to keep their order.
    emulator
        .deliveries
        .enqueue(state, dispatch.into_iter().collect(), false);
}

fn announce_revoked(emulator: &Emulator, revoked: &Revoked) {
    let state = emulator.key_state(&revoked.key);
    announce(
        emulator,
        &state,
        &revoked.account,
        DEAUTHORIZED,
        &revoked.client_id,
    );
}

/// `POST /connect/oauth/token` (`kind` Connect) or `POST /v1/oauth/token` (`kind` App) for
/// `key`, whose state is `state`.
pub fn token(
    emulator: &Emulator,
    state: &Arc<KeyState>,
    key: &str,
    kind: ClientKind,
    params: &Params,
) -> Answer {
    match token_result(emulator, state, key, kind, params) {
        Ok(value) => (200, value),
        Err(error) => error_body(&error),
    }
}

fn token_result(
    emulator: &Emulator,
    state: &Arc<KeyState>,
    key: &str,
    kind: ClientKind,
    params: &Params,
) -> Result<Value, OAuthError> {
    let livemode = state.livemode();
    let now = ids::now();
    let access_expires_at = now.saturating_add(
        i64::try_from(state.config.access_token_lifetime_secs()).unwrap_or(i64::MAX),
    );
    match param(params, "grant_type") {
        None => Err(OAuthError::new(
            "invalid_request",
            "No grant type specified: grant_type must be authorization_code or refresh_token.",
        )),
        Some("authorization_code") => {
            let code = param(params, "code").ok_or_else(|| {
                OAuthError::new("invalid_request", "No authorization code provided")
            })?;
            let redeemed = emulator.oauth().redeem(key, livemode, code, kind, now);
            let code = match redeemed {
                Ok(code) => code,
                Err(failure) => {
                    if let Some(revoked) = &failure.revoked {
                        announce_revoked(emulator, revoked);
                    }
                    return Err(failure.error);
                }
            };
            announce(emulator, state, &code.account, AUTHORIZED, &code.client_id);
            Ok(match kind {
                ClientKind::Connect => json!({
                    "token_type": "bearer",
                    "scope": code.scope,
                    "livemode": livemode,
                    "stripe_user_id": code.account,
                    "stripe_publishable_key": publishable_key(livemode),
                }),
                ClientKind::App => {
                    let (access, refresh) = emulator.oauth().issue_tokens(
                        key,
                        &code.account,
                        &code.client_id,
                        livemode,
                        now,
                        access_expires_at,
                    );
                    app_tokens(&access, &refresh, livemode, &code.account)
                }
            })
        }
        Some("refresh_token") => {
            let refresh_token = param(params, "refresh_token")
                .ok_or_else(|| OAuthError::new("invalid_request", "No refresh token provided"))?;
            if kind == ClientKind::Connect {
                // Connect issues no refresh tokens (they are deprecated).
                return Err(OAuthError::invalid_grant(format!(
                    "Invalid refresh token: {refresh_token}"
                )));
            }
            let (old, access, refresh) =
                emulator
                    .oauth()
                    .refresh(key, refresh_token, now, access_expires_at)?;
            Ok(app_tokens(&access, &refresh, livemode, &old.account))
        }
        Some(other) => Err(OAuthError::new(
            "unsupported_grant_type",
            format!("Unsupported grant type: {other}"),
        )),
    }
}

fn app_tokens(access: &str, refresh: &str, livemode: bool, account: &str) -> Value {
    json!({
        "access_token": access,
        "refresh_token": refresh,
        "livemode": livemode,
        "scope": "stripe_apps",
        "stripe_publishable_key": publishable_key(livemode),
        "stripe_user_id": account,
        "token_type": "bearer",
    })
}

/// `POST /connect/oauth/deauthorize` of `key`: `client_id`, `stripe_user_id`.
pub fn deauthorize(
    emulator: &Emulator,
    state: &Arc<KeyState>,
    key: &str,
    params: &Params,
) -> Answer {
    let missing = |name: &str| {
        error_body(&OAuthError::new(
            "invalid_request",
            format!("No {name} provided"),
        ))
    };
    let Some(client_id) = param(params, "client_id") else {
        return missing("client_id");
    };
    let Some(account) = param(params, "stripe_user_id") else {
        return missing("stripe_user_id");
    };
    let disconnected = {
        let mut oauth = emulator.oauth();
        if oauth.client(client_id).is_none_or(|c| c.key != key) {
            return error_body(&OAuthError::new(
                "invalid_client",
                format!("No such application: '{client_id}'"),
            ));
        }
        oauth.disconnect(key, account, client_id)
    };
    if !disconnected {
        return error_body(&OAuthError::new(
            "invalid_client",
            format!(
                "This application is not connected to stripe account {account}, or that \
                 account does not exist."
            ),
        ));
    }
    announce(emulator, state, account, DEAUTHORIZED, client_id);
    (200, json!({"stripe_user_id": account}))
}

/// The account owner disconnects every application of `key` from their Dashboard
/// (`POST /_emulator/accounts/:acct/deauthorize`): the client ids disconnected, each
/// announced; empty if none was connected.
pub fn owner_deauthorizes(
    emulator: &Emulator,
    state: &Arc<KeyState>,
    key: &str,
    account: &str,
) -> Vec<String> {
    let clients = {
        let mut oauth = emulator.oauth();
        let clients = oauth.connections(key, account);
        for client_id in &clients {
            oauth.disconnect(key, account, client_id);
        }
        clients
    };
    for client_id in &clients {
        announce(emulator, state, account, DEAUTHORIZED, client_id);
    }
    clients
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert!(is_account_id("acct_1AbC"));
        assert!(is_account_id(&new_account_id()));
        assert!(!is_account_id("acct_"));
        assert!(!is_account_id("acct_a-b"));
        assert!(!is_account_id("cus_1"));
    }

    #[test]
    fn token_errors() {
        let emulator = Emulator::default();
        let state = emulator.key_state("sk_test_oauth");
        let answer = |body: &str| {
            let params = Params::parse(&[body.as_bytes()]).unwrap();
            token(&emulator, &state, "sk_test_oauth", ClientKind::App, &params)
        };
        assert_eq!(answer("").1["error"], "invalid_request");
        assert_eq!(
            answer("grant_type=password").1["error"],
            "unsupported_grant_type"
        );
        assert_eq!(
            answer("grant_type=authorization_code").1["error"],
            "invalid_request"
        );
        let (status, body) = answer("grant_type=authorization_code&code=ac_nope");
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(
            answer("grant_type=refresh_token&refresh_token=rt_x").1["error"],
            "invalid_grant"
        );
    }
}
