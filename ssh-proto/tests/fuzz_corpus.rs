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
use ssh_proto::config::Config;
use ssh_proto::fuzzing::{self, KexMode, TARGETS};
use ssh_proto::hostkey::{HostKeyPair, SignatureAlg};
use ssh_proto::kex;
use ssh_proto::msg::MessageNumber;
use ssh_proto::packet::Sealer;
use ssh_proto::role::Role;
use ssh_proto::sim::{Cut, Pair, SeededRng};
use ssh_proto::transport::Transport;
use ssh_proto::wire::Writer;

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
}
