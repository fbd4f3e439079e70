//! Lambda function `setup` (the one-command setup): builds its configuration, AWS clients, the
//! Azure HTTP client and the issuer's signing key (KMS) once per cold start, then hands every
//! request (the setup command, the script, its plan and its reports) to the shared handler.

use shared::config::{self, Config};
use shared::edge::Function;
use shared::edge::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    lambda::run(lambda::compose(Function::Setup, &config, &sdk).await?).await
}
