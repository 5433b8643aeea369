//! The identification string exchange (RFC 4253 section 4.2), sans-IO.
//!
//! Each side sends one line, `SSH-protoversion-softwareversion SP comments CR LF`, before
//! any binary packet. A server may send other lines before its own; a client may not. The
//! peer's line, without its terminator, goes into the exchange hash (RFC 4253 section 8,
//! `V_C` and `V_S`), so it is kept byte for byte as received.
//!
//! [`VersionReader`] is fed whatever bytes arrived and reports how many of them belonged
//! to the version exchange: a peer may send its first binary packet in the same segment as
//! its version line, and those bytes stay with the caller. The reader never holds more than
//! the current line, and of a line before the version line only its first four bytes (to
//! see whether it starts with `SSH-`), so a hostile peer can make it hold at most
//! [`MAX_VERSION_LINE`] bytes however it sends.
//!
//! ```
//! use ssh_proto::role::Role;
//! use ssh_proto::version::{version_line, VersionReader};
//!
//! let ours = version_line("gateway_0.1", None).unwrap();
//! assert_eq!(ours, b"SSH-2.0-gateway_0.1\r\n");
//!
//! let mut reader = VersionReader::new(Role::Client);
//! let received = b"SSH-2.0-OpenSSH_9.6 Debian\r\n\x00\x00\x01\x14";
//! let (consumed, version) = reader.feed(received).unwrap().expect("a whole line was fed");
//! assert_eq!(version.software(), "OpenSSH_9.6");
//! assert_eq!(version.as_bytes(), b"SSH-2.0-OpenSSH_9.6 Debian");
//! assert_eq!(&received[consumed..], b"\x00\x00\x01\x14"); // the first packet starts here
//! ```

use core::fmt;

use crate::msg::DisconnectReason;
use crate::role::Role;

/// RFC 4253 section 4.2: the version line is at most 255 bytes, CR LF included.
pub const MAX_VERSION_LINE: usize = 255;

/// The longest line a server may send before its version line, terminator included.
/// RFC 4253 sets no limit; this is OpenSSH's (`SSH_MAX_BANNER_LEN`), so anything OpenSSH
/// clients accept, we accept.
pub const MAX_PREAMBLE_LINE: usize = 8192;

/// How many lines a server may send before its version line. RFC 4253 sets no limit;
/// this is OpenSSH's (`SSH_MAX_PRE_BANNER_LINES`).
pub const MAX_PREAMBLE_LINES: usize = 1024;

const PREFIX: &[u8; 4] = b"SSH-";

/// Who is to blame for a failed version exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The peer broke RFC 4253.
    Peer,
    /// The peer is well-formed but speaks a protocol version we do not.
    Incompatible,
    /// The caller misused this API or gave an invalid local setting.
    Caller,
}

/// The version exchange failed. The connection cannot continue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionError {
    /// The version line is over [`MAX_VERSION_LINE`] bytes.
    VersionLineTooLong,
    /// A line before the version line is over [`MAX_PREAMBLE_LINE`] bytes.
    PreambleLineTooLong,
    /// More than [`MAX_PREAMBLE_LINES`] lines came before the version line.
    TooManyPreambleLines,
    /// We are the server and the client sent something other than its version line
    /// first; RFC 4253 section 4.2 lets only servers send other lines.
    NotAVersionLine,
    /// The version line holds a NUL byte, which RFC 4253 section 4.2 forbids.
    NulInVersionLine,
    /// A carriage return inside the version line, not right before its line feed.
    StrayCarriageReturn,
    /// The version line does not have the shape `SSH-protoversion-softwareversion`.
    Malformed(&'static str),
    /// The peer speaks a protocol version other than 2.0 (or 1.99, which means 2.0 too).
    /// Holds the version as sent, escaped and cut to 32 bytes.
    UnsupportedVersion(String),
    /// The connection closed before the peer's version line was complete.
    ClosedBeforeVersion,
    /// Our own software name or comment cannot go into a version line.
    InvalidLocalVersion(&'static str),
    /// [`VersionReader::feed`] was called again after it returned the peer's version.
    AlreadyComplete,
}

impl VersionError {
    /// Whose fault the failure is.
    pub fn fault(&self) -> Fault {
        match self {
            Self::UnsupportedVersion(_) => Fault::Incompatible,
            Self::InvalidLocalVersion(_) | Self::AlreadyComplete => Fault::Caller,
            _ => Fault::Peer,
        }
    }

    /// The SSH_MSG_DISCONNECT reason to send, if the transport still can.
    pub fn reason(&self) -> DisconnectReason {
        match self.fault() {
            Fault::Peer if *self == Self::ClosedBeforeVersion => DisconnectReason::CONNECTION_LOST,
            Fault::Peer => DisconnectReason::PROTOCOL_ERROR,
            Fault::Incompatible => DisconnectReason::PROTOCOL_VERSION_NOT_SUPPORTED,
            Fault::Caller => DisconnectReason::BY_APPLICATION,
        }
    }
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VersionLineTooLong => write!(
                f,
                "peer sent a version line longer than {MAX_VERSION_LINE} bytes"
            ),
            Self::PreambleLineTooLong => write!(
                f,
                "peer sent a line longer than {MAX_PREAMBLE_LINE} bytes before its version line"
            ),
            Self::TooManyPreambleLines => write!(
                f,
                "peer sent more than {MAX_PREAMBLE_LINES} lines before its version line"
            ),
            Self::NotAVersionLine => {
                f.write_str("peer did not start with an SSH version line (\"SSH-2.0-...\")")
            }
            Self::NulInVersionLine => f.write_str("peer sent a version line containing a NUL byte"),
            Self::StrayCarriageReturn => {
                f.write_str("peer sent a version line with a carriage return before its end")
            }
            Self::Malformed(what) => write!(f, "peer sent a malformed version line: {what}"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "peer speaks SSH protocol version {v}, but only version 2.0 is supported"
            ),
            Self::ClosedBeforeVersion => {
                f.write_str("connection closed before the peer sent its version line")
            }
            Self::InvalidLocalVersion(what) => write!(f, "invalid local version line: {what}"),
            Self::AlreadyComplete => f.write_str("the version exchange is already complete"),
        }
    }
}

impl std::error::Error for VersionError {}

/// Builds our identification line, `SSH-2.0-software SP comment CR LF`.
///
/// RFC 4253 section 4.2: `software` must be printable US-ASCII without spaces or `-`;
/// the comment may hold spaces but, here, only printable US-ASCII too, so that no peer
/// trips over it. The whole line must fit in 255 bytes. The line without its final CR LF
/// is our half of the exchange hash (`V_C` or `V_S`).
pub fn version_line(software: &str, comment: Option<&str>) -> Result<Vec<u8>, VersionError> {
    if software.is_empty() {
        return Err(VersionError::InvalidLocalVersion(
            "the software name is empty",
        ));
    }
    if !software.bytes().all(|b| b.is_ascii_graphic() && b != b'-') {
        return Err(VersionError::InvalidLocalVersion(
            "the software name must be printable US-ASCII without spaces or '-'",
        ));
    }
    if let Some(comment) = comment {
        if comment.is_empty() {
            return Err(VersionError::InvalidLocalVersion("the comment is empty"));
        }
        if !comment.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(VersionError::InvalidLocalVersion(
                "the comment must be printable US-ASCII",
            ));
        }
    }

    let mut line = Vec::with_capacity(MAX_VERSION_LINE);
    line.extend_from_slice(b"SSH-2.0-");
    line.extend_from_slice(software.as_bytes());
    if let Some(comment) = comment {
        line.push(b' ');
        line.extend_from_slice(comment.as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    if line.len() > MAX_VERSION_LINE {
        return Err(VersionError::InvalidLocalVersion(
            "the line is longer than 255 bytes",
        ));
    }
    Ok(line)
}

/// The peer's identification line, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerVersion {
    /// The line as received, without CR LF or LF.
    line: Vec<u8>,
    protocol: &'static str,
    software_start: usize,
    software_end: usize,
    preamble_lines: usize,
}

impl PeerVersion {
    /// Checks a complete line, terminator already removed. The reader has already refused
    /// NUL, stray CR and overlong lines, and seen that it starts with `SSH-`.
    fn parse(line: Vec<u8>, preamble_lines: usize) -> Result<Self, VersionError> {
        let rest = line
            .strip_prefix(PREFIX)
            .ok_or(VersionError::NotAVersionLine)?;
        let (protocol, software_and_comments) =
            split_once(rest, b'-').ok_or(VersionError::Malformed("no '-' after the version"))?;

        // RFC 4253 section 5.1: "1.99" is a server that also speaks version 1, which is
        // version 2 as far as we are concerned.
        let protocol = match protocol {
            b"2.0" => "2.0",
            b"1.99" => "1.99",
            _ => return Err(VersionError::UnsupportedVersion(escaped(protocol, 32))),
        };

        let software = split_once(software_and_comments, b' ')
            .map_or(software_and_comments, |(software, _)| software);
        if software.is_empty() {
            return Err(VersionError::Malformed("no software version"));
        }

        // RFC 4253 also forbids '-' in the software version, but the first '-' already
        // ended the protocol version, so a later one is unambiguous; old releases of some
        // implementations send one, and refusing them would gain nothing.
        if !software.iter().all(u8::is_ascii_graphic) {
            return Err(VersionError::Malformed(
                "the software version is not printable ASCII",
            ));
        }

        // A suffix of `line` is never longer than `line`.
        let software_start = line.len() - software_and_comments.len();
        Ok(Self {
            protocol,
            software_start,
            software_end: software_start + software.len(),
            line,
            preamble_lines,
        })
    }

    /// The line exactly as received, without its CR LF or bare LF: the bytes that go into
    /// the exchange hash as `V_C` or `V_S` (RFC 4253 section 8).
    pub fn as_bytes(&self) -> &[u8] {
        &self.line
    }

    /// `"2.0"` or `"1.99"`.
    pub fn protocol(&self) -> &'static str {
        self.protocol
    }

    /// The software version, e.g. `OpenSSH_9.6p1`: printable US-ASCII, never empty.
    pub fn software(&self) -> &str {
        self.line
            .get(self.software_start..self.software_end)
            .and_then(|s| core::str::from_utf8(s).ok())
            .unwrap_or_default()
    }

    /// The comments after the first space, if the line has one. RFC 4253 puts no limit
    /// on these bytes beyond NUL, so they are raw: print them through this type's
    /// `Display`, which escapes anything unprintable.
    pub fn comments(&self) -> Option<&[u8]> {
        let after = self.line.get(self.software_end..)?;
        after.strip_prefix(b" ")
    }

    /// How many lines the server sent before its version line (zero from a client).
    pub fn preamble_lines(&self) -> usize {
        self.preamble_lines
    }
}

/// The line with every unprintable byte escaped, safe for logs and terminals.
impl fmt::Display for PeerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.line.escape_ascii())
    }
}

impl fmt::Debug for PeerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerVersion")
            .field("line", &format_args!("\"{}\"", self.line.escape_ascii()))
            .field("preamble_lines", &self.preamble_lines)
            .finish()
    }
}

/// How much of the current line has been classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// Fewer than four bytes seen, all matching `SSH-` so far.
    Undecided,
    /// Starts with `SSH-`: this is the version line.
    Version,
    /// A line a server sent before its version line; its bytes are counted and dropped.
    Preamble,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Reading,
    Done,
    Failed(VersionError),
}

/// Reads the peer's identification line from the bytes the caller received.
///
/// Created with our own [`Role`]: as a client it skips up to [`MAX_PREAMBLE_LINES`] lines
/// the server sends first (RFC 4253 section 4.2); as a server it refuses anything but the
/// version line. Feed it until it returns the peer's version or an error; after an error
/// every later call returns the same error.
#[derive(Clone, Debug)]
pub struct VersionReader {
    role: Role,
    state: State,
    line_kind: Line,
    /// Bytes of the current line so far, terminator not included.
    line_len: usize,
    /// The current line while it may be the version line: at most [`MAX_VERSION_LINE`]
    /// bytes. Empty during a preamble line.
    line: Vec<u8>,
    preamble_lines: usize,
}

impl VersionReader {
    /// A reader for a connection where we play `role`.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            state: State::Reading,
            line_kind: Line::Undecided,
            line_len: 0,
            line: Vec::new(),
            preamble_lines: 0,
        }
    }

    /// Takes received bytes.
    ///
    /// `Ok(None)`: all of `input` was consumed (at most the current line's first 255 bytes
    /// are kept) and the version line is not complete yet; feed more.
    ///
    /// `Ok(Some((consumed, version)))`: the version line ended after the first `consumed`
    /// bytes of `input`. The bytes after them, if any, are the peer's first binary packets;
    /// they were not looked at and stay with the caller.
    pub fn feed(&mut self, input: &[u8]) -> Result<Option<(usize, PeerVersion)>, VersionError> {
        match &self.state {
            State::Reading => {}
            State::Done => return Err(VersionError::AlreadyComplete),
            State::Failed(e) => return Err(e.clone()),
        }
        match self.scan(input) {
            Ok(Some(done)) => {
                self.state = State::Done;
                Ok(Some(done))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.line = Vec::new();
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// The error to report when the connection closes before the version line is
    /// complete.
    pub fn closed(&self) -> VersionError {
        match &self.state {
            State::Failed(e) => e.clone(),
            _ => VersionError::ClosedBeforeVersion,
        }
    }

    /// Bytes held between calls: never more than [`MAX_VERSION_LINE`].
    pub fn buffered_len(&self) -> usize {
        self.line.len()
    }

    fn scan(&mut self, input: &[u8]) -> Result<Option<(usize, PeerVersion)>, VersionError> {
        for (i, &byte) in input.iter().enumerate() {
            if byte == b'\n' {
                if let Some(version) = self.end_line()? {
                    return Ok(Some((i + 1, version)));
                }
                continue;
            }

            self.line_len += 1;
            match self.line_kind {
                Line::Undecided => {
                    self.line.push(byte);
                    if !PREFIX.starts_with(&self.line) {
                        self.start_preamble_line()?;
                    } else if self.line.len() == PREFIX.len() {
                        self.line_kind = Line::Version;
                        self.line.reserve_exact(MAX_VERSION_LINE - PREFIX.len());
                    }
                }
                Line::Version => self.version_byte(byte)?,
                Line::Preamble => {
                    // Adding the line feed still to come must keep the line within bounds.
                    if self.line_len >= MAX_PREAMBLE_LINE {
                        return Err(VersionError::PreambleLineTooLong);
                    }
                }
            }
        }
        Ok(None)
    }

    fn version_byte(&mut self, byte: u8) -> Result<(), VersionError> {
        // Like OpenSSH: a CR is only ever the first half of the terminator.
        if self.line.last() == Some(&b'\r') {
            return Err(VersionError::StrayCarriageReturn);
        }
        if byte == 0 {
            return Err(VersionError::NulInVersionLine);
        }

        // The line feed still to come counts towards the 255 bytes.
        if self.line.len() >= MAX_VERSION_LINE - 1 {
            return Err(VersionError::VersionLineTooLong);
        }
        self.line.push(byte);
        Ok(())
    }

    /// The current line turned out not to start with `SSH-`.
    fn start_preamble_line(&mut self) -> Result<(), VersionError> {
        if self.role.is_server() {
            return Err(VersionError::NotAVersionLine);
        }
        if self.preamble_lines >= MAX_PREAMBLE_LINES {
            return Err(VersionError::TooManyPreambleLines);
        }
        self.line_kind = Line::Preamble;
        self.line.clear();
        Ok(())
    }

    /// A line feed arrived.
    fn end_line(&mut self) -> Result<Option<PeerVersion>, VersionError> {
        match self.line_kind {
            Line::Undecided => self.start_preamble_line()?,
            Line::Preamble => {}
            Line::Version => {
                let mut line = core::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return PeerVersion::parse(line, self.preamble_lines).map(Some);
            }
        }

        // A preamble line ended; its count is bounded by `start_preamble_line`.
        self.preamble_lines += 1;
        self.line_kind = Line::Undecided;
        self.line_len = 0;
        Ok(None)
    }
}

fn split_once(bytes: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == sep)?;
    let (head, tail) = bytes.split_at_checked(at)?;
    Some((head, tail.get(1..)?))
}

/// Peer bytes made safe for a message: escaped, and cut to `max` input bytes.
fn escaped(bytes: &[u8], max: usize) -> String {
    let cut = bytes.get(..max).unwrap_or(bytes);
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

    type Fed = Result<Option<(usize, PeerVersion)>, VersionError>;

    const OPENSSH: &[u8] = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n";

    /// Feeds `input` in one call.
    fn read(role: Role, input: &[u8]) -> Fed {
        VersionReader::new(role).feed(input)
    }

    /// Feeds `input` and expects the version line to complete.
    fn complete(role: Role, input: &[u8]) -> (usize, PeerVersion) {
        match read(role, input) {
            Ok(Some(done)) => done,
            other => panic!("expected a complete version line, got {other:?}"),
        }
    }

    /// Feeds `input` in `chunk`-byte pieces; returns the result and the largest buffer
    /// the reader held between calls.
    fn read_chunked(role: Role, input: &[u8], chunk: usize) -> (Fed, usize) {
        let mut reader = VersionReader::new(role);
        let mut held = 0;
        let mut offset = 0;
        for piece in input.chunks(chunk) {
            match reader.feed(piece) {
                Ok(None) => held = held.max(reader.buffered_len()),
                Ok(Some((consumed, version))) => {
                    return (Ok(Some((offset + consumed, version))), held);
                }
                Err(e) => return (Err(e), held),
            }
            offset += piece.len();
        }
        (Ok(None), held)
    }

    fn line_of_len(total: usize, terminator: &[u8]) -> Vec<u8> {
        let mut line = b"SSH-2.0-x ".to_vec();
        line.resize(total - terminator.len(), b'c');
        line.extend_from_slice(terminator);
        line
    }

    #[test]
    fn openssh_banner() {
        let (consumed, v) = complete(Role::Client, OPENSSH);
        assert_eq!(consumed, OPENSSH.len());
        assert_eq!(v.as_bytes(), b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10");
        assert_eq!(v.protocol(), "2.0");
        assert_eq!(v.software(), "OpenSSH_9.2p1");
        assert_eq!(v.comments(), Some(&b"Debian-2+deb12u10"[..]));
        assert_eq!(v.preamble_lines(), 0);
        assert_eq!(v.to_string(), "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10");
    }

    #[test]
    fn without_comments() {
        let (_, v) = complete(Role::Server, b"SSH-2.0-PuTTY_Release_0.81\r\n");
        assert_eq!(v.software(), "PuTTY_Release_0.81");
        assert_eq!(v.comments(), None);

        // A trailing space is an empty comment, kept for the hash.
        let (_, v) = complete(Role::Server, b"SSH-2.0-Go \r\n");
        assert_eq!(v.software(), "Go");
        assert_eq!(v.comments(), Some(&b""[..]));
        assert_eq!(v.as_bytes(), b"SSH-2.0-Go ");
    }

    #[test]
    fn trailing_packet_bytes_are_left_to_the_caller() {
        let mut input = OPENSSH.to_vec();
        let packet = [0, 0, 1, 0x2c, 0x0a, 0x14, 0xde, 0xad];
        input.extend_from_slice(&packet);

        let (consumed, v) = complete(Role::Server, &input);
        assert_eq!(consumed, OPENSSH.len());
        assert_eq!(&input[consumed..], packet);
        assert_eq!(v.software(), "OpenSSH_9.2p1");
    }

    #[test]
    fn bare_lf_is_accepted_and_hashed_as_received() {
        let (consumed, v) = complete(Role::Client, b"SSH-2.0-dropbear_2022.83\nrest");
        assert_eq!(consumed, 25);
        assert_eq!(v.as_bytes(), b"SSH-2.0-dropbear_2022.83");

        // Only the terminator is removed: inner spacing and tabs are hashed as sent.
        let (_, v) = complete(Role::Client, b"SSH-2.0-x  two\tspaces \r\n");
        assert_eq!(v.as_bytes(), b"SSH-2.0-x  two\tspaces ");
        assert_eq!(v.comments(), Some(&b" two\tspaces "[..]));
        assert_eq!(v.to_string(), "SSH-2.0-x  two\\tspaces ");
    }

    #[test]
    fn ssh_1_99_is_version_2() {
        let (_, v) = complete(Role::Client, b"SSH-1.99-Cisco-1.25\r\n");
        assert_eq!(v.protocol(), "1.99");
        assert_eq!(v.software(), "Cisco-1.25");
    }

    #[test]
    fn other_protocol_versions_are_refused() {
        for (line, shown) in [
            (&b"SSH-1.5-OpenSSH_3.4\r\n"[..], "1.5"),
            (b"SSH-1.0-x\r\n", "1.0"),
            (b"SSH-3.0-x\r\n", "3.0"),
            (b"SSH-2.00-x\r\n", "2.00"),
            (b"SSH-\x1b[2J-x\r\n", "\\x1b[2J"),
        ] {
            let err = read(Role::Client, line).unwrap_err();
            assert_eq!(err, VersionError::UnsupportedVersion(shown.into()));
            assert_eq!(
                err.reason(),
                DisconnectReason::PROTOCOL_VERSION_NOT_SUPPORTED
            );
            assert_eq!(err.fault(), Fault::Incompatible);
        }
        let err = read(Role::Server, b"SSH-1.5-OpenSSH_3.4\r\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "peer speaks SSH protocol version 1.5, but only version 2.0 is supported"
        );
    }

    #[test]
    fn malformed_version_lines() {
        for line in [
            &b"SSH-2.0\r\n"[..],
            b"SSH-2.0-\r\n",
            b"SSH-2.0- comment\r\n",
            b"SSH-2.0-soft\x7fware\r\n",
            b"SSH-2.0-caf\xc3\xa9\r\n",
            b"SSH-\r\n",
        ] {
            let err = read(Role::Client, line).unwrap_err();
            assert!(
                matches!(err, VersionError::Malformed(_)),
                "{line:?}: {err:?}"
            );
            assert_eq!(err.reason(), DisconnectReason::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn version_line_length_limit() {
        for terminator in [&b"\r\n"[..], b"\n"] {
            let ok = line_of_len(MAX_VERSION_LINE, terminator);
            let (consumed, v) = complete(Role::Server, &ok);
            assert_eq!(consumed, MAX_VERSION_LINE);
            assert_eq!(v.as_bytes().len(), MAX_VERSION_LINE - terminator.len());

            let long = line_of_len(MAX_VERSION_LINE + 1, terminator);
            let err = read(Role::Server, &long).unwrap_err();
            assert_eq!(err, VersionError::VersionLineTooLong);
            assert_eq!(
                err.to_string(),
                "peer sent a version line longer than 255 bytes"
            );
        }

        // The reader gives up as soon as the line cannot end in time, without waiting
        // for a line feed that may never come, and never holds more than 255 bytes.
        let endless = vec![b'a'; 10_000];
        let mut reader = VersionReader::new(Role::Client);
        assert_eq!(reader.feed(b"SSH-2.0-").unwrap(), None);
        let mut failed = false;
        for byte in &endless {
            match reader.feed(std::slice::from_ref(byte)) {
                Ok(None) => assert!(reader.buffered_len() < MAX_VERSION_LINE),
                Err(e) => {
                    assert_eq!(e, VersionError::VersionLineTooLong);
                    failed = true;
                    break;
                }
                Ok(other) => panic!("{other:?}"),
            }
        }
        assert!(failed);
        assert_eq!(reader.buffered_len(), 0);
    }

    #[test]
    fn nul_and_stray_cr_are_refused() {
        let err = read(Role::Client, b"SSH-2.0-Open\0SSH\r\n").unwrap_err();
        assert_eq!(err, VersionError::NulInVersionLine);
        assert_eq!(err.reason(), DisconnectReason::PROTOCOL_ERROR);
        assert_eq!(err.fault(), Fault::Peer);

        // Also in the comments, and a NUL right where the terminator should be.
        assert_eq!(
            read(Role::Server, b"SSH-2.0-x a\0b\r\n"),
            Err(VersionError::NulInVersionLine)
        );
        assert_eq!(
            read(Role::Server, b"SSH-2.0-x\0\r\n"),
            Err(VersionError::NulInVersionLine)
        );

        assert_eq!(
            read(Role::Client, b"SSH-2.0-x\ry\r\n"),
            Err(VersionError::StrayCarriageReturn)
        );
        assert_eq!(
            read(Role::Client, b"SSH-2.0-x\r\r\n"),
            Err(VersionError::StrayCarriageReturn)
        );
    }

    #[test]
    fn client_skips_server_preamble_lines() {
        let input = b"Welcome to the bastion\r\n\
            \r\n\
            SSH is not a prefix of this line\n\
            SSH\n\
            SSHX-1\r\n\
            SSH-2.0-OpenSSH_9.6\r\n";
        let (consumed, v) = complete(Role::Client, input);
        assert_eq!(consumed, input.len());
        assert_eq!(v.preamble_lines(), 5);
        assert_eq!(v.software(), "OpenSSH_9.6");

        // Preamble lines may contain anything but a line feed: they are never looked at.
        let (_, v) = complete(Role::Client, b"\0\r\x1b[31m\xff\nSSH-2.0-x\r\n");
        assert_eq!(v.preamble_lines(), 1);
    }

    #[test]
    fn preamble_line_count_limit() {
        let mut input = b"hello\r\n".repeat(MAX_PREAMBLE_LINES);
        input.extend_from_slice(OPENSSH);
        let (_, v) = complete(Role::Client, &input);
        assert_eq!(v.preamble_lines(), MAX_PREAMBLE_LINES);

        let mut input = b"hello\r\n".repeat(MAX_PREAMBLE_LINES + 1);
        input.extend_from_slice(OPENSSH);
        let err = read(Role::Client, &input).unwrap_err();
        assert_eq!(err, VersionError::TooManyPreambleLines);
        assert_eq!(
            err.to_string(),
            "peer sent more than 1024 lines before its version line"
        );

        // Empty lines count too.
        let input = b"\n".repeat(MAX_PREAMBLE_LINES + 1);
        assert_eq!(
            read(Role::Client, &input),
            Err(VersionError::TooManyPreambleLines)
        );
    }

    #[test]
    fn preamble_line_length_limit() {
        for terminator in [&b"\r\n"[..], b"\n"] {
            let mut line = vec![b'x'; MAX_PREAMBLE_LINE - terminator.len()];
            line.extend_from_slice(terminator);
            let mut input = line.clone();
            input.extend_from_slice(OPENSSH);

            // Fed in pieces, the reader keeps nothing of a preamble line.
            let (result, held) = read_chunked(Role::Client, &input, 1000);
            assert!(matches!(result, Ok(Some(_))), "{result:?}");
            assert!(held <= PREFIX.len(), "held {held} bytes");

            let mut input = vec![b'x'];
            input.extend_from_slice(&line);
            let err = read(Role::Client, &input).unwrap_err();
            assert_eq!(err, VersionError::PreambleLineTooLong);
        }

        // An endless line fails at the limit, not when memory runs out.
        let mut reader = VersionReader::new(Role::Client);
        let chunk = [b'z'; 4096];
        assert_eq!(reader.feed(&chunk), Ok(None));
        assert_eq!(reader.feed(&chunk[..4095]), Ok(None));
        assert_eq!(reader.feed(b"z"), Err(VersionError::PreambleLineTooLong));
        assert_eq!(reader.buffered_len(), 0);
    }

    #[test]
    fn server_refuses_lines_before_the_version() {
        for input in [
            &b"hello\r\nSSH-2.0-x\r\n"[..],
            b"\r\nSSH-2.0-x\r\n",
            b"\nSSH-2.0-x\r\n",
            b"SSH\r\nSSH-2.0-x\r\n",
            b"GET / HTTP/1.1\r\n",
            b"ssh-2.0-x\r\n",
        ] {
            let err = read(Role::Server, input).unwrap_err();
            assert_eq!(err, VersionError::NotAVersionLine, "{input:?}");
            assert_eq!(err.reason(), DisconnectReason::PROTOCOL_ERROR);
        }

        // Refused at the first byte that cannot begin "SSH-", without waiting for more.
        let mut reader = VersionReader::new(Role::Server);
        assert_eq!(reader.feed(b"SS"), Ok(None));
        assert_eq!(reader.feed(b"X"), Err(VersionError::NotAVersionLine));
    }

    #[test]
    fn banner_split_at_every_byte_boundary() {
        let mut stream = b"preamble one\r\ntwo\n".to_vec();
        stream.extend_from_slice(OPENSSH);
        let packet = [0u8, 0, 0, 12, 10, 0x14, 1, 2, 3];
        stream.extend_from_slice(&packet);
        let (whole, _) = complete(Role::Client, &stream);
        assert_eq!(&stream[whole..], packet);

        for split in 0..=stream.len() {
            let (head, tail) = stream.split_at(split);
            let mut reader = VersionReader::new(Role::Client);
            let (consumed, version) = match reader.feed(head).unwrap() {
                Some(done) => done,
                None => match reader.feed(tail).unwrap() {
                    Some((consumed, version)) => (head.len() + consumed, version),
                    None => panic!("split {split}: never completed"),
                },
            };
            assert_eq!(consumed, whole, "split {split}");
            assert_eq!(
                version.as_bytes(),
                b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"
            );
            assert_eq!(version.preamble_lines(), 2);
        }

        // And one byte at a time.
        let (result, held) = read_chunked(Role::Client, &stream, 1);
        assert!(matches!(result, Ok(Some((consumed, _))) if consumed == whole));
        assert!(held < MAX_VERSION_LINE);
    }

    #[test]
    fn after_the_end() {
        let mut reader = VersionReader::new(Role::Client);
        assert!(matches!(reader.feed(OPENSSH), Ok(Some(_))));
        let err = reader.feed(b"more").unwrap_err();
        assert_eq!(err, VersionError::AlreadyComplete);
        assert_eq!(err.fault(), Fault::Caller);

        // An error sticks.
        let mut reader = VersionReader::new(Role::Server);
        assert_eq!(reader.feed(b"nope"), Err(VersionError::NotAVersionLine));
        assert_eq!(reader.feed(OPENSSH), Err(VersionError::NotAVersionLine));
        assert_eq!(reader.closed(), VersionError::NotAVersionLine);
    }

    #[test]
    fn closed_before_the_version() {
        let mut reader = VersionReader::new(Role::Client);
        assert_eq!(reader.feed(b"SSH-2.0-Open"), Ok(None));
        let err = reader.closed();
        assert_eq!(err, VersionError::ClosedBeforeVersion);
        assert_eq!(err.reason(), DisconnectReason::CONNECTION_LOST);
        assert_eq!(reader.feed(&[]), Ok(None));
    }

    #[test]
    fn our_version_line() {
        assert_eq!(
            version_line("gateway_0.1", None).unwrap(),
            b"SSH-2.0-gateway_0.1\r\n"
        );
        let line = version_line("gateway_0.1", Some("built by CI")).unwrap();
        assert_eq!(line, b"SSH-2.0-gateway_0.1 built by CI\r\n");

        // What we send, we accept.
        let (consumed, v) = complete(Role::Server, &line);
        assert_eq!(consumed, line.len());
        assert_eq!(v.software(), "gateway_0.1");
        assert_eq!(v.comments(), Some(&b"built by CI"[..]));

        for (software, comment) in [
            ("", None),
            ("gate way", None),
            ("gateway-0.1", None),
            ("gat\u{e9}way", None),
            ("gateway\t", None),
            ("gateway", Some("")),
            ("gateway", Some("tab\there")),
            ("gateway", Some("new\r\nline")),
        ] {
            let err = version_line(software, comment).unwrap_err();
            assert!(
                matches!(err, VersionError::InvalidLocalVersion(_)),
                "{software:?}"
            );
            assert_eq!(err.fault(), Fault::Caller);
        }

        // 255 bytes with CR LF is the limit.
        let software = "s".repeat(MAX_VERSION_LINE - 10);
        assert_eq!(
            version_line(&software, None).unwrap().len(),
            MAX_VERSION_LINE
        );
        let software = "s".repeat(MAX_VERSION_LINE - 9);
        assert!(version_line(&software, None).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_or_hoard(
            input in proptest::collection::vec(any::<u8>(), 0..600),
            chunk in 1usize..64,
            server in any::<bool>(),
        ) {
            let role = if server { Role::Server } else { Role::Client };
            let (result, held) = read_chunked(role, &input, chunk);
            prop_assert!(held <= MAX_VERSION_LINE);
            if let Ok(Some((consumed, version))) = result {
                prop_assert!(consumed <= input.len());
                prop_assert_eq!(input.get(consumed - 1), Some(&b'\n'));
                prop_assert!(version.as_bytes().starts_with(b"SSH-"));
            }
        }

        #[test]
        fn chunking_does_not_change_the_outcome(
            preamble in proptest::collection::vec("[ -~]{0,40}", 0..5),
            software in "[!-~]{1,30}",
            tail in proptest::collection::vec(any::<u8>(), 0..20),
            chunk in 1usize..50,
        ) {
            let mut input = Vec::new();
            for line in &preamble {
                input.extend_from_slice(line.as_bytes());
                input.extend_from_slice(b"\r\n");
            }
            input.extend_from_slice(b"SSH-2.0-");
            input.extend_from_slice(software.as_bytes());
            input.extend_from_slice(b"\r\n");
            input.extend_from_slice(&tail);

            let whole = read(Role::Client, &input);
            let (pieces, _) = read_chunked(Role::Client, &input, chunk);
            prop_assert_eq!(whole, pieces);
        }
    }
}
