//! Parsed request values: once a value is one of these types, nobody checks it again.

use crate::error::ApiError;

pub mod billing;
pub mod fetch;
pub mod ids;
pub mod paging;
pub mod time;

pub use billing::{
    METADATA_MAX_KEY_CHARS, METADATA_MAX_KEYS, METADATA_MAX_VALUE_CHARS, Metadata, currency,
    currency_field, required_currency,
};
pub use ids::stripe_id;

/// A plausible email address (Stripe validates deliverability; we refuse obvious typos early).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str, pointer: &str) -> Result<Self, ApiError> {
        let email = raw.trim();
        let valid = email.len() <= 512
            && !email.chars().any(char::is_whitespace)
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if valid {
            Ok(Self(email.to_owned()))
        } else {
            Err(ApiError::validation(
                pointer,
                format!("{raw:?} is not a valid email address"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute http(s) URL, e.g. a portal `return_url`.
pub fn parse_web_url(raw: &str, pointer: &str) -> Result<String, ApiError> {
    match url::Url::parse(raw.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
            Ok(raw.trim().to_owned())
        }
        _ => Err(ApiError::validation(
            pointer,
            format!("{raw:?} is not an absolute http(s) URL"),
        )),
    }
}

/// Trims an optional string and treats an empty one as absent; refuses overlong values.
pub fn optional_text(
    raw: Option<String>,
    pointer: &str,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    let Some(text) = raw.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > max_chars {
        return Err(ApiError::validation(
            pointer,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(Some(text))
}

/// For `#[serde(default, deserialize_with = "crate::domain::present")]` on an
/// `Option<Option<String>>`: `Some(None)` for an explicit null, `None` (by `default`) when the
/// key is absent, so a change can tell "clear it" from "leave it".
pub fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    <Option<String> as serde::Deserialize>::deserialize(d).map(Some)
}

/// An integer within bounds, with a detail that names them.
pub fn bounded(value: i64, min: i64, max: i64, pointer: &str, what: &str) -> Result<i64, ApiError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::validation(
            pointer,
            format!("{what} must be between {min} and {max} (got {value})"),
        ))
    }
}

/// A whole number from a query string within bounds (`default` when absent or empty); 400
/// `invalid_query` naming the parameter otherwise.
pub fn query_number(
    raw: Option<&str>,
    name: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(default);
    };
    match raw.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            format!("{name} must be a whole number from {min} to {max} (got {raw:?})"),
        )
        .with_parameter(name)),
    }
}

/// 23blocks paging (STRIPE_RULES.md, Lists): `page` from 1, `records` 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: i64,
    pub per_page: i64,
}

impl PageRequest {
    pub fn parse(
        page: Option<&str>,
        records: Option<&str>,
        default_records: i64,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            page: query_number(page, "page", 1, 1, 1_000_000)?,
            per_page: query_number(records, "records", default_records, 1, 100)?,
        })
    }

    /// Rows to skip.
    pub fn offset(self) -> i64 {
        (self.page - 1) * self.per_page
    }
}

/// A non-empty query parameter, trimmed.
pub fn query_text(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_for_shape() {
        assert!(Email::parse(" user@example.com ", "/e").is_ok());
        for bad in [
            "",
            "user",
            "user@",
            "@example.com",
            "a b@example.com",
            "user@localhost",
        ] {
            assert!(Email::parse(bad, "/e").is_err(), "{bad} accepted");
        }
    }
}
