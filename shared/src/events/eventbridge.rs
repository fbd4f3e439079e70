//! Publishing to an EventBridge bus.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{EventSink, OutEvent, PublishError, SOURCE};

#[derive(Debug, Clone)]
pub struct EventBridgeSink {
    client: Client,
    bus: String,
}

impl EventBridgeSink {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

/// Entries of one `PutEvents` call at most.
const BATCH: usize = 10;

/// One failed `PutEvents` call, shared by the events of its batch.
#[derive(Debug)]
struct ArcError<E>(std::sync::Arc<E>);

impl<E: std::error::Error> std::fmt::Display for ArcError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ArcError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

impl EventBridgeSink {
    /// One `PutEvents` call; the failed entries with their index (`first` is the batch's first).
    async fn put_batch(&self, first: usize, chunk: &[OutEvent]) -> Vec<(usize, PublishError)> {
        let entries = chunk.iter().map(|e| self.entry(e)).collect::<Vec<_>>();
        match self.client.put_events().set_entries(Some(entries)).send().await {
            Err(e) => {
                let shared = std::sync::Arc::new(e);
                (0..chunk.len())
                    .map(|i| (first + i, PublishError::Bus(Box::new(ArcError(shared.clone())))))
                    .collect()
            }
            Ok(out) => out
                .entries()
                .iter()
                .enumerate()
                .filter_map(|(i, entry)| {
                    entry.error_code().map(|code| {
                        (
                            first + i,
                            PublishError::Bus(format!("PutEvents entry failed: {code}").into()),
                        )
                    })
                })
                .collect(),
        }
    }

    fn entry(&self, event: &OutEvent) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(&event.detail_type)
            .detail(event.detail.to_string())
            .build()
    }
}

#[async_trait]
impl EventSink for EventBridgeSink {
    /// `PutEvents` takes 10 entries a call: batches of 10, 4 calls at a time.
    async fn publish_all(&self, events: &[OutEvent]) -> Vec<(usize, PublishError)> {
        use futures_util::StreamExt;
        let batches: Vec<_> = events
            .chunks(BATCH)
            .enumerate()
            .map(|(b, chunk)| self.put_batch(b * BATCH, chunk))
            .collect();
        futures_util::stream::iter(batches)
            .buffer_unordered(4)
            .flat_map(futures_util::stream::iter)
            .collect()
            .await
    }

    async fn publish(&self, event: &OutEvent) -> Result<(), PublishError> {
        let entry = self.entry(event);
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| PublishError::Bus(Box::new(e)))?;
        if out.failed_entry_count() > 0 {
            let reason = out
                .entries()
                .iter()
                .filter_map(|e| e.error_code())
                .next()
                .unwrap_or("unknown")
                .to_owned();
            return Err(PublishError::Bus(
                format!("PutEvents entry failed: {reason}").into(),
            ));
        }
        Ok(())
    }
}
