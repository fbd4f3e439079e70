//! The business metrics, through the `metrics` facade: every one declared here (name, unit, the
//! labels it may carry), so that the template's alarms and dashboard, the EMF test and the docs are
//! held against one list. Cardinality is bounded: labels are steps, codes, credential types,
//! outcomes and thresholds — never an organization, a connection or a tenant.
//!
//! In Lambda the recorder is CloudWatch's Embedded Metric Format ([`install_emf`]): EMF JSON lines
//! on stdout, flushed after each invocation by the one Lambda loop (no `PutMetricData`, nothing in
//! the request path). The local server installs a Prometheus recorder and serves `GET /metrics`.
//! Without a recorder (unit tests), the macros do nothing.

use std::sync::OnceLock;

use metrics::Unit;

use crate::domain::{CredentialType, Step};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "AzureConnect";

/// One metric: its name, its unit, the labels (CloudWatch dimensions) it may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    pub name: &'static str,
    pub unit: Unit,
    pub labels: &'static [&'static str],
    pub help: &'static str,
    /// Every value kept (a distribution: percentiles), not a count.
    pub histogram: bool,
}

/// Every metric the code emits.
pub const METRICS: &[MetricDef] = &[
    MetricDef {
        name: "ConnectionStarted",
        unit: Unit::Count,
        labels: &["credentialType"],
        help: "a connection was started (3.1)",
        histogram: false,
    },
    MetricDef {
        name: "StepCompleted",
        unit: Unit::Count,
        labels: &["step"],
        help: "a step's input was taken",
        histogram: false,
    },
    MetricDef {
        name: "StepRejected",
        unit: Unit::Count,
        labels: &["step", "code"],
        help: "a request was refused (the problem's code)",
        histogram: false,
    },
    MetricDef {
        name: "AccountConnected",
        unit: Unit::Count,
        labels: &["credentialType"],
        help: "Connect Account linked a connection",
        histogram: false,
    },
    MetricDef {
        name: "TimeToConnect",
        unit: Unit::Seconds,
        labels: &["credentialType"],
        help: "from the connection's start to its first link",
        histogram: true,
    },
    MetricDef {
        name: "ConnectOutcome",
        unit: Unit::Count,
        labels: &["code"],
        help: "Connect Account's verdict (`connected` or the diagnosis code)",
        histogram: false,
    },
    MetricDef {
        name: "ConnectDuration",
        unit: Unit::Milliseconds,
        labels: &[],
        help: "Connect Account's validation against Azure, waits included",
        histogram: true,
    },
    MetricDef {
        name: "AzureCalls",
        unit: Unit::Count,
        labels: &["retry"],
        help: "Azure calls of Connect Account, the early checks and health checks (`retry`: `yes` for a retry of a transient failure)",
        histogram: false,
    },
    MetricDef {
        name: "PropagationWaits",
        unit: Unit::Count,
        labels: &[],
        help: "waits for a role assignment to become visible (Connect Account and health checks)",
        histogram: false,
    },
    MetricDef {
        name: "HealthChecked",
        unit: Unit::Count,
        labels: &[],
        help: "connections checked by a health pass",
        histogram: false,
    },
    MetricDef {
        name: "HealthDegraded",
        unit: Unit::Count,
        labels: &[],
        help: "connections a health pass found broken",
        histogram: false,
    },
    MetricDef {
        name: "HealthRestored",
        unit: Unit::Count,
        labels: &[],
        help: "degraded connections a health pass found fixed",
        histogram: false,
    },
    MetricDef {
        name: "HealthDeferred",
        unit: Unit::Count,
        labels: &[],
        help: "checks a health pass put off (Azure busy or out of reach)",
        histogram: false,
    },
    MetricDef {
        name: "DegradedConnections",
        unit: Unit::Count,
        labels: &[],
        help: "linked connections degraded after the health pass (a gauge over all of them)",
        histogram: false,
    },
    MetricDef {
        name: "LinkedConnections",
        unit: Unit::Count,
        labels: &[],
        help: "linked connections (connected or degraded) at the health pass (a gauge)",
        histogram: false,
    },
    MetricDef {
        name: "SecretReminders",
        unit: Unit::Count,
        labels: &["threshold"],
        help: "expiry reminders sent, by days before expiry",
        histogram: false,
    },
    MetricDef {
        name: "SecretsExpired",
        unit: Unit::Count,
        labels: &[],
        help: "client secrets found expired",
        histogram: false,
    },
    MetricDef {
        name: "Throttled",
        unit: Unit::Count,
        labels: &[],
        help: "requests refused for an organization's quota",
        histogram: false,
    },
    MetricDef {
        name: "Rotations",
        unit: Unit::Count,
        labels: &["outcome", "step"],
        help: "client secret rotations, `rotated` or `failed` at a step",
        histogram: false,
    },
    MetricDef {
        name: "HealthPasses",
        unit: Unit::Count,
        labels: &[],
        help: "health passes run (one each, whatever they found: its absence means passes stopped)",
        histogram: false,
    },
];

/// The definition of `name` (emitting an undeclared metric is a bug the tests catch).
pub fn def(name: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.name == name)
}

/// Describes every metric (unit, help) to the installed recorder.
pub fn describe() {
    for m in METRICS {
        if m.histogram {
            metrics::describe_histogram!(m.name, m.unit, m.help);
        } else {
            metrics::describe_counter!(m.name, m.unit, m.help);
        }
    }
}

pub fn connection_started(credential: CredentialType) {
    metrics::counter!("ConnectionStarted", "credentialType" => credential.as_str()).increment(1);
}

pub fn step_completed(step: Step) {
    metrics::counter!("StepCompleted", "step" => step.as_str()).increment(1);
}

pub fn step_rejected(step: Step, code: &'static str) {
    metrics::counter!("StepRejected", "step" => step.as_str(), "code" => code).increment(1);
    if code == "quota-exceeded" {
        metrics::counter!("Throttled").increment(1);
    }
}

pub fn account_connected(credential: CredentialType, since_start: std::time::Duration) {
    metrics::counter!("AccountConnected", "credentialType" => credential.as_str()).increment(1);
    metrics::histogram!("TimeToConnect", "credentialType" => credential.as_str())
        .record(since_start.as_secs_f64());
}

pub fn connect_outcome(code: &'static str, took: std::time::Duration) {
    metrics::counter!("ConnectOutcome", "code" => code).increment(1);
    metrics::histogram!("ConnectDuration").record(took.as_secs_f64() * 1000.0);
}

pub fn azure_call(retry: bool) {
    metrics::counter!("AzureCalls", "retry" => if retry { "yes" } else { "no" }).increment(1);
}

pub fn propagation_wait() {
    metrics::counter!("PropagationWaits").increment(1);
}

pub fn rotation(outcome: &'static str, step: &'static str) {
    metrics::counter!("Rotations", "outcome" => outcome, "step" => step).increment(1);
}

pub fn health_pass(checked: u64, degraded: u64, restored: u64, deferred: u64) {
    metrics::counter!("HealthPasses").increment(1);
    metrics::counter!("HealthChecked").increment(checked);
    metrics::counter!("HealthDegraded").increment(degraded);
    metrics::counter!("HealthRestored").increment(restored);
    metrics::counter!("HealthDeferred").increment(deferred);
}

pub fn linked_gauges(linked: u64, degraded: u64) {
    metrics::gauge!("LinkedConnections").set(linked as f64);
    metrics::gauge!("DegradedConnections").set(degraded as f64);
}

pub fn secret_reminder(threshold: u32) {
    metrics::counter!("SecretReminders", "threshold" => threshold.to_string()).increment(1);
}

pub fn secret_expired() {
    metrics::counter!("SecretsExpired").increment(1);
}

static EMF: OnceLock<&'static metrics_cloudwatch_embedded::Collector> = OnceLock::new();

/// Installs the EMF recorder (once per process; later calls keep the first).
pub fn install_emf() {
    if EMF.get().is_some() {
        return;
    }
    match metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .init()
    {
        Ok(collector) => {
            let _ = EMF.set(collector);
            describe();
        }
        Err(e) => tracing::warn!(error = %e, "metrics recorder not installed"),
    }
}

/// Writes what was recorded since the last flush as EMF lines to `out` (after each invocation:
/// stdout).
pub fn flush_emf(out: impl std::io::Write) {
    if let Some(collector) = EMF.get() {
        if let Err(e) = collector.flush(out) {
            tracing::warn!(error = %e, "metrics not written");
        }
    }
}
