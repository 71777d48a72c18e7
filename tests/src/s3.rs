//! An S3 gateway (`shoal-s3`) as a child process of a [`TestCluster`],
//! with its own configuration file beside the cluster's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use shoal_conf::ShoalConf;
use shoal_s3::model::users::Users;

use crate::{TestCluster, bin_path, child_running, kill_child, print_log_tail, spawn_logged};

/// A running (or killed) gateway.
pub struct S3Gateway {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its configuration file.
    pub conf_path: PathBuf,
    /// Its configuration.
    pub conf: ShoalConf,
    log: PathBuf,
}

/// Keys of a test user.
#[derive(Clone, Debug)]
pub struct S3User {
    /// User id.
    pub uid: String,
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

impl S3Gateway {
    /// Starts a gateway on `cluster` whose `[s3]` section holds
    /// `s3_extra` (one `key = value` a line) besides its listen address;
    /// returns once it accepts connections.
    pub async fn start(cluster: &TestCluster, s3_extra: &str) -> S3Gateway {
        let dir = cluster.mons.path();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free TCP port")
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let base = std::fs::read_to_string(&cluster.mons.conf_path).expect("read shoal.toml");
        let text = format!("{base}\n[s3]\nlisten = \"{addr}\"\npool_pg_num = 8\n{s3_extra}\n");
        let conf_path = dir.join("s3.toml");
        std::fs::write(&conf_path, text).expect("write s3.toml");
        let conf = ShoalConf::load(&conf_path).expect("load s3.toml");
        let mut gw = S3Gateway {
            child: None,
            addr,
            conf_path,
            conf,
            log: dir.join("s3.log"),
        };
        gw.restart().await;
        gw
    }

    /// Starts the gateway process again (after [`S3Gateway::kill`]) on the
    /// same address, and waits until it accepts connections.
    pub async fn restart(&mut self) {
        assert!(!child_running(&mut self.child), "the gateway runs already");
        let child = spawn_logged(&bin_path("shoal-s3"), &[], &self.conf_path, &self.log);
        self.child = Some(child);
        let addr = self.addr;
        crate::wait_for(
            Duration::from_secs(60),
            "the S3 gateway to listen",
            || async { tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()) },
        )
        .await;
    }

    /// SIGKILLs the gateway.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// `http://ADDR`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates user `uid` in the cluster (as `shoal s3 user create` does).
    pub async fn create_user(&self, cluster: &TestCluster, uid: &str) -> S3User {
        let client = cluster.client().await;
        let pools = shoal_s3::open_pools(&client, &self.conf.s3)
            .await
            .expect("the gateway's pools");
        let key = Users::new(pools.meta)
            .create(uid, uid)
            .await
            .expect("create an S3 user");
        S3User {
            uid: uid.to_string(),
            access_key: key.access_key,
            secret_key: key.secret_key,
        }
    }
}

impl Drop for S3Gateway {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            print_log_tail("s3", &self.log, 40);
        }
    }
}
