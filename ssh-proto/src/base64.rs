//! Base64 with the standard alphabet (RFC 4648 section 4), padded and unpadded.
//!
//! OpenSSH writes public keys in `.pub`, `authorized_keys` and `known_hosts` files as
//! padded base64, and prints fingerprints as `SHA256:` followed by unpadded base64. The
//! decoders here are strict on purpose: whitespace, the URL-safe alphabet, misplaced `=`
//! and non-zero trailing bits (RFC 4648 section 3.5) are errors, so every byte string has
//! exactly one accepted encoding and two files that name the same key compare equal as
//! text. Callers split their lines into fields before decoding.
//!
//! ```
//! use ssh_proto::base64;
//! assert_eq!(base64::encode(b"foo"), "Zm9v");
//! assert_eq!(base64::encode(b"fo"), "Zm8=");
//! assert_eq!(base64::encode_unpadded(b"fo"), "Zm8");
//! assert_eq!(base64::decode("Zm8=").unwrap(), b"fo");
//! assert!(base64::decode("Zm8").is_err());
//! ```

use core::fmt;

/// The input is not canonical base64 of the expected form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base64Error {
    /// A byte outside the alphabet, or an `=` where padding cannot be.
    InvalidByte { offset: usize, byte: u8 },
    /// The length cannot be the encoding of any byte string: a multiple of 4 plus 1
    /// without padding, or not a multiple of 4 with padding.
    InvalidLength(usize),
    /// The bits after the last whole byte are not zero, so the text is not the one
    /// encoding of its bytes.
    NonCanonical,
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidByte { offset, byte } => write!(
                f,
                "invalid base64: unexpected character {:?} at offset {offset}",
                char::from(*byte)
            ),
            Self::InvalidLength(len) => {
                write!(
                    f,
                    "invalid base64: {len} characters cannot encode whole bytes"
                )
            }
            Self::NonCanonical => f.write_str("invalid base64: non-zero bits after the last byte"),
        }
    }
}

impl std::error::Error for Base64Error {}

/// Encodes with `=` padding, as key files and `known_hosts` hold keys.
pub fn encode(data: &[u8]) -> String {
    encode_with(data, true)
}

/// Encodes without padding, as OpenSSH prints `SHA256:` fingerprints.
pub fn encode_unpadded(data: &[u8]) -> String {
    encode_with(data, false)
}

/// Decodes padded base64: the length must be a multiple of 4, with one or two `=` at the
/// end exactly when the data does not fill the last group.
pub fn decode(input: impl AsRef<[u8]>) -> Result<Vec<u8>, Base64Error> {
    let input = input.as_ref();
    if input.len() % 4 != 0 {
        return Err(Base64Error::InvalidLength(input.len()));
    }
    let body = match input {
        [body @ .., b'=', b'='] => body,
        [body @ .., b'='] => body,
        _ => input,
    };

    // `body` now ends in a group of 2 or 3 symbols when padding was present, which the
    // unpadded decoder handles; a third `=` would sit inside the body and be refused there.
    decode_unpadded(body)
}

/// Decodes unpadded base64: any `=` is an error.
pub fn decode_unpadded(input: impl AsRef<[u8]>) -> Result<Vec<u8>, Base64Error> {
    let input = input.as_ref();
    if input.len() % 4 == 1 {
        return Err(Base64Error::InvalidLength(input.len()));
    }

    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut symbols = 0u8;
    for (offset, &byte) in input.iter().enumerate() {
        let value = symbol_value(byte).ok_or(Base64Error::InvalidByte { offset, byte })?;
        acc = (acc << 6) | u32::from(value);
        symbols += 1;
        if symbols == 4 {
            let [_, a, b, c] = acc.to_be_bytes();
            out.extend_from_slice(&[a, b, c]);
            acc = 0;
            symbols = 0;
        }
    }

    // A trailing group of 2 symbols carries 12 bits for one byte, 3 symbols carry 18 bits
    // for two; the spare bits must be zero (RFC 4648 section 3.5).
    match symbols {
        2 if acc & 0xf == 0 => out.push((acc >> 4) as u8),
        3 if acc & 0x3 == 0 => {
            let [_, _, a, b] = (acc >> 2).to_be_bytes();
            out.extend_from_slice(&[a, b]);
        }
        0 => {}
        _ => return Err(Base64Error::NonCanonical),
    }
    Ok(out)
}

fn encode_with(data: &[u8], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3).saturating_mul(4));
    for chunk in data.chunks(3) {
        let (group, symbols) = match *chunk {
            [a, b, c] => (u32::from_be_bytes([0, a, b, c]), 4),
            [a, b] => (u32::from_be_bytes([0, a, b, 0]), 3),
            [a] => (u32::from_be_bytes([0, a, 0, 0]), 2),
            _ => continue,
        };
        for i in 0..symbols {
            out.push(symbol((group >> (18 - 6 * i)) as u8));
        }
        if pad {
            for _ in symbols..4 {
                out.push('=');
            }
        }
    }
    out
}

/// The symbol for the low six bits of `v`.
fn symbol(v: u8) -> char {
    let v = v & 0x3f;
    char::from(match v {
        0..=25 => b'A' + v,
        26..=51 => b'a' + (v - 26),
        52..=61 => b'0' + (v - 52),
        62 => b'+',
        _ => b'/',
    })
}

fn symbol_value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// RFC 4648 section 10.
    const RFC4648: [(&str, &str); 7] = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn rfc4648_vectors() {
        for (plain, encoded) in RFC4648 {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());

            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(encode_unpadded(plain.as_bytes()), unpadded);
            assert_eq!(decode_unpadded(unpadded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn whole_alphabet() {
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        assert!(text.starts_with("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKiss"));
        assert!(text.ends_with("+/w=="));
        assert_eq!(decode(&text).unwrap(), all);
    }

    #[test]
    fn bad_characters_are_refused() {
        for (text, offset) in [
            ("Zm9v Yg", 4),
            ("Zm9v\nYg=", 4),
            ("Zm-v", 2),
            ("Zm_v", 2),
            ("Zm9\u{e9}a", 3),
            ("Zm9\0", 3),
        ] {
            let err = decode_unpadded(text).unwrap_err();
            assert!(
                matches!(err, Base64Error::InvalidByte { offset: o, .. } if o == offset),
                "{text:?}: {err:?}"
            );
        }
    }

    #[test]
    fn padding_rules() {
        // Padding is required by `decode` and refused by `decode_unpadded`.
        assert_eq!(decode("Zg"), Err(Base64Error::InvalidLength(2)));
        assert_eq!(decode("Zm8"), Err(Base64Error::InvalidLength(3)));
        assert!(matches!(
            decode_unpadded("Zg=="),
            Err(Base64Error::InvalidByte { offset: 2, .. })
        ));

        // Misplaced or excess padding.
        for text in ["Zg=a", "Z===", "====", "=Zg=", "Zm9v=", "Zm9v===="] {
            assert!(decode(text).is_err(), "{text:?}");
        }

        // A last group of one symbol carries six bits: never a whole byte.
        assert_eq!(decode_unpadded("Zm9vY"), Err(Base64Error::InvalidLength(5)));
    }

    #[test]
    fn trailing_bits_must_be_zero() {
        // "Zg==" is 'f'; "Zh==" has the same first byte but a stray low bit.
        assert_eq!(decode("Zh=="), Err(Base64Error::NonCanonical));
        assert_eq!(decode("Zm9="), Err(Base64Error::NonCanonical));
        assert_eq!(decode_unpadded("Zm9"), Err(Base64Error::NonCanonical));
        assert_eq!(decode_unpadded("Zm8").unwrap(), b"fo");
    }

    #[test]
    fn errors_read_as_sentences() {
        let msg = decode("Zm-v").unwrap_err().to_string();
        assert_eq!(msg, "invalid base64: unexpected character '-' at offset 2");
        assert_eq!(
            Base64Error::InvalidLength(5).to_string(),
            "invalid base64: 5 characters cannot encode whole bytes"
        );
    }

    proptest! {
        #[test]
        fn round_trips(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let padded = encode(&data);
            prop_assert_eq!(padded.len() % 4, 0);
            prop_assert_eq!(decode(&padded).unwrap(), data.clone());

            let unpadded = encode_unpadded(&data);
            prop_assert_eq!(unpadded.as_str(), padded.trim_end_matches('='));
            prop_assert_eq!(decode_unpadded(&unpadded).unwrap(), data);
        }

        #[test]
        fn arbitrary_text_never_panics(text in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Whatever decodes must encode back to the same text: one encoding per value.
            if let Ok(bytes) = decode(&text) {
                prop_assert_eq!(encode(&bytes).into_bytes(), text.clone());
            }
            if let Ok(bytes) = decode_unpadded(&text) {
                prop_assert_eq!(encode_unpadded(&bytes).into_bytes(), text);
            }
        }
    }
}
