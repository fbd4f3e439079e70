//! Outcomes go out as events. The application types them (`app::events`); this module only
//! delivers them, in EventBridge's shape: to an EventBridge bus in AWS, to a JSON-lines file in the local server, to memory
//! in tests.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

pub mod eventbridge;

/// `source` of every event we publish (console events come from [`CONSOLE_SOURCE`]).
pub const SOURCE: &str = "azure-connect";
/// `source` of the console's events that drive the wizard.
pub const CONSOLE_SOURCE: &str = "spot.console";

/// An event as delivered: EventBridge's `detail-type` and `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutEvent {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the event bus refused or failed the event")]
    Bus(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot write the events file")]
    File(#[source] std::io::Error),
}

#[async_trait]
pub trait EventSink: Send + Sync + fmt::Debug {
    async fn publish(&self, event: &OutEvent) -> Result<(), PublishError>;

    /// Publishes many events (an estate's survey can announce a thousand); each failure is
    /// returned with its event's index. One at a time unless the sink batches.
    async fn publish_all(&self, events: &[OutEvent]) -> Vec<(usize, PublishError)> {
        let mut failed = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if let Err(err) = self.publish(e).await {
                failed.push((i, err));
            }
        }
        failed
    }
}

/// Keeps events in memory; for tests and tools.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<OutEvent>>,
}

impl MemorySink {
    pub fn events(&self) -> Vec<OutEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl EventSink for MemorySink {
    async fn publish(&self, event: &OutEvent) -> Result<(), PublishError> {
        if let Ok(mut events) = self.events.lock() {
            events.push(event.clone());
        }
        Ok(())
    }
}

/// Delivers nowhere and keeps nothing (a function started without an event bus): each event's
/// `detail-type` is logged at debug level. Unlike [`MemorySink`], memory stays flat however many
/// events pass.
#[derive(Debug, Default)]
pub struct DiscardSink;

#[async_trait]
impl EventSink for DiscardSink {
    async fn publish(&self, event: &OutEvent) -> Result<(), PublishError> {
        tracing::debug!(detail_type = %event.detail_type, "no event bus: event not published");
        Ok(())
    }
}

/// Appends each event as one JSON line `{"time","source","detail-type","detail"}`.
#[derive(Debug)]
pub struct JsonLinesSink {
    file: tokio::sync::Mutex<tokio::fs::File>,
}

impl JsonLinesSink {
    pub async fn open(path: &Path) -> std::io::Result<Self> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        Ok(Self {
            file: tokio::sync::Mutex::new(file),
        })
    }
}

#[async_trait]
impl EventSink for JsonLinesSink {
    async fn publish(&self, event: &OutEvent) -> Result<(), PublishError> {
        let line = serde_json::json!({
            "time": chrono::Utc::now(),
            "source": SOURCE,
            "detail-type": event.detail_type,
            "detail": event.detail,
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let mut file = self.file.lock().await;
        file.write_all(&bytes).await.map_err(PublishError::File)?;
        file.flush().await.map_err(PublishError::File)
    }
}

/// Publishes to every sink; the first failure is reported after all were tried.
#[derive(Debug)]
pub struct FanOut(pub Vec<Arc<dyn EventSink>>);

#[async_trait]
impl EventSink for FanOut {
    async fn publish(&self, event: &OutEvent) -> Result<(), PublishError> {
        let mut first = None;
        for sink in &self.0 {
            if let Err(e) = sink.publish(event).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}
