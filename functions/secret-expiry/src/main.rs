//! Lambda function `secret-expiry`: the daily scan for expiring client secrets (reminders at 30,
//! 14, 7 and 1 days, expired connections marked and announced). Builds its configuration and AWS
//! clients once per cold start, then hands every event to the shared handler.

use shared::config::{self, Config};
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
    let app = config::aws_app(&config, &sdk);
    expiry::run(ExpiryHandler::new(app, policy, rate)).await
}
