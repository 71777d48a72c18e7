//! PG split, in the shell: when a pool's `pg_num` grows, every PG of the
//! pool on this OSD hands the objects that now hash to its children, with
//! their log entries and missing marks, to the children's new collections,
//! in one store transaction (objects change collection; no data is copied
//! and nothing crosses the network). Each child starts with the parent's
//! history for its objects, its head and its peering record, so that the
//! child's members peer it like any PG in its first interval after the
//! split, and its versions go on from the parent's.
//!
//! The pool's `pg_num` a collection is split for is recorded with it (an
//! xattr of its meta object), in the split's own transaction: an OSD
//! stopped at any moment finds each parent either whole and unsplit (it
//! splits it again on start) or split with its children complete.

use std::sync::Arc;

use shoal_map::{Pool, split_children};
use shoal_proto::osd::PgRef;
use shoal_store::{NameRoute, Op, Store, Transaction};

use crate::exec::{OpError, internal, store_error};
use crate::pg::{Loaded, log_txn, split_loaded};
use crate::pglog::{collection, is_internal};
use crate::pgstore::record_pg_num;

/// The seed of the PG `name` hashes to in `pool` (as clients place it).
fn seed_of(pool: &Pool, name: &str) -> u32 {
    pool.raw_seed_to_seed(pool.hash_key(name.as_bytes(), b""))
}

/// The transaction splitting `parent` (its records `loaded`, split for
/// `old` PGs) for `pool`'s `pg_num`, and the children it makes.
pub fn split_txn(
    parent: PgRef,
    loaded: &Loaded,
    old: u32,
    pool: &Pool,
) -> Result<(Transaction, Vec<PgRef>), OpError> {
    let seeds = split_children(parent.seed, old, pool.pg_num);
    let children: Vec<PgRef> = seeds
        .iter()
        .map(|&seed| PgRef {
            pool: parent.pool,
            seed,
        })
        .collect();
    let child_of = |name: &str| {
        let seed = seed_of(pool, name);
        seeds.iter().position(|&s| s == seed)
    };
    let (kept, parts) = split_loaded(loaded, children.len(), child_of);
    let les = loaded.info.last_epoch_started;
    let acting = &loaded.info.last_acting;
    let mut t = Transaction::new(collection(parent));
    for (child, part) in children.iter().zip(&parts) {
        let coll = collection(*child);
        let mut ops = vec![Op::CreateCollection];
        ops.extend(log_txn(&coll, &part.log, les, acting, &part.missing)?.ops);
        ops.push(record_pg_num(pool.pg_num));
        t.push(Op::On {
            collection: coll,
            ops,
        });
    }
    // One pass over the parent's objects, each hashed once; an object
    // hashing to no child (it should not be here) stays where it is.
    let (route_pool, child_seeds) = (pool.clone(), seeds.clone());
    t.push(Op::MoveObjects {
        route: NameRoute::new(move |name| {
            if is_internal(name) {
                return None;
            }
            let seed = seed_of(&route_pool, name);
            child_seeds.contains(&seed).then(|| {
                collection(PgRef {
                    pool: parent.pool,
                    seed,
                })
            })
        }),
    });
    t.ops
        .extend(log_txn(&t.collection.clone(), &kept.log, les, acting, &kept.missing)?.ops);
    t.push(record_pg_num(pool.pg_num));
    Ok((t, children))
}

/// Splits PG `parent`'s collection, split for `old` PGs (its recorded
/// `pg_num`, below `pool`'s), for `pool`'s `pg_num`; returns the children
/// made. The PG's machine must be closed: the split works from the records
/// on disk, after every write submitted before it.
pub async fn split(
    store: &Arc<Store>,
    parent: PgRef,
    old: u32,
    pool: &Pool,
) -> Result<Vec<PgRef>, OpError> {
    let coll = collection(parent);
    // Every transaction submitted before this one is applied after it.
    store
        .submit(Transaction::new(coll.clone()))
        .await
        .map_err(|e| store_error(&e))?;
    let s2 = store.clone();
    let loaded = tokio::task::spawn_blocking(move || crate::pgstore::load(&s2, &coll))
        .await
        .map_err(internal)?
        .map_err(|e| store_error(&e))?;
    let (txn, children) = split_txn(parent, &loaded, old, pool)?;
    store.submit(txn).await.map_err(|e| store_error(&e))?;
    tracing::info!(pg = %parent, old_pg_num = old, pg_num = pool.pg_num, children = ?children, "split");
    Ok(children)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::osd::{ObjVersion, ReqId};
    use shoal_proto::rep::{LogEntry, LogOp};

    use crate::pg::{LogLimits, write_txn};
    use crate::pgstore::tests::open_store;
    use crate::pgstore::{client_objects, load, open, recorded_pg_num};

    /// PG 1.1 of an 8-PG pool holding 40 objects written with their log
    /// entries; the pool as it is after `pg_num` grew to 32.
    async fn parent_with_objects(store: &Arc<Store>) -> (PgRef, Vec<String>, Pool) {
        let parent = PgRef { pool: 1, seed: 1 };
        let mut pool = Pool::new_replicated(1, "data", 3, 8, 0);
        let names: Vec<String> = (0..2000)
            .map(|i| format!("obj{i}"))
            .filter(|n| seed_of(&pool, n) == parent.seed)
            .take(40)
            .collect();
        let mut loaded = open(store, parent, 8).await.unwrap();
        let limits = LogLimits {
            entries: 30,
            dups: 100,
        };
        for (i, n) in names.iter().enumerate() {
            let entry = LogEntry {
                version: ObjVersion {
                    epoch: 2,
                    seq: i as u64 + 1,
                },
                reqid: ReqId {
                    client: 7,
                    tid: i as u64,
                },
                object: n.clone(),
                op: LogOp::Modify,
            };
            let ops = vec![Op::WriteFull {
                name: n.clone(),
                data: vec![i as u8; 100].into(),
                sums: None,
            }];
            let coll = collection(parent);
            let t = write_txn(
                &coll,
                ops,
                &entry,
                &mut loaded.log,
                limits,
                (entry.version, 2, &[0, 1]),
            )
            .unwrap();
            store.submit(t).await.unwrap();
        }
        pool.pg_num = 32;
        pool.pgp_num = 8;
        (parent, names, pool)
    }

    #[tokio::test]
    async fn a_split_moves_each_object_with_its_history_into_its_child() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let (parent, names, pool) = parent_with_objects(&store).await;
        let children = split(&store, parent, 8, &pool).await.unwrap();
        let seeds: Vec<u32> = children.iter().map(|c| c.seed).collect();
        assert_eq!(seeds, vec![9, 17, 25]);
        let mut seen = 0;
        for pg in std::iter::once(parent).chain(children.iter().copied()) {
            let coll = collection(pg);
            assert_eq!(recorded_pg_num(&store, pg).unwrap(), Some(32));
            let objects = client_objects(&store, &coll).unwrap();
            for o in &objects {
                assert_eq!(seed_of(&pool, o), pg.seed, "{o} in {pg}");
                let i = names.iter().position(|n| n == o).unwrap();
                assert_eq!(store.read(&coll, o, 0, 1000).unwrap(), vec![i as u8; 100]);
            }
            seen += objects.len();
            let loaded = load(&store, &coll).unwrap();
            assert_eq!(
                loaded.log.head().seq,
                40,
                "{pg}: versions go on from the parent's"
            );
            assert!(
                loaded
                    .log
                    .entries()
                    .all(|e| seed_of(&pool, &e.object) == pg.seed)
            );
            assert_eq!(loaded.info.last_epoch_started, 2);
            // Trimmed requests are remembered everywhere.
            assert!(loaded.log.find(ReqId { client: 7, tid: 0 }).is_some());
        }
        assert_eq!(seen, names.len(), "every object in exactly one PG");
        // Split already: the record says so (the daemon splits only a copy
        // recorded for fewer PGs than its pool has).
        assert_eq!(recorded_pg_num(&store, parent).unwrap(), Some(pool.pg_num));
    }

    #[tokio::test]
    async fn a_split_that_cannot_finish_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let (parent, names, pool) = parent_with_objects(&store).await;
        // A child's collection is in the way: the transaction fails whole.
        open(&store, PgRef { pool: 1, seed: 17 }, 32).await.unwrap();
        assert!(split(&store, parent, 8, &pool).await.is_err());
        assert_eq!(recorded_pg_num(&store, parent).unwrap(), Some(8));
        let coll = collection(parent);
        assert_eq!(client_objects(&store, &coll).unwrap().len(), names.len());
        assert!(
            store
                .collection_meta(&collection(PgRef { pool: 1, seed: 9 }))
                .is_err()
        );
        assert_eq!(load(&store, &coll).unwrap().log.head().seq, 40);
    }

    #[tokio::test]
    async fn a_damaged_split_record_is_an_error_not_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let pg = PgRef { pool: 1, seed: 1 };
        open(&store, pg, 8).await.unwrap();
        let mut t = Transaction::new(collection(pg));
        t.push(Op::SetXattr {
            name: crate::pglog::META_OBJECT.into(),
            key: crate::pgstore::PG_NUM_XATTR.into(),
            value: vec![8, 0],
        });
        store.submit(t).await.unwrap();
        assert!(matches!(
            recorded_pg_num(&store, pg),
            Err(shoal_store::StoreError::CorruptMeta(_))
        ));
    }
}
