//! Real clients authenticate to our server role: OpenSSH's `ssh` 9.2 and 10.0, Dropbear's
//! `dbclient`, PuTTY's `plink`, paramiko and asyncssh connect to [`TestServer`] running
//! `ssh-proto`'s `ServerAuth` with the text of an `authorized_keys` file, a password table
//! and one keyboard-interactive question.
//!
//! The test server has no connection layer yet: after a login it refuses the client's
//! session channel, and the client ends on its own (with a timeout in case it does not).
//! So a login is judged by the server's record (the user, the method, and for keys the
//! signature algorithm that verified) together with the client's own words: `ssh -v`'s
//! "Authenticated to 127.0.0.1 (...) using "publickey"", `plink -v`'s "Access granted",
//! the Python clients' result line. `dbclient` says nothing about a login that works; its
//! cell rests on the record and on the absence of its "No auth methods" complaint.
//!
//! The refusals: a key not listed, a key whose line has `from="10.9.9.9"` (the record says
//! the `from=` did not match), a wrong password, and a client offering more keys than
//! the attempt limit allows, which is disconnected.
//!
//! Each test prints a table of its cells (`--nocapture`) and fails listing every failed
//! cell.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use interop::peers::{
    Cells, KeyPair, OpenSsh, Peer, RunOutput, TempDir, keygen, peer_script, require, run,
    write_askpass,
};
use interop::server::{AuthConfig, Record, TestServer};
use ssh_proto::auth::server::DEFAULT_MAX_ATTEMPTS;
use ssh_proto::config::Config;
use ssh_proto::crypto::default_provider;
use ssh_proto::userkey::parse_public_key_line;

/// Long enough for a client to log in; a client still running after it is killed, and
/// its cell judged by what it did until then.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the server may take to record a connection after its client ended.
const RECORD_TIMEOUT: Duration = Duration::from_secs(10);
const USER: &str = "interop";
const PASSWORD: &str = "interop-pass-7Qx";
const QUESTION: &str = "Favourite colour? ";
const ANSWER: &str = "blue-green";
/// The address no test client comes from.
const FOREIGN_ADDRESS: &str = "10.9.9.9";

/// The client keys of one test and the `authorized_keys` text that lists them.
struct Keys {
    dir: TempDir,
    ed25519: KeyPair,
    ecdsa: KeyPair,
    rsa: KeyPair,
    /// Listed only with `from="10.9.9.9"`.
    foreign: KeyPair,
    /// Listed nowhere.
    wrong: KeyPair,
}

impl Keys {
    fn generate() -> Option<Keys> {
        let dir = TempDir::new("auth-server-keys");
        Some(Keys {
            ed25519: keygen(dir.path(), "id_ed25519", "ed25519")?,
            ecdsa: keygen(dir.path(), "id_ecdsa", "ecdsa")?,
            rsa: keygen(dir.path(), "id_rsa", "rsa")?,
            foreign: keygen(dir.path(), "id_foreign", "ed25519")?,
            wrong: keygen(dir.path(), "id_wrong", "ed25519")?,
            dir,
        })
    }

    /// Line 4 is the one with `from=`.
    fn authorized_keys(&self) -> String {
        format!(
            "{}\n{}\n{}\nfrom=\"{FOREIGN_ADDRESS}\" {}\n",
            self.ed25519.public_key,
            self.ecdsa.public_key,
            self.rsa.public_key,
            self.foreign.public_key
        )
    }
}

/// `SHA256:...` of a key pair's public key.
fn fingerprint(key: &KeyPair) -> String {
    let (public, _) = parse_public_key_line(&key.public_key).expect("parse public key line");
    public.fingerprint_sha256(default_provider())
}

/// Runs a client and returns its output with the records of the connections it made.
/// Each test runs its clients one at a time, so the records that appear are its own.
fn run_client(server: &TestServer, command: &mut Command) -> (RunOutput, Vec<Record>) {
    let before = server.records().len();
    let out = run(command.env_remove("SSH_AUTH_SOCK"), CLIENT_TIMEOUT);
    // The connection ends when the client does; its record follows shortly.
    let deadline = Instant::now() + RECORD_TIMEOUT;
    loop {
        let records = server.records();
        if records.len() > before || Instant::now() >= deadline {
            return (out, records[before..].to_vec());
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The record of the one connection a client made.
fn only_record(records: &[Record]) -> Result<&Record, String> {
    match records {
        [record] => Ok(record),
        _ => Err(format!(
            "expected one connection, the server recorded {}:\n{}",
            records.len(),
            records
                .iter()
                .map(Record::to_string)
                .collect::<Vec<_>>()
                .join("\n--\n")
        )),
    }
}

/// Checks that the record shows `USER` logged in with `method`, and, for a key, that it
/// was `key` signing with a SHA-2 algorithm. Returns a note for the table.
fn check_login(record: &Record, method: &str, key: Option<&KeyPair>) -> Result<String, String> {
    let Some(login) = &record.authenticated else {
        return Err(format!("the server recorded no login:\n{record}"));
    };
    if !record.authenticated_as(USER, method) {
        return Err(format!("expected {USER} with {method}:\n{record}"));
    }
    let Some(key) = key else {
        return Ok(method.to_owned());
    };
    let fingerprint = fingerprint(key);
    let signed = record
        .attempts
        .iter()
        .any(|a| a.method == "publickey" && a.result.is_ok() && a.detail.ends_with(&fingerprint));
    if !signed {
        return Err(format!("no accepted signature by {fingerprint}:\n{record}"));
    }
    let alg = login.signature_alg.clone().unwrap_or_default();
    if key.algorithm == "ssh-rsa" && !alg.starts_with("rsa-sha2-") {
        return Err(format!(
            "an RSA login with {alg:?}, not rsa-sha2-*:\n{record}"
        ));
    }
    Ok(alg)
}

/// Checks that no login happened and that one attempt was refused for `reason`.
fn check_refused(record: &Record, reason: &str) -> Result<String, String> {
    if record.authenticated.is_some() {
        return Err(format!("the server let the client in:\n{record}"));
    }
    match record.refusals().into_iter().find(|r| r.contains(reason)) {
        Some(found) => Ok(found.to_owned()),
        None => Err(format!("no attempt refused for {reason:?}:\n{record}")),
    }
}

/// Checks that a client's output contains every needle.
fn output_says(out: &RunOutput, needles: &[&str]) -> Result<(), String> {
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    let missing: Vec<&&str> = needles.iter().filter(|n| !text.contains(**n)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("the client did not say {missing:?}:\n{out}"))
    }
}

/// An OpenSSH client that logs in as `USER` with `options` (identity files included),
/// trusts any host key, reads no config, and would run `true`.
fn ssh_command(ssh: &Path, server: &TestServer, options: &[&str]) -> Command {
    let mut command = Command::new(ssh);
    command
        .args(["-v", "-F", "none"])
        .args(options)
        .args(["-p", &server.port().to_string()])
        .args(["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "ConnectTimeout=10"])
        .arg(format!("{USER}@127.0.0.1"))
        .arg("true");
    command
}

/// The line `ssh -v` prints once it has logged in.
fn authenticated_to(server: &TestServer, method: &str) -> String {
    format!(
        "Authenticated to 127.0.0.1 ([127.0.0.1]:{}) using \"{method}\".",
        server.port()
    )
}

/// OpenSSH's clients: each key type, then the refusals and the attempt limit.
#[test]
fn openssh_clients_authenticate_to_our_server() {
    let Some(keys) = Keys::generate() else {
        return;
    };
    let server =
        TestServer::start_with_auth(Config::default(), AuthConfig::new(&keys.authorized_keys()));
    let mut cells = Cells::new("OpenSSH clients against our server");
    let mut too_many = Vec::new();
    for n in 0..=DEFAULT_MAX_ATTEMPTS {
        let Some(key) = keygen(keys.dir.path(), &format!("id_extra{n}"), "ed25519") else {
            return;
        };
        too_many.push(key);
    }

    for version in OpenSsh::ALL {
        let Some(ssh) = version.ssh() else {
            return;
        };
        let name = format!("ssh {}", version.version_prefix());
        for key in [&keys.ed25519, &keys.ecdsa, &keys.rsa] {
            let identity = key.private_key.to_string_lossy();
            let options = ["-i", &identity, "-o", "BatchMode=yes"];
            let (out, records) = run_client(&server, &mut ssh_command(&ssh, &server, &options));
            let result = only_record(&records)
                .and_then(|r| check_login(r, "publickey", Some(key)))
                .and_then(|note| {
                    output_says(&out, &[&authenticated_to(&server, "publickey")])?;
                    Ok(note)
                });
            cells.record(&name, &format!("publickey {}", key.algorithm), result);
        }

        let refusals = [
            (
                "refused: key not listed",
                &keys.wrong,
                "key not in authorized_keys",
            ),
            (
                "refused: from= mismatch",
                &keys.foreign,
                "from= mismatch (line 4)",
            ),
        ];
        for (cell, key, reason) in refusals {
            let identity = key.private_key.to_string_lossy();
            let options = ["-i", &identity, "-o", "BatchMode=yes"];
            let (out, records) = run_client(&server, &mut ssh_command(&ssh, &server, &options));
            let result = only_record(&records)
                .and_then(|r| check_refused(r, reason))
                .and_then(|note| {
                    output_says(
                        &out,
                        &[&format!("{USER}@127.0.0.1: Permission denied (publickey)")],
                    )?;
                    if out.status.code() == Some(255) {
                        Ok(note)
                    } else {
                        Err(format!("ssh should exit with 255:\n{out}"))
                    }
                });
            cells.record(&name, cell, result);
        }

        // One more key than attempts: the server hangs up at the limit.
        let mut options = vec!["-o".to_owned(), "BatchMode=yes".to_owned()];
        for key in &too_many {
            options.extend([
                "-i".to_owned(),
                key.private_key.to_string_lossy().into_owned(),
            ]);
        }
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let (out, records) = run_client(&server, &mut ssh_command(&ssh, &server, &options));
        let result = only_record(&records).and_then(|record| {
            let refused = record.refusals().len();
            let hung_up = record
                .error
                .as_deref()
                .is_some_and(|e| e.contains("too many authentication"));
            if refused != DEFAULT_MAX_ATTEMPTS as usize || !hung_up {
                return Err(format!(
                    "expected {DEFAULT_MAX_ATTEMPTS} refusals and a hang-up:\n{record}"
                ));
            }
            output_says(
                &out,
                &[
                    "Received disconnect from 127.0.0.1",
                    "too many authentication",
                ],
            )?;
            Ok(format!("{refused} keys refused, then disconnected"))
        });
        cells.record(&name, "attempt limit", result);
    }
    cells.finish();
}

/// Keyboard-interactive, through OpenSSH's askpass support.
#[test]
fn openssh_keyboard_interactive_to_our_server() {
    let Some(ssh) = OpenSsh::V10_0.ssh() else {
        return;
    };
    let server = TestServer::start_with_auth(
        Config::default(),
        AuthConfig::new("").question(QUESTION, ANSWER),
    );
    let dir = TempDir::new("askpass");
    let askpass = dir.join("askpass");
    let asked = write_askpass(&askpass, ANSWER);
    let mut cells = Cells::new("keyboard-interactive against our server");
    let mut command = ssh_command(
        &ssh,
        &server,
        &[
            "-o",
            "BatchMode=no",
            "-o",
            "PreferredAuthentications=keyboard-interactive",
        ],
    );
    command
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env_remove("DISPLAY");
    let (out, records) = run_client(&server, &mut command);
    let result = only_record(&records)
        .and_then(|r| check_login(r, "keyboard-interactive", None))
        .and_then(|note| {
            output_says(&out, &[&authenticated_to(&server, "keyboard-interactive")])?;
            let prompts = std::fs::read_to_string(&asked).unwrap_or_default();
            if prompts.contains(QUESTION.trim()) {
                Ok(format!("{note}, answered by SSH_ASKPASS"))
            } else {
                Err(format!("askpass was not asked {QUESTION:?}: {prompts:?}"))
            }
        });
    cells.record("ssh OpenSSH_10.0", "keyboard-interactive", result);
    cells.finish();
}

/// Dropbear's and PuTTY's clients, paramiko and asyncssh; passwords with paramiko.
#[test]
fn other_clients_authenticate_to_our_server() {
    let Some(keys) = Keys::generate() else {
        return;
    };
    let server = TestServer::start_with_auth(
        Config::default(),
        AuthConfig::new(&keys.authorized_keys()).password(USER, PASSWORD),
    );
    let mut cells = Cells::new("other clients against our server");
    dbclient_cells(&mut cells, &server, &keys);
    plink_cells(&mut cells, &server, &keys);
    python_cells(&mut cells, &server, &keys);
    cells.finish();
}

fn dbclient_cells(cells: &mut Cells, server: &TestServer, keys: &Keys) {
    let (Some(dbclient), Some(convert)) = (require(Peer::Dbclient), require(Peer::Dropbearconvert))
    else {
        return;
    };
    for key in [&keys.ed25519, &keys.ecdsa, &keys.rsa] {
        let converted = key.in_dropbear_format(&convert);
        // -y -y: no host key check. Only publickey is tried: without a terminal dbclient
        // cannot ask for a password.
        let mut command = Command::new(&dbclient);
        command
            .args([
                "-y",
                "-y",
                "-p",
                &server.port().to_string(),
                "-l",
                USER,
                "-i",
            ])
            .arg(&converted)
            .args(["127.0.0.1", "true"]);
        let (out, records) = run_client(server, &mut command);
        let result = only_record(&records)
            .and_then(|r| check_login(r, "publickey", Some(key)))
            .and_then(|note| {
                if out.stderr_text().contains("No auth methods could be used") {
                    Err(format!("dbclient says it could not log in:\n{out}"))
                } else {
                    Ok(note)
                }
            });
        cells.record(
            "dbclient 2022.83",
            &format!("publickey {}", key.algorithm),
            result,
        );
    }
}

fn plink_cells(cells: &mut Cells, server: &TestServer, keys: &Keys) {
    let (Some(plink), Some(puttygen)) = (require(Peer::Plink), require(Peer::Puttygen)) else {
        return;
    };
    let host_key = server.host_key().fingerprint_sha256(default_provider());
    for key in [&keys.ed25519, &keys.rsa] {
        let ppk = key.in_putty_format(&puttygen);
        let mut command = Command::new(&plink);
        command
            .args([
                "-ssh",
                "-batch",
                "-v",
                "-noagent",
                "-P",
                &server.port().to_string(),
            ])
            .args(["-l", USER, "-hostkey", &host_key, "-i"])
            .arg(&ppk)
            .args(["127.0.0.1", "true"]);
        let (out, records) = run_client(server, &mut command);
        let result = only_record(&records)
            .and_then(|r| check_login(r, "publickey", Some(key)))
            .and_then(|note| {
                output_says(&out, &["Access granted"])?;
                Ok(note)
            });
        cells.record(
            "plink 0.78",
            &format!("publickey {}", key.algorithm),
            result,
        );
    }
}

/// The Python clients of `tests/peers/auth_peer.py`.
fn python_cells(cells: &mut Cells, server: &TestServer, keys: &Keys) {
    let Some(python) = require(Peer::PeerPython) else {
        return;
    };
    let client = |mode: &str, credential: &[&str]| {
        let mut command = Command::new(&python);
        command
            .arg(peer_script("auth_peer.py"))
            .args([mode, "--port", &server.port().to_string(), "--user", USER])
            .args(credential);
        run_client(server, &mut command)
    };
    let key_arg = |key: &KeyPair| key.private_key.to_string_lossy().into_owned();

    let logins = [
        ("paramiko 5.1", "paramiko-client", &keys.ed25519),
        ("paramiko 5.1", "paramiko-client", &keys.rsa),
        ("asyncssh 2.24", "asyncssh-client", &keys.ed25519),
        ("asyncssh 2.24", "asyncssh-client", &keys.ecdsa),
    ];
    for (name, mode, key) in logins {
        let (out, records) = client(mode, &["--key", &key_arg(key)]);
        let result = only_record(&records)
            .and_then(|r| check_login(r, "publickey", Some(key)))
            .and_then(|note| {
                output_says(&out, &[&format!("authenticated as {USER} with publickey")])?;
                Ok(note)
            });
        cells.record(name, &format!("publickey {}", key.algorithm), result);
    }

    let (out, records) = client("paramiko-client", &["--password", PASSWORD]);
    let result = only_record(&records)
        .and_then(|r| check_login(r, "password", None))
        .and_then(|note| {
            output_says(&out, &[&format!("authenticated as {USER} with password")])?;
            Ok(note)
        });
    cells.record("paramiko 5.1", "password", result);

    let (out, records) = client("paramiko-client", &["--password", "not the password"]);
    let result = only_record(&records)
        .and_then(|r| check_refused(r, "wrong password"))
        .and_then(|note| {
            output_says(&out, &["refused:"])?;
            if out.status.code() == Some(1) {
                Ok(note)
            } else {
                Err(format!("the client should exit with 1:\n{out}"))
            }
        });
    cells.record("paramiko 5.1", "refused: wrong password", result);

    let (out, records) = client("asyncssh-client", &["--key", &key_arg(&keys.foreign)]);
    let result = only_record(&records)
        .and_then(|r| check_refused(r, "from= mismatch (line 4)"))
        .and_then(|note| {
            output_says(&out, &["refused:"])?;
            Ok(note)
        });
    cells.record("asyncssh 2.24", "refused: from= mismatch", result);
}
