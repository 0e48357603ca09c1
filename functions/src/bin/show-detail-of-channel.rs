//! Lambda function for `GET /v1/{project_id}/channels/{channel_id}` (ShowDetailOfChannel).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("ShowDetailOfChannel").await
}
