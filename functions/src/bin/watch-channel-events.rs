//! Lambda function for `GET /v1/{project_id}/channels/{channel_id}/events` (WatchChannelEvents).
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::serve_op("WatchChannelEvents").await
}
