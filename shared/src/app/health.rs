//! The health check: every linked connection is validated again once per period, at its own
//! slot in the period ([`crate::domain::health::slot`]), as Connect Account validates it. A
//! definite failure degrades it (`Connection Degraded`, once), a healthy check of a degraded one
//! restores it (`Connection Restored`, once), a transient failure changes nothing; a healthy
//! connection that stays healthy costs no write.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::AppError;
use super::events::{HealthChanged, OutcomeEvent, RoleOutdated, RotationUnavailable, Subject};
use super::operations::App;
use super::request::{RequestMeta, Trigger};
use crate::domain::diagnosis::{Diagnosis, ValidationFailure};
use crate::domain::health::{self, HealthVerdict};
use crate::domain::{Command, Connection, FailureRecord, OrgId, Status, Step, TenantId};
use crate::store::LinkedEntry;

/// The job name of health-check runs in [`crate::store::ConnectionStore::claim_run`].
pub const JOB: &str = "health";

/// Which connections one pass checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Those whose slot falls in `(from, to]`: a scheduled run covers the time since the previous one.
    Slots { from: DateTime<Utc>, to: DateTime<Utc> },
    /// Every linked connection, whatever its slot (`{"force": true}`).
    All,
}

/// How often and how fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSchedule {
    /// Each connection is checked once per period.
    pub period: Duration,
    /// Between two checks (the inverse of the connections per second).
    pub pace: Duration,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// Validated against Azure.
    pub checked: usize,
    /// Moved to `degraded` (or degraded differently).
    pub degraded: usize,
    /// Back to `connected`.
    pub restored: usize,
    /// Checked, and as they were.
    pub unchanged: usize,
    /// Not due in this window.
    pub skipped: usize,
    /// Not checked now (Azure or the store busy or down, the tenant throttling): next period.
    pub deferred: usize,
    /// The run was already claimed (a retried or duplicate delivery): nothing done.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub already_run: bool,
}

impl App {
    /// One pass. `run` names it: a scheduled run claims `run` once in the store, so a retried or
    /// duplicate delivery checks nothing again; a forced pass (`Window::All`) claims nothing.
    pub async fn health_pass(
        &self,
        run: &str,
        now: DateTime<Utc>,
        window: Window,
        schedule: HealthSchedule,
    ) -> Result<HealthReport, AppError> {
        let mut report = HealthReport::default();
        if let Window::Slots { .. } = window {
            if !self.store.claim_run(JOB, run).await? {
                report.already_run = true;
                tracing::info!(run, "health check: run already claimed; nothing to do");
                return Ok(report);
            }
        }
        // Tenants that throttled or failed transiently in this pass: their other connections wait.
        let mut resting: HashSet<TenantId> = HashSet::new();
        let mut next = None;
        // Every linked connection is listed each pass: the gauges of all of them.
        let (mut linked, mut listed_degraded) = (0u64, 0u64);
        loop {
            let page = self.store.linked_page(next.take()).await?;
            for entry in page.entries {
                linked += 1;
                listed_degraded += u64::from(entry.degraded);
                let due = match window {
                    Window::All => true,
                    Window::Slots { from, to } => {
                        health::due_in(&entry.connection, schedule.period, from, to)
                    }
                };
                if !due {
                    report.skipped += 1;
                    continue;
                }
                match self.check(&entry, now, schedule, &mut resting).await {
                    Ok(Checked::Changed(Status::Degraded)) => report.degraded += 1,
                    Ok(Checked::Changed(_)) => report.restored += 1,
                    Ok(Checked::Unchanged) => report.unchanged += 1,
                    Ok(Checked::Deferred) => report.deferred += 1,
                    Ok(Checked::Gone) => report.skipped += 1,
                    Err(e) => {
                        report.deferred += 1;
                        tracing::warn!(connection = %entry.connection, error = %super::error::error_chain(&e), "health check deferred");
                    }
                }
                // Paced: Azure's and Secrets Manager's quotas are shared with everything else.
                if !schedule.pace.is_zero() {
                    tokio::time::sleep(schedule.pace).await;
                }
            }
            match page.next {
                Some(token) => next = Some(token),
                None => break,
            }
        }
        report.checked = report.degraded + report.restored + report.unchanged;
        crate::metrics::health_pass(
            report.checked as u64,
            report.degraded as u64,
            report.restored as u64,
            report.deferred as u64,
        );
        let degraded_now = (listed_degraded + report.degraded as u64).saturating_sub(report.restored as u64);
        crate::metrics::linked_gauges(linked, degraded_now);
        tracing::info!(run, ?report, "health check done");
        Ok(report)
    }

    async fn check(
        &self,
        entry: &LinkedEntry,
        now: DateTime<Utc>,
        schedule: HealthSchedule,
        resting: &mut HashSet<TenantId>,
    ) -> Result<Checked, AppError> {
        let Some(current) = self.store.load(&entry.org, &entry.connection).await? else {
            return Ok(Checked::Gone);
        };
        if !matches!(current.connection.status, Status::Connected | Status::Degraded) {
            return Ok(Checked::Gone);
        }
        if let Some(app) = &current.connection.app_registration {
            if resting.contains(&app.tenant) {
                return Ok(Checked::Deferred);
            }
        }
        let connection = self.revealed(current.connection.clone()).await?;
        let inputs = connection.validation_inputs()?;
        if resting.contains(&inputs.tenant) {
            return Ok(Checked::Deferred);
        }
        let validator = self.validator.as_ref().ok_or(AppError::AzureNotConfigured)?;
        let (mut graph, mut role_version, mut outdated, mut over) = (None, None, Vec::new(), None);
        let mut survey = None;
        // A group too large for one pass: its chunks go to the queue (what left the group is
        // marked lost now), or it is surveyed here.
        let mut chunks = None;
        let verdict = match validator.validate(&inputs).await {
            Ok(v) => {
                graph = v.graph.map(|g| g.manages_credentials);
                role_version = Some(v.role_version);
                outdated = v.missing_recommended;
                over = Some(v.over_privilege);
                survey = v.survey;
                match v.listing {
                    Some(listing) if self.surveys_in_background() => {
                        survey = connection.estate.as_ref().map(|e| e.left_out_of(&listing, now));
                        chunks = Some(listing);
                    }
                    Some(listing) => match Box::pin(validator.survey_part(&inputs, listing)).await {
                        Ok(mut whole) => {
                            whole.looked_at = None;
                            survey = Some(whole);
                        }
                        Err(failure) => {
                            tracing::info!(connection = %entry.connection, ?failure, "health check: the survey failed; nothing changed");
                            resting.insert(inputs.tenant.clone());
                            return Ok(Checked::Deferred);
                        }
                    },
                    None => {}
                }
                HealthVerdict::Healthy
            }
            Err(failure) => {
                let d = Diagnosis::of_credential(&failure, inputs.proof.credential_type());
                // Right after an assignment "no role visible" may be propagation; on a connection
                // that was linked with its role, the role was taken away.
                let removed = matches!(
                    failure,
                    ValidationFailure::NotPropagated | ValidationFailure::GroupRoleNotPropagated
                );
                if d.retryable && !removed {
                    // Throttling, an outage, a time-out: no verdict; this tenant rests until the
                    // next period.
                    tracing::info!(connection = %entry.connection, code = d.code, "health check: transient failure; nothing changed");
                    resting.insert(inputs.tenant.clone());
                    return Ok(Checked::Deferred);
                }
                HealthVerdict::Broken(FailureRecord {
                    step: d.step,
                    code: d.code.to_owned(),
                    retryable: false,
                    missing_actions: d.missing_actions.clone(),
                })
            }
        };
        let req = RequestMeta {
            // One key per connection, period, verdict and the version the check started from:
            // overlapping runs that read the same state write (and announce) a transition once,
            // and a change of verdict after any other write (a repair, a restore, another break
            // within the same period) is a write of its own.
            request_id: format!(
                "health|{}|{}|{}|{:016x}",
                health::period_index(now, schedule.period),
                entry.connection,
                verdict_key(&verdict, graph, role_version, &outdated, over.as_ref()),
                health::stable_hash(current.version.0.as_bytes()),
            ) + &super::estate::survey_key(survey.as_ref(), connection.estate.as_ref()),
            received_at: now,
            trigger: Trigger::Schedule,
            fingerprint: None,
        };
        let before = connection.status;
        let command = Command::RecordHealth {
            inputs: inputs.fingerprint.clone(),
            verdict,
            graph_manages_credentials: graph,
            role_version,
            outdated,
            over_privilege: over,
            survey,
        };
        // From the version read above: a healthy check costs that one read.
        let (after, wrote) = self
            .update_from(
                &req,
                &entry.org,
                &entry.connection,
                std::slice::from_ref(&command),
                false,
                Some(current),
            )
            .await?;
        if let (Some(listing), Some(estate)) = (chunks, &after.estate) {
            // A health pass's chunks record only what they find changed.
            self.send_chunks(&req, &after, &estate.group, None, listing)
                .await?;
        }
        if !wrote {
            return Ok(Checked::Unchanged);
        }
        let could_rotate = connection
            .validation
            .as_ref()
            .and_then(|v| v.graph_manages_credentials);
        let can_rotate = after
            .validation
            .as_ref()
            .and_then(|v| v.graph_manages_credentials);
        self.announce_over_privilege(&req, &connection, &after).await;
        self.announce_estate(&req, &connection, &after).await;
        if after.rotation.is_some() && could_rotate != Some(false) && can_rotate == Some(false) {
            self.publish(rotation_unavailable(&req, &entry.org, &after)).await;
        }
        // Spot's role has a newer version the customer's role lacks: recommended actions (a
        // warning, once per change), or required ones (the connection is degraded for them).
        let was = connection
            .health
            .as_ref()
            .map(|h| h.outdated.clone())
            .unwrap_or_default();
        let now_outdated = after
            .health
            .as_ref()
            .map(|h| h.outdated.clone())
            .unwrap_or_default();
        if !now_outdated.is_empty() && now_outdated != was {
            self.publish(role_outdated(
                &req,
                &entry.org,
                &after,
                validator,
                now_outdated,
                false,
            ))
            .await;
        }
        if let Some(missing) = newly_required(&connection, &after, validator) {
            self.publish(role_outdated(&req, &entry.org, &after, validator, missing, true))
                .await;
        }
        if after.status == before {
            // Only what Graph or the role versions say changed.
            return Ok(Checked::Unchanged);
        }
        self.publish(health_event(&req, &entry.org, &after, before)).await;
        Ok(Checked::Changed(after.status))
    }
}

enum Checked {
    Changed(Status),
    Unchanged,
    Deferred,
    /// Deleted, unlinked or expired since it was listed.
    Gone,
}

/// Names everything a check may write: the verdict, Graph's answer, the role version and the
/// recommended actions missing. The same findings in one period get the same key (written once);
/// a different finding (the customer granted the actions meanwhile) is a write of its own.
fn verdict_key(
    v: &HealthVerdict,
    graph: Option<bool>,
    role_version: Option<u32>,
    outdated: &[String],
    over: Option<&Option<crate::domain::privilege::OverPrivilege>>,
) -> String {
    let verdict = match v {
        HealthVerdict::Healthy => "healthy".to_owned(),
        HealthVerdict::Broken(d) => format!("{}:{}:{}", d.step, d.code, d.missing_actions.join(",")),
    };
    let facts = format!(
        "{verdict}|{graph:?}|{role_version:?}|{}|{over:?}",
        outdated.join(",")
    );
    // Short and stable: the key is kept among the connection's recent requests.
    format!("{:016x}", health::stable_hash(facts.as_bytes()))
}

/// The actions a degradation is about, when they are exactly what role versions newer than the one
/// the connection was validated against added: the role is outdated, not broken.
fn newly_required(
    before: &Connection,
    after: &Connection,
    validator: &crate::validation::Validator,
) -> Option<Vec<String>> {
    if before.status == Status::Degraded || after.status != Status::Degraded {
        return None;
    }
    let d = after.health.as_ref()?.diagnosis.as_ref()?;
    let validated = before.validation.as_ref().map_or(1, |v| v.role_version);
    let roles = validator.roles();
    let newer = |a: &String| roles.version_of(a).is_some_and(|v| v.version > validated);
    (d.code == "missing-actions" && !d.missing_actions.is_empty() && d.missing_actions.iter().all(newer))
        .then(|| d.missing_actions.clone())
}

/// `Custom Role Outdated`: exactly the actions the customer's role lacks of newer versions.
fn role_outdated(
    req: &RequestMeta,
    org: &OrgId,
    c: &Connection,
    validator: &crate::validation::Validator,
    added: Vec<String>,
    required: bool,
) -> OutcomeEvent {
    OutcomeEvent::CustomRoleOutdated(RoleOutdated {
        subject: Subject::new(req, org, Step::CustomRole, Some(c.id)),
        account_id: c.account.clone(),
        validated_version: c.validation.as_ref().map_or(1, |v| v.role_version),
        latest_version: validator.roles().latest(),
        added_actions: added,
        required,
    })
}

/// Rotation is on, and the app can no longer manage its own credentials in Graph: said now, before
/// the secret expires, not when the rotation fails.
fn rotation_unavailable(req: &RequestMeta, org: &OrgId, c: &Connection) -> OutcomeEvent {
    OutcomeEvent::RotationUnavailable(RotationUnavailable {
        subject: Subject::new(req, org, Step::ClientSecret, Some(c.id)),
        account_id: c.account.clone(),
        expires_at: super::events::secret_expiry(c),
        needs: "Application.ReadWrite.OwnedBy (with the app as its own owner) or Application.ReadWrite.All",
    })
}

/// `Connection Degraded` or `Connection Restored`.
fn health_event(req: &RequestMeta, org: &OrgId, c: &Connection, before: Status) -> OutcomeEvent {
    let diagnosis = c.health.as_ref().and_then(|h| h.diagnosis.clone());
    let step = diagnosis.as_ref().map_or(Step::RoleAssignment, |d| d.step);
    let changed = HealthChanged::of(Subject::new(req, org, step, Some(c.id)), c, before, diagnosis);
    if c.status == Status::Degraded {
        OutcomeEvent::ConnectionDegraded(changed)
    } else {
        OutcomeEvent::ConnectionRestored(changed)
    }
}
