//! `gateway keygen` writes keys that OpenSSH's own tools read and that sshd accepts.

use std::process::Command;
use std::time::Duration;

use interop::peers::{self, KeyPair, OpenSsh, Peer, Sshd, TempDir};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Generates a key with `gateway keygen`, in our format.
fn keygen(dir: &TempDir, name: &str, args: &[&str]) -> KeyPair {
    let path = dir.join(name);
    let out = peers::run(
        Command::new(peers::gateway_binary())
            .args(["keygen", "-f"])
            .arg(&path)
            .args(["-C", "keygen-test"])
            .args(args),
        TIMEOUT,
    );
    assert!(out.success(), "{out}");
    let public_key = std::fs::read_to_string(path.with_extension("pub"))
        .or_else(|_| std::fs::read_to_string(format!("{}.pub", path.display())))
        .unwrap();
    KeyPair {
        algorithm: public_key.split_whitespace().next().unwrap().to_owned(),
        private_key: path,
        public_key: public_key.trim().to_owned(),
    }
}

#[test]
fn keys_we_write_are_read_by_ssh_keygen_and_accepted_by_sshd() {
    let Some(ssh_keygen) = peers::require(Peer::SshKeygen) else {
        return;
    };
    let Some(sshd) = Sshd::start(OpenSsh::V10_0, &[]) else {
        return;
    };
    let Some(ssh) = OpenSsh::V10_0.ssh() else {
        return;
    };
    let dir = TempDir::new("keygen-cli");

    for (name, args) in [
        ("ed25519", &["-N", ""][..]),
        ("ecdsa", &["-t", "ecdsa", "-N", ""][..]),
        ("rsa", &["-t", "rsa", "-b", "2048", "-N", ""][..]),
    ] {
        let key = keygen(&dir, name, args);

        // ssh-keygen derives the same public key from our private key file.
        let out = peers::run(
            Command::new(&ssh_keygen)
                .arg("-y")
                .arg("-f")
                .arg(&key.private_key),
            TIMEOUT,
        );
        assert!(out.success(), "{name}: {out}");
        let ours: Vec<&str> = key.public_key.split_whitespace().take(2).collect();
        let theirs_text = out.stdout_text();
        let theirs: Vec<&str> = theirs_text.split_whitespace().take(2).collect();
        assert_eq!(ours, theirs, "{name}");

        // And OpenSSH logs in with it.
        sshd.authorize(&key.public_key);
        let out = peers::run(sshd.ssh_command(&ssh, &key, &["-v"]).arg("true"), TIMEOUT);
        assert!(
            out.success(),
            "{name}: ssh with a key from gateway keygen failed\n{out}"
        );
    }

    // An encrypted key opens with its passphrase in ssh-keygen, and not without it.
    let key = keygen(&dir, "encrypted", &["-N", "correct horse"]);
    let out = peers::run(
        Command::new(&ssh_keygen)
            .args(["-y", "-P", "correct horse", "-f"])
            .arg(&key.private_key),
        TIMEOUT,
    );
    assert!(out.success(), "{out}");
    let out = peers::run(
        Command::new(&ssh_keygen)
            .args(["-y", "-P", "wrong", "-f"])
            .arg(&key.private_key),
        TIMEOUT,
    );
    assert!(
        !out.success(),
        "a wrong passphrase must not open the key\n{out}"
    );
}

#[test]
fn keygen_refuses_to_overwrite_and_bad_types() {
    let dir = TempDir::new("keygen-refusals");
    keygen(&dir, "once", &["-N", ""]);
    for args in [
        vec![
            "keygen".to_owned(),
            "-N".into(),
            String::new(),
            "-f".into(),
            dir.join("once").display().to_string(),
        ],
        vec![
            "keygen".into(),
            "-t".into(),
            "dsa".into(),
            "-N".into(),
            String::new(),
            "-f".into(),
            dir.join("dsa").display().to_string(),
        ],
        vec![
            "keygen".into(),
            "-t".into(),
            "ed25519".into(),
            "-b".into(),
            "4096".into(),
            "-N".into(),
            String::new(),
            "-f".into(),
            dir.join("b").display().to_string(),
        ],
    ] {
        let out = peers::run(Command::new(peers::gateway_binary()).args(&args), TIMEOUT);
        assert_eq!(out.status.code(), Some(255), "{args:?}\n{out}");
        assert_eq!(out.stderr_text().lines().count(), 1, "{args:?}\n{out}");
    }
}
