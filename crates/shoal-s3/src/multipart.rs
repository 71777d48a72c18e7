//! Multipart uploads: create, upload part (and part copy), list parts and
//! uploads, complete, abort.

use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, ChecksumAlgorithm, CommonPrefix,
    CompleteMultipartUploadInput, CompleteMultipartUploadOutput, CopyPartResult,
    CreateMultipartUploadInput, CreateMultipartUploadOutput, ETag, Initiator,
    ListMultipartUploadsInput, ListMultipartUploadsOutput, ListPartsInput, ListPartsOutput,
    MultipartUpload, Part, UploadPartCopyInput, UploadPartCopyOutput, UploadPartInput,
    UploadPartOutput,
};
use s3s::{S3Request, S3Response, s3_error};

use crate::Gateway;
use crate::bucket;
use crate::copy;
use crate::error::{ModelError, S3Result};
use crate::model::acl::Permission;
use crate::model::buckets::BucketRecord;
use crate::model::index::Pending;
use crate::model::uploads::{MAX_PART_NUMBER, PartRecord, UploadRecord};
use crate::model::versions::NULL_VERSION;
use crate::model::{now_ms, random_id, system_time};
use crate::put::{self, check_key};

/// Most parts or uploads one listing page returns.
const MAX_LIST: i32 = 1000;

fn check_part_number(n: i32) -> Result<u32, ModelError> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            ModelError::InvalidArgument(format!(
                "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
            ))
        })
}

fn page_size(n: Option<i32>, what: &str) -> S3Result<u32> {
    match n {
        None => Ok(MAX_LIST as u32),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "{what} must not be negative")),
        Some(n) => Ok(n.min(MAX_LIST) as u32),
    }
}

pub async fn create(
    gw: &Gateway,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let (bucket, owner) = bucket::writer(gw, &req, &req.input.bucket).await?;
    let acl = put::object_acl!(req.input, &owner, &bucket.owner)?;
    let i = req.input;
    check_key(&i.key)?;
    let record = UploadRecord {
        acl,
        key: i.key.clone(),
        upload_id: random_id(),
        owner,
        initiated_ms: now_ms(),
        headers: put::system_headers(
            i.content_type,
            i.cache_control,
            i.content_disposition,
            i.content_encoding,
            i.content_language,
            i.expires,
        ),
        user_meta: i
            .metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        checksum_algorithm: i
            .checksum_algorithm
            .as_ref()
            .map(|a| a.as_str().to_string()),
        version: 0,
    };
    bucket.index(gw.pools()).create_upload(&record).await?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(record.upload_id),
        checksum_algorithm: i.checksum_algorithm,
        ..Default::default()
    }))
}

/// Records a stored part, giving its data up if that fails.
async fn commit_part(
    gw: &Gateway,
    bucket: &BucketRecord,
    key: &str,
    upload_id: &str,
    number: u32,
    pending: Pending,
    part: &PartRecord,
) -> Result<(), ModelError> {
    let index = bucket.index(gw.pools());
    let keep = gw.conf().gc_min_wait_ms;
    match index
        .commit_part(key, upload_id, number, &pending, part, keep)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) => {
            if !matches!(e, ModelError::UploadExpired) {
                put::give_up(&index, pending).await;
            }
            Err(e)
        }
    }
}

pub async fn upload_part(
    gw: &Gateway,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let (bucket, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::Write).await?;
    let S3Request {
        input,
        headers,
        trailing_headers,
        ..
    } = req;
    let number = check_part_number(input.part_number)?;
    let index = bucket.index(gw.pools());
    // Refuse parts of unknown uploads before taking the body.
    index.upload(&input.key, &input.upload_id).await?;
    let checks = put::body_checks!(gw, input, headers)?;
    let trailers = trailing_headers.as_ref();
    let (pending, stored, checksums) =
        put::receive(gw, &index, &input.key, input.body, checks, trailers).await?;
    let part = PartRecord {
        etag: hex::encode(stored.md5),
        size: stored.size,
        data: pending.data.clone(),
        mtime_ms: now_ms(),
        checksums,
    };
    commit_part(
        gw,
        &bucket,
        &input.key,
        &input.upload_id,
        number,
        pending,
        &part,
    )
    .await?;
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(ETag::Strong(part.etag)),
        checksum_crc32: stored.checksum.checksum_crc32,
        checksum_crc32c: stored.checksum.checksum_crc32c,
        checksum_crc64nvme: stored.checksum.checksum_crc64nvme,
        checksum_sha1: stored.checksum.checksum_sha1,
        checksum_sha256: stored.checksum.checksum_sha256,
        ..Default::default()
    }))
}

/// Parses `x-amz-copy-source-range` (`bytes=first-last`, inclusive) into
/// `[first, end)` within an object of `size` bytes.
fn copy_range(range: Option<&str>, size: u64) -> Result<(u64, u64), ModelError> {
    let Some(r) = range else {
        return Ok((0, size));
    };
    let bad = || ModelError::InvalidArgument(format!("invalid copy source range {r:?}"));
    let (first, last) = r
        .strip_prefix("bytes=")
        .and_then(|s| s.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = first.trim().parse().map_err(|_| bad())?;
    let last: u64 = last.trim().parse().map_err(|_| bad())?;
    if first > last || last >= size {
        return Err(ModelError::InvalidRange);
    }
    Ok((first, last + 1))
}

pub async fn upload_part_copy(
    gw: &Gateway,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let (bucket, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::Write).await?;
    let i = &req.input;
    let number = check_part_number(i.part_number)?;
    let index = bucket.index(gw.pools());
    index.upload(&i.key, &i.upload_id).await?;
    let (source, _) = copy::source(gw, &req, &i.copy_source).await?;
    copy::check_source_conditions(
        &source,
        i.copy_source_if_match.as_ref(),
        i.copy_source_if_none_match.as_ref(),
        i.copy_source_if_modified_since.as_ref(),
        i.copy_source_if_unmodified_since.as_ref(),
    )?;
    let (first, end) = copy_range(i.copy_source_range.as_deref(), source.size)?;
    let (pending, stored) = copy::store_copy(gw, &index, &i.key, &source, first, end).await?;
    let part = PartRecord {
        etag: hex::encode(stored.md5),
        size: stored.size,
        data: pending.data.clone(),
        mtime_ms: now_ms(),
        checksums: Default::default(),
    };
    commit_part(gw, &bucket, &i.key, &i.upload_id, number, pending, &part).await?;
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(ETag::Strong(part.etag)),
            last_modified: Some(system_time(part.mtime_ms).into()),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

pub async fn complete(
    gw: &Gateway,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let (bucket, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::Write).await?;
    let i = req.input;
    let asked: Vec<(u32, String)> = i
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let n = check_part_number(p.part_number.unwrap_or(0))?;
            let etag = p.e_tag.map(|e| e.value().to_string()).unwrap_or_default();
            Ok((n, etag))
        })
        .collect::<Result<_, ModelError>>()?;
    let precondition =
        put::WriteConditions::new(&i.key, i.if_match.as_ref(), i.if_none_match.as_ref());
    let index = bucket.index(gw.pools());
    let (record, version_id) = match index
        .complete_upload(
            &i.key,
            &i.upload_id,
            &asked,
            &|old| precondition.check(old),
            bucket.write_mode(),
            gw.conf().gc_min_wait_ms,
        )
        .await
    {
        Ok(planned) => match planned.record {
            Some(r) => (r, planned.version_id),
            None => return Err(ModelError::Protocol("a write planned no record".into()).into()),
        },
        // A Complete sent again (its answer was lost): the object it made
        // is still current.
        Err(ModelError::NoSuchUpload(id)) => match index.get(&i.key).await? {
            Some((r, _)) if r.upload_id.as_deref() == Some(id.as_str()) => {
                let vid = r.version_id.clone().filter(|v| v != NULL_VERSION);
                (r, vid)
            }
            _ => return Err(ModelError::NoSuchUpload(id).into()),
        },
        Err(e) => return Err(e.into()),
    };
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(ETag::Strong(record.etag)),
        location: Some(format!("/{}/{}", i.bucket, i.key)),
        version_id,
        ..Default::default()
    }))
}

pub async fn abort(
    gw: &Gateway,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let (bucket, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::Write).await?;
    bucket
        .index(gw.pools())
        .abort_upload(&req.input.key, &req.input.upload_id)
        .await?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub async fn list_parts(
    gw: &Gateway,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let (bucket, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::Read).await?;
    let i = req.input;
    let index = bucket.index(gw.pools());
    let (upload, _) = index.upload(&i.key, &i.upload_id).await?;
    let max = page_size(i.max_parts, "max-parts")?;
    let after = u32::try_from(i.part_number_marker.unwrap_or(0)).unwrap_or(0);
    let (parts, more) = if max == 0 {
        (Vec::new(), false)
    } else {
        index.parts(&i.key, &i.upload_id, after, max).await?
    };
    let next = parts.last().map(|(n, _)| *n as i32);
    let owner = bucket::owner_of(gw, &upload.owner).await;
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        part_number_marker: i.part_number_marker,
        next_part_number_marker: if more { next } else { None },
        max_parts: Some(i.max_parts.unwrap_or(MAX_LIST)),
        is_truncated: Some(more),
        initiator: Some(Initiator {
            display_name: owner.display_name.clone(),
            id: owner.id.clone(),
        }),
        owner: Some(owner),
        checksum_algorithm: upload.checksum_algorithm.map(ChecksumAlgorithm::from),
        parts: Some(
            parts
                .into_iter()
                .map(|(n, p)| Part {
                    part_number: Some(n as i32),
                    e_tag: Some(ETag::Strong(p.etag)),
                    size: Some(p.size as i64),
                    last_modified: Some(system_time(p.mtime_ms).into()),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }))
}

pub async fn list_uploads(
    gw: &Gateway,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let (bucket, _) = bucket::authorize(gw, &req, &req.input.bucket, Permission::Read).await?;
    let i = req.input;
    let max = page_size(i.max_uploads, "max-uploads")? as usize;
    let page = if max == 0 {
        Default::default()
    } else {
        bucket
            .index(gw.pools())
            .list_uploads(
                i.prefix.as_deref().unwrap_or(""),
                i.key_marker.as_deref(),
                i.upload_id_marker.as_deref(),
                i.delimiter.as_deref().filter(|d| !d.is_empty()),
                max,
            )
            .await?
    };
    let last = page.uploads.last();
    let (next_key_marker, next_upload_id_marker) = match (page.truncated, last) {
        (true, Some(u)) => (Some(u.key.clone()), Some(u.upload_id.clone())),
        _ => (None, None),
    };
    let mut uploads = Vec::with_capacity(page.uploads.len());
    let mut owners = bucket::Owners::default();
    for u in page.uploads {
        let owner = owners.of(gw, &u.owner).await;
        uploads.push(MultipartUpload {
            key: Some(u.key),
            upload_id: Some(u.upload_id),
            initiated: Some(system_time(u.initiated_ms).into()),
            initiator: Some(Initiator {
                display_name: owner.display_name.clone(),
                id: owner.id.clone(),
            }),
            owner: Some(owner),
            ..Default::default()
        });
    }
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        prefix: i.prefix,
        delimiter: i.delimiter,
        key_marker: i.key_marker,
        upload_id_marker: i.upload_id_marker,
        next_key_marker,
        next_upload_id_marker,
        max_uploads: Some(i.max_uploads.unwrap_or(MAX_LIST)),
        is_truncated: Some(page.truncated),
        uploads: Some(uploads),
        common_prefixes: Some(
            page.prefixes
                .into_iter()
                .map(|p| CommonPrefix { prefix: Some(p) })
                .collect(),
        ),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ranges_are_inclusive_and_checked() {
        assert_eq!(copy_range(None, 10).unwrap(), (0, 10));
        assert_eq!(copy_range(Some("bytes=2-5"), 10).unwrap(), (2, 6));
        assert!(matches!(
            copy_range(Some("bytes=5-10"), 10),
            Err(ModelError::InvalidRange)
        ));
        assert!(copy_range(Some("bytes=5-2"), 10).is_err());
        assert!(copy_range(Some("5-6"), 10).is_err());
        assert!(copy_range(Some("bytes=a-b"), 10).is_err());
    }

    #[test]
    fn part_numbers_are_1_to_10000() {
        assert_eq!(check_part_number(1).unwrap(), 1);
        assert_eq!(check_part_number(10_000).unwrap(), 10_000);
        assert!(check_part_number(0).is_err());
        assert!(check_part_number(10_001).is_err());
        assert!(check_part_number(-1).is_err());
    }
}
