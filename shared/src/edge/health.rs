//! The `health-check` function's trigger (EventBridge Scheduler, input `{"scheduledAt":
//! "<aws.scheduler.scheduled-time>"}`, optionally `"force": true`), and the local server's
//! `POST /health-checks`, which runs one pass as the schedule would at that moment.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use chrono::{DateTime, Utc};
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;

use super::input::{parse_json, parse_value};
use super::request::{json_response, read_body, stepless_problem_response};
use crate::app::{App, FieldError, HealthReport, Window};
use crate::config::HealthConfig;

/// The schedule's input, and the body of `POST /health-checks`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PassInput {
    /// The run's scheduled time: the end of the window it covers, and its name (a retried or
    /// duplicate delivery of the same time checks nothing again).
    #[serde(default)]
    scheduled_at: Option<DateTime<Utc>>,
    /// Check every linked connection now, whatever its slot.
    #[serde(default)]
    force: bool,
}

#[derive(Clone)]
pub struct HealthHandler {
    app: App,
    config: HealthConfig,
    clock: super::schedule::Clock,
}

impl std::fmt::Debug for HealthHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthHandler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A run's schedule retries for 10 minutes (the template's `MaximumEventAgeInSeconds`).
const RUN_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

#[derive(Debug, thiserror::Error)]
#[error("the event is not valid: {0}")]
pub struct InvalidEvent(String);

impl HealthHandler {
    pub fn new(app: App, config: HealthConfig) -> Self {
        Self {
            app,
            config,
            clock: super::schedule::system_clock(),
        }
    }

    /// Another clock (tests).
    pub fn with_clock(mut self, clock: super::schedule::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// One pass at `now` (the scheduled time, checked against the clock; or the clock).
    async fn pass(&self, input: PassInput, now: DateTime<Utc>) -> Result<HealthReport, crate::app::AppError> {
        let window = if input.force {
            Window::All
        } else {
            let interval =
                chrono::Duration::from_std(self.config.interval()).unwrap_or(chrono::Duration::minutes(15));
            Window::Slots {
                from: now - interval,
                to: now,
            }
        };
        let run = format!("{}", now.timestamp());
        self.app
            .health_pass(&run, now, window, self.config.schedule())
            .await
    }

    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        let input: PassInput = parse_value(event.payload).map_err(|e| {
            let fields = match &e {
                super::error::EdgeError::Input { errors, .. } => errors
                    .iter()
                    .map(|f| format!("{} {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; "),
                _ => "event is not valid".to_owned(),
            };
            InvalidEvent(fields)
        })?;
        let now = super::schedule::trusted(input.scheduled_at, (self.clock)(), RUN_MAX_AGE)
            .map_err(|e| InvalidEvent(format!("{} {}", e.field, e.message)))?;
        let report = self.pass(input, now).await?;
        Ok(serde_json::to_value(report)?)
    }
}

/// The `health-check` function as its `main` builds it, once per cold start: the AWS clients, the
/// Azure client and, for secretless connections, the issuer's signing key (KMS).
pub async fn compose(
    config: &crate::config::Config,
    sdk: &aws_config::SdkConfig,
) -> Result<HealthHandler, Error> {
    let mut validator = config.azure.validator()?;
    if config.survey.queue_url.is_some() {
        validator = validator.with_survey_at_once(config.survey.settings().at_once);
    }
    if let Some(issuer) = config.issuer.kms_issuer(sdk).await? {
        validator = validator.with_issuer(std::sync::Arc::new(issuer));
    }
    let app = crate::config::aws_app(config, sdk).with_validator(std::sync::Arc::new(validator));
    Ok(HealthHandler::new(app, config.health.clone()))
}

pub async fn run(handler: HealthHandler) -> Result<(), Error> {
    super::lambda::serve(handler).await
}

impl super::lambda::EventHandler for HealthHandler {
    fn handle_event(&self, event: LambdaEvent<Value>) -> impl Future<Output = Result<Value, Error>> {
        self.handle(event)
    }
}

/// Adds `POST /health-checks` (local server): one pass now, as the schedule would run it;
/// `{"force": true}` checks every linked connection.
pub fn with_health_checks(router: Router, app: App, config: HealthConfig) -> Router {
    let route = Router::new()
        .route("/health-checks", post(health_checks))
        .with_state(Arc::new(HealthHandler::new(app, config)));
    router.merge(route)
}

/// Outside the wizard: its problems name no step.
async fn health_checks(State(handler): State<Arc<HealthHandler>>, req: Request) -> Response {
    let bytes = match read_body(req).await {
        Ok(b) => b,
        Err(e) => return stepless_problem_response(&e),
    };
    let input = if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(PassInput::default())
    } else {
        parse_json::<PassInput>(&bytes)
    };
    let input = match input {
        // The local server's pass is now: the time is the clock's.
        Ok(i) if i.scheduled_at.is_some() => {
            let e = super::error::EdgeError::invalid(vec![FieldError::new(
                "scheduledAt",
                "is set by the schedule only",
            )]);
            return stepless_problem_response(&e);
        }
        Ok(i) => i,
        Err(e) => return stepless_problem_response(&e),
    };
    match handler.pass(input, (handler.clock)()).await {
        Ok(report) => json_response(StatusCode::OK, &report),
        Err(e) => stepless_problem_response(&e.into()),
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};
    use serde_json::json;

    use super::*;

    fn value(canary: String) -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(canary.clone())),
            Just(json!([canary.clone()])),
            Just(json!({ "x": canary })),
            any::<i64>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(|b| json!(b)),
            Just(json!("2026-11-26T06:15:00Z")),
            Just(Value::Null),
        ]
    }

    proptest! {
        #![proptest_config(Config { cases: 512, failure_persistence: None, rng_seed: RngSeed::Fixed(0x4ea17), ..Config::default() })]

        /// The schedule's input in any shape: it parses, or the error names a field and repeats
        /// nothing it carried.
        #[test]
        fn any_schedule_input_parses_or_names_the_field(
            entries in proptest::collection::vec((
                proptest::sample::select(&["scheduledAt", "force", "runId", "other"][..]),
                "Zq9~[A-Za-z0-9 ._-]{4,20}".prop_flat_map(value),
            ), 0..4),
        ) {
            let payload = Value::Object(entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect());
            if let Err(e) = parse_value::<PassInput>(payload.clone()) {
                let super::super::error::EdgeError::Input { errors, .. } = &e else { panic!("{e:?}") };
                prop_assert!(!errors.is_empty() && errors.iter().all(|f| !f.field.is_empty()));
                let seen = format!("{errors:?}");
                let text = payload.to_string();
                for canary in text.split('"').filter(|s| s.starts_with("Zq9~")) {
                    prop_assert!(!seen.contains(canary), "{canary} repeated in {seen}");
                }
            }
        }
    }
}
