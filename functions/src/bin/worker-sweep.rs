//! Lambda function run on a schedule: routes accepted events left in the outbox.
#[tokio::main]
async fn main() -> Result<(), switchyard::lambda::Error> {
    switchyard::lambda::run_sweeper().await
}
