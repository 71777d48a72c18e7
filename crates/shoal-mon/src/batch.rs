//! The value the monitors agree on: a batch of map transactions. Applying
//! the same batches in the same order gives every monitor the same state.

use shoal_proto::MonCommand;

use crate::error::MonError;

/// One change, with who asked and when.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct Txn {
    /// The client instance (0: the monitors themselves, not de-duplicated).
    pub client_id: u64,
    /// The client's request number.
    pub tid: u64,
    /// The identity that asked (`client.admin`, `mon.a`).
    pub origin: String,
    /// The leader's wall clock when it proposed the batch, in ms since the
    /// epoch (the only time applying may use, so every monitor agrees).
    pub stamp_ms: u64,
    /// The change.
    pub command: MonCommand,
}

/// A Paxos value: transactions applied in order; the OSDMap changes of one
/// batch form one epoch.
#[derive(Clone, Debug, Default, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct Batch {
    /// The transactions.
    pub txns: Vec<Txn>,
}

impl Batch {
    /// Encodes the batch as a Paxos value.
    pub fn encode(&self) -> Result<Vec<u8>, MonError> {
        Ok(shoal_net::codec::encode(self)?.to_vec())
    }

    /// Decodes and validates a Paxos value.
    pub fn decode(bytes: &[u8]) -> Result<Batch, MonError> {
        Ok(shoal_net::codec::decode(bytes)?)
    }
}
