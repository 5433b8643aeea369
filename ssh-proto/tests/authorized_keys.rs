//! `authorized_keys` parsing and the checks made with its options (sshd(8), "AUTHORIZED_KEYS
//! FILE FORMAT"): every option alone and combined, quoting, `from=` with CIDR and negation,
//! `restrict` and the options that undo it, lookups, malformed and hostile lines, and a
//! cross-check against OpenSSH's own reader, `ssh-keygen -l`, both recorded in
//! `vectors/authorized_keys/` and live.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;

use ssh_proto::authorized_keys::{
    AuthorizedKeys, ClientInfo, Entry, KeyOptions, LineError, LookupError, MAX_LINE_LEN,
    OptionError, PermitListen, PermitOpen, PortSpec, Refusal, RefusalReason, TunnelDevice,
};
use ssh_proto::base64;
use ssh_proto::crypto::default_provider;
use ssh_proto::hostkey::PublicKey;

const EVERY_FORM: &[u8] =
    include_bytes!("../../vectors/authorized_keys/every-form.authorized_keys");
const EVERY_FORM_EXPECTED: &str = include_str!("../../vectors/authorized_keys/every-form.expected");

/// 2023-11-14, well before any expiry time used here.
const NOW: i64 = 1_700_000_000;

fn key(n: u8) -> PublicKey {
    PublicKey::Ed25519([n; 32])
}

fn key_line(options: &str, key: &PublicKey, comment: &str) -> String {
    let blob = base64::encode(&key.to_blob());
    let sep = if options.is_empty() { "" } else { " " };
    format!("{options}{sep}ssh-ed25519 {blob} {comment}")
}

fn opts(field: &str) -> KeyOptions {
    KeyOptions::parse(field).unwrap_or_else(|e| panic!("{field}: {e}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn client(addr: &str) -> ClientInfo<'static> {
    ClientInfo::new(ip(addr), None, NOW)
}

fn only_entry(text: &str) -> Entry {
    let keys = AuthorizedKeys::parse(text);
    assert_eq!(keys.warnings(), &[], "{text}");
    assert_eq!(keys.entries().len(), 1, "{text}");
    keys.entries()[0].clone()
}

fn only_warning(text: &str) -> LineError {
    let keys = AuthorizedKeys::parse(text);
    assert_eq!(keys.entries(), &[], "{text}");
    assert_eq!(keys.warnings().len(), 1, "{text}");
    keys.warnings()[0].error.clone()
}

fn option_error(field: &str) -> OptionError {
    match only_warning(&key_line(field, &key(1), "")) {
        LineError::Options(e) => e,
        other => panic!("{field}: expected an option error, got {other:?}"),
    }
}

/// The short names the vector file uses for each kind of warning.
fn kind(error: &LineError) -> &'static str {
    match error {
        LineError::TooLong(_) => "too-long",
        LineError::NulByte => "nul",
        LineError::NotUtf8 => "not-utf8",
        LineError::Options(e) => match e {
            OptionError::Unknown(_) => "unknown-option",
            OptionError::MissingValue(_) => "missing-value",
            OptionError::UnexpectedValue(_) => "unexpected-value",
            OptionError::MissingQuote(_) => "missing-quote",
            OptionError::UnterminatedQuote => "unterminated-quote",
            OptionError::TrailingText(_) => "trailing-text",
            OptionError::Duplicate(_) => "duplicate",
            OptionError::InvalidValue { .. } => "invalid-value",
            _ => "other-option-error",
        },
        LineError::MissingKey => "missing-key",
        LineError::UnknownKeyType(_) => "unknown-key-type",
        LineError::UnsupportedKeyType(_) => "unsupported-key-type",
        LineError::MissingKeyData => "missing-key-data",
        LineError::Base64(_) => "base64",
        LineError::Key(_) => "key",
        LineError::KeyTypeMismatch { .. } => "key-type-mismatch",
        _ => "other",
    }
}

fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint_sha256(default_provider())
}

/// What ssh-proto makes of each line, as the vector file writes it.
fn outcomes(keys: &AuthorizedKeys) -> BTreeMap<usize, String> {
    let mut out = BTreeMap::new();
    for e in keys.entries() {
        assert!(out.insert(e.line, fingerprint(&e.key)).is_none());
    }
    for w in keys.warnings() {
        let previous = out.insert(w.line, format!("skip:{}", kind(&w.error)));
        assert!(previous.is_none(), "line {} reported twice", w.line);
    }
    out
}

/// `(line, what ssh-keygen lists, what ssh-proto makes of it)` from the expected file.
fn expected_rows() -> Vec<(usize, String, String)> {
    EVERY_FORM_EXPECTED
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            assert_eq!(fields.len(), 3, "{l}");
            (
                fields[0].parse().unwrap(),
                fields[1].into(),
                fields[2].into(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The recorded cross-check with OpenSSH

/// Every line of the vector file comes out as recorded, and wherever ssh-proto accepts a
/// line, OpenSSH read the same key from it; wherever OpenSSH could not read a key,
/// ssh-proto skipped the line.
#[test]
fn every_form_matches_the_recorded_results() {
    let keys = AuthorizedKeys::parse_bytes(EVERY_FORM);
    let text_keys = AuthorizedKeys::parse(std::str::from_utf8(EVERY_FORM).unwrap());
    assert_eq!(
        keys, text_keys,
        "parse and parse_bytes agree on UTF-8 input"
    );

    let ours = outcomes(&keys);
    let rows = expected_rows();
    let expected: BTreeMap<usize, String> = rows.iter().map(|(l, _, o)| (*l, o.clone())).collect();
    assert_eq!(ours, expected);

    for (line, openssh, ours) in &rows {
        if ours.starts_with("SHA256:") {
            assert_eq!(openssh, ours, "line {line}: OpenSSH read another key");
        }
        if openssh == "-" {
            assert!(
                ours.starts_with("skip:"),
                "line {line}: OpenSSH read no key"
            );
        }
    }

    // The file covers each kind of outcome at least once.
    let accepted = rows.iter().filter(|r| r.2.starts_with("SHA256:")).count();
    let sshd_refuses = rows
        .iter()
        .filter(|r| r.1 != "-" && r.2.starts_with("skip:"))
        .count();
    let nobody_reads = rows.iter().filter(|r| r.1 == "-").count();
    assert!(accepted >= 40 && sshd_refuses >= 20 && nobody_reads >= 10);
}

/// A few lines of the vector file, read in full.
#[test]
fn every_form_options_are_read_as_written() {
    let keys = AuthorizedKeys::parse_bytes(EVERY_FORM);
    let entry = |comment: &str| {
        keys.entries()
            .iter()
            .find(|e| e.comment == comment)
            .unwrap_or_else(|| panic!("no entry with comment {comment:?}"))
    };

    let menu = &entry("menu").options;
    assert_eq!(
        menu.forced_command(),
        Some(r#"/usr/local/bin/menu --title "Jump host""#)
    );
    assert!(menu.permits_pty() && menu.is_restricted() && !menu.permits_port_forwarding());

    let forwards = &entry("forwards").options;
    assert_eq!(
        forwards.permit_open(),
        &[
            PermitOpen {
                host: "db.internal".into(),
                port: PortSpec::Number(5432)
            },
            PermitOpen {
                host: "2001:db8::10".into(),
                port: PortSpec::Number(443)
            },
            PermitOpen {
                host: "*".into(),
                port: PortSpec::Number(8080)
            },
            PermitOpen {
                host: "cache.internal".into(),
                port: PortSpec::Any
            },
        ]
    );

    let office = &entry("office").options;
    assert_eq!(
        office.environment(),
        &[
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("TZ".into(), "UTC".into())
        ]
    );
    assert!(office.from_allows(ip("10.9.8.7"), None));
    assert!(!office.from_allows(ip("192.168.1.13"), None));

    assert_eq!(
        entry("escapes").options.forced_command(),
        Some(r#"a "quoted" word, a comma, and \\ a backslash"#)
    );
    assert_eq!(
        entry("a comment with \"quotes\", commas, and no-pty").options,
        KeyOptions::default()
    );
    assert_eq!(entry("tab separated").line, 8);
    assert_eq!(entry("leading and doubled blanks").line, 9);

    let ca: Vec<&Entry> = keys
        .entries()
        .iter()
        .filter(|e| e.options.is_cert_authority())
        .collect();
    assert_eq!(ca.len(), 2);
    assert_eq!(ca[1].options.principals(), Some("alice,bob"));
    assert!(!ca[1].options.touch_required());
}

/// The live half of the cross-check: ssh-keygen reads each line of the vector file as
/// recorded, plus lines with bytes a text file cannot carry; ssh-proto never accepts a
/// line with another key than OpenSSH reads from it.
#[test]
fn ssh_keygen_agrees_live() {
    let dir =
        std::env::temp_dir().join(format!("ssh-proto-authorized-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("line");
    let keygen = |line: &[u8]| -> String {
        let mut contents = line.to_vec();
        contents.push(b'\n');
        std::fs::write(&file, contents).unwrap();
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(&file)
            .output()
            .expect("ssh-keygen runs (the OpenSSH client is installed)");
        if !out.status.success() {
            return "-".into();
        }
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout.split(' ').nth(1).unwrap_or("").to_owned()
    };

    let lines: Vec<&[u8]> = EVERY_FORM.split(|&b| b == b'\n').collect();
    let mut mismatches = Vec::new();
    for (line, openssh, _) in expected_rows() {
        let now = keygen(lines[line - 1]);
        if now != openssh {
            mismatches.push(format!(
                "line {line}: recorded {openssh}, ssh-keygen now says {now}"
            ));
        }
    }
    assert_eq!(mismatches, Vec::<String>::new());

    let k = key(9);
    let plain = key_line("", &k, "");
    let extra: Vec<(Vec<u8>, Option<&str>)> = vec![
        (format!("{plain}crlf\r").into_bytes(), None),
        (format!("{plain}latin-1 Jos\u{e9}").into_bytes(), None),
        ([plain.as_bytes(), b"Jos\xe9"].concat(), None),
        (
            [b"command=\"caf\xe9\" ", plain.as_bytes()].concat(),
            Some("not-utf8"),
        ),
        ([plain.as_bytes(), b"\0after a NUL"].concat(), Some("nul")),
        ([b"no-pty\0 ", plain.as_bytes()].concat(), Some("nul")),
    ];
    for (bytes, skip) in &extra {
        let ours = AuthorizedKeys::parse_bytes(bytes);
        let theirs = keygen(bytes);
        match skip {
            None => {
                assert_eq!(ours.warnings(), &[], "{}", bytes.escape_ascii());
                assert_eq!(theirs, fingerprint(&ours.entries()[0].key));
            }
            Some(kind_name) => {
                assert_eq!(ours.entries(), &[], "{}", bytes.escape_ascii());
                assert_eq!(kind(&ours.warnings()[0].error), *kind_name);
            }
        }
    }
    // OpenSSH reads a line only up to a NUL, so it takes the key before one; ssh-proto
    // refuses the line rather than guess what the rest was meant to say.
    assert_eq!(keygen(&extra[4].0), fingerprint(&k));

    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// Each option alone

#[test]
fn no_options_permit_everything() {
    let o = KeyOptions::default();
    assert_eq!(opts(""), o);
    assert!(o.permits_pty() && o.permits_port_forwarding() && o.permits_agent_forwarding());
    assert!(o.permits_x11_forwarding() && o.permits_user_rc() && o.touch_required());
    assert!(!o.is_restricted() && !o.is_cert_authority() && !o.verify_required());
    assert!(o.permits_open("anywhere", 1) && o.permits_listen("0.0.0.0", 65535));
    assert!(o.from_allows(ip("203.0.113.1"), Some("any.example")));
    assert_eq!(o.forced_command(), None);
    assert!(!o.is_expired(i64::MAX, 0));
}

/// Each `no-` flag turns off exactly its own permission.
#[test]
fn each_negative_flag_alone() {
    type Check = fn(&KeyOptions) -> bool;
    let all: [(&str, Check); 5] = [
        ("no-pty", KeyOptions::permits_pty),
        ("no-port-forwarding", KeyOptions::permits_port_forwarding),
        ("no-agent-forwarding", KeyOptions::permits_agent_forwarding),
        ("no-X11-forwarding", KeyOptions::permits_x11_forwarding),
        ("no-user-rc", KeyOptions::permits_user_rc),
    ];
    for (flag, _) in &all {
        let o = only_entry(&key_line(flag, &key(1), "")).options;
        for (other, permits) in &all {
            assert_eq!(permits(&o), flag != other, "{flag} and {other}");
        }
        assert!(!o.is_restricted());
    }

    let o = opts("no-port-forwarding");
    assert!(!o.permits_open("db", 5432) && !o.permits_listen("localhost", 8080));
}

/// `restrict` turns everything off, each positive flag after it turns one thing back on,
/// and a positive flag before it is undone.
#[test]
fn restrict_and_the_flags_that_undo_it() {
    let r = opts("restrict");
    assert!(r.is_restricted());
    assert!(!r.permits_pty() && !r.permits_port_forwarding() && !r.permits_agent_forwarding());
    assert!(!r.permits_x11_forwarding() && !r.permits_user_rc());
    assert!(!r.permits_open("db", 5432) && !r.permits_listen("localhost", 8080));

    type Check = fn(&KeyOptions) -> bool;
    let all: [(&str, Check); 5] = [
        ("pty", KeyOptions::permits_pty),
        ("port-forwarding", KeyOptions::permits_port_forwarding),
        ("agent-forwarding", KeyOptions::permits_agent_forwarding),
        ("X11-forwarding", KeyOptions::permits_x11_forwarding),
        ("user-rc", KeyOptions::permits_user_rc),
    ];
    for (flag, _) in &all {
        let o = opts(&format!("restrict,{flag}"));
        for (other, permits) in &all {
            assert_eq!(permits(&o), flag == other, "restrict,{flag} and {other}");
        }
        let undone = opts(&format!("{flag},restrict"));
        assert!(
            all.iter().all(|(_, permits)| !permits(&undone)),
            "{flag},restrict"
        );
    }

    let all_back = opts("restrict,pty,port-forwarding,agent-forwarding,x11-forwarding,user-rc");
    assert!(all.iter().all(|(_, permits)| permits(&all_back)));
    assert!(all_back.is_restricted());

    // The positive flags alone change nothing, and the last word wins.
    assert_eq!(opts("pty,user-rc"), KeyOptions::default());
    assert!(opts("no-pty,pty").permits_pty());
    assert!(!opts("pty,no-pty").permits_pty());
}

#[test]
fn command_alone() {
    let o = opts(r#"command="/usr/bin/uptime""#);
    assert_eq!(o.forced_command(), Some("/usr/bin/uptime"));
    assert!(
        o.permits_pty() && o.permits_port_forwarding(),
        "command restricts nothing else"
    );
    assert_eq!(opts(r#"command="""#).forced_command(), Some(""));
}

#[test]
fn environment_alone_and_repeated() {
    assert_eq!(
        opts(r#"environment="LANG=C""#).environment(),
        &[("LANG".into(), "C".into())]
    );

    // The first setting of a name wins; `=` in the value is kept.
    let o = opts(r#"environment="A=1",environment="B=x=y",environment="A=2",environment="_9=""#);
    assert_eq!(
        o.environment(),
        &[
            ("A".into(), "1".into()),
            ("B".into(), "x=y".into()),
            ("_9".into(), "".into())
        ]
    );

    for bad in ["NOEQUALS", "=value", "BAD-NAME=x", "SP ACE=x", "\u{e9}=x"] {
        let field = format!(r#"environment="{bad}""#);
        assert!(
            matches!(
                option_error(&field),
                OptionError::InvalidValue {
                    option: "environment",
                    ..
                }
            ),
            "{bad}"
        );
    }
}

#[test]
fn permitopen_alone_and_repeated() {
    let o = opts(r#"permitopen="db.internal:5432""#);
    assert!(o.permits_open("db.internal", 5432));
    assert!(!o.permits_open("db.internal", 5433));
    assert!(
        !o.permits_open("DB.internal", 5432),
        "no case folding, as in sshd"
    );
    assert!(!o.permits_open("other", 5432));
    assert!(
        o.permits_listen("localhost", 80),
        "permitopen does not limit -R"
    );

    let o = opts(
        r#"permitopen="db:5432",permitopen="[2001:db8::1]:443",permitopen="cache:*",permitopen="*:8080""#,
    );
    assert!(o.permits_open("db", 5432));
    assert!(o.permits_open("2001:db8::1", 443));
    assert!(
        !o.permits_open("[2001:db8::1]", 443),
        "brackets are not part of the host"
    );
    assert!(o.permits_open("cache", 1) && o.permits_open("cache", 65535));
    assert!(o.permits_open("anything.example", 8080));
    assert!(!o.permits_open("anything.example", 8081));

    // No pattern matching beyond a host of `*`.
    assert!(!opts(r#"permitopen="*.internal:22""#).permits_open("db.internal", 22));

    // Forwarding must still be on.
    assert!(!opts(r#"no-port-forwarding,permitopen="db:5432""#).permits_open("db", 5432));
    assert!(!opts(r#"restrict,permitopen="db:5432""#).permits_open("db", 5432));
    let o = opts(r#"restrict,port-forwarding,permitopen="db:5432""#);
    assert!(o.permits_open("db", 5432) && !o.permits_open("db", 22));

    for bad in [
        "db",
        "db:",
        "db:0",
        "db:65536",
        "db:x",
        "2001:db8::1:443",
        "[::1]",
        "[::1:22",
        "[::1]x:22",
        "[::1]/22",
        "db:+1",
        "db: 1",
        "db/22",
        "db:22:33",
        &format!("{}:22", "h".repeat(1025)),
    ] {
        let field = format!(r#"permitopen="{bad}""#);
        assert!(
            matches!(
                option_error(&field),
                OptionError::InvalidValue {
                    option: "permitopen",
                    ..
                }
            ),
            "{bad}"
        );
    }
}

#[test]
fn permitlisten_alone_and_repeated() {
    let o = opts(r#"permitlisten="8080""#);
    assert_eq!(
        o.permit_listen(),
        &[PermitListen {
            host: "*".into(),
            port: PortSpec::Number(8080)
        }]
    );
    assert!(o.permits_listen("localhost", 8080) && o.permits_listen("0.0.0.0", 8080));
    assert!(!o.permits_listen("localhost", 8081));
    assert!(o.permits_open("db", 1), "permitlisten does not limit -L");

    let o = opts(r#"permitlisten="localhost:2222",permitlisten="[::1]:*",permitlisten="*.lan:22""#);
    assert!(
        o.permits_listen("LOCALHOST", 2222),
        "the requested host is lowercased"
    );
    assert!(o.permits_listen("::1", 9));
    assert!(o.permits_listen("box.lan", 22) && !o.permits_listen("box.lan", 23));
    assert!(!o.permits_listen("127.0.0.1", 2222));
}

#[test]
fn expiry_time_alone_and_repeated() {
    let o = opts(r#"expiry-time="20300101Z""#);
    let expiry = 1_893_456_000;
    assert_eq!(o.expiry_times()[0].unix_time(0), expiry);
    assert!(!o.is_expired(expiry, 0), "still valid in its last second");
    assert!(o.is_expired(expiry + 1, 0));

    // Without `Z` the time is local: at UTC+2 it comes two hours sooner.
    let o = opts(r#"expiry-time="203001010000""#);
    assert!(!o.expiry_times()[0].is_utc());
    assert!(!o.is_expired(expiry, 0));
    assert!(o.is_expired(expiry - 7200 + 1, 2 * 3600));
    assert!(!o.is_expired(expiry + 3600, -2 * 3600));

    // The earliest of several counts.
    let o = opts(r#"expiry-time="20350101Z",expiry-time="20300101Z""#);
    assert!(o.is_expired(expiry + 1, 0));

    // Each form, checked against `date -u -d '2030-01-01 12:30:45' +%s` and so on.
    for (written, unix) in [
        ("19700102Z", 86_400),
        ("20240229Z", 1_709_164_800),
        ("203001011230Z", 1_893_501_000),
        ("20300101123045z", 1_893_501_045),
        ("20300101UTC", 1_893_456_000),
        ("21000301Z", 4_107_542_400),
    ] {
        let o = opts(&format!(r#"expiry-time="{written}""#));
        assert_eq!(o.expiry_times()[0].unix_time(0), unix, "{written}");
        assert!(o.expiry_times()[0].is_utc());
    }

    for bad in [
        "2030",
        "203001011",
        "20301301",
        "20300230",
        "20230229",
        "2030010124",
        "203001012360",
        "20300101-100",
        "19691231",
        "19700101Z",
        "20300101 ",
        "20300101ZZ",
        "Z",
        "UTC",
        "today",
    ] {
        let field = format!(r#"expiry-time="{bad}""#);
        assert!(
            matches!(
                option_error(&field),
                OptionError::InvalidValue {
                    option: "expiry-time",
                    ..
                }
            ),
            "{bad}"
        );
    }
}

#[test]
fn certificate_and_security_key_options_alone() {
    let o = opts("cert-authority");
    assert!(o.is_cert_authority());
    assert!(
        o.permits_pty(),
        "cert-authority restricts nothing by itself"
    );

    assert_eq!(
        opts(r#"principals="alice,bob""#).principals(),
        Some("alice,bob")
    );
    assert!(!opts("no-touch-required").touch_required());
    assert!(opts("no-touch-required,touch-required").touch_required());
    assert!(opts("verify-required").verify_required());

    assert_eq!(opts(r#"tunnel="0""#).tunnel(), Some(TunnelDevice::Unit(0)));
    assert_eq!(opts(r#"tunnel="ANY""#).tunnel(), Some(TunnelDevice::Any));
    assert_eq!(
        opts(r#"tunnel="1",tunnel="2""#).tunnel(),
        Some(TunnelDevice::Unit(2))
    );
    assert_eq!(
        opts(r#"tunnel="2147483645""#).tunnel(),
        Some(TunnelDevice::Unit(2_147_483_645))
    );
    for bad in ["", "tun0", "-1", "2147483646", "99999999999999999999"] {
        let field = format!(r#"tunnel="{bad}""#);
        assert!(
            matches!(option_error(&field), OptionError::InvalidValue { .. }),
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Combinations, quoting and case

#[test]
fn options_combine() {
    let o = opts(concat!(
        r#"no-agent-forwarding,command="/usr/bin/backup --full",from="10.0.0.0/8","#,
        r#"permitopen="db:5432",environment="MODE=nightly",no-pty,expiry-time="20300101Z""#
    ));
    assert!(!o.permits_agent_forwarding() && !o.permits_pty());
    assert!(o.permits_x11_forwarding() && o.permits_user_rc() && o.permits_port_forwarding());
    assert_eq!(o.forced_command(), Some("/usr/bin/backup --full"));
    assert_eq!(o.from_patterns(), Some("10.0.0.0/8"));
    assert!(o.from_allows(ip("10.1.1.1"), None) && !o.from_allows(ip("11.1.1.1"), None));
    assert!(o.permits_open("db", 5432) && !o.permits_open("db", 22));
    assert_eq!(o.environment(), &[("MODE".into(), "nightly".into())]);
    assert!(!o.is_expired(NOW, 0));
}

#[test]
fn quoting_and_escapes() {
    let command = |field: &str| opts(field).forced_command().map(str::to_owned);
    assert_eq!(
        command(r#"command="echo \"hi\"""#).as_deref(),
        Some(r#"echo "hi""#)
    );
    assert_eq!(command(r#"command="a\\b\d""#).as_deref(), Some(r"a\\b\d"));
    assert_eq!(
        command(r#"command="tab	and space, comma""#).as_deref(),
        Some("tab\tand space, comma")
    );
    assert_eq!(command(r#"command="\"""#).as_deref(), Some("\""));

    // Blanks inside quotes do not end the options field; the key is found after it.
    let entry = only_entry(&key_line(r#"command="ls -l /srv",no-pty"#, &key(3), "c"));
    assert_eq!(entry.options.forced_command(), Some("ls -l /srv"));
    assert!(!entry.options.permits_pty());
    assert_eq!(entry.key, key(3));

    // An escaped quote does not close the value, so this one never closes.
    assert_eq!(
        option_error(r#"command="ends in \""#),
        OptionError::UnterminatedQuote
    );
    assert_eq!(
        option_error(r#"command="no end"#),
        OptionError::UnterminatedQuote
    );
}

#[test]
fn option_names_ignore_case() {
    let o = opts(r#"NO-PTY,No-Agent-Forwarding,no-x11-forwarding,COMMAND="x",From="10.0.0.1""#);
    assert!(!o.permits_pty() && !o.permits_agent_forwarding() && !o.permits_x11_forwarding());
    assert_eq!(o.forced_command(), Some("x"));
    assert!(o.from_allows(ip("10.0.0.1"), None));
    assert!(!opts("Restrict,PTY").permits_port_forwarding());
    assert!(opts("Restrict,PTY").permits_pty());
}

/// sshd passes over empty options, so a stray comma does not cost a user their key.
#[test]
fn empty_options_are_passed_over() {
    assert!(!opts(",no-pty").permits_pty());
    assert!(!opts("no-pty,,no-user-rc").permits_user_rc());
    let entry = only_entry(&key_line("no-pty,", &key(1), ""));
    assert!(!entry.options.permits_pty());
}

#[test]
fn option_errors() {
    assert_eq!(option_error("bogus"), OptionError::Unknown("bogus".into()));
    assert_eq!(
        option_error("no-restrict"),
        OptionError::Unknown("no-restrict".into())
    );
    assert_eq!(
        option_error("no-cert-authority"),
        OptionError::Unknown("no-cert-authority".into())
    );
    assert_eq!(option_error("ptyx"), OptionError::Unknown("ptyx".into()));
    assert_eq!(
        option_error("permitopen"),
        OptionError::MissingValue("permitopen")
    );
    assert_eq!(
        option_error("no-pty=\"x\""),
        OptionError::UnexpectedValue("pty")
    );
    assert_eq!(
        option_error("command=x"),
        OptionError::MissingQuote("command")
    );
    assert_eq!(
        option_error(r#"command="x"y"#),
        OptionError::TrailingText("command")
    );
    assert_eq!(
        option_error(r#"command="a",command="b""#),
        OptionError::Duplicate("command")
    );
    assert_eq!(
        option_error(r#"from="a",from="b""#),
        OptionError::Duplicate("from")
    );
    assert_eq!(
        option_error(r#"principals="a",principals="b""#),
        OptionError::Duplicate("principals")
    );
    assert_eq!(
        KeyOptions::parse("no-pty ssh-ed25519"),
        Err(OptionError::NotAnOptionsField)
    );

    // The unknown name is escaped and cut short in the warning.
    let long = format!("x\u{1b}{}", "y".repeat(500));
    let OptionError::Unknown(shown) = option_error(&long) else {
        panic!()
    };
    assert!(shown.starts_with("x\\u{1b}yyy") && shown.ends_with("...") && shown.len() < 80);
    // Cut short on a character boundary.
    let OptionError::Unknown(shown) = option_error(&"\u{e9}".repeat(100)) else {
        panic!()
    };
    assert!(shown.starts_with('\u{e9}') && shown.ends_with("...") && shown.len() <= 67);
}

// ---------------------------------------------------------------------------------------
// from=

#[test]
fn from_cidr_ipv4() {
    let o = opts(r#"from="10.0.0.0/8,192.0.2.7,198.51.100.0/24""#);
    for allowed in ["10.0.0.0", "10.255.255.255", "192.0.2.7", "198.51.100.200"] {
        assert!(o.from_allows(ip(allowed), None), "{allowed}");
    }
    for refused in [
        "11.0.0.0",
        "9.255.255.255",
        "192.0.2.8",
        "198.51.101.1",
        "::1",
    ] {
        assert!(!o.from_allows(ip(refused), None), "{refused}");
    }
    assert!(opts(r#"from="0.0.0.0/0""#).from_allows(ip("203.0.113.1"), None));
    assert!(!opts(r#"from="0.0.0.0/0""#).from_allows(ip("2001:db8::1"), None));

    // An IPv4-mapped IPv6 client is its IPv4 address, as sshd treats it.
    assert!(o.from_allows(ip("::ffff:10.1.2.3"), None));
    assert!(!o.from_allows(ip("::ffff:11.1.2.3"), None));
}

#[test]
fn from_cidr_ipv6() {
    let o = opts(r#"from="2001:db8::/32,::1,fe80::/10""#);
    for allowed in ["2001:db8::1", "2001:db8:ffff:ffff::", "::1", "fe80::abcd"] {
        assert!(o.from_allows(ip(allowed), None), "{allowed}");
    }
    for refused in ["2001:db9::1", "::2", "10.0.0.1", "fec0::1"] {
        assert!(!o.from_allows(ip(refused), None), "{refused}");
    }
    assert!(opts(r#"from="::/0""#).from_allows(ip("2001:db8::1"), None));

    // Wildcards match the address as sshd writes it: lowercase and compressed.
    let o = opts(r#"from="2001:db8::*""#);
    assert!(o.from_allows(ip("2001:0DB8:0:0:0:0:0:5"), None));
}

#[test]
fn from_negation() {
    let o = opts(r#"from="10.0.0.0/8,!10.0.0.13,!10.9.0.0/16""#);
    assert!(o.from_allows(ip("10.0.0.12"), None));
    assert!(!o.from_allows(ip("10.0.0.13"), None));
    assert!(!o.from_allows(ip("10.9.1.1"), None));

    // The order does not matter: a negative match anywhere refuses.
    let o = opts(r#"from="!10.0.0.13,10.0.0.0/8""#);
    assert!(!o.from_allows(ip("10.0.0.13"), None) && o.from_allows(ip("10.0.0.14"), None));

    // Negation alone allows no one: a positive match is needed.
    assert!(!opts(r#"from="!10.0.0.13""#).from_allows(ip("192.0.2.1"), None));

    // Negated wildcards, on addresses and on host names.
    let o = opts(r#"from="192.168.1.*,!192.168.1.1?""#);
    assert!(o.from_allows(ip("192.168.1.9"), None));
    assert!(!o.from_allows(ip("192.168.1.10"), None));
    let o = opts(r#"from="*.example.com,!*.guest.example.com""#);
    assert!(o.from_allows(ip("203.0.113.1"), Some("build.example.com")));
    assert!(!o.from_allows(ip("203.0.113.1"), Some("laptop.guest.example.com")));
}

#[test]
fn from_host_names() {
    let o = opts(r#"from="*.Example.COM,bastion?.example.net""#);
    assert!(
        o.from_allows(ip("203.0.113.1"), Some("Build.EXAMPLE.com")),
        "case is ignored"
    );
    assert!(o.from_allows(ip("203.0.113.1"), Some("bastion1.example.net")));
    assert!(!o.from_allows(ip("203.0.113.1"), Some("bastion12.example.net")));
    assert!(
        !o.from_allows(ip("203.0.113.1"), None),
        "no name, no name match"
    );

    // Without a name, host patterns are tried against the address text, as sshd does
    // with UseDNS off.
    assert!(opts(r#"from="203.0.113.*""#).from_allows(ip("203.0.113.1"), None));

    // A CIDR entry never matches a name, and a name that reads as an address is ignored,
    // so a reverse zone cannot name a host into an allowed network.
    let o = opts(r#"from="10.0.0.0/8,10.0.0.1""#);
    assert!(!o.from_allows(ip("203.0.113.5"), Some("10.0.0.1")));
    assert!(!o.from_allows(ip("203.0.113.5"), Some("10.0.0.1.evil.example")));
}

#[test]
fn from_errors() {
    for bad in [
        "",
        "10.0.0.0/8,,192.0.2.1",
        "!",
        "10.0.0.1/8",
        "10.0.0.0/33",
        "2001:db8::1/32",
        "2001:db8::/129x",
        "10.0.0.0/129",
        "10.0.0.0/8x",
        "fe80::1%eth0",
        "010.0.0.1",
        "*,!10.1",
        "0x0a000001",
        "1",
        "::ffff:1.2.3",
    ] {
        let field = format!(r#"from="{bad}""#);
        assert!(
            matches!(
                option_error(&field),
                OptionError::InvalidValue { option: "from", .. }
            ),
            "{bad}"
        );
    }
}

/// Patterns that are not addresses are kept as wildcard patterns.
#[test]
fn from_patterns_that_are_not_addresses() {
    for pattern in [
        "host",
        "db1.example",
        "a1",
        "10.0.0.*",
        "*:*",
        "192.168.?.1",
    ] {
        let o = opts(&format!(r#"from="{pattern}""#));
        assert_eq!(o.from_patterns(), Some(pattern));
    }
    assert!(opts(r#"from="*:*""#).from_allows(ip("2001:db8::1"), None));
    assert!(!opts(r#"from="*:*""#).from_allows(ip("192.0.2.1"), None));
    assert!(opts(r#"from="192.168.?.1""#).from_allows(ip("192.168.7.1"), None));
}

/// A `from=` pattern built to make a naive matcher backtrack exponentially, against a long
/// host name, is answered (and refused).
#[test]
fn from_pathological_pattern_is_answered() {
    let pattern = "*a".repeat(1000) + "b";
    let line = key_line(&format!(r#"from="{pattern}""#), &key(1), "");
    assert!(line.len() <= MAX_LINE_LEN);
    let entry = only_entry(&line);
    let host = "a".repeat(3000);
    assert!(!entry.options.from_allows(ip("192.0.2.1"), Some(&host)));
    assert!(
        entry
            .options
            .from_allows(ip("192.0.2.1"), Some(&(host + "b")))
    );
}

// ---------------------------------------------------------------------------------------
// Lookups

#[test]
fn lookup_finds_the_first_line_that_allows() {
    let (a, b) = (key(1), key(2));
    let text = [
        key_line(r#"from="10.0.0.0/8",command="office""#, &a, "office"),
        key_line("", &b, "b"),
        key_line(r#"from="192.0.2.0/24",command="lab""#, &a, "lab"),
        key_line(r#"command="anywhere""#, &a, "anywhere"),
    ]
    .join("\n");
    let keys = AuthorizedKeys::parse(&text);
    assert_eq!(keys.warnings(), &[]);

    let office = keys.lookup(&a, &client("10.1.1.1")).unwrap();
    assert_eq!(
        (office.line, office.options.forced_command()),
        (1, Some("office"))
    );
    let lab = keys.lookup(&a, &client("192.0.2.9")).unwrap();
    assert_eq!((lab.line, lab.comment.as_str()), (3, "lab"));
    assert_eq!(keys.lookup(&a, &client("203.0.113.1")).unwrap().line, 4);
    assert_eq!(keys.lookup(&b, &client("203.0.113.1")).unwrap().line, 2);
    assert_eq!(
        keys.lookup(&key(3), &client("10.1.1.1")),
        Err(LookupError::NotListed)
    );
}

#[test]
fn lookup_reports_why_each_line_refused() {
    let a = key(1);
    let text = [
        key_line(r#"from="10.0.0.0/8""#, &a, ""),
        key_line(r#"expiry-time="20200101Z""#, &a, ""),
        key_line(r#"from="*.example.com,!bad.example.com""#, &a, ""),
    ]
    .join("\n");
    let keys = AuthorizedKeys::parse(&text);

    let refused = keys.lookup(&a, &client("203.0.113.1")).unwrap_err();
    assert_eq!(
        refused,
        LookupError::Refused(vec![
            Refusal {
                line: 1,
                reason: RefusalReason::FromMismatch
            },
            Refusal {
                line: 2,
                reason: RefusalReason::Expired
            },
            Refusal {
                line: 3,
                reason: RefusalReason::FromMismatch
            },
        ])
    );
    let message = refused.to_string();
    assert!(
        message.contains("line 1: client not permitted by from="),
        "{message}"
    );
    assert!(
        message.contains("line 2: expiry-time has passed"),
        "{message}"
    );

    let named = ClientInfo::new(ip("203.0.113.1"), Some("ok.example.com"), NOW);
    assert_eq!(keys.lookup(&a, &named).unwrap().line, 3);
    let bad = ClientInfo::new(ip("203.0.113.1"), Some("bad.example.com"), NOW);
    assert!(matches!(keys.lookup(&a, &bad), Err(LookupError::Refused(r)) if r.len() == 3));

    // Before its expiry time the second line allows anyone.
    let early = ClientInfo::new(ip("203.0.113.1"), None, 1_500_000_000);
    assert_eq!(keys.lookup(&a, &early).unwrap().line, 2);
}

#[test]
fn lookup_uses_the_local_time_zone_for_times_without_z() {
    let a = key(1);
    let keys = AuthorizedKeys::parse(&key_line(r#"expiry-time="203001010000""#, &a, ""));
    let midnight_utc = 1_893_456_000;
    let mut c = ClientInfo::new(ip("192.0.2.1"), None, midnight_utc - 60);
    assert!(keys.lookup(&a, &c).is_ok());
    c.utc_offset = -3600; // an hour west of UTC, local midnight is an hour later
    c.now_unix = midnight_utc + 60;
    assert!(keys.lookup(&a, &c).is_ok());
    c.utc_offset = 3600;
    c.now_unix = midnight_utc - 60;
    assert!(keys.lookup(&a, &c).is_err());
}

/// A `cert-authority` key signs certificates and never logs in itself.
#[test]
fn lookup_passes_over_certificate_authorities() {
    let ca = key(7);
    let keys = AuthorizedKeys::parse(&key_line(r#"cert-authority,principals="alice""#, &ca, ""));
    assert_eq!(keys.entries().len(), 1, "the line is kept");
    assert!(keys.entries()[0].options.is_cert_authority());
    assert_eq!(
        keys.lookup(&ca, &client("192.0.2.1")),
        Err(LookupError::NotListed)
    );
}

// ---------------------------------------------------------------------------------------
// Malformed and hostile lines

/// Each bad line is skipped with a warning naming its line; the good lines around them
/// still count, with their own line numbers.
#[test]
fn malformed_lines_are_skipped_with_their_line_numbers() {
    let good = key_line("", &key(1), "good");
    let blob = base64::encode(&key(2).to_blob());
    let huge = format!("ssh-ed25519 {}", "A".repeat(1 << 20));
    let cases: Vec<(String, &str)> = vec![
        (
            format!(r#"command="unterminated ssh-ed25519 {blob}"#),
            "unterminated-quote",
        ),
        (
            format!("no-such-option ssh-ed25519 {blob}"),
            "unknown-option",
        ),
        (format!("ssh-ed25519 {}", &blob[..blob.len() - 1]), "base64"),
        (
            format!("ssh-ed25519 {}*", &blob[..blob.len() - 1]),
            "base64",
        ),
        (format!("ssh-ed448 {blob}"), "unknown-key-type"),
        (huge, "too-long"),
        (format!("ssh-ed25519 {blob}\0"), "nul"),
        ("\0\0\0".to_owned(), "nul"),
        (
            "\u{1}\u{7f}\u{fffd}\u{202e} junk \u{1b}[2J".to_owned(),
            "unknown-option",
        ),
        ("\"".to_owned(), "unknown-option"),
        ("=".to_owned(), "unknown-option"),
        ("no-pty".to_owned(), "missing-key"),
        ("ssh-rsa".to_owned(), "missing-key-data"),
        (format!("ecdsa-sha2-nistp256 {blob}"), "key-type-mismatch"),
    ];
    let mut text = String::new();
    for (line, _) in &cases {
        text.push_str(&good);
        text.push('\n');
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&good); // and no newline at the end

    let keys = AuthorizedKeys::parse(&text);
    let lines: Vec<usize> = keys.entries().iter().map(|e| e.line).collect();
    let expected: Vec<usize> = (0..=cases.len()).map(|i| 2 * i + 1).collect();
    assert_eq!(lines, expected);
    assert_eq!(keys.warnings().len(), cases.len());
    for (w, (line, kind_name)) in keys.warnings().iter().zip(&cases) {
        assert_eq!(kind(&w.error), *kind_name, "{}", line.escape_debug());
        let message = w.to_string();
        assert!(
            message.starts_with(&format!("line {}: ", w.line)),
            "{message}"
        );
        assert!(message.len() < 300, "a warning stays short: {message}");
        assert!(
            !message.contains('\0') && !message.contains('\u{1b}'),
            "{message}"
        );
    }
    assert_eq!(keys.warnings()[5].error, LineError::TooLong((1 << 20) + 12));
}

#[test]
fn line_length_limit() {
    let base = key_line("", &key(1), "");
    let at_limit = base.clone() + &"c".repeat(MAX_LINE_LEN - base.len());
    assert_eq!(at_limit.len(), MAX_LINE_LEN);
    assert_eq!(
        only_entry(&at_limit).comment.len(),
        MAX_LINE_LEN - base.len()
    );
    let over = at_limit + "c";
    assert_eq!(only_warning(&over), LineError::TooLong(MAX_LINE_LEN + 1));
    // A CR before the LF is not part of the line.
    assert!(
        AuthorizedKeys::parse(&(base.clone() + &"c".repeat(MAX_LINE_LEN - base.len()) + "\r\n"))
            .warnings()
            .is_empty()
    );
}

#[test]
fn line_endings_blanks_and_comments() {
    let k = key(4);
    let text = format!(
        "# comment\r\n\r\n   \r\n\t# indented comment\n{}\r\n\n{}",
        key_line("", &k, "crlf"),
        key_line("no-pty", &k, "\tlast, with a tab\t ")
    );
    let keys = AuthorizedKeys::parse(&text);
    assert_eq!(keys.warnings(), &[]);
    let got: Vec<(usize, &str)> = keys
        .entries()
        .iter()
        .map(|e| (e.line, e.comment.as_str()))
        .collect();
    assert_eq!(got, [(5, "crlf"), (7, "last, with a tab")]);
    assert_eq!(AuthorizedKeys::parse(""), AuthorizedKeys::default());
}

#[test]
fn bytes_that_are_not_utf8() {
    let plain = key_line("", &key(5), "");
    let text = [
        b"# Jos\xe9's keys\n".as_slice(),
        plain.as_bytes(),
        b"Jos\xe9\n",
        b"command=\"caf\xe9\" ",
        plain.as_bytes(),
        b"\n\xff\xfe\n",
    ]
    .concat();
    let keys = AuthorizedKeys::parse_bytes(&text);
    assert_eq!(keys.entries().len(), 1);
    assert_eq!(keys.entries()[0].line, 2);
    assert_eq!(keys.entries()[0].comment, "Jos\u{fffd}");
    let warnings: Vec<(usize, &LineError)> =
        keys.warnings().iter().map(|w| (w.line, &w.error)).collect();
    assert_eq!(
        warnings,
        [(3, &LineError::NotUtf8), (4, &LineError::NotUtf8)]
    );
}

/// Random lines, from pure noise to valid lines with a few bytes changed, never panic, and
/// every result is consistent: one outcome per line, in order, keys that round-trip, and
/// options that answer every question.
#[test]
fn random_bytes_never_panic() {
    let mut rng = SplitMix(0x5eed_a17e_0f1e);
    let blob = base64::encode(&key(6).to_blob());
    let valid = [
        key_line("", &key(6), "plain"),
        key_line(
            r#"restrict,pty,command="a \"b\" c",from="10.0.0.0/8,!10.0.0.1,*.ex?mple.com",permitopen="[::1]:22",permitlisten="80",expiry-time="20300101Z",environment="A=b",tunnel="any""#,
            &key(6),
            "full",
        ),
    ];
    let vocabulary = [
        "no-pty",
        "restrict",
        "pty",
        "command=",
        "from=",
        "permitopen=",
        "permitlisten=",
        "environment=",
        "expiry-time=",
        "tunnel=",
        "principals=",
        "cert-authority",
        "\"",
        "\\\"",
        ",",
        " ",
        "\t",
        "!",
        "*",
        "?",
        "10.0.0.0/8",
        "::1",
        "[",
        "]",
        ":",
        "/",
        "=",
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "AAAA",
        &blob,
        "#",
        "\r",
        "\0",
        "\u{e9}",
        "\u{fffd}",
    ];

    for round in 0..1500 {
        let line: Vec<u8> = match round % 3 {
            0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
            1 => {
                let mut bytes = valid[rng.below(valid.len())].clone().into_bytes();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(bytes.len() + 1);
                    match rng.below(3) {
                        0 if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        1 if at < bytes.len() => bytes[at] = rng.next() as u8,
                        _ => bytes.insert(at, rng.next() as u8),
                    }
                }
                bytes
            }
            _ => (0..rng.below(30))
                .flat_map(|_| vocabulary[rng.below(vocabulary.len())].bytes())
                .collect(),
        };
        let mut text = line;
        text.extend_from_slice(b"\n");
        text.extend_from_slice(valid[1].as_bytes());
        // Noise may hold line feeds of its own; the valid line is the last.
        let lines = text.iter().filter(|&&b| b == b'\n').count() + 1;

        let keys = AuthorizedKeys::parse_bytes(&text);
        check_consistent(&keys, lines);
        if let Ok(s) = std::str::from_utf8(&text) {
            assert_eq!(AuthorizedKeys::parse(s), keys);
        }
        let lossy = String::from_utf8_lossy(&text);
        check_consistent(&AuthorizedKeys::parse(&lossy), lines);
        assert!(
            keys.entries()
                .iter()
                .any(|e| e.line == lines && e.comment == "full")
        );
    }
}

fn check_consistent(keys: &AuthorizedKeys, lines: usize) {
    let mut seen: Vec<usize> = keys.entries().iter().map(|e| e.line).collect();
    seen.extend(keys.warnings().iter().map(|w| w.line));
    seen.sort_unstable();
    let before = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), before, "one outcome per line");
    assert!(seen.iter().all(|&l| (1..=lines).contains(&l)));
    for w in keys.warnings() {
        assert!(!w.to_string().is_empty());
    }
    for e in keys.entries() {
        assert_eq!(PublicKey::from_blob(&e.key.to_blob()).as_ref(), Ok(&e.key));
        let o = &e.options;
        for addr in ["10.0.0.1", "::1", "192.0.2.1"] {
            o.from_allows(ip(addr), None);
            o.from_allows(ip(addr), Some("host.example.com"));
        }
        o.permits_open("::1", 22);
        o.permits_listen("localhost", 80);
        o.is_expired(i64::MIN, i32::MIN);
        o.is_expired(i64::MAX, i32::MAX);
        let _ = keys.lookup(&e.key, &client("10.0.0.2"));
    }
}

/// A small deterministic generator (SplitMix64), so the random test needs no new crate and
/// repeats exactly.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}
