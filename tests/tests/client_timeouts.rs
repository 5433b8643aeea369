//! The client's clocks: `ConnectTimeout` ends a connect to an address that never
//! answers, and `ServerAliveInterval` notices a bastion that went silent with its socket
//! still open, closing the forwards' local sockets and exiting 255 with one line, as ssh
//! does. Keepalives follow ssh's semantics: after each whole interval without a packet
//! from the server one goes out, and when `ServerAliveCountMax` of them have gone
//! unanswered the client gives up at the next check, `ServerAliveCountMax + 1` intervals
//! after the server was last heard; a server that answers is never given up on, even
//! with a count of 1 on a connection that carries nothing else.

use std::io::Read;
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use interop::forwarding::{
    BLACK_HOLE, Serve, black_hole_namespace, echo_service, echo_through, local_forward,
    source_service,
};
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

/// A bastion that stops answering, its socket still open, is given up on exactly when
/// ssh would: `ServerAliveInterval=2` and `ServerAliveCountMax=2` send two keepalives two
/// seconds apart after the last packet, and the check an interval after the second finds
/// it unanswered, three intervals (6 s) after the server was last heard. The client then closes the
/// forward's local socket and exits 255 with ssh's line.
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
        &["-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=2"],
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
    // Drain what was on its way, until the forward closes. The last data read is the
    // last packet the client got from the server, to within the time it takes to pass
    // it on: the silence the keepalives measure starts there.
    let mut last_data = stopped;
    let closed_after = loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break stopped.elapsed(),
            Ok(_) => last_data = Instant::now(),
        }
    };
    let status = client.wait_exit(Duration::from_secs(10));
    let exited = Instant::now();
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
    // (ServerAliveCountMax + 1) intervals of silence: 6 s. The slack below covers the
    // time a packet takes to reach the reader; the slack above, a late timer on a busy
    // machine and this test's 20 ms polling. A client that counted whole intervals from
    // a fixed start, or waited one more, would be an interval out.
    let silence = exited.saturating_duration_since(last_data);
    println!("gave up {silence:?} after the last data, {closed_after:?} after the stop");
    assert!(
        silence >= Duration::from_millis(5_500) && silence < Duration::from_millis(7_500),
        "the client gave up {silence:?} after the server was last heard"
    );
    let exited_after = exited.saturating_duration_since(stopped);
    assert!(
        closed_after <= exited_after + Duration::from_millis(500),
        "the local socket closed {closed_after:?} after, the client exited {exited_after:?} after"
    );
}

/// `ServerAliveCountMax=1` on a connection that carries nothing: each silent interval a
/// keepalive goes out and its answer keeps the connection, so after several intervals
/// the client still runs and its forward still carries data. A client that gave up
/// without first asking would end here after two to four seconds.
#[test]
fn keepalives_keep_an_idle_connection_up() {
    let dir = TempDir::new("idle-bastion");
    let Some(serve) = Serve::start(dir.path(), &[]) else {
        return;
    };
    let echo = echo_service();
    let (mut client, local) = local_forward(
        &serve.key.private_key,
        serve.port,
        echo,
        &["-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=1"],
    );
    thread::sleep(Duration::from_millis(5_000));
    assert!(
        client.alive(),
        "the client ended on an idle connection to a server that answers: {}",
        client.stderr_after_exit()
    );
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, local)).expect("connect");
    let (sent, echoed) = echo_through(stream, 64 << 10, 3);
    assert_eq!(sent, echoed, "the forward garbled the data");
    assert!(client.alive(), "the client ended");
}
