//! Stores an object, reads it back whole and in part, lists the pool and
//! removes the object.
//!
//! Start a cluster first, then point the example at it:
//!
//! ```text
//! shoal dev up --dir /tmp/shoal-dev
//! cargo run -p shoal-client --example put_get -- /tmp/shoal-dev/shoal.toml data
//! ```

use bytes::Bytes;
use shoal_client::{Cluster, ReadOp, WriteOp, XattrCmp};
use shoal_conf::ShoalConf;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let conf_path = args.next().ok_or("usage: put_get SHOAL_TOML POOL")?;
    let pool = args.next().unwrap_or_else(|| "data".into());
    let conf = ShoalConf::load(std::path::Path::new(&conf_path))?;

    let cluster = Cluster::connect(&conf).await?;
    let io = cluster.ioctx(&pool).await?;

    // 10 MiB: three pieces of 4 MiB, written in parallel, switched in at once.
    let body: Bytes = (0..10u32 << 20)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let version = io.put("example/big", body.clone()).await?;
    println!(
        "stored example/big ({} bytes) at version {version}",
        body.len()
    );

    let whole = io.get("example/big").await?;
    assert_eq!(whole, body);
    let middle = io.get_range("example/big", (4 << 20) - 3, 6).await?;
    println!("6 bytes across the first piece boundary: {:?}", &middle[..]);
    let stat = io.stat("example/big").await?;
    println!("size {} in {} pieces", stat.size, stat.pieces);

    // A compound operation on one (unstriped) object: applied atomically,
    // and only if the guard holds.
    io.write_op(
        "example/counter",
        WriteOp::new()
            .cmp_xattr("owner", XattrCmp::Absent)
            .write_full(Bytes::from_static(b"1"))
            .set_xattr("owner", b"example".to_vec()),
    )
    .await
    .map(|_| ())
    .or_else(|e| match e.osd_code() {
        // A second run finds the owner already set.
        Some(shoal_client::OsdErrorCode::CompareFailed) => Ok(()),
        _ => Err(e),
    })?;
    let r = io
        .read_op(
            "example/counter",
            ReadOp::new().read(0, u64::MAX).get_xattr("owner"),
        )
        .await?;
    println!("counter object: {:?}", r.outputs);

    println!("objects in {pool}: {:?}", io.list_all().await?);
    io.remove("example/big").await?;
    println!("removed example/big");
    Ok(())
}
