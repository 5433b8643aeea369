//! The `gateway probe` command, run as a user runs it: the built binary against real
//! OpenSSH servers, checking its output, its `-o` options and its one-line errors with
//! exit status 255, as `ssh` has them.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use interop::peers::{OpenSsh, Peer, RunOutput, Sshd, gateway_binary, require, run};

const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

fn probe(port: u16, options: &[&str]) -> RunOutput {
    let mut command = Command::new(gateway_binary());
    command.args(["probe", "-p", &port.to_string()]);
    for option in options {
        command.args(["-o", option]);
    }
    command.arg("127.0.0.1");
    run(&mut command, PROBE_TIMEOUT)
}

/// The `SHA256:...` fingerprint `ssh-keygen -lf` gives for a public key file.
fn keygen_fingerprint(public_key_file: &Path) -> Option<String> {
    let ssh_keygen = require(Peer::SshKeygen)?;
    let out = run(
        Command::new(ssh_keygen).arg("-lf").arg(public_key_file),
        PROBE_TIMEOUT,
    );
    assert!(out.success(), "{out}");
    // "256 SHA256:... comment (ED25519)"
    let fingerprint = out
        .stdout_text()
        .split_whitespace()
        .nth(1)
        .map(str::to_owned);
    assert!(
        fingerprint
            .as_deref()
            .is_some_and(|f| f.starts_with("SHA256:")),
        "{out}"
    );
    fingerprint
}

/// An OpenSSH 10.0 server that does not slow down a client making many short
/// connections without logging in, which is what probing is.
fn sshd_100(extra: &[&str]) -> Option<Sshd> {
    let mut config = vec!["PerSourcePenalties no"];
    config.extend(extra);
    Sshd::start(OpenSsh::V10_0, &config)
}

/// Asserts a failed run: exit status 255, nothing on stdout, exactly one line on stderr
/// that contains every one of `needles`.
fn assert_one_line_error(out: &RunOutput, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(255), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    let stderr = out.stderr_text();
    assert!(
        stderr.ends_with('\n') && stderr.lines().count() == 1,
        "stderr should be one line: {out}"
    );
    println!("{}", stderr.trim_end());
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr should name {needle:?}: {out}"
        );
    }
}

#[test]
fn probe_reports_mlkem_and_the_host_key_fingerprint() {
    let Some(sshd) = sshd_100(&[]) else {
        return;
    };
    let ed25519 = sshd.host_key("ssh-ed25519").expect("ed25519 host key");
    let Some(fingerprint) = keygen_fingerprint(&PathBuf::from(format!(
        "{}.pub",
        ed25519.private_key.display()
    ))) else {
        return;
    };
    let out = probe(sshd.port(), &[]);
    assert!(out.success(), "{out}");
    let stdout = out.stdout_text();
    for line in [
        "server: SSH-2.0-OpenSSH_10.0".to_owned(),
        "kex: mlkem768x25519-sha256\n".to_owned(),
        "host key algorithm: ssh-ed25519\n".to_owned(),
        "strict key exchange: yes\n".to_owned(),
        format!("ED25519 key fingerprint is {fingerprint}.\n"),
    ] {
        assert!(stdout.contains(&line), "no {line:?} in the output: {out}");
    }
}

#[test]
fn probe_options_take_effect() {
    let Some(sshd) = sshd_100(&[]) else {
        return;
    };
    let rsa = sshd.host_key("ssh-rsa").expect("RSA host key");
    let Some(rsa_fingerprint) =
        keygen_fingerprint(&PathBuf::from(format!("{}.pub", rsa.private_key.display())))
    else {
        return;
    };
    let cases: [(&[&str], Vec<String>); 5] = [
        (
            &["Ciphers=^chacha20-poly1305@openssh.com"],
            vec![
                "cipher client->server: chacha20-poly1305@openssh.com MAC: <implicit>\n".into(),
                "cipher server->client: chacha20-poly1305@openssh.com MAC: <implicit>\n".into(),
            ],
        ),
        (
            &["KexAlgorithms=-mlkem768x25519-sha256"],
            vec!["kex: curve25519-sha256\n".into()],
        ),
        (
            &["KexAlgorithms=curve25519-sha256@libssh.org"],
            vec!["kex: curve25519-sha256@libssh.org\n".into()],
        ),
        (
            &["Ciphers=aes256-ctr", "MACs=hmac-sha2-512"],
            vec![
                "cipher client->server: aes256-ctr MAC: hmac-sha2-512\n".into(),
                "cipher server->client: aes256-ctr MAC: hmac-sha2-512\n".into(),
            ],
        ),
        (
            &["HostKeyAlgorithms=rsa-sha2-512"],
            vec![
                "host key algorithm: rsa-sha2-512\n".into(),
                format!("RSA key fingerprint is {rsa_fingerprint}.\n"),
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (options, expected) in &cases {
        let out = probe(sshd.port(), options);
        let stdout = out.stdout_text();
        let missing: Vec<&String> = expected.iter().filter(|e| !stdout.contains(*e)).collect();
        if !out.success() || !missing.is_empty() {
            failures.push(format!("-o {options:?}: missing {missing:?}\n{out}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn probe_of_a_closed_port_fails_in_one_line() {
    // A port that was just free; nothing listens on it once the listener is dropped.
    let port = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        listener.local_addr().expect("local address").port()
    };
    let out = probe(port, &[]);
    assert_one_line_error(&out, &[&format!("port {port}"), "Connection refused"]);
}

#[test]
fn probe_without_a_common_cipher_names_both_offers() {
    let Some(sshd) = Sshd::start(OpenSsh::V9_2, &["Ciphers aes256-gcm@openssh.com"]) else {
        return;
    };
    let out = probe(sshd.port(), &["Ciphers=aes128-ctr"]);
    assert_one_line_error(
        &out,
        &[
            "no matching cipher",
            "aes128-ctr",
            "aes256-gcm@openssh.com",
            &format!("port {}", sshd.port()),
        ],
    );
}

#[test]
fn probe_refuses_an_unknown_cipher_in_one_line() {
    // The option is refused before any connection is tried: nothing listens here.
    let out = probe(9, &["Ciphers=rc4"]);
    assert_one_line_error(&out, &["rc4", "cipher"]);
    assert!(
        !out.stderr_text().contains("port 9"),
        "no connection should be tried: {out}"
    );
}
