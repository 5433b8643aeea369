//! SIGTERM and SIGINT, for `gateway serve` and for the client: the listeners close at
//! once, channels under way are given time to finish, and the process exits within
//! 5 seconds even when a channel would never finish by itself.

use std::io::Read;
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use interop::forwarding::{
    Reaper, Serve, echo_service, echo_through, local_forward, source_service,
};
use interop::peers::TempDir;

/// The drain's limit, and how much later than it the process may be seen to exit.
const DRAIN: Duration = Duration::from_secs(5);
const SLACK: Duration = Duration::from_millis(700);

fn signal(process: &Reaper, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &process.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed");
}

/// Whether something still accepts connections on the loopback `port`.
fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(500),
    )
    .is_ok()
}

/// A connection through the `-L` forward on `local` to a [`source_service`], once its
/// first 64 KiB have come through, and a buffer of that size to go on reading into.
fn flowing(local: u16) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, local)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let mut buf = vec![0u8; 64 << 10];
    stream.read_exact(&mut buf).expect("data from the source");
    (stream, buf)
}

#[test]
fn serve_finishes_a_transfer_under_way_then_exits() {
    let dir = TempDir::new("drain-serve");
    let Some(mut serve) = Serve::start_with(dir.path(), &["-v"], Stdio::piped()) else {
        return;
    };
    let echo = echo_service();
    let (mut client, local) = local_forward(
        &serve.key.private_key,
        serve.port,
        echo,
        &["-o", "RekeyLimit=4M"],
    );

    // 32 MiB each way through the forward, with SIGTERM sent to the server meanwhile.
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, local)).expect("connect");
    let transfer = thread::spawn(move || echo_through(stream, 32 << 20, 7));
    thread::sleep(Duration::from_millis(100));
    signal(&serve.process, "TERM");
    let signalled = Instant::now();
    thread::sleep(Duration::from_millis(200));
    assert!(
        !accepts(serve.port),
        "gateway serve still accepts connections after SIGTERM"
    );

    let (sent, received) = transfer.join().expect("transfer thread");
    assert_eq!(
        sent, received,
        "the transfer under way was cut by the drain"
    );
    let status = serve
        .process
        .wait_exit(DRAIN + SLACK)
        .unwrap_or_else(|| panic!("gateway serve still runs {:?} after SIGTERM", DRAIN + SLACK));
    assert!(
        status.success(),
        "gateway serve exited with {status} after SIGTERM"
    );
    assert!(signalled.elapsed() < DRAIN + SLACK);
    let log = serve.process.stderr_after_exit();
    assert!(
        log.contains("stopped"),
        "no stop line in the server's log:\n{log}"
    );

    // The client saw its server go, and says so.
    let status = client
        .wait_exit(Duration::from_secs(5))
        .expect("the client outlived its server by 5 s");
    assert_eq!(status.code(), Some(255), "the client's exit status");
}

#[test]
fn serve_cuts_a_channel_that_never_ends_within_five_seconds() {
    let dir = TempDir::new("drain-cut");
    let Some(mut serve) = Serve::start(dir.path(), &[]) else {
        return;
    };
    let source = source_service();
    let (_client, local) = local_forward(&serve.key.private_key, serve.port, source, &[]);
    let (mut stream, mut buf) = flowing(local);

    signal(&serve.process, "TERM");
    let signalled = Instant::now();
    // Keep reading, as a busy client would, until the forward closes.
    let mut total = 0usize;
    let closed_after = loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break signalled.elapsed(),
            Ok(n) => total += n,
        }
    };
    let status = serve.process.wait_exit(DRAIN + SLACK);
    assert!(
        status.is_some(),
        "gateway serve still runs {:?} after SIGTERM with an endless channel",
        DRAIN + SLACK
    );
    assert!(
        closed_after < DRAIN + SLACK,
        "the forwarded socket closed {closed_after:?} after SIGTERM"
    );
    assert!(total > 0, "nothing moved during the drain");
}

#[test]
fn the_client_stops_on_sigint_and_sigterm() {
    let dir = TempDir::new("drain-client");
    let Some(serve) = Serve::start(dir.path(), &[]) else {
        return;
    };
    let source = source_service();
    for name in ["INT", "TERM"] {
        let (mut client, local) = local_forward(&serve.key.private_key, serve.port, source, &[]);
        // Open and flowing while the signal comes.
        let _flowing = flowing(local);

        signal(&client, name);
        let signalled = Instant::now();
        thread::sleep(Duration::from_millis(200));
        assert!(
            !accepts(local),
            "the -L listener still accepts after SIG{name}"
        );
        let status = client.wait_exit(DRAIN + SLACK);
        assert!(
            status.is_some(),
            "the client still runs {:?} after SIG{name}",
            DRAIN + SLACK
        );
        assert!(signalled.elapsed() < DRAIN + SLACK);
        let stderr = client.stderr_after_exit();
        assert!(
            stderr.lines().count() <= 1,
            "more than one line after SIG{name}:\n{stderr}"
        );
    }
}
