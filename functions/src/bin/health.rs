//! Lambda function for `GET /health` (Health).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("Health").await
}
