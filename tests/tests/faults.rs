//! Faults the gateway must survive, with this project's client and server as separate
//! processes: a local reader that stops reading (memory stays bounded, the sender is held
//! back, nothing is lost), a destination that refuses (its local connection is closed at
//! once, other channels carry on) and a client that runs out of file descriptors (no busy
//! loop; service resumes when descriptors free up).

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use interop::forwarding::{
    Bastion, EchoFlow, PATTERN_CHUNK, PERIOD, Reaper, Serve, XorShift, counted_source_service,
    cpu_ticks, echo_service, local_forward, memory_kib, pattern, wait_for_port,
};
use interop::peers::{KeyPair, TempDir, free_port, gateway_binary};

/// `gateway serve` allowing any destination, with its key.
fn server(dir: &Path) -> Option<(KeyPair, Serve, u16)> {
    let serve = Serve::start(dir, &[])?;
    let port = serve.port;
    Some((serve.key.clone(), serve, port))
}

/// `gateway -N -L local:127.0.0.1:target`, optionally under a descriptor limit.
fn client(key: &KeyPair, server: u16, local: u16, target: u16, nofile: Option<u32>) -> Reaper {
    let mut command = match nofile {
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}"))
                .arg("--")
                .arg(gateway_binary());
            c
        }
        None => Command::new(gateway_binary()),
    };
    command
        .args(["-F", "none", "-N", "-o", "BatchMode=yes"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "LogLevel=ERROR"])
        .arg("-i")
        .arg(&key.private_key)
        .args(["-p", &server.to_string()])
        .args(["-L", &format!("{local}:127.0.0.1:{target}")])
        .arg("127.0.0.1");
    let mut client = Reaper::spawn(&mut command, "the client");
    wait_for_port(local, Some(&mut client), "the client");
    client
}

/// The socket buffer asked for at the two ends the test holds, the source's send side
/// and the reader's receive side; Linux doubles it for its bookkeeping.
const TEST_SOCKET_BUFFER: usize = 64 << 10;

/// How long the source's count must stand still to be taken as held back: many times
/// what a source that is still moving needs to get another buffer's worth out.
const STILL: Duration = Duration::from_secs(1);

/// The largest a TCP socket buffer grows by itself, from `/proc/sys/net/ipv4/<name>`
/// (`tcp_rmem` or `tcp_wmem`: minimum, default, maximum).
fn tcp_buffer_max(name: &str) -> u64 {
    let path = format!("/proc/sys/net/ipv4/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{path} holds no maximum: {text:?}"))
}

/// What may lie between the source and a reader that stopped, when the window holds the
/// sender back: the channel's window, which grows to at most the client's maximum, and
/// the socket buffers on either side of the channel, the two the test sets and the two
/// the gateway leaves to the kernel (the server's receive side towards the source, the
/// client's send side towards the reader), which grow to at most the kernel's maximums.
/// A mebibyte more covers a packet read and not yet sent, and the kernel's slack.
fn held_back_bound() -> u64 {
    let window = u64::from(ssh_proto::connection::window::WindowConfig::default().max);
    let ours = 2 * 2 * TEST_SOCKET_BUFFER as u64;
    window + ours + tcp_buffer_max("tcp_rmem") + tcp_buffer_max("tcp_wmem") + (1 << 20)
}

#[test]
fn a_reader_that_stops_holds_memory_to_a_window() {
    let dir = TempDir::new("slow-reader");
    let Some((key, _server, server_port)) = server(dir.path()) else {
        return;
    };
    let (source, written) = counted_source_service(Some(TEST_SOCKET_BUFFER));
    let local = free_port();
    let client = client(&key, server_port, local, source, None);
    let pid = client.0.id();

    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, local)).expect("connect");
    rustix::net::sockopt::set_socket_recv_buffer_size(&stream, TEST_SOCKET_BUFFER)
        .expect("set the reader's receive buffer");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let table = pattern();
    let mut buf = vec![0u8; PATTERN_CHUNK];
    let mut offset = 0u64;
    let mut read_some = |stream: &mut TcpStream, bytes: u64, offset: &mut u64| {
        let end = *offset + bytes;
        while *offset < end {
            let want = usize::try_from(end - *offset)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = stream
                .read(&mut buf[..want])
                .expect("read from the forward");
            assert!(n > 0, "the forward closed at byte {offset}");
            let at = usize::try_from(*offset % PERIOD as u64).expect("below the period");
            assert!(
                buf[..n] == table[at..at + n],
                "the bytes after offset {offset} differ from what the source sent"
            );
            *offset += n as u64;
        }
    };
    read_some(&mut stream, 1 << 20, &mut offset);

    // Stop reading while the source keeps offering: the client may hold at most its
    // window for this channel, whatever the source has, and sends no window adjust for
    // what it holds, so the source is held back once the window and the buffers on the
    // way are full. That is seen as its count of bytes written standing still.
    let (base, _) = memory_kib(pid);
    let (stall, at_stall) = (Instant::now(), written.load(Ordering::Relaxed));
    let (mut last, mut last_change) = (at_stall, stall);
    while stall.elapsed() < Duration::from_secs(3) || last_change.elapsed() < STILL {
        assert!(
            stall.elapsed() < Duration::from_secs(20),
            "the source was still writing 20 s after the reader stopped: {last} bytes, {offset} read"
        );
        thread::sleep(Duration::from_millis(100));
        let now = written.load(Ordering::Relaxed);
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
    }
    let (stalled, _) = memory_kib(pid);
    let (ahead, bound) = (last - offset, held_back_bound());
    eprintln!(
        "the source wrote {} KiB after the reader stopped and stood still {:.1?} later, {} KiB ahead of the reader (bound {} KiB)",
        (last - at_stall) >> 10,
        last_change - stall,
        ahead >> 10,
        bound >> 10
    );
    assert!(
        ahead <= bound,
        "the source got {ahead} bytes ahead of a reader that stopped, more than the {bound} that the window and the socket buffers hold"
    );
    assert!(
        stalled < base + 24 * 1024,
        "the client grew from {base} KiB to {stalled} KiB behind a reader that stopped"
    );

    read_some(&mut stream, 256 << 20, &mut offset);
    let (_, peak) = memory_kib(pid);
    eprintln!("client memory: {base} KiB before the stall, {stalled} KiB stalled, peak {peak} KiB");
    assert!(peak < 64 * 1024, "the client's peak memory was {peak} KiB");
}

/// How soon a local connection whose destination refused must be closed.
const REFUSAL: Duration = Duration::from_secs(1);

/// A permitted destination with nothing listening: the server's connect is refused, the
/// channel's open fails, and the client closes the local connection that asked for it,
/// within [`REFUSAL`] of its connect, while a transfer on another channel of the same
/// connection goes on and ends intact.
#[test]
fn a_refused_destination_closes_its_local_connection_and_nothing_else() {
    let echo = echo_service();
    // Free a moment ago, and nothing listens on it: connects to it are refused.
    let nobody = free_port();
    let permits = [
        // Logs each channel's result, which the test reads.
        "-v",
        "--permit-open",
        &format!("127.0.0.1:{echo}"),
        "--permit-open",
        &format!("127.0.0.1:{nobody}"),
    ];
    let Some(bastion) = Bastion::start("refused", &permits) else {
        return;
    };
    let serve = &bastion.serve;
    let refused_port = free_port();
    let refused_forward = format!("{refused_port}:127.0.0.1:{nobody}");
    let (mut client, echo_port) = local_forward(
        &serve.key.private_key,
        serve.port,
        echo,
        &["-L", &refused_forward],
    );
    wait_for_port(refused_port, Some(&mut client), "the refused forward");

    let flow = EchoFlow::start(
        TcpStream::connect((Ipv4Addr::LOCALHOST, echo_port)).expect("connect"),
        0x4ef,
    );
    flow.wait_for(1 << 20, Duration::from_secs(30));
    for attempt in 1..=3 {
        let started = Instant::now();
        let mut refused = TcpStream::connect((Ipv4Addr::LOCALHOST, refused_port)).expect("connect");
        // Twice the limit, so that a late close is told apart from none.
        refused
            .set_read_timeout(Some(REFUSAL * 2))
            .expect("read timeout");
        let mut buf = [0u8; 64];
        let ended = refused.read(&mut buf);
        let took = started.elapsed();
        match ended {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Ok(n) => panic!("attempt {attempt}: {n} bytes came from a refused destination"),
            Err(e) => panic!("attempt {attempt}: not closed after {took:.2?}: {e}"),
        }
        assert!(
            took < REFUSAL,
            "attempt {attempt}: the local connection was closed only after {took:.2?}"
        );
    }
    // The server's connects were refused, not the channels by its policy.
    let to = format!("to=127.0.0.1:{nobody} ");
    let line = bastion
        .log_line(&["type=direct-tcpip", &to, "result=failed"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        line.contains("refused"),
        "the channel failed for another reason: {line}"
    );

    // The transfer was under way throughout, and goes on after the refusals.
    let echoed = flow.echoed();
    flow.wait_for(echoed + (1 << 20), Duration::from_secs(30));
    let moved = flow.finish();
    assert_eq!(moved.echoed, moved.sent, "the echo lost bytes");
    assert_eq!(
        moved.echoed_sha256, moved.sent_sha256,
        "the echo differs from what was sent"
    );
    assert!(client.alive(), "the client died");
}

#[test]
fn running_out_of_descriptors_is_survived() {
    let dir = TempDir::new("nofile");
    let Some((key, _server, server_port)) = server(dir.path()) else {
        return;
    };
    let echo = echo_service();
    let local = free_port();
    // Room for the client's own descriptors and a few dozen connections, not for all.
    let client = client(&key, server_port, local, echo, Some(48));
    let pid = client.0.id();

    let streams: Vec<(usize, TcpStream)> = (0..80)
        .map(|n| {
            let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, local))
                .unwrap_or_else(|e| panic!("connection {n}: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(30)))
                .expect("read timeout");
            s.write_all(format!("message {n:03}").as_bytes())
                .expect("write");
            (n, s)
        })
        .collect();

    // The client is out of descriptors with connections waiting: it must idle, not spin.
    let before = cpu_ticks(pid);
    thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid).saturating_sub(before);
    assert!(
        used < 50,
        "the client used {used} ticks of CPU in 2 s while out of descriptors"
    );

    // Every connection is served in the end, as earlier ones finish and free theirs.
    for (n, mut stream) in streams {
        let expected = format!("message {n:03}");
        let mut back = vec![0u8; expected.len()];
        stream
            .read_exact(&mut back)
            .unwrap_or_else(|e| panic!("connection {n} was never served: {e}"));
        assert_eq!(back, expected.as_bytes());
        drop(stream);
    }
    let mut client = client;
    assert!(
        client.0.try_wait().expect("status").is_none(),
        "the client died"
    );
}

/// How long the soak runs: 60 s, or `GATEWAY_SOAK_SECS`.
fn soak_time() -> Duration {
    let secs = std::env::var("GATEWAY_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

#[test]
fn a_thousand_channels_for_a_minute_lose_nothing() {
    const CHANNELS: usize = 1000;
    let dir = TempDir::new("soak");
    let Some((key, _server, server_port)) = server(dir.path()) else {
        return;
    };
    let echo = echo_service();
    let local = free_port();
    let client = client(&key, server_port, local, echo, None);
    let until = Instant::now() + soak_time();

    // Each connection writes a chunk of its own stream, reads it back whole and compares,
    // with chunk sizes varying so packets and reads are cut everywhere.
    let moved: Vec<u64> = thread::scope(|s| {
        let handles: Vec<_> = (0..CHANNELS)
            .map(|n| {
                s.spawn(move || {
                    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, local))
                        .unwrap_or_else(|e| panic!("connection {n}: {e}"));
                    stream
                        .set_read_timeout(Some(Duration::from_secs(60)))
                        .expect("read timeout");
                    let mut data = XorShift(0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1));
                    let mut sizes = XorShift(n as u64 + 7);
                    let mut out = vec![0u8; 64 * 1024];
                    let mut back = vec![0u8; 64 * 1024];
                    let mut moved = 0u64;
                    while Instant::now() < until {
                        let mut size = [0u8; 8];
                        sizes.fill(&mut size);
                        let len = 1 + usize::from(u16::from_le_bytes([size[0], size[1]]));
                        data.fill(&mut out[..len]);
                        stream
                            .write_all(&out[..len])
                            .unwrap_or_else(|e| panic!("write on connection {n}: {e}"));
                        stream
                            .read_exact(&mut back[..len])
                            .unwrap_or_else(|e| panic!("read on connection {n}: {e}"));
                        assert!(
                            out[..len] == back[..len],
                            "connection {n}: bytes lost or reordered after {moved}"
                        );
                        moved += len as u64;
                    }
                    moved
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("soak thread"))
            .collect()
    });
    let total: u64 = moved.iter().sum();
    eprintln!(
        "{CHANNELS} channels moved {} MiB each way, the least busy {} KiB",
        total >> 20,
        moved.iter().min().copied().unwrap_or(0) >> 10
    );
    assert!(moved.iter().all(|&m| m > 0), "a channel moved nothing");
    let mut client = client;
    assert!(
        client.0.try_wait().expect("status").is_none(),
        "the client died"
    );
}
