//! What `gateway serve` lets a login do, what it logs, and how it bounds connections that
//! never log in, checked with OpenSSH's client 10.0, paramiko and raw sockets.
//!
//! What it proves:
//!
//! - The options of the `authorized_keys` line a client logged in with bind that
//!   connection on top of the server's flags. On one server that permits two echo
//!   services and `exec`, a key without options reaches both, so every refusal below is
//!   the key's doing, and the log says so: `restrict` and `no-port-forwarding` refuse
//!   `direct-tcpip` to a `--permit-open` destination as administratively prohibited
//!   (`restrict` still lets a command run); `permitopen=` lets its one destination
//!   through and refuses the other; `command=` runs instead of the client's command,
//!   which it finds in `SSH_ORIGINAL_COMMAND`.
//! - `no-pty`: this server grants a terminal to no one, so its own policy refuses the
//!   pty request before the key's option is looked at, for this key as for one without
//!   options. `ssh -tt` is told the request failed and, having insisted on a terminal,
//!   gives up with 255; without `-tt` the key's command runs.
//! - The log: a `connect` line, an `auth` line with the client's address, user, method,
//!   the key's `SHA256:` fingerprint as `ssh-keygen -l` prints it and the result, then a
//!   `close` line with byte counts, in that order. A login that fails closes with
//!   `user=-`; a key that is not listed and that paramiko signs at once (OpenSSH asks
//!   first, and is told no without a log line) is logged `result=refused`.
//! - A host key file that does not exist is created, and the fingerprint logged is
//!   `ssh-keygen -l`'s of the new `.pub` and the one OpenSSH's client was shown.
//! - `--login-grace-time 2` closes a socket that sends nothing, and one that sends only
//!   its version line, about two seconds after each connected, and logs why.
//! - `--max-startups 2`: while two unauthenticated sockets are open, the server closes a
//!   third connection at once without sending it a byte, not even a version line, and
//!   logs a `refuse` line. sshd also drops such a connection, after writing "Exceeded
//!   MaxStartups". OpenSSH's client is turned away alike. A forward that had logged in
//!   before keeps working all the while, and once one of the two sockets has gone a new
//!   login gets in.
//! - A bad `--rekey-limit` stops the server with one line saying why.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use interop::forwarding::{
    Bastion, Reaper, XorShift, check_echoed, echo_service, echo_through, openssh_client,
    wait_for_port,
};
use interop::peers::{
    Cells, KeyPair, OpenSsh, Peer, RunOutput, TempDir, current_user, free_port, gateway_binary,
    keygen, peer_script, require, run, run_with_input,
};

/// Long enough for any client here to finish; one still running is killed and fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The login grace time of the server that checks it, in seconds.
const GRACE_SECS: u64 = 2;
/// How late past the grace time a connection may close: loaded machines are slow.
const GRACE_SLACK: Duration = Duration::from_secs(3);
/// What the forced command prints before the client's command.
const FORCED: &str = "forced";

/// Seeded bytes to push through a forward.
fn data(bytes: usize, seed: u64) -> Vec<u8> {
    let mut buf = vec![0u8; bytes];
    XorShift(seed | 1).fill(&mut buf);
    buf
}

/// The client failed with exit status 255 and said every one of `needles`.
fn check_refused(out: &RunOutput, needles: &[&str]) -> Result<String, String> {
    if out.timed_out || out.status.code() != Some(255) {
        return Err(format!("expected exit status 255:\n{out}"));
    }
    let stderr = out.stderr_text();
    if let Some(missing) = needles.iter().find(|n| !stderr.contains(**n)) {
        return Err(format!("the client did not say {missing:?}:\n{out}"));
    }
    if !out.stdout.is_empty() {
        return Err(format!("a refused client printed something:\n{out}"));
    }
    Ok(stderr
        .lines()
        .find(|l| l.contains(needles[0]))
        .unwrap_or_default()
        .trim()
        .to_owned())
}

/// The `SHA256:...` fingerprint of a public key file, as `ssh-keygen -l` prints it.
fn keygen_fingerprint(public_key: &Path) -> Result<String, String> {
    let ssh_keygen = require(Peer::SshKeygen).ok_or("no ssh-keygen")?;
    let out = run(
        Command::new(ssh_keygen).arg("-lf").arg(public_key),
        CLIENT_TIMEOUT,
    );
    let stdout = out.stdout_text();
    // "256 SHA256:... comment (ED25519)"
    match stdout.split_whitespace().nth(1) {
        Some(fingerprint) if out.success() && fingerprint.starts_with("SHA256:") => {
            Ok(fingerprint.to_owned())
        }
        _ => Err(format!("ssh-keygen -lf failed:\n{out}")),
    }
}

/// The value of `field=` in a log line, up to the next space.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()))
}

/// A key of its own in `dir`, and its `authorized_keys` line with `options` in front.
fn key_with_options(dir: &Path, name: &str, options: &str) -> Option<(KeyPair, String)> {
    let key = keygen(dir, name, "ed25519")?;
    let line = format!("{options} {}", key.public_key);
    Some((key, line))
}

/// The `authorized_keys` options of one login, checked through real logins of OpenSSH's
/// client to one server with `--allow-exec` and two permitted echo services.
#[test]
fn key_options_bind_the_login() {
    let Some(ssh) = OpenSsh::V10_0.ssh() else {
        return;
    };
    let first = format!("127.0.0.1:{}", echo_service());
    let second = format!("127.0.0.1:{}", echo_service());
    let keys = TempDir::new("serve-key-options");
    let forced = format!("command=\"echo {FORCED} $SSH_ORIGINAL_COMMAND\"");
    let permit = format!("permitopen=\"{first}\"");
    let options = [
        ("restrict", "restrict"),
        ("permitopen", permit.as_str()),
        ("no-port-forwarding", "no-port-forwarding"),
        ("no-pty", "no-pty"),
        ("command", forced.as_str()),
    ];
    let mut keyed = Vec::new();
    for (name, option) in options {
        let Some(pair) = key_with_options(keys.path(), name, option) else {
            return;
        };
        keyed.push(pair);
    }
    let lines: Vec<String> = keyed.iter().map(|(_, line)| line.clone()).collect();
    let extra = [
        "-v",
        "--allow-exec",
        "--permit-open",
        &first,
        "--permit-open",
        &second,
    ];
    let Some(bastion) = Bastion::start_authorizing("serve-key-options", &extra, &lines) else {
        return;
    };
    let key = |i: usize| &keyed[i].0.private_key;
    let client = |private_key: &Path| {
        openssh_client(&ssh, bastion.serve.port, private_key, &bastion.known_hosts)
    };
    let mut cells = Cells::new("authorized_keys options through gateway serve");
    let input = data(64 * 1024, 0x0b71_0001);
    // Runs `-W to` with the key and checks that it echoes.
    let forwards = |private_key: &Path, to: &str| {
        let out = run_with_input(
            client(private_key).args(["-W", to, "127.0.0.1"]),
            Some(&input),
            CLIENT_TIMEOUT,
        );
        check_echoed(&out, &input)
    };
    // Runs `-W to` with the key and checks that the key's options refused it.
    let refused = |private_key: &Path, to: &str| {
        let mark = bastion.log_mark();
        let out = run(
            client(private_key).args(["-W", to, "127.0.0.1"]),
            CLIENT_TIMEOUT,
        );
        let said = check_refused(
            &out,
            &[
                "channel 0: open failed: administratively prohibited",
                "stdio forwarding failed",
            ],
        )?;
        let to_field = format!("to={to} ");
        bastion.log_line_after(
            mark,
            &[
                "type=direct-tcpip",
                &to_field,
                "result=refused",
                "reason=\"forbidden by the key's authorized_keys options\"",
            ],
        )?;
        Ok(said)
    };

    let own = &bastion.serve.key.private_key;
    let both = forwards(own, &first).and_then(|a| forwards(own, &second).map(|b| a + "; " + &b));
    cells.record("no options", "-W to both destinations", both);

    cells.record("restrict", "-W refused", refused(key(0), &first));
    let out = run(
        client(key(0)).args(["127.0.0.1", "echo ran"]),
        CLIENT_TIMEOUT,
    );
    let result = if out.success() && out.stdout_text() == "ran\n" {
        Ok("exit 0, stdout \"ran\"".to_owned())
    } else {
        Err(format!("expected \"ran\" and exit 0:\n{out}"))
    };
    cells.record("restrict", "exec still runs", result);

    cells.record(
        "permitopen=",
        "-W to its destination",
        forwards(key(1), &first),
    );
    cells.record(
        "permitopen=",
        "-W elsewhere refused",
        refused(key(1), &second),
    );

    cells.record(
        "no-port-forwarding",
        "-W to a --permit-open destination refused",
        refused(key(2), &first),
    );

    // OpenSSH's client ends a session whose terminal it asked for with -tt and did not
    // get, so the refusal shows as exit 255; the key without options gets the same.
    for (who, private_key) in [("no-pty", key(3)), ("no options", own)] {
        let mark = bastion.log_mark();
        let out = run(
            client(private_key).args(["-tt", "127.0.0.1", "echo with a terminal"]),
            CLIENT_TIMEOUT,
        );
        let result =
            check_refused(&out, &["PTY allocation request failed on channel 0"]).and_then(|said| {
                let line = bastion.log_line_after(mark, &["type=pty-req", "result=refused"])?;
                let reason = line.split_once("reason=").map_or("", |(_, r)| r);
                if reason == "\"not allowed by the server's policy\"" {
                    Ok(format!("{said}; logged {reason}"))
                } else {
                    Err(format!("refused for another reason: {line}"))
                }
            });
        cells.record(who, "ssh -tt: pty refused", result);
    }
    let out = run(
        client(key(3)).args(["127.0.0.1", "echo no terminal"]),
        CLIENT_TIMEOUT,
    );
    let result = if out.success() && out.stdout_text() == "no terminal\n" {
        Ok("exit 0, stdout \"no terminal\"".to_owned())
    } else {
        Err(format!("expected \"no terminal\" and exit 0:\n{out}"))
    };
    cells.record("no-pty", "exec without a pty runs", result);

    let mark = bastion.log_mark();
    let out = run(
        client(key(4)).args(["127.0.0.1", "echo client command"]),
        CLIENT_TIMEOUT,
    );
    let expected = format!("{FORCED} echo client command\n");
    let result = if out.success() && out.stdout_text() == expected {
        let command = format!("command=\"echo {FORCED} $SSH_ORIGINAL_COMMAND\"");
        bastion
            .log_line_after(mark, &["type=exec", &command, "result=accepted"])
            .map(|_| format!("printed {:?}", expected.trim_end()))
    } else {
        Err(format!("expected only {expected:?} and exit 0:\n{out}"))
    };
    cells.record("command=", "the forced command runs instead", result);
    cells.finish();
}

/// The `connect`, `auth` and `close` lines of a login and of failed ones, the host key
/// made on start, and the one line a bad `--rekey-limit` gets.
#[test]
fn serve_logs_logins_and_its_new_host_key() {
    let Some(ssh) = OpenSsh::V10_0.ssh() else {
        return;
    };
    let permit = format!("127.0.0.1:{}", echo_service());
    let Some(bastion) = Bastion::start("serve-log", &["-v", "--permit-open", &permit]) else {
        return;
    };
    let mut cells = Cells::new("gateway serve's log");

    let host_pub = format!("{}.pub", bastion.serve.host_key.display());
    let mark = bastion.log_mark();
    let input = data(64 * 1024, 0x0b71_0002);
    let out = run_with_input(
        bastion.ssh(&ssh).args(["-v", "-W", &permit, "127.0.0.1"]),
        Some(&input),
        CLIENT_TIMEOUT,
    );
    let echoed = check_echoed(&out, &input);

    let result = keygen_fingerprint(Path::new(&host_pub)).and_then(|fingerprint| {
        let line = bastion.log_line(&["host key created", "fingerprint="])?;
        let file = bastion.serve.host_key.display().to_string();
        if field(&line, "fingerprint") != Some(fingerprint.as_str())
            || field(&line, "file") != Some(file.as_str())
        {
            return Err(format!(
                "the log does not name {file} with ssh-keygen's {fingerprint}: {line}"
            ));
        }
        let shown = format!("Server host key: ssh-ed25519 {fingerprint}");
        if !out.stderr_text().contains(&shown) {
            return Err(format!("ssh -v did not say {shown:?}:\n{out}"));
        }
        Ok(format!("{fingerprint}, as ssh-keygen and ssh saw it"))
    });
    cells.record("host key", "created and logged", result);

    let result = echoed.and_then(|_| {
        let client_pub = format!("{}.pub", bastion.serve.key.private_key.display());
        let fingerprint = keygen_fingerprint(Path::new(&client_pub))?;
        let from = bastion.login_since(mark)?;
        let user = current_user();
        let auth = bastion.log_line_after(mark, &["auth from=", "result=accepted"])?;
        let expected = format!(
            "auth from={from} user={user} method=publickey key=\"ssh-ed25519 {fingerprint}\" result=accepted"
        );
        if !auth.ends_with(&expected) {
            return Err(format!("expected a line ending {expected:?}, got {auth:?}"));
        }
        connect_and_close(&bastion, mark, &from, user).map(|close| format!("{expected}; {close}"))
    });
    cells.record("ssh -W", "connect, auth and close lines", result);

    // A key the server does not know. OpenSSH asks whether it would do before signing,
    // is told no, and gives up: the login never happens.
    let stray = TempDir::new("serve-log-stray");
    if let Some(key) = keygen(stray.path(), "id_stray", "ed25519") {
        let mark = bastion.log_mark();
        let out = run(
            openssh_client(
                &ssh,
                bastion.serve.port,
                &key.private_key,
                &bastion.known_hosts,
            )
            .args(["-W", &permit, "127.0.0.1"]),
            CLIENT_TIMEOUT,
        );
        let result = check_refused(&out, &["Permission denied (publickey)"]).and_then(|said| {
            let connect = bastion.log_line_after(mark, &["connect from="])?;
            let from = field(&connect, "from").unwrap_or_default().to_owned();
            let close = connect_and_close(&bastion, mark, &from, "-")?;
            let text = fs::read_to_string(&bastion.log).unwrap_or_default();
            let auth = format!("auth from={from} ");
            match text.lines().find(|l| l.contains(&auth)) {
                Some(line) => Err(format!("a key query was logged as a login: {line}")),
                None => Ok(format!("{said}; {close}")),
            }
        });
        cells.record("unknown key, ssh", "closes with user=-", result);
        paramiko_refused_cell(&mut cells, &bastion, &key, &permit);
    }

    // The files are never read: the bad value stops the server first.
    let unused = TempDir::new("serve-bad-option");
    let out = run(
        Command::new(gateway_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--host-key"])
            .arg(unused.join("host_key"))
            .arg("--authorized-keys")
            .arg(unused.join("authorized_keys"))
            .args(["--rekey-limit", "8X"]),
        CLIENT_TIMEOUT,
    );
    let stderr = out.stderr_text();
    let result = match stderr.lines().collect::<Vec<_>>().as_slice() {
        [line] if !out.success() && *line == "gateway: bad --rekey-limit '8X': Bad number '8X'" => {
            Ok(format!("exit {}: {line}", out.status.code().unwrap_or(-1)))
        }
        _ => Err(format!("expected a failure with one line:\n{out}")),
    };
    cells.record("--rekey-limit 8X", "one line, exit", result);
    cells.finish();
}

/// The `connect` and `close` lines of the connection from `from`, after `mark`: the
/// connect first, the close last naming `user` and byte counts both ways above zero.
fn connect_and_close(
    bastion: &Bastion,
    mark: usize,
    from: &str,
    user: &str,
) -> Result<String, String> {
    let close = bastion.log_line_after(mark, &[&format!("close from={from} ")])?;
    let text = fs::read_to_string(&bastion.log).unwrap_or_default();
    let ours: Vec<&str> = text
        .get(mark..)
        .unwrap_or_default()
        .lines()
        .filter(|l| field(l, "from") == Some(from))
        .collect();
    let connect = format!("connect from={from}");
    let counted = |name| field(&close, name).and_then(|v| v.parse::<u64>().ok());
    let in_order = ours.first().is_some_and(|l| l.ends_with(&connect))
        && ours.last().is_some_and(|l| *l == close);
    match (counted("bytes_in"), counted("bytes_out")) {
        (Some(1..), Some(1..)) if in_order && field(&close, "user") == Some(user) => Ok(close
            .split_once("close ")
            .map_or(close.as_str(), |(_, rest)| rest)
            .to_owned()),
        _ => Err(format!(
            "expected {connect:?} first and a close line with user={user} and byte counts \
             last; the connection's lines:\n{}",
            ours.join("\n")
        )),
    }
}

/// paramiko signs with the key it is given without asking first, so the server verifies
/// a signature by a key it does not list, refuses it, and logs that.
fn paramiko_refused_cell(cells: &mut Cells, bastion: &Bastion, key: &KeyPair, permit: &str) {
    let Some(python) = require(Peer::PeerPython) else {
        return;
    };
    let fingerprint =
        match keygen_fingerprint(Path::new(&format!("{}.pub", key.private_key.display()))) {
            Ok(f) => f,
            Err(why) => {
                cells.record("unknown key, paramiko", "auth result=refused", Err(why));
                return;
            }
        };
    let host_key_pub = format!("{}.pub", bastion.serve.host_key.display());
    let out = run(
        Command::new(python)
            .arg(peer_script("forward_peer.py"))
            .args(["paramiko", "--port", &bastion.serve.port.to_string()])
            .args(["--user", current_user(), "--key"])
            .arg(&key.private_key)
            .args(["--host-key", &host_key_pub])
            .args(["--to", permit, "--bytes", "1024"]),
        CLIENT_TIMEOUT,
    );
    let user = current_user();
    let result = if out.status.code() == Some(2) && out.stdout_text().contains("Authentication") {
        let expected = format!(
            "user={user} method=publickey key=\"ssh-ed25519 {fingerprint}\" result=refused reason=\"key not listed\""
        );
        bastion
            .log_line(&["auth from=", &expected])
            .map(|_| expected)
    } else {
        Err(format!(
            "expected paramiko to fail authentication (exit 2):\n{out}"
        ))
    };
    cells.record("unknown key, paramiko", "auth result=refused", result);
}

/// Reads what the server sends until it closes the connection; the bytes, and how long
/// after `since` the end came. The error says what ended it otherwise.
fn read_until_closed(stream: &mut TcpStream, since: Instant) -> (Vec<u8>, Duration, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(GRACE_SECS) + GRACE_SLACK * 2))
        .expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let how = loop {
        match stream.read(&mut buf) {
            Ok(0) => break "closed".to_owned(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break "still open".to_owned();
            }
            Err(e) => break format!("closed ({e})"),
        }
    };
    (got, since.elapsed(), how)
}

/// `--login-grace-time` and `--max-startups`, with raw sockets that never log in.
#[test]
fn serve_bounds_unauthenticated_connections() {
    let Some(ssh) = OpenSsh::V10_0.ssh() else {
        return;
    };
    let mut cells = Cells::new("gateway serve's bounds on connections that never log in");
    grace_cells(&mut cells);
    startup_cells(&mut cells, &ssh);
    cells.finish();
}

/// Two sockets at once, one silent and one that sends its version line and stops there:
/// each is served (it gets the server's version line) and closed after the grace time.
fn grace_cells(cells: &mut Cells) {
    let grace = GRACE_SECS.to_string();
    let Some(bastion) = Bastion::start("serve-grace", &["-v", "--login-grace-time", &grace]) else {
        return;
    };
    let port = bastion.serve.port;
    let waits: Vec<_> = [
        ("silent socket", ""),
        ("version line only", "SSH-2.0-idle\r\n"),
    ]
    .into_iter()
    .map(|(name, send)| {
        let worker = thread::spawn(move || {
            let start = Instant::now();
            let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .map_err(|e| format!("connect: {e}"))?;
            let from = stream.local_addr().map_err(|e| e.to_string())?.to_string();
            stream
                .write_all(send.as_bytes())
                .map_err(|e| format!("write: {e}"))?;
            let (got, after, how) = read_until_closed(&mut stream, start);
            Ok::<_, String>((from, got, after, how))
        });
        (name, worker)
    })
    .collect();
    let grace = Duration::from_secs(GRACE_SECS);
    // The server's clock starts a moment after the socket connected, never before.
    let earliest = grace - Duration::from_millis(100);
    for (name, worker) in waits {
        let result = worker
            .join()
            .unwrap_or_else(|_| Err("the socket's thread panicked".to_owned()))
            .and_then(|(from, got, after, how)| {
                if !got.starts_with(b"SSH-2.0-") || !how.starts_with("closed") {
                    return Err(format!(
                        "expected the server's version line, then the end: got {} bytes, {how}",
                        got.len()
                    ));
                }
                if after < earliest || after > grace + GRACE_SLACK {
                    return Err(format!(
                        "closed after {after:.2?}, not about {grace:?} after connecting"
                    ));
                }
                let close = format!("close from={from} ");
                let line = bastion.log_line(&[
                    &close,
                    "user=-",
                    "reason=\"timed out: authentication took too long\"",
                ])?;
                let reason = line.split_once("reason=").map_or("", |(_, r)| r);
                Ok(format!("closed after {after:.2?}, logged {reason}"))
            });
        cells.record(name, "--login-grace-time 2", result);
    }
}

/// `--max-startups 2` with a logged-in forward, two idle sockets, a third socket and a
/// real client.
fn startup_cells(cells: &mut Cells, ssh: &Path) {
    let echo = echo_service();
    let permit = format!("127.0.0.1:{echo}");
    let extra = ["-v", "--max-startups", "2", "--permit-open", &permit];
    let Some(bastion) = Bastion::start("serve-startups", &extra) else {
        return;
    };
    let name = "--max-startups 2";

    // A forward that logs in before the slots fill up.
    let local = free_port();
    let mut command = bastion.ssh(ssh);
    command
        .args(["-N", "-o", "ExitOnForwardFailure=yes"])
        .args(["-L", &format!("{local}:{permit}")])
        .arg("127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut forward = Reaper::spawn(&mut command, "ssh -L");
    wait_for_port(local, Some(&mut forward), "ssh -L");
    // The probe that saw the server start listening must be gone, so that the two
    // sockets below are the only unauthenticated connections.
    if let Err(why) = all_closed_but_one(&bastion) {
        cells.record(name, "setup", Err(why));
        return;
    }

    let mut held = Vec::new();
    for i in 0..2 {
        let result = TcpStream::connect((Ipv4Addr::LOCALHOST, bastion.serve.port))
            .map_err(|e| format!("connect: {e}"))
            .and_then(|mut stream| {
                let line = version_line(&mut stream)?;
                held.push(stream);
                Ok(line)
            });
        if let Err(why) = result {
            cells.record(name, &format!("idle socket {} served", i + 1), Err(why));
            return;
        }
    }

    let start = Instant::now();
    let result = TcpStream::connect((Ipv4Addr::LOCALHOST, bastion.serve.port))
        .map_err(|e| format!("connect: {e}"))
        .and_then(|mut stream| {
            let from = stream.local_addr().map_err(|e| e.to_string())?.to_string();
            let (got, after, how) = read_until_closed(&mut stream, start);
            if !got.is_empty() || !how.starts_with("closed") || after > Duration::from_secs(2) {
                return Err(format!(
                    "expected the connection closed at once with nothing sent: {} bytes, \
                     {how} after {after:.2?}",
                    got.len()
                ));
            }
            let refuse = format!("refuse from={from} ");
            let line = bastion.log_line(&[
                &refuse,
                "reason=\"too many unauthenticated connections (max-startups 2)\"",
            ])?;
            let reason = line.split_once("reason=").map_or("", |(_, r)| r);
            Ok(format!("{how} with nothing sent; logged {reason}"))
        });
    cells.record(name, "third socket dropped", result);

    let mark = bastion.log_mark();
    let out = run(
        bastion.ssh(ssh).args(["-W", &permit, "127.0.0.1"]),
        CLIENT_TIMEOUT,
    );
    // The client's version line may be on its way when the server closes the socket,
    // which then ends in a reset instead of an orderly close: ssh says either.
    let result = ["Connection closed by", "Connection reset by"]
        .iter()
        .map(|said| check_refused(&out, &[said]))
        .find(Result::is_ok)
        .unwrap_or_else(|| Err(format!("expected the connection closed or reset:\n{out}")))
        .and_then(|said| {
            bastion.log_line_after(mark, &["refuse from=", "(max-startups 2)"])?;
            Ok(said)
        });
    cells.record(name, "ssh -W turned away while full", result);

    let result = TcpStream::connect((Ipv4Addr::LOCALHOST, local))
        .map_err(|e| format!("connect to the forward: {e}"))
        .and_then(|stream| {
            let (sent, got) = echo_through(stream, 1024 * 1024, 0x0b71_0003);
            if sent == got {
                Ok(format!("1 MiB echoed, SHA-256 {}..", &sent[..12]))
            } else {
                Err(format!("sent SHA-256 {sent}, got {got}"))
            }
        });
    cells.record(name, "logged-in -L works while full", result);

    // One slot frees when its socket closes and the server has seen it go.
    let gone = held.pop().expect("two sockets are held");
    let from = gone.local_addr().expect("address").to_string();
    drop(gone);
    let input = data(64 * 1024, 0x0b71_0004);
    let result = bastion
        .log_line(&[&format!("close from={from} ")])
        .and_then(|_| {
            let out = run_with_input(
                bastion.ssh(ssh).args(["-W", &permit, "127.0.0.1"]),
                Some(&input),
                CLIENT_TIMEOUT,
            );
            check_echoed(&out, &input)
        });
    cells.record(name, "a login gets in once a slot frees", result);
}

/// Waits until every connection the server logged has closed except one (the forward
/// that logged in): connects and closes pair up.
fn all_closed_but_one(bastion: &Bastion) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = fs::read_to_string(&bastion.log).unwrap_or_default();
        let count = |verb: &str| {
            text.lines()
                .filter(|l| l.contains(&format!("] {verb} from=")))
                .count()
        };
        let (connects, closes) = (count("connect"), count("close"));
        if connects == closes + 1 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{connects} connections and {closes} closes after 5 s; the log:\n{text}"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The server's version line, read byte by byte so nothing after it is taken.
fn version_line(stream: &mut TcpStream) -> Result<String, String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') && line.len() < 256 {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            Ok(_) => return Err(format!("closed after {} bytes", line.len())),
            Err(e) => return Err(format!("read the version line: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
    if text.starts_with("SSH-2.0-") {
        Ok(text)
    } else {
        Err(format!("not a version line: {text:?}"))
    }
}
