//! The organization's rules held by its index ([`crate::domain::organization`]): the quota of
//! unlinked connections, as places reserved by compare-and-swap before a connection is written
//! and given back when it is linked or deleted.
//!
//! The order of the two writes is what keeps them consistent without a transaction: the place is
//! taken first, then the connection written. A start that dies between them leaves a place whose
//! connection never appears; a link or a delete whose give-back is lost leaves a place its
//! connection no longer needs. Neither is lost for long: when the quota is full, the places older
//! than [`crate::app::quota::Quotas::reservation_grace`] are settled against their connections
//! (one read each), and those not needed are given back in the same write.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::error::{AppError, Quota};
use super::operations::App;
use crate::domain::organization::{OrgIndex, Reservation};
use crate::domain::{ConnectionId, OrgId};
use crate::retry::Backoff;
use crate::store::{StoreError, VersionedIndex, WriteToken};

/// A change of the index.
enum Change<'a> {
    /// A place for a connection about to be written.
    Reserve(ConnectionId, DateTime<Utc>),
    /// The places of connections linked or deleted.
    GiveBack(&'a [ConnectionId]),
}

/// How long a write to the index keeps trying against other writers (a burst of starts of one
/// organization takes its places one compare-and-swap at a time) before answering 409.
const INDEX_BUDGET: Duration = Duration::from_secs(15);

impl App {
    /// Takes a place for connection `id` among the organization's unlinked ones, before the
    /// connection is written: refused (`quota-exceeded`) when every place is taken by a
    /// connection that still needs it. A retried start finds its place taken already.
    pub(super) async fn reserve_place(
        &self,
        request_id: &str,
        org: &OrgId,
        id: ConnectionId,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        self.write_index(org, &format!("{request_id}|place"), &Change::Reserve(id, now))
            .await
    }

    /// Gives back the places of `connections` (linked or deleted). Best effort: a give-back that
    /// fails is settled later (see the module's documentation), so it never fails the caller.
    pub(super) async fn give_back_places(&self, request_id: &str, org: &OrgId, connections: &[ConnectionId]) {
        let result = self
            .write_index(
                org,
                &format!("{request_id}|give-back"),
                &Change::GiveBack(connections),
            )
            .await;
        if let Err(e) = result {
            tracing::warn!(org = %org, error = %crate::telemetry::error_chain(&e), "places not given back; settled when the quota is next full");
        }
    }

    /// Settles the places older than the grace: a place whose connection is linked or gone is
    /// given back. `true` when one was.
    async fn settle(&self, org: &OrgId, index: &mut OrgIndex, now: DateTime<Utc>) -> Result<bool, AppError> {
        let grace =
            chrono::Duration::from_std(self.quotas.reservation_grace).unwrap_or(chrono::Duration::MAX);
        let mut done = Vec::new();
        for id in index.settleable(now, grace) {
            let needed = self
                .store
                .load(org, &id)
                .await?
                .is_some_and(|c| c.connection.status.holds_place());
            if !needed {
                done.push(id);
            }
        }
        Ok(index.release(&done))
    }

    /// `change` applied to `index`: `Ok(false)` when nothing is to be written.
    async fn apply(&self, org: &OrgId, index: &mut OrgIndex, change: &Change<'_>) -> Result<bool, AppError> {
        match change {
            Change::Reserve(id, now) => {
                let limit = self.quotas.unlinked as usize;
                let full = || AppError::QuotaExceeded {
                    quota: Quota::Unlinked(self.quotas.unlinked),
                    retry_after: None,
                };
                match index.reserve(*id, *now, limit) {
                    Reservation::Held => Ok(false),
                    Reservation::Made => Ok(true),
                    Reservation::Full => {
                        if !self.settle(org, index, *now).await? {
                            return Err(full());
                        }
                        match index.reserve(*id, *now, limit) {
                            Reservation::Made => Ok(true),
                            _ => Err(full()),
                        }
                    }
                }
            }
            Change::GiveBack(connections) => Ok(index.release(connections.iter())),
        }
    }

    /// Read, [`Self::apply`] `change`, compare-and-swap, again on a lost race until
    /// [`INDEX_BUDGET`] is spent. The index of an organization that has none yet starts from its
    /// unlinked connections as the store lists them.
    async fn write_index(&self, org: &OrgId, request_id: &str, change: &Change<'_>) -> Result<(), AppError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let read = self.store.load_index(org).await?;
            // Only a place taken makes an organization's first index; a give-back before it has
            // nothing to give back (and need not list what the organization holds to learn so).
            let first = read.is_none() && matches!(change, Change::Reserve(..));
            if read.is_none() && !first {
                return Ok(());
            }
            let mut index = match &read {
                Some(VersionedIndex { index, .. }) => index.clone(),
                None => self.first_index(org).await?,
            };
            if !self.apply(org, &mut index, change).await? && !first {
                return Ok(());
            }
            let token = WriteToken::derive(request_id, read.as_ref().map(|r| &r.version), attempt);
            match self.store.write_index(read.as_ref(), &index, &token).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) if started.elapsed() < INDEX_BUDGET => {
                    tokio::time::sleep(Backoff::INDEX.delay(attempt)).await;
                    attempt += 1;
                }
                Err(StoreError::Conflict) => return Err(AppError::Contended),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// An organization's first index: its unlinked connections as the store lists them (once; a
    /// listing may miss the last minutes' starts, which only those made before the index existed
    /// can be), each place as old as the grace so that it can be settled.
    async fn first_index(&self, org: &OrgId) -> Result<OrgIndex, AppError> {
        let mut index = OrgIndex::new(org.clone());
        let old = DateTime::<Utc>::MIN_UTC;
        for id in self.store.unlinked_of(org, self.quotas.unlinked as usize).await? {
            index.unlinked.insert(id, old);
        }
        Ok(index)
    }
}
