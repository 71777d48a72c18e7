//! Objects through the client against real monitors and OSDs: round trips
//! of many sizes, range reads across piece boundaries, overwrites, listing
//! and removal, xattrs, omap and compound ops.

use std::collections::BTreeSet;

use bytes::Bytes;
use shoal_client::striper::{head_name, piece_name};
use shoal_client::{ClientError, IoCtx, ListCursor, OsdErrorCode, ReadOp, WriteOp, XattrCmp};
use shoal_tests::{TestCluster, TestClusterOptions, pseudo_random as data};

const MIB: usize = 1 << 20;

async fn put_get(io: &IoCtx, name: &str, body: &Bytes) {
    io.put(name, body.clone()).await.expect("put");
    let got = io.get(name).await.expect("get");
    assert_eq!(got.len(), body.len(), "{name}: length");
    assert_eq!(blake3::hash(&got), blake3::hash(body), "{name}: content");
    let st = io.stat(name).await.expect("stat");
    assert_eq!(st.size, body.len() as u64, "{name}: stat size");
}

/// The raw object names of the pool.
async fn raw_names(io: &IoCtx) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut cursor = ListCursor::default();
    loop {
        let page = io.list_objects(&cursor, 100).await.expect("list");
        out.extend(page.names);
        match page.next {
            Some(c) => cursor = c,
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_and_are_listed_and_removed() {
    let cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 16, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");

    let sizes = [0, 1, 4096, 4 * MIB - 1, 4 * MIB, 4 * MIB + 1, 37 * MIB];
    for (i, &size) in sizes.iter().enumerate() {
        put_get(&io, &format!("fixed-{size}"), &data(i as u64, size)).await;
    }
    // A few hundred random sizes, mostly small, some across piece boundaries.
    let mut x = 0x1234_5678_u64;
    let mut names = Vec::new();
    for i in 0..300u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = match i % 10 {
            0 => (x % (9 * MIB as u64)) as usize,
            1..=3 => (x % (256 << 10)) as usize,
            _ => (x % 16384) as usize,
        };
        let name = format!("random/{i:03}");
        put_get(&io, &name, &data(1000 + i, size)).await;
        names.push(name);
    }

    // Listing shows each object once, not its pieces.
    let listed: BTreeSet<String> = io.list_all().await.expect("list").into_iter().collect();
    assert_eq!(listed.len(), sizes.len() + names.len());
    assert!(listed.contains("fixed-38797312"));
    assert!(listed.contains("random/299"));

    // Remove half; the rest stays intact and pieces go too.
    for name in names.iter().step_by(2) {
        io.remove(name).await.expect("remove");
        assert!(io.get(name).await.unwrap_err().is_not_found());
        assert!(io.remove(name).await.unwrap_err().is_not_found());
    }
    let listed: BTreeSet<String> = io.list_all().await.expect("list").into_iter().collect();
    assert_eq!(listed.len(), sizes.len() + names.len() / 2);
    io.remove("fixed-38797312").await.expect("remove");
    let raw = raw_names(&io).await;
    assert!(
        !raw.iter().any(|n| n.starts_with("fixed-38797312.")),
        "pieces of a removed object remain"
    );
    for (i, name) in names.iter().enumerate().skip(1).step_by(2) {
        let got = io.get(name).await.expect("get");
        assert_eq!(got, data(1000 + i as u64, got.len()), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_in_integrity_wire_mode_serves_and_replicates_objects() {
    // Monitors, OSDs and the client all in the crc32c-only wire mode.
    let cluster = TestCluster::start(&TestClusterOptions {
        wire_mode: "integrity",
        ..TestClusterOptions::default()
    })
    .await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 8, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");
    for (i, &size) in [0, 4096, 4 * MIB, 4 * MIB + 1, 9 * MIB].iter().enumerate() {
        put_get(&io, &format!("obj-{size}"), &data(i as u64, size)).await;
    }
    // A put is answered only once the whole chain (head -> middle -> tail,
    // OSD to OSD in this mode too) has it, and reads are spread over the
    // replicas: each object read back several times.
    for round in 0..3 {
        for (i, &size) in [4096, 4 * MIB + 1].iter().enumerate() {
            let got = io.get(&format!("obj-{size}")).await.expect("get");
            assert_eq!(got, data(1 + 2 * i as u64, size), "round {round}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_overwrites_xattrs_omap_and_compound_ops() {
    let cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let client = cluster.client().await;
    cluster.create_pool(&client, "data", 8, 3, 2).await;
    let io = client.ioctx("data").await.expect("ioctx");

    // Range reads across piece boundaries of a 3.5-piece object.
    let body = data(7, 14 * MIB);
    io.put("big", body.clone()).await.expect("put");
    let p = 4 * MIB as u64;
    for (off, len) in [
        (0, 10),
        (p - 5, 10),
        (p - 1, p + 2),
        (2 * p, p),
        (3 * p + 100, 10 * MIB as u64),
        (0, u64::MAX),
        (14 * MIB as u64, 5),
        (u64::MAX - 1, 5),
    ] {
        let got = io.get_range("big", off, len).await.expect("range");
        let start = (off as usize).min(body.len());
        let end = (off.saturating_add(len) as usize).min(body.len());
        assert_eq!(got, body.slice(start..end), "range {off}+{len}");
    }
    // A pinned reader reads the same version in parts.
    let reader = io.reader("big").await.expect("reader");
    assert_eq!(reader.size(), body.len() as u64);
    let part = reader.read(p + 7, 9).await.expect("read");
    assert_eq!(part, body.slice(p as usize + 7..p as usize + 16));

    // Overwrite shorter: the stale pieces go; longer: they come back.
    let pieces_of = |raw: &BTreeSet<String>| raw.iter().filter(|n| n.starts_with("big.")).count();
    assert_eq!(pieces_of(&raw_names(&io).await), 4);
    put_get(&io, "big", &data(8, 5 * MIB)).await;
    assert_eq!(pieces_of(&raw_names(&io).await), 2);
    // The old version's pinned reader now sees the change, not a mix.
    match reader.read(p, 10).await {
        Err(ClientError::Changed(_)) => {}
        other => panic!("a reader of a replaced version got {other:?}"),
    }
    put_get(&io, "big", &data(9, 9 * MIB)).await;
    assert_eq!(pieces_of(&raw_names(&io).await), 3);
    put_get(&io, "big", &data(10, 10)).await;
    assert_eq!(pieces_of(&raw_names(&io).await), 1);

    // Xattrs and omap live with the object; reserved names are refused.
    io.set_xattr("big", "user.color", b"blue")
        .await
        .expect("setxattr");
    assert_eq!(
        io.get_xattr("big", "user.color").await.expect("getxattr"),
        Some(b"blue".to_vec())
    );
    assert_eq!(io.xattrs("big").await.expect("xattrs").len(), 1);
    assert!(matches!(
        io.set_xattr("big", "shoal.layout", b"x").await,
        Err(ClientError::Invalid(_))
    ));
    io.omap_set(
        "big",
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
        ],
    )
    .await
    .expect("omap set");
    let (entries, more) = io
        .omap_list("big", None, Vec::new(), 10)
        .await
        .expect("omap list");
    assert_eq!(entries.len(), 2);
    assert!(!more);
    io.omap_remove("big", vec![b"a".to_vec()])
        .await
        .expect("omap rm");
    assert_eq!(
        io.omap_get("big", vec![b"a".to_vec(), b"b".to_vec()])
            .await
            .expect("omap get"),
        vec![(b"b".to_vec(), b"2".to_vec())]
    );
    // Overwriting the data keeps xattrs.
    put_get(&io, "big", &data(11, 100)).await;
    assert_eq!(
        io.get_xattr("big", "user.color").await.expect("getxattr"),
        Some(b"blue".to_vec())
    );

    // Compound ops on a raw object: all or nothing, guarded.
    let obj = "counter";
    io.write_op(
        obj,
        WriteOp::new()
            .create(true)
            .write_full(Bytes::from_static(b"hello"))
            .append(Bytes::from_static(b" world"))
            .set_xattr("v", b"1".to_vec()),
    )
    .await
    .expect("compound write");
    let e = io
        .write_op(obj, WriteOp::new().create(true))
        .await
        .unwrap_err();
    assert_eq!(e.osd_code(), Some(OsdErrorCode::Exists));
    let e = io
        .write_op(
            obj,
            WriteOp::new()
                .cmp_xattr("v", XattrCmp::Eq(b"2".to_vec()))
                .truncate(0),
        )
        .await
        .unwrap_err();
    assert_eq!(e.osd_code(), Some(OsdErrorCode::CompareFailed));
    io.write_op(
        obj,
        WriteOp::new()
            .cmp_xattr("v", XattrCmp::Eq(b"1".to_vec()))
            .zero(0, 5)
            .set_xattr("v", b"2".to_vec()),
    )
    .await
    .expect("guarded write");
    let r = io
        .read_op(obj, ReadOp::new().read(0, u64::MAX).stat().get_xattr("v"))
        .await
        .expect("compound read");
    assert_eq!(
        r.outputs[0],
        shoal_client::Output::Data(Bytes::from_static(b"\0\0\0\0\0 world"))
    );
    assert_eq!(
        r.outputs[2],
        shoal_client::Output::Xattr(Some(b"2".to_vec()))
    );

    // Bad input is refused with a clear error.
    assert!(matches!(
        io.put("", Bytes::new()).await,
        Err(ClientError::Invalid(_))
    ));
    let long = "x".repeat(3000);
    assert!(matches!(io.stat(&long).await, Err(ClientError::Invalid(_))));
    assert!(io.stat("missing").await.unwrap_err().is_not_found());
    assert!(matches!(
        client.ioctx("no-such-pool").await,
        Err(ClientError::NoSuchPool(_))
    ));
    // Piece names are the documented ones.
    assert_eq!(head_name("big"), piece_name("big", 0));
}

/// Data access follows the identity's caps: `osd r` reads and lists but
/// cannot write, no `osd` caps cannot read; a caps change reaches the
/// OSDs without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osd_caps_limit_what_a_client_may_do() {
    let cluster = TestCluster::start(&TestClusterOptions::default()).await;
    let admin = cluster.client().await;
    cluster.create_pool(&admin, "data", 8, 3, 2).await;
    let io = admin.ioctx("data").await.expect("ioctx");
    let body = data(1, 10_000);
    io.put("doc", body.clone()).await.expect("admin put");

    let denied = |r: Result<(), ClientError>| matches!(r, Err(e) if e.osd_code() == Some(OsdErrorCode::PermissionDenied));
    let reader = cluster
        .client_as(&admin, "client.reader", "mon r, osd r")
        .await;
    let rio = reader.ioctx("data").await.expect("ioctx");
    assert_eq!(rio.get("doc").await.expect("osd r reads"), body);
    assert!(
        raw_names(&rio).await.contains(&head_name("doc")),
        "osd r lists"
    );
    assert!(
        denied(rio.put("doc", data(2, 10)).await.map(|_| ())),
        "osd r cannot write"
    );
    assert!(denied(rio.remove("doc").await), "osd r cannot remove");

    let nobody = cluster.client_as(&admin, "client.nobody", "mon r").await;
    let nio = nobody.ioctx("data").await.expect("ioctx");
    assert!(
        denied(nio.get("doc").await.map(|_| ())),
        "no osd caps, no reads"
    );

    // Granting `osd rw` lets the reader write, once the OSDs see it.
    admin
        .monc()
        .command(shoal_proto::mon::MonCommand::AuthCaps {
            name: "client.reader".into(),
            caps: "mon r, osd rw".into(),
        })
        .await
        .expect("auth caps");
    shoal_tests::wait_for(
        std::time::Duration::from_secs(60),
        "osd rw to take effect",
        || async { rio.put("doc2", data(3, 100)).await.ok() },
    )
    .await;
    assert_eq!(
        io.get("doc").await.expect("get"),
        body,
        "the denied writes changed nothing"
    );
}
