//! Monitor-to-monitor messages.

use crate::mon::MonRequest;
use crate::wire::wire;

wire! {
    /// A Paxos message between monitors, tagged with the MonMap epoch the
    /// sender runs (messages of another epoch are dropped).
    pub struct PaxosEnvelope {
        /// The sender's MonMap epoch.
        pub monmap_epoch: u32,
        /// The message.
        pub message: shoal_paxos::Message,
    }

    /// A command a peon passes to the leader on behalf of a client it has
    /// authenticated.
    pub struct Forward {
        /// The client's identity name (the leader checks its caps).
        pub origin: String,
        /// The request as the client sent it.
        pub request: MonRequest,
    }

    /// Test-only fault injection, accepted only by a monitor started with
    /// `--fault-injection`.
    pub enum FaultCommand {
        /// Drop all traffic to and from these monitors (`mon.b`).
        Partition {
            /// Peer identity names.
            peers: Vec<String>,
        },
        /// Remove every fault.
        Heal,
    }
}
