//! The gateway as a real process on a test cluster, driven by a client
//! nobody here wrote: the AWS SDK for Rust (`aws-sdk-s3`).

use std::collections::BTreeSet;
use std::time::Duration;

mod common;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use common::{
    client, client_with, data_pool_names, get_bytes, put_bytes, start, start_with_gc_min_wait,
};
use shoal_tests::{S3Gateway, pseudo_random, wait_for};

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data).as_slice())
}

/// Raw objects of the data pool that belong to no object of `bucket`
/// (pieces are `{data name}.{16 hex digits}`).
async fn orphans(pools: &shoal_s3::model::Pools, bucket: &str) -> Option<usize> {
    let b = shoal_s3::model::buckets::Buckets::new(pools.clone())
        .get(bucket)
        .await
        .ok()?;
    let q = shoal_s3::model::index::ListQuery {
        max: 10_000,
        ..Default::default()
    };
    let page = b.index(pools).list(&q).await.ok()?;
    let live: BTreeSet<String> = page
        .items
        .iter()
        .filter_map(|l| match l {
            shoal_s3::model::index::Listed::Object(_, r) => Some(r.data_names()),
            _ => None,
        })
        .flatten()
        .map(str::to_string)
        .collect();
    let names = data_pool_names(pools).await?;
    let stray = names
        .iter()
        .filter(|n| !live.contains(&n[..n.len().saturating_sub(17)]))
        .count();
    Some(stray)
}

/// Objects of 0 B to 40 MiB, simple and multipart, round trip with MD5
/// ETags; ranges, conditions and digests behave as S3 says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_through_the_sdk() {
    let (_cluster, gw, user) = start().await;
    let c = client(&gw, &user);
    c.create_bucket()
        .bucket("bucket1")
        .send()
        .await
        .expect("create");
    for (i, size) in [0usize, 1, 4096, (4 << 20) + 1, 9 << 20]
        .into_iter()
        .enumerate()
    {
        let data = pseudo_random(i as u64, size).to_vec();
        let key = format!("obj-{size}");
        let etag = put_bytes(&c, "bucket1", &key, data.clone()).await;
        assert_eq!(etag.trim_matches('"'), md5_hex(&data), "ETag of {size} B");
        assert_eq!(
            get_bytes(&c, "bucket1", &key).await,
            data,
            "{size} B round trip"
        );
    }

    // Multipart: 5 MiB, 5 MiB, then a short last part (40 MiB in all
    // would be the same path with more parts; keep CI quick).
    let parts: Vec<Vec<u8>> = [5 << 20, 5 << 20, 123_457]
        .iter()
        .enumerate()
        .map(|(i, n)| pseudo_random(100 + i as u64, *n).to_vec())
        .collect();
    let up = c
        .create_multipart_upload()
        .bucket("bucket1")
        .key("multi")
        .content_type("application/x-test")
        .metadata("color", "blue")
        .send()
        .await
        .expect("create upload");
    let id = up.upload_id().expect("upload id").to_string();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket("bucket1")
            .key("multi")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .expect("upload part");
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().expect("part ETag"))
                .build(),
        );
    }
    let listed = c
        .list_parts()
        .bucket("bucket1")
        .key("multi")
        .upload_id(&id)
        .send()
        .await
        .expect("list parts");
    assert_eq!(listed.parts().len(), 3);
    let ups = c
        .list_multipart_uploads()
        .bucket("bucket1")
        .send()
        .await
        .expect("list uploads");
    assert_eq!(ups.uploads().len(), 1);
    let out = c
        .complete_multipart_upload()
        .bucket("bucket1")
        .key("multi")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    assert!(out.e_tag().expect("etag").ends_with("-3\""), "{out:?}");
    let whole: Vec<u8> = parts.concat();
    assert_eq!(get_bytes(&c, "bucket1", "multi").await, whole);
    let head = c
        .head_object()
        .bucket("bucket1")
        .key("multi")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_length(), Some(whole.len() as i64));
    assert_eq!(head.content_type(), Some("application/x-test"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("blue")
    );

    // A range across the part boundary.
    let r = c
        .get_object()
        .bucket("bucket1")
        .key("multi")
        .range("bytes=5242870-5242889")
        .send()
        .await
        .expect("range");
    let got = r.body.collect().await.expect("body").into_bytes();
    assert_eq!(&got[..], &whole[5_242_870..5_242_890]);

    // Conditions: If-None-Match on GET, conditional PUT.
    let etag = head.e_tag().expect("etag").to_string();
    let e = c
        .get_object()
        .bucket("bucket1")
        .key("multi")
        .if_none_match(&etag)
        .send()
        .await
        .expect_err("not modified");
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(304));
    let e = c
        .put_object()
        .bucket("bucket1")
        .key("multi")
        .if_none_match("*")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("exists");
    assert_eq!(e.code(), Some("PreconditionFailed"));
    // A wrong Content-MD5 stores nothing.
    let e = c
        .put_object()
        .bucket("bucket1")
        .key("bad-md5")
        .content_md5("1B2M2Y8AsgTpgAmY7PhCfg==") // md5 of ""
        .body(ByteStream::from_static(b"not empty"))
        .send()
        .await
        .expect_err("bad digest");
    assert_eq!(e.code(), Some("BadDigest"));
    let e = c
        .head_object()
        .bucket("bucket1")
        .key("bad-md5")
        .send()
        .await
        .expect_err("nothing stored");
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(404));

    // Copy, then delete everything and the bucket.
    c.copy_object()
        .bucket("bucket1")
        .key("copy")
        .copy_source("bucket1/multi")
        .send()
        .await
        .expect("copy");
    assert_eq!(get_bytes(&c, "bucket1", "copy").await, whole);
    let e = c
        .delete_bucket()
        .bucket("bucket1")
        .send()
        .await
        .expect_err("not empty");
    assert_eq!(e.code(), Some("BucketNotEmpty"));
    let keys = c
        .list_objects_v2()
        .bucket("bucket1")
        .send()
        .await
        .expect("list");
    let ids: Vec<ObjectIdentifier> = keys
        .contents()
        .iter()
        .map(|o| {
            ObjectIdentifier::builder()
                .key(o.key().unwrap())
                .build()
                .unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 7);
    c.delete_objects()
        .bucket("bucket1")
        .delete(Delete::builder().set_objects(Some(ids)).build().unwrap())
        .send()
        .await
        .expect("delete objects");
    c.delete_bucket()
        .bucket("bucket1")
        .send()
        .await
        .expect("delete bucket");
    let buckets = c.list_buckets().send().await.expect("list buckets");
    assert!(buckets.buckets().is_empty());

    // Wrong secret and unknown key.
    let bad = client_with(&gw, &user.access_key, "wrong-secret");
    let e = bad.list_buckets().send().await.expect_err("refused");
    assert_eq!(e.code(), Some("SignatureDoesNotMatch"));
    let unknown = client_with(&gw, "NOSUCHKEY", "x");
    let e = unknown.list_buckets().send().await.expect_err("refused");
    assert_eq!(e.code(), Some("InvalidAccessKeyId"));
}

/// Listing with prefixes, delimiters, markers and tokens over enough keys
/// to span every index shard and several pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_merges_shards_in_key_order() {
    let (_cluster, gw, user) = start().await;
    let c = client(&gw, &user);
    c.create_bucket()
        .bucket("list")
        .send()
        .await
        .expect("create");
    let mut keys = BTreeSet::new();
    for d in 0..12 {
        for f in 0..100 {
            keys.insert(format!("dir{d:02}/file{f:03}"));
        }
    }
    for f in 0..30 {
        keys.insert(format!("top{f:02}"));
    }
    let all: Vec<String> = keys.iter().cloned().collect();
    let puts = all.chunks(all.len().div_ceil(16)).map(|chunk| {
        let c = c.clone();
        let chunk = chunk.to_vec();
        tokio::spawn(async move {
            for k in chunk {
                put_bytes(&c, "list", &k, k.clone().into_bytes()).await;
            }
        })
    });
    for p in puts {
        p.await.expect("writer");
    }

    // v2, 250 a page: every key once, in order.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket("list")
            .max_keys(250)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("list v2");
        seen.extend(page.contents().iter().map(|o| o.key().unwrap().to_string()));
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    assert_eq!(seen, all, "v2 pages");

    // Delimiter: 12 directories and 30 top-level keys.
    let page = c
        .list_objects_v2()
        .bucket("list")
        .delimiter("/")
        .send()
        .await
        .expect("delimiter");
    let prefixes: Vec<&str> = page
        .common_prefixes()
        .iter()
        .map(|p| p.prefix().unwrap())
        .collect();
    assert_eq!(prefixes.len(), 12);
    assert_eq!(prefixes[0], "dir00/");
    assert_eq!(page.contents().len(), 30);

    // Prefix + start-after, and v1 with a marker and a delimiter.
    let page = c
        .list_objects_v2()
        .bucket("list")
        .prefix("dir05/")
        .start_after("dir05/file089")
        .send()
        .await
        .expect("prefix");
    let got: Vec<&str> = page.contents().iter().map(|o| o.key().unwrap()).collect();
    assert_eq!(got.len(), 10);
    assert_eq!(got[0], "dir05/file090");
    let v1 = c
        .list_objects()
        .bucket("list")
        .marker("dir09/file099")
        .delimiter("/")
        .max_keys(2)
        .send()
        .await
        .expect("v1");
    let p: Vec<&str> = v1
        .common_prefixes()
        .iter()
        .map(|p| p.prefix().unwrap())
        .collect();
    assert_eq!(p, vec!["dir10/", "dir11/"]);
    assert_eq!(v1.is_truncated(), Some(true));
    assert_eq!(v1.next_marker(), Some("dir11/"));
    // The next page starts after that prefix, not inside it again.
    let next = c
        .list_objects()
        .bucket("list")
        .marker("dir11/")
        .delimiter("/")
        .max_keys(2)
        .send()
        .await
        .expect("v1 next");
    assert!(next.common_prefixes().is_empty());
    assert_eq!(next.contents().first().and_then(|o| o.key()), Some("top00"));
}

/// Concurrent PUTs of one key while readers GET it: every read is one
/// whole write, and one write wins; overwritten data is collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_of_one_key_leave_one_whole_winner() {
    // Overwritten data is kept for 5 s, as `gc_min_wait_ms` keeps it for a
    // read in flight; with 0 a read that began before an overwrite may lose
    // its data mid-stream (the client sees a short body, never a mix).
    let (cluster, gw, user) = start_with_gc_min_wait(5_000).await;
    let c = client(&gw, &user);
    c.create_bucket()
        .bucket("race")
        .send()
        .await
        .expect("create");
    let versions: Vec<Vec<u8>> = (0..6)
        .map(|i| pseudo_random(1000 + i, (1 << 20) + i as usize * 7919).to_vec())
        .collect();
    put_bytes(&c, "race", "k", versions[0].clone()).await;
    let writers = versions.iter().cloned().map(|v| {
        let c = c.clone();
        tokio::spawn(async move {
            for _ in 0..3 {
                put_bytes(&c, "race", "k", v.clone()).await;
            }
        })
    });
    let writers: Vec<_> = writers.collect();
    let reader = {
        let c = c.clone();
        let versions = versions.clone();
        tokio::spawn(async move {
            let mut reads = 0;
            for _ in 0..40 {
                let got = get_bytes(&c, "race", "k").await;
                assert!(versions.contains(&got), "a read mixed two writes");
                reads += 1;
            }
            reads
        })
    };
    for w in writers {
        w.await.expect("writer");
    }
    assert_eq!(reader.await.expect("reader"), 40);
    let last = get_bytes(&c, "race", "k").await;
    assert!(versions.contains(&last));

    // Only the winner's data is left once the collector has run.
    let client = cluster.client().await;
    let pools = shoal_s3::open_pools(&client, &gw.conf.s3)
        .await
        .expect("pools");
    wait_for(Duration::from_secs(60), "garbage collected", || async {
        (orphans(&pools, "race").await? == 0).then_some(())
    })
    .await;
    assert_eq!(pools.data.list_all().await.expect("list").len(), 1);
}

/// A gateway SIGKILLed in the middle of uploads: nothing acknowledged is
/// lost, and after a restart the collector leaves no orphaned data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_leaks_nothing() {
    let (cluster, mut gw, user) = start().await;
    let c = client(&gw, &user);
    c.create_bucket()
        .bucket("kill")
        .send()
        .await
        .expect("create");
    let kept = pseudo_random(7, 3 << 20).to_vec();
    put_bytes(&c, "kill", "kept", kept.clone()).await;
    // Uploads in flight: a multipart upload with a part stored, and PUTs.
    let up = c
        .create_multipart_upload()
        .bucket("kill")
        .key("half")
        .send()
        .await
        .expect("create upload");
    c.upload_part()
        .bucket("kill")
        .key("half")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(ByteStream::from(pseudo_random(8, 5 << 20).to_vec()))
        .send()
        .await
        .expect("part");
    let client = cluster.client().await;
    let pools = shoal_s3::open_pools(&client, &gw.conf.s3)
        .await
        .expect("pools");
    // The stored part is data no object names yet.
    let before = orphans(&pools, "kill").await.expect("listing");
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                let data = pseudo_random(20 + i, 8 << 20).to_vec();
                let _ = c
                    .put_object()
                    .bucket("kill")
                    .key(format!("inflight{i}"))
                    .body(ByteStream::from(data))
                    .send()
                    .await;
            })
        })
        .collect();
    // Kill while their pieces are being written.
    wait_for(Duration::from_secs(30), "uploads in flight", || async {
        (orphans(&pools, "kill").await? > before).then_some(())
    })
    .await;
    gw.kill();
    for w in writers {
        let _ = w.await;
    }
    let left = orphans(&pools, "kill").await.expect("listing");
    assert!(left > before, "the kill left unfinished uploads behind");
    gw.restart().await;
    assert_eq!(get_bytes(&c, "kill", "kept").await, kept);
    // Abort the upload; the collector then removes everything but the
    // live objects' data.
    c.abort_multipart_upload()
        .bucket("kill")
        .key("half")
        .upload_id(up.upload_id().unwrap())
        .send()
        .await
        .expect("abort");
    wait_for(Duration::from_secs(60), "orphans collected", || async {
        (orphans(&pools, "kill").await? == 0).then_some(())
    })
    .await;
    assert_eq!(get_bytes(&c, "kill", "kept").await, kept);
}

/// Status and header block of an unsigned request with `headers` (done by
/// hand: the SDK always signs).
async fn raw_request(gw: &S3Gateway, method: &str, path: &str, headers: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(gw.addr)
        .await
        .expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n{headers}Connection: close\r\n\r\n",
        gw.addr
    );
    s.write_all(req.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("answer");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    (status, head)
}

/// Status code of an unsigned request.
async fn anonymous(gw: &S3Gateway, method: &str, path: &str) -> u16 {
    raw_request(gw, method, path, "").await.0
}

/// Canned and explicit ACLs are enforced: public-read objects are read
/// anonymously, private ones by nobody but their owner, and grants let
/// another user in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_are_enforced() {
    let (cluster, gw, alice) = start().await;
    let bob = gw.create_user(&cluster, "bob").await;
    let (a, b) = (client(&gw, &alice), client(&gw, &bob));
    a.create_bucket()
        .bucket("shared")
        .send()
        .await
        .expect("create");
    put_bytes(&a, "shared", "private", b"secret".to_vec()).await;
    a.put_object()
        .bucket("shared")
        .key("public")
        .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .expect("public put");

    assert_eq!(anonymous(&gw, "GET", "/shared/public").await, 200);
    assert_eq!(anonymous(&gw, "GET", "/shared/private").await, 403);
    assert_eq!(anonymous(&gw, "GET", "/shared").await, 403, "listing");
    assert_eq!(anonymous(&gw, "PUT", "/shared/new").await, 403);
    let e = b
        .get_object()
        .bucket("shared")
        .key("private")
        .send()
        .await
        .expect_err("bob may not read");
    assert_eq!(e.code(), Some("AccessDenied"));
    let e = b
        .put_object()
        .bucket("shared")
        .key("x")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("bob may not write");
    assert_eq!(e.code(), Some("AccessDenied"));

    // Grant bob read on the bucket and the object; the ACLs read back.
    a.put_bucket_acl()
        .bucket("shared")
        .grant_read(format!("id=\"{}\"", bob.uid))
        .grant_full_control(format!("id=\"{}\"", alice.uid))
        .send()
        .await
        .expect("bucket acl");
    a.put_object_acl()
        .bucket("shared")
        .key("private")
        .grant_read(format!("id=\"{}\"", bob.uid))
        .send()
        .await
        .expect("object acl");
    assert_eq!(get_bytes(&b, "shared", "private").await, b"secret");
    let listed = b
        .list_objects_v2()
        .bucket("shared")
        .send()
        .await
        .expect("bob lists");
    assert_eq!(listed.contents().len(), 2);
    let acl = a
        .get_object_acl()
        .bucket("shared")
        .key("private")
        .send()
        .await
        .expect("get acl");
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(alice.uid.as_str()));
    assert_eq!(acl.grants().len(), 1);
    let e = b
        .put_object_acl()
        .bucket("shared")
        .key("private")
        .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
        .send()
        .await
        .expect_err("bob may not change the ACL");
    assert_eq!(e.code(), Some("AccessDenied"));
    a.put_bucket_acl()
        .bucket("shared")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .expect("public bucket");
    assert_eq!(anonymous(&gw, "GET", "/shared?list-type=2").await, 200);
}

/// CORS: rules are stored and read back, preflights are answered by them,
/// and cross-origin answers carry the allowing headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflights_follow_the_rules() {
    use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
    let (_cluster, gw, user) = start().await;
    let c = client(&gw, &user);
    c.create_bucket()
        .bucket("web")
        .send()
        .await
        .expect("create");
    c.put_object()
        .bucket("web")
        .key("page")
        .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"<html/>"))
        .send()
        .await
        .expect("put");
    let preflight = |origin: &str, method: &str| {
        format!("Origin: {origin}\r\nAccess-Control-Request-Method: {method}\r\n")
    };
    // No rules yet: refused; no Origin: a bad request.
    let (status, _) = raw_request(
        &gw,
        "OPTIONS",
        "/web/page",
        &preflight("https://a.example", "GET"),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(raw_request(&gw, "OPTIONS", "/web/page", "").await.0, 400);
    let e = c
        .get_bucket_cors()
        .bucket("web")
        .send()
        .await
        .expect_err("none");
    assert_eq!(e.code(), Some("NoSuchCORSConfiguration"));

    let rule = CorsRule::builder()
        .allowed_origins("https://*.example")
        .allowed_methods("GET")
        .allowed_methods("PUT")
        .allowed_headers("x-amz-*")
        .expose_headers("ETag")
        .max_age_seconds(600)
        .build()
        .expect("rule");
    c.put_bucket_cors()
        .bucket("web")
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(rule)
                .build()
                .expect("conf"),
        )
        .send()
        .await
        .expect("put cors");
    let got = c
        .get_bucket_cors()
        .bucket("web")
        .send()
        .await
        .expect("get cors");
    assert_eq!(got.cors_rules().len(), 1);
    assert_eq!(got.cors_rules()[0].max_age_seconds(), Some(600));

    let (status, head) = raw_request(
        &gw,
        "OPTIONS",
        "/web/page",
        &preflight("https://a.example", "PUT"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        head.contains("access-control-allow-origin: https://a.example"),
        "{head}"
    );
    assert!(head.contains("access-control-max-age: 600"), "{head}");
    let asks_headers = format!(
        "{}Access-Control-Request-Headers: x-amz-meta-a\r\n",
        preflight("https://a.example", "PUT")
    );
    assert_eq!(
        raw_request(&gw, "OPTIONS", "/web/page", &asks_headers)
            .await
            .0,
        200
    );
    let bad_header = format!(
        "{}Access-Control-Request-Headers: authorization\r\n",
        preflight("https://a.example", "PUT")
    );
    assert_eq!(
        raw_request(&gw, "OPTIONS", "/web/page", &bad_header)
            .await
            .0,
        403
    );
    assert_eq!(
        raw_request(
            &gw,
            "OPTIONS",
            "/web/page",
            &preflight("https://evil.test", "GET")
        )
        .await
        .0,
        403
    );
    assert_eq!(
        raw_request(
            &gw,
            "OPTIONS",
            "/web/page",
            &preflight("https://a.example", "DELETE")
        )
        .await
        .0,
        403
    );
    // The real request from that origin carries the headers.
    let (status, head) =
        raw_request(&gw, "GET", "/web/page", "Origin: https://b.example\r\n").await;
    assert_eq!(status, 200);
    assert!(
        head.contains("access-control-allow-origin: https://b.example"),
        "{head}"
    );
    assert!(
        head.contains("access-control-expose-headers: etag"),
        "{head}"
    );

    c.delete_bucket_cors()
        .bucket("web")
        .send()
        .await
        .expect("delete cors");
    let (status, _) = raw_request(
        &gw,
        "OPTIONS",
        "/web/page",
        &preflight("https://a.example", "GET"),
    )
    .await;
    assert_eq!(status, 403);
}
