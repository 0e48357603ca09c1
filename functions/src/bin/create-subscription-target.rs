//! Lambda function for `POST /v1/{project_id}/subscriptions/{subscription_id}/targets` (CreateSubscriptionTarget).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("CreateSubscriptionTarget").await
}
