//! A PG's collection in the store, as the shell around the PG state
//! machine reads and changes it: creating and loading it, pages of its
//! objects (with versions, or as scrub entries), an object's whole state
//! for a push, and deleting it. Everything here but [`open`] and
//! [`destroy`] blocks: callers run it off the async threads.

use std::collections::BTreeSet;

use bytes::Bytes;
use shoal_net::codec::encode;
use shoal_proto::osd::{ObjVersion, PayloadRange, PgRef};
use shoal_proto::rep::{DataSums, ObjectState, PgInfo, ScrubEntry};
use shoal_store::{Op, Store, StoreError, Transaction};

use crate::exec::{self, OpError};
use crate::pg::{Loaded, decode_loaded, log_txn};
use crate::pglog::{
    DUPS_OBJECT, INTERNAL_OBJECTS, META_OBJECT, MISSING_OBJECT, PgLog, collection, is_internal,
};

/// The xattr of a PG's meta object holding the pool's `pg_num` its
/// collection is split for (4 bytes, little-endian).
pub const PG_NUM_XATTR: &str = "pg_num";

/// The op recording that a PG's collection is split for `pg_num`.
pub fn record_pg_num(pg_num: u32) -> Op {
    Op::SetXattr {
        name: META_OBJECT.into(),
        key: PG_NUM_XATTR.into(),
        value: pg_num.to_le_bytes().to_vec(),
    }
}

/// The `pg_num` PG `pg`'s collection is split for (`None`: not recorded,
/// a collection made before splits were). A record that is not 4 bytes is
/// corrupt, never taken for "not recorded" (that would skip a split).
pub fn recorded_pg_num(store: &Store, pg: PgRef) -> Result<Option<u32>, StoreError> {
    let coll = collection(pg);
    let xattrs = match store.xattrs(&coll, META_OBJECT) {
        Ok(x) => x,
        Err(StoreError::NoObject(..)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(v) = xattrs.get(PG_NUM_XATTR) else {
        return Ok(None);
    };
    let bytes = <[u8; 4]>::try_from(v.as_slice()).map_err(|_| {
        StoreError::CorruptMeta(format!("{coll}: a pg_num record of {} bytes", v.len()))
    })?;
    Ok(Some(u32::from_le_bytes(bytes)))
}

/// Records that PG `pg`'s collection holds what `pg_num` sends it (a
/// collection made before splits were recorded).
pub async fn set_recorded_pg_num(store: &Store, pg: PgRef, pg_num: u32) -> Result<(), StoreError> {
    let mut t = Transaction::new(collection(pg));
    t.push(record_pg_num(pg_num));
    store.submit(t).await
}

/// Opens PG `id`'s collection, creating it when missing (as holding what
/// its pool's `pg_num` sends it), and loads its records (off the async
/// threads).
pub async fn open(
    store: &std::sync::Arc<Store>,
    id: PgRef,
    pg_num: u32,
) -> Result<Loaded, StoreError> {
    let coll = collection(id);
    let exists = match store.collection_meta(&coll) {
        Ok(_) => true,
        Err(StoreError::NoCollection(_)) => false,
        Err(e) => return Err(e),
    };
    if !exists {
        let mut t = Transaction::new(coll.clone());
        t.push(Op::CreateCollection);
        t.push(Op::Touch {
            name: META_OBJECT.into(),
        });
        t.push(record_pg_num(pg_num));
        t.push(Op::SetCollectionMeta(
            encode(&PgInfo::default())
                .map_err(|e| StoreError::Invalid(e.to_string()))?
                .to_vec(),
        ));
        store.submit(t).await?;
    }
    // Writes add dups to this object's omap: it must exist.
    if let Err(StoreError::NoObject(..)) = store.stat(&coll, DUPS_OBJECT) {
        let mut t = Transaction::new(coll.clone());
        t.push(Op::Touch {
            name: DUPS_OBJECT.into(),
        });
        store.submit(t).await?;
    }
    let s2 = store.clone();
    tokio::task::spawn_blocking(move || load(&s2, &coll))
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
}

/// A PG's peering record, log (with dups) and missing set.
pub fn load(store: &Store, coll: &str) -> Result<Loaded, StoreError> {
    let meta = store.collection_meta(coll)?;
    let omap = |name: &str| match store.omap_range(coll, name, None, None, usize::MAX) {
        Ok(r) => Ok(r),
        Err(StoreError::NoObject(..)) => Ok(Vec::new()),
        Err(e) => Err(e),
    };
    decode_loaded(
        coll,
        &meta,
        omap(META_OBJECT)?,
        omap(DUPS_OBJECT)?,
        omap(MISSING_OBJECT)?,
    )
}

/// Deletes PG `id`'s collection. Its records go first (one transaction),
/// so a copy half removed when the OSD stops is an empty one to peering,
/// never a log without its objects.
pub async fn destroy(store: &std::sync::Arc<Store>, id: PgRef) -> Result<(), OpError> {
    let coll = collection(id);
    let err = |e: StoreError| exec::store_error(&e);
    let t = log_txn(&coll, &PgLog::default(), 0, &[], &BTreeSet::new())?;
    store.submit(t).await.map_err(err)?;
    loop {
        let (s2, c2) = (store.clone(), coll.clone());
        let names = tokio::task::spawn_blocking(move || s2.list_objects(&c2, None, 1000))
            .await
            .map_err(exec::internal)?
            .map_err(err)?;
        let mut t = Transaction::new(coll.clone());
        if names.is_empty() {
            t.push(Op::RemoveCollection);
            return store.submit(t).await.map_err(err);
        }
        t.ops = names.into_iter().map(|name| Op::Remove { name }).collect();
        store.submit(t).await.map_err(err)?;
    }
}

/// A page of at most `limit` client objects of a collection after
/// `after` (the PG's bookkeeping objects left out), and whether more
/// follow.
pub fn object_page(
    store: &Store,
    coll: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<String>, bool), OpError> {
    let mut names = store
        .list_objects(coll, after, limit + INTERNAL_OBJECTS + 1)
        .map_err(|e| exec::store_error(&e))?;
    names.retain(|n| !is_internal(n));
    let more = names.len() > limit;
    names.truncate(limit);
    Ok((names, more))
}

/// Every client object of a collection (the bookkeeping objects left
/// out), in name order.
pub fn client_objects(store: &Store, coll: &str) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let names = store.list_objects(coll, after.as_deref(), 1000)?;
        let Some(last) = names.last().cloned() else {
            return Ok(out);
        };
        out.extend(names.into_iter().filter(|n| !is_internal(n)));
        after = Some(last);
    }
}

/// A page of a copy's objects after `after`, with their versions.
pub fn scan(
    store: &Store,
    coll: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<(String, ObjVersion)>, bool), OpError> {
    let (names, more) = object_page(store, coll, after, limit)?;
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        match store.stat(coll, &n) {
            Ok(st) => out.push((
                n,
                ObjVersion {
                    epoch: st.version.epoch,
                    seq: st.version.seq,
                },
            )),
            Err(StoreError::NoObject(..)) => {}
            Err(e) => return Err(exec::store_error(&e)),
        }
    }
    Ok((out, more))
}

/// An object's whole state as a push carries it (the default: it does
/// not exist).
#[derive(Debug, Default)]
pub struct PushedState {
    /// Its version.
    pub version: ObjVersion,
    /// Its contents (`None`: it does not exist).
    pub state: Option<ObjectState>,
    /// The checksums of its data, when the store has them whole.
    pub sums: Vec<DataSums>,
    /// Its data, the frame payload.
    pub data: Bytes,
}

/// An object's whole state for a push, from one snapshot.
pub fn object_state(store: &Store, coll: &str, name: &str) -> Result<PushedState, OpError> {
    let err = |e: StoreError| exec::store_error(&e);
    let snap = match store.snapshot(coll, name) {
        Ok(s) => s,
        Err(StoreError::NoObject(..)) => return Ok(PushedState::default()),
        Err(e) => return Err(err(e)),
    };
    let stat = snap.stat();
    let data = snap.read_bytes(0, u64::MAX).map_err(err)?;
    // The read verified every chunk against these.
    let sums = snap.chunk_sums().map(|s| DataSums {
        op: 0,
        chunk_size: s.chunk_size,
        sums: s.sums.to_vec(),
    });
    let xattrs = snap.xattrs().clone();
    drop(snap);
    let omap = store
        .omap_range(coll, name, None, None, usize::MAX)
        .map_err(err)?;
    let state = ObjectState {
        data: PayloadRange {
            offset: 0,
            len: data.len() as u64,
        },
        xattrs: xattrs.into_iter().collect(),
        omap,
    };
    Ok(PushedState {
        version: ObjVersion {
            epoch: stat.version.epoch,
            seq: stat.version.seq,
        },
        state: Some(state),
        sums: sums.into_iter().collect(),
        data,
    })
}

/// Scrub entries of a copy: a page after `after` or exactly `only`;
/// `deep` reads and checksums the data.
pub fn scrub_entries(
    store: &Store,
    coll: &str,
    after: Option<&str>,
    limit: usize,
    only: &[String],
    deep: bool,
) -> Result<(Vec<ScrubEntry>, bool), OpError> {
    let (names, more) = if only.is_empty() {
        object_page(store, coll, after, limit)?
    } else {
        (only.to_vec(), false)
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if let Some(e) = scrub_entry(store, coll, &name, deep)? {
            out.push(e);
        }
    }
    Ok((out, more))
}

fn scrub_entry(
    store: &Store,
    coll: &str,
    name: &str,
    deep: bool,
) -> Result<Option<ScrubEntry>, OpError> {
    let err = |e: StoreError| exec::store_error(&e);
    let snap = match store.snapshot(coll, name) {
        Ok(s) => s,
        Err(StoreError::NoObject(..)) => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    let stat = snap.stat();
    let mut meta = blake3::Hasher::new();
    for (k, v) in snap.xattrs() {
        hash_field(&mut meta, k.as_bytes());
        hash_field(&mut meta, v);
    }
    let (data_digest, error) = if deep {
        match snap.read_bytes(0, u64::MAX) {
            Ok(d) => (Some(*blake3::hash(&d).as_bytes()), String::new()),
            Err(e) => (None, e.to_string()),
        }
    } else {
        (None, String::new())
    };
    drop(snap);
    let omap = store
        .omap_range(coll, name, None, None, usize::MAX)
        .map_err(err)?;
    meta.update(b"omap");
    for (k, v) in &omap {
        hash_field(&mut meta, k);
        hash_field(&mut meta, v);
    }
    Ok(Some(ScrubEntry {
        name: name.to_string(),
        version: ObjVersion {
            epoch: stat.version.epoch,
            seq: stat.version.seq,
        },
        size: stat.size,
        meta_digest: *meta.finalize().as_bytes(),
        data_digest,
        error,
    }))
}

/// A length-prefixed field, so that no two different lists of fields hash
/// alike.
fn hash_field(h: &mut blake3::Hasher, field: &[u8]) {
    h.update(&(field.len() as u64).to_le_bytes());
    h.update(field);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;

    /// A 64 MiB store in `dir`.
    pub(crate) fn open_store(dir: &std::path::Path) -> Arc<Store> {
        let mut cfg = shoal_store::StoreConfig::new(dir, 64 << 20);
        cfg.reserve = 64 << 10;
        Store::mkfs(&cfg).unwrap();
        Arc::new(Store::open(&cfg).unwrap())
    }

    #[tokio::test]
    async fn pages_of_client_objects_skip_the_bookkeeping_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let id = PgRef { pool: 1, seed: 0 };
        open(&store, id, 8).await.unwrap();
        let coll = collection(id);
        let mut t = Transaction::new(coll.clone());
        t.push(Op::Touch {
            name: MISSING_OBJECT.into(),
        });
        for i in 0..10 {
            t.push(Op::Touch {
                name: format!("obj-{i}"),
            });
        }
        store.submit(t).await.unwrap();

        let (first, more) = object_page(&store, &coll, None, 5).unwrap();
        assert_eq!(
            first,
            (0..5).map(|i| format!("obj-{i}")).collect::<Vec<_>>()
        );
        assert!(more, "five more objects follow");
        let (rest, more) = object_page(&store, &coll, first.last().map(String::as_str), 5).unwrap();
        assert_eq!(rest.len(), 5);
        assert!(!more);
        let (scanned, more) = scan(&store, &coll, None, 10).unwrap();
        assert_eq!(scanned.len(), 10);
        assert!(!more);
        assert_eq!(client_objects(&store, &coll).unwrap().len(), 10);
    }

    #[tokio::test]
    async fn a_destroyed_copy_leaves_no_collection() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let id = PgRef { pool: 1, seed: 3 };
        open(&store, id, 8).await.unwrap();
        let mut t = Transaction::new(collection(id));
        t.push(Op::Touch { name: "o".into() });
        store.submit(t).await.unwrap();
        destroy(&store, id).await.unwrap();
        assert!(!store.list_collections().unwrap().contains(&collection(id)));
    }
}
