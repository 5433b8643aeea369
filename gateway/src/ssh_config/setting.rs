//! The keywords of ssh_config(5) that the client uses, each parsed into a typed value.
//!
//! Values are parsed when the file is read, in every block whether it applies or not, as
//! ssh does: a bad value is an error even under a `Host` that does not match. `-o` options
//! go through the same parser.

use std::time::Duration;

use ssh_proto::algorithms::{Preferences, apply_spec};
use ssh_proto::auth::msg::Method;

use crate::forward_spec::ForwardSpec;
use crate::hostkeys::Strictness;

/// One keyword with its parsed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    /// HostName, with `%h` and `%%` still unexpanded; see [`expand_percent`].
    HostName(String),
    User(String),
    Port(u16),
    /// IdentityFile, with `~` and `%` tokens still unexpanded.
    IdentityFile(String),
    IdentitiesOnly(bool),
    LocalForward(ForwardSpec),
    ExitOnForwardFailure(bool),
    /// ServerAliveInterval; zero turns keepalives off.
    ServerAliveInterval(Duration),
    ServerAliveCountMax(u32),
    /// ConnectTimeout; `None` (the word `none`) waits as long as the system does.
    ConnectTimeout(Option<Duration>),
    RekeyLimit(RekeyLimit),
    /// An algorithm list as written (`+`, `-` and `^` forms included), already checked.
    Ciphers(String),
    KexAlgorithms(String),
    Macs(String),
    HostKeyAlgorithms(String),
    LogLevel(LogLevel),
    StrictHostKeyChecking(Strictness),
    UserKnownHostsFile(Vec<String>),
    GlobalKnownHostsFile(Vec<String>),
    BatchMode(bool),
    /// IdentityAgent: a socket path, `none`, or `SSH_AUTH_SOCK`.
    IdentityAgent(String),
    PasswordAuthentication(bool),
    PubkeyAuthentication(bool),
    /// KbdInteractiveAuthentication, or its older name ChallengeResponseAuthentication.
    KbdInteractiveAuthentication(bool),
    PreferredAuthentications(Vec<Method>),
    HashKnownHosts(bool),
    RequestTty(RequestTty),
}

/// RekeyLimit: rekey after this much data or time, whichever comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RekeyLimit {
    /// `None` for `default`: the cipher's own limit.
    pub bytes: Option<u64>,
    pub time: RekeyTime,
}

/// The second, optional argument of RekeyLimit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RekeyTime {
    /// Not given: keep the built-in default.
    Default,
    /// `none` or `default`: no time limit, as ssh reads both words.
    Never,
    After(Duration),
}

/// LogLevel, from quietest to loudest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Quiet,
    Fatal,
    Error,
    Info,
    Verbose,
    Debug1,
    Debug2,
    Debug3,
}

impl LogLevel {
    fn parse(value: &str) -> Option<Self> {
        Some(match value.to_ascii_uppercase().as_str() {
            "QUIET" => Self::Quiet,
            "FATAL" => Self::Fatal,
            "ERROR" => Self::Error,
            "INFO" => Self::Info,
            "VERBOSE" => Self::Verbose,
            "DEBUG" | "DEBUG1" => Self::Debug1,
            "DEBUG2" => Self::Debug2,
            "DEBUG3" => Self::Debug3,
            _ => return None,
        })
    }

    /// The `log` filter that prints what ssh prints at this level. INFO is the command's
    /// default, which shows warnings and the one-line notices ssh shows at INFO.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            Self::Quiet => log::LevelFilter::Off,
            Self::Fatal | Self::Error => log::LevelFilter::Error,
            Self::Info => log::LevelFilter::Warn,
            Self::Verbose => log::LevelFilter::Info,
            Self::Debug1 => log::LevelFilter::Debug,
            Self::Debug2 | Self::Debug3 => log::LevelFilter::Trace,
        }
    }
}

/// RequestTTY (ssh_config(5)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RequestTty {
    No,
    Yes,
    Force,
    /// A terminal when the session is interactive: ssh's default.
    #[default]
    Auto,
}

/// What the parser made of a keyword.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Setting(Setting),
    /// A keyword outside the list above: the caller decides whether that is an error.
    Unknown,
}

/// A keyword's value that could not be used; the message is ssh's where ssh has one.
#[derive(Debug, PartialEq, Eq)]
pub struct BadValue(pub String);

fn bad(message: impl Into<String>) -> BadValue {
    BadValue(message.into())
}

/// The one argument of a single-valued keyword.
fn single<'a>(keyword: &str, args: &'a [String]) -> Result<&'a str, BadValue> {
    match args {
        [one] => Ok(one),
        [] => Err(bad(format!("no argument after keyword \"{keyword}\""))),
        _ => Err(bad(format!(
            "keyword {keyword} extra arguments at end of line"
        ))),
    }
}

fn flag(value: &str) -> Result<bool, BadValue> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(bad(format!("unsupported option \"{value}\"."))),
    }
}

fn port(value: &str) -> Result<u16, BadValue> {
    value
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0 && value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| bad(format!("Bad port '{value}'.")))
}

/// A time as ssh's `convtime` reads it: numbers, each with an optional unit of `s`, `m`,
/// `h`, `d` or `w` in either case, added up (`1h30m`). A bare number is seconds.
pub fn parse_time(value: &str) -> Option<Duration> {
    // ssh keeps times in a C int; longer ones are refused.
    const MAX: u64 = i32::MAX as u64;
    let mut total: u64 = 0;
    let mut rest = value;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = match rest.bytes().next() {
            None => 1,
            Some(b's' | b'S') => 1,
            Some(b'm' | b'M') => 60,
            Some(b'h' | b'H') => 60 * 60,
            Some(b'd' | b'D') => 24 * 60 * 60,
            Some(b'w' | b'W') => 7 * 24 * 60 * 60,
            Some(_) => return None,
        };
        if !rest.is_empty() {
            rest = &rest[1..];
        }
        total = number
            .checked_mul(unit)
            .and_then(|n| total.checked_add(n))
            .filter(|&t| t <= MAX)?;
    }
    Some(Duration::from_secs(total))
}

fn time(value: &str) -> Result<Duration, BadValue> {
    parse_time(value).ok_or_else(|| bad("invalid time value."))
}

/// A byte count with an optional K, M, G or T suffix in either case, as RekeyLimit takes.
fn size(value: &str) -> Option<u64> {
    let (number, shift) = match value.as_bytes().last()? {
        b'k' | b'K' => (&value[..value.len() - 1], 10),
        b'm' | b'M' => (&value[..value.len() - 1], 20),
        b'g' | b'G' => (&value[..value.len() - 1], 30),
        b't' | b'T' => (&value[..value.len() - 1], 40),
        _ => (value, 0),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse::<u64>().ok()?.checked_mul(1 << shift)
}

impl RekeyLimit {
    /// The arguments of a RekeyLimit line: an amount (`default`, or bytes with an
    /// optional K, M, G or T suffix) and an optional time. `gateway serve --rekey-limit`
    /// takes the same amount.
    pub fn parse(args: &[String]) -> Result<RekeyLimit, BadValue> {
        rekey_limit(args)
    }
}

fn rekey_limit(args: &[String]) -> Result<RekeyLimit, BadValue> {
    let (amount, time_arg) = match args {
        [a] => (a, None),
        [a, t] => (a, Some(t)),
        _ => {
            return Err(bad("keyword rekeylimit extra arguments at end of line"));
        }
    };
    let bytes = match amount.as_str() {
        "default" => None,
        _ => {
            let n = size(amount).ok_or_else(|| bad(format!("Bad number '{amount}'")))?;
            // ssh refuses limits so small that every packet would rekey.
            if n < 16 {
                return Err(bad("RekeyLimit too small"));
            }
            Some(n)
        }
    };
    let time = match time_arg.map(String::as_str) {
        None => RekeyTime::Default,
        Some("none" | "default") => RekeyTime::Never,
        Some(t) => RekeyTime::After(time(t)?),
    };
    Ok(RekeyLimit { bytes, time })
}

/// Checks an algorithm list against the built-in defaults, which is what a first value
/// applies to.
fn algorithms(keyword: &str, value: &str) -> Result<String, BadValue> {
    let defaults = Preferences::default();
    let checked = match keyword {
        "ciphers" => apply_spec(&defaults.ciphers, value).map(drop),
        "kexalgorithms" => apply_spec(&defaults.kex, value).map(drop),
        "macs" => apply_spec(&defaults.macs, value).map(drop),
        _ => apply_spec(&defaults.host_key, value).map(drop),
    };
    checked.map_err(|e| bad(e.to_string()))?;
    Ok(value.to_owned())
}

fn methods(value: &str) -> Result<Vec<Method>, BadValue> {
    let mut list = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match Method::from_name(name.as_bytes()) {
            Some(m) if !list.contains(&m) => list.push(m),
            Some(_) => {}
            // ssh skips methods it cannot use (gssapi-with-mic, hostbased) when it comes
            // to them; so does this client.
            None => log::debug!("PreferredAuthentications: skipping method {name}"),
        }
    }
    if list.is_empty() {
        return Err(bad(format!(
            "no usable method in PreferredAuthentications '{value}'"
        )));
    }
    Ok(list)
}

/// The tokens each keyword may hold; anything else after a `%` is an error.
fn check_tokens(keyword: &str, value: &str, allowed: &str) -> Result<(), BadValue> {
    match expand_percent(value, |c| allowed.contains(c).then_some("")) {
        Ok(_) => Ok(()),
        Err('%') => Err(bad(format!("{keyword}: '%' at the end of '{value}'"))),
        Err(c) => Err(bad(format!(
            "{keyword}: unknown or unsupported token %{c} in '{value}'"
        ))),
    }
}

/// The `%` tokens IdentityFile may hold here: `%d` home directory, `%h` remote host name,
/// `%n` host name as given, `%p` port, `%r` remote user, `%u` local user. ssh knows more
/// (`%C`, `%i`, `%k`, `%L`, `%l`, `%j`); they are refused until something needs them.
pub const IDENTITY_TOKENS: &str = "dhnpru";

/// Replaces `%x` tokens through `lookup` and `%%` with `%`. A token `lookup` does not know,
/// or a `%` at the end, is returned as the error (`'%'` for the latter).
pub fn expand_percent<'a>(
    template: &str,
    lookup: impl Fn(char) -> Option<&'a str>,
) -> Result<String, char> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(token) => out.push_str(lookup(token).ok_or(token)?),
            None => return Err('%'),
        }
    }
    Ok(out)
}

impl Setting {
    /// Parses one keyword (lower-cased) and its arguments.
    pub fn parse(keyword: &str, args: &[String]) -> Result<Parsed, BadValue> {
        let one = || single(keyword, args);
        let setting = match keyword {
            "hostname" => {
                let value = one()?;
                check_tokens("HostName", value, "h")?;
                Self::HostName(value.to_owned())
            }
            "user" => Self::User(one()?.to_owned()),
            "port" => Self::Port(port(one()?)?),
            "identityfile" => {
                let value = one()?;
                check_tokens("IdentityFile", value, IDENTITY_TOKENS)?;
                Self::IdentityFile(value.to_owned())
            }
            "identitiesonly" => Self::IdentitiesOnly(flag(one()?)?),
            "localforward" => match args {
                [listen, target] => Self::LocalForward(
                    ForwardSpec::parse_local_config(listen, target)
                        .map_err(|_| bad("Bad forwarding specification."))?,
                ),
                [_] => return Err(bad("Missing target argument.")),
                _ => return Err(bad("keyword localforward extra arguments at end of line")),
            },
            "exitonforwardfailure" => Self::ExitOnForwardFailure(flag(one()?)?),
            "serveraliveinterval" => Self::ServerAliveInterval(time(one()?)?),
            "serveralivecountmax" => {
                let value = one()?;
                let n = value
                    .parse()
                    .ok()
                    .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| bad(format!("integer value '{value}' is invalid.")))?;
                Self::ServerAliveCountMax(n)
            }
            "connecttimeout" => match one()? {
                "none" => Self::ConnectTimeout(None),
                value => Self::ConnectTimeout(Some(time(value)?)),
            },
            "rekeylimit" => Self::RekeyLimit(rekey_limit(args)?),
            "ciphers" => Self::Ciphers(algorithms(keyword, one()?)?),
            "kexalgorithms" => Self::KexAlgorithms(algorithms(keyword, one()?)?),
            "macs" => Self::Macs(algorithms(keyword, one()?)?),
            "hostkeyalgorithms" => Self::HostKeyAlgorithms(algorithms(keyword, one()?)?),
            "loglevel" => {
                let value = one()?;
                Self::LogLevel(
                    LogLevel::parse(value)
                        .ok_or_else(|| bad(format!("unsupported log level '{value}'")))?,
                )
            }
            "stricthostkeychecking" => {
                let value = one()?;
                let strictness = match value.to_ascii_lowercase().as_str() {
                    "true" => Some(Strictness::Yes),
                    "false" => Some(Strictness::No),
                    lower => Strictness::parse(lower),
                };
                Self::StrictHostKeyChecking(
                    strictness.ok_or_else(|| bad(format!("unsupported option \"{value}\".")))?,
                )
            }
            "userknownhostsfile" => Self::UserKnownHostsFile(args.to_vec()),
            "globalknownhostsfile" => Self::GlobalKnownHostsFile(args.to_vec()),
            "batchmode" => Self::BatchMode(flag(one()?)?),
            "identityagent" => Self::IdentityAgent(one()?.to_owned()),
            "passwordauthentication" => Self::PasswordAuthentication(flag(one()?)?),
            "pubkeyauthentication" => Self::PubkeyAuthentication(flag(one()?)?),
            "kbdinteractiveauthentication" | "challengeresponseauthentication" => {
                Self::KbdInteractiveAuthentication(flag(one()?)?)
            }
            "preferredauthentications" => Self::PreferredAuthentications(methods(one()?)?),
            "hashknownhosts" => Self::HashKnownHosts(flag(one()?)?),
            "requesttty" => {
                let value = one()?;
                Self::RequestTty(match value.to_ascii_lowercase().as_str() {
                    "no" | "false" => RequestTty::No,
                    "yes" | "true" => RequestTty::Yes,
                    "force" => RequestTty::Force,
                    "auto" => RequestTty::Auto,
                    _ => return Err(bad(format!("unsupported option \"{value}\"."))),
                })
            }
            _ => return Ok(Parsed::Unknown),
        };
        Ok(Parsed::Setting(setting))
    }

    /// The keyword, lower-cased; two settings with the same keyword are the same option.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::HostName(_) => "hostname",
            Self::User(_) => "user",
            Self::Port(_) => "port",
            Self::IdentityFile(_) => "identityfile",
            Self::IdentitiesOnly(_) => "identitiesonly",
            Self::LocalForward(_) => "localforward",
            Self::ExitOnForwardFailure(_) => "exitonforwardfailure",
            Self::ServerAliveInterval(_) => "serveraliveinterval",
            Self::ServerAliveCountMax(_) => "serveralivecountmax",
            Self::ConnectTimeout(_) => "connecttimeout",
            Self::RekeyLimit(_) => "rekeylimit",
            Self::Ciphers(_) => "ciphers",
            Self::KexAlgorithms(_) => "kexalgorithms",
            Self::Macs(_) => "macs",
            Self::HostKeyAlgorithms(_) => "hostkeyalgorithms",
            Self::LogLevel(_) => "loglevel",
            Self::StrictHostKeyChecking(_) => "stricthostkeychecking",
            Self::UserKnownHostsFile(_) => "userknownhostsfile",
            Self::GlobalKnownHostsFile(_) => "globalknownhostsfile",
            Self::BatchMode(_) => "batchmode",
            Self::IdentityAgent(_) => "identityagent",
            Self::PasswordAuthentication(_) => "passwordauthentication",
            Self::PubkeyAuthentication(_) => "pubkeyauthentication",
            Self::KbdInteractiveAuthentication(_) => "kbdinteractiveauthentication",
            Self::PreferredAuthentications(_) => "preferredauthentications",
            Self::HashKnownHosts(_) => "hashknownhosts",
            Self::RequestTty(_) => "requesttty",
        }
    }

    /// IdentityFile and LocalForward add up over every line that applies; every other
    /// keyword takes its first value (ssh_config(5)).
    pub fn accumulates(&self) -> bool {
        matches!(self, Self::IdentityFile(_) | Self::LocalForward(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward_spec::{Bind, Listen, Target};

    fn parse(line: &str) -> Result<Setting, String> {
        let line = super::super::line::split_line(line).unwrap().unwrap();
        match Setting::parse(&line.keyword, &line.args) {
            Ok(Parsed::Setting(s)) => Ok(s),
            Ok(Parsed::Unknown) => Err("unknown".into()),
            Err(BadValue(m)) => Err(m),
        }
    }

    #[test]
    fn values_ssh_accepts() {
        let secs = Duration::from_secs;
        let cases: Vec<(&str, Setting)> = vec![
            ("HostName real.%h", Setting::HostName("real.%h".into())),
            ("User \"a b\"", Setting::User("a b".into())),
            ("Port 1", Setting::Port(1)),
            ("Port 65535", Setting::Port(65535)),
            (
                "IdentityFile ~/.ssh/id_%h_%r",
                Setting::IdentityFile("~/.ssh/id_%h_%r".into()),
            ),
            (
                "IdentityFile %d/%u/%n/%p/%%",
                Setting::IdentityFile("%d/%u/%n/%p/%%".into()),
            ),
            ("IdentitiesOnly yes", Setting::IdentitiesOnly(true)),
            ("IdentitiesOnly No", Setting::IdentitiesOnly(false)),
            ("BatchMode true", Setting::BatchMode(true)),
            (
                "ExitOnForwardFailure FALSE",
                Setting::ExitOnForwardFailure(false),
            ),
            (
                "ServerAliveInterval 15",
                Setting::ServerAliveInterval(secs(15)),
            ),
            (
                "ServerAliveInterval 1m",
                Setting::ServerAliveInterval(secs(60)),
            ),
            (
                "ServerAliveInterval 1h30M",
                Setting::ServerAliveInterval(secs(5400)),
            ),
            (
                "ServerAliveInterval 1w1d1s",
                Setting::ServerAliveInterval(secs(691_201)),
            ),
            (
                "ServerAliveInterval 0",
                Setting::ServerAliveInterval(secs(0)),
            ),
            ("ServerAliveCountMax 0", Setting::ServerAliveCountMax(0)),
            ("ConnectTimeout none", Setting::ConnectTimeout(None)),
            (
                "ConnectTimeout 5M",
                Setting::ConnectTimeout(Some(secs(300))),
            ),
            (
                "RekeyLimit 1G 1h",
                Setting::RekeyLimit(RekeyLimit {
                    bytes: Some(1 << 30),
                    time: RekeyTime::After(secs(3600)),
                }),
            ),
            (
                "RekeyLimit 1k none",
                Setting::RekeyLimit(RekeyLimit {
                    bytes: Some(1024),
                    time: RekeyTime::Never,
                }),
            ),
            (
                "RekeyLimit default 10m",
                Setting::RekeyLimit(RekeyLimit {
                    bytes: None,
                    time: RekeyTime::After(secs(600)),
                }),
            ),
            (
                "RekeyLimit 16",
                Setting::RekeyLimit(RekeyLimit {
                    bytes: Some(16),
                    time: RekeyTime::Default,
                }),
            ),
            ("Ciphers aes128-ctr", Setting::Ciphers("aes128-ctr".into())),
            ("Ciphers -aes128*", Setting::Ciphers("-aes128*".into())),
            (
                "KexAlgorithms +curve25519-sha256",
                Setting::KexAlgorithms("+curve25519-sha256".into()),
            ),
            ("LogLevel debug3", Setting::LogLevel(LogLevel::Debug3)),
            ("LogLevel DEBUG", Setting::LogLevel(LogLevel::Debug1)),
            (
                "StrictHostKeyChecking accept-new",
                Setting::StrictHostKeyChecking(Strictness::AcceptNew),
            ),
            (
                "StrictHostKeyChecking off",
                Setting::StrictHostKeyChecking(Strictness::No),
            ),
            (
                "StrictHostKeyChecking True",
                Setting::StrictHostKeyChecking(Strictness::Yes),
            ),
            (
                "UserKnownHostsFile ~/a \"/b c\"",
                Setting::UserKnownHostsFile(vec!["~/a".into(), "/b c".into()]),
            ),
            ("IdentityAgent none", Setting::IdentityAgent("none".into())),
            (
                "ChallengeResponseAuthentication no",
                Setting::KbdInteractiveAuthentication(false),
            ),
            (
                "PreferredAuthentications gssapi-with-mic,publickey,password,publickey",
                Setting::PreferredAuthentications(vec![Method::PublicKey, Method::Password]),
            ),
            ("RequestTTY force", Setting::RequestTty(RequestTty::Force)),
            ("RequestTTY no", Setting::RequestTty(RequestTty::No)),
            (
                "LocalForward [::1]:81 h:80",
                Setting::LocalForward(ForwardSpec {
                    listen: Listen::Tcp {
                        bind: Bind::Address("::1".into()),
                        port: 81,
                    },
                    target: Target::Tcp {
                        host: "h".into(),
                        port: 80,
                    },
                }),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line), Ok(want), "{line}");
        }
    }

    #[test]
    fn values_ssh_refuses() {
        let cases = [
            ("Port 0", "Bad port '0'."),
            ("Port 65536", "Bad port '65536'."),
            ("Port +22", "Bad port '+22'."),
            ("Port 22#x", "Bad port '22#x'."),
            ("Port 22 23", "keyword port extra arguments at end of line"),
            ("BatchMode maybe", "unsupported option \"maybe\"."),
            ("ServerAliveInterval -1", "invalid time value."),
            ("ServerAliveInterval 1x", "invalid time value."),
            ("ServerAliveInterval m", "invalid time value."),
            ("ServerAliveInterval 99999999999", "invalid time value."),
            ("ServerAliveInterval 3000000000s", "invalid time value."),
            ("ServerAliveCountMax -1", "integer value '-1' is invalid."),
            ("ConnectTimeout soon", "invalid time value."),
            ("RekeyLimit 15", "RekeyLimit too small"),
            ("RekeyLimit 1x", "Bad number '1x'"),
            (
                "RekeyLimit 1G 1h 2",
                "keyword rekeylimit extra arguments at end of line",
            ),
            ("RekeyLimit 99999999999T", "Bad number '99999999999T'"),
            ("LogLevel loud", "unsupported log level 'loud'"),
            ("RequestTTY sometimes", "unsupported option \"sometimes\"."),
            (
                "StrictHostKeyChecking maybe",
                "unsupported option \"maybe\".",
            ),
            ("LocalForward 8080", "Missing target argument."),
            ("LocalForward 8080:h:80", "Missing target argument."),
            ("LocalForward 0 h:80", "Bad forwarding specification."),
            ("LocalForward 8080 h", "Bad forwarding specification."),
            (
                "HostName %x.example",
                "HostName: unknown or unsupported token %x in '%x.example'",
            ),
            (
                "IdentityFile ~/k%",
                "IdentityFile: '%' at the end of '~/k%'",
            ),
            (
                "IdentityFile ~/%C",
                "IdentityFile: unknown or unsupported token %C in '~/%C'",
            ),
            (
                "PreferredAuthentications hostbased",
                "no usable method in PreferredAuthentications 'hostbased'",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line), Err(want.to_owned()), "{line}");
        }
        assert!(parse("Ciphers rc4").unwrap_err().contains("rc4"));
        assert!(parse("MACs =hmac-md5").is_err());
        assert_eq!(parse("ForwardAgent yes"), Err("unknown".into()));
    }

    #[test]
    fn percent_tokens() {
        let lookup = |c| match c {
            'h' => Some("host"),
            'r' => Some("remote"),
            _ => None,
        };
        assert_eq!(
            expand_percent("%h-%r/%%h", lookup),
            Ok("host-remote/%h".into())
        );
        assert_eq!(expand_percent("plain", lookup), Ok("plain".into()));
        assert_eq!(expand_percent("%q", lookup), Err('q'));
        assert_eq!(expand_percent("end%", lookup), Err('%'));
    }

    #[test]
    fn every_setting_names_its_keyword() {
        for line in [
            "Port 2",
            "IdentityFile x",
            "LocalForward 1 h:2",
            "RequestTTY yes",
        ] {
            let setting = parse(line).unwrap();
            let keyword = line.split(' ').next().unwrap().to_ascii_lowercase();
            assert_eq!(setting.keyword(), keyword);
        }
        assert!(parse("IdentityFile x").unwrap().accumulates());
        assert!(!parse("Port 2").unwrap().accumulates());
    }
}
