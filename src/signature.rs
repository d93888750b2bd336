//! `Stripe-Signature` verification (STRIPE_RULES.md, Webhook signatures): HMAC-SHA256 of
//! `<t>.<raw body>`, every `v1` value compared in constant time against every active secret,
//! 300 s tolerance, other schemes ignored.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Stripe's default tolerance; never 0.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature's timestamp is outside the {TOLERANCE_SECS} s tolerance")]
    Stale,
    #[error("no v1 signature matches this endpoint's signing secrets")]
    Mismatch,
}

/// `t=<unix>,v1=<hex>` for `body` with `secret` (what Stripe sends; used by tests and tools).
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let t = timestamp.to_string();
    crate::crypto::hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", body])
}

pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return Err(SignatureError::Malformed("expected key=value pairs"));
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed("more than one t"));
                }
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed("t is not a unix timestamp"))?,
                );
            }
            // A v1 value that is not hex can never match; keep looking at the others.
            "v1" => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t"))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let matches = secrets.iter().any(|secret| {
        signatures
            .iter()
            .any(|sig| mac(secret, timestamp, body).verify_slice(sig).is_ok())
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1"}"#;

    #[test]
    fn a_signature_verifies_with_any_active_secret_and_only_within_tolerance() {
        let secrets = vec!["whsec_new".to_owned(), "whsec_old".to_owned()];
        let header = sign(BODY, "whsec_old", 1_000);
        assert_eq!(verify(Some(&header), BODY, &secrets, 1_000), Ok(()));
        assert_eq!(verify(Some(&header), BODY, &secrets, 1_300), Ok(()));
        assert_eq!(
            verify(Some(&header), BODY, &secrets, 1_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(Some(&header), b"{\"id\":\"evt_2\"}", &secrets, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), BODY, &["whsec_other".to_owned()], 1_000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn several_v1_values_and_other_schemes_are_handled() {
        let good = sign(BODY, "whsec_a", 50);
        let v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t=50,v0=abc,v1=deadbeef,v1=zz,v1={v1}");
        assert_eq!(
            verify(Some(&header), BODY, &["whsec_a".to_owned()], 50),
            Ok(())
        );
        assert_eq!(verify(None, BODY, &[], 50), Err(SignatureError::Missing));
        for bad in [
            "",
            "t=50",
            "v1=abc",
            "t=x,v1=abc",
            "garbage",
            "t=1,t=2,v1=ab",
        ] {
            assert!(
                matches!(
                    verify(Some(bad), BODY, &["s".to_owned()], 50),
                    Err(SignatureError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }
}
