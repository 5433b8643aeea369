//! The client side of authentication (RFC 4252, RFC 4256) over a real handshake in the
//! simulator. The server side is written here by hand, message by message, so each test
//! controls exactly what the client sees and checks exactly what it sends.

use std::sync::Arc;

use proptest::prelude::*;
use ssh_proto::Error;
use ssh_proto::algorithms::Kex;
use ssh_proto::auth::client::{ClientAuth, ClientAuthEvent, MAX_BANNER_CHARS};
use ssh_proto::auth::msg::{
    self, InfoRequest, Method, Prompt, Request, RequestBody, USERAUTH_60, USERAUTH_INFO_RESPONSE,
};
use ssh_proto::config::Config;
use ssh_proto::crypto::{CryptoProvider, all_providers, default_provider};
use ssh_proto::hostkey::{HostKeyPair, PublicKey, SignatureAlg};
use ssh_proto::msg::{DisconnectReason, MessageNumber};
use ssh_proto::sim::{Cut, Pair};
use ssh_proto::wire::{Reader, Writer};
use zeroize::Zeroizing;

const USER: &str = "alice";

fn client_config(provider: &'static dyn CryptoProvider) -> Config {
    let mut config = Config {
        provider,
        ..Config::default()
    };
    // The cheapest key exchange keeps the many handshakes here quick.
    config.algorithms.kex = vec![Kex::Curve25519Sha256];
    config
}

fn server_config(provider: &'static dyn CryptoProvider, software: &str) -> Config {
    Config {
        provider,
        host_keys: vec![HostKeyPair::ed25519_from_seed(provider, &[7; 32])],
        software: software.to_owned(),
        ..Config::default()
    }
}

/// The user's key: the test plays the application, which signs.
fn user_key(provider: &dyn CryptoProvider) -> HostKeyPair {
    HostKeyPair::ed25519_from_seed(provider, &[0x42; 32])
}

/// An RSA public key; only its type matters to the algorithm choice.
fn rsa_key() -> PublicKey {
    PublicKey::Rsa {
        e: vec![1, 0, 1],
        n: vec![0xc5; 256],
    }
}

/// A client and a hand-written server over a finished handshake, with the client's
/// authentication machine beside its transport.
struct Harness {
    pair: Pair,
    auth: ClientAuth,
}

impl Harness {
    /// After the handshake, before [`ClientAuth::start`].
    fn handshaken(provider: &'static dyn CryptoProvider, server_software: &str) -> Self {
        let mut pair = Pair::new(
            Arc::new(client_config(provider)),
            Arc::new(server_config(provider, server_software)),
            11,
            Cut::Whole,
        );
        pair.handshake().unwrap();
        Self {
            pair,
            auth: ClientAuth::new(USER),
        }
    }

    /// Started, with the server's SERVICE_ACCEPT handled.
    fn accepted() -> Self {
        Self::accepted_with(default_provider(), "OpenSSH_9.2p1")
    }

    fn accepted_with(provider: &'static dyn CryptoProvider, server_software: &str) -> Self {
        let mut h = Self::handshaken(provider, server_software);
        h.auth.start(&mut h.pair.client.transport).unwrap();
        let request = h.server_recv();
        let mut expected = vec![MessageNumber::SERVICE_REQUEST.0];
        expected.put_string(b"ssh-userauth");
        assert_eq!(request, expected);
        assert_eq!(
            h.exchange(&service_accept(b"ssh-userauth")).unwrap(),
            [ClientAuthEvent::ServiceAccepted]
        );
        h
    }

    /// The one message the server received since the last call.
    #[track_caller]
    fn server_recv(&mut self) -> Vec<u8> {
        self.pair.settle(1000).unwrap();
        let mut received = std::mem::take(&mut self.pair.server.received);
        assert_eq!(
            received.len(),
            1,
            "expected exactly one message at the server"
        );
        received.remove(0)
    }

    /// Whether the client sent nothing since the last call.
    fn client_sent_nothing(&mut self) -> bool {
        self.pair.settle(1000).unwrap();
        std::mem::take(&mut self.pair.server.received).is_empty()
    }

    /// The server sends `payload`; the client reads it and hands it to `ClientAuth`.
    /// Returns the events that came out, or the first error.
    fn exchange(&mut self, payload: &[u8]) -> Result<Vec<ClientAuthEvent>, Error> {
        self.pair
            .server
            .transport
            .send(|p| p.extend_from_slice(payload))
            .unwrap();
        self.pair.settle(1000).unwrap();
        for packet in std::mem::take(&mut self.pair.client.received) {
            self.auth.handle(&mut self.pair.client.transport, &packet)?;
        }
        Ok(std::iter::from_fn(|| self.auth.poll_event()).collect())
    }

    /// Checks that `result` is a protocol error and that the client told the server so
    /// with DISCONNECT and PROTOCOL_ERROR.
    #[track_caller]
    fn expect_protocol_error(&mut self, result: Result<Vec<ClientAuthEvent>, Error>) {
        match result {
            Err(Error::Protocol { reason, .. }) => {
                assert_eq!(reason, DisconnectReason::PROTOCOL_ERROR);
            }
            other => panic!("expected a protocol error, got {other:?}"),
        }
        assert!(self.pair.client.transport.is_closed());
        // Every later call sees the connection closed.
        assert_eq!(
            self.auth
                .handle(&mut self.pair.client.transport, &success()),
            Err(Error::Closed)
        );
        match self.pair.settle(1000) {
            Err(Error::PeerDisconnected { reason, .. }) => {
                assert_eq!(reason, DisconnectReason::PROTOCOL_ERROR);
            }
            other => panic!("the server should have read DISCONNECT, got {other:?}"),
        }
    }

    /// Sends a publickey query and answers it with PK_OK; returns the accepted key.
    fn query_and_accept(&mut self, key: &HostKeyPair) -> PublicKey {
        let public = key.public().clone();
        self.auth
            .query_publickey(
                &mut self.pair.client.transport,
                &public,
                SignatureAlg::Ed25519,
            )
            .unwrap();
        self.server_recv();
        let events = self
            .exchange(&pk_ok(b"ssh-ed25519", &public.to_blob()))
            .unwrap();
        assert_eq!(
            events,
            [ClientAuthEvent::KeyAccepted {
                key: public.clone(),
                alg: SignatureAlg::Ed25519
            }]
        );
        public
    }
}

fn service_accept(name: &[u8]) -> Vec<u8> {
    let mut m = vec![MessageNumber::SERVICE_ACCEPT.0];
    m.put_string(name);
    m
}

fn success() -> Vec<u8> {
    vec![MessageNumber::USERAUTH_SUCCESS.0]
}

fn failure(methods: &[&str], partial: bool) -> Vec<u8> {
    let mut m = Vec::new();
    msg::put_failure(&mut m, methods.iter().copied(), partial);
    m
}

fn pk_ok(alg: &[u8], blob: &[u8]) -> Vec<u8> {
    let mut m = vec![USERAUTH_60.0];
    m.put_string(alg);
    m.put_string(blob);
    m
}

fn banner(text: &[u8]) -> Vec<u8> {
    let mut m = vec![MessageNumber::USERAUTH_BANNER.0];
    m.put_string(text);
    m.put_string(b"en");
    m
}

fn passwd_changereq(prompt: &[u8]) -> Vec<u8> {
    let mut m = vec![USERAUTH_60.0];
    m.put_string(prompt);
    m.put_string(b"");
    m
}

fn info_request(name: &str, instruction: &str, prompts: &[(&str, bool)]) -> Vec<u8> {
    let request = InfoRequest {
        name: name.to_owned(),
        instruction: instruction.to_owned(),
        prompts: prompts
            .iter()
            .map(|&(text, echo)| Prompt {
                text: text.to_owned(),
                echo,
            })
            .collect(),
    };
    let mut m = Vec::new();
    request.write(&mut m);
    m
}

/// The data a publickey signature covers, built field by field from RFC 4252 section 7
/// rather than through the crate's helper.
fn expected_signed_data(session_id: &[u8], alg: &str, blob: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    d.put_string(session_id);
    d.put_u8(50);
    d.put_string(USER.as_bytes());
    d.put_string(b"ssh-connection");
    d.put_string(b"publickey");
    d.put_u8(1);
    d.put_string(alg.as_bytes());
    d.put_string(blob);
    d
}

#[test]
fn none_fails_and_lists_methods() {
    let mut h = Harness::accepted();
    assert_eq!(h.auth.can_continue(), None);
    assert!(
        h.auth.allows(Method::KeyboardInteractive),
        "nothing known yet"
    );

    h.auth.request_none(&mut h.pair.client.transport).unwrap();
    let sent = h.server_recv();
    let request = Request::parse(&sent).unwrap();
    assert_eq!(request.user, USER.as_bytes());
    assert_eq!(request.service, b"ssh-connection");
    assert_eq!(request.body, RequestBody::None);

    let events = h
        .exchange(&failure(
            &["publickey", "password", "gssapi-with-mic"],
            false,
        ))
        .unwrap();
    assert_eq!(
        events,
        [ClientAuthEvent::Failure {
            method: Method::None,
            can_continue: vec![
                "publickey".to_owned(),
                "password".to_owned(),
                "gssapi-with-mic".to_owned()
            ],
            partial_success: false,
        }]
    );
    assert_eq!(h.auth.can_continue().unwrap().len(), 3);
    assert!(h.auth.allows(Method::PublicKey));
    assert!(h.auth.allows(Method::Password));
    assert!(!h.auth.allows(Method::KeyboardInteractive));
    assert!(h.auth.partial_successes().is_empty());
    assert!(!h.auth.is_authenticated());
}

/// The whole publickey exchange: query, PK_OK, signature over the session, SUCCESS. The
/// server side verifies the signature over data it builds itself from the session
/// identifier it holds, with each provider.
#[test]
fn publickey_query_then_verified_signature() {
    for provider in all_providers() {
        let mut h = Harness::accepted_with(provider, "OpenSSH_9.2p1");
        let key = user_key(provider);
        let public = key.public().clone();
        let alg = h.auth.choose_signature_alg(&public).unwrap();
        assert_eq!(alg, SignatureAlg::Ed25519);

        h.auth
            .query_publickey(&mut h.pair.client.transport, &public, alg)
            .unwrap();
        let query = h.server_recv();
        let parsed = Request::parse(&query).unwrap();
        assert_eq!(parsed.method, b"publickey");
        assert_eq!(
            parsed.body,
            RequestBody::PublicKey {
                alg: b"ssh-ed25519",
                key_blob: &public.to_blob(),
                signature: None
            }
        );

        let events = h
            .exchange(&pk_ok(b"ssh-ed25519", &public.to_blob()))
            .unwrap();
        let [ClientAuthEvent::KeyAccepted { key: accepted, alg }] = &events[..] else {
            panic!("expected KeyAccepted, got {events:?}");
        };
        assert_eq!((accepted, *alg), (&public, SignatureAlg::Ed25519));

        // The application signs.
        let data = h
            .auth
            .signed_data(&h.pair.client.transport, accepted, *alg)
            .unwrap();
        let signature = key.sign(provider, *alg, &data).unwrap();
        h.auth
            .send_publickey_signature(&mut h.pair.client.transport, accepted, *alg, &signature)
            .unwrap();

        // The server checks it.
        let signed = h.server_recv();
        let parsed = Request::parse(&signed).unwrap();
        let RequestBody::PublicKey {
            alg: wire_alg,
            key_blob,
            signature: Some(wire_signature),
        } = parsed.body
        else {
            panic!("expected a signed publickey request, got {:?}", parsed.body);
        };
        assert_eq!(wire_alg, b"ssh-ed25519");
        let session_id = h.pair.server.transport.session_id().unwrap().to_vec();
        let expected = expected_signed_data(&session_id, "ssh-ed25519", key_blob);
        assert_eq!(
            expected,
            msg::publickey_signed_data(
                &session_id,
                USER.as_bytes(),
                b"ssh-connection",
                b"ssh-ed25519",
                key_blob
            )
        );
        let server_view = PublicKey::from_blob(key_blob).unwrap();
        server_view
            .verify(provider, SignatureAlg::Ed25519, &expected, wire_signature)
            .unwrap();
        // The check can fail: the same signature over another session does not verify.
        let other = expected_signed_data(&[0; 32], "ssh-ed25519", key_blob);
        assert!(
            server_view
                .verify(provider, SignatureAlg::Ed25519, &other, wire_signature)
                .is_err()
        );

        assert_eq!(h.exchange(&success()).unwrap(), [ClientAuthEvent::Success]);
        assert!(h.auth.is_authenticated());
        // The transport was told: a connection-layer message from the server now passes,
        // where before SUCCESS it would have ended the connection.
        let mut global = vec![MessageNumber::GLOBAL_REQUEST.0];
        global.put_string(b"keepalive@openssh.com");
        global.put_bool(false);
        h.pair
            .server
            .transport
            .send(|p| p.extend_from_slice(&global))
            .unwrap();
        h.pair.settle(1000).unwrap();
        assert_eq!(h.pair.client.received, [global]);
    }
}

#[test]
fn pk_ok_must_echo_the_queried_key_and_algorithm() {
    let provider = default_provider();
    let key = user_key(provider);
    let other = HostKeyPair::ed25519_from_seed(provider, &[0x43; 32]);
    let cases: [(&[u8], Vec<u8>); 3] = [
        (b"ssh-ed25519", other.public().to_blob()),
        (b"rsa-sha2-256", key.public().to_blob()),
        (b"ssh-ed25519", b"not a key".to_vec()),
    ];
    for (alg, blob) in cases {
        let mut h = Harness::accepted();
        h.auth
            .query_publickey(
                &mut h.pair.client.transport,
                key.public(),
                SignatureAlg::Ed25519,
            )
            .unwrap();
        h.server_recv();
        let result = h.exchange(&pk_ok(alg, &blob));
        h.expect_protocol_error(result);
    }
}

#[test]
fn a_key_signs_only_after_pk_ok_for_it() {
    let provider = default_provider();
    let key = user_key(provider);
    let public = key.public().clone();
    let mut h = Harness::accepted();
    let data = h
        .auth
        .signed_data(&h.pair.client.transport, &public, SignatureAlg::Ed25519)
        .unwrap();
    let signature = key.sign(provider, SignatureAlg::Ed25519, &data).unwrap();

    // No query yet.
    assert!(matches!(
        h.auth.send_publickey_signature(
            &mut h.pair.client.transport,
            &public,
            SignatureAlg::Ed25519,
            &signature
        ),
        Err(Error::Misuse(_))
    ));
    // Queried, but the server has not answered.
    h.auth
        .query_publickey(&mut h.pair.client.transport, &public, SignatureAlg::Ed25519)
        .unwrap();
    h.server_recv();
    assert!(matches!(
        h.auth.send_publickey_signature(
            &mut h.pair.client.transport,
            &public,
            SignatureAlg::Ed25519,
            &signature
        ),
        Err(Error::Misuse(_))
    ));
    // The server refused the key.
    h.exchange(&failure(&["publickey"], false)).unwrap();
    assert!(matches!(
        h.auth.send_publickey_signature(
            &mut h.pair.client.transport,
            &public,
            SignatureAlg::Ed25519,
            &signature
        ),
        Err(Error::Misuse(_))
    ));
    assert!(h.client_sent_nothing());

    // Accepted: another key, or a blob of another algorithm, is still refused.
    let public = h.query_and_accept(&key);
    let other = HostKeyPair::ed25519_from_seed(provider, &[0x43; 32]);
    assert!(matches!(
        h.auth.send_publickey_signature(
            &mut h.pair.client.transport,
            other.public(),
            SignatureAlg::Ed25519,
            &signature
        ),
        Err(Error::Misuse(_))
    ));
    let mut sha1 = Vec::new();
    sha1.put_string(b"ssh-rsa");
    sha1.put_string(&[0; 64]);
    for bad in [&sha1[..], b"", &signature[..signature.len() - 1]] {
        assert!(matches!(
            h.auth.send_publickey_signature(
                &mut h.pair.client.transport,
                &public,
                SignatureAlg::Ed25519,
                bad
            ),
            Err(Error::Misuse(_))
        ));
    }
    assert!(h.client_sent_nothing());
    // The right one goes out, and the connection is none the worse.
    h.auth
        .send_publickey_signature(
            &mut h.pair.client.transport,
            &public,
            SignatureAlg::Ed25519,
            &signature,
        )
        .unwrap();
    let sent = h.server_recv();
    assert!(matches!(
        Request::parse(&sent).unwrap().body,
        RequestBody::PublicKey {
            signature: Some(_),
            ..
        }
    ));
}

#[test]
fn password_success() {
    let mut h = Harness::accepted();
    let password = Zeroizing::new(b"correct horse".to_vec());
    h.auth
        .request_password(&mut h.pair.client.transport, &password)
        .unwrap();
    assert!(
        !format!("{:?}", h.auth).contains("correct horse"),
        "the password is kept nowhere"
    );
    let sent = h.server_recv();
    let request = Request::parse(&sent).unwrap();
    assert_eq!(request.method, b"password");
    assert_eq!(
        request.body,
        RequestBody::Password {
            password: b"correct horse",
            new_password: None
        }
    );
    assert_eq!(h.exchange(&success()).unwrap(), [ClientAuthEvent::Success]);
    assert!(h.auth.is_authenticated());
}

#[test]
fn password_change_request_is_reported_and_the_method_abandoned() {
    let mut h = Harness::accepted();
    h.auth
        .request_password(&mut h.pair.client.transport, b"expired")
        .unwrap();
    h.server_recv();
    let events = h
        .exchange(&passwd_changereq(b"Password expired\x1b[31m, change it"))
        .unwrap();
    assert_eq!(
        events,
        [ClientAuthEvent::PasswordChangeRequested {
            prompt: "Password expired?[31m, change it".to_owned()
        }]
    );
    // The application treats it as a failure and moves on.
    h.auth
        .request_keyboard_interactive(&mut h.pair.client.transport, "")
        .unwrap();
    let sent = h.server_recv();
    assert_eq!(
        Request::parse(&sent).unwrap().method,
        b"keyboard-interactive"
    );
}

#[test]
fn keyboard_interactive_with_prompts_and_an_empty_round() {
    let mut h = Harness::accepted();
    h.auth
        .request_keyboard_interactive(&mut h.pair.client.transport, "pam")
        .unwrap();
    let sent = h.server_recv();
    assert_eq!(
        Request::parse(&sent).unwrap().body,
        RequestBody::KeyboardInteractive { submethods: b"pam" }
    );

    let events = h
        .exchange(&info_request(
            "Login\x1b]0;pwned\x07",
            "Answer both.\n\x1b[2J",
            &[("Password: ", false), ("Token\x08\x08: ", true)],
        ))
        .unwrap();
    assert_eq!(
        events,
        [ClientAuthEvent::InfoRequest(InfoRequest {
            name: "Login?]0;pwned?".to_owned(),
            instruction: "Answer both.\n?[2J".to_owned(),
            prompts: vec![
                Prompt {
                    text: "Password: ".to_owned(),
                    echo: false
                },
                Prompt {
                    text: "Token??: ".to_owned(),
                    echo: true
                },
            ],
        })]
    );

    // The count must match the prompts.
    for wrong in [&[][..], &[&b"one"[..]], &[&b"1"[..], b"2", b"3"]] {
        assert!(matches!(
            h.auth
                .send_info_response(&mut h.pair.client.transport, wrong),
            Err(Error::Misuse(_))
        ));
    }
    assert!(h.client_sent_nothing());
    let secret = Zeroizing::new(b"hunter2".to_vec());
    h.auth
        .send_info_response(&mut h.pair.client.transport, &[&secret, b"123456"])
        .unwrap();
    let sent = h.server_recv();
    assert_eq!(sent[0], USERAUTH_INFO_RESPONSE.0);
    assert_eq!(
        msg::parse_info_response(&sent).unwrap(),
        [&b"hunter2"[..], b"123456"]
    );

    // RFC 4256 section 3.2: a round with no prompts, answered with no responses.
    let events = h.exchange(&info_request("", "Welcome", &[])).unwrap();
    assert_eq!(
        events,
        [ClientAuthEvent::InfoRequest(InfoRequest {
            name: String::new(),
            instruction: "Welcome".to_owned(),
            prompts: vec![],
        })]
    );
    assert!(matches!(
        h.auth
            .send_info_response(&mut h.pair.client.transport, &[b"extra"]),
        Err(Error::Misuse(_))
    ));
    h.auth
        .send_info_response(&mut h.pair.client.transport, &[])
        .unwrap();
    let sent = h.server_recv();
    let mut expected = vec![USERAUTH_INFO_RESPONSE.0];
    expected.put_u32(0);
    assert_eq!(sent, expected);

    // No INFO_REQUEST outstanding now.
    assert!(matches!(
        h.auth.send_info_response(&mut h.pair.client.transport, &[]),
        Err(Error::Misuse(_))
    ));
    assert_eq!(h.exchange(&success()).unwrap(), [ClientAuthEvent::Success]);
}

#[test]
fn banner_is_sanitized_and_cut() {
    let mut h = Harness::accepted();
    let events = h
        .exchange(&banner(
            b"Authorized use only\r\n\x1b[1;1H\x1b[2J\x9b\tok\n",
        ))
        .unwrap();
    assert_eq!(
        events,
        [ClientAuthEvent::Banner(
            "Authorized use only?\n?[1;1H?[2J\u{fffd}\tok\n".to_owned()
        )]
    );

    // Banners may come while a request is outstanding, too.
    h.auth.request_none(&mut h.pair.client.transport).unwrap();
    h.server_recv();
    let long = vec![b'x'; MAX_BANNER_CHARS + 100];
    let events = h.exchange(&banner(&long)).unwrap();
    let [ClientAuthEvent::Banner(text)] = &events[..] else {
        panic!("expected a banner, got {events:?}");
    };
    assert_eq!(text.len(), MAX_BANNER_CHARS);
}

#[test]
fn banner_after_success_is_a_protocol_error() {
    let mut h = Harness::accepted();
    h.auth.request_none(&mut h.pair.client.transport).unwrap();
    h.server_recv();
    h.exchange(&success()).unwrap();
    let result = h.exchange(&banner(b"late"));
    h.expect_protocol_error(result);
}

/// RFC 4252 section 5.1: a partial success means the method worked and more are needed.
#[test]
fn partial_success_then_password() {
    let provider = default_provider();
    let key = user_key(provider);
    let mut h = Harness::accepted();
    let public = h.query_and_accept(&key);
    let data = h
        .auth
        .signed_data(&h.pair.client.transport, &public, SignatureAlg::Ed25519)
        .unwrap();
    let signature = key.sign(provider, SignatureAlg::Ed25519, &data).unwrap();
    h.auth
        .send_publickey_signature(
            &mut h.pair.client.transport,
            &public,
            SignatureAlg::Ed25519,
            &signature,
        )
        .unwrap();
    h.server_recv();

    let events = h.exchange(&failure(&["password"], true)).unwrap();
    assert_eq!(
        events,
        [ClientAuthEvent::Failure {
            method: Method::PublicKey,
            can_continue: vec!["password".to_owned()],
            partial_success: true,
        }]
    );
    assert_eq!(h.auth.partial_successes(), [Method::PublicKey]);
    assert!(!h.auth.allows(Method::PublicKey));
    assert!(h.auth.allows(Method::Password));
    assert!(!h.auth.is_authenticated());

    h.auth
        .request_password(&mut h.pair.client.transport, b"second factor")
        .unwrap();
    h.server_recv();
    // A plain failure of the second factor records nothing.
    h.exchange(&failure(&["password"], false)).unwrap();
    assert_eq!(h.auth.partial_successes(), [Method::PublicKey]);
    h.auth
        .request_password(&mut h.pair.client.transport, b"second factor")
        .unwrap();
    h.server_recv();
    assert_eq!(h.exchange(&success()).unwrap(), [ClientAuthEvent::Success]);
}

/// A hostile server: SUCCESS or FAILURE with no request outstanding, and method
/// messages nobody asked for, end the connection with PROTOCOL_ERROR.
#[test]
fn answers_with_nothing_outstanding_are_protocol_errors() {
    let public = user_key(default_provider()).public().clone();
    let mut request_from_server = Vec::new();
    msg::put_request_head(
        &mut request_from_server,
        b"x",
        b"ssh-connection",
        Method::None,
    );
    let mut info_response = vec![USERAUTH_INFO_RESPONSE.0];
    info_response.put_u32(0);
    let unsolicited: [(&str, Vec<u8>); 8] = [
        ("success", success()),
        ("failure", failure(&["password"], false)),
        ("pk_ok", pk_ok(b"ssh-ed25519", &public.to_blob())),
        ("info request", info_request("", "", &[])),
        ("request from the server", request_from_server),
        ("info response from the server", info_response),
        ("message 62", vec![62]),
        ("message 0", vec![0]),
    ];
    for (what, payload) in unsolicited {
        let mut h = Harness::accepted();
        let result = h.exchange(&payload);
        assert!(
            matches!(result, Err(Error::Protocol { .. })),
            "{what}: {result:?}"
        );
        h.expect_protocol_error(result);
    }
}

#[test]
fn answers_that_do_not_fit_the_request_are_protocol_errors() {
    let provider = default_provider();
    let key = user_key(provider);
    type Setup = fn(&mut Harness, &HostKeyPair);
    let none: Setup = |h, _| {
        h.auth.request_none(&mut h.pair.client.transport).unwrap();
        h.server_recv();
    };
    let query: Setup = |h, key| {
        h.auth
            .query_publickey(
                &mut h.pair.client.transport,
                key.public(),
                SignatureAlg::Ed25519,
            )
            .unwrap();
        h.server_recv();
    };
    let accepted: Setup = |h, key| {
        h.query_and_accept(key);
    };
    let prompts: Setup = |h, _| {
        h.auth
            .request_keyboard_interactive(&mut h.pair.client.transport, "")
            .unwrap();
        h.server_recv();
        h.exchange(&info_request("", "", &[("Code: ", true)]))
            .unwrap();
    };
    let done: Setup = |h, _| {
        h.auth.request_none(&mut h.pair.client.transport).unwrap();
        h.server_recv();
        h.exchange(&success()).unwrap();
    };
    let cases: [(&str, Setup, Vec<u8>); 9] = [
        ("PK_OK to none", none, pk_ok(b"ssh-ed25519", b"")),
        ("SUCCESS to a query", query, success()),
        (
            "partial success to a query",
            query,
            failure(&["publickey"], true),
        ),
        (
            "FAILURE while the server waits for the signature",
            accepted,
            failure(&[], false),
        ),
        (
            "a second PK_OK",
            accepted,
            pk_ok(b"ssh-ed25519", &key.public().to_blob()),
        ),
        (
            "SUCCESS while the server waits for responses",
            prompts,
            success(),
        ),
        ("FAILURE after SUCCESS", done, failure(&["password"], false)),
        ("SUCCESS after SUCCESS", done, success()),
        (
            "SERVICE_ACCEPT again",
            none,
            service_accept(b"ssh-userauth"),
        ),
    ];
    for (what, setup, payload) in cases {
        let mut h = Harness::accepted();
        setup(&mut h, &key);
        let result = h.exchange(&payload);
        assert!(
            matches!(result, Err(Error::Protocol { .. })),
            "{what}: {result:?}"
        );
        h.expect_protocol_error(result);
    }
}

#[test]
fn malformed_answers_are_protocol_errors() {
    let mut trailing = failure(&["password"], false);
    trailing.push(0);
    let mut bad_names = vec![MessageNumber::USERAUTH_FAILURE.0];
    bad_names.put_string(b"pass\x1bword");
    bad_names.put_bool(false);
    let mut too_many_prompts = vec![USERAUTH_60.0];
    for _ in 0..3 {
        too_many_prompts.put_string(b"");
    }
    too_many_prompts.put_u32(u32::MAX);
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "truncated FAILURE",
            vec![MessageNumber::USERAUTH_FAILURE.0, 0, 0],
        ),
        ("FAILURE with trailing bytes", trailing),
        ("FAILURE with a control byte in a name", bad_names),
        ("INFO_REQUEST promising 2^32 - 1 prompts", too_many_prompts),
    ];
    for (what, payload) in cases {
        let mut h = Harness::accepted();
        h.auth
            .request_keyboard_interactive(&mut h.pair.client.transport, "")
            .unwrap();
        h.server_recv();
        let result = h.exchange(&payload);
        assert!(
            matches!(result, Err(Error::Protocol { .. })),
            "{what}: {result:?}"
        );
        h.expect_protocol_error(result);
    }
}

#[test]
fn service_accept_must_answer_our_request() {
    // For another service.
    let mut h = Harness::handshaken(default_provider(), "OpenSSH_9.2p1");
    h.auth.start(&mut h.pair.client.transport).unwrap();
    h.server_recv();
    let result = h.exchange(&service_accept(b"ssh-connection"));
    h.expect_protocol_error(result);

    // Never asked for.
    let mut h = Harness::handshaken(default_provider(), "OpenSSH_9.2p1");
    let result = h.exchange(&service_accept(b"ssh-userauth"));
    h.expect_protocol_error(result);

    // Without the name, as some old servers send it: accepted.
    let mut h = Harness::handshaken(default_provider(), "OpenSSH_9.2p1");
    h.auth.start(&mut h.pair.client.transport).unwrap();
    h.server_recv();
    assert_eq!(
        h.exchange(&[MessageNumber::SERVICE_ACCEPT.0]).unwrap(),
        [ClientAuthEvent::ServiceAccepted]
    );
}

#[test]
fn rsa_signature_algorithm_follows_server_sig_algs() {
    let rsa = rsa_key();
    let mut auth = ClientAuth::new(USER);
    // RFC 8332 section 3.3: no server-sig-algs, so rsa-sha2-256, never ssh-rsa.
    assert_eq!(
        auth.choose_signature_alg(&rsa),
        Some(SignatureAlg::RsaSha256)
    );
    let cases = [
        (
            "ssh-ed25519,rsa-sha2-256,rsa-sha2-512",
            Some(SignatureAlg::RsaSha512),
        ),
        ("rsa-sha2-512", Some(SignatureAlg::RsaSha512)),
        ("ssh-ed25519,rsa-sha2-256", Some(SignatureAlg::RsaSha256)),
        ("ssh-ed25519,ssh-rsa", None),
        ("rsa-sha2-2560,xrsa-sha2-512", None),
        ("", None),
    ];
    for (list, expected) in cases {
        auth.set_server_sig_algs(list);
        assert_eq!(auth.choose_signature_alg(&rsa), expected, "{list}");
        // Ed25519 and ECDSA keys have one algorithm each, whatever the list says.
        assert_eq!(
            auth.choose_signature_alg(user_key(default_provider()).public()),
            Some(SignatureAlg::Ed25519)
        );
        assert_eq!(
            auth.choose_signature_alg(&PublicKey::EcdsaP256(Box::new([4; 65]))),
            Some(SignatureAlg::EcdsaP256)
        );
    }
}

/// The list our own server sends in EXT_INFO, forwarded as an application would.
#[test]
fn rsa_signature_algorithm_from_ext_info() {
    let h = Harness::accepted();
    let ext_info = h
        .pair
        .client
        .events
        .iter()
        .find(|e| e.starts_with("ExtInfo"))
        .expect("the server sent EXT_INFO")
        .clone();
    let list = "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256";
    assert!(ext_info.contains(list), "{ext_info}");
    let mut auth = ClientAuth::new(USER);
    auth.set_server_sig_algs(list);
    assert_eq!(
        auth.choose_signature_alg(&rsa_key()),
        Some(SignatureAlg::RsaSha512)
    );
}

/// OpenSSH 7.4 accepts RSA SHA-2 signatures but leaves them out of server-sig-algs.
#[test]
fn openssh_7_4_gets_rsa_sha2_despite_its_list() {
    let mut h = Harness::accepted_with(default_provider(), "OpenSSH_7.4");
    h.auth.set_server_sig_algs("ssh-ed25519,ssh-rsa");
    assert_eq!(
        h.auth.choose_signature_alg(&rsa_key()),
        Some(SignatureAlg::RsaSha512)
    );
    let mut h = Harness::accepted_with(default_provider(), "OpenSSH_7.5");
    h.auth.set_server_sig_algs("ssh-ed25519,ssh-rsa");
    assert_eq!(h.auth.choose_signature_alg(&rsa_key()), None);
}

#[test]
fn api_misuse_is_refused_and_sends_nothing() {
    let provider = default_provider();
    let key = user_key(provider);
    let public = key.public().clone();
    let mut h = Harness::handshaken(provider, "OpenSSH_9.2p1");
    let t = &mut h.pair.client.transport;

    // Before start, and before SERVICE_ACCEPT.
    assert!(matches!(h.auth.request_none(t), Err(Error::Misuse(_))));
    h.auth.start(t).unwrap();
    assert!(matches!(h.auth.start(t), Err(Error::Misuse(_))));
    assert!(matches!(
        h.auth.request_password(t, b"pw"),
        Err(Error::Misuse(_))
    ));
    h.server_recv();
    h.exchange(&service_accept(b"ssh-userauth")).unwrap();
    let t = &mut h.pair.client.transport;

    // A key with an algorithm it cannot make.
    for alg in [SignatureAlg::RsaSha256, SignatureAlg::EcdsaP256] {
        assert!(matches!(
            h.auth.query_publickey(t, &public, alg),
            Err(Error::Misuse(_))
        ));
        assert!(matches!(
            h.auth.signed_data(t, &public, alg),
            Err(Error::Misuse(_))
        ));
    }
    assert!(matches!(
        h.auth.send_info_response(t, &[]),
        Err(Error::Misuse(_))
    ));
    // A connection-layer message is not ours to handle, and ends nothing.
    assert!(matches!(
        h.auth
            .handle(t, &[MessageNumber::CHANNEL_DATA.0, 0, 0, 0, 0]),
        Err(Error::Misuse(_))
    ));
    assert!(!t.is_closed());
    assert!(h.client_sent_nothing());

    // One request at a time.
    let t = &mut h.pair.client.transport;
    h.auth.request_none(t).unwrap();
    assert!(matches!(h.auth.request_none(t), Err(Error::Misuse(_))));
    assert!(matches!(
        h.auth.query_publickey(t, &public, SignatureAlg::Ed25519),
        Err(Error::Misuse(_))
    ));
    assert!(matches!(
        h.auth.request_keyboard_interactive(t, ""),
        Err(Error::Misuse(_))
    ));
    h.server_recv();

    // After SUCCESS, nothing more.
    h.exchange(&success()).unwrap();
    let t = &mut h.pair.client.transport;
    assert!(matches!(h.auth.request_none(t), Err(Error::Misuse(_))));
    assert!(matches!(
        h.auth.request_password(t, b"pw"),
        Err(Error::Misuse(_))
    ));
    assert!(h.client_sent_nothing());
}

#[test]
fn signed_data_needs_a_session() {
    let provider = default_provider();
    let public = user_key(provider).public().clone();
    let pair = Pair::new(
        Arc::new(client_config(provider)),
        Arc::new(server_config(provider, "x")),
        1,
        Cut::Whole,
    );
    let auth = ClientAuth::new(USER);
    assert!(matches!(
        auth.signed_data(&pair.client.transport, &public, SignatureAlg::Ed25519),
        Err(Error::Misuse(_))
    ));
}

/// A state reached before one message arrives, for the no-panic property below.
#[derive(Clone, Copy, Debug)]
enum Before {
    NotStarted,
    ServiceRequested,
    Idle,
    NoneOut,
    QueryOut,
    KeyAccepted,
    PasswordOut,
    KeyboardOut,
    Prompts,
    Done,
}

fn before_strategy() -> impl Strategy<Value = Before> {
    prop_oneof![
        Just(Before::NotStarted),
        Just(Before::ServiceRequested),
        Just(Before::Idle),
        Just(Before::NoneOut),
        Just(Before::QueryOut),
        Just(Before::KeyAccepted),
        Just(Before::PasswordOut),
        Just(Before::KeyboardOut),
        Just(Before::Prompts),
        Just(Before::Done),
    ]
}

fn payload_strategy() -> impl Strategy<Value = Vec<u8>> {
    let number = prop_oneof![Just(6u8), 50u8..=62, any::<u8>()];
    (number, prop::collection::vec(any::<u8>(), 0..80)).prop_map(|(n, rest)| {
        let mut payload = vec![n];
        payload.extend(rest);
        payload
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever arrives in whatever state: no panic, and a protocol error closes the
    /// connection for good. The transport here never ran a handshake (messages queue in
    /// it unsent), which keeps each case cheap.
    #[test]
    fn arbitrary_messages_never_panic(before in before_strategy(), payload in payload_strategy()) {
        let provider = default_provider();
        let mut pair = Pair::new(
            Arc::new(client_config(provider)),
            Arc::new(server_config(provider, "x")),
            1,
            Cut::Whole,
        );
        let t = &mut pair.client.transport;
        let public = user_key(provider).public().clone();
        let mut auth = ClientAuth::new(USER);
        if !matches!(before, Before::NotStarted) {
            auth.start(t).unwrap();
        }
        if !matches!(before, Before::NotStarted | Before::ServiceRequested) {
            auth.handle(t, &service_accept(b"ssh-userauth")).unwrap();
        }
        match before {
            Before::NoneOut | Before::Done => auth.request_none(t).unwrap(),
            Before::QueryOut | Before::KeyAccepted => {
                auth.query_publickey(t, &public, SignatureAlg::Ed25519).unwrap();
            }
            Before::PasswordOut => auth.request_password(t, b"pw").unwrap(),
            Before::KeyboardOut | Before::Prompts => {
                auth.request_keyboard_interactive(t, "").unwrap();
            }
            _ => {}
        }
        match before {
            Before::KeyAccepted => {
                auth.handle(t, &pk_ok(b"ssh-ed25519", &public.to_blob())).unwrap();
            }
            Before::Prompts => {
                auth.handle(t, &info_request("n", "i", &[("p", false)])).unwrap();
            }
            Before::Done => auth.handle(t, &success()).unwrap(),
            _ => {}
        }
        while auth.poll_event().is_some() {}

        match auth.handle(t, &payload) {
            Ok(()) => prop_assert!(!t.is_closed()),
            Err(Error::Protocol { .. }) => {
                prop_assert!(t.is_closed());
                prop_assert_eq!(auth.handle(t, &success()), Err(Error::Closed));
                prop_assert_eq!(auth.request_none(t), Err(Error::Closed));
            }
            Err(Error::Misuse(_)) => {
                prop_assert!(payload[0] >= 80);
                prop_assert!(!t.is_closed());
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
}

/// Reading a message the client sent, field by field, agrees with the crate's parser:
/// a guard against both drifting the same way.
#[test]
fn keyboard_interactive_request_layout() {
    let mut h = Harness::accepted();
    h.auth
        .request_keyboard_interactive(&mut h.pair.client.transport, "otp")
        .unwrap();
    let sent = h.server_recv();
    let mut r = Reader::new(&sent);
    assert_eq!(r.u8("n").unwrap(), 50);
    assert_eq!(r.string("user").unwrap(), USER.as_bytes());
    assert_eq!(r.string("service").unwrap(), b"ssh-connection");
    assert_eq!(r.string("method").unwrap(), b"keyboard-interactive");
    assert_eq!(r.string("language").unwrap(), b"");
    assert_eq!(r.string("submethods").unwrap(), b"otp");
    r.finish().unwrap();
}
