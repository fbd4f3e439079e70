//! The organization's ties held by the store ([`crate::domain::ties`]): a write that gives a
//! connection a new tie (an estate's group, a link, a default subscription) claims each of its
//! keys by compare-and-swap *before* the connection is written; a write or a delete that drops
//! ties gives them back after.
//!
//! The order keeps the two consistent without a transaction. A writer that dies between the
//! claim and the connection write leaves a claim its connection does not hold; a give-back that
//! is lost leaves one its connection no longer holds. Neither blocks for long: a claim older than
//! [`crate::app::quota::Quotas::reservation_grace`] that is found in the way is settled against
//! its connection (one read) and taken over in the same write when the connection does not hold
//! it. A link has two keys; a writer that wins its account and loses its subscription gives the
//! account back at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::error::AppError;
use super::operations::App;
use crate::domain::estate::EstateError;
use crate::domain::ties::{Claim, Held, ShardPath, Tie, TieKey, TieShard};
use crate::domain::{ConnectionId, OrgId, RuleError};
use crate::retry::Backoff;
use crate::store::{StoreError, VersionedTies, WriteToken};

/// How long a claim keeps trying against other writers of its shard before answering 409.
const TIES_BUDGET: std::time::Duration = std::time::Duration::from_secs(15);

/// The most reads one walk from the root to a leaf may take (splits cut short made again
/// included): a bound, not an expectation (a walk is as deep as the trie, ~log2 of its shards).
const MAX_WALK: usize = 64;

impl App {
    /// Claims every key of `ties` for `connection`, in order; a key held by one of `replacing`
    /// (ties of this connection the same write drops) is taken over. `pending` while the
    /// connection was never linked ([`Held::pending`]); ties in `holding` are the connection's
    /// already (claimed again as it links). Refused with the rule a key's holder breaks; the keys
    /// this call took are then given back.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn claim_ties(
        &self,
        request_id: &str,
        org: &OrgId,
        connection: &ConnectionId,
        ties: &[Tie],
        replacing: &BTreeSet<Tie>,
        holding: &BTreeSet<Tie>,
        pending: bool,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        // The keys this call took (not those it found its own already): given back on a refusal.
        let mut made: Vec<(TieKey, Tie)> = Vec::new();
        for tie in ties {
            for key in tie.keys() {
                let held = Held {
                    tie: tie.clone(),
                    connection: *connection,
                    at: now,
                    pending,
                };
                let refusal = match self.claim_key(request_id, org, &key, held, replacing, now).await {
                    Ok(Claim::Made) if holding.contains(tie) => continue,
                    Ok(Claim::Made) => {
                        made.push((key, tie.clone()));
                        continue;
                    }
                    Ok(Claim::Held) => continue,
                    Ok(Claim::Taken(holder)) => refusal(&key, tie, &holder.tie).into(),
                    Err(e) => e,
                };
                if let Err(e) = self.release_keys(request_id, org, connection, made).await {
                    tracing::warn!(org = %org, error = %crate::telemetry::error_chain(&e), "claims of a refused write not given back; settled when next claimed");
                }
                return Err(refusal);
            }
        }
        Ok(())
    }

    /// Gives back `ties` of `connection`, each shard written once. Best effort: a give-back that
    /// fails is settled when the key is next claimed (see the module's documentation).
    pub(super) async fn release_ties(
        &self,
        request_id: &str,
        org: &OrgId,
        connection: &ConnectionId,
        ties: &[Tie],
    ) {
        if ties.is_empty() {
            return;
        }
        let keys: Vec<(TieKey, Tie)> = ties
            .iter()
            .flat_map(|t| t.keys().into_iter().map(move |k| (k, t.clone())))
            .collect();
        if let Err(e) = self.release_keys(request_id, org, connection, keys).await {
            tracing::warn!(org = %org, connection = %connection, error = %crate::telemetry::error_chain(&e), "ties not given back; settled when next claimed");
        }
    }

    /// Who holds `key` across the organization, when the holder's connection still holds it
    /// (a claim it does not hold is no tie).
    pub(super) async fn holder_of(&self, org: &OrgId, key: &TieKey) -> Result<Option<Held>, AppError> {
        let (_, read) = self.leaf_of(org, key, false).await?;
        let Some(held) = read.and_then(|r| r.shard.held.get(key).cloned()) else {
            return Ok(None);
        };
        Ok(self.still_holds(org, key, &held).await?.then_some(held))
    }

    /// Claims `key` for `held`: [`Claim::Made`] when this call took it, [`Claim::Held`] when it
    /// was `held`'s already, [`Claim::Taken`] with the holder otherwise.
    async fn claim_key(
        &self,
        request_id: &str,
        org: &OrgId,
        key: &TieKey,
        held: Held,
        replacing: &BTreeSet<Tie>,
        now: DateTime<Utc>,
    ) -> Result<Claim, AppError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let (path, read) = self.leaf_of(org, key, true).await?;
            let mut shard = match &read {
                Some(r) => r.shard.clone(),
                None => TieShard::new(org.clone(), path),
            };
            match shard.claim(key, held.clone()) {
                // Ours already, and recent: a claim in the way is settled only once older than
                // the grace, so an old one is renewed before the write it is for.
                Claim::Held if !self.aging(&shard, key, now) => return Ok(Claim::Held),
                Claim::Held => {
                    shard.held.insert(key.clone(), held.clone());
                }
                Claim::Made => {}
                Claim::Taken(other) => {
                    let replaced = other.connection == held.connection && replacing.contains(&other.tie);
                    if !replaced && !self.settleable(org, key, &other, now).await? {
                        return Ok(Claim::Taken(other));
                    }
                    shard.held.insert(key.clone(), held.clone());
                }
            }
            let written = if shard.encode().len() > self.quotas.ties_shard_bytes {
                // Too big for one secret: split the shard as read, then claim again.
                match read {
                    Some(read) => self.split(request_id, read).await.map(|()| false),
                    None => Err(AppError::Contended),
                }
            } else {
                let token = WriteToken::derive(
                    &format!("{request_id}|tie|{}", shard.path.as_str()),
                    read.as_ref().map(|r| &r.version),
                    attempt,
                );
                match self.store.write_ties(read.as_ref(), &shard, &token).await {
                    Ok(_) => Ok(true),
                    Err(StoreError::Conflict) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            };
            if written? {
                return Ok(Claim::Made);
            }
            if started.elapsed() >= TIES_BUDGET {
                return Err(AppError::Contended);
            }
            tokio::time::sleep(Backoff::CAS.delay(attempt)).await;
            attempt += 1;
        }
    }

    /// Gives back `keys` of `connection`: one walk down the trie, each shard read and written
    /// once (again on a lost race).
    async fn release_keys(
        &self,
        request_id: &str,
        org: &OrgId,
        connection: &ConnectionId,
        keys: Vec<(TieKey, Tie)>,
    ) -> Result<(), AppError> {
        let started = Instant::now();
        let mut work = vec![(ShardPath::root(), keys, None::<TieShard>, 0u32)];
        while let Some((path, keys, parent, attempt)) = work.pop() {
            let read = match self.store.load_ties(org, &path).await? {
                Some(r) => r,
                None => match &parent {
                    // A split cut short: its children made again first.
                    Some(p) => {
                        self.make_children(request_id, p).await?;
                        work.push((path, keys, parent, attempt));
                        continue;
                    }
                    None => continue,
                },
            };
            if read.shard.sealed {
                let mut halves: BTreeMap<ShardPath, Vec<(TieKey, Tie)>> = BTreeMap::new();
                for (key, tie) in keys {
                    if let Some(child) = path.towards(&key) {
                        halves.entry(child).or_default().push((key, tie));
                    }
                }
                for (child, keys) in halves {
                    work.push((child, keys, Some(read.shard.clone()), 0));
                }
                continue;
            }
            let mut shard = read.shard.clone();
            let mut changed = false;
            for (key, tie) in &keys {
                changed |= shard.release(key, connection, tie);
            }
            if !changed {
                continue;
            }
            let token = WriteToken::derive(
                &format!("{request_id}|untie|{}", path.as_str()),
                Some(&read.version),
                attempt,
            );
            match self.store.write_ties(Some(&read), &shard, &token).await {
                Ok(_) => {}
                Err(StoreError::Conflict) if started.elapsed() < TIES_BUDGET => {
                    tokio::time::sleep(Backoff::CAS.delay(attempt)).await;
                    work.push((path, keys, parent, attempt + 1));
                }
                Err(StoreError::Conflict) => return Err(AppError::Contended),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The leaf shard that holds `key`, as read (`None`: the organization has no ties yet). A
    /// child missing under a sealed parent (a split cut short) is made again when `make`; a
    /// reader takes the parent's frozen content instead, which is what the child starts from.
    async fn leaf_of(
        &self,
        org: &OrgId,
        key: &TieKey,
        make: bool,
    ) -> Result<(ShardPath, Option<VersionedTies>), AppError> {
        let mut path = ShardPath::root();
        let mut parent: Option<VersionedTies> = None;
        for _ in 0..MAX_WALK {
            match self.store.load_ties(org, &path).await? {
                Some(read) if read.shard.sealed => {
                    path = path.towards(key).ok_or(AppError::Contended)?;
                    parent = Some(read);
                }
                Some(read) => return Ok((path, Some(read))),
                None => match parent {
                    None => return Ok((path, None)),
                    Some(p) if !make => return Ok((path, Some(p))),
                    Some(p) => {
                        self.make_children("walk", &p.shard).await?;
                        parent = Some(p);
                    }
                },
            }
        }
        Err(AppError::Contended)
    }

    /// Splits the shard `read`: sealed as read (its content frozen), then its two children
    /// written. A lost race seals nothing; the caller reads again.
    async fn split(&self, request_id: &str, read: VersionedTies) -> Result<(), AppError> {
        let mut sealed = read.shard.clone();
        sealed.sealed = true;
        let token = WriteToken::derive(
            &format!("{request_id}|seal|{}", sealed.path.as_str()),
            Some(&read.version),
            0,
        );
        match self.store.write_ties(Some(&read), &sealed, &token).await {
            Ok(_) => {
                tracing::info!(org = %sealed.org, shard = %sealed.path.as_str(), keys = sealed.held.len(), "ties shard split");
                self.make_children(request_id, &sealed).await
            }
            Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The children of the sealed shard `parent`, each made once from its frozen content (made
    /// already by another writer: nothing to do).
    async fn make_children(&self, request_id: &str, parent: &TieShard) -> Result<(), AppError> {
        let children = parent.split().ok_or(AppError::Contended)?;
        for child in children {
            let token = WriteToken::derive(&format!("{request_id}|child|{}", child.path.as_str()), None, 0);
            match self.store.write_ties(None, &child, &token).await {
                Ok(_) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Whether the claim of `key` in `shard` is older than half the grace.
    fn aging(&self, shard: &TieShard, key: &TieKey, now: DateTime<Utc>) -> bool {
        let half =
            chrono::Duration::from_std(self.quotas.reservation_grace / 2).unwrap_or(chrono::Duration::MAX);
        shard.held.get(key).is_some_and(|h| h.at + half <= now)
    }

    /// A claim of `key` in the way may be taken over: older than the grace, and its connection
    /// holds no tie of that key (gone, or written without it).
    async fn settleable(
        &self,
        org: &OrgId,
        key: &TieKey,
        held: &Held,
        now: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        let grace =
            chrono::Duration::from_std(self.quotas.reservation_grace).unwrap_or(chrono::Duration::MAX);
        if held.at + grace > now {
            return Ok(false);
        }
        Ok(!self.still_holds(org, key, held).await?)
    }

    /// Whether `held`'s connection holds a tie of `key` (the claimed one or another: a write that
    /// replaced a tie of this key and then failed leaves the key its connection's).
    async fn still_holds(&self, org: &OrgId, key: &TieKey, held: &Held) -> Result<bool, AppError> {
        Ok(self
            .store
            .load(org, &held.connection)
            .await?
            .is_some_and(|c| c.connection.ties().iter().any(|t| t.keys().contains(key))))
    }
}

/// The rule `holder` breaks for `ours` at `key`.
fn refusal(key: &TieKey, ours: &Tie, holder: &Tie) -> RuleError {
    let rule = match (key, ours, holder) {
        (TieKey::Group(_), ..) => EstateError::GroupTaken,
        (TieKey::Subscription(_), ..) => EstateError::SubscriptionTaken,
        (
            TieKey::Account(_),
            Tie::Link {
                subscription: ours, ..
            },
            Tie::Link {
                subscription: theirs, ..
            },
        ) if ours == theirs => EstateError::HeldElsewhere,
        (TieKey::Account(_), ..) => EstateError::AccountTaken,
    };
    RuleError::Estate(rule)
}
