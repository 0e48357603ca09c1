//! Lambda function for `POST /v1/{project_id}/events/check` (CheckPutEvents).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("CheckPutEvents").await
}
