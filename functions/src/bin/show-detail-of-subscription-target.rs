//! Lambda function for `GET /v1/{project_id}/subscriptions/{subscription_id}/targets/{target_id}` (ShowDetailOfSubscriptionTarget).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("ShowDetailOfSubscriptionTarget").await
}
