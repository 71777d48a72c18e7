//! Peering decisions, sans IO: given what the members of a new interval
//! (and members of earlier ones still up) say about their copy of a PG,
//! which log is authoritative and what each member must receive to match
//! it.
//!
//! Chain replication makes the choice simple: within an interval the head
//! has every entry the middle has, which has every entry the tail has, and
//! an acknowledged write is on every member. So among the copies whose
//! peering record names the newest interval that went active (highest
//! `last_epoch_started`), the most advanced log (highest `(epoch, seq)`: a
//! newer interval's entries beat an older head's unacknowledged ones)
//! holds every acknowledged write — as long as some member of that
//! interval answered. A copy with an older record may carry entries past
//! that log (an older head's writes nobody acknowledged): they are
//! divergent (as in Ceph's `find_best_info`; picking the longest log alone
//! left a PG stuck on an object nobody had: the simulation found it). A
//! head that adopts another copy's log while peering takes that copy's
//! record with it, so a log adopted in a peering that never finished counts
//! for what it is (with the head's own older record, a later peering took
//! a shorter log over it and lost acknowledged writes: the simulation
//! found that too).

use std::collections::{BTreeMap, BTreeSet};

use shoal_proto::osd::ObjVersion;
use shoal_proto::rep::{LogDup, LogEntry, PgInfo, PgLogState};

/// What one OSD said about its copy (`None`: it has none).
#[derive(Debug, Clone)]
pub struct PeerLog {
    /// The OSD.
    pub osd: i32,
    /// Its info and log.
    pub state: Option<PgLogState>,
}

/// How a member catches up with the authoritative log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Catchup {
    /// Copy these objects from the authoritative copy (removing those it
    /// does not have).
    Objects(BTreeSet<String>),
    /// Its log does not reach the authoritative log's oldest entry: copy
    /// every object and remove every other one.
    Backfill,
}

/// The outcome of peering.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The OSD whose copy is authoritative.
    pub auth: i32,
    /// Its info.
    pub info: PgInfo,
    /// Its log.
    pub log: Vec<LogEntry>,
    /// Its remembered trimmed requests.
    pub dups: Vec<LogDup>,
    /// Members that must catch up, and how.
    pub catchup: BTreeMap<i32, Catchup>,
    /// For every object some member must copy: the peers (members or
    /// not) holding it as the authoritative log has it, the authoritative
    /// peer first. An object with no source is unfound.
    pub sources: BTreeMap<String, Vec<i32>>,
    /// Peers whose copy can catch up from the log (all but those needing
    /// a backfill): members in chain order, then the others.
    pub usable: Vec<i32>,
    /// Objects the authoritative copy itself lacks (its missing set): a
    /// backfill from it copies these from their `sources` instead.
    pub auth_missing: BTreeSet<String>,
}

/// Why a PG cannot go active yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// No member of the last interval that went active answered: it may
    /// hold acknowledged writes nobody else has.
    WaitingFor {
        /// That interval's epoch.
        epoch: u32,
        /// Its members.
        members: Vec<i32>,
    },
    /// An object some member must copy has no copy anywhere that
    /// answered (only peers that are down hold it as the log has it).
    Unfound {
        /// The object.
        object: String,
    },
}

/// The newest interval the monitors recorded the PG as going active in
/// (a head records its interval there before it activates, and the
/// monitors accept only the PG's current chain).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// That interval's epoch (0: never).
    pub epoch: u32,
    /// Its chain.
    pub members: Vec<i32>,
}

/// Checks the peers' answers against the monitors' record: when the
/// recorded interval is newer than every interval an answering peer knows
/// went active and none of its members answered, it may hold
/// acknowledged writes nobody here has (its members may all be down, and
/// no answering peer ever heard of it). One member's answer is enough: an
/// acknowledged write is on every member, and a member that never stored
/// its activation saw no write of that interval.
pub fn check_recorded(peers: &[PeerLog], recorded: &Recorded) -> Result<(), Blocked> {
    let known = peers
        .iter()
        .filter_map(|p| p.state.as_ref())
        .map(|s| s.info.last_epoch_started)
        .max()
        .unwrap_or(0);
    let heard = peers.iter().any(|p| recorded.members.contains(&p.osd));
    if recorded.epoch > known && !heard {
        return Err(Blocked::WaitingFor {
            epoch: recorded.epoch,
            members: recorded.members.clone(),
        });
    }
    Ok(())
}

fn empty_state() -> PgLogState {
    PgLogState {
        info: PgInfo::default(),
        log: Vec::new(),
        dups: Vec::new(),
        missing: Vec::new(),
    }
}

/// Decides the authoritative log among `peers` and what each of
/// `members` (the new chain) needs. Every member must be among `peers`.
pub fn plan(members: &[i32], peers: &[PeerLog]) -> Result<Plan, Blocked> {
    let empty = empty_state();
    let state_of = |p: &PeerLog| p.state.clone().unwrap_or_else(|| empty.clone());

    // The newest interval anyone saw go active, and whether one of its
    // members answered.
    let newest = peers
        .iter()
        .filter_map(|p| p.state.as_ref())
        .max_by_key(|s| s.info.last_epoch_started);
    if let Some(s) = newest {
        let les = s.info.last_epoch_started;
        let heard = peers.iter().any(|p| {
            p.state
                .as_ref()
                .is_some_and(|st| st.info.last_epoch_started == les)
                && s.info.last_acting.contains(&p.osd)
        });
        if les > 0 && !heard && !s.info.last_acting.is_empty() {
            return Err(Blocked::WaitingFor {
                epoch: les,
                members: s.info.last_acting.clone(),
            });
        }
    }

    let auth_peer = peers
        .iter()
        .max_by(|a, b| {
            let key = |p: &PeerLog| {
                p.state.as_ref().map_or((0, ObjVersion::default()), |s| {
                    (s.info.last_epoch_started, s.info.last_update)
                })
            };
            // Ties go to the member listed first (the head).
            key(a)
                .cmp(&key(b))
                .then_with(|| rank(members, b.osd).cmp(&rank(members, a.osd)))
        })
        .cloned()
        .unwrap_or(PeerLog {
            osd: members.first().copied().unwrap_or(-1),
            state: None,
        });
    let auth = state_of(&auth_peer);
    let auth_versions: BTreeSet<ObjVersion> = auth.log.iter().map(|e| e.version).collect();

    // What every peer (member or not) needs: members must get it, and
    // those that need nothing of an object are its sources.
    let mut needs: Vec<(i32, Option<Catchup>)> = Vec::new();
    for p in peers {
        let need = if p.osd == auth_peer.osd {
            with_missing(None, &auth.missing)
        } else {
            let mine = state_of(p);
            with_missing(member_catchup(&auth, &auth_versions, &mine), &mine.missing)
        };
        needs.push((p.osd, need));
    }
    let mut catchup = BTreeMap::new();
    for &m in members {
        let need = match needs.iter().find(|(o, _)| *o == m) {
            Some((_, n)) => n.clone(),
            None => member_catchup(&auth, &auth_versions, &empty),
        };
        if let Some(c) = need {
            catchup.insert(m, c);
        }
    }
    // A backfill copies the authoritative copy: what that copy lacks must
    // come from elsewhere.
    let any_backfill = catchup.values().any(|c| matches!(c, Catchup::Backfill));
    let auth_missing: BTreeSet<String> = if any_backfill {
        auth.missing.iter().cloned().collect()
    } else {
        BTreeSet::new()
    };
    let mut sources: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    let wanted = catchup
        .values()
        .filter_map(|c| match c {
            Catchup::Objects(o) => Some(o),
            Catchup::Backfill => None,
        })
        .chain(std::iter::once(&auth_missing));
    for objects in wanted {
        for o in objects {
            if sources.contains_key(o) {
                continue;
            }
            let mut holders: Vec<i32> = needs
                .iter()
                .filter(|(_, n)| match n {
                    None => true,
                    Some(Catchup::Objects(x)) => !x.contains(o),
                    Some(Catchup::Backfill) => false,
                })
                .map(|(osd, _)| *osd)
                .collect();
            holders.sort_by_key(|&h| h != auth_peer.osd);
            sources.insert(o.clone(), holders);
        }
    }
    let backfill = |o: i32| {
        needs
            .iter()
            .any(|(p, n)| *p == o && matches!(n, Some(Catchup::Backfill)))
            || matches!(catchup.get(&o), Some(Catchup::Backfill))
    };
    let mut usable: Vec<i32> = members.iter().copied().filter(|&m| !backfill(m)).collect();
    for (p, _) in &needs {
        if !usable.contains(p) && !backfill(*p) {
            usable.push(*p);
        }
    }
    if let Some((object, _)) = sources.iter().find(|(_, s)| s.is_empty()) {
        return Err(Blocked::Unfound {
            object: object.clone(),
        });
    }
    Ok(Plan {
        auth: auth_peer.osd,
        info: auth.info,
        log: auth.log,
        dups: auth.dups,
        catchup,
        sources,
        usable,
        auth_missing,
    })
}

/// A catch-up widened by the objects a copy already knew it lacked.
fn with_missing(catchup: Option<Catchup>, missing: &[String]) -> Option<Catchup> {
    match catchup {
        Some(Catchup::Backfill) => Some(Catchup::Backfill),
        other if missing.is_empty() => other,
        Some(Catchup::Objects(mut o)) => {
            o.extend(missing.iter().cloned());
            Some(Catchup::Objects(o))
        }
        None => Some(Catchup::Objects(missing.iter().cloned().collect())),
    }
}

fn rank(members: &[i32], osd: i32) -> usize {
    members.iter().position(|&m| m == osd).unwrap_or(usize::MAX)
}

/// What `mine` needs to match `auth` (`None`: nothing).
fn member_catchup(
    auth: &PgLogState,
    auth_versions: &BTreeSet<ObjVersion>,
    mine: &PgLogState,
) -> Option<Catchup> {
    let last = mine.info.last_update;
    // Entries the member has that the authoritative log lacks were never
    // acknowledged: their objects go back to the authoritative state.
    let divergent: Vec<&LogEntry> = mine
        .log
        .iter()
        .filter(|e| e.version > auth.info.log_tail && !auth_versions.contains(&e.version))
        .filter(|e| e.op.changes_object())
        .collect();
    // The point both logs agree up to (divergence is a suffix: writes
    // reach members in order).
    let common = if divergent.is_empty() {
        last
    } else {
        mine.log
            .iter()
            .rev()
            .find(|e| auth_versions.contains(&e.version))
            .map_or(mine.info.log_tail.min(last), |e| e.version)
    };
    // Entries between the common point and the authoritative log's tail
    // cannot be checked (the authoritative log dropped them): copy all.
    if common < auth.info.log_tail {
        return Some(Catchup::Backfill);
    }
    let mut objects: BTreeSet<String> = auth
        .log
        .iter()
        .filter(|e| e.version > common && e.op.changes_object())
        .map(|e| e.object.clone())
        .collect();
    objects.extend(divergent.iter().map(|e| e.object.clone()));
    (!objects.is_empty()).then_some(Catchup::Objects(objects))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::osd::ReqId;
    use shoal_proto::rep::LogOp;

    fn e(epoch: u32, seq: u64, object: &str) -> LogEntry {
        LogEntry {
            version: ObjVersion { epoch, seq },
            reqid: ReqId {
                client: 1,
                tid: seq,
            },
            object: object.into(),
            op: LogOp::Modify,
        }
    }

    fn peer(osd: i32, tail: (u32, u64), log: Vec<LogEntry>, les: u32, acting: &[i32]) -> PeerLog {
        let tail = ObjVersion {
            epoch: tail.0,
            seq: tail.1,
        };
        PeerLog {
            osd,
            state: Some(PgLogState {
                info: PgInfo {
                    last_update: log.last().map_or(tail, |e| e.version),
                    committed: ObjVersion::default(),
                    log_tail: tail,
                    last_epoch_started: les,
                    last_acting: acting.to_vec(),
                },
                log,
                dups: Vec::new(),
                missing: Vec::new(),
            }),
        }
    }

    #[test]
    fn a_recorded_interval_nobody_answering_knows_blocks_peering() {
        let peers = [
            peer(1, (0, 0), vec![e(3, 1, "a")], 3, &[1, 2]),
            PeerLog {
                osd: 4,
                state: None,
            },
        ];
        let newer = Recorded {
            epoch: 7,
            members: vec![2, 3],
        };
        assert_eq!(
            check_recorded(&peers, &newer),
            Err(Blocked::WaitingFor {
                epoch: 7,
                members: vec![2, 3]
            })
        );
        let known = Recorded {
            epoch: 3,
            members: vec![1, 2],
        };
        assert_eq!(check_recorded(&peers, &known), Ok(()));
        assert_eq!(check_recorded(&peers, &Recorded::default()), Ok(()));
        // A member of the recorded interval answered (its activation may
        // not have reached its disk: then that interval took no write).
        let answered = Recorded {
            epoch: 7,
            members: vec![4, 3],
        };
        assert_eq!(check_recorded(&peers, &answered), Ok(()));
        let none = [PeerLog {
            osd: 5,
            state: None,
        }];
        assert!(
            check_recorded(&none, &known).is_err(),
            "a PG with history is not new"
        );
    }

    #[test]
    fn a_new_pg_needs_nothing() {
        let peers = [0, 1, 2].map(|osd| PeerLog { osd, state: None });
        let p = plan(&[0, 1, 2], &peers).unwrap();
        assert_eq!(p.auth, 0);
        assert!(p.catchup.is_empty());
    }

    #[test]
    fn the_most_advanced_log_wins_and_others_catch_up() {
        let full = vec![e(5, 1, "a"), e(5, 2, "b"), e(5, 3, "c")];
        let peers = [
            peer(1, (0, 0), full[..2].to_vec(), 5, &[0, 1, 2]),
            peer(2, (0, 0), full[..1].to_vec(), 5, &[0, 1, 2]),
            peer(0, (0, 0), full.clone(), 5, &[0, 1, 2]),
        ];
        let p = plan(&[1, 2, 3], &peers).unwrap();
        assert_eq!(p.auth, 0, "the old head had the most");
        assert_eq!(p.log, full);
        assert_eq!(p.catchup[&1], Catchup::Objects(["c".to_string()].into()));
        assert_eq!(
            p.catchup[&2],
            Catchup::Objects(["b".to_string(), "c".to_string()].into())
        );
        assert_eq!(
            p.catchup[&3],
            Catchup::Objects(["a", "b", "c"].map(String::from).into())
        );
    }

    #[test]
    fn refusals_in_a_log_copy_nothing() {
        let mut refused = e(5, 2, "b");
        refused.op = LogOp::Refused(shoal_proto::osd::OsdErrorCode::NotFound);
        let mut divergent_refusal = e(5, 3, "c");
        divergent_refusal.op = LogOp::Refused(shoal_proto::osd::OsdErrorCode::Exists);
        let full = vec![e(5, 1, "a"), refused];
        let mut old = full.clone();
        old.push(divergent_refusal);
        let peers = [
            peer(0, (0, 0), full.clone(), 5, &[0, 1, 2]),
            peer(1, (0, 0), full[..1].to_vec(), 5, &[0, 1, 2]),
            peer(2, (0, 0), old, 3, &[0, 1, 2]),
        ];
        let p = plan(&[0, 1, 2], &peers).unwrap();
        assert_eq!(p.log, full);
        assert!(p.catchup.is_empty(), "{:?}", p.catchup);
    }

    #[test]
    fn an_old_heads_unacknowledged_entries_are_divergent() {
        // Interval 5: head 0 wrote (5,3) "x" and died; interval 7 went on
        // without it and wrote (7,3) "y".
        let common = vec![e(5, 1, "a"), e(5, 2, "b")];
        let mut old = common.clone();
        old.push(e(5, 3, "x"));
        let mut new = common.clone();
        new.push(e(7, 3, "y"));
        let peers = [
            peer(1, (0, 0), new.clone(), 7, &[1, 2]),
            peer(2, (0, 0), new.clone(), 7, &[1, 2]),
            peer(0, (0, 0), old, 5, &[0, 1, 2]),
        ];
        let p = plan(&[1, 2, 0], &peers).unwrap();
        assert_eq!(p.auth, 1);
        assert_eq!(
            p.catchup[&0],
            Catchup::Objects(["x".to_string(), "y".to_string()].into())
        );
        assert!(!p.catchup.contains_key(&2));
    }

    #[test]
    fn a_member_behind_the_log_tail_is_backfilled() {
        let auth = peer(0, (3, 50), vec![e(3, 51, "a")], 3, &[0, 1]);
        let behind = peer(1, (0, 0), vec![e(3, 10, "z")], 3, &[0, 1]);
        let p = plan(&[0, 1], &[auth, behind]).unwrap();
        assert_eq!(p.catchup[&1], Catchup::Backfill);
        assert_eq!(p.usable, vec![0], "only the authoritative copy");
        let p = plan(
            &[0, 2],
            &[
                peer(0, (3, 50), vec![e(3, 51, "a")], 3, &[0, 2]),
                PeerLog {
                    osd: 2,
                    state: None,
                },
            ],
        )
        .unwrap();
        assert_eq!(
            p.catchup[&2],
            Catchup::Backfill,
            "an empty member of a trimmed PG"
        );
    }

    #[test]
    fn without_a_member_of_the_last_active_interval_the_pg_waits() {
        // Interval 9 [3, 4] went active; only 0 (from interval 5) answers.
        let peers = [
            peer(0, (0, 0), vec![e(5, 1, "a")], 5, &[0, 3, 4]),
            PeerLog {
                osd: 1,
                state: None,
            },
        ];
        let mut with_news = peers.to_vec();
        with_news.push(peer(5, (0, 0), vec![], 9, &[3, 4]));
        // osd.5 is not a member of interval 9's chain; it only reports it.
        assert_eq!(
            plan(&[0, 1], &with_news),
            Err(Blocked::WaitingFor {
                epoch: 9,
                members: vec![3, 4]
            })
        );
        assert!(plan(&[0, 1], &peers).is_ok());
    }

    fn with_missing_set(mut p: PeerLog, missing: &[&str]) -> PeerLog {
        if let Some(s) = p.state.as_mut() {
            s.missing = missing.iter().map(|m| m.to_string()).collect();
        }
        p
    }

    #[test]
    fn a_copy_that_knew_it_lacked_objects_still_gets_them() {
        let log = vec![e(5, 1, "a"), e(5, 2, "b")];
        let peers = [
            peer(0, (0, 0), log.clone(), 5, &[0, 1, 2]),
            with_missing_set(peer(1, (0, 0), log.clone(), 5, &[0, 1, 2]), &["a"]),
            peer(2, (0, 0), log.clone(), 5, &[0, 1, 2]),
        ];
        let p = plan(&[0, 1, 2], &peers).unwrap();
        assert_eq!(p.catchup[&1], Catchup::Objects(["a".to_string()].into()));
        assert!(!p.catchup.contains_key(&2));
        assert_eq!(
            p.sources["a"],
            vec![0, 2],
            "the lacking member is no source"
        );
    }

    #[test]
    fn an_authoritative_copy_with_holes_is_filled_from_the_others() {
        // osd.0 has the newest log but was still recovering "a"; osd.1 has it.
        let log = vec![e(5, 1, "a"), e(5, 2, "b")];
        let peers = [
            with_missing_set(peer(0, (0, 0), log.clone(), 5, &[0, 1]), &["a"]),
            peer(1, (0, 0), log[..1].to_vec(), 5, &[0, 1]),
        ];
        let p = plan(&[0, 1], &peers).unwrap();
        assert_eq!(p.auth, 0);
        assert_eq!(p.catchup[&0], Catchup::Objects(["a".to_string()].into()));
        assert_eq!(p.catchup[&1], Catchup::Objects(["b".to_string()].into()));
        assert_eq!(p.sources["a"], vec![1]);
        assert_eq!(p.sources["b"], vec![0]);
        // Nobody else has "a": it is unfound, and the PG waits.
        assert_eq!(
            plan(&[0], &peers[..1]),
            Err(Blocked::Unfound { object: "a".into() })
        );
    }

    #[test]
    fn a_backfill_from_a_copy_with_holes_fills_them_from_elsewhere() {
        // osd.1 (authoritative) still lacked "a"; osd.0 is new and must be
        // backfilled: "a" must not be copied from osd.1's stale copy.
        let log = vec![e(5, 1, "a"), e(5, 2, "b")];
        let holey = with_missing_set(peer(1, (5, 0), log.clone(), 5, &[1, 2]), &["a"]);
        let fresh = PeerLog {
            osd: 0,
            state: None,
        };
        let peers = [
            fresh.clone(),
            holey.clone(),
            peer(2, (5, 0), log, 5, &[1, 2]),
        ];
        let p = plan(&[0, 1], &peers).unwrap();
        assert_eq!(p.catchup[&0], Catchup::Backfill);
        assert_eq!(p.auth_missing, ["a".to_string()].into());
        assert_eq!(p.sources["a"], vec![2]);
        // Without osd.2 nobody has "a" as the log has it.
        assert_eq!(
            plan(&[0, 1], &[fresh, holey]),
            Err(Blocked::Unfound { object: "a".into() })
        );
    }
}
