//! Lambda function `federated-credential` (secretless connections): the credential type of a
//! connection and the federated credential's values the customer enters on the app registration.
//! Builds its configuration and AWS clients once per cold start, then hands every event (HTTP API
//! request or console event) to the shared handler. It hands out the issuer's URL only: no key.

use std::sync::Arc;

use shared::config::{self, Config};
use shared::edge::Function;
use shared::edge::lambda::{self, Handler};
use shared::issuer::Issuer;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    let mut app = config::aws_app(&config, &sdk);
    if let Some(url) = &config.issuer.url {
        app = app.with_issuer(Arc::new(Issuer::url_only(url)));
    }
    lambda::run(Handler::new(
        Function::FederatedCredential,
        app,
        config.auth.org_claim,
    ))
    .await
}
