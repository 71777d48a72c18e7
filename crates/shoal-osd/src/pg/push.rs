//! Whole objects pushed to this copy by the head: during peering (the
//! copy catches up; a backfilled copy keeps only what was pushed), while
//! active (recovery of what the missing set names, or a repair), and to a
//! backfill target. The push replaces the object (or its absence) in one
//! transaction that also takes it out of the missing set.

use super::types::Phase;
use shoal_proto::osd::ObjOp;
use shoal_proto::rep::{LogOp, PgPush};
use shoal_store::Op;

use super::Pg;
use super::types::{PeerReply, ReplyTo, TxnDone};
use crate::exec::{self, OpError, unavailable};

use crate::pglog::MISSING_OBJECT;

impl Pg {
    /// The head pushed an object's whole state.
    pub(super) fn on_push(&mut self, reply: ReplyTo, push: PgPush, payload: bytes::Bytes) {
        match self.push_txn(push, &payload) {
            Ok(Some((object, txn))) => {
                let suspect = self.backfill_of == Some(self.interval.epoch);
                self.submit(
                    txn,
                    TxnDone::Pushed {
                        object,
                        suspect,
                        reply,
                    },
                );
            }
            Ok(None) => self.respond(reply, Ok(PeerReply::Ack)),
            Err(e) => self.respond(reply, Err(e)),
        }
    }

    /// The transaction applying `push`, or `None` when this copy is newer
    /// than the push (a write followed the object's recovery).
    pub(super) fn push_txn(
        &mut self,
        push: PgPush,
        payload: &bytes::Bytes,
    ) -> Result<Option<(String, shoal_store::Transaction)>, OpError> {
        let PgPush {
            interval,
            object,
            version,
            state,
            repair,
            sums,
            ..
        } = push;
        exec::check_name(&object)?;
        if self.interval.epoch != interval {
            return Err(unavailable("another interval"));
        }
        match self.phase {
            _ if self.backfill_of == Some(interval) => {}
            Phase::Peering => {
                self.pushed.insert(&object);
            }
            Phase::Active if self.missing.contains(&object) || repair => {}
            Phase::Active => return Ok(None),
            Phase::Stray => return Err(unavailable("not a member")),
        }
        let mut t = shoal_store::Transaction::new(self.coll.clone());
        if self.backfill_of == Some(interval) {
            // A backfill target's objects are suspect until the backfill's
            // finish says which are in place: one pushed to it here may
            // carry a write nobody acknowledged, and if the backfill never
            // finishes the copy must not pass for current (the simulation
            // found a write applied twice that way).
            t.push(Op::OmapSet {
                name: MISSING_OBJECT.into(),
                entries: vec![(object.as_bytes().to_vec(), Vec::new())],
            });
        } else if self.missing.contains(&object) {
            t.push(Op::OmapRemove {
                name: MISSING_OBJECT.into(),
                keys: vec![object.as_bytes().to_vec()],
            });
        }
        // Whatever this copy holds goes (touched first, so the removal
        // holds whether or not it exists).
        t.push(Op::Touch {
            name: object.clone(),
        });
        t.push(Op::Remove {
            name: object.clone(),
        });
        if let Some(s) = state {
            let mut ops = vec![ObjOp::WriteFull { data: s.data }];
            ops.extend(
                s.xattrs
                    .into_iter()
                    .map(|(key, value)| ObjOp::SetXattr { key, value }),
            );
            if !s.omap.is_empty() {
                ops.push(ObjOp::OmapSet { entries: s.omap });
            }
            t.ops.extend(exec::store_ops(
                &object,
                &ops,
                payload,
                &sums,
                version,
                LogOp::Modify,
            )?);
        }
        Ok(Some((object, t)))
    }

    /// A pushed object is stored.
    pub(super) fn push_stored(
        &mut self,
        object: String,
        suspect: bool,
        reply: ReplyTo,
        result: Result<(), OpError>,
    ) {
        // The transaction took it out of the stored missing set (or, on a
        // backfill target, into it).
        if result.is_ok() {
            if suspect {
                self.missing.insert(object);
            } else {
                self.missing.remove(&object);
            }
        }
        self.respond(reply, result.map(|()| PeerReply::Ack));
    }
}
