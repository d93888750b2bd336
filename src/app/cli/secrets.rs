//! Secrets given to the CLI: read from a file or from stdin (`-`), never needed on the
//! command line, where they would show in `ps` and the shell's history.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, bail};
use secrecy::SecretString;

/// The most read from a secret's file or stdin: a secret is short; this is not one.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Reads a secret from `path`, or from stdin when it is `-` (on a terminal: a prompt, the
/// input not echoed). The line break ending it (`\n` or `\r\n`, as `echo` and editors leave
/// it) is trimmed; an empty secret is refused. `what` names it in messages.
pub(super) fn read_secret(path: &Path, what: &str) -> anyhow::Result<SecretString> {
    let text = if path == Path::new("-") {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            rpassword::prompt_password(format!("{what}: "))
                .with_context(|| format!("reading {what} from the terminal"))?
        } else {
            read_bounded(stdin.lock(), what, "stdin")?
        }
    } else {
        let file = std::fs::File::open(path)
            .with_context(|| format!("reading {what} from {}", path.display()))?;
        read_bounded(file, what, &path.display().to_string())?
    };
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.trim().is_empty() {
        bail!("{what}: nothing was read");
    }
    Ok(SecretString::from(secret.to_owned()))
}

fn read_bounded(source: impl Read, what: &str, from: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    source
        .take(MAX_SECRET_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {what} from {from} (text expected)"))?;
    if text.len() as u64 > MAX_SECRET_BYTES {
        bail!("{what}: {from} holds more than {MAX_SECRET_BYTES} bytes, not a secret");
    }
    Ok(text)
}

/// A Stripe key given either way: `--<flag>-file` (preferred), or the older `--<flag>` on the
/// command line, which is still taken for test-mode keys (scripts and the emulator use it;
/// a warning is printed) and refused for live ones.
pub(super) fn stripe_key(
    flag: &str,
    on_command_line: Option<String>,
    file: Option<&Path>,
) -> anyhow::Result<SecretString> {
    match (on_command_line, file) {
        (_, Some(path)) => read_secret(path, "the Stripe secret key"),
        (Some(key), None) => {
            if crate::tenants::is_live_key(key.trim()) {
                bail!(
                    "--{flag} with a live key: it would show in `ps` and the shell's history. Pass \
                     it with --{flag}-file - (stdin) or --{flag}-file PATH"
                );
            }
            eprintln!(
                "warning: --{flag} shows the key in `ps` and the shell's history; prefer \
                 --{flag}-file - (stdin) or --{flag}-file PATH (live keys are only taken that way)"
            );
            Ok(SecretString::from(key))
        }
        (None, None) => bail!("give the Stripe key with --{flag}-file - (stdin) or a file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_file_loses_its_line_break_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "sk_test_abc\r\n").unwrap();
        let read = read_secret(&path, "the key").unwrap();
        assert_eq!(read.expose_secret(), "sk_test_abc");
        std::fs::write(&path, " spaced secret ").unwrap();
        assert_eq!(
            read_secret(&path, "the key").unwrap().expose_secret(),
            " spaced secret "
        );
    }

    #[test]
    fn empty_missing_or_huge_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "\n").unwrap();
        let err = read_secret(&path, "the key").unwrap_err().to_string();
        assert!(err.contains("nothing was read"), "{err}");
        let err = format!(
            "{:#}",
            read_secret(&dir.path().join("none"), "the key").unwrap_err()
        );
        assert!(err.contains("reading the key from"), "{err}");
        std::fs::write(&path, vec![b'a'; 70 * 1024]).unwrap();
        let err = read_secret(&path, "the key").unwrap_err().to_string();
        assert!(err.contains("not a secret"), "{err}");
    }

    #[test]
    fn a_live_key_on_the_command_line_is_refused() {
        let err = stripe_key("stripe-secret-key", Some("sk_live_abc".into()), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--stripe-secret-key-file -"), "{err}");
        let test = stripe_key("stripe-secret-key", Some("sk_test_abc".into()), None).unwrap();
        assert_eq!(test.expose_secret(), "sk_test_abc");
    }
}
