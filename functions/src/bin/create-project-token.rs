//! Lambda function for `POST /admin/v1/projects/{project_id}/tokens` (CreateProjectToken).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("CreateProjectToken").await
}
