//! The `gateway` client with a real SSH server as the bastion: OpenSSH 9.2, OpenSSH 10.0
//! and Dropbear 2022.83, each on loopback, each checked against a real `known_hosts` file
//! with `StrictHostKeyChecking=yes`. For each server the binary must:
//!
//! - run a remote command and print its output (`hostname`, which on loopback must equal
//!   the local host name), exiting 0;
//! - exit with the remote command's status (`exit 7` gives 7) and with 128 plus the signal
//!   number when the server reports `exit-signal` (RFC 4254 section 6.10: `kill -9 $$`
//!   gives 137);
//! - pass its stdin to the remote command and the command's stderr to its own stderr,
//!   kept apart from stdout, with EOF on stdin reaching the command, and write all of
//!   that stderr out before exiting even when its reader starts only after the channel
//!   closed;
//! - carry 64 MiB through `-L` to an echo service, the SHA-256 of what came back equal to
//!   what was sent, while the connection rekeys several times in the middle of the
//!   transfer: sshd is told `RekeyLimit 8M`, so it starts the rekeys, and against Dropbear
//!   our client is, so it starts them; the client's `-v` log must show the new keys taking
//!   effect during the transfer and none before it;
//! - hold 1,000 `-L` connections open at once, all carried through to the echo service
//!   before any data moves, each echoing 64 KiB, every byte compared, all of them still
//!   open when the last one has been checked, then all closing cleanly;
//! - carry a stdio stream with `-W`: 1 MiB in on stdin, the same bytes out on stdout;
//! - forward Unix sockets with `-L` on either side (`-L PATH:HOST:PORT` listens on a local
//!   socket; `-L PORT:PATH` opens `direct-streamlocal@openssh.com` to a socket on the
//!   server), 1 MiB each way through each, compared by SHA-256. Dropbear has no
//!   streamlocal channels, so against it the second must be refused and the client
//!   must live on.
//!
//! Dropbear 2022.83 allows at most 1,000 channels per connection (`MAX_CHANNELS` in its
//! `sysoptions.h`), exactly the number the concurrency cell opens, so no cell waits for a
//! forward's listener by connecting to it (a stray channel would take one of the 1,000):
//! the wait reads `/proc/net/tcp` instead.
//!
//! The three servers run their cells in parallel threads; every result goes in one table
//! (`--nocapture` shows it), so one failure does not hide the others.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use gateway::event_loop::listen::raise_open_file_limit;
use interop::forwarding::{Reaper, XorShift, echo_service, echo_through, sha256_hex};
use interop::peers::{
    Cells, Dropbear, KeyPair, OpenSsh, RunOutput, Sshd, SystemUser, TempDir, current_user,
    free_port, gateway_binary, keygen, run, run_with_input,
};

/// How long one run of the client may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a forward's listener may take to appear.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The bulk transfer through `-L`.
const TRANSFER: usize = 64 << 20;
/// The rekey limit, on whichever side starts the rekeys: 64 MiB each way over 8 MiB is
/// about eight rekeys, enough to prove several happen mid-transfer, few enough to keep
/// the debug build quick.
const REKEY_LIMIT: &str = "8M";
/// The fewest rekeys the transfer must show. Half the expected eight leaves room for
/// how each side counts bytes, and still cannot be met without rekeying mid-transfer.
const MIN_REKEYS: usize = 4;
/// The client logs this at debug level each time new keys from a rekey take effect.
const REKEY_LINE: &str = "rekeyed with ";
/// The concurrency cell: this many `-L` connections open at once...
const CONCURRENT: usize = 1_000;
/// ...each echoing this much...
const PER_CONNECTION: usize = 64 << 10;
/// ...from this many writer threads, each with a reader beside it.
const GROUPS: usize = 8;
/// How many connections may be on their way to the echo service at once.
const IN_FLIGHT: usize = 32;
/// The stdio stream through `-W`.
const STDIO_BYTES: usize = 1 << 20;
/// The stdin that goes through `cat >&2`.
const STDERR_BYTES: usize = 200 << 10;

/// The server process behind a [`Bastion`].
enum Server {
    Sshd(Sshd),
    Dropbear(Dropbear),
}

impl Server {
    /// The last lines of its log, for a failed cell's message.
    fn log_tail(&self) -> String {
        let log = match self {
            Server::Sshd(sshd) => sshd.log(),
            Server::Dropbear(dropbear) => dropbear.log(),
        };
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// A running server to use as the bastion, with what our client needs to log in to it.
struct Bastion {
    name: &'static str,
    port: u16,
    user: String,
    known_hosts: PathBuf,
    key: KeyPair,
    /// True when our client must start the rekeys (the server will not by itself).
    client_rekeys: bool,
    /// The server opens `direct-streamlocal@openssh.com` channels.
    streamlocal: bool,
    /// The server, dropped before the account it runs sessions as, if any.
    server: Server,
    _user: Option<SystemUser>,
    /// The client key and the client's `HOME`, removed last.
    dir: TempDir,
}

impl Bastion {
    fn openssh(version: OpenSsh) -> Option<Bastion> {
        let extra = [
            "AllowTcpForwarding yes".to_owned(),
            format!("RekeyLimit {REKEY_LIMIT}"),
            // Above the harness's DEBUG3, which sshd's session process also writes on
            // the session's stderr (it runs with -e) before it starts the command.
            "LogLevel INFO".to_owned(),
        ];
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let sshd = Sshd::start(version, &extra)?;
        let dir = TempDir::new("bastion-client");
        let key = keygen(dir.path(), "id_ed25519", "ed25519")?;
        sshd.authorize(&key.public_key);
        Some(Bastion {
            name: match version {
                OpenSsh::V9_2 => "OpenSSH 9.2",
                OpenSsh::V10_0 => "OpenSSH 10.0",
            },
            port: sshd.port(),
            user: current_user().to_owned(),
            known_hosts: sshd.known_hosts_path(),
            key,
            client_rekeys: false,
            streamlocal: true,
            server: Server::Sshd(sshd),
            _user: None,
            dir,
        })
    }

    /// Dropbear reads keys only from `~USER/.ssh/authorized_keys`, so it logs in a
    /// throwaway account.
    fn dropbear() -> Option<Bastion> {
        let user = SystemUser::create("bastion-unused-password")?;
        let dir = TempDir::new("bastion-client");
        let key = keygen(dir.path(), "id_ed25519", "ed25519")?;
        user.authorize(&key.public_key);
        let dropbear = Dropbear::start(&[])?;
        Some(Bastion {
            name: "Dropbear 2022.83",
            port: dropbear.port(),
            user: user.name().to_owned(),
            known_hosts: dropbear.known_hosts_path(),
            key,
            client_rekeys: true,
            streamlocal: false,
            server: Server::Dropbear(dropbear),
            _user: Some(user),
            dir,
        })
    }

    /// Our client, set to log in to this server and check its host key, never prompting
    /// and reading no config, keys or known hosts of the user running the tests. `extra`
    /// options go before the destination, which the caller adds with a command.
    fn client(&self, extra: &[&str]) -> Command {
        let mut command = Command::new(gateway_binary());
        command
            .args(["-F", "none", "-o", "BatchMode=yes"])
            .args(["-o", "StrictHostKeyChecking=yes", "-o"])
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .args(["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-i"])
            .arg(&self.key.private_key)
            .args(["-p", &self.port.to_string(), "-l", &self.user])
            .args(extra)
            .env("HOME", self.dir.path())
            .env_remove("SSH_AUTH_SOCK");
        command
    }

    /// Starts `gateway -N -L SPEC 127.0.0.1`, its stderr piped, without waiting for it.
    fn forwards_only(&self, spec: &str) -> Reaper {
        let mut command = self.client(&["-N", "-L", spec]);
        command
            .arg("127.0.0.1")
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        Reaper::spawn(&mut command, "the gateway client")
    }

    /// Runs `gateway 127.0.0.1 COMMAND` with stdin closed.
    fn run_command(&self, remote: &str) -> RunOutput {
        let mut command = self.client(&[]);
        command.arg("127.0.0.1").arg(remote);
        run(&mut command, RUN_TIMEOUT)
    }

    /// Starts `gateway -N -L LOCAL:127.0.0.1:TARGET` with `extra` options and waits for
    /// its listener without connecting to it. Its stderr is collected as it comes.
    fn forward(&self, target: u16, extra: &[&str]) -> Result<Forward, String> {
        let local = free_port();
        let spec = format!("{local}:127.0.0.1:{target}");
        let mut args = vec!["-N", "-L", &spec];
        args.extend_from_slice(extra);
        let mut command = self.client(&args);
        command
            .arg("127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut process = Reaper::spawn(&mut command, "the gateway client");
        let log = Arc::new(Mutex::new(String::new()));
        let pipe = process.0.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut forward = Forward {
            process,
            local,
            log,
        };
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        while !listening(forward.process.id(), local) {
            if !forward.process.alive() || Instant::now() >= deadline {
                return Err(format!(
                    "the client is not listening on port {local}:\n{}",
                    forward.log()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(forward)
    }
}

/// A `-L` client process, killed when dropped.
struct Forward {
    process: Reaper,
    local: u16,
    log: Arc<Mutex<String>>,
}

impl Forward {
    fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, self.local)))
    }
}

/// True when process `pid` listens on loopback `port`, from `/proc`, without connecting:
/// in `/proc/net/tcp` state 0A is LISTEN and 0100007F is 127.0.0.1 in the kernel's byte
/// order, and the socket's inode must be one of the process's descriptors (another
/// process may have taken the port first).
fn listening(pid: u32, port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!("0100007F:{port:04X}");
    let Some(inode) = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
            .then(|| fields.get(9).map(|i| format!("socket:[{i}]")))
            .flatten()
    }) else {
        return false;
    };
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == inode.as_str())
    })
}

/// The local host name, as `hostname` prints it.
fn local_hostname() -> String {
    let out = run(&mut Command::new("hostname"), Duration::from_secs(10));
    assert!(out.success(), "{out}");
    out.stdout_text().trim().to_owned()
}

/// Seeded test data.
fn data(bytes: usize, seed: u64) -> Vec<u8> {
    let mut buf = vec![0u8; bytes];
    XorShift(seed | 1).fill(&mut buf);
    buf
}

/// Printable seeded text, for a command that passes stdin to stderr.
fn text(bytes: usize, seed: u64) -> Vec<u8> {
    data(bytes, seed)
        .into_iter()
        .enumerate()
        .map(|(i, b)| if i % 64 == 63 { b'\n' } else { b'a' + b % 26 })
        .collect()
}

/// Checks a run exited by itself with `code`.
fn exited(out: &RunOutput, code: i32) -> Result<(), String> {
    if out.timed_out || out.status.code() != Some(code) {
        return Err(format!("expected exit status {code}:\n{out}"));
    }
    Ok(())
}

/// On loopback the server's host name is this one's.
fn hostname_cell(bastion: &Bastion) -> Result<String, String> {
    let expected = local_hostname();
    let out = bastion.run_command("hostname");
    exited(&out, 0)?;
    let printed = out.stdout_text();
    if printed.trim() != expected {
        return Err(format!("expected host name {expected:?}:\n{out}"));
    }
    Ok(format!("{:?} in {:.1?}", printed.trim(), out.elapsed))
}

fn exit_status_cell(bastion: &Bastion) -> Result<String, String> {
    let out = bastion.run_command("exit 7");
    exited(&out, 7)?;
    Ok("exit 7 -> 7".to_owned())
}

fn exit_signal_cell(bastion: &Bastion) -> Result<String, String> {
    let out = bastion.run_command("kill -9 $$");
    exited(&out, 137)?;
    Ok("kill -9 $$ -> 137".to_owned())
}

/// `cat >&2` sees all of stdin and its EOF (or the `echo` after it never runs); its
/// output must arrive on stderr, byte for byte, and only the `echo` on stdout. Stderr is
/// read only once the command has finished, so most of it is still waiting in the client
/// (a pipe holds 64 KiB) when the server closes the channel: the client must write it
/// all before it exits.
fn stdin_stderr_cell(bastion: &Bastion) -> Result<String, String> {
    let input = text(STDERR_BYTES, 0x5eed);
    let mut command = bastion.client(&[]);
    command
        .arg("127.0.0.1")
        .arg("cat >&2; echo after-eof")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut client = Reaper::spawn(&mut command, "the gateway client");
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) = (
        client.0.stdin.take(),
        client.0.stdout.take(),
        client.0.stderr.take(),
    ) else {
        return Err("no pipes to the client".to_owned());
    };
    let sent = input.clone();
    // Dropping stdin at the end of the thread is the EOF `cat` waits for.
    thread::spawn(move || stdin.write_all(&sent));
    let (lines, first_line) = mpsc::channel();
    let stdout_reader = thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut all = String::new();
        let _ = reader.read_line(&mut all);
        let _ = lines.send(all.clone());
        let _ = reader.read_to_string(&mut all);
        all
    });
    let first = first_line.recv_timeout(RUN_TIMEOUT);
    // The command is done; give the channel time to close before taking stderr.
    thread::sleep(Duration::from_millis(500));
    let stderr_reader = thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stderr.read_to_end(&mut all);
        all
    });
    let status = client.wait_exit(RUN_TIMEOUT);
    if status.is_none() {
        let _ = client.0.kill();
    }
    let stdout = stdout_reader.join().unwrap_or_default();
    let got = stderr_reader.join().unwrap_or_default();
    let describe = || {
        format!(
            "status {status:?}, first stdout line {first:?}, stdout {stdout:?}, {} of {} \
             bytes on stderr, which begins {:?}",
            got.len(),
            input.len(),
            String::from_utf8_lossy(&got[..got.len().min(300)])
        )
    };
    if status.and_then(|s| s.code()) != Some(0) || stdout != "after-eof\n" || got != input {
        return Err(describe());
    }
    Ok(format!(
        "{} KiB stdin -> stderr, read after the close",
        STDERR_BYTES >> 10
    ))
}

/// 64 MiB through `-L` with rekeys in the middle, counted in the client's debug log.
fn rekey_transfer_cell(bastion: &Bastion) -> Result<String, String> {
    let echo = echo_service();
    let limit = format!("RekeyLimit={REKEY_LIMIT}");
    let mut extra = vec!["-v"];
    if bastion.client_rekeys {
        extra.extend(["-o", &limit]);
    }
    let forward = bastion.forward(echo, &extra)?;
    let before = forward.log().matches(REKEY_LINE).count();
    if before != 0 {
        return Err(format!(
            "rekeyed before the transfer began:\n{}",
            forward.log()
        ));
    }
    let stream = forward.connect().map_err(|e| format!("connect: {e}"))?;
    let start = Instant::now();
    let (sent, received) = echo_through(stream, TRANSFER, 0x64);
    let elapsed = start.elapsed();
    let log = forward.log();
    if sent != received {
        return Err(format!(
            "SHA-256 sent {sent}, received {received}; client log:\n{log}"
        ));
    }
    let rekeys = log.matches(REKEY_LINE).count();
    if rekeys < MIN_REKEYS {
        return Err(format!(
            "{rekeys} rekeys during the transfer, expected at least {MIN_REKEYS}:\n{log}"
        ));
    }
    // Who started them: our client logs why when it does.
    let ours = log.matches("rekey reason=volume").count();
    if bastion.client_rekeys && ours < MIN_REKEYS {
        return Err(format!(
            "our client should have started the rekeys, started {ours}:\n{log}"
        ));
    }
    let by = if bastion.client_rekeys {
        "client"
    } else {
        "server"
    };
    Ok(format!(
        "64 MiB SHA-256 equal, {rekeys} rekeys (by {by}) in {elapsed:.1?}"
    ))
}

/// What one group of the concurrency cell found, or why it failed.
fn echo_group(streams: Vec<TcpStream>, first: usize, all_checked: &Barrier) -> Result<(), String> {
    let mut writers = Vec::with_capacity(streams.len());
    for stream in &streams {
        writers.push(stream.try_clone().map_err(|e| format!("clone: {e}"))?);
    }
    // Written on a thread of its own while this one reads, so a slow channel never holds
    // up the reads of the others.
    let writer = thread::spawn(move || {
        for (i, mut stream) in writers.into_iter().enumerate() {
            let bytes = data(PER_CONNECTION, (first + i) as u64);
            stream
                .write_all(&bytes)
                .map_err(|e| format!("write to connection {}: {e}", first + i))?;
        }
        Ok::<(), String>(())
    });
    let mut got = vec![0u8; PER_CONNECTION];
    let mut result = Ok(());
    for (i, stream) in streams.iter().enumerate() {
        let n = first + i;
        let _ = stream.set_read_timeout(Some(RUN_TIMEOUT));
        if let Err(e) = read_full(stream, &mut got) {
            result = Err(format!("read from connection {n}: {e}"));
            break;
        }
        if got != data(PER_CONNECTION, n as u64) {
            result = Err(format!("connection {n} echoed different bytes"));
            break;
        }
    }
    let written = writer
        .join()
        .unwrap_or_else(|_| Err("writer panicked".to_owned()));
    let result = result.and(written);
    // Every group waits here, whatever it found, so none closes its connections before
    // all 1,000 have echoed.
    all_checked.wait();
    result?;
    for (i, stream) in streams.iter().enumerate() {
        stream
            .shutdown(Shutdown::Write)
            .map_err(|e| format!("shutdown connection {}: {e}", first + i))?;
    }
    let mut rest = Vec::new();
    for (i, mut stream) in streams.iter().enumerate() {
        rest.clear();
        stream
            .read_to_end(&mut rest)
            .map_err(|e| format!("read EOF of connection {}: {e}", first + i))?;
        if !rest.is_empty() {
            return Err(format!(
                "connection {} sent {} bytes after its echo",
                first + i,
                rest.len()
            ));
        }
    }
    Ok(())
}

/// Fills `buf`, saying how much came before an EOF or error.
fn read_full(mut stream: &TcpStream, buf: &mut [u8]) -> Result<(), String> {
    let mut at = 0;
    while at < buf.len() {
        match stream.read(&mut buf[at..]) {
            Ok(0) => return Err(format!("EOF after {at} bytes")),
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{e} after {at} bytes")),
        }
    }
    Ok(())
}

/// An echo service like [`echo_service`] that counts the connections it has accepted, so
/// that the concurrency cell can hold back until the far end has caught up.
fn counting_echo_service() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind echo");
    let port = listener.local_addr().expect("echo address").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::AcqRel);
            thread::spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    if stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = stream.shutdown(Shutdown::Write);
            });
        }
    });
    (port, accepted)
}

/// Opens `count` connections to the forward, one at a time, never more than
/// [`IN_FLIGHT`] ahead of the echo service's accepts: the server connects to the echo
/// service as fast as the opens arrive, and a burst of 1,000 would overflow its listen
/// backlog (128, what std asks for), which the kernel answers with resets.
fn open_paced(
    forward: &Forward,
    accepted: &AtomicUsize,
    count: usize,
) -> Result<Vec<TcpStream>, String> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut streams = Vec::with_capacity(count);
    while streams.len() < count || accepted.load(Ordering::Acquire) < count {
        let behind = streams.len() - accepted.load(Ordering::Acquire).min(streams.len());
        if streams.len() < count && behind < IN_FLIGHT {
            let stream = forward
                .connect()
                .map_err(|e| format!("connection {}: connect: {e}", streams.len()))?;
            streams.push(stream);
            continue;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} connections made, the echo service accepted {}",
                streams.len(),
                accepted.load(Ordering::Acquire)
            ));
        }
        thread::sleep(Duration::from_millis(1));
    }
    Ok(streams)
}

/// 1,000 `-L` connections, all carried through to the echo service before any data
/// moves, each echoing 64 KiB, all still open when the last has been checked.
fn concurrent_cell(bastion: &Bastion) -> Result<String, String> {
    let (echo, accepted) = counting_echo_service();
    let forward = bastion.forward(echo, &["-v"])?;
    let start = Instant::now();
    let mut streams = open_paced(&forward, &accepted, CONCURRENT)?;
    let opened = start.elapsed();

    let per_group = CONCURRENT / GROUPS;
    let checked = Arc::new(Barrier::new(GROUPS));
    let mut groups = Vec::with_capacity(GROUPS);
    for g in (0..GROUPS).rev() {
        let first = g * per_group;
        let group = streams.split_off(first);
        let checked = Arc::clone(&checked);
        groups.push(thread::spawn(move || echo_group(group, first, &checked)));
    }
    let mut errors = Vec::new();
    for group in groups {
        match group.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a group panicked".to_owned()),
        }
    }
    let elapsed = start.elapsed();
    let mut forward = forward;
    if !forward.process.alive() {
        errors.push("the client exited".to_owned());
    }
    let connections = accepted.load(Ordering::Acquire);
    if connections != CONCURRENT {
        errors.push(format!(
            "the echo service accepted {connections} connections"
        ));
    }
    if !errors.is_empty() {
        // The client's -v log without the line each forwarded connection logs.
        let target = format!("to [127.0.0.1]:{echo}");
        let log: Vec<String> = forward
            .log()
            .lines()
            .filter(|l| !(l.contains("forward from") && l.ends_with(&target)))
            .map(str::to_owned)
            .collect();
        return Err(format!(
            "{} failures:\n{}\nclient log:\n{}\nserver log:\n{}",
            errors.len(),
            errors.join("\n"),
            log.join("\n"),
            bastion.server.log_tail()
        ));
    }
    Ok(format!(
        "{CONCURRENT} x {} KiB, all open in {opened:.1?}, echoed in {:.1?}",
        PER_CONNECTION >> 10,
        elapsed - opened
    ))
}

/// `-W` as a stdio stream to the echo service: what goes in comes back out.
fn stdio_cell(bastion: &Bastion) -> Result<String, String> {
    let echo = echo_service();
    let input = data(STDIO_BYTES, 0x57d10);
    let target = format!("127.0.0.1:{echo}");
    let mut command = bastion.client(&["-W", &target]);
    command.arg("127.0.0.1");
    let out = run_with_input(&mut command, Some(&input), RUN_TIMEOUT);
    exited(&out, 0)?;
    let (sent, received) = (sha256_hex(&input), sha256_hex(&out.stdout));
    if sent != received {
        return Err(format!(
            "sent {} bytes (SHA-256 {sent}), received {} (SHA-256 {received}); stderr:\n{}",
            input.len(),
            out.stdout.len(),
            out.stderr_text()
        ));
    }
    Ok(format!("1 MiB SHA-256 equal in {:.1?}", out.elapsed))
}

/// An echo service on a Unix socket at `path`, a thread per connection.
fn unix_echo_service(path: &Path) {
    let listener = UnixListener::bind(path).expect("bind the Unix echo socket");
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = stream.shutdown(Shutdown::Write);
            });
        }
    });
}

/// Sends `bytes` through a Unix socket stream while reading the echo back; the SHA-256
/// of what was sent and of what came back.
fn unix_echo_through(stream: UnixStream, bytes: usize) -> Result<(String, String), String> {
    stream
        .set_read_timeout(Some(RUN_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let input = data(bytes, 0x5eed);
    let sent = sha256_hex(&input);
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let sender = thread::spawn(move || {
        let result = writer.write_all(&input);
        let _ = writer.shutdown(Shutdown::Write);
        result
    });
    let mut back = Vec::with_capacity(bytes);
    (&stream)
        .read_to_end(&mut back)
        .map_err(|e| format!("read after {} of {bytes} bytes: {e}", back.len()))?;
    sender
        .join()
        .map_err(|_| "the writer panicked".to_owned())?
        .map_err(|e| format!("write: {e}"))?;
    Ok((sent, sha256_hex(&back)))
}

/// `-L PATH:HOST:PORT` and `-L PORT:PATH`: a local Unix socket listener carried to a TCP
/// echo, and a TCP listener carried to a Unix socket echo on the server.
fn unix_cell(bastion: &Bastion) -> Result<String, String> {
    let sockets = TempDir::new("unix-forward");
    let echo = echo_service();

    // A local socket, forwarded to TCP.
    let local = sockets.join("local.sock");
    let spec = format!("{}:127.0.0.1:{echo}", local.display());
    let mut client = bastion.forwards_only(&spec);
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    let stream = loop {
        match UnixStream::connect(&local) {
            Ok(stream) => break stream,
            Err(_) if client.alive() && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(format!(
                    "the client is not listening on {}: {e}; stderr:\n{}",
                    local.display(),
                    client.stderr_after_exit()
                ));
            }
        }
    };
    let (sent, received) = unix_echo_through(stream, STDIO_BYTES)?;
    if sent != received {
        return Err(format!(
            "from a local socket: SHA-256 sent {sent}, received {received}"
        ));
    }
    drop(client);
    let mut report = "local socket to TCP: 1 MiB SHA-256 equal".to_owned();

    // A TCP listener, forwarded to a socket at the server.
    let remote = sockets.join("remote.sock");
    unix_echo_service(&remote);
    let local_port = free_port();
    let spec = format!("{local_port}:{}", remote.display());
    let mut client = bastion.forwards_only(&spec);
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    while !listening(client.id(), local_port) {
        if !client.alive() || Instant::now() >= deadline {
            return Err(format!(
                "the client is not listening on port {local_port}; stderr:\n{}",
                client.stderr_after_exit()
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, local_port))
        .map_err(|e| format!("connect: {e}"))?;
    if !bastion.streamlocal {
        // Refused by the server: the local connection is closed, the client lives on.
        stream
            .set_read_timeout(Some(RUN_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        return match (&stream).read(&mut byte) {
            Ok(0) | Err(_) if client.alive() => {
                report.push_str("; to a server socket: refused, the client lives on");
                Ok(report)
            }
            other => Err(format!(
                "a refused streamlocal open gave {other:?}, client alive: {}",
                client.alive()
            )),
        };
    }
    let (sent, received) = echo_through(stream, STDIO_BYTES, 0x50c);
    if sent != received {
        return Err(format!(
            "to a server socket: SHA-256 sent {sent}, received {received}"
        ));
    }
    report.push_str("; TCP to a server socket: 1 MiB SHA-256 equal");
    Ok(report)
}

/// Runs a cell, turning a panic in it (a harness assertion, say) into a failed result.
fn guarded(cell: impl FnOnce() -> Result<String, String>) -> Result<String, String> {
    catch_unwind(AssertUnwindSafe(cell)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        Err(format!("panicked: {message}"))
    })
}

type Row = (String, &'static str, Result<String, String>);

/// Every cell against one server, in order.
fn cells_against(bastion: &Bastion) -> Vec<Row> {
    type Cell = fn(&Bastion) -> Result<String, String>;
    let cells: [(&str, Cell); 8] = [
        ("hostname", hostname_cell),
        ("exit status", exit_status_cell),
        ("exit signal", exit_signal_cell),
        ("stdin to stderr", stdin_stderr_cell),
        ("-L 64 MiB + rekeys", rekey_transfer_cell),
        ("-L 1,000 at once", concurrent_cell),
        ("-W stdio", stdio_cell),
        ("-L unix sockets", unix_cell),
    ];
    cells
        .into_iter()
        .map(|(name, cell)| (bastion.name.to_owned(), name, guarded(|| cell(bastion))))
        .collect()
}

#[test]
fn gateway_client_through_real_bastions() {
    // Each concurrency cell holds 2,000 sockets in this process: 1,000 connections to
    // the forward and the echo service's end of each.
    raise_open_file_limit();
    type Starter = fn() -> Option<Bastion>;
    let starters: [(&str, Starter); 3] = [
        ("OpenSSH 9.2", || Bastion::openssh(OpenSsh::V9_2)),
        ("OpenSSH 10.0", || Bastion::openssh(OpenSsh::V10_0)),
        ("Dropbear 2022.83", Bastion::dropbear),
    ];
    let start = Instant::now();
    let runs: Vec<_> = starters
        .into_iter()
        .map(|(name, start_bastion)| {
            let handle = thread::spawn(move || {
                let bastion = start_bastion()?;
                Some(cells_against(&bastion))
            });
            (name, handle)
        })
        .collect();
    let mut cells = Cells::new("the gateway client through real bastions");
    let mut ran = 0;
    for (name, handle) in runs {
        match handle.join() {
            Ok(Some(rows)) => {
                ran += 1;
                for (peer, cell, result) in rows {
                    cells.record(&peer, cell, result);
                }
            }
            // Not installed, outside CI: a SKIPPED line was printed.
            Ok(None) => {}
            Err(_) => cells.record(name, "start", Err("starting the server panicked".into())),
        }
    }
    println!("{ran} servers in {:.1?}", start.elapsed());
    cells.finish();
}
