//! The S3 storage model, free of HTTP: users and keys, the buckets
//! registry, sharded bucket indexes, object records and the garbage they
//! leave, all kept in the cluster (nothing on the gateway's disk).
//!
//! Layout in the metadata pool (plain objects with omap):
//! - `users` (uid -> [`users::UserRecord`]) and `keys` (access key ->
//!   [`users::KeyRecord`]);
//! - `buckets` (bucket name -> [`buckets::BucketRecord`], with its
//!   [`acl::Acl`]);
//! - `idx.{bucket id}.{shard}`: a bucket's index shard, holding for the
//!   keys that hash to it their current records, the data of uploads in
//!   progress and the data waiting for collection ([`index`]).
//!
//! Object data goes to the data pool as striped objects under fresh unique
//! names (`{bucket id}.{random}`), never overwritten in place: a write
//! stores its data first, then switches the index entry in one atomic,
//! guarded op on the shard object. See `docs/s3.md`.

pub mod acl;
pub mod buckets;
pub mod change;
pub mod cors;
pub mod gc;
pub mod index;
pub mod record;
pub mod uploads;
pub mod users;
pub mod versioned;
pub mod versions;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shoal_client::{ClientError, IoCtx, OsdErrorCode, Output, ReadOp, WriteOp};

use crate::error::ModelError;

/// The cluster handles and settings the model works with.
#[derive(Clone)]
pub struct Pools {
    /// Users, keys, buckets registry, bucket indexes.
    pub meta: IoCtx,
    /// Object data.
    pub data: IoCtx,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    now_us() / 1000
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A time in milliseconds since the epoch as a `SystemTime`.
pub fn system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// `n` bytes from the operating system's secure random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS source does not fail on Linux once booted; a zeroed buffer
    // would still be refused by the guards that ids are unique.
    if let Err(e) = getrandom::fill(&mut out) {
        tracing::error!(error = %e, "no OS randomness");
    }
    out
}

/// A fresh random id as 32 hex digits.
pub fn random_id() -> String {
    hex::encode(random_bytes::<16>())
}

/// Whether an OSD refused a write because a guard did not hold.
pub fn is_compare_failed(e: &ClientError) -> bool {
    e.osd_code() == Some(OsdErrorCode::CompareFailed)
}

/// The value of omap key `key` of plain object `obj` (none when the key or
/// the object is missing).
pub async fn omap_value(io: &IoCtx, obj: &str, key: &[u8]) -> Result<Option<Vec<u8>>, ModelError> {
    let op = ReadOp::new().omap_get(vec![key.to_vec()]);
    match io.read_op(obj, op).await {
        Ok(r) => match r.outputs.into_iter().next() {
            Some(Output::Omap { entries, .. }) => Ok(entries.into_iter().next().map(|(_, v)| v)),
            other => Err(ModelError::Protocol(format!(
                "expected omap, got {other:?}"
            ))),
        },
        Err(ClientError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One page of omap entries of plain object `obj`: keys with `prefix`
/// after `start_after`, at most `limit`; `true` when more follow.
pub async fn omap_page(
    io: &IoCtx,
    obj: &str,
    start_after: Option<Vec<u8>>,
    prefix: &[u8],
    limit: u32,
) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, bool), ModelError> {
    let op = ReadOp::new().omap_list(start_after, prefix.to_vec(), limit);
    match io.read_op(obj, op).await {
        Ok(r) => match r.outputs.into_iter().next() {
            Some(Output::Omap { entries, more }) => Ok((entries, more)),
            other => Err(ModelError::Protocol(format!(
                "expected omap, got {other:?}"
            ))),
        },
        Err(ClientError::NotFound(_)) => Ok((Vec::new(), false)),
        Err(e) => Err(e.into()),
    }
}

/// Every omap entry of `obj` with `prefix`, a page at a time.
pub async fn omap_all(
    io: &IoCtx,
    obj: &str,
    prefix: &[u8],
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ModelError> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    loop {
        let after = out.last().map(|(k, _)| k.clone());
        let (page, more) = omap_page(io, obj, after, prefix, 1000).await?;
        out.extend(page);
        if !more {
            return Ok(out);
        }
    }
}

/// Applies `op` to plain object `obj`; `Ok(false)` when a guard did not
/// hold (nothing changed).
pub async fn guarded_write(io: &IoCtx, obj: &str, op: WriteOp) -> Result<bool, ModelError> {
    match io.write_op(obj, op).await {
        Ok(_) => Ok(true),
        Err(e) if is_compare_failed(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Changes the JSON record under omap key `key` of `obj` with `change`,
/// guarded by the value read (a lost race reads again, up to
/// [`MAX_RACES`] times). `missing` is the error when there is no record;
/// `what` names it in errors. The changed record.
pub async fn update_entry<T>(
    io: &IoCtx,
    obj: &str,
    key: &[u8],
    what: &str,
    missing: impl Fn() -> ModelError,
    change: &(dyn Fn(&mut T) + Sync),
) -> Result<T, ModelError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    for _ in 0..MAX_RACES {
        let raw = omap_value(io, obj, key).await?.ok_or_else(&missing)?;
        let mut record: T =
            serde_json::from_slice(&raw).map_err(|e| ModelError::corrupt(what, e))?;
        change(&mut record);
        let new = serde_json::to_vec(&record).map_err(|e| ModelError::corrupt(what, e))?;
        let op = WriteOp::new()
            .cmp_omap(key.to_vec(), shoal_client::XattrCmp::Eq(raw))
            .omap_set(vec![(key.to_vec(), new)]);
        if guarded_write(io, obj, op).await? {
            return Ok(record);
        }
    }
    Err(ModelError::Busy(what.to_string()))
}

/// How often a read-modify-write on one omap key is retried after losing a
/// race before the request is answered with "slow down".
pub const MAX_RACES: usize = 64;
