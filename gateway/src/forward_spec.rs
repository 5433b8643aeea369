//! Forwarding specifications in ssh(1)'s language: `-L`, the `LocalForward` keyword of
//! ssh_config(5), and `-W`.
//!
//! ssh(1) documents four shapes for `-L`:
//!
//! ```text
//! -L [bind_address:]port:host:hostport
//! -L [bind_address:]port:remote_socket
//! -L local_socket:host:hostport
//! -L local_socket:remote_socket
//! ```
//!
//! Fields are separated by `:`. A field in square brackets is taken literally, which is how
//! IPv6 addresses are written (`[::1]:8080:[fe80::1]:80`); a backslash outside brackets
//! escapes the next character; a field holding a `/` is a Unix socket path. These are the
//! rules ssh applies, so every specification ssh accepts parses to the same meaning here.
//!
//! ```
//! use gateway::forward_spec::{Bind, ForwardSpec, Listen, Target};
//!
//! let spec = ForwardSpec::parse_local("*:8080:db.internal:5432").unwrap();
//! assert_eq!(spec.listen, Listen::Tcp { bind: Bind::All, port: 8080 });
//! assert_eq!(spec.target, Target::Tcp { host: "db.internal".into(), port: 5432 });
//! ```

use std::fmt;
use std::path::PathBuf;

/// The address a TCP listener binds, as the bind_address of ssh(1)'s `-L` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bind {
    /// No bind address: loopback only, unless GatewayPorts is on (ssh_config(5)).
    Default,
    /// `*` or an empty bind address: every interface.
    All,
    /// A host name or address, `localhost` included.
    Address(String),
}

/// Where the local end of a forward listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Tcp { bind: Bind, port: u16 },
    Unix(PathBuf),
}

/// Where the remote end of a forward connects, as the server sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

/// One local forward: `-L` or `LocalForward`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardSpec {
    pub listen: Listen,
    pub target: Target,
}

/// The host and port of a `-W` stdio forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StdioForward {
    pub host: String,
    pub port: u16,
}

/// Which option a bad specification came from; it picks the wording of the error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecKind {
    /// `-L` on the command line.
    Local,
    /// `LocalForward` in a configuration file.
    LocalConfig,
    /// `-W` on the command line.
    Stdio,
}

/// A forwarding specification that could not be parsed. It displays as ssh's one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadForward {
    pub kind: SpecKind,
    pub spec: String,
}

impl fmt::Display for BadForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            SpecKind::Local | SpecKind::LocalConfig => "local",
            SpecKind::Stdio => "stdio",
        };
        write!(f, "Bad {what} forwarding specification '{}'", self.spec)
    }
}

impl std::error::Error for BadForward {}

/// One `:`-separated field, and whether it names a Unix socket.
#[derive(Debug, PartialEq, Eq)]
struct Field {
    text: String,
    is_path: bool,
}

/// Splits a specification into at most five fields as ssh does (five so that a fifth field
/// is seen and refused). Returns `None` for an unclosed bracket, text after a closing
/// bracket, or a trailing backslash.
fn split_fields(spec: &str) -> Option<Vec<Field>> {
    let mut rest = spec.trim_start_matches([' ', '\t']);
    let mut fields = Vec::new();
    while !rest.is_empty() && fields.len() < 5 {
        if let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']')?;
            let text = &inner[..close];
            rest = match &inner[close + 1..] {
                "" => "",
                after => after.strip_prefix(':')?,
            };
            fields.push(Field {
                text: text.to_owned(),
                is_path: text.contains('/'),
            });
            continue;
        }

        let mut text = String::new();
        let mut chars = rest.chars();
        rest = "";
        while let Some(c) = chars.next() {
            match c {
                '\\' => text.push(chars.next()?),
                ':' => {
                    rest = chars.as_str();
                    break;
                }
                c => text.push(c),
            }
        }
        let is_path = text.contains('/');
        fields.push(Field { text, is_path });
    }
    if !rest.is_empty() {
        return None;
    }
    Some(fields)
}

/// A port as ssh's `a2port` reads it, minus service names: 0 to 65535.
fn port(field: &Field) -> Option<u16> {
    if field.text.is_empty() || !field.text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    field.text.parse().ok()
}

/// A listening port: ssh refuses port 0 for local forwards, although `-R` takes it.
fn listen_port(field: &Field) -> Option<u16> {
    port(field).filter(|&p| p != 0)
}

/// A port to connect to, which must not be 0.
fn target_port(field: &Field) -> Option<u16> {
    port(field).filter(|&p| p != 0)
}

fn bind(field: &Field) -> Bind {
    match field.text.as_str() {
        "" | "*" => Bind::All,
        host => Bind::Address(host.to_owned()),
    }
}

fn tcp_target(host: &Field, port: &Field) -> Option<Target> {
    // ssh passes an empty host on to the server, which then fails to connect; refusing it
    // here says what is wrong at once.
    if host.text.is_empty() {
        return None;
    }
    Some(Target::Tcp {
        host: host.text.clone(),
        port: target_port(port)?,
    })
}

fn unix(field: &Field) -> Option<PathBuf> {
    (!field.text.is_empty()).then(|| PathBuf::from(&field.text))
}

/// The shapes of ssh(1)'s `-L`, told apart by the field count and which fields are paths.
fn parse_fields(fields: &[Field]) -> Option<ForwardSpec> {
    let tcp = |bind, port: &Field| {
        Some(Listen::Tcp {
            bind,
            port: listen_port(port)?,
        })
    };
    let (listen, target) = match fields {
        [local, remote] if local.is_path && remote.is_path => {
            (Listen::Unix(unix(local)?), Target::Unix(unix(remote)?))
        }
        [port, remote] if remote.is_path => {
            (tcp(Bind::Default, port)?, Target::Unix(unix(remote)?))
        }
        [local, host, port] if local.is_path => {
            (Listen::Unix(unix(local)?), tcp_target(host, port)?)
        }
        [address, port, remote] if remote.is_path => {
            (tcp(bind(address), port)?, Target::Unix(unix(remote)?))
        }
        [port, host, hostport] => (tcp(Bind::Default, port)?, tcp_target(host, hostport)?),
        [address, port, host, hostport] => (tcp(bind(address), port)?, tcp_target(host, hostport)?),
        _ => return None,
    };
    Some(ForwardSpec { listen, target })
}

impl ForwardSpec {
    /// Parses the argument of ssh(1)'s `-L`.
    ///
    /// Listening port 0 is refused, as ssh refuses it for local forwards. Ports are
    /// numbers only: ssh also looks service names such as `http` up in the system's
    /// services database, which this parser does not read.
    pub fn parse_local(spec: &str) -> Result<Self, BadForward> {
        split_fields(spec)
            .as_deref()
            .and_then(parse_fields)
            .ok_or_else(|| BadForward {
                kind: SpecKind::Local,
                spec: spec.to_owned(),
            })
    }

    /// Parses ssh_config(5)'s `LocalForward [bind_address:]port host:hostport`, given its
    /// two arguments; either side may be a Unix socket path as with `-L`.
    pub fn parse_local_config(listen: &str, target: &str) -> Result<Self, BadForward> {
        let joined = format!("{listen}:{target}");
        split_fields(&joined)
            .as_deref()
            .and_then(parse_fields)
            .ok_or(BadForward {
                kind: SpecKind::LocalConfig,
                spec: joined,
            })
    }
}

impl StdioForward {
    /// Parses the argument of ssh(1)'s `-W host:port`; an IPv6 address goes in brackets.
    ///
    /// ssh also takes a bare Unix socket path here in recent versions; that form is refused
    /// until the stdio forward can open a socket channel.
    pub fn parse(spec: &str) -> Result<Self, BadForward> {
        let parsed = split_fields(spec).and_then(|fields| match fields.as_slice() {
            [host, port] if !host.is_path && !host.text.is_empty() => Some(Self {
                host: host.text.clone(),
                port: target_port(port)?,
            }),
            _ => None,
        });
        parsed.ok_or_else(|| BadForward {
            kind: SpecKind::Stdio,
            spec: spec.to_owned(),
        })
    }
}

impl fmt::Display for Listen {
    /// Writes the listening side as ssh -G does: `port`, `[bind]:port` or a path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp {
                bind: Bind::Default,
                port,
            } => write!(f, "{port}"),
            Self::Tcp {
                bind: Bind::All,
                port,
            } => write!(f, "[*]:{port}"),
            Self::Tcp {
                bind: Bind::Address(a),
                port,
            } => write!(f, "[{a}]:{port}"),
            Self::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { host, port } => write!(f, "[{host}]:{port}"),
            Self::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(bind: Bind, port: u16) -> Listen {
        Listen::Tcp { bind, port }
    }

    fn to(host: &str, port: u16) -> Target {
        Target::Tcp {
            host: host.into(),
            port,
        }
    }

    fn addr(a: &str) -> Bind {
        Bind::Address(a.into())
    }

    fn sock(p: &str) -> PathBuf {
        PathBuf::from(p)
    }

    #[test]
    fn local_forms_ssh_accepts() {
        let cases: Vec<(&str, Listen, Target)> = vec![
            ("8080:h:80", tcp(Bind::Default, 8080), to("h", 80)),
            ("*:8080:h:80", tcp(Bind::All, 8080), to("h", 80)),
            (":8080:h:80", tcp(Bind::All, 8080), to("h", 80)),
            (
                "localhost:8080:h:80",
                tcp(addr("localhost"), 8080),
                to("h", 80),
            ),
            (
                "10.0.0.1:1:h:65535",
                tcp(addr("10.0.0.1"), 1),
                to("h", 65535),
            ),
            (
                "[::1]:8080:[fe80::1]:80",
                tcp(addr("::1"), 8080),
                to("fe80::1", 80),
            ),
            (
                "8080:[2001:db8::5]:22",
                tcp(Bind::Default, 8080),
                to("2001:db8::5", 22),
            ),
            ("[*]:8080:h:80", tcp(Bind::All, 8080), to("h", 80)),
            (
                "8080:/run/r.sock",
                tcp(Bind::Default, 8080),
                Target::Unix(sock("/run/r.sock")),
            ),
            (
                "b:8080:/r.sock",
                tcp(addr("b"), 8080),
                Target::Unix(sock("/r.sock")),
            ),
            ("/l.sock:h:80", Listen::Unix(sock("/l.sock")), to("h", 80)),
            (
                "/l.sock:/r.sock",
                Listen::Unix(sock("/l.sock")),
                Target::Unix(sock("/r.sock")),
            ),
            (
                "./rel/l.sock:h:80",
                Listen::Unix(sock("./rel/l.sock")),
                to("h", 80),
            ),
            ("[/l s]:h:80", Listen::Unix(sock("/l s")), to("h", 80)),
            (r"8080:h\:x:80", tcp(Bind::Default, 8080), to("h:x", 80)),
            ("8080:h:80:", tcp(Bind::Default, 8080), to("h", 80)),
            (" \t8080:h:80", tcp(Bind::Default, 8080), to("h", 80)),
            ("08080:h:080", tcp(Bind::Default, 8080), to("h", 80)),
        ];
        for (spec, listen, target) in cases {
            let parsed = ForwardSpec::parse_local(spec);
            assert_eq!(parsed, Ok(ForwardSpec { listen, target }), "{spec}");
        }
    }

    #[test]
    fn local_forms_ssh_refuses() {
        for spec in [
            "",
            "8080",
            "8080:h",
            "a:b:c",
            "0:h:80",
            "8080:h:0",
            "8080:h:65536",
            "70000:h:80",
            "-1:h:80",
            "+80:h:80",
            "8080:h:80:extra",
            "1:h:1 ",
            "::1:8080:h:80",
            "[::1:8080:h:80",
            "[h]x:1:h:2",
            "8080::80",
            "/l.sock",
            "8080:h:http",
            r"8080:h:80\",
            "a:b:c:d:e",
        ] {
            let err = ForwardSpec::parse_local(spec).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("Bad local forwarding specification '{spec}'")
            );
        }
    }

    #[test]
    fn local_forward_keyword() {
        let cases: Vec<(&str, &str, Listen, Target)> = vec![
            ("8080", "h:80", tcp(Bind::Default, 8080), to("h", 80)),
            ("[::1]:81", "h:80", tcp(addr("::1"), 81), to("h", 80)),
            (
                "*:82",
                "[fe80::1]:80",
                tcp(Bind::All, 82),
                to("fe80::1", 80),
            ),
            ("/tmp/s", "h:1", Listen::Unix(sock("/tmp/s")), to("h", 1)),
            (
                "8080",
                "/r.sock",
                tcp(Bind::Default, 8080),
                Target::Unix(sock("/r.sock")),
            ),
        ];
        for (listen_arg, target_arg, listen, target) in cases {
            let parsed = ForwardSpec::parse_local_config(listen_arg, target_arg);
            assert_eq!(parsed, Ok(ForwardSpec { listen, target }), "{listen_arg}");
        }
        assert!(ForwardSpec::parse_local_config("8080", "h").is_err());
        assert!(ForwardSpec::parse_local_config("0", "h:80").is_err());
    }

    #[test]
    fn stdio_forward() {
        let ok = |host: &str, port| {
            Ok(StdioForward {
                host: host.into(),
                port,
            })
        };
        assert_eq!(StdioForward::parse("h:22"), ok("h", 22));
        assert_eq!(StdioForward::parse("[::1]:22"), ok("::1", 22));
        assert_eq!(StdioForward::parse("[h]:22"), ok("h", 22));
        for bad in [
            "h", "h:0", "a:b:c", "22", ":22", "h:http", "/tmp/s", "h:65536", "",
        ] {
            let err = StdioForward::parse(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("Bad stdio forwarding specification '{bad}'")
            );
        }
    }

    #[test]
    fn displays_as_ssh_dash_g() {
        let shown = |s: &str| {
            let spec = ForwardSpec::parse_local(s).unwrap();
            format!("{} {}", spec.listen, spec.target)
        };
        assert_eq!(shown("8080:h:80"), "8080 [h]:80");
        assert_eq!(shown("*:8080:h:80"), "[*]:8080 [h]:80");
        assert_eq!(shown("[::1]:8080:[fe80::1]:80"), "[::1]:8080 [fe80::1]:80");
        assert_eq!(shown("/l.sock:/r.sock"), "/l.sock /r.sock");
    }
}
