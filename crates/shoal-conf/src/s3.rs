//! `[s3]`: the S3 gateway (`shoal-s3`).
//!
//! ```toml
//! [s3]
//! listen = "127.0.0.1:7480"
//! client = "client.admin"          # the cluster identity the gateway uses
//! meta_pool = "s3-meta"            # users, buckets, bucket indexes
//! data_pool = "s3-data"            # object data
//! index_shards = 11                # bucket index objects per new bucket
//! domains = ["s3.example.com"]     # virtual-host style: BUCKET.s3.example.com
//! # tls_cert = "s3.crt"            # serve HTTPS (PEM files)
//! # tls_key = "s3.key"
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[s3]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Section {
    /// Address the gateway listens on (`ip:port`).
    pub listen: String,
    /// The cluster identity the gateway acts as (its certificate is in the
    /// keyring; it needs `mon r` and `osd rw`).
    pub client: String,
    /// Pool of users, keys, the buckets registry and bucket indexes.
    pub meta_pool: String,
    /// Pool of object data.
    pub data_pool: String,
    /// Placement groups of each pool when the gateway creates it.
    pub pool_pg_num: u32,
    /// Index objects a new bucket's keys are spread over.
    pub index_shards: u32,
    /// Domains for virtual-host style requests (`BUCKET.DOMAIN`); empty:
    /// path style only.
    pub domains: Vec<String>,
    /// The region the gateway answers for (GetBucketLocation, SigV4 scope).
    pub region: String,
    /// PEM certificate chain: serve HTTPS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Most connections served at once; more wait in the listen queue.
    pub max_connections: u32,
    /// A client that sends no complete request header for this long is
    /// disconnected (slow clients cannot pin the gateway).
    pub header_timeout_ms: u64,
    /// A request body that brings no byte for this long fails the request.
    pub body_idle_timeout_ms: u64,
    /// Largest object (and part) body accepted.
    pub max_object_bytes: u64,
    /// Most bytes one request may hold in memory: the file of a browser
    /// POST upload (`s3s` reads it whole before checking the policy) and
    /// a PUT body sent chunked without any length.
    pub max_buffered_body_bytes: u64,
    /// Overwritten and deleted data stays readable this long for GETs that
    /// started before (then the garbage collector removes it).
    pub gc_min_wait_ms: u64,
    /// An upload that has not finished after this long is taken for dead:
    /// its data is collected.
    pub gc_upload_grace_ms: u64,
    /// How often each gateway looks for garbage.
    pub gc_interval_ms: u64,
}

impl Default for S3Section {
    fn default() -> Self {
        S3Section {
            listen: "127.0.0.1:7480".into(),
            client: "client.admin".into(),
            meta_pool: "s3-meta".into(),
            data_pool: "s3-data".into(),
            pool_pg_num: 32,
            index_shards: 11,
            domains: Vec::new(),
            region: "us-east-1".into(),
            tls_cert: None,
            tls_key: None,
            max_connections: 1024,
            header_timeout_ms: 30_000,
            body_idle_timeout_ms: 60_000,
            max_object_bytes: 5 << 40,
            max_buffered_body_bytes: 64 << 20,
            gc_min_wait_ms: 300_000,
            gc_upload_grace_ms: 24 * 3600 * 1000,
            gc_interval_ms: 30_000,
        }
    }
}

/// Most index shards a bucket may have.
pub const MAX_INDEX_SHARDS: u32 = 1024;

impl S3Section {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err(format!("[s3] listen {:?} is not ip:port", self.listen));
        }
        if self.meta_pool.is_empty() || self.data_pool.is_empty() {
            return Err("[s3] meta_pool and data_pool must be named".into());
        }
        if !(1..=MAX_INDEX_SHARDS).contains(&self.index_shards) {
            return Err(format!("[s3] index_shards must be 1 to {MAX_INDEX_SHARDS}"));
        }
        if self.pool_pg_num == 0 {
            return Err("[s3] pool_pg_num must be at least 1".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("[s3] tls_cert and tls_key go together".into());
        }
        if self.max_connections == 0 {
            return Err("[s3] max_connections must be at least 1".into());
        }
        let durations = [
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_idle_timeout_ms", self.body_idle_timeout_ms),
            ("gc_interval_ms", self.gc_interval_ms),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, v)| *v == 0) {
            return Err(format!("[s3] {name} must be above 0"));
        }
        let long = [
            ("gc_min_wait_ms", self.gc_min_wait_ms),
            ("gc_upload_grace_ms", self.gc_upload_grace_ms),
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_idle_timeout_ms", self.body_idle_timeout_ms),
            ("gc_interval_ms", self.gc_interval_ms),
        ];
        if let Some((name, v)) = long.iter().find(|(_, v)| *v > crate::MAX_DURATION_MS) {
            return Err(format!("[s3] {name} = {v} is above a week"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        S3Section::default().validate().unwrap();
        let mut s = S3Section {
            listen: "localhost".into(),
            ..Default::default()
        };
        assert!(s.validate().unwrap_err().contains("listen"));
        s = S3Section {
            index_shards: 0,
            ..Default::default()
        };
        assert!(s.validate().unwrap_err().contains("index_shards"));
        s = S3Section {
            tls_cert: Some("a.crt".into()),
            ..Default::default()
        };
        assert!(s.validate().unwrap_err().contains("tls_key"));
        s = S3Section {
            gc_min_wait_ms: u64::MAX,
            ..Default::default()
        };
        assert!(s.validate().unwrap_err().contains("gc_min_wait_ms"));
    }
}
