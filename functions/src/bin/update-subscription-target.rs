//! Lambda function for `PUT /v1/{project_id}/subscriptions/{subscription_id}/targets/{target_id}` (UpdateSubscriptionTarget).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("UpdateSubscriptionTarget").await
}
