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
