//! Logging with `tracing`: JSON lines in Lambda (CloudWatch reads them), readable lines locally.
//! `RUST_LOG` sets the level (default `info`).

use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,hyper=warn,aws=warn"))
}

/// Logging for a Lambda function.
pub fn init_lambda() {
    let _ =
        tracing_subscriber::fmt().json().with_env_filter(filter()).with_current_span(false).without_time().try_init();
}

/// Logging for the local runner and command-line tool.
pub fn init_local() {
    let _ = tracing_subscriber::fmt().with_env_filter(filter()).with_target(false).try_init();
}
