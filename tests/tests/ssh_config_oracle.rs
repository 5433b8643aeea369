//! The ssh_config reader resolves the same files to the same values as OpenSSH's own
//! `ssh -G`, and refuses the same mistakes with the same line.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gateway::options::ClientOptions;
use gateway::ssh_config::{Query, Setting, SshConfig};
use interop::peers::{self, Peer, TempDir};

const TIMEOUT: Duration = Duration::from_secs(20);

/// The keywords compared, as `ssh -G` names them.
const KEYWORDS: &[&str] = &[
    "user",
    "hostname",
    "port",
    "identityfile",
    "localforward",
    "serveraliveinterval",
    "serveralivecountmax",
    "connecttimeout",
    "requesttty",
    "batchmode",
    "exitonforwardfailure",
];

/// `ssh -G`'s lines for `keyword`, in order.
fn ssh_values(output: &str, keyword: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(k, _)| *k == keyword)
        .map(|(_, v)| v.to_owned())
        .collect()
}

/// Our values for the same keywords, written as `ssh -G` writes them.
fn our_values(config: &Path, host: &str, user: Option<&str>, local_user: &str) -> Vec<String> {
    let text = std::fs::read_to_string(config).unwrap();
    let parsed = SshConfig::parse_str(&text, config, Path::new("/nonexistent")).unwrap();
    let resolved = parsed.resolve_for(&Query {
        host,
        user,
        local_user,
    });
    let mut options = ClientOptions::default();
    options.apply_config(&resolved).unwrap();

    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let mut lines = Vec::new();
    for &keyword in KEYWORDS {
        let values: Vec<String> = match keyword {
            "user" => vec![
                user.map(str::to_owned)
                    .or(options.user.clone())
                    .unwrap_or_else(|| local_user.to_owned()),
            ],
            "hostname" => vec![options.remote_host(host).to_ascii_lowercase()],
            "port" => vec![options.port.unwrap_or(22).to_string()],
            "identityfile" => resolved
                .all("identityfile")
                .filter_map(|s| match s {
                    Setting::IdentityFile(f) => Some(f.clone()),
                    _ => None,
                })
                .collect(),
            "localforward" => options
                .local_forwards
                .iter()
                .map(|f| format!("{} {}", f.listen, f.target))
                .collect(),
            "serveraliveinterval" => vec![options.server_alive_interval.as_secs().to_string()],
            "serveralivecountmax" => vec![options.server_alive_count_max.to_string()],
            "connecttimeout" => vec![
                options
                    .connect_timeout
                    .map_or("none".to_owned(), |t| t.as_secs().to_string()),
            ],
            "requesttty" => vec![format!("{:?}", options.request_tty).to_ascii_lowercase()],
            "batchmode" => vec![yes_no(options.batch_mode)],
            "exitonforwardfailure" => vec![yes_no(options.exit_on_forward_failure)],
            _ => Vec::new(),
        };
        lines.extend(values.into_iter().map(|v| format!("{keyword} {v}")));
    }
    lines
}

fn ssh_g(ssh: &Path, config: &Path, host: &str, user: Option<&str>) -> peers::RunOutput {
    let mut command = Command::new(ssh);
    command.arg("-F").arg(config).arg("-G");
    if let Some(user) = user {
        command.args(["-l", user]);
    }
    peers::run(command.arg(host), TIMEOUT)
}

/// Files exercising Host and Match blocks, syntax variants and adding-up keywords.
const CONFIGS: &[&str] = &[
    "\
# defaults first
User top
Host bastion
    HostName 192.0.2.7
    User ops
    Port 2222
Host *.internal bastion !db2.internal
    Port 22
    User nobody
    IdentityFile ~/.ssh/internal
Host *
    Port 2200
    IdentityFile \"~/.ssh/with space\"
",
    "\
Host short
    HostName Real.%h.example
Match host real.*
    User viahostname
Match originalhost real.*
    Port 1
Match !host nothing,other
    ServerAliveInterval 1h30m
Match user ops
    ServerAliveCountMax 7
Match all
    ConnectTimeout 5M
",
    "\
\t# indented comment

HOSTNAME=x.example
\tport\t=\t5 # trailing comment
user = \"a b\"
RequestTTY=force
BatchMode yes
# Debian's ssh defaults this to 300 under BatchMode; upstream does not.
ServerAliveInterval 10
ConnectTimeout none
IgnoreUnknown UseKeychain
UseKeychain yes
ForwardAgent no
",
    "\
Host fwd
    LocalForward 8080 db:5432
    LocalForward [::1]:9090 [fe80::1]:80
    LocalForward *:7070 /run/remote.sock
    LocalForward /tmp/local.sock h:1
    ExitOnForwardFailure yes
    IdentityFile %d/.ssh/%h_%r
Host *
    LocalForward 6060 other:60
    IdentityFile ~/.ssh/last
",
];

const HOSTS: &[(&str, Option<&str>)] = &[
    ("bastion", None),
    ("BASTION", None),
    ("db.internal", None),
    ("db2.internal", None),
    ("other", None),
    ("short", None),
    ("short", Some("ops")),
    ("real.x", None),
    ("fwd", None),
];

#[test]
fn resolution_matches_ssh_dash_g() {
    let Some(ssh) = peers::require(Peer::Ssh92) else {
        return;
    };
    let dir = TempDir::new("ssh-config-oracle");
    let local_user = ssh_values(
        &ssh_g(&ssh, Path::new("/dev/null"), "x", None).stdout_text(),
        "user",
    )
    .pop()
    .expect("ssh -G prints the user");

    let mut failures = Vec::new();
    for (index, text) in CONFIGS.iter().enumerate() {
        let config = dir.join(format!("config{index}"));
        std::fs::write(&config, text).unwrap();
        for &(host, user) in HOSTS {
            let out = ssh_g(&ssh, &config, host, user);
            assert!(out.success(), "ssh -G failed: {out}");
            let stdout = out.stdout_text();
            let theirs: Vec<String> = KEYWORDS
                .iter()
                .flat_map(|k| {
                    let mut values = ssh_values(&stdout, k);
                    // With no IdentityFile, ssh -G lists its default files; we list none.
                    if *k == "identityfile" && !text.contains("IdentityFile") {
                        values.clear();
                    }
                    values.into_iter().map(move |v| format!("{k} {v}"))
                })
                .collect();
            let ours = our_values(&config, host, user, &local_user);
            if ours != theirs {
                failures.push(format!(
                    "config{index} for {host} {user:?}:\n ours:   {ours:?}\n theirs: {theirs:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn mistakes_are_refused_with_ssh_line() {
    let Some(ssh) = peers::require(Peer::Ssh92) else {
        return;
    };
    let dir = TempDir::new("ssh-config-oracle-errors");
    // Each is refused by both; `true` where ssh's line reads exactly as ours.
    let cases = [
        ("Port 22#x\n", true),
        ("\n\nPort 0\n", true),
        ("Port 65536\n", true),
        ("Port 22 23\n", true),
        ("Host nomatch\n  Port 0\n", true),
        ("BatchMode maybe\n", true),
        ("BatchMode\n", true),
        ("Host\n", true),
        ("Host *\n  User \"unterminated\n", true),
        ("ServerAliveInterval -1\n", true),
        ("ServerAliveInterval 99999999999\n", true),
        ("RekeyLimit 15\n", true),
        ("LogLevel loud\n", true),
        ("RequestTTY sometimes\n", true),
        ("LocalForward 8080:h:80\n", true),
        ("LocalForward 0 h:80\n", true),
        ("Match all host foo\n", true),
        ("Match host\n", false),
        ("Match bogus x\n", false),
        ("ServerAliveCountMax -1\n", false),
        ("Ciphers rc4\n", false),
    ];
    let mut failures = Vec::new();
    for (index, (text, same_words)) in cases.into_iter().enumerate() {
        let config = dir.join(format!("bad{index}"));
        std::fs::write(&config, text).unwrap();
        let ours = SshConfig::parse_str(text, &config, Path::new("/nonexistent"));
        let out = ssh_g(&ssh, &config, "nomatch-host", None);
        let theirs = String::from_utf8_lossy(&out.stderr).into_owned();
        match ours {
            Ok(_) => failures.push(format!("{text:?}: we accept it; ssh says {theirs}")),
            Err(_) if out.success() => failures.push(format!("{text:?}: ssh accepts it")),
            Err(e) if same_words && !theirs.lines().any(|l| l == e.to_string()) => {
                failures.push(format!("{text:?}: ours {e}; ssh's {theirs}"));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn local_forward_specs_match_ssh() {
    let Some(ssh) = peers::require(Peer::Ssh92) else {
        return;
    };
    // Left out on purpose: an empty bind address (ssh -G shows it as `[]`, meaning every
    // interface, which we show as `[*]`), an empty target host (ssh passes it to the
    // server; we refuse it) and service names such as `http` (we read numbers only).
    let specs = [
        "8080:h:80",
        "*:8080:h:80",
        "localhost:8080:h:80",
        "[::1]:8080:[fe80::1]:80",
        "8080:/r.sock",
        "b:8080:/r.sock",
        "/l.sock:h:80",
        "/l.sock:/r.sock",
        "[/l s]:h:80",
        "8080:h\\:x:80",
        "8080:h:80:",
        " 8080:h:80",
        "0:h:80",
        "8080:h:0",
        "8080:h:65536",
        "::1:8080:h:80",
        "[::1:8080:h:80",
        "8080:h:80:extra",
        "[h]x:1:h:2",
        "1:h:1 ",
        "a:b:c",
        "8080",
        "/l.sock",
    ];
    let mut failures = Vec::new();
    for spec in specs {
        let out = peers::run(
            Command::new(&ssh)
                .args(["-F", "/dev/null", "-G", "-L", spec])
                .arg("host"),
            TIMEOUT,
        );
        let theirs = if out.success() {
            ssh_values(&out.stdout_text(), "localforward").pop()
        } else {
            None
        };
        let ours = gateway::forward_spec::ForwardSpec::parse_local(spec)
            .ok()
            .map(|f| format!("{} {}", f.listen, f.target));
        if ours != theirs {
            failures.push(format!("{spec:?}: ours {ours:?}, ssh {theirs:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
