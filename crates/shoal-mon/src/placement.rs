//! Stepping a pool's `pgp_num` toward its target (`pool set NAME pgp_num
//! N`, and `pg_num` raises, which set the target too): each step moves as
//! many PGs to their own placement as the misplaced budget allows, so that
//! at most `target_max_misplaced_ratio` of all PGs are misplaced at once
//! (Ceph's manager does the same with `pgp_num_target`). The leader takes
//! the next step once every up OSD reported PG states of the map with the
//! previous one.

use shoal_map::{Pool, pg_mask, stable_mod};

/// How many of a pool's `pg_num` PGs are placed differently with `to`
/// than with `from` as `pgp_num` (their CRUSH input changes).
pub fn moved_pgs(pg_num: u32, from: u32, to: u32) -> u32 {
    let (mf, mt) = (pg_mask(from), pg_mask(to));
    (0..pg_num)
        .filter(|&s| stable_mod(s, from, mf) != stable_mod(s, to, mt))
        .count() as u32
}

/// The next `pgp_num` of `pool` on its way to `pgp_num_target`, while
/// `not_clean` of the cluster's `total` PGs are not active+clean: the
/// furthest value whose moves fit in the budget (`max_ratio` of `total`,
/// less what is misplaced already), or one step when the cluster is clean
/// and even one step exceeds the budget (a small cluster still moves);
/// `None` when there is nothing to do or no room now.
pub fn next_pgp_num(pool: &Pool, total: u32, not_clean: u32, max_ratio: f64) -> Option<u32> {
    let (from, target) = (pool.pgp_num, pool.pgp_num_target);
    if from == target {
        return None;
    }
    let budget = ((total as f64 * max_ratio).floor() as u32).saturating_sub(not_clean);
    let toward = |k: u32| {
        if target > from { from + k } else { from - k }
    };
    let distance = from.abs_diff(target);
    // The moves grow with the step: the largest step within the budget.
    let (mut lo, mut hi) = (0u32, distance);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if moved_pgs(pool.pg_num, from, toward(mid)) <= budget {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    match lo {
        0 if not_clean == 0 => Some(toward(1)),
        0 => None,
        k => Some(toward(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(pg_num: u32, pgp_num: u32, target: u32) -> Pool {
        let mut p = Pool::new_replicated(1, "data", 3, pg_num, 0);
        p.pgp_num = pgp_num;
        p.pgp_num_target = target;
        p
    }

    #[test]
    fn raising_pgp_num_moves_the_new_seeds_and_no_more() {
        assert_eq!(moved_pgs(32, 8, 8), 0);
        // 8 -> 16 of 32 PGs: seeds 8..16 and 24..32 get their own inputs.
        assert_eq!(moved_pgs(32, 8, 16), 16);
        assert_eq!(moved_pgs(32, 16, 8), 16, "symmetric");
        assert!(moved_pgs(32, 8, 9) >= 1);
    }

    #[test]
    fn steps_fit_the_misplaced_budget() {
        let p = pool(256, 32, 256);
        // 5% of 400 PGs = 20, nothing misplaced: a step moving at most 20.
        let next = next_pgp_num(&p, 400, 0, 0.05).unwrap();
        assert!(next > 32 && next < 256, "{next}");
        assert!(moved_pgs(256, 32, next) <= 20);
        assert!(moved_pgs(256, 32, next + 1) > 20, "the largest such step");
        // Budget spent: wait.
        assert_eq!(next_pgp_num(&p, 400, 20, 0.05), None);
        // A small cluster (budget 0) that is clean still moves one step.
        assert_eq!(next_pgp_num(&pool(32, 8, 32), 16, 0, 0.05), Some(9));
        assert_eq!(next_pgp_num(&pool(32, 8, 32), 16, 1, 0.05), None);
        // Down as well as up; nothing to do at the target.
        assert_eq!(next_pgp_num(&pool(32, 32, 8), 1000, 0, 0.05), Some(8));
        assert_eq!(next_pgp_num(&pool(32, 8, 8), 1000, 0, 0.05), None);
    }
}
