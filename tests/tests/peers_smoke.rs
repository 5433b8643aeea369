//! Proves the peer harness itself works: each server starts, listens where it says and is
//! the version it claims, clients report the right versions, a real login through the
//! harness's keys and config succeeds, and a hung client is killed on time.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use interop::peers::{
    Dropbear, OpenSsh, Peer, Sshd, TempDir, keygen, require, run, run_with_input, server_banner,
};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

fn assert_sshd_banner(version: OpenSsh) {
    let Some(sshd) = Sshd::start(version, &[]) else {
        return;
    };
    let banner = server_banner(sshd.addr());
    let expected = format!("SSH-2.0-{}", version.version_prefix());
    assert!(
        banner.starts_with(&expected),
        "banner {banner:?} should start with {expected:?}"
    );
}

#[test]
fn sshd_92_sends_its_banner() {
    assert_sshd_banner(OpenSsh::V9_2);
}

#[test]
fn sshd_100_sends_its_banner() {
    assert_sshd_banner(OpenSsh::V10_0);
}

#[test]
fn dropbear_sends_its_banner() {
    let Some(dropbear) = Dropbear::start(&[]) else {
        return;
    };
    let banner = server_banner(dropbear.addr());
    assert!(
        banner.starts_with("SSH-2.0-dropbear_2022.83"),
        "banner {banner:?} should name dropbear_2022.83"
    );
    assert!(dropbear.host_key().public_key.starts_with("ssh-ed25519 "));
    assert!(
        dropbear.wait_for_log("Child connection from 127.0.0.1", Duration::from_secs(10)),
        "dropbear's log should record the connection:\n{}",
        dropbear.log()
    );
}

#[test]
fn openssh_clients_report_their_versions() {
    for version in OpenSsh::ALL {
        let Some(ssh) = version.ssh() else {
            return;
        };
        let out = run(Command::new(&ssh).arg("-V"), CLIENT_TIMEOUT);
        assert!(out.success(), "{out}");
        // `ssh -V` prints to stderr.
        assert!(
            out.stderr_text().starts_with(version.version_prefix()),
            "{} -V should report {}: {out}",
            ssh.display(),
            version.version_prefix()
        );
    }
}

/// Logs in with `client` to `server` with a fresh key and runs `echo`, forcing one key
/// exchange through the server's config, and checks both sides saw it.
fn assert_login(client: OpenSsh, server: OpenSsh, kex: &str) {
    let Some(ssh) = client.ssh() else {
        return;
    };
    let Some(sshd) = Sshd::start(server, &[&format!("KexAlgorithms {kex}")]) else {
        return;
    };
    let Some(identity) = keygen(sshd.dir(), "id_ed25519", "ed25519") else {
        return;
    };
    sshd.authorize(&identity.public_key);

    let out = run(
        sshd.ssh_command(&ssh, &identity, &["-v"])
            .arg("echo harness-login-ok"),
        CLIENT_TIMEOUT,
    );
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout_text(), "harness-login-ok\n");
    assert!(
        out.stderr_text()
            .contains(&format!("kex: algorithm: {kex}")),
        "the client should have used {kex}: {out}"
    );
    assert!(
        sshd.wait_for_log("Accepted publickey", Duration::from_secs(10)),
        "sshd should log the login:\n{}",
        sshd.log()
    );
}

#[test]
fn ssh_92_logs_in_to_sshd_100() {
    assert_login(OpenSsh::V9_2, OpenSsh::V10_0, "curve25519-sha256");
}

#[test]
fn ssh_100_logs_in_to_sshd_92() {
    assert_login(
        OpenSsh::V10_0,
        OpenSsh::V9_2,
        "sntrup761x25519-sha512@openssh.com",
    );
}

#[test]
fn ssh_100_logs_in_to_sshd_100_with_mlkem() {
    assert_login(OpenSsh::V10_0, OpenSsh::V10_0, "mlkem768x25519-sha256");
}

#[test]
fn unknown_host_key_is_refused() {
    let Some(ssh) = OpenSsh::V9_2.ssh() else {
        return;
    };
    let Some(sshd) = Sshd::start(OpenSsh::V9_2, &[]) else {
        return;
    };
    let Some(identity) = keygen(sshd.dir(), "id_ed25519", "ed25519") else {
        return;
    };
    sshd.authorize(&identity.public_key);
    // Without the harness's known_hosts file, the strict client must refuse the server.
    let out = run(
        sshd.ssh_command(&ssh, &identity, &["-o", "UserKnownHostsFile=/dev/null"])
            .arg("true"),
        CLIENT_TIMEOUT,
    );
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr_text().contains("Host key verification failed"),
        "{out}"
    );
}

#[test]
fn run_kills_a_client_that_hangs() {
    let start = Instant::now();
    let out = run(
        Command::new("sh").args(["-c", "echo started; sleep 60"]),
        Duration::from_millis(300),
    );
    assert!(out.timed_out, "{out}");
    assert!(!out.success());
    assert_eq!(out.stdout_text(), "started\n");
    // The sleep is a child of sh: the whole group must die, or reading the pipes would
    // wait out the full minute.
    assert!(start.elapsed() < Duration::from_secs(10), "{out}");
}

#[test]
fn run_with_input_feeds_stdin() {
    let out = run_with_input(&mut Command::new("cat"), Some(b"abc\n"), CLIENT_TIMEOUT);
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout, b"abc\n");
}

#[test]
fn dropping_a_server_kills_it() {
    let Some(sshd) = Sshd::start(OpenSsh::V9_2, &[]) else {
        return;
    };
    let pid_file = sshd.dir().join("sshd.pid");
    let pid = std::fs::read_to_string(&pid_file).expect("sshd writes its pid file");
    let proc_dir = format!("/proc/{}", pid.trim());
    assert!(Path::new(&proc_dir).exists());
    let dir = sshd.dir().to_path_buf();
    drop(sshd);
    assert!(!Path::new(&proc_dir).exists(), "sshd {pid} still runs");
    assert!(!dir.exists(), "its folder {} is still there", dir.display());
}

#[test]
fn every_peer_is_found() {
    for peer in Peer::ALL {
        if require(peer).is_none() {
            return;
        }
    }
}

#[test]
fn temp_dirs_are_distinct() {
    let a = TempDir::new("smoke");
    let b = TempDir::new("smoke");
    assert_ne!(a.path(), b.path());
}
