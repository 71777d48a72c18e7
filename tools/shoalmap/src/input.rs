//! Reading maps from files in whichever form they come.

use std::path::Path;

use anyhow::{Context, Result};
use shoal_crush::CrushMap;

/// Reads a CRUSH map in Shoal's binary form, Ceph's binary form (`ceph osd
/// getcrushmap`, `crushtool -c`) or Ceph's text form, told apart by content.
pub fn read_crush(path: &Path) -> Result<CrushMap> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(&shoal_crush::codec::MAGIC) {
        return shoal_crush::codec::decode(&bytes)
            .with_context(|| format!("decoding binary CRUSH map {}", path.display()));
    }
    if bytes.starts_with(&shoal_crush::ceph_binary::CEPH_MAGIC) {
        return shoal_crush::ceph_binary::decode(&bytes)
            .with_context(|| format!("decoding Ceph binary CRUSH map {}", path.display()));
    }
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("{} is neither a binary map nor UTF-8 text", path.display()))?;
    shoal_crush::text::parse(text).with_context(|| format!("{}", path.display()))
}

/// Reads an OSDMap written by `shoalmap osdmap create` (or a monitor).
pub fn read_osdmap(path: &Path) -> Result<shoal_map::OsdMap> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    shoal_map::OsdMap::decode(&bytes).with_context(|| format!("decoding OSDMap {}", path.display()))
}

/// Writes an OSDMap in Shoal's binary form.
pub fn write_osdmap(path: &Path, map: &shoal_map::OsdMap) -> Result<()> {
    std::fs::write(path, map.encode()).with_context(|| format!("writing {}", path.display()))
}

/// Resolves a pool given by name or numeric id.
pub fn find_pool<'a>(map: &'a shoal_map::OsdMap, pool: &str) -> Result<&'a shoal_map::Pool> {
    if let Some(p) = map.pool_by_name(pool) {
        return Ok(p);
    }
    pool.parse::<i64>()
        .ok()
        .and_then(|id| map.pool(id))
        .with_context(|| format!("no pool named or numbered {pool:?}"))
}
