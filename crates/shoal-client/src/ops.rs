//! Compound operations on one object, built up and sent as one request.
//!
//! A [`WriteOp`] is applied atomically (all or nothing, guards first); a
//! [`ReadOp`] is answered from one consistent state of the object.

use bytes::Bytes;
use shoal_proto::osd::{ObjOp, ObjVersion, OpOutput, PayloadRange, XattrCmp};

/// The data segments of a request, laid end to end in its payload.
#[derive(Clone, Debug, Default)]
struct Payload {
    parts: Vec<Bytes>,
    len: u64,
}

impl Payload {
    fn push(&mut self, data: Bytes) -> PayloadRange {
        let range = PayloadRange {
            offset: self.len,
            len: data.len() as u64,
        };
        self.len += range.len;
        if !data.is_empty() {
            self.parts.push(data);
        }
        range
    }

    /// One buffer; a single segment is passed on without a copy.
    fn into_bytes(self) -> Bytes {
        shoal_net::concat(self.parts)
    }
}

/// Writes to one object, applied atomically in order (guards are checked
/// against the state the earlier ops leave).
#[derive(Clone, Debug, Default)]
pub struct WriteOp {
    ops: Vec<ObjOp>,
    payload: Payload,
}

impl WriteOp {
    /// An empty operation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates the object; with `exclusive`, fails with `Exists` if it is there.
    pub fn create(mut self, exclusive: bool) -> Self {
        self.ops.push(ObjOp::Create { exclusive });
        self
    }

    /// Replaces the object's data.
    pub fn write_full(mut self, data: Bytes) -> Self {
        let data = self.payload.push(data);
        self.ops.push(ObjOp::WriteFull { data });
        self
    }

    /// Writes `data` at `offset` (the object grows as needed).
    pub fn write(mut self, offset: u64, data: Bytes) -> Self {
        let data = self.payload.push(data);
        self.ops.push(ObjOp::Write { offset, data });
        self
    }

    /// Writes `data` at the object's end.
    pub fn append(mut self, data: Bytes) -> Self {
        let data = self.payload.push(data);
        self.ops.push(ObjOp::Append { data });
        self
    }

    /// Sets the object's size.
    pub fn truncate(mut self, size: u64) -> Self {
        self.ops.push(ObjOp::Truncate { size });
        self
    }

    /// Turns `len` bytes at `offset` into zeros.
    pub fn zero(mut self, offset: u64, len: u64) -> Self {
        self.ops.push(ObjOp::Zero { offset, len });
        self
    }

    /// Removes the object.
    pub fn remove(mut self) -> Self {
        self.ops.push(ObjOp::Remove);
        self
    }

    /// Sets an xattr.
    pub fn set_xattr(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.ops.push(ObjOp::SetXattr {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Removes an xattr.
    pub fn remove_xattr(mut self, key: impl Into<String>) -> Self {
        self.ops.push(ObjOp::RemoveXattr { key: key.into() });
        self
    }

    /// Sets omap entries.
    pub fn omap_set(mut self, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        self.ops.push(ObjOp::OmapSet { entries });
        self
    }

    /// Removes omap keys.
    pub fn omap_remove(mut self, keys: Vec<Vec<u8>>) -> Self {
        self.ops.push(ObjOp::OmapRemove { keys });
        self
    }

    /// Removes every omap entry.
    pub fn omap_clear(mut self) -> Self {
        self.ops.push(ObjOp::OmapClear);
        self
    }

    /// Guard: the whole operation fails with `CompareFailed`, changing
    /// nothing, unless xattr `key` compares as asked.
    pub fn cmp_xattr(mut self, key: impl Into<String>, cmp: XattrCmp) -> Self {
        self.ops.push(ObjOp::CmpXattr {
            key: key.into(),
            cmp,
        });
        self
    }

    /// Guard: the whole operation fails with `CompareFailed`, changing
    /// nothing, unless the value of omap key `key` compares as asked.
    pub fn cmp_omap(mut self, key: impl Into<Vec<u8>>, cmp: XattrCmp) -> Self {
        self.ops.push(ObjOp::CmpOmap {
            key: key.into(),
            cmp,
        });
        self
    }

    /// The ops and the payload they point into.
    pub(crate) fn into_parts(self) -> (Vec<ObjOp>, Bytes) {
        (self.ops, self.payload.into_bytes())
    }
}

/// Reads of one object, answered from one state of it.
#[derive(Clone, Debug, Default)]
pub struct ReadOp {
    ops: Vec<ObjOp>,
}

impl ReadOp {
    /// An empty operation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `len` bytes at `offset` (`u64::MAX`: to the end).
    pub fn read(mut self, offset: u64, len: u64) -> Self {
        self.ops.push(ObjOp::Read { offset, len });
        self
    }

    /// Size and version.
    pub fn stat(mut self) -> Self {
        self.ops.push(ObjOp::Stat);
        self
    }

    /// One xattr.
    pub fn get_xattr(mut self, key: impl Into<String>) -> Self {
        self.ops.push(ObjOp::GetXattr { key: key.into() });
        self
    }

    /// Every xattr.
    pub fn get_xattrs(mut self) -> Self {
        self.ops.push(ObjOp::GetXattrs);
        self
    }

    /// Omap values of `keys` (missing keys are left out).
    pub fn omap_get(mut self, keys: Vec<Vec<u8>>) -> Self {
        self.ops.push(ObjOp::OmapGet { keys });
        self
    }

    /// Omap entries in key order after `start_after`, with `prefix`, at most `limit`.
    pub fn omap_list(mut self, start_after: Option<Vec<u8>>, prefix: Vec<u8>, limit: u32) -> Self {
        self.ops.push(ObjOp::OmapList {
            start_after,
            prefix,
            limit,
        });
        self
    }

    pub(crate) fn into_ops(self) -> Vec<ObjOp> {
        self.ops
    }
}

/// The output of one op of a [`ReadOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Nothing (writes).
    None,
    /// Bytes read.
    Data(Bytes),
    /// Size and version.
    Stat {
        /// Size in bytes.
        size: u64,
        /// Version.
        version: ObjVersion,
    },
    /// One xattr, if it exists.
    Xattr(Option<Vec<u8>>),
    /// Every xattr.
    Xattrs(Vec<(String, Vec<u8>)>),
    /// Omap entries; `more` when a listing stopped at its limit.
    Omap {
        /// Entries in key order.
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        /// More entries follow.
        more: bool,
    },
}

/// What a [`ReadOp`] returned.
#[derive(Clone, Debug)]
pub struct ReadResult {
    /// The object's version the reads saw.
    pub version: ObjVersion,
    /// One output per op, in order.
    pub outputs: Vec<Output>,
}

impl Output {
    /// Resolves an OSD's output against the reply payload; `None` when a
    /// data range falls outside it.
    pub(crate) fn from_wire(out: OpOutput, payload: &Bytes) -> Option<Output> {
        Some(match out {
            OpOutput::None => Output::None,
            OpOutput::Data(r) => {
                let end = r.offset.checked_add(r.len)?;
                if end > payload.len() as u64 {
                    return None;
                }
                Output::Data(payload.slice(r.offset as usize..end as usize))
            }
            OpOutput::Stat { size, version } => Output::Stat { size, version },
            OpOutput::Xattr(v) => Output::Xattr(v),
            OpOutput::Xattrs(v) => Output::Xattrs(v),
            OpOutput::Omap { entries, more } => Output::Omap { entries, more },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_ranges_follow_each_other() {
        let (ops, payload) = WriteOp::new()
            .write(10, Bytes::from_static(b"abc"))
            .set_xattr("k", b"v".to_vec())
            .append(Bytes::from_static(b"defg"))
            .into_parts();
        assert_eq!(&payload[..], b"abcdefg");
        assert_eq!(
            ops[2],
            ObjOp::Append {
                data: PayloadRange { offset: 3, len: 4 }
            }
        );
    }

    #[test]
    fn one_segment_is_not_copied() {
        let data = Bytes::from(vec![7u8; 1000]);
        let (_, payload) = WriteOp::new().write_full(data.clone()).into_parts();
        assert_eq!(payload.as_ptr(), data.as_ptr());
    }

    #[test]
    fn data_outside_the_payload_is_refused() {
        let payload = Bytes::from_static(b"0123");
        let ok = Output::from_wire(OpOutput::Data(PayloadRange { offset: 1, len: 3 }), &payload);
        assert_eq!(ok, Some(Output::Data(Bytes::from_static(b"123"))));
        let bad = Output::from_wire(OpOutput::Data(PayloadRange { offset: 2, len: 3 }), &payload);
        assert_eq!(bad, None);
        let wrap = OpOutput::Data(PayloadRange {
            offset: u64::MAX,
            len: 2,
        });
        assert_eq!(Output::from_wire(wrap, &payload), None);
    }
}
