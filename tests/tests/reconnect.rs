//! `gateway -N --reconnect -L ...` when its server dies and comes back: the local
//! connections of the lost channels close within a second, the listener stays bound
//! (connections made during the outage are closed at once rather than left hanging),
//! and once the server is back the forward works again without restarting the client.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use interop::forwarding::{Reaper, echo_service, wait_for_port};
use interop::peers::{self, TempDir, free_port, gateway_binary};

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

#[test]
fn forwards_come_back_after_the_server_does() {
    let dir = TempDir::new("reconnect");
    let Some(key) = peers::keygen(dir.path(), "id_ed25519", "ed25519") else {
        return;
    };
    std::fs::write(dir.join("authorized_keys"), format!("{}\n", key.public_key))
        .expect("write authorized_keys");
    let echo = echo_service();
    let server_port = free_port();
    let mut server = serve(dir.path(), server_port, echo);
    wait_for_port(server_port, None, "gateway serve");

    let local = free_port();
    let client = Reaper::spawn(
        Command::new(gateway_binary())
            .args(["-F", "none", "-N", "--reconnect", "-o", "BatchMode=yes"])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .arg("-i")
            .arg(&key.private_key)
            .args(["-p", &server_port.to_string()])
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

    // A connection in use when the server dies.
    let mut open = TcpStream::connect((Ipv4Addr::LOCALHOST, local)).expect("connect");
    open.write_all(b"x").expect("write");
    let mut one = [0u8; 1];
    open.read_exact(&mut one).expect("echo before the kill");
    open.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");

    let _ = server.0.kill();
    let _ = server.0.wait();
    let killed = Instant::now();
    let closed = open.read(&mut one);
    let took = killed.elapsed();
    assert!(
        matches!(closed, Ok(0) | Err(_)) && took < Duration::from_secs(2),
        "the local connection was not closed promptly: {closed:?} after {took:?}"
    );

    // During the outage the listener is still there and closes what arrives.
    let mut during = TcpStream::connect((Ipv4Addr::LOCALHOST, local))
        .expect("the listener stays bound while the server is down");
    during
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let _ = during.write_all(b"y");
    assert!(
        matches!(during.read(&mut one), Ok(0) | Err(_)),
        "a connection during the outage got data"
    );

    let _server = serve(dir.path(), server_port, echo);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match round_trip(local, b"after") {
            Ok(back) if back == b"after" => break,
            _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(200)),
            other => panic!("the forward did not come back: {other:?}"),
        }
    }
    let mut client = client;
    assert!(
        client.0.try_wait().expect("client status").is_none(),
        "the client exited instead of reconnecting"
    );
    let output = client.stderr_after_exit();
    assert!(
        output.contains("reconnecting in 1 s") && output.contains("reconnected to 127.0.0.1"),
        "the client did not say what it did: {output}"
    );
}
