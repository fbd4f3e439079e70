//! Lambda function `secret-expiry`: the daily scan for expiring client secrets (reminders, expiry,
//! starting rotations) and the rotation steps Secrets Manager then sends. Builds its configuration,
//! AWS clients and the Azure HTTP client once per cold start, then hands every event to the shared
//! handler.

use shared::config::{self, Config};
use shared::edge::expiry;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    expiry::run(expiry::compose(&config, &sdk).await?).await
}
