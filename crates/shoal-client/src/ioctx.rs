//! An I/O context: operations on the objects of one pool.
//!
//! This module has the object-level API (librados' `operate`, listing);
//! the striped API that splits objects of any size into pieces is in
//! [`crate::striper`].

use std::sync::Arc;
use std::time::Duration;

use shoal_map::PgId;
use shoal_proto::osd::{MAX_LIST_PAGE, ObjVersion};

use crate::error::ClientError;
use crate::objecter;
use crate::ops::{Output, ReadOp, ReadResult, WriteOp};
use crate::session::Session;

/// Operations on the objects of one pool, cheap to clone.
#[derive(Clone)]
pub struct IoCtx {
    pub(crate) inner: Arc<Session>,
    pool: i64,
    pool_name: Arc<str>,
    timeout: Duration,
}

/// Where a listing continues: the PG (by seed) and the last name seen in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListCursor {
    /// The PG seed the listing is in.
    pub seed: u32,
    /// The last name returned from that PG; none: from its first.
    pub after: Option<String>,
}

/// A page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectPage {
    /// Names, grouped by PG (in name order within each PG).
    pub names: Vec<String>,
    /// Where the next page starts; none: the listing is complete.
    pub next: Option<ListCursor>,
}

impl IoCtx {
    pub(crate) fn new(inner: Arc<Session>, pool: i64, name: &str) -> IoCtx {
        let timeout = inner.opts.op_timeout;
        IoCtx {
            inner,
            pool,
            pool_name: name.into(),
            timeout,
        }
    }

    /// The pool's id.
    pub fn pool_id(&self) -> i64 {
        self.pool
    }

    /// The pool's name.
    pub fn pool_name(&self) -> &str {
        &self.pool_name
    }

    /// The same context with another deadline for each operation.
    pub fn with_timeout(&self, timeout: Duration) -> IoCtx {
        IoCtx {
            timeout,
            ..self.clone()
        }
    }

    /// The deadline each operation runs with.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The objecter knows pools by id: name ours in its errors.
    fn name_pool(&self, e: ClientError) -> ClientError {
        match e {
            ClientError::NoSuchPool(_) => ClientError::NoSuchPool(self.pool_name.to_string()),
            other => other,
        }
    }

    /// The pool's piece size in the current map.
    pub(crate) fn piece_size(&self) -> Result<u64, ClientError> {
        self.inner
            .osdmap()
            .pool(self.pool)
            .map(|p| p.piece_size)
            .ok_or_else(|| ClientError::NoSuchPool(self.pool_name.to_string()))
    }

    /// Applies `op` to object `object` atomically; answers once every
    /// member of the PG's chain has it on stable storage.
    pub async fn write_op(&self, object: &str, op: WriteOp) -> Result<ObjVersion, ClientError> {
        let (ops, payload) = op.into_parts();
        if ops.is_empty() {
            return Err(ClientError::Invalid("an empty write op".into()));
        }
        let reply = objecter::submit(
            &self.inner,
            self.pool,
            object,
            ops,
            payload,
            false,
            self.timeout,
        )
        .await
        .map_err(|e| self.name_pool(e))?;
        Ok(reply.version)
    }

    /// Runs the reads of `op` on object `object` (at any chain member when
    /// the client balances reads).
    pub async fn read_op(&self, object: &str, op: ReadOp) -> Result<ReadResult, ClientError> {
        let ops = op.into_ops();
        if ops.is_empty() {
            return Err(ClientError::Invalid("an empty read op".into()));
        }
        let reply = objecter::submit(
            &self.inner,
            self.pool,
            object,
            ops,
            bytes::Bytes::new(),
            self.inner.opts.balance_reads,
            self.timeout,
        )
        .await
        .map_err(|e| self.name_pool(e))?;
        let outputs = reply
            .outputs
            .into_iter()
            .map(|o| Output::from_wire(o, &reply.payload))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ClientError::Protocol(format!("{object}: data outside the reply")))?;
        Ok(ReadResult {
            version: reply.version,
            outputs,
        })
    }

    /// A page of at most `limit` object names of the pool (every object,
    /// pieces of striped objects included), from `cursor`.
    pub async fn list_objects(
        &self,
        cursor: &ListCursor,
        limit: u32,
    ) -> Result<ObjectPage, ClientError> {
        self.list_filtered(cursor, limit, |n| Some(n.to_string()))
            .await
    }

    /// Lists names that `keep` maps to something, from `cursor`, until
    /// `limit` are found or the pool ends.
    pub(crate) async fn list_filtered(
        &self,
        cursor: &ListCursor,
        limit: u32,
        keep: impl Fn(&str) -> Option<String>,
    ) -> Result<ObjectPage, ClientError> {
        let limit = limit.clamp(1, MAX_LIST_PAGE);
        let pg_num = self
            .inner
            .osdmap()
            .pool(self.pool)
            .map(|p| p.pg_num)
            .ok_or_else(|| ClientError::NoSuchPool(self.pool_name.to_string()))?;
        let mut names = Vec::new();
        let mut cur = cursor.clone();
        while cur.seed < pg_num {
            let want = limit - names.len() as u32;
            let pg = PgId::new(self.pool, cur.seed);
            let (page, more) = objecter::list_page(&self.inner, pg, cur.after.clone(), want)
                .await
                .map_err(|e| self.name_pool(e))?;
            // An OSD that says "more" must have moved past the cursor, or
            // this loop would never end.
            let moved = page
                .last()
                .is_some_and(|l| cur.after.as_ref().is_none_or(|a| l > a));
            if more && !moved {
                return Err(ClientError::Protocol(format!(
                    "PG {pg}: a listing page after {:?} that does not advance",
                    cur.after
                )));
            }
            cur.after = page.last().cloned().or(cur.after);
            names.extend(page.iter().filter_map(|n| keep(n)));
            if !more {
                cur = ListCursor {
                    seed: cur.seed + 1,
                    after: None,
                };
            }
            if names.len() as u32 >= limit {
                break;
            }
        }
        let next = (cur.seed < pg_num).then_some(cur);
        Ok(ObjectPage { names, next })
    }
}
