//! `shoal-monc`: the monitor client. Typed admin commands with failover
//! between monitors (a retried command keeps its request id, so the
//! monitors apply it at most once), and map subscriptions that bring every
//! OSDMap epoch in turn. Daemons (OSDs, gateways) and the object client
//! (`shoal-client`) all talk to the monitors through it.

#![deny(missing_docs)]

mod error;

pub use error::MonError;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shoal_conf::{MonAddr, ShoalConf};
use shoal_map::{MonMap, OsdMap, OsdMapIncremental};
use shoal_net::{Endpoint, EndpointConfig, FaultInjector, Frame, NodeIdentity, PeerAddr, WireMode};
use shoal_proto::mon::{CommandOutput, MonCommand, MonReply, MonRequest, MonResult};
use shoal_proto::msg;
use shoal_proto::peer::FaultCommand;
use shoal_proto::subscribe::{SubscribeReply, SubscribeRequest};

/// Timeouts and wire mode of a [`MonClient`].
#[derive(Clone, Copy, Debug)]
pub struct MonClientOptions {
    /// One attempt at one monitor.
    pub mon_timeout: Duration,
    /// A whole command, across monitors and retries.
    pub command_timeout: Duration,
    /// Packet protection of the client's endpoint (`[global] wire_mode`).
    pub wire_mode: WireMode,
}

impl Default for MonClientOptions {
    fn default() -> Self {
        MonClientOptions {
            mon_timeout: Duration::from_secs(3),
            command_timeout: Duration::from_secs(30),
            wire_mode: WireMode::Secure,
        }
    }
}

/// A connection to the monitors.
pub struct MonClient {
    endpoint: Endpoint,
    mons: Vec<MonAddr>,
    leader: Mutex<Option<usize>>,
    client_id: u64,
    next_tid: AtomicU64,
    /// Newest MonMap epoch seen in a subscription reply: sent back as
    /// `monmap_have`, or every subscription would be answered at once
    /// with the MonMap instead of being held until the next OSDMap.
    monmap_seen: AtomicU32,
    opts: MonClientOptions,
}

/// A random-enough number: distinct across processes, calls and time
/// (std's per-instance random hash keys, a counter and the clock).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::AtomicU64;
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

impl MonClientOptions {
    /// The options `conf` sets (`[client]` timeouts, `[global] wire_mode`).
    pub fn from_conf(conf: &ShoalConf) -> Result<MonClientOptions, MonError> {
        Ok(MonClientOptions {
            mon_timeout: Duration::from_millis(conf.client.mon_timeout_ms),
            command_timeout: Duration::from_millis(conf.client.command_timeout_ms),
            wire_mode: conf.global.wire_mode.parse().map_err(MonError::Config)?,
        })
    }
}

impl MonClient {
    /// Connects as `[client] name` with the keyring and monitors of `conf`.
    pub fn from_conf(conf: &ShoalConf) -> Result<MonClient, MonError> {
        let identity = NodeIdentity::load(&conf.keyring_dir(), &conf.client.name)?;
        let mons = conf.mons().map_err(MonError::Config)?;
        Self::new(identity, mons, MonClientOptions::from_conf(conf)?)
    }

    /// A client with `identity` talking to `mons`. Must be called within a
    /// tokio runtime.
    pub fn new(
        identity: NodeIdentity,
        mons: Vec<MonAddr>,
        opts: MonClientOptions,
    ) -> Result<MonClient, MonError> {
        Self::with_fault(identity, mons, opts, None)
    }

    /// Like [`MonClient::new`], its datagrams passing through `fault`
    /// (tests: a daemon partitioned from the monitors).
    pub fn with_fault(
        identity: NodeIdentity,
        mons: Vec<MonAddr>,
        opts: MonClientOptions,
        fault: Option<FaultInjector>,
    ) -> Result<MonClient, MonError> {
        if mons.is_empty() {
            return Err(MonError::Config("no monitors given".into()));
        }
        // Loopback monitors are dialled from loopback; others from any address.
        let ip: std::net::IpAddr = match (mons[0].addr.is_ipv6(), mons[0].addr.ip().is_loopback()) {
            (false, true) => std::net::Ipv4Addr::LOCALHOST.into(),
            (false, false) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            (true, true) => std::net::Ipv6Addr::LOCALHOST.into(),
            (true, false) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        };
        let bind = SocketAddr::new(ip, 0);
        let mut config = EndpointConfig::client(bind);
        config.wire_mode = opts.wire_mode;
        if let Some(f) = fault {
            for m in &mons {
                f.register(&format!("mon.{}", m.name), m.addr);
            }
            config = config.with_fault(f);
        }
        let endpoint = Endpoint::builder(identity, config).bind()?;
        Ok(MonClient {
            endpoint,
            mons,
            leader: Mutex::new(None),
            // Never 0, so an id is always distinguishable from a default.
            client_id: random_u64() | 1,
            next_tid: AtomicU64::new(1),
            monmap_seen: AtomicU32::new(0),
            opts,
        })
    }

    /// The QUIC endpoint this client talks through (shared with OSD traffic).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// This client instance's id (request ids are `(id, tid)`).
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The monitors this client knows.
    pub fn mons(&self) -> &[MonAddr] {
        &self.mons
    }

    fn peer(&self, i: usize) -> PeerAddr {
        PeerAddr::named(format!("mon.{}", self.mons[i].name), self.mons[i].addr)
    }

    /// The monitor at `index` for the single-monitor calls.
    fn checked_peer(&self, index: usize) -> Result<PeerAddr, MonError> {
        if index < self.mons.len() {
            Ok(self.peer(index))
        } else {
            Err(MonError::Config(format!(
                "no monitor {index}: {} configured",
                self.mons.len()
            )))
        }
    }

    fn leader_hint(&self) -> Option<usize> {
        *self.leader.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note_leader(&self, reply: &MonReply) {
        if let Some(name) = reply.leader.as_deref().and_then(|l| l.strip_prefix("mon."))
            && let Some(i) = self.mons.iter().position(|m| m.name == name)
        {
            *self.leader.lock().unwrap_or_else(|p| p.into_inner()) = Some(i);
        }
    }

    /// Runs `command`, trying the leader first and then every monitor in
    /// turn until one answers or the command timeout passes. A retried
    /// write keeps its request id, so the monitors apply it at most once.
    /// The monitors' refusals come back as [`MonError::Command`].
    pub async fn command(&self, command: MonCommand) -> Result<CommandOutput, MonError> {
        let reply = self.command_reply(command).await?;
        match reply.result {
            MonResult::Ok(out) => Ok(out),
            MonResult::Err(e) => Err(MonError::Command(e)),
        }
    }

    /// [`MonClient::command`], returning the whole reply (epoch, leader).
    pub async fn command_reply(&self, command: MonCommand) -> Result<MonReply, MonError> {
        let request = MonRequest {
            client_id: self.client_id,
            tid: self.next_tid.fetch_add(1, Ordering::Relaxed),
            command,
        };
        let frame = Frame::encode(msg::MON_COMMAND, &request)?;
        self.retry(frame, |reply: MonReply| match &reply.result {
            MonResult::Err(e) if e.code.is_retryable() => Err(e.to_string()),
            _ => Ok(reply),
        })
        .await
    }

    /// Sends `frame` to the leader or each monitor in turn until `accept`
    /// takes an answer.
    async fn retry<T>(
        &self,
        frame: Frame,
        accept: impl Fn(MonReply) -> Result<T, String>,
    ) -> Result<T, MonError> {
        let deadline = deadline_after(self.opts.command_timeout);
        let n = self.mons.len();
        let mut start = self.leader_hint().unwrap_or(0);
        let mut last = String::from("no attempt");
        let backoff = shoal_net::Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_secs(1),
        };
        let mut rounds = 0;
        loop {
            for k in 0..n {
                let i = (start + k) % n;
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(MonError::Unreachable {
                        timeout: self.opts.command_timeout,
                        last,
                    });
                }
                let attempt = self
                    .endpoint
                    .request(&self.peer(i), &frame, self.opts.mon_timeout.min(left))
                    .await;
                match attempt.and_then(|f| f.decode_body::<MonReply>()) {
                    Ok(reply) => {
                        self.note_leader(&reply);
                        match accept(reply) {
                            Ok(v) => return Ok(v),
                            Err(e) => last = format!("mon.{}: {e}", self.mons[i].name),
                        }
                    }
                    Err(shoal_net::NetError::HandshakeRefused(e)) => {
                        return Err(MonError::Net(shoal_net::NetError::HandshakeRefused(e)));
                    }
                    Err(e) => last = format!("mon.{}: {e}", self.mons[i].name),
                }
                tracing::debug!(%last, "monitor attempt failed");
            }
            start = self.leader_hint().unwrap_or(start + 1);
            let left = deadline.saturating_duration_since(Instant::now());
            rounds += 1;
            tokio::time::sleep(backoff.delay(rounds).min(left)).await;
        }
    }

    /// Asks for maps newer than `osdmap_have`/`monmap_have`; a monitor
    /// holds the request up to `wait` when there are none.
    pub async fn subscribe(
        &self,
        osdmap_have: u32,
        monmap_have: u32,
        wait: Duration,
    ) -> Result<SubscribeReply, MonError> {
        // A monitor holds a subscription at most a minute.
        let wait = wait.min(Duration::from_secs(60));
        let req = SubscribeRequest {
            osdmap_have,
            monmap_have,
            wait_ms: wait.as_millis() as u32,
        };
        let frame = Frame::encode(msg::SUBSCRIBE, &req)?;
        let deadline = deadline_after(self.opts.command_timeout.saturating_add(wait));
        let n = self.mons.len();
        let mut i = self.leader_hint().unwrap_or(0);
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            let timeout = self.opts.mon_timeout.saturating_add(wait);
            match self.endpoint.request(&self.peer(i), &frame, timeout).await {
                Ok(resp) if resp.msg_type == msg::SUBSCRIBE_REPLY => {
                    return Ok(resp.decode_body::<SubscribeReply>()?);
                }
                Ok(resp) => match resp.decode_body::<MonReply>() {
                    Ok(MonReply {
                        result: MonResult::Err(e),
                        ..
                    }) if !e.code.is_retryable() => return Err(MonError::Command(e)),
                    Ok(r) => last = format!("mon.{}: {:?}", self.mons[i].name, r.result),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = format!("mon.{}: {e}", self.mons[i].name),
            }
            i = (i + 1) % n;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(MonError::Unreachable {
            timeout: self.opts.command_timeout,
            last,
        })
    }

    /// The newest OSDMap after `current`, built from incrementals (or sent
    /// whole when `current` is empty, too old, or an incremental does not
    /// apply to it). Waits up to `wait` for a newer epoch; `Ok(None)` when
    /// there is none.
    pub async fn newer_osdmap(
        &self,
        current: &OsdMap,
        wait: Duration,
    ) -> Result<Option<OsdMap>, MonError> {
        Ok(self.newer_osdmaps(current, wait).await?.pop())
    }

    /// Like [`MonClient::newer_osdmap`], but every map on the way, oldest
    /// first (one per incremental; a map sent whole starts the list): for
    /// daemons that must see each epoch, such as OSDs telling PG intervals.
    pub async fn newer_osdmaps(
        &self,
        current: &OsdMap,
        wait: Duration,
    ) -> Result<Vec<OsdMap>, MonError> {
        let deadline = tokio::time::Instant::now() + wait;
        let reply = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let reply = self
                .subscribe(current.epoch(), self.monmap_seen(), left)
                .await?;
            let monmap_only = reply.monmap.is_some()
                && reply.full_osdmap.is_none()
                && reply.incrementals.is_empty();
            let had = self.monmap_seen();
            self.note_monmap(reply.monmap.as_deref());
            // A reply that only brought a newer MonMap: keep waiting for
            // the OSDMap with what is left of the wait (never in a loop:
            // only while the MonMap epoch moves forward).
            let learned = self.monmap_seen() > had;
            if !(monmap_only && learned) || tokio::time::Instant::now() >= deadline {
                break reply;
            }
        };
        let mut maps = Vec::new();
        let mut map = match reply.full_osdmap {
            Some(full) => {
                let m = OsdMap::decode(&full)?;
                maps.push(m.clone());
                m
            }
            None => current.clone(),
        };
        for inc in &reply.incrementals {
            let applied = OsdMapIncremental::decode(inc).and_then(|i| map.apply(&i));
            if applied.is_ok() {
                maps.push(map.clone());
            }
            if let Err(e) = applied {
                tracing::warn!(error = %e, epoch = map.epoch(), "incremental does not apply; fetching the whole map");
                let full = self
                    .subscribe(0, self.monmap_seen(), Duration::ZERO)
                    .await?;
                self.note_monmap(full.monmap.as_deref());
                let Some(bytes) = full.full_osdmap else {
                    return Err(MonError::Protocol(
                        "a subscription from epoch 0 came without a full map".into(),
                    ));
                };
                map = OsdMap::decode(&bytes)?;
                maps.push(map.clone());
                break;
            }
        }
        maps.retain(|m| m.epoch() > current.epoch());
        maps.dedup_by_key(|m| m.epoch());
        Ok(maps)
    }

    /// The newest MonMap epoch this client has seen in a subscription.
    pub fn monmap_seen(&self) -> u32 {
        self.monmap_seen.load(Ordering::Relaxed)
    }

    fn note_monmap(&self, bytes: Option<&[u8]>) {
        match bytes.map(MonMap::decode) {
            Some(Ok(m)) => {
                self.monmap_seen.fetch_max(m.epoch, Ordering::Relaxed);
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "undecodable MonMap in a subscription reply")
            }
            None => {}
        }
    }

    /// The current OSDMap.
    pub async fn osdmap(&self) -> Result<OsdMap, MonError> {
        match self.command(MonCommand::GetOsdMap { epoch: 0 }).await? {
            CommandOutput::OsdMap { map, .. } => Ok(OsdMap::decode(&map)?),
            other => Err(MonError::Protocol(format!("{other:?}"))),
        }
    }

    /// The MonMap.
    pub async fn monmap(&self) -> Result<MonMap, MonError> {
        match self.command(MonCommand::GetMonMap).await? {
            CommandOutput::MonMap { map } => Ok(MonMap::decode(&map)?),
            other => Err(MonError::Protocol(format!("{other:?}"))),
        }
    }

    /// Sends a fault-injection command to monitor `index` (test clusters
    /// whose monitors run with `fault_injection = true`).
    pub async fn inject_fault(&self, index: usize, command: FaultCommand) -> Result<(), MonError> {
        let frame = Frame::encode(msg::FAULT, &command)?;
        let resp = self
            .endpoint
            .request(&self.checked_peer(index)?, &frame, self.opts.mon_timeout)
            .await?;
        match resp.decode_body::<MonReply>()?.result {
            MonResult::Ok(_) => Ok(()),
            MonResult::Err(e) => Err(MonError::Command(e)),
        }
    }

    /// Sends one request to monitor `index` only, no failover (tests and
    /// diagnostics).
    pub async fn command_at(
        &self,
        index: usize,
        command: MonCommand,
    ) -> Result<MonReply, MonError> {
        let request = MonRequest {
            client_id: self.client_id,
            tid: self.next_tid.fetch_add(1, Ordering::Relaxed),
            command,
        };
        let frame = Frame::encode(msg::MON_COMMAND, &request)?;
        let resp = self
            .endpoint
            .request(&self.checked_peer(index)?, &frame, self.opts.mon_timeout)
            .await?;
        Ok(resp.decode_body::<MonReply>()?)
    }
}

/// `Instant::now() + d`, or a year from now when `d` would overflow the
/// clock (options are the caller's to set).
fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}
