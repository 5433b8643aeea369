//! `gateway probe`: connect, complete key exchange, report what was negotiated.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gateway::auth::{AuthError, Authenticator};
use gateway::connect;
use gateway::options::ClientOptions;
use gateway::prompt::Prompter;
use ssh_proto::algorithms::Algorithm;
use ssh_proto::msg::DisconnectReason;

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

fn probe(host: &str, port: u16, mut options: ClientOptions, auth: bool) -> Result<(), String> {
    let at = format!("{host} port {port}");
    options.connect_timeout = options.connect_timeout.or(Some(TIMEOUT));
    let prompter = Prompter::from_env(options.batch_mode);
    // With --auth the host key is checked as ssh checks it before logging in; without,
    // probe reports the key without judging it, as ssh-keyscan does.
    let (mut conn, host_key) = connect::handshake(host, port, &options, &prompter, auth)?;

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
    println!(
        "{} key fingerprint is {}.",
        host_key.openssh_label(),
        host_key.fingerprint_sha256(ssh_proto::crypto::default_provider())
    );

    if auth {
        let deadline = Instant::now() + TIMEOUT;
        let method = Authenticator::new(&mut conn, &options.auth, &prompter, host, deadline)
            .run()
            .map_err(|e| match e {
                AuthError::Denied(_) => format!("{}@{host}: {e}", options.auth.user),
                AuthError::Drive(d) => connect::describe(&at, d),
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
