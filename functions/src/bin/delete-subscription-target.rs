//! Lambda function for `DELETE /v1/{project_id}/subscriptions/{subscription_id}/targets/{target_id}` (DeleteSubscriptionTarget).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("DeleteSubscriptionTarget").await
}
