//! Lambda function for `POST /api/c/compapi/v2/cc/resource_watch/` (WatchResourceGateway).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("WatchResourceGateway").await
}
