//! Faults the gateway must survive, with this project's client and server as separate
//! processes: a local reader that stops reading (memory stays bounded, nothing is lost)
//! and a client that runs out of file descriptors (no busy loop; service resumes when
//! descriptors free up).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use interop::peers::{self, KeyPair, TempDir, free_port, gateway_binary};

struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port} after 30 s");
}

/// The period of the source's stream, a prime so that it never lines up with buffers.
const PERIOD: usize = 65_521;
/// The longest read or write compared against the pattern at once.
const CHUNK: usize = 256 * 1024;

/// The source's stream from any offset `o`: `pattern_table()[o % PERIOD..]`, compared
/// with whole slices so checking hundreds of MiB stays quick in a debug build.
fn pattern_table() -> Vec<u8> {
    (0..PERIOD + CHUNK)
        .map(|i| {
            ((i % PERIOD) as u64)
                .wrapping_mul(2_654_435_761)
                .to_le_bytes()[2]
        })
        .collect()
}

/// A service that writes the pattern to every connection for as long as it is read.
fn source_service() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind source");
    let port = listener.local_addr().expect("source address").port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let table = pattern_table();
                let mut stream = stream;
                let mut at = 0;
                loop {
                    if stream.write_all(&table[at..at + CHUNK]).is_err() {
                        return;
                    }
                    at = (at + CHUNK) % PERIOD;
                }
            });
        }
    });
    port
}

/// An echo service, one thread per connection.
fn echo_service() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind echo");
    let port = listener.local_addr().expect("echo address").port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// A key, its authorized_keys file and a `gateway serve` allowing any destination.
fn server(dir: &Path) -> Option<(KeyPair, Reaper, u16)> {
    let key = peers::keygen(dir, "id_ed25519", "ed25519")?;
    std::fs::write(dir.join("authorized_keys"), format!("{}\n", key.public_key))
        .expect("write authorized_keys");
    let port = free_port();
    let server = Reaper(
        Command::new(gateway_binary())
            .args(["serve", "-q", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--host-key")
            .arg(dir.join("host_key"))
            .arg("--authorized-keys")
            .arg(dir.join("authorized_keys"))
            .spawn()
            .expect("start gateway serve"),
    );
    wait_for_port(port);
    Some((key, server, port))
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
    let client = Reaper(command.spawn().expect("start the client"));
    wait_for_port(local);
    client
}

/// Resident and peak memory of a process, in KiB, from /proc.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time a process has used, user plus system, from /proc (in clock ticks of 10 ms).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name.
    get(11) + get(12)
}

#[test]
fn a_reader_that_stops_holds_memory_to_a_window() {
    let dir = TempDir::new("slow-reader");
    let Some((key, _server, server_port)) = server(dir.path()) else {
        return;
    };
    let source = source_service();
    let local = free_port();
    let client = client(&key, server_port, local, source, None);
    let pid = client.0.id();

    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, local)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let table = pattern_table();
    let mut buf = vec![0u8; CHUNK];
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
    // window for this channel, whatever the source has.
    let (base, _) = memory_kib(pid);
    thread::sleep(Duration::from_secs(3));
    let (stalled, _) = memory_kib(pid);
    assert!(
        stalled < base + 24 * 1024,
        "the client grew from {base} KiB to {stalled} KiB behind a reader that stopped"
    );

    read_some(&mut stream, 256 << 20, &mut offset);
    let (_, peak) = memory_kib(pid);
    eprintln!("client memory: {base} KiB before the stall, {stalled} KiB stalled, peak {peak} KiB");
    assert!(peak < 64 * 1024, "the client's peak memory was {peak} KiB");
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

/// A small generator for the soak's data: each connection its own stream of bytes.
struct XorShift(u64);

impl XorShift {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
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
