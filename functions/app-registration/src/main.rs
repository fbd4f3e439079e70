//! Lambda function `app-registration`: builds its configuration, AWS clients and the Azure HTTP client (for
//! the early check of this step) once per cold start, then hands every event (HTTP API request
//! or console event) to the shared handler.

use shared::config::{self, Config};
use shared::edge::Function;
use shared::edge::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    lambda::run(lambda::compose(Function::AppRegistration, &config, &sdk).await?).await
}
