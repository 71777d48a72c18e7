//! Fault injection on an OSD's endpoints (tests only, `[osd]
//! fault_injection`): `client.admin` partitions it from named peers
//! (`osd.1`, `mon.a`) and heals it. Datagrams this OSD sends to a
//! partitioned peer are dropped; partition both sides for a symmetric cut.

use shoal_net::{Frame, PeerInfo};
use shoal_proto::peer::FaultCommand;

use shoal_proto::osd::OsdErrorCode;

use crate::context::Osd;
use crate::exec::OpError;

/// The identity allowed to inject faults.
const ADMIN: &str = "client.admin";

/// Applies a fault command; an error says why it was refused.
pub fn handle(osd: &Osd, peer: &PeerInfo, request: &Frame) -> Result<(), OpError> {
    let Some(inj) = &osd.fault else {
        return Err(OpError::new(
            OsdErrorCode::PermissionDenied,
            "fault injection is off ([osd] fault_injection)",
        ));
    };
    if peer.name != ADMIN {
        return Err(OpError::new(
            OsdErrorCode::PermissionDenied,
            format!("{} may not inject faults", peer.name),
        ));
    }
    let command: FaultCommand = request
        .decode_body()
        .map_err(|e| OpError::new(OsdErrorCode::Invalid, format!("bad fault command: {e}")))?;
    let me = format!("osd.{}", osd.id);
    match command {
        FaultCommand::Partition { peers } => {
            tracing::warn!(osd = osd.id, ?peers, "fault injection: partitioned");
            for p in &peers {
                inj.partition(&me, p);
            }
        }
        FaultCommand::Heal => {
            tracing::warn!(osd = osd.id, "fault injection: healed");
            inj.clear();
        }
    }
    Ok(())
}
