//! `Stripe-Signature` verification (STRIPE_RULES.md, Webhook signatures): HMAC-SHA256 of
//! `<t>.<raw body>`, every `v1` value compared in constant time against every active secret,
//! 300 s tolerance, other schemes ignored. Bounded: the header is refused past
//! [`MAX_HEADER_BYTES`] or [`MAX_V1`] signatures before any HMAC is computed, and the HMAC of
//! the body is computed once per secret, however many `v1` values there are.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Stripe's default tolerance; never 0.
pub const TOLERANCE_SECS: i64 = 300;

/// The longest `Stripe-Signature` header accepted. Stripe's carries one `t` and a `v1` per
/// signing secret (two during a roll), about 150 bytes each.
pub const MAX_HEADER_BYTES: usize = 4096;

/// The most `v1` values accepted in one header (Stripe sends one per active secret).
pub const MAX_V1: usize = 8;

#[cfg(test)]
thread_local! {
    /// HMACs of a body computed on this thread (tests count them).
    static MACS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

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
    #[cfg(test)]
    MACS.with(|n| n.set(n.get() + 1));
    let t = timestamp.to_string();
    crate::crypto::hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", body])
}

/// Checks a `Stripe-Signature` header over `body` against `secrets` at `now` (unix seconds).
/// Costs at most one HMAC of the body per secret; a header over the caps costs none.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    if header.len() > MAX_HEADER_BYTES {
        return Err(SignatureError::Malformed("longer than 4096 bytes"));
    }
    let mut timestamp = None;
    let mut signatures: Vec<[u8; 32]> = Vec::new();
    let mut v1_count = 0;
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
            "v1" => {
                v1_count += 1;
                if v1_count > MAX_V1 {
                    return Err(SignatureError::Malformed("more than 8 v1 signatures"));
                }
                // A v1 value that is not the hex of 32 bytes can never match; keep looking at
                // the others.
                let mut sig = [0u8; 32];
                if hex::decode_to_slice(value, &mut sig).is_ok() {
                    signatures.push(sig);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t"))?;
    if v1_count == 0 {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    if signatures.is_empty() {
        return Err(SignatureError::Mismatch);
    }
    // One HMAC per secret; every candidate compared with it in constant time (no early exit
    // that would tell which byte or which candidate differed).
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let expected: [u8; 32] = mac(secret, timestamp, body).finalize().into_bytes().into();
        for sig in &signatures {
            matched |= expected[..].ct_eq(&sig[..]);
        }
    }
    if bool::from(matched) {
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

    fn macs_during(work: impl FnOnce()) -> usize {
        let before = MACS.with(std::cell::Cell::get);
        work();
        MACS.with(std::cell::Cell::get) - before
    }

    #[test]
    fn a_header_past_the_caps_is_refused_before_any_hmac() {
        let body = vec![b'x'; 1024 * 1024];
        let secrets = ["whsec_a".to_owned()];
        // The attack of issue 12: tens of thousands of empty v1 entries on a 1 MiB body.
        let flood = format!("t=50{}", ",v1=".repeat(30_000));
        let macs = macs_during(|| {
            assert_eq!(
                verify(Some(&flood), &body, &secrets, 50),
                Err(SignatureError::Malformed("longer than 4096 bytes"))
            );
        });
        assert_eq!(macs, 0);
        // Short enough, but nine v1 values.
        let wrong = "ab".repeat(32);
        let nine = format!("t=50{}", format!(",v1={wrong}").repeat(9));
        assert!(nine.len() < MAX_HEADER_BYTES);
        let macs = macs_during(|| {
            assert_eq!(
                verify(Some(&nine), &body, &secrets, 50),
                Err(SignatureError::Malformed("more than 8 v1 signatures"))
            );
        });
        assert_eq!(macs, 0);
        // Eight, one of them right, verifies.
        let good = sign(&body, "whsec_a", 50);
        let eight = format!("{good}{}", format!(",v1={wrong}").repeat(7));
        assert_eq!(verify(Some(&eight), &body, &secrets, 50), Ok(()));
    }

    #[test]
    fn the_body_is_hashed_once_per_secret_whatever_the_number_of_v1_values() {
        let wrong = "cd".repeat(32);
        let header = format!("t=50{}", format!(",v1={wrong}").repeat(MAX_V1));
        let secrets = [
            "whsec_a".to_owned(),
            "whsec_b".to_owned(),
            "whsec_c".to_owned(),
        ];
        let macs = macs_during(|| {
            assert_eq!(
                verify(Some(&header), BODY, &secrets, 50),
                Err(SignatureError::Mismatch)
            );
        });
        assert_eq!(macs, secrets.len());
        // No v1 that could ever match (empty, not hex, wrong length): no HMAC at all.
        let hopeless = "t=50,v1=,v1=zz,v1=abcd";
        let macs = macs_during(|| {
            assert_eq!(
                verify(Some(hopeless), BODY, &secrets, 50),
                Err(SignatureError::Mismatch)
            );
        });
        assert_eq!(macs, 0);
    }
}
