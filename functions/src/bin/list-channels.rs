//! Lambda function for `GET /v1/{project_id}/channels` (ListChannels).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("ListChannels").await
}
