//! Encodings and comparisons both providers need around their primitives.

use crate::wire::Reader;

/// Compares two byte strings in time that depends only on their lengths, which are public
/// (the MAC length is fixed by the negotiated algorithm). `black_box` stops the compiler
/// from turning the loop into an early exit at the first difference.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff = core::hint::black_box(diff | (x ^ y));
    }
    diff == 0
}

/// Turns the SSH signature blob `mpint r || mpint s` (RFC 5656 section 3.1.2) into the
/// fixed-width `r || s` of 32 bytes each.
///
/// Negative and non-minimal mpints, values wider than 32 bytes and trailing bytes are all
/// refused. Range checks against the group order are left to `ring`.
pub(crate) fn ecdsa_fixed_signature(sig: &[u8]) -> Option<[u8; 64]> {
    let mut blob = Reader::new(sig);
    let r = blob.mpint_positive("ecdsa r").ok()?;
    let s = blob.mpint_positive("ecdsa s").ok()?;
    blob.finish().ok()?;

    let mut out = [0u8; 64];
    let (r_out, s_out) = out.split_at_mut(32);
    left_pad(r, r_out, 32)?;
    left_pad(s, s_out, 32)?;
    Some(out)
}

pub(crate) fn strip_leading_zeros(mut bytes: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

/// Writes `value` right-aligned into the first `width` bytes of `buf`, zeros on the left,
/// and returns those bytes; `None` if `value` is wider than `width` or `buf` too short.
fn left_pad<'a>(value: &[u8], buf: &'a mut [u8], width: usize) -> Option<&'a [u8]> {
    let out = buf.get_mut(..width)?;
    let start = width.checked_sub(value.len())?;
    let (zeros, tail) = out.split_at_mut(start);
    zeros.fill(0);
    tail.copy_from_slice(value);
    Some(out)
}

/// The smallest RSA modulus accepted, in bytes after leading zeros are stripped.
///
/// 256 bytes is the smallest byte length that `ring`'s 2048-bit floor admits (it compares
/// the modulus length rounded up to whole bytes). Both providers use the same bounds so a
/// key verifies under one exactly when it verifies under the other.
pub(crate) const RSA_MIN_MODULUS_BYTES: usize = 256;

/// The largest RSA modulus accepted: 8192 bits, `ring`'s ceiling. The caller should have
/// refused a bigger key already (verification cost grows with the cube of the size).
pub(crate) const RSA_MAX_MODULUS_BYTES: usize = 1024;

/// The RSA verification inputs both providers need: `n` and `e` without leading zeros,
/// `n` within the size bounds, and the signature left-padded to the modulus length in
/// `buf`. RFC 4253 section 6.6 sends the signature as an integer "without lengths or
/// padding", so it may be shorter than the modulus; OpenSSH pads it on the left and so do
/// we. `None` if the key is out of bounds or the signature longer than the modulus.
pub(crate) fn rsa_verify_inputs<'a>(
    n: &'a [u8],
    e: &'a [u8],
    sig: &[u8],
    buf: &'a mut [u8; RSA_MAX_MODULUS_BYTES],
) -> Option<(&'a [u8], &'a [u8], &'a [u8])> {
    let n = strip_leading_zeros(n);
    let e = strip_leading_zeros(e);
    if !(RSA_MIN_MODULUS_BYTES..=RSA_MAX_MODULUS_BYTES).contains(&n.len()) {
        return None;
    }
    let sig = left_pad(sig, buf, n.len())?;
    Some((n, e, sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mpint(v: &[u8]) -> Vec<u8> {
        let mut out = (v.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(v);
        out
    }

    #[test]
    fn ecdsa_blob_parsing() {
        let mut r = [0x11u8; 32];
        r[0] = 0x7f;
        let s = [0x22u8; 31];
        let blob = [mpint(&r), mpint(&s)].concat();
        let fixed = ecdsa_fixed_signature(&blob).unwrap();
        assert_eq!(fixed[..32], r);
        assert_eq!(fixed[32], 0);
        assert_eq!(fixed[33..], s);

        // A high bit needs the 0x00 sign byte, and then 33 bytes are fine.
        let high = [0x80u8; 32];
        let blob = [mpint(&[&[0][..], &high[..]].concat()), mpint(&s)].concat();
        assert_eq!(ecdsa_fixed_signature(&blob).unwrap()[..32], high);

        let negative = [mpint(&high), mpint(&s)].concat();
        let wide = [mpint(&[&[1][..], &r[..]].concat()), mpint(&s)].concat();
        let padded = [mpint(&[&[0][..], &r[..]].concat()), mpint(&s)].concat();
        let trailing = [mpint(&r), mpint(&s), vec![0]].concat();
        for bad in [negative, wide, padded, trailing, mpint(&r), Vec::new()] {
            assert_eq!(ecdsa_fixed_signature(&bad), None);
        }
    }

    #[test]
    fn padding_helpers() {
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 0]), [1, 0]);
        assert_eq!(strip_leading_zeros(&[0, 0]), [0u8; 0]);
        let mut buf = [0xffu8; 8];
        assert_eq!(left_pad(&[1, 2], &mut buf, 4), Some(&[0, 0, 1, 2][..]));
        assert_eq!(left_pad(&[1, 2, 3], &mut buf, 2), None);
        assert_eq!(left_pad(&[1], &mut buf, 9), None);
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
