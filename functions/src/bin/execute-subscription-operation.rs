//! Lambda function for `POST /v1/{project_id}/subscriptions/operation` (ExecuteSubscriptionOperation).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("ExecuteSubscriptionOperation").await
}
