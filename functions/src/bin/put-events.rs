//! Lambda function for `POST /v1/{project_id}/channels/{channel_id}/events` (PutEvents).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("PutEvents").await
}
