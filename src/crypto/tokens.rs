//! Tokens: random ones, ones derived from the master key, and the HMAC they and signatures use.

use rand::RngCore;
use secrecy::ExposeSecret;

use super::MasterKey;

impl MasterKey {
    /// `prefix` followed by `bytes` bytes (at most 32) of HMAC-SHA256 of `input` under the
    /// current master key, in hex: the same input always gives the same token, and nobody
    /// without the key can guess it. `input` should name its purpose, so tokens of different
    /// uses differ.
    pub fn derived_token(&self, prefix: &str, input: &str, bytes: usize) -> String {
        use hmac::Mac;
        let digest = hmac_sha256(self.0.current.bytes.expose_secret(), &[input.as_bytes()])
            .finalize()
            .into_bytes();
        format!(
            "{prefix}{}",
            hex::encode(&digest[..bytes.min(digest.len())])
        )
    }
}
/// `prefix` followed by `bytes` random bytes in hex: api keys, url ids, JWT secrets.
pub fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    format!("{prefix}{}", hex::encode(buf))
}

/// HMAC-SHA256 over the parts, in order, under `key` (Stripe's webhook signatures, our
/// notifications' and derived tokens); finalize it, or `verify_slice` in constant time.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> hmac::Hmac<sha2::Sha256> {
    use hmac::Mac;
    // HMAC hashes a long key and pads a short one: every length is valid, whoever chose it.
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    for part in parts {
        mac.update(part);
    }
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tokens_are_stable_per_key_and_input() {
        let key = MasterKey::generate();
        let token = key.derived_token("wh_", "url_id\0t1\0k1", 16);
        assert_eq!(token, key.derived_token("wh_", "url_id\0t1\0k1", 16));
        assert_eq!(token.len(), 3 + 32);
        assert_ne!(token, key.derived_token("wh_", "url_id\0t1\0k2", 16));
        assert_ne!(
            token,
            MasterKey::generate().derived_token("wh_", "url_id\0t1\0k1", 16)
        );
    }
}
