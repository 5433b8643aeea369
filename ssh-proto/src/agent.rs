//! The SSH agent protocol, client side: asking an agent which keys it holds and asking it to
//! sign with one of them.
//!
//! The protocol is OpenSSH's (`PROTOCOL.agent`), now written up as draft-ietf-sshm-ssh-agent;
//! section names below are the draft's. Only the two requests a client needs for public key
//! authentication are here, REQUEST_IDENTITIES and SIGN_REQUEST, with their replies. Adding,
//! removing and locking keys belong to tools that manage an agent, which this project does
//! not have.
//!
//! Like the rest of the crate this module owns no socket. Requests are appended to a buffer
//! the caller writes out; bytes read back go through a [`Framer`], which yields whole
//! messages; [`parse_identities`] and [`parse_sign_response`] turn those into values. The
//! socket, and the timeout that keeps a silent agent from hanging the client, live in the
//! gateway.
//!
//! An agent is a local process, but it is still input: a broken or hostile one (a socket
//! someone else created, a forwarded agent on a compromised host) must not make us panic,
//! allocate what it asks for, or use a signature it did not make the way we asked. So a
//! length over [`MAX_MESSAGE_LEN`] is refused before its body is buffered, a key count is
//! never trusted for allocation, and a signature must name the algorithm requested.
//!
//! ```
//! use ssh_proto::agent::{self, Framer};
//!
//! let mut out = Vec::new();
//! agent::request_identities(&mut out);
//! assert_eq!(out, [0, 0, 0, 1, 0x0b]);
//!
//! // An agent holding no keys: IDENTITIES_ANSWER with a count of zero, in two reads.
//! let mut framer = Framer::new();
//! let mut first: &[u8] = &[0, 0, 0, 5, 0x0c, 0];
//! assert_eq!(framer.read_message(&mut first), Ok(None));
//! let mut second: &[u8] = &[0, 0, 0];
//! let message = framer.read_message(&mut second).unwrap().unwrap();
//! assert!(agent::parse_identities(&message).unwrap().is_empty());
//! ```

use core::fmt;

use crate::hostkey::{KeyError, PublicKey, SignatureAlg};
use crate::wire::{Reader, WireError, Writer};

/// The largest message accepted from an agent or sent to one, length prefix excluded:
/// 256 KiB, the limit OpenSSH's agent and client both apply. A longer length prefix is a
/// broken or hostile peer, refused before any of its body is buffered.
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;

/// SIGN_REQUEST flag asking an RSA key for an `rsa-sha2-256` signature (draft-ietf-sshm-ssh-agent,
/// "Signature Flags"; RFC 8332 section 3.3).
pub const SSH_AGENT_RSA_SHA2_256: u32 = 0x02;

/// SIGN_REQUEST flag asking an RSA key for an `rsa-sha2-512` signature.
pub const SSH_AGENT_RSA_SHA2_512: u32 = 0x04;

/// The first byte of every agent message (draft-ietf-sshm-ssh-agent, "Message Numbers").
/// An open set: a value with no name here is still a value, reported rather than refused
/// at the framing layer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageNumber(pub u8);

impl MessageNumber {
    /// SSH_AGENT_FAILURE: the generic refusal ("Generic Agent Responses").
    pub const FAILURE: Self = Self(0x05);
    /// SSH_AGENT_SUCCESS: the generic acceptance; never the answer to our requests.
    pub const SUCCESS: Self = Self(0x06);
    /// SSH_AGENTC_REQUEST_IDENTITIES ("Requesting a List of Keys").
    pub const REQUEST_IDENTITIES: Self = Self(0x0b);
    /// SSH_AGENT_IDENTITIES_ANSWER.
    pub const IDENTITIES_ANSWER: Self = Self(0x0c);
    /// SSH_AGENTC_SIGN_REQUEST ("Private Key Operations").
    pub const SIGN_REQUEST: Self = Self(0x0d);
    /// SSH_AGENT_SIGN_RESPONSE.
    pub const SIGN_RESPONSE: Self = Self(0x0e);
    /// SSH_AGENT_EXTENSION_FAILURE: the refusal of an extension request, which we never send.
    pub const EXTENSION_FAILURE: Self = Self(0x1c);

    /// The protocol's name for the number, if it has one here.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::FAILURE => Some("SSH_AGENT_FAILURE"),
            Self::SUCCESS => Some("SSH_AGENT_SUCCESS"),
            Self::REQUEST_IDENTITIES => Some("SSH_AGENTC_REQUEST_IDENTITIES"),
            Self::IDENTITIES_ANSWER => Some("SSH_AGENT_IDENTITIES_ANSWER"),
            Self::SIGN_REQUEST => Some("SSH_AGENTC_SIGN_REQUEST"),
            Self::SIGN_RESPONSE => Some("SSH_AGENT_SIGN_RESPONSE"),
            Self::EXTENSION_FAILURE => Some("SSH_AGENT_EXTENSION_FAILURE"),
            _ => None,
        }
    }
}

impl fmt::Debug for MessageNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "MessageNumber({})", self.0),
        }
    }
}

impl fmt::Display for MessageNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "message type {}", self.0),
        }
    }
}

/// What went wrong in an exchange with an agent, apart from the socket itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The agent answered SSH_AGENT_FAILURE: it does not hold the key, a confirmation was
    /// denied, or it refuses for reasons it does not say (the protocol carries none).
    Refused,
    /// A length prefix over [`MAX_MESSAGE_LEN`].
    TooLong { len: u32 },
    /// A length prefix of zero: a message without even a message number.
    Empty,
    /// A reply of a type the request cannot be answered with.
    Unexpected {
        expected: MessageNumber,
        got: MessageNumber,
    },
    /// A field is truncated or malformed; names the field.
    Malformed(&'static str),
    /// Bytes follow the last field of a reply or of the signature blob in it.
    TrailingBytes,
    /// Bytes came after the whole reply, where no request was outstanding: the stream is
    /// out of step, and the next reply read could belong to another request. Found by the
    /// caller, which knows when it asked; the [`Framer`] only delivers messages.
    Unsolicited,
    /// The signature names another algorithm than the one requested. Holds the name sent,
    /// escaped and cut to 64 bytes. An agent that ignores the RSA flags answers `ssh-rsa`
    /// (SHA-1), which a server would refuse or, worse, accept.
    WrongAlgorithm { expected: SignatureAlg, got: String },
    /// A request of this many bytes would exceed [`MAX_MESSAGE_LEN`]; the agent would drop
    /// the connection, so it is not sent.
    RequestTooLong { len: usize },
    /// The key cannot make signatures of the requested algorithm: a mistake by the caller,
    /// caught before the agent is asked.
    KeyTypeMismatch {
        key_type: &'static str,
        alg: SignatureAlg,
    },
}

impl From<WireError> for CodecError {
    fn from(e: WireError) -> Self {
        Self::Malformed(e.what)
    }
}

/// The texts describe what the agent sent, to follow a sentence that names the agent (the
/// gateway writes "bad reply from the agent at PATH: ..."); the caller-side errors, which
/// no agent caused, stand alone.
impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused => f.write_str("the agent refused the request"),
            Self::TooLong { len } => write!(
                f,
                "a message length of {len} bytes, over the limit of {MAX_MESSAGE_LEN}"
            ),
            Self::Empty => f.write_str("an empty message"),
            Self::Unexpected { expected, got } => write!(f, "{got} where {expected} was expected"),
            Self::Malformed(what) => write!(f, "a truncated or malformed {what}"),
            Self::TrailingBytes => f.write_str("bytes after the last field of a reply"),
            Self::Unsolicited => f.write_str("more than one reply to a request"),
            Self::WrongAlgorithm { expected, got } if got == "ssh-rsa" => write!(
                f,
                "an ssh-rsa (RSA with SHA-1) signature where {expected} was requested; \
                 the agent may predate RFC 8332"
            ),
            Self::WrongAlgorithm { expected, got } => {
                write!(f, "a \"{got}\" signature where {expected} was requested")
            }
            Self::RequestTooLong { len } => write!(
                f,
                "a request of {len} bytes is over the agent's limit of {MAX_MESSAGE_LEN}"
            ),
            Self::KeyTypeMismatch { key_type, alg } => {
                write!(f, "a {key_type} key cannot make {alg} signatures")
            }
        }
    }
}

impl std::error::Error for CodecError {}

/// The SIGN_REQUEST flags that ask for `alg`. Only RSA keys have a choice of hash; other
/// keys sign one way and take no flags.
pub fn sign_flags(alg: SignatureAlg) -> u32 {
    match alg {
        SignatureAlg::RsaSha256 => SSH_AGENT_RSA_SHA2_256,
        SignatureAlg::RsaSha512 => SSH_AGENT_RSA_SHA2_512,
        SignatureAlg::Ed25519 | SignatureAlg::EcdsaP256 => 0,
    }
}

/// Appends SSH_AGENTC_REQUEST_IDENTITIES, framed, to `out`.
pub fn request_identities(out: &mut Vec<u8>) {
    out.put_u32(1);
    out.put_u8(MessageNumber::REQUEST_IDENTITIES.0);
}

/// Appends SSH_AGENTC_SIGN_REQUEST, framed, to `out`: sign `data` with the key whose blob is
/// `key_blob`, making an `alg` signature.
///
/// Fails, appending nothing, if the message would exceed [`MAX_MESSAGE_LEN`] or if the key
/// is one we parse and cannot make `alg` signatures. A blob we cannot parse is sent as it
/// is: the agent may know the type, and [`parse_sign_response`] still checks the answer.
pub fn sign_request(
    out: &mut Vec<u8>,
    key_blob: &[u8],
    data: &[u8],
    alg: SignatureAlg,
) -> Result<(), CodecError> {
    if let Ok(key) = PublicKey::from_blob(key_blob)
        && !key.supports(alg)
    {
        return Err(CodecError::KeyTypeMismatch {
            key_type: key.key_type(),
            alg,
        });
    }

    // message number, two strings, the flags.
    let len = key_blob
        .len()
        .saturating_add(data.len())
        .saturating_add(1 + 4 + 4 + 4);
    if len > MAX_MESSAGE_LEN {
        return Err(CodecError::RequestTooLong { len });
    }
    let Ok(len32) = u32::try_from(len) else {
        return Err(CodecError::RequestTooLong { len });
    };

    out.reserve(4 + len);
    out.put_u32(len32);
    out.put_u8(MessageNumber::SIGN_REQUEST.0);
    out.put_string(key_blob);
    out.put_string(data);
    out.put_u32(sign_flags(alg));
    Ok(())
}

/// One key an agent holds, from SSH_AGENT_IDENTITIES_ANSWER.
///
/// Every identity the agent lists is kept, with its blob exactly as sent, whether or not we
/// can use it: a key type we do not support (`ecdsa-sha2-nistp384`, `sk-*` security keys,
/// certificates) or a blob that does not parse is marked unusable, so a caller can skip it
/// and say why rather than lose sight of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    blob: Vec<u8>,
    comment: String,
    key: Result<PublicKey, KeyError>,
}

impl Identity {
    /// An identity from its key blob and comment, parsing the blob to see whether it is
    /// usable.
    pub fn new(blob: Vec<u8>, comment: String) -> Self {
        let key = PublicKey::from_blob(&blob);
        Self { blob, comment, key }
    }

    /// The key blob as the agent sent it; [`sign_request`] takes it back unchanged.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// The agent's comment, usually the file the key came from. It is text from the agent:
    /// invalid UTF-8 has been replaced, but control characters remain, so escape it before
    /// printing it to a terminal.
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// The public key, if it is one we can authenticate with.
    pub fn key(&self) -> Option<&PublicKey> {
        self.key.as_ref().ok()
    }

    /// Why the key cannot be used, if it cannot.
    pub fn unusable_reason(&self) -> Option<&KeyError> {
        self.key.as_ref().err()
    }

    /// The key type named at the start of the blob, escaped and cut to 64 bytes, for
    /// messages about keys we cannot use; `"unknown"` if even that does not parse.
    pub fn key_type(&self) -> String {
        match Reader::new(&self.blob).string("key type") {
            Ok(name) => escaped(name),
            Err(_) => "unknown".to_owned(),
        }
    }
}

/// Parses the reply to REQUEST_IDENTITIES: `byte SSH_AGENT_IDENTITIES_ANSWER, uint32 nkeys`,
/// then `nkeys` pairs of `string key blob, string comment`. `message` is one message from
/// the [`Framer`], its length prefix removed.
///
/// The count only bounds the loop: memory grows with entries actually present, so a count
/// of 0xFFFFFFFF with no body fails at the first missing blob. A message bounded by
/// [`MAX_MESSAGE_LEN`] holds at most 32 768 entries of 8 bytes each.
pub fn parse_identities(message: &[u8]) -> Result<Vec<Identity>, CodecError> {
    let mut r = Reader::new(message);
    read_number(&mut r, MessageNumber::IDENTITIES_ANSWER)?;

    let count = r.u32("key count")?;
    let mut identities = Vec::new();
    for _ in 0..count {
        let blob = r.string("key blob")?;
        let comment = r.string("key comment")?;
        identities.push(Identity::new(
            blob.to_vec(),
            String::from_utf8_lossy(comment).into_owned(),
        ));
    }
    r.finish().map_err(|_| CodecError::TrailingBytes)?;
    Ok(identities)
}

/// Parses the reply to SIGN_REQUEST: `byte SSH_AGENT_SIGN_RESPONSE, string signature`, and
/// returns the signature blob (`string algorithm, string signature`, RFC 4253 section 6.6),
/// ready for a USERAUTH_REQUEST.
///
/// The blob must be well formed and name `alg`. Whether the signature verifies is left to
/// the server, which checks it anyway; a wrong algorithm is caught here because a server
/// might accept a weaker one we did not choose.
pub fn parse_sign_response(message: &[u8], alg: SignatureAlg) -> Result<Vec<u8>, CodecError> {
    let mut r = Reader::new(message);
    read_number(&mut r, MessageNumber::SIGN_RESPONSE)?;
    let blob = r.string("signature blob")?;
    r.finish().map_err(|_| CodecError::TrailingBytes)?;

    let mut s = Reader::new(blob);
    let name = s.string("signature algorithm")?;
    s.string("signature")?;
    s.finish().map_err(|_| CodecError::TrailingBytes)?;
    if name != alg.name().as_bytes() {
        return Err(CodecError::WrongAlgorithm {
            expected: alg,
            got: escaped(name),
        });
    }
    Ok(blob.to_vec())
}

/// Reads the message number, turning FAILURE into [`CodecError::Refused`] and anything but
/// `expected` into [`CodecError::Unexpected`]. Bytes after a FAILURE are ignored: it is a
/// refusal whatever follows.
fn read_number(r: &mut Reader<'_>, expected: MessageNumber) -> Result<(), CodecError> {
    match MessageNumber(r.u8("message number")?) {
        got if got == expected => Ok(()),
        MessageNumber::FAILURE => Err(CodecError::Refused),
        got => Err(CodecError::Unexpected { expected, got }),
    }
}

/// Splits the byte stream from an agent into messages: `uint32 length`, then `length` bytes
/// whose first is the message number.
///
/// Bytes are fed as they arrive, in pieces of any size. The length is checked as soon as its
/// four bytes are in, so an oversized or empty message fails before anything of its body is
/// stored, and the buffer never holds more than one message of at most [`MAX_MESSAGE_LEN`].
/// After an error the stream has lost its framing: every later call returns the same error.
#[derive(Clone, Debug, Default)]
pub struct Framer {
    header: [u8; 4],
    header_len: usize,
    body: Vec<u8>,
    body_len: usize,
    failed: Option<CodecError>,
}

impl Framer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no part of a message is buffered: true between messages. Bytes that arrive
    /// when no request is outstanding are a message nobody asked for.
    pub fn is_idle(&self) -> bool {
        self.header_len == 0 && self.failed.is_none()
    }

    /// Takes bytes from the front of `input`, advancing it, up to the end of the message
    /// being read, and returns that message (without its length prefix) once it is whole.
    /// Bytes past the end of a message stay in `input` for the next call.
    pub fn read_message(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, CodecError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }

        while self.header_len < self.header.len() {
            let Some((&byte, rest)) = input.split_first() else {
                return Ok(None);
            };
            *input = rest;
            if let Some(slot) = self.header.get_mut(self.header_len) {
                *slot = byte;
            }
            self.header_len += 1;
        }
        if self.body.is_empty() {
            self.body_len = self.check_length()?;
        }

        let want = self.body_len.saturating_sub(self.body.len());
        let (head, rest) = input.split_at(want.min(input.len()));
        self.body.extend_from_slice(head);
        *input = rest;

        if self.body.len() < self.body_len {
            return Ok(None);
        }
        self.header_len = 0;
        self.body_len = 0;
        Ok(Some(core::mem::take(&mut self.body)))
    }

    fn check_length(&mut self) -> Result<usize, CodecError> {
        let len = u32::from_be_bytes(self.header);
        let error = match usize::try_from(len) {
            Ok(0) => CodecError::Empty,
            Ok(n) if n <= MAX_MESSAGE_LEN => return Ok(n),
            _ => CodecError::TooLong { len },
        };
        self.failed = Some(error.clone());
        Err(error)
    }
}

/// Printable ASCII, with other bytes escaped, cut to 64 bytes: safe in an error message.
fn escaped(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let cut = bytes.get(..MAX).unwrap_or(bytes);
    let mut out = cut.escape_ascii().to_string();
    if cut.len() < bytes.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ed25519_blob(fill: u8) -> Vec<u8> {
        let mut blob = Vec::new();
        blob.put_string(b"ssh-ed25519");
        blob.put_string(&[fill; 32]);
        blob
    }

    /// An RSA blob that parses: a 2048-bit odd modulus and e = 65537. Not a real key, which
    /// nothing here needs.
    fn rsa_blob() -> Vec<u8> {
        let mut n = vec![0xc3; 256];
        n[255] = 0x01;
        let mut blob = Vec::new();
        blob.put_string(b"ssh-rsa");
        blob.put_mpint(&[0x01, 0x00, 0x01]);
        blob.put_mpint(&n);
        blob
    }

    fn p384_blob() -> Vec<u8> {
        let mut blob = Vec::new();
        blob.put_string(b"ecdsa-sha2-nistp384");
        blob.put_string(b"nistp384");
        let mut point = vec![0x04];
        point.extend_from_slice(&[0x11; 96]);
        blob.put_string(&point);
        blob
    }

    fn signature_blob(name: &str, sig: &[u8]) -> Vec<u8> {
        let mut blob = Vec::new();
        blob.put_string(name.as_bytes());
        blob.put_string(sig);
        blob
    }

    fn sign_response(blob: &[u8]) -> Vec<u8> {
        let mut m = vec![MessageNumber::SIGN_RESPONSE.0];
        m.put_string(blob);
        m
    }

    fn identities_answer(count: u32, entries: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut m = vec![MessageNumber::IDENTITIES_ANSWER.0];
        m.put_u32(count);
        for (blob, comment) in entries {
            m.put_string(blob);
            m.put_string(comment);
        }
        m
    }

    /// Feeds all of `input` and collects every whole message.
    fn frames(framer: &mut Framer, mut input: &[u8]) -> Result<Vec<Vec<u8>>, CodecError> {
        let mut out = Vec::new();
        while !input.is_empty() {
            if let Some(m) = framer.read_message(&mut input)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    #[test]
    fn request_identities_is_five_bytes() {
        let mut out = vec![0xaa];
        request_identities(&mut out);
        assert_eq!(out, [0xaa, 0, 0, 0, 1, 11]);
    }

    #[test]
    fn sign_request_layout_and_flags() {
        let key = ed25519_blob(7);
        let mut out = Vec::new();
        sign_request(&mut out, &key, b"data", SignatureAlg::Ed25519).unwrap();

        let mut expected = Vec::new();
        expected.put_u32(u32::try_from(1 + 4 + key.len() + 4 + 4 + 4).unwrap());
        expected.put_u8(13);
        expected.put_string(&key);
        expected.put_string(b"data");
        expected.put_u32(0);
        assert_eq!(out, expected);

        let rsa = rsa_blob();
        for (alg, flags) in [(SignatureAlg::RsaSha256, 2), (SignatureAlg::RsaSha512, 4)] {
            let mut out = Vec::new();
            sign_request(&mut out, &rsa, b"x", alg).unwrap();
            assert_eq!(out[out.len() - 4..], u32::to_be_bytes(flags), "{alg}");
            // The framer reads back exactly one message of the announced length.
            let messages = frames(&mut Framer::new(), &out).unwrap();
            assert_eq!(messages.len(), 1);
            assert_eq!(messages[0].len(), out.len() - 4);
        }
    }

    #[test]
    fn sign_request_refuses_a_key_that_cannot_make_the_signature() {
        let mut out = Vec::new();
        let e = sign_request(&mut out, &ed25519_blob(1), b"d", SignatureAlg::RsaSha512);
        assert_eq!(
            e,
            Err(CodecError::KeyTypeMismatch {
                key_type: "ssh-ed25519",
                alg: SignatureAlg::RsaSha512
            })
        );
        let e = sign_request(&mut out, &rsa_blob(), b"d", SignatureAlg::Ed25519);
        assert!(
            matches!(e, Err(CodecError::KeyTypeMismatch { .. })),
            "{e:?}"
        );
        assert!(out.is_empty());

        // A blob we cannot parse goes to the agent as it is.
        sign_request(&mut out, &p384_blob(), b"d", SignatureAlg::EcdsaP256).unwrap();
        assert!(!out.is_empty());
    }

    #[test]
    fn sign_request_over_the_limit_is_not_sent() {
        let key = ed25519_blob(1);
        let overhead = 1 + 4 + key.len() + 4 + 4;
        let mut out = Vec::new();
        let fits = vec![0; MAX_MESSAGE_LEN - overhead];
        sign_request(&mut out, &key, &fits, SignatureAlg::Ed25519).unwrap();
        assert_eq!(out.len(), 4 + MAX_MESSAGE_LEN);

        let mut out = Vec::new();
        let over = vec![0; MAX_MESSAGE_LEN - overhead + 1];
        let e = sign_request(&mut out, &key, &over, SignatureAlg::Ed25519);
        assert_eq!(
            e,
            Err(CodecError::RequestTooLong {
                len: MAX_MESSAGE_LEN + 1
            })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn framer_reassembles_byte_by_byte_and_splits_joined_messages() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&[0, 0, 0, 1, 5]);
        stream.extend_from_slice(&[0, 0, 0, 3, 14, 1, 2]);

        let mut framer = Framer::new();
        assert!(framer.is_idle());
        let mut got = Vec::new();
        for (i, byte) in stream.iter().enumerate() {
            let mut input: &[u8] = core::slice::from_ref(byte);
            let message = framer.read_message(&mut input).unwrap();
            assert!(input.is_empty(), "byte {i} not consumed");
            if let Some(m) = message {
                got.push(m);
                assert!(framer.is_idle());
            } else {
                assert!(!framer.is_idle(), "byte {i}");
            }
        }
        assert_eq!(got, [vec![5], vec![14, 1, 2]]);

        // Both in one read: the first call stops at the end of the first message.
        let mut framer = Framer::new();
        let mut input = &stream[..];
        assert_eq!(framer.read_message(&mut input), Ok(Some(vec![5])));
        assert_eq!(input.len(), 7);
        assert_eq!(framer.read_message(&mut input), Ok(Some(vec![14, 1, 2])));
        assert!(input.is_empty());
        assert_eq!(framer.read_message(&mut input), Ok(None));
    }

    #[test]
    fn framer_refuses_long_lengths_before_buffering() {
        for len in [
            u32::try_from(MAX_MESSAGE_LEN + 1).unwrap(),
            0xffff_fff0,
            0x8000_0000,
            u32::MAX,
        ] {
            let mut framer = Framer::new();
            let mut input: &[u8] = &len.to_be_bytes();
            assert_eq!(
                framer.read_message(&mut input),
                Err(CodecError::TooLong { len })
            );
            assert_eq!(framer.body.capacity(), 0, "nothing reserved for {len}");

            // The stream is unframed now: more bytes get the same answer, not a message.
            let mut more: &[u8] = &[0, 0, 0, 1, 5];
            assert_eq!(
                framer.read_message(&mut more),
                Err(CodecError::TooLong { len })
            );
            assert!(!framer.is_idle());
        }
    }

    #[test]
    fn framer_takes_the_largest_message_and_refuses_an_empty_one() {
        let mut stream = u32::try_from(MAX_MESSAGE_LEN)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        stream.resize(4 + MAX_MESSAGE_LEN, 0x0c);
        let messages = frames(&mut Framer::new(), &stream).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].len(), MAX_MESSAGE_LEN);

        let mut input: &[u8] = &[0, 0, 0, 0];
        assert_eq!(
            Framer::new().read_message(&mut input),
            Err(CodecError::Empty)
        );
    }

    #[test]
    fn identities_are_listed_with_unusable_ones_marked() {
        let ed = ed25519_blob(3);
        let rsa = rsa_blob();
        let p384 = p384_blob();
        let mut cert = Vec::new();
        cert.put_string(b"ssh-ed25519-cert-v01@openssh.com");
        cert.put_string(b"nonce");
        let garbage = [0xff, 0xff];
        let message = identities_answer(
            5,
            &[
                (&ed, b"ed"),
                (&p384, b"p384"),
                (&cert, b"cert"),
                (&garbage, b"\xffbad utf-8"),
                (&rsa, b""),
            ],
        );

        let ids = parse_identities(&message).unwrap();
        assert_eq!(ids.len(), 5);
        assert_eq!(ids[0].blob(), ed);
        assert_eq!(ids[0].comment(), "ed");
        assert_eq!(ids[0].key(), Some(&PublicKey::Ed25519([3; 32])));
        assert_eq!(ids[0].unusable_reason(), None);

        assert_eq!(ids[1].blob(), p384);
        assert_eq!(ids[1].key(), None);
        assert_eq!(ids[1].key_type(), "ecdsa-sha2-nistp384");
        assert_eq!(
            ids[1].unusable_reason(),
            Some(&KeyError::UnsupportedKeyType("ecdsa-sha2-nistp384".into()))
        );
        assert_eq!(ids[2].key_type(), "ssh-ed25519-cert-v01@openssh.com");
        assert!(ids[2].key().is_none());

        assert_eq!(ids[3].blob(), garbage);
        assert_eq!(ids[3].key_type(), "unknown");
        assert_eq!(ids[3].comment(), "\u{fffd}bad utf-8");
        assert!(ids[3].unusable_reason().is_some());

        assert_eq!(ids[4].key().map(PublicKey::key_type), Some("ssh-rsa"));
        assert_eq!(parse_identities(&identities_answer(0, &[])), Ok(vec![]));
    }

    #[test]
    fn identity_counts_are_not_trusted() {
        // The count says four billion, the body holds nothing: the first blob is missing.
        assert_eq!(
            parse_identities(&identities_answer(u32::MAX, &[])),
            Err(CodecError::Malformed("key blob"))
        );
        let ed = ed25519_blob(1);
        assert_eq!(
            parse_identities(&identities_answer(2, &[(&ed, b"one")])),
            Err(CodecError::Malformed("key blob"))
        );
        // A blob without its comment.
        let mut message = identities_answer(1, &[]);
        message.put_string(&ed);
        assert_eq!(
            parse_identities(&message),
            Err(CodecError::Malformed("key comment"))
        );
        // Fewer announced than sent.
        assert_eq!(
            parse_identities(&identities_answer(0, &[(&ed, b"extra")])),
            Err(CodecError::TrailingBytes)
        );
        // A string length running past the message.
        let mut message = identities_answer(1, &[]);
        message.put_u32(0xffff_fff0);
        assert_eq!(
            parse_identities(&message),
            Err(CodecError::Malformed("key blob"))
        );
        assert_eq!(
            parse_identities(&[12, 0, 0]),
            Err(CodecError::Malformed("key count"))
        );
    }

    #[test]
    fn replies_of_the_wrong_kind_are_errors() {
        assert_eq!(parse_identities(&[5]), Err(CodecError::Refused));
        assert_eq!(
            parse_sign_response(&[5, 1, 2], SignatureAlg::Ed25519),
            Err(CodecError::Refused)
        );
        assert_eq!(
            parse_identities(&sign_response(&[])),
            Err(CodecError::Unexpected {
                expected: MessageNumber::IDENTITIES_ANSWER,
                got: MessageNumber::SIGN_RESPONSE
            })
        );
        assert_eq!(
            parse_sign_response(&[6], SignatureAlg::Ed25519),
            Err(CodecError::Unexpected {
                expected: MessageNumber::SIGN_RESPONSE,
                got: MessageNumber::SUCCESS
            })
        );
        assert_eq!(
            parse_identities(&[]),
            Err(CodecError::Malformed("message number"))
        );
        let e = parse_identities(&[0xc8]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "message type 200 where SSH_AGENT_IDENTITIES_ANSWER was expected"
        );
    }

    #[test]
    fn signatures_must_name_the_requested_algorithm() {
        let good = signature_blob("rsa-sha2-512", &[9; 256]);
        assert_eq!(
            parse_sign_response(&sign_response(&good), SignatureAlg::RsaSha512),
            Ok(good.clone())
        );
        assert_eq!(
            parse_sign_response(&sign_response(&good), SignatureAlg::RsaSha256),
            Err(CodecError::WrongAlgorithm {
                expected: SignatureAlg::RsaSha256,
                got: "rsa-sha2-512".into()
            })
        );

        let sha1 = signature_blob("ssh-rsa", &[9; 256]);
        let e = parse_sign_response(&sign_response(&sha1), SignatureAlg::RsaSha512).unwrap_err();
        assert_eq!(
            e,
            CodecError::WrongAlgorithm {
                expected: SignatureAlg::RsaSha512,
                got: "ssh-rsa".into()
            }
        );
        assert!(e.to_string().contains("SHA-1"), "{e}");

        let hostile = signature_blob("\x1b[2Jrsa", &[]);
        let e = parse_sign_response(&sign_response(&hostile), SignatureAlg::Ed25519).unwrap_err();
        assert!(!e.to_string().contains('\x1b'), "{e}");
    }

    #[test]
    fn malformed_signature_responses_are_errors() {
        let alg = SignatureAlg::Ed25519;
        let good = signature_blob("ssh-ed25519", &[1; 64]);

        let mut trailing_in_blob = good.clone();
        trailing_in_blob.push(0);
        assert_eq!(
            parse_sign_response(&sign_response(&trailing_in_blob), alg),
            Err(CodecError::TrailingBytes)
        );

        let mut trailing = sign_response(&good);
        trailing.push(0);
        assert_eq!(
            parse_sign_response(&trailing, alg),
            Err(CodecError::TrailingBytes)
        );

        let whole = sign_response(&good);
        assert_eq!(
            parse_sign_response(&whole[..whole.len() - 1], alg),
            Err(CodecError::Malformed("signature blob"))
        );

        let mut no_signature = Vec::new();
        no_signature.put_string(b"ssh-ed25519");
        assert_eq!(
            parse_sign_response(&sign_response(&no_signature), alg),
            Err(CodecError::Malformed("signature"))
        );
        assert_eq!(
            parse_sign_response(&[14], alg),
            Err(CodecError::Malformed("signature blob"))
        );
    }

    proptest! {
        #[test]
        fn arbitrary_replies_never_panic(
            kind in prop_oneof![Just(12u8), Just(14u8), any::<u8>()],
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut message = vec![kind];
            message.extend_from_slice(&body);
            if let Ok(ids) = parse_identities(&message) {
                // Every identity took at least 8 bytes of the body.
                prop_assert!(ids.len() * 8 <= body.len());
            }
            for alg in SignatureAlg::ALL {
                if let Ok(blob) = parse_sign_response(&message, alg) {
                    prop_assert!(blob.len() < message.len());
                }
            }
        }

        #[test]
        fn messages_survive_any_split(
            messages in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 1..64), 0..8),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut stream = Vec::new();
            for m in &messages {
                stream.put_string(m);
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.push(stream.len());
            cuts.sort_unstable();

            let mut framer = Framer::new();
            let mut got = Vec::new();
            let mut at = 0;
            for cut in cuts {
                got.extend(frames(&mut framer, &stream[at..cut]).unwrap());
                at = cut;
            }
            prop_assert_eq!(got, messages);
            prop_assert!(framer.is_idle());
        }

        #[test]
        fn arbitrary_streams_frame_the_same_in_any_split(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            cut in 0usize..512,
        ) {
            let cut = cut.min(bytes.len());
            let all = frames(&mut Framer::new(), &bytes);

            let mut split = Framer::new();
            let parts = frames(&mut split, &bytes[..cut]).and_then(|mut first| {
                first.extend(frames(&mut split, &bytes[cut..])?);
                Ok(first)
            });
            prop_assert_eq!(all, parts);
        }
    }
}
