//! Lambda function for `PUT /api/v3/resources/{bk_resource}/{id}` (UpdateResource).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("UpdateResource").await
}
