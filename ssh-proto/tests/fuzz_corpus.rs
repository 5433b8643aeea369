//! Replays the fuzz corpus and the stored crash regressions through the entry points the
//! fuzz targets call (`ssh_proto::fuzzing`), so every seed and every past crash is checked
//! by the ordinary test suite, on stable Rust.
//!
//! The seed corpus is written by `write_seed_corpus` below, which is ignored by default:
//! `cargo test -p ssh-proto --features fuzzing --test fuzz_corpus -- --ignored
//! write_seed_corpus` rewrites `fuzz/corpus/*` and its output is committed.
#![cfg(feature = "fuzzing")]

use std::collections::BTreeSet;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ssh_proto::algorithms::{Cipher, Kex, Mac, Preferences};
use ssh_proto::base64;
use ssh_proto::config::Config;
use ssh_proto::fuzzing::connection::script;
use ssh_proto::fuzzing::{self, KexMode, TARGETS};
use ssh_proto::hostkey::{HostKeyPair, PublicKey, SignatureAlg};
use ssh_proto::kex;
use ssh_proto::known_hosts::entry_line;
use ssh_proto::msg::MessageNumber;
use ssh_proto::packet::Sealer;
use ssh_proto::role::Role;
use ssh_proto::sim::{Cut, Pair, SeededRng};
use ssh_proto::transport::Transport;
use ssh_proto::userkey::{UserKey, UserKeyError};
use ssh_proto::wire::Writer;

// Not `mod connection;`: that path would make cargo build it as a test of its own.
#[path = "fuzz_corpus/connection.rs"]
mod connection;

use connection::connection_seeds;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus");
const REGRESSIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/fuzz-regressions");
const FUZZ_TARGETS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/fuzz_targets");

/// The files of `dir`, sorted, or none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `run` on each file and returns the names of those that panicked.
fn replay(run: fn(&[u8]), files: &[PathBuf]) -> Vec<String> {
    let mut failed = Vec::new();
    for file in files {
        let data = fs::read(file).unwrap();
        if panic::catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    failed
}

#[test]
fn every_target_has_seeds_and_all_replay() {
    let mut failed = Vec::new();
    for target in TARGETS {
        let seeds = files(&Path::new(CORPUS).join(target.name));
        assert!(
            seeds.len() >= 5,
            "fuzz/corpus/{} has {} seeds; run write_seed_corpus",
            target.name,
            seeds.len()
        );
        failed.extend(replay(target.run, &seeds));
    }
    assert!(failed.is_empty(), "seeds that panicked: {failed:#?}");
}

#[test]
fn stored_regressions_replay() {
    let known: BTreeSet<&str> = TARGETS.iter().map(|t| t.name).collect();
    for dir in fs::read_dir(REGRESSIONS).unwrap() {
        let path = dir.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(
                known.contains(name.as_str()),
                "vectors/fuzz-regressions/{name} is not a fuzz target"
            );
        }
    }
    let mut failed = Vec::new();
    for target in TARGETS {
        let stored = files(&Path::new(REGRESSIONS).join(target.name));
        failed.extend(replay(target.run, &stored));
    }
    assert!(failed.is_empty(), "regressions that panicked: {failed:#?}");
}

#[test]
fn target_list_matches_the_fuzz_crate() {
    let on_disk: BTreeSet<String> = files(Path::new(FUZZ_TARGETS))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_owned())
        .collect();
    let listed: BTreeSet<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    assert_eq!(on_disk, listed);
}

/// The recorded flights decrypt past NEWKEYS when replayed, so the fuzzer reaches the
/// encrypted messages after key exchange too. This fails when the transport's use of
/// randomness or its messages change: rerun `write_seed_corpus` then.
#[test]
fn recorded_flights_get_past_key_exchange() {
    for (name, run) in [
        ("kex_server", fuzzing::kex_server as fn(&[u8]) -> _),
        ("kex_client", fuzzing::kex_client),
    ] {
        let flights: Vec<PathBuf> = files(&Path::new(CORPUS).join(name))
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("flight-")
            })
            .collect();
        assert!(flights.len() >= 3, "{name} has {} flights", flights.len());
        for flight in flights {
            let outcome = run(&fs::read(&flight).unwrap());
            assert_eq!(outcome.keys_ready, 1, "{}: {outcome:?}", flight.display());
            assert!(outcome.delivered >= 2, "{}: {outcome:?}", flight.display());
        }
    }
}

/// A few seeds checked for what they were written to show, so a harness that quietly
/// stopped looking would be noticed.
#[test]
fn seeds_reach_what_they_were_written_for() {
    let seed =
        |target: &str, name: &str| fs::read(Path::new(CORPUS).join(target).join(name)).unwrap();

    let good = fuzzing::version(&seed("version", "good-openssh"));
    let (_, peer) = good.server.unwrap().unwrap();
    assert_eq!(peer.software(), "OpenSSH_9.6p1");
    let preamble = fuzzing::version(&seed("version", "preamble-lines"));
    assert_eq!(preamble.client.unwrap().unwrap().1.preamble_lines(), 2);
    assert!(preamble.server.is_err());

    let plain = fuzzing::deframe(&seed("deframe", "raw-plain-messages"));
    assert!(plain.opened >= 3 && plain.error.is_none(), "{plain:?}");
    for selector in 1..fuzzing::DEFRAME_PROTECTIONS {
        let keyed = fuzzing::deframe(&seed("deframe", &format!("raw-keyed-{selector:02}")));
        assert_eq!(keyed.opened, 2, "protection {selector}: {keyed:?}");
    }

    let server = fuzzing::transport_server(&seed("transport_server", "service-request"));
    assert_eq!(server.delivered, 1, "{server:?}");
    let client = fuzzing::transport_client(&seed("transport_client", "service-accept"));
    assert_eq!(client.delivered, 1, "{client:?}");
    let rekey = fuzzing::transport_server(&seed("transport_server", "kex-curve25519"));
    assert_eq!(rekey.keys_ready, 1, "{rekey:?}");
}

/// The key targets' seeds reach what they were made for: the key files decrypt, the
/// signatures verify, and the lookups answer in every way they can.
#[test]
fn key_seeds_reach_what_they_were_written_for() {
    let seeds = |target: &str| {
        files(&Path::new(CORPUS).join(target))
            .into_iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_owned();
                (name, fs::read(&p).unwrap())
            })
            .collect::<Vec<_>>()
    };
    let seed =
        |target: &str, name: &str| fs::read(Path::new(CORPUS).join(target).join(name)).unwrap();

    for (name, data) in seeds("private_key") {
        let outcome = fuzzing::private_key(&data);
        if name.ends_with(".pub") || name.starts_with("pub-line-") {
            assert!(
                matches!(outcome.public_line, Some(Ok(_))),
                "{name}: {outcome:?}"
            );
            assert!(
                matches!(outcome.file, Err(UserKeyError::NotOpensshKey(_))),
                "{name}: {outcome:?}"
            );
        } else if name.starts_with("throwaway-") {
            // All but the file with ssh-keygen's 16 rounds ask for few enough to decrypt.
            let decrypts = !name.ends_with("-16-rounds");
            assert!(outcome.file.is_ok(), "{name}: {outcome:?}");
            assert_eq!(
                matches!(outcome.decrypted, Some(Ok(_))),
                decrypts,
                "{name}: {outcome:?}"
            );
        }
    }
    let over = fuzzing::private_key(&seed("private_key", "rounds-1025"));
    assert_eq!(
        over.decrypted,
        Some(Err(UserKeyError::KdfRounds { rounds: 1025 }))
    );
    let slow = fuzzing::private_key(&seed("private_key", "rounds-5"));
    assert!(slow.file.is_ok() && slow.decrypted.is_none(), "{slow:?}");

    for (name, data) in seeds("public_key") {
        let outcome = fuzzing::public_key(&data);
        if name.starts_with("blob-") {
            assert_eq!(
                outcome.key.is_ok(),
                name != "blob-known-hosts-p384",
                "{name}: {outcome:?}"
            );
        }
        if let Some(alg) = name.strip_prefix("signed-").and_then(|n| n.get(3..)) {
            let mut r = ssh_proto::wire::Reader::new(&data);
            let key = PublicKey::from_blob(r.string("key").unwrap()).unwrap();
            let expected = match SignatureAlg::from_name(alg) {
                // RSA keys under 2048 bits parse but do not verify.
                Some(_)
                    if key.key_type() == "ssh-rsa"
                        && key.bits() < ssh_proto::hostkey::RSA_MIN_VERIFY_BITS =>
                {
                    vec![]
                }
                Some(alg) => vec![alg],
                None => vec![],
            };
            assert_eq!(outcome.verified, expected, "{name}");
        }
    }
    let sha1 = fuzzing::public_key(&seed("public_key", "signed-ssh-rsa-sha1"));
    assert!(sha1.verified.is_empty(), "{sha1:?}");

    // every-form.expected has one record per line that is neither blank nor a comment,
    // `skip:` in its third field for a line that gives a warning.
    let expected = vector_text("authorized_keys/every-form.expected");
    let records: Vec<&str> = expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    let skipped = records
        .iter()
        .filter(|r| r.split(' ').nth(2).unwrap().starts_with("skip:"))
        .count();
    let every_form = fuzzing::authorized_keys(&seed("authorized_keys", "every-form"));
    assert_eq!(every_form.warnings, skipped, "{every_form:?}");
    assert_eq!(
        every_form.entries,
        records.len() - skipped,
        "{every_form:?}"
    );
    // Two listed keys and one that is not, for three clients: see write_authorized_keys_seeds.
    let lookups = fuzzing::authorized_keys(&seed("authorized_keys", "lookups"));
    assert_eq!((lookups.found, lookups.refused), (4, 2), "{lookups:?}");

    // every-form.known_hosts: 26 lines that parse, then 8 malformed ones.
    let every_form = fuzzing::known_hosts(&seed("known_hosts", "every-form"));
    assert_eq!(
        (every_form.entries, every_form.invalid_lines),
        (26, 8),
        "{every_form:?}"
    );
    let mut answered: BTreeSet<String> = BTreeSet::new();
    for (_, data) in seeds("known_hosts") {
        for status in fuzzing::known_hosts(&data).statuses {
            let variant = format!("{status:?}");
            answered.insert(variant.split([' ', '{']).next().unwrap().to_owned());
        }
    }
    let all = ["Changed", "Known", "OtherTypesKnown", "Revoked", "Unknown"];
    assert_eq!(answered, all.map(String::from).into(), "lookup answers");
}

/// The connection targets' seeds get where their names say: channels open, data flows
/// both ways, and the hostile ones end the connection.
#[test]
fn connection_seeds_reach_what_they_were_written_for() {
    for (target, name, selector, steps) in connection_seeds() {
        let data = script(selector, &steps);
        let stored = fs::read(Path::new(CORPUS).join(target).join(name)).unwrap();
        assert_eq!(
            stored, data,
            "{target}/{name} is stale; run write_seed_corpus"
        );
        let outcome = match target {
            "connection_server" => fuzzing::connection_server(&data),
            _ => fuzzing::connection_client(&data),
        };
        assert_eq!(outcome.steps, steps.len(), "{target}/{name}: {outcome:?}");
        let hostile = name.starts_with("bad-");
        assert_eq!(
            outcome.error.is_some(),
            hostile,
            "{target}/{name}: {outcome:?}"
        );
        if name.starts_with("session") || name.starts_with("direct-tcpip") {
            assert!(outcome.opened >= 1, "{target}/{name}: {outcome:?}");
            assert!(outcome.data_in > 0, "{target}/{name}: {outcome:?}");
            assert!(outcome.data_out > 0, "{target}/{name}: {outcome:?}");
        }
        if name.starts_with("global") {
            assert!(outcome.events >= 3, "{target}/{name}: {outcome:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The seed generator

/// A plaintext packet around `payload`.
fn packet(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Sealer::plain().seal_with(&mut out, |p| p.put_raw(payload));
    out
}

/// A payload: message number, then what `fill` writes.
fn msg(n: MessageNumber, fill: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut p = vec![n.0];
    fill(&mut p);
    p
}

/// A version line followed by plaintext packets.
fn stream(version: &[u8], payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut s = version.to_vec();
    for p in payloads {
        s.extend(packet(p));
    }
    s
}

/// A packet written by hand: length, padding length, then `rest` as is.
fn raw_packet(packet_len: u32, pad_len: u8, rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_u32(packet_len);
    out.put_u8(pad_len);
    out.put_raw(rest);
    out
}

fn kexinit(role: Role, prefs: &Preferences, follows: bool) -> Vec<u8> {
    let mut p = kex::build_kexinit(role, prefs, &SignatureAlg::ALL, [0x11; 16], true, true);
    if follows {
        // first_kex_packet_follows is the byte before the reserved uint32.
        let at = p.len() - 5;
        p[at] = 1;
    }
    p
}

fn only(kex: Kex, cipher: Cipher, mac: Mac) -> Preferences {
    Preferences {
        kex: vec![kex],
        ciphers: vec![cipher],
        macs: vec![mac],
        ..Preferences::default()
    }
}

/// The messages both transport targets get seeds for; `role` is the side fuzzed.
fn transport_messages(role: Role) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let ignore = msg(MessageNumber::IGNORE, |p| p.put_string(b"x"));
    let debug = msg(MessageNumber::DEBUG, |p| {
        p.put_bool(true);
        p.put_string(b"hello");
        p.put_string(b"en");
    });
    let unimplemented = msg(MessageNumber::UNIMPLEMENTED, |p| p.put_u32(3));
    let disconnect = msg(MessageNumber::DISCONNECT, |p| {
        p.put_u32(11);
        p.put_string(b"bye");
        p.put_string(b"");
    });
    let ext_info = msg(MessageNumber::EXT_INFO, |p| {
        p.put_u32(2);
        p.put_string(b"server-sig-algs");
        p.put_string(b"ssh-ed25519,rsa-sha2-256");
        p.put_string(b"ping@openssh.com");
        p.put_string(b"0");
    });
    let ext_info_huge_count = msg(MessageNumber::EXT_INFO, |p| {
        p.put_u32(0xffff_ffff);
        p.put_string(b"server-sig-algs");
    });
    let ping = msg(MessageNumber::PING, |p| p.put_string(b"are you there"));
    let pong = msg(MessageNumber::PONG, |p| p.put_string(b"here"));
    let userauth = msg(MessageNumber::USERAUTH_REQUEST, |p| {
        p.put_string(b"user");
        p.put_string(b"ssh-connection");
        p.put_string(b"none");
    });
    let global = msg(MessageNumber::GLOBAL_REQUEST, |p| {
        p.put_string(b"keepalive@openssh.com");
        p.put_bool(true);
    });
    let data = msg(MessageNumber::CHANNEL_DATA, |p| {
        p.put_u32(0);
        p.put_string(b"data");
    });
    let service = match role {
        Role::Server => msg(MessageNumber::SERVICE_REQUEST, |p| {
            p.put_string(b"ssh-userauth")
        }),
        Role::Client => msg(MessageNumber::SERVICE_ACCEPT, |p| {
            p.put_string(b"ssh-userauth")
        }),
    };
    let service_name = match role {
        Role::Server => "service-request",
        Role::Client => "service-accept",
    };

    let mut seeds = vec![
        ("ignore", vec![ignore.clone()]),
        ("debug", vec![debug.clone()]),
        ("unimplemented", vec![unimplemented]),
        ("disconnect", vec![disconnect]),
        (service_name, vec![service.clone()]),
        ("ext-info", vec![ext_info]),
        ("ext-info-huge-count", vec![ext_info_huge_count]),
        ("ping", vec![ping.clone(), pong]),
        ("userauth-request", vec![userauth.clone()]),
        ("global-request", vec![global]),
        ("channel-data", vec![data.clone()]),
        ("unknown-transport-40", vec![vec![40, 1, 2, 3]]),
        ("unknown-0-and-255", vec![vec![0], vec![255, 9]]),
        (
            "mixed",
            vec![ignore.clone(), debug, service, userauth, ping, data.clone()],
        ),
        ("ignore-flood", vec![ignore; 70]),
    ];

    // KEXINIT from the other side, alone and with the rest of a curve25519 exchange.
    let peer = role.peer();
    let curve = only(Kex::Curve25519Sha256, Cipher::Aes128Gcm, Mac::HmacSha256Etm);
    seeds.push((
        "kexinit-default-lists",
        vec![kexinit(peer, &Preferences::default(), false)],
    ));
    seeds.push((
        "kexinit-guess-follows",
        vec![
            kexinit(peer, &Preferences::default(), true),
            vec![MessageNumber::KEX_ECDH_INIT.0, 0, 0, 0, 0],
        ],
    ));
    let no_common = Preferences {
        ciphers: Vec::new(),
        ..Preferences::default()
    };
    seeds.push((
        "kexinit-no-common-cipher",
        vec![kexinit(peer, &no_common, false)],
    ));
    match role {
        Role::Server => {
            let ecdh_init = msg(MessageNumber::KEX_ECDH_INIT, |p| p.put_string(&[0x42; 32]));
            let newkeys = vec![MessageNumber::NEWKEYS.0];
            seeds.push((
                "kex-curve25519",
                vec![kexinit(peer, &curve, false), ecdh_init, newkeys, data],
            ));
        }
        Role::Client => {
            let host_key = HostKeyPair::ed25519_from_seed(
                ssh_proto::crypto::default_provider(),
                &fuzzing::HOST_KEY_SEED,
            );
            let ecdh_reply = msg(MessageNumber::KEX_ECDH_REPLY, |p| {
                p.put_string(&host_key.public().to_blob());
                p.put_string(&[0x42; 32]);
                let mut sig = Vec::new();
                sig.put_string(b"ssh-ed25519");
                sig.put_string(&[0; 64]);
                p.put_string(&sig);
            });
            seeds.push((
                "kex-curve25519-bad-signature",
                vec![kexinit(peer, &curve, false), ecdh_reply],
            ));
        }
    }
    seeds
}

/// Hand-made packets with lengths and paddings a receiver must refuse.
fn bad_packets() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("length-zero", raw_packet(0, 4, &[0; 8])),
        ("length-four", raw_packet(4, 4, &[0; 8])),
        ("length-2-pow-31", raw_packet(1 << 31, 4, &[0; 16])),
        ("length-fffffff0", raw_packet(0xffff_fff0, 4, &[0; 16])),
        (
            "length-256k-plus-1",
            raw_packet(256 * 1024 + 1, 4, &[0; 16]),
        ),
        ("length-not-block-aligned", raw_packet(13, 4, &[2; 12])),
        ("padding-three", raw_packet(12, 3, &[2; 11])),
        ("padding-leaves-no-message", raw_packet(12, 11, &[0; 11])),
    ]
}

/// Records a whole connection between `client` and `server`, each queueing messages of
/// the layer above first: the bytes each side sent, and the first flight of each (what it
/// sent before hearing from the other).
struct Recording {
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    c2s_first: Vec<u8>,
    s2c_first: Vec<u8>,
}

fn record(client: Transport, server: Transport) -> Recording {
    let config = Arc::new(Config::default());
    let mut pair = Pair::new(Arc::clone(&config), config, 0, Cut::Whole);
    pair.client.transport = client;
    pair.server.transport = server;

    let client = &mut pair.client.transport;
    client
        .send(|p| {
            p.put_u8(MessageNumber::SERVICE_REQUEST.0);
            p.put_string(b"ssh-userauth");
        })
        .unwrap();
    client
        .send(|p| {
            p.put_u8(MessageNumber::USERAUTH_REQUEST.0);
            p.put_string(b"user");
            p.put_string(b"ssh-connection");
            p.put_string(b"none");
        })
        .unwrap();
    client
        .send(|p| {
            p.put_u8(MessageNumber::PING.0);
            p.put_string(b"ping");
        })
        .unwrap();
    let server = &mut pair.server.transport;
    server
        .send(|p| {
            p.put_u8(MessageNumber::SERVICE_ACCEPT.0);
            p.put_string(b"ssh-userauth");
        })
        .unwrap();
    server
        .send(|p| {
            p.put_u8(MessageNumber::USERAUTH_BANNER.0);
            p.put_string(b"Authorised users only.\r\n");
            p.put_string(b"");
        })
        .unwrap();
    server
        .send(|p| {
            p.put_u8(MessageNumber::IGNORE.0);
            p.put_string(b"padding");
        })
        .unwrap();

    let mut rec = Recording {
        c2s: Vec::new(),
        s2c: Vec::new(),
        c2s_first: Vec::new(),
        s2c_first: Vec::new(),
    };
    for round in 0..100 {
        pair.flush();
        rec.c2s.extend_from_slice(pair.c2s_in_flight());
        rec.s2c.extend_from_slice(pair.s2c_in_flight());
        if round == 0 {
            rec.c2s_first = rec.c2s.clone();
            rec.s2c_first = rec.s2c.clone();
        }
        if !pair.step().unwrap() {
            break;
        }
    }
    assert!(pair.client.transport.is_ready() && pair.server.transport.is_ready());
    assert_eq!(
        pair.server.received.len(),
        2,
        "SERVICE_REQUEST and USERAUTH_REQUEST"
    );
    assert_eq!(
        pair.client.received.len(),
        2,
        "SERVICE_ACCEPT and USERAUTH_BANNER"
    );
    rec
}

/// A transport that is not the fuzzed one, with its own preferences.
fn other(role: Role, prefs: Preferences, strict_kex: bool) -> Transport {
    let provider = ssh_proto::crypto::default_provider();
    let mut config = Config {
        algorithms: prefs,
        software: "OpenSSH_9.6".to_owned(),
        strict_kex,
        ..Config::default()
    };
    if role == Role::Server {
        config.host_keys = vec![HostKeyPair::ed25519_from_seed(provider, &[7; 32])];
    }
    let now = fuzz_now();
    Transport::new(Arc::new(config), role, Box::new(SeededRng::new(99)), now)
}

#[expect(
    clippy::disallowed_methods,
    reason = "the generator's transports need a clock origin; only differences matter"
)]
fn fuzz_now() -> std::time::Instant {
    std::time::Instant::now()
}

fn fuzzed(role: Role) -> Transport {
    fuzzing::new_transport(role, KexMode::Real, false, fuzz_now())
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new(CORPUS).join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), data).unwrap();
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus; run by hand and commit the result"]
fn write_seed_corpus() {
    for target in TARGETS {
        for file in files(&Path::new(CORPUS).join(target.name)) {
            fs::remove_file(file).unwrap();
        }
    }

    // version: the first byte picks how the rest is cut into reads.
    let long_ok = [&b"SSH-2.0-"[..], &[b'a'; 245], b"\r\n"].concat();
    let long_bad = [&b"SSH-2.0-"[..], &[b'a'; 246], b"\r\n"].concat();
    let many_lines = [&b"x\r\n".repeat(1025)[..], b"SSH-2.0-x\r\n"].concat();
    let long_preamble = [&[b'p'; 8200][..], b"\r\nSSH-2.0-x\r\n"].concat();
    let versions: Vec<(&str, Vec<u8>)> = vec![
        (
            "good-openssh",
            b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\r\n\0\0\x01\x14\x0a\x14".to_vec(),
        ),
        ("good-bare-lf", b"SSH-2.0-dropbear_2022.83\n".to_vec()),
        ("good-1.99", b"SSH-1.99-Cisco-1.25\r\n".to_vec()),
        ("longest-allowed", long_ok),
        ("one-byte-too-long", long_bad),
        ("nul", b"SSH-2.0-x\0y\r\n".to_vec()),
        ("ssh-1.5", b"SSH-1.5-old\r\n".to_vec()),
        (
            "preamble-lines",
            b"Welcome\r\nto here\r\nSSH-2.0-x y z\r\n".to_vec(),
        ),
        ("too-many-preamble-lines", many_lines),
        ("preamble-line-too-long", long_preamble),
        ("stray-cr", b"SSH-2.0-x\ry\r\n".to_vec()),
        ("no-software", b"SSH-2.0-\r\n".to_vec()),
        ("no-dash", b"SSH-2.0 x\r\n".to_vec()),
        ("unprintable-software", b"SSH-2.0-\xff\x01\r\n".to_vec()),
        ("ssh-prefix-only", b"SSH-".to_vec()),
        ("not-ssh", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
    ];
    for (i, (name, line)) in versions.iter().enumerate() {
        // Whole reads for most, byte by byte and other cuts for some.
        let cut = [8u8, 0, 3, 0x45][i % 4];
        write("version", name, &[&[cut][..], line].concat());
    }

    // deframe: [protection, mode] then a raw stream or sealing records.
    let plain_messages = [
        packet(&[MessageNumber::IGNORE.0, 0, 0, 0, 1, b'x']),
        packet(&kexinit(Role::Client, &Preferences::default(), false)),
        packet(&[MessageNumber::NEWKEYS.0]),
    ]
    .concat();
    write(
        "deframe",
        "raw-plain-messages",
        &[&[0u8, 6][..], &plain_messages].concat(),
    );
    for (name, bad) in bad_packets() {
        write(
            "deframe",
            &format!("raw-plain-{name}"),
            &[&[0u8, 0][..], &bad].concat(),
        );
    }
    for selector in 1..fuzzing::DEFRAME_PROTECTIONS {
        let sealed = fuzzing::sealed_stream(selector, &[b"\x02\0\0\0\x01x", b"\x5e\0\0\0\0"]);
        let mode = (selector % 5) << 1;
        write(
            "deframe",
            &format!("raw-keyed-{selector:02}"),
            &[&[selector, mode][..], &sealed].concat(),
        );
        // Records: an intact packet, then one with a bit flipped in its length field.
        let records = [
            &[0x00, 0x00, 0x05, 0x5e, 1, 2, 3, 4][..],
            &[0x01 | (3 << 2), 0x00, 0x03, 0x02, 0, 0, 0x00, 0x02],
        ]
        .concat();
        write(
            "deframe",
            &format!("records-{selector:02}"),
            &[&[selector, 1 | (2 << 1)][..], &records].concat(),
        );
    }
    // The largest payload, zero-padded from a one-byte body, plain and with one cipher of
    // each kind; read in pieces of up to 1024 bytes.
    for selector in [0, 1, 3, 6] {
        let records = [0x80, 0x80, 0x00, 0x5e];
        write(
            "deframe",
            &format!("records-largest-{selector:02}"),
            &[&[selector, 1 | (3 << 1)][..], &records].concat(),
        );
    }
    let truncated = [
        &[0x00, 0x00, 0x03, 0x02, 0, 0][..],
        &[0x02, 0x00, 0x10, 0x5e],
    ]
    .concat();
    write(
        "deframe",
        "records-plain-truncated",
        &[&[0u8, 1][..], &truncated].concat(),
    );

    // transport_server and transport_client: the version line, then plaintext packets.
    for (target, role) in [
        ("transport_server", Role::Server),
        ("transport_client", Role::Client),
    ] {
        for (name, payloads) in transport_messages(role) {
            write(target, name, &stream(b"SSH-2.0-x\r\n", &payloads));
        }
        for (name, bad) in bad_packets() {
            write(target, name, &[&b"SSH-2.0-x\r\n"[..], &bad].concat());
        }
    }
    let preamble = msg(MessageNumber::SERVICE_ACCEPT, |p| {
        p.put_string(b"ssh-userauth")
    });
    write(
        "transport_client",
        "preamble-lines",
        &stream(b"Hello\r\nthere\r\nSSH-2.0-x\r\n", &[preamble]),
    );
    write(
        "transport_server",
        "line-before-version",
        &stream(b"Hello\r\nSSH-2.0-x\r\n", &[]),
    );

    // kex_server and kex_client: real flights recorded against the fuzzed transports.
    let both = record(fuzzed(Role::Client), fuzzed(Role::Server));
    write("kex_server", "flight-default", &both.c2s);
    write("kex_server", "first-flight-default", &both.c2s_first);
    write("kex_client", "flight-default", &both.s2c);
    write("kex_client", "first-flight-default", &both.s2c_first);

    let variants = [
        (
            "curve25519-chacha",
            only(
                Kex::Curve25519Sha256,
                Cipher::ChaCha20Poly1305,
                Mac::HmacSha256Etm,
            ),
            true,
        ),
        (
            "libssh-aes256ctr-sha512",
            only(
                Kex::Curve25519Sha256Libssh,
                Cipher::Aes256Ctr,
                Mac::HmacSha512,
            ),
            true,
        ),
        (
            "aes128ctr-sha256etm-no-strict",
            only(
                Kex::MlKem768X25519Sha256,
                Cipher::Aes128Ctr,
                Mac::HmacSha256Etm,
            ),
            false,
        ),
    ];
    for (name, prefs, strict) in variants {
        let rec = record(
            other(Role::Client, prefs.clone(), strict),
            fuzzed(Role::Server),
        );
        write("kex_server", &format!("flight-{name}"), &rec.c2s);
        let rec = record(fuzzed(Role::Client), other(Role::Server, prefs, strict));
        write("kex_client", &format!("flight-{name}"), &rec.s2c);
    }
    // Lines before the server's version line are not hashed, so the flight stays valid.
    write(
        "kex_client",
        "flight-preamble-lines",
        &[&b"Welcome to the gateway\r\n\r\n"[..], &both.s2c].concat(),
    );
    // A client that sends something else before KEXINIT.
    let ignore_first = stream(
        b"SSH-2.0-x\r\n",
        &[
            msg(MessageNumber::IGNORE, |p| p.put_string(b"")),
            kexinit(Role::Client, &Preferences::default(), false),
        ],
    );
    write("kex_server", "ignore-before-kexinit", &ignore_first);

    // connection_server and connection_client: scripts of steps.
    for (target, name, selector, steps) in connection_seeds() {
        write(target, name, &script(selector, &steps));
    }

    write_private_key_seeds();
    write_public_key_seeds();
    write_authorized_keys_seeds();
    write_known_hosts_seeds();
}

// ---------------------------------------------------------------------------------------
// Seeds for the key targets, made from the vector files

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors");

fn vector(path: &str) -> Vec<u8> {
    fs::read(Path::new(VECTORS).join(path)).unwrap()
}

fn vector_text(path: &str) -> String {
    String::from_utf8(vector(path)).unwrap()
}

/// The file names under `vectors/userkeys/` that hold keys, sorted.
fn userkey_files() -> Vec<String> {
    files(&Path::new(VECTORS).join("userkeys"))
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .filter(|name| name.starts_with("throwaway-"))
        .collect()
}

/// The `pub:` lines of `vectors/fingerprints.txt`, `TYPE BASE64 COMMENT`, with their comment.
fn fingerprint_lines() -> Vec<(String, String)> {
    vector_text("fingerprints.txt")
        .lines()
        .filter_map(|l| l.strip_prefix("pub: "))
        .map(|l| (l.rsplit(' ').next().unwrap().to_owned(), l.to_owned()))
        .collect()
}

/// The key blob of a `TYPE BASE64 ...` line.
fn blob_of(line: &str) -> Vec<u8> {
    base64::decode(line.split(' ').nth(1).unwrap()).unwrap()
}

/// The bytes between the armour lines of an OpenSSH private key file.
fn key_file_body(text: &str) -> Vec<u8> {
    let encoded: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::decode(encoded).unwrap()
}

/// A private key file around `body`, wrapped at 70 columns as `ssh-keygen` writes it.
fn key_file(body: &[u8]) -> String {
    let encoded = base64::encode(body);
    let mut out = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for chunk in encoded.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out + "-----END OPENSSH PRIVATE KEY-----\n"
}

/// Where the bcrypt round count and the key count sit in a key file body: after the magic,
/// the cipher and kdf names, and the salt inside the kdf options.
fn rounds_and_count_offsets(body: &[u8]) -> (usize, usize) {
    let string_end =
        |at: usize| at + 4 + u32::from_be_bytes(body[at..at + 4].try_into().unwrap()) as usize;
    let kdf_name_at = string_end(15);
    let options_at = string_end(kdf_name_at);
    // Inside the options: string salt, then uint32 rounds.
    (string_end(options_at + 4), string_end(options_at))
}

fn rsa_blob(e: &[u8], n_field: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_string(b"ssh-rsa");
    out.put_mpint(e);
    out.put_string(n_field);
    out
}

fn write_private_key_seeds() {
    let t = "private_key";
    for name in userkey_files() {
        write(t, &name, &vector(&format!("userkeys/{name}")));
    }
    for (comment, line) in fingerprint_lines() {
        write(
            t,
            &format!("pub-line-{comment}"),
            format!("{line}\n").as_bytes(),
        );
    }

    // Encrypted with one bcrypt round, so that every run of a mutation decrypts quickly.
    let provider = ssh_proto::crypto::default_provider();
    for name in [
        "throwaway-ed25519",
        "throwaway-ecdsa-p256",
        "throwaway-rsa-2048",
    ] {
        let key =
            UserKey::from_openssh(provider, vector(&format!("userkeys/{name}")), None).unwrap();
        let text = key
            .to_openssh_with_rounds(
                key.comment(),
                Some(fuzzing::KEY_PASSPHRASE),
                1,
                &mut SeededRng::new(1),
            )
            .unwrap();
        write(t, &format!("{name}-aes256-ctr-1-round"), text.as_bytes());
    }

    let encrypted = vector_text("userkeys/throwaway-ed25519-aes256-ctr-16-rounds");
    let body = key_file_body(&encrypted);
    let (rounds_at, count_at) = rounds_and_count_offsets(&body);
    assert_eq!(body[rounds_at..rounds_at + 4], 16u32.to_be_bytes());
    for rounds in [0, 5, 1025, u32::MAX] {
        let mut edited = body.clone();
        edited[rounds_at..rounds_at + 4].copy_from_slice(&rounds.to_be_bytes());
        write(t, &format!("rounds-{rounds}"), key_file(&edited).as_bytes());
    }
    let mut two_keys = body.clone();
    two_keys[count_at..count_at + 4].copy_from_slice(&2u32.to_be_bytes());
    write(t, "key-count-2", key_file(&two_keys).as_bytes());

    let clear = vector_text("userkeys/throwaway-ed25519");
    write(t, "crlf-line-ends", clear.replace('\n', "\r\n").as_bytes());
    let no_end = clear.replace("-----END OPENSSH PRIVATE KEY-----\n", "");
    write(t, "no-end-line", no_end.as_bytes());
    let pem = vector_text("userkeys/throwaway-rsa-1024").replace("OPENSSH", "RSA");
    write(t, "pem-armour", pem.as_bytes());
    let mut wrong_magic = key_file_body(&clear);
    wrong_magic[8] = b'2';
    write(t, "wrong-magic", key_file(&wrong_magic).as_bytes());
}

fn write_public_key_seeds() {
    let t = "public_key";
    for (comment, line) in fingerprint_lines() {
        write(t, &format!("blob-{comment}"), &blob_of(&line));
    }
    for name in userkey_files().iter().filter(|n| n.ends_with(".pub")) {
        let line = vector_text(&format!("userkeys/{name}"));
        write(
            t,
            &format!("blob-{}", name.trim_end_matches(".pub")),
            &blob_of(&line),
        );
    }
    for line in vector_text("known_hosts/keys.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let (label, rest) = line.split_once(' ').unwrap();
        write(
            t,
            &format!("blob-known-hosts-{}", label.to_lowercase()),
            &blob_of(rest),
        );
    }

    // Signed messages: `string key, string signature`, then the signed bytes.
    let mut signed = Vec::new();
    for (i, record) in vector_text("hostkey-signatures.txt")
        .split("\n\n")
        .filter(|r| r.contains("key: "))
        .enumerate()
    {
        let field = |name: &str| {
            record
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap()
                .to_owned()
        };
        let hex = field("data");
        let data: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut seed = Vec::new();
        seed.put_string(&base64::decode(field("key")).unwrap());
        seed.put_string(&base64::decode(field("sig")).unwrap());
        seed.put_raw(&data);
        write(t, &format!("signed-{i:02}-{}", field("alg")), &seed);
        signed.push((field("alg"), seed));
    }
    // An RSA signature renamed `ssh-rsa`, RSA with SHA-1, which is refused.
    let (_, rsa) = signed
        .iter()
        .find(|(alg, seed)| alg == "rsa-sha2-256" && seed.len() > 600)
        .unwrap();
    let mut r = ssh_proto::wire::Reader::new(rsa);
    let key = r.string("key").unwrap();
    let mut sig = ssh_proto::wire::Reader::new(r.string("sig").unwrap());
    sig.string("name").unwrap();
    let mut renamed = Vec::new();
    renamed.put_string(b"ssh-rsa");
    renamed.put_string(sig.string("signature").unwrap());
    let mut seed = Vec::new();
    seed.put_string(key);
    seed.put_string(&renamed);
    seed.put_raw(r.remaining());
    write(t, "signed-ssh-rsa-sha1", &seed);

    // Near misses of real keys: every check of the parser, one at a time.
    let lines = fingerprint_lines();
    let ed25519 = blob_of(&lines[0].1);
    let ecdsa = blob_of(&lines[1].1);
    let PublicKey::Rsa { e, n } = PublicKey::from_blob(&blob_of(&lines[3].1)).unwrap() else {
        panic!("the fourth fingerprint record is not RSA");
    };
    let mut n_field = vec![0, 0];
    n_field.extend_from_slice(&n);
    write(t, "rsa-modulus-not-minimal", &rsa_blob(&e, &n_field));
    let mut e_field = Vec::new();
    e_field.put_mpint(&e);
    let mut blob = Vec::new();
    blob.put_string(b"ssh-rsa");
    blob.put_string(&[&[0u8][..], &e_field[4..]].concat());
    blob.put_mpint(&n);
    write(t, "rsa-exponent-not-minimal", &blob);
    let moduli: [(&str, Vec<u8>); 5] = [
        ("rsa-1023-bits", [vec![0x7f], vec![0xff; 127]].concat()),
        (
            "rsa-1024-bits",
            [vec![0x80], vec![0; 126], vec![1]].concat(),
        ),
        ("rsa-8192-bits", vec![0xff; 1024]),
        ("rsa-8193-bits", [vec![1], vec![0xff; 1024]].concat()),
        (
            "rsa-even-modulus",
            [n[..n.len() - 1].to_vec(), vec![0xfe]].concat(),
        ),
    ];
    for (name, modulus) in moduli {
        let mut blob = Vec::new();
        blob.put_string(b"ssh-rsa");
        blob.put_mpint(&e);
        blob.put_mpint(&modulus);
        write(t, name, &blob);
    }
    for (name, exponent) in [
        ("rsa-exponent-1", vec![1]),
        ("rsa-exponent-even", vec![1, 0, 0]),
        (
            "rsa-exponent-2-pow-33-minus-1",
            vec![1, 0xff, 0xff, 0xff, 0xff],
        ),
        ("rsa-exponent-2-pow-33-plus-1", vec![2, 0, 0, 0, 1]),
    ] {
        let mut blob = Vec::new();
        blob.put_string(b"ssh-rsa");
        blob.put_mpint(&exponent);
        blob.put_mpint(&n);
        write(t, name, &blob);
    }
    write(t, "ed25519-trailing-byte", &[&ed25519[..], &[0]].concat());
    let mut short = Vec::new();
    short.put_string(b"ssh-ed25519");
    short.put_string(&ed25519[ed25519.len() - 31..]);
    write(t, "ed25519-31-bytes", &short);
    let point = &ecdsa[ecdsa.len() - 65..];
    for (name, curve, point) in [
        ("ecdsa-curve-nistp384", &b"nistp384"[..], point.to_vec()),
        (
            "ecdsa-compressed-point",
            b"nistp256",
            [&[2u8][..], &point[1..33]].concat(),
        ),
        (
            "ecdsa-point-tag-05",
            b"nistp256",
            [&[5u8][..], &point[1..]].concat(),
        ),
    ] {
        let mut blob = Vec::new();
        blob.put_string(b"ecdsa-sha2-nistp256");
        blob.put_string(curve);
        blob.put_string(&point);
        write(t, name, &blob);
    }
}

/// `text` cut into its blank-line separated sections, and its lines that are neither blank
/// nor comments, each with its line number.
fn sections_and_lines(text: &str) -> (Vec<&str>, Vec<(usize, &str)>) {
    let sections = text
        .split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .collect();
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, l))
        .collect();
    (sections, lines)
}

fn write_authorized_keys_seeds() {
    let t = "authorized_keys";
    let text = vector_text("authorized_keys/every-form.authorized_keys");
    write(t, "every-form", text.as_bytes());
    write(t, "every-form-crlf", text.replace('\n', "\r\n").as_bytes());
    let (sections, lines) = sections_and_lines(&text);
    for (i, section) in sections.iter().enumerate() {
        write(t, &format!("section-{i}"), section.as_bytes());
    }
    for (number, line) in lines {
        write(t, &format!("line-{number:02}"), line.as_bytes());
    }

    let fingerprints = fingerprint_lines();
    let (ed25519, ecdsa) = (&fingerprints[0].1, &fingerprints[1].1);
    let key = ed25519.rsplit_once(' ').unwrap().0;
    let other = ecdsa.rsplit_once(' ').unwrap().0;
    // For the target's three fixed clients (192.0.2.1 in 2023; 10.1.2.3 as an IPv4-mapped
    // address, named client.example.com, in 2036; 2001:db8::1 in 1970), the first key is
    // found for the first and third and refused (expired or another network) for the
    // second; the second key is refused for the first (no line lets in its network) and
    // found for the others, by mapped address and by IPv6 network: 4 found, 2 refused.
    let lookups = format!(
        "expiry-time=\"20200101\" {key} expired\n\
         from=\"198.51.100.0/24\" {key} another network\n\
         cert-authority {key} signs certificates\n\
         expiry-time=\"20300101120000Z\",from=\"192.0.2.0/24,!192.0.2.99\" {key} the office\n\
         from=\"*.EXAMPLE.com,!10.1.2.3\" {other} by host name\n\
         from=\"10.1.0.0/16\" {other} by mapped address\n\
         from=\"2001:db8::/32\" {other} by IPv6 address\n"
    );
    write(t, "lookups", lookups.as_bytes());
    let mut latin1 = format!("{key} caf").into_bytes();
    latin1.extend_from_slice(b"\xe9 au lait\n");
    write(t, "latin-1-comment", &latin1);
    let mut not_utf8 = b"command=\"\xff\" ".to_vec();
    not_utf8.extend_from_slice(key.as_bytes());
    write(t, "not-utf8-options", &not_utf8);
    write(t, "nul-byte", format!("{key} a\0b\n").as_bytes());
    let long = format!("{key} {}\n", "x".repeat(8192));
    write(t, "line-too-long", long.as_bytes());
}

fn write_known_hosts_seeds() {
    let t = "known_hosts";
    let text = vector_text("known_hosts/every-form.known_hosts");
    write(t, "every-form", text.as_bytes());
    write(t, "every-form-crlf", text.replace('\n', "\r\n").as_bytes());
    let (sections, lines) = sections_and_lines(&text);
    for (i, section) in sections.iter().enumerate() {
        write(t, &format!("section-{i}"), section.as_bytes());
    }
    for (number, line) in lines {
        write(t, &format!("line-{number:02}"), line.as_bytes());
    }

    let key = PublicKey::from_blob(&blob_of(&fingerprint_lines()[0].1)).unwrap();
    let written = [
        entry_line("new.example.com", 22, &key, None).unwrap(),
        entry_line("New.Example.com", 2222, &key, Some([9; 20])).unwrap(),
    ];
    write(t, "written", written.join("\n").as_bytes());
    let portless = format!(
        "{}\n@revoked [port.example.com]:2222 {}\n",
        entry_line("port.example.com", 22, &key, None).unwrap(),
        entry_line("x", 22, &key, None)
            .unwrap()
            .split_once(' ')
            .unwrap()
            .1
    );
    write(t, "portless-and-revoked", portless.as_bytes());
    // The long pattern comes second: the target looks up the first name of a line.
    let long_pattern = format!(
        "short.example.com,{} {}\n",
        "p".repeat(1024),
        written[0].split_once(' ').unwrap().1
    );
    write(t, "pattern-too-long", long_pattern.as_bytes());
    write(t, "many-invalid-lines", "x\n".repeat(120).as_bytes());
    let mut not_utf8 = written[0].clone().into_bytes();
    not_utf8.extend_from_slice(b" comment \xff\xfe\n\xc3 ssh-ed25519\n");
    write(t, "not-utf8", &not_utf8);
}
