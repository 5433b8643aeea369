//! `gateway keygen`: writes a key pair that OpenSSH reads, as `ssh-keygen` does.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gateway::hostkeys::home_dir;
use gateway::prompt::Prompter;
use gateway::rng::OsRng;
use ssh_proto::crypto::default_provider;
use ssh_proto::userkey::{KeyKind, UserKey};
use zeroize::Zeroizing;

const USAGE: &str =
    "usage: gateway keygen [-t ed25519|ecdsa|rsa] [-b BITS] [-f FILE] [-N PASSPHRASE] [-C COMMENT]";

pub fn run(args: Vec<OsString>) -> Result<ExitCode, String> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let mut key_type = "ed25519".to_owned();
    let mut bits: Option<usize> = None;
    let mut file: Option<PathBuf> = None;
    let mut passphrase: Option<Zeroizing<String>> = None;
    let mut comment: Option<String> = None;
    let text =
        |v: OsString, what: &str| v.into_string().map_err(|_| format!("{what} is not UTF-8"));
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('t') => key_type = text(parser.value().map_err(|e| e.to_string())?, "key type")?,
            Short('b') => {
                let value = text(parser.value().map_err(|e| e.to_string())?, "bits")?;
                bits = Some(
                    value
                        .parse()
                        .map_err(|_| format!("bad number of bits '{value}'"))?,
                );
            }
            Short('f') => file = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?)),
            Short('N') => {
                let value = parser.value().map_err(|e| e.to_string())?;
                passphrase = Some(Zeroizing::new(text(value, "passphrase")?));
            }
            Short('C') => {
                comment = Some(text(parser.value().map_err(|e| e.to_string())?, "comment")?)
            }
            _ => return Err(format!("{}; {USAGE}", arg.unexpected())),
        }
    }

    let (kind, file_name) = match (key_type.as_str(), bits) {
        ("ed25519", None | Some(256)) => (KeyKind::Ed25519, "id_ed25519"),
        ("ecdsa", None | Some(256)) => (KeyKind::EcdsaP256, "id_ecdsa"),
        ("rsa", bits) => (
            KeyKind::Rsa {
                bits: bits.unwrap_or(3072),
            },
            "id_rsa",
        ),
        ("ed25519" | "ecdsa", Some(b)) => {
            return Err(format!("{key_type} keys have 256 bits, not {b}"));
        }
        (other, _) => {
            return Err(format!(
                "unknown key type '{other}': use ed25519, ecdsa or rsa"
            ));
        }
    };
    let file = file.unwrap_or_else(|| home_dir().join(".ssh").join(file_name));
    if file.exists() {
        return Err(format!(
            "{} already exists; remove it or choose another -f",
            file.display()
        ));
    }
    let comment = comment.unwrap_or_else(default_comment);
    let passphrase = match passphrase {
        Some(p) => p,
        None => ask_passphrase()?,
    };

    eprintln!("Generating a new {key_type} key pair.");
    let provider = default_provider();
    let key = UserKey::generate(provider, kind, &mut OsRng).map_err(|e| e.to_string())?;
    let secret = (!passphrase.is_empty()).then_some(passphrase.as_bytes());
    let private = key
        .to_openssh(&comment, secret, &mut OsRng)
        .map_err(|e| e.to_string())?;

    write_new(&file, private.as_bytes(), 0o600)?;
    let mut pub_file = file.clone().into_os_string();
    pub_file.push(".pub");
    let pub_file = PathBuf::from(pub_file);
    write_new(
        &pub_file,
        format!("{}\n", key.public_line(&comment)).as_bytes(),
        0o644,
    )?;

    println!("Your private key is in {}", file.display());
    println!("Your public key is in {}", pub_file.display());
    println!(
        "The key fingerprint is {} {comment}",
        key.public().fingerprint_sha256(provider)
    );
    Ok(ExitCode::SUCCESS)
}

/// `user@host`, as ssh-keygen's default comment.
fn default_comment() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "user".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{user}@{host}")
}

fn ask_passphrase() -> Result<Zeroizing<String>, String> {
    let prompter = Prompter::from_env(false);
    let hint =
        |e| format!("cannot ask for a passphrase ({e}); give one with -N, or -N '' for none");
    let first = prompter
        .secret("Enter passphrase (empty for no passphrase): ")
        .map_err(hint)?;
    let second = prompter
        .secret("Enter the same passphrase again: ")
        .map_err(hint)?;
    if *first != *second {
        return Err("the passphrases do not match; nothing was written".to_owned());
    }
    Ok(first)
}

/// Creates `path` with `mode`, refusing to replace an existing file.
pub(super) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(contents)
        .map_err(|e| format!("{}: {e}", path.display()))
}
