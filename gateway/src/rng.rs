//! Randomness from the operating system, handed to the protocol core.

use ssh_proto::config::Rng;

/// The operating system's generator (`getrandom(2)` on Linux).
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&mut self, dest: &mut [u8]) {
        // The kernel's generator does not fail once the system has booted; if it ever
        // did, carrying on with predictable keys would be worse than stopping.
        if let Err(e) = getrandom::fill(dest) {
            panic!("the operating system's random generator failed: {e}");
        }
    }
}
