//! Real clients against our server role: OpenSSH's `ssh` 9.2 and 10.0 and Dropbear's
//! `dbclient` connect to [`TestServer`], which runs `ssh-proto`'s transport as a server.
//!
//! `ssh-proto` has no authentication layer yet, so the server refuses every login; a
//! client that gets as far as asking to log in has done everything the transport offers:
//! version exchange, key exchange with strict key exchange, NEWKEYS both ways, EXT_INFO,
//! and encrypted SERVICE_REQUEST and USERAUTH_REQUEST messages with their replies. Each
//! test checks that story twice, from the client's verbose log and from the server's
//! record of the connection.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use interop::peers::{OpenSsh, Peer, RunOutput, require, run};
use interop::server::{Record, TestServer};
use ssh_proto::algorithms::{Algorithm, Cipher, Kex, Mac};
use ssh_proto::crypto::default_provider;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const RECORD_TIMEOUT: Duration = Duration::from_secs(10);

/// The user the clients ask to log in as; the server refuses everyone anyway.
const USER: &str = "interop";

/// The ciphers and MACs to force, one client run each: every AEAD cipher alone, and every
/// CTR cipher with every MAC.
fn cipher_cells(ciphers: &[Cipher], macs: &[Mac]) -> Vec<(Cipher, Option<Mac>)> {
    let mut cells = Vec::new();
    for &cipher in ciphers {
        if cipher.is_aead() {
            cells.push((cipher, None));
        } else {
            cells.extend(macs.iter().map(|&mac| (cipher, Some(mac))));
        }
    }
    cells
}

fn describe(cipher: Cipher, mac: Option<Mac>) -> String {
    match mac {
        Some(mac) => format!("{}+{}", cipher.name(), mac.name()),
        None => cipher.name().to_owned(),
    }
}

/// An OpenSSH client command that connects to `server` without checking its host key,
/// reads no config and never prompts, and would run `true` if it could log in.
fn ssh_command(ssh: &Path, server: &TestServer, options: &[&str]) -> Command {
    let mut command = Command::new(ssh);
    command
        .args(["-vvv", "-F", "none"])
        .args(options)
        .args(["-p", &server.port().to_string()])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "BatchMode=yes"])
        .args(["-o", "PreferredAuthentications=publickey,none"])
        .args(["-o", "ConnectTimeout=10"])
        .arg(format!("{USER}@127.0.0.1"))
        .arg("true");
    command
}

/// Checks that the server's record of one connection shows a client that reached
/// authentication, left on its own, and negotiated `kex`, `cipher` and `mac`.
fn check_record(
    record: &Record,
    kex: Kex,
    cipher: Option<Cipher>,
    mac: Option<Mac>,
) -> Result<(), String> {
    let mut wrong = Vec::new();
    if let Some(error) = &record.error {
        wrong.push(format!("the connection failed: {error}"));
    }
    if !record.reached_auth() {
        wrong.push("the client did not reach authentication".to_owned());
    }
    if let Some(request) = record.auth_requests.first()
        && (request.user != USER || request.service != "ssh-connection")
    {
        wrong.push(format!("odd USERAUTH_REQUEST {request:?}"));
    }
    if !record.unexpected.is_empty() {
        wrong.push(format!("unexpected messages {:?}", record.unexpected));
    }
    match &record.negotiated {
        None => wrong.push("no key exchange finished".to_owned()),
        Some(n) => {
            if n.kex != kex {
                wrong.push(format!("kex {}", n.kex.name()));
            }
            if !n.strict_kex {
                wrong.push("strict kex off".to_owned());
            }
            if let Some(cipher) = cipher
                && (n.cipher_c2s, n.cipher_s2c) != (cipher, cipher)
            {
                wrong.push(format!("ciphers {:?}/{:?}", n.cipher_c2s, n.cipher_s2c));
            }
            if cipher.is_some() && (n.mac_c2s, n.mac_s2c) != (mac, mac) {
                wrong.push(format!("MACs {:?}/{:?}", n.mac_c2s, n.mac_s2c));
            }
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("server record: {}\n{record}", wrong.join("; ")))
    }
}

/// Checks an OpenSSH client's `-vvv` log: key exchange `kex` with strict key exchange,
/// our host key, NEWKEYS both ways, and a refused login.
fn check_openssh_log(
    out: &RunOutput,
    server: &TestServer,
    kex: Kex,
    cipher: Option<(Cipher, Option<Mac>)>,
) -> Result<(), String> {
    let log = out.stderr_text();
    let fingerprint = server.host_key().fingerprint_sha256(default_provider());
    let mut expected = vec![
        format!("kex: algorithm: {}", kex.name()),
        "kex: host key algorithm: ssh-ed25519".to_owned(),
        format!("Server host key: ssh-ed25519 {fingerprint}"),
        "will use strict KEX ordering".to_owned(),
        "SSH2_MSG_NEWKEYS sent".to_owned(),
        "SSH2_MSG_NEWKEYS received".to_owned(),
        "SSH2_MSG_SERVICE_ACCEPT received".to_owned(),
        "Authentications that can continue: publickey".to_owned(),
        format!("{USER}@127.0.0.1: Permission denied (publickey)."),
    ];
    if let Some((cipher, mac)) = cipher {
        let mac = mac.map_or("<implicit>", Mac::name);
        for direction in ["client->server", "server->client"] {
            expected.push(format!(
                "kex: {direction} cipher: {} MAC: {mac} compression: none",
                cipher.name()
            ));
        }
    }
    let missing: Vec<&String> = expected.iter().filter(|e| !log.contains(*e)).collect();
    if out.timed_out || out.status.code() != Some(255) {
        return Err(format!("ssh should exit with 255:\n{out}"));
    }
    if !missing.is_empty() {
        return Err(format!("the ssh log lacks {missing:?}:\n{out}"));
    }
    Ok(())
}

/// One OpenSSH client with its default algorithms against our server.
fn openssh_reaches_auth(version: OpenSsh, kex: Kex) {
    let Some(ssh) = version.ssh() else {
        return;
    };
    let server = TestServer::start();
    let out = run(&mut ssh_command(&ssh, &server, &[]), CLIENT_TIMEOUT);
    let records = server.wait_for_records(1, RECORD_TIMEOUT);
    assert_eq!(records.len(), 1, "one connection expected: {records:?}");
    let record = &records[0];
    assert!(
        record
            .peer_version
            .as_deref()
            .is_some_and(|v| v.starts_with(&format!("SSH-2.0-{}", version.version_prefix()))),
        "{record}"
    );
    let results = [
        check_openssh_log(&out, &server, kex, None),
        check_record(record, kex, None, None),
    ];
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn ssh_92_reaches_authentication() {
    openssh_reaches_auth(OpenSsh::V9_2, Kex::Curve25519Sha256);
}

#[test]
fn ssh_100_reaches_authentication_with_mlkem() {
    openssh_reaches_auth(OpenSsh::V10_0, Kex::MlKem768X25519Sha256);
}

/// Every cipher (and MAC, for the CTR ciphers) forced on each OpenSSH client in turn.
#[test]
fn ssh_forced_ciphers_against_our_server() {
    let server = TestServer::start();
    let mut passed = Vec::new();
    let mut failures = Vec::new();
    let mut connections = 0;
    for version in OpenSsh::ALL {
        let Some(ssh) = version.ssh() else {
            return;
        };
        let kex = match version {
            OpenSsh::V9_2 => Kex::Curve25519Sha256,
            OpenSsh::V10_0 => Kex::MlKem768X25519Sha256,
        };
        for (cipher, mac) in cipher_cells(Cipher::ALL, Mac::ALL) {
            let mut options = vec!["-c", cipher.name()];
            if let Some(mac) = mac {
                options.extend(["-m", mac.name()]);
            }
            let out = run(&mut ssh_command(&ssh, &server, &options), CLIENT_TIMEOUT);
            connections += 1;
            let records = server.wait_for_records(connections, RECORD_TIMEOUT);
            let cell = format!("{} {}", version.version_prefix(), describe(cipher, mac));
            let result = check_openssh_log(&out, &server, kex, Some((cipher, mac)))
                .and_then(|()| check_record(&records[connections - 1], kex, Some(cipher), mac));
            match result {
                Ok(()) => passed.push(cell),
                Err(e) => failures.push(format!("{cell}: {e}")),
            }
        }
    }
    println!(
        "\nclients forcing each cipher against our server: {} passed, {} failed",
        passed.len(),
        failures.len()
    );
    for cell in &passed {
        println!("  ok  {cell}");
    }
    assert!(
        failures.is_empty(),
        "{} cells failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Dropbear's client with its default algorithms, then with each cipher (and MAC, for
/// the CTR ciphers) it shares with us forced. `dbclient` prints nothing about key
/// exchange without a debug build, so the server's record carries the detail; the
/// client's own words show that it reached authentication.
#[test]
fn dbclient_reaches_authentication() {
    let Some(dbclient) = require(Peer::Dbclient) else {
        return;
    };
    let server = TestServer::start();
    // Dropbear 2022.83 offers chacha20-poly1305, aes128-ctr and aes256-ctr, with
    // hmac-sha1 and hmac-sha2-256 (`dbclient -c help`, `dbclient -m help`).
    let mut runs: Vec<(Option<Cipher>, Option<Mac>)> = vec![(None, None)];
    runs.extend(
        cipher_cells(
            &[
                Cipher::ChaCha20Poly1305,
                Cipher::Aes128Ctr,
                Cipher::Aes256Ctr,
            ],
            &[Mac::HmacSha256],
        )
        .into_iter()
        .map(|(cipher, mac)| (Some(cipher), mac)),
    );
    let mut failures = Vec::new();
    for (i, &(cipher, mac)) in runs.iter().enumerate() {
        let mut command = Command::new(&dbclient);
        // -y -y: no host key check at all.
        command.args(["-y", "-y", "-p", &server.port().to_string(), "-l", USER]);
        if let Some(cipher) = cipher {
            command.args(["-c", cipher.name()]);
        }
        if let Some(mac) = mac {
            command.args(["-m", mac.name()]);
        }
        command.args(["127.0.0.1", "true"]);
        let out = run(&mut command, CLIENT_TIMEOUT);
        let records = server.wait_for_records(i + 1, RECORD_TIMEOUT);
        let cell = cipher.map_or("defaults".to_owned(), |c| describe(c, mac));
        let mut result = check_record(&records[i], Kex::Curve25519Sha256, cipher, mac);
        if out.success() || !out.stderr_text().contains("No auth methods could be used") {
            result = Err(format!("dbclient should fail to log in:\n{out}"));
        }
        match result {
            Ok(()) => println!("dbclient {cell}: ok"),
            Err(e) => failures.push(format!("dbclient {cell}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// ssh-audit's audit of our server, for information: its verdict depends on its own
/// policy (it warns about every key exchange that is not post-quantum and about
/// encrypt-and-MAC modes), so only its report itself is checked, and that our server
/// survived its probing.
#[test]
fn ssh_audit_of_our_server() {
    let Some(ssh_audit) = require(Peer::SshAudit) else {
        return;
    };
    let server = TestServer::start();
    let out = run(
        Command::new(&ssh_audit)
            .args(["--no-colors", "--skip-rate-test", "-p"])
            .arg(server.port().to_string())
            .arg("127.0.0.1"),
        Duration::from_secs(60),
    );
    println!("{out}");
    // 0: all good, 2: warnings, 3: failures; anything else means no audit happened.
    assert!(
        !out.timed_out && matches!(out.status.code(), Some(0 | 2 | 3)),
        "{out}"
    );
    let report = out.stdout_text();
    let fingerprint = server.host_key().fingerprint_sha256(default_provider());
    for expected in [
        "(gen) banner: SSH-2.0-gateway_".to_owned(),
        "(kex) mlkem768x25519-sha256".to_owned(),
        "(kex) kex-strict-s-v00@openssh.com".to_owned(),
        format!("(fin) ssh-ed25519: {fingerprint}"),
    ] {
        assert!(
            report.contains(&expected),
            "no {expected:?} in the audit:\n{out}"
        );
    }
    let records = server.records();
    assert!(!records.is_empty(), "ssh-audit never connected");
    for record in &records {
        assert!(record.error.is_none(), "a connection failed:\n{record}");
    }
}
