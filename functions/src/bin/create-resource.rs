//! Lambda function for `POST /api/v3/resources/{bk_resource}` (CreateResource).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("CreateResource").await
}
