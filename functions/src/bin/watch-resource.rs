//! Lambda function for `POST /api/v3/event/watch/resource/{bk_resource}` (WatchResource).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("WatchResource").await
}
