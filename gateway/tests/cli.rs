//! The `gateway` binary as a user runs it.

use std::process::Command;

fn gateway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
}

#[test]
fn demo_logs_in_runs_a_command_and_forwards() {
    let out = gateway().args(["demo", "--mib", "8"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for needle in [
        "client: host key matched known_hosts; logged in as",
        "hello from ",
        "client: the command exited with status 0",
        "negotiated: mlkem768x25519-sha256",
        "type=direct-tcpip to=127.0.0.1:",
        "forward: 8 MiB each way in",
        "the echo identical by SHA-256",
        "demo finished",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    let rekeys: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("forward: ")?.split_once(" rekeys"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no rekey count in:\n{stdout}"));
    assert!(rekeys >= 3, "{rekeys} rekeys:\n{stdout}");
}

#[test]
fn errors_are_one_line_and_exit_255() {
    for args in [
        &["probe"][..],
        &["nonsense"],
        &["probe", "-o", "Ciphers=rc4", "localhost"],
    ] {
        let out = gateway().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("gateway: "), "{args:?}: {stderr}");
    }
}
