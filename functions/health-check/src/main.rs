//! Lambda function `health-check`: on a schedule, validates every linked connection again once
//! per period, at its own slot (Connect Account's validation, no write when nothing changed).
//! Builds its configuration, AWS clients and the Azure HTTP client once per cold start, then
//! hands every run to the shared handler.

use std::sync::Arc;

use shared::config::{self, Config};
use shared::edge::health::{self, HealthHandler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    let issuer = config.issuer.kms_issuer(&sdk).await?;
    let mut validator = config.azure.validator()?;
    if let Some(issuer) = issuer {
        validator = validator.with_issuer(Arc::new(issuer));
    }
    let app = config::aws_app(&config, &sdk).with_validator(Arc::new(validator));
    health::run(HealthHandler::new(app, config.health)).await
}
