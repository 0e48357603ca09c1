//! Lambda function for `POST /v1/{project_id}/channels` (CreateChannel).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("CreateChannel").await
}
