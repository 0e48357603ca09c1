//! Lambda function for `PUT /v1/{project_id}/subscriptions/{subscription_id}/sources/{source_id}` (UpdateSubscriptionSource).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("UpdateSubscriptionSource").await
}
