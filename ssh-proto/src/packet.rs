//! The binary packet protocol (RFC 4253 section 6): framing, padding, sealing and opening
//! in place.
//!
//! A packet is `uint32 packet_length || byte padding_length || payload || padding || mac`.
//! [`Sealer`] frames a payload straight into the output buffer and encrypts it there;
//! [`Opener`] authenticates and decrypts a packet inside the caller's input buffer. No
//! packet is copied and nothing is allocated per packet.

use core::fmt;
use core::ops::Range;

use zeroize::Zeroizing;

use crate::algorithms::{Cipher, Mac};
use crate::crypto::ctr::AesCtr;
use crate::crypto::{AesGcmKey, ChaChaPolyKey, CryptoProvider, HmacKey};
use crate::error::Error;
use crate::msg::DisconnectReason;

/// The largest `packet_length` accepted: 256 KiB. RFC 4253 section 6.1 requires at least
/// 35000; OpenSSH accepts up to 256 KiB, and so do we.
pub const MAX_PACKET_LEN: usize = 256 * 1024;

/// RFC 4253 section 6: at least four bytes of padding.
const MIN_PADDING: usize = 4;

/// The most bytes a packet adds around its payload: length, padding length, up to 255
/// bytes of padding and a 64-byte MAC.
pub const MAX_OVERHEAD: usize = 4 + 1 + 255 + 64;

/// Keys for one direction, as key derivation produced them (RFC 4253 section 7.2).
pub struct DirectionKeys {
    pub cipher: Cipher,
    pub mac: Option<Mac>,
    pub iv: Zeroizing<Vec<u8>>,
    pub key: Zeroizing<Vec<u8>>,
    pub mac_key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for DirectionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectionKeys")
            .field("cipher", &self.cipher)
            .field("mac", &self.mac)
            .finish_non_exhaustive()
    }
}

/// The protection one direction applies, chosen at NEWKEYS.
#[expect(
    clippy::large_enum_variant,
    reason = "one per direction per connection; a box would add a pointer chase per packet"
)]
enum Protection {
    /// Before the first NEWKEYS, and in fuzzing builds that skip key exchange.
    Plain,
    Gcm {
        key: Box<dyn AesGcmKey>,
        nonce: [u8; 12],
    },
    ChaCha(Box<dyn ChaChaPolyKey>),
    Ctr {
        ctr: AesCtr,
        mac: Box<dyn HmacKey>,
        etm: bool,
        tag_len: usize,
    },
}

impl Protection {
    fn new(provider: &dyn CryptoProvider, keys: &DirectionKeys) -> Result<Self, Error> {
        let bad = || Error::Misuse("derived key of the wrong length");
        Ok(match keys.cipher {
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => {
                let nonce: [u8; 12] = keys.iv.as_slice().try_into().map_err(|_| bad())?;
                Self::Gcm {
                    key: provider.aes_gcm(&keys.key).ok_or_else(bad)?,
                    nonce,
                }
            }
            Cipher::ChaCha20Poly1305 => {
                let key: &[u8; 64] = keys.key.as_slice().try_into().map_err(|_| bad())?;
                Self::ChaCha(provider.chacha20_poly1305(key))
            }
            Cipher::Aes128Ctr | Cipher::Aes256Ctr => {
                let mac_alg = keys.mac.ok_or(Error::Misuse("CTR cipher without a MAC"))?;
                let iv: &[u8; 16] = keys.iv.as_slice().try_into().map_err(|_| bad())?;
                Self::Ctr {
                    ctr: AesCtr::new(&keys.key, iv).ok_or_else(bad)?,
                    mac: provider.hmac(mac_alg.hash(), &keys.mac_key),
                    etm: mac_alg.is_etm(),
                    tag_len: mac_alg.tag_len(),
                }
            }
        })
    }

    fn block_len(&self) -> usize {
        match self {
            Self::Plain | Self::ChaCha(_) => 8,
            Self::Gcm { .. } | Self::Ctr { .. } => 16,
        }
    }

    /// Whether the length field is left out of the encrypted, block-aligned part: true for
    /// the AEAD ciphers and encrypt-then-MAC, which authenticate it as associated data.
    fn length_is_aad(&self) -> bool {
        match self {
            Self::Plain => false,
            Self::Gcm { .. } | Self::ChaCha(_) => true,
            Self::Ctr { etm, .. } => *etm,
        }
    }

    fn tag_len(&self) -> usize {
        match self {
            Self::Plain => 0,
            Self::Gcm { .. } | Self::ChaCha(_) => 16,
            Self::Ctr { tag_len, .. } => *tag_len,
        }
    }

    fn is_plain(&self) -> bool {
        matches!(self, Self::Plain)
    }
}

/// RFC 5647 section 7.1: the invocation counter, the low 64 bits of the nonce, counts
/// packets.
fn bump_gcm_nonce(nonce: &mut [u8; 12]) {
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&nonce[4..]);
    let next = u64::from_be_bytes(counter).wrapping_add(1);
    nonce[4..].copy_from_slice(&next.to_be_bytes());
}

/// Seals outgoing packets for one direction.
pub struct Sealer {
    protection: Protection,
    /// The sequence number of the next packet (RFC 4253 section 6.4).
    pub seq: u32,
    /// Padding bytes. Every cipher here encrypts the padding, so its content need not be
    /// fresh per packet; it is random per key so that nothing predictable is encrypted.
    pad: [u8; 255],
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    pub fn plain() -> Self {
        Self {
            protection: Protection::Plain,
            seq: 0,
            pad: [0; 255],
        }
    }

    /// Switches to new keys; the sequence number carries on (RFC 4253 section 6.4) unless
    /// strict key exchange resets it.
    pub fn install(
        &mut self,
        provider: &dyn CryptoProvider,
        keys: &DirectionKeys,
        pad: [u8; 255],
    ) -> Result<(), Error> {
        self.protection = Protection::new(provider, keys)?;
        self.pad = pad;
        Ok(())
    }

    pub fn is_plain(&self) -> bool {
        self.protection.is_plain()
    }

    /// Frames and seals one packet at the end of `out`. `fill` appends the payload; the
    /// payload is never copied. Returns the number of bytes appended.
    pub fn seal_with(&mut self, out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) -> usize {
        self.seal_padded(out, 0, fill)
    }

    /// As [`Sealer::seal_with`], but `fill` may decline by returning false: then `out` is
    /// as it was, the sequence number has not moved, and 0 is returned. This lets a
    /// payload be read from elsewhere straight into the packet, and dropped when the
    /// read gives nothing.
    pub fn try_seal_with(
        &mut self,
        out: &mut Vec<u8>,
        fill: impl FnOnce(&mut Vec<u8>) -> bool,
    ) -> usize {
        self.seal_inner(out, 0, fill)
    }

    /// As [`Sealer::seal_with`], with padding that also rounds the packet up to a multiple
    /// of `round_to` bytes where 255 bytes of padding allow it, so that an observer cannot
    /// tell the length of a secret (a password) from the packet's length.
    pub fn seal_padded(
        &mut self,
        out: &mut Vec<u8>,
        round_to: usize,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> usize {
        self.seal_inner(out, round_to, |out| {
            fill(out);
            true
        })
    }

    fn seal_inner(
        &mut self,
        out: &mut Vec<u8>,
        round_to: usize,
        fill: impl FnOnce(&mut Vec<u8>) -> bool,
    ) -> usize {
        let start = out.len();
        out.extend_from_slice(&[0; 5]);
        if !fill(out) {
            out.truncate(start);
            return 0;
        }
        let payload_len = out.len() - start - 5;

        let block = self.protection.block_len();
        let aligned = 1
            + payload_len
            + if self.protection.length_is_aad() {
                0
            } else {
                4
            };
        let mut pad_len = block - aligned % block;
        if pad_len < MIN_PADDING {
            pad_len += block;
        }
        // Every multiple of the block size keeps the packet aligned; add blocks until the
        // length is also a multiple of `round_to`, within the 255 bytes padding may take.
        if round_to > block {
            while !(aligned + pad_len).is_multiple_of(round_to) && pad_len + block <= 255 {
                pad_len += block;
            }
        }
        out.extend_from_slice(&self.pad[..pad_len]);

        // A payload is at most what fits in a u32 because callers bound it well below
        // MAX_PACKET_LEN; the cast cannot truncate.
        let packet_len = (1 + payload_len + pad_len) as u32;
        out[start..start + 4].copy_from_slice(&packet_len.to_be_bytes());
        out[start + 4] = pad_len as u8;

        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        let packet = &mut out[start..];
        match &mut self.protection {
            Protection::Plain => {}
            Protection::Gcm { key, nonce } => {
                let (len, body) = packet.split_at_mut(4);
                let tag = key.seal_in_place(nonce, len, body);
                bump_gcm_nonce(nonce);
                out.extend_from_slice(&tag);
            }
            Protection::ChaCha(key) => {
                let tag = key.seal_in_place(seq, packet);
                out.extend_from_slice(&tag);
            }
            Protection::Ctr {
                ctr,
                mac,
                etm: true,
                ..
            } => {
                ctr.apply(&mut packet[4..]);
                let tag = mac.sign(&[&seq.to_be_bytes(), packet]);
                out.extend_from_slice(tag.as_bytes());
            }
            Protection::Ctr {
                ctr,
                mac,
                etm: false,
                ..
            } => {
                let tag = mac.sign(&[&seq.to_be_bytes(), packet]);
                ctr.apply(packet);
                out.extend_from_slice(tag.as_bytes());
            }
        }
        out.len() - start
    }
}

/// What [`Opener::open`] found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// Not a whole packet yet; at least this many bytes are needed in all.
    NeedMore(usize),
    /// A packet of `len` bytes was authenticated and decrypted in place; its payload is at
    /// `payload` within the buffer.
    Packet {
        len: usize,
        payload: Range<usize>,
        seq: u32,
    },
}

/// Opens incoming packets for one direction.
pub struct Opener {
    protection: Protection,
    /// The sequence number of the next packet.
    pub seq: u32,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Opener {
    pub fn plain() -> Self {
        Self {
            protection: Protection::Plain,
            seq: 0,
        }
    }

    pub fn install(
        &mut self,
        provider: &dyn CryptoProvider,
        keys: &DirectionKeys,
    ) -> Result<(), Error> {
        self.protection = Protection::new(provider, keys)?;
        Ok(())
    }

    pub fn is_plain(&self) -> bool {
        self.protection.is_plain()
    }

    /// Authenticates and decrypts the packet at the start of `buf`, in place.
    ///
    /// A length that cannot be right is refused before anything is buffered for it. Once
    /// keys are in use, a bad length and a bad MAC give the same error, so a peer probing
    /// with altered lengths learns nothing from the difference.
    pub fn open(&mut self, buf: &mut [u8]) -> Result<Opened, Error> {
        let seq = self.seq;
        let block = self.protection.block_len();
        let aad = self.protection.length_is_aad();
        let tag_len = self.protection.tag_len();
        let plain = self.protection.is_plain();

        let packet_len = match &self.protection {
            Protection::Ctr {
                ctr, etm: false, ..
            } => {
                let Some(first) = buf.first_chunk::<16>() else {
                    return Ok(Opened::NeedMore(16));
                };
                let first = ctr.peek(first);
                u32::from_be_bytes([first[0], first[1], first[2], first[3]])
            }
            Protection::ChaCha(key) => {
                let Some(len) = buf.first_chunk::<4>() else {
                    return Ok(Opened::NeedMore(4));
                };
                u32::from_be_bytes(key.decrypt_length(seq, *len))
            }
            _ => {
                let Some(len) = buf.first_chunk::<4>() else {
                    return Ok(Opened::NeedMore(4));
                };
                u32::from_be_bytes(*len)
            }
        };

        // The range is checked before the length is aligned: where `usize` is 32 bits
        // wide, adding 4 to a length near 2^32 would overflow.
        let packet_len = packet_len as usize;
        let header = if aad { 0 } else { 4 };
        if !(5..=MAX_PACKET_LEN).contains(&packet_len)
            || !(packet_len + header).is_multiple_of(block)
        {
            return Err(if plain {
                Error::protocol(
                    DisconnectReason::PROTOCOL_ERROR,
                    format!("bad packet length {packet_len}"),
                )
            } else {
                corrupt()
            });
        }

        let total = 4 + packet_len + tag_len;
        let Some(buf) = buf.get_mut(..total) else {
            return Ok(Opened::NeedMore(total));
        };
        let (packet, tag) = buf.split_at_mut(4 + packet_len);

        match &mut self.protection {
            Protection::Plain => {}
            Protection::Gcm { key, nonce } => {
                let tag: &[u8; 16] = (&*tag).try_into().map_err(|_| corrupt())?;
                let (len, body) = packet.split_at_mut(4);
                key.open_in_place(nonce, len, body, tag)
                    .map_err(|_| corrupt())?;
                bump_gcm_nonce(nonce);
            }
            Protection::ChaCha(key) => {
                let tag: &[u8; 16] = (&*tag).try_into().map_err(|_| corrupt())?;
                key.open_in_place(seq, packet, tag).map_err(|_| corrupt())?;
            }
            Protection::Ctr {
                ctr,
                mac,
                etm: true,
                ..
            } => {
                mac.verify(&[&seq.to_be_bytes(), packet], tag)
                    .map_err(|_| corrupt())?;
                ctr.apply(&mut packet[4..]);
            }
            Protection::Ctr {
                ctr,
                mac,
                etm: false,
                ..
            } => {
                ctr.apply(packet);
                mac.verify(&[&seq.to_be_bytes(), packet], tag)
                    .map_err(|_| corrupt())?;
            }
        }
        self.seq = seq.wrapping_add(1);

        // The packet is authentic; what follows are the sender's own framing mistakes.
        let pad_len = usize::from(packet[4]);
        if pad_len < MIN_PADDING || pad_len + 1 >= packet_len {
            return Err(Error::protocol(
                DisconnectReason::PROTOCOL_ERROR,
                format!("bad padding length {pad_len} in a packet of {packet_len} bytes"),
            ));
        }
        Ok(Opened::Packet {
            len: total,
            payload: 5..4 + packet_len - pad_len,
            seq,
        })
    }
}

fn corrupt() -> Error {
    Error::protocol(
        DisconnectReason::MAC_ERROR,
        "corrupted packet: message authentication failed",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_padding_rounds_to_64_bytes() {
        for payload in 1..200 {
            let mut sealer = Sealer::plain();
            let mut out = Vec::new();
            let n = sealer.seal_padded(&mut out, 64, |p| p.resize(p.len() + payload, 7));
            assert_eq!(n % 64, 0, "payload {payload}: {n} bytes");
            let mut opener = Opener::plain();
            let Ok(Opened::Packet { payload: range, .. }) = opener.open(&mut out) else {
                panic!("payload {payload} did not open");
            };
            assert_eq!(range.len(), payload);
        }
    }

    #[test]
    fn a_declined_fill_leaves_no_trace() {
        let mut sealer = Sealer::plain();
        let mut out = b"before".to_vec();
        let n = sealer.try_seal_with(&mut out, |p| {
            p.extend_from_slice(b"half a payload");
            false
        });
        assert_eq!((n, out.as_slice(), sealer.seq), (0, &b"before"[..], 0));

        let n = sealer.try_seal_with(&mut out, |p| {
            p.extend_from_slice(b"payload");
            true
        });
        assert_eq!((n, out.len(), sealer.seq), (n, 6 + n, 1));
        let mut packet = out.split_off(6);
        let Ok(Opened::Packet { payload, .. }) = Opener::plain().open(&mut packet) else {
            panic!("the sealed packet did not open");
        };
        assert_eq!(&packet[payload], b"payload");
    }
}
