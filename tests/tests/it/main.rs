//! The integration tests, in one binary (one link of the whole stack): a module per area. They run
//! against the emulators `scripts/test` starts (moto for Secrets Manager and EventBridge) and the
//! Azure emulator each test spawns.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod api;
mod architecture;
mod concurrency;
mod connect;
mod console_door;
mod console_tokens;
mod docs_drift;
mod emulator_control;
mod emulator_schema;
mod erasure;
mod estate;
mod estate_emulator;
mod expiry_scan;
mod faults;
mod federated;
mod hardening;
mod health;
mod lambda_events;
mod least_privilege;
mod live_azure;
mod metrics_emf;
mod org_index;
mod quotas;
mod rotation;
mod setup_script;
mod setup_token;
mod store_contract;
mod store_outage;
mod survey;
mod throttling;
mod ties;
