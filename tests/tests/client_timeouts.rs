//! The client's clocks: `ConnectTimeout` ends a connect to an address that never
//! answers, and `ServerAliveInterval` notices a bastion that went silent with its socket
//! still open, within `ServerAliveCountMax` intervals, closing the forwards' local
//! sockets and exiting 255 with one line, as ssh does.

use std::io::Read;
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use interop::forwarding::{BLACK_HOLE, Serve, black_hole_namespace, local_forward, source_service};
use interop::peers::{TempDir, current_user, gateway_binary, run, unavailable};

#[test]
fn connect_timeout_ends_a_connect_that_is_never_answered() {
    if current_user() != "root" {
        unavailable::<()>("root, for a network namespace holding a black hole");
        return;
    }
    let mut command = black_hole_namespace(gateway_binary());
    command
        .args([
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=1",
        ])
        .args([BLACK_HOLE, "true"])
        .stdin(Stdio::null());
    let out = run(&mut command, Duration::from_secs(30));
    let stderr = out.stderr_text();
    assert_eq!(out.status.code(), Some(255), "{out}");
    assert_eq!(
        stderr.trim_end(),
        format!("gateway: connect to host {BLACK_HOLE} port 22: Connection timed out"),
        "{out}"
    );
    assert!(
        out.elapsed >= Duration::from_secs(1) && out.elapsed < Duration::from_secs(4),
        "ConnectTimeout=1 ended the connect after {:?}",
        out.elapsed
    );
}

#[test]
fn keepalives_notice_a_silent_bastion() {
    let dir = TempDir::new("silent-bastion");
    let Some(serve) = Serve::start(dir.path(), &[]) else {
        return;
    };
    let source = source_service();
    let (mut client, local) = local_forward(
        &serve.key.private_key,
        serve.port,
        source,
        &["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=3"],
    );
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, local)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut buf = vec![0u8; 64 << 10];
    stream
        .read_exact(&mut buf)
        .expect("data through the forward");

    // The server stops answering, its socket still open: nothing is refused or reset.
    let stop = |signal: &str| {
        let status = Command::new("kill")
            .args([signal, &serve.process.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal}");
    };
    stop("-STOP");
    let stopped = Instant::now();
    // Drain what was on its way, until the forward closes.
    let closed_after = loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break stopped.elapsed(),
            Ok(_) => {}
        }
    };
    let status = client.wait_exit(Duration::from_secs(10));
    let exited_after = stopped.elapsed();
    stop("-CONT");
    let status =
        status.unwrap_or_else(|| panic!("the client still runs 10 s after its server stopped"));
    assert_eq!(status.code(), Some(255), "the client's exit status");
    let stderr = client.stderr_after_exit();
    assert_eq!(
        stderr.trim_end(),
        "gateway: Timeout, server 127.0.0.1 not responding.",
        "the client's last words"
    );
    // Three unanswered keepalives a second apart, and the check that finds the third
    // one unanswered: between 3 and 5 seconds, with some slack for a busy machine.
    assert!(
        exited_after >= Duration::from_secs(3) && exited_after < Duration::from_millis(5500),
        "the client gave up {exited_after:?} after the server went silent"
    );
    assert!(
        closed_after <= exited_after + Duration::from_millis(500),
        "the local socket closed {closed_after:?} after, the client exited {exited_after:?} after"
    );
}
