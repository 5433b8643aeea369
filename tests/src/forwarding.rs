//! What the forwarding tests share: child processes that die with the test, waiting for a
//! port, an echo service and a patterned source (counting what it wrote, if asked) on
//! threads, this project's forwarding server and client as processes, OpenSSH's client
//! through that server, bulk transfers checked by SHA-256 (of a set size, or running until
//! stopped), and memory read from `/proc`.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use gateway::event_loop::listen::tcp_listener;
use ssh_proto::crypto::{HashAlg, default_provider};

use crate::peers::{self, KeyPair, RunOutput, TempDir, free_port, gateway_binary};

/// A child process that is killed and reaped when the test ends, however it ends.
#[derive(Debug)]
pub struct Reaper(pub Child);

impl Reaper {
    pub fn spawn(command: &mut Command, what: &str) -> Reaper {
        Reaper(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("start {what}: {e}")),
        )
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit status, or
    /// `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the process wrote to its piped stderr, once it has exited (or been killed).
    pub fn stderr_after_exit(&mut self) -> String {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let mut text = String::new();
        if let Some(mut stderr) = self.0.stderr.take() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `child` accepts connections on the loopback `port`: `false` if it exited
/// first. Panics after 30 s.
fn listening(port: u16, child: &mut Reaper) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return child.alive();
        }
        if !child.alive() {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("gateway serve is not listening on port {port} after 30 s");
}

/// Waits until something accepts connections on the loopback `port`; panics after 30 s,
/// or as soon as `child` (the process meant to listen) has exited.
pub fn wait_for_port(port: u16, mut child: Option<&mut Reaper>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Some(child) = child.as_deref_mut()
            && let Ok(Some(status)) = child.0.try_wait()
        {
            panic!("{what} exited with {status} before listening on port {port}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} is not listening on port {port} after 30 s");
}

/// A loopback listener on a free port with a deep backlog, so that a burst of a thousand
/// connections is not reset before the accepting thread gets to it.
pub fn loopback_listener() -> TcpListener {
    tcp_listener(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("listen on loopback")
}

/// An echo service on loopback, one thread per connection; its port.
pub fn echo_service() -> u16 {
    echo_service_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// An echo service on `ip` (`::1` for a destination that only IPv6 reaches), one thread
/// per connection; its port.
pub fn echo_service_on(ip: IpAddr) -> u16 {
    let listener =
        tcp_listener(SocketAddr::new(ip, 0)).unwrap_or_else(|e| panic!("listen on {ip}: {e}"));
    let port = listener.local_addr().expect("echo address").port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut stream = stream;
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

/// The period of [`pattern`]'s stream, a prime so that it never lines up with buffers.
pub const PERIOD: usize = 65_521;
/// The longest slice of [`pattern`] compared at once.
pub const PATTERN_CHUNK: usize = 256 * 1024;

/// A patterned stream from any offset `o`: `pattern()[o % PERIOD..]`, compared with whole
/// slices so checking hundreds of MiB stays quick in a debug build.
pub fn pattern() -> Vec<u8> {
    (0..PERIOD + PATTERN_CHUNK)
        .map(|i| {
            ((i % PERIOD) as u64)
                .wrapping_mul(2_654_435_761)
                .to_le_bytes()[2]
        })
        .collect()
}

/// A service that writes [`pattern`] to every connection for as long as it is read.
pub fn source_service() -> u16 {
    counted_source_service(None).0
}

/// [`source_service`], counting the bytes its sockets took over all its connections. With
/// `send_buffer`, each connection's socket send buffer is set to that (Linux doubles the
/// number for its bookkeeping), so that what is counted says how much the path after the
/// source holds rather than how much the source's own socket does.
pub fn counted_source_service(send_buffer: Option<usize>) -> (u16, Arc<AtomicU64>) {
    let listener = loopback_listener();
    let port = listener.local_addr().expect("source address").port();
    let written = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&written);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Some(size) = send_buffer {
                rustix::net::sockopt::set_socket_send_buffer_size(&stream, size)
                    .expect("set the source's send buffer");
            }
            let counter = Arc::clone(&counter);
            thread::spawn(move || {
                let table = pattern();
                let mut stream = stream;
                let mut at = 0;
                while let Ok(n @ 1..) = stream.write(&table[at..at + PATTERN_CHUNK]) {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    at = (at + n) % PERIOD;
                }
            });
        }
    });
    (port, written)
}

/// A small generator of test data: each seed its own stream of bytes.
#[derive(Debug, Clone)]
pub struct XorShift(pub u64);

impl XorShift {
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// SHA-256 of `data`, in hex.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut hasher = default_provider().hash(HashAlg::Sha256);
    hasher.update(data);
    hex(hasher.finish().as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends `bytes` of seeded data through `stream` while reading back whatever comes, and
/// returns the SHA-256 of what was sent and of what came back (after the peer closed its
/// side). For an echo target through a forward the two must match.
pub fn echo_through(mut stream: TcpStream, bytes: usize, seed: u64) -> (String, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("read timeout");
    let mut writer = stream.try_clone().expect("clone the stream");
    let sender = thread::spawn(move || {
        let mut hasher = default_provider().hash(HashAlg::Sha256);
        let mut data = XorShift(seed | 1);
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len());
            data.fill(&mut buf[..n]);
            hasher.update(&buf[..n]);
            writer.write_all(&buf[..n]).expect("write into the forward");
            left -= n;
        }
        let _ = writer.shutdown(Shutdown::Write);
        hex(hasher.finish().as_bytes())
    });
    let mut hasher = default_provider().hash(HashAlg::Sha256);
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0usize;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                got += n;
            }
            Err(e) => panic!("read from the forward after {got} of {bytes} bytes: {e}"),
        }
    }
    let sent = sender.join().expect("sender thread");
    (sent, hex(hasher.finish().as_bytes()))
}

/// A transfer through a forward to an echo service that runs until it is stopped: one
/// thread writes seeded data, another reads the echo back, each hashing what it moved.
#[derive(Debug)]
pub struct EchoFlow {
    stop: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
    writer: JoinHandle<(u64, String)>,
    reader: JoinHandle<(u64, String)>,
}

/// What an [`EchoFlow`] moved: bytes and SHA-256 each way.
#[derive(Debug, PartialEq, Eq)]
pub struct Moved {
    pub sent: u64,
    pub sent_sha256: String,
    pub echoed: u64,
    pub echoed_sha256: String,
}

impl EchoFlow {
    /// Starts writing into `stream`, a connection through a forward to an echo service.
    pub fn start(stream: TcpStream, seed: u64) -> EchoFlow {
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("read timeout");
        let mut writer = stream.try_clone().expect("clone the stream");
        let stop = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let stopped = Arc::clone(&stop);
        let writing = thread::spawn(move || {
            let mut hasher = default_provider().hash(HashAlg::Sha256);
            let mut data = XorShift(seed | 1);
            let mut buf = vec![0u8; 64 * 1024];
            let mut sent = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                data.fill(&mut buf);
                hasher.update(&buf);
                writer.write_all(&buf).expect("write into the forward");
                sent += buf.len() as u64;
            }
            writer
                .shutdown(Shutdown::Write)
                .expect("shut the write side");
            (sent, hex(hasher.finish().as_bytes()))
        });
        let counter = Arc::clone(&echoed);
        let reading = thread::spawn(move || {
            let mut stream = stream;
            let mut hasher = default_provider().hash(HashAlg::Sha256);
            let mut buf = vec![0u8; 256 * 1024];
            let mut got = 0u64;
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        hasher.update(&buf[..n]);
                        got += n as u64;
                        counter.store(got, Ordering::Relaxed);
                    }
                    Err(e) => panic!("read the echo after {got} bytes: {e}"),
                }
            }
            (got, hex(hasher.finish().as_bytes()))
        });
        EchoFlow {
            stop,
            echoed,
            writer: writing,
            reader: reading,
        }
    }

    /// Bytes echoed back so far.
    pub fn echoed(&self) -> u64 {
        self.echoed.load(Ordering::Relaxed)
    }

    /// Waits until at least `bytes` have come back; panics after `timeout`.
    pub fn wait_for(&self, bytes: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.echoed() < bytes {
            assert!(
                Instant::now() < deadline,
                "only {} of {bytes} bytes echoed after {timeout:?}",
                self.echoed()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops writing, sends EOF, and waits for the echo of everything written and the
    /// echo's EOF.
    pub fn finish(self) -> Moved {
        self.stop.store(true, Ordering::Relaxed);
        let (sent, sent_sha256) = self.writer.join().expect("the writing thread");
        let (echoed, echoed_sha256) = self.reader.join().expect("the reading thread");
        Moved {
            sent,
            sent_sha256,
            echoed,
            echoed_sha256,
        }
    }
}

/// Resident and peak memory of a process, in KiB, from `/proc`.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time a process has used, user plus system, in clock ticks (10 ms), from `/proc`.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name.
    get(11) + get(12)
}

/// `gateway serve` on a loopback port, with a client key authorised and a host key that
/// it creates on start.
#[derive(Debug)]
pub struct Serve {
    pub process: Reaper,
    pub port: u16,
    /// The key that may log in.
    pub key: KeyPair,
    pub host_key: PathBuf,
}

impl Serve {
    /// Starts `gateway serve -q` in `dir` with `extra` arguments (`--permit-open`,
    /// `--allow-exec`, ...); `None` when no key could be made (a missing peer outside CI).
    pub fn start(dir: &Path, extra: &[&str]) -> Option<Serve> {
        Serve::start_with(dir, extra, Stdio::inherit())
    }

    /// As [`Serve::start`], with the server's log (stderr) going to `log`.
    pub fn start_with(dir: &Path, extra: &[&str], log: Stdio) -> Option<Serve> {
        Serve::start_authorizing(dir, extra, log, &[])
    }

    /// As [`Serve::start_with`], with `more` lines (other keys, with options) after the
    /// line of the key it makes.
    pub fn start_authorizing(
        dir: &Path,
        extra: &[&str],
        log: Stdio,
        more: &[String],
    ) -> Option<Serve> {
        let key = if dir.join("id_ed25519").exists() {
            peers::read_key_pair(dir.join("id_ed25519"))
        } else {
            peers::keygen(dir, "id_ed25519", "ed25519")?
        };
        let mut lines = format!("{}\n", key.public_key);
        for line in more {
            lines.push_str(line);
            lines.push('\n');
        }
        std::fs::write(dir.join("authorized_keys"), lines).expect("write authorized_keys");
        let host_key = dir.join("host_key");
        let quiet = !extra.iter().any(|a| a.starts_with("-v"));
        let mut log = Some(log);
        // The port was free a moment ago; another test may have taken it since, and then
        // the server exits at once and is started again on another.
        for _ in 0..5 {
            let port = free_port();
            let mut command = Command::new(gateway_binary());
            command.arg("serve");
            if quiet {
                command.arg("-q");
            }
            command
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .arg("--host-key")
                .arg(&host_key)
                .arg("--authorized-keys")
                .arg(dir.join("authorized_keys"))
                .args(extra)
                .stderr(log.take().unwrap_or_else(Stdio::inherit));
            let mut process = Reaper::spawn(&mut command, "gateway serve");
            if listening(port, &mut process) {
                return Some(Serve {
                    process,
                    port,
                    key,
                    host_key,
                });
            }
        }
        panic!("gateway serve did not start listening in five tries");
    }

    /// A known_hosts line for this server's host key.
    pub fn known_hosts_line(&self) -> String {
        let mut name = self.host_key.as_os_str().to_owned();
        name.push(".pub");
        let public =
            std::fs::read_to_string(PathBuf::from(name)).expect("read the server's host key");
        let mut words = public.split_whitespace();
        let (kind, blob) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        format!("[127.0.0.1]:{} {kind} {blob}\n", self.port)
    }
}

/// A `gateway` client command for `127.0.0.1` on `port` that trusts any host key, logs in
/// with `key` and never prompts: the caller adds forwards, `-N`, a command.
pub fn gateway_client(key: &Path, port: u16) -> Command {
    let mut command = Command::new(gateway_binary());
    command
        .args(["-F", "none", "-o", "BatchMode=yes"])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "LogLevel=ERROR"])
        .arg("-i")
        .arg(key)
        .args(["-p", &port.to_string()]);
    command
}

/// `gateway -N -L local:127.0.0.1:target 127.0.0.1` against `port`, started and listening;
/// its local port.
pub fn local_forward(key: &Path, port: u16, target: u16, extra: &[&str]) -> (Reaper, u16) {
    let local = free_port();
    let mut command = gateway_client(key, port);
    command
        .arg("-N")
        .args(["-L", &format!("{local}:127.0.0.1:{target}")])
        .args(extra)
        .arg("127.0.0.1")
        .stderr(Stdio::piped());
    let mut client = Reaper::spawn(&mut command, "the gateway client");
    wait_for_port(local, Some(&mut client), "the gateway client");
    (client, local)
}

/// How long a server may take to log what a client that has ended did.
const LOG_WAIT: Duration = Duration::from_secs(5);

/// The first line of the log file `log` that holds every one of `needles`, waiting up to
/// 5 s for it to be written; the error quotes the whole log.
pub fn log_line(log: &Path, needles: &[&str]) -> Result<String, String> {
    log_line_after(log, 0, needles)
}

/// As [`log_line`], looking only at what was written after the first `mark` bytes.
pub fn log_line_after(log: &Path, mark: usize, needles: &[&str]) -> Result<String, String> {
    let deadline = Instant::now() + LOG_WAIT;
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text
            .get(mark..)
            .unwrap_or_default()
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

/// An OpenSSH client command for `127.0.0.1` on `port` that checks the host key strictly
/// against `known_hosts`, logs in with `key` only, never prompts and reads no config: the
/// caller adds `-W`, forwards, the host and a command.
pub fn openssh_client(ssh: &Path, port: u16, key: &Path, known_hosts: &Path) -> Command {
    let mut command = Command::new(ssh);
    command
        .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
        .args(["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
        .arg("-i")
        .arg(key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"])
        .args(["-p", &port.to_string()])
        .env_remove("SSH_AUTH_SOCK");
    command
}

/// [`Serve`] for real clients that check its host key: in a folder of its own, with its
/// log in a file there and a known_hosts file naming its host key.
#[derive(Debug)]
pub struct Bastion {
    // Dropped before the folder it lives in.
    pub serve: Serve,
    pub known_hosts: PathBuf,
    pub log: PathBuf,
    pub dir: TempDir,
}

impl Bastion {
    /// Starts the server in a new folder named after `label`, with `extra` arguments;
    /// `None` when a peer is missing outside CI.
    pub fn start(label: &str, extra: &[&str]) -> Option<Bastion> {
        Bastion::start_authorizing(label, extra, &[])
    }

    /// As [`Bastion::start`], with `more` lines in its `authorized_keys` after the line of
    /// its own key.
    pub fn start_authorizing(label: &str, extra: &[&str], more: &[String]) -> Option<Bastion> {
        let dir = TempDir::new(label);
        let log = dir.join("serve.log");
        let file = File::create(&log).expect("create the server's log");
        let serve = Serve::start_authorizing(dir.path(), extra, Stdio::from(file), more)?;
        let known_hosts = dir.join("known_hosts");
        fs::write(&known_hosts, serve.known_hosts_line()).expect("write known_hosts");
        Some(Bastion {
            serve,
            known_hosts,
            log,
            dir,
        })
    }

    /// The first line of the server's log that holds every one of `needles`, waiting a
    /// little for it.
    pub fn log_line(&self, needles: &[&str]) -> Result<String, String> {
        log_line(&self.log, needles)
    }

    /// As [`Bastion::log_line`], among the lines written after `mark` (see
    /// [`Bastion::log_mark`]).
    pub fn log_line_after(&self, mark: usize, needles: &[&str]) -> Result<String, String> {
        log_line_after(&self.log, mark, needles)
    }

    /// How far the server's log has got: lines written after this mark belong to what
    /// the test does next.
    pub fn log_mark(&self) -> usize {
        fs::read_to_string(&self.log).map_or(0, |text| text.len())
    }

    /// The client address (`from=`) of the one connection that logged in after `mark`.
    /// Cells that use this run one client at a time, so a second login is an error, as
    /// is none.
    pub fn login_since(&self, mark: usize) -> Result<String, String> {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let logins: Vec<&str> = text
            .get(mark..)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("auth from=") && l.contains("result=accepted"))
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("from=")))
            .collect();
        match logins.as_slice() {
            [from] => Ok((*from).to_owned()),
            _ => Err(format!(
                "expected one login in the server's log since the cell began, found {}; the log:\n{text}",
                logins.len()
            )),
        }
    }

    /// Key exchanges after the first that the connection from `from` finished since
    /// `mark` ([`Bastion::log_mark`]), whichever side started them: the `rekey from=`
    /// lines of a server run with `-v`. An earlier connection from the same port counts
    /// for nothing.
    pub fn rekeys(&self, from: &str, mark: usize) -> usize {
        let field = format!("from={from}");
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        text.get(mark..)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                let mut words = l.split_whitespace().skip_while(|w| *w != "rekey");
                words.next().is_some() && words.next() == Some(field.as_str())
            })
            .count()
    }

    /// [`openssh_client`] for this server, logging in with its one authorised key.
    pub fn ssh(&self, ssh: &Path) -> Command {
        let serve = &self.serve;
        openssh_client(ssh, serve.port, &serve.key.private_key, &self.known_hosts)
    }
}

/// A client's run for a failure message, without its stdout, which may be binary.
pub fn brief(out: &RunOutput) -> String {
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

/// A stdio forward to an echo service gave back exactly `input`, and the client exited 0.
pub fn check_echoed(out: &RunOutput, input: &[u8]) -> Result<String, String> {
    if !out.success() {
        return Err(format!("the client failed: {}", brief(out)));
    }
    let (sent, got) = (sha256_hex(input), sha256_hex(&out.stdout));
    if sent != got {
        return Err(format!(
            "sent {} bytes with SHA-256 {sent}, got {} bytes with {got}: {}",
            input.len(),
            out.stdout.len(),
            brief(out)
        ));
    }
    Ok(format!(
        "{} KiB echoed, SHA-256 {}.. in {:.2?}",
        input.len() / 1024,
        &sent[..12],
        out.elapsed
    ))
}

/// An address in TEST-NET-2 (RFC 5737) that, inside a [`black_hole_namespace`], is
/// reached through a veth pair whose far end no one answers on: a SYN to it is dropped
/// without a reply or an ICMP error, so only a timeout ends a connect to it.
pub const BLACK_HOLE: &str = "198.51.100.2";

/// `unshare --net sh -c SETUP sh PROGRAM`: runs `program` (the caller adds its
/// arguments) in a new network namespace with loopback up and [`BLACK_HOLE`] routed into
/// a veth pair that answers nothing. Needs root; any port is free inside.
pub fn black_hole_namespace(program: &Path) -> Command {
    let setup = format!(
        "ip link set lo up && ip link add bh0 type veth peer name bh1 && \
         ip addr add 198.51.100.1/24 dev bh0 && ip link set bh0 up && ip link set bh1 up && \
         ip neigh add {BLACK_HOLE} lladdr 02:00:00:00:00:02 dev bh0 nud permanent && \
         exec \"$@\""
    );
    let mut command = Command::new("unshare");
    command
        .args(["--net", "sh", "-c", &setup, "sh"])
        .arg(program);
    command
}
