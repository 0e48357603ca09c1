//! The local runner: every route of the route table on one listener, with the queue workers (the
//! same step functions the Lambda workers run) in this process, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::config::queues;
use crate::engine::Engine;
use crate::engine::delivery::Outcome;

/// How long shutdown waits for deliveries in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// What the runner runs besides the API.
#[derive(Clone, Copy, Debug)]
pub struct RunnerOptions {
    /// Run the delivery worker and the outbox sweeper.
    pub workers: bool,
    /// How often the outbox sweeper runs.
    pub sweep_every: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self { workers: true, sweep_every: Duration::from_secs(5) }
    }
}

/// A running local instance.
pub struct Running {
    /// Where the API listens.
    pub addr: SocketAddr,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops accepting requests, lets the workers finish what is in flight, and waits for all.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Waits until the instance stops (after [`Running::stop`] from elsewhere, or a failure).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    /// A handle that stops the instance when cancelled.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

/// Starts the API on `listener` and, unless disabled, the workers.
pub fn start(listener: TcpListener, engine: Engine, options: RunnerOptions) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let router = api::router(engine.clone());
    let stop = cancel.clone();
    tasks.spawn(async move {
        let served = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "API server failed");
        }
    });
    if options.workers {
        tasks.spawn(delivery_loop(engine.clone(), cancel.clone()));
        tasks.spawn(sweep_loop(engine, options.sweep_every, cancel.clone()));
    }
    Ok(Running { addr, cancel, tasks })
}

/// Receives delivery messages and runs [`Engine::deliver_one`] on each, at most
/// `delivery.concurrency` at a time.
pub async fn delivery_loop(engine: Engine, cancel: CancellationToken) {
    let limit = engine.config().delivery.concurrency.max(1);
    let slots = Arc::new(Semaphore::new(limit));
    let mut in_flight = JoinSet::new();
    loop {
        let first = tokio::select! {
            () = cancel.cancelled() => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
        };
        let free = 1 + slots.available_permits().min(63);
        let received = tokio::select! {
            () = cancel.cancelled() => break,
            r = engine.queue().receive(queues::DELIVERY, free, Duration::from_secs(1), engine.delivery_visibility()) => r,
        };
        let messages = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "receiving deliveries failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut first = Some(first);
        for message in messages {
            let permit = match first.take() {
                Some(p) => p,
                None => match Arc::clone(&slots).acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let engine = engine.clone();
            in_flight.spawn(async move {
                match engine.deliver_one(&message).await {
                    Ok(Outcome::Done) => {
                        if let Err(e) = engine.queue().delete(queues::DELIVERY, &message.receipt).await {
                            tracing::warn!(error = %e, "deleting a finished delivery failed; it will be retried");
                        }
                    }
                    Ok(Outcome::RetryLater(_)) => {}
                    Err(e) => tracing::warn!(error = %e, "delivery step failed; the message will come back"),
                }
                drop(permit);
            });
        }
        while in_flight.try_join_next().is_some() {}
    }
    let drained = tokio::time::timeout(DRAIN, async { while in_flight.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("shutdown left deliveries in flight; they will be retried after their visibility timeout");
    }
}

/// Routes outbox entries left behind, every `every`.
pub async fn sweep_loop(engine: Engine, every: Duration, cancel: CancellationToken) {
    loop {
        match engine.sweep_outbox().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "outbox sweep routed deliveries"),
            Err(e) => tracing::warn!(error = %e, "outbox sweep failed"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
