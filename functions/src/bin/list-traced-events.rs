//! Lambda function for `GET /v1/{project_id}/traced-events` (ListTracedEvents).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("ListTracedEvents").await
}
