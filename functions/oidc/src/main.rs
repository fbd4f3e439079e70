//! Lambda function `oidc`: our OpenID issuer's discovery document and public keys, what Entra ID
//! fetches to verify the assertions of secretless connections (unauthenticated routes). Reads the
//! public keys from KMS once per cold start; every request is answered from memory.

use shared::config::{self, Config};
use shared::edge::Function;
use shared::edge::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    lambda::run(lambda::compose(Function::Issuer, &config, &sdk).await?).await
}
