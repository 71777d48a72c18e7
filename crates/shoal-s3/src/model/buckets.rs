//! The buckets registry: bucket name -> [`BucketRecord`], one omap object
//! of the metadata pool. Creating a bucket is one guarded op (the name is
//! absent), so of two concurrent creates of one name exactly one wins.

use serde::{Deserialize, Serialize};
use shoal_client::{IoCtx, WriteOp, XattrCmp};

use super::acl::Acl;
use super::cors::CorsRule;
use super::gc::{DELETED_BUCKETS, DeletedBucket};
use super::index::Index;
use super::versions::WriteMode;
use super::{Pools, guarded_write, now_ms, omap_all, omap_value, random_id};
use crate::error::ModelError;

/// The registry's omap object.
const BUCKETS: &str = "buckets";

/// A bucket as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    /// The bucket's name.
    pub name: String,
    /// A unique id: names of its index shards and data objects start with
    /// it, so a bucket deleted and created again shares nothing.
    pub id: String,
    /// The owner's user id.
    pub owner: String,
    /// When it was created (ms since the epoch).
    pub created_ms: u64,
    /// Index shards its keys are spread over (fixed at creation).
    pub shards: u32,
    /// Who may do what (none: the owner alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
    /// CORS rules (none: cross-origin requests are refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Vec<CorsRule>>,
    /// Whether writes keep older versions (never set: the bucket was never
    /// versioned; once set it can only be suspended, as in S3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versioning: Option<Versioning>,
}

/// A bucket's versioning state, once it was ever set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    /// Every write makes a new version; deletes place delete markers.
    Enabled,
    /// Writes replace the `null` version; versions made while enabled stay.
    Suspended,
}

impl BucketRecord {
    /// The bucket's ACL.
    pub fn acl(&self) -> Acl {
        self.acl
            .clone()
            .unwrap_or_else(|| Acl::private(&self.owner))
    }

    /// How writes to the bucket treat older versions.
    pub fn write_mode(&self) -> WriteMode {
        match self.versioning {
            None => WriteMode::Unversioned,
            Some(Versioning::Enabled) => WriteMode::NewVersion,
            Some(Versioning::Suspended) => WriteMode::NullVersion,
        }
    }

    /// The bucket's index.
    pub fn index(&self, pools: &Pools) -> Index {
        Index::new(pools.clone(), &self.id, self.shards)
    }
}

/// Checks a bucket name against S3's rules for new buckets: 3 to 63
/// lowercase letters, digits, '.' and '-', starting and ending with a
/// letter or digit, no "..", not an IP address.
pub fn check_bucket_name(name: &str) -> Result<(), ModelError> {
    let bad = |why: &str| {
        Err(ModelError::InvalidBucketName(format!(
            "invalid bucket name {name:?}: {why}"
        )))
    };
    if !(3..=63).contains(&name.len()) {
        return bad("names are 3 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("only lowercase letters, digits, '.' and '-'");
    }
    let edge_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !edge_ok(name.bytes().next()) || !edge_ok(name.bytes().last()) {
        return bad("it must start and end with a letter or digit");
    }
    if name.contains("..") || name.contains("-.") || name.contains(".-") {
        return bad("no adjacent periods, and no period next to a dash");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("it must not look like an IP address");
    }
    Ok(())
}

fn decode(name: &str, raw: &[u8]) -> Result<BucketRecord, ModelError> {
    serde_json::from_slice(raw).map_err(|e| ModelError::corrupt(format!("bucket {name}"), e))
}

/// The buckets of one cluster.
#[derive(Clone)]
pub struct Buckets {
    pools: Pools,
}

impl Buckets {
    /// The registry kept in `pools.meta`.
    pub fn new(pools: Pools) -> Self {
        Buckets { pools }
    }

    fn meta(&self) -> &IoCtx {
        &self.pools.meta
    }

    /// Creates bucket `name` owned by `owner` with `shards` index shards
    /// and ACL `acl` (none: private).
    pub async fn create(
        &self,
        name: &str,
        owner: &str,
        shards: u32,
        acl: Option<Acl>,
    ) -> Result<BucketRecord, ModelError> {
        check_bucket_name(name)?;
        let record = BucketRecord {
            name: name.to_string(),
            id: random_id(),
            owner: owner.to_string(),
            created_ms: now_ms(),
            shards,
            acl,
            cors: None,
            versioning: None,
        };
        let raw = serde_json::to_vec(&record).map_err(|e| ModelError::corrupt("bucket", e))?;
        let op = WriteOp::new()
            .cmp_omap(name.as_bytes(), XattrCmp::Absent)
            .omap_set(vec![(name.as_bytes().to_vec(), raw)]);
        if guarded_write(self.meta(), BUCKETS, op).await? {
            return Ok(record);
        }
        match self.get(name).await {
            Ok(b) if b.owner == owner => Err(ModelError::BucketOwnedByYou(name.to_string())),
            Ok(_) => Err(ModelError::BucketExists(name.to_string())),
            // Deleted in between: the caller may try again.
            Err(ModelError::NoSuchBucket(_)) => Err(ModelError::Busy(name.to_string())),
            Err(e) => Err(e),
        }
    }

    /// Bucket `name`.
    pub async fn get(&self, name: &str) -> Result<BucketRecord, ModelError> {
        self.get_raw(name).await.map(|(b, _)| b)
    }

    async fn get_raw(&self, name: &str) -> Result<(BucketRecord, Vec<u8>), ModelError> {
        match omap_value(self.meta(), BUCKETS, name.as_bytes()).await? {
            Some(raw) => Ok((decode(name, &raw)?, raw)),
            None => Err(ModelError::NoSuchBucket(name.to_string())),
        }
    }

    /// Replaces bucket `name`'s ACL.
    pub async fn set_acl(&self, name: &str, acl: Acl) -> Result<(), ModelError> {
        self.update(name, &|b| b.acl = Some(acl.clone())).await
    }

    /// Replaces bucket `name`'s CORS rules (none: removes them).
    pub async fn set_cors(
        &self,
        name: &str,
        cors: Option<Vec<CorsRule>>,
    ) -> Result<(), ModelError> {
        self.update(name, &|b| b.cors = cors.clone()).await
    }

    /// Sets bucket `name`'s versioning state.
    pub async fn set_versioning(&self, name: &str, state: Versioning) -> Result<(), ModelError> {
        self.update(name, &|b| b.versioning = Some(state)).await
    }

    /// Changes bucket `name`'s record with `change`, guarded against
    /// concurrent changes.
    async fn update(
        &self,
        name: &str,
        change: &(dyn Fn(&mut BucketRecord) + Sync),
    ) -> Result<(), ModelError> {
        let missing = || ModelError::NoSuchBucket(name.to_string());
        let what = format!("bucket {name}");
        super::update_entry(
            self.meta(),
            BUCKETS,
            name.as_bytes(),
            &what,
            missing,
            change,
        )
        .await?;
        Ok(())
    }

    /// Every bucket, by name.
    pub async fn list_all(&self) -> Result<Vec<BucketRecord>, ModelError> {
        omap_all(self.meta(), BUCKETS, b"")
            .await?
            .iter()
            .map(|(k, v)| decode(&String::from_utf8_lossy(k), v))
            .collect()
    }

    /// Every bucket owned by `owner`, by name.
    pub async fn list_owned(&self, owner: &str) -> Result<Vec<BucketRecord>, ModelError> {
        let mut all = self.list_all().await?;
        all.retain(|b| b.owner == owner);
        Ok(all)
    }

    /// Deletes bucket `name` if it holds no object. Its index is handed to
    /// the garbage collector first (a write racing the delete may still
    /// add to it), then the name is freed.
    pub async fn delete(&self, name: &str) -> Result<(), ModelError> {
        let (bucket, raw) = self.get_raw(name).await?;
        if !bucket.index(&self.pools).is_empty().await? {
            return Err(ModelError::BucketNotEmpty(name.to_string()));
        }
        let deleted = DeletedBucket {
            bucket: bucket.clone(),
            deleted_ms: now_ms(),
        };
        let entry = serde_json::to_vec(&deleted).map_err(|e| ModelError::corrupt("bucket", e))?;
        self.meta()
            .write_op(
                DELETED_BUCKETS,
                WriteOp::new().omap_set(vec![(bucket.id.as_bytes().to_vec(), entry)]),
            )
            .await?;
        let op = WriteOp::new()
            .cmp_omap(name.as_bytes(), XattrCmp::Eq(raw))
            .omap_remove(vec![name.as_bytes().to_vec()]);
        if !guarded_write(self.meta(), BUCKETS, op).await? {
            return Err(ModelError::Busy(name.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket.2", "a1b", &"x".repeat(63)] {
            check_bucket_name(ok).unwrap();
        }
        for bad in [
            "ab",
            &"x".repeat(64),
            "Upper",
            "-abc",
            "abc-",
            "a..b",
            "foo-.bar",
            "foo.-bar",
            "192.168.1.1",
            "a_b",
            "a b",
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
