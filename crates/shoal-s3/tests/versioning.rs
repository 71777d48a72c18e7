//! Bucket versioning through the AWS SDK for Rust against the gateway as a
//! real process: versions, delete markers, the `null` version of objects
//! from before versioning, suspension, concurrent writers, and the data of
//! removed versions collected while every kept version stays readable.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use common::{client, data_pool_names, get_bytes, get_version_bytes, put_bytes, start};
use shoal_tests::{pseudo_random, wait_for};

async fn set_versioning(c: &Client, bucket: &str, status: BucketVersioningStatus) {
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .expect("put versioning");
}

async fn get_version(c: &Client, bucket: &str, key: &str, version: &str) -> Vec<u8> {
    get_version_bytes(c, bucket, key, Some(version)).await
}

/// `(version id, is delete marker, is latest)` of every version of the
/// bucket, in listing order, fetched a few at a time to cross pages.
async fn versions(c: &Client, bucket: &str) -> Vec<(String, String, bool, bool)> {
    let mut out = Vec::new();
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let page = c
            .list_object_versions()
            .bucket(bucket)
            .max_keys(2)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .expect("list versions");
        // Versions and markers come in two lists; merge them back in
        // listing order (key, then newest first: version ids sort so).
        let mut items: Vec<(String, String, bool, bool)> = page
            .versions()
            .iter()
            .map(|v| {
                let id = v.version_id().unwrap_or_default().to_string();
                (
                    v.key().unwrap_or_default().to_string(),
                    id,
                    false,
                    v.is_latest() == Some(true),
                )
            })
            .chain(page.delete_markers().iter().map(|m| {
                let id = m.version_id().unwrap_or_default().to_string();
                (
                    m.key().unwrap_or_default().to_string(),
                    id,
                    true,
                    m.is_latest() == Some(true),
                )
            }))
            .collect();
        items.sort_by(|a, b| (&a.0, order(&a.1)).cmp(&(&b.0, order(&b.1))));
        out.extend(items);
        if page.is_truncated() != Some(true) {
            return out;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
}

/// Sort position of a version id within its key: tokens sort newest
/// first; `null` sorts by where the listing put it, which these tests
/// only use where it is the oldest.
fn order(id: &str) -> String {
    if id == "null" {
        "~".into()
    } else {
        id.to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_delete_markers_follow_s3() {
    let (cluster, gw, user) = start().await;
    let c = client(&gw, &user);
    c.create_bucket()
        .bucket("ver")
        .send()
        .await
        .expect("create");
    let v0 = pseudo_random(1, 1000).to_vec();
    let put0 = c
        .put_object()
        .bucket("ver")
        .key("k")
        .body(ByteStream::from(v0.clone()))
        .send()
        .await
        .expect("put before versioning");
    assert_eq!(put0.version_id(), None, "unversioned writes have no id");
    set_versioning(&c, "ver", BucketVersioningStatus::Enabled).await;
    let got = c
        .get_bucket_versioning()
        .bucket("ver")
        .send()
        .await
        .expect("get versioning");
    assert_eq!(got.status(), Some(&BucketVersioningStatus::Enabled));

    let mut ids = Vec::new();
    let mut datas = Vec::new();
    for i in 0..3u64 {
        let data = pseudo_random(10 + i, 3000 + i as usize).to_vec();
        let out = c
            .put_object()
            .bucket("ver")
            .key("k")
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .expect("versioned put");
        ids.push(out.version_id().expect("a version id").to_string());
        datas.push(data);
    }
    assert_eq!(get_bytes(&c, "ver", "k").await, datas[2]);
    for (id, data) in ids.iter().zip(&datas) {
        assert_eq!(&get_version(&c, "ver", "k", id).await, data);
    }
    assert_eq!(
        get_version(&c, "ver", "k", "null").await,
        v0,
        "the object from before"
    );
    let listed = versions(&c, "ver").await;
    let listed_ids: Vec<&str> = listed.iter().map(|v| v.1.as_str()).collect();
    let mut want: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    want.push("null");
    assert_eq!(listed_ids, want, "newest first, across pages");
    assert!(
        listed[0].3 && listed.iter().skip(1).all(|v| !v.3),
        "only the newest is latest"
    );

    // A delete places a marker: the key reads as gone, versions stay.
    let del = c
        .delete_object()
        .bucket("ver")
        .key("k")
        .send()
        .await
        .expect("delete");
    assert_eq!(del.delete_marker(), Some(true));
    let marker = del.version_id().expect("marker id").to_string();
    let err = c
        .get_object()
        .bucket("ver")
        .key("k")
        .send()
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Some("NoSuchKey"));
    let plain = c
        .list_objects_v2()
        .bucket("ver")
        .send()
        .await
        .expect("list");
    assert_eq!(plain.key_count(), Some(0), "a deleted key is not listed");
    assert_eq!(get_version(&c, "ver", "k", &ids[1]).await, datas[1]);
    let by_marker = c
        .get_object()
        .bucket("ver")
        .key("k")
        .version_id(&marker)
        .send()
        .await;
    let err = by_marker.expect_err("a marker has no body");
    assert_eq!(err.code(), Some("MethodNotAllowed"));
    // Removing the marker brings the newest version back.
    c.delete_object()
        .bucket("ver")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .expect("rm marker");
    assert_eq!(get_bytes(&c, "ver", "k").await, datas[2]);

    // Suspended: a write replaces the null version, the others stay.
    set_versioning(&c, "ver", BucketVersioningStatus::Suspended).await;
    let v3 = pseudo_random(30, 500).to_vec();
    put_bytes(&c, "ver", "k", v3.clone()).await;
    assert_eq!(get_version(&c, "ver", "k", "null").await, v3);
    assert_eq!(
        versions(&c, "ver").await.len(),
        4,
        "three versions and the new null"
    );

    // Copying an old version restores it as the newest.
    c.copy_object()
        .bucket("ver")
        .key("restored")
        .copy_source(format!("ver/k?versionId={}", ids[0]))
        .send()
        .await
        .expect("copy a version");
    assert_eq!(get_bytes(&c, "ver", "restored").await, datas[0]);

    // Removing every version frees the bucket and, after collection,
    // every byte of data.
    for id in ids.iter().chain(std::iter::once(&"null".to_string())) {
        c.delete_object()
            .bucket("ver")
            .key("k")
            .version_id(id)
            .send()
            .await
            .expect("rm version");
    }
    c.delete_object()
        .bucket("ver")
        .key("restored")
        .send()
        .await
        .expect("rm copy");
    let left = versions(&c, "ver").await;
    assert_eq!(
        left.len(),
        1,
        "the delete of `restored` left a null marker: {left:?}"
    );
    c.delete_object()
        .bucket("ver")
        .key("restored")
        .version_id("null")
        .send()
        .await
        .expect("rm");
    assert!(versions(&c, "ver").await.is_empty());
    let client = cluster.client().await;
    let pools = shoal_s3::open_pools(&client, &gw.conf.s3)
        .await
        .expect("pools");
    wait_for(
        Duration::from_secs(60),
        "the data of removed versions collected",
        || async { (data_pool_names(&pools).await?.is_empty()).then_some(()) },
    )
    .await;
    c.delete_bucket()
        .bucket("ver")
        .send()
        .await
        .expect("delete the emptied bucket");
}

/// Concurrent versioned writes each make a version; concurrent removals of
/// all of them leave none, and the key's head never points at a removed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_versioned_writes_and_removals_stay_consistent() {
    let (_cluster, gw, user) = start().await;
    let c = client(&gw, &user);
    c.create_bucket()
        .bucket("race")
        .send()
        .await
        .expect("create");
    set_versioning(&c, "race", BucketVersioningStatus::Enabled).await;
    for round in 0..3u64 {
        let writers: Vec<_> = (0..6u64)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move {
                    let data = pseudo_random(round * 100 + i, 2000).to_vec();
                    put_bytes(&c, "race", "k", data).await
                })
            })
            .collect();
        for w in writers {
            w.await.expect("writer");
        }
        let listed = versions(&c, "race").await;
        assert_eq!(listed.len(), 6, "round {round}: every write is a version");
        let distinct: BTreeSet<&str> = listed.iter().map(|v| v.1.as_str()).collect();
        assert_eq!(distinct.len(), 6, "version ids are unique");
        let removers: Vec<_> = listed
            .into_iter()
            .map(|(key, id, _, _)| {
                let c = c.clone();
                tokio::spawn(async move {
                    c.delete_object()
                        .bucket("race")
                        .key(key)
                        .version_id(id)
                        .send()
                        .await
                })
            })
            .collect();
        for r in removers {
            r.await.expect("remover").expect("remove a version");
        }
        assert!(
            versions(&c, "race").await.is_empty(),
            "round {round}: all removed"
        );
        let err = c
            .get_object()
            .bucket("race")
            .key("k")
            .send()
            .await
            .expect_err("gone");
        assert_eq!(err.code(), Some("NoSuchKey"));
    }
}
