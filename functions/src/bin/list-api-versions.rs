//! Lambda function for `GET /` (ListApiVersions).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("ListApiVersions").await
}
