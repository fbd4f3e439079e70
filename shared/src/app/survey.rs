//! A management group's survey in the background ([`crate::domain::survey`]): Connect Account
//! (and the health pass) list a group too large to survey within one answer, record the run and
//! send its chunks to a queue; each chunk is surveyed apart and merged into the estate by
//! compare-and-swap, announced as it changes things, with the run's progress at most every few
//! seconds. A chunk that fails for good ends the run failed (Connect Account again starts
//! another); one of a run that is no longer the estate's is dropped.

use std::sync::Arc;

use chrono::Utc;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::AppError;
use super::events::{OutcomeEvent, Subject, SurveyProgress};
use super::operations::App;
use super::request::{RequestMeta, Trigger};
use crate::domain::diagnosis::Diagnosis;
pub use crate::domain::survey::SurveySettings;
use crate::domain::survey::{SurveyError, SurveyRun, SurveyStart, chunks};
use crate::domain::{
    Command, Connection, ConnectionId, ManagementGroupId, OrgId, RuleError, Status, Step, SubscriptionId,
};
use crate::queue::WorkQueue;

/// Attempts at a chunk before its run ends failed (SQS: the queue's `maxReceiveCount`; the local
/// worker the same).
pub const CHUNK_ATTEMPTS: u32 = 3;

/// A chunk of a survey, as it travels on the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyChunk {
    pub org_id: OrgId,
    pub connection_id: ConnectionId,
    pub management_group_id: ManagementGroupId,
    /// The run it belongs to; `None`: a health pass's chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<String>,
    /// A health pass's chunk: the pass that sent it (its writes are that pass's, not another's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    pub index: u32,
    /// Each subscription's id and display name, as the group's listing gave them.
    pub subscriptions: Vec<(SubscriptionId, String)>,
}

impl SurveyChunk {
    /// A message's text as a chunk.
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

/// What became of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Merged (and announced where it changed something).
    Merged,
    /// Merged before, or found nothing new.
    Unchanged,
    /// Its run is no longer the estate's, or the connection is gone or not connected.
    Dropped,
    /// It failed for good: its run ended failed.
    Failed,
}

/// The id of a run started by a request: a retried request makes the same run (its chunks are
/// merged once whichever copy comes).
fn run_id(request_id: &str) -> String {
    let digest = Sha256::digest(request_id.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl App {
    /// Surveys groups of more than `settings.at_once` subscriptions in the background, sending
    /// their chunks to `queue`. Without a queue every survey is made at once.
    pub fn with_survey_queue(mut self, queue: Arc<dyn WorkQueue>, settings: SurveySettings) -> Self {
        self.survey_queue = Some(queue);
        self.survey_settings = settings;
        self
    }

    pub fn survey_settings(&self) -> SurveySettings {
        self.survey_settings
    }

    pub(super) fn surveys_in_background(&self) -> bool {
        self.survey_queue.is_some()
    }

    /// The start of a survey in the background for Connect Account's `listing`: the run, recorded
    /// with the verdict.
    pub(super) fn survey_start(
        &self,
        req: &RequestMeta,
        listing: &[(SubscriptionId, String)],
    ) -> SurveyStart {
        let at = req.received_at;
        SurveyStart {
            at,
            listed: listing.iter().map(|(id, _)| *id).collect(),
            run: Some(SurveyRun::start(
                run_id(&req.request_id),
                listing.len(),
                self.survey_settings.chunk,
                at,
            )),
        }
    }

    /// Sends `listing`'s chunks for the run `survey` (`None`: a health pass's). A queue that
    /// refuses them ends the run failed (`survey-queue-unavailable`, retryable).
    pub(super) async fn send_chunks(
        &self,
        req: &RequestMeta,
        connection: &Connection,
        group: &ManagementGroupId,
        survey: Option<String>,
        listing: Vec<(SubscriptionId, String)>,
    ) -> Result<(), AppError> {
        let Some(queue) = &self.survey_queue else {
            return Ok(());
        };
        // In the pages' order: each chunk's merge rewrites one or two pages of the list, not all.
        let mut listing = listing;
        listing.sort_by_cached_key(|(id, _)| crate::domain::document::estate::page_key(id));
        let messages: Vec<String> = chunks(listing, self.survey_settings.chunk)
            .into_iter()
            .enumerate()
            .map(|(i, subscriptions)| SurveyChunk {
                org_id: connection.org.clone(),
                connection_id: connection.id,
                management_group_id: group.clone(),
                pass: survey.is_none().then(|| req.request_id.clone()),
                survey: survey.clone(),
                index: u32::try_from(i).unwrap_or(u32::MAX),
                subscriptions,
            })
            // Plain data into JSON cannot fail.
            .map(|c| serde_json::to_string(&c).unwrap_or_default())
            .collect();
        let count = messages.len();
        match queue.send_all(messages).await {
            Ok(()) => {
                tracing::info!(connection = %connection.id, chunks = count, "survey chunks sent");
                Ok(())
            }
            Err(e) => {
                tracing::error!(connection = %connection.id, error = %super::error::error_chain(&e), "survey chunks not sent");
                if let Some(id) = survey {
                    self.fail_run(req, connection, id, "survey-queue-unavailable", true)
                        .await;
                }
                Err(AppError::Store(crate::store::StoreError::Unavailable(Box::new(
                    e,
                ))))
            }
        }
    }

    /// A chunk from the queue: surveyed and merged. `last_attempt`: a failure now ends its run
    /// (otherwise it is returned, for the queue to deliver the chunk again).
    pub async fn survey_chunk(
        &self,
        chunk: SurveyChunk,
        last_attempt: bool,
    ) -> Result<ChunkOutcome, AppError> {
        let req = RequestMeta {
            // A write's key: the run's chunk, or the health pass's (each pass writes its own).
            request_id: match (&chunk.survey, &chunk.pass) {
                (Some(run), _) => format!("survey|{run}|{}", chunk.index),
                (None, pass) => format!("survey|health|{}|{}", pass.as_deref().unwrap_or(""), chunk.index),
            },
            received_at: Utc::now(),
            trigger: Trigger::Queue,
            fingerprint: None,
        };
        let (org, id) = (chunk.org_id.clone(), chunk.connection_id);
        let Some(current) = self.store.load(&org, &id).await? else {
            return Ok(ChunkOutcome::Dropped);
        };
        let before = current.connection.clone();
        // Cheap checks before asking Azure: the run still the estate's, the chunk not merged.
        let estate = before
            .estate
            .as_ref()
            .filter(|e| e.group == chunk.management_group_id);
        let live = matches!(before.status, Status::Connected | Status::Degraded);
        let run = estate.and_then(|e| e.survey.as_ref());
        match (&chunk.survey, estate, run) {
            _ if !live => return Ok(ChunkOutcome::Dropped),
            (_, None, _) => return Ok(ChunkOutcome::Dropped),
            (Some(id), _, Some(run)) if run.id == *id && run.is_surveying() => {
                if run.merged.contains(&chunk.index) {
                    return Ok(ChunkOutcome::Unchanged);
                }
            }
            (Some(_), _, _) => return Ok(ChunkOutcome::Dropped),
            (None, _, _) => {}
        }
        let validator = self.validator.as_ref().ok_or(AppError::AzureNotConfigured)?;
        let connection = self.revealed(before.clone()).await?;
        let inputs = connection.validation_inputs()?;
        let part = match validator.survey_part(&inputs, chunk.subscriptions).await {
            Ok(part) => part,
            Err(failure) => {
                let d = Diagnosis::of_credential(&failure, inputs.proof.credential_type());
                tracing::warn!(connection = %id, chunk = chunk.index, code = d.code, retryable = d.retryable, last_attempt, "survey chunk failed");
                if !last_attempt && d.retryable {
                    return Err(AppError::Validation(Box::new(d)));
                }
                // A health pass's chunk that failed for good: the next pass looks again.
                if let Some(run) = chunk.survey {
                    self.fail_run(&req, &before, run, d.code, d.retryable).await;
                }
                return Ok(ChunkOutcome::Failed);
            }
        };
        let command = Command::RecordSurveyChunk {
            survey: chunk.survey.clone(),
            group: chunk.management_group_id.clone(),
            index: chunk.index,
            part: Box::new(part),
        };
        // What the winning write replaced, not what was read before the survey: chunks merging
        // side by side announce only what each changed.
        let mut replaced = None;
        let (after, wrote) = match self
            .update_seen(
                &req,
                &org,
                &id,
                std::slice::from_ref(&command),
                false,
                Some(current),
                &mut replaced,
            )
            .await
        {
            Ok(done) => done,
            Err(AppError::Rule(RuleError::Survey(SurveyError::Superseded))) => {
                return Ok(ChunkOutcome::Dropped);
            }
            // A merge that cannot be made (the list would not fit: `estate-too-large`), or the
            // store failing on the last attempt: the run ends failed, nothing half-written.
            Err(e) if last_attempt || !e.is_retryable() => {
                use super::error::Rejectable as _;
                let code = e.rejection(Step::RoleAssignment).code;
                tracing::warn!(connection = %id, chunk = chunk.index, code, "survey chunk not merged");
                if let Some(run) = chunk.survey {
                    self.fail_run(&req, &before, run, code, e.is_retryable()).await;
                }
                return Ok(ChunkOutcome::Failed);
            }
            Err(e) => return Err(e),
        };
        let Some(replaced) = replaced.filter(|_| wrote) else {
            return Ok(ChunkOutcome::Unchanged);
        };
        self.announce_estate(&req, &replaced, &after).await;
        self.announce_progress(&req, &replaced, &after).await;
        Ok(ChunkOutcome::Merged)
    }

    /// Ends the run `survey` failed (best effort: a run that ended meanwhile stays as it is).
    async fn fail_run(
        &self,
        req: &RequestMeta,
        connection: &Connection,
        survey: String,
        code: &str,
        retryable: bool,
    ) {
        let command = Command::FailSurvey {
            survey,
            code: code.to_owned(),
            retryable,
        };
        let req = req.phase("failed");
        match self
            .update_from(
                &req,
                &connection.org,
                &connection.id,
                std::slice::from_ref(&command),
                false,
                None,
            )
            .await
        {
            Ok((after, true)) => self.announce_progress(&req, connection, &after).await,
            Ok((_, false)) => {}
            Err(e) => {
                tracing::error!(connection = %connection.id, error = %super::error::error_chain(&e), "the survey's failure not recorded");
            }
        }
    }

    /// `Estate Survey Progress` when the run's announcement moved (at most every few seconds, at
    /// its start and when it ends).
    pub(super) async fn announce_progress(&self, req: &RequestMeta, before: &Connection, after: &Connection) {
        let Some(estate) = &after.estate else {
            return;
        };
        let Some(run) = &estate.survey else {
            return;
        };
        let was = before.estate.as_ref().and_then(|e| e.survey.as_ref());
        if was.is_some_and(|w| w.id == run.id && w.announced_at == run.announced_at) {
            return;
        }
        let (code, retryable) = match &run.state {
            crate::domain::survey::SurveyState::Failed { code, retryable } => {
                (Some(code.clone()), Some(*retryable))
            }
            _ => (None, None),
        };
        let event = OutcomeEvent::EstateSurveyProgress(SurveyProgress {
            subject: Subject::new(req, &after.org, Step::RoleAssignment, Some(after.id)),
            account_id: after.account.clone(),
            management_group_id: estate.group.to_string(),
            state: run.state.as_str(),
            surveyed: run.surveyed,
            total: run.total,
            code,
            retryable,
        });
        self.publish(event).await;
    }

    /// The local server's worker: drains the in-process queue, a few chunks side by side (as
    /// Lambda runs several), each tried [`CHUNK_ATTEMPTS`] times a second apart.
    pub async fn drain_local(self, rx: tokio::sync::mpsc::UnboundedReceiver<String>) {
        let stream = tokio_stream_of(rx);
        stream
            .for_each_concurrent(LOCAL_WORKERS, |body| {
                let app = self.clone();
                async move { app.work_local(&body).await }
            })
            .await;
    }

    async fn work_local(&self, body: &str) {
        let chunk = match SurveyChunk::parse(body) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "a survey chunk that does not parse; dropped");
                return;
            }
        };
        for attempt in 1..=CHUNK_ATTEMPTS {
            match self.survey_chunk(chunk.clone(), attempt == CHUNK_ATTEMPTS).await {
                Ok(outcome) => {
                    tracing::debug!(?outcome, index = chunk.index, "survey chunk");
                    return;
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %super::error::error_chain(&e), "survey chunk; trying again");
                    tokio::time::sleep(std::time::Duration::from_secs(u64::from(attempt))).await;
                }
            }
        }
    }
}

/// Chunks the local worker surveys side by side.
const LOCAL_WORKERS: usize = 4;

/// The receiving end of an in-process queue as a stream.
fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> impl futures_util::Stream<Item = String> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
