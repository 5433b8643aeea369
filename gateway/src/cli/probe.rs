//! `gateway probe`: connect, complete key exchange, report what was negotiated.

use std::ffi::OsString;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::auth::{AuthError, Authenticator};
use gateway::blocking::{BlockingConn, DriveError};
use gateway::hostkeys;
use gateway::options::ClientOptions;
use gateway::prompt::Prompter;
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
    let mut port: Option<u16> = None;
    let mut user: Option<String> = None;
    let mut destination: Option<String> = None;
    let mut verbosity = 0u8;
    let mut auth = false;
    let mut options = ClientOptions::default();
    let mut identity_files = Vec::new();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('p') => {
                let value = parser.value().map_err(|e| e.to_string())?;
                port = Some(
                    value
                        .to_str()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| format!("bad port '{}'", value.to_string_lossy()))?,
                );
            }
            Short('l') => {
                let value = parser.value().map_err(|e| e.to_string())?;
                user = Some(value.into_string().map_err(|_| "user name is not UTF-8")?);
            }
            Short('i') => {
                let value = parser.value().map_err(|e| e.to_string())?;
                identity_files.push(PathBuf::from(value));
            }
            Short('o') => {
                let value = parser.value().map_err(|e| e.to_string())?;
                let value = value.to_str().ok_or("option is not UTF-8")?.to_owned();
                options.apply_option(&value).map_err(|e| e.to_string())?;
            }
            Short('v') => verbosity = verbosity.saturating_add(1),
            Long("auth") => auth = true,
            Value(v) if destination.is_none() => {
                destination = Some(v.into_string().map_err(|_| "host name is not UTF-8")?);
            }
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    let destination = destination.ok_or(USAGE)?;
    super::init_logging(verbosity);

    // ssh's order: -l wins over user@host, which wins over -o User.
    let (at_user, host) = match destination.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_owned()), h.to_owned()),
        None => (None, destination.clone()),
    };
    if let Some(user) = user.or(at_user).or_else(|| options.user.clone()) {
        options.auth.user = user;
    }
    // -i files come before IdentityFile options, as in ssh.
    identity_files.append(&mut options.auth.identity_files);
    options.auth.identity_files = identity_files;
    let port = port.or(options.port).unwrap_or(22);
    probe(&host, port, options, auth).map(|()| ExitCode::SUCCESS)
}

const USAGE: &str = "usage: gateway probe [--auth] [-p PORT] [-l USER] [-i FILE]... [-o KEY=VALUE]... [-v] [USER@]HOST";

fn probe(host: &str, port: u16, options: ClientOptions, auth: bool) -> Result<(), String> {
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

    let config = Config {
        algorithms: options.algorithms.clone(),
        ..Config::default()
    };
    let transport = Transport::new(
        Arc::new(config),
        Role::Client,
        Box::new(OsRng),
        Instant::now(),
    );
    let mut conn = BlockingConn::new(transport, stream).map_err(|e| format!("{at}: {e}"))?;
    let prompter = Prompter::from_env(options.batch_mode);
    let mut host_key = None;
    let mut refusal = None;
    let result = conn.run_until(
        Instant::now() + TIMEOUT,
        |t, event| {
            if let Event::HostKey(key) = event {
                if auth {
                    // Before authenticating, the key is checked as ssh checks it.
                    if let Err(why) = hostkeys::verify(
                        &options.host_keys,
                        host,
                        port,
                        &key,
                        &prompter,
                        &mut OsRng,
                    ) {
                        let error = t.reject_host_key("host key not trusted");
                        refusal = Some(why);
                        return Err(error);
                    }
                }
                // Without --auth, probe reports the key without judging it, as
                // ssh-keyscan does.
                host_key = Some(key);
                t.accept_host_key()?;
            }
            Ok::<(), ProtoError>(())
        },
        |c| c.transport.is_ready(),
    );
    if let Some(why) = refusal {
        // A changed key comes with a warning of several lines; the last says why.
        let mut lines: Vec<&str> = why.lines().collect();
        let last = lines.pop().unwrap_or("host key verification failed");
        for line in lines {
            eprintln!("{line}");
        }
        return Err(last.to_owned());
    }
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

    if auth {
        let deadline = Instant::now() + TIMEOUT;
        let method = Authenticator::new(&mut conn, &options.auth, &prompter, host, deadline)
            .run()
            .map_err(|e| match e {
                AuthError::Denied(_) => format!("{}@{host}: {e}", options.auth.user),
                AuthError::Drive(d) => describe(&at, d),
            })?;
        println!(
            "authenticated as {} with {}",
            options.auth.user,
            method.name()
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
