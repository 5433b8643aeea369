//! Client authentication as ssh does it: keys from the agent and from files (each key
//! queried before it is unlocked or used), then keyboard-interactive and password, in
//! the order of PreferredAuthentications, asking the user through a [`Prompter`].

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use ssh_proto::auth::client::{ClientAuth, ClientAuthEvent};
use ssh_proto::auth::msg::Method;
use ssh_proto::crypto::default_provider;
use ssh_proto::hostkey::{PublicKey, SignatureAlg};
use ssh_proto::transport::Event;
use ssh_proto::userkey::{PrivateKeyFile, UserKey, parse_public_key_line};
use zeroize::Zeroizing;

use crate::agent::AgentClient;
use crate::blocking::{BlockingConn, DriveError};
use crate::hostkeys::{expand_tilde, home_dir};
use crate::prompt::Prompter;
use crate::terminal_text;

/// ssh's NumberOfPasswordPrompts: tries per password and per key passphrase.
const PROMPT_TRIES: usize = 3;
/// Rounds of keyboard-interactive questions before giving up on the method.
const MAX_INFO_ROUNDS: usize = 16;

/// What the user asked for, in ssh_config(5) terms.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub user: String,
    /// IdentityFile and `-i`, in order; empty means ssh's default files.
    pub identity_files: Vec<PathBuf>,
    /// IdentitiesOnly: use only the identity files, not other agent keys.
    pub identities_only: bool,
    /// IdentityAgent: the agent's socket; `None` means no agent.
    pub agent: Option<PathBuf>,
    pub pubkey: bool,
    pub kbd_interactive: bool,
    pub password: bool,
    /// PreferredAuthentications, in order.
    pub preferred: Vec<Method>,
}

impl AuthSettings {
    /// ssh's defaults for `user`: the agent at `SSH_AUTH_SOCK`, the default key files,
    /// and publickey, keyboard-interactive, password in that order.
    pub fn openssh_defaults(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            identity_files: Vec::new(),
            identities_only: false,
            agent: std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            pubkey: true,
            kbd_interactive: true,
            password: true,
            preferred: vec![
                Method::PublicKey,
                Method::KeyboardInteractive,
                Method::Password,
            ],
        }
    }

    /// The files tried when none were named: ssh's list, for the key types we have.
    fn default_identity_files() -> Vec<PathBuf> {
        let ssh = home_dir().join(".ssh");
        ["id_rsa", "id_ecdsa", "id_ed25519"]
            .iter()
            .map(|f| ssh.join(f))
            .collect()
    }

    pub fn allows(&self, method: Method) -> bool {
        match method {
            Method::PublicKey => self.pubkey,
            Method::KeyboardInteractive => self.kbd_interactive,
            Method::Password => self.password,
            Method::None => true,
        }
    }
}

/// Why authentication ended without success. The text is the one line to print.
#[derive(Debug)]
pub enum AuthError {
    /// Every method was tried; the server's last list of methods that could continue.
    Denied(Vec<String>),
    Drive(DriveError),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(methods) => write!(f, "Permission denied ({}).", methods.join(",")),
            Self::Drive(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AuthError {}

impl From<DriveError> for AuthError {
    fn from(e: DriveError) -> Self {
        Self::Drive(e)
    }
}

impl From<ssh_proto::Error> for AuthError {
    fn from(e: ssh_proto::Error) -> Self {
        Self::Drive(DriveError::Protocol(e))
    }
}

/// A public key to try and how to sign with it.
enum Candidate {
    Agent {
        key: PublicKey,
        blob: Vec<u8>,
        comment: String,
    },
    File {
        key: PublicKey,
        path: PathBuf,
        file: Option<PrivateKeyFile>,
    },
}

impl Candidate {
    fn key(&self) -> &PublicKey {
        match self {
            Self::Agent { key, .. } | Self::File { key, .. } => key,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Agent { comment, .. } => format!("agent key {comment}"),
            Self::File { path, .. } => path.display().to_string(),
        }
    }
}

/// Drives authentication to the end on a connection whose key exchange is done.
/// Returns the method that completed it.
pub struct Authenticator<'a> {
    conn: &'a mut BlockingConn,
    auth: ClientAuth,
    settings: &'a AuthSettings,
    prompter: &'a Prompter,
    deadline: Instant,
    /// Where the host's name appears in prompts, `user@host`.
    target: String,
    agent: Option<AgentClient>,
    events: VecDeque<ClientAuthEvent>,
}

impl<'a> Authenticator<'a> {
    pub fn new(
        conn: &'a mut BlockingConn,
        settings: &'a AuthSettings,
        prompter: &'a Prompter,
        host: &str,
        deadline: Instant,
    ) -> Self {
        Self {
            auth: ClientAuth::new(&settings.user),
            conn,
            settings,
            prompter,
            deadline,
            target: format!("{}@{host}", settings.user),
            agent: None,
            events: VecDeque::new(),
        }
    }

    /// Runs every allowed method in order until one succeeds.
    pub fn run(mut self) -> Result<Method, AuthError> {
        if let Some(sig_algs) = self.conn.server_sig_algs.clone() {
            self.auth.set_server_sig_algs(&sig_algs);
        }
        self.auth.start(&mut self.conn.transport)?;
        self.next_event()?;

        self.auth.request_none(&mut self.conn.transport)?;
        let mut can_continue = match self.next_event()? {
            ClientAuthEvent::Success => return Ok(Method::None),
            ClientAuthEvent::Failure { can_continue, .. } => can_continue,
            other => return Err(unexpected(&other)),
        };

        for &method in &self.settings.preferred {
            if !self.settings.allows(method) || !can_continue.iter().any(|m| m == method.name()) {
                continue;
            }
            let outcome = match method {
                Method::PublicKey => self.publickey()?,
                Method::KeyboardInteractive => self.keyboard_interactive()?,
                Method::Password => self.password()?,
                Method::None => continue,
            };
            match outcome {
                Step::Success => return Ok(method),
                Step::Failed(list) => can_continue = list,
            }
        }
        Err(AuthError::Denied(can_continue))
    }

    /// Waits for the next authentication event, showing banners as they come.
    fn next_event(&mut self) -> Result<ClientAuthEvent, AuthError> {
        loop {
            while let Some(event) = self.auth.poll_event().or_else(|| self.events.pop_front()) {
                match event {
                    ClientAuthEvent::Banner(text) => {
                        eprint!("{}", terminal_text::safe(&text, true))
                    }
                    ClientAuthEvent::ServiceAccepted => return Ok(event),
                    other => return Ok(other),
                }
            }
            if let Some(payload) = self.conn.packets.pop_front() {
                self.auth.handle(&mut self.conn.transport, &payload)?;
                continue;
            }
            let deadline = self.deadline;
            self.conn
                .run_until(deadline, on_transport_event, |c| !c.packets.is_empty())?;
            if let Some(sig_algs) = self.conn.server_sig_algs.clone() {
                self.auth.set_server_sig_algs(&sig_algs);
            }
        }
    }

    /// The server's latest list of methods that can continue.
    fn remaining(&self) -> Vec<String> {
        self.auth
            .can_continue()
            .map(<[String]>::to_vec)
            .unwrap_or_default()
    }

    fn candidates(&mut self) -> Vec<Candidate> {
        let mut list = Vec::new();
        if let Some(path) = &self.settings.agent {
            match AgentClient::connect(path) {
                Ok(mut agent) => {
                    match agent.identities() {
                        Ok(ids) => {
                            for id in ids {
                                if let Some(key) = id.key() {
                                    list.push(Candidate::Agent {
                                        key: key.clone(),
                                        blob: id.blob().to_vec(),
                                        comment: id.comment().to_owned(),
                                    });
                                }
                            }
                        }
                        Err(e) => log::debug!("agent identities unavailable: {e}"),
                    }
                    self.agent = Some(agent);
                }
                Err(e) => log::debug!("no agent: {e}"),
            }
        }

        let explicit = !self.settings.identity_files.is_empty();
        let files = if explicit {
            self.settings.identity_files.clone()
        } else {
            AuthSettings::default_identity_files()
        };
        let mut file_keys = Vec::new();
        for path in files {
            match load_public(&path) {
                Some((key, file)) => file_keys.push(Candidate::File { key, path, file }),
                None if explicit => {
                    log::warn!("identity file {} not accessible", path.display());
                }
                None => {}
            }
        }

        if self.settings.identities_only {
            // Only the named files; an agent may still hold one of them and sign for it.
            let wanted: Vec<PublicKey> = file_keys.iter().map(|c| c.key().clone()).collect();
            list.retain(|c| wanted.contains(c.key()));
        }
        for candidate in file_keys {
            if !list.iter().any(|c| c.key() == candidate.key()) {
                list.push(candidate);
            }
        }
        list
    }

    fn publickey(&mut self) -> Result<Step, AuthError> {
        let mut last = Vec::new();
        for candidate in self.candidates() {
            let key = candidate.key().clone();
            let Some(alg) = self.auth.choose_signature_alg(&key) else {
                log::debug!(
                    "skipping {}: no signature algorithm the server accepts",
                    candidate.describe()
                );
                continue;
            };
            log::debug!(
                "offering public key {} alg={}",
                candidate.describe(),
                alg.name()
            );
            self.auth
                .query_publickey(&mut self.conn.transport, &key, alg)?;
            match self.next_event()? {
                ClientAuthEvent::KeyAccepted { .. } => {}
                ClientAuthEvent::Failure { can_continue, .. } => {
                    let still = can_continue.iter().any(|m| m == Method::PublicKey.name());
                    last = can_continue;
                    if !still {
                        return Ok(Step::Failed(last));
                    }
                    continue;
                }
                other => return Err(unexpected(&other)),
            }

            let data = self.auth.signed_data(&self.conn.transport, &key, alg)?;
            let Some(signature) = self.sign(&candidate, alg, &data) else {
                continue;
            };
            self.auth
                .send_publickey_signature(&mut self.conn.transport, &key, alg, &signature)?;
            match self.next_event()? {
                ClientAuthEvent::Success => return Ok(Step::Success),
                ClientAuthEvent::Failure {
                    can_continue,
                    partial_success: true,
                    ..
                } => {
                    return Ok(Step::Failed(can_continue));
                }
                ClientAuthEvent::Failure { can_continue, .. } => last = can_continue,
                other => return Err(unexpected(&other)),
            }
        }
        if last.is_empty() {
            last = self.remaining();
        }
        Ok(Step::Failed(last))
    }

    /// Signs with the agent or with the key file, asking for its passphrase if needed.
    /// `None` if the key cannot be used after all (no passphrase, agent refused).
    fn sign(&mut self, candidate: &Candidate, alg: SignatureAlg, data: &[u8]) -> Option<Vec<u8>> {
        let provider = default_provider();
        match candidate {
            Candidate::Agent { blob, comment, .. } => {
                let agent = self.agent.as_mut()?;
                match agent.sign(blob, data, alg) {
                    Ok(sig) => Some(sig),
                    Err(e) => {
                        log::warn!("the agent would not sign with {comment}: {e}");
                        None
                    }
                }
            }
            Candidate::File { path, file, .. } => {
                let file = file.as_ref()?;
                let key = unlock(file, path, self.prompter)?;
                match key.sign(provider, alg, data) {
                    Ok(sig) => Some(sig),
                    Err(e) => {
                        log::warn!("cannot sign with {}: {e}", path.display());
                        None
                    }
                }
            }
        }
    }

    fn password(&mut self) -> Result<Step, AuthError> {
        // If no password can be asked for, the server's list stands as it was.
        let mut last = self.remaining();
        for _ in 0..PROMPT_TRIES {
            let prompt = format!("{}'s password: ", self.target);
            let Ok(password) = self.prompter.secret(&prompt) else {
                break;
            };
            self.auth
                .request_password(&mut self.conn.transport, password.as_bytes())?;
            match self.next_event()? {
                ClientAuthEvent::Success => return Ok(Step::Success),
                ClientAuthEvent::Failure {
                    can_continue,
                    partial_success,
                    ..
                } => {
                    let again = !partial_success
                        && can_continue.iter().any(|m| m == Method::Password.name());
                    last = can_continue;
                    if !again {
                        break;
                    }
                    eprintln!("Permission denied, please try again.");
                }
                ClientAuthEvent::PasswordChangeRequested { .. } => {
                    eprintln!("The server asks for a new password; changing it is not supported.");
                    break;
                }
                other => return Err(unexpected(&other)),
            }
        }
        Ok(Step::Failed(last))
    }

    fn keyboard_interactive(&mut self) -> Result<Step, AuthError> {
        self.auth
            .request_keyboard_interactive(&mut self.conn.transport, "")?;
        for _ in 0..MAX_INFO_ROUNDS {
            match self.next_event()? {
                ClientAuthEvent::Success => return Ok(Step::Success),
                ClientAuthEvent::Failure { can_continue, .. } => {
                    return Ok(Step::Failed(can_continue));
                }
                ClientAuthEvent::InfoRequest(request) => {
                    if request.prompts.is_empty() {
                        self.auth
                            .send_info_response(&mut self.conn.transport, &[])?;
                        continue;
                    }
                    if !request.name.is_empty() {
                        eprintln!("{}", terminal_text::safe(&request.name, true));
                    }
                    if !request.instruction.is_empty() {
                        eprintln!("{}", terminal_text::safe(&request.instruction, true));
                    }
                    let mut answers: Vec<Zeroizing<String>> = Vec::new();
                    for prompt in &request.prompts {
                        let text = terminal_text::safe(&prompt.text, true);
                        let answer = if prompt.echo {
                            self.prompter.visible(&text)
                        } else {
                            self.prompter.secret(&text)
                        };
                        match answer {
                            Ok(a) => answers.push(a),
                            Err(e) => {
                                log::debug!("keyboard-interactive abandoned: {e}");
                                return Ok(Step::Failed(self.remaining()));
                            }
                        }
                    }
                    let refs: Vec<&[u8]> = answers.iter().map(|a| a.as_bytes()).collect();
                    self.auth
                        .send_info_response(&mut self.conn.transport, &refs)?;
                }
                other => return Err(unexpected(&other)),
            }
        }
        Ok(Step::Failed(self.remaining()))
    }
}

impl std::fmt::Debug for Authenticator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

enum Step {
    Success,
    Failed(Vec<String>),
}

fn unexpected(event: &ClientAuthEvent) -> AuthError {
    AuthError::Drive(DriveError::Protocol(ssh_proto::Error::Misuse(
        match event {
            ClientAuthEvent::ServiceAccepted => "service accepted twice",
            _ => "an authentication answer that does not fit the request",
        },
    )))
}

fn on_transport_event(
    _t: &mut ssh_proto::Transport,
    _event: Event,
) -> Result<(), ssh_proto::Error> {
    Ok(())
}

/// Reads a key file's public half: from the private key file itself (readable without
/// its passphrase), else from `PATH.pub`.
fn load_public(path: &std::path::Path) -> Option<(PublicKey, Option<PrivateKeyFile>)> {
    let path = expand_tilde(&path.to_string_lossy());
    if let Ok(text) = std::fs::read(&path) {
        let text = Zeroizing::new(text);
        match PrivateKeyFile::parse(&text[..]) {
            Ok(file) => return Some((file.public().clone(), Some(file))),
            Err(e) => log::debug!("{}: {e}", path.display()),
        }
    }
    let mut pub_path = path.clone().into_os_string();
    pub_path.push(".pub");
    let text = std::fs::read_to_string(&pub_path).ok()?;
    let (key, _) = parse_public_key_line(text.trim()).ok()?;
    Some((key, None))
}

/// Decrypts a key file, asking for its passphrase up to three times.
fn unlock(file: &PrivateKeyFile, path: &std::path::Path, prompter: &Prompter) -> Option<UserKey> {
    let provider = default_provider();
    if !file.needs_passphrase() {
        return file
            .decrypt(provider, None)
            .map_err(|e| log::warn!("{}: {e}", path.display()))
            .ok();
    }
    for _ in 0..PROMPT_TRIES {
        let prompt = format!("Enter passphrase for key '{}': ", path.display());
        let passphrase = prompter.secret(&prompt).ok()?;
        match file.decrypt(provider, Some(passphrase.as_bytes())) {
            Ok(key) => return Some(key),
            Err(e) => eprintln!("{}: {e}", path.display()),
        }
    }
    None
}
