//! Configuration from the environment and the AWS clients, built once per cold start.

use std::sync::Arc;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;

use crate::app::App;
use crate::azure::{AzureHttp, Cloud, CloudError};
use crate::events::eventbridge::EventBridgeSink;
use crate::events::{EventSink, MemorySink};
use crate::store::DEFAULT_PREFIX;
use crate::store::secrets_manager::SecretsManagerStore;
use crate::validation::{DEFAULT_BUDGET, Validator};

/// Default JWT claim that carries the organization.
pub const DEFAULT_ORG_CLAIM: &str = "org_id";

#[derive(Debug, Clone)]
pub struct Config {
    /// `CONNECTION_SECRET_PREFIX`: names are `{prefix}{orgId}/{connectionId}`.
    pub secret_prefix: String,
    /// `EVENT_BUS_NAME`: where outcomes are published; unset, they are only logged.
    pub event_bus: Option<String>,
    /// `ORG_ID_CLAIM`: the JWT claim with the organization.
    pub org_claim: String,
    /// `KMS_KEY_ID`: customer-managed key for connection secrets (default: the AWS managed key).
    pub kms_key_id: Option<String>,
}

impl Config {
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Self {
            secret_prefix: non_empty("CONNECTION_SECRET_PREFIX").unwrap_or_else(|| DEFAULT_PREFIX.to_owned()),
            event_bus: non_empty("EVENT_BUS_NAME"),
            org_claim: non_empty("ORG_ID_CLAIM").unwrap_or_else(|| DEFAULT_ORG_CLAIM.to_owned()),
            kms_key_id: non_empty("KMS_KEY_ID"),
        }
    }
}

/// The AWS SDK configuration: region, credentials and endpoints from the standard variables
/// (`AWS_REGION`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_EVENTBRIDGE`, …), the
/// standard retry mode with 3 attempts and jittered backoff.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

/// The connection store in Secrets Manager.
pub fn secrets_manager_store(config: &Config, sdk: &aws_config::SdkConfig) -> Arc<SecretsManagerStore> {
    Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(sdk),
        config.secret_prefix.clone(),
        config.kms_key_id.clone(),
    ))
}

/// The application over Secrets Manager and EventBridge.
pub fn aws_app(config: &Config, sdk: &aws_config::SdkConfig) -> App {
    let store = secrets_manager_store(config, sdk);
    App::new(store.clone(), event_sink(config, sdk)).with_rotation(store)
}

pub fn event_sink(config: &Config, sdk: &aws_config::SdkConfig) -> Arc<dyn EventSink> {
    match &config.event_bus {
        Some(bus) => Arc::new(EventBridgeSink::new(
            aws_sdk_eventbridge::Client::new(sdk),
            bus.clone(),
        )),
        None => {
            tracing::warn!("EVENT_BUS_NAME is not set: outcomes are not published");
            Arc::new(MemorySink::default())
        }
    }
}

/// Azure for Connect Account: the cloud (`AZURE_CLOUD` and overrides) and the validation budget
/// (`AZURE_VALIDATION_BUDGET_MS`, default 25 000: the HTTP API gives 30 s in all).
#[derive(Debug, Clone)]
pub struct AzureConfig {
    pub cloud: Cloud,
    pub budget: Duration,
}

impl AzureConfig {
    pub fn from_env() -> Result<Self, CloudError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, CloudError> {
        let budget = get("AZURE_VALIDATION_BUDGET_MS")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_BUDGET, Duration::from_millis);
        Ok(Self {
            cloud: Cloud::from_lookup(get)?,
            budget,
        })
    }

    /// One HTTP client (one connection pool) for the cold start.
    pub fn validator(&self) -> Result<Validator, reqwest::Error> {
        let http = Arc::new(AzureHttp::new(self.cloud.clone(), PER_REQUEST_TIMEOUT)?);
        Ok(Validator::new(
            http.clone(),
            http.clone(),
            self.cloud.arm_scope.clone(),
            self.budget,
        )
        .with_graph(http, self.cloud.graph_scope.clone()))
    }
}

impl AzureConfig {
    /// The rotation steps over Secrets Manager and Graph (one HTTP client for the cold start).
    pub fn rotator(
        &self,
        store: Arc<dyn crate::store::RotationStore>,
        events: Arc<dyn EventSink>,
        prefix: &str,
    ) -> Result<crate::rotation::Rotator, reqwest::Error> {
        let http = Arc::new(AzureHttp::new(self.cloud.clone(), PER_REQUEST_TIMEOUT)?);
        Ok(crate::rotation::Rotator::new(
            store,
            events,
            http.clone(),
            http,
            self.cloud.arm_scope.clone(),
            self.cloud.graph_scope.clone(),
            prefix.to_owned(),
            ROTATION_TEST_BUDGET,
        ))
    }
}

/// How long testSecret waits for Azure to accept a new secret (observed: 4 to 18 s).
pub const ROTATION_TEST_BUDGET: Duration = Duration::from_secs(60);

/// One Azure request may take this long; the budget bounds them all.
pub const PER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_lookup(|_| None);
        assert_eq!(c.secret_prefix, "azure-connect/");
        assert_eq!(c.org_claim, "org_id");
        assert!(c.event_bus.is_none());
        let c = Config::from_lookup(|k| match k {
            "CONNECTION_SECRET_PREFIX" => Some("x/".into()),
            "EVENT_BUS_NAME" => Some("bus".into()),
            "ORG_ID_CLAIM" => Some(" ".into()),
            _ => None,
        });
        assert_eq!(
            (
                c.secret_prefix.as_str(),
                c.event_bus.as_deref(),
                c.org_claim.as_str()
            ),
            ("x/", Some("bus"), "org_id")
        );
    }
}
