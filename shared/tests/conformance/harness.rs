//! Builds each backend for a case: a fresh in-memory embedded database, or fresh, uniquely named
//! DynamoDB tables and SQS queues on the configured emulator.
// The harness reads its own configuration (whether an emulator is there) from the environment.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use switchyard::backend::aws::{Aws, provision};
use switchyard::backend::embedded::Embedded;
use switchyard::ports::{Queue, QueueSpec, Store, TestClock};

/// The queues every queue case uses: `main` dead-letters into `dlq` after two receives.
pub fn queue_specs() -> Vec<QueueSpec> {
    vec![
        QueueSpec { name: "dlq".into(), dead_letter: None },
        QueueSpec { name: "main".into(), dead_letter: Some(("dlq".into(), 2)) },
    ]
}

/// Whether the AWS cases can run; panics when they must but cannot.
fn aws_configured() -> bool {
    let configured = std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty());
    if !configured {
        assert!(
            std::env::var("SWITCHYARD_REQUIRE_AWS").as_deref() != Ok("1"),
            "SWITCHYARD_REQUIRE_AWS=1 but AWS_ENDPOINT_URL is not set"
        );
        eprintln!("skipped: no AWS endpoint configured (set AWS_ENDPOINT_URL to moto's server)");
    }
    configured
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A store and the clock it reads expiry against.
pub struct StoreHarness {
    pub store: Arc<dyn Store>,
    pub clock: Arc<TestClock>,
    /// Writers and appends per writer for the concurrency case (an emulator is slower).
    pub contention: (u64, u64),
}

impl StoreHarness {
    pub async fn embedded() -> Self {
        let clock = Arc::new(TestClock::now());
        let backend = Embedded::in_memory(clock.clone(), queue_specs()).await.expect("embedded backend");
        Self { store: Arc::new(backend.store), clock, contention: (8, 25) }
    }

    pub async fn aws() -> Option<Self> {
        if !aws_configured() {
            return None;
        }
        let clock = Arc::new(TestClock::now());
        let resources = provision(&unique("conformance"), &[], "").await.expect("provision table");
        let backend = Aws::connect(&resources, clock.clone()).await;
        Some(Self { store: Arc::new(backend.store), clock, contention: (4, 15) })
    }
}

/// A queue service with the queues of [`queue_specs`].
pub struct QueueHarness {
    pub queue: Arc<dyn Queue>,
    /// Names or URLs of queues that do not exist.
    pub missing: Vec<String>,
}

impl QueueHarness {
    pub async fn embedded() -> Self {
        let clock = Arc::new(TestClock::now());
        let backend = Embedded::in_memory(clock, queue_specs()).await.expect("embedded backend");
        Self { queue: Arc::new(backend.queue), missing: vec!["nope".into()] }
    }

    pub async fn aws() -> Option<Self> {
        if !aws_configured() {
            return None;
        }
        let clock = Arc::new(TestClock::now());
        let prefix = format!("{}-", unique("conf"));
        let resources = provision(&unique("conformance-q"), &queue_specs(), &prefix).await.expect("provision");
        let backend = Aws::connect(&resources, clock).await;
        let main = resources.queue_urls.get("main").expect("main queue URL");
        let missing_url = format!("{}{}", main.trim_end_matches("main"), unique("missing"));
        Some(Self { queue: Arc::new(backend.queue), missing: vec!["nope".into(), missing_url] })
    }
}
