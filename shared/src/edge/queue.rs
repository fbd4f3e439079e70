//! The queue's trigger: SQS delivers a batch of survey chunks to `connect-account` (an event
//! source mapping with `ReportBatchItemFailures`); each is surveyed and merged, and only the
//! ones that failed and may succeed later are given back for SQS to deliver again.

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{Value, json};

use crate::app::App;
use crate::app::survey::{CHUNK_ATTEMPTS, SurveyChunk};

/// Whether a Lambda payload is SQS's (`Records` of `aws:sqs`).
pub fn is_sqs(payload: &Value) -> bool {
    payload
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

/// Surveys each chunk of the batch (one after another: a batch holds one by the template's
/// setting); answers the failed ones' message ids (`batchItemFailures`).
pub async fn handle(app: &App, event: SqsEvent) -> Value {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let Some(chunk) = record.body.as_deref().and_then(|b| SurveyChunk::parse(b).ok()) else {
            // Not ours to retry: a message that does not parse never will.
            tracing::error!(message = %id, "a queue message that is not a survey chunk; dropped");
            continue;
        };
        let receives: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        match app.survey_chunk(chunk, receives >= CHUNK_ATTEMPTS).await {
            Ok(outcome) => tracing::info!(message = %id, ?outcome, "survey chunk"),
            Err(e) => {
                tracing::warn!(message = %id, receives, error = %crate::app::error::error_chain(&e), "survey chunk failed; given back to the queue");
                failures.push(json!({ "itemIdentifier": id }));
            }
        }
    }
    json!({ "batchItemFailures": failures })
}
