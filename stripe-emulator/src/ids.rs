//! Identifiers and timestamps shaped like Stripe's.

use rand::Rng;
use rand::distr::Alphanumeric;

/// `n` random ASCII letters and digits.
pub fn random_alnum(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// An id such as `cus_NffrFeUfNV2Hib`: the prefix, `_`, then 14 random alphanumerics
/// (customers, requests, ...).
pub fn short_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_alnum(14))
}

/// An id such as `pm_1Pgc75B7WZ01zgkWlHVgdEGJ`: the prefix, `_1`, then 23 random
/// alphanumerics (payment methods, sessions, intents, ...).
pub fn long_id(prefix: &str) -> String {
    format!("{prefix}_1{}", random_alnum(23))
}

/// A request id: `req_` and 14 alphanumerics.
pub fn request_id() -> String {
    short_id("req")
}

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An invoice prefix like Stripe's: 8 upper-case hexadecimal characters.
pub fn invoice_prefix() -> String {
    let n: u32 = rand::rng().random();
    format!("{n:08X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let id = short_id("cus");
        assert!(id.starts_with("cus_"));
        assert_eq!(id.len(), 4 + 14);
        assert!(id[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        let id = long_id("pm");
        assert!(id.starts_with("pm_1"));
        assert_eq!(id.len(), 3 + 24);
        assert_eq!(invoice_prefix().len(), 8);
    }
}
