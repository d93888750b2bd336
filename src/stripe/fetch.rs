//! A call passed through to Stripe as a tenant's admin wrote it (`POST /stripe/fetch`): its
//! method, and a path that by construction can only name an endpoint of Stripe's API under
//! `/v1` on the host the tenant's client is bound to. Which of those may be called is the
//! service's allow-list (`services::fetch`), not this module's.

/// The methods Stripe's API uses; nothing else is passed through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMethod {
    Get,
    Post,
    Delete,
}

impl FetchMethod {
    /// `GET`, `POST` or `DELETE`, in any case; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Get, Self::Post, Self::Delete]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(raw))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }
}

/// The longest path accepted, in bytes (Stripe's longest paths are well under 100).
pub const MAX_PATH_BYTES: usize = 256;
/// The most segments after `/v1` (`/v1/payment_intents/{id}/confirm` has 3).
pub const MAX_SEGMENTS: usize = 5;

/// `/v1/<segment>[/<segment>...]`, each segment ASCII letters, digits and `_` only. Nothing a
/// URL parser or server could read as another host, another directory or a query survives
/// this: no `.`, `%`, `@`, `\`, `:`, `?`, `#`, whitespace or non-ASCII byte, no empty segment
/// (`//`, a trailing `/`). Case is kept: `/v1/CUSTOMERS` is a path no allow-list names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPath {
    segments: Vec<String>,
}

impl FetchPath {
    /// Parses a path exactly as given (nothing trimmed, decoded or folded); the error says
    /// what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.len() > MAX_PATH_BYTES {
            return Err("is longer than 256 bytes");
        }
        let Some(rest) = raw.strip_prefix("/v1/") else {
            return Err("must start with /v1/");
        };
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.len() > MAX_SEGMENTS {
            return Err("has more than 5 segments after /v1");
        }
        for segment in &segments {
            if segment.is_empty() {
                return Err("has an empty segment (a // or a trailing /)");
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(
                    "may hold only ASCII letters, digits and _ between its slashes (no dots, percent-escapes, ?, #, @, \\, spaces or other characters)",
                );
            }
        }
        Ok(Self {
            segments: segments.into_iter().map(str::to_owned).collect(),
        })
    }

    /// The segments after `/v1`.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The path under `/v1`, as Stripe clients append it to their base (`/customers/cus_1`).
    pub fn api_path(&self) -> String {
        self.segments.iter().fold(String::new(), |mut path, s| {
            path.push('/');
            path.push_str(s);
            path
        })
    }
}

impl std::fmt::Display for FetchPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/v1{}", self.api_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_three_methods_parse() {
        assert_eq!(FetchMethod::parse("GET"), Some(FetchMethod::Get));
        assert_eq!(FetchMethod::parse("post"), Some(FetchMethod::Post));
        assert_eq!(FetchMethod::parse("Delete"), Some(FetchMethod::Delete));
        for other in [
            "PUT", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "", " GET", "GET ",
        ] {
            assert_eq!(FetchMethod::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_plain_path_parses_and_keeps_its_segments() {
        let path = FetchPath::parse("/v1/payment_intents/pi_1AbC/confirm").unwrap();
        assert_eq!(path.segments(), ["payment_intents", "pi_1AbC", "confirm"]);
        assert_eq!(path.api_path(), "/payment_intents/pi_1AbC/confirm");
        assert_eq!(path.to_string(), "/v1/payment_intents/pi_1AbC/confirm");
    }

    #[test]
    fn paths_that_could_leave_v1_or_the_host_are_refused() {
        let long = format!("/v1/customers/{}", "a".repeat(300));
        for raw in [
            "",
            "/",
            "/v1",
            "/v1/",
            "v1/customers",
            "/v2/customers",
            "/V1/customers",
            "//evil.example/v1/customers",
            "/v1//customers",
            "/v1/customers/",
            "/v1/customers/../accounts",
            "/v1/customers/%2e%2e/accounts",
            "/v1/customers%2Fcus_1",
            "/v1/customers/cus_1?expand[]=x",
            "/v1/customers#x",
            "/v1/customers/cus_1@evil.example",
            "/v1/customers\\cus_1",
            "/v1/customers/cus 1",
            " /v1/customers",
            "/v1/customers\n",
            "/v1/customers/cüs_1",
            "/v1/customers/cus-1",
            "/v1/customers/cus.1",
            "/v1/a/b/c/d/e/f",
            "@evil.example/v1/customers",
            "http://evil.example/v1/customers",
            long.as_str(),
        ] {
            assert!(FetchPath::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }
}
