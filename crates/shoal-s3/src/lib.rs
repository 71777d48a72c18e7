//! `shoal-s3`: an S3-compatible gateway on a Shoal cluster.
//!
//! The HTTP side (routing, typed inputs, SigV2/SigV4, presigned URLs,
//! aws-chunked bodies, XML) is the `s3s` crate; this crate implements the
//! storage model ([`model`], free of HTTP types) and a thin [`s3s::S3`]
//! implementation ([`service`]) that delegates each operation family to its
//! module (`bucket`, `put`, `get`, `list`, `delete`, `copy`, `multipart`,
//! `acl`, `cors`). [`error`] is the one
//! place model errors become S3 errors; [`server`] accepts connections
//! with limits against slow and hostile clients, and `precheck` answers
//! what S3 refuses before `s3s` would look (SigV2 clocks, presigned URL
//! lifetimes, bodies without a length).
//!
//! Nothing is kept on the gateway's disk or only in its memory: any number
//! of gateways can serve one cluster.

mod acl;
mod attributes;
pub mod auth;
mod body;
mod bucket;
mod copy;
mod cors;
mod dates;
mod delete;
pub mod error;
mod get;
mod list;
pub mod model;
mod multipart;
mod precheck;
mod put;
pub mod server;
mod service;
mod unframed;
mod versioning;

use std::sync::Arc;

use shoal_client::{ClientError, Cluster};
use shoal_conf::{S3Section, ShoalConf};

use crate::auth::KeyCache;
use crate::error::ModelError;
use crate::model::Pools;
use crate::model::buckets::Buckets;
use crate::model::users::Users;

/// Everything an S3 request needs: the cluster's pools, the model's
/// handles and the gateway's settings. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    pools: Pools,
    users: Users,
    buckets: Buckets,
    keys: KeyCache,
    conf: S3Section,
}

/// Opens (creating them if missing) the gateway's metadata and data pools.
pub async fn open_pools(cluster: &Cluster, s3: &S3Section) -> Result<Pools, ModelError> {
    for name in [&s3.meta_pool, &s3.data_pool] {
        ensure_pool(cluster, name, s3.pool_pg_num).await?;
    }
    Ok(Pools {
        meta: cluster.ioctx(&s3.meta_pool).await?,
        data: cluster.ioctx(&s3.data_pool).await?,
    })
}

/// Creates pool `name` unless it exists (size: 3, or fewer OSDs).
async fn ensure_pool(cluster: &Cluster, name: &str, pg_num: u32) -> Result<(), ModelError> {
    let map = cluster.osdmap();
    if map.pool_by_name(name).is_some() {
        return Ok(());
    }
    let size = map.osd_ids().count().clamp(1, 3) as u32;
    match cluster.create_pool(name, pg_num, size, 0).await {
        Ok(()) => {
            tracing::info!(pool = name, pg_num, size, "created pool");
            Ok(())
        }
        // Another gateway or admin created it meanwhile.
        Err(ClientError::Command(_)) if cluster.osdmap().pool_by_name(name).is_some() => Ok(()),
        Err(ClientError::Command(e)) => {
            // The map may not have caught up with a concurrent create yet.
            match cluster.ioctx(name).await {
                Ok(_) => Ok(()),
                Err(_) => Err(ModelError::InvalidArgument(format!(
                    "cannot create pool {name:?}: {e}"
                ))),
            }
        }
        Err(e) => Err(e.into()),
    }
}

impl Gateway {
    /// Connects to the cluster of `conf` as `[s3] client` and opens the pools.
    pub async fn connect(conf: &ShoalConf) -> Result<Gateway, ModelError> {
        let mut conf = conf.clone();
        conf.client.name = conf.s3.client.clone();
        let cluster = Cluster::connect(&conf).await?;
        let pools = open_pools(&cluster, &conf.s3).await?;
        Ok(Gateway::new(pools, conf.s3))
    }

    /// A gateway on `pools` with settings `conf`.
    pub fn new(pools: Pools, conf: S3Section) -> Gateway {
        let users = Users::new(pools.meta.clone());
        Gateway {
            inner: Arc::new(Inner {
                buckets: Buckets::new(pools.clone()),
                keys: KeyCache::new(users.clone()),
                users,
                pools,
                conf,
            }),
        }
    }

    /// The pools.
    pub fn pools(&self) -> &Pools {
        &self.inner.pools
    }

    /// The users.
    pub fn users(&self) -> &Users {
        &self.inner.users
    }

    /// The buckets registry.
    pub fn buckets(&self) -> &Buckets {
        &self.inner.buckets
    }

    /// The access keys, cached briefly.
    pub fn keys(&self) -> &KeyCache {
        &self.inner.keys
    }

    /// The settings.
    pub fn conf(&self) -> &S3Section {
        &self.inner.conf
    }
}
