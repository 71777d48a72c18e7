//! Legacy straw lengths: Ceph's `crush_calc_straw` (builder.c), in `double`
//! with `pow()`, for both `straw_calc_version` 0 and >= 1.

use super::c_double_to_u32;
use crate::model::Weight;

/// Item indices sorted by ascending weight, ties in item order: the insertion
/// sort of `crush_calc_straw`.
fn sort_by_weight(weights: &[Weight]) -> Vec<usize> {
    let mut reverse: Vec<usize> = Vec::with_capacity(weights.len());
    for (i, &w) in weights.iter().enumerate() {
        let at = reverse
            .iter()
            .position(|&r| w < weights[r])
            .unwrap_or(reverse.len());
        reverse.insert(at, i);
    }
    reverse
}

/// Straw lengths of a legacy straw bucket (`crush_calc_straw`), one per item,
/// bit-identical with Ceph for `straw_calc_version` 0 and >= 1.
///
/// Items are visited by ascending weight. Zero-weight items get 0. Version 0
/// gives items of equal weight the same straw but keeps counting zero-weight
/// items in `numleft`; version 1 drops each visited item from `numleft`.
pub fn calc_straws(weights: &[Weight], straw_calc_version: u8) -> Vec<u32> {
    let size = weights.len();
    let reverse = sort_by_weight(weights);
    let w = |k: usize| weights[reverse[k]];
    let mut straws = vec![0u32; size];
    // `numleft` is a C `int`; it is at least 1 wherever it is used.
    let mut numleft = size as i64;
    let mut straw = 1.0f64;
    let mut wbelow = 0.0f64;
    let mut lastw = 0.0f64;
    let mut i = 0;
    while i < size {
        if w(i) == 0 {
            straws[reverse[i]] = 0;
            i += 1;
            if straw_calc_version >= 1 {
                numleft -= 1;
            }
            continue;
        }
        straws[reverse[i]] = c_double_to_u32(straw * 65536.0);
        i += 1;
        if i == size {
            break;
        }
        if straw_calc_version == 0 {
            if w(i) == w(i - 1) {
                continue;
            }
            wbelow += (f64::from(w(i - 1)) - lastw) * numleft as f64;
            let same = (i..size).take_while(|&j| w(j) == w(i)).count();
            numleft -= same as i64;
        } else {
            wbelow += (f64::from(w(i - 1)) - lastw) * numleft as f64;
            numleft -= 1;
        }
        // C: `numleft * (weights[a] - weights[b])` is unsigned 32-bit arithmetic.
        let wnext = f64::from((numleft as u32).wrapping_mul(w(i).wrapping_sub(w(i - 1))));
        let pbelow = wbelow / (wbelow + wnext);
        straw *= (1.0 / pbelow).powf(1.0 / numleft as f64);
        lastw = f64::from(w(i - 1));
    }
    straws
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_is_stable_ascending() {
        assert_eq!(sort_by_weight(&[3, 1, 3, 0, 1]), vec![3, 1, 4, 0, 2]);
        assert!(sort_by_weight(&[]).is_empty());
    }

    #[test]
    fn single_and_empty() {
        assert!(calc_straws(&[], 0).is_empty());
        assert_eq!(calc_straws(&[0x10000], 0), vec![0x10000]);
        assert_eq!(calc_straws(&[0], 1), vec![0]);
    }

    #[test]
    fn equal_weights_v0_all_equal_v1_grow() {
        let w = [0x10000; 3];
        // Version 0: identical weights share one straw.
        assert_eq!(calc_straws(&w, 0), vec![0x10000; 3]);
        // Version 1: wnext = 0 so pbelow = 1 and the straw stays 1.0 as well.
        assert_eq!(calc_straws(&w, 1), vec![0x10000; 3]);
    }

    #[test]
    fn two_weights_by_hand() {
        // weights 1.0, 2.0 (v1): wbelow = 1*2 = 2, numleft = 1, wnext = 1*1,
        // pbelow = 2/3, straw = 1.5 -> 98304.
        assert_eq!(calc_straws(&[0x10000, 0x20000], 1), vec![0x10000, 98304]);
        // v0: numleft = 2 - 1 = 1 as well: same result.
        assert_eq!(calc_straws(&[0x20000, 0x10000], 0), vec![98304, 0x10000]);
    }

    #[test]
    fn zero_weights_differ_between_versions() {
        // weights 0, 1.0, 2.0. v0 keeps the zero item in numleft:
        // wbelow = 1*3 = 3, numleft = 3 - 1 = 2, wnext = 2*1 = 2, pbelow = 3/5,
        // straw = (5/3)^(1/2) = 1.2909944... -> 84606.
        // v1 drops it: wbelow = 1*2 = 2, numleft = 1, wnext = 1, straw = 1.5.
        let w = [0, 0x10000, 0x20000];
        let v0 = calc_straws(&w, 0);
        let v1 = calc_straws(&w, 1);
        assert_eq!(v0, vec![0, 0x10000, 84606]);
        assert_eq!(v1, vec![0, 0x10000, 98304]);
    }

    #[test]
    fn equal_then_larger_differs_between_versions() {
        // weights 1, 1, 2 (x 0x10000).
        // v0: after the two equal items wbelow = 1*3 = 3, numleft = 3 - 1 = 2,
        //     wnext = 2*1 = 2, pbelow = 3/5, straw = sqrt(5/3).
        // v1: item 2 (equal): wbelow = 1*3 = 3, numleft = 2, wnext = 0,
        //     pbelow = 1; item 3: wbelow += 0, numleft = 1, wnext = 1,
        //     pbelow = 3/4, straw = 4/3.
        let w = [0x10000, 0x10000, 0x20000];
        assert_eq!(calc_straws(&w, 0), vec![0x10000, 0x10000, 84606]);
        assert_eq!(calc_straws(&w, 1), vec![0x10000, 0x10000, 87381]);
    }
}
