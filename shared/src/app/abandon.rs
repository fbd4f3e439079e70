//! Drafts and failed connections left untouched for [`super::quota::Quotas::abandon_after`] are
//! deleted by the daily scan (their credentials erased, the document restorable by an operator for
//! the recovery window), each announced once: `Connection Abandoned`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::AppError;
use super::events::{Abandoned, OutcomeEvent, Subject};
use super::operations::App;
use super::request::{RequestMeta, Trigger};
use crate::domain::{Status, Step};

impl App {
    /// One sweep at `now`; how many were deleted. A retried or repeated sweep deletes (and
    /// announces) nothing twice: what is gone is not listed again.
    pub(super) async fn sweep_abandoned(
        &self,
        scan_id: &str,
        now: DateTime<Utc>,
        pace: Duration,
    ) -> Result<usize, AppError> {
        let cutoff =
            now - chrono::Duration::from_std(self.quotas.abandon_after).unwrap_or(chrono::Duration::days(30));
        let mut deleted = 0;
        let mut next = None;
        loop {
            let page = self.store.unlinked_page(next.take()).await?;
            for entry in page.entries {
                if entry.last_changed.is_some_and(|t| t >= cutoff) {
                    continue;
                }
                // The document is the truth: still unlinked, and untouched since the cutoff.
                let Some(current) = self.store.load(&entry.org, &entry.connection).await? else {
                    continue;
                };
                let c = current.connection;
                if !matches!(c.status, Status::Draft | Status::Failed) || c.updated_at >= cutoff {
                    continue;
                }
                if self.store.delete(&entry.org, &entry.connection).await? {
                    deleted += 1;
                    let key = format!("{scan_id}|abandoned|{}", c.id);
                    self.give_back_places(&key, &c.org, &[c.id]).await;
                    let ties: Vec<_> = c.ties().into_iter().collect();
                    self.release_ties(&key, &c.org, &c.id, &ties).await;
                    let req = RequestMeta {
                        request_id: format!("{scan_id}|abandoned|{}", c.id),
                        received_at: now,
                        trigger: Trigger::Schedule,
                        fingerprint: None,
                    };
                    let event = OutcomeEvent::ConnectionAbandoned(Abandoned {
                        subject: Subject::new(&req, &c.org, Step::Start, Some(c.id)),
                        account_id: c.account.clone(),
                        status: c.status,
                        last_changed_at: c.updated_at,
                    });
                    self.publish(event).await;
                }
                if !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
            }
            match page.next {
                Some(token) => next = Some(token),
                None => return Ok(deleted),
            }
        }
    }
}
