//! Lambda function for `DELETE /v1/{project_id}/channels/{channel_id}` (DeleteChannel).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("DeleteChannel").await
}
