//! `-o Key=Value` options in OpenSSH's language (`ssh_config(5)`).

use ssh_proto::algorithms::{BadAlgorithmList, Preferences, apply_spec};

/// An option that could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum OptionError {
    /// Not `Key=Value` or `Key Value`.
    Malformed(String),
    /// A key this command does not know.
    Unsupported(String),
    BadList(BadAlgorithmList),
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(o) => write!(f, "bad option '{o}': expected Key=Value"),
            Self::Unsupported(k) => write!(f, "unsupported option '{k}'"),
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

/// Everything `-o` can set for a client connection, starting from ssh's defaults. As in
/// ssh, the first value given for an option wins, except IdentityFile, which adds up.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub algorithms: Preferences,
    pub auth: crate::auth::AuthSettings,
    pub host_keys: crate::hostkeys::HostKeyPolicy,
    pub batch_mode: bool,
    pub port: Option<u16>,
    pub user: Option<String>,
    seen: std::collections::HashSet<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
        Self {
            algorithms: Preferences::default(),
            auth: crate::auth::AuthSettings::openssh_defaults(&user),
            host_keys: crate::hostkeys::HostKeyPolicy::openssh_defaults(),
            batch_mode: false,
            port: None,
            user: None,
            seen: std::collections::HashSet::new(),
        }
    }
}

fn yes_no(key: &str, value: &str) -> Result<bool, OptionError> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(OptionError::Malformed(format!("{key}={value}"))),
    }
}

impl ClientOptions {
    /// Applies one `Key=Value` option as ssh's `-o` would.
    pub fn apply_option(&mut self, option: &str) -> Result<(), OptionError> {
        let (key, value) = split_option(option)?;
        if key != "identityfile" && !self.seen.insert(key.clone()) {
            return Ok(());
        }
        if apply_algorithm_option(&mut self.algorithms, &key, value)? {
            return Ok(());
        }
        match key.as_str() {
            "identityfile" => self
                .auth
                .identity_files
                .push(crate::hostkeys::expand_tilde(value)),
            "identitiesonly" => self.auth.identities_only = yes_no(&key, value)?,
            "identityagent" => {
                self.auth.agent = match value {
                    "none" => None,
                    "SSH_AUTH_SOCK" => std::env::var_os("SSH_AUTH_SOCK").map(Into::into),
                    path => Some(crate::hostkeys::expand_tilde(path)),
                }
            }
            "batchmode" => self.batch_mode = yes_no(&key, value)?,
            "passwordauthentication" => self.auth.password = yes_no(&key, value)?,
            "pubkeyauthentication" => self.auth.pubkey = yes_no(&key, value)?,
            "kbdinteractiveauthentication" => self.auth.kbd_interactive = yes_no(&key, value)?,
            "stricthostkeychecking" => {
                self.host_keys.strictness = crate::hostkeys::Strictness::parse(value)
                    .ok_or_else(|| OptionError::Malformed(format!("{key}={value}")))?;
            }
            "userknownhostsfile" => {
                self.host_keys.user_files = value
                    .split_whitespace()
                    .map(crate::hostkeys::expand_tilde)
                    .collect();
            }
            "globalknownhostsfile" => {
                self.host_keys.global_files = value
                    .split_whitespace()
                    .map(crate::hostkeys::expand_tilde)
                    .collect();
            }
            "hashknownhosts" => self.host_keys.hash = yes_no(&key, value)?,
            "preferredauthentications" => {
                let mut methods = Vec::new();
                for name in value.split(',') {
                    let method = ssh_proto::auth::msg::Method::from_name(name.trim().as_bytes())
                        .ok_or_else(|| OptionError::Malformed(format!("{key}={value}")))?;
                    methods.push(method);
                }
                self.auth.preferred = methods;
            }
            "user" => self.user = Some(value.to_owned()),
            "port" => {
                self.port = Some(
                    value
                        .parse()
                        .map_err(|_| OptionError::Malformed(format!("{key}={value}")))?,
                );
            }
            _ => return Err(OptionError::Unsupported(key)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ssh_proto::algorithms::{Cipher, Kex};

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
}
