//! `crush_ln`: 2^44 * log2(x + 1) in fixed point, the heart of straw2.

use crate::ln_tables::{LL, RH_LH};

/// Fixed-point `2^44 * log2(xin + 1)` for `xin` in `0..=0xffff`, bit-exact with
/// Ceph's `crush_ln` (src/crush/mapper.c).
#[inline]
pub fn crush_ln(xin: u32) -> u64 {
    let mut x = xin + 1;
    let mut iexpon: i32 = 15;
    // Normalise x into [0x8000, 0x10000].
    if x & 0x18000 == 0 {
        let bits = (x & 0x1ffff).leading_zeros() as i32 - 16;
        x <<= bits;
        iexpon = 15 - bits;
    }
    let index1 = ((x >> 8) << 1) as usize;
    let rh = RH_LH[index1 - 256];
    let mut lh = RH_LH[index1 + 1 - 256];
    let xl64 = (x as u64).wrapping_mul(rh) >> 48;
    let result = (iexpon as u64) << 44;
    lh = lh.wrapping_add(LL[(xl64 & 0xff) as usize]);
    lh >>= 48 - 12 - 32;
    result.wrapping_add(lh)
}

/// The straw2 draw of one item: `(crush_ln(u) - 2^48) / weight`, truncated
/// toward zero; `i64::MIN` for a zero weight.
#[inline]
pub fn straw2_draw(u16_hash: u32, weight: u32) -> i64 {
    if weight == 0 {
        return i64::MIN;
    }
    let ln = crush_ln(u16_hash & 0xffff) as i64 - 0x1_0000_0000_0000;
    ln / weight as i64
}

/// A straw2 item weight prepared for [`straw2_draw_fast`]: the division by
/// the weight becomes a multiplication by a precomputed reciprocal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Straw2Weight {
    weight: u32,
    /// `ceil(2^80 / weight)`, or 0 for weights 0 and 1.
    recip: u128,
}

impl Straw2Weight {
    /// Prepares `weight` (16.16 fixed point).
    pub fn new(weight: u32) -> Self {
        let recip = if weight < 2 {
            0
        } else {
            let w = weight as u128;
            (1u128 << 80).div_ceil(w)
        };
        Straw2Weight { weight, recip }
    }

    /// The weight this was prepared for.
    pub fn weight(&self) -> u32 {
        self.weight
    }
}

/// Same result as [`straw2_draw`], without a 64-bit division.
///
/// With `a = 2^48 - crush_ln(u) <= 2^48`, `2 <= w < 2^32` and
/// `m = ceil(2^80 / w)`, `a * m / 2^80 = a / w + d` with `0 <= d < 2^-32 < 1 / w`,
/// so `floor(a * m / 2^80) = floor(a / w)` exactly; `-floor(a / w)` is C's
/// truncating `ln / w` for `ln = -a`.
#[inline]
pub fn straw2_draw_fast(u16_hash: u32, w: Straw2Weight) -> i64 {
    match w.weight {
        0 => i64::MIN,
        1 => crush_ln(u16_hash & 0xffff) as i64 - 0x1_0000_0000_0000,
        _ => {
            let a = 0x1_0000_0000_0000u64 - crush_ln(u16_hash & 0xffff);
            -(((a as u128 * w.recip) >> 80) as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fast_draw_is_exact(u in 0u32..=0xffff, w in any::<u32>()) {
            prop_assert_eq!(straw2_draw_fast(u, Straw2Weight::new(w)), straw2_draw(u, w));
        }
    }

    #[test]
    fn fast_draw_is_exact_at_the_edges() {
        for w in [
            1,
            2,
            3,
            0x10000,
            0xffff_ffff,
            0xffff_fffe,
            0x8000_0001,
            7_287_079,
        ] {
            for u in [0, 1, 2, 0x7fff, 0x8000, 0xfffe, 0xffff] {
                assert_eq!(
                    straw2_draw_fast(u, Straw2Weight::new(w)),
                    straw2_draw(u, w),
                    "u {u} w {w}"
                );
            }
        }
    }
}
