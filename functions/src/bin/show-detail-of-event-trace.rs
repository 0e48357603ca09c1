//! Lambda function for `GET /v1/{project_id}/events/trace/detail/{trace_id}` (ShowDetailOfEventTrace).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("ShowDetailOfEventTrace").await
}
