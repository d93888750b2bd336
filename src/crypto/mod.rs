//! Secrets at rest: tenants' Stripe keys, JWT secrets, webhook and notification signing
//! secrets and saved idempotent answers are stored as AES-256-GCM ciphertexts under the master
//! key, and random tokens are made here.
//!
//! A ciphertext names the key that sealed it: `mk1:<key id>:<base64(nonce || ciphertext)>`,
//! the key id being 8 hex digits derived from the key itself. So a new master key can be rolled
//! (`sales-block rotate-master-key`) while the previous ones still decrypt what they sealed.
//! Values written before key ids existed (bare base64, which never contains `:`) are read with
//! the current key, then the previous ones.

use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::{ExposeSecret, SecretBox};

mod keyfile;
mod tokens;

pub use tokens::{hmac_sha256, random_token};

const NONCE_LEN: usize = 12;

/// The format tag of a ciphertext that names its key.
const VERSION_TAG: &str = "mk1";

/// One master key: its bytes (zeroed on drop, never printed) and its id.
struct KeyMaterial {
    id: String,
    bytes: SecretBox<[u8; 32]>,
}

impl KeyMaterial {
    fn new(bytes: [u8; 32]) -> Self {
        use hmac::Mac;
        let digest = hmac_sha256(&bytes, &[b"sales-block master key id"])
            .finalize()
            .into_bytes();
        Self {
            id: hex::encode(&digest[..4]),
            bytes: SecretBox::new(Box::new(bytes)),
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.bytes.expose_secret()))
    }

    fn open(&self, sealed: &[u8]) -> anyhow::Result<String> {
        if sealed.len() <= NONCE_LEN {
            bail!("stored secret is too short");
        }
        let (nonce, sealed) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into()?;
        let plain = self
            .cipher()
            .decrypt(&Nonce::from(nonce), sealed)
            .map_err(|_| {
                anyhow::anyhow!(
                    "stored secret does not decrypt under master key {}",
                    self.id
                )
            })?;
        String::from_utf8(plain).context("stored secret is not UTF-8")
    }
}

struct Keyring {
    current: KeyMaterial,
    /// Keys rolled away from: they still decrypt, never encrypt.
    previous: Vec<KeyMaterial>,
}

/// The key that encrypts every stored secret, with the previous keys that still decrypt.
/// `Debug` prints key ids only.
#[derive(Clone)]
pub struct MasterKey(Arc<Keyring>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let previous: Vec<&str> = self.0.previous.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("MasterKey")
            .field("id", &self.0.current.id)
            .field("previous", &previous)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    fn single(bytes: [u8; 32]) -> Self {
        Self(Arc::new(Keyring {
            current: KeyMaterial::new(bytes),
            previous: Vec::new(),
        }))
    }

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
        Ok(Self::single(bytes))
    }

    pub fn generate() -> Self {
        Self::single(Aes256Gcm::generate_key(OsRng).into())
    }

    /// The current key in base64: for handing a generated key to an operator or a test.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0.current.bytes.expose_secret())
    }

    /// The current key's id (what its ciphertexts carry).
    pub fn id(&self) -> &str {
        &self.0.current.id
    }

    /// This key, with `previous` (comma-separated base64 keys; blanks ignored) accepted for
    /// decryption only.
    pub fn with_previous(self, previous: &str) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        for (n, encoded) in previous.split(',').map(str::trim).enumerate() {
            if encoded.is_empty() {
                continue;
            }
            let key = Self::from_base64(encoded)
                .with_context(|| format!("previous master key #{}", n + 1))?;
            keys.push(key);
        }
        self.with_previous_keys(keys)
    }

    /// This key with other keys' current keys accepted for decryption only.
    pub fn with_previous_keys(self, others: Vec<MasterKey>) -> anyhow::Result<Self> {
        let ring = Arc::try_unwrap(self.0).map_err(|_| anyhow::anyhow!("master key in use"))?;
        let mut previous = ring.previous;
        for other in others {
            let other =
                Arc::try_unwrap(other.0).map_err(|_| anyhow::anyhow!("master key in use"))?;
            for key in std::iter::once(other.current).chain(other.previous) {
                if key.id != ring.current.id && previous.iter().all(|p| p.id != key.id) {
                    previous.push(key);
                }
            }
        }
        Ok(Self(Arc::new(Keyring {
            current: ring.current,
            previous,
        })))
    }

    /// `mk1:<key id>:base64(nonce || ciphertext)` under the current key.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let key = &self.0.current;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption with a fresh nonce and an in-memory buffer cannot fail.
        let sealed = key
            .cipher()
            .encrypt(&nonce, plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{VERSION_TAG}:{}:{}", key.id, B64.encode(out))
    }

    /// Decrypts with the key the value names (current or previous); a value without a key id
    /// (written before they existed) with the current key, then the previous ones.
    pub fn decrypt(&self, stored: &str) -> anyhow::Result<String> {
        let ring = &self.0;
        match stored.split_once(':') {
            Some((VERSION_TAG, rest)) => {
                let (id, encoded) = rest
                    .split_once(':')
                    .context("stored secret has a key id but no ciphertext")?;
                let bytes = B64.decode(encoded).context("stored secret is not base64")?;
                let key = std::iter::once(&ring.current)
                    .chain(&ring.previous)
                    .find(|k| k.id == id)
                    .with_context(|| {
                        format!(
                            "stored secret is sealed with master key {id}, which is not configured \
                             (current {}; add it to SALES_MASTER_KEY_PREVIOUS)",
                            ring.current.id
                        )
                    })?;
                key.open(&bytes)
            }
            Some((other, _)) => bail!("stored secret has an unknown format ({other:?})"),
            None => {
                let bytes = B64.decode(stored).context("stored secret is not base64")?;
                let mut last = None;
                for key in std::iter::once(&ring.current).chain(&ring.previous) {
                    match key.open(&bytes) {
                        Ok(plain) => return Ok(plain),
                        Err(err) => last = Some(err),
                    }
                }
                Err(last.unwrap_or_else(|| anyhow::anyhow!("no master key")))
            }
        }
    }

    /// Whether `stored` is sealed with the current key (a rotation leaves it as it is).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(VERSION_TAG)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(id, _)| id == self.0.current.id)
    }
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
    fn a_master_key_must_be_32_bytes() {
        assert!(MasterKey::from_base64(&B64.encode([1u8; 16])).is_err());
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(again.decrypt(&key.encrypt("x")).unwrap(), "x");
    }

    #[test]
    fn ciphertexts_name_their_key_and_previous_keys_still_decrypt() {
        let old = MasterKey::generate();
        let sealed = old.encrypt("whsec_abc");
        assert!(
            sealed.starts_with(&format!("mk1:{}:", old.id())),
            "{sealed}"
        );
        assert!(old.is_current(&sealed));

        let new = MasterKey::generate();
        let err = new.decrypt(&sealed).unwrap_err().to_string();
        assert!(err.contains(old.id()), "{err}");

        let rolled = MasterKey::from_base64(&new.to_base64())
            .unwrap()
            .with_previous(&format!(" , {}", old.to_base64()))
            .unwrap();
        assert_eq!(rolled.id(), new.id());
        assert_eq!(rolled.decrypt(&sealed).unwrap(), "whsec_abc");
        assert!(!rolled.is_current(&sealed));
        let resealed = rolled.encrypt("whsec_abc");
        assert!(rolled.is_current(&resealed));
        assert_eq!(new.decrypt(&resealed).unwrap(), "whsec_abc");
        assert!(old.decrypt(&resealed).is_err());
        assert!(rolled.with_previous("not base64!").is_err());
    }

    #[test]
    fn values_sealed_before_key_ids_decrypt_with_the_current_or_a_previous_key() {
        let old = MasterKey::generate();
        // What the first version wrote: bare base64(nonce || ciphertext).
        let legacy = old
            .encrypt("sk_test_1")
            .rsplit(':')
            .next()
            .unwrap()
            .to_owned();
        assert!(!legacy.contains(':'));
        assert_eq!(old.decrypt(&legacy).unwrap(), "sk_test_1");
        assert!(!old.is_current(&legacy));
        let rolled = MasterKey::generate()
            .with_previous(&old.to_base64())
            .unwrap();
        assert_eq!(rolled.decrypt(&legacy).unwrap(), "sk_test_1");
        assert!(MasterKey::generate().decrypt(&legacy).is_err());
        assert!(old.decrypt("mk9:abcd:xyz").is_err());
    }

    #[test]
    fn debug_prints_key_ids_but_no_key_material() {
        let old = MasterKey::generate();
        let key = MasterKey::generate()
            .with_previous(&old.to_base64())
            .unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert!(
            shown.contains(key.id()) && shown.contains(old.id()),
            "{shown}"
        );
        for secret in [key.to_base64(), old.to_base64()] {
            assert!(!shown.contains(&secret), "{shown}");
            assert!(!shown.contains(&secret[..12]), "{shown}");
        }
    }
}
