//! The agent client against OpenSSH's own `ssh-agent`, and against fake agents that answer
//! badly or not at all.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use gateway::agent::{AgentClient, AgentError};
use ssh_proto::agent::{CodecError, MessageNumber};
use ssh_proto::base64;
use ssh_proto::crypto::all_providers;
use ssh_proto::hostkey::{KeyError, PublicKey, SignatureAlg};
use ssh_proto::wire::{Reader, Writer};

/// A directory removed on drop. Under the system temporary directory rather than the target
/// directory, because a Unix socket path must fit in 108 bytes.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("gw-agent-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ssh-agent -D` on a socket in its own directory, killed on drop.
struct SshAgent {
    child: Child,
    socket: PathBuf,
    dir: TempDir,
}

impl SshAgent {
    fn start() -> Self {
        let dir = TempDir::new("openssh");
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent is installed with the OpenSSH client");
        let agent = Self { child, socket, dir };

        let give_up = Instant::now() + Duration::from_secs(10);
        while !agent.socket.exists() {
            assert!(
                Instant::now() < give_up,
                "ssh-agent did not create its socket"
            );
            thread::sleep(Duration::from_millis(10));
        }
        agent
    }

    /// Generates a key with `ssh-keygen` and adds it with `ssh-add`; returns the public
    /// key blob from the `.pub` file.
    fn add_new_key(&self, name: &str, keygen_args: &[&str]) -> Vec<u8> {
        let file = self.dir.join(name);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-N", "", "-C", name, "-f"])
            .arg(&file)
            .args(keygen_args)
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "ssh-keygen {keygen_args:?}");

        let out = Command::new("ssh-add")
            .arg(&file)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-add: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let public = std::fs::read_to_string(file.with_extension("pub")).unwrap();
        let base64_blob = public.split_whitespace().nth(1).unwrap();
        base64::decode(base64_blob).unwrap()
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The algorithms a key of this blob signs with.
fn algorithms(key: &PublicKey) -> Vec<SignatureAlg> {
    SignatureAlg::ALL
        .into_iter()
        .filter(|alg| key.supports(*alg))
        .collect()
}

#[test]
fn openssh_agent_lists_and_signs_with_every_usable_key() {
    let agent = SshAgent::start();
    let ed25519 = agent.add_new_key("ed25519", &["-t", "ed25519"]);
    let ecdsa = agent.add_new_key("ecdsa", &["-t", "ecdsa", "-b", "256"]);
    let p384 = agent.add_new_key("p384", &["-t", "ecdsa", "-b", "384"]);
    let rsa = agent.add_new_key("rsa", &["-t", "rsa", "-b", "2048"]);

    let mut client = AgentClient::connect(&agent.socket).unwrap();
    let ids = client.identities().unwrap();
    let listed: Vec<(&[u8], &str)> = ids.iter().map(|i| (i.blob(), i.comment())).collect();
    assert_eq!(
        listed,
        [
            (&ed25519[..], "ed25519"),
            (&ecdsa[..], "ecdsa"),
            (&p384[..], "p384"),
            (&rsa[..], "rsa"),
        ]
    );

    // The P-384 key is listed, kept whole, and marked as one we cannot use.
    assert_eq!(ids[2].key(), None);
    assert_eq!(ids[2].key_type(), "ecdsa-sha2-nistp384");
    assert!(matches!(
        ids[2].unusable_reason(),
        Some(KeyError::UnsupportedKeyType(_))
    ));

    let data = b"session identifier and USERAUTH_REQUEST, as the server will check them";
    let mut signed = Vec::new();
    for id in &ids {
        let Some(key) = id.key() else { continue };
        assert_eq!(key.to_blob(), id.blob());
        for alg in algorithms(key) {
            let signature = client.sign(id.blob(), data, alg).unwrap();
            for provider in all_providers() {
                key.verify(provider, alg, data, &signature)
                    .unwrap_or_else(|e| panic!("{alg} with {}: {e}", id.comment()));
                assert_eq!(
                    key.verify(provider, alg, b"other data", &signature),
                    Err(KeyError::BadSignature),
                    "{alg}"
                );
            }
            signed.push(alg);
        }
    }
    assert_eq!(
        signed,
        [
            SignatureAlg::Ed25519,
            SignatureAlg::EcdsaP256,
            SignatureAlg::RsaSha512,
            SignatureAlg::RsaSha256,
        ]
    );

    // The agent honoured the RSA flags: each signature names the hash that was asked for,
    // so one made for rsa-sha2-256 is not taken for rsa-sha2-512.
    let rsa_key = PublicKey::from_blob(&rsa).unwrap();
    let sha256 = client.sign(&rsa, data, SignatureAlg::RsaSha256).unwrap();
    assert_eq!(
        Reader::new(&sha256).string("name").unwrap(),
        b"rsa-sha2-256"
    );
    assert!(matches!(
        rsa_key.verify(all_providers()[0], SignatureAlg::RsaSha512, data, &sha256),
        Err(KeyError::AlgorithmMismatch { .. })
    ));
}

#[test]
fn openssh_agent_refusals_are_errors_and_the_connection_lives_on() {
    let agent = SshAgent::start();
    let ed25519 = agent.add_new_key("ed25519", &["-t", "ed25519"]);
    let mut client = AgentClient::connect(&agent.socket).unwrap();

    // A key the agent does not hold: it answers FAILURE.
    let mut stranger = Vec::new();
    stranger.put_string(b"ssh-ed25519");
    stranger.put_string(&[7; 32]);
    let e = client
        .sign(&stranger, b"data", SignatureAlg::Ed25519)
        .unwrap_err();
    assert!(matches!(e, AgentError::Refused { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("the agent at {} refused to sign", agent.socket.display())
    );

    // A key that cannot make the signature asked for: refused before the agent is asked.
    let e = client
        .sign(&ed25519, b"data", SignatureAlg::RsaSha512)
        .unwrap_err();
    assert!(
        matches!(
            e,
            AgentError::Request {
                error: CodecError::KeyTypeMismatch { .. },
                ..
            }
        ),
        "{e:?}"
    );

    // The same connection still works.
    assert_eq!(client.identities().unwrap().len(), 1);
    client
        .sign(&ed25519, b"data", SignatureAlg::Ed25519)
        .unwrap();
}

#[test]
fn a_missing_socket_is_one_clear_sentence() {
    let dir = TempDir::new("missing");
    let path = dir.join("no-such.sock");
    let e = AgentClient::connect(&path).unwrap_err();
    assert!(matches!(e, AgentError::Connect { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "could not connect to the agent at {}: No such file or directory",
            path.display()
        )
    );
}

/// What a fake agent does with one connection once it has read the request.
type Behaviour = Box<dyn FnOnce(&mut UnixStream) + Send>;

/// A Unix listener that serves one connection per behaviour, in order. Each connection's
/// first request is read whole and returned from the thread; after the behaviour the
/// connection is drained until the client closes it, so "never answers" holds the socket
/// open rather than closing it.
struct FakeAgent {
    path: PathBuf,
    thread: Option<JoinHandle<Vec<Vec<u8>>>>,
    _dir: TempDir,
}

impl FakeAgent {
    fn start(behaviours: Vec<Behaviour>) -> Self {
        let dir = TempDir::new("fake");
        let path = dir.join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let thread = thread::spawn(move || {
            let mut requests = Vec::new();
            for behave in behaviours {
                let (mut stream, _) = listener.accept().unwrap();
                // A bound on everything, so a broken test fails instead of hanging.
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                requests.push(read_frame(&mut stream));
                behave(&mut stream);
                let mut sink = [0u8; 256];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            }
            requests
        });
        Self {
            path,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Waits for the agent to finish and returns the requests it read.
    fn requests(mut self) -> Vec<Vec<u8>> {
        self.thread.take().unwrap().join().unwrap()
    }

    fn client(&self) -> AgentClient {
        AgentClient::connect_with_timeout(&self.path, Duration::from_millis(300)).unwrap()
    }
}

fn read_frame(stream: &mut UnixStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0; usize::try_from(u32::from_be_bytes(len)).unwrap()];
    stream.read_exact(&mut body).unwrap();
    body
}

fn answer(bytes: &'static [u8]) -> Behaviour {
    Box::new(move |s| s.write_all(bytes).unwrap())
}

fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_string(message);
    out
}

fn ed25519_blob() -> Vec<u8> {
    let mut blob = Vec::new();
    blob.put_string(b"ssh-ed25519");
    blob.put_string(&[3; 32]);
    blob
}

fn rsa_blob() -> Vec<u8> {
    let mut n = vec![0xc3; 256];
    n[255] = 1;
    let mut blob = Vec::new();
    blob.put_string(b"ssh-rsa");
    blob.put_mpint(&[1, 0, 1]);
    blob.put_mpint(&n);
    blob
}

/// Asks the fake for identities and checks the error: its variant, and that it displays as
/// one line naming the socket.
fn identities_error(fake: &FakeAgent) -> AgentError {
    let mut client = fake.client();
    let e = client.identities().unwrap_err();
    let text = e.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains(&fake.path.display().to_string()), "{text}");
    e
}

fn protocol_error(e: &AgentError) -> &CodecError {
    match e {
        AgentError::Protocol { error, .. } => error,
        other => panic!("not a protocol error: {other:?}"),
    }
}

#[test]
fn garbage_is_a_protocol_error() {
    // Text where a length should be: 0x48545450 bytes, over the limit.
    let fake = FakeAgent::start(vec![answer(b"HTTP/1.1 400 Bad Request\r\n\r\n")]);
    let e = identities_error(&fake);
    assert_eq!(
        protocol_error(&e),
        &CodecError::TooLong { len: 0x4854_5450 }
    );
    drop(e);

    // A well-framed message of a type nobody asked for.
    let fake = FakeAgent::start(vec![answer(b"\0\0\0\x05hello")]);
    let e = identities_error(&fake);
    assert_eq!(
        protocol_error(&e),
        &CodecError::Unexpected {
            expected: MessageNumber::IDENTITIES_ANSWER,
            got: MessageNumber(b'h')
        }
    );
    assert!(
        e.to_string().starts_with("bad reply from the agent at "),
        "{e}"
    );
}

#[test]
fn a_huge_length_fails_at_once_without_waiting_for_the_body() {
    let fake = FakeAgent::start(vec![answer(&[0xff, 0xff, 0xff, 0xff])]);
    // Not a timeout: the length alone decides.
    let e = identities_error(&fake);
    assert_eq!(protocol_error(&e), &CodecError::TooLong { len: u32::MAX });
}

#[test]
fn a_truncated_reply_is_an_error_whether_the_agent_closes_or_stalls() {
    // 100 bytes announced, 6 sent, then the agent closes.
    let fake = FakeAgent::start(vec![Box::new(|s| {
        s.write_all(b"\0\0\0\x64\x0c\0\0\0\x01\0").unwrap();
        s.shutdown(std::net::Shutdown::Both).unwrap();
    })]);
    let e = identities_error(&fake);
    assert!(matches!(e, AgentError::Closed { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "the agent at {} closed the connection without answering",
            fake.path.display()
        )
    );

    // The same, but the agent keeps the connection open.
    let fake = FakeAgent::start(vec![answer(b"\0\0\0\x64\x0c\0\0\0\x01\0")]);
    let e = identities_error(&fake);
    assert!(matches!(e, AgentError::TimedOut { .. }), "{e:?}");

    // A whole message whose fields run short.
    let fake = FakeAgent::start(vec![answer(b"\0\0\0\x09\x0c\0\0\0\x01\0\0\0\x20")]);
    let e = identities_error(&fake);
    assert_eq!(protocol_error(&e), &CodecError::Malformed("key blob"));
}

#[test]
fn an_identity_count_with_no_body_is_refused_without_allocating_for_it() {
    let fake = FakeAgent::start(vec![answer(b"\0\0\0\x05\x0c\xff\xff\xff\xff")]);
    let e = identities_error(&fake);
    assert_eq!(protocol_error(&e), &CodecError::Malformed("key blob"));
    assert_eq!(fake.requests(), [vec![11]]);
}

#[test]
fn an_ssh_rsa_signature_for_an_rsa_sha2_512_request_is_refused() {
    let mut sha1 = Vec::new();
    sha1.put_string(b"ssh-rsa");
    sha1.put_string(&[0x55; 256]);
    let mut reply = vec![14];
    reply.put_string(&sha1);
    let reply = framed(&reply);
    let fake = FakeAgent::start(vec![Box::new(move |s| s.write_all(&reply).unwrap())]);

    let mut client = fake.client();
    let e = client
        .sign(&rsa_blob(), b"data", SignatureAlg::RsaSha512)
        .unwrap_err();
    assert_eq!(
        protocol_error(&e),
        &CodecError::WrongAlgorithm {
            expected: SignatureAlg::RsaSha512,
            got: "ssh-rsa".into()
        }
    );
    assert!(e.to_string().contains("SHA-1"), "{e}");
    drop(client);

    // The request asked for SHA-512 with flag 4, after the key and the data.
    let requests = fake.requests();
    let mut r = Reader::new(&requests[0]);
    assert_eq!(r.u8("type").unwrap(), 13);
    assert_eq!(r.string("key").unwrap(), rsa_blob());
    assert_eq!(r.string("data").unwrap(), b"data");
    assert_eq!(r.u32("flags").unwrap(), 4);
    r.finish().unwrap();
}

#[test]
fn an_agent_that_never_answers_times_out() {
    let fake = FakeAgent::start(vec![Box::new(|_| {})]);
    let mut client = fake.client();
    let started = Instant::now();
    let e = client
        .sign(&ed25519_blob(), b"data", SignatureAlg::Ed25519)
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(e, AgentError::TimedOut { .. }), "{e:?}");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "the agent at {} did not answer within 300 ms",
            fake.path.display()
        )
    );
}

#[test]
fn an_agent_that_dribbles_is_bounded_by_the_whole_timeout() {
    // One byte every 50 ms never lets a single read time out; the deadline covers the
    // whole answer.
    let fake = FakeAgent::start(vec![Box::new(|s| {
        for byte in b"\0\0\0\x20" {
            if s.write_all(&[*byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        for _ in 0..40 {
            if s.write_all(&[0]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    })]);
    let mut client = fake.client();
    let started = Instant::now();
    let e = client.identities().unwrap_err();
    assert!(matches!(e, AgentError::TimedOut { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_refusal_and_a_second_reply_are_errors() {
    let fake = FakeAgent::start(vec![answer(b"\0\0\0\x01\x05")]);
    let e = identities_error(&fake);
    assert_eq!(
        e.to_string(),
        format!(
            "the agent at {} refused to list its keys",
            fake.path.display()
        )
    );

    // A whole reply, then another message nobody asked for, in one write.
    let fake = FakeAgent::start(vec![answer(b"\0\0\0\x05\x0c\0\0\0\0\0\0\0\x01\x05")]);
    let e = identities_error(&fake);
    assert_eq!(protocol_error(&e), &CodecError::Unsolicited);
}

#[test]
fn after_a_broken_reply_the_next_request_reconnects() {
    let mut good = vec![12];
    good.put_u32(1);
    good.put_string(&ed25519_blob());
    good.put_string(b"second connection");
    let good = framed(&good);
    let fake = FakeAgent::start(vec![
        answer(b"\0\0\0\x02\x0c\0"),
        Box::new(move |s| s.write_all(&good).unwrap()),
    ]);

    let mut client = fake.client();
    let e = client.identities().unwrap_err();
    assert_eq!(protocol_error(&e), &CodecError::Malformed("key count"));
    let ids = client.identities().unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].comment(), "second connection");
    assert_eq!(ids[0].blob(), ed25519_blob());
    drop(client);
    assert_eq!(fake.requests(), [vec![11], vec![11]]);
}

#[test]
fn identity_agent_none_disables_and_a_path_connects() {
    assert!(
        AgentClient::from_identity_agent(Some("none"))
            .unwrap()
            .is_none()
    );

    let fake = FakeAgent::start(vec![answer(b"\0\0\0\x05\x0c\0\0\0\0")]);
    let path: &Path = &fake.path;
    let mut client = AgentClient::from_identity_agent(Some(path.to_str().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(client.path(), path);
    assert!(client.identities().unwrap().is_empty());
}
