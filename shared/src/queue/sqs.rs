//! Sending to an SQS queue: `SendMessageBatch`, at most 10 messages and 256 KiB a call (SQS's
//! documented limits for a batch, the stricter of its two size limits taken).

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::{QueueError, WorkQueue};

/// Messages of one `SendMessageBatch` call at most.
const BATCH: usize = 10;
/// Bytes of one call's messages at most (SQS: 262,144 for a batch's payload).
const BATCH_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    async fn send_batch(&self, batch: Vec<String>) -> Result<(), QueueError> {
        let entries = batch
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .map_err(|e| QueueError::Queue(Box::new(e)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| QueueError::Queue(Box::new(e)))?;
        match out.failed().first() {
            Some(f) => Err(QueueError::Queue(
                format!("message {} refused: {}", f.id(), f.code()).into(),
            )),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl WorkQueue for SqsQueue {
    async fn send_all(&self, messages: Vec<String>) -> Result<(), QueueError> {
        let mut batch: Vec<String> = Vec::new();
        let mut bytes = 0;
        for m in messages {
            if !batch.is_empty() && (batch.len() == BATCH || bytes + m.len() > BATCH_BYTES) {
                self.send_batch(std::mem::take(&mut batch)).await?;
                bytes = 0;
            }
            bytes += m.len();
            batch.push(m);
        }
        if !batch.is_empty() {
            self.send_batch(batch).await?;
        }
        Ok(())
    }
}
