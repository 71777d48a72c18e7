//! Frames over QUIC streams: reading, writing, and ordered one-way streams.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use quinn::VarInt;

use crate::error::{NetError, Result};
use crate::frame::{Frame, FrameDecoder, FrameError, FrameLimits, MSG_STREAM_OPEN};
use crate::peer::PeerInfo;

/// Stream error code: the stream carried a malformed or oversized frame.
pub const CODE_BAD_FRAME: VarInt = VarInt::from_u32(1);
/// Stream error code: the receiver is shutting down.
pub const CODE_SHUTDOWN: VarInt = VarInt::from_u32(2);

/// Writes one frame: header, body and payload as one vectored write; the
/// body and payload buffers are handed to quinn without copying.
pub async fn write_frame(send: &mut quinn::SendStream, frame: &Frame) -> Result<()> {
    let [header, body, payload] = frame.to_chunks()?;
    let mut chunks: Vec<Bytes> = Vec::with_capacity(3);
    chunks.push(header);
    chunks.extend([body, payload].into_iter().filter(|b| !b.is_empty()));
    send.write_all_chunks(&mut chunks).await?;
    Ok(())
}

/// Reads frames from a receive stream.
#[derive(Debug)]
pub struct FrameReader {
    recv: quinn::RecvStream,
    dec: FrameDecoder,
    eof: bool,
    errors: Option<Arc<AtomicU64>>,
}

impl FrameReader {
    /// Reads `recv`, enforcing `limits`.
    pub fn new(recv: quinn::RecvStream, limits: FrameLimits) -> Self {
        FrameReader {
            recv,
            dec: FrameDecoder::new(limits),
            eof: false,
            errors: None,
        }
    }

    /// Also counts bad frames in `counter`.
    pub(crate) fn with_error_counter(mut self, counter: Arc<AtomicU64>) -> Self {
        self.errors = Some(counter);
        self
    }

    /// The next frame; `None` at a clean end of stream. A malformed or
    /// oversized frame (or an end of stream inside a frame) stops the
    /// stream, is logged, and is returned as [`NetError::Frame`].
    pub async fn next_frame(&mut self) -> Result<Option<Frame>> {
        loop {
            match self.dec.decode() {
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(e) => return Err(self.fail(e)),
            }
            if self.eof {
                return match self.dec.finish() {
                    Ok(()) => Ok(None),
                    Err(e) => Err(self.fail(e)),
                };
            }
            match self.recv.read_chunk(usize::MAX, true).await {
                Ok(Some(chunk)) => self.dec.feed_bytes(chunk.bytes),
                Ok(None) => self.eof = true,
                Err(quinn::ReadError::Reset(code)) => {
                    return Err(NetError::Reset(code.into_inner()));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads exactly one frame followed by the end of the stream.
    pub async fn single_frame(&mut self) -> Result<Frame> {
        let frame = self.next_frame().await?.ok_or(NetError::NoResponse)?;
        match self.next_frame().await? {
            None => Ok(frame),
            Some(_) => Err(self.fail(FrameError::TrailingData)),
        }
    }

    fn fail(&mut self, e: FrameError) -> NetError {
        if let Some(counter) = &self.errors {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        tracing::warn!(stream = %self.recv.id(), error = %e, "bad frame, closing the stream");
        // The stream may already be finished; nothing else to do then.
        let _ = self.recv.stop(CODE_BAD_FRAME);
        NetError::Frame(e)
    }

    /// Stops the stream with `code` (tells the sender to stop sending).
    pub fn stop(&mut self, code: VarInt) {
        let _ = self.recv.stop(code);
    }
}

/// The sending end of an ordered one-way stream: frames arrive in the
/// order they are sent.
#[derive(Debug)]
pub struct OnewaySender {
    send: quinn::SendStream,
    topic: String,
    peer: PeerInfo,
}

impl OnewaySender {
    /// Opens a one-way stream for `topic` on `conn` and announces the topic.
    pub(crate) async fn open(
        conn: &quinn::Connection,
        topic: &str,
        peer: PeerInfo,
    ) -> Result<Self> {
        let mut send = conn.open_uni().await?;
        write_frame(&mut send, &Frame::new(MSG_STREAM_OPEN, topic.to_owned())).await?;
        Ok(OnewaySender {
            send,
            topic: topic.to_owned(),
            peer,
        })
    }

    /// Sends one frame (returns once quinn has buffered it; flow control
    /// applies back-pressure).
    pub async fn send(&mut self, frame: &Frame) -> Result<()> {
        write_frame(&mut self.send, frame).await
    }

    /// Sets the stream's send priority (higher goes first).
    pub fn set_priority(&self, priority: i32) -> Result<()> {
        Ok(self.send.set_priority(priority)?)
    }

    /// Ends the stream cleanly (the receiver sees the end after the last frame).
    pub fn finish(&mut self) -> Result<()> {
        Ok(self.send.finish()?)
    }

    /// The topic of this stream.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The receiving peer.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }
}

/// The receiving end of a one-way stream, handed to the stream handler.
#[derive(Debug)]
pub struct InboundStream {
    /// The authenticated sender.
    pub peer: PeerInfo,
    /// The topic the sender announced.
    pub topic: String,
    reader: FrameReader,
}

impl InboundStream {
    /// Reads the announcement frame and returns the stream.
    pub(crate) async fn accept(mut reader: FrameReader, peer: PeerInfo) -> Result<Self> {
        let open = reader.next_frame().await?.ok_or(NetError::NoResponse)?;
        if open.msg_type != MSG_STREAM_OPEN {
            return Err(reader.fail(FrameError::UnexpectedType(open.msg_type)));
        }
        let topic =
            String::from_utf8(open.body.to_vec()).map_err(|_| reader.fail(FrameError::BadTopic))?;
        Ok(InboundStream {
            peer,
            topic,
            reader,
        })
    }

    /// The next frame, `None` when the sender finished the stream.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>> {
        self.reader.next_frame().await
    }

    /// Stops the stream (the sender's next write fails).
    pub fn stop(&mut self) {
        self.reader.stop(CODE_SHUTDOWN);
    }
}
