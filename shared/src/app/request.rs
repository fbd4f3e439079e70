//! What the trigger tells about a request, and the ids derived from it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{ConnectionId, OrgId};

/// Which door a request came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Http,
    Console,
    /// The daily expiry scan.
    Schedule,
    /// Secrets Manager's rotation steps.
    Rotation,
    /// Work from a queue (a chunk of a survey in the background).
    Queue,
}

/// What the trigger tells about a request: its id (stable across retries of the same request) and
/// when it was received (so a retried request computes the same document).
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub received_at: DateTime<Utc>,
    pub trigger: Trigger,
    /// With a client's `Idempotency-Key`: what the request asked (a digest of its method, path
    /// and body), so that the key reused for another request is refused, not answered with the
    /// first one's result.
    pub fingerprint: Option<String>,
}

impl RequestMeta {
    /// What a connection remembers of this request: its id, and what it asked.
    pub fn record(&self) -> String {
        match &self.fingerprint {
            Some(f) => format!("{}~{f}", self.request_id),
            None => self.request_id.clone(),
        }
    }

    /// The same request's own phase (`{id}#{name}`): each phase is idempotent on its own.
    pub fn phase(&self, name: &str) -> Self {
        Self {
            request_id: format!("{}#{name}", self.request_id),
            ..self.clone()
        }
    }
}

/// A connection id derived from the organization and a request: a retried request finds the
/// connection its first attempt made instead of making a second one.
pub fn derive_connection_id(org: &OrgId, request_id: &str) -> ConnectionId {
    const NS: uuid::Uuid = uuid::Uuid::from_u128(0x2f0c_7a51_8e3d_4b6a_9c1f_0d2e_3b4a_5c6d);
    ConnectionId::from_uuid(uuid::Uuid::new_v5(&NS, format!("{org}|{request_id}").as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_depend_on_org_and_request() {
        let a = OrgId::parse("a").unwrap();
        let b = OrgId::parse("b").unwrap();
        assert_eq!(derive_connection_id(&a, "r1"), derive_connection_id(&a, "r1"));
        assert_ne!(derive_connection_id(&a, "r1"), derive_connection_id(&a, "r2"));
        assert_ne!(derive_connection_id(&a, "r1"), derive_connection_id(&b, "r1"));
    }
}
