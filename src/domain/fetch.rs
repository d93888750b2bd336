//! What `POST /stripe/fetch` may pass through: allow-lists of `METHOD /v1/...` rules (the
//! operator's `fetch_allowed`, narrowed per tenant), and the paths no list can open.

use crate::stripe::fetch::{FetchMethod, FetchPath};

/// First path segments never passed through, whatever a list says: Connect OAuth, the
/// account itself and its sessions and links, webhook endpoints (their signing secrets are
/// this service's), and money leaving the account. Compared in lower case, as prefixes.
const NEVER: [&str; 5] = ["oauth", "account", "webhook_endpoint", "transfer", "payout"];

/// Whether no list may ever admit this path.
pub fn never_allowed(path: &FetchPath) -> bool {
    path.segments().first().is_some_and(|first| {
        let first = first.to_ascii_lowercase();
        NEVER.iter().any(|never| first.starts_with(never))
    })
}

/// One segment of a rule: a word, or `{id}`, which stands for one Stripe object id.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Word(String),
    Id,
}

/// `GET /v1/customers/{id}`: a method and a path whose `{id}` segments match a Stripe object
/// id (a lower-case prefix, `_`, then letters, digits and `_`: `cus_9s6XKzkNRiz8i3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    method: FetchMethod,
    segments: Vec<Segment>,
}

impl Rule {
    /// Parses `METHOD /v1/word/{id}/...`; the error says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (method, path) = raw
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("{raw:?} is not `METHOD /v1/...`"))?;
        let method = FetchMethod::parse(method)
            .ok_or_else(|| format!("{raw:?}: the method must be GET, POST or DELETE"))?;
        let rest = path
            .trim()
            .strip_prefix("/v1/")
            .ok_or_else(|| format!("{raw:?}: the path must start with /v1/"))?;
        let mut segments = Vec::new();
        for (i, part) in rest.split('/').enumerate() {
            let segment = if part == "{id}" && i > 0 {
                Segment::Id
            } else if !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                Segment::Word(part.to_owned())
            } else {
                return Err(format!(
                    "{raw:?}: each segment is a lower-case word or {{id}} (not the first)"
                ));
            };
            segments.push(segment);
        }
        let rule = Self { method, segments };
        if rule.is_never_allowed() {
            return Err(format!("{raw:?} can never be allowed"));
        }
        Ok(rule)
    }

    fn is_never_allowed(&self) -> bool {
        match self.segments.first() {
            Some(Segment::Word(first)) => NEVER.iter().any(|never| first.starts_with(never)),
            _ => true,
        }
    }

    /// Whether this rule admits the call.
    pub fn admits(&self, method: FetchMethod, path: &FetchPath) -> bool {
        self.method == method
            && self.segments.len() == path.segments().len()
            && self
                .segments
                .iter()
                .zip(path.segments())
                .all(|(rule, segment)| match rule {
                    Segment::Word(word) => word == segment,
                    Segment::Id => is_object_id(segment),
                })
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} /v1", self.method.as_str())?;
        for segment in &self.segments {
            match segment {
                Segment::Word(word) => write!(f, "/{word}")?,
                Segment::Id => f.write_str("/{id}")?,
            }
        }
        Ok(())
    }
}

/// A Stripe object id as a path segment: a lower-case prefix, `_`, then the rest (so `{id}`
/// never stands for a word such as `search`, which a narrower list may leave out).
fn is_object_id(segment: &str) -> bool {
    segment.split_once('_').is_some_and(|(prefix, rest)| {
        !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_lowercase()) && !rest.is_empty()
    })
}

/// A list of rules; a call is allowed when one of them admits it and it is not
/// [`never_allowed`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<Rule>,
}

impl AllowList {
    /// The operator's `fetch_allowed`, parsed; a bad rule (or one naming a path that is never
    /// allowed) is an error at start.
    pub fn of_settings(settings: &crate::config::Settings) -> anyhow::Result<Self> {
        Self::parse(&settings.fetch_allowed).map_err(|err| anyhow::anyhow!("fetch_allowed: {err}"))
    }

    /// Parses every rule; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, String> {
        let rules = raw
            .iter()
            .map(|r| Rule::parse(r.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    pub fn admits(&self, method: FetchMethod, path: &FetchPath) -> bool {
        !never_allowed(path) && self.rules.iter().any(|rule| rule.admits(method, path))
    }

    /// Whether `rule` is one of this list's (a tenant's list may only narrow the operator's).
    pub fn contains(&self, rule: &Rule) -> bool {
        self.rules.contains(rule)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules as `METHOD /v1/...` lines (how a tenant's list is stored).
    pub fn to_lines(&self) -> Vec<String> {
        self.rules.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str) -> FetchPath {
        FetchPath::parse(raw).unwrap()
    }

    #[test]
    fn a_rule_admits_its_method_and_path_with_any_object_id() {
        let list = AllowList::parse(&[
            "GET /v1/customers/{id}",
            "POST /v1/payment_intents/{id}/confirm",
        ])
        .unwrap();
        assert!(list.admits(FetchMethod::Get, &path("/v1/customers/cus_9s6XKzkNRiz8i3")));
        assert!(list.admits(FetchMethod::Post, &path("/v1/payment_intents/pi_1/confirm")));
        // Another method, the collection, a word where the id goes, another case.
        assert!(!list.admits(FetchMethod::Delete, &path("/v1/customers/cus_1")));
        assert!(!list.admits(FetchMethod::Get, &path("/v1/customers")));
        assert!(!list.admits(FetchMethod::Get, &path("/v1/customers/search")));
        assert!(!list.admits(FetchMethod::Get, &path("/v1/CUSTOMERS/cus_1")));
        assert!(!list.admits(FetchMethod::Get, &path("/v1/customers/CUS_1")));
        assert!(!list.admits(FetchMethod::Post, &path("/v1/payment_intents/pi_1/capture")));
    }

    #[test]
    fn rules_that_name_a_forbidden_path_do_not_parse() {
        for raw in [
            "GET /v1/accounts",
            "GET /v1/account",
            "POST /v1/account_links",
            "POST /v1/oauth/token",
            "GET /v1/webhook_endpoints/{id}",
            "POST /v1/transfers",
            "POST /v1/payouts",
            "GET /v1/{id}",
            "PUT /v1/customers",
            "GET /v2/customers",
            "GET /v1/customers/",
            "GET /v1/Customers",
            "GET",
        ] {
            assert!(Rule::parse(raw).is_err(), "{raw:?} parsed");
        }
    }

    #[test]
    fn forbidden_paths_are_refused_in_any_case() {
        for raw in [
            "/v1/accounts",
            "/v1/Accounts/acct_1",
            "/v1/OAUTH/token",
            "/v1/payouts",
        ] {
            assert!(never_allowed(&path(raw)), "{raw}");
        }
        assert!(!never_allowed(&path("/v1/customers")));
    }

    #[test]
    fn a_rule_prints_as_it_parses() {
        let rule = Rule::parse("DELETE /v1/subscriptions/{id}").unwrap();
        assert_eq!(rule.to_string(), "DELETE /v1/subscriptions/{id}");
        assert_eq!(Rule::parse(&rule.to_string()).unwrap(), rule);
    }
}
