//! Map subscriptions: a subscriber asks for every OSDMap epoch after the
//! one it has; the monitor answers at once when it has newer epochs, or
//! holds the request until one is committed or `wait_ms` passes (a long
//! poll, so updates reach subscribers as soon as they commit without the
//! monitors having to dial clients).

use crate::wire::wire;

wire! {
    /// Subscribe to maps newer than the ones the caller has.
    pub struct SubscribeRequest {
        /// The newest OSDMap epoch the caller has (0: none, send the full map).
        pub osdmap_have: u32,
        /// The newest MonMap epoch the caller has (0: none).
        pub monmap_have: u32,
        /// Hold the request up to this long when there is nothing newer.
        pub wait_ms: u32,
    }

    /// Maps newer than the subscriber's.
    pub struct SubscribeReply {
        /// A full OSDMap (`OsdMap::encode`) when the caller is too far behind
        /// for incrementals (or had none); incrementals follow from its epoch.
        pub full_osdmap: Option<Vec<u8>>,
        /// Consecutive incrementals (`OsdMapIncremental::encode`), oldest
        /// first, each one epoch after the previous (after the full map if
        /// any, else after `osdmap_have`). May be capped: ask again.
        pub incrementals: Vec<Vec<u8>>,
        /// The MonMap (`MonMap::encode`) if newer than the caller's.
        pub monmap: Option<Vec<u8>>,
        /// The answering monitor's newest OSDMap epoch.
        pub latest_epoch: u32,
    }
}
