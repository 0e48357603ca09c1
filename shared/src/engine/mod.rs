//! The business rules, the same whichever dialect calls and whichever backend stores.
//!
//! ```text
//!  PutEvents ─ validate → dedup → append to the channel log + outbox + traced events
//!      │                             (one transaction per chunk)
//!      │                                 │
//!      │ match subscriptions             │ sweeper: outbox entries older than the grace period
//!      ▼                                 ▼
//!  delivery queue (one message per event × target)
//!      │ deliver_one: transform → POST / forward to a channel / send to a queue → trace
//!      ├─ failure, attempts left → the same message comes back after the backoff
//!      └─ attempts spent → dead-letter queue, trace
//! ```

pub mod auth;
pub mod catalog;
pub mod changelog;
pub mod channels;
pub mod check;
pub mod cmdb;
pub mod delivery;
pub mod filter;
pub mod ingest;
pub mod list;
pub mod pull;
pub mod routing;
pub mod secrets;
mod send;
pub mod signing;
pub mod subscription_parts;
pub mod subscriptions;
pub mod targets;
pub mod trace;
pub mod traces;
pub mod transform;

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::backend::aws::Aws;
use crate::backend::embedded::Embedded;
use crate::config::{BackendConfig, Config, all_queue_specs};
use crate::ports::{Clock, Outbound, Queue, Store, SystemClock};

/// The ports an engine runs on.
#[derive(Clone)]
pub struct Ports {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The queues.
    pub queue: Arc<dyn Queue>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Outbound HTTP.
    pub outbound: Arc<dyn Outbound>,
}

struct Inner {
    ports: Ports,
    config: Config,
    routes: routing::RouteCache,
    tokens: auth::TokenCache,
    secrets: signing::SecretCache,
    deliveries: delivery::SubscriptionCache,
    route_names: trace::RouteNameCache,
    in_flight: send::InFlight,
    transforms: transform::TransformCache,
    tails: Arc<changelog::tail::Tails>,
    id_blocks: cmdb::resources::IdBlocks,
    secret: tokio::sync::OnceCell<Vec<u8>>,
    sealer: tokio::sync::OnceCell<secrets::Sealer>,
    known_defaults: Mutex<HashSet<String>>,
}

/// The engine: cheap to clone, shared by every handler and worker of a process.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// An engine over the given ports.
    pub fn new(ports: Ports, config: Config) -> Self {
        let tails = Arc::new(changelog::tail::Tails::default());
        let listener: Arc<dyn crate::ports::AppendListener> = Arc::clone(&tails) as _;
        tails.set_complete(ports.store.listen_appends(Arc::downgrade(&listener)));
        Self {
            inner: Arc::new(Inner {
                ports,
                config,
                routes: routing::RouteCache::default(),
                tokens: auth::TokenCache::default(),
                secrets: signing::SecretCache::default(),
                deliveries: delivery::SubscriptionCache::default(),
                route_names: trace::RouteNameCache::default(),
                in_flight: send::InFlight::default(),
                transforms: transform::TransformCache::default(),
                tails,
                id_blocks: cmdb::resources::IdBlocks::default(),
                secret: tokio::sync::OnceCell::new(),
                sealer: tokio::sync::OnceCell::new(),
                known_defaults: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// Opens the backend `config` names and builds an engine on it with the system clock.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        Self::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Opens the backend `config` names and builds an engine on it with `clock`.
    pub async fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let outbound = crate::ports::outbound::shared(config.delivery.address_policy)?;
        let (store, queue): (Arc<dyn Store>, Arc<dyn Queue>) = match &config.backend {
            BackendConfig::Embedded(Some(dir)) => {
                let e = Embedded::open_dir(dir, Arc::clone(&clock), all_queue_specs(&config)).await?;
                (Arc::new(e.store), Arc::new(e.queue))
            }
            BackendConfig::Embedded(None) => {
                let e = Embedded::in_memory(Arc::clone(&clock), all_queue_specs(&config)).await?;
                (Arc::new(e.store), Arc::new(e.queue))
            }
            BackendConfig::Aws(resources) => {
                let a = Aws::connect(resources, Arc::clone(&clock)).await;
                (Arc::new(a.store), Arc::new(a.queue))
            }
        };
        Ok(Self::new(Ports { store, queue, clock, outbound }, config))
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.inner.ports.store.as_ref()
    }

    /// The queues.
    pub fn queue(&self) -> &dyn Queue {
        self.inner.ports.queue.as_ref()
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.ports.clock.as_ref()
    }

    /// Outbound HTTP.
    pub fn outbound(&self) -> &dyn Outbound {
        self.inner.ports.outbound.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Now, in milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.clock().now_ms()
    }

    /// Now, in seconds since the epoch.
    pub fn now_secs(&self) -> i64 {
        self.clock().now_secs()
    }

    pub(crate) fn routes(&self) -> &routing::RouteCache {
        &self.inner.routes
    }

    pub(crate) fn tokens(&self) -> &auth::TokenCache {
        &self.inner.tokens
    }

    pub(crate) fn secrets(&self) -> &signing::SecretCache {
        &self.inner.secrets
    }

    pub(crate) fn delivery_cache(&self) -> &delivery::SubscriptionCache {
        &self.inner.deliveries
    }

    pub(crate) fn route_name_cache(&self) -> &trace::RouteNameCache {
        &self.inner.route_names
    }

    pub(crate) fn in_flight(&self) -> &send::InFlight {
        &self.inner.in_flight
    }

    pub(crate) fn transforms(&self) -> &transform::TransformCache {
        &self.inner.transforms
    }

    pub(crate) fn tails(&self) -> &changelog::tail::Tails {
        &self.inner.tails
    }

    pub(crate) fn id_blocks(&self) -> &cmdb::resources::IdBlocks {
        &self.inner.id_blocks
    }

    pub(crate) fn sealer_cell(&self) -> &tokio::sync::OnceCell<secrets::Sealer> {
        &self.inner.sealer
    }

    pub(crate) fn secret_cell(&self) -> &tokio::sync::OnceCell<Vec<u8>> {
        &self.inner.secret
    }

    pub(crate) fn known_defaults(&self) -> &Mutex<HashSet<String>> {
        &self.inner.known_defaults
    }
}

/// Seconds of a duration, as a Unix-time offset.
pub(crate) fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
