//! OAuth state shared by every key: registered client ids (Connect platforms and Stripe
//! Apps), authorization codes, Apps access and refresh tokens, and which accounts are
//! connected to which platform key.
//!
//! It lives beside the keys rather than in one, because the hosted authorize pages have no
//! key (they find the platform through the client id) and an access token names its key.
//! Pure bookkeeping: nothing here speaks HTTP or records events; the caller (see
//! [`crate::oauth`]) answers and announces.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::ids::random_alnum;

/// How long an authorization code is valid by default (Stripe: 5 minutes).
pub const CODE_LIFETIME_SECS: u64 = 300;
/// How long an Apps access token is valid by default (Stripe: 1 hour).
pub const ACCESS_TOKEN_LIFETIME_SECS: u64 = 3600;
/// How long an Apps refresh token is valid (Stripe: 1 year).
pub const REFRESH_TOKEN_LIFETIME_SECS: i64 = 365 * 86_400;

/// What a client id is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// A Connect platform (`ca_...`): `connect.stripe.com/oauth/...`.
    Connect,
    /// A Stripe App with OAuth: `marketplace.stripe.com/oauth/v2/...` and `/v1/oauth/token`.
    App,
}

impl ClientKind {
    /// The name used by `/_emulator/oauth/clients`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Connect => "connect",
            ClientKind::App => "app",
        }
    }
}

/// A registered client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The platform's (or app developer's) secret key.
    pub key: String,
    pub kind: ClientKind,
    /// The app's signing secret (`absec_...`), for `install_signature`.
    pub signing_secret: Option<String>,
    /// The redirect URIs allowed; empty allows any http(s) URL.
    pub redirect_uris: Vec<String>,
    /// The mode of `key`.
    pub livemode: bool,
    /// The application's name (`name` of the `application` object in events).
    pub name: Option<String>,
}

/// An authorization code the authorize page handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub client_id: String,
    pub kind: ClientKind,
    /// The platform key it was issued to (the client's key).
    pub key: String,
    pub livemode: bool,
    /// The account that approved.
    pub account: String,
    pub scope: String,
    pub expires_at: i64,
    pub used: bool,
}

/// An Apps access or refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub key: String,
    pub account: String,
    pub client_id: String,
    pub livemode: bool,
    pub expires_at: i64,
}

/// An OAuth error as `connect.stripe.com` and `/v1/oauth/token` answer it: HTTP status and
/// `{"error": ..., "error_description": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    /// A 400 with the given `error`.
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status: 400,
            error,
            description: description.into(),
        }
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }
}

/// Why a code could not be redeemed; `revoked` names the connection the failure revoked (a
/// code redeemed twice revokes the access it granted, as with Stripe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemError {
    pub error: OAuthError,
    pub revoked: Option<Box<Revoked>>,
}

/// A connection that ended: its key, account and client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub key: String,
    pub account: String,
    pub client_id: String,
    pub livemode: bool,
}

/// What an access token presented on `/v1` stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenUse {
    /// Act as `key` with `Stripe-Account: account`.
    Valid { key: String, account: String },
    /// The token expired (`api_key_expired`).
    Expired,
    /// The account disconnected the app.
    Revoked,
}

/// The OAuth state of the whole emulator.
#[derive(Debug, Default)]
pub struct OAuthState {
    clients: HashMap<String, Client>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Token>,
    refresh: HashMap<String, Token>,
    /// Access tokens of ended connections (token -> key): still recognised, so that they
    /// answer 401 rather than pass for a key of their own.
    void: HashMap<String, String>,
    /// (key, account) -> the client ids it is connected through.
    connected: HashMap<(String, String), BTreeSet<String>>,
    /// (key, account) pairs that were connected and no longer are.
    revoked: HashSet<(String, String)>,
}

fn pair(key: &str, account: &str) -> (String, String) {
    (key.to_owned(), account.to_owned())
}

impl OAuthState {
    /// Registers `client_id` for `client.key`; a client id belongs to one key.
    pub fn register(&mut self, client_id: &str, client: Client) -> Result<(), String> {
        if let Some(existing) = self.clients.get(client_id)
            && existing.key != client.key
        {
            return Err(format!(
                "The client id {client_id} is already registered with another secret key."
            ));
        }
        self.clients.insert(client_id.to_owned(), client);
        Ok(())
    }

    /// A registered client.
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.get(client_id)
    }

    /// The client ids registered with `key`, sorted.
    pub fn clients_of(&self, key: &str) -> Vec<(String, Client)> {
        let mut clients: Vec<(String, Client)> = self
            .clients
            .iter()
            .filter(|(_, c)| c.key == key)
            .map(|(id, c)| (id.clone(), c.clone()))
            .collect();
        clients.sort_by(|a, b| a.0.cmp(&b.0));
        clients
    }

    /// Hands out a code for an approval by `account`.
    pub fn issue_code(
        &mut self,
        client_id: &str,
        client: &Client,
        account: &str,
        scope: &str,
        expires_at: i64,
    ) -> String {
        let code = format!("ac_{}", random_alnum(32));
        self.codes.insert(
            code.clone(),
            Code {
                client_id: client_id.to_owned(),
                kind: client.kind,
                key: client.key.clone(),
                livemode: client.livemode,
                account: account.to_owned(),
                scope: scope.to_owned(),
                expires_at,
                used: false,
            },
        );
        code
    }

    /// Redeems `code` for `key` at the token endpoint of `kind`; on success the account is
    /// connected to `key` through the code's client id.
    pub fn redeem(
        &mut self,
        key: &str,
        livemode: bool,
        code: &str,
        kind: ClientKind,
        now: i64,
    ) -> Result<Code, Box<RedeemError>> {
        let plain = |error| {
            Box::new(RedeemError {
                error,
                revoked: None,
            })
        };
        let Some(found) = self.codes.get_mut(code).filter(|c| c.kind == kind) else {
            return Err(plain(OAuthError::invalid_grant(format!(
                "Authorization code does not exist: {code}"
            ))));
        };
        if found.livemode != livemode {
            let (made, used) = if found.livemode {
                ("live", "test")
            } else {
                ("test", "live")
            };
            return Err(plain(OAuthError::invalid_grant(format!(
                "Authorization code provided was created in {made} mode, but you are using \
                 a {used} mode key: {code}"
            ))));
        }
        if found.key != key {
            return Err(plain(OAuthError::invalid_grant(format!(
                "Authorization code does not belong to you: {code}"
            ))));
        }
        if found.used {
            let used = found.clone();
            let revoked = self
                .disconnect(&used.key, &used.account, &used.client_id)
                .then_some(Box::new(Revoked {
                    key: used.key,
                    account: used.account,
                    client_id: used.client_id,
                    livemode: used.livemode,
                }));
            return Err(Box::new(RedeemError {
                error: OAuthError::invalid_grant(format!(
                    "Authorization code already used: {code}"
                )),
                revoked,
            }));
        }
        if now >= found.expires_at {
            return Err(plain(OAuthError::invalid_grant(format!(
                "Authorization code expired: {code}"
            ))));
        }
        found.used = true;
        let code = found.clone();
        self.connect(&code.key, &code.account, &code.client_id);
        Ok(code)
    }

    /// Issues an access token valid until `access_expires_at` and a refresh token.
    pub fn issue_tokens(
        &mut self,
        key: &str,
        account: &str,
        client_id: &str,
        livemode: bool,
        now: i64,
        access_expires_at: i64,
    ) -> (String, String) {
        let mode = if livemode { "live" } else { "test" };
        let access = format!("rk_{mode}_oa{}", random_alnum(48));
        let refresh = format!("rt_{}", random_alnum(48));
        let token = |expires_at| Token {
            key: key.to_owned(),
            account: account.to_owned(),
            client_id: client_id.to_owned(),
            livemode,
            expires_at,
        };
        self.access.insert(access.clone(), token(access_expires_at));
        self.refresh.insert(
            refresh.clone(),
            token(now.saturating_add(REFRESH_TOKEN_LIFETIME_SECS)),
        );
        (access, refresh)
    }

    /// Trades `refresh_token` (of `key`) for new tokens; the old refresh token is void.
    pub fn refresh(
        &mut self,
        key: &str,
        refresh_token: &str,
        now: i64,
        access_expires_at: i64,
    ) -> Result<(Token, String, String), OAuthError> {
        let invalid =
            || OAuthError::invalid_grant(format!("Invalid refresh token: {refresh_token}"));
        let Some(token) = self.refresh.get(refresh_token).filter(|t| t.key == key) else {
            return Err(invalid());
        };
        if now >= token.expires_at || !self.is_connected(key, &token.account, &token.client_id) {
            return Err(invalid());
        }
        let token = token.clone();
        self.refresh.remove(refresh_token);
        let (access, refresh) = self.issue_tokens(
            key,
            &token.account,
            &token.client_id,
            token.livemode,
            now,
            access_expires_at,
        );
        Ok((token, access, refresh))
    }

    /// What `token` (a bearer credential on `/v1`) stands for; `None` when it is no access
    /// token the emulator issued.
    pub fn token_use(&self, token: &str, now: i64) -> Option<TokenUse> {
        if self.void.contains_key(token) {
            return Some(TokenUse::Revoked);
        }
        let found = self.access.get(token)?;
        Some(
            if !self.is_connected(&found.key, &found.account, &found.client_id) {
                TokenUse::Revoked
            } else if now >= found.expires_at {
                TokenUse::Expired
            } else {
                TokenUse::Valid {
                    key: found.key.clone(),
                    account: found.account.clone(),
                }
            },
        )
    }

    /// Connects `account` to `key` through `client_id`.
    pub fn connect(&mut self, key: &str, account: &str, client_id: &str) {
        self.revoked.remove(&pair(key, account));
        self.connected
            .entry(pair(key, account))
            .or_default()
            .insert(client_id.to_owned());
    }

    /// Whether `account` is connected to `key` through `client_id`.
    pub fn is_connected(&self, key: &str, account: &str, client_id: &str) -> bool {
        self.connected
            .get(&pair(key, account))
            .is_some_and(|clients| clients.contains(client_id))
    }

    /// The client ids `account` is connected to `key` through.
    pub fn connections(&self, key: &str, account: &str) -> Vec<String> {
        self.connected
            .get(&pair(key, account))
            .map(|clients| clients.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Disconnects `account` from `key`'s `client_id` and voids the tokens of that
    /// connection; false if it was not connected. Once no connection is left, the key loses
    /// access to the account ([`is_revoked`](Self::is_revoked)).
    pub fn disconnect(&mut self, key: &str, account: &str, client_id: &str) -> bool {
        let id = pair(key, account);
        let Some(clients) = self.connected.get_mut(&id) else {
            return false;
        };
        if !clients.remove(client_id) {
            return false;
        }
        if clients.is_empty() {
            self.connected.remove(&id);
            self.revoked.insert(id);
        }
        let gone = |t: &Token| t.key == key && t.account == account && t.client_id == client_id;
        let void: Vec<String> = self
            .access
            .iter()
            .filter(|(_, t)| gone(t))
            .map(|(token, _)| token.clone())
            .collect();
        for token in void {
            self.access.remove(&token);
            self.void.insert(token, key.to_owned());
        }
        self.refresh.retain(|_, t| !gone(t));
        true
    }

    /// Whether `key` had access to `account` through OAuth and lost it.
    pub fn is_revoked(&self, key: &str, account: &str) -> bool {
        self.revoked.contains(&pair(key, account))
    }

    /// Forgets everything of `key` (`DELETE /_emulator/data`): its clients, codes, tokens
    /// and connections.
    pub fn forget_key(&mut self, key: &str) {
        self.clients.retain(|_, c| c.key != key);
        self.codes.retain(|_, c| c.key != key);
        self.access.retain(|_, t| t.key != key);
        self.refresh.retain(|_, t| t.key != key);
        self.void.retain(|_, k| k != key);
        self.connected.retain(|(k, _), _| k != key);
        self.revoked.retain(|(k, _)| k != key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(key: &str, kind: ClientKind) -> Client {
        Client {
            key: key.to_owned(),
            kind,
            signing_secret: None,
            redirect_uris: Vec::new(),
            livemode: false,
            name: None,
        }
    }

    #[test]
    fn codes_are_single_use_and_a_second_use_revokes() {
        let mut oauth = OAuthState::default();
        let c = client("sk_test_a", ClientKind::Connect);
        oauth.register("ca_1", c.clone()).unwrap();
        assert!(
            oauth
                .register("ca_1", client("sk_test_b", ClientKind::Connect))
                .is_err()
        );
        let code = oauth.issue_code("ca_1", &c, "acct_1", "read_write", 100);
        // An app token endpoint does not take a Connect code.
        let err = oauth
            .redeem("sk_test_a", false, &code, ClientKind::App, 0)
            .unwrap_err();
        assert!(err.error.description.contains("does not exist"));
        let err = oauth
            .redeem("sk_test_b", false, &code, ClientKind::Connect, 0)
            .unwrap_err();
        assert!(err.error.description.contains("does not belong"));
        let err = oauth
            .redeem("sk_live_a", true, &code, ClientKind::Connect, 0)
            .unwrap_err();
        assert!(err.error.description.contains("test mode"));
        let ok = oauth
            .redeem("sk_test_a", false, &code, ClientKind::Connect, 0)
            .unwrap();
        assert_eq!(ok.account, "acct_1");
        assert!(oauth.is_connected("sk_test_a", "acct_1", "ca_1"));
        let err = oauth
            .redeem("sk_test_a", false, &code, ClientKind::Connect, 0)
            .unwrap_err();
        assert!(err.error.description.contains("already used"));
        assert_eq!(err.revoked.map(|r| r.account), Some("acct_1".to_owned()));
        assert!(oauth.is_revoked("sk_test_a", "acct_1"));
    }

    #[test]
    fn expired_codes_and_tokens() {
        let mut oauth = OAuthState::default();
        let c = client("sk_test_a", ClientKind::App);
        let code = oauth.issue_code("app_1", &c, "acct_1", "stripe_apps", 10);
        let err = oauth
            .redeem("sk_test_a", false, &code, ClientKind::App, 10)
            .unwrap_err();
        assert!(err.error.description.contains("expired"));
        oauth.connect("sk_test_a", "acct_1", "app_1");
        let (access, refresh) = oauth.issue_tokens("sk_test_a", "acct_1", "app_1", false, 0, 5);
        assert_eq!(
            oauth.token_use(&access, 4),
            Some(TokenUse::Valid {
                key: "sk_test_a".into(),
                account: "acct_1".into()
            })
        );
        assert_eq!(oauth.token_use(&access, 5), Some(TokenUse::Expired));
        assert_eq!(oauth.token_use("rk_test_other", 0), None);
        let (_, _, refresh2) = oauth.refresh("sk_test_a", &refresh, 6, 100).unwrap();
        assert!(oauth.refresh("sk_test_a", &refresh, 6, 100).is_err());
        assert!(oauth.refresh("sk_test_b", &refresh2, 6, 100).is_err());
        assert!(oauth.disconnect("sk_test_a", "acct_1", "app_1"));
        assert!(oauth.refresh("sk_test_a", &refresh2, 6, 100).is_err());
        // A token of an ended connection stays refused, even after a new connection.
        assert_eq!(oauth.token_use(&access, 4), Some(TokenUse::Revoked));
        oauth.connect("sk_test_a", "acct_1", "app_1");
        assert_eq!(oauth.token_use(&access, 4), Some(TokenUse::Revoked));
        assert!(oauth.disconnect("sk_test_a", "acct_1", "app_1"));
        assert!(!oauth.disconnect("sk_test_a", "acct_1", "app_1"));
    }
}
