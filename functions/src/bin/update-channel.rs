//! Lambda function for `PUT /v1/{project_id}/channels/{channel_id}` (UpdateChannel).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("UpdateChannel").await
}
