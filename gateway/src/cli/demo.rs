//! `gateway demo`: an in-process client and server over loopback TCP, with no setup.
//!
//! It shows the transport working end to end: the handshake, what was negotiated, and a
//! stream of data in both directions with keys renewed every few megabytes. The data
//! travels as SSH_MSG_IGNORE packets, which exercise the whole packet path (framing,
//! sealing, opening, rekey holding) without needing the connection protocol.

use std::ffi::OsString;
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gateway::blocking::{BlockingConn, DriveError};
use gateway::rng::OsRng;
use ssh_proto::algorithms::Algorithm;
use ssh_proto::config::{Config, Rng};
use ssh_proto::hostkey::HostKeyPair;
use ssh_proto::msg::{DisconnectReason, MessageNumber};
use ssh_proto::rekey::RekeyLimits;
use ssh_proto::role::Role;
use ssh_proto::transport::{Event, Transport};
use ssh_proto::wire::Writer;

/// MiB each side sends to the other unless `--mib` says otherwise.
const DEFAULT_MIB: usize = 64;
const CHUNK: usize = 32 << 10;

pub fn run(args: Vec<OsString>) -> Result<ExitCode, String> {
    let mut verbosity = 0;
    let mut mib = DEFAULT_MIB;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-v") => verbosity += 1,
            Some("--mib") => {
                mib = args
                    .next()
                    .and_then(|v| v.to_str().and_then(|v| v.parse().ok()))
                    .filter(|&n| n > 0)
                    .ok_or("--mib takes a positive number of MiB")?;
            }
            _ => return Err(format!("demo does not take '{}'", arg.to_string_lossy())),
        }
    }
    super::init_logging(verbosity);
    let volume = mib << 20;
    // Renew keys four times over the run, at the least every 16 MiB.
    let rekey_every = (volume as u64 / 4).clamp(1 << 20, 16 << 20);

    let provider = ssh_proto::crypto::default_provider();
    let mut seed = [0u8; 32];
    OsRng.fill(&mut seed);
    let host_key = HostKeyPair::ed25519_from_seed(provider, &seed);
    let fingerprint = host_key.public().fingerprint_sha256(provider);
    let rekey = RekeyLimits {
        bytes: rekey_every,
        ..RekeyLimits::default()
    };
    let server_config = Config {
        host_keys: vec![host_key],
        rekey,
        ..Config::default()
    };
    let client_config = Config {
        rekey,
        ..Config::default()
    };

    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("server: listening on {addr} with a throwaway ED25519 host key {fingerprint}");

    let server = thread::spawn(move || -> Result<Stats, String> {
        let (stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        let t = Transport::new(
            Arc::new(server_config),
            Role::Server,
            Box::new(OsRng),
            Instant::now(),
        );
        exchange(t, stream, "server", volume)
    });

    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let t = Transport::new(
        Arc::new(client_config),
        Role::Client,
        Box::new(OsRng),
        Instant::now(),
    );
    let client = exchange(t, stream, "client", volume);
    let server = server
        .join()
        .map_err(|_| "the server thread panicked".to_owned())?;
    // When both fail, the server's error is usually the cause and the client's the echo.
    let (client, server) = match (client, server) {
        (Ok(c), Ok(s)) => (c, s),
        (_, Err(e)) | (Err(e), _) => return Err(e),
    };

    let rate = |b: Burst| (b.bytes as f64 / (1 << 20) as f64) / b.elapsed.as_secs_f64();
    println!("negotiated: {}", client.negotiated);
    println!(
        "client -> server: {} MiB in {:.2?} ({:.0} MiB/s)",
        server.received.bytes >> 20,
        server.received.elapsed,
        rate(server.received)
    );
    println!(
        "server -> client: {} MiB in {:.2?} ({:.0} MiB/s)",
        client.received.bytes >> 20,
        client.received.elapsed,
        rate(client.received)
    );
    println!(
        "rekeys: {} (every {} MiB); client sent {} MiB, server sent {} MiB of payload",
        client.rekeys,
        rekey_every >> 20,
        client.sent.bytes >> 20,
        server.sent.bytes >> 20
    );
    println!("demo finished: handshake, data both ways and rekeys all worked");
    Ok(ExitCode::SUCCESS)
}

struct Stats {
    negotiated: String,
    sent: Burst,
    received: Burst,
    rekeys: u64,
}

/// Handshakes, then each side sends `volume` bytes to the other in turn.
fn exchange(
    transport: Transport,
    stream: TcpStream,
    who: &str,
    volume: usize,
) -> Result<Stats, String> {
    let fail = |e: DriveError| format!("{who}: {e}");
    let reader = stream.try_clone().map_err(|e| e.to_string())?;
    let mut conn = BlockingConn::new(transport, stream).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut count_events = |t: &mut Transport, event: Event| {
        if let Event::HostKey(_) = event {
            // The demo's client trusts the server it started itself.
            t.accept_host_key()?;
        }
        Ok(())
    };
    conn.run_until(deadline, &mut count_events, |c| c.transport.is_ready())
        .map_err(fail)?;
    // The demo has no authentication layer; the transport is told the peer is known so
    // that its pre-authentication traffic caps do not apply to the bulk data.
    conn.transport.set_authenticated();
    let n = *conn.transport.negotiated().ok_or("no key exchange")?;
    let negotiated = format!(
        "{}, host key {}, {} / {}, strict kex {}",
        n.kex.name(),
        n.host_key.name(),
        n.cipher_c2s.name(),
        n.cipher_s2c.name(),
        if n.strict_kex { "on" } else { "off" }
    );
    drop(reader);

    let (sent, received) = match conn.transport.role() {
        Role::Client => {
            let sent = send_burst(&mut conn, &mut count_events, deadline, volume).map_err(fail)?;
            let received =
                receive_burst(&mut conn, &mut count_events, deadline, volume).map_err(fail)?;
            (sent, received)
        }
        Role::Server => {
            let received =
                receive_burst(&mut conn, &mut count_events, deadline, volume).map_err(fail)?;
            let sent = send_burst(&mut conn, &mut count_events, deadline, volume).map_err(fail)?;
            // The client hangs up once it has everything; closing first could reset the
            // connection under data still in flight.
            match conn.run_until(deadline, &mut count_events, |_| false) {
                Err(DriveError::Eof)
                | Err(DriveError::Protocol(ssh_proto::Error::PeerDisconnected { .. })) => {}
                Err(e) => return Err(fail(e)),
                Ok(()) => {}
            }
            let rekeys = conn.transport.stats().rekeys;
            return Ok(Stats {
                negotiated,
                sent,
                received,
                rekeys,
            });
        }
    };
    conn.transport
        .disconnect(DisconnectReason::BY_APPLICATION, "demo finished");
    let _ = conn.flush();
    Ok(Stats {
        negotiated,
        sent,
        received,
        rekeys: conn.transport.stats().rekeys,
    })
}

/// Bytes moved one way and how long it took, as the receiver saw it.
#[derive(Clone, Copy)]
struct Burst {
    bytes: u64,
    elapsed: Duration,
}

type OnEvent<'a> = dyn FnMut(&mut Transport, Event) -> Result<(), ssh_proto::Error> + 'a;

/// Sends `volume` bytes of IGNORE packets, then a service message that marks the end.
fn send_burst(
    conn: &mut BlockingConn,
    on_event: &mut OnEvent<'_>,
    deadline: Instant,
    volume: usize,
) -> Result<Burst, DriveError> {
    let start = Instant::now();
    let chunk = vec![0x5a; CHUNK];
    let mut sent = 0;
    while sent < volume {
        while sent < volume
            && conn.transport.can_send()
            && conn.transport.pending_output() < 1 << 20
        {
            conn.transport.send(|p| {
                p.put_u8(MessageNumber::IGNORE.0);
                p.put_string(&chunk);
            })?;
            sent += CHUNK;
        }
        // Write what is queued; when a key exchange holds our data back, read until it
        // completes.
        conn.flush()?;
        if !conn.transport.can_send() {
            conn.run_until(deadline, &mut *on_event, |c| c.transport.can_send())?;
        }
    }
    let end_marker = match conn.transport.role() {
        Role::Client => MessageNumber::SERVICE_REQUEST,
        Role::Server => MessageNumber::SERVICE_ACCEPT,
    };
    conn.transport.send(|p| {
        p.put_u8(end_marker.0);
        p.put_string(b"demo-done");
    })?;
    conn.flush()?;
    Ok(Burst {
        bytes: sent as u64,
        elapsed: start.elapsed(),
    })
}

/// Receives until the peer's end marker arrives.
fn receive_burst(
    conn: &mut BlockingConn,
    on_event: &mut OnEvent<'_>,
    deadline: Instant,
    volume: usize,
) -> Result<Burst, DriveError> {
    let start = Instant::now();
    conn.run_until(deadline, on_event, |c| !c.packets.is_empty())?;
    conn.packets.clear();
    // The payload size is the sender's; what the receiver knows is when it all arrived.
    Ok(Burst {
        bytes: volume as u64,
        elapsed: start.elapsed(),
    })
}
