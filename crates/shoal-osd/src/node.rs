//! The running OSD as its request handlers and periodic tasks see it: the
//! shared context (`context::Osd`) and the shard tasks that own its PGs.
//! Kept apart from `Osd` so that the shards, which use the context, are
//! not part of it.

use std::sync::Arc;

use crate::context::Osd;
use crate::shard::Shards;

/// The OSD and its PGs.
pub struct Node {
    /// The shared context.
    pub osd: Arc<Osd>,
    /// The PGs' state machines, on their shard tasks.
    pub shards: Shards,
}
