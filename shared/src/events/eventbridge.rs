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

#[async_trait]
impl EventSink for EventBridgeSink {
    async fn publish(&self, event: &OutEvent) -> Result<(), PublishError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(&event.detail_type)
            .detail(event.detail.to_string())
            .build();
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
