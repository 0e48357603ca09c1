//! Lambda function consuming the delivery queue: one delivery step per SQS record.
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::run_delivery_worker().await
}
