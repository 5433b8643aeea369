//! Real SSH peers for interop tests: finds their programs, starts OpenSSH and Dropbear
//! servers on free loopback ports in throwaway folders, and runs client programs with a
//! timeout.
//!
//! `tests/install-peers.sh` installs the peers and writes their paths to
//! `target/peers/env.sh`; `tests/run.sh` sources that file, and a plain `cargo test` reads
//! it too. A test asks for what it needs and returns early on `None`:
//!
//! ```no_run
//! use interop::peers::{OpenSsh, Sshd, server_banner};
//!
//! let Some(sshd) = Sshd::start(OpenSsh::V10_0, &["KexAlgorithms mlkem768x25519-sha256"]) else {
//!     return; // not installed, and not under CI: a SKIPPED line was printed
//! };
//! assert!(server_banner(sshd.addr()).starts_with("SSH-2.0-OpenSSH_10.0"));
//! ```
//!
//! Under `CI=true` a missing peer panics instead, so CI never passes by skipping.
//!
//! Key pairs come from [`crate::keys`]; their types and functions are re-exported here.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::keys::shared_rsa_host_key;
pub use crate::keys::{KeyPair, keygen, read_key_pair};

/// How long a server may take to start listening before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How many free ports a server is tried on before giving up: another process can take a
/// port between the moment it is picked and the moment the server binds it.
const START_ATTEMPTS: usize = 5;
/// How much of a server's log is printed when a test panics while the server runs.
const LOG_TAIL_LINES: usize = 80;

/// A peer's program (or folder), named after the `env.sh` variable that holds its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// OpenSSH 9.2 server, Debian's `openssh-server`.
    Sshd92,
    /// OpenSSH 9.2 client.
    Ssh92,
    /// OpenSSH 10.0 server, unpacked from bookworm-backports.
    Sshd100,
    /// OpenSSH 10.0 client, unpacked from bookworm-backports.
    Ssh100,
    /// The folder holding OpenSSH 10.0's `sshd-session` and `sshd-auth`.
    Sshd100Libexec,
    /// Dropbear server.
    Dropbear,
    /// Dropbear client.
    Dbclient,
    /// Dropbear's key generator.
    Dropbearkey,
    /// Dropbear's key converter (to and from OpenSSH's format).
    Dropbearconvert,
    /// PuTTY's command line client.
    Plink,
    /// PuTTY's key generator and converter.
    Puttygen,
    /// iperf3, the traffic source and sink for throughput tests.
    Iperf3,
    /// The Python of the venv holding asyncssh and paramiko.
    PeerPython,
    /// ssh-audit, from the same venv.
    SshAudit,
    /// The system's `ssh-keygen` (OpenSSH 9.2), used for host and client keys.
    SshKeygen,
    /// The system's `ssh-agent` (OpenSSH 9.2), holding keys for clients that use an agent.
    SshAgent,
    /// The system's `ssh-add`, which loads keys into an agent.
    SshAdd,
}

impl Peer {
    /// Every peer, for listing what is installed.
    pub const ALL: [Peer; 17] = [
        Peer::Sshd92,
        Peer::Ssh92,
        Peer::Sshd100,
        Peer::Ssh100,
        Peer::Sshd100Libexec,
        Peer::Dropbear,
        Peer::Dbclient,
        Peer::Dropbearkey,
        Peer::Dropbearconvert,
        Peer::Plink,
        Peer::Puttygen,
        Peer::Iperf3,
        Peer::PeerPython,
        Peer::SshAudit,
        Peer::SshKeygen,
        Peer::SshAgent,
        Peer::SshAdd,
    ];

    /// The environment variable (and `env.sh` entry) that holds this peer's path.
    pub const fn var(self) -> &'static str {
        match self {
            Peer::Sshd92 => "SSHD_92",
            Peer::Ssh92 => "SSH_92",
            Peer::Sshd100 => "SSHD_100",
            Peer::Ssh100 => "SSH_100",
            Peer::Sshd100Libexec => "SSHD_100_LIBEXEC",
            Peer::Dropbear => "DROPBEAR",
            Peer::Dbclient => "DBCLIENT",
            Peer::Dropbearkey => "DROPBEARKEY",
            Peer::Dropbearconvert => "DROPBEARCONVERT",
            Peer::Plink => "PLINK",
            Peer::Puttygen => "PUTTYGEN",
            Peer::Iperf3 => "IPERF3",
            Peer::PeerPython => "PEER_PYTHON",
            Peer::SshAudit => "SSH_AUDIT",
            Peer::SshKeygen => "SSH_KEYGEN",
            Peer::SshAgent => "SSH_AGENT_PROGRAM",
            Peer::SshAdd => "SSH_ADD",
        }
    }

    /// Where Debian puts the program, for peers that come from a Debian package. Peers that
    /// live under `PEERS_DIR` have none: only `env.sh` knows where they are.
    const fn standard_path(self) -> Option<&'static str> {
        match self {
            Peer::Sshd92 => Some("/usr/sbin/sshd"),
            Peer::Ssh92 => Some("/usr/bin/ssh"),
            Peer::Dropbear => Some("/usr/sbin/dropbear"),
            Peer::Dbclient => Some("/usr/bin/dbclient"),
            Peer::Dropbearkey => Some("/usr/bin/dropbearkey"),
            Peer::Dropbearconvert => Some("/usr/lib/dropbear/dropbearconvert"),
            Peer::Plink => Some("/usr/bin/plink"),
            Peer::Puttygen => Some("/usr/bin/puttygen"),
            Peer::Iperf3 => Some("/usr/bin/iperf3"),
            Peer::SshKeygen => Some("/usr/bin/ssh-keygen"),
            Peer::SshAgent => Some("/usr/bin/ssh-agent"),
            Peer::SshAdd => Some("/usr/bin/ssh-add"),
            Peer::Sshd100
            | Peer::Ssh100
            | Peer::Sshd100Libexec
            | Peer::PeerPython
            | Peer::SshAudit => None,
        }
    }
}

/// True when running under CI (`CI=true` or `CI=1`), where a missing peer is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Reports that something a test needs is not there. Under CI this panics, so the test
/// fails; elsewhere it prints a `SKIPPED` line to stderr and returns `None`, and the test
/// returns early. Use it for any prerequisite, not only peer programs.
pub fn unavailable<T>(what: &str) -> Option<T> {
    if in_ci() {
        panic!("{what}: run tests/install-peers.sh (CI=true, so this is a failure, not a skip)");
    }
    // Straight to the process's stderr: the test harness captures `eprintln!`, which
    // would hide the skip unless the test failed.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: {what}: run tests/install-peers.sh\n"
    );
    None
}

/// Finds a peer's path: its environment variable first, then the `env.sh` written by
/// `install-peers.sh` (under `$PEERS_DIR`, default `<repo>/target/peers`), then Debian's
/// standard path. The error says what is missing and where it was looked for.
pub fn find(peer: Peer) -> Result<PathBuf, String> {
    let var = peer.var();
    let (path, source) = if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        (PathBuf::from(path), format!("${var}"))
    } else if let Some(path) = env_sh().get(var) {
        (
            PathBuf::from(path),
            format!("{var} in {}", env_sh_path().display()),
        )
    } else if let Some(path) = peer.standard_path() {
        (PathBuf::from(path), "the standard path".to_owned())
    } else {
        return Err(format!(
            "peer {var} missing (not set, and not in {})",
            env_sh_path().display()
        ));
    };
    if !path.exists() {
        return Err(format!(
            "peer {var} missing ({} from {source} does not exist)",
            path.display()
        ));
    }
    // Absolute, because sshd re-executes itself by the path it was started with.
    Ok(std::path::absolute(&path).unwrap_or(path))
}

/// Finds a peer like [`find`]; when it is missing, see [`unavailable`].
pub fn require(peer: Peer) -> Option<PathBuf> {
    match find(peer) {
        Ok(path) => Some(path),
        Err(why) => unavailable(&why),
    }
}

/// The repository root: the folder above the tests crate.
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

fn env_sh_path() -> PathBuf {
    match std::env::var_os("PEERS_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("env.sh"),
        None => repo_root().join("target/peers/env.sh"),
    }
}

/// The `export NAME=VALUE` lines of `env.sh`, read once per test process.
fn env_sh() -> &'static HashMap<String, String> {
    static VARS: OnceLock<HashMap<String, String>> = OnceLock::new();
    VARS.get_or_init(|| {
        let text = fs::read_to_string(env_sh_path()).unwrap_or_default();
        text.lines()
            .filter_map(|line| line.trim().strip_prefix("export "))
            .filter_map(|assignment| assignment.split_once('='))
            .map(|(name, value)| (name.to_owned(), shell_unquote(value)))
            .collect()
    })
}

/// Undoes the quoting of bash's `printf %q` for the characters that paths contain:
/// backslash escapes and single quotes.
fn shell_unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// A folder under the system's temp folder with a unique name, removed with everything in
/// it when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<temp>/interop-LABEL-PID-N-NANOS`. Panics if the temp folder is unusable.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for _ in 0..100 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("interop-{label}-{}-{n}-{nanos}", std::process::id());
            let path = std::env::temp_dir().join(name);
            match fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
        panic!("no unused temp folder name for {label}");
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the folder.
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.path.join(relative)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A loopback port that was free a moment ago. Another process may take it before the
/// caller binds it, so servers retry with a new port when binding fails.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Connects to an SSH server and returns its identification line (`SSH-2.0-...`, without
/// the line ending), skipping any lines the server sends before it. Panics after 10 s.
pub fn server_banner(addr: SocketAddr) -> String {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set read timeout");
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("read banner from {addr}: {e}"));
        assert!(
            n > 0,
            "{addr} closed the connection before sending a banner"
        );
        if line.starts_with("SSH-") {
            return line.trim_end_matches(['\r', '\n']).to_owned();
        }
    }
}

/// The name of the user the tests run as, who is the user they log in as.
pub fn current_user() -> &'static str {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(|| {
        let out = Command::new("id").arg("-un").output().expect("run id -un");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    })
}

/// What a client program did: its exit status and output, or that it was killed.
#[derive(Debug)]
pub struct RunOutput {
    /// The command line, for messages.
    pub command: String,
    /// The exit status; after a timeout, the status of the killed process.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// True when it ran past its timeout and was killed.
    pub timed_out: bool,
    /// How long it ran.
    pub elapsed: Duration,
}

impl RunOutput {
    /// Exited with status 0 before its timeout.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Shows everything, so `assert!(out.success(), "{out}")` explains a failure.
impl fmt::Display for RunOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ending = if self.timed_out {
            "was killed after its timeout".to_owned()
        } else {
            format!("exited with {}", self.status)
        };
        writeln!(f, "`{}` {ending} after {:?}", self.command, self.elapsed)?;
        writeln!(f, "--- stdout:\n{}", self.stdout_text())?;
        write!(f, "--- stderr:\n{}", self.stderr_text())
    }
}

/// Runs a client program with stdin closed and returns its output; kills it (and its
/// children) if it runs longer than `timeout`.
pub fn run(command: &mut Command, timeout: Duration) -> RunOutput {
    run_with_input(command, None, timeout)
}

/// Like [`run`], with `input` written to its stdin, which is then closed.
pub fn run_with_input(command: &mut Command, input: Option<&[u8]>, timeout: Duration) -> RunOutput {
    let description = describe(command);
    let start = Instant::now();
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills whatever it started too.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{description}`: {e}"));
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        let input = input.to_vec();
        // A thread, so a program that does not read its input cannot block us.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let stdout = Collector::start(child.stdout.take());
    let stderr = Collector::start(child.stderr.take());

    let deadline = start + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for client") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            kill_group(&mut child);
            break child.wait().expect("wait for killed client");
        }
        thread::sleep(Duration::from_millis(5));
    };
    // The pipes close when the program and its children are gone. A child that escaped
    // the process group could hold them open: give up on it after a short grace.
    let grace = Instant::now() + Duration::from_secs(2);
    while !(stdout.is_done() && stderr.is_done()) && Instant::now() < grace {
        thread::sleep(Duration::from_millis(5));
    }
    RunOutput {
        command: description,
        status,
        stdout: stdout.take(),
        stderr: stderr.take(),
        timed_out,
        elapsed: start.elapsed(),
    }
}

/// Reads a pipe to its end on a thread, keeping what it read so far.
struct Collector {
    data: Arc<Mutex<Vec<u8>>>,
    done: Arc<AtomicBool>,
}

impl Collector {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Collector {
        let data = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(pipe.is_none()));
        if let Some(mut pipe) = pipe {
            let (data, done) = (Arc::clone(&data), Arc::clone(&done));
            thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = pipe.read(&mut buf) {
                    data.lock()
                        .expect("collector lock")
                        .extend_from_slice(&buf[..n]);
                }
                done.store(true, Ordering::Release);
            });
        }
        Collector { data, done }
    }

    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.data.lock().expect("collector lock"))
    }
}

fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Kills a child started with `process_group(0)` and everything in its group. Call it
/// before the child is reaped: until then its pid, which names the group, cannot be reused.
fn kill_group(child: &mut Child) {
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !killed {
        let _ = child.kill();
    }
}

/// A server process started by this harness, with its folder and log. Kills its whole
/// process group (the listener and every session) when dropped.
#[derive(Debug)]
struct Server {
    name: String,
    child: Child,
    port: u16,
    log_path: PathBuf,
    // Dropped last, after the process is gone.
    dir: TempDir,
}

impl Server {
    /// Starts `make_command(port)` on a free port with stdout and stderr going to
    /// `dir/log`, until its log contains `ready(port)`. Tries a new port when the address
    /// is taken; panics when the server fails for any other reason or does not start.
    fn start(
        name: &str,
        dir: TempDir,
        mut make_command: impl FnMut(u16) -> Command,
        ready: impl Fn(u16) -> String,
    ) -> Server {
        let log_path = dir.join("log");
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let log = File::create(&log_path).expect("create server log");
            let mut command = make_command(port);
            command
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log file"))
                .stderr(log)
                .process_group(0);
            let description = describe(&command);
            let mut child = command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {name} (`{description}`): {e}"));
            let marker = ready(port);
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                let text = fs::read_to_string(&log_path).unwrap_or_default();
                if text.contains(&marker) {
                    return Server {
                        name: name.to_owned(),
                        child,
                        port,
                        log_path,
                        dir,
                    };
                }
                if let Some(status) = child.try_wait().expect("wait for server") {
                    if text.contains("Address already in use") && attempt < START_ATTEMPTS {
                        break;
                    }
                    panic!(
                        "{name} exited ({status}) before listening; `{description}` logged:\n{text}"
                    );
                }
                if Instant::now() >= deadline {
                    kill_group(&mut child);
                    let _ = child.wait();
                    panic!(
                        "{name} did not log {marker:?} within {START_TIMEOUT:?}; \
                         `{description}` logged:\n{text}"
                    );
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `known_hosts` lines that name this server, for clients that check host keys.
    fn known_hosts<'a>(&self, keys: impl IntoIterator<Item = &'a KeyPair>) -> String {
        keys.into_iter()
            .map(|key| format!("[127.0.0.1]:{} {}\n", self.port, key.public_key))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_group(&mut self.child);
        let _ = self.child.wait();
        // A failing test shows the server's side of the story.
        if thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!(
                "--- last {} lines of the {} log ({}):",
                tail.len(),
                self.name,
                self.log_path.display()
            );
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

/// Which OpenSSH to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenSsh {
    /// 9.2, Debian 12's own.
    V9_2,
    /// 10.0 from bookworm-backports, whose default key exchange is post-quantum.
    V10_0,
}

impl OpenSsh {
    /// Both versions.
    pub const ALL: [OpenSsh; 2] = [OpenSsh::V9_2, OpenSsh::V10_0];

    /// The server program.
    pub const fn server(self) -> Peer {
        match self {
            OpenSsh::V9_2 => Peer::Sshd92,
            OpenSsh::V10_0 => Peer::Sshd100,
        }
    }

    /// The client program.
    pub const fn client(self) -> Peer {
        match self {
            OpenSsh::V9_2 => Peer::Ssh92,
            OpenSsh::V10_0 => Peer::Ssh100,
        }
    }

    /// How the version starts in the identification line and in `ssh -V`.
    pub const fn version_prefix(self) -> &'static str {
        match self {
            OpenSsh::V9_2 => "OpenSSH_9.2",
            OpenSsh::V10_0 => "OpenSSH_10.0",
        }
    }

    /// The client's path, as [`require`] finds it.
    pub fn ssh(self) -> Option<PathBuf> {
        require(self.client())
    }
}

/// An OpenSSH server on a free loopback port, in its own temp folder with its own host
/// keys, config, `authorized_keys` and log. Killed, with its sessions, when dropped.
#[derive(Debug)]
pub struct Sshd {
    version: OpenSsh,
    host_keys: Vec<KeyPair>,
    config_path: PathBuf,
    server: Server,
}

impl Sshd {
    /// Starts sshd `version` (`sshd -D -e -f CONFIG`, logging at DEBUG3). `extra_config`
    /// lines come before the harness's own, so they override its defaults (sshd keeps the
    /// first value it reads), except that a `Match` line and what follows it go last, as
    /// sshd requires. Keep `LogLevel` at INFO or above: readiness is read from the log.
    ///
    /// Returns `None` when the version is not installed outside CI (see [`unavailable`]);
    /// panics when it is installed but fails to start.
    pub fn start(version: OpenSsh, extra_config: &[&str]) -> Option<Sshd> {
        let sshd = require(version.server())?;
        let libexec = match version {
            OpenSsh::V9_2 => None,
            OpenSsh::V10_0 => Some(require(Peer::Sshd100Libexec)?),
        };
        let dir = TempDir::new("sshd");
        let host_keys = vec![
            keygen(dir.path(), "ssh_host_ed25519_key", "ed25519")?,
            Self::rsa_host_key(dir.path())?,
            keygen(dir.path(), "ssh_host_ecdsa_key", "ecdsa")?,
        ];
        let authorized_keys = dir.join("authorized_keys");
        fs::write(&authorized_keys, "").expect("create authorized_keys");
        // sshd refuses to start without its privilege separation folder. Creating it needs
        // root, as does running sshd as these tests do; a failure shows up in sshd's log.
        let _ = fs::create_dir_all("/run/sshd");

        let config_path = dir.join("sshd_config");
        let pid_file = dir.join("sshd.pid");
        let (before_match, match_blocks) = split_at_match(extra_config);
        let make_command = |port: u16| {
            let mut lines: Vec<String> = before_match.iter().map(|l| l.to_string()).collect();
            lines.extend(["ListenAddress 127.0.0.1".to_owned(), format!("Port {port}")]);
            lines.extend(
                host_keys
                    .iter()
                    .map(|k| format!("HostKey {}", k.private_key.display())),
            );
            lines.extend([
                format!("PidFile {}", pid_file.display()),
                format!("AuthorizedKeysFile {}", authorized_keys.display()),
                "StrictModes no".to_owned(),
                "UsePAM no".to_owned(),
                "PasswordAuthentication no".to_owned(),
                "LogLevel DEBUG3".to_owned(),
            ]);
            if let Some(libexec) = &libexec {
                // 10.0 splits sshd into a listener that starts these two per connection;
                // their compiled-in paths are under /usr/lib/openssh, where 9.2 lives.
                lines.push(format!(
                    "SshdSessionPath {}",
                    libexec.join("sshd-session").display()
                ));
                lines.push(format!(
                    "SshdAuthPath {}",
                    libexec.join("sshd-auth").display()
                ));
            }
            lines.extend(match_blocks.iter().map(|l| l.to_string()));
            let mut text = lines.join("\n");
            text.push('\n');
            fs::write(&config_path, text).expect("write sshd_config");
            let mut command = Command::new(&sshd);
            command.args(["-D", "-e", "-f"]).arg(&config_path);
            command
        };
        let server = Server::start(
            &format!("sshd {}", version.version_prefix()),
            dir,
            make_command,
            |port| format!("Server listening on 127.0.0.1 port {port}."),
        );
        fs::write(
            server.dir.join("known_hosts"),
            server.known_hosts(&host_keys),
        )
        .expect("write known_hosts");
        Some(Sshd {
            version,
            host_keys,
            config_path,
            server,
        })
    }

    fn rsa_host_key(dir: &Path) -> Option<KeyPair> {
        let (private, public) = shared_rsa_host_key()?;
        let private_key = dir.join("ssh_host_rsa_key");
        fs::write(&private_key, private).expect("write RSA host key");
        // sshd ignores a private key that others can read.
        fs::set_permissions(&private_key, fs::Permissions::from_mode(0o600))
            .expect("chmod RSA host key");
        fs::write(dir.join("ssh_host_rsa_key.pub"), format!("{public}\n"))
            .expect("write RSA host key");
        Some(read_key_pair(private_key))
    }

    /// Which OpenSSH this is.
    pub fn version(&self) -> OpenSsh {
        self.version
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Its temp folder, for files a test wants to put beside it.
    pub fn dir(&self) -> &Path {
        self.server.dir.path()
    }

    /// The config file it was started with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Everything it has logged so far (listener and sessions).
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// Waits until its log contains `needle`; false if it did not within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        self.server.wait_for_log(needle, timeout)
    }

    /// Its host keys: Ed25519, RSA and ECDSA (P-256), in that order.
    pub fn host_keys(&self) -> &[KeyPair] {
        &self.host_keys
    }

    /// The host key whose public key line starts with `algorithm` (`ssh-ed25519`,
    /// `ssh-rsa`, `ecdsa-sha2-nistp256`).
    pub fn host_key(&self, algorithm: &str) -> Option<&KeyPair> {
        self.host_keys.iter().find(|k| k.algorithm == algorithm)
    }

    /// A `known_hosts` file (in its folder) that names all its host keys.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.server.dir.join("known_hosts")
    }

    /// The `authorized_keys` file it reads for every user.
    pub fn authorized_keys_path(&self) -> PathBuf {
        self.server.dir.join("authorized_keys")
    }

    /// Lets `public_key` (one `authorized_keys` line) log in, as any user.
    pub fn authorize(&self, public_key: &str) {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(self.authorized_keys_path())
            .expect("open authorized_keys");
        writeln!(file, "{}", public_key.trim()).expect("append to authorized_keys");
    }

    /// An OpenSSH client command that logs in to this server as the current user with
    /// `identity`, checks the host key against [`Self::known_hosts_path`], and reads no
    /// user or system config. `options` (such as `["-v", "-o", "Ciphers=aes128-ctr"]`)
    /// come first, so they override the harness's choices: `ssh` keeps the first value it
    /// reads of each option. Add a remote command with `.arg(...)`.
    pub fn ssh_command(&self, ssh: &Path, identity: &KeyPair, options: &[&str]) -> Command {
        let mut command = Command::new(ssh);
        command
            .args(options)
            .args(["-F", "none", "-p", &self.port().to_string(), "-i"])
            .arg(&identity.private_key)
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
            .args(["-o", "StrictHostKeyChecking=yes", "-o"])
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts_path().display()
            ))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .arg(format!("{}@127.0.0.1", current_user()));
        command
    }
}

/// Splits sshd config lines at the first `Match` line, which must come after every global
/// option.
fn split_at_match<'a>(lines: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
    let at = lines
        .iter()
        .position(|l| {
            l.trim_start()
                .get(..6)
                .is_some_and(|w| w.eq_ignore_ascii_case("match "))
        })
        .unwrap_or(lines.len());
    (lines[..at].to_vec(), lines[at..].to_vec())
}

/// A Dropbear server on a free loopback port, in its own temp folder with its own Ed25519
/// host key and log. Killed, with its sessions, when dropped.
///
/// Dropbear reads only `~USER/.ssh/authorized_keys` and has no option to change that, so
/// logging in needs a user whose home a test controls; this harness does not make one.
#[derive(Debug)]
pub struct Dropbear {
    host_key: KeyPair,
    server: Server,
}

impl Dropbear {
    /// Starts `dropbear -F -E -s -p 127.0.0.1:PORT -r KEY -P PIDFILE EXTRA_ARGS...`.
    /// Returns `None` when Dropbear is not installed outside CI (see [`unavailable`]);
    /// panics when it is installed but fails to start.
    pub fn start(extra_args: &[&str]) -> Option<Dropbear> {
        Dropbear::start_inner(extra_args, false)
    }

    /// Like [`Dropbear::start`] without `-s`, so that password logins are allowed too.
    /// Dropbear checks them against the system's password database, so they need a
    /// [`SystemUser`] with a password.
    pub fn start_allowing_passwords(extra_args: &[&str]) -> Option<Dropbear> {
        Dropbear::start_inner(extra_args, true)
    }

    fn start_inner(extra_args: &[&str], passwords: bool) -> Option<Dropbear> {
        let dropbear = require(Peer::Dropbear)?;
        let dropbearkey = require(Peer::Dropbearkey)?;
        let dir = TempDir::new("dropbear");
        let key_path = dir.join("dropbear_ed25519_host_key");
        let out = run(
            Command::new(&dropbearkey)
                .args(["-t", "ed25519", "-f"])
                .arg(&key_path),
            Duration::from_secs(30),
        );
        assert!(out.success(), "dropbearkey failed: {out}");
        // `dropbearkey -y` prints the public key among other lines.
        let out = run(
            Command::new(&dropbearkey)
                .arg("-y")
                .arg("-f")
                .arg(&key_path),
            Duration::from_secs(30),
        );
        assert!(out.success(), "dropbearkey -y failed: {out}");
        let public_key = out
            .stdout_text()
            .lines()
            .find(|l| l.starts_with("ssh-"))
            .unwrap_or_else(|| panic!("no public key in dropbearkey -y output: {out}"))
            .to_owned();
        let host_key = KeyPair {
            algorithm: "ssh-ed25519".to_owned(),
            private_key: key_path.clone(),
            public_key,
        };
        let pid_file = dir.join("dropbear.pid");
        let make_command = |port: u16| {
            let mut command = Command::new(&dropbear);
            command.args(["-F", "-E"]);
            if !passwords {
                command.arg("-s");
            }
            command
                .args(["-p", &format!("127.0.0.1:{port}"), "-r"])
                .arg(&key_path)
                .arg("-P")
                .arg(&pid_file)
                .args(extra_args);
            command
        };
        // Dropbear binds its ports before it logs this line; waiting for the line rather
        // than probing with a connection keeps a stray session out of the log.
        let server = Server::start("dropbear", dir, make_command, |_| {
            "Not backgrounding".to_owned()
        });
        fs::write(
            server.dir.join("known_hosts"),
            server.known_hosts([&host_key]),
        )
        .expect("write known_hosts");
        Some(Dropbear { host_key, server })
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Its temp folder.
    pub fn dir(&self) -> &Path {
        self.server.dir.path()
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// Waits until its log contains `needle`; false if it did not within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        self.server.wait_for_log(needle, timeout)
    }

    /// Its Ed25519 host key (the private key file is in Dropbear's format).
    pub fn host_key(&self) -> &KeyPair {
        &self.host_key
    }

    /// A `known_hosts` file (in its folder) that names its host key.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.server.dir.join("known_hosts")
    }
}

/// A throwaway system account, for servers that check logins against the system: a
/// password login to sshd or Dropbear, and Dropbear's keys, which it reads only from
/// `~USER/.ssh/authorized_keys`. Its home is in a temp folder, its password is set with
/// `chpasswd`, and `userdel -r` removes it, home included, when dropped.
///
/// Creating accounts needs root, which the interop tests have, in CI too. Drop the
/// servers a test logged in to before the user: `userdel` refuses to remove an account
/// whose processes still run, and declaring the user first makes Rust drop it last.
#[derive(Debug)]
pub struct SystemUser {
    name: String,
    password: String,
    home: PathBuf,
    uid: u32,
    gid: u32,
    // Dropped after the account is gone.
    _dir: TempDir,
}

impl SystemUser {
    /// Creates an account with a fresh name (`itest` and digits), the shell `/bin/sh`,
    /// which Dropbear requires to be listed in `/etc/shells`, and `password`. Returns
    /// `None` (or panics under CI) when not running as root or the tools are missing.
    pub fn create(password: &str) -> Option<SystemUser> {
        const TOOLS: [&str; 3] = [
            "/usr/sbin/useradd",
            "/usr/sbin/userdel",
            "/usr/sbin/chpasswd",
        ];
        if let Some(missing) = TOOLS.iter().find(|t| !Path::new(t).exists()) {
            return unavailable(&format!("{missing} missing (Debian's passwd package)"));
        }
        if current_user() != "root" {
            return unavailable("creating a system user needs root");
        }
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = TempDir::new("user");
        for _ in 0..20 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            // At most 32 characters, as useradd requires.
            let name = format!("itest{}n{n}", std::process::id());
            let home = dir.join(&name);
            let out = run(
                Command::new("/usr/sbin/useradd")
                    .args(["-m", "-s", "/bin/sh", "-d"])
                    .arg(&home)
                    .arg(&name),
                Duration::from_secs(30),
            );
            // 9: the name is taken, by an account a killed test run left behind.
            if out.status.code() == Some(9) {
                continue;
            }
            assert!(out.success(), "useradd failed: {out}");
            let user = SystemUser {
                uid: id_number(&name, "-u"),
                gid: id_number(&name, "-g"),
                name,
                password: password.to_owned(),
                home,
                _dir: dir,
            };
            let out = run_with_input(
                &mut Command::new("/usr/sbin/chpasswd"),
                Some(format!("{}:{password}\n", user.name).as_bytes()),
                Duration::from_secs(30),
            );
            assert!(out.success(), "chpasswd failed: {out}");
            return Some(user);
        }
        panic!("no free user name for a throwaway account");
    }

    /// The account's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The password it was created with.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Its home folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Adds one line to `~/.ssh/authorized_keys`, creating the folder and file as the
    /// user's own, not writable by others: Dropbear ignores the file otherwise.
    pub fn authorize(&self, public_key: &str) {
        let ssh_dir = self.home.join(".ssh");
        fs::create_dir_all(&ssh_dir).expect("create ~/.ssh");
        fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700)).expect("chmod ~/.ssh");
        let path = ssh_dir.join("authorized_keys");
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open ~/.ssh/authorized_keys");
        writeln!(file, "{}", public_key.trim()).expect("append to authorized_keys");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .expect("chmod authorized_keys");
        for owned in [&ssh_dir, &path] {
            std::os::unix::fs::chown(owned, Some(self.uid), Some(self.gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", owned.display()));
        }
    }
}

impl Drop for SystemUser {
    fn drop(&mut self) {
        // -f: a session a killed server left behind must not keep the account alive.
        let out = run(
            Command::new("/usr/sbin/userdel")
                .args(["-r", "-f"])
                .arg(&self.name),
            Duration::from_secs(30),
        );
        // 12: the home could not be removed (it may be gone already); the account is.
        if !out.success() && out.status.code() != Some(12) {
            let _ = writeln!(
                std::io::stderr(),
                "could not remove the throwaway user {}: {out}",
                self.name
            );
        }
    }
}

/// A user or group id from `id`.
fn id_number(name: &str, flag: &str) -> u32 {
    let out = run(
        Command::new("id").arg(flag).arg(name),
        Duration::from_secs(10),
    );
    assert!(out.success(), "{out}");
    out.stdout_text()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("odd id output: {out}"))
}

/// A real `ssh-agent` (`ssh-agent -D -a SOCKET`) in its own temp folder, killed when
/// dropped.
#[derive(Debug)]
pub struct SshAgent {
    child: Child,
    socket: PathBuf,
    // Dropped last, after the process is gone.
    _dir: TempDir,
}

impl SshAgent {
    /// Starts an agent and waits for its socket. Returns `None` (or panics under CI) when
    /// `ssh-agent` or `ssh-add` is missing.
    pub fn start() -> Option<SshAgent> {
        let program = require(Peer::SshAgent)?;
        require(Peer::SshAdd)?;
        let dir = TempDir::new("agent");
        let socket = dir.join("agent.sock");
        let mut child = Command::new(program)
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start ssh-agent");
        let deadline = Instant::now() + START_TIMEOUT;
        while !socket.exists() {
            if Instant::now() >= deadline {
                kill_group(&mut child);
                let _ = child.wait();
                panic!("ssh-agent made no socket within {START_TIMEOUT:?}");
            }
            thread::sleep(Duration::from_millis(10));
        }
        Some(SshAgent {
            child,
            socket,
            _dir: dir,
        })
    }

    /// The socket clients use (`SSH_AUTH_SOCK`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Loads a private key file with `ssh-add`; panics if it fails.
    pub fn add(&self, private_key: &Path) {
        let ssh_add = require(Peer::SshAdd).expect("ssh-add was found when the agent started");
        let out = run(
            Command::new(ssh_add)
                .arg(private_key)
                .env("SSH_AUTH_SOCK", &self.socket),
            Duration::from_secs(30),
        );
        assert!(out.success(), "ssh-add failed: {out}");
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        kill_group(&mut self.child);
        let _ = self.child.wait();
    }
}

/// A script of this repository's `tests/peers` folder.
pub fn peer_script(name: &str) -> PathBuf {
    repo_root().join("tests/peers").join(name)
}

/// A server written in Python (asyncssh), run by the venv's interpreter from a script in
/// `tests/peers`, on a free loopback port in its own temp folder. The script must take
/// `--port N` and print `listening on 127.0.0.1 port N` once it listens. Killed when
/// dropped.
#[derive(Debug)]
pub struct PythonServer {
    server: Server,
}

impl PythonServer {
    /// Starts `PEER_PYTHON tests/peers/SCRIPT ARGS... --port N`. `args` gets the server's
    /// folder, to name files in it (`prepare` runs first, to write them). Returns `None`
    /// when the venv is missing outside CI.
    pub fn start(
        name: &str,
        script: &str,
        prepare: impl FnOnce(&Path),
        args: impl Fn(&Path) -> Vec<std::ffi::OsString>,
    ) -> Option<PythonServer> {
        let python = require(Peer::PeerPython)?;
        let dir = TempDir::new("python");
        prepare(dir.path());
        let dir_path = dir.path().to_path_buf();
        let script = peer_script(script);
        let make_command = |port: u16| {
            let mut command = Command::new(&python);
            command
                .arg("-u")
                .arg(&script)
                .args(args(&dir_path))
                .args(["--port", &port.to_string()]);
            command
        };
        let server = Server::start(name, dir, make_command, |port| {
            format!("listening on 127.0.0.1 port {port}")
        });
        Some(PythonServer { server })
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Its temp folder.
    pub fn dir(&self) -> &Path {
        self.server.dir.path()
    }

    /// Everything it has printed so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// Waits until its log contains `needle`; false if it did not within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        self.server.wait_for_log(needle, timeout)
    }

    /// A `known_hosts` line naming this server with `public_key` (its host key's line).
    pub fn known_hosts_line(&self, public_key: &str) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port(), public_key.trim())
    }
}

/// Writes an `SSH_ASKPASS` program at `path` that answers every question with `answer`
/// and appends each prompt to `path.log`, so a test can tell whether it was asked.
pub fn write_askpass(path: &Path, answer: &str) -> PathBuf {
    assert!(
        !answer.contains('\''),
        "the answer is written in single quotes"
    );
    let log = PathBuf::from(format!("{}.log", path.display()));
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\nprintf '%s\\n' '{answer}'\n",
        log.display()
    );
    fs::write(path, script).expect("write askpass program");
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).expect("chmod askpass");
    log
}

/// The `gateway` binary. `GATEWAY_BIN` names one to test (a release build, say);
/// otherwise it is built once per test process with the same cargo and profile that built
/// the running test. Cargo gives `CARGO_BIN_EXE_*` only to tests of the binary's own
/// package, so the path comes from cargo's JSON messages instead.
pub fn gateway_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        for var in ["GATEWAY_BIN", "CARGO_BIN_EXE_gateway"] {
            if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                return PathBuf::from(path);
            }
        }
        build_gateway()
    })
}

fn build_gateway() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args([
        "build",
        "--quiet",
        "-p",
        "gateway",
        "--bin",
        "gateway",
        "--message-format=json-render-diagnostics",
    ]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    // Cargo describes the running test to it in variables such as CARGO_PKG_NAME. Some
    // build scripts (ring's) rebuild when those change, so passing them on would rebuild
    // the whole dependency tree here, and again at the next plain `cargo build`.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let describes_the_test = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || [
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_ref());
        if describes_the_test {
            command.env_remove(name.as_ref());
        }
    }
    let out = command
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(out.status.success(), "cargo build -p gateway failed");
    let messages = String::from_utf8_lossy(&out.stdout);
    // One JSON object per line; the binary's artifact names its executable.
    let path = messages
        .lines()
        .filter(|l| l.contains(r#""reason":"compiler-artifact""#))
        .filter(|l| l.contains(r#""name":"gateway""#))
        .find_map(|l| {
            let rest = &l[l.find(r#""executable":""#)? + r#""executable":""#.len()..];
            Some(PathBuf::from(&rest[..rest.find('"')?]))
        })
        .unwrap_or_else(|| panic!("no gateway executable in cargo's messages:\n{messages}"));
    assert!(path.is_file(), "{} does not exist", path.display());
    path
}

/// The results of a test's cells (peer × method), printed as a table (visible with
/// `--nocapture`) and checked together, so that one failed cell does not hide the others.
#[derive(Debug)]
pub struct Cells {
    title: String,
    rows: Vec<(String, String, Result<String, String>)>,
}

impl Cells {
    pub fn new(title: &str) -> Cells {
        Cells {
            title: title.to_owned(),
            rows: Vec::new(),
        }
    }

    /// Adds a cell: `Ok` holds a short note for the table, `Err` everything needed to see
    /// why it failed.
    pub fn record(&mut self, peer: &str, method: &str, result: Result<String, String>) {
        self.rows.push((peer.to_owned(), method.to_owned(), result));
    }

    /// Prints the table and panics listing every failed cell, if any.
    pub fn finish(self) {
        // A table with no rows proves nothing: under CI every peer is there, so some
        // cell must have run.
        assert!(
            !self.rows.is_empty() || !in_ci(),
            "{}: no cell ran",
            self.title
        );
        let failed: Vec<_> = self.rows.iter().filter(|r| r.2.is_err()).collect();
        println!(
            "\n{}: {} passed, {} failed",
            self.title,
            self.rows.len() - failed.len(),
            failed.len()
        );
        let peer_width = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let method_width = self.rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        for (peer, method, result) in &self.rows {
            let (verdict, note) = match result {
                Ok(note) => ("ok  ", note.as_str()),
                Err(_) => ("FAIL", ""),
            };
            println!("  {verdict}  {peer:peer_width$}  {method:method_width$}  {note}");
        }
        assert!(
            failed.is_empty(),
            "{}: {} cells failed:\n\n{}",
            self.title,
            failed.len(),
            failed
                .iter()
                .map(|(peer, method, result)| format!(
                    "--- {peer} / {method}:\n{}",
                    result.as_ref().err().map_or("", String::as_str)
                ))
                .collect::<Vec<_>>()
                .join("\n\n")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquotes_printf_q_output() {
        assert_eq!(shell_unquote("/usr/sbin/sshd"), "/usr/sbin/sshd");
        assert_eq!(shell_unquote(r"/a\ b/c\'d"), "/a b/c'd");
        assert_eq!(shell_unquote("'/a b'"), "/a b");
    }

    #[test]
    fn match_blocks_go_last() {
        let (before, after) =
            split_at_match(&["RekeyLimit 256K", "Match User x", "X11Forwarding no"]);
        assert_eq!(before, ["RekeyLimit 256K"]);
        assert_eq!(after, ["Match User x", "X11Forwarding no"]);
        let (before, after) = split_at_match(&["MaxStartups 10"]);
        assert_eq!(before, ["MaxStartups 10"]);
        assert!(after.is_empty());
    }

    #[test]
    fn temp_dir_is_removed_on_drop() {
        let dir = TempDir::new("selftest");
        let path = dir.path().to_path_buf();
        fs::write(dir.join("file"), "x").expect("write");
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists());
    }
}
