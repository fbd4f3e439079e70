//! The `secret-expiry` function's triggers: the daily schedule (EventBridge Scheduler, input
//! `{"scanId": "<aws.scheduler.execution-id>", "scheduledAt": "<aws.scheduler.scheduled-time>"}`)
//! and, with rotation, Secrets Manager's rotation steps.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::Value;

use crate::app::App;
use crate::config::ExpiryConfig;
use crate::domain::expiry::ReminderPolicy;
use crate::rotation::{RotationStep, Rotator};

#[derive(Debug, Clone)]
pub struct ExpiryHandler {
    app: App,
    policy: ReminderPolicy,
    pace: Duration,
    rotator: Option<Rotator>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScanInput {
    #[serde(default)]
    scan_id: Option<String>,
    #[serde(default)]
    scheduled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExpiryError {
    #[error("this function was started without Azure, so it cannot rotate")]
    RotationNotAvailable,
    #[error("unknown rotation step")]
    UnknownStep,
}

/// Secrets Manager's rotation event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotationEvent {
    step: String,
    secret_id: String,
    client_request_token: String,
}

impl ExpiryHandler {
    /// The reminder thresholds and the pace of writes come from `config`.
    pub fn new(app: App, config: &ExpiryConfig) -> Self {
        Self {
            app,
            policy: config.reminders.clone(),
            pace: config.pace(),
            rotator: None,
        }
    }

    /// Handles Secrets Manager's rotation steps too.
    pub fn with_rotator(mut self, rotator: Rotator) -> Self {
        self.rotator = Some(rotator);
        self
    }

    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        let (payload, context) = event.into_parts();
        if payload.get("Step").is_some() {
            let step: RotationEvent = serde_json::from_value(payload)?;
            let rotator = self.rotator.as_ref().ok_or(ExpiryError::RotationNotAvailable)?;
            let kind = RotationStep::parse(&step.step).ok_or(ExpiryError::UnknownStep)?;
            rotator
                .step(kind, &step.secret_id, &step.client_request_token)
                .await?;
            return Ok(serde_json::json!({"step": step.step, "done": true}));
        }
        let input: ScanInput = serde_json::from_value(payload)?;
        let scan_id = input.scan_id.unwrap_or(context.request_id);
        let now = input.scheduled_at.unwrap_or_else(Utc::now);
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

pub async fn run(handler: ExpiryHandler) -> Result<(), Error> {
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        async move { handler.handle(event).await }
    }))
    .await
}
