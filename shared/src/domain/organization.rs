//! The organization's index: a rule that spans an organization's connections is held in one
//! document of its own, written by compare-and-swap like a connection, never by listing and then
//! writing (Secrets Manager's ListSecrets may not show the last minutes' changes: "ListSecrets is
//! eventually consistent", Secrets Manager API reference).
//!
//! It holds the places of the organization's unlinked connections (the quota of
//! [`crate::app::quota::Quotas::unlinked`]): a start reserves its connection's place here
//! *before* the connection is written, so parallel starts are admitted one place at a time and
//! never beyond the limit. A place is given back when its connection is linked or deleted; a
//! reservation whose connection never appeared (a start that died between the two writes), or
//! whose connection has since been linked without the index hearing of it, is settled the next
//! time the quota is full and the reservation is older than the grace a start needs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ConnectionId, OrgId};

/// The document's schema (a field of its own, as connections have).
const SCHEMA: u32 = 1;

/// The index of one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgIndex {
    pub org: OrgId,
    /// Connections holding a place among the unlinked ones, with when the place was taken.
    pub unlinked: BTreeMap<ConnectionId, DateTime<Utc>>,
}

/// What [`OrgIndex::reserve`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The connection holds a place already (a retried start): nothing to write.
    Held,
    /// A place taken: write the index.
    Made,
    /// Every place is taken.
    Full,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("stored organization index is not valid")]
    Invalid(#[source] serde_json::Error),
    #[error("stored organization index has schema {0}, this code reads {SCHEMA}")]
    UnknownSchema(u32),
    #[error("stored organization index is of another organization")]
    OtherOrganization,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    schema: u32,
    org_id: OrgId,
    unlinked: BTreeMap<ConnectionId, DateTime<Utc>>,
}

impl OrgIndex {
    pub fn new(org: OrgId) -> Self {
        Self {
            org,
            unlinked: BTreeMap::new(),
        }
    }

    /// Takes a place for `connection` among at most `limit`.
    pub fn reserve(&mut self, connection: ConnectionId, now: DateTime<Utc>, limit: usize) -> Reservation {
        if self.unlinked.contains_key(&connection) {
            return Reservation::Held;
        }
        if self.unlinked.len() >= limit {
            return Reservation::Full;
        }
        self.unlinked.insert(connection, now);
        Reservation::Made
    }

    /// Gives back the places of `connections`; `true` when one was held.
    pub fn release<'a>(&mut self, connections: impl IntoIterator<Item = &'a ConnectionId>) -> bool {
        let mut changed = false;
        for c in connections {
            changed |= self.unlinked.remove(c).is_some();
        }
        changed
    }

    /// The places taken before `now - grace`: those whose connection may be looked at to settle
    /// them (a younger one may belong to a start still writing its connection).
    pub fn settleable(&self, now: DateTime<Utc>, grace: chrono::Duration) -> Vec<ConnectionId> {
        self.unlinked
            .iter()
            .filter(|(_, at)| **at + grace <= now)
            .map(|(c, _)| *c)
            .collect()
    }

    pub fn encode(&self) -> String {
        let doc = Doc {
            schema: SCHEMA,
            org_id: self.org.clone(),
            unlinked: self.unlinked.clone(),
        };
        // Plain data of our own types: serializing it cannot fail.
        serde_json::to_string(&doc).unwrap_or_default()
    }

    /// The index of `org` from its stored text.
    pub fn decode(org: &OrgId, text: &str) -> Result<Self, IndexError> {
        let doc: Doc = serde_json::from_str(text).map_err(IndexError::Invalid)?;
        if doc.schema != SCHEMA {
            return Err(IndexError::UnknownSchema(doc.schema));
        }
        if &doc.org_id != org {
            return Err(IndexError::OtherOrganization);
        }
        Ok(Self {
            org: doc.org_id,
            unlinked: doc.unlinked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> ConnectionId {
        ConnectionId::parse(&uuid::Uuid::from_u128(n).to_string()).unwrap()
    }

    #[test]
    fn places_are_taken_up_to_the_limit_once_each_and_given_back() {
        let org = OrgId::parse("org-1").unwrap();
        let now = Utc::now();
        let mut index = OrgIndex::new(org.clone());
        assert_eq!(index.reserve(id(1), now, 2), Reservation::Made);
        assert_eq!(index.reserve(id(1), now, 2), Reservation::Held);
        assert_eq!(index.reserve(id(2), now, 2), Reservation::Made);
        assert_eq!(index.reserve(id(3), now, 2), Reservation::Full);
        assert!(index.release([&id(1)]));
        assert!(!index.release([&id(1)]));
        assert_eq!(index.reserve(id(3), now, 2), Reservation::Made);
        let back = OrgIndex::decode(&org, &index.encode()).unwrap();
        assert_eq!(back, index);
        assert!(OrgIndex::decode(&OrgId::parse("org-2").unwrap(), &index.encode()).is_err());
    }

    #[test]
    fn only_places_older_than_the_grace_are_settled() {
        let now = Utc::now();
        let mut index = OrgIndex::new(OrgId::parse("org-1").unwrap());
        index.reserve(id(1), now - chrono::Duration::minutes(10), 5);
        index.reserve(id(2), now, 5);
        assert_eq!(index.settleable(now, chrono::Duration::minutes(5)), [id(1)]);
    }
}
