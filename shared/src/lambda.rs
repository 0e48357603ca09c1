//! The Lambda adapters: an API operation's function, the delivery worker (SQS, with partial batch
//! failures) and the scheduled outbox sweeper. The only module that knows `lambda_http` and
//! `lambda_runtime`.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

use crate::api::{self, ops};
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::delivery::Outcome;
use crate::ports::Received;
use crate::telemetry;

/// An error of a Lambda function.
pub type Error = lambda_runtime::Error;

async fn engine() -> Result<Engine, Error> {
    let config = Config::from_env()?;
    Ok(Engine::open(config).await?)
}

/// Runs the API operation `id` of the route table as a Lambda function behind API Gateway.
pub async fn serve_op(id: &str) -> Result<(), Error> {
    telemetry::init_lambda();
    let op = ops::find(id).ok_or_else(|| format!("operation {id} is not in the route table"))?;
    let engine = engine().await?;
    lambda_http::run(api::op_router(op, engine)).await
}

/// Runs the delivery worker: one [`Engine::deliver_one`] per SQS record, reporting the records to
/// retry as partial batch failures.
pub async fn run_delivery_worker() -> Result<(), Error> {
    telemetry::init_lambda();
    let engine = engine().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let engine = engine.clone();
        async move { Ok::<Value, Error>(handle_sqs_batch(&engine, event.payload).await) }
    }))
    .await
}

/// Runs the outbox sweeper on a schedule.
pub async fn run_sweeper() -> Result<(), Error> {
    telemetry::init_lambda();
    let engine = engine().await?;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let engine = engine.clone();
        async move { Ok::<Value, Error>(json!({ "routed": engine.sweep_outbox().await? })) }
    }))
    .await
}

/// Delivers a batch of SQS records; the response names the records SQS must keep (a retry is due
/// later, or the step failed).
pub async fn handle_sqs_batch(engine: &Engine, event: SqsEvent) -> Value {
    let steps = event.records.into_iter().map(|record| async move {
        let id = record.message_id.clone().unwrap_or_default();
        let received = Received {
            message_id: id.clone(),
            receipt: record.receipt_handle.unwrap_or_default(),
            body: record.body.unwrap_or_default(),
            receive_count: record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1),
        };
        match engine.deliver_one(&received).await {
            Ok(Outcome::Done) => None,
            Ok(Outcome::RetryLater(_)) => Some(id),
            Err(e) => {
                tracing::warn!(message = %id, error = %e, "delivery step failed; SQS will redeliver");
                Some(id)
            }
        }
    });
    let failures: Vec<Value> = futures::future::join_all(steps)
        .await
        .into_iter()
        .flatten()
        .map(|id| json!({ "itemIdentifier": id }))
        .collect();
    json!({ "batchItemFailures": failures })
}
