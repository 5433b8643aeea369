//! The local terminal of an interactive session: its modes, as `pty-req` carries them to
//! the server, and raw mode while the session runs, put back on every way out.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, Once, TryLockError};

use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
use rustix::termios::{
    ControlModes, InputModes, LocalModes, OptionalActions, OutputModes, SpecialCodeIndex, Termios,
    tcgetattr, tcsetattr,
};
use ssh_proto::connection::msg::TerminalOpcode;

/// While alive, the terminal on stdin is in raw mode: keys go to the remote side as
/// typed, with no local echo or line editing. Dropping it restores the old settings.
///
/// The release build aborts on a panic, so no destructor runs then; a panic hook,
/// installed with the first raw mode, restores the terminal before the panic message is
/// printed. Every other way out of the client (an error, a lost connection, a stop
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

/// The modes of the terminal on stdin, to send in `pty-req` so the remote terminal
/// starts out like the local one: the same interrupt, erase and end-of-file keys, echo,
/// signals and line editing. Empty when stdin is no terminal (the server's defaults).
pub fn terminal_modes() -> Vec<(TerminalOpcode, u32)> {
    terminal_modes_of(rustix::stdio::stdin())
}

fn terminal_modes_of(terminal: impl AsFd) -> Vec<(TerminalOpcode, u32)> {
    tcgetattr(terminal).map_or_else(|_| Vec::new(), |t| encode_modes(&t))
}

/// The special characters Linux has that RFC 4254 section 8 names.
const CHARACTERS: [(TerminalOpcode, SpecialCodeIndex); 14] = [
    (TerminalOpcode::VINTR, SpecialCodeIndex::VINTR),
    (TerminalOpcode::VQUIT, SpecialCodeIndex::VQUIT),
    (TerminalOpcode::VERASE, SpecialCodeIndex::VERASE),
    (TerminalOpcode::VKILL, SpecialCodeIndex::VKILL),
    (TerminalOpcode::VEOF, SpecialCodeIndex::VEOF),
    (TerminalOpcode::VEOL, SpecialCodeIndex::VEOL),
    (TerminalOpcode::VEOL2, SpecialCodeIndex::VEOL2),
    (TerminalOpcode::VSTART, SpecialCodeIndex::VSTART),
    (TerminalOpcode::VSTOP, SpecialCodeIndex::VSTOP),
    (TerminalOpcode::VSUSP, SpecialCodeIndex::VSUSP),
    (TerminalOpcode::VREPRINT, SpecialCodeIndex::VREPRINT),
    (TerminalOpcode::VWERASE, SpecialCodeIndex::VWERASE),
    (TerminalOpcode::VLNEXT, SpecialCodeIndex::VLNEXT),
    (TerminalOpcode::VDISCARD, SpecialCodeIndex::VDISCARD),
];

const INPUT: [(TerminalOpcode, InputModes); 13] = [
    (TerminalOpcode::IGNPAR, InputModes::IGNPAR),
    (TerminalOpcode::PARMRK, InputModes::PARMRK),
    (TerminalOpcode::INPCK, InputModes::INPCK),
    (TerminalOpcode::ISTRIP, InputModes::ISTRIP),
    (TerminalOpcode::INLCR, InputModes::INLCR),
    (TerminalOpcode::IGNCR, InputModes::IGNCR),
    (TerminalOpcode::ICRNL, InputModes::ICRNL),
    (TerminalOpcode::IUCLC, InputModes::IUCLC),
    (TerminalOpcode::IXON, InputModes::IXON),
    (TerminalOpcode::IXANY, InputModes::IXANY),
    (TerminalOpcode::IXOFF, InputModes::IXOFF),
    (TerminalOpcode::IMAXBEL, InputModes::IMAXBEL),
    (TerminalOpcode::IUTF8, InputModes::IUTF8),
];

const LOCAL: [(TerminalOpcode, LocalModes); 13] = [
    (TerminalOpcode::ISIG, LocalModes::ISIG),
    (TerminalOpcode::ICANON, LocalModes::ICANON),
    (TerminalOpcode::XCASE, LocalModes::XCASE),
    (TerminalOpcode::ECHO, LocalModes::ECHO),
    (TerminalOpcode::ECHOE, LocalModes::ECHOE),
    (TerminalOpcode::ECHOK, LocalModes::ECHOK),
    (TerminalOpcode::ECHONL, LocalModes::ECHONL),
    (TerminalOpcode::NOFLSH, LocalModes::NOFLSH),
    (TerminalOpcode::TOSTOP, LocalModes::TOSTOP),
    (TerminalOpcode::IEXTEN, LocalModes::IEXTEN),
    (TerminalOpcode::ECHOCTL, LocalModes::ECHOCTL),
    (TerminalOpcode::ECHOKE, LocalModes::ECHOKE),
    (TerminalOpcode::PENDIN, LocalModes::PENDIN),
];

const OUTPUT: [(TerminalOpcode, OutputModes); 6] = [
    (TerminalOpcode::OPOST, OutputModes::OPOST),
    (TerminalOpcode::OLCUC, OutputModes::OLCUC),
    (TerminalOpcode::ONLCR, OutputModes::ONLCR),
    (TerminalOpcode::OCRNL, OutputModes::OCRNL),
    (TerminalOpcode::ONOCR, OutputModes::ONOCR),
    (TerminalOpcode::ONLRET, OutputModes::ONLRET),
];

/// `termios` as the opcodes of RFC 4254 section 8. A flag's argument is 1 when it is set;
/// a character's is its code, or 255 for one that is disabled (Linux marks those with 0).
fn encode_modes(t: &Termios) -> Vec<(TerminalOpcode, u32)> {
    let mut modes = Vec::with_capacity(CHARACTERS.len() + 40);
    for (opcode, index) in CHARACTERS {
        let c = t.special_codes[index];
        modes.push((opcode, if c == 0 { 255 } else { u32::from(c) }));
    }
    let on = u32::from;
    for (opcode, flag) in INPUT {
        modes.push((opcode, on(t.input_modes.contains(flag))));
    }
    for (opcode, flag) in LOCAL {
        modes.push((opcode, on(t.local_modes.contains(flag))));
    }
    for (opcode, flag) in OUTPUT {
        modes.push((opcode, on(t.output_modes.contains(flag))));
    }
    // Servers apply CS7 and CS8 by setting or clearing those bits of the character size,
    // and CS7's bits are part of CS8's: CS8 goes first, then CS7 as "its bits are set",
    // which gives back both a 7-bit and an 8-bit terminal.
    let control = t.control_modes;
    let size = control & ControlModes::CSIZE;
    modes.push((TerminalOpcode::CS8, on(size == ControlModes::CS8)));
    modes.push((TerminalOpcode::CS7, on(size.contains(ControlModes::CS7))));
    modes.push((
        TerminalOpcode::PARENB,
        on(control.contains(ControlModes::PARENB)),
    ));
    modes.push((
        TerminalOpcode::PARODD,
        on(control.contains(ControlModes::PARODD)),
    ));
    modes.push((TerminalOpcode::TTY_OP_ISPEED, t.input_speed()));
    modes.push((TerminalOpcode::TTY_OP_OSPEED, t.output_speed()));
    modes
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

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

    fn value(modes: &[(TerminalOpcode, u32)], opcode: TerminalOpcode) -> Option<u32> {
        modes.iter().find(|(o, _)| *o == opcode).map(|(_, v)| *v)
    }

    #[test]
    fn modes_follow_the_terminal() {
        let (_master, slave) = pty();
        let mut t = tcgetattr(&slave).unwrap();
        t.special_codes[SpecialCodeIndex::VINTR] = 0x02;
        t.special_codes[SpecialCodeIndex::VERASE] = 0x08;
        t.special_codes[SpecialCodeIndex::VDISCARD] = 0;
        t.local_modes.insert(LocalModes::ECHO | LocalModes::ICANON);
        t.local_modes.remove(LocalModes::ISIG);
        t.input_modes.remove(InputModes::IXON);
        t.set_speed(9600).unwrap();
        tcsetattr(&slave, OptionalActions::Now, &t).unwrap();

        let modes = terminal_modes_of(&slave);
        let opcodes: Vec<TerminalOpcode> = modes.iter().map(|&(o, _)| o).collect();
        assert!(opcodes.iter().all(|o| o.has_argument()));
        assert_eq!(value(&modes, TerminalOpcode::VINTR), Some(2));
        assert_eq!(value(&modes, TerminalOpcode::VERASE), Some(8));
        assert_eq!(value(&modes, TerminalOpcode::VDISCARD), Some(255));
        assert_eq!(value(&modes, TerminalOpcode::ECHO), Some(1));
        assert_eq!(value(&modes, TerminalOpcode::ICANON), Some(1));
        assert_eq!(value(&modes, TerminalOpcode::ISIG), Some(0));
        assert_eq!(value(&modes, TerminalOpcode::IXON), Some(0));
        assert_eq!(value(&modes, TerminalOpcode::TTY_OP_ISPEED), Some(9600));
        assert_eq!(value(&modes, TerminalOpcode::TTY_OP_OSPEED), Some(9600));
    }

    /// Linux keeps a pseudo-terminal at 8 bits whatever is set, so the character size is
    /// checked on the settings alone.
    #[test]
    fn character_size_survives_a_server_applying_it_in_order() {
        let (_master, slave) = pty();
        let mut t = tcgetattr(&slave).unwrap();
        for (size, cs8, cs7) in [(ControlModes::CS8, 1, 1), (ControlModes::CS7, 0, 1)] {
            t.control_modes.remove(ControlModes::CSIZE);
            t.control_modes.insert(size);
            let modes = encode_modes(&t);
            let at = |opcode| modes.iter().position(|&(o, _)| o == opcode);
            assert!(at(TerminalOpcode::CS8) < at(TerminalOpcode::CS7));
            assert_eq!(value(&modes, TerminalOpcode::CS8), Some(cs8));
            assert_eq!(value(&modes, TerminalOpcode::CS7), Some(cs7));
        }
    }

    #[test]
    fn no_terminal_no_modes() {
        let null = std::fs::File::open("/dev/null").expect("open /dev/null");
        assert!(terminal_modes_of(&null).is_empty());
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
