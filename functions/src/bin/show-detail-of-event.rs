//! Lambda function for `GET /v1/{project_id}/events/detail/{trace_id}` (ShowDetailOfEvent).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("ShowDetailOfEvent").await
}
