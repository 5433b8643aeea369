//! `known_hosts` parsing and lookups, checked against what OpenSSH's own tools decided.
//!
//! The vectors under `vectors/known_hosts/` were written by `gen.py` there, which asks
//! `ssh-keygen -F`, `ssh-keygen -H` and `ssh` itself (against `sshd -i`). One test runs
//! `ssh-keygen` live as well; the rest need nothing installed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ssh_proto::base64;
use ssh_proto::hostkey::PublicKey;
use ssh_proto::known_hosts::{
    EntryKey, HostKeyStatus, KnownHosts, MAX_LINE_LEN, MAX_WARNINGS, Marker, SALT_LEN, entry_line,
    hash_host_name, host_port_name,
};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/known_hosts/");

fn vector(name: &str) -> String {
    let path = format!("{VECTORS}{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Records separated by blank lines, each line `key = value`; `#` starts a comment.
fn records(name: &str) -> Vec<HashMap<String, String>> {
    let mut out = Vec::new();
    let mut current = HashMap::new();
    for line in vector(name).lines().chain([""]) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        let (key, value) = line.split_once(" =").expect("key = value");
        current.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    out
}

/// The keys of `keys.txt` that ssh-proto parses (not the nistp384 one).
fn keys() -> HashMap<String, PublicKey> {
    let mut out = HashMap::new();
    for line in vector("keys.txt").lines().filter(|l| !l.starts_with('#')) {
        let [label, key_type, b64] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("bad keys.txt line {line:?}");
        };
        if let Ok(key) = PublicKey::from_blob(&base64::decode(b64).unwrap()) {
            assert_eq!(key.key_type(), key_type);
            out.insert(label.to_owned(), key);
        }
    }
    assert_eq!(out.len(), 7, "every key but P384 parses");
    out
}

fn every_form() -> (String, KnownHosts) {
    let text = vector("every-form.known_hosts");
    let known = KnownHosts::parse(&text);
    (text, known)
}

/// The number of the only line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    let found: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with(prefix))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(found.len(), 1, "lines starting with {prefix:?}: {found:?}");
    found[0]
}

fn ed25519(byte: u8) -> PublicKey {
    PublicKey::Ed25519([byte; 32])
}

/// A `known_hosts` line for `names` and `key`, written by hand rather than by
/// `entry_line`, so tests of the parser do not lean on the writer.
fn line(names: &str, key: &PublicKey) -> String {
    format!(
        "{names} {} {}",
        key.key_type(),
        base64::encode(&key.to_blob())
    )
}

fn warning_lines(known: &KnownHosts) -> Vec<usize> {
    known.warnings().iter().map(|w| w.line).collect()
}

#[test]
fn every_form_warns_about_the_malformed_lines_only() {
    let (text, known) = every_form();

    // The file's last section holds the malformed lines, one per reason.
    let start = line_of(&text, "# Malformed lines");
    let malformed: Vec<usize> = text
        .lines()
        .enumerate()
        .skip(start)
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(malformed.len(), 8);
    assert_eq!(warning_lines(&known), malformed);
    assert_eq!(known.invalid_lines(), malformed.len());

    let reason = |prefix| {
        let line = line_of(&text, prefix);
        let warning = known.warnings().iter().find(|w| w.line == line).unwrap();
        assert!(warning.to_string().starts_with(&format!("line {line}: ")));
        warning.reason.clone()
    };
    assert!(reason("bad-base64.").contains("invalid base64"));
    assert!(reason("unknown-type.").contains("unknown key type \"ssh-foo\""));
    assert!(reason("missing-key.").contains("no key data"));
    assert!(reason("missing-type.").contains("no key type"));
    assert!(reason("@bogus").contains("unknown marker \"@bogus\""));
    assert!(reason("@revoked @revoked").contains("more than one marker"));
    assert!(reason("|1|bm90").contains("malformed hashed host name"));
    assert!(reason("type-mismatch.").contains("says ssh-rsa but the key is ssh-ed25519"));

    // Every other line that is not blank or a comment became an entry.
    let entries = text.lines().take(start).filter(|l| {
        let l = l.trim_start();
        !l.is_empty() && !l.starts_with('#')
    });
    assert_eq!(known.entries().len(), entries.count());
    let hashed = known.entries().iter().filter(|e| e.is_hashed()).count();
    assert_eq!(hashed, 4);
    let only384 = line_of(&text, "only384.example.com");
    let p384 = known
        .entries()
        .iter()
        .find(|e| e.line() == only384)
        .unwrap();
    assert_eq!(
        p384.key(),
        &EntryKey::Unsupported {
            key_type: "ecdsa-sha2-nistp384".into()
        }
    );
}

#[test]
fn matching_agrees_with_ssh_keygen_find() {
    let (_, known) = every_form();
    let records = records("find.txt");
    assert!(records.len() > 30);
    for r in records {
        let host = &r["host"];
        let port: u16 = r["port"].parse().unwrap();
        let ours: Vec<String> = known
            .matching(host, port)
            .map(|e| {
                let marker = match e.marker() {
                    None => "none",
                    Some(Marker::Revoked) => "revoked",
                    Some(Marker::CertAuthority) => "cert-authority",
                };
                format!("{}:{marker}", e.line())
            })
            .collect();
        assert_eq!(
            ours.join(" "),
            r["lines"],
            "ssh-keygen -F for {host} port {port}"
        );
    }
}

fn variant(status: &HostKeyStatus) -> &'static str {
    match status {
        HostKeyStatus::Known { .. } => "Known",
        HostKeyStatus::Revoked { .. } => "Revoked",
        HostKeyStatus::Changed { .. } => "Changed",
        HostKeyStatus::OtherTypesKnown { .. } => "OtherTypesKnown",
        HostKeyStatus::Unknown => "Unknown",
    }
}

#[test]
fn lookup_agrees_with_ssh() {
    let (_, known) = every_form();
    let keys = keys();
    let records = records("lookup.txt");
    assert!(records.len() > 40);
    for r in records {
        let (host, label) = (&r["host"], &r["key"]);
        let port: u16 = r["port"].parse().unwrap();
        let status = known.lookup(host, port, &keys[label]);
        let case = format!("{host} port {port} with {label}: {status:?}");
        assert_eq!(variant(&status), r["expect"], "{case}");

        // What ssh said, in its words; a deliberate difference is written down.
        let openssh = match status {
            HostKeyStatus::Known { .. } => "OK",
            HostKeyStatus::Revoked { .. } => "REVOKED",
            HostKeyStatus::Changed { .. } | HostKeyStatus::OtherTypesKnown { .. } => "CHANGED",
            HostKeyStatus::Unknown => "NEW",
        };
        if !r.contains_key("deviation") {
            assert_eq!(openssh, r["openssh"], "{case}");
        }
    }
}

#[test]
fn lookup_names_the_lines_ssh_names() {
    let (text, known) = every_form();
    let keys = keys();
    let at = |prefix| line_of(&text, prefix);

    assert_eq!(
        known.lookup("plain.example.com", 22, &keys["ED1"]),
        HostKeyStatus::Known {
            line: at("plain.example.com ")
        }
    );
    assert_eq!(
        known.lookup("plain.example.com", 22, &keys["ED2"]),
        HostKeyStatus::Changed {
            line: at("plain.example.com "),
            old_key_type: "ssh-ed25519"
        }
    );
    assert_eq!(
        known.lookup("other.example.com", 22, &keys["ED1"]),
        HostKeyStatus::OtherTypesKnown {
            lines: vec![
                at("other.example.com ssh-rsa"),
                at("other.example.com ecdsa-sha2-nistp384")
            ]
        }
    );
    // A revocation of the key beats the plain line with the same key right after it.
    assert_eq!(
        known.lookup("revoked.example.com", 22, &keys["ED3"]),
        HostKeyStatus::Revoked {
            line: at("@revoked revoked.example.com")
        }
    );
    assert_eq!(
        known.lookup("anything.example.org", 2222, &keys["ED4"]),
        HostKeyStatus::Revoked {
            line: at("@revoked * ")
        }
    );
    // Known wins over a different key of the same type on an earlier line.
    assert_eq!(
        known.lookup("multi.example.com", 22, &keys["ED1"]),
        HostKeyStatus::Known {
            line: known_line(&text, "multi.example.com", &keys["ED1"])
        }
    );
    // The port fallback answers with the portless line.
    assert_eq!(
        known.lookup("port.example.com", 2223, &keys["ECDSA"]),
        HostKeyStatus::Known {
            line: at("[port.example.com]:2200,port.example.com ")
        }
    );
}

/// The line of `text` that is exactly `names` with `key`.
fn known_line(text: &str, names: &str, key: &PublicKey) -> usize {
    line_of(text, &line(names, key))
}

#[test]
fn hashed_names_match_ssh_keygen() {
    let (text, known) = every_form();
    let keys = keys();
    let records = records("hashed.txt");
    assert_eq!(records.len(), 4);
    for r in &records {
        let (name, hashed) = (&r["name"], &r["hashed"]);
        let salt_b64 = hashed.split('|').nth(2).unwrap();
        let salt: [u8; SALT_LEN] = base64::decode(salt_b64).unwrap().try_into().unwrap();
        assert_eq!(&hash_host_name(name, &salt), hashed, "{name}");
        assert_ne!(&hash_host_name(&format!("{name}."), &salt), hashed);
    }

    // entry_line with ssh-keygen's salt writes ssh-keygen's line, byte for byte.
    let cases = [
        ("hashed.example.com", 22, "ED1", 0),
        ("hashedport.example.com", 2022, "ED2", 1),
        ("hashed-a.example.com", 22, "ED3", 2),
        ("HASHED-B.example.com", 22, "ED3", 3),
    ];
    for (host, port, label, record) in cases {
        let hashed = &records[record]["hashed"];
        let salt_b64 = hashed.split('|').nth(2).unwrap();
        let salt = base64::decode(salt_b64).unwrap().try_into().unwrap();
        let ours = entry_line(host, port, &keys[label], Some(salt)).unwrap();
        let number = line_of(&text, hashed);
        assert_eq!(text.lines().nth(number - 1), Some(ours.as_str()));
        assert_eq!(
            known.lookup(host, port, &keys[label]),
            HostKeyStatus::Known { line: number }
        );
    }
}

/// A folder of its own under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ssh-proto-known-hosts-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ssh_keygen(args: &[&str], file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(args)
        .arg("-f")
        .arg(file)
        .output()
        .expect("ssh-keygen from OpenSSH must be installed for this test");
    String::from_utf8(out.stdout).unwrap()
}

/// Runs OpenSSH's `ssh-keygen` now, on lines we write, rather than trust stored output.
#[test]
fn live_cross_check_with_ssh_keygen() {
    let dir = TempDir::new("live");
    let keys = keys();
    let cases = [
        ("alpha.example.com", 22, "ED1"),
        ("Beta.Example.com", 2222, "RSA"),
        ("192.0.2.55", 22, "ECDSA"),
        ("2001:db8::7", 830, "ED2"),
    ];

    // ssh-keygen -H hashes our plain lines; we recompute each with its salt.
    let plain: String = cases
        .iter()
        .map(|&(host, port, label)| entry_line(host, port, &keys[label], None).unwrap() + "\n")
        .collect();
    let file = dir.0.join("known_hosts");
    std::fs::write(&file, &plain).unwrap();
    ssh_keygen(&["-q", "-H"], &file);
    let hashed = std::fs::read_to_string(&file).unwrap();
    let hashed_lines: Vec<&str> = hashed.lines().collect();
    assert_eq!(hashed_lines.len(), cases.len(), "{hashed}");
    for (&(host, port, label), openssh) in cases.iter().zip(&hashed_lines) {
        let salt_b64 = openssh.split('|').nth(2).unwrap();
        let salt = base64::decode(salt_b64).unwrap().try_into().unwrap();
        let ours = entry_line(host, port, &keys[label], Some(salt)).unwrap();
        assert_eq!(&ours, openssh, "{host} port {port}");
    }

    // Both files find the same lines as ssh-keygen -F, hashed or not.
    let known_hashed = KnownHosts::parse(&hashed);
    let known_plain = KnownHosts::parse(&plain);
    for (n, &(host, port, label)) in cases.iter().enumerate() {
        let name = host_port_name(host, port);
        let found = ssh_keygen(&["-F", &name], &file);
        assert!(
            found.contains(&format!("found: line {} ", n + 1)),
            "{name}: {found}"
        );
        for known in [&known_hashed, &known_plain] {
            assert_eq!(
                known.lookup(host, port, &keys[label]),
                HostKeyStatus::Known { line: n + 1 }
            );
        }
    }

    // And on the file of every form, for a few names.
    let every = Path::new(VECTORS).join("every-form.known_hosts");
    let (_, known) = every_form();
    for (host, port) in [
        ("ok.neg.example.com", 22),
        ("bad.neg.example.com", 22),
        ("hashed.example.com", 22),
        ("port.example.com", 2222),
        ("x.ca.example.com", 22),
    ] {
        let name = host_port_name(host, port);
        let found = ssh_keygen(&["-F", &name, "-l"], &every);
        let theirs: Vec<usize> = found
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("# Host {name} found: line ")))
            .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
            .collect();
        let ours: Vec<usize> = known.matching(host, port).map(|e| e.line()).collect();
        assert_eq!(ours, theirs, "{name}");
    }
}

#[test]
fn malformed_lines_are_skipped_with_their_line_numbers() {
    let good = ed25519(1);
    let b64 = base64::encode(&good.to_blob());
    let huge = format!("{} ssh-ed25519 {b64}", "h".repeat(1 << 20));
    let long_pattern = format!("{},host.example.com ssh-ed25519 {b64}", "p".repeat(1024));
    let junk: String = (0..=255u8).map(char::from).filter(|&c| c != '\n').collect();
    let bad_lines = [
        format!("host.example.com ssh-ed25519 {}", &b64[1..]), // 2: not base64
        format!("host.example.com ssh-ed25519 {b64}="),        // 3: padding too long
        format!("host.example.com ssh-frob {b64}"),            // 4: unknown key type
        "host.example.com".to_owned(),                         // 5: no key type
        "host.example.com ssh-ed25519".to_owned(),             // 6: no key data
        "host.example.com ssh-ed25519 #comment".to_owned(),    // 7: no key data
        "@revoked".to_owned(),                                 // 8: marker alone
        "@revoked\thost.example.com ssh-ed25519".to_owned(),   // 9: no key data
        huge,                                                  // 10: 1 MiB
        junk,                                                  // 11: binary junk
        format!("host\0.example.com ssh-ed25519 {b64}\0"),     // 12: NUL bytes
        format!("host.example.com ssh-ed25519\0 {b64}"),       // 13: NUL in the type
        format!("|1|abc ssh-ed25519 {b64}"),                   // 14: hashed, no hash
        format!("|2|{0}|{0} ssh-ed25519 {b64}", base64::encode(&[0; 20])), // 15
        format!(
            "|1|{}|{} ssh-ed25519 {b64}",
            base64::encode(&[0; 19]),
            base64::encode(&[0; 20])
        ),
        long_pattern, // 17: a pattern of 1024 bytes
        format!(
            "host.example.com ssh-ed25519 {}",
            base64::encode(&[&good.to_blob()[..], &[0]].concat())
        ), // 18: trailing byte in the blob
        format!("host.example.com ssh-rsa {b64}"), // 19: type field lies
        format!(
            "host.example.com ecdsa-sha2-nistp384 {b64}" // 20: claims nistp384, is not
        ),
    ];
    let mut text = line("host.example.com", &good) + "\n";
    for bad in &bad_lines {
        text.push_str(bad);
        text.push('\n');
    }
    text.push_str(&line("after.example.com", &good));

    let known = KnownHosts::parse(&text);
    assert_eq!(warning_lines(&known), (2..=20).collect::<Vec<_>>());
    assert_eq!(known.entries().len(), 2);
    assert_eq!(
        known.lookup("host.example.com", 22, &good),
        HostKeyStatus::Known { line: 1 }
    );
    assert_eq!(
        known.lookup("after.example.com", 22, &good),
        HostKeyStatus::Known { line: 21 }
    );

    let reasons: Vec<&str> = known.warnings().iter().map(|w| w.reason.as_str()).collect();
    assert!(
        reasons[8].contains(&format!("over {MAX_LINE_LEN} bytes")),
        "{}",
        reasons[8]
    );
    assert!(reasons[15].contains("1024 bytes"), "{}", reasons[15]);
    assert!(reasons[16].contains("trailing bytes"), "{}", reasons[16]);
    // Reasons never carry raw control bytes from the file.
    for w in known.warnings() {
        assert!(
            !w.reason.chars().any(|c| c.is_control()),
            "line {}: {:?}",
            w.line,
            w.reason
        );
    }
}

#[test]
fn revoked_wins_over_everything() {
    let (k1, k2) = (ed25519(1), ed25519(2));
    let text = [
        line("host.example.com", &k1),
        line("@revoked *.example.com", &k1),
        line("@revoked elsewhere.example.com", &k2),
        line("host.example.com", &k2),
    ]
    .join("\n");
    let known = KnownHosts::parse(&text);
    assert!(known.warnings().is_empty());

    assert_eq!(
        known.lookup("host.example.com", 22, &k1),
        HostKeyStatus::Revoked { line: 2 }
    );
    assert_eq!(
        known.lookup("host.example.com", 2222, &k1),
        HostKeyStatus::Revoked { line: 2 }
    );
    // The revocation of k2 names another host, so here k2 is known.
    assert_eq!(
        known.lookup("host.example.com", 22, &k2),
        HostKeyStatus::Known { line: 4 }
    );
    assert_eq!(
        known.lookup("elsewhere.example.com", 22, &k2),
        HostKeyStatus::Revoked { line: 3 }
    );
    // A revoked key for a host that has no other line.
    assert_eq!(
        known.lookup("new.example.com", 22, &k1),
        HostKeyStatus::Revoked { line: 2 }
    );
    // Under the plain name, revoked for every port.
    assert_eq!(
        known.lookup("elsewhere.example.com", 2222, &k2),
        HostKeyStatus::Revoked { line: 3 }
    );
}

#[test]
fn changed_and_other_types_are_told_apart() {
    let keys = keys();
    let (ed1, ed2, rsa, ecdsa) = (&keys["ED1"], &keys["ED2"], &keys["RSA"], &keys["ECDSA"]);
    let text = [
        line("mixed.example.com", rsa),
        line("mixed.example.com", ed1),
        line("mixed.example.com", ecdsa),
        line("mixed.example.com", ed2),
        line("rsa-only.example.com", rsa),
    ]
    .join("\n");
    let known = KnownHosts::parse(&text);
    assert!(known.warnings().is_empty());

    // A key of a type on file but not this key: changed, naming the first such line.
    let third = ed25519(3);
    assert_eq!(
        known.lookup("mixed.example.com", 22, &third),
        HostKeyStatus::Changed {
            line: 2,
            old_key_type: "ssh-ed25519"
        }
    );
    // Any exact match wins, wherever it is.
    assert_eq!(
        known.lookup("mixed.example.com", 22, ed2),
        HostKeyStatus::Known { line: 4 }
    );
    // Only keys of other types on file.
    assert_eq!(
        known.lookup("rsa-only.example.com", 22, ed1),
        HostKeyStatus::OtherTypesKnown { lines: vec![5] }
    );
    assert_eq!(
        known.lookup("nobody.example.com", 22, ed1),
        HostKeyStatus::Unknown
    );
}

#[test]
fn hashed_entries_with_and_without_port() {
    let key = ed25519(9);
    let salt = [0x5a; SALT_LEN];
    let plain = entry_line("Hashed.Example.com", 22, &key, Some(salt)).unwrap();
    let ported = entry_line("hashed.example.com", 2222, &key, Some([0x33; SALT_LEN])).unwrap();
    assert!(plain.starts_with(&format!("|1|{}|", base64::encode(&salt))));
    assert!(!plain.contains("example"));
    let known = KnownHosts::parse(&format!("{plain}\n{ported}\n"));
    assert!(known.warnings().is_empty());
    assert!(known.entries().iter().all(|e| e.is_hashed()));

    assert_eq!(
        known.lookup("hashed.example.com", 22, &key),
        HostKeyStatus::Known { line: 1 }
    );
    assert_eq!(
        known.lookup("HASHED.example.com", 2222, &key),
        HostKeyStatus::Known { line: 2 }
    );
    assert!(known.entries()[1].matches("hashed.example.com", 2222));
    assert!(!known.entries()[1].matches("hashed.example.com", 2223));
    assert!(!known.entries()[0].matches("hashed.example.co", 22));
    // A port without its own line falls back to the plain name's exact key.
    assert_eq!(
        known.lookup("hashed.example.com", 2223, &key),
        HostKeyStatus::Known { line: 1 }
    );
    assert_eq!(
        known.lookup("hashed.example.com", 2223, &ed25519(8)),
        HostKeyStatus::Unknown
    );
    assert_eq!(
        known.lookup("other.example.com", 22, &key),
        HostKeyStatus::Unknown
    );
}

#[test]
fn negation_and_wildcards() {
    let key = ed25519(4);
    let text = [
        line("*.example.com,!secret.example.com,!db?.example.com", &key),
        line("[*.example.org]:2222,10.0.0.?", &key),
    ]
    .join("\n");
    let known = KnownHosts::parse(&text);
    for (host, port, want) in [
        ("www.example.com", 22, true),
        ("WWW.EXAMPLE.COM", 22, true),
        ("a.b.example.com", 22, true),
        ("example.com", 22, false),
        ("secret.example.com", 22, false),
        ("db1.example.com", 22, false),
        ("db12.example.com", 22, true),
        ("www.example.org", 2222, true),
        ("www.example.org", 22, false),
        ("10.0.0.7", 22, true),
        ("10.0.0.17", 22, false),
    ] {
        let status = known.lookup(host, port, &key);
        assert_eq!(
            matches!(status, HostKeyStatus::Known { .. }),
            want,
            "{host} port {port}: {status:?}"
        );
    }

    // A line of negations only never matches.
    let known = KnownHosts::parse(&line("!a.example.com,!b.example.com", &key));
    assert_eq!(
        known.lookup("c.example.com", 22, &key),
        HostKeyStatus::Unknown
    );
}

#[test]
fn cert_authority_lines_are_kept_but_ignored() {
    let key = ed25519(5);
    let known = KnownHosts::parse(&line("@cert-authority *.example.com", &key));
    assert!(known.warnings().is_empty());
    assert_eq!(known.entries()[0].marker(), Some(Marker::CertAuthority));
    assert_eq!(known.matching("a.example.com", 22).count(), 1);
    assert_eq!(
        known.lookup("a.example.com", 22, &key),
        HostKeyStatus::Unknown
    );
}

#[test]
fn entry_line_round_trips() {
    let keys = keys();
    let salts = [None, Some([0u8; SALT_LEN]), Some([0xff; SALT_LEN])];
    for key in keys.values() {
        for (host, port) in [
            ("h.example.com", 22),
            ("H.example.com", 2222),
            ("::1", 22),
            ("::1", 65535),
        ] {
            for salt in salts {
                let written = entry_line(host, port, key, salt).unwrap();
                let known = KnownHosts::parse(&format!("{written}\n"));
                assert!(known.warnings().is_empty(), "{written}");
                let entry = &known.entries()[0];
                assert_eq!(entry.key(), &EntryKey::Key(key.clone()));
                assert_eq!(entry.is_hashed(), salt.is_some());
                assert_eq!(entry.marker(), None);
                assert_eq!(
                    known.lookup(host, port, key),
                    HostKeyStatus::Known { line: 1 },
                    "{written}"
                );
                let other_port = if port == 22 { 2200 } else { 22 };
                let expected = if port == 22 {
                    // ssh's portless fallback: same host, same key, another port.
                    HostKeyStatus::Known { line: 1 }
                } else {
                    HostKeyStatus::Unknown
                };
                assert_eq!(known.lookup(host, other_port, key), expected);
                assert_eq!(
                    known.lookup("elsewhere.example.com", port, key),
                    HostKeyStatus::Unknown
                );
            }
        }
    }
}

#[test]
fn entry_line_refuses_names_that_are_not_one_host() {
    let key = ed25519(6);
    for host in [
        "",
        "evil,*",
        "a b",
        "a\tb",
        "a\nb",
        "a\0b",
        "*.example.com",
        "host?",
        "!host",
        "|1|x|y",
        "@revoked",
        "#host",
        "del\x7f",
    ] {
        let err = entry_line(host, 22, &key, None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("host name cannot go into known_hosts")
        );
        assert!(entry_line(host, 22, &key, Some([1; SALT_LEN])).is_err());
    }
    assert!(entry_line("[v6]:x", 22, &key, None).is_ok());
}

#[test]
fn crlf_line_ends_and_odd_spacing() {
    let key = ed25519(7);
    let b64 = base64::encode(&key.to_blob());
    let text = format!(
        "# a comment\r\n\r\n  \t \r\n\thost.example.com \t ssh-ed25519\t{b64}  comment words\r\n\
         other.example.com ssh-ed25519 {b64}\r\n"
    );
    let known = KnownHosts::parse(&text);
    assert!(known.warnings().is_empty(), "{:?}", known.warnings());
    assert_eq!(
        known.lookup("host.example.com", 22, &key),
        HostKeyStatus::Known { line: 4 }
    );
    assert_eq!(
        known.lookup("other.example.com", 22, &key),
        HostKeyStatus::Known { line: 5 }
    );
    assert!(KnownHosts::parse("").entries().is_empty());
    assert!(KnownHosts::parse("\n\n#\n").warnings().is_empty());
}

#[test]
fn warnings_are_capped_and_counted() {
    let text = "junk\n".repeat(10_000);
    let known = KnownHosts::parse(&text);
    assert_eq!(known.warnings().len(), MAX_WARNINGS);
    assert_eq!(known.invalid_lines(), 10_000);
    assert_eq!(known.warnings()[0].line, 1);
    assert_eq!(known.warnings()[MAX_WARNINGS - 1].line, MAX_WARNINGS);
}

/// SplitMix64: a small seeded generator, so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_input_never_panics() {
    let (text, _) = every_form();
    let real_lines: Vec<&str> = text.lines().collect();
    // Pieces that reach deeper into the parser than uniform bytes would.
    let pieces = [
        " ",
        "\t",
        "\n",
        "\r\n",
        ",",
        "!",
        "*",
        "?",
        "|",
        "|1|",
        "@revoked ",
        "@cert-authority ",
        "#",
        "[",
        "]:2222",
        "ssh-ed25519 ",
        "ssh-rsa ",
        "ecdsa-sha2-nistp256 ",
        "ecdsa-sha2-nistp384 ",
        "AAAA",
        "=",
        "\0",
        "\u{fffd}",
        "host.example.com",
    ];
    let key = ed25519(1);
    let mut rng = Rng(0x6b6e_6f77_6e5f_686f);
    for round in 0..400 {
        let mut bytes = Vec::new();
        for _ in 0..rng.below(60) {
            match rng.below(4) {
                0 => bytes.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
                1 => bytes.extend_from_slice(pieces[rng.below(pieces.len())].as_bytes()),
                2 => {
                    // A real line, cut or whole.
                    let real = real_lines[rng.below(real_lines.len())].as_bytes();
                    let cut = rng.below(real.len() + 1);
                    bytes.extend_from_slice(&real[..cut]);
                }
                _ => {
                    // One byte of a real line flipped.
                    let real = real_lines[rng.below(real_lines.len())].as_bytes();
                    let mut copy = real.to_vec();
                    if !copy.is_empty() {
                        let at = rng.below(copy.len());
                        copy[at] ^= 1 << rng.below(8);
                    }
                    bytes.extend_from_slice(&copy);
                    bytes.push(b'\n');
                }
            }
        }

        let input = String::from_utf8_lossy(&bytes);
        let known = KnownHosts::parse(&input);
        let lines = input.split('\n').count();
        assert!(known.invalid_lines() >= known.warnings().len());
        assert!(
            known
                .entries()
                .windows(2)
                .all(|w| w[0].line() < w[1].line()),
            "round {round}"
        );
        assert!(known.entries().iter().all(|e| e.line() <= lines));
        assert!(known.warnings().iter().all(|w| w.line <= lines));
        for (host, port) in [("host.example.com", 22), ("plain.example.com", 2222)] {
            let _ = known.lookup(host, port, &key);
            let _ = known.matching(host, port).count();
        }
    }
}

#[test]
fn pathological_patterns_stay_cheap() {
    // Wildcard patterns that take exponential time in a naive matcher, on many lines.
    let key = ed25519(2);
    let pattern = "*a".repeat(500) + "b";
    let text = (0..50)
        .map(|_| line(&pattern, &key))
        .collect::<Vec<_>>()
        .join("\n");
    let known = KnownHosts::parse(&text);
    assert_eq!(known.entries().len(), 50);
    let host = "a".repeat(250);
    assert_eq!(known.lookup(&host, 22, &key), HostKeyStatus::Unknown);
}
