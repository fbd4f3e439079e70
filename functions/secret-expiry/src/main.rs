//! Lambda function `secret-expiry`: the daily scan for expiring client secrets (reminders, expiry,
//! starting rotations) and the rotation steps Secrets Manager then sends. Builds its configuration,
//! AWS clients and the Azure HTTP client once per cold start, then hands every event to the shared
//! handler.

use shared::app::App;
use shared::config::{self, AzureConfig, Config};
use shared::domain::expiry::ReminderPolicy;
use shared::edge::expiry::{self, ExpiryHandler};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_lambda();
    let config = Config::from_env();
    // REMINDER_DAYS (default 30,14,7,1); SCAN_WRITES_PER_SECOND (default 10).
    let policy = match std::env::var("REMINDER_DAYS") {
        Ok(days) => ReminderPolicy::parse(&days)?,
        Err(_) => ReminderPolicy::default(),
    };
    let rate = std::env::var("SCAN_WRITES_PER_SECOND")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let sdk = config::aws_sdk_config().await;
    let store = config::secrets_manager_store(&config, &sdk);
    let events = config::event_sink(&config, &sdk);
    let rotator = AzureConfig::from_env()?.rotator(store.clone(), events.clone(), &config.secret_prefix)?;
    let app = App::new(store.clone(), events).with_rotation(store);
    expiry::run(ExpiryHandler::new(app, policy, rate).with_rotator(rotator)).await
}
