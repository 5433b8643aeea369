//! RFC 4251 section 5 data types, read through a checked view and written into a `Vec`.
//!
//! [`Reader`] never panics and never trusts a length it has not checked against the bytes
//! it holds: every accessor returns [`WireError`] on a short or malformed field. Nothing
//! here allocates; strings come back as borrowed slices of the packet.

use core::fmt;

/// A field could not be read: the packet is truncated, malformed or has trailing bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireError {
    /// What was being read when the packet ran out or broke a rule.
    pub what: &'static str,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message: bad {}", self.what)
    }
}

impl std::error::Error for WireError {}

fn err(what: &'static str) -> WireError {
    WireError { what }
}

/// A checked cursor over a message body.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Fails if anything is left: trailing bytes are a parse error for the message.
    pub fn finish(&self) -> Result<(), WireError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(err("trailing bytes"))
        }
    }

    /// Takes exactly `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if n > self.rest.len() {
            return Err(err(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Takes exactly `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let bytes = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// RFC 4251: any non-zero byte is true.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, WireError> {
        Ok(self.u8(what)? != 0)
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A `string`: a u32 length and that many bytes. The length is checked against the
    /// bytes present before anything is taken.
    pub fn string(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.u32(what)?;
        let len = usize::try_from(len).map_err(|_| err(what))?;
        self.bytes(len, what)
    }

    /// A `string` that must be UTF-8 (RFC 4251 section 5 allows ISO-10646 UTF-8 text).
    pub fn utf8(&mut self, what: &'static str) -> Result<&'a str, WireError> {
        core::str::from_utf8(self.string(what)?).map_err(|_| err(what))
    }

    /// A `name-list`: comma-separated US-ASCII names, none empty, none with a comma or a
    /// control byte (RFC 4251 section 5).
    pub fn name_list(&mut self, what: &'static str) -> Result<NameList<'a>, WireError> {
        NameList::parse(self.string(what)?).ok_or(err(what))
    }

    /// An `mpint` known to be non-negative, returned as its magnitude without leading
    /// zero bytes. Negative values and non-minimal encodings are rejected, as RFC 4251
    /// requires of the sender.
    pub fn mpint_positive(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let raw = self.string(what)?;
        match raw {
            [] => Ok(raw),
            [first, ..] if first & 0x80 != 0 => Err(err(what)),
            [0, next, ..] if next & 0x80 == 0 => Err(err(what)),
            [0] => Err(err(what)),
            [0, rest @ ..] => Ok(rest),
            _ => Ok(raw),
        }
    }
}

/// A validated `name-list`, iterated without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameList<'a>(&'a str);

impl<'a> NameList<'a> {
    /// Checks the list: printable US-ASCII only, no empty names. An empty list is valid.
    pub fn parse(raw: &'a [u8]) -> Option<Self> {
        let text = core::str::from_utf8(raw).ok()?;
        if text.is_empty() {
            return Some(Self(text));
        }
        let printable = text.bytes().all(|b| (0x21..=0x7e).contains(&b));
        let no_empty = text.split(',').all(|name| !name.is_empty());
        (printable && no_empty).then_some(Self(text))
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + Clone + use<'a> {
        self.0.split(',').filter(|n| !n.is_empty())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// Appends RFC 4251 types to a buffer.
pub trait Writer {
    fn put_u8(&mut self, v: u8);
    fn put_bool(&mut self, v: bool);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_raw(&mut self, v: &[u8]);
    /// A `string`. Panics only if `v` is over 4 GiB, which no caller can produce.
    fn put_string(&mut self, v: &[u8]);
    /// A `name-list` from names that the caller guarantees are valid.
    fn put_name_list<'n>(&mut self, names: impl IntoIterator<Item = &'n str>);
    /// An `mpint` from a non-negative big-endian magnitude (leading zeros allowed).
    fn put_mpint(&mut self, magnitude: &[u8]);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }

    fn put_bool(&mut self, v: bool) {
        self.push(u8::from(v));
    }

    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_raw(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }

    fn put_string(&mut self, v: &[u8]) {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.put_u32(len);
        self.extend_from_slice(v);
    }

    fn put_name_list<'n>(&mut self, names: impl IntoIterator<Item = &'n str>) {
        let at = self.len();
        self.put_u32(0);
        for (i, name) in names.into_iter().enumerate() {
            if i > 0 {
                self.push(b',');
            }
            self.extend_from_slice(name.as_bytes());
        }
        let len = u32::try_from(self.len() - at - 4).unwrap_or(u32::MAX);
        self[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    fn put_mpint(&mut self, magnitude: &[u8]) {
        let start = magnitude
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(magnitude.len());
        let digits = &magnitude[start..];
        let sign_pad = digits.first().is_some_and(|&b| b & 0x80 != 0);
        let len = digits.len() + usize::from(sign_pad);
        self.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
        if sign_pad {
            self.push(0);
        }
        self.extend_from_slice(digits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_length_past_end_is_an_error() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        assert_eq!(r.string("s"), Err(WireError { what: "s" }));
        let mut r = Reader::new(&[0, 0, 0, 4, 1, 2, 3]);
        assert!(r.string("s").is_err());
        let mut r = Reader::new(&[0, 0]);
        assert!(r.u32("n").is_err());
    }

    #[test]
    fn trailing_bytes_fail_finish() {
        let mut r = Reader::new(&[1, 2]);
        r.u8("a").unwrap();
        assert!(r.finish().is_err());
        r.u8("b").unwrap();
        assert!(r.finish().is_ok());
    }

    #[test]
    fn mpint_round_trip_and_rfc4251_examples() {
        // The examples of RFC 4251 section 5.
        let mut v = Vec::new();
        v.put_mpint(&[]);
        assert_eq!(v, [0, 0, 0, 0]);
        v.clear();
        v.put_mpint(&[0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]);
        assert_eq!(
            v,
            [0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]
        );
        v.clear();
        v.put_mpint(&[0, 0, 0x80]);
        assert_eq!(v, [0, 0, 0, 2, 0, 0x80]);
        assert_eq!(Reader::new(&v).mpint_positive("m").unwrap(), [0x80]);

        // Negative and non-minimal encodings are refused.
        assert!(
            Reader::new(&[0, 0, 0, 1, 0xed])
                .mpint_positive("m")
                .is_err()
        );
        assert!(
            Reader::new(&[0, 0, 0, 2, 0, 0x7f])
                .mpint_positive("m")
                .is_err()
        );
        assert!(Reader::new(&[0, 0, 0, 1, 0]).mpint_positive("m").is_err());
    }

    #[test]
    fn name_lists() {
        let mut v = Vec::new();
        v.put_name_list(["zlib", "none"]);
        let mut r = Reader::new(&v);
        let list = r.name_list("l").unwrap();
        assert_eq!(list.iter().collect::<Vec<_>>(), ["zlib", "none"]);
        assert!(list.contains("none"));

        assert!(NameList::parse(b"").unwrap().iter().next().is_none());
        assert!(NameList::parse(b"a,,b").is_none());
        assert!(NameList::parse(b"a,").is_none());
        assert!(NameList::parse(b"a\x01b").is_none());
        assert!(NameList::parse(b"a b").is_none());
        assert!(NameList::parse(&[0xff]).is_none());
    }
}
