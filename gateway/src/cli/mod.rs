//! Command line dispatch.

use std::ffi::OsString;
use std::process::ExitCode;

mod client;
mod demo;
mod keygen;
mod probe;
mod serve;
mod tty;

const USAGE: &str = "\
usage: gateway [-NTtqv] [-p PORT] [-l USER] [-i FILE]... [-F FILE] [-o KEY=VALUE]...
               [-L [BIND:]PORT:HOST:HOSTPORT]... [-W HOST:PORT] [--reconnect] [USER@]HOST [COMMAND ...]
       gateway serve --listen ADDR:PORT... --host-key FILE --authorized-keys FILE
               [--permit-open HOST:PORT]... [--allow-exec] [--max-startups N]
               [--login-grace-time SECS] [--connect-timeout SECS] [--rekey-limit BYTES]
               [-q] [-v]
       gateway probe [--auth] [-p PORT] [-l USER] [-i FILE]... [-o KEY=VALUE]... [-v] [USER@]HOST
       gateway keygen [-t ed25519|ecdsa|rsa] [-b BITS] [-f FILE] [-N PASSPHRASE] [-C COMMENT]
       gateway demo [--mib N] [-v]
       gateway help | --version

  (none)  like ssh: run COMMAND on HOST, or a shell, or only the -L and -W forwards
          (-N); reads ~/.ssh/config (or -F FILE) and known_hosts as ssh does; with
          --reconnect (and -N) a lost connection is made again, backing off from 1 s
          to 30 s, while the -L listeners stay bound
  serve   the forwarding server: authenticates clients by authorized_keys and lets
          them open direct-tcpip channels (to --permit-open destinations only, when
          given) and, with --allow-exec, run commands with sh -c
  probe   connect to HOST, complete key exchange, and print what was negotiated
          and the server's host key fingerprint; -o takes KexAlgorithms, Ciphers,
          MACs and HostKeyAlgorithms in ssh_config(5) syntax (+, - and ^ prefixes);
          with --auth it checks the host key against known_hosts as ssh does and
          authenticates (agent and key files, keyboard-interactive, password),
          taking IdentityFile, IdentitiesOnly, IdentityAgent, BatchMode,
          PasswordAuthentication, PubkeyAuthentication, KbdInteractiveAuthentication,
          StrictHostKeyChecking, UserKnownHostsFile, HashKnownHosts and
          PreferredAuthentications as -o options
  keygen  write a key pair in OpenSSH's format (ed25519 unless -t says otherwise)
  demo    with no setup: start a forwarding server on a free loopback port with
          throwaway keys, log in to it, run a command, and move data both ways
          through a -L forward to a local echo service (--mib N each way, default
          256), printing each step and the throughput";

/// Runs the command; an `Err` is printed as one line and exits 255.
pub fn run(args: Vec<OsString>) -> Result<ExitCode, String> {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::from(255));
    };
    let rest: Vec<OsString> = args.collect();
    match command.to_str() {
        Some("probe") => probe::run(rest),
        Some("demo") => demo::run(rest),
        Some("keygen") => keygen::run(rest),
        Some("serve") => serve::run(rest),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some("--version" | "-V") => {
            println!("gateway {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            let mut all = vec![command];
            all.extend(rest);
            client::run(all)
        }
    }
}

/// Turns on logging to stderr: `-v` shows debug messages, `-vv` and more trace.
pub fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .format_timestamp(None)
        .format_target(false)
        .try_init();
}
