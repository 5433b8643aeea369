//! Client options in OpenSSH's language (ssh_config(5)): `-o Key=Value` on the command
//! line and the settings the configuration files give for a destination.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh_proto::algorithms::{BadAlgorithmList, Preferences, apply_spec};

use crate::forward_spec::ForwardSpec;
use crate::hostkeys::expand_tilde;
use crate::ssh_config::{
    ConfigError, LogLevel, Parsed, RekeyLimit, RequestTty, Resolved, Setting, expand_percent,
    split_line,
};

/// An option that could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum OptionError {
    /// Not `Key=Value` or `Key Value`.
    Malformed(String),
    /// A key this command does not know.
    Unsupported(String),
    /// A known key with a value that cannot be used, in ssh's words.
    Invalid(String),
    BadList(BadAlgorithmList),
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(o) => write!(f, "bad option '{o}': expected Key=Value"),
            Self::Unsupported(k) => write!(f, "unsupported option '{k}'"),
            Self::Invalid(message) => write!(f, "command-line line 0: {message}"),
            Self::BadList(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for OptionError {}

/// Splits `Key=Value` or `Key Value` as ssh does; the key is returned lower-cased.
pub fn split_option(option: &str) -> Result<(String, &str), OptionError> {
    let option = option.trim();
    let at = option
        .find(['=', ' ', '\t'])
        .ok_or_else(|| OptionError::Malformed(option.to_owned()))?;
    let (key, rest) = option.split_at(at);
    let value = rest[1..].trim_start_matches(['=', ' ', '\t']).trim();
    if key.is_empty() || value.is_empty() {
        return Err(OptionError::Malformed(option.to_owned()));
    }
    Ok((key.to_ascii_lowercase(), value))
}

/// Applies one algorithm option to `prefs`. Returns `Ok(false)` if the key is not an
/// algorithm option, so callers can try their own keys.
pub fn apply_algorithm_option(
    prefs: &mut Preferences,
    key: &str,
    value: &str,
) -> Result<bool, OptionError> {
    match key {
        "kexalgorithms" => {
            prefs.kex = apply_spec(&prefs.kex, value).map_err(OptionError::BadList)?
        }
        "ciphers" => {
            prefs.ciphers = apply_spec(&prefs.ciphers, value).map_err(OptionError::BadList)?;
        }
        "macs" => prefs.macs = apply_spec(&prefs.macs, value).map_err(OptionError::BadList)?,
        "hostkeyalgorithms" => {
            prefs.host_key = apply_spec(&prefs.host_key, value).map_err(OptionError::BadList)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Everything `-o` and the configuration files can set for a client connection, starting
/// from ssh's defaults.
///
/// As in ssh, the first value given for an option wins, except IdentityFile and
/// LocalForward, which add up. The command line's `-o` options are applied first and the
/// files after them, so `-o` wins:
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use gateway::options::ClientOptions;
/// use gateway::ssh_config::{ConfigSource, SshConfig};
///
/// let mut options = ClientOptions::default();
/// options.apply_option("Port=2222")?;
/// let config = SshConfig::load(&ConfigSource::Default)?;
/// options.apply_config(&config.resolve("bastion"))?;
/// let host = options.remote_host("bastion");
/// # let _ = host;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub algorithms: Preferences,
    pub auth: crate::auth::AuthSettings,
    pub host_keys: crate::hostkeys::HostKeyPolicy,
    pub batch_mode: bool,
    pub port: Option<u16>,
    pub user: Option<String>,
    /// HostName with its `%h` unexpanded; [`ClientOptions::remote_host`] expands it.
    pub hostname: Option<String>,
    pub local_forwards: Vec<ForwardSpec>,
    pub exit_on_forward_failure: bool,
    /// ServerAliveInterval; zero, the default, sends no keepalives.
    pub server_alive_interval: Duration,
    /// ServerAliveCountMax: unanswered keepalives before giving up; 3 by default.
    pub server_alive_count_max: u32,
    /// ConnectTimeout; `None` leaves it to the system.
    pub connect_timeout: Option<Duration>,
    /// RekeyLimit, when one was given.
    pub rekey_limit: Option<RekeyLimit>,
    /// LogLevel, when one was given; `-v` on the command line goes on top of it.
    pub log_level: Option<LogLevel>,
    pub request_tty: RequestTty,
    seen: HashSet<&'static str>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        let user = crate::ssh_config::local_user();
        Self {
            algorithms: Preferences::default(),
            auth: crate::auth::AuthSettings::openssh_defaults(&user),
            host_keys: crate::hostkeys::HostKeyPolicy::openssh_defaults(),
            batch_mode: false,
            port: None,
            user: None,
            hostname: None,
            local_forwards: Vec::new(),
            exit_on_forward_failure: false,
            server_alive_interval: Duration::ZERO,
            server_alive_count_max: 3,
            connect_timeout: None,
            rekey_limit: None,
            log_level: None,
            request_tty: RequestTty::Auto,
            seen: HashSet::new(),
        }
    }
}

/// The values `%` tokens in IdentityFile stand for, known once the destination is final.
#[derive(Clone, Copy, Debug)]
pub struct Tokens<'a> {
    /// `%h`: the host name connected to, after HostName.
    pub host: &'a str,
    /// `%n`: the host name as given on the command line.
    pub original_host: &'a str,
    /// `%p`
    pub port: u16,
    /// `%r`
    pub remote_user: &'a str,
    /// `%u`
    pub local_user: &'a str,
    /// `%d`
    pub home: &'a Path,
}

impl ClientOptions {
    /// Applies one `-o` option, `Key=Value` or `Key Value`, as ssh does: with the same
    /// quoting rules and value checks as a configuration file line.
    pub fn apply_option(&mut self, option: &str) -> Result<(), OptionError> {
        let line = split_line(option)
            .map_err(|e| OptionError::Invalid(e.to_string()))?
            .ok_or_else(|| OptionError::Malformed(option.trim().to_owned()))?;
        match Setting::parse(&line.keyword, &line.args) {
            Ok(Parsed::Setting(setting)) => self.apply_setting(&setting),
            Ok(Parsed::Unknown) => Err(OptionError::Unsupported(line.keyword)),
            Err(e) => Err(OptionError::Invalid(e.0)),
        }
    }

    /// Applies what a configuration file gave for the destination, after the `-o`
    /// options; values already set stay.
    pub fn apply_config(&mut self, resolved: &Resolved) -> Result<(), ConfigError> {
        for applied in &resolved.settings {
            self.apply_setting(&applied.setting)
                .map_err(|e| ConfigError::Line {
                    origin: applied.origin.clone(),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Applies one setting unless its keyword already has a value.
    pub fn apply_setting(&mut self, setting: &Setting) -> Result<(), OptionError> {
        if !setting.accumulates() && !self.seen.insert(setting.keyword()) {
            return Ok(());
        }
        let algorithm = |key, value: &String, prefs: &mut Preferences| {
            apply_algorithm_option(prefs, key, value).map(drop)
        };
        match setting {
            Setting::Ciphers(v) => algorithm("ciphers", v, &mut self.algorithms)?,
            Setting::KexAlgorithms(v) => algorithm("kexalgorithms", v, &mut self.algorithms)?,
            Setting::Macs(v) => algorithm("macs", v, &mut self.algorithms)?,
            Setting::HostKeyAlgorithms(v) => {
                algorithm("hostkeyalgorithms", v, &mut self.algorithms)?;
            }
            Setting::HostName(h) => self.hostname = Some(h.clone()),
            Setting::User(u) => self.user = Some(u.clone()),
            Setting::Port(p) => self.port = Some(*p),
            // `~` now, `%` tokens once the destination is known (expand_identity_files).
            Setting::IdentityFile(f) => self.auth.identity_files.push(expand_tilde(f)),
            Setting::IdentitiesOnly(b) => self.auth.identities_only = *b,
            Setting::LocalForward(f) => self.local_forwards.push(f.clone()),
            Setting::ExitOnForwardFailure(b) => self.exit_on_forward_failure = *b,
            Setting::ServerAliveInterval(d) => self.server_alive_interval = *d,
            Setting::ServerAliveCountMax(n) => self.server_alive_count_max = *n,
            Setting::ConnectTimeout(t) => self.connect_timeout = *t,
            Setting::RekeyLimit(r) => self.rekey_limit = Some(*r),
            Setting::LogLevel(l) => self.log_level = Some(*l),
            Setting::StrictHostKeyChecking(s) => self.host_keys.strictness = *s,
            Setting::UserKnownHostsFile(files) => {
                self.host_keys.user_files = known_hosts_files(files);
            }
            Setting::GlobalKnownHostsFile(files) => {
                self.host_keys.global_files = known_hosts_files(files);
            }
            Setting::BatchMode(b) => self.batch_mode = *b,
            Setting::IdentityAgent(agent) => {
                self.auth.agent = match agent.as_str() {
                    "none" => None,
                    "SSH_AUTH_SOCK" => std::env::var_os("SSH_AUTH_SOCK").map(Into::into),
                    path => Some(expand_tilde(path)),
                }
            }
            Setting::PasswordAuthentication(b) => self.auth.password = *b,
            Setting::PubkeyAuthentication(b) => self.auth.pubkey = *b,
            Setting::KbdInteractiveAuthentication(b) => self.auth.kbd_interactive = *b,
            Setting::PreferredAuthentications(methods) => self.auth.preferred = methods.clone(),
            Setting::HashKnownHosts(b) => self.host_keys.hash = *b,
            Setting::RequestTty(r) => self.request_tty = *r,
        }
        Ok(())
    }

    /// The host name to connect to: HostName with `%h` as `host_arg`, or `host_arg`.
    pub fn remote_host(&self, host_arg: &str) -> String {
        match &self.hostname {
            // HostName's tokens were checked when it was read, so only `%h` and `%%` remain.
            Some(template) => expand_percent(template, |c| (c == 'h').then_some(host_arg))
                .unwrap_or_else(|_| template.clone()),
            None => host_arg.to_owned(),
        }
    }

    /// Expands the `%` tokens of every identity file; call it once the host, port and
    /// user are final. Tokens were checked when read, so none is left unknown.
    pub fn expand_identity_files(&mut self, tokens: &Tokens<'_>) {
        let port = tokens.port.to_string();
        let home = tokens.home.to_string_lossy();
        let lookup = |c| match c {
            'd' => Some(home.as_ref()),
            'h' => Some(tokens.host),
            'n' => Some(tokens.original_host),
            'p' => Some(port.as_str()),
            'r' => Some(tokens.remote_user),
            'u' => Some(tokens.local_user),
            _ => None,
        };
        for file in &mut self.auth.identity_files {
            let Some(text) = file.to_str().filter(|t| t.contains('%')) else {
                continue;
            };
            if let Ok(expanded) = expand_percent(text, lookup) {
                *file = PathBuf::from(expanded);
            }
        }
    }
}

/// UserKnownHostsFile and GlobalKnownHostsFile: `none` means no file.
fn known_hosts_files(files: &[String]) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|f| f.as_str() != "none")
        .map(|f| expand_tilde(f))
        .collect()
}

#[cfg(test)]
mod tests {
    use ssh_proto::algorithms::{Cipher, Kex};
    use ssh_proto::auth::msg::Method;

    use super::*;

    #[test]
    fn ssh_option_forms() {
        assert_eq!(
            split_option("Ciphers=aes128-ctr").unwrap(),
            ("ciphers".into(), "aes128-ctr")
        );
        assert_eq!(
            split_option("Ciphers aes128-ctr").unwrap(),
            ("ciphers".into(), "aes128-ctr")
        );
        assert_eq!(
            split_option("MACs = +hmac-sha2-256").unwrap(),
            ("macs".into(), "+hmac-sha2-256")
        );
        assert!(split_option("Ciphers").is_err());
    }

    #[test]
    fn lists_apply() {
        let mut p = Preferences::default();
        assert!(apply_algorithm_option(&mut p, "kexalgorithms", "curve25519-sha256").unwrap());
        assert_eq!(p.kex, [Kex::Curve25519Sha256]);
        assert!(apply_algorithm_option(&mut p, "ciphers", "^aes256-ctr").unwrap());
        assert_eq!(p.ciphers[0], Cipher::Aes256Ctr);
        assert!(!apply_algorithm_option(&mut p, "port", "22").unwrap());
        assert!(apply_algorithm_option(&mut p, "ciphers", "rc4").is_err());
    }

    fn resolved(text: &str, host: &str) -> Resolved {
        let config = crate::ssh_config::SshConfig::parse_str(
            text,
            Path::new("cfg"),
            Path::new("/nonexistent"),
        )
        .unwrap();
        config.resolve_for(&crate::ssh_config::Query {
            host,
            user: None,
            local_user: "alice",
        })
    }

    #[test]
    fn command_line_wins_over_config() {
        let mut options = ClientOptions::default();
        options.apply_option("Port=2222").unwrap();
        options.apply_option("IdentityFile /cli/key").unwrap();
        options.apply_option("Ciphers aes256-ctr").unwrap();
        let text = "\
Host bastion
    HostName 192.0.2.%h
    Port 22
    User ops
    IdentityFile /cfg/%r@%h:%p
    Ciphers aes128-ctr
    BatchMode yes
    ServerAliveInterval 30
    ServerAliveCountMax 1
    LocalForward 8080 db:5432
Host *
    User nobody
    BatchMode no
    IdentityFile %d/k
    RequestTTY force
    ConnectTimeout 10
    RekeyLimit 1G
    LogLevel VERBOSE
";
        options.apply_config(&resolved(text, "bastion")).unwrap();

        assert_eq!(options.port, Some(2222));
        assert_eq!(options.user.as_deref(), Some("ops"));
        assert_eq!(options.remote_host("bastion"), "192.0.2.bastion");
        assert_eq!(options.algorithms.ciphers, [Cipher::Aes256Ctr]);
        assert!(options.batch_mode);
        assert_eq!(options.server_alive_interval, Duration::from_secs(30));
        assert_eq!(options.server_alive_count_max, 1);
        assert_eq!(options.connect_timeout, Some(Duration::from_secs(10)));
        assert_eq!(options.request_tty, RequestTty::Force);
        assert_eq!(options.log_level, Some(LogLevel::Verbose));
        assert_eq!(options.rekey_limit.and_then(|r| r.bytes), Some(1 << 30));
        assert_eq!(options.local_forwards.len(), 1);

        options.expand_identity_files(&Tokens {
            host: "192.0.2.bastion",
            original_host: "bastion",
            port: 2222,
            remote_user: "ops",
            local_user: "alice",
            home: Path::new("/home/alice"),
        });
        assert_eq!(
            options.auth.identity_files,
            [
                PathBuf::from("/cli/key"),
                PathBuf::from("/cfg/ops@192.0.2.bastion:2222"),
                PathBuf::from("/home/alice/k"),
            ]
        );
    }

    #[test]
    fn defaults_without_config() {
        let options = ClientOptions::default();
        assert_eq!(options.remote_host("h"), "h");
        assert_eq!(options.server_alive_count_max, 3);
        assert_eq!(options.server_alive_interval, Duration::ZERO);
        assert_eq!(options.request_tty, RequestTty::Auto);
        assert!(options.local_forwards.is_empty());
    }

    #[test]
    fn option_errors_read_like_ssh() {
        let cases = [
            ("Port=0", "command-line line 0: Bad port '0'."),
            (
                "Port",
                "command-line line 0: no argument after keyword \"port\"",
            ),
            ("  ", "bad option '': expected Key=Value"),
            (
                "Port=",
                "command-line line 0: no argument after keyword \"port\"",
            ),
            (
                "BatchMode=maybe",
                "command-line line 0: unsupported option \"maybe\".",
            ),
            ("User=\"open", "command-line line 0: invalid quotes"),
            ("ForwardAgent=yes", "unsupported option 'forwardagent'"),
        ];
        for (option, want) in cases {
            let err = ClientOptions::default().apply_option(option).unwrap_err();
            assert_eq!(err.to_string(), want, "{option}");
        }
    }

    #[test]
    fn option_forms_and_first_wins() {
        let mut options = ClientOptions::default();
        options.apply_option("  User = \"first user\" ").unwrap();
        options.apply_option("User=second").unwrap();
        options.apply_option("UserKnownHostsFile=none").unwrap();
        options
            .apply_option("PreferredAuthentications=password")
            .unwrap();
        options
            .apply_option("StrictHostKeyChecking=accept-new")
            .unwrap();
        assert_eq!(options.user.as_deref(), Some("first user"));
        assert!(options.host_keys.user_files.is_empty());
        assert_eq!(options.auth.preferred, [Method::Password]);
        assert_eq!(
            options.host_keys.strictness,
            crate::hostkeys::Strictness::AcceptNew
        );
    }
}
