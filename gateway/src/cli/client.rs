//! `gateway [options] [user@]host [command ...]`: the ssh-style client.
//!
//! The connection is made and authenticated on a blocking socket (prompts may need the
//! terminal), then handed to the event loop, which carries the session, `-W` and every
//! `-L` forward over it.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use gateway::connect::{self, LoginError};
use gateway::event_loop::EventLoop;
use gateway::event_loop::client::{
    ClientSetup, Listen, LocalForward, Pty, SessionKind, terminal_size,
};
use gateway::event_loop::listen::{Target, raise_open_file_limit};
use gateway::forward_spec::{Bind, ForwardSpec, Listen as SpecListen, StdioForward};
use gateway::hostkeys::home_dir;
use gateway::options::{ClientOptions, Tokens};
use gateway::prompt::Prompter;
use gateway::ssh_config::{ConfigSource, Query, RequestTty, SshConfig, local_user};

use super::tty::{RawMode, terminal_modes};

pub const USAGE: &str =
    "usage: gateway [-NTtqv] [-p PORT] [-l USER] [-i FILE]... [-F FILE] [-o KEY=VALUE]...
               [-L [BIND:]PORT:HOST:HOSTPORT]... [-W HOST:PORT] [USER@]HOST [COMMAND ...]";

/// What the command line said.
#[derive(Debug, Default)]
struct Args {
    port: Option<u16>,
    user: Option<String>,
    identity_files: Vec<PathBuf>,
    config_file: Option<PathBuf>,
    options: Vec<String>,
    no_command: bool,
    tty: Option<bool>,
    force_tty: bool,
    verbosity: u8,
    quiet: bool,
    reconnect: bool,
    forwards: Vec<ForwardSpec>,
    stdio: Option<StdioForward>,
    destination: String,
    command: Vec<String>,
}

fn parse(args: Vec<OsString>) -> Result<Args, String> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let mut out = Args::default();
    let text = |v: OsString| {
        v.into_string()
            .map_err(|_| "argument is not UTF-8".to_owned())
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('p') => {
                let value = text(parser.value().map_err(|e| e.to_string())?)?;
                out.port = Some(
                    value
                        .parse::<u16>()
                        .ok()
                        .filter(|&p| p != 0)
                        .ok_or_else(|| format!("Bad port '{value}'"))?,
                );
            }
            Short('l') => out.user = Some(text(parser.value().map_err(|e| e.to_string())?)?),
            Short('i') => out
                .identity_files
                .push(parser.value().map_err(|e| e.to_string())?.into()),
            Short('F') => out.config_file = Some(parser.value().map_err(|e| e.to_string())?.into()),
            Short('o') => out
                .options
                .push(text(parser.value().map_err(|e| e.to_string())?)?),
            Short('N') => out.no_command = true,
            Short('T') => out.tty = Some(false),
            Short('t') => {
                if out.tty == Some(true) {
                    out.force_tty = true;
                }
                out.tty = Some(true);
            }
            Short('v') => out.verbosity = out.verbosity.saturating_add(1),
            Short('q') => out.quiet = true,
            Long("reconnect") => out.reconnect = true,
            Short('L') => {
                let value = text(parser.value().map_err(|e| e.to_string())?)?;
                out.forwards
                    .push(ForwardSpec::parse_local(&value).map_err(|e| e.to_string())?);
            }
            Short('W') => {
                let value = text(parser.value().map_err(|e| e.to_string())?)?;
                out.stdio = Some(StdioForward::parse(&value).map_err(|e| e.to_string())?);
            }
            Value(v) => {
                out.destination = text(v)?;
                for word in parser.raw_args().map_err(|e| e.to_string())? {
                    out.command.push(text(word)?);
                }
                break;
            }
            _ => return Err(format!("{}\n{USAGE}", arg.unexpected())),
        }
    }
    if out.destination.is_empty() {
        return Err(USAGE.to_owned());
    }
    Ok(out)
}

pub fn run(args: Vec<OsString>) -> Result<ExitCode, String> {
    let args = parse(args)?;

    let mut options = ClientOptions::default();
    for option in &args.options {
        options.apply_option(option).map_err(|e| e.to_string())?;
    }
    let (at_user, host_arg) = match args.destination.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_owned()), h.to_owned()),
        None => (None, args.destination.clone()),
    };
    let cli_user = args.user.clone().or(at_user);
    let config = SshConfig::load(&ConfigSource::from_flag(args.config_file.as_deref()))
        .map_err(|e| e.to_string())?;
    let local = local_user();
    let resolved = config.resolve_for(&Query {
        host: &host_arg,
        user: cli_user.as_deref(),
        local_user: &local,
    });
    options.apply_config(&resolved).map_err(|e| e.to_string())?;

    let verbosity = if args.quiet {
        log::LevelFilter::Error
    } else if args.verbosity > 0 {
        if args.verbosity > 1 {
            log::LevelFilter::Trace
        } else {
            log::LevelFilter::Debug
        }
    } else {
        options
            .log_level
            .map_or(log::LevelFilter::Warn, |l| l.filter())
    };
    init_logging(verbosity);

    // ssh's order: -l wins over user@host, which wins over User.
    let user = cli_user
        .or_else(|| options.user.clone())
        .unwrap_or_else(|| local.clone());
    options.auth.user.clone_from(&user);
    let port = args.port.or(options.port).unwrap_or(22);
    let host = options.remote_host(&host_arg);
    // -i files come before IdentityFile lines, as in ssh.
    let mut identity_files: Vec<PathBuf> = args.identity_files.clone();
    identity_files.append(&mut options.auth.identity_files);
    options.auth.identity_files = identity_files;
    let home = home_dir();
    options.expand_identity_files(&Tokens {
        host: &host,
        original_host: &host_arg,
        port,
        remote_user: &user,
        local_user: &local,
        home: &home,
    });

    let mut session = session_kind(&args, &options)?;
    if args.reconnect && session != SessionKind::None {
        return Err("--reconnect keeps forwards up; use it with -N".to_owned());
    }
    let mut forwards = Vec::new();
    for spec in args.forwards.iter().chain(options.local_forwards.iter()) {
        forwards.push(resolve_forward(spec)?);
    }
    let server_alive = (options.server_alive_interval > Duration::ZERO).then_some((
        options.server_alive_interval,
        options.server_alive_count_max,
    ));

    let prompter = Prompter::from_env(options.batch_mode);
    let (mut conn, _key) = connect::handshake(&host, port, &options, &prompter, true)?;
    match connect::authenticate(&mut conn, &options, &prompter, &host, port) {
        Ok(_) => {}
        // ssh's own form, `user@host: Permission denied (publickey).`, has no program name
        // in front, unlike the errors the caller prints.
        Err(LoginError::Denied(line)) => {
            eprintln!("{line}");
            return Ok(ExitCode::from(255));
        }
        Err(e) => return Err(e.into()),
    }

    let _raw = match &session {
        SessionKind::Session { pty: Some(_), .. } => RawMode::enter(),
        _ => None,
    };
    raise_open_file_limit();
    let mut event_loop = EventLoop::new(true).map_err(|e| format!("event loop: {e}"))?;
    // Like ssh, a client whose terminal hangs up ends (with 255) rather than dying of it.
    event_loop
        .watch_hangup()
        .map_err(|e| format!("event loop: {e}"))?;
    // The size as it is now that the loop watches SIGWINCH: prompts may have taken a while.
    if let SessionKind::Session { pty: Some(pty), .. } = &mut session {
        pty.size = terminal_size();
    }
    let setup = ClientSetup {
        host: host_arg.clone(),
        session: session.clone(),
        local_forwards: forwards,
        exit_on_forward_failure: options.exit_on_forward_failure,
        server_alive,
    };
    let reconnect = args.reconnect.then(|| {
        let (host, options) = (host.clone(), options.clone());
        let connect: gateway::event_loop::client::Reconnector = Box::new(move || {
            let prompter = Prompter::from_env(options.batch_mode);
            let (mut conn, _key) = connect::handshake(&host, port, &options, &prompter, true)?;
            connect::authenticate(&mut conn, &options, &prompter, &host, port)?;
            Ok(conn)
        });
        connect
    });
    let outcome = event_loop.add_client(conn, setup, reconnect)?;
    event_loop.run().map_err(|e| format!("event loop: {e}"))?;
    drop(_raw);

    let outcome = outcome.borrow();
    if let Some(error) = &outcome.error {
        return Err(error.clone());
    }
    Ok(match (&session, outcome.exit_status) {
        (_, Some(status)) => ExitCode::from(status),
        (SessionKind::Session { .. }, None) => ExitCode::from(255),
        _ => ExitCode::SUCCESS,
    })
}

/// The session to run: none with `-N`, `-W`'s stdio forward, or a command or shell, with
/// a terminal as `-t`, `-T` and RequestTTY say.
fn session_kind(args: &Args, options: &ClientOptions) -> Result<SessionKind, String> {
    if let Some(stdio) = &args.stdio {
        if !args.command.is_empty() || args.no_command {
            return Err("-W cannot be combined with a command or -N".to_owned());
        }
        return Ok(SessionKind::Stdio(Target::Tcp {
            host: stdio.host.clone(),
            port: stdio.port,
        }));
    }
    if args.no_command {
        return Ok(SessionKind::None);
    }
    let command = (!args.command.is_empty()).then(|| args.command.join(" "));
    let stdin_tty = rustix::termios::isatty(rustix::stdio::stdin());
    let want = match args.tty {
        Some(t) => t,
        None => match options.request_tty {
            RequestTty::No => false,
            RequestTty::Yes | RequestTty::Force => true,
            RequestTty::Auto => command.is_none(),
        },
    };
    let pty = if want && (stdin_tty || args.force_tty || options.request_tty == RequestTty::Force) {
        // Read before raw mode, so the remote terminal gets the modes the user set.
        Some(Pty {
            term: std::env::var("TERM").unwrap_or_else(|_| "vt100".to_owned()),
            size: terminal_size(),
            modes: terminal_modes(),
        })
    } else {
        if want && args.tty == Some(true) {
            eprintln!("Pseudo-terminal will not be allocated because stdin is not a terminal.");
        }
        None
    };
    Ok(SessionKind::Session { command, pty })
}

/// Where a forward listens, resolved: no bind address (or `localhost`) means both
/// loopback addresses, as ssh does without GatewayPorts; `*` means every interface.
fn resolve_forward(spec: &ForwardSpec) -> Result<LocalForward, String> {
    let listen = match &spec.listen {
        SpecListen::Unix(path) => Listen::Unix(path.clone()),
        SpecListen::Tcp { bind, port } => match bind {
            Bind::Default => Listen::Loopback(*port),
            Bind::Address(a) if a == "localhost" => Listen::Loopback(*port),
            Bind::All => Listen::Tcp(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), *port)),
            Bind::Address(a) => {
                let ip = (a.as_str(), *port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut it| it.next())
                    .map(|s| s.ip())
                    .ok_or_else(|| format!("bind address '{a}' does not resolve"))?;
                Listen::Tcp(SocketAddr::new(ip, *port))
            }
        },
    };
    Ok(LocalForward {
        listen,
        target: spec.target.clone(),
    })
}

fn init_logging(level: log::LevelFilter) {
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .format_timestamp(None)
        .format_target(false)
        .try_init();
}
