//! The egress policy: which URLs a tenant may make this service call (`notify_url`, and any
//! other URL a tenant gives us). Only `https` (unless the operator allows `http`), and only
//! public addresses: loopback (unless allowed, for tests and the demo), private, link-local,
//! unique-local, shared (CGNAT), multicast, unspecified, documentation and reserved ranges are
//! refused, in every spelling (IPv4-mapped IPv6 included). Checked three times: when the URL is
//! given (its host resolved, 422 if any address is refused), at connect time (the client's
//! resolver drops refused addresses, so a name re-pointed after the check, DNS rebinding,
//! reaches nothing), and at send time for IP-literal hosts (which skip any resolver). The
//! client never follows redirects.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

use crate::config::Settings;
use crate::error::ApiError;

/// How long resolving a host name may take when a URL is checked.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What kind of address an IP is, as far as egress is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// A globally routable address: always allowed.
    Public,
    /// 127.0.0.0/8, ::1: allowed only with `egress_allow_loopback`.
    Loopback,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// RFC 1918: 10/8, 172.16/12, 192.168/16.
    Private,
    /// 100.64.0.0/10 (carrier-grade NAT).
    Shared,
    /// 169.254/16 (cloud metadata lives here), fe80::/10.
    LinkLocal,
    /// fc00::/7, and the deprecated site-local fec0::/10.
    UniqueLocal,
    /// 224/4, ff00::/8.
    Multicast,
    /// Documentation, benchmarking, protocol-assignment, broadcast and other reserved blocks
    /// (192.0.0/24, 192.0.2/24, 198.18/15, 198.51.100/24, 203.0.113/24, 240/4, 2001:db8::/32,
    /// Teredo 2001::/32, discard 100::/64).
    Reserved,
}

impl AddressClass {
    fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Private => "a private (RFC 1918) address",
            AddressClass::Shared => "a shared (carrier-grade NAT) address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::UniqueLocal => "a unique-local address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

/// Classifies an address; IPv6 forms that embed an IPv4 address (mapped `::ffff:a.b.c.d`,
/// compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) take the class of the
/// IPv4 address they carry.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => AddressClass::Unspecified,
        (127, _, _) => AddressClass::Loopback,
        (10, _, _) => AddressClass::Private,
        (172, 16..=31, _) => AddressClass::Private,
        (192, 168, _) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::Shared,
        (169, 254, _) => AddressClass::LinkLocal,
        (224..=239, _, _) => AddressClass::Multicast,
        // 240/4 and the broadcast address 255.255.255.255.
        (240..=255, _, _) => AddressClass::Reserved,
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Reserved,
        (198, 18..=19, _) => AddressClass::Reserved,
        // The 6to4 relay anycast block (deprecated).
        (192, 88, 99) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        return classify_v4(embedded(s[6], s[7]));
    }
    // NAT64's well-known prefix 64:ff9b::/96 reaches the IPv4 address it carries.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(s[6], s[7]));
    }
    // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
    if s[0] == 0x2002 {
        return classify_v4(embedded(s[1], s[2]));
    }
    match s[0] {
        0xff00..=0xffff => AddressClass::Multicast,
        0xfe80..=0xfebf => AddressClass::LinkLocal,
        0xfec0..=0xfeff | 0xfc00..=0xfdff => AddressClass::UniqueLocal,
        // Teredo (2001::/32) tunnels to an obfuscated IPv4 peer; documentation 2001:db8::/32.
        0x2001 if s[1] == 0 || s[1] == 0xdb8 => AddressClass::Reserved,
        // Discard-only 100::/64.
        0x0100 if s[1..4] == [0, 0, 0] => AddressClass::Reserved,
        // Only 2000::/3 is globally routed unicast; everything else is unassigned or special.
        0x2000..=0x3fff => AddressClass::Public,
        _ => AddressClass::Reserved,
    }
}

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

    fn class(ip: &str) -> AddressClass {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn addresses_are_classified_in_every_spelling() {
        use AddressClass::*;
        for (ip, expected) in [
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("172.15.255.255", Public),
            ("172.32.0.1", Public),
            ("100.63.255.255", Public),
            ("100.128.0.1", Public),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("10.0.0.5", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", Shared),
            ("100.127.255.254", Shared),
            ("169.254.169.254", LinkLocal),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Reserved),
            ("240.0.0.1", Reserved),
            ("192.0.2.10", Reserved),
            ("198.18.0.1", Reserved),
            ("203.0.113.7", Reserved),
            ("2606:4700:4700::1111", Public),
            ("::1", Loopback),
            ("::", Unspecified),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.0.0.5", Private),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:8.8.8.8", Public),
            ("::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("2002:a00:5::1", Private),
            ("2002:808:808::1", Public),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fc00::1", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("fec0::1", UniqueLocal),
            ("ff02::1", Multicast),
            ("2001:db8::1", Reserved),
            ("2001:0:4136:e378::1", Reserved),
            ("100::1", Reserved),
            ("4000::1", Reserved),
        ] {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

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
