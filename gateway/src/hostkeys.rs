//! Deciding whether to trust a server's host key, with OpenSSH's `known_hosts` files and
//! its `StrictHostKeyChecking` modes.
//!
//! A revoked key or a changed key is always refused, whatever the mode: those are the
//! cases where connecting could hand a password or a session to someone in the middle.
//! The modes decide only what happens to a host seen for the first time.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ssh_proto::config::Rng;
use ssh_proto::crypto::default_provider;
use ssh_proto::hostkey::PublicKey;
use ssh_proto::known_hosts::{self, HostKeyStatus, KnownHosts};

use crate::prompt::Prompter;

/// What to do with a host key that no file knows (ssh_config(5), StrictHostKeyChecking).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strictness {
    /// Refuse it.
    Yes,
    /// Add it to the user's file and connect.
    AcceptNew,
    /// Add it and connect, as `accept-new` does; changed keys are still refused.
    No,
    /// Ask the user, showing the fingerprint; refuse in batch mode. ssh's default.
    #[default]
    Ask,
}

impl Strictness {
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "yes" => Some(Self::Yes),
            "accept-new" => Some(Self::AcceptNew),
            "no" | "off" => Some(Self::No),
            "ask" => Some(Self::Ask),
            _ => None,
        }
    }
}

/// Where host keys are looked up and added.
#[derive(Clone, Debug)]
pub struct HostKeyPolicy {
    pub strictness: Strictness,
    /// UserKnownHostsFile: new keys go into the first.
    pub user_files: Vec<PathBuf>,
    /// GlobalKnownHostsFile: read only.
    pub global_files: Vec<PathBuf>,
    /// HashKnownHosts: write new lines with the host name hashed.
    pub hash: bool,
}

impl HostKeyPolicy {
    /// ssh's defaults: `~/.ssh/known_hosts` and `known_hosts2`, the system files under
    /// `/etc/ssh`, ask about new hosts, write names in the clear.
    pub fn openssh_defaults() -> Self {
        let home = home_dir();
        Self {
            strictness: Strictness::Ask,
            user_files: vec![
                home.join(".ssh/known_hosts"),
                home.join(".ssh/known_hosts2"),
            ],
            global_files: vec![
                PathBuf::from("/etc/ssh/ssh_known_hosts"),
                PathBuf::from("/etc/ssh/ssh_known_hosts2"),
            ],
            hash: false,
        }
    }
}

/// The home directory, from `HOME`; `/` if unset, so paths stay absolute.
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// Expands a leading `~/` as ssh does in file options.
pub fn expand_tilde(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home_dir().join(rest),
        None if path == "~" => home_dir(),
        None => PathBuf::from(path),
    }
}

/// How the key came to be trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trusted {
    /// A known_hosts line holds it.
    Known { file: PathBuf, line: usize },
    /// It was new and has been added to this file.
    Added { file: PathBuf },
    /// It was new and the user said yes, but it could not be written down.
    AcceptedOnce,
}

/// One parsed file and where it came from.
struct Loaded {
    path: PathBuf,
    hosts: KnownHosts,
}

fn load(paths: &[PathBuf]) -> Vec<Loaded> {
    let mut loaded = Vec::new();
    for path in paths {
        // A missing or unreadable file is an empty one, as for ssh.
        let Ok(text) = fs::read(path) else { continue };
        let hosts = KnownHosts::parse(&String::from_utf8_lossy(&text));
        for warning in hosts.warnings() {
            log::warn!("{}:{}", path.display(), warning);
        }
        loaded.push(Loaded {
            path: path.clone(),
            hosts,
        });
    }
    loaded
}

/// The name a host has in messages: `host`, or `[host]:port` off port 22.
fn display_name(host: &str, port: u16) -> String {
    known_hosts::host_port_name(host, port)
}

/// Checks `key` for `host`:`port`. On refusal the error is the whole message to show,
/// several lines for a changed key, ending with the one-line reason.
pub fn verify(
    policy: &HostKeyPolicy,
    host: &str,
    port: u16,
    key: &PublicKey,
    prompter: &Prompter,
    rng: &mut dyn Rng,
) -> Result<Trusted, String> {
    let name = display_name(host, port);
    let fingerprint = key.fingerprint_sha256(default_provider());
    let label = key.openssh_label();
    let files = load(&[policy.user_files.clone(), policy.global_files.clone()].concat());

    let statuses: Vec<(&Loaded, HostKeyStatus)> = files
        .iter()
        .map(|f| (f, f.hosts.lookup(host, port, key)))
        .collect();

    // A revocation anywhere wins, then a match anywhere.
    if let Some((file, HostKeyStatus::Revoked { line })) = statuses
        .iter()
        .find(|(_, s)| matches!(s, HostKeyStatus::Revoked { .. }))
    {
        return Err(format!(
            "the {label} host key of {name} ({fingerprint}) is marked revoked in {}:{line}; \
             refusing to connect",
            file.path.display()
        ));
    }
    if let Some((file, HostKeyStatus::Known { line })) = statuses
        .iter()
        .find(|(_, s)| matches!(s, HostKeyStatus::Known { .. }))
    {
        log::debug!("host key found file={} line={line}", file.path.display());
        return Ok(Trusted::Known {
            file: file.path.clone(),
            line: *line,
        });
    }
    let offending = statuses.iter().find_map(|(file, status)| match status {
        HostKeyStatus::Changed { line, old_key_type } => Some((file, *line, *old_key_type)),
        HostKeyStatus::OtherTypesKnown { lines } => lines.first().map(|l| (file, *l, "other")),
        _ => None,
    });
    if let Some((file, line, old_type)) = offending {
        return Err(changed_warning(
            &name,
            label,
            &fingerprint,
            &file.path,
            line,
            old_type,
        ));
    }

    // A host seen for the first time.
    let accepted = match policy.strictness {
        Strictness::Yes => {
            return Err(format!(
                "no {label} host key is known for {name} and StrictHostKeyChecking is yes \
                 (the server offered {fingerprint})"
            ));
        }
        Strictness::AcceptNew | Strictness::No => true,
        Strictness::Ask => ask(prompter, &name, label, &fingerprint)?,
    };
    if !accepted {
        return Err("host key verification failed: not accepted".to_owned());
    }

    let Some(file) = policy.user_files.first() else {
        return Ok(Trusted::AcceptedOnce);
    };
    let salt = policy.hash.then(|| {
        let mut salt = [0u8; known_hosts::SALT_LEN];
        rng.fill(&mut salt);
        salt
    });
    match known_hosts::entry_line(host, port, key, salt) {
        Ok(line) => match append_line(file, &line) {
            Ok(()) => {
                // Shown at ssh's default LogLevel (INFO), hidden by -q or LogLevel ERROR.
                if log::log_enabled!(log::Level::Warn) {
                    eprintln!(
                        "Warning: added {name} ({label}) to the known hosts in {}.",
                        file.display()
                    );
                }
                Ok(Trusted::Added { file: file.clone() })
            }
            Err(e) => {
                log::warn!("could not add the host key to {}: {e}", file.display());
                Ok(Trusted::AcceptedOnce)
            }
        },
        Err(e) => {
            log::warn!("not recording a host key for {name}: {e}");
            Ok(Trusted::AcceptedOnce)
        }
    }
}

/// Asks as ssh does; `yes` or the fingerprint itself accept.
fn ask(prompter: &Prompter, name: &str, label: &str, fingerprint: &str) -> Result<bool, String> {
    let question = format!(
        "Host '{name}' is not in your known hosts.\n\
         Its {label} key fingerprint is {fingerprint}.\n\
         Connect and remember this key (yes/no/[fingerprint])? "
    );
    loop {
        let answer = prompter.confirm(&question).map_err(|e| {
            format!("no {label} host key is known for {name} and it cannot be confirmed: {e}")
        })?;
        match answer.trim() {
            "yes" => return Ok(true),
            "no" => return Ok(false),
            other if other == fingerprint => return Ok(true),
            _ => eprintln!("Answer yes, no, or paste the fingerprint."),
        }
    }
}

fn changed_warning(
    name: &str,
    label: &str,
    fingerprint: &str,
    file: &Path,
    line: usize,
    old_type: &str,
) -> String {
    let bar = "@".repeat(60);
    format!(
        "{bar}\n\
         @  WARNING: THE HOST KEY OF {name} HAS CHANGED\n\
         {bar}\n\
         The server presents a key that differs from the one you trusted. Either the\n\
         server's key was replaced, or someone is intercepting this connection (a\n\
         man-in-the-middle attack) and could read everything you send.\n\
         The server sent this {label} key: {fingerprint}\n\
         The key you trusted ({old_type}) is at {}:{line}.\n\
         If the change is expected, remove that line (ssh-keygen -R '{name}') and connect again.\n\
         host key verification failed for {name}: the host key has changed",
        file.display()
    )
}

/// Appends one line, creating the file (and `~/.ssh`, private) if needed.
fn append_line(file: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = file.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        fs::create_dir_all(dir)?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    let mut f = OpenOptions::new().create(true).append(true).open(file)?;
    // A file that does not end in a newline would glue our line to its last one.
    let needs_newline = fs::read(file).map(|t| t.last().is_some_and(|&b| b != b'\n'))?;
    if needs_newline {
        f.write_all(b"\n")?;
    }
    writeln!(f, "{line}")
}

#[cfg(test)]
mod tests {
    use ssh_proto::hostkey::HostKeyPair;
    use ssh_proto::sim::SeededRng;

    use super::*;

    fn key(seed: u8) -> PublicKey {
        HostKeyPair::ed25519_from_seed(default_provider(), &[seed; 32])
            .public()
            .clone()
    }

    fn policy(dir: &Path, strictness: Strictness) -> HostKeyPolicy {
        HostKeyPolicy {
            strictness,
            user_files: vec![dir.join("known_hosts")],
            global_files: vec![],
            hash: true,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gateway-hostkeys-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn accept_new_adds_then_knows_then_refuses_a_change() {
        let dir = temp("accept-new");
        let p = policy(&dir, Strictness::AcceptNew);
        let mut rng = SeededRng::new(1);
        let batch = Prompter::batch();
        let added = verify(&p, "bastion", 2222, &key(1), &batch, &mut rng).unwrap();
        assert_eq!(
            added,
            Trusted::Added {
                file: dir.join("known_hosts")
            }
        );
        let text = fs::read_to_string(dir.join("known_hosts")).unwrap();
        assert!(text.starts_with("|1|"), "hashed: {text}");

        let known = verify(&p, "bastion", 2222, &key(1), &batch, &mut rng).unwrap();
        assert_eq!(
            known,
            Trusted::Known {
                file: dir.join("known_hosts"),
                line: 1
            }
        );

        let err = verify(&p, "bastion", 2222, &key(2), &batch, &mut rng).unwrap_err();
        assert!(err.contains("HAS CHANGED"), "{err}");
        assert!(
            err.contains(&format!("{}:1", dir.join("known_hosts").display())),
            "{err}"
        );
        // Another port of the same name is a different host.
        assert!(verify(&p, "bastion", 22, &key(2), &batch, &mut rng).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn strict_refuses_new_and_batch_ask_refuses() {
        let dir = temp("strict");
        let mut rng = SeededRng::new(2);
        let err = verify(
            &policy(&dir, Strictness::Yes),
            "h",
            22,
            &key(1),
            &Prompter::batch(),
            &mut rng,
        )
        .unwrap_err();
        assert!(err.contains("StrictHostKeyChecking is yes"), "{err}");
        let err = verify(
            &policy(&dir, Strictness::Ask),
            "h",
            22,
            &key(1),
            &Prompter::batch(),
            &mut rng,
        )
        .unwrap_err();
        assert!(err.contains("cannot be confirmed"), "{err}");
        assert!(!dir.join("known_hosts").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn revoked_is_refused_even_with_no() {
        let dir = temp("revoked");
        let line = known_hosts::entry_line("h", 22, &key(3), None).unwrap();
        fs::write(dir.join("known_hosts"), format!("@revoked {line}\n")).unwrap();
        let mut rng = SeededRng::new(3);
        let err = verify(
            &policy(&dir, Strictness::No),
            "h",
            22,
            &key(3),
            &Prompter::batch(),
            &mut rng,
        )
        .unwrap_err();
        assert!(err.contains("revoked"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
