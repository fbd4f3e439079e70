//! What a function's cold start spends, phase by phase, in a fresh process (as the functions'
//! `main`s do it): prints one JSON line of microseconds. Run by `scripts/bench` (figure
//! `coldstart`); reads the same environment as the functions.

#![allow(clippy::print_stdout)] // its output is the measurement

use std::time::Instant;

use shared::config::{self, Config};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut phases = serde_json::Map::new();
    let mut mark = Instant::now();
    let mut lap = |name: &str, phases: &mut serde_json::Map<String, serde_json::Value>| {
        phases.insert(name.to_owned(), (mark.elapsed().as_micros() as u64).into());
        mark = Instant::now();
    };
    shared::telemetry::init_lambda();
    lap("telemetry", &mut phases);
    let config = Config::from_env()?;
    lap("config", &mut phases);
    let sdk = config::aws_sdk_config().await;
    lap("aws_sdk_config", &mut phases);
    let app = config::aws_app(&config, &sdk);
    lap("aws_clients", &mut phases);
    let validator = config.azure.validator()?;
    lap("azure_http_client", &mut phases);
    let issuer = config.issuer.kms_issuer(&sdk).await?;
    lap("issuer", &mut phases);
    drop((app, validator, issuer));
    println!("{}", serde_json::Value::Object(phases));
    Ok(())
}
