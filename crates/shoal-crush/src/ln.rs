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
