//! Lambda function `secret-expiry`: the daily scan for expiring client secrets (reminders, expiry,
//! starting rotations) and the rotation steps Secrets Manager then sends. Builds its configuration,
//! AWS clients and the Azure HTTP client once per cold start, then hands every event to the shared
//! handler.

use shared::app::App;
use shared::config::{self, Config};
use shared::edge::expiry::{self, ExpiryHandler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = config::aws_sdk_config().await;
    let store = config::secrets_manager_store(&config.store, &sdk);
    let events = config::event_sink(&config.events, &sdk);
    let rotator = config
        .azure
        .rotator(store.clone(), events.clone(), &config.store.secret_prefix)?;
    let app = App::new(store.clone(), events).with_rotation(store);
    expiry::run(ExpiryHandler::new(app, &config.expiry).with_rotator(rotator)).await
}
