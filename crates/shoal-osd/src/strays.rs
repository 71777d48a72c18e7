//! Copies of PGs this OSD keeps although it is neither in their chain nor
//! in their up set — an OSD that was marked out and came back, the old
//! members once a backfill moved a PG — are deleted once the PG's head
//! says the PG is clean (every member of a full chain has every object),
//! as Ceph's primaries purge strays. Until then they stay: peering may
//! still need them as sources.

use std::sync::Arc;
use std::time::Duration;

use shoal_net::Frame;
use shoal_proto::msg;
use shoal_proto::rep::{PgQuery, PgQueryReply};

use crate::context::Osd;
use crate::node::Node;
use shoal_proto::osd::PgRef;

/// How often stray copies are checked.
const CHECK: Duration = Duration::from_secs(3);

/// Checks this OSD's stray copies every few seconds and deletes those of
/// clean PGs.
pub async fn run(node: Arc<Node>) {
    let osd = &node.osd;
    let mut tick = tokio::time::interval(CHECK);
    loop {
        tick.tick().await;
        let strays = node
            .shards
            .visit_all(|s| {
                s.pgs
                    .values()
                    .filter_map(|slot| Some((slot.pg.id(), slot.pg.stray_copy_of()?)))
                    .collect()
            })
            .await;
        for (pg, head) in strays {
            if !osd.map().is_up(head) {
                continue;
            }
            match head_says_clean(osd, pg, head).await {
                Ok(true) => purge(&node, pg).await,
                Ok(false) => {}
                Err(e) => tracing::debug!(%pg, head, error = %e, "stray check"),
            }
        }
    }
}

async fn head_says_clean(osd: &Osd, pg: PgRef, head: i32) -> Result<bool, String> {
    let q = PgQuery {
        epoch: osd.map().epoch(),
        pg,
        // Not peering: the head need not settle its writes to answer.
        interval: 0,
        shape: Default::default(),
    };
    let frame = Frame::encode(msg::PG_QUERY, &q).map_err(|e| e.to_string())?;
    let reply: PgQueryReply = crate::rpc::call(osd, head, &frame)
        .await
        .map_err(|e| e.message)?
        .decode_body()
        .map_err(|e| e.to_string())?;
    Ok(reply.clean)
}

async fn purge(node: &Node, pg: PgRef) {
    let osd = &node.osd;
    // No map may bring the PG back to this OSD while its copy goes.
    let _lifecycle = osd.pg_lifecycle.lock().await;
    let removed = node
        .shards
        .visit(pg, move |s| {
            s.remove_if(pg, |m| m.stray_copy_of().is_some())
        })
        .await
        .unwrap_or(false);
    if !removed {
        return;
    }
    osd.pg_ids_lock().remove(&pg);
    match crate::pgstore::destroy(&osd.store, pg).await {
        Ok(()) => tracing::info!(%pg, "removed a stray copy (the PG is clean elsewhere)"),
        Err(e) => tracing::warn!(%pg, error = %e.message, "cannot remove a stray copy"),
    }
}
