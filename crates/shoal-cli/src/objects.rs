//! Object commands: `put`, `get`, `rm`, `ls`, `stat`.

use std::path::Path;

use anyhow::{Context, Result};
use bytes::BytesMut;
use shoal_client::{Cluster, IoCtx, ListCursor};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::progress::Progress;

/// Bytes read from the source per call.
const CHUNK: usize = 4 << 20;

fn is_stdio(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// `shoal put POOL NAME FILE|-`: streams the file into a new version of
/// the object; the old version stays until the whole new one is stored.
pub async fn put(cluster: &Cluster, pool: &str, name: &str, file: &Path, json: bool) -> Result<()> {
    let io = cluster.ioctx(pool).await?;
    let (mut src, total): (Box<dyn AsyncRead + Unpin + Send>, Option<u64>) = if is_stdio(file) {
        (Box::new(tokio::io::stdin()), None)
    } else {
        let f = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("opening {}", file.display()))?;
        let len = f.metadata().await.ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let mut writer = io.writer(name)?;
    let mut progress = Progress::new(&format!("put {name}"), total);
    loop {
        let mut buf = BytesMut::with_capacity(CHUNK);
        while buf.len() < CHUNK {
            if src.read_buf(&mut buf).await.context("reading the input")? == 0 {
                break;
            }
        }
        if buf.is_empty() {
            break;
        }
        progress.add(buf.len() as u64);
        if let Err(e) = writer.write(buf.freeze()).await {
            progress.finish();
            return Err(e.into());
        }
    }
    let size = writer.written();
    let result = writer.finish().await;
    progress.finish();
    let version = result?;
    if json {
        println!(
            "{}",
            serde_json::json!({"pool": pool, "name": name, "size": size, "version": version.to_string()})
        );
    } else {
        println!("stored {pool}/{name}: {size} bytes, version {version}");
    }
    Ok(())
}

/// `shoal get POOL NAME FILE|-`: reads one version of the object, a few
/// pieces at a time.
pub async fn get(cluster: &Cluster, pool: &str, name: &str, file: &Path) -> Result<()> {
    let io = cluster.ioctx(pool).await?;
    let reader = io.reader(name).await?;
    let size = reader.size();
    let step = window(&io, cluster)?;
    let mut out: Box<dyn AsyncWrite + Unpin + Send> = if is_stdio(file) {
        Box::new(tokio::io::stdout())
    } else {
        Box::new(
            tokio::fs::File::create(file)
                .await
                .with_context(|| format!("creating {}", file.display()))?,
        )
    };
    let mut progress = Progress::new(&format!("get {name}"), Some(size));
    let mut off = 0;
    while off < size {
        let data = match reader.read(off, step).await {
            Ok(d) => d,
            Err(e) => {
                progress.finish();
                return Err(e.into());
            }
        };
        out.write_all(&data).await.context("writing the output")?;
        off += data.len() as u64;
        progress.add(data.len() as u64);
        if data.is_empty() {
            break;
        }
    }
    out.flush().await.context("writing the output")?;
    progress.finish();
    Ok(())
}

/// Bytes fetched per read: as many pieces as the client reads at once.
fn window(io: &IoCtx, cluster: &Cluster) -> Result<u64> {
    let piece = cluster
        .osdmap()
        .pool(io.pool_id())
        .map(|p| p.piece_size)
        .context("the pool vanished")?;
    Ok(piece.saturating_mul(cluster.options().pieces_in_flight as u64))
}

/// `shoal rm POOL NAME...`
pub async fn rm(cluster: &Cluster, pool: &str, names: &[String]) -> Result<()> {
    let io = cluster.ioctx(pool).await?;
    for name in names {
        io.remove(name)
            .await
            .with_context(|| format!("removing {pool}/{name}"))?;
    }
    Ok(())
}

/// `shoal ls POOL`: names as they come, a page at a time.
pub async fn ls(cluster: &Cluster, pool: &str, json: bool) -> Result<()> {
    let io = cluster.ioctx(pool).await?;
    let mut cursor = ListCursor::default();
    let mut all = Vec::new();
    loop {
        let page = io.list(&cursor, 1000).await?;
        if json {
            all.extend(page.names);
        } else {
            for n in page.names {
                println!("{n}");
            }
        }
        match page.next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    if json {
        println!("{}", serde_json::to_string(&all)?);
    }
    Ok(())
}

/// `shoal stat POOL NAME`
pub async fn stat(cluster: &Cluster, pool: &str, name: &str, json: bool) -> Result<()> {
    let io = cluster.ioctx(pool).await?;
    let st = io.stat(name).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "pool": pool, "name": name, "size": st.size,
                "version": st.version.to_string(), "pieces": st.pieces,
            })
        );
    } else {
        println!(
            "{pool}/{name} size {} version {} pieces {}",
            st.size, st.version, st.pieces
        );
    }
    Ok(())
}
