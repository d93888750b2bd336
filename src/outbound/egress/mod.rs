//! The egress policy: which URLs a tenant may make this service call (`notify_url`, and any
//! other URL a tenant gives us). Only `https` (unless the operator allows `http`), and only
//! public addresses: loopback (unless allowed, for tests and the demo), private, link-local,
//! unique-local, shared (CGNAT), multicast, unspecified, documentation and reserved ranges are
//! refused, in every spelling (IPv4-mapped IPv6 included). Checked three times: when the URL is
//! given (its host resolved, 422 if any address is refused), at connect time (the client's
//! resolver drops refused addresses, so a name re-pointed after the check, DNS rebinding,
//! reaches nothing), and at send time for IP-literal hosts (which skip any resolver). The
//! client never follows redirects.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

use crate::config::Settings;
use crate::error::ApiError;

mod address;

pub use address::{AddressClass, classify};

/// How long resolving a host name may take when a URL is checked.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a URL or an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("{0:?} is not an absolute http(s) URL with a host")]
    NotAUrl(String),
    #[error("the URL must use https")]
    NotHttps,
    #[error("the URL's host {host} is {class}, which this service does not call")]
    Forbidden { host: String, class: &'static str },
    #[error("the URL's host {0} could not be resolved")]
    Unresolved(String),
    #[error(
        "the URL must not carry a user name or password (they would travel in logs and errors); use a token in a header or path instead"
    )]
    Credentials,
    #[error("the URL is longer than {MAX_URL_CHARS} characters")]
    TooLong,
}

/// The longest URL a tenant may give us.
pub const MAX_URL_CHARS: usize = 2048;

impl EgressError {
    /// 422 `validation_error` at `pointer` (where the URL sits in the request body).
    pub fn at(self, pointer: &str) -> ApiError {
        ApiError::validation(pointer, format!("{self}."))
    }
}

/// The operator's egress rules, from settings (`egress_allow_http`, `egress_allow_loopback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressPolicy {
    pub allow_http: bool,
    pub allow_loopback: bool,
}

impl EgressPolicy {
    /// https only, public addresses only.
    pub const STRICT: Self = Self {
        allow_http: false,
        allow_loopback: false,
    };

    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            allow_http: settings.egress_allow_http,
            allow_loopback: settings.egress_allow_loopback,
        }
    }

    /// Whether this service may connect to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        match classify(ip) {
            AddressClass::Public => true,
            AddressClass::Loopback => self.allow_loopback,
            _ => false,
        }
    }

    fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), EgressError> {
        if self.allows(ip) {
            Ok(())
        } else {
            Err(EgressError::Forbidden {
                host: host.to_owned(),
                class: classify(ip).describe(),
            })
        }
    }

    /// Everything that can be checked without resolving: the scheme, that there is a host, and
    /// an IP-literal host's address. Run this right before each send as well: IP literals never
    /// reach the client's resolver. Returns the host name to resolve, if it is one.
    pub fn check_target(&self, url: &Url) -> Result<Option<String>, EgressError> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(EgressError::NotHttps),
            _ => return Err(EgressError::NotAUrl(url.to_string())),
        }
        match url.host() {
            None => Err(EgressError::NotAUrl(url.to_string())),
            Some(Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)).map(|_| None),
            Some(Host::Ipv6(ip)) => self.check_ip(&ip.to_string(), IpAddr::V6(ip)).map(|_| None),
            Some(Host::Domain(name)) => Ok(Some(name.to_owned())),
        }
    }

    /// Parses a URL a tenant gives us and checks it, resolving its host name (blocking: for
    /// the CLI and the blocking pool). Refused when any address of the host is refused.
    pub fn check_url_blocking(&self, raw: &str, pointer: &str) -> Result<Url, ApiError> {
        let url = parse(raw).map_err(|err| err.at(pointer))?;
        if let Some(name) = self.check_target(&url).map_err(|err| err.at(pointer))? {
            let port = url.port_or_known_default().unwrap_or(443);
            self.check_resolved(&name, resolve(&name, port))
                .map_err(|err| err.at(pointer))?;
        }
        Ok(url)
    }

    /// [`Self::check_url_blocking`] off the async workers, with a bounded resolution time.
    pub async fn check_url(&self, raw: &str, pointer: &str) -> Result<Url, ApiError> {
        let url = parse(raw).map_err(|err| err.at(pointer))?;
        let Some(name) = self.check_target(&url).map_err(|err| err.at(pointer))? else {
            return Ok(url);
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = name.clone();
        let resolved = tokio::time::timeout(
            RESOLVE_TIMEOUT,
            tokio::task::spawn_blocking(move || resolve(&lookup, port)),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
        self.check_resolved(&name, resolved)
            .map_err(|err| err.at(pointer))?;
        Ok(url)
    }

    fn check_resolved(&self, name: &str, addrs: Vec<SocketAddr>) -> Result<(), EgressError> {
        if addrs.is_empty() {
            return Err(EgressError::Unresolved(name.to_owned()));
        }
        addrs
            .iter()
            .try_for_each(|addr| self.check_ip(name, addr.ip()))
    }

    /// An HTTP client that only connects to addresses this policy allows (its resolver drops
    /// the others), never follows a redirect and ignores proxy variables (a proxy would resolve
    /// the name itself). Pair each send with [`Self::check_target`].
    pub fn client(&self, timeout: Duration) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy: *self }))
            .build()
    }
}

fn parse(raw: &str) -> Result<Url, EgressError> {
    let raw = raw.trim();
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(EgressError::TooLong);
    }
    match Url::parse(raw) {
        Ok(url) if !url.username().is_empty() || url.password().is_some() => {
            Err(EgressError::Credentials)
        }
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        _ => Err(EgressError::NotAUrl(raw.to_owned())),
    }
}

/// The system resolver (what reqwest uses by default), blocking.
fn resolve(name: &str, port: u16) -> Vec<SocketAddr> {
    (name, port)
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default()
}

/// Resolves as the system does, then drops every address the policy refuses: a connection is
/// only ever opened to an allowed address, whatever the name resolves to at that moment.
struct GuardedResolver {
    policy: EgressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let host = name.clone();
            let addrs = tokio::task::spawn_blocking(move || resolve(&host, 0)).await?;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|addr| policy.allows(addr.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!("no address of {name} is allowed by the egress policy").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass_and_loopback_only_when_allowed() {
        let strict = EgressPolicy::STRICT;
        let loopback = EgressPolicy {
            allow_http: true,
            allow_loopback: true,
        };
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(!strict.allows(ip.parse().unwrap()), "{ip}");
            assert!(loopback.allows(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.5", "169.254.169.254", "fd00::1", "0.0.0.0", "::"] {
            assert!(!strict.allows(ip.parse().unwrap()), "{ip}");
            assert!(!loopback.allows(ip.parse().unwrap()), "{ip}");
        }
        assert!(strict.allows("93.184.216.34".parse().unwrap()));
    }

    #[test]
    fn ip_literal_urls_are_refused_without_resolving_anything() {
        let strict = EgressPolicy::STRICT;
        for raw in [
            "https://127.0.0.1/hook",
            "https://10.0.0.5/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:a9fe:a9fe]/x",
            "https://[fe80::1]/x",
            "https://0x7f.1/hook",
            "https://2130706433/hook",
        ] {
            let err = strict.check_url_blocking(raw, "/n/url").unwrap_err();
            assert_eq!(err.status.as_u16(), 422, "{raw}");
            assert!(
                err.detail.contains("does not call"),
                "{raw}: {}",
                err.detail
            );
        }
        let err = strict
            .check_url_blocking("http://93.184.216.34/x", "/n/url")
            .unwrap_err();
        assert!(err.detail.contains("https"), "{}", err.detail);
        assert!(
            strict
                .check_url_blocking("ftp://x.example/", "/n/url")
                .is_err()
        );
        assert!(
            strict
                .check_url_blocking("https://93.184.216.34/hook", "/n/url")
                .is_ok()
        );
    }

    #[test]
    fn a_name_resolving_to_loopback_is_refused() {
        let err = EgressPolicy::STRICT
            .check_url_blocking("https://localhost/hook", "/n/url")
            .unwrap_err();
        assert!(err.detail.contains("loopback"), "{}", err.detail);
        let allowed = EgressPolicy {
            allow_http: true,
            allow_loopback: true,
        };
        assert!(
            allowed
                .check_url_blocking("http://localhost:9/hook", "/n/url")
                .is_ok()
        );
    }
}
