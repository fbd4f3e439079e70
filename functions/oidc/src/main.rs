//! Lambda function `oidc`: our OpenID issuer's discovery document and public keys, what Entra ID
//! fetches to verify the assertions of secretless connections (unauthenticated routes). Reads the
//! public keys from KMS once per cold start; every request is answered from memory.

use std::sync::Arc;

use shared::config::{self, Config};
use shared::edge::Function;
use shared::edge::lambda::{self, Handler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    let mut app = config::aws_app(&config, &sdk);
    if let Some(issuer) = config.issuer.kms_issuer(&sdk).await? {
        app = app.with_issuer(Arc::new(issuer));
    }
    lambda::run(Handler::new(Function::Issuer, app, config.auth.org_claim)).await
}
