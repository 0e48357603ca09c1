//! Lambda function for `GET /v1/{project_id}/subscriptions` (ListSubscriptions).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("ListSubscriptions").await
}
