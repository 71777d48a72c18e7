//! The planners against an in-memory shard: S3's versioning semantics (a
//! reference model), the module's invariants and data accounting after
//! every step of random histories, and stale plans that still pass their
//! guards doing exactly what a fresh plan would.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use proptest::prelude::*;

use super::*;
use crate::model::index::{DOOMED, parse_doomed_key};

type Omap = BTreeMap<Vec<u8>, Vec<u8>>;

const KEY: &str = "k";

fn state(omap: &Omap) -> KeyState {
    let get = |k: &[u8]| omap.get(k).cloned();
    let mut st = KeyState::parse(KEY, get(&object_key(KEY)), get(&head_key(KEY))).unwrap();
    st.fill(KEY, get).unwrap();
    st
}

fn record(data: &str) -> ObjectRecord {
    let mut r = ObjectRecord::sample("e", 1, 0);
    r.segments[0].data = data.into();
    r
}

/// `(token, entry)` of every `v` entry of the key, newest first.
fn entries(omap: &Omap) -> Vec<(String, Entry)> {
    let prefix = versions_prefix(KEY);
    omap.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, v)| {
            let token = String::from_utf8(k[prefix.len()..].to_vec()).unwrap();
            (token, Entry::decode(KEY, v.clone()).unwrap())
        })
        .collect()
}

/// The key's versions newest first: (version id, data; none for markers).
fn versions(omap: &Omap) -> Vec<(String, Option<String>)> {
    let data = |r: &ObjectRecord| (!r.delete_marker).then(|| r.segments[0].data.clone());
    let mut out: Vec<_> = entries(omap)
        .iter()
        .map(|(_, e)| (e.record.version_id.clone().unwrap(), data(&e.record)))
        .collect();
    if out.is_empty() {
        if let Some(raw) = omap.get(&object_key(KEY)) {
            let r = ObjectRecord::decode(KEY, raw).unwrap();
            assert_eq!(r.version_id, None, "o with a version id but no v entries");
            out.push((NULL_VERSION.into(), data(&r)));
        }
    }
    out
}

fn next_after(omap: &Omap, token: &str) -> Option<(String, Entry)> {
    let prefix = versions_prefix(KEY);
    let from = Bound::Excluded(version_key(KEY, token));
    omap.range((from, Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(&prefix))
        .next()
        .map(|(k, v)| {
            let token = String::from_utf8(k[prefix.len()..].to_vec()).unwrap();
            (token, Entry::decode(KEY, v.clone()).unwrap())
        })
}

#[derive(Clone, Debug)]
enum Op {
    Put(WriteMode),
    Delete(WriteMode),
    /// Remove the version at this index of the reference list (modulo).
    Remove(usize),
}

/// Plans `op` on `omap` as the gateway does (`data` names a new write).
fn plan(
    omap: &Omap,
    op: &Op,
    versions_now: &[(String, Option<String>)],
    data: &str,
    t: &Stamp,
) -> Planned {
    let st = state(omap);
    match op {
        Op::Put(mode) => plan_write(KEY, &st, record(data), *mode, t),
        Op::Delete(mode) => plan_delete(KEY, &st, *mode, "owner", t),
        Op::Remove(i) => {
            let id = &versions_now[i % versions_now.len()].0;
            match token_of(&st, id) {
                None => plan_remove_implicit(KEY, &st, t),
                Some(token) => {
                    let target =
                        Entry::decode(KEY, omap[&version_key(KEY, &token)].clone()).unwrap();
                    let next = next_after(omap, &token);
                    plan_remove_version(
                        KEY,
                        &st,
                        &token,
                        &target,
                        next.as_ref().map(|(t, e)| (t.as_str(), e)),
                        t,
                    )
                }
            }
        }
    }
}

/// S3's semantics, newest version first.
#[derive(Default)]
struct Reference(Vec<(String, Option<String>)>);

impl Reference {
    fn apply(&mut self, op: &Op, data: &str, reported: Option<String>) {
        let v = &mut self.0;
        match op {
            Op::Put(WriteMode::NewVersion) => v.insert(0, (reported.unwrap(), Some(data.into()))),
            Op::Delete(WriteMode::NewVersion) => v.insert(0, (reported.unwrap(), None)),
            Op::Put(_) => {
                v.retain(|(id, _)| id != NULL_VERSION);
                v.insert(0, (NULL_VERSION.into(), Some(data.into())));
            }
            Op::Delete(WriteMode::Unversioned) => v.clear(),
            Op::Delete(WriteMode::NullVersion) => {
                v.retain(|(id, _)| id != NULL_VERSION);
                v.insert(0, (NULL_VERSION.into(), None));
            }
            Op::Remove(i) => {
                let n = i % v.len();
                v.remove(n);
            }
        }
    }
}

fn check_invariants(omap: &Omap, written: &BTreeSet<String>) {
    let vers = entries(omap);
    let head = omap
        .get(&head_key(KEY))
        .map(|raw| KeyHead::decode(KEY, raw).unwrap());
    let o = omap.get(&object_key(KEY));
    assert_eq!(head.is_some(), !vers.is_empty(), "h iff v entries");
    if let Some(h) = &head {
        assert_eq!(h.latest, vers[0].0, "h.latest is the newest entry");
        let nulls: Vec<&String> = vers
            .iter()
            .filter(|(_, e)| e.record.version_id.as_deref() == Some(NULL_VERSION))
            .map(|(t, _)| t)
            .collect();
        assert!(nulls.len() <= 1, "two null versions");
        assert_eq!(h.null.as_ref(), nulls.first().copied(), "h.null");
        let latest = &vers[0].1;
        if latest.record.delete_marker {
            assert!(o.is_none(), "o present under a delete marker");
        } else {
            assert_eq!(o, Some(&latest.raw), "o is the latest version");
        }
    }
    let mut live = BTreeSet::new();
    for raw in o.into_iter().chain(vers.iter().map(|(_, e)| &e.raw)) {
        live.extend(
            ObjectRecord::decode(KEY, raw)
                .unwrap()
                .data_names()
                .map(String::from),
        );
    }
    let doomed: BTreeSet<String> = omap
        .keys()
        .filter(|k| k.first() == Some(&DOOMED))
        .filter_map(|k| parse_doomed_key(k).map(|(_, d)| d))
        .collect();
    assert!(
        live.is_disjoint(&doomed),
        "live data doomed: {:?}",
        live.intersection(&doomed)
    );
    let accounted: BTreeSet<String> = live.union(&doomed).cloned().collect();
    assert_eq!(&accounted, written, "data leaked or invented");
}

fn mode() -> impl Strategy<Value = WriteMode> {
    prop_oneof![Just(WriteMode::NewVersion), Just(WriteMode::NullVersion)]
}

/// Ops of a bucket that may start unversioned and, once versioning was
/// set, is only ever enabled or suspended.
fn history() -> impl Strategy<Value = Vec<Op>> {
    let unversioned = prop::collection::vec(
        prop_oneof![
            Just(Op::Put(WriteMode::Unversioned)),
            Just(Op::Delete(WriteMode::Unversioned))
        ],
        0..3,
    );
    let versioned = prop::collection::vec(
        prop_oneof![
            mode().prop_map(Op::Put),
            mode().prop_map(Op::Delete),
            (0usize..8).prop_map(Op::Remove),
        ],
        0..24,
    );
    (unversioned, versioned).prop_map(|(mut a, b)| {
        a.extend(b);
        a
    })
}

/// Clocks that may stall or go back (skewed gateways).
fn clocks() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(0u64..2_000, 32)
}

fn stamp(i: usize, clocks: &[u64]) -> Stamp {
    let now_us = 1_000_000 + clocks[i % clocks.len()];
    Stamp {
        now_us,
        random: i as u32,
        due_ms: now_us / 1000,
    }
}

proptest! {
    #[test]
    fn histories_follow_s3_semantics_and_keep_the_invariants(ops in history(), clocks in clocks()) {
        let mut omap = Omap::new();
        let mut reference = Reference::default();
        let mut written = BTreeSet::new();
        for (i, op) in ops.iter().enumerate() {
            if matches!(op, Op::Remove(_)) && reference.0.is_empty() {
                continue;
            }
            let data = format!("d{i}");
            let planned = plan(&omap, op, &reference.0, &data, &stamp(i, &clocks));
            prop_assert!(planned.change.apply_to(&mut omap), "guards fail on the state read");
            if matches!(op, Op::Put(_)) {
                written.insert(data.clone());
            }
            reference.apply(op, &data, planned.version_id.clone());
            prop_assert_eq!(&versions(&omap), &reference.0, "after {:?}", op);
            check_invariants(&omap, &written);
        }
    }

    #[test]
    fn a_stale_plan_that_passes_its_guards_is_a_fresh_plan(
        setup in history(), a in (0usize..3, 0usize..8), b in (0usize..3, 0usize..8),
        ma in mode(), mb in mode(), clocks in clocks()
    ) {
        let mut omap = Omap::new();
        let mut reference = Reference::default();
        for (i, op) in setup.iter().enumerate() {
            if matches!(op, Op::Remove(_)) && reference.0.is_empty() {
                continue;
            }
            let data = format!("d{i}");
            let planned = plan(&omap, op, &reference.0, &data, &stamp(i, &clocks));
            prop_assert!(planned.change.apply_to(&mut omap));
            reference.apply(op, &data, planned.version_id);
        }
        let pick = |(kind, n): (usize, usize), m: WriteMode| match kind {
            0 => Op::Put(m),
            1 => Op::Delete(m),
            _ => Op::Remove(n),
        };
        let (first, second) = (pick(a, ma), pick(b, mb));
        if reference.0.is_empty() && (matches!(first, Op::Remove(_)) || matches!(second, Op::Remove(_))) {
            return Ok(());
        }
        let t1 = stamp(100, &clocks);
        let t2 = stamp(101, &clocks);
        let stale = plan(&omap, &second, &reference.0, "second", &t2);
        let p1 = plan(&omap, &first, &reference.0, "first", &t1);
        prop_assert!(p1.change.apply_to(&mut omap));
        let mut via_stale = omap.clone();
        if stale.change.apply_to(&mut via_stale) {
            // The ids the stale plan saw must still exist for a fresh one.
            let fresh = plan(&omap, &second, &reference.0, "second", &t2);
            let mut via_fresh = omap.clone();
            prop_assert!(fresh.change.apply_to(&mut via_fresh));
            prop_assert_eq!(via_stale, via_fresh);
        }
    }
}

proptest! {
    /// Index entries and version ids from outside (a corrupt shard, a
    /// hostile client) are errors, never panics.
    #[test]
    fn hostile_entries_and_ids_are_errors(
        raw in prop::collection::vec(any::<u8>(), 0..200),
        key in "[^\\x00]{0,20}",
        id in ".{0,40}",
    ) {
        let _ = KeyState::parse(&key, Some(raw.clone()), None);
        let _ = KeyState::parse(&key, None, Some(raw.clone()));
        let _ = KeyState::parse(&key, Some(raw.clone()), Some(raw.clone()));
        let _ = Entry::decode(&key, raw.clone());
        let _ = split_version_name(&String::from_utf8_lossy(&raw));
        if check_version_id(&id).is_ok() {
            prop_assert!(id == NULL_VERSION || id.len() == 24);
        }
        let _ = next_token(Some(&id), 0, 0);
    }
}

#[test]
fn tokens_sort_newest_first_and_stay_newer_than_the_latest() {
    let old = next_token(None, 1_000, 0);
    let new = next_token(None, 2_000, 0);
    assert!(new < old);
    // A clock behind the latest version still makes a newer token.
    let skewed = next_token(Some(&new), 1_500, 7);
    assert!(skewed < new);
    check_version_id(&skewed).unwrap();
    check_version_id(NULL_VERSION).unwrap();
    for bad in ["", "NULL", "abc", &"g".repeat(24), &"A".repeat(24)] {
        assert!(check_version_id(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn version_keys_keep_key_order() {
    // Every version of "a" sorts before the key "a!" and "a/b".
    let a = version_key("a", &next_token(None, 0, 0));
    assert!(a < versions_prefix("a!") && a < versions_prefix("a/b"));
    assert_eq!(split_version_name("a/b\0tok"), Some(("a/b", "tok")));
}
