//! What a bucket index says about one object: [`ObjectRecord`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::acl::Acl;
use crate::error::ModelError;

/// One striped data object in the data pool holding a run of the object's
/// bytes (a simple upload has one, a multipart upload one per part).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// The data object's name.
    pub data: String,
    /// Its size.
    pub size: u64,
}

/// The HTTP headers stored with an object and returned on GET and HEAD.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemHeaders {
    /// `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Cache-Control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `Expires`, as the client sent it (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
}

/// The current state of one key of a bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Size in bytes.
    pub size: u64,
    /// The ETag without quotes (hex MD5; `-N` for multipart uploads).
    pub etag: String,
    /// Last modified (ms since the epoch).
    pub mtime_ms: u64,
    /// The uploader's user id.
    pub owner: String,
    /// Stored HTTP headers.
    #[serde(default)]
    pub headers: SystemHeaders,
    /// User metadata (`x-amz-meta-*`, names lowercase without the prefix).
    #[serde(default)]
    pub user_meta: BTreeMap<String, String>,
    /// Checksums the client sent and the gateway verified (algorithm ->
    /// base64 value), returned on request.
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    /// The data, in order.
    pub segments: Vec<Segment>,
    /// The multipart upload that made the object (a repeated Complete of
    /// it is answered from this record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Who may do what (none: the owner alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
    /// The version's id: none for an object written while its key had no
    /// versions (the implicit `null` version of an unversioned bucket),
    /// `null` or a version token otherwise ([`super::versions`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The version is a delete marker (no data; the key reads as deleted
    /// while it is the latest version).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_marker: bool,
}

impl ObjectRecord {
    /// The object's ACL.
    pub fn acl(&self) -> Acl {
        self.acl
            .clone()
            .unwrap_or_else(|| Acl::private(&self.owner))
    }

    /// A one-segment record for tests.
    #[cfg(test)]
    pub fn sample(etag: &str, size: u64, mtime_ms: u64) -> ObjectRecord {
        ObjectRecord {
            size,
            etag: etag.into(),
            mtime_ms,
            owner: "u".into(),
            headers: SystemHeaders::default(),
            user_meta: BTreeMap::new(),
            checksums: BTreeMap::new(),
            segments: vec![Segment {
                data: "d".into(),
                size,
            }],
            upload_id: None,
            acl: None,
            version_id: None,
            delete_marker: false,
        }
    }

    /// A delete marker placed by `owner` at `mtime_ms`.
    pub fn marker(owner: &str, mtime_ms: u64, version_id: String) -> ObjectRecord {
        ObjectRecord {
            size: 0,
            etag: String::new(),
            mtime_ms,
            owner: owner.to_string(),
            headers: SystemHeaders::default(),
            user_meta: BTreeMap::new(),
            checksums: BTreeMap::new(),
            segments: Vec::new(),
            upload_id: None,
            acl: None,
            version_id: Some(version_id),
            delete_marker: true,
        }
    }

    /// Last modified, in whole seconds since the epoch.
    pub fn mtime_secs(&self) -> i64 {
        (self.mtime_ms / 1000) as i64
    }

    /// Whether a multipart upload made the object (its ETag ends in `-N`).
    pub fn is_multipart(&self) -> bool {
        self.upload_id.is_some() || self.etag.contains('-')
    }
}

impl ObjectRecord {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        // A struct of strings and numbers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a stored record of key `key`.
    pub fn decode(key: &str, raw: &[u8]) -> Result<ObjectRecord, ModelError> {
        serde_json::from_slice(raw).map_err(|e| ModelError::corrupt(format!("object {key}"), e))
    }

    /// The data object names the record refers to.
    pub fn data_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|s| s.data.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_corrupt() {
        let mut r = ObjectRecord {
            size: 5,
            etag: "5d41402abc4b2a76b9719d911017c592".into(),
            mtime_ms: 1,
            owner: "alice".into(),
            headers: SystemHeaders {
                content_type: Some("text/plain".into()),
                ..Default::default()
            },
            user_meta: BTreeMap::new(),
            checksums: BTreeMap::new(),
            segments: vec![Segment {
                data: "b.1".into(),
                size: 5,
            }],
            upload_id: None,
            acl: None,
            version_id: None,
            delete_marker: false,
        };
        r.user_meta.insert("color".into(), "blue".into());
        assert_eq!(ObjectRecord::decode("k", &r.encode()).unwrap(), r);
        assert!(matches!(
            ObjectRecord::decode("k", b"{not json"),
            Err(ModelError::Corrupt { .. })
        ));
        assert_eq!(r.data_names().collect::<Vec<_>>(), vec!["b.1"]);
    }
}
