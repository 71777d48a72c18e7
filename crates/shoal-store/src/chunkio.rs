//! Reading chunks back from the device, verifying every checksum: a
//! mismatch is reported as `Corrupt` with the logical range, never as data.

use std::ops::Range;

use crate::device::{AlignedBuf, BlockDevice, round_up};
use crate::error::{Result, StoreError};
use crate::meta::Chunk;

/// Logical bytes a chunk holds.
pub fn chunk_range(c: &Chunk, chunk_size: u64) -> Range<u64> {
    let start = c.index * chunk_size;
    start..start + c.len as u64
}

fn corrupt(coll: &str, name: &str, range: Range<u64>) -> StoreError {
    StoreError::Corrupt {
        collection: coll.to_string(),
        object: name.to_string(),
        range,
    }
}

/// Whether `data` matches the chunk's checksum.
pub fn verify(c: &Chunk, data: &[u8]) -> bool {
    data.len() == c.len as usize && blake3::hash(data).as_bytes() == &c.csum
}

/// Reads one chunk's valid bytes; `None` when they do not match.
pub fn read_verified(dev: &dyn BlockDevice, c: &Chunk) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = AlignedBuf::for_read(round_up(c.len as u64) as usize);
    dev.read_at(&mut buf, c.phys)?;
    let data = &buf.as_slice()[..c.len as usize];
    Ok(verify(c, data).then(|| data.to_vec()))
}

/// Reads one chunk's valid bytes and checks them.
pub fn load_chunk(
    dev: &dyn BlockDevice,
    c: &Chunk,
    coll: &str,
    name: &str,
    chunk_size: u64,
) -> Result<Vec<u8>> {
    read_verified(dev, c)?.ok_or_else(|| corrupt(coll, name, chunk_range(c, chunk_size)))
}

/// A second chance for a chunk whose bytes did not match: the verified
/// bytes from wherever they are while a deferred write is landing.
pub type Recover<'a> = &'a dyn Fn(&Chunk) -> Option<Vec<u8>>;

/// The object's logical bytes `start..end` without copying them, when the
/// chunks holding them are stored back to back in logical order and all
/// verify: one IO, and the returned buffer is a slice of the one read.
/// `None` when the layout does not allow it (holes, scattered chunks, a
/// chunk that does not verify): the caller falls back to [`read_into`].
pub fn read_contiguous(
    dev: &dyn BlockDevice,
    chunks: &[Chunk],
    chunk_size: u64,
    start: u64,
    end: u64,
) -> Result<Option<bytes::Bytes>> {
    let wanted: Vec<&Chunk> = chunks
        .iter()
        .filter(|c| {
            let r = chunk_range(c, chunk_size);
            r.start < end && r.end > start
        })
        .collect();
    let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
        return Ok(None);
    };
    let first_start = chunk_range(first, chunk_size).start;
    let covered = first_start <= start && chunk_range(last, chunk_size).end >= end;
    // Consecutive indices, each but the last full, each right after the
    // previous one on the device: the run is the logical bytes themselves.
    let linear = wanted.windows(2).all(|w| {
        w[1].index == w[0].index + 1
            && u64::from(w[0].len) == chunk_size
            && w[1].phys == w[0].phys + chunk_size
    });
    if !covered || !linear || chunk_size % crate::device::BLOCK != 0 {
        return Ok(None);
    }
    let run = last.phys + round_up(last.len as u64) - first.phys;
    if run > (64 << 20) {
        return Ok(None);
    }
    let mut buf = AlignedBuf::for_read(run as usize);
    dev.read_at(&mut buf, first.phys)?;
    for c in &wanted {
        let off = (c.phys - first.phys) as usize;
        if !verify(c, &buf.as_slice()[off..off + c.len as usize]) {
            return Ok(None);
        }
    }
    let (a, b) = ((start - first_start) as usize, (end - first_start) as usize);
    Ok(Some(bytes::Bytes::from_owner(buf).slice(a..b)))
}

/// Fills `out` (the object's logical bytes `start..start + out.len()`) from
/// the chunks that overlap it; bytes no chunk holds stay zero. Chunks
/// stored back to back on the device are read with one IO.
pub fn read_into(
    dev: &dyn BlockDevice,
    chunks: &[Chunk],
    chunk_size: u64,
    start: u64,
    out: &mut [u8],
    (coll, name): (&str, &str),
    recover: Recover<'_>,
) -> Result<()> {
    let end = start + out.len() as u64;
    let mut wanted: Vec<&Chunk> = chunks
        .iter()
        .filter(|c| {
            let r = chunk_range(c, chunk_size);
            r.start < end && r.end > start
        })
        .collect();
    wanted.sort_by_key(|c| c.phys);
    let mut i = 0;
    while i < wanted.len() {
        // A run of chunks laid out contiguously on the device.
        let mut j = i + 1;
        let mut run_end = wanted[i].phys + round_up(wanted[i].len as u64);
        while j < wanted.len() && wanted[j].phys == run_end && run_end - wanted[i].phys < (16 << 20)
        {
            run_end += round_up(wanted[j].len as u64);
            j += 1;
        }
        let mut buf = AlignedBuf::for_read((run_end - wanted[i].phys) as usize);
        dev.read_at(&mut buf, wanted[i].phys)?;
        for c in &wanted[i..j] {
            let off = (c.phys - wanted[i].phys) as usize;
            let mut data = &buf.as_slice()[off..off + c.len as usize];
            let r = chunk_range(c, chunk_size);
            let recovered;
            if !verify(c, data) {
                recovered = recover(c).ok_or_else(|| corrupt(coll, name, r.clone()))?;
                data = &recovered;
            }
            let (s, e) = (r.start.max(start), r.end.min(end));
            out[(s - start) as usize..(e - start) as usize]
                .copy_from_slice(&data[(s - r.start) as usize..(e - r.start) as usize]);
        }
        i = j;
    }
    Ok(())
}
