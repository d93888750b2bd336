//! Where the master key comes from: the settings, or a key file made on first use outside
//! production.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use secrecy::ExposeSecret;

use super::MasterKey;

impl MasterKey {
    /// The key configured in `settings` (`master_key`, plus `master_key_previous` for
    /// decryption). Without one: in production an error, otherwise the key kept in
    /// `master_key_file`, created there on first use.
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<Self> {
        let configured = settings.master_key.expose_secret();
        if configured.trim().is_empty() && settings.is_production() {
            bail!(
                "no master key configured: in production (SALES_ENV=production or --production) \
                 set SALES_MASTER_KEY to 32 random bytes in base64 (e.g. `openssl rand -base64 32`); \
                 a key is generated into master_key_file only outside production"
            );
        }
        let key = Self::load_or_create(configured, &settings.master_key_file)
            .context("SALES_MASTER_KEY")?;
        key.with_previous(settings.master_key_previous.expose_secret())
            .context("SALES_MASTER_KEY_PREVIOUS")
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
}
