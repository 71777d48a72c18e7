//! Robert Jenkins' 32-bit integer hash as CRUSH uses it (`CRUSH_HASH_RJENKINS1`,
//! Ceph `src/crush/hash.c`). All arithmetic wraps on `u32`.

/// The only hash algorithm CRUSH buckets use (`hash 0` in the text format).
pub const HASH_RJENKINS1: u8 = 0;

const SEED: u32 = 1_315_423_911;

#[inline(always)]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 13);
    *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 8);
    *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 13);
    *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 12);
    *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 16);
    *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 5);
    *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 3);
    *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 10);
    *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 15);
}

/// `crush_hash32_2(RJENKINS1, a, b)`.
#[inline(always)]
pub fn hash32_2(mut a: u32, mut b: u32) -> u32 {
    let mut h = SEED ^ a ^ b;
    let (mut x, mut y) = (231_232u32, 1232u32);
    mix(&mut a, &mut b, &mut h);
    mix(&mut x, &mut a, &mut h);
    mix(&mut b, &mut y, &mut h);
    h
}

/// `crush_hash32_3(RJENKINS1, a, b, c)`.
#[inline(always)]
pub fn hash32_3(mut a: u32, mut b: u32, mut c: u32) -> u32 {
    let mut h = SEED ^ a ^ b ^ c;
    let (mut x, mut y) = (231_232u32, 1232u32);
    mix(&mut a, &mut b, &mut h);
    mix(&mut c, &mut x, &mut h);
    mix(&mut y, &mut a, &mut h);
    mix(&mut b, &mut x, &mut h);
    mix(&mut y, &mut c, &mut h);
    h
}

/// `crush_hash32_4(RJENKINS1, a, b, c, d)`.
#[inline(always)]
pub fn hash32_4(mut a: u32, mut b: u32, mut c: u32, mut d: u32) -> u32 {
    let mut h = SEED ^ a ^ b ^ c ^ d;
    let (mut x, mut y) = (231_232u32, 1232u32);
    mix(&mut a, &mut b, &mut h);
    mix(&mut c, &mut d, &mut h);
    mix(&mut a, &mut x, &mut h);
    mix(&mut y, &mut b, &mut h);
    mix(&mut c, &mut x, &mut h);
    mix(&mut y, &mut d, &mut h);
    h
}

/// Number of items [`hash32_3_lanes`] hashes at once.
pub const LANES: usize = 8;

/// One step of `mix` over all lanes; written element-wise so the compiler
/// turns it into vector instructions.
macro_rules! lane_step {
    ($a:ident, $b:ident, $c:ident, $shift:tt, $n:expr) => {
        for i in 0..LANES {
            $a[i] = $a[i].wrapping_sub($b[i]).wrapping_sub($c[i]) ^ lane_step!(@s $c[i], $shift, $n);
        }
    };
    (@s $v:expr, >>, $n:expr) => { $v >> $n };
    (@s $v:expr, <<, $n:expr) => { $v << $n };
}

#[inline(always)]
fn mix_lanes(a: &mut [u32; LANES], b: &mut [u32; LANES], c: &mut [u32; LANES]) {
    lane_step!(a, b, c, >>, 13);
    lane_step!(b, c, a, <<, 8);
    lane_step!(c, a, b, >>, 13);
    lane_step!(a, b, c, >>, 12);
    lane_step!(b, c, a, <<, 16);
    lane_step!(c, a, b, >>, 5);
    lane_step!(a, b, c, >>, 3);
    lane_step!(b, c, a, <<, 10);
    lane_step!(c, a, b, >>, 15);
}

/// `hash32_3(a, b[i], c)` for [`LANES`] values of `b` at once: what straw
/// and straw2 buckets compute for every item with the same input and rank.
#[inline(always)]
pub fn hash32_3_lanes(a: u32, b: &[u32; LANES], c: u32) -> [u32; LANES] {
    let mut a = [a; LANES];
    let mut b = *b;
    let mut c = [c; LANES];
    let mut h = [0u32; LANES];
    for i in 0..LANES {
        h[i] = SEED ^ a[i] ^ b[i] ^ c[i];
    }
    let mut x = [231_232u32; LANES];
    let mut y = [1232u32; LANES];
    mix_lanes(&mut a, &mut b, &mut h);
    mix_lanes(&mut c, &mut x, &mut h);
    mix_lanes(&mut y, &mut a, &mut h);
    mix_lanes(&mut b, &mut x, &mut h);
    mix_lanes(&mut y, &mut c, &mut h);
    h
}

/// `ceph_str_hash_rjenkins`: Jenkins' lookup2 over a byte string, the hash
/// Ceph applies to object names (`src/common/ceph_hash.cc`).
pub fn str_hash_rjenkins(key: &[u8]) -> u32 {
    let mut a: u32 = 0x9e37_79b9;
    let mut b: u32 = a;
    let mut c: u32 = 0;
    let word = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    let mut chunks = key.chunks_exact(12);
    for block in &mut chunks {
        a = a.wrapping_add(word(&block[0..4]));
        b = b.wrapping_add(word(&block[4..8]));
        c = c.wrapping_add(word(&block[8..12]));
        mix(&mut a, &mut b, &mut c);
    }
    let tail = chunks.remainder();
    // The length is mixed in modulo 2^32, exactly like the C `__u32 length`.
    c = c.wrapping_add(key.len() as u32);
    // The first byte of c is reserved for the length, so tail bytes 8..11 go
    // into c's upper three bytes.
    for (i, &byte) in tail.iter().enumerate() {
        let v = byte as u32;
        match i {
            0..=3 => a = a.wrapping_add(v << (8 * i)),
            4..=7 => b = b.wrapping_add(v << (8 * (i - 4))),
            _ => c = c.wrapping_add(v << (8 * (i - 7))),
        }
    }
    mix(&mut a, &mut b, &mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_match_the_scalar_hash() {
        let b: [u32; LANES] = [0, 1, 7, 0xffff_fffe, 12345, 0x8000_0000, 42, u32::MAX];
        for (a, c) in [(0, 0), (17, 3), (u32::MAX, 99), (123_456_789, 0xdead_beef)] {
            let lanes = hash32_3_lanes(a, &b, c);
            for i in 0..LANES {
                assert_eq!(lanes[i], hash32_3(a, b[i], c));
            }
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(hash32_2(0, 0), 430_787_817);
        assert_eq!(hash32_2(12345, 678), 1_617_585_683);
        assert_eq!(hash32_3(1, 2, 3), 1_935_332_395);
        assert_eq!(hash32_4(1, 2, 3, 4), 1_768_759_062);
    }
}
