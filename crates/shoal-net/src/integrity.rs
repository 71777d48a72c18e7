//! The `integrity` wire mode: QUIC packets checked by crc32c, not encrypted.
//!
//! Ceph's messenger offers the same choice (`ms_*_mode = crc` by default,
//! `secure` to encrypt): inside a cluster network, encrypting every byte of
//! object data on every hop costs more CPU than anything else on the data
//! path. In this mode the handshake is unchanged (TLS 1.3, both sides
//! present certificates of the cluster CA and verify the other's), but the
//! negotiated cipher suite protects packets with a crc32c of header and
//! payload instead of AES-GCM: transmission errors are caught, eavesdropping
//! and tampering by someone on the network path are not prevented.
//!
//! It is a TLS 1.3 cipher suite of its own (a private-use code point) that
//! only endpoints configured for this mode offer or accept, so it is used
//! only when both sides want it: a `secure` endpoint on either side of a
//! connection gets AES-GCM as before. Header protection stays AES.

use std::sync::OnceLock;

use rustls::crypto::cipher::{AeadKey, Iv};
use rustls::quic::{self, HeaderProtectionKey, PacketKey, Tag};
use rustls::{CipherSuite, CipherSuiteCommon, SupportedCipherSuite, Tls13CipherSuite};

/// The suite's code point (TLS private-use range 0xFF00-0xFFFF).
pub const INTEGRITY_SUITE_ID: u16 = 0xFF5C;

/// Bytes of the per-packet tag: a crc32c, then zeros (QUIC's header
/// protection samples assume AEAD-sized tags).
const TAG_LEN: usize = 16;

/// The integrity-only TLS 1.3 suite (AES-128-GCM's key schedule and
/// header protection, crc32c packet protection).
pub fn integrity_suite() -> SupportedCipherSuite {
    static SUITE: OnceLock<Option<Tls13CipherSuite>> = OnceLock::new();
    static ALGORITHM: OnceLock<Option<CrcAlgorithm>> = OnceLock::new();
    let base = aes128();
    let algorithm = ALGORITHM.get_or_init(|| {
        base.and_then(|b| b.quic)
            .map(|header| CrcAlgorithm { header })
    });
    let suite = SUITE.get_or_init(|| {
        let (base, algorithm) = (base?, algorithm.as_ref()?);
        Some(Tls13CipherSuite {
            common: CipherSuiteCommon {
                suite: CipherSuite::Unknown(INTEGRITY_SUITE_ID),
                hash_provider: base.common.hash_provider,
                confidentiality_limit: base.common.confidentiality_limit,
            },
            hkdf_provider: base.hkdf_provider,
            aead_alg: base.aead_alg,
            quic: Some(algorithm),
        })
    });
    match suite {
        Some(s) => SupportedCipherSuite::Tls13(s),
        // Unreachable with the ring provider, which always has the suite.
        None => rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
    }
}

/// The ring provider's TLS13_AES_128_GCM_SHA256.
fn aes128() -> Option<&'static Tls13CipherSuite> {
    match rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256 {
        SupportedCipherSuite::Tls13(s) => Some(s),
        _ => None,
    }
}

/// QUIC packet protection by crc32c, header protection by the base suite.
struct CrcAlgorithm {
    header: &'static dyn quic::Algorithm,
}

impl quic::Algorithm for CrcAlgorithm {
    fn packet_key(&self, _key: AeadKey, _iv: Iv) -> Box<dyn PacketKey> {
        Box::new(CrcPacketKey)
    }

    fn header_protection_key(&self, key: AeadKey) -> Box<dyn HeaderProtectionKey> {
        self.header.header_protection_key(key)
    }

    fn aead_key_len(&self) -> usize {
        self.header.aead_key_len()
    }
}

/// The tag of one packet: crc32c over its number, header and payload.
fn tag(packet_number: u64, header: &[u8], payload: &[u8]) -> [u8; TAG_LEN] {
    let crc = crc32c::crc32c(&packet_number.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, header);
    let crc = crc32c::crc32c_append(crc, payload);
    let mut t = [0u8; TAG_LEN];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t
}

/// Packet "protection" of the integrity mode: the payload is left as is
/// and followed by [`tag`].
struct CrcPacketKey;

impl PacketKey for CrcPacketKey {
    fn encrypt_in_place(
        &self,
        packet_number: u64,
        header: &[u8],
        payload: &mut [u8],
    ) -> Result<Tag, rustls::Error> {
        Ok(Tag::from(&tag(packet_number, header, payload)[..]))
    }

    fn decrypt_in_place<'a>(
        &self,
        packet_number: u64,
        header: &[u8],
        payload: &'a mut [u8],
    ) -> Result<&'a [u8], rustls::Error> {
        let Some(body_len) = payload.len().checked_sub(TAG_LEN) else {
            return Err(rustls::Error::DecryptError);
        };
        let (body, got) = payload.split_at(body_len);
        if got != tag(packet_number, header, body) {
            return Err(rustls::Error::DecryptError);
        }
        Ok(&payload[..body_len])
    }

    fn tag_len(&self) -> usize {
        TAG_LEN
    }

    fn confidentiality_limit(&self) -> u64 {
        u64::MAX
    }

    fn integrity_limit(&self) -> u64 {
        // As AES-GCM's (RFC 9001): a peer failing this many checks is
        // not suffering bit flips.
        1 << 36
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_any_flipped_bit_is_refused() {
        let key = CrcPacketKey;
        let header = b"\x40\x01\x02\x03";
        let mut packet = b"stream data of a packet".to_vec();
        let t = key.encrypt_in_place(7, header, &mut packet).unwrap();
        assert_eq!(&packet, b"stream data of a packet", "not encrypted");
        packet.extend_from_slice(t.as_ref());
        let mut ok = packet.clone();
        assert_eq!(
            key.decrypt_in_place(7, header, &mut ok).unwrap(),
            b"stream data of a packet"
        );
        for bit in 0..packet.len() * 8 {
            let mut bad = packet.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                key.decrypt_in_place(7, header, &mut bad).is_err(),
                "bit {bit}"
            );
        }
        // Another packet number or header: refused.
        assert!(
            key.decrypt_in_place(8, header, &mut packet.clone())
                .is_err()
        );
        assert!(
            key.decrypt_in_place(7, b"\x40\x01", &mut packet.clone())
                .is_err()
        );
        // Shorter than a tag: refused, no panic.
        assert!(key.decrypt_in_place(7, header, &mut [0u8; 5]).is_err());
    }

    #[test]
    fn the_suite_is_tls13_with_quic_support() {
        let s = integrity_suite();
        assert_eq!(s.suite(), CipherSuite::Unknown(INTEGRITY_SUITE_ID));
        assert!(matches!(s, SupportedCipherSuite::Tls13(t) if t.quic.is_some()));
    }
}
