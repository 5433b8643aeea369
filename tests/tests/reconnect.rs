//! `gateway -N --reconnect -L ...` when its server dies and comes back: the local
//! connections of the lost channels close within a second, the listener stays bound
//! (connections made during the outage are closed at once rather than left hanging),
//! and once the server is back the forward works again without restarting the client.
//! An attempt that hangs (a server that accepts and never speaks) holds up nothing: the
//! listener still answers and a stop signal still ends the client within 5 seconds.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use interop::forwarding::{Reaper, echo_service, gateway_client, wait_for_port};
use interop::peers::{self, TempDir, free_port, gateway_binary};

/// How soon a local connection must be closed once it has nowhere to go.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);

fn serve(dir: &Path, port: u16, echo: u16) -> Reaper {
    Reaper::spawn(
        Command::new(gateway_binary())
            .args(["serve", "-q", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--host-key")
            .arg(dir.join("host_key"))
            .arg("--authorized-keys")
            .arg(dir.join("authorized_keys"))
            .args(["--permit-open", &format!("127.0.0.1:{echo}")]),
        "gateway serve",
    )
}

fn round_trip(port: u16, message: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(message)?;
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back)?;
    Ok(back)
}

/// A server, an echo service behind it and a reconnecting client with a `-L` forward to
/// the echo service, once the forward works.
struct Setup {
    dir: TempDir,
    echo: u16,
    server_port: u16,
    server: Reaper,
    local: u16,
    client: Reaper,
}

fn start(label: &str) -> Option<Setup> {
    let dir = TempDir::new(label);
    let key = peers::keygen(dir.path(), "id_ed25519", "ed25519")?;
    std::fs::write(dir.join("authorized_keys"), format!("{}\n", key.public_key))
        .expect("write authorized_keys");
    let echo = echo_service();
    let server_port = free_port();
    let server = serve(dir.path(), server_port, echo);
    wait_for_port(server_port, None, "gateway serve");

    let local = free_port();
    let client = Reaper::spawn(
        gateway_client(&key.private_key, server_port)
            .args(["-N", "--reconnect"])
            .args(["-L", &format!("{local}:127.0.0.1:{echo}")])
            .arg("127.0.0.1")
            .stderr(Stdio::piped()),
        "the client",
    );
    wait_for_port(local, None, "the client");
    assert_eq!(
        round_trip(local, b"before").expect("forward works"),
        b"before"
    );
    Some(Setup {
        dir,
        echo,
        server_port,
        server,
        local,
        client,
    })
}

/// Kills the server and waits for it to be gone.
fn kill(server: &mut Reaper) -> Instant {
    let _ = server.0.kill();
    let _ = server.0.wait();
    Instant::now()
}

/// A new connection to the forward on `local` is closed (end of stream or reset) within
/// [`CLOSE_WITHIN`], with no data: the client has no connection to carry it.
fn closed_at_once(local: u16) {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, local))
        .expect("the listener stays bound while the server is down");
    stream
        .set_read_timeout(Some(CLOSE_WITHIN * 3))
        .expect("read timeout");
    let _ = stream.write_all(b"y");
    let asked = Instant::now();
    let mut one = [0u8; 1];
    let read = stream.read(&mut one);
    let took = asked.elapsed();
    let closed = match &read {
        Ok(0) => true,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        Ok(_) => false,
    };
    assert!(
        closed && took <= CLOSE_WITHIN,
        "a connection while the server is down was not closed at once: {read:?} after {took:?}"
    );
}

#[test]
fn forwards_come_back_after_the_server_does() {
    let Some(mut s) = start("reconnect") else {
        return;
    };

    // A connection in use when the server dies.
    let mut open = TcpStream::connect((Ipv4Addr::LOCALHOST, s.local)).expect("connect");
    open.write_all(b"x").expect("write");
    let mut one = [0u8; 1];
    open.read_exact(&mut one).expect("echo before the kill");
    open.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");

    let killed = kill(&mut s.server);
    let closed = open.read(&mut one);
    let took = killed.elapsed();
    assert!(
        matches!(closed, Ok(0)) || matches!(&closed, Err(e) if e.kind() != ErrorKind::WouldBlock),
        "the local connection was not closed: {closed:?} after {took:?}"
    );
    assert!(
        took <= CLOSE_WITHIN,
        "the local connection took {took:?} to close"
    );

    // During the outage the listener is still there and closes what arrives.
    closed_at_once(s.local);

    let _server = serve(s.dir.path(), s.server_port, s.echo);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match round_trip(s.local, b"after") {
            Ok(back) if back == b"after" => break,
            _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(200)),
            other => panic!("the forward did not come back: {other:?}"),
        }
    }
    assert!(
        s.client.0.try_wait().expect("client status").is_none(),
        "the client exited instead of reconnecting"
    );
    let output = s.client.stderr_after_exit();
    assert!(
        output.contains("reconnecting in 1 s") && output.contains("reconnected to 127.0.0.1"),
        "the client did not say what it did: {output}"
    );
}

/// The server's address answers TCP but never speaks SSH, so an attempt waits for a
/// version line that never comes. The client's loop does not wait with it: connections
/// to the forward are still closed at once, and SIGTERM ends the client within 5 s.
#[test]
fn a_hanging_attempt_holds_up_nothing() {
    let Some(mut s) = start("reconnect-hang") else {
        return;
    };
    kill(&mut s.server);
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, s.server_port))
        .expect("take the server's port for a silent listener");
    let (accepted, attempts) = mpsc::channel();
    // Holds every connection open, saying nothing, and reports each; it ends with the
    // test process.
    thread::spawn(move || {
        let mut streams = Vec::new();
        for stream in silent.incoming().flatten() {
            streams.push(stream);
            if accepted.send(()).is_err() {
                break;
            }
        }
    });

    // The first attempt starts 1 s after the loss and then hangs on the silent server.
    attempts
        .recv_timeout(Duration::from_secs(10))
        .expect("the client made no attempt to reconnect");
    thread::sleep(Duration::from_millis(300));
    closed_at_once(s.local);

    let stopped = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &s.client.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
    let exited = s.client.wait_exit(Duration::from_secs(6));
    let took = stopped.elapsed();
    assert!(
        exited.is_some() && took <= Duration::from_millis(5700),
        "the client did not exit within 5 s of SIGTERM while an attempt hung: {exited:?} after {took:?}"
    );
    let output = s.client.stderr_after_exit();
    assert!(
        output.contains("reconnecting in 1 s"),
        "the client did not say it would reconnect: {output}"
    );
}
