//! The packet path against the raw AEAD it is built on.
//!
//! One run measures, for 32 KiB payloads, all interleaved in rounds (see the harness):
//!
//! - the one copy the packet path makes, as a reference for what the libc's `memcpy`
//!   costs;
//! - raw AES-128-GCM and AES-256-GCM, sealed and opened in place straight through `ring`'s
//!   `LessSafeKey` and through the `aes-gcm` crate: the ceiling our packet path can reach;
//! - the packet path of every cipher with both providers: a `Sealer` frames the payload
//!   into a reused output buffer and seals it, an `Opener` opens it in place;
//! - the whole transport over the simulator: `Transport::send`, `poll_transmit` and the
//!   peer's `decode`, which adds the transport's own bookkeeping to the packet path.
//!
//! Each row is printed with its ratio to the raw AEAD. The goal for AES-GCM is a packet
//! path at 0.8 of the raw AEAD or better: the packet path only adds framing, a 32 KiB
//! copy of the payload into the output buffer, and a dynamic call per packet.
//!
//! `cargo bench -p benches --bench packet_path` runs it; `-- --quick` takes fewer samples,
//! and any other argument keeps only the rows whose name contains it. Run without
//! `--bench` (as `cargo test --all-targets` does), it only checks that every case round
//! trips and runs each once.

use std::hint::black_box;

use aes_gcm::{AeadInOut, KeyInit};
use benches::harness::{self, Args, Case, Measured, Plan};
use benches::machine;
use benches::setup::{Connected, connected, direction_keys};
use ring::aead;
use ssh_proto::algorithms::{Algorithm, Cipher, Mac};
use ssh_proto::crypto::{CryptoProvider, all_providers};
use ssh_proto::msg::MessageNumber;
use ssh_proto::packet::{MAX_OVERHEAD, Opened, Opener, Sealer};

/// The payload of every packet: the largest an SSH channel sends by default (RFC 4254
/// section 5.2 leaves it to the peer; OpenSSH uses 32 KiB).
const PAYLOAD: usize = 32 * 1024;

/// Messages the transport rows seal before each `poll_transmit`, as an event loop would
/// fill one socket write: 4 x 32 KiB.
const TRANSPORT_BATCH: u64 = 4;

/// What the packet path runs: each cipher, with its MAC for the CTR ones.
const SUITES: [(Cipher, Option<Mac>); 6] = [
    (Cipher::Aes128Gcm, None),
    (Cipher::Aes256Gcm, None),
    (Cipher::ChaCha20Poly1305, None),
    (Cipher::Aes128Ctr, Some(Mac::HmacSha256Etm)),
    (Cipher::Aes256Ctr, Some(Mac::HmacSha512Etm)),
    (Cipher::Aes128Ctr, Some(Mac::HmacSha256)),
];

/// Which AES-GCM a row is compared with: the one of the same key size, or AES-128 for
/// rows that are not AES-GCM at all.
fn reference_bits(cipher: Cipher) -> u16 {
    match cipher {
        Cipher::Aes256Gcm => 256,
        _ => 128,
    }
}

/// The suite's name as a table shows it, without the `@openssh.com` suffixes.
fn suite_label(cipher: Cipher, mac: Option<Mac>) -> String {
    let short = |name: &str| name.trim_end_matches("@openssh.com").to_owned();
    match mac {
        Some(mac) => format!("{} {}", short(cipher.name()), short(mac.name())),
        None => short(cipher.name()),
    }
}

/// What a row measures, to find the rows it is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Copy,
    Raw {
        provider: &'static str,
        bits: u16,
    },
    Packet {
        provider: &'static str,
        suite: usize,
    },
    Transport {
        provider: &'static str,
        suite: usize,
    },
}

/// A repeatable, non-trivial payload.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// The nonce of the `n`th packet: a fixed prefix and a counter, as RFC 5647 builds it.
fn gcm_nonce(n: u64) -> [u8; 12] {
    let mut nonce = [0x11; 12];
    nonce[4..].copy_from_slice(&n.to_be_bytes());
    nonce
}

/// The associated data of the raw rows: four bytes, as the packet length is in SSH.
const AAD: [u8; 4] = [0, 0, 0x80, 0x10];

/// Raw `ring` AES-GCM: seal then open one 32 KiB buffer in place.
fn raw_ring(bits: u16) -> impl FnMut(u64) {
    let alg = if bits == 256 {
        &aead::AES_256_GCM
    } else {
        &aead::AES_128_GCM
    };
    let key_bytes = vec![0x42; alg.key_len()];
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(alg, &key_bytes).unwrap());
    let plain = pattern(PAYLOAD);
    let mut buf = plain.clone();
    let mut counter = 0u64;

    let round = move |buf: &mut [u8], counter: &mut u64| {
        let nonce = gcm_nonce(*counter);
        *counter += 1;
        let tag = key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(AAD),
                buf,
            )
            .unwrap();
        key.open_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(AAD),
            tag,
            buf,
            0..,
        )
        .unwrap();
    };

    round(&mut buf, &mut counter);
    assert_eq!(buf, plain, "raw ring AES-{bits}-GCM does not round trip");

    move |n| {
        for _ in 0..n {
            round(black_box(&mut buf), &mut counter);
            black_box(&buf);
        }
    }
}

/// Raw `aes-gcm` (the pure-Rust AES-GCM): seal then open one 32 KiB buffer in place.
fn raw_rustcrypto(bits: u16) -> Box<dyn FnMut(u64)> {
    if bits == 256 {
        Box::new(raw_aes_gcm(
            aes_gcm::Aes256Gcm::new_from_slice(&[0x42; 32]).unwrap(),
        ))
    } else {
        Box::new(raw_aes_gcm(
            aes_gcm::Aes128Gcm::new_from_slice(&[0x42; 16]).unwrap(),
        ))
    }
}

fn raw_aes_gcm<A>(key: A) -> impl FnMut(u64)
where
    A: AeadInOut<NonceSize = aes_gcm::aead::consts::U12, TagSize = aes_gcm::aead::consts::U16>,
{
    let plain = pattern(PAYLOAD);
    let mut buf = plain.clone();
    let mut counter = 0u64;

    let round = move |buf: &mut [u8], counter: &mut u64| {
        let nonce = aes_gcm::Nonce::from(gcm_nonce(*counter));
        *counter += 1;
        let tag = key
            .encrypt_inout_detached(&nonce, &AAD, buf.into())
            .unwrap();
        key.decrypt_inout_detached(&nonce, &AAD, buf.into(), &tag)
            .unwrap();
    };

    round(&mut buf, &mut counter);
    assert_eq!(buf, plain, "raw aes-gcm does not round trip");

    move |n| {
        for _ in 0..n {
            round(black_box(&mut buf), &mut counter);
            black_box(&buf);
        }
    }
}

/// The one copy the packet path makes: the payload appended after the 5-byte header of a
/// cleared, reused buffer, so the destination is misaligned exactly as in `seal_with`.
/// glibc copies 32 KiB with `rep movsb`, which some AMD processors run slowly.
fn payload_copy() -> impl FnMut(u64) {
    let payload = pattern(PAYLOAD);
    let mut out = Vec::with_capacity(PAYLOAD + MAX_OVERHEAD);
    move |n| {
        for _ in 0..n {
            out.clear();
            out.extend_from_slice(&[0; 5]);
            out.extend_from_slice(black_box(&payload));
            black_box(&mut out);
        }
    }
}

/// The packet path: frame and seal into a reused buffer, then open it in place.
fn packet_path(
    provider: &'static dyn CryptoProvider,
    cipher: Cipher,
    mac: Option<Mac>,
) -> impl FnMut(u64) {
    let keys = direction_keys(cipher, mac);
    let mut sealer = Sealer::plain();
    sealer.install(provider, &keys, [0x5a; 255]).unwrap();
    let mut opener = Opener::plain();
    opener.install(provider, &keys).unwrap();

    let payload = pattern(PAYLOAD);
    let mut wire = Vec::with_capacity(PAYLOAD + MAX_OVERHEAD);
    let capacity = wire.capacity();

    let mut round = move |wire: &mut Vec<u8>, payload: &[u8]| {
        wire.clear();
        sealer.seal_with(wire, |out| out.extend_from_slice(payload));
        match opener.open(wire) {
            Ok(Opened::Packet { payload, .. }) => payload,
            other => panic!("the packet did not open: {other:?}"),
        }
    };

    let opened = round(&mut wire, &payload);
    assert!(
        wire[opened] == payload[..],
        "{} with {} does not round trip",
        suite_label(cipher, mac),
        provider.name()
    );

    move |n| {
        for _ in 0..n {
            let opened = round(black_box(&mut wire), black_box(&payload));
            black_box(&wire[opened]);
        }
        // The buffer never grew: sealing allocated nothing.
        assert_eq!(wire.capacity(), capacity);
    }
}

/// The whole transport: a client and a server that finished their key exchange in the
/// simulator, then the client's `send` and `poll_transmit` and the server's `decode`.
fn transport(
    provider: &'static dyn CryptoProvider,
    cipher: Cipher,
    mac: Option<Mac>,
) -> impl FnMut(u64) {
    let Connected {
        mut client,
        mut server,
        now,
    } = connected(provider, cipher, mac);

    // SSH_MSG_CHANNEL_DATA (RFC 4254 section 5.2) filling the payload.
    let mut message = pattern(PAYLOAD);
    message[0] = MessageNumber::CHANNEL_DATA.0;
    message[1..5].copy_from_slice(&0u32.to_be_bytes());
    message[5..9].copy_from_slice(&((PAYLOAD - 9) as u32).to_be_bytes());

    // Round trip once, outside the timed loop: the server gets the message unchanged.
    let mut wire = Vec::new();
    client.send(|out| out.extend_from_slice(&message)).unwrap();
    client.poll_transmit(&mut wire);
    let sent = wire.len();
    let decoded = server.decode(&mut wire, now).unwrap();
    assert_eq!(decoded.consumed, sent);
    assert!(
        decoded.packet.is_some_and(|p| p.payload == message),
        "{} with {} does not round trip through the transport",
        suite_label(cipher, mac),
        provider.name()
    );
    wire.clear();

    move |n| {
        let mut left = n;
        while left > 0 {
            let count = left.min(TRANSPORT_BATCH);
            for _ in 0..count {
                client
                    .send(|out| out.extend_from_slice(black_box(&message)))
                    .unwrap();
            }
            client.poll_transmit(&mut wire);

            let mut start = 0;
            let mut delivered = 0;
            while start < wire.len() {
                let decoded = server.decode(&mut wire[start..], now).unwrap();
                assert!(decoded.consumed > 0, "the transport stalled");
                if let Some(packet) = decoded.packet {
                    black_box(packet.payload);
                    delivered += 1;
                }
                start += decoded.consumed;
            }
            assert_eq!(delivered, count);
            wire.clear();
            left -= count;
        }
    }
}

/// Every row of the report, in the order printed.
fn kinds() -> Vec<Kind> {
    let mut kinds = vec![Kind::Copy];
    for provider in ["ring", "rustcrypto"] {
        for bits in [128, 256] {
            kinds.push(Kind::Raw { provider, bits });
        }
    }
    for provider in all_providers() {
        kinds.extend((0..SUITES.len()).map(|suite| Kind::Packet {
            provider: provider.name(),
            suite,
        }));
    }
    for provider in all_providers() {
        kinds.extend((0..SUITES.len()).map(|suite| Kind::Transport {
            provider: provider.name(),
            suite,
        }));
    }
    kinds
}

/// The row's name, which the command line filters on.
fn name(kind: Kind) -> String {
    match kind {
        Kind::Copy => "copy 32 KiB".to_owned(),
        Kind::Raw { provider, bits } => format!("raw {provider} AES-{bits}-GCM"),
        Kind::Packet { provider, suite } => {
            let (cipher, mac) = SUITES[suite];
            format!("packet {provider} {}", suite_label(cipher, mac))
        }
        Kind::Transport { provider, suite } => {
            let (cipher, mac) = SUITES[suite];
            format!("transport {provider} {}", suite_label(cipher, mac))
        }
    }
}

/// Sets the row up (keys, buffers, a handshake for the transport rows) and checks that it
/// round trips.
fn build(kind: Kind) -> Case<'static> {
    let provider = |name: &str| {
        all_providers()
            .into_iter()
            .find(|p| p.name() == name)
            .unwrap()
    };
    let run: Box<dyn FnMut(u64)> = match kind {
        Kind::Copy => Box::new(payload_copy()),
        Kind::Raw {
            provider: "ring",
            bits,
        } => Box::new(raw_ring(bits)),
        Kind::Raw { bits, .. } => raw_rustcrypto(bits),
        Kind::Packet {
            provider: name,
            suite,
        } => {
            let (cipher, mac) = SUITES[suite];
            Box::new(packet_path(provider(name), cipher, mac))
        }
        Kind::Transport {
            provider: name,
            suite,
        } => {
            let (cipher, mac) = SUITES[suite];
            Box::new(transport(provider(name), cipher, mac))
        }
    };
    Case::new(name(kind), PAYLOAD as u64, run)
}

fn main() {
    let args = Args::from_env();

    let kinds: Vec<Kind> = kinds()
        .into_iter()
        .filter(|&kind| args.picks(&name(kind)))
        .collect();
    let mut cases: Vec<Case<'_>> = kinds.iter().map(|&kind| build(kind)).collect();

    if !args.bench {
        for case in &mut cases {
            case.run_once(TRANSPORT_BATCH + 1);
        }
        println!(
            "packet_path: {} cases round trip; run `cargo bench -p benches --bench packet_path` \
             for figures",
            cases.len()
        );
        return;
    }

    let plan = if args.quick { Plan::QUICK } else { Plan::FULL }.with_env();
    let load_before = machine::load_average();
    let measured = harness::measure(&mut cases, plan);
    let on_cpu = measured.iter().all(|m| !m.cpu.is_empty());
    print_header(plan, &load_before, on_cpu);
    print_table(&kinds, &measured);
}

fn print_header(plan: Plan, load_before: &str, on_cpu: bool) {
    plan.print_header(load_before);
    if on_cpu {
        println!(
            "GB/s:     10^9 payload bytes per second of this thread's CPU time, each byte both \
             sealed and opened; median sample"
        );
        println!("wall:     the same over wall-clock time, which also counts other processes");
    } else {
        println!(
            "GB/s:     10^9 payload bytes per second of wall-clock time, each byte both sealed \
             and opened; median sample"
        );
        println!("wall:     the same (this thread's CPU time is not available here)");
    }
    println!("          (for the copy row: bytes copied per second)");
    println!("spread:   (fastest - slowest sample) / median sample");
    println!(
        "x ring:   / raw ring AES-GCM of the same key size (chacha20-poly1305 and the CTR rows: \
         / raw ring AES-128-GCM)"
    );
    println!(
        "x own:    the same, against the raw AES-GCM of the row's own provider (ring: \
         LessSafeKey; rustcrypto: the aes-gcm crate)"
    );
    println!("x packet: a transport row / the packet-path row of the same provider and cipher");
    println!(
        "          Every ratio is the median over rounds of the quotient of two samples of \
         the same round."
    );
    println!("goal:     AES-GCM rows against 0.8 of their own provider's raw AES-GCM");
    println!();
}

fn print_table(kinds: &[Kind], measured: &[Measured]) {
    let find = |kind: Kind| kinds.iter().position(|&k| k == kind).map(|i| &measured[i]);
    let ratio = |m: &Measured, reference: Option<&Measured>| match reference {
        Some(r) => format!("{:.2}", m.ratio_to(r)),
        None => "-".to_owned(),
    };

    println!(
        "{:<46} {:>6} {:>6} {:>7} {:>7} {:>6} {:>8}  goal",
        "row", "GB/s", "wall", "spread", "x ring", "x own", "x packet"
    );
    let mut section = "";
    for (&kind, m) in kinds.iter().zip(measured) {
        let (title, label, ring_ref, own_ref, packet_ref, gcm) = match kind {
            Kind::Copy => (
                "copy: the packet path's one copy, 32 KiB appended at offset 5 of a reused Vec",
                "Vec::extend_from_slice".to_owned(),
                None,
                None,
                None,
                false,
            ),
            Kind::Raw { provider, bits } => (
                "raw AES-GCM: seal + open in place of 32 KiB with 4 bytes of AAD",
                format!("{provider} AES-{bits}-GCM"),
                find(Kind::Raw {
                    provider: "ring",
                    bits,
                }),
                find(Kind::Raw { provider, bits }),
                None,
                false,
            ),
            Kind::Packet { provider, suite } | Kind::Transport { provider, suite } => {
                let (cipher, mac) = SUITES[suite];
                let bits = reference_bits(cipher);
                let title = if matches!(kind, Kind::Packet { .. }) {
                    "packet path: Sealer::seal_with (payload copied in) + Opener::open, 32 KiB"
                } else {
                    "transport: 4 x Transport::send, poll_transmit, decode; 32 KiB messages"
                };
                (
                    title,
                    format!("{provider:<10} {}", suite_label(cipher, mac)),
                    find(Kind::Raw {
                        provider: "ring",
                        bits,
                    }),
                    find(Kind::Raw { provider, bits }),
                    match kind {
                        Kind::Transport { .. } => find(Kind::Packet { provider, suite }),
                        _ => None,
                    },
                    matches!(cipher, Cipher::Aes128Gcm | Cipher::Aes256Gcm),
                )
            }
        };
        if title != section {
            println!("{title}");
            section = title;
        }
        let goal = match own_ref {
            Some(r) if gcm && m.ratio_to(r) >= 0.8 => "ok",
            Some(_) if gcm => "BELOW",
            _ => "",
        };
        println!(
            "  {:<44} {:>6.2} {:>6.2} {:>6.1}% {:>7} {:>6} {:>8}  {}",
            label,
            m.median(),
            m.wall_median(),
            m.spread_percent(),
            ratio(m, ring_ref),
            ratio(m, own_ref),
            ratio(m, packet_ref),
            goal
        );
    }
}
