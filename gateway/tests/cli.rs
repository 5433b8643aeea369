//! The `gateway` binary as a user runs it.

use std::process::Command;

fn gateway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
}

#[test]
fn demo_runs_handshake_data_and_rekeys() {
    let out = gateway().args(["demo", "--mib", "8"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("negotiated: mlkem768x25519-sha256"),
        "{stdout}"
    );
    assert!(stdout.contains("client -> server: 8 MiB"), "{stdout}");
    assert!(stdout.contains("rekeys: "), "{stdout}");
    let rekeys: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("rekeys: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(rekeys >= 4, "{stdout}");
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
