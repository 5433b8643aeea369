//! `gateway probe`: connect, complete key exchange, report what was negotiated.

use std::ffi::OsString;
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::blocking::{BlockingConn, DriveError};
use gateway::options::{apply_algorithm_option, split_option};
use gateway::rng::OsRng;
use ssh_proto::Error as ProtoError;
use ssh_proto::algorithms::Algorithm;
use ssh_proto::config::Config;
use ssh_proto::msg::DisconnectReason;
use ssh_proto::role::Role;
use ssh_proto::transport::{Event, Transport};

const TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(args: Vec<OsString>) -> Result<ExitCode, String> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let mut port: u16 = 22;
    let mut host: Option<String> = None;
    let mut verbosity = 0u8;
    let mut config = Config::default();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('p') => {
                let value = parser.value().map_err(|e| e.to_string())?;
                port = value
                    .to_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("bad port '{}'", value.to_string_lossy()))?;
            }
            Short('o') => {
                let value = parser.value().map_err(|e| e.to_string())?;
                let value = value.to_str().ok_or("option is not UTF-8")?.to_owned();
                let (key, val) = split_option(&value).map_err(|e| e.to_string())?;
                if !apply_algorithm_option(&mut config.algorithms, &key, val)
                    .map_err(|e| e.to_string())?
                {
                    return Err(format!("unsupported option for probe: '{key}'"));
                }
            }
            Short('v') => verbosity = verbosity.saturating_add(1),
            Value(v) if host.is_none() => {
                host = Some(v.into_string().map_err(|_| "host name is not UTF-8")?);
            }
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    let host = host.ok_or("usage: gateway probe [-p PORT] [-o KEY=VALUE]... [-v] HOST")?;
    super::init_logging(verbosity);
    probe(&host, port, config).map(|()| ExitCode::SUCCESS)
}

fn probe(host: &str, port: u16, config: Config) -> Result<(), String> {
    let at = format!("{host} port {port}");
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("Could not resolve hostname {host}: {e}"))?
        .collect();
    let stream = addrs
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, TIMEOUT).ok())
        .ok_or_else(|| {
            match addrs
                .first()
                .map(|a| TcpStream::connect_timeout(a, TIMEOUT))
            {
                Some(Err(e)) => format!("connect to host {at}: {e}"),
                _ => format!("connect to host {at}: no address"),
            }
        })?;

    let transport = Transport::new(
        Arc::new(config),
        Role::Client,
        Box::new(OsRng),
        Instant::now(),
    );
    let mut conn = BlockingConn::new(transport, stream).map_err(|e| format!("{at}: {e}"))?;
    let mut host_key = None;
    let result = conn.run_until(
        Instant::now() + TIMEOUT,
        |t, event| {
            if let Event::HostKey(key) = event {
                // Like ssh-keyscan, probe reports the key without judging it.
                host_key = Some(key);
                t.accept_host_key()?;
            }
            Ok::<(), ProtoError>(())
        },
        |c| c.transport.is_ready(),
    );
    if let Err(e) = result {
        return Err(describe(&at, e));
    }

    let t = &conn.transport;
    let n = t.negotiated().ok_or("no key exchange happened")?;
    let mac = |m: Option<ssh_proto::algorithms::Mac>| m.map_or("<implicit>", |m| m.name());
    if let Some(v) = t.peer_version() {
        println!("server: {v}");
    }
    println!("kex: {}", n.kex.name());
    println!("host key algorithm: {}", n.host_key.name());
    println!(
        "cipher client->server: {} MAC: {}",
        n.cipher_c2s.name(),
        mac(n.mac_c2s)
    );
    println!(
        "cipher server->client: {} MAC: {}",
        n.cipher_s2c.name(),
        mac(n.mac_s2c)
    );
    println!(
        "strict key exchange: {}",
        if n.strict_kex { "yes" } else { "no" }
    );
    if let Some(key) = host_key {
        println!(
            "{} key fingerprint is {}.",
            key.openssh_label(),
            key.fingerprint_sha256(ssh_proto::crypto::default_provider())
        );
    }
    conn.transport
        .disconnect(DisconnectReason::BY_APPLICATION, "probe finished");
    let _ = conn.flush();
    Ok(())
}

/// One line in OpenSSH's words where OpenSSH has them.
fn describe(at: &str, e: DriveError) -> String {
    match e {
        DriveError::Protocol(ProtoError::NoCommonAlgorithm(n)) => {
            format!("Unable to negotiate with {at}: {n}")
        }
        DriveError::Eof => format!("Connection closed by {at}"),
        DriveError::Io(e) => format!("{at}: {e}"),
        DriveError::TimedOut => format!("{at}: operation timed out"),
        DriveError::Protocol(e) => format!("{at}: {e}"),
    }
}
