//! Where connections live: one secret per connection, written by compare-and-swap; and beside it
//! one credential per client secret entered or rotated in, holding nothing but the value.
//!
//! The credential (`{credentialPrefix}{orgId}/{connectionId}/{submittedAtMicros}`) is written once
//! and never changed: created before the document that names it, erased (every version, no
//! recovery) as soon as the document no longer does. So the value is readable only by the
//! functions allowed the credential prefix ([`ConnectionStore::reveal`]), and a secret moved off,
//! replaced, rotated out or deleted leaves nothing anyone can read.
//!
//! Two adapters share one trait and one contract test suite (`tests/tests/store_contract.rs`):
//! [`secrets_manager::SecretsManagerStore`] for AWS and [`embedded::EmbeddedStore`] (one local
//! file) for the local server.

use std::fmt;

use async_trait::async_trait;

use crate::domain::connection::SecretRecord;
use crate::domain::document::DocumentError;
use crate::domain::expiry::ExpiryTags;
use crate::domain::organization::{IndexError, OrgIndex};
use crate::domain::ties::{ShardPath, TieShard, TiesError};
use crate::domain::{AccountId, ClientSecret, Connection, ConnectionId, OrgId, SubscriptionId};

pub mod embedded;
pub mod secrets_manager;

/// Default name prefix of connection secrets: `{prefix}{orgId}/{connectionId}`.
pub const DEFAULT_PREFIX: &str = "azure-connect/";

/// The credential prefix that goes with a connection prefix when none is set: `azure-connect/` →
/// `azure-connect-credentials/` (apart, so that a policy on one does not reach the other).
pub fn default_credential_prefix(prefix: &str) -> String {
    format!("{}-credentials/", prefix.trim_end_matches('/'))
}

/// `{credentialPrefix}{orgId}/{connectionId}/{credentialId}`: one client secret's credential
/// ([`SecretRecord::credential_id`]: when it was entered, and a digest's first 32 bits).
pub fn credential_name(prefix: &str, org: &OrgId, id: &ConnectionId, credential_id: &str) -> String {
    format!("{prefix}{org}/{id}/{credential_id}")
}

/// What a write from `previous` to `next` does to the credentials: the value to put first (a new
/// submission, or one a schema-1 document held inline), the submission to erase once the document
/// is written (one it no longer names).
#[derive(Debug)]
pub struct CredentialChange<'a> {
    pub put: Option<(&'a SecretRecord, &'a ClientSecret)>,
    /// The credential id to erase.
    pub erase: Option<String>,
}

impl<'a> CredentialChange<'a> {
    pub fn of(previous: Option<&Connection>, next: &'a Connection) -> Self {
        let before = previous.and_then(|p| p.client_secret.as_ref());
        let after = next.client_secret.as_ref();
        let same = |a: &SecretRecord, b: &SecretRecord| a.credential_id() == b.credential_id();
        let put = after
            .filter(|a| before.is_none_or(|b| !same(a, b) || b.secret().is_some()))
            .and_then(|a| a.secret().map(|v| (a, v)));
        let erase = before
            .filter(|b| after.is_none_or(|a| !same(a, b)))
            .map(SecretRecord::credential_id);
        Self { put, erase }
    }
}

/// Which version of a connection's document a read saw; a write names it to detect races.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VersionId(pub String);

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Idempotency token of one write (Secrets Manager's `ClientRequestToken`): the same token with the
/// same document is a no-op, so a retried request never makes a second version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteToken(String);

impl WriteToken {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a5e_1d2c_9b7f_4e21_a0c3_58d4_f1e2_b3a4);

    /// Derived from the request, the version it builds on and the attempt: a retry of the same
    /// request on the same version gets the same token, so it cannot make a second version.
    pub fn derive(request_id: &str, base: Option<&VersionId>, attempt: u32) -> Self {
        let name = format!("{request_id}|{}|{attempt}", base.map_or("", |v| v.0.as_str()));
        Self(uuid::Uuid::new_v5(&Self::NAMESPACE, name.as_bytes()).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An organization's index as read, with the version it was read at.
#[derive(Debug, Clone)]
pub struct VersionedIndex {
    pub version: VersionId,
    pub index: OrgIndex,
}

/// `{prefix}{orgId}/+index`: the organization's index, beside its connections (`+` is never in a
/// connection id, so no scan of connections takes it for one).
pub fn index_name(prefix: &str, org: &OrgId) -> String {
    format!("{prefix}{org}/+index")
}

/// One shard of an organization's ties as read, with the version it was read at.
#[derive(Debug, Clone)]
pub struct VersionedTies {
    pub version: VersionId,
    pub shard: TieShard,
}

/// `{prefix}{orgId}/+ties`, `…/+ties-01`: the shards of the organization's ties
/// ([`crate::domain::ties`]).
pub fn ties_name(prefix: &str, org: &OrgId, path: &ShardPath) -> String {
    format!("{prefix}{org}/+ties{}", path.suffix())
}

/// A connection as read, with the version it was read at.
#[derive(Debug, Clone)]
pub struct Versioned {
    pub version: VersionId,
    pub connection: Connection,
    /// The pages of an estate's list the version read named (stores that keep the list inline:
    /// none): the next write stores only pages not among them and deletes those it no longer
    /// names, without encoding the version read again.
    pub pages: std::collections::BTreeSet<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a connection with this id already exists")]
    AlreadyExists,
    #[error("the connection changed since it was read")]
    Conflict,
    #[error("no such connection")]
    NotFound,
    #[error("the store is unavailable or throttling")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the stored document is unreadable")]
    Corrupt(#[from] DocumentError),
    #[error("the organization's stored index is unreadable")]
    CorruptIndex(#[from] IndexError),
    #[error("the organization's stored ties are unreadable")]
    CorruptTies(#[from] TiesError),
    #[error("the store failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

#[async_trait]
pub trait ConnectionStore: Send + Sync + fmt::Debug {
    /// Reads the current version (one read call). `None` when there is no such connection.
    async fn load(&self, org: &OrgId, id: &ConnectionId) -> Result<Option<Versioned>, StoreError>;

    /// Creates the connection's secret. [`StoreError::AlreadyExists`] if the name is taken.
    async fn create(&self, connection: &Connection, token: &WriteToken) -> Result<VersionId, StoreError>;

    /// Replaces `previous` with `next` if `previous.version` is still current, else
    /// [`StoreError::Conflict`]. Repeating a call with the same token and document is a no-op.
    async fn replace(
        &self,
        previous: &Versioned,
        next: &Connection,
        token: &WriteToken,
    ) -> Result<VersionId, StoreError>;

    /// Deletes the connection; `false` when there was none.
    async fn delete(&self, org: &OrgId, id: &ConnectionId) -> Result<bool, StoreError>;

    /// One page of the connections whose client secret has an expiry, with their scan tags only
    /// (no secret value is read). `next` is the previous page's continuation.
    async fn scan_page(&self, next: Option<String>) -> Result<ScanPage, StoreError>;

    /// The organization's connections with one tag ([`Lookup`]: of a Spot account, of a
    /// subscription, the estates), most recently changed first, found by tags (no value read).
    async fn find(&self, org: &OrgId, by: &Lookup<'_>) -> Result<Vec<ConnectionId>, StoreError>;

    /// The value of `connection`'s client secret, read from its credential: only the functions
    /// that use the secret may. `None` without a secret, or when its credential is gone (a
    /// connection restored after a delete comes back without its secret).
    async fn reveal(&self, connection: &Connection) -> Result<Option<ClientSecret>, StoreError>;

    /// One page of the linked connections (status `connected` or `degraded`), by tag: names and
    /// tags only, no value read. `next` is the previous page's continuation.
    async fn linked_page(&self, next: Option<String>) -> Result<LinkedPage, StoreError>;

    /// One page of every organization's connections not linked (draft or failed), with when each
    /// last changed where the store says (names, tags and dates only, no value read).
    async fn unlinked_page(&self, next: Option<String>) -> Result<UnlinkedPage, StoreError>;

    /// The live connections of `org` not linked (status draft or failed), found by tag without
    /// reading a value, at most `enough`: what an organization's index starts from.
    async fn unlinked_of(&self, org: &OrgId, enough: usize) -> Result<Vec<ConnectionId>, StoreError>;

    /// The organization's index ([`OrgIndex`]) as last written; `None` before its first write.
    async fn load_index(&self, org: &OrgId) -> Result<Option<VersionedIndex>, StoreError>;

    /// Writes `next` if `previous` (the index read, `None` when there was none) is still the
    /// current one, else [`StoreError::Conflict`]: the organization's rules are held by this
    /// compare-and-swap.
    async fn write_index(
        &self,
        previous: Option<&VersionedIndex>,
        next: &OrgIndex,
        token: &WriteToken,
    ) -> Result<VersionId, StoreError>;

    /// One shard of the organization's ties; `None` before its first write.
    async fn load_ties(&self, org: &OrgId, path: &ShardPath) -> Result<Option<VersionedTies>, StoreError>;

    /// Writes the shard `next` if `previous` (as read, `None` when there was none) is still the
    /// current one, else [`StoreError::Conflict`].
    async fn write_ties(
        &self,
        previous: Option<&VersionedTies>,
        next: &TieShard,
        token: &WriteToken,
    ) -> Result<VersionId, StoreError>;

    /// Claims `run` of the job `job` once: `true` for the first claim, `false` for every later one
    /// (a retried or duplicate delivery of the same run). Claims are remembered for a week at least.
    async fn claim_run(&self, job: &str, run: &str) -> Result<bool, StoreError>;
}

/// A page of [`ConnectionStore::unlinked_page`].
#[derive(Debug, Clone, Default)]
pub struct UnlinkedPage {
    pub entries: Vec<UnlinkedEntry>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlinkedEntry {
    pub org: OrgId,
    pub connection: ConnectionId,
    pub last_changed: Option<chrono::DateTime<chrono::Utc>>,
}

/// A page of [`ConnectionStore::linked_page`].
#[derive(Debug, Clone, Default)]
pub struct LinkedPage {
    pub entries: Vec<LinkedEntry>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedEntry {
    pub org: OrgId,
    pub connection: ConnectionId,
    pub degraded: bool,
}

impl LinkedEntry {
    /// From a secret's name (after the prefix) and its status tag; `None` unless linked.
    pub fn parse(name_after_prefix: &str, status: Option<&str>) -> Option<Self> {
        let degraded = match status? {
            "connected" => false,
            "degraded" => true,
            _ => return None,
        };
        let (org, id) = name_after_prefix.split_once('/')?;
        Some(Self {
            org: OrgId::parse(org).ok()?,
            connection: ConnectionId::parse(id).ok()?,
            degraded,
        })
    }
}

/// The name of a run's claim: `+` keeps it apart from every `{orgId}/{connectionId}`.
pub fn claim_name(prefix: &str, job: &str, run: &str) -> String {
    format!("{prefix}runs+{job}+{run}")
}

/// What [`ConnectionStore::find`] looks for: one tag and its value.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// The connections a Spot account started (3.1).
    Account(&'a AccountId),
    /// The connections of one subscription (3.4).
    Subscription(SubscriptionId),
    /// The connections of a management group (estates).
    Estates,
}

impl Lookup<'_> {
    /// The tag's key and value.
    pub fn tag(&self) -> (&'static str, String) {
        match self {
            Self::Account(a) => (ACCOUNT_TAG, a.to_string()),
            Self::Subscription(s) => (SUBSCRIPTION_TAG, s.to_string()),
            Self::Estates => (SCOPE_TAG, "managementGroup".to_owned()),
        }
    }
}

/// The tags a scan needs (org, account, status, secret expiry); nothing sensitive.
pub fn tags_of(c: &Connection) -> Vec<(&'static str, String)> {
    let mut tags = vec![
        ("azure-connect:org", c.org.to_string()),
        (ACCOUNT_TAG, c.account.to_string()),
        ("azure-connect:connection", c.id.to_string()),
        (STATUS_TAG, c.status.as_str().to_owned()),
    ];
    if let Some(exp) = c.client_secret.as_ref().and_then(|s| s.expires_at) {
        tags.push((EXPIRES_TAG, exp.at().format("%Y-%m-%d").to_string()));
    }
    if let Some(r) = c.reminded {
        tags.push((REMINDED_TAG, r.to_string()));
    }
    if let Some(r) = c.rotation {
        tags.push((ROTATION_TAG, r.days_before.to_string()));
    }
    if let Some(s) = &c.subscription {
        tags.push((SUBSCRIPTION_TAG, s.subscription.to_string()));
    }
    if c.estate.is_some() {
        tags.push((SCOPE_TAG, "managementGroup".to_owned()));
    }
    tags
}

pub const ACCOUNT_TAG: &str = "azure-connect:account";
/// A single-subscription connection's subscription (3.4).
pub const SUBSCRIPTION_TAG: &str = "azure-connect:subscription";
/// `managementGroup` on an estate's connection.
pub const SCOPE_TAG: &str = "azure-connect:scope";
pub const STATUS_TAG: &str = "azure-connect:status";
/// The client secret's expiry date (UTC, `YYYY-MM-DD`): what the expiry scan lists by.
pub const EXPIRES_TAG: &str = "azure-connect:secret-expires";
/// The last reminder threshold sent (days).
pub const REMINDED_TAG: &str = "azure-connect:reminded";
/// Rotation on, this many days before expiry.
pub const ROTATION_TAG: &str = "azure-connect:rotation-days";

/// The stages a version of a connection's document can be in. Each is held by one version at
/// most; the adapter names them in its own terms (Secrets Manager's staging labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The document every read sees.
    Current,
    /// A rotation's new document, not yet current.
    Pending,
    /// A write waiting for its compare-and-swap (never read as current).
    Staged,
}

/// A secret's versions and their stages (the rotation protocol).
#[derive(Debug, Clone, Default)]
pub struct VersionInfo {
    pub name: String,
    /// `None` where the emulator does not say (moto, for a never-rotated secret).
    pub rotation_enabled: Option<bool>,
    /// Version id → its stages (stages the store does not use are left out).
    pub stages: std::collections::HashMap<String, Vec<Stage>>,
}

impl VersionInfo {
    /// The version holding `stage`, if any.
    pub fn holder_of(&self, stage: Stage) -> Option<&str> {
        self.stages
            .iter()
            .find(|(_, s)| s.contains(&stage))
            .map(|(v, _)| v.as_str())
    }

    /// Whether `version` holds `stage`.
    pub fn holds(&self, version: &str, stage: Stage) -> bool {
        self.stages.get(version).is_some_and(|s| s.contains(&stage))
    }
}

/// What rotating a connection's secret needs of the store: versions and staging labels. Only
/// Secrets Manager rotates; the embedded store has no rotation.
#[async_trait]
pub trait RotationStore: ConnectionStore {
    /// Erases the credential `credential_id` of `org`/`id` (every version, no recovery); nothing
    /// if it is already gone.
    async fn erase_credential(
        &self,
        org: &OrgId,
        id: &ConnectionId,
        credential_id: &str,
    ) -> Result<(), StoreError>;

    async fn versions(&self, secret_id: &str) -> Result<VersionInfo, StoreError>;
    /// The document of one version carrying `stage`; `None` if it has no value (yet).
    async fn version(
        &self,
        secret_id: &str,
        version: &str,
        stage: Stage,
    ) -> Result<Option<Connection>, StoreError>;
    /// Puts `doc` as version `token` with `stage` (idempotent for the same token and document); a
    /// new secret's credential first.
    async fn put_version(
        &self,
        secret_id: &str,
        token: &str,
        doc: &Connection,
        stage: Stage,
    ) -> Result<(), StoreError>;
    /// Moves (or with `to: None` removes) a stage; [`StoreError::Conflict`] if `from` does not hold it.
    async fn move_stage(
        &self,
        secret_id: &str,
        stage: Stage,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Brings the scan tags from `before` to `after`.
    async fn retag(&self, secret_id: &str, before: &Connection, after: &Connection)
    -> Result<(), StoreError>;
    /// `RotateSecret` with our function: Secrets Manager then drives the four steps.
    async fn start_rotation(
        &self,
        org: &OrgId,
        id: &ConnectionId,
        lambda_arn: &str,
    ) -> Result<(), StoreError>;
}

/// A page of [`ConnectionStore::scan_page`].
#[derive(Debug, Clone, Default)]
pub struct ScanPage {
    pub entries: Vec<ScanEntry>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEntry {
    pub org: OrgId,
    pub connection: ConnectionId,
    pub tags: ExpiryTags,
}

impl ScanEntry {
    /// From a secret's name (after the prefix: `{orgId}/{connectionId}`) and tags; `None` for
    /// anything that is not a connection with an expiry.
    pub fn parse<'a>(name_after_prefix: &str, tag: impl Fn(&str) -> Option<&'a str>) -> Option<Self> {
        let (org, id) = name_after_prefix.split_once('/')?;
        let expires = chrono::NaiveDate::parse_from_str(tag(EXPIRES_TAG)?, "%Y-%m-%d").ok()?;
        Some(Self {
            org: OrgId::parse(org).ok()?,
            connection: ConnectionId::parse(id).ok()?,
            tags: ExpiryTags {
                expires,
                expired: tag(STATUS_TAG) == Some("expired"),
                reminded: tag(REMINDED_TAG).and_then(|r| r.parse().ok()),
                rotation_days: tag(ROTATION_TAG).and_then(|r| r.parse().ok()),
            },
        })
    }
}

/// `{prefix}{orgId}/{connectionId}`.
pub fn secret_name(prefix: &str, org: &OrgId, id: &ConnectionId) -> String {
    format!("{prefix}{org}/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stable_per_request_and_base() {
        let v1 = VersionId("v1".into());
        let a = WriteToken::derive("req-1", Some(&v1), 0);
        assert_eq!(a, WriteToken::derive("req-1", Some(&v1), 0));
        assert_ne!(a, WriteToken::derive("req-2", Some(&v1), 0));
        assert_ne!(a, WriteToken::derive("req-1", None, 0));
        assert_ne!(a, WriteToken::derive("req-1", Some(&v1), 1));
        // Secrets Manager wants 32 to 64 characters.
        assert_eq!(a.as_str().len(), 36);
    }
}
