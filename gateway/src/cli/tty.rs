//! The terminal in raw mode for an interactive session, put back on every way out.

use rustix::termios::{OptionalActions, Termios, tcgetattr, tcsetattr};

/// While alive, the terminal on stdin is in raw mode: keys go to the remote side as
/// typed, with no local echo or line editing. Dropping it restores the old settings, so
/// an error return or a panic unwinding leaves the terminal usable.
#[derive(Debug)]
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Raw mode on stdin if it is a terminal; `None` otherwise.
    pub fn enter() -> Option<RawMode> {
        let stdin = rustix::stdio::stdin();
        let saved = tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(stdin, OptionalActions::Drain, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(rustix::stdio::stdin(), OptionalActions::Drain, &self.saved);
    }
}
