//! A burst of 10,000 local connections through one `-L` forward, client and server both
//! this project's: every connection is accepted (none refused or reset), carried on its
//! own channel of the one SSH connection, and echoes its bytes intact.
//!
//! The echo target is a small Python asyncio server in its own process, so that the
//! test process's descriptors (10,000 local sockets) stay under the open-file limit.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use interop::forwarding::{Reaper, gateway_client, wait_for_port};
use interop::peers::{self, Peer, TempDir, free_port, gateway_binary};

const CONNECTIONS: usize = 10_000;
const THREADS: usize = 8;

const ECHO: &str = r"
import asyncio, sys
async def echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()
async def main():
    server = await asyncio.start_server(echo, '127.0.0.1', int(sys.argv[1]), backlog=4096)
    async with server:
        await server.serve_forever()
asyncio.run(main())
";

/// Raises this process's soft open-file limit to its hard limit.
fn raise_fd_limit() -> u64 {
    gateway::event_loop::listen::raise_open_file_limit().unwrap_or(0)
}

#[test]
fn ten_thousand_connections_through_one_forward() {
    let limit = raise_fd_limit();
    assert!(
        limit >= CONNECTIONS as u64 + 1000,
        "the open-file hard limit ({limit}) is too low for {CONNECTIONS} connections"
    );
    let Some(python) = peers::require(Peer::PeerPython) else {
        return;
    };
    let dir = TempDir::new("burst");
    let Some(key) = peers::keygen(dir.path(), "id_ed25519", "ed25519") else {
        return;
    };
    std::fs::write(dir.join("authorized_keys"), format!("{}\n", key.public_key))
        .expect("write authorized_keys");

    let echo_port = free_port();
    let mut echo = Reaper::spawn(
        Command::new(python).args(["-c", ECHO, &echo_port.to_string()]),
        "the echo target",
    );
    wait_for_port(echo_port, Some(&mut echo), "the echo target");

    let server_port = free_port();
    let mut server = Reaper::spawn(
        Command::new(gateway_binary())
            .arg("serve")
            .arg("-q")
            .args(["--listen", &format!("127.0.0.1:{server_port}")])
            .arg("--host-key")
            .arg(dir.join("host_key"))
            .arg("--authorized-keys")
            .arg(dir.join("authorized_keys"))
            .args(["--permit-open", &format!("127.0.0.1:{echo_port}")])
            .stderr(Stdio::inherit()),
        "gateway serve",
    );
    wait_for_port(server_port, Some(&mut server), "gateway serve");

    let local_port = free_port();
    let mut client = Reaper::spawn(
        gateway_client(&key.private_key, server_port)
            .arg("-N")
            .args(["-L", &format!("{local_port}:127.0.0.1:{echo_port}")])
            .arg("127.0.0.1")
            .stderr(Stdio::inherit()),
        "the gateway client",
    );
    wait_for_port(local_port, Some(&mut client), "the gateway client");

    // Connect everything first, as fast as the threads can, and only then talk: the
    // listener must take the whole burst.
    let started = Instant::now();
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, local_port));
    let per_thread = CONNECTIONS / THREADS;
    let connected: Vec<Vec<(usize, TcpStream)>> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let n = t * per_thread + i;
                            let stream =
                                TcpStream::connect_timeout(&target, Duration::from_secs(30))
                                    .unwrap_or_else(|e| panic!("connection {n}: {e}"));
                            (n, stream)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("connect thread"))
            .collect()
    });
    let connect_time = started.elapsed();

    let echoed: usize = thread::scope(|s| {
        let handles: Vec<_> = connected
            .into_iter()
            .map(|streams| {
                s.spawn(move || {
                    let mut ok = 0;
                    for (n, mut stream) in streams {
                        let message = format!("connection {n:05}\n");
                        stream
                            .set_read_timeout(Some(Duration::from_secs(60)))
                            .expect("read timeout");
                        stream
                            .write_all(message.as_bytes())
                            .unwrap_or_else(|e| panic!("write on connection {n}: {e}"));
                        let mut back = vec![0; message.len()];
                        stream
                            .read_exact(&mut back)
                            .unwrap_or_else(|e| panic!("read on connection {n}: {e}"));
                        assert_eq!(
                            back,
                            message.as_bytes(),
                            "connection {n} echoed other bytes"
                        );
                        ok += 1;
                    }
                    ok
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("echo thread"))
            .sum()
    });
    eprintln!(
        "{echoed} connections: connected in {connect_time:?}, echoed after {:?}",
        started.elapsed()
    );
    assert_eq!(echoed, CONNECTIONS);
    assert!(
        client.0.try_wait().expect("client status").is_none(),
        "the client exited during the burst"
    );
    assert!(
        server.0.try_wait().expect("server status").is_none(),
        "the server exited during the burst"
    );
}
