//! `gateway`: an SSH client and forwarding gateway. See `gateway help`.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // One line, as ssh prints its fatal errors, and ssh's exit status.
            eprintln!("gateway: {e}");
            ExitCode::from(255)
        }
    }
}
