//! GetObjectAttributes: an object's (or version's) ETag, size, stored
//! checksums, storage class and, for multipart objects, a page of its
//! parts, each only when asked for.

use s3s::dto::{
    Checksum, ETag, GetObjectAttributesInput, GetObjectAttributesOutput, GetObjectAttributesParts,
    ObjectAttributes, ObjectPart, StorageClass,
};
use s3s::{S3Request, S3Response, s3_error};

use crate::Gateway;
use crate::bucket;
use crate::error::S3Result;
use crate::model::acl::Permission;
use crate::model::record::ObjectRecord;
use crate::model::system_time;

/// Most parts one answer lists (S3's default and limit).
const MAX_PARTS: i32 = 1000;

pub async fn get(
    gw: &Gateway,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let i = &req.input;
    let version = i.version_id.as_deref();
    let (_, r) =
        bucket::authorize_object(gw, &req, &i.bucket, &i.key, version, Permission::Read).await?;
    // A header list: clients send one comma-separated value.
    let wants = |a: &str| {
        i.object_attributes
            .iter()
            .flat_map(|x| x.as_str().split(','))
            .any(|x| x.trim() == a)
    };
    let max = match i.max_parts {
        Some(n) if n < 0 => {
            return Err(s3_error!(InvalidArgument, "max-parts must not be negative"));
        }
        Some(n) => n.min(MAX_PARTS),
        None => MAX_PARTS,
    };
    let marker = i.part_number_marker.unwrap_or(0).max(0);
    Ok(S3Response::new(GetObjectAttributesOutput {
        e_tag: wants(ObjectAttributes::ETAG).then(|| ETag::Strong(r.etag.clone())),
        object_size: wants(ObjectAttributes::OBJECT_SIZE).then_some(r.size as i64),
        storage_class: wants(ObjectAttributes::STORAGE_CLASS)
            .then(|| StorageClass::from_static(StorageClass::STANDARD)),
        checksum: wants(ObjectAttributes::CHECKSUM)
            .then(|| checksum(&r))
            .flatten(),
        object_parts: (wants(ObjectAttributes::OBJECT_PARTS) && r.is_multipart())
            .then(|| parts(&r, marker, max)),
        last_modified: Some(system_time(r.mtime_ms).into()),
        version_id: r.version_id.clone(),
        ..Default::default()
    }))
}

/// The checksums stored with the object, if any.
fn checksum(r: &ObjectRecord) -> Option<Checksum> {
    let get = |name: &str| r.checksums.get(name).cloned();
    let c = Checksum {
        checksum_crc32: get("CRC32"),
        checksum_crc32c: get("CRC32C"),
        checksum_crc64nvme: get("CRC64NVME"),
        checksum_sha1: get("SHA1"),
        checksum_sha256: get("SHA256"),
        checksum_type: None,
    };
    (c != Checksum::default()).then_some(c)
}

/// The parts after number `marker`, at most `max`.
fn parts(r: &ObjectRecord, marker: i32, max: i32) -> GetObjectAttributesParts {
    let all: Vec<ObjectPart> = r
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| ObjectPart {
            part_number: Some(i as i32 + 1),
            size: Some(s.size as i64),
            ..Default::default()
        })
        .skip(marker as usize)
        .collect();
    let truncated = all.len() > max as usize;
    let page: Vec<ObjectPart> = all.into_iter().take(max as usize).collect();
    GetObjectAttributesParts {
        is_truncated: Some(truncated),
        max_parts: Some(max),
        next_part_number_marker: truncated
            .then(|| page.last().and_then(|p| p.part_number))
            .flatten(),
        part_number_marker: Some(marker),
        total_parts_count: Some(r.segments.len() as i32),
        parts: Some(page),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::Segment;

    #[test]
    fn parts_page_after_the_marker() {
        let mut r = ObjectRecord::sample("e-6", 6, 0);
        r.segments = (0..6)
            .map(|i| Segment {
                data: format!("d{i}"),
                size: 5,
            })
            .collect();
        let p = parts(&r, 3, 1);
        assert_eq!(p.is_truncated, Some(true));
        assert_eq!(p.next_part_number_marker, Some(4));
        assert_eq!(p.parts.as_ref().map(|v| v[0].part_number), Some(Some(4)));
        let p = parts(&r, 4, 10);
        assert_eq!(p.is_truncated, Some(false));
        assert_eq!(p.parts.map(|v| v.len()), Some(2));
        assert_eq!(p.total_parts_count, Some(6));
        assert_eq!(checksum(&r), None);
    }
}
