//! Resolution tests. The expected values were checked against `ssh -G` (OpenSSH 9.2).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::forward_spec::{Bind, ForwardSpec, Listen, Target};

fn config(text: &str) -> SshConfig {
    SshConfig::parse_str(text, Path::new("cfg"), Path::new("/nonexistent")).unwrap()
}

fn error(text: &str) -> String {
    SshConfig::parse_str(text, Path::new("cfg"), Path::new("/nonexistent"))
        .unwrap_err()
        .to_string()
}

fn query<'a>(host: &'a str, user: Option<&'a str>) -> Query<'a> {
    Query {
        host,
        user,
        local_user: "alice",
    }
}

/// The value of `keyword` for `host` as ssh -G would print it, roughly.
fn value(text: &str, host: &str, keyword: &str) -> Option<String> {
    let resolved = config(text).resolve_for(&query(host, None));
    resolved.get(keyword).map(|s| match s {
        Setting::User(u) => u.clone(),
        Setting::Port(p) => p.to_string(),
        Setting::HostName(h) => h.clone(),
        Setting::IdentityFile(f) => f.clone(),
        other => format!("{other:?}"),
    })
}

#[test]
fn host_blocks_first_value_wins() {
    let text = "\
# global defaults come first
User top
Host bastion
    HostName 192.0.2.7
    User ops
    Port 2222
Host *.internal bastion
    Port 22
    User nobody
Host *
    Port 2200
    Compression yes
";
    let cases = [
        ("bastion", "port", Some("2222")),
        ("bastion", "user", Some("top")),
        ("bastion", "hostname", Some("192.0.2.7")),
        ("db.internal", "port", Some("22")),
        ("db.internal", "hostname", None),
        ("other", "port", Some("2200")),
        ("BASTION", "port", Some("2200")),
    ];
    for (host, keyword, want) in cases {
        assert_eq!(
            value(text, host, keyword).as_deref(),
            want,
            "{host} {keyword}"
        );
    }
}

#[test]
fn host_patterns_like_ssh() {
    let cases = [
        ("Host foo", "foo", true),
        ("Host fo?", "foo", true),
        ("Host fo?", "fooo", false),
        ("Host f*", "foo", true),
        ("Host *", "anything.at.all", true),
        ("Host a b foo", "foo", true),
        ("Host=foo", "foo", true),
        ("Host foo", "FOO", false),
        ("Host * !foo", "foo", false),
        ("Host !foo *", "foo", false),
        ("Host * !foo", "bar", true),
        ("Host !foo", "bar", false),
        ("Host !foo", "foo", false),
        (
            "Host *.example.com !bad.example.com",
            "good.example.com",
            true,
        ),
        (
            "Host *.example.com !bad.example.com",
            "bad.example.com",
            false,
        ),
        ("Host 10.0.?.*", "10.0.1.200", true),
        ("Host \"foo\"", "foo", true),
    ];
    for (host_line, host, applies) in cases {
        let text = format!("{host_line}\n  User matched\n");
        assert_eq!(
            value(&text, host, "user").is_some(),
            applies,
            "{host_line} for {host}"
        );
    }
}

#[test]
fn match_criteria() {
    let cases = [
        ("Match all", "foo", true),
        ("Match host foo", "foo", true),
        ("Match host FOO", "foo", true),
        ("Match host foo", "FOO", true),
        ("Match host bar", "foo", false),
        ("Match host foo,!bar", "foo", true),
        ("Match host *,!foo", "foo", false),
        ("Match !host bar", "foo", true),
        ("Match !host foo", "foo", false),
        ("Match originalhost foo", "foo", true),
        ("Match host foo user alice", "foo", true),
        ("Match host foo user bob", "foo", false),
        ("Match localuser alice", "foo", true),
        ("Match !localuser alice", "foo", false),
        ("MATCH HOST foo", "foo", true),
        ("Match exec true", "foo", false),
        ("Match !exec false", "foo", false),
        ("Match canonical all", "foo", false),
        ("Match final", "foo", false),
        ("Match final all", "foo", false),
        ("Match host foo exec true", "foo", false),
        ("Match tagged x", "foo", false),
        ("Match localnetwork 10.0.0.0/8", "foo", false),
    ];
    for (match_line, host, applies) in cases {
        let text = format!("{match_line}\n  User matched\n");
        assert_eq!(
            value(&text, host, "user").is_some(),
            applies,
            "{match_line} for {host}"
        );
    }
}

#[test]
fn match_host_sees_hostname_obtained_so_far() {
    let text = "\
Host short
    HostName real.%h.example
Match host real.*
    User viahostname
Match originalhost real.*
    Port 1
Match originalhost short
    Port 2
";
    assert_eq!(value(text, "short", "user").as_deref(), Some("viahostname"));
    assert_eq!(value(text, "short", "port").as_deref(), Some("2"));
    assert_eq!(
        value(text, "short", "hostname").as_deref(),
        Some("real.%h.example")
    );
    assert_eq!(value(text, "other", "user"), None);
}

#[test]
fn match_user_sees_command_line_user_first() {
    let text = "\
Match user bob
    Port 1
Host *
    User carol
Match user carol
    Port 2
Match user alice
    Port 3
";
    let port = |user| {
        config(text)
            .resolve_for(&query("h", user))
            .get("port")
            .cloned()
    };
    assert_eq!(port(Some("bob")), Some(Setting::Port(1)));
    assert_eq!(port(None), Some(Setting::Port(2)));
    // With no User yet, `Match user` tests the local user.
    let local = "Match user alice\n Port 3\n";
    assert_eq!(
        config(local).resolve_for(&query("h", None)).get("port"),
        Some(&Setting::Port(3))
    );
}

#[test]
fn identity_files_and_forwards_add_up() {
    let text = "\
Host a
    IdentityFile ~/.ssh/a
    LocalForward 8080 db:5432
Host *
    IdentityFile \"~/.ssh/with space\"
    IdentityFile ~/.ssh/a
    LocalForward [::1]:9090 [fe80::1]:80
";
    let resolved = config(text).resolve_for(&query("a", None));
    let files: Vec<_> = resolved.all("identityfile").collect();
    assert_eq!(
        files,
        [
            &Setting::IdentityFile("~/.ssh/a".into()),
            &Setting::IdentityFile("~/.ssh/with space".into()),
            &Setting::IdentityFile("~/.ssh/a".into()),
        ]
    );
    let forwards: Vec<_> = resolved.all("localforward").collect();
    assert_eq!(
        forwards,
        [
            &Setting::LocalForward(ForwardSpec {
                listen: Listen::Tcp {
                    bind: Bind::Default,
                    port: 8080
                },
                target: Target::Tcp {
                    host: "db".into(),
                    port: 5432
                },
            }),
            &Setting::LocalForward(ForwardSpec {
                listen: Listen::Tcp {
                    bind: Bind::Address("::1".into()),
                    port: 9090
                },
                target: Target::Tcp {
                    host: "fe80::1".into(),
                    port: 80
                },
            }),
        ]
    );
}

#[test]
fn syntax_variants() {
    let text = "\
\t# indented comment

HOSTNAME=x.example
\tport\t=\t5 # trailing comment
user = \"a b\"
ServerAliveInterval=1m
ConnectTimeout  none
";
    let resolved = config(text).resolve_for(&query("h", None));
    assert_eq!(
        resolved.get("hostname"),
        Some(&Setting::HostName("x.example".into()))
    );
    assert_eq!(resolved.get("port"), Some(&Setting::Port(5)));
    assert_eq!(resolved.get("user"), Some(&Setting::User("a b".into())));
    assert_eq!(
        resolved.get("serveraliveinterval"),
        Some(&Setting::ServerAliveInterval(Duration::from_secs(60)))
    );
    assert_eq!(
        resolved.get("connecttimeout"),
        Some(&Setting::ConnectTimeout(None))
    );
}

#[test]
fn errors_name_file_and_line() {
    let cases = [
        ("Port 22#x\n", "cfg line 1: Bad port '22#x'."),
        ("\n\nPort 0\n", "cfg line 3: Bad port '0'."),
        ("Port 65536\n", "cfg line 1: Bad port '65536'."),
        (
            "Port 22 23\n",
            "cfg line 1: keyword port extra arguments at end of line",
        ),
        ("Host nomatch\n  Port 0\n", "cfg line 2: Bad port '0'."),
        (
            "BatchMode maybe\n",
            "cfg line 1: unsupported option \"maybe\".",
        ),
        (
            "BatchMode\n",
            "cfg line 1: no argument after keyword \"batchmode\"",
        ),
        ("Host\n", "cfg line 1: no argument after keyword \"host\""),
        ("Match\n", "cfg line 1: no argument after keyword \"match\""),
        (
            "Match all host foo\n",
            "cfg line 1: 'all' cannot be combined with other Match attributes",
        ),
        (
            "Match host\n",
            "cfg line 1: Missing Match criteria for host",
        ),
        (
            "Match exec\n",
            "cfg line 1: Missing Match criteria for exec",
        ),
        (
            "Match bogus x\n",
            "cfg line 1: Unsupported Match attribute bogus",
        ),
        (
            "Match exec x all\n",
            "cfg line 1: 'all' cannot be combined with other Match attributes",
        ),
        (
            "Host *\n  User \"unterminated\n",
            "cfg line 2: invalid quotes",
        ),
        (
            "ServerAliveInterval -1\n",
            "cfg line 1: invalid time value.",
        ),
        ("RekeyLimit 15\n", "cfg line 1: RekeyLimit too small"),
        (
            "LocalForward 8080:h:80\n",
            "cfg line 1: Missing target argument.",
        ),
        (
            "LocalForward 8080 h:0\n",
            "cfg line 1: Bad forwarding specification.",
        ),
        (
            "IgnoreUnknown a b\n",
            "cfg line 1: keyword ignoreunknown extra arguments at end of line",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(error(text), want, "{text:?}");
    }
}

#[test]
fn unknown_keywords_are_skipped() {
    let text = "\
ForwardAgent yes
IgnoreUnknown UseKeychain,AddKeys*
UseKeychain yes
NoSuchKeyword at all
Port 7
";
    assert_eq!(value(text, "h", "port").as_deref(), Some("7"));
}

#[test]
fn command_line_origin_reads_like_ssh() {
    assert_eq!(Origin::CommandLine.to_string(), "command-line line 0");
}

#[test]
fn config_source_from_flag() {
    assert_eq!(ConfigSource::from_flag(None), ConfigSource::Default);
    assert_eq!(
        ConfigSource::from_flag(Some(Path::new("none"))),
        ConfigSource::None
    );
    assert_eq!(
        ConfigSource::from_flag(Some(Path::new("/etc/x"))),
        ConfigSource::File(PathBuf::from("/etc/x"))
    );
    assert!(
        SshConfig::load(&ConfigSource::None)
            .unwrap()
            .files
            .is_empty()
    );
    let missing = SshConfig::load(&ConfigSource::File("/nonexistent/config".into()));
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .starts_with("Can't open user config file /nonexistent/config: ")
    );
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("gateway-ssh-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("config.d")).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn include_relative_wildcard_and_scoped() {
    let dir = Scratch::new("include");
    dir.write("config.d/20-b.conf", "Host b\n  Port 20\n");
    dir.write("config.d/10-a.conf", "Host *\n  User from-include\n");
    dir.write("config.d/.hidden", "Port 99\n");
    dir.write("scoped", "Port 30\nHost *\n  HostName scoped.example\n");
    let text = "\
Include config.d/*.conf missing-file
Host only-here
    Include scoped
Host *
    Port 40
";
    let cfg = SshConfig::parse_str(text, Path::new("cfg"), &dir.0).unwrap();
    let get = |host, keyword| cfg.resolve_for(&query(host, None)).get(keyword).cloned();

    assert_eq!(get("b", "port"), Some(Setting::Port(20)));
    assert_eq!(get("b", "user"), Some(Setting::User("from-include".into())));
    assert_eq!(get("x", "port"), Some(Setting::Port(40)));
    // The included file's `Host *` cannot widen the block around the Include.
    assert_eq!(get("only-here", "port"), Some(Setting::Port(30)));
    assert_eq!(
        get("only-here", "hostname"),
        Some(Setting::HostName("scoped.example".into()))
    );
    assert_eq!(get("x", "hostname"), None);
}

#[test]
fn include_errors() {
    let dir = Scratch::new("include-errors");
    dir.write("self", "Include self\n");
    let bad = dir.write("bad", "\nPort 0\n");
    let err = SshConfig::parse_str("Include self\n", Path::new("cfg"), &dir.0).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("self line 1: Include nesting too deep"),
        "{err}"
    );
    let err = SshConfig::parse_str("Host x\nInclude bad\n", Path::new("cfg"), &dir.0);
    assert_eq!(
        err.unwrap_err().to_string(),
        format!("{} line 2: Bad port '0'.", bad.display())
    );
    let err = SshConfig::parse_str("Include */x\n", Path::new("cfg"), &dir.0).unwrap_err();
    assert!(err.to_string().contains("last component only"), "{err}");
}

#[test]
fn resolved_keeps_origin() {
    let resolved = config("Host *\n\n  Port 9\n").resolve_for(&query("h", None));
    assert_eq!(
        resolved.settings,
        [Applied {
            setting: Setting::Port(9),
            origin: Origin::File {
                path: Arc::from(Path::new("cfg")),
                line: 3
            },
        }]
    );
}

/// Lines built from the characters the parsers treat specially, in every order a small
/// generator reaches; none may panic, whatever the verdict.
#[test]
fn hostile_lines_never_panic() {
    const ALPHABET: &[&str] = &[
        "\"",
        "'",
        "\\",
        "#",
        "=",
        " ",
        "\t",
        "[",
        "]",
        ":",
        "/",
        "!",
        "*",
        "?",
        "%",
        "%h",
        "Host",
        "Match",
        "host",
        "all",
        "Port",
        "LocalForward",
        "IdentityFile",
        "RekeyLimit",
        "Include",
        "0",
        "65535",
        "99999999999999999999",
        "1h",
        "k",
        "é",
        "\r",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        // xorshift64: a fixed sequence, so a failure reproduces.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = next() % 12;
        let line: String = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        if let Ok(Some(parsed)) = split_line(&line) {
            let _ = Setting::parse(&parsed.keyword, &parsed.args);
        }
        let text = format!("{line}\nHost x\n{line}\n");
        if let Ok(config) = SshConfig::parse_str(&text, Path::new("cfg"), Path::new("/nonexistent"))
        {
            let _ = config.resolve_for(&query("x", None));
        }
        let _ = ForwardSpec::parse_local(&line);
        let _ = crate::forward_spec::StdioForward::parse(&line);
    }
}
