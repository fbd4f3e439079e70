//! The `secret-expiry` function's triggers: the daily schedule (EventBridge Scheduler, input
//! `{"scanId": "<aws.scheduler.execution-id>", "scheduledAt": "<aws.scheduler.scheduled-time>"}`)
//! and, with rotation, Secrets Manager's rotation steps.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;

use super::error::EdgeError;
use super::input::parse_value;
use super::request::bounded_id;
use crate::app::{App, FieldError};
use crate::config::ExpiryConfig;
use crate::domain::expiry::ReminderPolicy;
use crate::rotation::{RotationStep, Rotator};

#[derive(Clone)]
pub struct ExpiryHandler {
    app: App,
    policy: ReminderPolicy,
    pace: Duration,
    rotator: Option<Rotator>,
    clock: super::schedule::Clock,
}

impl std::fmt::Debug for ExpiryHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpiryHandler")
            .field("policy", &self.policy)
            .field("pace", &self.pace)
            .finish_non_exhaustive()
    }
}

/// The scan's schedule retries for an hour (the template's `MaximumEventAgeInSeconds`).
const SCAN_MAX_AGE: Duration = Duration::from_secs(2 * 3600);

/// The schedule's input; both fields are optional (a manual invocation may send `{}`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScanInput {
    #[serde(default)]
    scan_id: Option<String>,
    #[serde(default)]
    scheduled_at: Option<DateTime<Utc>>,
}

/// Secrets Manager's rotation event (it may carry more, e.g. `RotationToken`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotationEvent {
    step: String,
    secret_id: String,
    client_request_token: String,
}

/// What the function was invoked for.
#[derive(Debug, PartialEq, Eq)]
enum Trigger {
    Scan {
        scan_id: Option<String>,
        scheduled_at: Option<DateTime<Utc>>,
    },
    Rotation {
        step: RotationStep,
        secret_id: String,
        token: String,
    },
}

impl Trigger {
    /// Parses an invocation's payload; errors name the field and never repeat a value.
    fn parse(payload: Value) -> Result<Self, ExpiryError> {
        if payload.get("Step").is_some() {
            let event: RotationEvent = parse_value(payload).map_err(ExpiryError::from_edge)?;
            let step = RotationStep::parse(&event.step).ok_or_else(|| {
                ExpiryError::invalid(
                    "Step",
                    "is not one of createSecret, setSecret, testSecret, finishSecret",
                )
            })?;
            return Ok(Self::Rotation {
                step,
                secret_id: event.secret_id,
                token: event.client_request_token,
            });
        }
        let input: ScanInput = parse_value(payload).map_err(ExpiryError::from_edge)?;
        if input.scan_id.as_deref().is_some_and(|id| !bounded_id(id)) {
            return Err(ExpiryError::invalid(
                "scanId",
                "must be 1 to 64 of A-Z a-z 0-9 - _ . =",
            ));
        }
        Ok(Self::Scan {
            scan_id: input.scan_id,
            scheduled_at: input.scheduled_at,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExpiryError {
    #[error("this function was started without Azure, so it cannot rotate")]
    RotationNotAvailable,
    #[error("the event is not valid: {}", describe(.0))]
    Invalid(Vec<FieldError>),
}

fn describe(errors: &[FieldError]) -> String {
    let all: Vec<String> = errors
        .iter()
        .map(|e| format!("{} {}", e.field, e.message))
        .collect();
    all.join("; ")
}

impl ExpiryError {
    fn invalid(field: &str, message: &str) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }

    fn from_edge(e: EdgeError) -> Self {
        match e {
            EdgeError::Input { errors, .. } => Self::Invalid(errors),
            _ => Self::invalid("event", "is not valid"),
        }
    }
}

impl ExpiryHandler {
    /// The reminder thresholds and the pace of writes come from `config`.
    pub fn new(app: App, config: &ExpiryConfig) -> Self {
        Self {
            app,
            policy: config.reminders.clone(),
            pace: config.pace(),
            rotator: None,
            clock: super::schedule::system_clock(),
        }
    }

    /// Another clock (tests: the same function a month later).
    pub fn with_clock(mut self, clock: super::schedule::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Handles Secrets Manager's rotation steps too.
    pub fn with_rotator(mut self, rotator: Rotator) -> Self {
        self.rotator = Some(rotator);
        self
    }

    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        let (payload, context) = event.into_parts();
        let (scan_id, scheduled_at) = match Trigger::parse(payload)? {
            Trigger::Rotation {
                step,
                secret_id,
                token,
            } => {
                let rotator = self.rotator.as_ref().ok_or(ExpiryError::RotationNotAvailable)?;
                rotator.step(step, &secret_id, &token).await?;
                return Ok(serde_json::json!({"step": step.as_str(), "done": true}));
            }
            Trigger::Scan {
                scan_id,
                scheduled_at,
            } => (scan_id, scheduled_at),
        };
        let scan_id = scan_id.unwrap_or(context.request_id);
        let now = super::schedule::trusted(scheduled_at, (self.clock)(), SCAN_MAX_AGE)
            .map_err(|e| ExpiryError::Invalid(vec![e]))?;
        // Our own ARN: Secrets Manager invokes this very function for the rotation steps.
        let arn = (!context.invoked_function_arn.is_empty()).then_some(context.invoked_function_arn.as_str());
        let report = self
            .app
            .scan_expiry(&scan_id, now, &self.policy, self.pace, arn)
            .await?;
        tracing::info!(scan_id, ?report, "expiry scan done");
        Ok(serde_json::to_value(report)?)
    }
}

/// The `secret-expiry` function as its `main` builds it, once per cold start: the AWS clients and
/// the Azure client of the rotation steps.
pub async fn compose(
    config: &crate::config::Config,
    sdk: &aws_config::SdkConfig,
) -> Result<ExpiryHandler, Error> {
    let store = crate::config::secrets_manager_store(&config.store, sdk);
    let events = crate::config::event_sink(&config.events, sdk);
    let rotator = config
        .azure
        .rotator(store.clone(), events.clone(), &config.store.secret_prefix)?;
    let app = App::new(store.clone(), events)
        .with_rotation(store)
        .with_quotas(config.quotas.quotas());
    Ok(ExpiryHandler::new(app, &config.expiry).with_rotator(rotator))
}

pub async fn run(handler: ExpiryHandler) -> Result<(), Error> {
    super::lambda::serve(handler).await
}

impl super::lambda::EventHandler for ExpiryHandler {
    fn handle_event(&self, event: LambdaEvent<Value>) -> impl Future<Output = Result<Value, Error>> {
        self.handle(event)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};
    use serde_json::json;

    use super::*;

    fn sample(name: &str) -> Value {
        let path = format!("{}/../events/secret-expiry/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_samples_parse_into_their_triggers() {
        assert_eq!(
            Trigger::parse(sample("schedule-scan.json")).unwrap(),
            Trigger::Scan {
                scan_id: Some("7c3e9a52-4f1b-4e0d-9b8a-2d6f5c4b3a21".into()),
                scheduled_at: Some("2026-11-26T06:00:00Z".parse().unwrap()),
            }
        );
        let Trigger::Rotation { step, token, .. } =
            Trigger::parse(sample("rotation-create-secret.json")).unwrap()
        else {
            panic!("not a rotation")
        };
        assert_eq!(
            (step, token.as_str()),
            (RotationStep::Create, "6f0e2b9a-3c1d-4e5f-8a7b-9c0d1e2f3a4b")
        );
        // A manual run and Secrets Manager's newer field.
        assert!(matches!(
            Trigger::parse(json!({})),
            Ok(Trigger::Scan { scan_id: None, .. })
        ));
        let mut newer = sample("rotation-create-secret.json");
        newer["RotationToken"] = json!("t");
        assert!(Trigger::parse(newer).is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"Step": "dropSecret", "SecretId": "s", "ClientRequestToken": "t"}),
                "Step",
            ),
            (
                json!({"Step": "createSecret", "ClientRequestToken": "t"}),
                "SecretId",
            ),
            (
                json!({"Step": "createSecret", "SecretId": 7, "ClientRequestToken": "t"}),
                "SecretId",
            ),
            (json!({"scanId": "has space"}), "scanId"),
            (json!({"scheduledAt": "yesterday"}), "scheduledAt"),
        ];
        for (payload, field) in cases {
            let e = Trigger::parse(payload.clone()).unwrap_err().to_string();
            assert!(e.contains(field), "{payload}: {e}");
        }
    }

    fn value(canary: String) -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(canary.clone())),
            Just(json!([canary.clone()])),
            Just(json!({ "x": canary })),
            any::<i64>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(|b| json!(b)),
            Just(json!("createSecret")),
            Just(json!("2026-11-26T06:00:00Z")),
            Just(Value::Null),
        ]
    }

    const KEYS: &[&str] = &[
        "Step",
        "SecretId",
        "ClientRequestToken",
        "RotationToken",
        "scanId",
        "scheduledAt",
        "other",
    ];

    proptest! {
        #![proptest_config(Config { cases: 512, failure_persistence: None, rng_seed: RngSeed::Fixed(0x5c4ed), ..Config::default() })]

        /// Rotation and schedule events of any shape: an answer, never a panic, and an error that
        /// names a field and repeats nothing the event carried.
        #[test]
        fn any_invocation_payload_is_answered_without_repeating_it(
            canary in "Zq9~[A-Za-z0-9 ._-]{6,30}",
            entries in proptest::collection::vec((proptest::sample::select(KEYS), "Zq9~[A-Za-z0-9 ._-]{6,30}".prop_flat_map(value)), 0..5),
            not_an_object in proptest::bool::weighted(0.1),
        ) {
            let payload = if not_an_object {
                json!([canary.clone()])
            } else {
                Value::Object(entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
            };
            if let Err(e) = Trigger::parse(payload.clone()) {
                let seen = format!("{e} {e:?}");
                let ExpiryError::Invalid(errors) = &e else { panic!("{e}") };
                prop_assert!(!errors.is_empty() && errors.iter().all(|f| !f.field.is_empty()), "{seen}");
                let text = payload.to_string();
                for canary in text.split('"').filter(|s| s.starts_with("Zq9~")) {
                    prop_assert!(!seen.contains(canary), "{canary} repeated in {seen}");
                }
            }
        }
    }
}
