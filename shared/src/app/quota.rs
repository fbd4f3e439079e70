//! Per-organization quotas: what one organization may hold and do, so that one cannot spend the
//! account's Secrets Manager quotas (500,000 secrets, 50 writes a second), its money ($0.40 a
//! secret-month) or Connect Account's concurrency for everyone.
//!
//! - Live connections not yet linked (drafts and failed ones): at most [`Quotas::unlinked`]; the
//!   next start is refused (`quota-exceeded`, 429, no `Retry-After`: finishing or deleting one
//!   frees a place). Held by the organization's index (a place taken by compare-and-swap before
//!   the connection is written: [`super::organization`]), never by a listing.
//! - Validations against Azure (Connect Account, Spot's validation): at most
//!   [`Quotas::validations_per_minute`] a minute; the next is refused until the minute turns
//!   (`Retry-After`). Each is a claim in the store (a name made once, as runs are claimed).
//! - Drafts and failed connections untouched for [`Quotas::abandon_after`] are deleted by the
//!   daily scan (`Connection Abandoned`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::OrgId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub unlinked: u32,
    pub validations_per_minute: u32,
    pub abandon_after: Duration,
    /// How long a start may take between taking its place and writing its connection: an
    /// older place whose connection is not there (or no longer needs it) is given back.
    pub reservation_grace: Duration,
    /// The most a shard of an organization's ties may take, encoded, before it is split (a
    /// secret's value holds at most 65,536 bytes).
    pub ties_shard_bytes: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            unlinked: 50,
            validations_per_minute: 30,
            abandon_after: Duration::from_secs(30 * 24 * 3600),
            reservation_grace: Duration::from_secs(5 * 60),
            ties_shard_bytes: 60 * 1024,
        }
    }
}

/// Where each organization's claims of this minute start (per warm instance): a hint, so that a
/// validation usually makes one claim; claims made elsewhere are stepped over.
#[derive(Debug, Default, Clone)]
pub(super) struct ClaimHints(Arc<Mutex<HashMap<OrgId, (i64, u32)>>>);

impl ClaimHints {
    pub(super) fn start(&self, org: &OrgId, minute: i64) -> u32 {
        self.0
            .lock()
            .ok()
            .and_then(|m| m.get(org).copied())
            .filter(|(m, _)| *m == minute)
            .map_or(0, |(_, n)| n)
    }

    pub(super) fn set(&self, org: &OrgId, minute: i64, next: u32) {
        if let Ok(mut m) = self.0.lock() {
            // Old minutes go; the map stays as small as the organizations of one minute.
            m.retain(|_, (at, _)| *at == minute);
            m.insert(org.clone(), (minute, next));
        }
    }
}
