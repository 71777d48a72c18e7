//! A whole test cluster: monitors and OSDs as child processes on
//! 127.0.0.x, each OSD on a host of its own in the CRUSH map.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use shoal_client::{ClientOptions, Cluster};
use shoal_net::{Frame, PeerAddr};
use shoal_proto::MonCommand;
use shoal_proto::mon::CommandOutput;
use shoal_proto::msg;
use shoal_proto::peer::FaultCommand;
use shoal_proto::rep::PeerAck;
use shoal_proto::report::StatusReport;

use crate::{
    MonCluster, MonClusterOptions, bin_path, child_running, kill_child, print_log_tail,
    spawn_logged, wait_for,
};

/// Settings of a [`TestCluster`].
#[derive(Clone, Debug)]
pub struct TestClusterOptions {
    /// Monitors.
    pub mons: usize,
    /// OSDs (osd.i on host `h{i}`, address 127.0.0.{101 + i}).
    pub osds: usize,
    /// Bytes of each OSD's store (allocated on disk: keep it small).
    pub osd_store_bytes: u64,
    /// OSD heartbeat interval (ms); the grace is five times it.
    pub heartbeat_interval_ms: u64,
    /// Client: give up on an operation after this long (ms).
    pub op_timeout_ms: u64,
    /// `[global] wire_mode` of every daemon and client.
    pub wire_mode: &'static str,
    /// More `[osd]` settings, one `key = value` per line.
    pub osd_extra: String,
    /// `[mon] down_out_interval_ms`: a down OSD is marked out after this.
    pub down_out_interval_ms: u64,
    /// OSDs per CRUSH host: osd.i is on host `h{i / osds_per_host}`.
    pub osds_per_host: usize,
    /// `[mon] min_down_reporters`: reports from this many hosts mark an
    /// OSD down (1 by default, so a kill is noticed quickly).
    pub min_down_reporters: usize,
}

impl Default for TestClusterOptions {
    fn default() -> Self {
        TestClusterOptions {
            mons: 1,
            osds: 3,
            osd_store_bytes: 512 << 20,
            heartbeat_interval_ms: 200,
            op_timeout_ms: 60_000,
            wire_mode: "secure",
            osd_extra: String::new(),
            down_out_interval_ms: 600_000,
            osds_per_host: 1,
            min_down_reporters: 1,
        }
    }
}

/// Monitors and OSDs of one test.
pub struct TestCluster {
    /// The monitors (and the directory, configuration and keys).
    pub mons: MonCluster,
    osds: Vec<Option<Child>>,
    bin: PathBuf,
    osds_per_host: usize,
    /// CRUSH locations of OSDs added with [`TestCluster::add_osd`].
    locations: std::collections::HashMap<usize, String>,
}

impl TestCluster {
    /// Starts the monitors, creates every OSD (`--mkfs`) and starts them.
    /// Returns once every OSD is up in the map.
    pub async fn start(opts: &TestClusterOptions) -> TestCluster {
        let hb = opts.heartbeat_interval_ms;
        let extra = format!(
            "op_timeout_ms = {}\nosd_timeout_ms = 5000\n\n\
             [osd]\ndata = \"osd.{{id}}\"\nstore_bytes = {}\nbeacon_interval_ms = 1000\n\
             heartbeat_interval_ms = {hb}\nheartbeat_grace_ms = {}\npeer_timeout_ms = 5000\n\
             fault_injection = true\ncaps_refresh_ms = 1000\n{}\n",
            opts.op_timeout_ms,
            opts.osd_store_bytes,
            hb * 5,
            opts.osd_extra,
        );

        let mons = MonCluster::start(&MonClusterOptions {
            mons: opts.mons,
            failure_domain: "host".into(),
            extra_conf: extra,
            wire_mode: opts.wire_mode,
            down_out_interval_ms: opts.down_out_interval_ms,
            min_down_reporters: opts.min_down_reporters,
            ..MonClusterOptions::default()
        });
        let mut c = TestCluster {
            mons,
            osds: (0..opts.osds).map(|_| None).collect(),
            bin: bin_path("shoal-osd"),
            osds_per_host: opts.osds_per_host.max(1),
            locations: Default::default(),
        };
        for i in 0..opts.osds {
            c.mkfs_osd(i);
            c.start_osd(i);
        }
        let admin = c.mons.admin();
        let n = opts.osds;
        wait_for(Duration::from_secs(60), "every OSD up", || async {
            let map = admin.osdmap().await.ok()?;
            (0..n as i32).all(|i| map.is_up(i)).then_some(())
        })
        .await;
        c
    }

    fn osd_args(&self, i: usize) -> Vec<String> {
        let location = self
            .locations
            .get(&i)
            .cloned()
            .unwrap_or_else(|| format!("host=h{}", i / self.osds_per_host));
        let addr = format!("127.0.0.{}:0", 101 + i);
        shoal_local::osd_args(i, &location, Some(&addr))
    }

    fn mkfs_osd(&self, i: usize) {
        if let Err(e) = shoal_local::mkfs(&self.bin, &self.osd_args(i), &self.mons.conf_path) {
            panic!("mkfs of osd.{i} failed: {e}");
        }
    }

    /// The log file of osd `i`.
    pub fn osd_log_path(&self, i: usize) -> PathBuf {
        self.mons.path().join(format!("osd.{i}.log"))
    }

    /// Starts osd `i` (appending to its log).
    pub fn start_osd(&mut self, i: usize) {
        assert!(self.osds[i].is_none(), "osd.{i} is already running");
        let args = self.osd_args(i);
        let log = self.osd_log_path(i);
        let child = spawn_logged(&self.bin, &args, &self.mons.conf_path, &log);
        self.osds[i] = Some(child);
    }

    /// Runs `shoal-osd --id i --conf ... ARGS` to completion (the offline
    /// inspection flags): its stdout when it succeeds, its stderr when not.
    pub fn osd_command(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .args(["--id", &i.to_string(), "--conf"])
            .arg(&self.mons.conf_path)
            .args(args)
            .output()
            .expect("run shoal-osd");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// SIGKILLs osd `i` and reaps it.
    pub fn kill_osd(&mut self, i: usize) {
        kill_child(&mut self.osds[i]);
    }

    /// Whether osd `i` runs (as far as this harness knows).
    pub fn osd_running(&mut self, i: usize) -> bool {
        child_running(&mut self.osds[i])
    }

    /// A client of the cluster as `client.admin`.
    pub async fn client(&self) -> Cluster {
        Cluster::connect(&self.mons.conf)
            .await
            .expect("connect to the cluster")
    }

    /// Creates a replicated pool and waits until `client` has it.
    pub async fn create_pool(
        &self,
        client: &Cluster,
        name: &str,
        pg_num: u32,
        size: u32,
        min_size: u32,
    ) {
        client
            .create_pool(name, pg_num, size, min_size)
            .await
            .expect("create the pool");
    }

    /// Waits until the monitors have osd `i` `up` (true) or down (false).
    pub async fn wait_osd_up(&self, client: &Cluster, i: i32, up: bool, timeout: Duration) {
        let what = format!("osd.{i} {}", if up { "up" } else { "down" });
        wait_for(timeout, &what, || async {
            (client.osdmap().is_up(i) == up).then_some(())
        })
        .await
    }

    /// A client of the cluster as a new identity `name` with `caps`
    /// (`auth add` through the monitors).
    pub async fn client_as(&self, admin: &Cluster, name: &str, caps: &str) -> Cluster {
        let monc = self
            .mons
            .new_identity_client(admin.monc(), name, caps)
            .await;
        Cluster::with_monc(monc, ClientOptions::from_conf(&self.mons.conf))
            .await
            .expect("connect as the new identity")
    }

    /// Sends a fault-injection command to osd `i` (the OSDs of a test
    /// cluster accept them from `client.admin`).
    pub async fn osd_fault(&self, client: &Cluster, i: i32, command: FaultCommand) {
        let map = client.osdmap();
        let addr = map
            .osd(i)
            .and_then(|o| o.addr)
            .unwrap_or_else(|| panic!("osd.{i} has no address in the map"));
        let frame = Frame::encode(msg::FAULT, &command).expect("encode a fault command");
        let peer = PeerAddr::named(format!("osd.{i}"), addr);
        let resp = client
            .monc()
            .endpoint()
            .request(&peer, &frame, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("fault command to osd.{i}: {e}"));
        let ack: PeerAck = resp.decode_body().expect("fault command answer");
        if let Some(e) = ack.error {
            panic!("osd.{i} refused the fault: {:?} {}", e.code, e.message);
        }
    }

    /// Cuts osd `i` off from every monitor and every other OSD, both ways
    /// (its datagrams to them and theirs to it are dropped: it learns no
    /// newer map); clients still reach it.
    pub async fn isolate_osd(&self, client: &Cluster, i: i32) {
        self.cut_osds(client, &[i], true).await;
    }

    /// Cuts the OSDs of `group` off from every other OSD, both ways (not
    /// from each other: a host whose link to the rest failed); the
    /// monitors and clients still reach them (their beacons go on).
    pub async fn cut_osds_from_peers(&self, client: &Cluster, group: &[i32]) {
        self.cut_osds(client, group, false).await;
    }

    async fn cut_osds(&self, client: &Cluster, group: &[i32], from_mons: bool) {
        let others: Vec<i32> = (0..self.osds.len() as i32)
            .filter(|o| !group.contains(o))
            .collect();
        for &i in group {
            let mut peers: Vec<String> = others.iter().map(|o| format!("osd.{o}")).collect();
            if from_mons {
                let mons = self.mons.conf.mons().expect("monitors of the test cluster");
                peers.extend(mons.iter().map(|m| format!("mon.{}", m.name)));
            }
            self.osd_fault(client, i, FaultCommand::Partition { peers })
                .await;
        }
        for o in others {
            let peers = group.iter().map(|i| format!("osd.{i}")).collect();
            self.osd_fault(client, o, FaultCommand::Partition { peers })
                .await;
        }
    }

    /// Object `name`'s data in pool `pool` as OSD `osd`'s own copy holds
    /// it (a balanced read sent to that OSD: a member serves its copy
    /// unless it knows it lacks it or a write to it is in flight);
    /// `Ok(None)` when that copy does not exist.
    pub async fn read_copy(
        &self,
        client: &Cluster,
        osd: i32,
        pool: i64,
        name: &str,
    ) -> Result<Option<bytes::Bytes>, String> {
        // The OSD may be a map behind or ahead of the client for a moment:
        // those answers are retried (with the newest map) until a deadline.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match self.read_copy_once(client, osd, pool, name).await {
                Err((Some(code), why)) if code.is_retryable() => {
                    if std::time::Instant::now() > deadline {
                        return Err(why);
                    }
                    let _ = client.monc().osdmap().await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err((_, why)) => return Err(why),
                Ok(copy) => return Ok(copy),
            }
        }
    }

    async fn read_copy_once(
        &self,
        client: &Cluster,
        osd: i32,
        pool: i64,
        name: &str,
    ) -> Result<Option<bytes::Bytes>, (Option<shoal_proto::osd::OsdErrorCode>, String)> {
        let map = client.osdmap();
        self.read_at(client, &map, osd, pool, name, true, Duration::from_secs(10))
            .await
    }

    /// One read of `name` sent to OSD `osd` as a client holding `map`
    /// would send it (`balance`: to any chain member, else to the head
    /// `map` names); no retry; the answer within `timeout`. `Ok(None)`:
    /// the object does not exist.
    #[allow(clippy::too_many_arguments)]
    pub async fn read_at(
        &self,
        client: &Cluster,
        map: &shoal_map::OsdMap,
        osd: i32,
        pool: i64,
        name: &str,
        balance: bool,
        timeout: Duration,
    ) -> Result<Option<bytes::Bytes>, (Option<shoal_proto::osd::OsdErrorCode>, String)> {
        use shoal_proto::osd::{
            ObjOp, OpOutput, OpResult, OsdErrorCode, OsdReply, OsdRequest, PgRef, ReqId,
        };
        let addr = map
            .osd(osd)
            .and_then(|o| o.addr)
            .ok_or((None, format!("osd.{osd} has no address")))?;
        let pg = map
            .object_to_pg(pool, name)
            .map_err(|e| (None, e.to_string()))?;
        let req = OsdRequest {
            reqid: ReqId::default(),
            epoch: map.epoch(),
            pg: PgRef {
                pool: pg.pool,
                seed: pg.seed,
            },
            object: name.to_string(),
            ops: vec![ObjOp::Read {
                offset: 0,
                len: u64::MAX,
            }],
            balance_reads: balance,
        };
        let frame = Frame::encode(msg::OSD_OP, &req).map_err(|e| (None, e.to_string()))?;
        let peer = PeerAddr::named(format!("osd.{osd}"), addr);
        let resp = client
            .monc()
            .endpoint()
            .request(&peer, &frame, timeout)
            .await
            .map_err(|e| (None, e.to_string()))?;
        let reply: OsdReply = resp.decode_body().map_err(|e| (None, e.to_string()))?;
        match reply.result {
            OpResult::Done { outputs, .. } => match outputs.first() {
                Some(OpOutput::Data(r)) => {
                    let (start, end) = (r.offset as usize, (r.offset + r.len) as usize);
                    resp.payload
                        .get(start..end)
                        .map(|_| Some(resp.payload.slice(start..end)))
                        .ok_or((None, "data outside the reply".to_string()))
                }
                other => Err((None, format!("unexpected output {other:?}"))),
            },
            OpResult::Failed {
                code: OsdErrorCode::NotFound,
                ..
            } => Ok(None),
            OpResult::Failed { code, message } => Err((Some(code), format!("{code:?}: {message}"))),
        }
    }

    /// Damages OSD `osd`'s copy of object `name` of pool `pool` on disk:
    /// SIGKILLs the OSD, flips one byte of the object's first data chunk
    /// in its store's data file, and starts it again (it is then up in
    /// the map). Its checksums must catch the damage.
    pub async fn corrupt_copy(&mut self, client: &Cluster, osd: i32, pool: i64, name: &str) {
        use std::io::{Read, Seek, SeekFrom, Write};
        let pg = client
            .osdmap()
            .object_to_pg(pool, name)
            .expect("object's PG");
        let coll = format!("pg_{}.{:x}", pg.pool, pg.seed);
        let booted = client.osdmap().osd(osd).map_or(0, |i| i.up_from);
        self.kill_osd(osd as usize);
        let conf = &self.mons.conf;
        let cfg = shoal_store::StoreConfig::new(conf.osd_data_dir(osd), conf.osd.store_bytes);
        let at = {
            let store = shoal_store::Store::open(&cfg).expect("open the stopped OSD's store");
            let extents = store.extents(&coll, name).expect("the object's extents");
            let (_, phys, len) = *extents.first().expect("the object has data");
            assert!(len > 100, "a chunk of {len} bytes");
            phys + 100
        };
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(cfg.data_path())
            .expect("the store's data file");
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(at)).expect("seek");
        f.read_exact(&mut b).expect("read");
        f.seek(SeekFrom::Start(at)).expect("seek");
        f.write_all(&[b[0] ^ 0x40]).expect("write");
        f.sync_all().expect("sync");
        drop(f);
        self.start_osd(osd as usize);
        let admin = self.mons.admin();
        wait_for(
            Duration::from_secs(60),
            "the damaged OSD up again",
            || async {
                let map = admin.osdmap().await.ok()?;
                (map.is_up(osd) && map.osd(osd)?.up_from > booted).then_some(())
            },
        )
        .await;
    }

    /// Removes every injected fault from the running OSDs.
    pub async fn heal_osds(&mut self, client: &Cluster) {
        for i in 0..self.osds.len() {
            if self.osd_running(i) {
                self.osd_fault(client, i as i32, FaultCommand::Heal).await;
            }
        }
    }

    /// Creates and starts one more OSD at CRUSH `location` (e.g.
    /// `root=staging, host=h3`); returns its id once it is up.
    pub async fn add_osd(&mut self, client: &Cluster, location: &str) -> i32 {
        let i = self.osds.len();
        self.osds.push(None);
        self.locations.insert(i, location.to_string());
        self.mkfs_osd(i);
        self.start_osd(i);
        self.wait_osd_up(client, i as i32, true, Duration::from_secs(60))
            .await;
        i as i32
    }

    /// Marks osd `i` out through the monitors.
    pub async fn mark_out(&self, client: &Cluster, i: i32) {
        if let Err(e) = client
            .monc()
            .command(MonCommand::OsdOut { ids: vec![i] })
            .await
        {
            panic!("osd out {i}: {e}");
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for i in 0..self.osds.len() {
            self.kill_osd(i);
        }
        if std::thread::panicking() {
            for i in 0..self.osds.len() {
                print_log_tail(&format!("osd.{i}"), &self.osd_log_path(i), 30);
            }
        }
    }
}

/// The monitors' `status`, when they answer.
pub async fn status(client: &Cluster) -> Option<StatusReport> {
    match client.monc().command(MonCommand::Status).await.ok()? {
        CommandOutput::Status(s) => Some(*s),
        _ => None,
    }
}

/// `pg ls`: every PG with its state, counts and sets (empty when the
/// monitors do not answer).
pub async fn pg_ls(client: &Cluster) -> Vec<shoal_proto::report::PgLsEntry> {
    match client.monc().command(MonCommand::PgLs).await {
        Ok(CommandOutput::PgLs(pgs)) => pgs,
        _ => Vec::new(),
    }
}

/// Waits until all `pgs` PGs are `active+clean` on their up sets (no
/// `pg_temp` chain left).
pub async fn wait_pgs_clean(client: &Cluster, pgs: u32, timeout: Duration, what: &str) {
    wait_for(timeout, what, || async {
        let list = pg_ls(client).await;
        let done = list.len() == pgs as usize
            && list
                .iter()
                .all(|p| p.state == "active+clean" && p.acting == p.up);
        done.then_some(())
    })
    .await;
}

/// PGs in `state` in a status report.
pub fn pgs_in(st: &StatusReport, state: &str) -> u32 {
    st.pgs_by_state
        .iter()
        .filter(|p| p.state == state)
        .map(|p| p.count)
        .sum()
}
