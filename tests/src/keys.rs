//! Key pairs in files for the interop tests: made with the system's `ssh-keygen`, read
//! back, and the RSA host key that every OpenSSH server of one test process shares.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::peers::{Peer, TempDir, require, run};

/// A key pair in files: the private key's path and the public key's one line.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// The key's algorithm name, as in the public key line (`ssh-ed25519`, `ssh-rsa`, ...).
    pub algorithm: String,
    /// The private key file, in OpenSSH's format (Dropbear's format for Dropbear's host key).
    pub private_key: PathBuf,
    /// The public key as one `authorized_keys` line: `ALGORITHM BASE64 COMMENT`.
    pub public_key: String,
}

/// Generates a key pair without a passphrase with the system's `ssh-keygen`, as
/// `dir/NAME` and `dir/NAME.pub`. `key_type` is `ed25519`, `rsa` or `ecdsa`.
/// Returns `None` (or panics under CI) when `ssh-keygen` is missing.
pub fn keygen(dir: &Path, name: &str, key_type: &str) -> Option<KeyPair> {
    let ssh_keygen = require(Peer::SshKeygen)?;
    let private_key = dir.join(name);
    let out = run(
        Command::new(ssh_keygen)
            .args(["-q", "-t", key_type, "-N", "", "-C", name, "-f"])
            .arg(&private_key),
        Duration::from_secs(60),
    );
    assert!(out.success(), "ssh-keygen failed: {out}");
    Some(read_key_pair(private_key))
}

/// The key pair in `private_key` and the `.pub` file beside it.
pub fn read_key_pair(private_key: PathBuf) -> KeyPair {
    let public_path = PathBuf::from(format!("{}.pub", private_key.display()));
    let public_key = fs::read_to_string(&public_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", public_path.display()))
        .trim()
        .to_owned();
    let algorithm = public_key
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    KeyPair {
        algorithm,
        private_key,
        public_key,
    }
}

/// The RSA host key, made once per test process: generating one takes about a second,
/// against milliseconds for Ed25519 and ECDSA. Holds (private file text, public line).
pub(crate) fn shared_rsa_host_key() -> Option<&'static (String, String)> {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    if let Some(key) = KEY.get() {
        return Some(key);
    }
    let dir = TempDir::new("rsa");
    let pair = keygen(dir.path(), "ssh_host_rsa_key", "rsa")?;
    let private = fs::read_to_string(&pair.private_key).expect("read RSA host key");
    Some(KEY.get_or_init(|| (private, pair.public_key)))
}

/// How long a key conversion may take.
const CONVERT_TIMEOUT: Duration = Duration::from_secs(30);

impl KeyPair {
    /// The private key converted for Dropbear's `dbclient` with `dropbearconvert`, as
    /// `NAME.dropbear` beside it: dbclient reads no OpenSSH key files.
    pub fn in_dropbear_format(&self, dropbearconvert: &Path) -> PathBuf {
        let converted = PathBuf::from(format!("{}.dropbear", self.private_key.display()));
        let out = run(
            Command::new(dropbearconvert)
                .args(["openssh", "dropbear"])
                .arg(&self.private_key)
                .arg(&converted),
            CONVERT_TIMEOUT,
        );
        assert!(out.success(), "dropbearconvert: {out}");
        converted
    }

    /// The private key converted for PuTTY's `plink` with `puttygen`, as `NAME.ppk` beside
    /// it.
    pub fn in_putty_format(&self, puttygen: &Path) -> PathBuf {
        let ppk = PathBuf::from(format!("{}.ppk", self.private_key.display()));
        let out = run(
            Command::new(puttygen)
                .arg(&self.private_key)
                .args(["-O", "private", "-o"])
                .arg(&ppk),
            CONVERT_TIMEOUT,
        );
        assert!(out.success(), "puttygen: {out}");
        ppk
    }
}
