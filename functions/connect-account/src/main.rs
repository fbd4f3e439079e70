//! Lambda function `connect-account` (wizard 3.6, "Connect Account"): builds its configuration, AWS
//! clients, the Azure HTTP client and, for secretless connections, the issuer's signing key (KMS)
//! once per cold start, then hands every event (HTTP API request or console event) to the shared
//! handler.

use shared::config::{self, Config};
use shared::edge::Function;
use shared::edge::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    lambda::run(lambda::compose(Function::ConnectAccount, &config, &sdk).await?).await
}
