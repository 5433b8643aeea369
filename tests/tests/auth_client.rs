//! Our client's authentication against real servers: OpenSSH 9.2 and 10.0, Dropbear
//! 2022.83 and asyncssh.
//!
//! Each login is tried two ways: with the library (`gateway::auth::Authenticator` on a
//! `BlockingConn`, the host key checked against the server's `known_hosts` by
//! `gateway::hostkeys`), and with the `gateway probe --auth` binary, run as a user runs it.
//! Secrets reach the binary through an `SSH_ASKPASS` program with
//! `SSH_ASKPASS_REQUIRE=force`, as they reach `ssh`. The library's `Prompter` reads that
//! choice only from the process environment, which a test running beside others must not
//! change, so passphrases and passwords are tried through the binary alone.
//!
//! A login counts only when the server says so too: sshd's "Accepted publickey for USER
//! ... ED25519 SHA256:..." with the key's own fingerprint (and, for RSA, the `rsa-sha2-*`
//! algorithm it verified), Dropbear's "Pubkey auth succeeded", asyncssh's own record.
//! The refusals check the one line the user reads: a wrong key, batch mode with only an
//! encrypted key (and the askpass program never run), a revoked and a changed host key
//! (naming the `known_hosts` file and line), and `StrictHostKeyChecking=accept-new`
//! writing a line, hashed or not, that `ssh-keygen -F` finds.
//!
//! Each test prints a table of its cells (`--nocapture`) and fails listing every failed
//! cell.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gateway::auth::{AuthSettings, Authenticator};
use gateway::blocking::BlockingConn;
use gateway::hostkeys::{self, HostKeyPolicy, Strictness};
use gateway::prompt::Prompter;
use gateway::rng::OsRng;
use interop::peers::{
    Cells, Dropbear, KeyPair, OpenSsh, Peer, PythonServer, RunOutput, SshAgent, Sshd, SystemUser,
    TempDir, gateway_binary, keygen, require, run, write_askpass,
};
use ssh_proto::Error as ProtoError;
use ssh_proto::algorithms::Algorithm;
use ssh_proto::auth::msg::Method;
use ssh_proto::config::Config;
use ssh_proto::crypto::default_provider;
use ssh_proto::msg::DisconnectReason;
use ssh_proto::role::Role;
use ssh_proto::transport::{Event, Transport};
use ssh_proto::userkey::parse_public_key_line;

const TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to log a login after the client saw it succeed.
const LOG_TIMEOUT: Duration = Duration::from_secs(5);
/// The throwaway user's password, given through the askpass program.
const PASSWORD: &str = "interop-pass-7Qx";
/// The passphrase of the encrypted key.
const PASSPHRASE: &str = "interop-phrase-k3M";

/// The client keys of one test: every type, an encrypted one, one for the agent, and one
/// the servers do not know.
struct Keys {
    // Holds the files; removed when the keys are dropped.
    _dir: TempDir,
    ed25519: KeyPair,
    ecdsa: KeyPair,
    rsa: KeyPair,
    encrypted: KeyPair,
    agent: KeyPair,
    wrong: KeyPair,
    /// Not a client key: a host key no server has, for a `known_hosts` that holds a
    /// different key than the server's.
    other_host: KeyPair,
}

impl Keys {
    fn generate() -> Option<Keys> {
        let dir = TempDir::new("auth-keys");
        let encrypted = {
            let ssh_keygen = require(Peer::SshKeygen)?;
            let path = dir.join("id_encrypted");
            let out = run(
                Command::new(ssh_keygen)
                    .args([
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        PASSPHRASE,
                        "-C",
                        "encrypted",
                        "-f",
                    ])
                    .arg(&path),
                TIMEOUT,
            );
            assert!(out.success(), "{out}");
            let public_key = std::fs::read_to_string(dir.join("id_encrypted.pub"))
                .expect("read the encrypted key's public half")
                .trim()
                .to_owned();
            KeyPair {
                algorithm: "ssh-ed25519".to_owned(),
                private_key: path,
                public_key,
            }
        };
        Some(Keys {
            ed25519: keygen(dir.path(), "id_ed25519", "ed25519")?,
            ecdsa: keygen(dir.path(), "id_ecdsa", "ecdsa")?,
            rsa: keygen(dir.path(), "id_rsa", "rsa")?,
            agent: keygen(dir.path(), "id_agent", "ed25519")?,
            wrong: keygen(dir.path(), "id_wrong", "ed25519")?,
            other_host: keygen(dir.path(), "other_host_key", "ed25519")?,
            encrypted,
            _dir: dir,
        })
    }

    /// The keys a server should accept.
    fn authorized(&self) -> [&KeyPair; 5] {
        [
            &self.ed25519,
            &self.ecdsa,
            &self.rsa,
            &self.encrypted,
            &self.agent,
        ]
    }
}

/// `SHA256:...` of a key pair's public key.
fn fingerprint(key: &KeyPair) -> String {
    let (public, _) = parse_public_key_line(&key.public_key).expect("parse public key line");
    public.fingerprint_sha256(default_provider())
}

/// Library settings that use exactly one identity file and only public keys.
fn key_settings(user: &str, identity: &Path) -> AuthSettings {
    AuthSettings {
        identity_files: vec![identity.to_path_buf()],
        identities_only: true,
        agent: None,
        pubkey: true,
        kbd_interactive: false,
        password: false,
        preferred: vec![Method::PublicKey],
        ..AuthSettings::openssh_defaults(user)
    }
}

/// Connects with the library, trusts the host key only if `known_hosts` holds it, and
/// authenticates with `settings`, never prompting. Returns the method that succeeded and
/// the key exchange.
fn library_login(
    addr: SocketAddr,
    known_hosts: &Path,
    settings: &AuthSettings,
) -> Result<(Method, String), String> {
    let deadline = Instant::now() + TIMEOUT;
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    let transport = Transport::new(
        Arc::new(Config::default()),
        Role::Client,
        Box::new(OsRng),
        Instant::now(),
    );
    let mut conn = BlockingConn::new(transport, stream).map_err(|e| format!("socket: {e}"))?;
    let policy = HostKeyPolicy {
        strictness: Strictness::Yes,
        user_files: vec![known_hosts.to_path_buf()],
        global_files: Vec::new(),
        hash: false,
    };
    let prompter = Prompter::batch();
    let host = addr.ip().to_string();
    let mut refusal = None;
    let handshake = conn.run_until(
        deadline,
        |t, event| {
            if let Event::HostKey(key) = event {
                match hostkeys::verify(&policy, &host, addr.port(), &key, &prompter, &mut OsRng) {
                    Ok(_) => t.accept_host_key()?,
                    Err(why) => {
                        refusal = Some(why);
                        return Err(t.reject_host_key("host key not trusted"));
                    }
                }
            }
            Ok::<(), ProtoError>(())
        },
        |c| c.transport.is_ready(),
    );
    if let Some(why) = refusal {
        return Err(format!("host key refused: {why}"));
    }
    handshake.map_err(|e| format!("key exchange: {e}"))?;
    let kex = conn
        .transport
        .negotiated()
        .map_or("?", |n| n.kex.name())
        .to_owned();
    let method = Authenticator::new(&mut conn, settings, &prompter, &host, deadline)
        .run()
        .map_err(|e| format!("authentication: {e}"))?;
    conn.transport
        .disconnect(DisconnectReason::BY_APPLICATION, "interop cell done");
    let _ = conn.flush();
    Ok((method, kex))
}

/// How the binary is to be run for one cell.
struct Probe<'a> {
    port: u16,
    user: &'a str,
    known_hosts: &'a Path,
    identity: Option<&'a Path>,
    /// An askpass program: batch mode is off and secrets come from it.
    askpass: Option<&'a Path>,
    options: &'a [&'a str],
}

impl<'a> Probe<'a> {
    /// A password login, the password coming from `askpass`.
    fn password(port: u16, user: &'a str, known_hosts: &'a Path, askpass: &'a Path) -> Self {
        Self {
            port,
            user,
            known_hosts,
            identity: None,
            askpass: Some(askpass),
            options: &[
                "PreferredAuthentications=password",
                "PubkeyAuthentication=no",
            ],
        }
    }

    /// `gateway probe --auth` with a throwaway `HOME` (no default keys or known hosts),
    /// no agent and no display. `options` come first, so they win over the defaults.
    fn run(&self, home: &Path) -> RunOutput {
        let mut command = Command::new(gateway_binary());
        command
            .args([
                "probe",
                "--auth",
                "-p",
                &self.port.to_string(),
                "-l",
                self.user,
            ])
            .env("HOME", home)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        if let Some(identity) = self.identity {
            command.arg("-i").arg(identity);
        }
        for option in self.options {
            command.args(["-o", option]);
        }
        command
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .args(["-o", "StrictHostKeyChecking=yes"])
            .args(["-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes"]);
        match self.askpass {
            Some(askpass) => {
                command
                    .env("SSH_ASKPASS", askpass)
                    .env("SSH_ASKPASS_REQUIRE", "force")
                    .args(["-o", "BatchMode=no"]);
            }
            None => {
                command.args(["-o", "BatchMode=yes"]);
            }
        }
        command.arg("127.0.0.1");
        run(&mut command, TIMEOUT)
    }
}

/// Checks that the binary logged in as `user` with `method`.
fn probe_succeeded(out: &RunOutput, user: &str, method: &str) -> Result<(), String> {
    let expected = format!("authenticated as {user} with {method}\n");
    if out.success() && out.stdout_text().contains(&expected) {
        Ok(())
    } else {
        Err(format!("gateway probe should print {expected:?}:\n{out}"))
    }
}

/// Checks a refused run: exit status 255 and every needle on stderr.
fn probe_refused(out: &RunOutput, needles: &[&str]) -> Result<String, String> {
    let stderr = out.stderr_text();
    let missing: Vec<&&str> = needles.iter().filter(|n| !stderr.contains(**n)).collect();
    if out.timed_out || out.status.code() != Some(255) || !missing.is_empty() {
        return Err(format!(
            "expected exit 255 and {missing:?} on stderr:\n{out}"
        ));
    }
    Ok(stderr.lines().last().unwrap_or_default().to_owned())
}

/// Waits until a server's log, from byte `from` on, holds every needle.
fn wait_for_log_lines(
    log: &impl Fn() -> String,
    from: usize,
    needles: &[String],
) -> Result<(), String> {
    let deadline = Instant::now() + LOG_TIMEOUT;
    loop {
        let text = log();
        let new = text.get(from..).unwrap_or_default();
        let missing: Vec<&String> = needles.iter().filter(|n| !new.contains(*n)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the server's log lacks {missing:?}; it logged meanwhile:\n{new}"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The needles of sshd's log for a public key login of `key` as `user`, and for RSA the
/// algorithm it verified, which must be SHA-2 (RFC 8332).
fn sshd_key_needles(user: &str, key: &KeyPair) -> Vec<String> {
    let label = match key.algorithm.as_str() {
        "ssh-ed25519" => "ED25519",
        "ssh-rsa" => "RSA",
        _ => "ECDSA",
    };
    let mut needles = vec![format!("Accepted publickey for {user} from 127.0.0.1 port")];
    needles.push(format!("ssh2: {label} {}", fingerprint(key)));
    needles
}

/// For an RSA login: which `rsa-sha2-*` sshd verified, from its DEBUG2 line
/// "userauth_pubkey: authenticated 1 pkalg ALG", which its unprivileged child writes
/// after the "Accepted" line. A SHA-1 `ssh-rsa` login would never show the awaited line,
/// and the error shows what sshd logged instead.
fn sshd_rsa_alg(log: impl Fn() -> String, from: usize) -> Result<String, String> {
    wait_for_log_lines(&log, from, &["authenticated 1 pkalg rsa-sha2-".to_owned()])?;
    let text = log();
    let alg = text
        .get(from..)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split("authenticated 1 pkalg ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .find(|alg| alg.starts_with("rsa-sha2-"))
        .unwrap_or_default();
    match alg {
        "rsa-sha2-512" | "rsa-sha2-256" => Ok(alg.to_owned()),
        other => Err(format!(
            "RSA login with {other:?}, not rsa-sha2-512 or -256"
        )),
    }
}

/// Every cell of our client against one OpenSSH version.
fn against_openssh(version: OpenSsh) {
    let name = version.version_prefix();
    // The user first, so it is dropped after the server that ran its sessions.
    let Some(user) = SystemUser::create(PASSWORD) else {
        return;
    };
    let Some(keys) = Keys::generate() else {
        return;
    };
    let mut config = vec![
        "PasswordAuthentication yes",
        "KbdInteractiveAuthentication no",
    ];
    if version == OpenSsh::V10_0 {
        // The refusals below would otherwise lock 127.0.0.1 out for a while.
        config.push("PerSourcePenalties no");
    }
    let Some(sshd) = Sshd::start(version, &config) else {
        return;
    };
    for key in keys.authorized() {
        sshd.authorize(&key.public_key);
    }
    let Some(agent) = SshAgent::start() else {
        return;
    };
    agent.add(&keys.agent.private_key);
    // Only the agent can sign for this key now: the identity file names its public half.
    std::fs::remove_file(&keys.agent.private_key).expect("remove the agent key's file");

    let home = TempDir::new("auth-home");
    let askpass_dir = TempDir::new("askpass");
    let user_name = user.name();
    let known_hosts = sshd.known_hosts_path();
    let log_mark = || sshd.log().len();
    let mut cells = Cells::new(&format!("our client against {name}"));

    // The library, one key type at a time.
    for key in [&keys.ed25519, &keys.ecdsa, &keys.rsa] {
        let mark = log_mark();
        let settings = key_settings(user_name, &key.private_key);
        let result = library_login(sshd.addr(), &known_hosts, &settings).and_then(|(m, kex)| {
            if m != Method::PublicKey {
                return Err(format!("authenticated with {}", m.name()));
            }
            wait_for_log_lines(&|| sshd.log(), mark, &sshd_key_needles(user_name, key))?;
            let mut note = format!("{} kex={kex}", fingerprint(key));
            if key.algorithm == "ssh-rsa" {
                let alg = sshd_rsa_alg(|| sshd.log(), mark)?;
                note = format!("{alg} {note}");
            }
            Ok(note)
        });
        cells.record(
            name,
            &format!("library publickey {}", key.algorithm),
            result,
        );
    }

    // The library with a key only the agent holds.
    let mark = log_mark();
    let settings = AuthSettings {
        agent: Some(agent.socket().to_path_buf()),
        ..key_settings(user_name, &keys.agent.private_key)
    };
    let result = library_login(sshd.addr(), &known_hosts, &settings).and_then(|(m, _)| {
        if m != Method::PublicKey {
            return Err(format!("authenticated with {}", m.name()));
        }
        wait_for_log_lines(
            &|| sshd.log(),
            mark,
            &sshd_key_needles(user_name, &keys.agent),
        )?;
        Ok(format!("ssh-agent {}", fingerprint(&keys.agent)))
    });
    cells.record(name, "library publickey from ssh-agent", result);

    // The binary: a plain key, an RSA key, an encrypted key and a password.
    let probe = |identity: Option<&Path>, askpass: Option<&Path>, options: &[&str]| {
        Probe {
            port: sshd.port(),
            user: user_name,
            known_hosts: &known_hosts,
            identity,
            askpass,
            options,
        }
        .run(home.path())
    };
    for key in [&keys.ed25519, &keys.rsa] {
        let mark = log_mark();
        let out = probe(Some(&key.private_key), None, &[]);
        let result = probe_succeeded(&out, user_name, "publickey").and_then(|()| {
            wait_for_log_lines(&|| sshd.log(), mark, &sshd_key_needles(user_name, key))?;
            if key.algorithm == "ssh-rsa" {
                sshd_rsa_alg(|| sshd.log(), mark)
            } else {
                Ok(fingerprint(key))
            }
        });
        cells.record(name, &format!("probe publickey {}", key.algorithm), result);
    }

    let mark = log_mark();
    let agent_option = format!("IdentityAgent={}", agent.socket().display());
    let out = probe(Some(&keys.agent.private_key), None, &[&agent_option]);
    let result = probe_succeeded(&out, user_name, "publickey").and_then(|()| {
        wait_for_log_lines(
            &|| sshd.log(),
            mark,
            &sshd_key_needles(user_name, &keys.agent),
        )?;
        Ok(format!("ssh-agent {}", fingerprint(&keys.agent)))
    });
    cells.record(name, "probe publickey from ssh-agent", result);

    let askpass = askpass_dir.join("passphrase");
    let asked = write_askpass(&askpass, PASSPHRASE);
    let mark = log_mark();
    let out = probe(Some(&keys.encrypted.private_key), Some(&askpass), &[]);
    let result = probe_succeeded(&out, user_name, "publickey").and_then(|()| {
        wait_for_log_lines(
            &|| sshd.log(),
            mark,
            &sshd_key_needles(user_name, &keys.encrypted),
        )?;
        let prompts = std::fs::read_to_string(&asked).unwrap_or_default();
        if prompts.contains("Enter passphrase for key") {
            Ok("passphrase from SSH_ASKPASS".to_owned())
        } else {
            Err(format!(
                "the askpass program was not asked for the passphrase: {prompts:?}"
            ))
        }
    });
    cells.record(name, "probe publickey, encrypted key", result);

    let askpass = askpass_dir.join("password");
    let asked = write_askpass(&askpass, PASSWORD);
    let mark = log_mark();
    let out = probe(
        None,
        Some(&askpass),
        &[
            "PreferredAuthentications=password",
            "PubkeyAuthentication=no",
        ],
    );
    let result = probe_succeeded(&out, user_name, "password").and_then(|()| {
        wait_for_log_lines(
            &|| sshd.log(),
            mark,
            &[format!("Accepted password for {user_name} from 127.0.0.1")],
        )?;
        let prompts = std::fs::read_to_string(&asked).unwrap_or_default();
        if prompts.contains(&format!("{user_name}@127.0.0.1's password")) {
            Ok("password from SSH_ASKPASS".to_owned())
        } else {
            Err(format!(
                "the askpass program was not asked for the password: {prompts:?}"
            ))
        }
    });
    cells.record(name, "probe password", result);

    refusals(&mut cells, name, &sshd, &keys, user_name, home.path());
    cells.finish();
}

/// The refusals and the host key cases, with the binary against `sshd`.
fn refusals(cells: &mut Cells, name: &str, sshd: &Sshd, keys: &Keys, user: &str, home: &Path) {
    let known_hosts = sshd.known_hosts_path();
    let probe = |known_hosts: &Path, identity: &Path, askpass: Option<&Path>, options: &[&str]| {
        Probe {
            port: sshd.port(),
            user,
            known_hosts,
            identity: Some(identity),
            askpass,
            options,
        }
        .run(home)
    };
    // "Accepted key ... found at" is only sshd's answer to a query; a login is "Accepted
    // publickey for USER ... FINGERPRINT".
    let no_login = |mark: usize, key: &KeyPair| {
        let log = sshd.log();
        let new = log.get(mark..).unwrap_or_default();
        let fingerprint = fingerprint(key);
        let login = new
            .lines()
            .find(|l| l.starts_with("Accepted publickey for") && l.contains(&fingerprint));
        match login {
            Some(line) => Err(format!("sshd let the client in: {line}")),
            None => Ok(()),
        }
    };

    // As a user would run it, with password authentication left on: in batch mode it is
    // skipped, and the message lists what the server would still take.
    for options in [&[][..], &["PasswordAuthentication=no"][..]] {
        let mark = sshd.log().len();
        let out = probe(&known_hosts, &keys.wrong.private_key, None, options);
        let needles = [&format!("{user}@127.0.0.1: Permission denied (publickey")[..]];
        let result = probe_refused(&out, &needles)
            .and_then(|line| no_login(mark, &keys.wrong).map(|()| line));
        let cell = if options.is_empty() {
            "refused: key not authorised"
        } else {
            "refused: key not authorised, password off"
        };
        cells.record(name, cell, result);
    }

    // Batch mode with only an encrypted key: nothing may be asked, so the key is skipped.
    let askpass_dir = TempDir::new("askpass-batch");
    let askpass = askpass_dir.join("askpass");
    let asked = write_askpass(&askpass, PASSPHRASE);
    let mark = sshd.log().len();
    let out = probe(
        &known_hosts,
        &keys.encrypted.private_key,
        Some(&askpass),
        &["BatchMode=yes", "PasswordAuthentication=no"],
    );
    let result = probe_refused(&out, &["Permission denied (publickey"])
        .and_then(|line| no_login(mark, &keys.encrypted).map(|()| line))
        .and_then(|line| {
            if asked.exists() {
                Err(format!(
                    "batch mode ran the askpass program: {:?}",
                    std::fs::read_to_string(&asked)
                ))
            } else {
                Ok(format!("askpass not run; {line}"))
            }
        });
    cells.record(name, "refused: BatchMode, encrypted key only", result);

    let host_key = sshd.host_key("ssh-ed25519").expect("ed25519 host key");
    let scratch = TempDir::new("known-hosts");
    let host = format!("[127.0.0.1]:{}", sshd.port());

    let revoked = scratch.join("revoked_known_hosts");
    std::fs::write(
        &revoked,
        format!(
            "# the server's key, revoked\n@revoked {host} {}\n",
            host_key.public_key
        ),
    )
    .expect("write known_hosts");
    let out = probe(&revoked, &keys.ed25519.private_key, None, &[]);
    let file_line = format!("{}:2", revoked.display());
    let result = probe_refused(&out, &["revoked", &file_line]);
    cells.record(name, "refused: revoked host key", result);

    let changed = scratch.join("changed_known_hosts");
    std::fs::write(
        &changed,
        format!(
            "# another key for the server\n{host} {}\n",
            keys.other_host.public_key
        ),
    )
    .expect("write known_hosts");
    let out = probe(&changed, &keys.ed25519.private_key, None, &[]);
    let file_line = format!("{}:2", changed.display());
    let result = probe_refused(&out, &["HAS CHANGED", &file_line, "man-in-the-middle"]);
    cells.record(name, "refused: changed host key", result);

    for hashed in [false, true] {
        let file = scratch.join(format!("new_known_hosts_{hashed}"));
        let mut options = vec!["StrictHostKeyChecking=accept-new"];
        if hashed {
            options.push("HashKnownHosts=yes");
        }
        let out = probe(&file, &keys.ed25519.private_key, None, &options);
        let result = probe_succeeded(&out, user, "publickey")
            .and_then(|()| keygen_finds(&file, &host, hashed));
        let cell = if hashed {
            "accept-new, HashKnownHosts=yes"
        } else {
            "accept-new"
        };
        cells.record(name, cell, result);
    }
}

/// Checks with `ssh-keygen -F HOST -f FILE` that `file` knows `host`, and that its line
/// is hashed (`|1|`) or not as asked.
fn keygen_finds(file: &Path, host: &str, hashed: bool) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if text.lines().count() != 1 || text.starts_with("|1|") != hashed {
        return Err(format!("one line, hashed={hashed}, expected in:\n{text}"));
    }
    let ssh_keygen = require(Peer::SshKeygen).ok_or("no ssh-keygen")?;
    let out = run(
        Command::new(ssh_keygen).args(["-F", host, "-f"]).arg(file),
        TIMEOUT,
    );
    if out.success() && out.stdout_text().contains("ssh-ed25519") {
        Ok(format!(
            "ssh-keygen -F {host} finds: {}",
            text.split(' ').next().unwrap_or_default()
        ))
    } else {
        Err(format!(
            "ssh-keygen -F does not find {host} in:\n{text}\n{out}"
        ))
    }
}

#[test]
fn our_client_authenticates_to_openssh_92() {
    against_openssh(OpenSsh::V9_2);
}

#[test]
fn our_client_authenticates_to_openssh_100() {
    against_openssh(OpenSsh::V10_0);
}

/// Dropbear reads keys only from the user's `~/.ssh/authorized_keys` and checks passwords
/// against the system, so this runs as a throwaway user.
#[test]
fn our_client_authenticates_to_dropbear() {
    // The user first, so it is dropped after the server that ran its sessions.
    let Some(user) = SystemUser::create(PASSWORD) else {
        return;
    };
    let Some(keys) = Keys::generate() else {
        return;
    };
    for key in [&keys.ed25519, &keys.ecdsa, &keys.rsa] {
        user.authorize(&key.public_key);
    }
    let Some(dropbear) = Dropbear::start_allowing_passwords(&[]) else {
        return;
    };
    let name = "dropbear 2022.83";
    let user_name = user.name();
    let known_hosts = dropbear.known_hosts_path();
    let home = TempDir::new("auth-home");
    let mut cells = Cells::new(&format!("our client against {name}"));

    for key in [&keys.ed25519, &keys.ecdsa, &keys.rsa] {
        let mark = dropbear.log().len();
        let settings = key_settings(user_name, &key.private_key);
        let result = library_login(dropbear.addr(), &known_hosts, &settings).and_then(|(m, _)| {
            if m != Method::PublicKey {
                return Err(format!("authenticated with {}", m.name()));
            }
            let needles = [
                format!("Pubkey auth succeeded for '{user_name}' with"),
                fingerprint(key),
            ];
            wait_for_log_lines(&|| dropbear.log(), mark, &needles)?;
            Ok(dropbear_auth_line(&dropbear.log()[mark..]))
        });
        cells.record(
            name,
            &format!("library publickey {}", key.algorithm),
            result,
        );
    }

    let askpass_dir = TempDir::new("askpass");
    let askpass = askpass_dir.join("password");
    write_askpass(&askpass, PASSWORD);
    let mark = dropbear.log().len();
    let out = Probe::password(dropbear.port(), user_name, &known_hosts, &askpass).run(home.path());
    let result = probe_succeeded(&out, user_name, "password").and_then(|()| {
        wait_for_log_lines(
            &|| dropbear.log(),
            mark,
            &[format!("Password auth succeeded for '{user_name}'")],
        )?;
        Ok(dropbear_auth_line(&dropbear.log()[mark..]))
    });
    cells.record(name, "probe password", result);

    let mark = dropbear.log().len();
    let out = Probe {
        port: dropbear.port(),
        user: user_name,
        known_hosts: &known_hosts,
        identity: Some(&keys.wrong.private_key),
        askpass: None,
        options: &["PasswordAuthentication=no"],
    }
    .run(home.path());
    let result = probe_refused(&out, &["Permission denied (publickey"]).and_then(|line| {
        let log = dropbear.log();
        if log[mark..].contains("auth succeeded") {
            Err(format!("dropbear let the client in:\n{}", &log[mark..]))
        } else {
            Ok(line)
        }
    });
    cells.record(name, "refused: key not authorised, password off", result);

    cells.finish();
}

/// Dropbear's "Pubkey auth succeeded ..." or "Password auth succeeded ..." line, without
/// its process id and time, for the table. For RSA it names the key type, `ssh-rsa`, and
/// not the signature algorithm; our client has no SHA-1 RSA signing to fall back to.
fn dropbear_auth_line(log: &str) -> String {
    log.lines()
        .find_map(|l| {
            let at = l
                .find("Pubkey auth succeeded")
                .or(l.find("Password auth succeeded"))?;
            Some(l[at..].to_owned())
        })
        .unwrap_or_default()
}

/// asyncssh as a server that accepts one key and one password.
#[test]
fn our_client_authenticates_to_asyncssh() {
    const USER: &str = "interop";
    let Some(keys) = Keys::generate() else {
        return;
    };
    let mut host_key = None;
    let Some(server) = PythonServer::start(
        "asyncssh server",
        "auth_peer.py",
        |dir| host_key = keygen(dir, "host_key", "ed25519"),
        |dir| {
            [
                "asyncssh-server".into(),
                "--host-key".into(),
                dir.join("host_key").into_os_string(),
                "--client-key".into(),
                PathBuf::from(format!("{}.pub", keys.ed25519.private_key.display()))
                    .into_os_string(),
                "--user".into(),
                USER.into(),
                "--password".into(),
                PASSWORD.into(),
            ]
            .to_vec()
        },
    ) else {
        return;
    };
    let host_key = host_key.expect("asyncssh host key");
    let known_hosts = server.dir().join("known_hosts");
    std::fs::write(&known_hosts, server.known_hosts_line(&host_key.public_key))
        .expect("write known_hosts");
    let name = "asyncssh 2.24";
    let home = TempDir::new("auth-home");
    let mut cells = Cells::new(&format!("our client against {name}"));

    let mark = server.log().len();
    let settings = key_settings(USER, &keys.ed25519.private_key);
    let result = library_login(server.addr(), &known_hosts, &settings).and_then(|(m, kex)| {
        if m != Method::PublicKey {
            return Err(format!("authenticated with {}", m.name()));
        }
        wait_for_log_lines(
            &|| server.log(),
            mark,
            &[
                "Verifying request with ssh-ed25519 key".to_owned(),
                format!("authenticated as {USER} with publickey"),
            ],
        )?;
        Ok(format!("kex={kex}"))
    });
    cells.record(name, "library publickey ssh-ed25519", result);

    let mark = server.log().len();
    let result = library_login(
        server.addr(),
        &known_hosts,
        &key_settings(USER, &keys.wrong.private_key),
    );
    let result = match result {
        Ok((m, _)) => Err(format!(
            "a key it does not know logged in with {}",
            m.name()
        )),
        Err(e) if e.contains("Permission denied (publickey") => wait_for_log_lines(
            &|| server.log(),
            mark,
            &[format!("publickey refused user={USER}")],
        )
        .map(|()| e),
        Err(e) => Err(format!("expected Permission denied, got: {e}")),
    };
    cells.record(name, "refused: key not authorised", result);

    let askpass_dir = TempDir::new("askpass");
    let askpass = askpass_dir.join("password");
    write_askpass(&askpass, PASSWORD);
    let mark = server.log().len();
    let out = Probe::password(server.port(), USER, &known_hosts, &askpass).run(home.path());
    let result = probe_succeeded(&out, USER, "password").and_then(|()| {
        wait_for_log_lines(
            &|| server.log(),
            mark,
            &[format!("authenticated as {USER} with password")],
        )?;
        Ok("password from SSH_ASKPASS".to_owned())
    });
    cells.record(name, "probe password", result);

    cells.finish();
}
