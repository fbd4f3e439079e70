//! Lambda function `connect-account` (wizard 3.6, "Connect Account"): builds its configuration, AWS
//! clients, the Azure HTTP client and, for secretless connections, the issuer's signing key (KMS)
//! once per cold start, then hands every event (HTTP API request or console event) to the shared
//! handler.

use std::sync::Arc;

use shared::config::{self, Config};
use shared::edge::Function;
use shared::edge::lambda::{self, Handler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    let mut validator = config.azure.validator()?;
    let mut app = config::aws_app(&config, &sdk);
    if let Some(issuer) = config.issuer.kms_issuer(&sdk).await? {
        let issuer = Arc::new(issuer);
        validator = validator.with_issuer(issuer.clone());
        app = app.with_issuer(issuer);
    }
    let app = app.with_validator(Arc::new(validator));
    lambda::run(Handler::new(Function::ConnectAccount, app, config.auth.org_claim)).await
}
