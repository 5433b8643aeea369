//! Real SSH clients through this project's forwarding server, `gateway serve`.
//!
//! What it proves, each cell with the client's own exit status and words and, where it
//! matters, the server's log line:
//!
//! - OpenSSH's `ssh` 9.2 and 10.0 carry bytes intact through the server, checking its host
//!   key against a real known_hosts file: a stdio forward (`-W`), 64 MiB through one
//!   `-L` connection and 1,000 `-L` connections open at once, each echoing its own
//!   64 KiB. Every transfer is compared by SHA-256 or byte for byte. The client renews
//!   its keys every 8 MiB (`RekeyLimit`), and the server's log must show the `-L`
//!   connection rekeying during the 64 MiB.
//! - Dropbear's `dbclient -B` and PuTTY's `plink -nc` carry 64 MiB each through a stdio
//!   forward, and paramiko's and asyncssh's `direct-tcpip` channels as much, each client
//!   checking the host key its own way. dbclient and plink have no option to rekey early,
//!   so here the server renews the keys every 8 MiB (`--rekey-limit`) for all four, and
//!   each connection must show a rekey: the other direction of the same check.
//! - A destination outside `--permit-open` is refused as administratively prohibited and
//!   never connected to, and the log names it; a permitted one works on the same server.
//! - Without `--allow-exec` no session opens; with it a command's stdout, stderr, exit
//!   status and stdin all cross, and a shell is still refused.
//! - A permitted destination that refuses the connection is CONNECT_FAILED, and one that
//!   never answers (a black hole inside a network namespace of its own) is CONNECT_FAILED
//!   after `--connect-timeout`.
//! - When the server is killed mid-transfer, every local socket of this project's client
//!   closes within a second, and the client exits with 255 and one line saying why.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use interop::forwarding::{
    BLACK_HOLE, Bastion, PATTERN_CHUNK, PERIOD, Reaper, XorShift, black_hole_namespace, brief,
    check_echoed, echo_service, echo_through, local_forward, log_line, openssh_client, pattern,
    source_service, wait_for_port,
};
use interop::peers::{
    Cells, OpenSsh, Peer, RunOutput, TempDir, current_user, free_port, gateway_binary, keygen,
    peer_script, require, run, run_with_input, unavailable,
};
use ssh_proto::crypto::default_provider;
use ssh_proto::userkey::parse_public_key_line;

/// Long enough for any client here to finish; one still running is killed and fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// What goes through OpenSSH's `-W` and the other small stdio transfers.
const STREAM_BYTES: usize = 1024 * 1024;
/// What goes through the one big `-L` connection, each stdio forward of dbclient and
/// plink, and each Python client's channel.
const BULK_BYTES: usize = 64 * 1024 * 1024;
/// How often keys are renewed, by the client (`RekeyLimit`) or the server
/// (`--rekey-limit`): far below [`BULK_BYTES`], so every big transfer crosses several.
const REKEY_LIMIT: &str = "8M";
/// Connections open at once through one `-L`, and what each echoes.
const CONCURRENT: usize = 1000;
const CONCURRENT_BYTES: usize = 64 * 1024;

/// The server's host key, `SHA256:...`.
fn host_key_fingerprint(host_key: &Path) -> String {
    let public = fs::read_to_string(format!("{}.pub", host_key.display()))
        .expect("read the server's public host key");
    let (key, _) = parse_public_key_line(public.trim()).expect("parse the host key");
    key.fingerprint_sha256(default_provider())
}

/// Seeded bytes to push through a forward.
fn data(bytes: usize, seed: u64) -> Vec<u8> {
    let mut buf = vec![0u8; bytes];
    XorShift(seed | 1).fill(&mut buf);
    buf
}

/// The client failed with `code` (none: any failure) and said every one of `needles`.
fn check_failed(out: &RunOutput, code: Option<i32>, needles: &[&str]) -> Result<String, String> {
    if out.timed_out || out.status.success() || code.is_some_and(|c| out.status.code() != Some(c)) {
        return Err(format!("expected a failure with {code:?}: {}", brief(out)));
    }
    let stderr = out.stderr_text();
    if let Some(missing) = needles.iter().find(|n| !stderr.contains(**n)) {
        return Err(format!(
            "the client did not say {missing:?}: {}",
            brief(out)
        ));
    }
    let said = stderr
        .lines()
        .find(|l| l.contains(needles.first().copied().unwrap_or("")))
        .unwrap_or("")
        .trim();
    Ok(format!("exit {}: {said}", out.status.code().unwrap_or(-1)))
}

/// Runs `cell`, turning a panic (a helper's failed `expect`) into a failed cell so the
/// others still run.
fn guarded(cell: impl FnOnce() -> Result<String, String>) -> Result<String, String> {
    std::panic::catch_unwind(AssertUnwindSafe(cell)).unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        Err(format!("panicked: {why}"))
    })
}

/// OpenSSH 9.2 and 10.0: `-W`, one big `-L` transfer with the client rekeying on the way,
/// and a thousand `-L` connections.
#[test]
fn openssh_clients_forward_through_serve() {
    let echo = echo_service();
    let permit = format!("127.0.0.1:{echo}");
    // `-v` for the server's `rekey` lines.
    let Some(bastion) = Bastion::start("serve-openssh", &["-v", "--permit-open", &permit]) else {
        return;
    };
    let mut cells = Cells::new("OpenSSH clients through gateway serve");
    for version in OpenSsh::ALL {
        let Some(ssh) = version.ssh() else {
            continue;
        };
        let name = format!("ssh {}", version.version_prefix());

        let input = data(STREAM_BYTES, 0x5eed_0001);
        let out = run_with_input(
            bastion.ssh(&ssh).args(["-W", &permit]).arg("127.0.0.1"),
            Some(&input),
            CLIENT_TIMEOUT,
        );
        cells.record(&name, "-W stdio to echo", check_echoed(&out, &input));

        let local = free_port();
        let mark = bastion.log_mark();
        let mut command = bastion.ssh(&ssh);
        command
            .args(["-N", "-o", "ExitOnForwardFailure=yes"])
            .args(["-o", &format!("RekeyLimit={REKEY_LIMIT}")])
            .args(["-L", &format!("{local}:{permit}")])
            .arg("127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut forward = Reaper::spawn(&mut command, "ssh -L");
        let listening = guarded(|| {
            wait_for_port(local, Some(&mut forward), "ssh -L");
            Ok(String::new())
        });
        if let Err(why) = listening {
            let stderr = forward.stderr_after_exit();
            cells.record(&name, "-L", Err(format!("{why}\nssh said:\n{stderr}")));
            continue;
        }

        let result = guarded(|| {
            let start = Instant::now();
            let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, local))
                .map_err(|e| format!("connect to the forward: {e}"))?;
            let (sent, got) = echo_through(stream, BULK_BYTES, 0x5eed_0002);
            if sent != got {
                return Err(format!("sent SHA-256 {sent}, got {got}"));
            }
            Ok(format!(
                "64 MiB echoed, SHA-256 {}.. in {:.1?}",
                &sent[..12],
                start.elapsed()
            ))
        });
        let result = rekeyed(&bastion, mark, result);
        cells.record(&name, "-L 64 MiB to echo, client rekeys", result);

        let result = guarded(|| many_echoes(local, CONCURRENT, CONCURRENT_BYTES));
        cells.record(&name, "-L 1,000 at once, 64 KiB each", result);

        if !forward.alive() {
            let stderr = forward.stderr_after_exit();
            cells.record(&name, "-L", Err(format!("ssh -L exited early:\n{stderr}")));
        }
    }
    cells.finish();
}

/// The transfer's `result`, which stands only if the one connection that logged in since
/// `mark` renewed its keys at least once: the transfer was the only traffic on it, and the
/// limit far below its size, so the rekeys came mid-transfer and broke nothing.
fn rekeyed(
    bastion: &Bastion,
    mark: usize,
    result: Result<String, String>,
) -> Result<String, String> {
    let note = result?;
    let from = bastion.login_since(mark)?;
    match bastion.rekeys(&from, mark) {
        0 => {
            let field = format!("from={from}");
            let text = fs::read_to_string(&bastion.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| l.contains(&field)).collect();
            Err(format!(
                "the transfer ended without a rekey on its connection; its log lines:\n{}",
                lines.join("\n")
            ))
        }
        n => Ok(format!("{note}, {n} rekeys")),
    }
}

/// Opens `count` connections to `local` one after another (a backlog never overflows),
/// then has each send `each` seeded bytes at the same moment and read them back; every
/// connection's bytes must come back intact.
fn many_echoes(local: u16, count: usize, each: usize) -> Result<String, String> {
    let start = Instant::now();
    let mut streams = Vec::with_capacity(count);
    for i in 0..count {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, local))
            .map_err(|e| format!("connection {i}: {e}"))?;
        stream
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .map_err(|e| e.to_string())?;
        streams.push(stream);
    }
    let connected = start.elapsed();
    let barrier = Arc::new(Barrier::new(count));
    let workers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut stream)| {
            let barrier = Arc::clone(&barrier);
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || -> Result<(), String> {
                    let sent = data(each, 0x1000 + i as u64);
                    barrier.wait();
                    // 64 KiB fits in the socket buffers, so writing it all before reading
                    // cannot stall the echo.
                    stream
                        .write_all(&sent)
                        .and_then(|()| stream.shutdown(Shutdown::Write))
                        .map_err(|e| format!("connection {i}: write: {e}"))?;
                    let mut back = Vec::with_capacity(each);
                    stream
                        .read_to_end(&mut back)
                        .map_err(|e| format!("connection {i}: read after {} bytes: {e}", back.len()))?;
                    if back != sent {
                        let first = back.iter().zip(&sent).position(|(a, b)| a != b);
                        return Err(format!(
                            "connection {i}: {} of {each} bytes came back, first difference at {first:?}",
                            back.len()
                        ));
                    }
                    Ok(())
                })
                .expect("start a connection thread")
        })
        .collect();
    let failures: Vec<String> = workers
        .into_iter()
        .filter_map(|w| match w.join() {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(_) => Some("a connection thread panicked".to_owned()),
        })
        .collect();
    if failures.is_empty() {
        Ok(format!(
            "{count} connections made in {connected:.1?}, {} MiB echoed intact in {:.1?}",
            count * each / (1024 * 1024),
            start.elapsed() - connected
        ))
    } else {
        Err(format!(
            "{} of {count} connections failed; the first few:\n{}",
            failures.len(),
            failures[..failures.len().min(5)].join("\n")
        ))
    }
}

/// dbclient, plink, paramiko and asyncssh through one server that renews every
/// connection's keys every 8 MiB.
#[test]
fn other_clients_forward_through_serve() {
    let echo = echo_service();
    let permit = format!("127.0.0.1:{echo}");
    let extra = ["-v", "--rekey-limit", REKEY_LIMIT, "--permit-open", &permit];
    let Some(bastion) = Bastion::start("serve-others", &extra) else {
        return;
    };
    let mut cells = Cells::new("other clients through gateway serve");
    dbclient_cell(&mut cells, &bastion, &permit);
    plink_cell(&mut cells, &bastion, &permit);
    python_cells(&mut cells, &bastion, &permit);
    cells.finish();
}

fn dbclient_cell(cells: &mut Cells, bastion: &Bastion, permit: &str) {
    let (Some(dbclient), Some(convert)) = (require(Peer::Dbclient), require(Peer::Dropbearconvert))
    else {
        return;
    };
    let converted = bastion.serve.key.in_dropbear_format(&convert);
    // dbclient checks host keys against ~/.ssh/known_hosts, where this version names a
    // host without its port; without a terminal it refuses a key it does not know.
    let home = bastion.dir.join("dbclient-home");
    fs::create_dir_all(home.join(".ssh")).expect("create dbclient's ~/.ssh");
    let line = bastion.serve.known_hosts_line();
    let port_suffix = format!("]:{}", bastion.serve.port);
    fs::write(
        home.join(".ssh/known_hosts"),
        line.replacen("[127.0.0.1", "127.0.0.1", 1)
            .replacen(&port_suffix, "", 1),
    )
    .expect("write dbclient's known_hosts");

    let input = data(BULK_BYTES, 0x5eed_0003);
    let mark = bastion.log_mark();
    let out = run_with_input(
        Command::new(&dbclient)
            .env("HOME", &home)
            .args(["-p", &bastion.serve.port.to_string(), "-l", current_user()])
            .arg("-i")
            .arg(&converted)
            .args(["-B", permit, "127.0.0.1"]),
        Some(&input),
        CLIENT_TIMEOUT,
    );
    let result = rekeyed(bastion, mark, check_echoed(&out, &input));
    cells.record(
        "dbclient 2022.83",
        "-B 64 MiB to echo, server rekeys",
        result,
    );
}

fn plink_cell(cells: &mut Cells, bastion: &Bastion, permit: &str) {
    let (Some(plink), Some(puttygen)) = (require(Peer::Plink), require(Peer::Puttygen)) else {
        return;
    };
    let ppk = bastion.serve.key.in_putty_format(&puttygen);
    let input = data(BULK_BYTES, 0x5eed_0004);
    let mark = bastion.log_mark();
    let out = run_with_input(
        Command::new(&plink)
            .env("HOME", bastion.dir.path())
            .args(["-ssh", "-batch", "-noagent"])
            .args(["-P", &bastion.serve.port.to_string(), "-l", current_user()])
            .args([
                "-hostkey",
                &host_key_fingerprint(&bastion.serve.host_key),
                "-i",
            ])
            .arg(&ppk)
            .args(["-nc", permit, "127.0.0.1"]),
        Some(&input),
        CLIENT_TIMEOUT,
    );
    let result = rekeyed(bastion, mark, check_echoed(&out, &input));
    cells.record("plink 0.78", "-nc 64 MiB to echo, server rekeys", result);
}

/// paramiko and asyncssh, from `tests/peers/forward_peer.py`.
fn python_cells(cells: &mut Cells, bastion: &Bastion, permit: &str) {
    let Some(python) = require(Peer::PeerPython) else {
        return;
    };
    let host_key_pub = format!("{}.pub", bastion.serve.host_key.display());
    for (name, mode) in [("paramiko 5.1", "paramiko"), ("asyncssh 2.24", "asyncssh")] {
        let mark = bastion.log_mark();
        let out = run(
            Command::new(&python)
                .arg(peer_script("forward_peer.py"))
                .arg(mode)
                .args(["--port", &bastion.serve.port.to_string()])
                .args(["--user", current_user(), "--key"])
                .arg(&bastion.serve.key.private_key)
                .args(["--host-key", &host_key_pub, "--known-hosts"])
                .arg(&bastion.known_hosts)
                .args(["--to", permit, "--bytes", &BULK_BYTES.to_string()]),
            CLIENT_TIMEOUT,
        );
        let result = rekeyed(bastion, mark, check_python(&out));
        cells.record(name, "direct-tcpip to echo, server rekeys", result);
    }
}

/// The script's verdict: "sent A received B (N bytes)", then OK, with exit status 0.
fn check_python(out: &RunOutput) -> Result<String, String> {
    let stdout = out.stdout_text();
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("sent "))
        .ok_or_else(|| format!("no summary line:\n{out}"))?;
    let words: Vec<&str> = summary.split_whitespace().collect();
    let expected_count = format!("({BULK_BYTES}");
    let agrees = matches!(
        words.as_slice(),
        ["sent", sent, "received", got, count, "bytes)"]
            if sent == got && sent.len() == 64 && *count == expected_count
    );
    if !out.success() || !agrees || !stdout.lines().any(|l| l == "OK") {
        return Err(format!("the transfer did not check out:\n{out}"));
    }
    Ok(format!(
        "{} KiB echoed, SHA-256 {}.. in {:.2?}",
        BULK_BYTES / 1024,
        &words[1][..12],
        out.elapsed
    ))
}

/// `--permit-open`, `--allow-exec` and failing destinations.
#[test]
fn serve_refuses_what_it_must() {
    let Some(ssh) = OpenSsh::V10_0.ssh() else {
        return;
    };
    let mut cells = Cells::new("gateway serve's refusals");
    permit_open_cells(&mut cells, &ssh);
    exec_cells(&mut cells, &ssh);
    black_hole_cell(&mut cells, &ssh);
    cells.finish();
}

/// One server permitting an echo service and a closed port: another live service is
/// refused (and never connected to), the closed port fails to connect, and without
/// `--allow-exec` no session opens.
fn permit_open_cells(cells: &mut Cells, ssh: &Path) {
    let echo = echo_service();
    let permit = format!("127.0.0.1:{echo}");
    // A live service the server must not reach: it would accept if asked.
    let outside = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    outside.set_nonblocking(true).expect("nonblocking");
    let outside_to = format!(
        "127.0.0.1:{}",
        outside.local_addr().expect("address").port()
    );
    let closed = format!("127.0.0.1:{}", free_port());
    let extra = ["-v", "--permit-open", &permit, "--permit-open", &closed];
    let Some(bastion) = Bastion::start("serve-permit", &extra) else {
        return;
    };
    let name = "ssh OpenSSH_10.0";

    let input = data(64 * 1024, 0x5eed_0005);
    let out = run_with_input(
        bastion.ssh(ssh).args(["-W", &permit, "127.0.0.1"]),
        Some(&input),
        CLIENT_TIMEOUT,
    );
    let result = check_echoed(&out, &input).and_then(|note| {
        let to = format!("to={permit} ");
        bastion.log_line(&["type=direct-tcpip", &to, "result=accepted"])?;
        Ok(note)
    });
    cells.record(name, "permitted -W works", result);

    let out = run(
        bastion.ssh(ssh).args(["-W", &outside_to, "127.0.0.1"]),
        CLIENT_TIMEOUT,
    );
    let result = check_failed(
        &out,
        Some(255),
        &[
            "channel 0: open failed: administratively prohibited",
            "stdio forwarding failed",
        ],
    )
    .and_then(|note| {
        let to = format!("to={outside_to} ");
        let line = bastion.log_line(&["type=direct-tcpip", &to, "result=refused"])?;
        match outside.accept() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                Ok(format!("{note}; log: {}", after_user(&line)))
            }
            other => Err(format!(
                "the server connected to the refused destination: {other:?}"
            )),
        }
    });
    cells.record(name, "-W outside --permit-open refused", result);

    let out = run(
        bastion.ssh(ssh).args(["-W", &closed, "127.0.0.1"]),
        CLIENT_TIMEOUT,
    );
    let result = check_failed(
        &out,
        Some(255),
        &["channel 0: open failed: connect failed: Connection refused"],
    )
    .and_then(|note| {
        let to = format!("to={closed} ");
        bastion.log_line(&["type=direct-tcpip", &to, "result=failed"])?;
        Ok(note)
    });
    cells.record(name, "-W to a closed port: CONNECT_FAILED", result);

    for (cell, command) in [
        ("exec refused without --allow-exec", Some("echo out")),
        ("shell refused without --allow-exec", None),
    ] {
        let out = run(
            bastion.ssh(ssh).args(["-T", "127.0.0.1"]).args(command),
            CLIENT_TIMEOUT,
        );
        let result = check_failed(
            &out,
            Some(255),
            &["channel 0: open failed: administratively prohibited"],
        )
        .and_then(|note| {
            if out.stdout.is_empty() {
                bastion.log_line(&["type=session", "result=refused"])?;
                Ok(note)
            } else {
                Err(format!("a refused session printed: {}", out.stdout_text()))
            }
        });
        cells.record(name, cell, result);
    }
}

/// The part of a server log line after its `user=` field, for the table.
fn after_user(line: &str) -> &str {
    line.find(" type=").map_or(line, |i| &line[i + 1..])
}

/// A server with `--allow-exec`: output, errors, status and input of a command.
fn exec_cells(cells: &mut Cells, ssh: &Path) {
    let Some(bastion) = Bastion::start("serve-exec", &["--allow-exec"]) else {
        return;
    };
    let name = "ssh OpenSSH_10.0";

    let out = run(
        bastion
            .ssh(ssh)
            .args(["127.0.0.1", "echo out; echo err >&2; exit 3"]),
        CLIENT_TIMEOUT,
    );
    let result = if out.timed_out
        || out.status.code() != Some(3)
        || out.stdout_text() != "out\n"
        || out.stderr_text() != "err\n"
    {
        Err(format!(
            "expected stdout \"out\", stderr \"err\", exit 3:\n{out}"
        ))
    } else {
        Ok("stdout out, stderr err, exit 3".to_owned())
    };
    cells.record(name, "exec with --allow-exec", result);

    let input = data(STREAM_BYTES, 0x5eed_0006);
    let out = run_with_input(
        bastion.ssh(ssh).args(["127.0.0.1", "cat"]),
        Some(&input),
        CLIENT_TIMEOUT,
    );
    cells.record(name, "exec cat: stdin crosses", check_echoed(&out, &input));

    let out = run(bastion.ssh(ssh).args(["-T", "127.0.0.1"]), CLIENT_TIMEOUT);
    let result = check_failed(&out, None, &["shell request failed on channel 0"]);
    cells.record(name, "shell refused with --allow-exec", result);
}

/// `--connect-timeout 1` against an address that never answers a SYN. The server runs
/// in a network namespace of its own whose only route to the address is a veth pair
/// with a made-up neighbour: the SYN goes out and is dropped at the far end, with no
/// reply and no ICMP, so only the timeout can end the connect.
fn black_hole_cell(cells: &mut Cells, ssh: &Path) {
    if current_user() != "root" {
        unavailable::<()>("root, for a network namespace holding a black hole");
        return;
    }
    let dir = TempDir::new("serve-black-hole");
    let Some(key) = keygen(dir.path(), "id_ed25519", "ed25519") else {
        return;
    };
    fs::write(dir.join("authorized_keys"), format!("{}\n", key.public_key))
        .expect("write authorized_keys");
    let log = dir.join("serve.log");
    let host_key = dir.join("host_key");
    // Any port is free in a new namespace.
    let port = 2222;
    let mut command = black_hole_namespace(gateway_binary());
    command
        .args(["serve", "-v", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--host-key")
        .arg(&host_key)
        .arg("--authorized-keys")
        .arg(dir.join("authorized_keys"))
        .args(["--permit-open", &format!("{BLACK_HOLE}:9")])
        .args(["--connect-timeout", "1"])
        .stdin(Stdio::null())
        .stderr(File::create(&log).expect("create the server's log"));
    let mut server = Reaper::spawn(&mut command, "gateway serve in a namespace");
    if let Err(why) = log_line(&log, &["listen on="]) {
        let status = server.wait_exit(Duration::ZERO);
        cells.record(
            "ssh OpenSSH_10.0",
            "-W to a black hole: connect timeout",
            Err(format!(
                "the namespaced server did not start ({status:?}): {why}"
            )),
        );
        return;
    }
    let known_hosts = dir.join("known_hosts");
    let public = fs::read_to_string(format!("{}.pub", host_key.display())).expect("host key");
    let mut words = public.split_whitespace();
    let (kind, blob) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    fs::write(&known_hosts, format!("[127.0.0.1]:{port} {kind} {blob}\n"))
        .expect("write known_hosts");

    let mut client = Command::new("nsenter");
    client
        .args(["--net", "--target", &server.id().to_string(), "--"])
        .arg(ssh);
    let ssh_args = openssh_client(ssh, port, &key.private_key, &known_hosts);
    client
        .args(ssh_args.get_args())
        .args(["-W", &format!("{BLACK_HOLE}:9"), "127.0.0.1"])
        .env_remove("SSH_AUTH_SOCK");
    let out = run(&mut client, CLIENT_TIMEOUT);
    let result = check_failed(
        &out,
        Some(255),
        &["channel 0: open failed: connect failed: connect timed out"],
    )
    .and_then(|note| {
        let line = log_line(&log, &["type=direct-tcpip", "result=failed"])?;
        if !line.contains("connect timed out") {
            return Err(format!("the connect failed for another reason: {line}"));
        }
        // The timeout cannot fire early, and must fire on time.
        let (at_least, at_most) = (Duration::from_secs(1), Duration::from_secs(3));
        if out.elapsed < at_least || out.elapsed > at_most {
            return Err(format!(
                "ssh ended after {:?}, not between {at_least:?} and {at_most:?}",
                out.elapsed
            ));
        }
        Ok(format!("{note} after {:.2?}", out.elapsed))
    });
    cells.record(
        "ssh OpenSSH_10.0",
        "-W to a black hole: connect timeout",
        result,
    );
}

/// This project's client with local connections mid-transfer when the server is killed.
#[test]
fn client_sockets_close_when_serve_is_killed() {
    const CONNECTIONS: usize = 8;
    let source = source_service();
    let permit = format!("127.0.0.1:{source}");
    let Some(mut bastion) = Bastion::start("serve-kill", &["--permit-open", &permit]) else {
        return;
    };
    let (mut client, local) = local_forward(
        &bastion.serve.key.private_key,
        bastion.serve.port,
        source,
        &[],
    );
    let mut cells = Cells::new("gateway serve killed mid-transfer");

    // Each reader checks the pattern as it goes, counts what it got, and records when its
    // socket closed.
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new((0..CONNECTIONS).map(|_| AtomicUsize::new(0)).collect());
    let readers: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let mut stream =
                TcpStream::connect((Ipv4Addr::LOCALHOST, local)).expect("connect to the forward");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("read timeout");
            let counts = Arc::clone(&counts);
            thread::spawn(move || -> (Result<String, String>, Instant) {
                let table = pattern();
                let mut buf = vec![0u8; PATTERN_CHUNK];
                let mut at = 0;
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) => return (Ok("end of stream".to_owned()), Instant::now()),
                        Ok(n) => {
                            if buf[..n] != table[at..at + n] {
                                let got = counts[i].load(Ordering::Relaxed);
                                return (Err(format!("wrong bytes after {got}")), Instant::now());
                            }
                            at = (at + n) % PERIOD;
                            counts[i].fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            return (Err("still open after 10 s".to_owned()), Instant::now());
                        }
                        Err(e) => return (Ok(format!("{e}")), Instant::now()),
                    }
                }
            })
        })
        .collect();

    // Mid-transfer: every connection has data flowing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while counts
        .iter()
        .any(|c| c.load(Ordering::Relaxed) < 1024 * 1024)
    {
        assert!(
            Instant::now() < deadline,
            "the connections did not all get 1 MiB within 30 s"
        );
        thread::sleep(Duration::from_millis(10));
    }
    let moved: usize = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    bastion.serve.process.0.kill().expect("kill -9 the server");
    let killed = Instant::now();

    let mut latest = Duration::ZERO;
    let mut closed = Ok(());
    for (i, reader) in readers.into_iter().enumerate() {
        let (result, at) = reader.join().expect("reader thread");
        let after = at.saturating_duration_since(killed);
        latest = latest.max(after);
        let verdict = match result {
            Ok(_) if after <= Duration::from_secs(1) => Ok(()),
            Ok(how) => Err(format!(
                "connection {i} closed ({how}) only after {after:?}"
            )),
            Err(why) => Err(format!("connection {i}: {why}")),
        };
        if closed.is_ok() {
            closed = verdict;
        }
    }
    cells.record(
        "gateway -N -L",
        &format!("{CONNECTIONS} local sockets close within 1 s"),
        closed.map(|()| {
            format!(
                "{} MiB moved before the kill; last closed {latest:.0?} after it",
                moved / (1024 * 1024)
            )
        }),
    );

    let status = client.wait_exit(Duration::from_secs(2));
    let stderr = client.stderr_after_exit();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let says_why = |l: &str| {
        l.contains("127.0.0.1") && (l.contains("closed by remote host") || l.contains("reset"))
    };
    let result = match (status.and_then(|s| s.code()), lines.as_slice()) {
        (Some(255), [line]) if says_why(line) => Ok(format!("exit 255: {line}")),
        _ => Err(format!(
            "expected exit 255 within 2 s and one line saying the connection was lost; \
             status {status:?}, stderr:\n{stderr}"
        )),
    };
    cells.record("gateway -N -L", "exits 255 with one line", result);
    cells.finish();
}
