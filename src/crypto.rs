//! Secrets at rest: tenants' Stripe keys, JWT secrets and webhook signing secrets are stored
//! as AES-256-GCM ciphertexts under the master key, and random tokens are made here.

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;

const NONCE_LEN: usize = 12;

/// The key that encrypts every stored secret. Never logged (no Debug of the bytes).
#[derive(Clone)]
pub struct MasterKey(Key<Aes256Gcm>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// From 32 bytes in base64.
    pub fn from_base64(encoded: &str) -> anyhow::Result<Self> {
        let bytes = B64
            .decode(encoded.trim())
            .context("the master key is not valid base64")?;
        if bytes.len() != 32 {
            bail!(
                "the master key must be 32 bytes (base64 of 32 random bytes), got {}",
                bytes.len()
            );
        }
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the master key must be 32 bytes"))?;
        Ok(Self(Key::<Aes256Gcm>::from(bytes)))
    }

    pub fn generate() -> Self {
        Self(Aes256Gcm::generate_key(OsRng))
    }

    pub fn to_base64(&self) -> String {
        B64.encode(&self.0[..])
    }

    /// The configured key, or the one kept in `file`, created there (mode 0600) on first use so
    /// that `cargo run` works with no set-up and keeps working across restarts.
    pub fn load_or_create(configured: &str, file: &Path) -> anyhow::Result<Self> {
        if !configured.trim().is_empty() {
            return Self::from_base64(configured);
        }
        if file.exists() {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading master key file {}", file.display()))?;
            return Self::from_base64(&text)
                .with_context(|| format!("master key file {}", file.display()));
        }
        if let Some(dir) = file.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let key = Self::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut out = options
            .open(file)
            .with_context(|| format!("creating master key file {}", file.display()))?;
        out.write_all(key.to_base64().as_bytes())?;
        tracing::warn!(
            path = %file.display(),
            "no master key configured: generated one; set SALES_MASTER_KEY in production"
        );
        Ok(key)
    }

    /// `base64(nonce || ciphertext)`.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let cipher = Aes256Gcm::new(&self.0);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption with a fresh nonce and an in-memory buffer cannot fail.
        let sealed = cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        B64.encode(out)
    }

    pub fn decrypt(&self, stored: &str) -> anyhow::Result<String> {
        let bytes = B64.decode(stored).context("stored secret is not base64")?;
        if bytes.len() <= NONCE_LEN {
            bail!("stored secret is too short");
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into()?;
        let plain = Aes256Gcm::new(&self.0)
            .decrypt(&Nonce::from(nonce), sealed)
            .map_err(|_| anyhow::anyhow!("stored secret does not decrypt under this master key"))?;
        String::from_utf8(plain).context("stored secret is not UTF-8")
    }
}

impl MasterKey {
    /// `prefix` followed by `bytes` bytes (at most 32) of HMAC-SHA256 of `input` under the
    /// master key, in hex: the same input always gives the same token, and nobody without the
    /// key can guess it. `input` should name its purpose, so tokens of different uses differ.
    pub fn derived_token(&self, prefix: &str, input: &str, bytes: usize) -> String {
        use hmac::Mac;
        let digest = hmac_sha256(&self.0[..], &[input.as_bytes()])
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
    fn a_secret_round_trips_and_fails_under_another_key() {
        let key = MasterKey::generate();
        let sealed = key.encrypt("sk_test_123");
        assert_ne!(sealed, "sk_test_123");
        assert_eq!(key.decrypt(&sealed).unwrap(), "sk_test_123");
        assert!(MasterKey::generate().decrypt(&sealed).is_err());
    }

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

    #[test]
    fn a_master_key_must_be_32_bytes() {
        assert!(MasterKey::from_base64(&B64.encode([1u8; 16])).is_err());
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(again.decrypt(&key.encrypt("x")).unwrap(), "x");
    }
}
