//! Lambda function for `GET /api/v3/resources/{bk_resource}/{id}` (ShowResource).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("ShowResource").await
}
