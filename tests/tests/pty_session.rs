//! The `gateway` client as a person runs it: with no command, on a real pseudo-terminal
//! that is its controlling terminal, against OpenSSH 10.0's sshd. It must:
//!
//! - get the remote side a terminal (`tty` prints a `/dev/pts/` name) of the local size
//!   (33 rows, 101 columns), with `TERM` and the local terminal's modes (an interrupt key
//!   of ^B and an erase key of ^H, neither of them sshd's default), and exit with the
//!   shell's status (3);
//! - carry a resize of the local terminal (the kernel sends the client SIGWINCH) to the
//!   remote one while the shell runs: a remote loop waits for `stty size` to change and
//!   would never end if the window-change were lost;
//! - carry a resize just as well when the session's send window is used up (a channel
//!   request takes no window, RFC 4254 section 5.2): the remote shell stops reading its
//!   terminal and 2 MiB and more are typed, until the client stops taking keys;
//! - end at once on SIGHUP (as when its terminal goes away) and on SIGTERM, with status
//!   255 rather than killed by the signal, as ssh does;
//! - end with status 255 and one line saying so when the connection is lost mid-session;
//! - end with 128 + 9 when the remote shell is killed by SIGKILL;
//! - leave the local terminal's settings exactly as they were before it started, after
//!   each of those ways out (raw mode is undone).
//!
//! The client runs under util-linux's `setsid -c`, so the pseudo-terminal is its
//! controlling terminal and resizes reach it as they would from a terminal emulator.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use interop::forwarding::Reaper;
use interop::peers::{KeyPair, OpenSsh, Sshd, TempDir, current_user, gateway_binary, keygen};
use rustix::process::Signal;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{
    LocalModes, OptionalActions, SpecialCodeIndex, Winsize, tcgetattr, tcsetattr, tcsetwinsize,
};

/// sshd's window for a session channel: 64 packets of 32 KiB.
const SSHD_WINDOW: usize = 2 << 20;
/// Typing stops here if the client never stops taking keys.
const MOST_TYPED: usize = 8 << 20;
/// Typing that makes no progress for this long has filled the window.
const STALL: Duration = Duration::from_millis(500);

/// How long any one step (a login, a line of output, an exit) may take.
const STEP: Duration = Duration::from_secs(10);
/// How long the client may take to end after a stop signal: well under the 5 s drain
/// that forwards get, which an interactive session must not wait for.
const PROMPT: Duration = Duration::from_secs(3);
const TERM: &str = "vt220";
/// What [`Terminal::ready`] waits for: the shell's answer, not the echo of the line typed.
const READY: &str = "@@ready 42\n";

/// sshd and the client's key and `HOME`.
struct Server {
    sshd: Sshd,
    key: KeyPair,
    home: TempDir,
}

impl Server {
    fn start() -> Option<Server> {
        // At sshd's DEBUG3, the session process writes debug lines on the session's
        // terminal before it starts the shell.
        let sshd = Sshd::start(OpenSsh::V10_0, &["LogLevel INFO"])?;
        let home = TempDir::new("pty-client");
        let key = keygen(home.path(), "id_ed25519", "ed25519")?;
        sshd.authorize(&key.public_key);
        Some(Server { sshd, key, home })
    }

    /// `gateway 127.0.0.1` with no command, checking the host key, never prompting.
    fn client(&self, terminal: &Terminal) -> Reaper {
        let tty = || File::from(terminal.slave.try_clone().expect("dup the terminal"));
        let mut command = Command::new("setsid");
        command
            .arg("-c")
            .arg(gateway_binary())
            .args(["-F", "none", "-o", "BatchMode=yes"])
            .args(["-o", "StrictHostKeyChecking=yes", "-o"])
            .arg(format!(
                "UserKnownHostsFile={}",
                self.sshd.known_hosts_path().display()
            ))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .args(["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-i"])
            .arg(&self.key.private_key)
            .args(["-p", &self.sshd.port().to_string(), "-l", current_user()])
            .arg("127.0.0.1")
            .env("HOME", self.home.path())
            .env("TERM", TERM)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::from(tty()))
            .stdout(Stdio::from(tty()))
            .stderr(Stdio::from(tty()));
        Reaper::spawn(&mut command, "the gateway client under setsid")
    }
}

/// A pseudo-terminal: the side the test reads and types on, and a descriptor of the
/// terminal itself kept open to read its settings.
struct Terminal {
    master: File,
    slave: OwnedFd,
    output: Vec<u8>,
}

impl Terminal {
    /// A terminal of 33 rows and 101 columns, whose interrupt key is ^B and erase key ^H.
    fn open() -> Terminal {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = rustix::fs::open(
            name.as_c_str(),
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY,
            rustix::fs::Mode::empty(),
        )
        .expect("open the terminal");
        let flags = rustix::fs::fcntl_getfl(&master).expect("master flags");
        rustix::fs::fcntl_setfl(&master, flags | rustix::fs::OFlags::NONBLOCK)
            .expect("non-blocking master");
        let mut modes = tcgetattr(&slave).expect("tcgetattr");
        modes.special_codes[SpecialCodeIndex::VINTR] = 0x02;
        modes.special_codes[SpecialCodeIndex::VERASE] = 0x08;
        tcsetattr(&slave, OptionalActions::Now, &modes).expect("tcsetattr");
        let terminal = Terminal {
            master: File::from(master),
            slave,
            output: Vec::new(),
        };
        terminal.resize(33, 101);
        terminal
    }

    fn resize(&self, rows: u16, cols: u16) {
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        tcsetwinsize(&self.master, size).expect("TIOCSWINSZ");
    }

    /// The terminal's settings, as text to compare.
    fn settings(&self) -> String {
        format!("{:?}", tcgetattr(&self.slave).expect("tcgetattr"))
    }

    fn raw(&self) -> bool {
        !tcgetattr(&self.slave)
            .expect("tcgetattr")
            .local_modes
            .contains(LocalModes::ICANON)
    }

    /// Takes what the client wrote so far.
    fn read_available(&mut self) {
        let mut chunk = [0u8; 4096];
        loop {
            match rustix::io::read(self.master.as_fd(), &mut chunk) {
                Ok(0) => return,
                Ok(n) => self.output.extend_from_slice(&chunk[..n]),
                // EAGAIN when nothing waits; EIO once no one has the terminal open.
                Err(_) => return,
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).replace('\r', "")
    }

    /// What the terminal showed after the last `marker`; empty if it never showed it.
    fn text_after(&self, marker: &str) -> String {
        let text = self.text();
        text.rfind(marker)
            .map_or_else(String::new, |at| text[at + marker.len()..].to_owned())
    }

    /// The lines shown after the last `marker`, without escape sequences (bash turns
    /// bracketed paste on and off around each prompt) and without blank lines.
    fn lines_after(&self, marker: &str) -> Vec<String> {
        let mut plain = String::new();
        let after = self.text_after(marker);
        let mut chars = after.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' && chars.next_if_eq(&'[').is_some() {
                // A CSI sequence ends with its first letter or other final byte.
                while chars.next().is_some_and(|c| !('@'..='~').contains(&c)) {}
            } else {
                plain.push(c);
            }
        }
        plain
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Turns off the remote shell's prompt, so that nothing but what is asked for shows
    /// on the terminal, and waits until the shell has taken that in: it shows [`READY`].
    fn ready(&mut self) {
        self.type_line(r#"PS1=; echo "@@ready $((6 * 7))""#);
        self.wait_for_text(READY);
    }

    fn type_line(&mut self, line: &str) {
        // Enter sends a carriage return, which the remote terminal turns into a newline.
        let bytes = format!("{line}\r");
        let mut rest = bytes.as_bytes();
        while !rest.is_empty() {
            match rustix::io::write(self.master.as_fd(), rest) {
                Ok(n) => rest = &rest[n..],
                Err(rustix::io::Errno::AGAIN) => self.wait(Duration::from_millis(10)),
                Err(e) => panic!("typing on the terminal: {e}"),
            }
        }
    }

    /// Types `x` until the terminal takes no more for [`STALL`], or [`MOST_TYPED`] bytes
    /// went in; returns how many did.
    fn type_until_full(&mut self) -> usize {
        let chunk = [b'x'; 64 << 10];
        let (mut typed, mut progress) = (0, Instant::now());
        while typed < MOST_TYPED && progress.elapsed() < STALL {
            match rustix::io::write(self.master.as_fd(), &chunk) {
                Ok(n) => {
                    typed += n;
                    progress = Instant::now();
                }
                Err(rustix::io::Errno::AGAIN) => self.wait(Duration::from_millis(10)),
                Err(e) => panic!("typing on the terminal: {e}"),
            }
        }
        typed
    }

    fn wait(&mut self, pause: Duration) {
        thread::sleep(pause);
        self.read_available();
    }

    /// Waits until `done` holds, reading output meanwhile; the failure says what was seen.
    fn wait_until(&mut self, what: &str, mut done: impl FnMut(&mut Terminal) -> bool) {
        let deadline = Instant::now() + STEP;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen within {STEP:?}; the terminal showed:\n{}",
                self.text()
            );
            self.wait(Duration::from_millis(20));
        }
    }

    fn wait_for_text(&mut self, needle: &str) {
        self.wait_until(&format!("{needle:?} on the terminal"), |t| {
            t.text().contains(needle)
        });
    }

    /// Waits for the client to exit, taking its last output.
    fn wait_exit(&mut self, client: &mut Reaper, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            self.read_available();
            if let Ok(Some(status)) = client.0.try_wait() {
                self.read_available();
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the client did not exit within {timeout:?}; the terminal showed:\n{}",
                self.text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts the client on a fresh terminal and waits until it has the terminal in raw
/// mode, which it enters once logged in; the settings from before it started come back
/// with the terminal.
fn start(server: &Server) -> (Terminal, Reaper, String) {
    let mut terminal = Terminal::open();
    let before = terminal.settings();
    let mut client = server.client(&terminal);
    terminal.wait_until("raw mode on the local terminal", |t| {
        t.raw() || !client.alive()
    });
    assert!(
        client.alive(),
        "the client exited before its session started:\n{}",
        terminal.text()
    );
    (terminal, client, before)
}

/// Waits up to `timeout` for the client to exit, which must be with `code`, and checks
/// that the local terminal's settings are back to `before`. A failure names the caller's
/// line, which says which way out failed.
#[track_caller]
fn ends_with(
    terminal: &mut Terminal,
    client: &mut Reaper,
    before: &str,
    timeout: Duration,
    code: i32,
) {
    let status = terminal.wait_exit(client, timeout);
    assert_eq!(
        status.code(),
        Some(code),
        "the client exited with {status}; the terminal showed:\n{}",
        terminal.text()
    );
    assert_eq!(
        terminal.settings(),
        before,
        "the local terminal was left changed"
    );
}

#[test]
fn interactive_session_on_a_pty() {
    let Some(server) = Server::start() else {
        return;
    };

    // A terminal of the local size, type and modes, and the shell's exit status.
    let (mut terminal, mut client, before) = start(&server);
    terminal.type_line(concat!(
        r#"echo "@@size $(stty size)"; echo "@@tty $(tty)"; echo "@@term $TERM"; "#,
        r#"stty -a | tr ';' '\n' | sed -n 's/^ *\(intr\|erase\) = /@@\1 /p'; exit 3"#
    ));
    ends_with(&mut terminal, &mut client, &before, STEP, 3);
    let text = terminal.text();
    let log = server.sshd.log();
    for expected in [
        "@@size 33 101\n",
        "@@tty /dev/pts/",
        &format!("@@term {TERM}\n"),
        "@@intr ^B\n",
        "@@erase ^H\n",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing; the terminal showed:\n{text}\nsshd's log:\n{log}"
        );
    }

    // A resize while the shell runs.
    let (mut terminal, mut client, before) = start(&server);
    terminal.type_line(concat!(
        r#"echo "@@before $(stty size)"; "#,
        r#"while [ "$(stty size)" = "33 101" ]; do sleep 0.05; done; "#,
        r#"echo "@@after $(stty size)"; exit 0"#
    ));
    terminal.wait_for_text("@@before 33 101\n");
    terminal.resize(40, 120);
    terminal.wait_for_text("@@after 40 120\n");
    ends_with(&mut terminal, &mut client, &before, STEP, 0);

    // A resize with the send window used up: the remote terminal is raw, without echo,
    // and nothing reads it.
    let (mut terminal, mut client, before) = start(&server);
    terminal.type_line(concat!(
        r#"stty raw -echo; echo "@@raw $((6 * 7))"; "#,
        r#"while [ "$(stty size)" = "33 101" ]; do sleep 0.05; done; "#,
        r#"stty sane; echo "@@after $(stty size)"; exit 0"#
    ));
    terminal.wait_for_text("@@raw 42\n");
    let typed = terminal.type_until_full();
    assert!(
        (SSHD_WINDOW..MOST_TYPED).contains(&typed),
        "{typed} bytes typed before the client stopped taking keys; \
         expected sshd's whole window and a bounded amount more"
    );
    terminal.resize(40, 120);
    terminal.wait_for_text("@@after 40 120\n");
    ends_with(&mut terminal, &mut client, &before, STEP, 0);
}

/// Every way out other than the shell's own `exit`, each on a fresh terminal, with the
/// exit status ssh gives and what the client writes on its way out:
///
/// - SIGHUP, as when the terminal goes away, and SIGTERM: the client ends at once (not
///   after the 5 s drain that forwards get) with status 255 rather than killed by the
///   signal, and writes nothing, as ssh does at its default log level;
/// - the connection lost mid-session (the sshd process serving it is killed): status
///   255 and one line that says so;
/// - the remote shell killed by a signal (SIGKILL): status 128 + 9, and nothing written.
///
/// Each case also checks that the local terminal's settings are exactly as before, so
/// raw mode was undone on that way out too.
#[test]
fn every_way_out_restores_the_terminal() {
    let Some(server) = Server::start() else {
        return;
    };

    for (name, signal) in [("SIGHUP", Signal::HUP), ("SIGTERM", Signal::TERM)] {
        let (mut terminal, mut client, before) = start(&server);
        terminal.ready();
        let pid = rustix::process::Pid::from_child(&client.0);
        rustix::process::kill_process(pid, signal).expect("send the signal");
        // Well within the drain, so an end that waited for it fails here.
        ends_with(&mut terminal, &mut client, &before, PROMPT, 255);
        let written = terminal.lines_after(READY);
        assert!(
            written.is_empty(),
            "the client wrote {written:?} after {name}; ssh writes nothing"
        );
    }

    // The connection lost: the shell's parent is the sshd process that carries the
    // session, and killing it closes the connection with no SSH message.
    let (mut terminal, mut client, before) = start(&server);
    // The quote keeps the echo of the typed line from matching the marker.
    terminal.type_line(r#"PS1=; echo "@@serving" $PPID"#);
    terminal.wait_until("sshd's process number", |t| {
        t.text_after("@@serving ").contains('\n')
    });
    let serving = terminal.text_after("@@serving ");
    let serving = serving.lines().next().unwrap_or_default();
    let serving = rustix::process::Pid::from_raw(serving.trim().parse().expect("a number"))
        .expect("a process number");
    rustix::process::kill_process(serving, Signal::KILL).expect("kill sshd's process");
    ends_with(&mut terminal, &mut client, &before, STEP, 255);
    let written = terminal.lines_after("@@serving ");
    // Either way ssh words it, as the connection ends with a FIN or with a reset.
    let lost = [
        "gateway: Connection to 127.0.0.1 closed by remote host.",
        "gateway: Read from remote host 127.0.0.1: Connection reset by peer",
    ];
    assert!(
        written.len() == 2 && lost.contains(&written[1].as_str()),
        "expected the process number and then one line of {lost:?}; \
         the client wrote {written:?}"
    );

    // The remote shell killed by SIGKILL.
    let (mut terminal, mut client, before) = start(&server);
    terminal.ready();
    terminal.type_line("kill -9 $$");
    ends_with(&mut terminal, &mut client, &before, STEP, 128 + 9);
    let written = terminal.lines_after(READY);
    // The shell's end is told by the status alone: the client itself did not fail.
    assert!(
        written.iter().all(|line| line == "kill -9 $$"),
        "the client wrote {written:?} after the shell was killed"
    );
}
