//! Scrub's judgement, sans IO: given each chain member's copy of one
//! object (version, size, digests of metadata and, for a deep scrub, of
//! the data as read — or a read error, or no copy), which copies are
//! authoritative and which are bad. The copies that agree with the most
//! others win (the head's side on a tie); unreadable copies are always bad.

use shoal_proto::rep::ScrubEntry;

/// An object whose copies differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The object.
    pub object: String,
    /// Members with the authoritative copy (empty: none readable).
    pub good: Vec<i32>,
    /// Members with a bad, unreadable or missing copy, or an extra one.
    pub bad: Vec<i32>,
    /// What differs, for people.
    pub why: String,
}

type Key<'a> = Option<(
    shoal_proto::osd::ObjVersion,
    u64,
    &'a [u8; 32],
    Option<&'a [u8; 32]>,
)>;

fn key(e: Option<&ScrubEntry>) -> Key<'_> {
    e.map(|e| (e.version, e.size, &e.meta_digest, e.data_digest.as_ref()))
}

/// Judges `copies` (member, its entry or `None` without a copy), head
/// first; `None` when they all agree.
pub fn judge(object: &str, copies: &[(i32, Option<&ScrubEntry>)]) -> Option<Verdict> {
    let readable: Vec<(i32, Key<'_>)> = copies
        .iter()
        .filter(|(_, e)| e.is_none_or(|e| e.error.is_empty()))
        .map(|(m, e)| (*m, key(*e)))
        .collect();
    // The biggest group of equal copies; the earliest member breaks ties.
    let mut best: Option<(usize, usize, Key<'_>)> = None;
    for (pos, (_, k)) in readable.iter().enumerate() {
        let n = readable.iter().filter(|(_, other)| other == k).count();
        let first = readable
            .iter()
            .position(|(_, other)| other == k)
            .unwrap_or(pos);
        if best.is_none_or(|(bn, bf, _)| n > bn || (n == bn && first < bf)) {
            best = Some((n, first, *k));
        }
    }
    let auth = best.map(|b| b.2);
    let good: Vec<i32> = readable
        .iter()
        .filter(|(_, k)| Some(*k) == auth)
        .map(|(m, _)| *m)
        .collect();
    let mut bad = Vec::new();
    let mut why = Vec::new();
    for (m, e) in copies {
        if good.contains(m) {
            continue;
        }
        bad.push(*m);
        let reason = match (e, auth) {
            (Some(e), _) if !e.error.is_empty() => format!("read error: {}", e.error),
            (None, _) => "no copy".to_string(),
            (Some(_), Some(None)) => "a copy that should not exist".to_string(),
            (Some(e), Some(Some((v, size, meta, data)))) => {
                if e.version != v {
                    format!("version {} instead of {v}", e.version)
                } else if e.size != size {
                    format!("size {} instead of {size}", e.size)
                } else if &e.meta_digest != meta {
                    "xattrs or omap differ".to_string()
                } else if e.data_digest.as_ref() != data {
                    "data differs".to_string()
                } else {
                    "differs".to_string()
                }
            }
            (Some(_), None) => "no readable copy to compare with".to_string(),
        };
        why.push(format!("osd.{m}: {reason}"));
    }
    (!bad.is_empty()).then(|| Verdict {
        object: object.to_string(),
        good,
        bad,
        why: why.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::osd::ObjVersion;

    fn entry(seq: u64, data: u8) -> ScrubEntry {
        ScrubEntry {
            name: "x".into(),
            version: ObjVersion { epoch: 1, seq },
            size: 10,
            meta_digest: [0; 32],
            data_digest: Some([data; 32]),
            error: String::new(),
        }
    }

    #[test]
    fn equal_copies_are_consistent() {
        let a = entry(1, 7);
        assert_eq!(
            judge("x", &[(0, Some(&a)), (1, Some(&a)), (2, Some(&a))]),
            None
        );
        assert_eq!(judge("x", &[(0, None), (1, None)]), None);
    }

    #[test]
    fn the_majority_wins_and_the_odd_copy_is_bad() {
        let (good, rotten) = (entry(1, 7), entry(1, 9));
        let v = judge(
            "x",
            &[(0, Some(&rotten)), (1, Some(&good)), (2, Some(&good))],
        )
        .unwrap();
        assert_eq!((v.good, v.bad), (vec![1, 2], vec![0]));
        assert!(v.why.contains("osd.0: data differs"), "{}", v.why);
    }

    #[test]
    fn unreadable_missing_and_extra_copies_are_bad() {
        let good = entry(1, 7);
        let mut broken = entry(1, 7);
        broken.error = "checksum mismatch".into();
        let v = judge("x", &[(0, Some(&good)), (1, Some(&broken)), (2, None)]).unwrap();
        assert_eq!((v.good, v.bad), (vec![0], vec![1, 2]));
        assert!(
            v.why.contains("read error") && v.why.contains("no copy"),
            "{}",
            v.why
        );
        let v = judge("x", &[(0, None), (1, None), (2, Some(&good))]).unwrap();
        assert_eq!((v.good, v.bad), (vec![0, 1], vec![2]));
    }

    #[test]
    fn a_tie_goes_to_the_heads_side() {
        let (a, b) = (entry(1, 1), entry(1, 2));
        let v = judge("x", &[(0, Some(&a)), (1, Some(&b))]).unwrap();
        assert_eq!((v.good, v.bad), (vec![0], vec![1]));
    }
}
