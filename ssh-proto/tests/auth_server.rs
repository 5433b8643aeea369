//! The server side of authentication (`auth::server`) against a client written by hand:
//! a real handshake over the simulator, then USERAUTH messages built field by field, so a
//! test can send what a well-behaved client never would: what a hostile client may try.

use std::sync::{Arc, Mutex, Once};

use ssh_proto::Error;
use ssh_proto::auth::msg::{
    self, Failure, InfoRequest, Method, Prompt, SERVICE_CONNECTION, SERVICE_USERAUTH, USERAUTH_60,
    USERAUTH_INFO_RESPONSE,
};
use ssh_proto::auth::server::{AuthLimits, Outcome, ServerAuth, ServerAuthEvent};
use ssh_proto::config::Config;
use ssh_proto::crypto::{CryptoProvider, all_providers, default_provider};
use ssh_proto::hostkey::{HostKeyPair, PublicKey, SignatureAlg};
use ssh_proto::msg::{DisconnectReason, MessageNumber};
use ssh_proto::sim::{Cut, Pair};
use ssh_proto::transport::Transport;
use ssh_proto::wire::{Reader, Writer};

/// What the tests' application attaches to a success.
type Perm = &'static str;
type Event = ServerAuthEvent<Perm>;

// ---------------------------------------------------------------------------------------
// The rig: a handshaken pair, the server's ServerAuth, and the hand-written client

struct Rig {
    pair: Pair,
    auth: ServerAuth<Perm>,
    /// Events from `auth`, in order.
    events: Vec<Event>,
    /// Server side: packets the application got that are not for authentication.
    passed_up: Vec<Vec<u8>>,
}

fn limits(methods: &[Method]) -> AuthLimits {
    AuthLimits {
        methods: methods.to_vec(),
        ..AuthLimits::default()
    }
}

fn all_methods() -> AuthLimits {
    limits(&[
        Method::PublicKey,
        Method::Password,
        Method::KeyboardInteractive,
    ])
}

impl Rig {
    fn new(limits: AuthLimits) -> Self {
        Self::with_provider(default_provider(), limits, 1)
    }

    fn with_provider(provider: &'static dyn CryptoProvider, limits: AuthLimits, seed: u64) -> Self {
        let client = Config {
            provider,
            ..Config::default()
        };
        let server = Config {
            provider,
            host_keys: vec![HostKeyPair::ed25519_from_seed(provider, &[7; 32])],
            ..Config::default()
        };
        let mut pair = Pair::new(Arc::new(client), Arc::new(server), seed, Cut::Whole);
        pair.handshake().unwrap();
        Self {
            pair,
            auth: ServerAuth::new(provider, limits),
            events: Vec::new(),
            passed_up: Vec::new(),
        }
    }

    /// A rig whose client was granted `ssh-userauth`.
    fn started(limits: AuthLimits) -> Self {
        let mut rig = Self::new(limits);
        let got = rig.exchange(&service_request(SERVICE_USERAUTH.as_bytes()));
        assert_eq!(got[0], service_accept(), "SERVICE_ACCEPT comes first");
        rig
    }

    fn session_id(&self) -> Vec<u8> {
        self.pair.client.transport.session_id().unwrap().to_vec()
    }

    /// The client sends one message.
    fn send(&mut self, payload: &[u8]) {
        self.pair
            .client
            .transport
            .send(|p| p.extend_from_slice(payload))
            .unwrap();
    }

    fn server_reads(&mut self) -> Result<(), Error> {
        self.server_reads_with(|_, _, _| Ok(()))
    }

    /// Delivers what the client sent. Each packet goes to `auth` as soon as the transport
    /// hands it up, the way an application routes messages 5 and 50 to 79; `app` sees each
    /// event as it comes out and may answer it at once.
    fn server_reads_with(
        &mut self,
        mut app: impl FnMut(&mut ServerAuth<Perm>, &mut Transport, &Event) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.pair.flush();
        let wire = std::mem::take(self.pair.c2s_in_flight());
        let now = self.pair.now;
        let server = &mut self.pair.server;
        server.inbox.extend(wire);
        let mut start = 0;
        let result = loop {
            let decoded = match server.transport.decode(&mut server.inbox[start..], now) {
                Ok(d) => d,
                Err(e) => break Err(e),
            };
            start += decoded.consumed;
            while server.transport.poll_event().is_some() {}
            if let Some(packet) = decoded.packet {
                let n = packet.payload[0];
                if n == MessageNumber::SERVICE_REQUEST.0 || (50..80).contains(&n) {
                    if let Err(e) = self.auth.handle(&mut server.transport, packet.payload) {
                        break Err(e);
                    }
                } else {
                    self.passed_up.push(packet.payload.to_vec());
                }
            }
            let mut failed = None;
            while let Some(event) = self.auth.poll_event() {
                if let Err(e) = app(&mut self.auth, &mut server.transport, &event) {
                    failed = Some(e);
                }
                self.events.push(event);
            }
            if let Some(e) = failed {
                break Err(e);
            }
            if decoded.consumed == 0 {
                break Ok(());
            }
        };
        server.inbox.drain(..start);
        result
    }

    /// Delivers what the server sent; returns the payloads the client's layer above got.
    /// A DISCONNECT from the server comes back as [`Error::PeerDisconnected`].
    fn client_reads(&mut self) -> Result<Vec<Vec<u8>>, Error> {
        self.pair.flush();
        let wire = std::mem::take(self.pair.s2c_in_flight());
        let now = self.pair.now;
        let client = &mut self.pair.client;
        client.inbox.extend(wire);
        let mut got = Vec::new();
        let mut start = 0;
        let result = loop {
            let decoded = match client.transport.decode(&mut client.inbox[start..], now) {
                Ok(d) => d,
                Err(e) => break Err(e),
            };
            start += decoded.consumed;
            while client.transport.poll_event().is_some() {}
            if let Some(packet) = decoded.packet {
                got.push(packet.payload.to_vec());
            }
            if decoded.consumed == 0 {
                break Ok(got);
            }
        };
        client.inbox.drain(..start);
        result
    }

    /// The client sends `payload`; the server takes it; returns what the client got back.
    fn exchange(&mut self, payload: &[u8]) -> Vec<Vec<u8>> {
        self.send(payload);
        self.server_reads().unwrap();
        self.client_reads().unwrap()
    }

    /// Sends whatever the application's last answer queued and returns what the client got.
    fn replies(&mut self) -> Vec<Vec<u8>> {
        self.client_reads().unwrap()
    }

    /// Every event so far, those that followed a direct answer included.
    fn take_events(&mut self) -> Vec<Event> {
        while let Some(event) = self.auth.poll_event() {
            self.events.push(event);
        }
        std::mem::take(&mut self.events)
    }

    /// Checks that the server ended the connection with `reason`, on its side (`result`)
    /// and on the wire (the client reads a DISCONNECT).
    #[track_caller]
    fn expect_disconnect(&mut self, result: Result<(), Error>, reason: DisconnectReason) {
        let e = result.expect_err("the server must end the connection");
        assert_eq!(e.disconnect_reason(), reason, "{e:?}");
        assert!(self.pair.server.transport.is_closed());
        match self.client_reads() {
            Err(Error::PeerDisconnected { reason: heard, .. }) => assert_eq!(heard, reason),
            other => panic!("the client must hear a DISCONNECT, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Messages a client sends

fn key(seed: u8) -> HostKeyPair {
    HostKeyPair::ed25519_from_seed(default_provider(), &[seed; 32])
}

fn service_request(name: &[u8]) -> Vec<u8> {
    let mut p = vec![MessageNumber::SERVICE_REQUEST.0];
    p.put_string(name);
    p
}

fn request(user: &[u8], method: Method) -> Vec<u8> {
    let mut p = Vec::new();
    msg::put_request_head(&mut p, user, SERVICE_CONNECTION.as_bytes(), method);
    p
}

fn none(user: &[u8]) -> Vec<u8> {
    request(user, Method::None)
}

fn password(user: &[u8], password: &[u8]) -> Vec<u8> {
    let mut p = request(user, Method::Password);
    p.put_bool(false);
    p.put_string(password);
    p
}

/// A `publickey` request with every field chosen by the caller.
fn publickey_raw(user: &[u8], alg: &[u8], blob: &[u8], signature: Option<&[u8]>) -> Vec<u8> {
    let mut p = request(user, Method::PublicKey);
    p.put_bool(signature.is_some());
    p.put_string(alg);
    p.put_string(blob);
    if let Some(sig) = signature {
        p.put_string(sig);
    }
    p
}

fn query(user: &[u8], key: &PublicKey) -> Vec<u8> {
    publickey_raw(user, b"ssh-ed25519", &key.to_blob(), None)
}

/// The signature blob `signer` makes over the RFC 4252 section 7 data for `key`.
fn signature(session_id: &[u8], user: &[u8], key: &PublicKey, signer: &HostKeyPair) -> Vec<u8> {
    let data = msg::publickey_signed_data(
        session_id,
        user,
        SERVICE_CONNECTION.as_bytes(),
        b"ssh-ed25519",
        &key.to_blob(),
    );
    signer
        .sign(default_provider(), SignatureAlg::Ed25519, &data)
        .unwrap()
}

fn signed(session_id: &[u8], user: &[u8], key: &HostKeyPair) -> Vec<u8> {
    let sig = signature(session_id, user, key.public(), key);
    publickey_raw(user, b"ssh-ed25519", &key.public().to_blob(), Some(&sig))
}

fn keyboard_interactive(user: &[u8], submethods: &[u8]) -> Vec<u8> {
    let mut p = request(user, Method::KeyboardInteractive);
    p.put_string(b"");
    p.put_string(submethods);
    p
}

fn info_response(answers: &[&[u8]]) -> Vec<u8> {
    let mut p = vec![USERAUTH_INFO_RESPONSE.0];
    p.put_u32(answers.len() as u32);
    for a in answers {
        p.put_string(a);
    }
    p
}

// ---------------------------------------------------------------------------------------
// Messages a server sends, as the client reads them

fn service_accept() -> Vec<u8> {
    let mut p = vec![MessageNumber::SERVICE_ACCEPT.0];
    p.put_string(SERVICE_USERAUTH.as_bytes());
    p
}

/// Reads FAILURE: the methods that can continue and the partial success flag.
#[track_caller]
fn failure(payload: &[u8]) -> (Vec<String>, bool) {
    assert_eq!(payload[0], MessageNumber::USERAUTH_FAILURE.0, "{payload:?}");
    let f = Failure::parse(payload).unwrap();
    let methods = f.can_continue.iter().map(str::to_owned).collect();
    (methods, f.partial_success)
}

#[track_caller]
fn assert_failure(replies: &[Vec<u8>], methods: &[&str], partial: bool) {
    assert_eq!(replies.len(), 1, "one reply expected: {replies:?}");
    let (got, got_partial) = failure(&replies[0]);
    assert_eq!(got, methods);
    assert_eq!(got_partial, partial);
}

#[track_caller]
fn assert_success(replies: &[Vec<u8>]) {
    assert_eq!(replies, [vec![MessageNumber::USERAUTH_SUCCESS.0]]);
}

/// Reads PK_OK: the algorithm name and key blob it echoes.
#[track_caller]
fn pk_ok(payload: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut r = Reader::new(payload);
    assert_eq!(r.u8("msg").unwrap(), USERAUTH_60.0);
    let alg = r.string("alg").unwrap().to_vec();
    let blob = r.string("blob").unwrap().to_vec();
    r.finish().unwrap();
    (alg, blob)
}

fn accept_with(
    perm: Perm,
) -> impl FnMut(&mut ServerAuth<Perm>, &mut Transport, &Event) -> Result<(), Error> {
    move |auth, t, event| match event {
        ServerAuthEvent::PublicKeyQuery { .. } => auth.answer_query(t, true),
        ServerAuthEvent::Authenticated { .. } => Ok(()),
        _ => auth.accept(t, Outcome::Success(perm)),
    }
}

fn reject_all(auth: &mut ServerAuth<Perm>, t: &mut Transport, event: &Event) -> Result<(), Error> {
    match event {
        ServerAuthEvent::PublicKeyQuery { .. } => auth.answer_query(t, false),
        ServerAuthEvent::Authenticated { .. } => Ok(()),
        _ => auth.reject(t),
    }
}

// ---------------------------------------------------------------------------------------
// publickey

/// Query, PK_OK, signed request, verified, accepted: SUCCESS, and the transport knows
/// (a connection message now passes where before it ended the connection). With both
/// providers verifying.
#[test]
fn publickey_query_then_signature_succeeds() {
    for (i, provider) in all_providers().into_iter().enumerate() {
        let mut rig = Rig::with_provider(provider, limits(&[Method::PublicKey]), 10 + i as u64);
        let got = rig.exchange(&service_request(SERVICE_USERAUTH.as_bytes()));
        assert_eq!(got, [service_accept()]);
        let alice = key(1);

        let got = rig.exchange(&none(b"alice"));
        assert_failure(&got, &["publickey"], false);

        rig.send(&query(b"alice", alice.public()));
        rig.server_reads().unwrap();
        match &rig.take_events()[..] {
            [ServerAuthEvent::PublicKeyQuery { user, key, alg }] => {
                assert_eq!(user, "alice");
                assert_eq!(key, alice.public());
                assert_eq!(*alg, SignatureAlg::Ed25519);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            rig.client_reads().unwrap().is_empty(),
            "nothing before the answer"
        );
        rig.auth
            .answer_query(&mut rig.pair.server.transport, true)
            .unwrap();
        let got = rig.replies();
        assert_eq!(got.len(), 1);
        assert_eq!(
            pk_ok(&got[0]),
            (b"ssh-ed25519".to_vec(), alice.public().to_blob())
        );

        let sid = rig.session_id();
        rig.send(&signed(&sid, b"alice", &alice));
        rig.server_reads().unwrap();
        match &rig.take_events()[..] {
            [ServerAuthEvent::PublicKeyVerified { user, key, .. }] => {
                assert_eq!(user, "alice");
                assert_eq!(key, alice.public());
            }
            other => panic!("{other:?}"),
        }
        assert!(!rig.auth.is_authenticated());
        rig.auth
            .accept(&mut rig.pair.server.transport, Outcome::Success("key-opts"))
            .unwrap();
        assert_success(&rig.replies());
        assert!(rig.auth.is_authenticated());
        match rig.auth.poll_event() {
            Some(ServerAuthEvent::Authenticated {
                user,
                method,
                permissions,
            }) => {
                assert_eq!(user, "alice");
                assert_eq!(method, Method::PublicKey);
                assert_eq!(permissions, "key-opts");
            }
            other => panic!("{other:?}"),
        }
        // The query and its signed request were one attempt; the first `none` was free.
        assert_eq!(rig.auth.attempts(), 1);

        let channel_open = vec![MessageNumber::CHANNEL_OPEN.0, 1, 2, 3];
        rig.send(&channel_open);
        rig.server_reads().unwrap();
        assert_eq!(rig.passed_up, [channel_open]);
    }
}

#[test]
fn a_refused_key_gets_failure_and_the_connection_lives() {
    let mut rig = Rig::started(all_methods());
    let mallory = key(2);
    rig.send(&query(b"alice", mallory.public()));
    rig.server_reads_with(reject_all).unwrap();
    assert_failure(
        &rig.replies(),
        &["publickey", "password", "keyboard-interactive"],
        false,
    );

    // Signing anyway changes nothing: verified, then refused by the application.
    let sid = rig.session_id();
    rig.send(&signed(&sid, b"alice", &mallory));
    rig.server_reads_with(reject_all).unwrap();
    assert!(matches!(
        rig.take_events()[..],
        [
            ServerAuthEvent::PublicKeyQuery { .. },
            ServerAuthEvent::PublicKeyVerified { .. }
        ]
    ));
    assert!(!failure(&rig.replies()[0]).1);
    assert_eq!(rig.auth.attempts(), 2);

    let got = rig.exchange(&password(b"alice", b"pw"));
    assert!(got.is_empty(), "waiting for the application");
    assert!(!rig.pair.server.transport.is_closed());
}

/// A signature that does not verify is a failed attempt the application never sees, and
/// the connection goes on.
#[test]
fn bad_signatures_fail_without_reaching_the_application() {
    let mut rig = Rig::started(AuthLimits {
        max_attempts: 10,
        ..limits(&[Method::PublicKey])
    });
    let alice = key(1);
    let other = key(3);
    let sid = rig.session_id();
    let blob = alice.public().to_blob();

    let by_other_key = signature(&sid, b"alice", alice.public(), &other);
    let wrong_session = signature(&[9; 32], b"alice", alice.public(), &alice);
    let for_other_user = signature(&sid, b"bob", alice.public(), &alice);
    let mut flipped = signature(&sid, b"alice", alice.public(), &alice);
    *flipped.last_mut().unwrap() ^= 1;
    let mut wrong_alg_name = Vec::new();
    wrong_alg_name.put_string(b"ssh-rsa");
    wrong_alg_name.put_string(&[0; 64]);
    let truncated = &flipped[..20];

    for sig in [
        &by_other_key[..],
        &wrong_session,
        &for_other_user,
        &flipped,
        &wrong_alg_name,
        truncated,
    ] {
        let got = rig.exchange(&publickey_raw(b"alice", b"ssh-ed25519", &blob, Some(sig)));
        assert_failure(&got, &["publickey"], false);
    }
    assert!(rig.take_events().is_empty());
    assert_eq!(rig.auth.attempts(), 6);
    assert!(!rig.pair.server.transport.is_closed());
}

/// A key blob that does not parse fails that attempt; the connection lives.
/// So do algorithms we refuse and an algorithm that does not fit the key.
#[test]
fn unusable_keys_fail_the_attempt_only() {
    let mut rig = Rig::started(limits(&[Method::PublicKey]));
    let alice = key(1);
    let mut bad_point = Vec::new();
    bad_point.put_string(b"ssh-ed25519");
    bad_point.put_string(&[1; 31]);
    let mut unknown_type = Vec::new();
    unknown_type.put_string(b"ssh-dss");
    unknown_type.put_string(&[1; 40]);
    let cases: [(&[u8], Vec<u8>); 5] = [
        (b"ssh-ed25519", b"not a key blob".to_vec()),
        (b"ssh-ed25519", bad_point),
        (b"ssh-dss", unknown_type),
        (b"ssh-rsa", alice.public().to_blob()),
        (b"rsa-sha2-256", alice.public().to_blob()),
    ];
    for (alg, blob) in &cases {
        let got = rig.exchange(&publickey_raw(b"alice", alg, blob, None));
        assert_failure(&got, &["publickey"], false);
    }
    assert!(rig.take_events().is_empty());
    assert_eq!(rig.auth.attempts(), 5);

    // The connection still works.
    rig.send(&query(b"alice", alice.public()));
    rig.server_reads().unwrap();
    assert!(matches!(
        rig.take_events()[..],
        [ServerAuthEvent::PublicKeyQuery { .. }]
    ));
}

/// A query for key A, then a signed request with key B. Only a key whose own
/// signature verified reaches the application as verified; a query authorises nothing.
#[test]
fn query_for_one_key_never_vouches_for_another() {
    let mut rig = Rig::started(limits(&[Method::PublicKey]));
    let a = key(1);
    let b = key(2);
    let sid = rig.session_id();

    rig.send(&query(b"alice", a.public()));
    rig.server_reads().unwrap();
    // Accepting a query is a misuse: nothing goes out, the query still waits.
    let misuse = rig
        .auth
        .accept(&mut rig.pair.server.transport, Outcome::Success("A"));
    assert!(matches!(misuse, Err(Error::Misuse(_))), "{misuse:?}");
    assert!(rig.replies().is_empty());
    assert!(!rig.auth.is_authenticated());
    rig.auth
        .answer_query(&mut rig.pair.server.transport, true)
        .unwrap();
    assert_eq!(pk_ok(&rig.replies()[0]).1, a.public().to_blob());

    // B's blob signed by A: B's signature is missing, so it fails unseen.
    let sig = signature(&sid, b"alice", b.public(), &a);
    let got = rig.exchange(&publickey_raw(
        b"alice",
        b"ssh-ed25519",
        &b.public().to_blob(),
        Some(&sig),
    ));
    assert_failure(&got, &["publickey"], false);

    // B signed by B: verified, and the event names B, never A.
    rig.send(&signed(&sid, b"alice", &b));
    rig.server_reads().unwrap();
    let events = rig.take_events();
    assert_eq!(events.len(), 2);
    assert!(matches!(&events[0], ServerAuthEvent::PublicKeyQuery { key, .. } if key == a.public()));
    match &events[1] {
        ServerAuthEvent::PublicKeyVerified { key, .. } => assert_eq!(key, b.public()),
        other => panic!("{other:?}"),
    }
    rig.auth.reject(&mut rig.pair.server.transport).unwrap();
    assert_failure(&rig.replies(), &["publickey"], false);
    assert!(!rig.auth.is_authenticated());
    // Query (1), B by A (2), B by B (3): the signed requests followed no PK_OK for B.
    assert_eq!(rig.auth.attempts(), 3);
}

/// Five refused keys, then a sixth that is accepted: the query and its signature count
/// once, so an honest client with six keys gets in, as with OpenSSH. A seventh key is
/// one too many.
#[test]
fn a_query_and_its_signature_are_one_attempt() {
    let mut rig = Rig::started(limits(&[Method::PublicKey]));
    for seed in 10..15 {
        rig.send(&query(b"alice", key(seed).public()));
        rig.server_reads_with(reject_all).unwrap();
        failure(&rig.replies()[0]);
    }
    let good = key(20);
    rig.send(&query(b"alice", good.public()));
    rig.server_reads_with(accept_with("six")).unwrap();
    pk_ok(&rig.replies()[0]);
    let sid = rig.session_id();
    rig.send(&signed(&sid, b"alice", &good));
    rig.server_reads_with(accept_with("six")).unwrap();
    assert_success(&rig.replies());
    assert_eq!(rig.auth.attempts(), 6);

    let mut rig = Rig::started(limits(&[Method::PublicKey]));
    for seed in 10..16 {
        rig.send(&query(b"alice", key(seed).public()));
        let result = rig.server_reads_with(reject_all);
        if seed < 15 {
            result.unwrap();
            failure(&rig.replies()[0]);
        } else {
            rig.expect_disconnect(result, DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE);
        }
    }
}

/// Repeated queries for an accepted key, which need no private key, are capped too.
#[test]
fn endless_queries_for_an_accepted_key_are_cut() {
    let mut rig = Rig::started(limits(&[Method::PublicKey]));
    let alice = key(1);
    for _ in 0..20 {
        rig.send(&query(b"alice", alice.public()));
    }
    let result = rig.server_reads_with(accept_with("never"));
    rig.expect_disconnect(result, DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE);
    assert_eq!(rig.take_events().len(), 6);
}

// ---------------------------------------------------------------------------------------
// password and keyboard-interactive

#[test]
fn password_accept_and_reject() {
    let mut rig = Rig::started(limits(&[Method::Password]));
    rig.send(&password(b"alice", b"wrong"));
    rig.server_reads().unwrap();
    match &rig.take_events()[..] {
        [event @ ServerAuthEvent::Password { user, password }] => {
            assert_eq!(user, "alice");
            assert_eq!(&password[..], b"wrong");
            let shown = format!("{event:?}");
            assert!(
                shown.contains("alice") && !shown.contains("wrong"),
                "{shown}"
            );
        }
        other => panic!("{other:?}"),
    }
    rig.auth.reject(&mut rig.pair.server.transport).unwrap();
    assert_failure(&rig.replies(), &["password"], false);

    // A change request (RFC 4252 section 8) is refused without asking the application.
    let mut change = request(b"alice", Method::Password);
    change.put_bool(true);
    change.put_string(b"old");
    change.put_string(b"new");
    assert_failure(&rig.exchange(&change), &["password"], false);
    assert!(rig.take_events().is_empty());

    rig.send(&password(b"alice", b"right"));
    rig.server_reads_with(accept_with("pw")).unwrap();
    assert_success(&rig.replies());
    let events = rig.take_events();
    assert!(matches!(
        &events[1],
        ServerAuthEvent::Authenticated {
            method: Method::Password,
            permissions: "pw",
            ..
        }
    ));
}

#[test]
fn keyboard_interactive_in_two_rounds() {
    let mut rig = Rig::started(limits(&[Method::KeyboardInteractive]));
    rig.send(&keyboard_interactive(b"alice", b"pam,\x1bbsd"));
    rig.server_reads().unwrap();
    match &rig.take_events()[..] {
        [ServerAuthEvent::KeyboardInteractive { user, submethods }] => {
            assert_eq!(user, "alice");
            assert_eq!(submethods, "pam,?bsd");
        }
        other => panic!("{other:?}"),
    }
    // Only a keyboard-interactive step may get prompts.
    let first = InfoRequest {
        name: "Login".into(),
        instruction: "Two questions".into(),
        prompts: vec![
            Prompt {
                text: "Password: ".into(),
                echo: false,
            },
            Prompt {
                text: "Code: ".into(),
                echo: true,
            },
        ],
    };
    rig.auth
        .send_info_request(&mut rig.pair.server.transport, &first)
        .unwrap();
    let got = rig.replies();
    assert_eq!(InfoRequest::parse(&got[0]).unwrap(), first);

    rig.send(&info_response(&[b"secret", b"123456"]));
    rig.server_reads().unwrap();
    match &rig.take_events()[..] {
        [event @ ServerAuthEvent::InfoResponse { user, responses }] => {
            assert_eq!(user, "alice");
            let answers: Vec<&[u8]> = responses.iter().map(|r| &r[..]).collect();
            assert_eq!(answers, [&b"secret"[..], b"123456"]);
            assert!(!format!("{event:?}").contains("secret"));
        }
        other => panic!("{other:?}"),
    }
    let second = InfoRequest {
        name: String::new(),
        instruction: String::new(),
        prompts: vec![Prompt {
            text: "Again: ".into(),
            echo: false,
        }],
    };
    rig.auth
        .send_info_request(&mut rig.pair.server.transport, &second)
        .unwrap();
    assert_eq!(InfoRequest::parse(&rig.replies()[0]).unwrap(), second);

    rig.send(&info_response(&[b"yes"]));
    rig.server_reads_with(accept_with("kbd")).unwrap();
    assert_success(&rig.replies());
    assert!(matches!(
        rig.take_events()[..],
        [
            ServerAuthEvent::InfoResponse { .. },
            ServerAuthEvent::Authenticated {
                method: Method::KeyboardInteractive,
                ..
            }
        ]
    ));
    assert_eq!(rig.auth.attempts(), 1);
}

#[test]
fn info_response_needs_an_outstanding_request_with_as_many_prompts() {
    // None outstanding.
    let mut rig = Rig::started(limits(&[Method::KeyboardInteractive]));
    rig.send(&info_response(&[b"x"]));
    let result = rig.server_reads();
    rig.expect_disconnect(result, DisconnectReason::PROTOCOL_ERROR);

    // Two prompts, one answer.
    let mut rig = Rig::started(limits(&[Method::KeyboardInteractive]));
    rig.send(&keyboard_interactive(b"alice", b""));
    rig.server_reads().unwrap();
    let two = InfoRequest {
        name: String::new(),
        instruction: String::new(),
        prompts: vec![
            Prompt {
                text: "a".into(),
                echo: false,
            };
            2
        ],
    };
    rig.auth
        .send_info_request(&mut rig.pair.server.transport, &two)
        .unwrap();
    rig.replies();
    rig.send(&info_response(&[b"x"]));
    let result = rig.server_reads();
    rig.expect_disconnect(result, DisconnectReason::PROTOCOL_ERROR);

    // A count past the limit, refused before anything is allocated for it.
    let mut rig = Rig::started(limits(&[Method::KeyboardInteractive]));
    rig.send(&keyboard_interactive(b"alice", b""));
    rig.server_reads().unwrap();
    rig.auth
        .send_info_request(&mut rig.pair.server.transport, &two)
        .unwrap();
    let mut huge = vec![USERAUTH_INFO_RESPONSE.0];
    huge.put_u32(u32::MAX);
    rig.send(&huge);
    let result = rig.server_reads();
    rig.expect_disconnect(result, DisconnectReason::PROTOCOL_ERROR);
}

/// Answers that do not fit the pending decision are misuse and change nothing.
#[test]
fn answers_must_fit_the_pending_decision() {
    let mut rig = Rig::started(all_methods());
    let t = &mut rig.pair.server.transport;
    assert!(matches!(rig.auth.reject(t), Err(Error::Misuse(_))));
    assert!(matches!(
        rig.auth.answer_query(t, true),
        Err(Error::Misuse(_))
    ));
    assert!(matches!(
        rig.auth.accept(t, Outcome::Success("x")),
        Err(Error::Misuse(_))
    ));

    rig.send(&password(b"alice", b"pw"));
    rig.server_reads().unwrap();
    let t = &mut rig.pair.server.transport;
    let prompts = InfoRequest {
        name: String::new(),
        instruction: String::new(),
        prompts: Vec::new(),
    };
    assert!(matches!(
        rig.auth.send_info_request(t, &prompts),
        Err(Error::Misuse(_))
    ));
    assert!(matches!(
        rig.auth.answer_query(t, true),
        Err(Error::Misuse(_))
    ));
    assert!(rig.replies().is_empty());
    rig.auth
        .accept(&mut rig.pair.server.transport, Outcome::Success("pw"))
        .unwrap();
    assert_success(&rig.replies());
}

// ---------------------------------------------------------------------------------------
// Partial success

/// publickey passes partially, then password succeeds: only the password's permissions
/// come out, publickey cannot be used twice, and FAILURE says partial success only right
/// after the partial success.
#[test]
fn partial_success_then_password() {
    let mut rig = Rig::started(limits(&[Method::PublicKey, Method::Password]));
    let alice = key(1);
    let sid = rig.session_id();
    rig.send(&signed(&sid, b"alice", &alice));
    rig.server_reads().unwrap();
    rig.auth
        .accept(
            &mut rig.pair.server.transport,
            Outcome::Partial {
                remaining: vec![Method::Password, Method::KeyboardInteractive],
            },
        )
        .unwrap();
    // keyboard-interactive is not offered, so only password is listed.
    assert_failure(&rig.replies(), &["password"], true);
    assert!(!rig.auth.is_authenticated());

    // publickey passed already: refused without the application, partial flag off.
    let got = rig.exchange(&signed(&sid, b"alice", &alice));
    assert_failure(&got, &["password"], false);

    rig.send(&password(b"alice", b"pw"));
    rig.server_reads().unwrap();
    assert_eq!(rig.auth.partial_methods(), [Method::PublicKey]);
    rig.auth
        .accept(
            &mut rig.pair.server.transport,
            Outcome::Success("from-password"),
        )
        .unwrap();
    assert_success(&rig.replies());
    let events = rig.take_events();
    let authenticated: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ServerAuthEvent::Authenticated {
                user,
                method,
                permissions,
            } => Some((user.as_str(), *method, *permissions)),
            _ => None,
        })
        .collect();
    assert_eq!(
        authenticated,
        [("alice", Method::Password, "from-password")]
    );
}

/// A new user name after a partial success starts over: the first user's partial success
/// is no help to the second.
#[test]
fn a_new_user_name_resets_partial_success() {
    let mut rig = Rig::started(limits(&[Method::PublicKey, Method::Password]));
    let alice = key(1);
    let sid = rig.session_id();
    rig.send(&signed(&sid, b"alice", &alice));
    rig.server_reads().unwrap();
    rig.auth
        .accept(
            &mut rig.pair.server.transport,
            Outcome::Partial {
                remaining: vec![Method::Password],
            },
        )
        .unwrap();
    assert_failure(&rig.replies(), &["password"], true);

    rig.send(&password(b"bob", b"pw"));
    rig.server_reads().unwrap();
    assert!(rig.auth.partial_methods().is_empty());
    rig.auth.reject(&mut rig.pair.server.transport).unwrap();
    assert_failure(&rig.replies(), &["publickey", "password"], false);

    // And publickey is usable again, for bob.
    rig.send(&signed(&sid, b"bob", &alice));
    rig.server_reads().unwrap();
    assert!(matches!(
        rig.take_events().last(),
        Some(ServerAuthEvent::PublicKeyVerified { user, .. }) if user == "bob"
    ));
}

/// A partial success that leaves nothing to do is misuse, and the decision still waits.
#[test]
fn partial_success_must_leave_something() {
    let mut rig = Rig::started(limits(&[Method::PublicKey, Method::Password]));
    rig.send(&password(b"alice", b"pw"));
    rig.server_reads().unwrap();
    let t = &mut rig.pair.server.transport;
    for remaining in [
        vec![],
        vec![Method::Password],
        vec![Method::KeyboardInteractive],
    ] {
        let r = rig.auth.accept(t, Outcome::Partial { remaining });
        assert!(matches!(r, Err(Error::Misuse(_))), "{r:?}");
    }
    assert!(rig.replies().is_empty());
    rig.auth.reject(&mut rig.pair.server.transport).unwrap();
    assert_failure(&rig.replies(), &["publickey", "password"], false);
}

// ---------------------------------------------------------------------------------------
// Pipelining and limits

/// RFC 4252 section 5: requests sent without waiting are handled one at a time, each
/// answered in order.
#[test]
fn pipelined_requests_are_handled_in_order() {
    let mut rig = Rig::started(limits(&[Method::Password]));
    rig.send(&none(b"alice"));
    rig.send(&password(b"alice", b"one"));
    rig.send(&password(b"alice", b"two"));
    rig.server_reads().unwrap();
    let events = rig.take_events();
    assert!(
        matches!(&events[..], [ServerAuthEvent::Password { password, .. }] if **password == b"one")
    );
    assert_failure(&rig.replies(), &["password"], false);

    // The second password comes out only once the first is answered.
    rig.auth.reject(&mut rig.pair.server.transport).unwrap();
    let events = rig.take_events();
    assert!(
        matches!(&events[..], [ServerAuthEvent::Password { password, .. }] if **password == b"two"),
        "{events:?}"
    );
    assert_failure(&rig.replies(), &["password"], false);

    rig.auth
        .accept(&mut rig.pair.server.transport, Outcome::Success("two"))
        .unwrap();
    assert_success(&rig.replies());
}

/// RFC 4252 section 5.1: requests after success are ignored, queued or not.
#[test]
fn requests_after_success_are_ignored() {
    let mut rig = Rig::started(limits(&[Method::Password]));
    rig.send(&password(b"alice", b"one"));
    rig.send(&password(b"alice", b"two"));
    rig.server_reads().unwrap();
    rig.auth
        .accept(&mut rig.pair.server.transport, Outcome::Success("one"))
        .unwrap();
    assert_success(&rig.replies());
    assert!(
        rig.auth
            .poll_event()
            .is_some_and(|e| matches!(e, ServerAuthEvent::Authenticated { .. }))
    );

    let got = rig.exchange(&password(b"alice", b"three"));
    assert!(got.is_empty());
    let got = rig.exchange(&info_response(&[]));
    assert!(got.is_empty());
    assert_eq!(rig.take_events().len(), 1, "only the first password");
    assert!(rig.auth.poll_event().is_none());
    assert!(!rig.pair.server.transport.is_closed());
}

/// The first `none` is free; six failed attempts later the server disconnects with
/// NO_MORE_AUTH_METHODS_AVAILABLE instead of a sixth FAILURE.
#[test]
fn six_failures_then_disconnect() {
    let mut rig = Rig::started(limits(&[Method::Password]));
    assert_failure(&rig.exchange(&none(b"alice")), &["password"], false);
    for i in 1..=6 {
        rig.send(&password(b"alice", b"guess"));
        let result = rig.server_reads_with(reject_all);
        if i < 6 {
            result.unwrap();
            assert_failure(&rig.replies(), &["password"], false);
        } else {
            rig.expect_disconnect(result, DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE);
        }
    }
    assert_eq!(rig.auth.attempts(), 6);
}

/// A later `none` counts like any other request.
#[test]
fn only_the_first_none_is_free() {
    let mut rig = Rig::started(limits(&[Method::Password]));
    for i in 0..7 {
        rig.send(&none(b"alice"));
        let result = rig.server_reads();
        if i < 6 {
            result.unwrap();
            failure(&rig.replies()[0]);
        } else {
            rig.expect_disconnect(result, DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE);
        }
    }
}

/// 10,000 requests on one connection. Answered at once, they stop at the
/// sixth; left unanswered, the queue stops them after the limit. Either way the server
/// reads only a handful, far below the transport's own flood cap.
#[test]
fn ten_thousand_requests_are_cut_at_the_cap() {
    let mut rig = Rig::started(limits(&[Method::Password]));
    for _ in 0..10_000 {
        rig.send(&password(b"alice", b"guess"));
    }
    let result = rig.server_reads_with(reject_all);
    rig.expect_disconnect(result, DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE);
    assert_eq!(rig.take_events().len(), 6);
    assert!(rig.pair.server.transport.stats().packets_received < 20);

    let mut rig = Rig::started(limits(&[Method::Password]));
    for _ in 0..10_000 {
        rig.send(&password(b"alice", b"guess"));
    }
    let result = rig.server_reads();
    rig.expect_disconnect(result, DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE);
    assert_eq!(
        rig.take_events().len(),
        1,
        "one decision, six queued, then the cut"
    );
    assert!(rig.pair.server.transport.stats().packets_received < 20);
}

/// User names over 1 KiB, with control characters or not UTF-8 fail without
/// reaching the application, and count.
#[test]
fn bad_user_names_fail_and_count() {
    let mut rig = Rig::started(AuthLimits {
        max_attempts: 10,
        ..limits(&[Method::Password])
    });
    let long = vec![b'a'; 1025];
    let cases: [&[u8]; 5] = [&long, b"ali\x1b[2Jce", b"alice\n", b"al\0ice", b"\xffalice"];
    for user in cases {
        assert_failure(&rig.exchange(&password(user, b"pw")), &["password"], false);
    }
    assert!(rig.take_events().is_empty());
    assert_eq!(rig.auth.attempts(), 5);

    // Exactly 1 KiB is fine, and so is a name that is not ASCII.
    let edge = "b".repeat(1024);
    rig.send(&password(edge.as_bytes(), b"pw"));
    rig.server_reads().unwrap();
    assert!(
        matches!(&rig.take_events()[..], [ServerAuthEvent::Password { user, .. }] if user == &edge)
    );
    rig.auth.reject(&mut rig.pair.server.transport).unwrap();
    rig.replies();

    let mut rig = Rig::started(limits(&[Method::Password]));
    rig.send(&password("zoë".as_bytes(), b"pw"));
    rig.server_reads().unwrap();
    assert!(
        matches!(&rig.take_events()[..], [ServerAuthEvent::Password { user, .. }] if user == "zoë")
    );

    // Six long names end the connection like six wrong passwords.
    let mut rig = Rig::started(limits(&[Method::Password]));
    for i in 0..6 {
        rig.send(&password(&long, b"pw"));
        let result = rig.server_reads();
        if i < 5 {
            result.unwrap();
            rig.replies();
        } else {
            rig.expect_disconnect(result, DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE);
        }
    }
}

/// Methods not offered, unknown methods and `none` fail and list what is offered.
#[test]
fn methods_not_offered_fail() {
    let mut rig = Rig::started(AuthLimits::default());
    assert_failure(&rig.exchange(&none(b"alice")), &["publickey"], false);
    assert_failure(
        &rig.exchange(&password(b"alice", b"pw")),
        &["publickey"],
        false,
    );
    assert_failure(
        &rig.exchange(&keyboard_interactive(b"alice", b"")),
        &["publickey"],
        false,
    );
    let mut hostbased = Vec::new();
    msg::put_request_head(&mut hostbased, b"alice", b"ssh-connection", Method::None);
    let mut other = Vec::new();
    other.put_u8(MessageNumber::USERAUTH_REQUEST.0);
    other.put_string(b"alice");
    other.put_string(b"ssh-connection");
    other.put_string(b"hostbased");
    other.put_string(b"whatever follows is not parsed");
    assert_failure(&rig.exchange(&other), &["publickey"], false);
    assert!(rig.take_events().is_empty());
    assert_eq!(rig.auth.attempts(), 3);
}

// ---------------------------------------------------------------------------------------
// Protocol errors

/// A client sending USERAUTH_SUCCESS, or any server-to-client message of
/// this layer (and the unassigned numbers up to 79): disconnect.
#[test]
fn server_messages_from_the_client_disconnect() {
    let mut pk_ok_message = vec![USERAUTH_60.0];
    pk_ok_message.put_string(b"ssh-ed25519");
    pk_ok_message.put_string(&key(1).public().to_blob());
    let mut banner = vec![MessageNumber::USERAUTH_BANNER.0];
    banner.put_string(b"hi");
    banner.put_string(b"");
    let mut fail = Vec::new();
    msg::put_failure(&mut fail, ["password"], false);
    let cases = [
        vec![MessageNumber::USERAUTH_SUCCESS.0],
        fail,
        banner,
        pk_ok_message,
        vec![54],
        vec![59, 0, 0],
        vec![62],
        vec![79, 0, 0],
    ];
    for case in cases {
        let mut rig = Rig::started(all_methods());
        rig.send(&case);
        let result = rig.server_reads();
        rig.expect_disconnect(result, DisconnectReason::PROTOCOL_ERROR);
    }
    // After success too.
    let mut rig = Rig::started(limits(&[Method::Password]));
    rig.send(&password(b"alice", b"pw"));
    rig.server_reads_with(accept_with("pw")).unwrap();
    assert_success(&rig.replies());
    rig.send(&[MessageNumber::USERAUTH_SUCCESS.0]);
    let result = rig.server_reads();
    rig.expect_disconnect(result, DisconnectReason::PROTOCOL_ERROR);
}

/// Any message numbered 80 or above before authentication succeeds ends the
/// connection; the transport refuses it before it reaches the application.
#[test]
fn connection_messages_before_success_disconnect() {
    for n in [80u8, 90, 94, 127, 200, 255] {
        let mut rig = Rig::started(all_methods());
        rig.send(&[n, 0, 0, 0, 1]);
        let result = rig.server_reads();
        rig.expect_disconnect(result, DisconnectReason::PROTOCOL_ERROR);
        assert!(rig.passed_up.is_empty());
    }
}

#[test]
fn a_request_before_the_service_request_disconnects() {
    let mut rig = Rig::new(all_methods());
    rig.send(&password(b"alice", b"pw"));
    let result = rig.server_reads();
    rig.expect_disconnect(result, DisconnectReason::PROTOCOL_ERROR);
    assert!(rig.take_events().is_empty());

    let mut rig = Rig::new(all_methods());
    rig.send(&info_response(&[]));
    let result = rig.server_reads();
    rig.expect_disconnect(result, DisconnectReason::PROTOCOL_ERROR);
}

/// Only `ssh-userauth` can be requested, and only `ssh-connection` can follow it (RFC
/// 4252 section 5 recommends a disconnect when the service does not exist).
#[test]
fn unknown_services_disconnect() {
    for service in [&b"ssh-connection"[..], b"ssh-foo", b"", b"ssh-userauth\0"] {
        let mut rig = Rig::new(all_methods());
        rig.send(&service_request(service));
        let result = rig.server_reads();
        rig.expect_disconnect(result, DisconnectReason::SERVICE_NOT_AVAILABLE);
    }

    let mut rig = Rig::started(all_methods());
    let mut other = Vec::new();
    msg::put_request_head(&mut other, b"alice", b"ssh-foo", Method::Password);
    other.put_bool(false);
    other.put_string(b"pw");
    rig.send(&other);
    let result = rig.server_reads();
    rig.expect_disconnect(result, DisconnectReason::SERVICE_NOT_AVAILABLE);
    assert!(rig.take_events().is_empty());

    let mut rig = Rig::started(all_methods());
    rig.send(&service_request(SERVICE_USERAUTH.as_bytes()));
    let result = rig.server_reads();
    rig.expect_disconnect(result, DisconnectReason::PROTOCOL_ERROR);
}

/// Truncated fields and trailing bytes are protocol errors, never a panic.
#[test]
fn malformed_messages_disconnect() {
    let good = password(b"alice", b"pw");
    let mut trailing = good.clone();
    trailing.push(0);
    let mut short_service = vec![MessageNumber::SERVICE_REQUEST.0];
    short_service.put_u32(100);
    for (started, bad) in [
        (true, good[..good.len() - 1].to_vec()),
        (true, trailing),
        (true, vec![MessageNumber::USERAUTH_REQUEST.0]),
        (
            true,
            publickey_raw(b"alice", b"ssh-ed25519", b"x", None)[..30].to_vec(),
        ),
        (false, short_service),
        (false, vec![MessageNumber::SERVICE_REQUEST.0]),
    ] {
        let mut rig = if started {
            Rig::started(all_methods())
        } else {
            Rig::new(all_methods())
        };
        rig.send(&bad);
        let result = rig.server_reads();
        rig.expect_disconnect(result, DisconnectReason::PROTOCOL_ERROR);
    }
}

// ---------------------------------------------------------------------------------------
// Banner and logs

/// RFC 4252 section 5.4: the banner follows SERVICE_ACCEPT, once.
#[test]
fn banner_follows_service_accept() {
    let banner = "Authorized use only.\n";
    let mut rig = Rig::new(AuthLimits {
        banner: Some(banner.to_owned()),
        ..AuthLimits::default()
    });
    let got = rig.exchange(&service_request(SERVICE_USERAUTH.as_bytes()));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], service_accept());
    assert_eq!(msg::parse_banner(&got[1]).unwrap(), banner.as_bytes());
    assert_failure(&rig.exchange(&none(b"alice")), &["publickey"], false);

    let mut rig = Rig::new(AuthLimits::default());
    let got = rig.exchange(&service_request(SERVICE_USERAUTH.as_bytes()));
    assert_eq!(got, [service_accept()]);
}

/// Captures every log line of this test binary.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let line = format!("{}", record.args());
        self.0.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

/// Decisions are logged with the user name made safe; passwords and responses never.
#[test]
fn logs_hold_no_secrets_and_no_raw_names() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });

    let mut rig = Rig::started(all_methods());
    rig.send(&password(b"ali\x1b[2Jce", b"hunter2-password"));
    rig.send(&password(b"carol", b"hunter2-password"));
    rig.send(&keyboard_interactive(b"carol", b""));
    rig.server_reads_with(|auth, t, event| match event {
        ServerAuthEvent::Password { .. } => auth.reject(t),
        _ => Ok(()),
    })
    .unwrap();
    rig.auth
        .send_info_request(
            &mut rig.pair.server.transport,
            &InfoRequest {
                name: String::new(),
                instruction: String::new(),
                prompts: vec![Prompt {
                    text: "Code: ".into(),
                    echo: true,
                }],
            },
        )
        .unwrap();
    rig.send(&info_response(&[b"hunter2-response"]));
    rig.server_reads_with(reject_all).unwrap();
    let shown = format!("{:?}", rig.auth);
    assert!(
        shown.contains("attempts: 3") && !shown.contains("hunter2"),
        "{shown}"
    );

    let lines = CAPTURE.0.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("user=ali?[2Jce")),
        "the refused name is logged, escaped: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("userauth password user=carol"))
    );
    for line in &lines {
        assert!(!line.contains('\x1b'), "raw control byte logged: {line:?}");
        assert!(!line.contains("hunter2"), "secret logged: {line:?}");
    }
    for event in &rig.events {
        assert!(!format!("{event:?}").contains("hunter2"));
    }
}
