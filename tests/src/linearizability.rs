//! A linearizability checker for histories of one register (whole-object
//! puts and gets), in the style of Wing & Gong with Lowe's memoisation:
//! search for an order of the operations that respects real time (an
//! operation that finished before another started comes first) and the
//! register's semantics (a read returns the last write before it).
//!
//! Operations that never returned (a put that timed out) may take effect
//! at any time after they started, or never.

use std::collections::HashSet;

/// What an operation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    /// Wrote this value.
    Write(u64),
    /// Read this value (`None`: the object did not exist).
    Read(Option<u64>),
}

/// One operation of a history, timed by the client.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// When it was invoked (any monotonic clock, e.g. ns since the start).
    pub start: u64,
    /// When its answer came back; `None`: it never did (it may or may not
    /// have taken effect). Reads that never came back should be left out.
    pub end: Option<u64>,
    /// The operation and its result.
    pub op: RegisterOp,
}

/// Checks `history` against a register starting at `initial`; on failure
/// says how far the longest linearizable prefix got.
pub fn check_register(history: &[Event], initial: Option<u64>) -> Result<(), String> {
    let n = history.len();
    let words = n.div_ceil(64);
    let end = |i: usize| history[i].end.unwrap_or(u64::MAX);
    let must = history.iter().filter(|e| e.end.is_some()).count();
    let mut seen: HashSet<(Vec<u64>, Option<u64>)> = HashSet::new();
    // Depth-first search over (linearized set, register value).
    let mut stack = vec![(vec![0u64; words], initial, 0usize)];
    let mut best = 0;
    while let Some((done, value, count)) = stack.pop() {
        if count == must
            && (0..n).all(|i| history[i].end.is_none() || done[i / 64] & (1 << (i % 64)) != 0)
        {
            return Ok(());
        }
        best = best.max(count);
        if !seen.insert((done.clone(), value)) {
            continue;
        }
        let is_done = |i: usize| done[i / 64] & (1 << (i % 64)) != 0;
        // An operation can go next only if it started before every
        // remaining operation finished.
        let horizon = (0..n)
            .filter(|&i| !is_done(i))
            .map(end)
            .min()
            .unwrap_or(u64::MAX);
        for i in (0..n).filter(|&i| !is_done(i) && history[i].start < horizon) {
            let next = match history[i].op {
                RegisterOp::Write(v) => Some(v),
                RegisterOp::Read(r) if r == value => value,
                RegisterOp::Read(_) => continue,
            };
            let mut d = done.clone();
            d[i / 64] |= 1 << (i % 64);
            let counted = count + usize::from(history[i].end.is_some());
            stack.push((d, next, counted));
        }
    }
    Err(format!(
        "not linearizable: at most {best} of {must} completed operations can be ordered"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(start: u64, end: u64, op: RegisterOp) -> Event {
        Event {
            start,
            end: Some(end),
            op,
        }
    }

    use RegisterOp::{Read, Write};

    #[test]
    fn sequential_history_passes() {
        let h = [
            ev(0, 1, Read(None)),
            ev(2, 3, Write(1)),
            ev(4, 5, Read(Some(1))),
            ev(6, 7, Write(2)),
            ev(8, 9, Read(Some(2))),
        ];
        assert!(check_register(&h, None).is_ok());
    }

    #[test]
    fn stale_read_after_a_finished_write_fails() {
        let h = [
            ev(0, 1, Write(1)),
            ev(2, 3, Write(2)),
            ev(4, 5, Read(Some(1))),
        ];
        assert!(check_register(&h, None).is_err());
    }

    #[test]
    fn concurrent_operations_may_go_either_way() {
        // The read overlaps both writes: 1 or 2 are both fine.
        for seen in [1, 2] {
            let h = [
                ev(0, 10, Write(1)),
                ev(1, 11, Write(2)),
                ev(2, 12, Read(Some(seen))),
            ];
            assert!(check_register(&h, None).is_ok(), "read {seen}");
        }
        // Two reads after both writes must agree on the winner... and
        // then cannot flip back.
        let h = [
            ev(0, 10, Write(1)),
            ev(1, 11, Write(2)),
            ev(20, 21, Read(Some(2))),
            ev(22, 23, Read(Some(1))),
        ];
        assert!(check_register(&h, None).is_err());
    }

    #[test]
    fn a_write_that_never_returned_may_or_may_not_apply() {
        let lost = Event {
            start: 0,
            end: None,
            op: Write(9),
        };
        assert!(check_register(&[lost, ev(5, 6, Read(None))], None).is_ok());
        assert!(check_register(&[lost, ev(5, 6, Read(Some(9)))], None).is_ok());
        // But a read cannot see it go away again without another write.
        let h = [lost, ev(5, 6, Read(Some(9))), ev(7, 8, Read(None))];
        assert!(check_register(&h, None).is_err());
        // Nor can a read see a value never written.
        assert!(check_register(&[ev(0, 1, Read(Some(3)))], None).is_err());
    }

    #[test]
    fn a_longer_interleaved_history_is_handled() {
        // Four clients, 200 overlapping writes and reads, each read seeing
        // the latest write that finished before it began.
        let mut h = Vec::new();
        let mut last = None;
        for k in 0..200u64 {
            let t = k * 10;
            if k % 2 == 0 {
                h.push(ev(t, t + 15, Write(k)));
                last = Some(k);
            } else {
                h.push(ev(t + 6, t + 7, Read(last)));
            }
        }
        assert!(check_register(&h, None).is_ok());
    }
}
