//! Object bodies in and out, streamed with bounded memory.
//!
//! In: a request body goes piece by piece into a striped writer while its
//! MD5 and any requested checksums are computed in the same pass; a body
//! that stalls longer than the idle timeout, ends early or runs past its
//! declared length fails the request. Out: a task reads the object's
//! segments a piece at a time into a channel of two chunks, which the
//! response body drains; a client that goes away stops the task.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use md5::{Digest, Md5};
use s3s::checksum::ChecksumHasher;
use s3s::dto::{Checksum, StreamingBlob};
use shoal_client::IoCtx;
use tokio::sync::mpsc;

use crate::error::ModelError;
use crate::model::record::Segment;

/// Bytes read from the cluster at once for a response (one piece).
const READ_CHUNK: u64 = 4 << 20;
/// Chunks buffered between the cluster reads and the client.
const CHUNKS_AHEAD: usize = 2;

/// What a stored body hashed to.
pub struct Stored {
    /// Bytes stored.
    pub size: u64,
    /// MD5 of the body.
    pub md5: [u8; 16],
    /// The checksums that were asked for.
    pub checksum: Checksum,
}

/// Limits on one incoming body.
pub struct BodyLimits {
    /// The declared length, if any (the body must match it).
    pub declared: Option<u64>,
    /// The largest body accepted.
    pub max: u64,
    /// The longest wait for the next bytes.
    pub idle: Duration,
}

/// Streams `body` into a new striped object `data` of `io`, hashing it;
/// on failure the pieces written so far are removed.
pub async fn store(
    io: &IoCtx,
    data: &str,
    body: Option<StreamingBlob>,
    limits: &BodyLimits,
    mut hasher: ChecksumHasher,
) -> Result<Stored, ModelError> {
    let mut writer = io.fresh_writer(data)?;
    let mut md5 = Md5::new();
    let mut size = 0u64;
    let result = async {
        let Some(mut body) = body else {
            return Ok(());
        };
        loop {
            let next = tokio::time::timeout(limits.idle, body.next())
                .await
                .map_err(|_| ModelError::Body(format!("no data for {:?}", limits.idle)))?;
            let Some(chunk) = next else {
                return Ok(());
            };
            let chunk = chunk.map_err(|e| ModelError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > limits.max || limits.declared.is_some_and(|d| size > d) {
                return Err(ModelError::TooLarge {
                    max: limits.declared.unwrap_or(limits.max).min(limits.max),
                });
            }
            md5.update(&chunk);
            hasher.update(&chunk);
            writer.write(chunk).await?;
        }
    }
    .await;
    if let Err(e) = result {
        writer.abort().await;
        return Err(e);
    }
    if let Some(want) = limits.declared
        && size != want
    {
        writer.abort().await;
        return Err(ModelError::IncompleteBody { got: size, want });
    }
    writer.finish().await?;
    Ok(Stored {
        size,
        md5: md5.finalize().into(),
        checksum: hasher.finalize(),
    })
}

/// A response body fed by a reading task through a small channel.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, ModelError>>,
}

impl Stream for ChannelBody {
    type Item = Result<Bytes, ModelError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// The bytes `[from, to)` of an object made of `segments`, as a response
/// body read from `io` as the client takes it.
pub fn stream_range(io: IoCtx, segments: Vec<Segment>, from: u64, to: u64) -> StreamingBlob {
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    tokio::spawn(async move {
        if let Err(e) = send_range(&io, &segments, from, to, &tx).await {
            tracing::warn!(error = %e, "reading an object for a response failed");
            // The client sees the body end early (the connection is cut).
            let _ = tx.send(Err(e)).await;
        }
    });
    StreamingBlob::wrap(ChannelBody { rx })
}

async fn send_range(
    io: &IoCtx,
    segments: &[Segment],
    from: u64,
    to: u64,
    tx: &mpsc::Sender<Result<Bytes, ModelError>>,
) -> Result<(), ModelError> {
    let mut start = 0u64;
    for seg in segments {
        let end = start + seg.size;
        if end > from && start < to {
            let reader = io.reader(&seg.data).await?;
            let mut off = from.max(start) - start;
            let stop = to.min(end) - start;
            while off < stop {
                // Piece-aligned reads: each touches one piece object.
                let len = (READ_CHUNK - off % READ_CHUNK).min(stop - off);
                let bytes = reader.read(off, len).await?;
                if bytes.len() as u64 != len {
                    return Err(ModelError::corrupt(
                        &seg.data,
                        format!("read {} of {len} bytes at {off}", bytes.len()),
                    ));
                }
                off += len;
                if tx.send(Ok(bytes)).await.is_err() {
                    return Ok(()); // the client went away
                }
            }
        }
        start = end;
    }
    Ok(())
}
