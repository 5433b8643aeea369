//! Destination names through this project's forwarding server, `gateway serve`, with
//! OpenSSH 10.0's `ssh -W` as the client, checking the server's host key against a real
//! known_hosts file.
//!
//! What it proves, each cell with the client's exit status and the server's log line:
//!
//! - `-W localhost:PORT` reaches an echo service that listens on `127.0.0.1` only, with
//!   the name looked up off the server's loop. Where `localhost` gives `::1` first, this
//!   is the case that needs every address tried in turn; the cell notes the order this
//!   machine gives, and the gateway's unit tests pin the order logic with made-up
//!   addresses whose first one refuses.
//! - `-W [::1]:PORT`, an address and no name, reaches an echo service on `::1`.
//! - A name whose every address refuses is CONNECT_FAILED with the connect's own error,
//!   and the server carries on: a later channel through it still works.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv6Addr, Shutdown, SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use interop::forwarding::{Serve, XorShift, echo_service, sha256_hex};
use interop::peers::{Cells, OpenSsh, RunOutput, TempDir, free_port, run, run_with_input};

/// Long enough for the client to finish; one still running is killed and fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to log what a client that has ended did.
const LOG_TIMEOUT: Duration = Duration::from_secs(5);
/// What goes through each stdio forward.
const STREAM_BYTES: usize = 256 * 1024;

/// An echo service on `[::1]`, a thread per connection; its port.
fn echo_service_v6() -> u16 {
    let listener = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).expect("listen on [::1]");
    let port = listener.local_addr().expect("echo address").port();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = stream.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

/// `gateway serve -v` with its log in a file, and a known_hosts file naming its host key.
struct Bastion {
    // Dropped before the folder it lives in.
    serve: Serve,
    known_hosts: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl Bastion {
    fn start(extra: &[&str]) -> Option<Bastion> {
        let dir = TempDir::new("serve-names");
        let log = dir.join("serve.log");
        let file = File::create(&log).expect("create the server's log");
        let serve = Serve::start_with(dir.path(), extra, Stdio::from(file))?;
        let known_hosts = dir.join("known_hosts");
        fs::write(&known_hosts, serve.known_hosts_line()).expect("write known_hosts");
        Some(Bastion {
            serve,
            known_hosts,
            log,
            _dir: dir,
        })
    }

    /// `ssh -W TARGET` through the server, checking its host key strictly, logging in
    /// with the server's one authorised key, reading no config and never prompting.
    fn stdio_forward(&self, ssh: &Path, target: &str) -> Command {
        let mut command = Command::new(ssh);
        command
            .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
            .args(["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
            .arg("-i")
            .arg(&self.serve.key.private_key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"])
            .args(["-p", &self.serve.port.to_string()])
            .args(["-W", target, "127.0.0.1"])
            .env_remove("SSH_AUTH_SOCK");
        command
    }

    /// The first line of the server's log holding every needle, waiting a little for it.
    fn log_line(&self, needles: &[&str]) -> Result<String, String> {
        let deadline = Instant::now() + LOG_TIMEOUT;
        loop {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(line) = text
                .lines()
                .find(|line| needles.iter().all(|n| line.contains(n)))
            {
                return Ok(line.to_owned());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no line of the server's log holds {needles:?}; the log:\n{text}"
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A client's run for a failure message, without its stdout, which may be binary.
fn brief(out: &RunOutput) -> String {
    let ending = if out.timed_out {
        "was killed after its timeout".to_owned()
    } else {
        format!("exited with {}", out.status)
    };
    format!(
        "`{}` {ending} after {:?}, {} bytes on stdout; stderr:\n{}",
        out.command,
        out.elapsed,
        out.stdout.len(),
        out.stderr_text()
    )
}

/// Runs `ssh -W target` with seeded input; the client must exit 0 having echoed it all,
/// and the server must have logged the channel to `logged` (the host and port as ssh
/// sent them) as accepted.
fn echoed(
    bastion: &Bastion,
    ssh: &Path,
    target: &str,
    logged: &str,
    seed: u64,
) -> Result<String, String> {
    let mut input = vec![0u8; STREAM_BYTES];
    XorShift(seed | 1).fill(&mut input);
    let out = run_with_input(
        &mut bastion.stdio_forward(ssh, target),
        Some(&input),
        CLIENT_TIMEOUT,
    );
    if !out.success() {
        return Err(format!("the client failed: {}", brief(&out)));
    }
    let (sent, got) = (sha256_hex(&input), sha256_hex(&out.stdout));
    if sent != got {
        return Err(format!(
            "sent {} bytes with SHA-256 {sent}, got {} bytes with {got}: {}",
            input.len(),
            out.stdout.len(),
            brief(&out)
        ));
    }
    let to = format!("to={logged} ");
    bastion.log_line(&["type=direct-tcpip", &to, "result=accepted"])?;
    Ok(format!(
        "{} KiB echoed, SHA-256 {}.. in {:.2?}",
        input.len() / 1024,
        &sent[..12],
        out.elapsed
    ))
}

#[test]
fn names_are_looked_up_and_every_address_tried() {
    let Some(ssh) = OpenSsh::V10_0.ssh() else {
        return;
    };
    let echo = echo_service();
    let echo6 = echo_service_v6();
    // Nothing listens here: the listener that held it is gone.
    let closed = free_port();
    let by_name = format!("localhost:{echo}");
    let by_address = format!("[::1]:{echo6}");
    let refusing = format!("localhost:{closed}");
    let extra = [
        "-v",
        "--permit-open",
        &by_name,
        "--permit-open",
        &by_address,
        "--permit-open",
        &refusing,
    ];
    let Some(bastion) = Bastion::start(&extra) else {
        return;
    };
    let name = "ssh OpenSSH_10.0";
    let mut cells = Cells::new("destination names through gateway serve");

    let order: Vec<SocketAddr> = ("localhost", echo)
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default();
    let result = echoed(&bastion, &ssh, &by_name, &by_name, 0x5eed_0101)
        .map(|note| format!("{note}; localhost here is {order:?}"));
    cells.record(name, "-W localhost to an echo on 127.0.0.1 only", result);

    // ssh sends the address without its brackets.
    let sent = format!("::1:{echo6}");
    let result = echoed(&bastion, &ssh, &by_address, &sent, 0x5eed_0102);
    cells.record(name, "-W [::1] to an echo on ::1", result);

    let out = run(&mut bastion.stdio_forward(&ssh, &refusing), CLIENT_TIMEOUT);
    let stderr = out.stderr_text();
    let result = if out.timed_out || out.status.code() != Some(255) {
        Err(format!("expected exit 255: {}", brief(&out)))
    } else if !stderr.contains("channel 0: open failed: connect failed: Connection refused") {
        Err(format!("the client did not say why: {}", brief(&out)))
    } else {
        let to = format!("to={refusing} ");
        bastion
            .log_line(&["type=direct-tcpip", &to, "result=failed", "refused"])
            .and_then(|line| {
                // The server is still serving: a name works after the failure.
                echoed(&bastion, &ssh, &by_name, &by_name, 0x5eed_0103)?;
                let reason = line.find("reason=").map_or("", |i| &line[i..]);
                Ok(format!("exit 255, logged {reason}; a later channel works"))
            })
    };
    cells.record(
        name,
        "-W localhost to a closed port: CONNECT_FAILED",
        result,
    );
    cells.finish();
}
