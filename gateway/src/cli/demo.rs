//! `gateway demo`: the whole gateway on loopback, with no setup.
//!
//! An embedded forwarding server (the same event loop and policy as `gateway serve`)
//! listens on a free loopback port with a throwaway host key; a client logs in to it with
//! a throwaway key, checking the host key against a known_hosts file written for the
//! purpose, and runs a command; a second client connection opens a `-L` forward to a
//! local echo service and moves data through it both ways, compared by SHA-256. Each step
//! prints what happened, and the last the throughput.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use gateway::connect;
use gateway::event_loop::client::{ClientSetup, Listen, LocalForward, Outcome, SessionKind};
use gateway::event_loop::listen::{Target, tcp_listener};
use gateway::event_loop::server::Settings;
use gateway::event_loop::{EventLoop, Stopper};
use gateway::options::ClientOptions;
use gateway::prompt::Prompter;
use gateway::rng::OsRng;
use ssh_proto::algorithms::Algorithm;
use ssh_proto::authorized_keys::AuthorizedKeys;
use ssh_proto::config::{Config, Rng};
use ssh_proto::connection::policy::{Destination, ServerPolicy};
use ssh_proto::crypto::{CryptoProvider, HashAlg, Hasher, default_provider};
use ssh_proto::known_hosts::entry_line;
use ssh_proto::userkey::{KeyKind, UserKey};

/// MiB sent each way through the forward unless `--mib` says otherwise.
const DEFAULT_MIB: u64 = 256;
/// The command the demo runs on its server.
const COMMAND: &str = "echo \"hello from $(uname -n), running $(uname -sr), as $(id -un)\"";

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
    init_logging(verbosity);
    let provider = default_provider();
    let scratch = Scratch::new()?;

    // The keys: the server's host key, the client's login key, both thrown away at exit.
    let host_key =
        UserKey::generate(provider, KeyKind::Ed25519, &mut OsRng).map_err(|e| e.to_string())?;
    let host_pair = host_key
        .to_host_key(provider)
        .ok_or("an ed25519 key is not a host key")?;
    let client_key =
        UserKey::generate(provider, KeyKind::Ed25519, &mut OsRng).map_err(|e| e.to_string())?;
    let identity = scratch.write(
        "id_ed25519",
        client_key
            .to_openssh("gateway demo", None, &mut OsRng)
            .map_err(|e| e.to_string())?
            .as_bytes(),
    )?;
    let client_line = client_key.public_line("gateway demo");
    println!(
        "keys: host key {}, client key {}",
        host_pair.public().fingerprint_sha256(provider),
        client_key.public().fingerprint_sha256(provider)
    );

    let echo = echo_service()?;
    println!("echo service: listening on {echo}");

    let policy = ServerPolicy {
        session: true,
        exec: true,
        direct_tcpip: true,
        destinations: vec![Destination::parse(&echo.to_string()).map_err(|e| e.to_string())?],
        ..ServerPolicy::default()
    };
    let settings = Arc::new(Settings {
        config: Arc::new(Config {
            host_keys: vec![host_pair.clone()],
            ..Config::default()
        }),
        authorized_keys: AuthorizedKeys::parse(&client_line),
        policy: Arc::new(policy),
        max_startups: 10,
        connect_timeout: Duration::from_secs(5),
    });
    let (server_addr, server_stop, server) = start_server(settings)?;
    println!("server: listening on {server_addr}, allowing exec and direct-tcpip to {echo} only");

    let known_hosts = scratch.write(
        "known_hosts",
        format!(
            "{}\n",
            entry_line("127.0.0.1", server_addr.port(), host_pair.public(), None)
                .map_err(|e| e.to_string())?
        )
        .as_bytes(),
    )?;
    let options = client_options(&identity, &known_hosts)?;

    // One connection runs a command, as `gateway 127.0.0.1 COMMAND` would.
    println!(
        "client: gateway -p {} 127.0.0.1 '{COMMAND}'",
        server_addr.port()
    );
    let (outcome, negotiated) = client(
        &options,
        server_addr,
        SessionKind::Session {
            command: Some(COMMAND.to_owned()),
            pty: None,
        },
        Vec::new(),
        |_, _| {},
    )?;
    match outcome.exit_status {
        Some(0) => println!("client: the command exited with status 0"),
        Some(n) => return Err(format!("the demo's command exited with status {n}")),
        None => return Err("the demo's command ended without an exit status".to_owned()),
    }
    println!("negotiated: {negotiated}");

    // Another carries a local forward, as `gateway -N -L 0:ECHO 127.0.0.1` would, with
    // keys renewed about four times over the transfer.
    let bytes = mib << 20;
    let rekey_limit = format!("RekeyLimit={}K", (bytes / 4).clamp(1 << 20, 64 << 20) >> 10);
    println!(
        "client: gateway -N -o {rekey_limit} -L 127.0.0.1:0:{echo} -p {} 127.0.0.1",
        server_addr.port()
    );
    let mut options = options;
    options
        .apply_option(&rekey_limit)
        .map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel();
    let forward = LocalForward {
        listen: Listen::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
        target: Target::Tcp {
            host: echo.ip().to_string(),
            port: echo.port(),
        },
    };
    let (outcome, _) = client(
        &options,
        server_addr,
        SessionKind::None,
        vec![forward],
        |bound, stopper| {
            let Some(local) = bound.first().copied().flatten() else {
                let _ = tx.send(Err("the forward did not listen".to_owned()));
                stopper.stop();
                return;
            };
            println!("forward: listening on {local}; sending {mib} MiB through it to the echo");
            thread::spawn(move || {
                let _ = tx.send(through_forward(local, bytes));
                stopper.stop();
            });
        },
    )?;
    // The loop ends when the transfer is over and stops it; had the connection failed
    // first, the transfer fails too, and the connection's error says why.
    let transfer = match rx.recv() {
        Ok(Ok(transfer)) => transfer,
        Ok(Err(e)) => return Err(outcome.error.unwrap_or(e)),
        Err(_) => return Err("the transfer thread ended without a result".to_owned()),
    };
    if transfer.sent != transfer.received {
        return Err(format!(
            "the echo came back different: sent SHA-256 {}, received {}",
            transfer.sent, transfer.received
        ));
    }
    let secs = transfer.elapsed.as_secs_f64();
    let rate = |b: u64| b as f64 / secs;
    println!(
        "forward: {mib} MiB each way in {secs:.2} s: {:.0} MiB/s ({:.2} Gbit/s) each way, \
         the echo identical by SHA-256",
        rate(bytes) / f64::from(1 << 20),
        rate(bytes) * 8.0 / 1e9
    );
    if let Some(stats) = outcome.stats {
        println!(
            "forward: {} rekeys on the way; {} MiB on the wire out, {} MiB in",
            stats.rekeys,
            stats.bytes_sent >> 20,
            stats.bytes_received >> 20
        );
    }

    server_stop.stop();
    server
        .join()
        .map_err(|_| "the server thread panicked".to_owned())??;
    println!("demo finished: login, command and forward all worked");
    Ok(ExitCode::SUCCESS)
}

/// The server's log lines go out as `server: ...`; `-v` adds the library's debug lines,
/// labelled with the module they come from.
fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 => log::LevelFilter::Info,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .format(|out, record| {
            let target = record.target();
            if target.ends_with("event_loop::server") && record.level() <= log::Level::Info {
                writeln!(out, "server: {}", record.args())
            } else {
                let module = target.rsplit("::").next().unwrap_or(target);
                writeln!(out, "{module}: {}", record.args())
            }
        })
        .target(env_logger::Target::Stdout)
        .try_init();
}

/// The client's options: the throwaway key only, no agent, the host key checked against
/// the demo's own known_hosts file, and never a prompt.
fn client_options(identity: &Path, known_hosts: &Path) -> Result<ClientOptions, String> {
    let mut options = ClientOptions::default();
    options.batch_mode = true;
    options.auth.user = gateway::ssh_config::local_user();
    options.auth.identity_files = vec![identity.to_path_buf()];
    options.auth.identities_only = true;
    options.auth.agent = None;
    options.host_keys.user_files = vec![known_hosts.to_path_buf()];
    options.host_keys.global_files = Vec::new();
    options
        .apply_option("StrictHostKeyChecking=yes")
        .map_err(|e| e.to_string())?;
    Ok(options)
}

/// The thread that runs the embedded server's event loop.
type ServerThread = thread::JoinHandle<Result<(), String>>;

/// Runs the forwarding server's event loop on its own thread; its address, a handle that
/// stops it, and the thread.
fn start_server(settings: Arc<Settings>) -> Result<(SocketAddr, Stopper, ServerThread), String> {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let started = EventLoop::new(false).and_then(|mut event_loop| {
            let addr =
                event_loop.listen_ssh(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), settings)?;
            Ok((event_loop, addr))
        });
        let mut event_loop = match started {
            Ok((event_loop, addr)) => {
                let _ = tx.send(Ok((addr, event_loop.stopper())));
                event_loop
            }
            Err(e) => {
                let _ = tx.send(Err(format!("server: {e}")));
                return Ok(());
            }
        };
        event_loop.run().map_err(|e| format!("server: {e}"))
    });
    let (addr, stopper) = rx
        .recv()
        .map_err(|_| "the server thread ended before listening".to_owned())??;
    Ok((addr, stopper, handle))
}

/// Connects, checks the host key, logs in, and runs the event loop with `session` and
/// `forwards` until it ends. `started` sees the forwards' bound addresses and a handle
/// that stops the loop, before the loop runs. Returns how it ended and what was
/// negotiated.
fn client(
    options: &ClientOptions,
    server: SocketAddr,
    session: SessionKind,
    forwards: Vec<LocalForward>,
    started: impl FnOnce(&[Option<SocketAddr>], Stopper),
) -> Result<(Outcome, String), String> {
    let host = server.ip().to_string();
    let prompter = Prompter::from_env(true);
    let (mut conn, _) = connect::handshake(&host, server.port(), options, &prompter, true)?;
    let method = connect::authenticate(&mut conn, options, &prompter, &host, server.port())?;
    let negotiated = conn
        .transport
        .negotiated()
        .map(|n| {
            format!(
                "{}, host key {}, {} / {}, strict key exchange {}",
                n.kex.name(),
                n.host_key.name(),
                n.cipher_c2s.name(),
                n.cipher_s2c.name(),
                if n.strict_kex { "on" } else { "off" }
            )
        })
        .unwrap_or_default();
    println!(
        "client: host key matched known_hosts; logged in as {} with {}",
        options.auth.user,
        method.name()
    );

    let mut event_loop = EventLoop::new(false).map_err(|e| format!("event loop: {e}"))?;
    let setup = ClientSetup {
        host,
        session,
        local_forwards: forwards,
        exit_on_forward_failure: true,
        server_alive: None,
    };
    let outcome = event_loop.add_client(conn, setup, None)?;
    started(&outcome.borrow().bound, event_loop.stopper());
    event_loop.run().map_err(|e| format!("event loop: {e}"))?;
    let outcome = outcome.borrow().clone();
    Ok((outcome, negotiated))
}

/// What went through the forward: SHA-256 of what was sent and of what came back.
struct Transfer {
    sent: String,
    received: String,
    elapsed: Duration,
}

/// Sends `bytes` through the forward at `local` while reading the echo back.
fn through_forward(local: SocketAddr, bytes: u64) -> Result<Transfer, String> {
    let provider = default_provider();
    let stream = TcpStream::connect(local).map_err(|e| format!("connect to {local}: {e}"))?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let sender = thread::spawn(move || -> Result<String, String> {
        let mut hash = provider.hash(HashAlg::Sha256);
        let mut chunk = vec![0u8; 256 << 10];
        let mut seed = [0u8; 8];
        OsRng.fill(&mut seed);
        let mut state = u64::from_le_bytes(seed) | 1;
        let mut left = bytes;
        while left > 0 {
            let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
            // A fast generator, so that making the data does not limit the throughput.
            for word in chunk[..n].chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
            }
            hash.update(&chunk[..n]);
            writer
                .write_all(&chunk[..n])
                .map_err(|e| format!("write into the forward: {e}"))?;
            left -= n as u64;
        }
        let _ = writer.shutdown(Shutdown::Write);
        Ok(hex(hash))
    });
    let received = read_all(provider, stream, bytes)?;
    let elapsed = start.elapsed();
    let sent = sender
        .join()
        .map_err(|_| "the sending thread panicked".to_owned())??;
    Ok(Transfer {
        sent,
        received,
        elapsed,
    })
}

fn read_all(
    provider: &dyn CryptoProvider,
    mut stream: TcpStream,
    bytes: u64,
) -> Result<String, String> {
    let mut hash = provider.hash(HashAlg::Sha256);
    let mut buf = vec![0u8; 256 << 10];
    let mut got = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hash.update(&buf[..n]);
                got += n as u64;
            }
            Err(e) => return Err(format!("read from the forward: {e}")),
        }
    }
    if got != bytes {
        return Err(format!("the echo returned {got} of {bytes} bytes"));
    }
    Ok(hex(hash))
}

fn hex(hash: Box<dyn Hasher>) -> String {
    hash.finish()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An echo service on a free loopback port, a thread per connection.
fn echo_service() -> Result<SocketAddr, String> {
    let listener = tcp_listener(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(|e| format!("echo service: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut buf = vec![0u8; 256 << 10];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = stream.shutdown(Shutdown::Write);
            });
        }
    });
    Ok(addr)
}

/// A private folder for the throwaway key and known_hosts files, removed at exit.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, String> {
        let mut tag = [0u8; 8];
        OsRng.fill(&mut tag);
        let name: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("gateway-demo-{name}"));
        // Private from the start: created with mode 0700, not made so afterwards.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }

    fn write(&self, name: &str, contents: &[u8]) -> Result<PathBuf, String> {
        let path = self.0.join(name);
        super::keygen::write_new(&path, contents, 0o600)?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
