//! Starting a monitor: open its store, rebuild the state machine, bind the
//! endpoint, wire the network handlers to the driver, run.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use shoal_conf::ShoalConf;
use shoal_net::{
    ClusterCa, Endpoint, EndpointConfig, FaultInjector, Frame, InboundStream, NodeIdentity,
    PeerInfo,
};
use shoal_paxos::{Config, Node};
use shoal_proto::mon::{ErrorCode, MonReply, MonRequest};
use shoal_proto::msg;
use shoal_proto::peer::{FaultCommand, Forward, PaxosEnvelope};
use shoal_proto::subscribe::SubscribeRequest;
use tokio::sync::{mpsc, oneshot};

use crate::driver::{Driver, DriverParts, Event, MonSettings, PAXOS_TOPIC, node_id};
use crate::error::MonError;
use crate::failure::FailurePolicy;
use crate::state::MonState;
use crate::store::MonStore;
use crate::view::MapView;
use crate::writer;

/// Longest a command waits for the driver's answer.
const COMMAND_WAIT: Duration = Duration::from_secs(60);

/// Runs monitor `name` of the cluster described by `conf` until `shutdown`
/// resolves.
pub async fn run(
    conf: &ShoalConf,
    name: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), MonError> {
    let data = conf.mon_data_dir(name);
    let store = MonStore::open(&data)?;
    let stored_name = store.mon_name()?;
    if stored_name != name {
        return Err(MonError::Config(format!(
            "{} belongs to mon.{stored_name}, not mon.{name}",
            data.display()
        )));
    }
    let keyring = conf.keyring_dir();
    let identity = NodeIdentity::load(&keyring, &format!("mon.{name}"))?;
    let ca = if keyring.join("ca.key").exists() {
        Some(ClusterCa::load(&keyring)?)
    } else {
        None
    };
    let persisted = store.load()?;
    let state = match &persisted.snapshot {
        Some(s) => {
            let mut st = MonState::decode(&s.data)?;
            st.applied = s.slot;
            st
        }
        None => store.initial_state()?,
    };
    let monmap = state.monmap.clone();
    let rank = monmap
        .rank(name)
        .ok_or_else(|| MonError::Config(format!("mon.{name} is not in the MonMap")))?;
    let addr = monmap.mons[rank].addr;
    let m = &conf.mon;
    let mut cfg = Config::new(node_id(rank), (0..monmap.mons.len()).map(node_id).collect());
    cfg.election_timeout = m.election_timeout_ms;
    cfg.heartbeat_interval = m.heartbeat_interval_ms;
    cfg.lease_duration = m.lease_ms;
    cfg.window = m.paxos_window;
    cfg.snapshot_interval = m.snapshot_interval;
    cfg.retain_entries = m.snapshot_interval.clamp(16, 500);
    cfg.applied = state.applied;
    cfg.seed = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        std::time::SystemTime::now().hash(&mut h);
        h.finish()
    };
    cfg.validate()
        .map_err(|e| MonError::Config(format!("paxos settings: {e}")))?;
    let node = Node::new(cfg, persisted)?;
    tracing::info!(
        mon = name,
        %addr,
        applied = state.applied,
        epoch = state.osdmap.epoch(),
        "monitor starting"
    );

    let view = MapView::new(&state);
    let (events_tx, events_rx) = mpsc::channel::<Event>(65_536);
    let fault = m.fault_injection.then(FaultInjector::new);
    let mut ep_conf = EndpointConfig::new(addr);
    ep_conf.wire_mode = conf.global.wire_mode.parse().map_err(MonError::Config)?;
    if let Some(f) = &fault {
        for mon in &monmap.mons {
            f.register(&format!("mon.{}", mon.name), mon.addr);
        }
        ep_conf = ep_conf.with_fault(f.clone());
    }
    let req_handler = {
        let tx = events_tx.clone();
        let view = view.clone();
        move |peer: PeerInfo, frame: Frame| {
            let tx = tx.clone();
            let view = view.clone();
            async move { handle_request(tx, view, peer, frame).await }
        }
    };
    let stream_handler = {
        let tx = events_tx.clone();
        let view = view.clone();
        let me = node_id(rank);
        let epoch = monmap.epoch;
        move |stream: InboundStream| {
            let tx = tx.clone();
            let view = view.clone();
            async move { handle_paxos_stream(tx, view, stream, me, epoch).await }
        }
    };
    let endpoint = Endpoint::builder(identity, ep_conf)
        .request_handler(req_handler)
        .stream_handler(stream_handler)
        .bind()?;
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let writer = writer::spawn(store, done_tx)?;
    let settings = MonSettings {
        election_timeout_ms: m.election_timeout_ms,
        max_batch: m.max_batch,
        window: m.paxos_window,
        failure: FailurePolicy {
            beacon_grace_ms: m.osd_beacon_grace_ms,
            min_reporters: m.min_down_reporters,
            down_out_interval_ms: m.down_out_interval_ms,
        },
        forward_timeout: Duration::from_millis(conf.client.mon_timeout_ms.max(1000)),
        full_ratios: crate::pgstats::FullRatios {
            nearfull: conf.osd.nearfull_ratio,
            full: conf.osd.full_ratio,
        },
        max_misplaced_ratio: m.target_max_misplaced_ratio,
    };
    let driver = Driver::new(DriverParts {
        name: name.to_string(),
        node,
        state,
        view,
        endpoint: endpoint.clone(),
        ca,
        fault,
        writer,
        settings,
    })?;
    drop(events_tx);
    let result = driver.run(events_rx, done_rx, shutdown).await;
    endpoint.close();
    result
}

fn error_frame(code: ErrorCode, message: String, epoch: u32) -> Frame {
    let reply = crate::driver::err_reply(code, message, epoch, None);
    Frame::encode(msg::MON_REPLY, &reply).unwrap_or_else(|_| Frame::new(msg::MON_REPLY, Vec::new()))
}

async fn ask_driver(
    tx: &mpsc::Sender<Event>,
    make: impl FnOnce(oneshot::Sender<MonReply>) -> Event,
    epoch: u32,
) -> Frame {
    let (reply_tx, reply_rx) = oneshot::channel();
    if tx.send(make(reply_tx)).await.is_err() {
        return error_frame(
            ErrorCode::TryAgain,
            "the monitor is shutting down".into(),
            epoch,
        );
    }
    match tokio::time::timeout(COMMAND_WAIT, reply_rx).await {
        Ok(Ok(reply)) => Frame::encode(msg::MON_REPLY, &reply)
            .unwrap_or_else(|e| error_frame(ErrorCode::Internal, e.to_string(), epoch)),
        Ok(Err(_)) => error_frame(
            ErrorCode::TryAgain,
            "the command was dropped; retry".into(),
            epoch,
        ),
        Err(_) => error_frame(
            ErrorCode::TryAgain,
            "the command did not commit in time; retry".into(),
            epoch,
        ),
    }
}

async fn handle_request(
    tx: mpsc::Sender<Event>,
    view: MapView,
    peer: PeerInfo,
    frame: Frame,
) -> Frame {
    let epoch = view.epoch();
    let malformed = |e: shoal_net::NetError| {
        tracing::warn!(peer = %peer.name, msg_type = frame.msg_type, error = %e, "malformed request");
        error_frame(ErrorCode::Invalid, format!("malformed request: {e}"), epoch)
    };
    match frame.msg_type {
        msg::MON_COMMAND => {
            let request: MonRequest = match frame.decode_body() {
                Ok(r) => r,
                Err(e) => return malformed(e),
            };
            let origin = peer.name.clone();
            ask_driver(
                &tx,
                |reply| Event::Command {
                    origin,
                    request,
                    forwarded: false,
                    reply,
                },
                epoch,
            )
            .await
        }
        msg::FORWARD => {
            if view.mon_rank(&peer.name).is_none() {
                return error_frame(
                    ErrorCode::PermissionDenied,
                    format!("{} is not a monitor", peer.name),
                    epoch,
                );
            }
            let fwd: Forward = match frame.decode_body() {
                Ok(f) => f,
                Err(e) => return malformed(e),
            };
            ask_driver(
                &tx,
                |reply| Event::Command {
                    origin: fwd.origin,
                    request: fwd.request,
                    forwarded: true,
                    reply,
                },
                epoch,
            )
            .await
        }
        msg::SUBSCRIBE => {
            if !view.caps_of(&peer.name).can_read_mon() {
                return error_frame(
                    ErrorCode::PermissionDenied,
                    format!("{} may not read maps", peer.name),
                    epoch,
                );
            }
            let req: SubscribeRequest = match frame.decode_body() {
                Ok(r) => r,
                Err(e) => return malformed(e),
            };
            match view.subscribe(&req).await {
                Some(reply) => Frame::encode(msg::SUBSCRIBE_REPLY, &reply)
                    .unwrap_or_else(|e| error_frame(ErrorCode::Internal, e.to_string(), epoch)),
                None => error_frame(
                    ErrorCode::NoQuorum,
                    "this monitor is not in quorum".into(),
                    epoch,
                ),
            }
        }
        msg::FAULT => {
            if !view.caps_of(&peer.name).can_write_mon() {
                return error_frame(
                    ErrorCode::PermissionDenied,
                    format!("{} may not inject faults", peer.name),
                    epoch,
                );
            }
            let command: FaultCommand = match frame.decode_body() {
                Ok(c) => c,
                Err(e) => return malformed(e),
            };
            ask_driver(&tx, |reply| Event::Fault { command, reply }, epoch).await
        }
        other => error_frame(
            ErrorCode::Invalid,
            format!("unknown message type {other}"),
            epoch,
        ),
    }
}

async fn handle_paxos_stream(
    tx: mpsc::Sender<Event>,
    view: MapView,
    mut stream: InboundStream,
    me: u64,
    monmap_epoch: u32,
) {
    let Some(rank) = view.mon_rank(&stream.peer.name) else {
        tracing::warn!(peer = %stream.peer.name, topic = %stream.topic, "one-way stream from a non-monitor refused");
        stream.stop();
        return;
    };
    if stream.topic != PAXOS_TOPIC {
        tracing::warn!(peer = %stream.peer.name, topic = %stream.topic, "unknown stream topic");
        stream.stop();
        return;
    }
    loop {
        let frame = match stream.next_frame().await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(peer = %stream.peer.name, error = %e, "paxos stream ended");
                return;
            }
        };
        let env: PaxosEnvelope = match frame.decode_body() {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(peer = %stream.peer.name, error = %e, "malformed paxos message dropped");
                continue;
            }
        };
        if env.monmap_epoch != monmap_epoch
            || env.message.from != node_id(rank)
            || env.message.to != me
        {
            tracing::debug!(peer = %stream.peer.name, "paxos message with wrong epoch or ids dropped");
            continue;
        }
        if tx.try_send(Event::Paxos(env.message)).is_err() {
            tracing::debug!("driver queue full; paxos message dropped");
        }
    }
}
