//! The compare-and-swap write: read the connection (one call), apply domain commands, write it
//! back naming the version read; on a lost race re-read and re-apply, a bounded number of times.
//! The write token is derived from the request, the version and the attempt, so a retried request
//! can never make a second version.

use std::collections::BTreeSet;

use super::error::AppError;
use super::operations::App;
use super::request::RequestMeta;
use crate::domain::ties::Tie;
use crate::domain::{Command, Connection, ConnectionId, OrgId};
use crate::retry::Backoff;
use crate::store::{StoreError, Versioned, WriteToken};

/// Attempts of one compare-and-swap write before answering 409.
pub const CAS_ATTEMPTS: u32 = 8;

impl App {
    /// Read, apply, compare-and-swap, with the early checks against Azure.
    pub(super) async fn update(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        id: &ConnectionId,
        command: &Command,
    ) -> Result<Connection, AppError> {
        self.update_all(req, org, id, std::slice::from_ref(command), true)
            .await
            .map(|(c, _)| c)
    }

    /// [`Self::update_all`], and what the write replaced announced: the ties to Spot accounts
    /// of an estate it dropped (`Subscription Unlinked`, each once: only the write that dropped
    /// them sees them).
    pub(super) async fn update_announced(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        id: &ConnectionId,
        commands: &[Command],
        early_checks: bool,
    ) -> Result<(Connection, bool), AppError> {
        let mut replaced = None;
        let (after, wrote) = self
            .update_seen(req, org, id, commands, early_checks, None, &mut replaced)
            .await?;
        if let Some(before) = replaced.filter(|_| wrote) {
            self.announce_estate(req, &before, &after).await;
        }
        Ok((after, wrote))
    }

    /// Applies `commands` in one compare-and-swap write; with `early_checks`, each new input is
    /// first checked against Azure where that is cheap. `true` when this call wrote.
    pub(super) async fn update_all(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        id: &ConnectionId,
        commands: &[Command],
        early_checks: bool,
    ) -> Result<(Connection, bool), AppError> {
        self.update_from(req, org, id, commands, early_checks, None).await
    }

    /// [`Self::update_all`] starting from a version the caller has just read (no second read when
    /// nothing changes; a lost race re-reads as usual).
    pub(super) async fn update_from(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        id: &ConnectionId,
        commands: &[Command],
        early_checks: bool,
        read: Option<Versioned>,
    ) -> Result<(Connection, bool), AppError> {
        self.update_seen(req, org, id, commands, early_checks, read, &mut None)
            .await
    }

    /// [`Self::update_from`], keeping in `replaced` the connection as the winning write read it.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn update_seen(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        id: &ConnectionId,
        commands: &[Command],
        early_checks: bool,
        read: Option<Versioned>,
        replaced: &mut Option<Connection>,
    ) -> Result<(Connection, bool), AppError> {
        let mut read = read;
        let mut claimed: BTreeSet<Tie> = BTreeSet::new();
        for attempt in 0..CAS_ATTEMPTS {
            let current = match read.take() {
                Some(v) => v,
                None => self.load(org, id).await?,
            };
            if current.connection.handled(&req.record()) {
                return Ok((current.connection, false));
            }
            if current.connection.reused(&req.request_id, &req.record()) {
                return Err(AppError::KeyReused);
            }
            let mut next = current.connection.clone();
            let mut changed = false;
            for command in commands {
                changed |= next.apply(command, &req.record(), req.received_at)?;
            }
            if !changed {
                return Ok((current.connection, false));
            }
            // Whatever the commands did, the whole document must fit its secret.
            next.check_size()?;
            if attempt == 0 && early_checks {
                for command in commands {
                    self.early_check(&current.connection, command).await?;
                }
            }
            // The ties the write adds are claimed across the organization first; a connection of
            // one subscription that links for the first time claims its tie again, no longer
            // pending (another connection of the same account may have taken it over meanwhile).
            let (had, has) = (current.connection.ties(), next.ties());
            // Only a connection of one subscription holds its tie pending (an estate's default is
            // held as its group is: its Connect Account must not hang on another connection).
            let single = next.estate.is_none();
            let pending = single && next.linked_at.is_none();
            let linking = single && current.connection.linked_at.is_none() && next.linked_at.is_some();
            let new: Vec<Tie> = has
                .iter()
                .filter(|t| !had.contains(*t) || (linking && matches!(t, Tie::Link { .. })))
                .filter(|t| !claimed.contains(*t))
                .cloned()
                .collect();
            if !new.is_empty() {
                let dropping = had.difference(&has).cloned().collect();
                let claim = self
                    .claim_ties(
                        &req.request_id,
                        org,
                        id,
                        &new,
                        &dropping,
                        &had,
                        pending,
                        req.received_at,
                    )
                    .await;
                claim?;
                claimed.extend(new);
            }
            let token = WriteToken::derive(&req.request_id, Some(&current.version), attempt);
            match self.store.replace(&current, &next, &token).await {
                Ok(_) => {
                    // The ties it dropped given back. (Claims of an attempt that lost, or of a
                    // write that failed, are left to be settled: another write of this very
                    // connection may be about to hold them.)
                    let gone: Vec<Tie> = had.difference(&has).cloned().collect();
                    self.release_ties(&req.request_id, org, id, &gone).await;
                    *replaced = Some(current.connection);
                    return Ok((next, true));
                }
                Err(StoreError::Conflict) => {
                    tracing::debug!(attempt, connection = %id, "write lost a race; re-reading");
                    tokio::time::sleep(Backoff::CAS.delay(attempt)).await;
                }
                Err(StoreError::NotFound) => return Err(AppError::NotFound),
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Contended)
    }
}
