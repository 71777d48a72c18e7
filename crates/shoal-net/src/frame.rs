//! The wire frame and its sans-IO decoder.
//!
//! ```text
//! offset  size  field
//!      0     4  magic  b"SHOL"
//!      4     2  protocol version (little endian), currently 1
//!      6     2  message type (little endian)
//!      8     4  body length (little endian)
//!     12     4  payload length (little endian)
//!     16     .  body bytes (an rkyv message, opaque here)
//!      .     .  payload bytes (raw object data)
//! ```
//!
//! The decoder never trusts a length before checking it against
//! [`FrameLimits`], and never panics on any input (it is fuzzed).

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use shoal_buf::AlignedBuf;

/// The four bytes every frame starts with.
pub const MAGIC: [u8; 4] = *b"SHOL";
/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 16;

/// Message types below this value are reserved for the transport itself.
pub const FIRST_APP_MSG_TYPE: u16 = 16;
/// Transport message type: opens a one-way stream; the body is the topic (UTF-8).
pub const MSG_STREAM_OPEN: u16 = 1;

/// Upper bounds on the sizes a decoder accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest accepted body, in bytes.
    pub max_body: u32,
    /// Largest accepted payload, in bytes.
    pub max_payload: u32,
}

impl Default for FrameLimits {
    /// 16 MiB bodies (a large cluster map) and 64 MiB payloads (16 default
    /// 4 MiB pieces; pools may use bigger pieces).
    fn default() -> Self {
        FrameLimits {
            max_body: 16 << 20,
            max_payload: 64 << 20,
        }
    }
}

/// Why a frame was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The first four bytes are not [`MAGIC`].
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// The peer speaks a protocol version this build does not.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u16),
    /// The body is longer than [`FrameLimits::max_body`].
    #[error("body of {len} bytes exceeds the limit of {max}")]
    BodyTooLarge {
        /// Announced length.
        len: u32,
        /// Configured limit.
        max: u32,
    },
    /// The payload is longer than [`FrameLimits::max_payload`].
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    PayloadTooLarge {
        /// Announced length.
        len: u32,
        /// Configured limit.
        max: u32,
    },
    /// A frame to be sent has a part longer than `u32::MAX` bytes.
    #[error("frame part of {0} bytes does not fit the header")]
    Unencodable(usize),
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes received of the incomplete frame.
        buffered: usize,
    },
    /// Bytes followed the single frame a request or response stream may carry.
    #[error("unexpected bytes after the frame")]
    TrailingData,
    /// A one-way stream announced a topic that is not UTF-8.
    #[error("one-way stream topic is not UTF-8")]
    BadTopic,
    /// A transport-level frame was not what the protocol expects here.
    #[error("unexpected message type {0} here")]
    UnexpectedType(u16),
}

/// The fixed-size header of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Protocol version.
    pub version: u16,
    /// Message type.
    pub msg_type: u16,
    /// Body length in bytes.
    pub body_len: u32,
    /// Payload length in bytes.
    pub payload_len: u32,
}

impl FrameHeader {
    /// Serializes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&self.version.to_le_bytes());
        out[6..8].copy_from_slice(&self.msg_type.to_le_bytes());
        out[8..12].copy_from_slice(&self.body_len.to_le_bytes());
        out[12..16].copy_from_slice(&self.payload_len.to_le_bytes());
        out
    }

    /// Parses and validates a header against `limits`.
    pub fn decode(raw: &[u8; HEADER_LEN], limits: &FrameLimits) -> Result<Self, FrameError> {
        let magic = [raw[0], raw[1], raw[2], raw[3]];
        if magic != MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
        let version = u16::from_le_bytes([raw[4], raw[5]]);
        if version != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion(version));
        }
        let msg_type = u16::from_le_bytes([raw[6], raw[7]]);
        let body_len = u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
        let payload_len = u32::from_le_bytes([raw[12], raw[13], raw[14], raw[15]]);
        if body_len > limits.max_body {
            return Err(FrameError::BodyTooLarge {
                len: body_len,
                max: limits.max_body,
            });
        }
        if payload_len > limits.max_payload {
            return Err(FrameError::PayloadTooLarge {
                len: payload_len,
                max: limits.max_payload,
            });
        }
        Ok(FrameHeader {
            version,
            msg_type,
            body_len,
            payload_len,
        })
    }

    /// Total encoded length of the frame this header describes.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.body_len as usize + self.payload_len as usize
    }
}

/// One message: a type, an opaque body and a raw payload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// Message type (values below [`FIRST_APP_MSG_TYPE`] are the transport's).
    pub msg_type: u16,
    /// Encoded message (usually rkyv, see [`crate::codec`]).
    pub body: Bytes,
    /// Raw data carried after the body, never copied by the encoder.
    pub payload: Bytes,
}

impl Frame {
    /// A frame with a body and no payload.
    pub fn new(msg_type: u16, body: impl Into<Bytes>) -> Self {
        Frame {
            msg_type,
            body: body.into(),
            payload: Bytes::new(),
        }
    }

    /// Sets the payload (a reference-counted buffer: no copy).
    pub fn with_payload(mut self, payload: Bytes) -> Self {
        self.payload = payload;
        self
    }

    /// The header describing this frame.
    pub fn header(&self) -> Result<FrameHeader, FrameError> {
        let body_len =
            u32::try_from(self.body.len()).map_err(|_| FrameError::Unencodable(self.body.len()))?;
        let payload_len = u32::try_from(self.payload.len())
            .map_err(|_| FrameError::Unencodable(self.payload.len()))?;
        Ok(FrameHeader {
            version: PROTOCOL_VERSION,
            msg_type: self.msg_type,
            body_len,
            payload_len,
        })
    }

    /// Encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body.len() + self.payload.len()
    }

    /// The frame as three buffers (header, body, payload) ready for a
    /// vectored write; body and payload are shared, not copied.
    pub fn to_chunks(&self) -> Result<[Bytes; 3], FrameError> {
        let header = Bytes::copy_from_slice(&self.header()?.encode());
        Ok([header, self.body.clone(), self.payload.clone()])
    }

    /// The frame as one contiguous buffer (copies; for tests and tools).
    pub fn to_vec(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&self.header()?.encode());
        out.extend_from_slice(&self.body);
        out.extend_from_slice(&self.payload);
        Ok(out)
    }
}

/// One buffer holding `parts` in order, for a frame payload assembled from
/// pieces: the part itself when there is only one (no copy), else one copy.
pub fn concat(mut parts: Vec<Bytes>) -> Bytes {
    if parts.len() <= 1 {
        return parts.pop().unwrap_or_default();
    }
    let mut out = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
    for p in &parts {
        out.extend_from_slice(p);
    }
    out.freeze()
}

/// Received pieces below this size are copied together rather than kept.
const SMALL_PIECE: usize = 4096;

/// Frame parts this large that arrived in several pieces are reassembled
/// into a block-aligned buffer.
const ALIGNED_PART: usize = 64 << 10;

/// Incremental frame decoder: feed it bytes as they arrive, take frames out.
///
/// Received buffers are kept as they come (shared, not copied) until a
/// frame is complete; then its body and payload are each taken with at most
/// one copy into a buffer of exactly their size (none when a part arrived
/// in one buffer). Memory held is what actually arrived, never what a
/// header announced.
///
/// After an error the decoder is poisoned and keeps returning that error:
/// the stream must be closed (the byte stream has lost its framing).
#[derive(Debug)]
pub struct FrameDecoder {
    limits: FrameLimits,
    chunks: VecDeque<Bytes>,
    /// Small received pieces, copied together: a peer sending tiny stream
    /// frames must not cost a queue entry per byte.
    small: BytesMut,
    buffered: usize,
    header: Option<FrameHeader>,
    error: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: FrameLimits) -> Self {
        FrameDecoder {
            limits,
            chunks: VecDeque::new(),
            small: BytesMut::new(),
            buffered: 0,
            header: None,
            error: None,
        }
    }

    /// Appends received bytes (copied).
    pub fn feed(&mut self, data: &[u8]) {
        self.feed_bytes(Bytes::copy_from_slice(data));
    }

    /// Appends a received buffer (kept, not copied, unless it is small).
    pub fn feed_bytes(&mut self, data: Bytes) {
        if self.error.is_some() || data.is_empty() {
            return;
        }
        self.buffered += data.len();
        if data.len() < SMALL_PIECE {
            self.small.extend_from_slice(&data);
            if self.small.len() >= SMALL_PIECE {
                self.flush_small();
            }
        } else {
            self.flush_small();
            self.chunks.push_back(data);
        }
    }

    /// Queues the small pieces gathered so far, in order.
    fn flush_small(&mut self) {
        if !self.small.is_empty() {
            self.chunks.push_back(self.small.split().freeze());
        }
    }

    /// Received buffers held (for tests: small pieces are gathered).
    pub fn held_buffers(&self) -> usize {
        self.chunks.len() + usize::from(!self.small.is_empty())
    }

    /// Bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Takes the next `n` buffered bytes (`n <= self.buffered`): a slice of
    /// the first buffer when it holds them all, else one copy, into a
    /// block-aligned buffer when large (so the store can write object data
    /// to disk straight from it).
    fn take(&mut self, n: usize) -> Bytes {
        debug_assert!(n <= self.buffered);
        self.buffered -= n;
        if let Some(front) = self.chunks.front_mut()
            && front.len() >= n
        {
            let out = front.split_to(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return out;
        }
        if n >= ALIGNED_PART {
            return AlignedBuf::filled(n, |v| self.drain_into(v, n)).into_bytes();
        }
        let mut out = Vec::with_capacity(n);
        self.drain_into(&mut out, n);
        out.into()
    }

    /// Moves the next `n` buffered bytes to the end of `out`.
    fn drain_into(&mut self, out: &mut Vec<u8>, n: usize) {
        let mut left = n;
        while left > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let want = left.min(front.len());
            out.extend_from_slice(&front[..want]);
            front.advance(want);
            left -= want;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }

    /// The first [`HEADER_LEN`] buffered bytes, when that many are buffered.
    fn peek_header(&self) -> Option<[u8; HEADER_LEN]> {
        if self.buffered < HEADER_LEN {
            return None;
        }
        let mut raw = [0u8; HEADER_LEN];
        let mut at = 0;
        for c in &self.chunks {
            let n = (HEADER_LEN - at).min(c.len());
            raw[at..at + n].copy_from_slice(&c[..n]);
            at += n;
            if at == HEADER_LEN {
                break;
            }
        }
        Some(raw)
    }

    /// Takes the next complete frame, if one is buffered.
    pub fn decode(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        self.flush_small();
        let header = match self.header {
            Some(h) => h,
            None => {
                let Some(raw) = self.peek_header() else {
                    return Ok(None);
                };
                match FrameHeader::decode(&raw, &self.limits) {
                    Ok(h) => {
                        self.header = Some(h);
                        h
                    }
                    Err(e) => {
                        self.chunks.clear();
                        self.small = BytesMut::new();
                        self.buffered = 0;
                        self.error = Some(e.clone());
                        return Err(e);
                    }
                }
            }
        };
        if self.buffered < header.frame_len() {
            return Ok(None);
        }
        self.header = None;
        self.take(HEADER_LEN);
        let body = self.take(header.body_len as usize);
        let payload = self.take(header.payload_len as usize);
        Ok(Some(Frame {
            msg_type: header.msg_type,
            body,
            payload,
        }))
    }

    /// Call at end of stream: fails if a partial frame is buffered.
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        if self.buffered == 0 {
            Ok(())
        } else {
            Err(FrameError::Truncated {
                buffered: self.buffered,
            })
        }
    }
}

/// Decodes every frame in `data` (a whole stream): the frames, then the
/// first error if the stream is malformed or ends inside a frame.
pub fn decode_all(data: &[u8], limits: FrameLimits) -> (Vec<Frame>, Option<FrameError>) {
    let mut dec = FrameDecoder::new(limits);
    dec.feed(data);
    let mut frames = Vec::new();
    loop {
        match dec.decode() {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (frames, dec.finish().err()),
            Err(e) => return (frames, Some(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_split_feeding() {
        let f1 = Frame::new(20, &b"hello"[..]).with_payload(Bytes::from_static(b"payload"));
        let f2 = Frame::new(21, Bytes::new());
        let mut wire = f1.to_vec().unwrap();
        wire.extend(f2.to_vec().unwrap());
        // Feed one byte at a time.
        let mut dec = FrameDecoder::new(FrameLimits::default());
        let mut out = Vec::new();
        for b in &wire {
            dec.feed(std::slice::from_ref(b));
            while let Some(f) = dec.decode().unwrap() {
                out.push(f);
            }
        }
        dec.finish().unwrap();
        assert_eq!(out, vec![f1, f2]);
    }

    #[test]
    fn parts_arriving_whole_are_not_copied() {
        let payload = Bytes::from(vec![7u8; 100_000]);
        let f = Frame::new(20, &b"body"[..]).with_payload(payload.clone());
        let [header, body, payload_chunk] = f.to_chunks().unwrap();
        let mut dec = FrameDecoder::new(FrameLimits::default());
        // Header and body split across two buffers, the payload in a third.
        let mut hb = header.to_vec();
        hb.extend_from_slice(&body[..2]);
        dec.feed(&hb);
        dec.feed(&body[2..]);
        assert_eq!(dec.decode().unwrap(), None);
        dec.feed_bytes(payload_chunk.clone());
        let got = dec.decode().unwrap().unwrap();
        assert_eq!(got, f);
        assert_eq!(
            got.payload.as_ptr(),
            payload_chunk.as_ptr(),
            "payload shared"
        );
        assert_eq!(dec.buffered(), 0);
        dec.finish().unwrap();
    }

    #[test]
    fn large_payloads_in_pieces_are_reassembled_block_aligned() {
        let payload: Bytes = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let f = Frame::new(20, &b"body"[..]).with_payload(payload.clone());
        let wire = f.to_vec().unwrap();
        let mut dec = FrameDecoder::new(FrameLimits::default());
        // Datagram-sized pieces, none aligned with the payload's start.
        for piece in wire.chunks(65_000) {
            dec.feed(piece);
        }
        let got = dec.decode().unwrap().unwrap();
        assert_eq!(got.payload, payload);
        assert_eq!(got.payload.as_ptr() as usize % shoal_buf::BLOCK, 0);
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn tiny_pieces_are_gathered_not_queued_one_by_one() {
        let f = Frame::new(20, &b"body"[..]).with_payload(Bytes::from(vec![9u8; 200_000]));
        let wire = f.to_vec().unwrap();
        let mut dec = FrameDecoder::new(FrameLimits::default());
        for b in &wire[..wire.len() - 1] {
            dec.feed_bytes(Bytes::copy_from_slice(std::slice::from_ref(b)));
        }
        assert!(
            dec.held_buffers() <= wire.len() / SMALL_PIECE + 1,
            "{}",
            dec.held_buffers()
        );
        assert_eq!(dec.decode().unwrap(), None);
        dec.feed(&wire[wire.len() - 1..]);
        assert_eq!(dec.decode().unwrap(), Some(f));
        dec.finish().unwrap();
    }

    #[test]
    fn limits_and_garbage() {
        let limits = FrameLimits {
            max_body: 4,
            max_payload: 8,
        };
        let big = Frame::new(20, &b"12345"[..]).to_vec().unwrap();
        assert!(matches!(
            decode_all(&big, limits).1,
            Some(FrameError::BodyTooLarge { len: 5, max: 4 })
        ));
        let big = Frame::new(20, Bytes::new())
            .with_payload(Bytes::from(vec![0; 9]))
            .to_vec()
            .unwrap();
        assert!(matches!(
            decode_all(&big, limits).1,
            Some(FrameError::PayloadTooLarge { .. })
        ));
        assert!(matches!(
            decode_all(b"GARBAGE-GARBAGE-", limits).1,
            Some(FrameError::BadMagic(_))
        ));
        let mut v2 = Frame::new(20, Bytes::new()).to_vec().unwrap();
        v2[4] = 2;
        assert_eq!(
            decode_all(&v2, limits).1,
            Some(FrameError::UnsupportedVersion(2))
        );
        let ok = Frame::new(20, &b"1"[..]).to_vec().unwrap();
        assert!(matches!(
            decode_all(&ok[..ok.len() - 1], limits).1,
            Some(FrameError::Truncated { .. })
        ));
    }
}
