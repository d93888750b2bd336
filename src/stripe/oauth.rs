//! Stripe's OAuth endpoints, with the platform's own secret key: Connect's token exchange and
//! deauthorization on the Connect host, and Stripe Apps' token exchange and refresh on the API
//! host (../shared/docs/CONNECT.md). Not part of async-stripe; plain form posts.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The hosts and the key the OAuth calls use.
#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    connect_base: String,
    api_base: String,
    platform_key: SecretString,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("connect_base", &self.connect_base)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// What a token exchange (or refresh) answers.
#[derive(Debug, Clone, Deserialize)]
pub struct Grant {
    pub stripe_user_id: String,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub scope: Option<String>,
    /// Stripe Apps only (deprecated for Connect).
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// How an OAuth call fails.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    /// Stripe's OAuth error (`invalid_grant`, `invalid_request`, `invalid_client`, ...).
    #[error("{error}: {description}")]
    Refused {
        status: u16,
        error: String,
        description: String,
    },
    #[error("Stripe could not be reached: {0}")]
    Unreachable(String),
    #[error("Stripe answered something unreadable: {0}")]
    BadResponse(String),
}

impl OAuthError {
    /// Stripe's `invalid_grant`: the code or refresh token is unknown, used, expired or not ours.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, OAuthError::Refused { error, .. } if error == "invalid_grant")
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: serde_json::Value,
    #[serde(default)]
    error_description: Option<String>,
}

impl OAuthClient {
    /// `api_base` empty: Stripe's own API host.
    pub fn new(
        connect_base: &str,
        api_base: &str,
        platform_key: SecretString,
        timeout: Duration,
    ) -> Result<Self, OAuthError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| OAuthError::Unreachable(err.to_string()))?;
        let api_base = if api_base.trim().is_empty() {
            super::STRIPE_API
        } else {
            api_base
        };
        Ok(Self {
            http,
            connect_base: connect_base.trim_end_matches('/').to_owned(),
            api_base: api_base.trim_end_matches('/').to_owned(),
            platform_key,
        })
    }

    /// Connect: `POST {connect}/oauth/token` with `grant_type=authorization_code`.
    pub async fn exchange_connect_code(&self, code: &str) -> Result<Grant, OAuthError> {
        let url = format!("{}/oauth/token", self.connect_base);
        self.post(
            &url,
            &[("grant_type", "authorization_code"), ("code", code)],
            "oauth_token",
        )
        .await
    }

    /// Stripe Apps: `POST {api}/v1/oauth/token` with `grant_type=authorization_code`.
    pub async fn exchange_app_code(&self, code: &str) -> Result<Grant, OAuthError> {
        let url = format!("{}/v1/oauth/token", self.api_base);
        self.post(
            &url,
            &[("grant_type", "authorization_code"), ("code", code)],
            "app_oauth_token",
        )
        .await
    }

    /// Stripe Apps: a new access token and a new refresh token (the old one is void from now).
    pub async fn refresh_app_token(&self, refresh_token: &str) -> Result<Grant, OAuthError> {
        let url = format!("{}/v1/oauth/token", self.api_base);
        self.post(
            &url,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            "app_oauth_refresh",
        )
        .await
    }

    /// Connect: `POST {connect}/oauth/deauthorize`; the account no longer reaches the platform.
    pub async fn deauthorize(&self, client_id: &str, account: &str) -> Result<(), OAuthError> {
        let url = format!("{}/oauth/deauthorize", self.connect_base);
        let _: serde_json::Value = self
            .post(
                &url,
                &[("client_id", client_id), ("stripe_user_id", account)],
                "oauth_deauthorize",
            )
            .await?;
        Ok(())
    }

    async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        url: &str,
        form: &[(&str, &str)],
        step: &str,
    ) -> Result<T, OAuthError> {
        let started = std::time::Instant::now();
        let answer = self.send(url, form).await;
        let outcome = match &answer {
            Ok(_) => "ok",
            Err(OAuthError::Refused { .. }) => "refused",
            Err(OAuthError::Unreachable(_)) => "unreachable",
            Err(OAuthError::BadResponse(_)) => "error",
        };
        crate::metrics::stripe_call(step, outcome, started);
        answer
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<T, OAuthError> {
        let response = self
            .http
            .post(url)
            .bearer_auth(self.platform_key.expose_secret())
            .form(form)
            .send()
            .await
            .map_err(|err| OAuthError::Unreachable(err.without_url().to_string()))?;
        let status = response.status();
        // Stripe's OAuth answers are small; a bound keeps a broken proxy from filling memory.
        let body = crate::bounded::read_body(response, 64 * 1024)
            .await
            .map_err(|err| match err {
                crate::bounded::ReadError::TooLarge(_) => OAuthError::BadResponse(err.to_string()),
                crate::bounded::ReadError::Read(_) => OAuthError::Unreachable(err.to_string()),
            })?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|err| OAuthError::BadResponse(err.to_string()));
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let (error, description) = match parsed {
            // Connect's `{error, error_description}`.
            Some(ErrorBody {
                error: serde_json::Value::String(error),
                error_description,
            }) => (error, error_description.unwrap_or_default()),
            // The API's `{error: {type, code, message}}`.
            Some(ErrorBody { error, .. }) if error.is_object() => (
                error
                    .get("code")
                    .or_else(|| error.get("type"))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("stripe_error")
                    .to_owned(),
                error
                    .get("message")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            _ => (
                "stripe_error".to_owned(),
                format!("Stripe answered with status {status}"),
            ),
        };
        Err(OAuthError::Refused {
            status: status.as_u16(),
            error,
            description,
        })
    }
}
