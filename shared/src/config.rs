//! The one configuration, typed, read once per cold start: every variable is declared here (name,
//! default, meaning), every malformed value is a start-up error naming its variable, and the same
//! declarations are the local server's flags. Then the AWS clients and the Azure adapters built
//! from it.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use clap::{Args, CommandFactory, FromArgMatches, Parser};

use crate::app::App;
use crate::azure::{AzureHttp, Cloud};
use crate::domain::expiry::ReminderPolicy;
use crate::events::eventbridge::EventBridgeSink;
use crate::events::{DiscardSink, EventSink};
use crate::issuer::Issuer;
use crate::issuer::kms::KmsSigner;
use crate::rotation::Rotator;
use crate::store::secrets_manager::SecretsManagerStore;
use crate::store::{DEFAULT_PREFIX, RotationStore};
use crate::validation::Validator;

/// Default JWT claim that carries the organization.
pub const DEFAULT_ORG_CLAIM: &str = "org_id";

/// How testSecret waits for Azure to accept a new secret (observed: 4 to 18 s).
pub const ROTATION_TEST_BUDGET: Duration = Duration::from_secs(60);

/// One Azure request may take this long; the budget bounds them all.
pub const PER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Connecting to any dependency (AWS, Azure) may take this long: a refused or black-holed address
/// fails fast enough to retry.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);
/// One attempt of an AWS call (Secrets Manager answers in tens of milliseconds).
pub const AWS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// One AWS call with its retries (3 attempts): a stalled Secrets Manager or EventBridge ends here,
/// well inside API Gateway's 30 s even for a request that makes several calls.
pub const AWS_OPERATION_TIMEOUT: Duration = Duration::from_secs(6);

/// Everything the functions and the local server read from their environment.
#[derive(Debug, Clone, Parser)]
#[command(name = "azure-connect")]
pub struct Config {
    #[command(flatten)]
    pub store: StoreConfig,
    #[command(flatten)]
    pub events: EventsConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub azure: AzureConfig,
    #[command(flatten)]
    pub expiry: ExpiryConfig,
    #[command(flatten)]
    pub health: HealthConfig,
    #[command(flatten)]
    pub issuer: IssuerConfig,
    #[command(flatten)]
    pub console: ConsoleConfig,
    #[command(flatten)]
    pub quotas: QuotaConfig,
    #[command(flatten)]
    pub setup: SetupConfig,
    #[command(flatten)]
    pub survey: SurveyConfig,
}

/// A large management group's survey in the background ([`crate::app::survey`]).
#[derive(Debug, Clone, Args)]
pub struct SurveyConfig {
    /// `connect-account`, `health-check`: the SQS queue the chunks of a survey in the background
    /// go to; unset: every group is surveyed at once (the local server: a queue of its own).
    #[arg(
        long = "survey-queue-url",
        env = "SURVEY_QUEUE_URL",
        value_name = "SURVEY_QUEUE_URL"
    )]
    pub queue_url: Option<String>,
    /// Groups of more subscriptions than this are surveyed in the background.
    #[arg(
        long = "survey-at-once",
        env = "SURVEY_AT_ONCE",
        value_name = "SURVEY_AT_ONCE",
        default_value = "2000"
    )]
    pub at_once: NonZeroU32,
    /// Subscriptions in one chunk of a survey in the background.
    #[arg(
        long = "survey-chunk",
        env = "SURVEY_CHUNK",
        value_name = "SURVEY_CHUNK",
        default_value = "500"
    )]
    pub chunk: NonZeroU32,
}

impl SurveyConfig {
    pub fn settings(&self) -> crate::app::survey::SurveySettings {
        crate::app::survey::SurveySettings {
            at_once: self.at_once.get() as usize,
            chunk: self.chunk.get() as usize,
        }
    }

    /// The SQS queue, when one is configured.
    pub fn sqs(&self, sdk: &aws_config::SdkConfig) -> Option<Arc<dyn crate::queue::WorkQueue>> {
        let url = self.queue_url.as_ref().filter(|u| !u.is_empty())?;
        Some(Arc::new(crate::queue::sqs::SqsQueue::new(
            aws_sdk_sqs::Client::new(sdk),
            url.clone(),
        )))
    }
}

/// The one-command setup ([`crate::app::setup`]).
#[derive(Debug, Clone, Args)]
pub struct SetupConfig {
    /// `setup`: the API's public URL, as the setup command names it (the script's download and
    /// `--api`); unset: the domain the request came to (API Gateway's, or a custom domain's).
    #[arg(long = "public-api-url", env = "PUBLIC_API_URL", value_name = "PUBLIC_API_URL", value_parser = parse_endpoint)]
    pub public_api_url: Option<String>,
    /// `setup`: how long a setup command can be used, in minutes (5 to 60).
    #[arg(
        long = "setup-token-minutes",
        env = "SETUP_TOKEN_MINUTES",
        value_name = "SETUP_TOKEN_MINUTES",
        default_value = "30",
        value_parser = clap::value_parser!(u16).range(5..=60)
    )]
    pub token_minutes: u16,
}

/// Per-organization quotas ([`crate::app::quota`]).
#[derive(Debug, Clone, Args)]
pub struct QuotaConfig {
    /// Live connections an organization may hold that are not linked yet (drafts and failed ones).
    #[arg(
        long = "quota-unlinked-connections",
        env = "QUOTA_UNLINKED_CONNECTIONS",
        value_name = "QUOTA_UNLINKED_CONNECTIONS",
        default_value = "50"
    )]
    pub unlinked: NonZeroU32,
    /// Validations against Azure (Connect Account, Spot's validation) an organization may run a minute.
    #[arg(
        long = "quota-validations-per-minute",
        env = "QUOTA_VALIDATIONS_PER_MINUTE",
        value_name = "QUOTA_VALIDATIONS_PER_MINUTE",
        default_value = "30"
    )]
    pub validations_per_minute: NonZeroU32,
    /// `secret-expiry`: drafts and failed connections untouched this many days are deleted.
    #[arg(
        long = "abandon-drafts-after-days",
        env = "ABANDON_DRAFTS_AFTER_DAYS",
        value_name = "ABANDON_DRAFTS_AFTER_DAYS",
        default_value = "30"
    )]
    pub abandon_after_days: NonZeroU32,
}

impl QuotaConfig {
    pub fn quotas(&self) -> crate::app::quota::Quotas {
        crate::app::quota::Quotas {
            unlinked: self.unlinked.get(),
            validations_per_minute: self.validations_per_minute.get(),
            abandon_after: Duration::from_secs(u64::from(self.abandon_after_days.get()) * 24 * 3600),
            ..crate::app::quota::Quotas::default()
        }
    }
}

/// Who may speak for the console on the event bus.
#[derive(Debug, Clone, Args)]
pub struct ConsoleConfig {
    /// The `source` of the console's events; any other is refused.
    #[arg(
        long = "console-event-source",
        env = "CONSOLE_EVENT_SOURCE",
        value_name = "CONSOLE_EVENT_SOURCE",
        default_value = "spot.console"
    )]
    pub source: String,
    /// The AWS account the console's events come from; any other is refused (unset: any).
    #[arg(
        long = "console-account-id",
        env = "CONSOLE_ACCOUNT_ID",
        value_name = "CONSOLE_ACCOUNT_ID"
    )]
    pub account: Option<String>,
    /// The console's identity provider (the HTTP API's JWT issuer): when set, every console event
    /// carries the user's token in `detail.token`, verified as the HTTP API's JWT authorizer does,
    /// and the organization is the token's.
    #[arg(long = "console-token-issuer", env = "CONSOLE_TOKEN_ISSUER", value_name = "CONSOLE_TOKEN_ISSUER", value_parser = parse_issuer)]
    pub token_issuer: Option<String>,
    /// The audiences a console token may be for, comma-separated.
    #[arg(
        long = "console-token-audience",
        env = "CONSOLE_TOKEN_AUDIENCE",
        value_name = "CONSOLE_TOKEN_AUDIENCE",
        value_delimiter = ','
    )]
    pub token_audiences: Vec<String>,
}

impl ConsoleConfig {
    /// The verifier of console tokens, when an issuer is set.
    pub fn tokens(
        &self,
        org_claim: &str,
    ) -> Result<Option<Arc<dyn crate::tokens::ConsoleTokens>>, reqwest::Error> {
        let Some(issuer) = &self.token_issuer else {
            return Ok(None);
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Some(Arc::new(crate::tokens::Jwks::new(
            issuer.clone(),
            self.token_audiences.clone(),
            org_claim,
            http,
        ))))
    }
}

#[derive(Debug, Clone, Args)]
pub struct HealthConfig {
    /// `health-check`: each linked connection is validated again once per this many hours.
    #[arg(
        long = "health-check-period-hours",
        env = "HEALTH_CHECK_PERIOD_HOURS",
        value_name = "HEALTH_CHECK_PERIOD_HOURS",
        default_value = "24"
    )]
    pub period_hours: NonZeroU32,
    /// `health-check`: minutes between scheduled runs; a run checks the connections whose slot
    /// fell since the previous one.
    #[arg(
        long = "health-check-interval-minutes",
        env = "HEALTH_CHECK_INTERVAL_MINUTES",
        value_name = "HEALTH_CHECK_INTERVAL_MINUTES",
        default_value = "15"
    )]
    pub interval_minutes: NonZeroU32,
    /// `health-check`: connections checked per second at most (each is one store read and 3 to
    /// 6 Azure calls).
    #[arg(
        long = "health-checks-per-second",
        env = "HEALTH_CHECKS_PER_SECOND",
        value_name = "HEALTH_CHECKS_PER_SECOND",
        default_value = "5"
    )]
    pub checks_per_second: NonZeroU32,
}

impl HealthConfig {
    pub fn schedule(&self) -> crate::app::HealthSchedule {
        crate::app::HealthSchedule {
            period: Duration::from_secs(u64::from(self.period_hours.get()) * 3600),
            pace: Duration::from_secs(1) / self.checks_per_second.get(),
        }
    }

    /// The time a scheduled run covers.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.interval_minutes.get()) * 60)
    }
}

#[derive(Debug, Clone, Args)]
pub struct IssuerConfig {
    /// Our OpenID issuer's URL for secretless connections (the API's domain + `/oidc`); unset: no
    /// federated connections. The local server defaults to its own address + `/oidc`.
    #[arg(long = "issuer-url", env = "ISSUER_URL", value_name = "ISSUER_URL", value_parser = parse_endpoint)]
    pub url: Option<String>,
    /// The issuer's KMS keys (RSA_2048, SIGN_VERIFY), comma-separated: the first signs, all are
    /// published (key rollover). The local server signs with a key file when unset.
    #[arg(
        long = "issuer-key-ids",
        env = "ISSUER_KEY_IDS",
        value_name = "ISSUER_KEY_IDS",
        value_delimiter = ','
    )]
    pub key_ids: Vec<String>,
}

/// The issuer could not be set up at cold start.
#[derive(Debug, thiserror::Error)]
#[error("the OpenID issuer cannot start")]
pub struct IssuerSetupError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl IssuerConfig {
    /// The issuer signing with KMS (`None` without `ISSUER_URL`; URL only without key ids).
    pub async fn kms_issuer(&self, sdk: &aws_config::SdkConfig) -> Result<Option<Issuer>, IssuerSetupError> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        if self.key_ids.is_empty() {
            return Ok(Some(Issuer::url_only(url)));
        }
        let signer = KmsSigner::load(aws_sdk_kms::Client::new(sdk), self.key_ids.clone())
            .await
            .map_err(|e| IssuerSetupError(Box::new(e)))?;
        Ok(Some(Issuer::new(url, Arc::new(signer))))
    }
}

#[derive(Debug, Clone, Args)]
pub struct StoreConfig {
    /// Name prefix of connection secrets: `{prefix}{orgId}/{connectionId}`.
    #[arg(long = "secret-prefix", alias = "prefix", env = "CONNECTION_SECRET_PREFIX", value_name = "CONNECTION_SECRET_PREFIX", default_value = DEFAULT_PREFIX)]
    pub secret_prefix: String,
    /// Customer-managed KMS key for new connection secrets (default: the AWS managed key).
    #[arg(long = "kms-key-id", env = "KMS_KEY_ID", value_name = "KMS_KEY_ID")]
    pub kms_key_id: Option<String>,
    /// Name prefix of the client secrets' own credentials, `{prefix}{orgId}/{connectionId}/{n}`:
    /// apart from the connections', so that only the functions using the secret may read it
    /// (default: the connection prefix with `-credentials/`, e.g. `azure-connect-credentials/`).
    #[arg(
        long = "credential-secret-prefix",
        env = "CREDENTIAL_SECRET_PREFIX",
        value_name = "CREDENTIAL_SECRET_PREFIX"
    )]
    pub credential_prefix: Option<String>,
    /// Customer-managed KMS key of the client secrets' credentials (default: the AWS managed key).
    #[arg(
        long = "credential-kms-key-id",
        env = "CREDENTIAL_KMS_KEY_ID",
        value_name = "CREDENTIAL_KMS_KEY_ID"
    )]
    pub credential_kms_key_id: Option<String>,
}

impl StoreConfig {
    /// Where the client secrets' credentials live.
    pub fn credential_prefix(&self) -> String {
        self.credential_prefix
            .clone()
            .unwrap_or_else(|| crate::store::default_credential_prefix(&self.secret_prefix))
    }
}

#[derive(Debug, Clone, Args)]
pub struct EventsConfig {
    /// EventBridge bus for outcome events (unset: events are only logged).
    #[arg(long = "event-bus", env = "EVENT_BUS_NAME", value_name = "EVENT_BUS_NAME")]
    pub event_bus: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// The JWT authorizer's claim that names the organization.
    #[arg(long = "org-id-claim", env = "ORG_ID_CLAIM", value_name = "ORG_ID_CLAIM", default_value = DEFAULT_ORG_CLAIM)]
    pub org_claim: String,
}

#[derive(Debug, Clone, Args)]
pub struct AzureConfig {
    /// The Azure cloud: `public`, `usgov` or `china` (its endpoints and token scopes).
    #[arg(long = "azure-cloud", env = "AZURE_CLOUD", value_name = "AZURE_CLOUD", default_value = "public", value_parser = parse_cloud)]
    pub cloud: Cloud,
    /// Entra ID endpoint override (plain http allowed, for emulators).
    #[arg(long = "azure-authority-host", env = "AZURE_AUTHORITY_HOST", value_name = "AZURE_AUTHORITY_HOST", value_parser = parse_endpoint)]
    pub authority_host: Option<String>,
    /// Azure Resource Manager endpoint override.
    #[arg(long = "azure-resource-manager-endpoint", env = "AZURE_RESOURCE_MANAGER_ENDPOINT", value_name = "AZURE_RESOURCE_MANAGER_ENDPOINT", value_parser = parse_endpoint)]
    pub resource_manager: Option<String>,
    /// Microsoft Graph endpoint override.
    #[arg(long = "azure-graph-endpoint", env = "AZURE_GRAPH_ENDPOINT", value_name = "AZURE_GRAPH_ENDPOINT", value_parser = parse_endpoint)]
    pub graph: Option<String>,
    /// Connect Account's time for Azure, retries and propagation waits (ms; the HTTP API gives 30 s in all).
    #[arg(long = "azure-validation-budget-ms", env = "AZURE_VALIDATION_BUDGET_MS", value_name = "AZURE_VALIDATION_BUDGET_MS", default_value = "15000", value_parser = parse_budget)]
    pub budget: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct ExpiryConfig {
    /// `secret-expiry`: reminder thresholds, days before expiry, comma-separated.
    #[arg(long = "reminder-days", env = "REMINDER_DAYS", value_name = "REMINDER_DAYS", default_value = "30,14,7,1", value_parser = parse_reminders)]
    pub reminders: ReminderPolicy,
    /// `secret-expiry`: due connections handled per second at most (each is 2 to 5 Secrets
    /// Manager writes; the account-wide quota is 50/s).
    #[arg(
        long = "scan-writes-per-second",
        env = "SCAN_WRITES_PER_SECOND",
        value_name = "SCAN_WRITES_PER_SECOND",
        default_value = "10"
    )]
    pub scan_writes_per_second: NonZeroU32,
}

/// A variable that does not parse; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {message}")]
pub struct ConfigError {
    message: String,
    #[source]
    source: clap::Error,
}

impl Config {
    /// From the process environment (Lambda's function configuration).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From any lookup of variables (tests, tools). An empty or blank value counts as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let command = Self::command();
        let mut argv = vec!["azure-connect".to_owned()];
        for arg in command.get_arguments() {
            let (Some(env), Some(long)) = (arg.get_env().and_then(|e| e.to_str()), arg.get_long()) else {
                continue;
            };
            if let Some(value) = get(env).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
                argv.push(format!("--{long}={value}"));
            }
        }
        // Only what `get` gave: the process environment must not leak into a lookup.
        let command = command.mut_args(|a| a.env(None));
        let config = command
            .try_get_matches_from(argv)
            .and_then(|m| Self::from_arg_matches(&m))
            .map_err(ConfigError::from)?;
        config.check()?;
        Ok(config)
    }

    /// What no single variable can say: the documents' and the credentials' secret prefixes must
    /// not overlap (neither begins with the other), or a listing of one would return the other.
    pub fn check(&self) -> Result<(), ConfigError> {
        let docs = self.store.secret_prefix.as_str();
        let creds = self.store.credential_prefix();
        if docs.starts_with(creds.as_str()) || creds.starts_with(docs) {
            let message = format!(
                "CONNECTION_SECRET_PREFIX ({docs}) and CREDENTIAL_SECRET_PREFIX ({creds}) overlap: neither may begin with the other"
            );
            let source = clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, message.clone());
            return Err(ConfigError { message, source });
        }
        Ok(())
    }

    /// Every variable with its default, for documentation: `(name, default, help)`.
    pub fn variables() -> Vec<(String, Option<String>, String)> {
        Self::command()
            .get_arguments()
            .filter_map(|a| {
                let env = a.get_env()?.to_str()?.to_owned();
                let default = a
                    .get_default_values()
                    .first()
                    .and_then(|d| d.to_str())
                    .map(str::to_owned);
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                Some((env, default, help))
            })
            .collect()
    }
}

impl From<clap::Error> for ConfigError {
    fn from(source: clap::Error) -> Self {
        let rendered = source.to_string();
        let message = rendered
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_owned();
        Self { message, source }
    }
}

fn parse_cloud(s: &str) -> Result<Cloud, String> {
    Cloud::preset(s).map_err(|e| e.to_string())
}

fn parse_endpoint(s: &str) -> Result<String, String> {
    let v = s.trim().trim_end_matches('/');
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(v.to_owned())
    } else {
        Err("must be an http:// or https:// URL".to_owned())
    }
}

/// An issuer as its tokens' `iss` says it: an http(s) URL, kept exactly (a trailing `/` too).
fn parse_issuer(s: &str) -> Result<String, String> {
    let v = s.trim();
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(v.to_owned())
    } else {
        Err("must be an http:// or https:// URL".to_owned())
    }
}

fn parse_budget(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err("must be a positive number of milliseconds".to_owned()),
    }
}

fn parse_reminders(s: &str) -> Result<ReminderPolicy, String> {
    ReminderPolicy::parse(s).map_err(|e| e.to_string())
}

impl AzureConfig {
    /// From any lookup of variables (see [`Config::from_lookup`]).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Config::from_lookup(get).map(|c| c.azure)
    }

    /// The cloud's endpoints with the overrides applied; the token scopes stay the cloud's.
    pub fn endpoints(&self) -> Cloud {
        let mut cloud = self.cloud.clone();
        if let Some(v) = &self.authority_host {
            cloud.authority_host = v.clone();
        }
        if let Some(v) = &self.resource_manager {
            cloud.resource_manager = v.clone();
        }
        if let Some(v) = &self.graph {
            cloud.graph = v.clone();
        }
        cloud
    }

    /// Connect Account's validator: one HTTP client (one connection pool) for the cold start.
    pub fn validator(&self) -> Result<Validator, reqwest::Error> {
        let cloud = self.endpoints();
        let http = Arc::new(AzureHttp::new(
            cloud.clone(),
            PER_REQUEST_TIMEOUT,
            CONNECT_TIMEOUT,
        )?);
        Ok(
            Validator::new(http.clone(), http.clone(), cloud.arm_scope.clone(), self.budget)
                .with_graph(http, cloud.graph_scope),
        )
    }

    /// The rotation steps over Secrets Manager and Graph (one HTTP client for the cold start).
    pub fn rotator(
        &self,
        store: Arc<dyn RotationStore>,
        events: Arc<dyn EventSink>,
        prefix: &str,
    ) -> Result<Rotator, reqwest::Error> {
        let cloud = self.endpoints();
        let http = Arc::new(AzureHttp::new(
            cloud.clone(),
            PER_REQUEST_TIMEOUT,
            CONNECT_TIMEOUT,
        )?);
        Ok(Rotator::new(
            store,
            events,
            http.clone(),
            http,
            cloud.arm_scope.clone(),
            cloud.graph_scope.clone(),
            prefix.to_owned(),
            ROTATION_TEST_BUDGET,
        ))
    }
}

impl ExpiryConfig {
    /// The pause between due connections.
    pub fn pace(&self) -> Duration {
        Duration::from_secs(1) / self.scan_writes_per_second.get()
    }
}

/// The AWS SDK configuration: region, credentials and endpoints from the standard variables
/// (`AWS_REGION`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_EVENTBRIDGE`, …), the
/// standard retry mode with 3 attempts and jittered backoff, and time-outs for connecting, each
/// attempt and the whole call.
///
/// In Lambda the region and the function role's credentials are in the environment
/// (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`: "Defined
/// runtime environment variables", Lambda developer guide), where the SDK's default chains look
/// first. Given them directly, start-up skips building the rest of those chains (profile files,
/// web identity, container and instance metadata providers, each with a client of its own): most
/// of what the AWS SDK cost a cold start. Anywhere else (no such variables) the default chains
/// run as before.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_sdk_loader(|name| std::env::var(name).ok()).load().await
}

/// The roots every AWS service endpoint chains to: Amazon Root CA 1–4 and Starfield Services Root
/// Certificate Authority – G2 ("AWS services use Amazon Trust Services certificates"; the roots as
/// the Amazon Trust Services repository, amazontrust.com/repository, publishes them; copied from
/// Debian's ca-certificates 20230311).
const AWS_ROOT_CAS: &[u8] = include_bytes!("../data/aws-root-cas.pem");

/// The AWS SDK's HTTPS client: its own default (hyper, rustls with aws-lc, proxies from the
/// environment, the SDK's connector settings and sleep), trusting the roots AWS endpoints chain to.
/// The default trusts the system's bundle, which it reads and parses (about 150 certificates) when
/// a service client is made: 4 ms of every cold start, for roots no AWS endpoint uses.
fn aws_https_client() -> aws_sdk_secretsmanager::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(AWS_ROOT_CAS))
        .build()
        // Never fails for a trust store (what it checks is other settings); its default would
        // trust the system's bundle, still a safe answer.
        .unwrap_or_default();
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder = aws_smithy_http_client::Connector::builder()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context.clone());
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(aws_smithy_http_client::proxy::ProxyConfig::from_env()));
        builder.build()
    })
}

/// The loader [`aws_sdk_config`] runs, from the environment `var` gives.
fn aws_sdk_loader(var: impl Fn(&str) -> Option<String>) -> aws_config::ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws_https_client())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(AWS_ATTEMPT_TIMEOUT)
                .operation_timeout(AWS_OPERATION_TIMEOUT)
                .build(),
        );
    if let Some(region) = var("AWS_REGION").filter(|r| !r.is_empty()) {
        loader = loader.region(aws_config::Region::new(region));
    }
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        loader = loader
            .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    }
    loader
}

/// The connection store in Secrets Manager.
pub fn secrets_manager_store(config: &StoreConfig, sdk: &aws_config::SdkConfig) -> Arc<SecretsManagerStore> {
    Arc::new(
        SecretsManagerStore::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            config.secret_prefix.clone(),
            config.kms_key_id.clone(),
        )
        .with_credentials(config.credential_prefix(), config.credential_kms_key_id.clone()),
    )
}

/// The application over Secrets Manager and EventBridge.
pub fn aws_app(config: &Config, sdk: &aws_config::SdkConfig) -> App {
    let store = secrets_manager_store(&config.store, sdk);
    let app = App::new(store.clone(), event_sink(&config.events, sdk))
        .with_rotation(store)
        .with_quotas(config.quotas.quotas())
        .with_public_api_url(config.setup.public_api_url.clone())
        .with_setup_token_minutes(config.setup.token_minutes);
    match config.survey.sqs(sdk) {
        Some(queue) => app.with_survey_queue(queue, config.survey.settings()),
        None => app,
    }
}

/// EventBridge when a bus is configured; otherwise events are only logged.
pub fn event_sink(config: &EventsConfig, sdk: &aws_config::SdkConfig) -> Arc<dyn EventSink> {
    match &config.event_bus {
        Some(bus) => Arc::new(EventBridgeSink::new(
            aws_sdk_eventbridge::Client::new(sdk),
            bus.clone(),
        )),
        None => {
            tracing::warn!("EVENT_BUS_NAME is not set: outcomes are not published");
            Arc::new(DiscardSink)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_aws_roots_are_the_five_amazon_trust_services_publishes() {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<_> = CertificateDer::pem_slice_iter(AWS_ROOT_CAS)
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert_eq!(certs.len(), 5);
        let mut roots = rustls::RootCertStore::empty();
        let (valid, invalid) = roots.add_parsable_certificates(certs);
        assert_eq!((valid, invalid), (5, 0));
    }

    #[test]
    fn in_lambda_the_sdk_takes_region_and_credentials_from_the_environment() {
        let env = lookup(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ]);
        let loader = format!("{:?}", aws_sdk_loader(env));
        assert!(loader.contains("eu-west-1"), "{loader}");
        assert!(
            loader.contains("EnvironmentVariableCredentialsProvider"),
            "{loader}"
        );
        let elsewhere = format!("{:?}", aws_sdk_loader(|_| None));
        assert!(
            !elsewhere.contains("EnvironmentVariableCredentialsProvider"),
            "{elsewhere}"
        );
    }

    #[test]
    fn defaults() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.store.secret_prefix, "azure-connect/");
        assert_eq!(c.auth.org_claim, "org_id");
        assert!(c.events.event_bus.is_none());
        assert!(c.store.kms_key_id.is_none());
        assert_eq!(c.azure.budget, Duration::from_secs(15));
        assert_eq!(
            c.azure.endpoints().authority_host,
            "https://login.microsoftonline.com"
        );
        assert_eq!(c.expiry.reminders, ReminderPolicy::default());
        assert_eq!(c.expiry.pace(), Duration::from_millis(100));
    }

    #[test]
    fn overrides_and_blank_values() {
        let c = Config::from_lookup(lookup(&[
            ("CONNECTION_SECRET_PREFIX", "x/"),
            ("EVENT_BUS_NAME", "bus"),
            ("ORG_ID_CLAIM", " "),
            ("AZURE_VALIDATION_BUDGET_MS", "3000"),
            ("REMINDER_DAYS", "7, 1"),
            ("SCAN_WRITES_PER_SECOND", "4"),
        ]))
        .unwrap();
        assert_eq!(
            (
                c.store.secret_prefix.as_str(),
                c.events.event_bus.as_deref(),
                c.auth.org_claim.as_str()
            ),
            ("x/", Some("bus"), "org_id")
        );
        assert_eq!(c.azure.budget, Duration::from_secs(3));
        assert_eq!(c.expiry.reminders, ReminderPolicy::parse("7,1").unwrap());
        assert_eq!(c.expiry.pace(), Duration::from_millis(250));
    }

    #[test]
    fn overlapping_secret_prefixes_are_refused_at_start_up() {
        let with = |docs: &'static str, creds: Option<&'static str>| {
            Config::from_lookup(move |k| match k {
                "CONNECTION_SECRET_PREFIX" => Some(docs.to_owned()),
                "CREDENTIAL_SECRET_PREFIX" => creds.map(str::to_owned),
                _ => None,
            })
        };
        for (docs, creds) in [("a/", "a/"), ("a/", "a/credentials/"), ("a/b/", "a/")] {
            let err = with(docs, Some(creds)).unwrap_err().to_string();
            assert!(
                err.contains("overlap") && err.contains(docs) && err.contains(creds),
                "{err}"
            );
        }
        // The default credential prefix beside a document prefix that ends with `/` does not
        // overlap; without the `/`, `a` lists `a-credentials/…` too: refused.
        for docs in ["azure-connect/", "x/"] {
            assert!(with(docs, None).is_ok(), "{docs}");
        }
        assert!(with("a", None).unwrap_err().to_string().contains("overlap"));
    }

    #[test]
    fn presets_and_overrides() {
        let public = AzureConfig::from_lookup(|_| None).unwrap().endpoints();
        assert_eq!(public.arm_scope, "https://management.azure.com/.default");
        assert_eq!(public.authority_host, "https://login.microsoftonline.com");
        let gov = AzureConfig::from_lookup(lookup(&[("AZURE_CLOUD", "usgov")]))
            .unwrap()
            .endpoints();
        assert_eq!(gov.resource_manager, "https://management.usgovcloudapi.net");
        let emu = AzureConfig::from_lookup(lookup(&[
            ("AZURE_AUTHORITY_HOST", "http://127.0.0.1:4000/"),
            ("AZURE_RESOURCE_MANAGER_ENDPOINT", "http://127.0.0.1:4000/"),
            ("AZURE_GRAPH_ENDPOINT", "http://127.0.0.1:4000/"),
        ]))
        .unwrap()
        .endpoints();
        assert_eq!(emu.resource_manager, "http://127.0.0.1:4000");
        assert_eq!(
            emu.arm_scope, "https://management.azure.com/.default",
            "the scope stays the cloud's"
        );
    }

    #[test]
    fn every_malformed_value_is_an_error_naming_its_variable() {
        for (name, bad) in [
            ("AZURE_CLOUD", "mars"),
            ("AZURE_AUTHORITY_HOST", "ftp://x"),
            ("AZURE_RESOURCE_MANAGER_ENDPOINT", "localhost:4000"),
            ("AZURE_GRAPH_ENDPOINT", "graph"),
            ("AZURE_VALIDATION_BUDGET_MS", "25s"),
            ("AZURE_VALIDATION_BUDGET_MS", "0"),
            ("REMINDER_DAYS", "30,soon"),
            ("SCAN_WRITES_PER_SECOND", "0"),
            ("SCAN_WRITES_PER_SECOND", "ten"),
        ] {
            let err = Config::from_lookup(|k| (k == name).then(|| bad.to_owned())).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(name), "{name}={bad}: {message}");
            assert!(!message.contains("--help"), "{message}");
        }
    }

    #[test]
    fn every_variable_is_documented() {
        let vars = Config::variables();
        let names: Vec<&str> = vars.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "CONNECTION_SECRET_PREFIX",
                "KMS_KEY_ID",
                "CREDENTIAL_SECRET_PREFIX",
                "CREDENTIAL_KMS_KEY_ID",
                "EVENT_BUS_NAME",
                "ORG_ID_CLAIM",
                "AZURE_CLOUD",
                "AZURE_AUTHORITY_HOST",
                "AZURE_RESOURCE_MANAGER_ENDPOINT",
                "AZURE_GRAPH_ENDPOINT",
                "AZURE_VALIDATION_BUDGET_MS",
                "REMINDER_DAYS",
                "SCAN_WRITES_PER_SECOND",
                "HEALTH_CHECK_PERIOD_HOURS",
                "HEALTH_CHECK_INTERVAL_MINUTES",
                "HEALTH_CHECKS_PER_SECOND",
                "ISSUER_URL",
                "ISSUER_KEY_IDS",
                "CONSOLE_EVENT_SOURCE",
                "CONSOLE_ACCOUNT_ID",
                "CONSOLE_TOKEN_ISSUER",
                "CONSOLE_TOKEN_AUDIENCE",
                "QUOTA_UNLINKED_CONNECTIONS",
                "QUOTA_VALIDATIONS_PER_MINUTE",
                "ABANDON_DRAFTS_AFTER_DAYS",
                "PUBLIC_API_URL",
                "SETUP_TOKEN_MINUTES",
                "SURVEY_QUEUE_URL",
                "SURVEY_AT_ONCE",
                "SURVEY_CHUNK",
            ]
        );
        assert!(vars.iter().all(|(_, _, help)| !help.is_empty()));
    }
}
