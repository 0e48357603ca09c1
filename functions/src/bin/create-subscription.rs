//! Lambda function for `POST /v1/{project_id}/subscriptions` (CreateSubscription).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("CreateSubscription").await
}
