//! Lambda function `spot-credentials`: Spot's public credentials API (the wizard's steps and Connect
//! Account in one call). Builds its configuration, AWS clients and the Azure HTTP client once per
//! cold start, then hands every HTTP API request to the shared handler.

use std::sync::Arc;

use shared::config::{self, Config};
use shared::edge::Function;
use shared::edge::lambda::{self, Handler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let azure = config.azure.validator()?;
    let sdk = config::aws_sdk_config().await;
    let app = config::aws_app(&config, &sdk).with_validator(Arc::new(azure));
    lambda::run(Handler::new(
        Function::SpotCredentials,
        app,
        config.auth.org_claim,
    ))
    .await
}
