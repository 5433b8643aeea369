//! `gateway serve`: the forwarding server.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use gateway::event_loop::EventLoop;
use gateway::event_loop::listen::{no_such_address, raise_open_file_limit};
use gateway::event_loop::server::Settings;
use gateway::rng::OsRng;
use gateway::ssh_config::RekeyLimit;
use ssh_proto::authorized_keys::AuthorizedKeys;
use ssh_proto::config::Config;
use ssh_proto::connection::policy::{Destination, ServerPolicy};
use ssh_proto::crypto::default_provider;
use ssh_proto::hostkey::HostKeyPair;
use ssh_proto::rekey::RekeyLimits;
use ssh_proto::userkey::{KeyKind, UserKey};

pub const USAGE: &str =
    "usage: gateway serve --listen ADDR:PORT... --host-key FILE --authorized-keys FILE
                     [--permit-open HOST:PORT]... [--allow-exec] [--max-startups N]
                     [--login-grace-time SECS] [--connect-timeout SECS]
                     [--rekey-limit BYTES] [-q] [-v]";

/// What `gateway serve --help` prints after the usage.
const OPTIONS: &str = "
  --listen ADDR:PORT       where to accept SSH connections (a name: each of its
                           addresses); may be given again
  --host-key FILE          the Ed25519 host key, created (with FILE.pub) if missing
  --authorized-keys FILE   who may log in, with sshd's key options
  --permit-open HOST:PORT  a destination direct-tcpip may reach (* matches any host or
                           port); without one, any destination
  --allow-exec             run exec requests with sh -c as the serving user
  --max-startups N         unauthenticated connections at once; more are closed (100)
  --login-grace-time SECS  time to authenticate before the connection is closed (120);
                           0 for no limit
  --connect-timeout SECS   time for a direct-tcpip destination to answer (10)
  --rekey-limit BYTES      renew a connection's keys after BYTES in either direction,
                           a number with an optional K, M, G or T suffix as in sshd's
                           RekeyLimit (1G)
  -q, -v                   log warnings only; log debug lines too";

/// sshd's `MaxStartups` is 10:30:100; this server drops outright at the last figure.
const DEFAULT_MAX_STARTUPS: usize = 100;
/// sshd's `LoginGraceTime`.
const DEFAULT_LOGIN_GRACE: u64 = 120;
const DEFAULT_CONNECT_TIMEOUT: u64 = 10;
/// The longest time in seconds an option takes, as sshd keeps times in a C int. A longer
/// one would overflow the clock when a connection adds it to the present.
const MAX_SECONDS: u64 = i32::MAX as u64;

pub fn run(args: Vec<OsString>) -> Result<ExitCode, String> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let mut listen = Vec::new();
    // Addresses that came from a name rather than written out.
    let mut from_name = Vec::new();
    let mut host_key: Option<PathBuf> = None;
    let mut authorized_keys: Option<PathBuf> = None;
    let mut permit_open = Vec::new();
    let mut allow_exec = false;
    let mut max_startups = DEFAULT_MAX_STARTUPS;
    let mut login_grace = DEFAULT_LOGIN_GRACE;
    let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT;
    let mut rekey = RekeyLimits::default();
    let mut verbosity = 1i8;
    let text =
        |v: OsString, what: &str| v.into_string().map_err(|_| format!("{what} is not UTF-8"));
    let number = |v: String, what: &str, min: u64, max: u64| {
        v.parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| format!("bad {what} '{v}': expected a whole number from {min} to {max}"))
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("listen") => {
                let value = text(parser.value().map_err(|e| e.to_string())?, "address")?;
                let addrs: Vec<SocketAddr> = value
                    .to_socket_addrs()
                    .map_err(|e| format!("bad listen address '{value}': {e}"))?
                    .collect();
                // A name stands for every address it has, as sshd's ListenAddress does:
                // `localhost:2222` listens on 127.0.0.1 and ::1. With port 0 each would
                // get a port of its own, so only the first is taken.
                let literal = value.parse::<SocketAddr>().is_ok();
                let take = if addrs.first().is_some_and(|a| a.port() == 0) {
                    1
                } else {
                    addrs.len()
                };
                for addr in addrs.into_iter().take(take) {
                    if !literal {
                        from_name.push(addr);
                    }
                    if !listen.contains(&addr) {
                        listen.push(addr);
                    }
                }
            }
            Long("host-key") => host_key = Some(parser.value().map_err(|e| e.to_string())?.into()),
            Long("authorized-keys") => {
                authorized_keys = Some(parser.value().map_err(|e| e.to_string())?.into());
            }
            Long("permit-open") => {
                let value = text(parser.value().map_err(|e| e.to_string())?, "destination")?;
                permit_open.push(Destination::parse(&value).map_err(|e| e.to_string())?);
            }
            Long("allow-exec") => allow_exec = true,
            Long("max-startups") => {
                let value = text(parser.value().map_err(|e| e.to_string())?, "number")?;
                // Zero would refuse every connection.
                let n = number(value, "--max-startups", 1, u64::from(u32::MAX))?;
                max_startups = usize::try_from(n).unwrap_or(usize::MAX);
            }
            Long("login-grace-time") => {
                let value = text(parser.value().map_err(|e| e.to_string())?, "number")?;
                // 0 is no limit, as sshd's LoginGraceTime 0: the longest time there is.
                login_grace = match number(value, "--login-grace-time", 0, MAX_SECONDS)? {
                    0 => MAX_SECONDS,
                    n => n,
                };
            }
            Long("connect-timeout") => {
                let value = text(parser.value().map_err(|e| e.to_string())?, "number")?;
                // Zero would fail every connect.
                connect_timeout = number(value, "--connect-timeout", 1, MAX_SECONDS)?;
            }
            Long("rekey-limit") => {
                let value = text(parser.value().map_err(|e| e.to_string())?, "amount")?;
                let limit = RekeyLimit::parse(std::slice::from_ref(&value))
                    .map_err(|e| format!("bad --rekey-limit '{value}': {}", e.0))?;
                // `default` leaves the built-in limit.
                if let Some(bytes) = limit.bytes {
                    rekey.bytes = bytes;
                }
            }
            Short('v') => verbosity = verbosity.saturating_add(1),
            Short('q') => verbosity = 0,
            Long("help") | Short('h') => {
                println!("{USAGE}\n{OPTIONS}");
                return Ok(ExitCode::SUCCESS);
            }
            _ => return Err(format!("{}\n{USAGE}", arg.unexpected())),
        }
    }
    let (Some(host_key), Some(authorized_keys)) = (host_key, authorized_keys) else {
        return Err(format!(
            "--host-key and --authorized-keys are required\n{USAGE}"
        ));
    };
    if listen.is_empty() {
        return Err(format!("give at least one --listen ADDR:PORT\n{USAGE}"));
    }
    init_server_logging(verbosity);

    let key = load_or_create_host_key(&host_key)?;
    let keys_text = std::fs::read_to_string(&authorized_keys)
        .map_err(|e| format!("{}: {e}", authorized_keys.display()))?;
    let keys = AuthorizedKeys::parse(&keys_text);
    for warning in keys.warnings() {
        log::warn!("{}: {warning:?}", authorized_keys.display());
    }
    if keys.entries().is_empty() {
        log::warn!("{}: no keys; nobody can log in", authorized_keys.display());
    }

    let policy = ServerPolicy {
        session: allow_exec,
        exec: allow_exec,
        direct_tcpip: true,
        destinations: permit_open,
        ..ServerPolicy::default()
    };
    let config = Config {
        host_keys: vec![key],
        preauth_timeout: Duration::from_secs(login_grace),
        rekey,
        ..Config::default()
    };
    let settings = Arc::new(Settings {
        config: Arc::new(config),
        authorized_keys: keys,
        policy: Arc::new(policy),
        max_startups,
        connect_timeout: Duration::from_secs(connect_timeout),
    });

    if let Some(limit) = raise_open_file_limit() {
        log::debug!("open file limit {limit}");
    }
    let mut event_loop = EventLoop::new(true).map_err(|e| format!("event loop: {e}"))?;
    for addr in listen {
        match event_loop.listen_ssh(addr, Arc::clone(&settings)) {
            Ok(bound) => log::info!("listen on={bound}"),
            // A name's IPv6 address on a host without IPv6: the name's other addresses
            // serve, as with sshd. A failure to bind any address at all ends below.
            Err(e) if from_name.contains(&addr) && no_such_address(&e) => {
                log::info!("not listening on {addr}: {e}");
            }
            Err(e) => return Err(format!("listen on {addr}: {e}")),
        }
    }
    if event_loop.listeners() == 0 {
        return Err("no --listen address could be bound".to_owned());
    }
    event_loop.run().map_err(|e| format!("event loop: {e}"))?;
    log::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Server logs: info by default (one line per connection, login and channel), no
/// timestamps (journald adds its own), the level as a word.
fn init_server_logging(verbosity: i8) {
    let level = match verbosity {
        ..=0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .format_timestamp(None)
        .format_target(false)
        .try_init();
}

/// Reads the Ed25519 host key at `path`, or makes one there (and its `.pub`) when the
/// file does not exist.
fn load_or_create_host_key(path: &Path) -> Result<HostKeyPair, String> {
    let provider = default_provider();
    let shown = path.display();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = UserKey::from_openssh(provider, text, None)
                .map_err(|e| format!("{shown}: {e} (host keys must be unencrypted)"))?;
            let pair = key
                .to_host_key(provider)
                .ok_or_else(|| format!("{shown}: host keys must be ed25519"))?;
            log::info!(
                "host key file={shown} fingerprint={}",
                pair.public().fingerprint_sha256(provider)
            );
            Ok(pair)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = UserKey::generate(provider, KeyKind::Ed25519, &mut OsRng)
                .map_err(|e| e.to_string())?;
            let private = key
                .to_openssh("gateway host key", None, &mut OsRng)
                .map_err(|e| e.to_string())?;
            super::keygen::write_new(path, private.as_bytes(), 0o600)?;
            let mut public = path.as_os_str().to_owned();
            public.push(".pub");
            super::keygen::write_new(
                Path::new(&public),
                format!("{}\n", key.public_line("gateway host key")).as_bytes(),
                0o644,
            )?;
            let pair = key
                .to_host_key(provider)
                .ok_or("a new ed25519 key is not an ed25519 key")?;
            log::info!(
                "host key created file={shown} fingerprint={}",
                pair.public().fingerprint_sha256(provider)
            );
            Ok(pair)
        }
        Err(e) => Err(format!("{shown}: {e}")),
    }
}
