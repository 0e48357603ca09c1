//! Lambda function for `POST /api/v3/hosts/transfer` (TransferHost).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("TransferHost").await
}
