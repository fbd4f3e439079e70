//! The daily expiry scan: pages through the connections by tag (names and tags only), and for
//! each one that is due sends the reminder of its threshold once, marks it expired, or starts its
//! rotation, each by compare-and-swap.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::{self, AppError};
use super::events::OutcomeEvent;
use super::events::{Expired, Expiring, Subject, secret_expiry};
use super::operations::App;
use super::request::{RequestMeta, Trigger};
use crate::domain::expiry::{self, Due, ReminderPolicy};
use crate::domain::{Command, Connection, OrgId, Step};
use crate::store::ScanEntry;

/// What one expiry scan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanReport {
    pub pages: usize,
    pub listed: usize,
    pub reminded: usize,
    pub expired: usize,
    pub rotations: usize,
    pub failed: usize,
    /// Drafts and failed connections deleted for being left untouched.
    pub abandoned: usize,
}

impl App {
    /// One scan. A duplicate delivery of the same run (`scan_id`) or a re-run sends nothing twice.
    /// Writes are paced (`pace` between due connections) to stay well inside Secrets Manager's
    /// 50 writes/s account-wide quota.
    pub async fn scan_expiry(
        &self,
        scan_id: &str,
        now: DateTime<Utc>,
        policy: &ReminderPolicy,
        pace: Duration,
        rotation_lambda: Option<&str>,
    ) -> Result<ScanReport, AppError> {
        let today = now.date_naive();
        let mut report = ScanReport::default();
        let mut next = None;
        loop {
            let page = self.store.scan_page(next.take()).await?;
            report.pages += 1;
            for entry in page.entries {
                report.listed += 1;
                let Some(due) = expiry::due(policy, &entry.tags, today) else {
                    continue;
                };
                let req = RequestMeta {
                    request_id: format!("{scan_id}|{}|{due:?}", entry.connection),
                    received_at: now,
                    trigger: Trigger::Schedule,
                    fingerprint: None,
                };
                match self.apply_due(&req, &entry, due, rotation_lambda).await {
                    Ok(true) => match due {
                        Due::Remind { .. } => report.reminded += 1,
                        Due::Expire => report.expired += 1,
                        Due::Rotate => report.rotations += 1,
                    },
                    Ok(false) => {}
                    // Throttled or down: stop, so that the scheduled run fails and is retried.
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(e) => {
                        report.failed += 1;
                        tracing::error!(
                            connection = %entry.connection,
                            error = %error::error_chain(&e),
                            "expiry scan: connection skipped"
                        );
                    }
                }
                if !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
            }
            match page.next {
                Some(token) => next = Some(token),
                None => break,
            }
        }
        report.abandoned = self.sweep_abandoned(scan_id, now, pace).await?;
        Ok(report)
    }

    /// Does the due work; `true` if this call did it (and announced it).
    async fn apply_due(
        &self,
        req: &RequestMeta,
        entry: &ScanEntry,
        due: Due,
        rotation_lambda: Option<&str>,
    ) -> Result<bool, AppError> {
        let command = match due {
            Due::Remind { threshold } => Command::RecordReminder { threshold },
            Due::Expire => Command::MarkExpired,
            Due::Rotate => {
                // Secrets Manager takes it from here: the four steps come to `secret-expiry`.
                return match (&self.rotation, rotation_lambda) {
                    (Some(store), Some(arn)) => {
                        store.start_rotation(&entry.org, &entry.connection, arn).await?;
                        Ok(true)
                    }
                    _ => Ok(false),
                };
            }
        };
        let (connection, wrote) = self
            .update_all(
                req,
                &entry.org,
                &entry.connection,
                std::slice::from_ref(&command),
                false,
            )
            .await?;
        if wrote {
            match due {
                Due::Remind { threshold } => crate::metrics::secret_reminder(threshold),
                Due::Expire | Due::Rotate => crate::metrics::secret_expired(),
            }
            self.publish(expiry_event(req, &entry.org, &connection, due))
                .await;
        }
        Ok(wrote)
    }
}

/// A reminder, or the secret has expired.
fn expiry_event(req: &RequestMeta, org: &OrgId, c: &Connection, due: Due) -> OutcomeEvent {
    let subject = Subject::new(req, org, Step::ClientSecret, Some(c.id));
    let expires_at = secret_expiry(c);
    match due {
        Due::Remind { threshold } => OutcomeEvent::ClientSecretExpiring(Expiring {
            subject,
            account_id: c.account.clone(),
            expires_at,
            threshold,
            days_left: expires_at.map(|e| (e - req.received_at).num_days()),
        }),
        Due::Expire | Due::Rotate => OutcomeEvent::ClientSecretExpired(Expired {
            subject,
            account_id: c.account.clone(),
            expires_at,
        }),
    }
}
