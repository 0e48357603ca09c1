//! Lambda function for `DELETE /api/v3/resources/{bk_resource}/{id}` (DeleteResource).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("DeleteResource").await
}
