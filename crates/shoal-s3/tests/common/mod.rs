//! What the gateway's end-to-end tests share: a test cluster with a
//! gateway, and an AWS SDK client of one of its users.

#![allow(dead_code)] // each test file uses its own subset

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Builder, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use shoal_tests::{S3Gateway, S3User, TestCluster, TestClusterOptions};

/// A client signing as `user`.
pub fn client(gw: &S3Gateway, user: &S3User) -> Client {
    client_with(gw, &user.access_key, &user.secret_key)
}

/// A client signing with these keys.
pub fn client_with(gw: &S3Gateway, access: &str, secret: &str) -> Client {
    let conf = Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(gw.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access, secret, None, None, "test"))
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(conf)
}

/// The whole object `key`.
pub async fn get_bytes(c: &Client, bucket: &str, key: &str) -> Vec<u8> {
    get_version_bytes(c, bucket, key, None).await
}

/// The whole object `key`, or its version `version`.
pub async fn get_version_bytes(
    c: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Vec<u8> {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string))
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}@{version:?}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

/// Stores `data` as `key`; its ETag.
pub async fn put_bytes(c: &Client, bucket: &str, key: &str, data: Vec<u8>) -> String {
    let out = c
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    out.e_tag().expect("an ETag").to_string()
}

/// A test cluster and a gateway that collects garbage at once, with
/// user `alice`.
pub async fn start() -> (TestCluster, S3Gateway, S3User) {
    start_with_gc_min_wait(0).await
}

/// A test cluster and a gateway that collects garbage `min_wait_ms` after
/// it became garbage (reads in flight keep their data that long), with
/// user `alice`.
pub async fn start_with_gc_min_wait(min_wait_ms: u64) -> (TestCluster, S3Gateway, S3User) {
    let cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let s3_conf =
        format!("gc_min_wait_ms = {min_wait_ms}\ngc_interval_ms = 300\ngc_upload_grace_ms = 3000");
    let gw = S3Gateway::start(&cluster, &s3_conf).await;
    let user = gw.create_user(&cluster, "alice").await;
    (cluster, gw, user)
}

/// The names of every raw object of the data pool (none when the pool
/// cannot be listed right now).
pub async fn data_pool_names(pools: &shoal_s3::model::Pools) -> Option<Vec<String>> {
    let mut cursor = shoal_client::ListCursor::default();
    let mut names = Vec::new();
    loop {
        let page = pools.data.list_objects(&cursor, 1000).await.ok()?;
        names.extend(page.names);
        match page.next {
            Some(c) => cursor = c,
            None => return Some(names),
        }
    }
}
