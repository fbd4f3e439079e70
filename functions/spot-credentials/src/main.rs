//! Lambda function `spot-credentials`: Spot's public credentials API (the wizard's steps and Connect
//! Account in one call). Builds its configuration, AWS clients and the Azure HTTP client once per
//! cold start, then hands every HTTP API request to the shared handler.

use shared::config::{self, Config};
use shared::edge::Function;
use shared::edge::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    lambda::run(lambda::compose(Function::SpotCredentials, &config, &sdk).await?).await
}
