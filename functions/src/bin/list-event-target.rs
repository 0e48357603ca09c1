//! Lambda function for `GET /v1/{project_id}/target-catalogs` (ListEventTarget).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("ListEventTarget").await
}
