//! Connect Account against real Azure, ignored by default (no credentials, no network in CI):
//!
//! ```sh
//! AZURE_LIVE_TENANT_ID=… AZURE_LIVE_CLIENT_ID=… AZURE_LIVE_CLIENT_SECRET=… AZURE_LIVE_SUBSCRIPTION_ID=… \
//!   cargo test -p integration-tests --test live_azure -- --ignored --nocapture
//! ```
//! `AZURE_CLOUD` picks the cloud (public by default). The app must hold Spot's role on the
//! subscription for the test to pass; otherwise it prints the diagnosis and fails.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

use chrono::Utc;
use secrecy::SecretString;
use shared::config::Config;
use shared::domain::diagnosis::Diagnosis;
use shared::domain::{ClientId, ClientSecret, SubscriptionId, TenantId, ValidationInputs};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

#[tokio::test]
#[ignore = "needs real Azure credentials in AZURE_LIVE_* variables"]
async fn connect_account_against_real_azure() {
    let inputs = ValidationInputs {
        tenant: TenantId::parse(&var("AZURE_LIVE_TENANT_ID")).unwrap(),
        client: ClientId::parse(&var("AZURE_LIVE_CLIENT_ID")).unwrap(),
        proof: shared::domain::Proof::Secret(
            ClientSecret::parse(SecretString::from(var("AZURE_LIVE_CLIENT_SECRET"))).unwrap(),
        ),
        scope: shared::domain::Scope::Subscription(
            SubscriptionId::parse(&var("AZURE_LIVE_SUBSCRIPTION_ID")).unwrap(),
        ),
        fingerprint: format!("live-{}", Utc::now().timestamp()),
    };
    let validator = Config::from_env().unwrap().azure.validator().unwrap();
    assert!(
        validator.probe_tenant(&inputs.tenant).await.is_ok(),
        "the tenant exists"
    );
    match validator.validate(&inputs).await {
        Ok(v) => println!("connected: {v:?}"),
        Err(f) => panic!("{:#?}", Diagnosis::of(&f)),
    }
}
