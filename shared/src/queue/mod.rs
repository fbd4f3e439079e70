//! Work for later, on a queue: the chunks of a management group's survey in the background. The
//! application types the messages (`app::survey`); this module only carries their text: to an
//! SQS queue in AWS (drained by the `connect-account` function), to a task of the local server's
//! own, to memory in tests.

use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::mpsc;

pub mod sqs;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue refused or failed the message")]
    Queue(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the local queue's worker has stopped")]
    Closed,
}

#[async_trait]
pub trait WorkQueue: Send + Sync + fmt::Debug {
    /// Sends every message (in order where the queue keeps one); the first failure stops it.
    async fn send_all(&self, messages: Vec<String>) -> Result<(), QueueError>;
}

/// A queue inside the process: the local server's worker drains it (`app::survey`).
#[derive(Debug, Clone)]
pub struct LocalQueue {
    tx: mpsc::UnboundedSender<String>,
}

impl LocalQueue {
    /// The queue and the receiving end its worker drains.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }
}

#[async_trait]
impl WorkQueue for LocalQueue {
    async fn send_all(&self, messages: Vec<String>) -> Result<(), QueueError> {
        for m in messages {
            self.tx.send(m).map_err(|_| QueueError::Closed)?;
        }
        Ok(())
    }
}

/// Keeps messages in memory; for tests.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    messages: Mutex<Vec<String>>,
}

impl MemoryQueue {
    /// Takes every message sent so far.
    pub fn take(&self) -> Vec<String> {
        self.messages
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }
}

#[async_trait]
impl WorkQueue for MemoryQueue {
    async fn send_all(&self, messages: Vec<String>) -> Result<(), QueueError> {
        if let Ok(mut m) = self.messages.lock() {
            m.extend(messages);
        }
        Ok(())
    }
}
