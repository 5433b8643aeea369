//! Asking the user for passphrases, passwords and yes/no answers, as ssh does: on the
//! terminal without echo, or through an `SSH_ASKPASS` program, or not at all in batch
//! mode.
//!
//! `SSH_ASKPASS_REQUIRE` chooses as in ssh(1): `never` uses the terminal only, `prefer`
//! uses the askpass program whenever `SSH_ASKPASS` names one, `force` uses it even with a
//! terminal. Otherwise the askpass program is used only when there is no terminal and a
//! display (`DISPLAY` or `WAYLAND_DISPLAY`) is set.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
use zeroize::Zeroizing;

/// ssh's default askpass program, used when `SSH_ASKPASS` is unset but one is needed.
const DEFAULT_ASKPASS: &str = "/usr/bin/ssh-askpass";

/// Why no answer came.
#[derive(Debug)]
pub enum PromptError {
    /// Batch mode: nothing may be asked.
    Batch,
    /// No terminal to ask on and no askpass program to use.
    NoTerminal,
    /// The user gave up (end of input, or the askpass program failed).
    Cancelled,
    Io(io::Error),
}

impl std::fmt::Display for PromptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Batch => write!(f, "cannot ask in batch mode"),
            Self::NoTerminal => write!(f, "no terminal to ask on and no SSH_ASKPASS program"),
            Self::Cancelled => write!(f, "cancelled"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PromptError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Askpass {
    Never,
    Prefer,
    Force,
    /// Only without a terminal and with a display.
    Default,
}

/// Where answers come from.
#[derive(Clone, Debug)]
pub struct Prompter {
    batch: bool,
    askpass: Askpass,
    program: Option<String>,
    display: bool,
}

impl Prompter {
    /// Reads `SSH_ASKPASS`, `SSH_ASKPASS_REQUIRE` and the display variables. With `batch`
    /// set (ssh's BatchMode) every question fails at once.
    pub fn from_env(batch: bool) -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let askpass = match var("SSH_ASKPASS_REQUIRE").as_deref() {
            Some("never") => Askpass::Never,
            Some("prefer") => Askpass::Prefer,
            Some("force") => Askpass::Force,
            _ => Askpass::Default,
        };
        Self {
            batch,
            askpass,
            program: var("SSH_ASKPASS"),
            display: var("DISPLAY").is_some() || var("WAYLAND_DISPLAY").is_some(),
        }
    }

    /// A prompter that never asks, for batch mode and tests.
    pub fn batch() -> Self {
        Self {
            batch: true,
            askpass: Askpass::Never,
            program: None,
            display: false,
        }
    }

    pub fn is_batch(&self) -> bool {
        self.batch
    }

    /// Asks for a secret: no echo on a terminal.
    pub fn secret(&self, prompt: &str) -> Result<Zeroizing<String>, PromptError> {
        self.ask(prompt, false, false)
    }

    /// Asks with the answer shown as typed (keyboard-interactive prompts that ask for it).
    pub fn visible(&self, prompt: &str) -> Result<Zeroizing<String>, PromptError> {
        self.ask(prompt, true, false)
    }

    /// Asks a yes/no question, as ssh asks about an unknown host key.
    pub fn confirm(&self, prompt: &str) -> Result<Zeroizing<String>, PromptError> {
        self.ask(prompt, true, true)
    }

    fn ask(
        &self,
        prompt: &str,
        echo: bool,
        confirm: bool,
    ) -> Result<Zeroizing<String>, PromptError> {
        if self.batch {
            return Err(PromptError::Batch);
        }
        let tty = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok();
        let use_askpass = match self.askpass {
            Askpass::Never => false,
            Askpass::Force => true,
            Askpass::Prefer => self.program.is_some(),
            Askpass::Default => tty.is_none() && self.display,
        };
        if use_askpass {
            let program = self.program.as_deref().unwrap_or(DEFAULT_ASKPASS);
            return askpass(program, prompt, confirm);
        }
        match tty {
            Some(tty) => read_from_terminal(tty, prompt, echo),
            None => Err(PromptError::NoTerminal),
        }
    }
}

/// Runs the askpass program with the prompt as its argument and reads one line.
fn askpass(program: &str, prompt: &str, confirm: bool) -> Result<Zeroizing<String>, PromptError> {
    let mut command = Command::new(program);
    command
        .arg(prompt)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if confirm {
        // ssh(1): tells the program that a yes/no answer is wanted.
        command.env("SSH_ASKPASS_PROMPT", "confirm");
    }
    let output = command.output().map_err(PromptError::Io)?;
    if !output.status.success() {
        return Err(PromptError::Cancelled);
    }
    let answer = Zeroizing::new(output.stdout);
    let text = std::str::from_utf8(&answer).map_err(|_| PromptError::Cancelled)?;
    Ok(Zeroizing::new(
        text.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

/// Writes the prompt to the terminal and reads a line, with echo off unless `echo`. The
/// terminal's modes are restored on every path out, errors included.
fn read_from_terminal(
    tty: File,
    prompt: &str,
    echo: bool,
) -> Result<Zeroizing<String>, PromptError> {
    let saved = if echo { None } else { tcgetattr(&tty).ok() };
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&tty, OptionalActions::Flush, &quiet).map_err(|e| PromptError::Io(e.into()))?;
    }
    let result = (|| {
        let mut out = &tty;
        out.write_all(prompt.as_bytes())?;
        out.flush()?;
        let mut line = Zeroizing::new(String::new());
        let n = BufReader::new(&tty).read_line(&mut line)?;
        Ok::<_, io::Error>((n, line))
    })();
    if let Some(saved) = &saved {
        let _ = tcsetattr(&tty, OptionalActions::Flush, saved);
        // The user's Enter was not echoed; end the line for them.
        let _ = (&tty).write_all(b"\n");
    }
    let (n, mut line) = result.map_err(PromptError::Io)?;
    if n == 0 {
        return Err(PromptError::Cancelled);
    }
    let keep = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(keep);
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_never_asks() {
        assert!(matches!(
            Prompter::batch().secret("x: "),
            Err(PromptError::Batch)
        ));
    }

    #[test]
    fn askpass_program_answers() {
        let dir = std::env::temp_dir().join(format!("gateway-askpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("askpass");
        std::fs::write(
            &script,
            "#!/bin/sh\necho \"answer to $1 $SSH_ASKPASS_PROMPT\"\n",
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap();
        let p = Prompter {
            batch: false,
            askpass: Askpass::Force,
            program: Some(script.to_string_lossy().into_owned()),
            display: false,
        };
        assert_eq!(
            p.secret("Passphrase:").unwrap().as_str(),
            "answer to Passphrase: "
        );
        assert_eq!(
            p.confirm("Sure?").unwrap().as_str(),
            "answer to Sure? confirm"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
