//! The quotas applied ([`super::quota`]): a validation needs one of its organization's places of
//! the minute (a start's place among the unlinked connections: [`super::organization`]).

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};

use super::error::{AppError, Quota};
use super::operations::App;
use crate::domain::OrgId;

/// The job name of validation claims in [`crate::store::ConnectionStore::claim_run`].
const VALIDATION_JOB: &str = "validate";

impl App {
    /// Before a validation against Azure: one of the organization's places of this minute.
    pub(super) async fn admit_validation(&self, org: &OrgId, now: DateTime<Utc>) -> Result<(), AppError> {
        let limit = self.quotas.validations_per_minute;
        let minute = now.timestamp().div_euclid(60);
        let mut n = self.claim_hints.start(org, minute);
        while n < limit {
            let run = format!("{org}+{minute}+{n}");
            if self.store.claim_run(VALIDATION_JOB, &run).await? {
                self.claim_hints.set(org, minute, n + 1);
                return Ok(());
            }
            n += 1;
        }
        self.claim_hints.set(org, minute, limit);
        let left = 60 - u64::from(now.second());
        Err(AppError::QuotaExceeded {
            quota: Quota::ValidationsPerMinute(limit),
            retry_after: Some(Duration::from_secs(left.max(1))),
        })
    }
}
