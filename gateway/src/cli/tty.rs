//! The local terminal of an interactive session: raw mode while the session runs, put back
//! on every way out.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, Once, TryLockError};

use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
use rustix::termios::{OptionalActions, Termios, tcgetattr, tcsetattr};

/// While alive, the terminal on stdin is in raw mode: keys go to the remote side as
/// typed, with no local echo or line editing. Dropping it restores the old settings.
///
/// The release build aborts on a panic, so no destructor runs then; a panic hook,
/// installed with the first raw mode, restores the terminal before the panic message is
/// printed. Every other way out of the client (an error, the end of a drain after a
/// signal) returns through the code that owns this guard.
#[derive(Debug)]
pub struct RawMode {
    _private: (),
}

/// What raw mode replaced, kept where the panic hook can reach it.
struct Saved {
    /// A duplicate of the terminal's descriptor, so it outlives any other use of stdin.
    terminal: OwnedFd,
    termios: Termios,
    /// The file status flags of stdin, stdout and stderr. The session makes them
    /// non-blocking and puts them back as it ends; after an abort, only the hook can, and
    /// a terminal left non-blocking breaks the shell that shares it.
    stdio_flags: [Option<OFlags>; 3],
}

static SAVED: Mutex<Option<Saved>> = Mutex::new(None);

/// The saved settings, or `None` if the lock is held: a panic on the thread that holds
/// it must not wait for itself. A poisoned lock still holds good settings.
fn saved() -> Option<MutexGuard<'static, Option<Saved>>> {
    match SAVED.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

impl RawMode {
    /// Raw mode on stdin if it is a terminal; `None` otherwise.
    pub fn enter() -> Option<RawMode> {
        Self::enter_on(rustix::stdio::stdin())
    }

    fn enter_on(terminal: BorrowedFd<'_>) -> Option<RawMode> {
        let termios = tcgetattr(terminal).ok()?;
        let mut raw = termios.clone();
        raw.make_raw();
        let terminal = rustix::io::fcntl_dupfd_cloexec(terminal, 3).ok()?;
        let stdio_flags = [
            fcntl_getfl(rustix::stdio::stdin()).ok(),
            fcntl_getfl(rustix::stdio::stdout()).ok(),
            fcntl_getfl(rustix::stdio::stderr()).ok(),
        ];
        install_panic_hook();
        let mut guard = saved()?;
        tcsetattr(&terminal, OptionalActions::Drain, &raw).ok()?;
        *guard = Some(Saved {
            terminal,
            termios,
            stdio_flags,
        });
        Some(RawMode { _private: () })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let Some(saved) = saved().and_then(|mut guard| guard.take()) else {
            return;
        };
        let _ = tcsetattr(&saved.terminal, OptionalActions::Drain, &saved.termios);
    }
}

/// Chains a hook in front of the one already set (the one that prints the message), once
/// per process.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_after_panic();
            previous(info);
        }));
    });
}

/// Puts the terminal back at once, without waiting for output to drain: a terminal
/// stopped with ^S would never drain, and the process is about to end.
fn restore_after_panic() {
    let Some(saved) = saved().and_then(|mut guard| guard.take()) else {
        return;
    };
    let _ = tcsetattr(&saved.terminal, OptionalActions::Now, &saved.termios);
    let streams = [
        rustix::stdio::stdin(),
        rustix::stdio::stdout(),
        rustix::stdio::stderr(),
    ];
    for (stream, flags) in streams.into_iter().zip(saved.stdio_flags) {
        if let Some(flags) = flags {
            let _ = fcntl_setfl(stream, flags);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use rustix::termios::LocalModes;
    use std::os::fd::AsFd;

    /// A fresh pseudo-terminal's two ends: the controlling side and the terminal.
    fn pty() -> (OwnedFd, OwnedFd) {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = rustix::fs::open(
            name.as_c_str(),
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY,
            rustix::fs::Mode::empty(),
        )
        .expect("open the pty");
        (master, slave)
    }

    /// Raw mode is left as an abort would leave it (no destructor), and a panic puts the
    /// terminal back all the same.
    #[test]
    fn a_panic_restores_the_terminal() {
        let (_master, slave) = pty();
        let before = format!("{:?}", tcgetattr(&slave).unwrap());
        let raw = RawMode::enter_on(slave.as_fd()).expect("raw mode on a pty");
        let during = tcgetattr(&slave).unwrap();
        assert!(!during.local_modes.contains(LocalModes::ICANON));
        std::mem::forget(raw);

        let panicked = std::panic::catch_unwind(|| panic!("on purpose, in raw mode"));
        assert!(panicked.is_err());
        assert_eq!(format!("{:?}", tcgetattr(&slave).unwrap()), before);
    }
}
