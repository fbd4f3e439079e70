//! Lambda function `health-check`: on a schedule, validates every linked connection again once
//! per period, at its own slot (Connect Account's validation, no write when nothing changed).
//! Builds its configuration, AWS clients and the Azure HTTP client once per cold start, then
//! hands every run to the shared handler.

use shared::config::{self, Config};
use shared::edge::health;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    health::run(health::compose(&config, &sdk).await?).await
}
