//! The programs of every pairing: one listening sshd for the whole run, `gateway serve`
//! and the clients started afresh for each sample, and the far service they forward to.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use interop::forwarding::{Reaper, Serve, local_forward, wait_for_port};
use interop::peers::{self, KeyPair, OpenSsh, Peer, Sshd, TempDir, current_user, free_port};

use super::far::Far;
use super::procfs;
use super::{Client, Pairing, Server};

/// How long a closed sshd connection's processes may take to exit.
const SSHD_SESSION_EXIT: Duration = Duration::from_secs(10);

/// Everything that lives for the whole run.
#[derive(Debug)]
pub struct Lab {
    far: Far,
    ssh: PathBuf,
    sshd: Sshd,
    /// The listening sshd, whose children are the sessions.
    sshd_listener: u32,
    /// `gateway serve`'s folder: its host key, the client key and `authorized_keys`.
    serve_dir: TempDir,
    key: KeyPair,
    /// What stood in for what was asked for, to print with the results.
    pub notes: Vec<String>,
}

impl Lab {
    /// Starts the far service and OpenSSH 10.0's sshd (9.2's when 10.0 is not
    /// installed), and makes the client key that every server accepts.
    pub fn start() -> Result<Lab, String> {
        let far = Far::start().map_err(|e| format!("start the far service: {e}"))?;
        let mut notes = Vec::new();
        let ten = [Peer::Sshd100, Peer::Sshd100Libexec, Peer::Ssh100]
            .iter()
            .all(|&p| peers::find(p).is_ok());
        let version = if ten {
            OpenSsh::V10_0
        } else {
            notes.push(
                "OpenSSH 10.0 is not installed (tests/install-peers.sh does it); \
                 OpenSSH 9.2 stands in for it"
                    .to_owned(),
            );
            OpenSsh::V9_2
        };
        let ssh = version
            .ssh()
            .ok_or_else(|| format!("{} ssh is missing", version.version_prefix()))?;
        // The harness logs at DEBUG3 unless told otherwise, which would slow sshd down.
        let sshd = Sshd::start(version, &["LogLevel INFO"])
            .ok_or_else(|| format!("{} sshd is missing", version.version_prefix()))?;
        let sshd_listener = read_pid_file(&sshd)?;

        let serve_dir = TempDir::new("bench-serve");
        let key = peers::keygen(serve_dir.path(), "id_ed25519", "ed25519")
            .ok_or("ssh-keygen is missing")?;
        sshd.authorize(&key.public_key);
        let lab = Lab {
            far,
            ssh,
            sshd,
            sshd_listener,
            serve_dir,
            key,
            notes,
        };
        lab.wait_for_no_sessions()?;
        Ok(lab)
    }

    pub fn far(&self) -> &Far {
        &self.far
    }

    /// `ssh -V`'s answer, such as `OpenSSH_10.0p2 Debian-7~bpo12+1, OpenSSL 3.0.19 ...`.
    pub fn ssh_version(&self) -> String {
        Command::new(&self.ssh)
            .arg("-V")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stderr).trim().to_owned())
            .unwrap_or_else(|e| format!("unknown ({e})"))
    }

    /// The identification line sshd sends.
    pub fn sshd_version(&self) -> Result<String, String> {
        let banner = peers::server_banner(self.sshd.addr());
        // The probe leaves a session process behind for a moment.
        self.wait_for_no_sessions()?;
        Ok(banner)
    }

    /// Starts the pairing's server (unless it is the sshd already listening) and its
    /// client with `-L` to the far service, and waits until the forward listens.
    pub fn open(&self, pairing: Pairing, cipher: &str) -> Result<Forward, String> {
        let (serve, port) = match pairing.server {
            Server::Serve => {
                let permit = format!("127.0.0.1:{}", self.far.port());
                let serve = Serve::start_with(
                    self.serve_dir.path(),
                    &["--permit-open", &permit],
                    Stdio::inherit(),
                )
                .ok_or("gateway serve did not start")?;
                let port = serve.port;
                (Some(serve), port)
            }
            Server::Sshd => (None, self.sshd.port()),
        };
        let ciphers = format!("Ciphers={cipher}");
        let (client, local_port) = match pairing.client {
            Client::Gateway => local_forward(
                &self.key.private_key,
                port,
                self.far.port(),
                &["-o", &ciphers],
            ),
            Client::Ssh => self.ssh_forward(port, &ciphers),
        };
        Ok(Forward {
            client,
            serve,
            local_port,
            sshd_listener: (pairing.server == Server::Sshd).then_some(self.sshd_listener),
        })
    }

    /// `ssh -N -L local:127.0.0.1:far` against `port`, trusting any host key; listening.
    fn ssh_forward(&self, port: u16, ciphers: &str) -> (Reaper, u16) {
        let local = free_port();
        let mut command = Command::new(&self.ssh);
        command
            .args([
                "-F",
                "none",
                "-N",
                "-p",
                &port.to_string(),
                "-o",
                ciphers,
                "-i",
            ])
            .arg(&self.key.private_key)
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
            .args(["-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .args(["-o", "LogLevel=ERROR", "-o", "ExitOnForwardFailure=yes"])
            .args(["-L", &format!("{local}:127.0.0.1:{}", self.far.port())])
            .arg(format!("{}@127.0.0.1", current_user()))
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        let mut client = Reaper::spawn(&mut command, "ssh");
        wait_for_port(local, Some(&mut client), "ssh");
        (client, local)
    }

    /// Waits until the listening sshd has no session processes, so that the next
    /// sample's processes are all its own.
    fn wait_for_no_sessions(&self) -> Result<(), String> {
        wait_for_no_children(self.sshd_listener)
    }
}

/// One sample's forward: its client, and its server when that is not the shared sshd.
#[derive(Debug)]
pub struct Forward {
    // Declared first, so it is stopped first.
    client: Reaper,
    serve: Option<Serve>,
    local_port: u16,
    sshd_listener: Option<u32>,
}

impl Forward {
    /// The port the forward listens on.
    pub fn local_port(&self) -> u16 {
        self.local_port
    }

    pub fn client_pid(&self) -> u32 {
        self.client.id()
    }

    /// The processes serving this connection: `gateway serve` itself, or every process
    /// under the listening sshd (OpenSSH 10.0: two `sshd-session`s, the privileged
    /// monitor and the unprivileged child that forwards).
    pub fn server_pids(&self) -> Vec<u32> {
        match (&self.serve, self.sshd_listener) {
            (Some(serve), _) => vec![serve.process.id()],
            (None, Some(listener)) => procfs::descendants(listener),
            (None, None) => Vec::new(),
        }
    }

    /// Whether the client and `gateway serve` are still running.
    pub fn alive(&mut self) -> bool {
        self.client.alive() && self.serve.as_mut().is_none_or(|s| s.process.alive())
    }

    /// What the client wrote to stderr; it is stopped first.
    pub fn client_errors(&mut self) -> String {
        self.client.stderr_after_exit().trim().to_owned()
    }

    /// Stops the client and the server, and waits for sshd's session processes to go.
    pub fn close(self) -> Result<(), String> {
        let listener = self.sshd_listener;
        drop(self);
        listener.map_or(Ok(()), wait_for_no_children)
    }
}

fn wait_for_no_children(pid: u32) -> Result<(), String> {
    let deadline = Instant::now() + SSHD_SESSION_EXIT;
    loop {
        let left = procfs::descendants(pid);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "sshd's session processes {left:?} still run {SSHD_SESSION_EXIT:?} after \
                 their connection closed"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The listening sshd's pid, from its `PidFile`, which it writes just after it logs that
/// it listens.
fn read_pid_file(sshd: &Sshd) -> Result<u32, String> {
    let path = sshd.dir().join("sshd.pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return Ok(pid);
        }
        if Instant::now() >= deadline {
            return Err(format!("sshd wrote no pid to {}", path.display()));
        }
        thread::sleep(Duration::from_millis(20));
    }
}
