//! A management group's survey in the background: Connect Account (or the health pass) lists the
//! group's subscriptions, and when there are more than answer within API Gateway's 29 s, the
//! survey is cut into chunks (surveyed apart, each merged into the estate by compare-and-swap as
//! it finishes). The run's state is on the estate: how many subscriptions were surveyed of how
//! many, which chunks were merged (a chunk delivered twice merges once), and how it ended.
//!
//! Every merge is a whole write of its own: the list is never half-written, a failed chunk leaves
//! the subscriptions it held as the survey before found them, and a link is never dropped by a
//! survey (a subscription not seen is marked lost, keeping its account).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::ids::SubscriptionId;

/// Subscriptions surveyed in one chunk: at two ARM reads each, 32 at a time and ~100 ms a read,
/// ~2 s of work, far from a function's time-out, and ~35 KB of message.
pub const SURVEY_CHUNK: usize = 500;

/// Progress is announced at most this often (and always when the survey ends).
pub const PROGRESS_EVERY_SECONDS: i64 = 5;

/// When a group is surveyed in the background, and in what pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SurveySettings {
    /// Groups of more subscriptions than this are surveyed in the background. 2,000 at ARM's
    /// ~100 ms is ~9 s at once, well within API Gateway's 29 s.
    pub at_once: usize,
    /// Subscriptions in one chunk ([`SURVEY_CHUNK`]).
    pub chunk: usize,
}

impl Default for SurveySettings {
    fn default() -> Self {
        Self {
            at_once: 2_000,
            chunk: SURVEY_CHUNK,
        }
    }
}

/// How a background survey stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SurveyState {
    /// Chunks are being surveyed; the estate holds what the merged ones found.
    Surveying,
    /// Every chunk merged.
    Done,
    /// A chunk failed for good (its code and whether trying again may help): Connect Account
    /// again starts another survey.
    Failed { code: String, retryable: bool },
}

impl SurveyState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Surveying => "surveying",
            Self::Done => "done",
            Self::Failed { .. } => "failed",
        }
    }
}

/// A background survey of an estate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyRun {
    /// Names this run: chunks of an earlier run (a Connect Account since) are dropped.
    pub id: String,
    pub state: SurveyState,
    /// Subscriptions listed under the group when the run started.
    pub total: u32,
    /// Subscriptions of the chunks merged so far.
    pub surveyed: u32,
    /// Chunks the listing was cut into.
    pub chunks: u32,
    /// The chunks merged (their indexes, in order).
    pub merged: BTreeSet<u32>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When progress was last announced.
    pub announced_at: Option<DateTime<Utc>>,
}

impl SurveyRun {
    pub fn start(id: String, total: usize, chunk: usize, at: DateTime<Utc>) -> Self {
        let chunks = total.div_ceil(chunk.max(1));
        Self {
            id,
            state: SurveyState::Surveying,
            total: u32::try_from(total).unwrap_or(u32::MAX),
            surveyed: 0,
            chunks: u32::try_from(chunks).unwrap_or(u32::MAX),
            merged: BTreeSet::new(),
            started_at: at,
            finished_at: None,
            announced_at: Some(at),
        }
    }

    pub fn is_surveying(&self) -> bool {
        self.state == SurveyState::Surveying
    }

    /// How the run stands at `now`: one still surveying an hour after it started has lost its
    /// chunks (each takes seconds; a chunk that fails ends the run itself) and stands failed,
    /// `survey-timed-out`, retryable: Connect Account again starts another.
    pub fn state_at(&self, now: DateTime<Utc>) -> SurveyState {
        if self.is_surveying() && now - self.started_at > chrono::Duration::minutes(SURVEY_TIMEOUT_MINUTES) {
            return SurveyState::Failed {
                code: "survey-timed-out".to_owned(),
                retryable: true,
            };
        }
        self.state.clone()
    }
}

/// Minutes after which a run still surveying stands failed ([`SurveyRun::state_at`]).
pub const SURVEY_TIMEOUT_MINUTES: i64 = 60;

/// Why a chunk or a failure was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SurveyError {
    /// Another survey started since (or the estate is another group's, or none): the chunk
    /// belongs to nothing any more and is dropped.
    #[error("the survey this chunk belongs to is no longer the estate's")]
    Superseded,
}

/// A listing cut into chunks of at most `size`, in order.
pub fn chunks<T>(listing: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let size = size.max(1);
    let mut out = Vec::with_capacity(listing.len().div_ceil(size));
    let mut it = listing.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(size).collect());
    }
    out
}

/// A survey in the background begins: the group's listing, and the run recorded on the estate
/// (`None` for a health pass, which records nothing but what changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyStart {
    pub at: DateTime<Utc>,
    pub listed: BTreeSet<SubscriptionId>,
    pub run: Option<SurveyRun>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::estate::{Estate, Sighting, SubscriptionState, SubscriptionStatus, Survey};
    use crate::domain::ids::{AccountId, ManagementGroupId};

    fn sub(n: u16) -> SubscriptionId {
        SubscriptionId::parse(&format!("00000000-0000-4000-8000-{n:012}")).unwrap()
    }

    fn seen(n: u16) -> Sighting {
        Sighting {
            subscription: sub(n),
            display_name: format!("sub {n}"),
            state: SubscriptionState::Enabled,
            missing_actions: Vec::new(),
            over_privilege: None,
        }
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn own() -> AccountId {
        AccountId::parse("act-00000001").unwrap()
    }

    fn part(t: i64, ids: std::ops::Range<u16>, missing: &[u16]) -> Survey {
        Survey::part(
            at(t),
            ids.clone().filter(|n| !missing.contains(n)).map(seen).collect(),
            ids.map(sub).collect(),
        )
    }

    #[test]
    fn chunks_merge_once_each_and_the_last_ends_the_run() {
        let mut e = Estate::new(ManagementGroupId::parse("g").unwrap(), None, at(0));
        e.record(&Survey::whole(at(0), (0..3).map(seen).collect()), &own());
        e.link(sub(2), &AccountId::parse("act-00000002").unwrap(), at(0))
            .unwrap();
        // Listed now: 1..7 (0 moved out of the group).
        let listed: BTreeSet<_> = (1..7).map(sub).collect();
        let start = |run| SurveyStart {
            at: at(1),
            listed: listed.clone(),
            run,
        };
        assert!(e.start_survey(&start(None), &own()), "0 is lost: a change");
        assert!(
            !e.start_survey(&start(None), &own()),
            "a health pass's start again: nothing"
        );
        assert!(e.start_survey(&start(Some(SurveyRun::start("r1".into(), 6, 3, at(1)))), &own()));
        assert_eq!(e.entries[&sub(0)].status(), SubscriptionStatus::Lost);
        assert_eq!(e.entries[&sub(2)].status(), SubscriptionStatus::Linked);
        let run = e.survey.clone().unwrap();
        assert_eq!((run.chunks, run.surveyed, run.total), (2, 0, 6));

        // The second chunk first, 6 not readable any more.
        assert_eq!(
            e.record_chunk(Some("r1"), 1, &part(2, 4..7, &[6]), &own()),
            Ok(true)
        );
        assert_eq!(e.entries.len(), 5, "4 and 5 discovered, 6 never seen");
        assert_eq!(e.survey.as_ref().unwrap().surveyed, 3);
        assert!(e.survey.as_ref().unwrap().is_surveying());
        // Delivered again: nothing.
        assert_eq!(
            e.record_chunk(Some("r1"), 1, &part(3, 4..7, &[]), &own()),
            Ok(false)
        );
        assert!(!e.entries.contains_key(&sub(6)));
        // An earlier run's chunk: dropped.
        assert_eq!(
            e.record_chunk(Some("r0"), 0, &part(3, 1..4, &[]), &own()),
            Err(SurveyError::Superseded)
        );
        // The last chunk, 2 (linked) not readable: lost, its account kept.
        assert_eq!(
            e.record_chunk(Some("r1"), 0, &part(9, 1..4, &[2]), &own()),
            Ok(true)
        );
        let run = e.survey.clone().unwrap();
        assert_eq!(run.state, SurveyState::Done);
        assert_eq!(
            (run.surveyed, run.finished_at, run.announced_at),
            (6, Some(at(9)), Some(at(9)))
        );
        assert_eq!(e.entries[&sub(2)].status(), SubscriptionStatus::Lost);
        assert!(e.entries[&sub(2)].account.is_some());
        assert_eq!(e.surveyed_at, Some(at(9)));
        // Ended: a late failure changes nothing.
        assert!(!e.fail_survey("r1", "azure-unavailable", true, at(10)));
    }

    #[test]
    fn progress_is_announced_at_most_every_few_seconds_and_a_failure_ends_the_run() {
        let mut e = Estate::new(ManagementGroupId::parse("g").unwrap(), None, at(0));
        let start = SurveyStart {
            at: at(0),
            listed: (0..40).map(sub).collect(),
            run: Some(SurveyRun::start("r".into(), 40, 10, at(0))),
        };
        e.start_survey(&start, &own());
        e.record_chunk(Some("r"), 0, &part(2, 0..10, &[]), &own())
            .unwrap();
        assert_eq!(e.survey.as_ref().unwrap().announced_at, Some(at(0)));
        e.record_chunk(Some("r"), 1, &part(6, 10..20, &[]), &own())
            .unwrap();
        assert_eq!(e.survey.as_ref().unwrap().announced_at, Some(at(6)));
        assert!(e.fail_survey("r", "azure-throttled", true, at(7)));
        let run = e.survey.clone().unwrap();
        assert_eq!(run.state.as_str(), "failed");
        assert_eq!(run.surveyed, 20);
        assert_eq!(e.entries.len(), 20, "what the merged chunks found stays");
        assert_eq!(
            e.record_chunk(Some("r"), 2, &part(8, 20..30, &[]), &own()),
            Err(SurveyError::Superseded),
            "a failed run takes no more chunks"
        );
    }

    #[test]
    fn a_run_that_never_ends_stands_failed_after_an_hour() {
        let run = SurveyRun::start("r".into(), 10, 5, at(0));
        assert_eq!(run.state_at(at(3_600)), SurveyState::Surveying);
        assert_eq!(
            run.state_at(at(3_601)),
            SurveyState::Failed {
                code: "survey-timed-out".into(),
                retryable: true
            }
        );
    }

    #[test]
    fn a_listing_is_cut_in_order() {
        let cut = chunks((0..7).collect::<Vec<_>>(), 3);
        assert_eq!(cut, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        assert!(chunks(Vec::<u8>::new(), 3).is_empty());
    }
}
