//! Lambda function `federated-credential` (secretless connections): the credential type of a
//! connection and the federated credential's values the customer enters on the app registration.
//! Builds its configuration and AWS clients once per cold start, then hands every event (HTTP API
//! request or console event) to the shared handler. It hands out the issuer's URL only: no key.

use shared::config::{self, Config};
use shared::edge::Function;
use shared::edge::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    lambda::run(lambda::compose(Function::FederatedCredential, &config, &sdk).await?).await
}
