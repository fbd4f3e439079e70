//! Connections in AWS Secrets Manager: one secret per connection, the document in `SecretString`.
//!
//! A write is compare-and-swap in two calls: `PutSecretValue` puts the new document under our own
//! staging label (never `AWSCURRENT`), then `UpdateSecretVersionStage(AWSCURRENT, MoveToVersionId =
//! new, RemoveFromVersionId = the version read)`, which Secrets Manager refuses if another writer
//! moved `AWSCURRENT` in between. The version id is our [`WriteToken`] (`ClientRequestToken`), so
//! repeating a request repeats the same, idempotent, calls.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};

mod pages;
mod rotation;

use zeroize::Zeroizing;

use super::{
    ConnectionStore, CredentialChange, EXPIRES_TAG, LinkedEntry, LinkedPage, Lookup, STATUS_TAG, ScanEntry,
    ScanPage, Stage, StoreError, VersionId, Versioned, VersionedIndex, VersionedTies, WriteToken, claim_name,
    index_name, secret_name, tags_of, ties_name,
};
use crate::domain::connection::SecretRecord;
use crate::domain::document;
use crate::domain::organization::OrgIndex;
use crate::domain::ties::{ShardPath, TieShard};
use crate::domain::{ClientSecret, Connection, ConnectionId, OrgId};

/// Our staging label for a version that is written but not yet current.
/// Our staging label: a write waits under it for its compare-and-swap.
const STAGED_LABEL: &str = "AZC_STAGED";
const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";

/// The store's stages in Secrets Manager's words.
fn label(stage: Stage) -> &'static str {
    match stage {
        Stage::Current => CURRENT,
        Stage::Pending => PENDING,
        Stage::Staged => STAGED_LABEL,
    }
}

fn stage_of(label: &str) -> Option<Stage> {
    match label {
        CURRENT => Some(Stage::Current),
        PENDING => Some(Stage::Pending),
        STAGED_LABEL => Some(Stage::Staged),
        _ => None,
    }
}
const DESCRIPTION: &str = "azure-connect: one Azure connection of a Spot account";

/// Calls made to Secrets Manager, by operation (for the bench and for logs).
#[derive(Debug, Default)]
pub struct CallCounts {
    pub get: AtomicU64,
    pub create: AtomicU64,
    pub put: AtomicU64,
    pub update_stage: AtomicU64,
    pub tag: AtomicU64,
    pub describe: AtomicU64,
    pub list: AtomicU64,
    pub rotate: AtomicU64,
    pub delete: AtomicU64,
    /// Bytes of documents and pages written (create and put).
    pub written_bytes: AtomicU64,
}

impl CallCounts {
    pub(crate) fn wrote(&self, bytes: usize) {
        self.written_bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn total(&self) -> u64 {
        [
            &self.get,
            &self.create,
            &self.put,
            &self.update_stage,
            &self.tag,
            &self.describe,
            &self.list,
            &self.rotate,
            &self.delete,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

#[derive(Debug)]
pub struct SecretsManagerStore {
    client: Client,
    prefix: String,
    kms_key_id: Option<String>,
    credential_prefix: String,
    credential_key_id: Option<String>,
    calls: CallCounts,
}

const CREDENTIAL_DESCRIPTION: &str = "azure-connect: one client secret of one connection (value only)";

impl SecretsManagerStore {
    /// Credentials under [`super::default_credential_prefix`] with the AWS managed key, until
    /// [`Self::with_credentials`] says otherwise.
    pub fn new(client: Client, prefix: impl Into<String>, kms_key_id: Option<String>) -> Self {
        let prefix = prefix.into();
        Self {
            client,
            credential_prefix: super::default_credential_prefix(&prefix),
            prefix,
            kms_key_id,
            credential_key_id: None,
            calls: CallCounts::default(),
        }
    }

    /// Where the credentials live, and the KMS key they are encrypted with (`None`: the AWS
    /// managed key).
    pub fn with_credentials(mut self, prefix: impl Into<String>, kms_key_id: Option<String>) -> Self {
        self.credential_prefix = prefix.into();
        self.credential_key_id = kms_key_id;
        self
    }

    fn credential(&self, c: &Connection, credential_id: &str) -> String {
        super::credential_name(&self.credential_prefix, &c.org, &c.id, credential_id)
    }

    /// Creates the credential of a held secret. Its name is the submission's, so an earlier
    /// attempt of the same write finds it made: that is success.
    async fn put_credential(
        &self,
        c: &Connection,
        record: &SecretRecord,
        value: &ClientSecret,
    ) -> Result<(), StoreError> {
        let name = self.credential(c, &record.credential_id());
        count(&self.calls.create);
        let token = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).to_string();
        let created = self
            .client
            .create_secret()
            .name(&name)
            .description(CREDENTIAL_DESCRIPTION)
            .client_request_token(token)
            .secret_string(value.expose())
            .set_kms_key_id(self.credential_key_id.clone())
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_exists_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify(e)),
        }
    }

    /// Erases a credential by name: every version, no recovery window. Gone already is fine.
    async fn erase(&self, name: &str) -> Result<(), StoreError> {
        count(&self.calls.delete);
        let deleted = self
            .client
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify(e)),
        }
    }

    /// After a write: the credential the document no longer names goes. A failure is logged and
    /// not the write's: the credential is unreferenced either way, and the delete of the
    /// connection sweeps what is left.
    async fn erase_after_write(&self, c: &Connection, erase: Option<String>) {
        if let Some(credential_id) = erase {
            let name = self.credential(c, &credential_id);
            if let Err(e) = self.erase(&name).await {
                tracing::warn!(connection = %c.id, error = %e, "a replaced credential could not be erased yet");
            }
        }
    }

    pub fn calls(&self) -> &CallCounts {
        &self.calls
    }

    /// The listing of the connections under `prefix` not linked (status draft or failed), by tag.
    fn unlinked_listing(
        &self,
        prefix: &str,
    ) -> aws_sdk_secretsmanager::operation::list_secrets::builders::ListSecretsFluentBuilder {
        let filter = |key, values: &[&str]| {
            Filter::builder()
                .key(key)
                .set_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
                .build()
        };
        self.client
            .list_secrets()
            .filters(filter(FilterNameStringType::Name, &[prefix]))
            .filters(filter(FilterNameStringType::TagKey, &[STATUS_TAG]))
            .filters(filter(FilterNameStringType::TagValue, &UNLINKED))
            .max_results(100)
    }

    /// Brings the scan tags of secret `name` from `before` to `after` (nothing if equal).
    async fn retag_name(
        &self,
        name: &str,
        before: &Connection,
        after: &Connection,
    ) -> Result<(), StoreError> {
        let (old_tags, new_tags) = (tags_of(before), tags_of(after));
        if old_tags == new_tags {
            return Ok(());
        }
        count(&self.calls.tag);
        self.client
            .tag_resource()
            .secret_id(name)
            .set_tags(Some(Self::tags(after)))
            .send()
            .await
            .map_err(classify)?;
        // A tag that no longer applies (a reminder of a replaced secret) goes.
        let gone: Vec<String> = old_tags
            .iter()
            .filter(|(k, _)| !new_tags.iter().any(|(n, _)| n == k))
            .map(|(k, _)| (*k).to_owned())
            .collect();
        if !gone.is_empty() {
            count(&self.calls.tag);
            self.client
                .untag_resource()
                .secret_id(name)
                .set_tag_keys(Some(gone))
                .send()
                .await
                .map_err(classify)?;
        }
        Ok(())
    }

    /// The current version of secret `name` and its text; `None` when there is none (or it is
    /// scheduled for deletion: gone for us).
    async fn read_current(&self, name: &str) -> Result<Option<(VersionId, Zeroizing<String>)>, StoreError> {
        count(&self.calls.get);
        // VersionStage named explicitly: same as the default in AWS, and moto (the test emulator)
        // otherwise keeps answering with the version the secret was created with.
        let read = self
            .client
            .get_secret_value()
            .secret_id(name)
            .version_stage(CURRENT);
        let out = match read.send().await {
            Ok(out) => out,
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_resource_not_found_exception() || s.is_invalid_request_exception()
                }) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(classify(e)),
        };
        let version = out
            .version_id()
            .ok_or_else(|| StoreError::Backend("GetSecretValue returned no VersionId".into()))?;
        let text = out
            .secret_string()
            .ok_or_else(|| StoreError::Backend("secret has no SecretString".into()))?;
        Ok(Some((
            VersionId(version.to_owned()),
            Zeroizing::new(text.to_owned()),
        )))
    }

    /// An organization's document (its index, a shard of its ties): created once when there was
    /// none (another writer's create meanwhile: [`StoreError::Conflict`]), else swapped.
    async fn write_doc(
        &self,
        name: &str,
        description: &str,
        previous: Option<&VersionId>,
        doc: String,
        token: &WriteToken,
    ) -> Result<VersionId, StoreError> {
        match previous {
            None => {
                count(&self.calls.create);
                self.calls.wrote(doc.len());
                let created = self
                    .client
                    .create_secret()
                    .name(name)
                    .description(description)
                    .client_request_token(token.as_str())
                    .secret_string(doc)
                    .set_kms_key_id(self.kms_key_id.clone())
                    .send()
                    .await;
                match created {
                    Ok(_) => {}
                    // Made meanwhile by another writer: read it and decide again.
                    Err(e)
                        if e.as_service_error().is_some_and(|s| {
                            s.is_resource_exists_exception() || s.is_invalid_request_exception()
                        }) =>
                    {
                        return Err(StoreError::Conflict);
                    }
                    Err(e) => return Err(classify(e)),
                }
            }
            Some(previous) => self.swap(name, previous, &doc, token).await?,
        }
        Ok(VersionId(token.as_str().to_owned()))
    }

    /// The compare-and-swap: `doc` put as version `token` (staged, never read as current), then
    /// `AWSCURRENT` moved to it from `previous`, which fails if `previous` no longer holds it.
    async fn swap(
        &self,
        name: &str,
        previous: &VersionId,
        doc: &str,
        token: &WriteToken,
    ) -> Result<(), StoreError> {
        count(&self.calls.put);
        self.calls.wrote(doc.len());
        let put = self
            .client
            .put_secret_value()
            .secret_id(name)
            .client_request_token(token.as_str())
            .secret_string(doc)
            .version_stages(STAGED_LABEL)
            .send()
            .await;
        match put {
            Ok(_) => {}
            // The same token with another document: another attempt of this request already
            // wrote a different result on a version that has since moved on.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_exists_exception()) =>
            {
                return Err(StoreError::Conflict);
            }
            // Not there, or deleted and waiting out its recovery window.
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_resource_not_found_exception() || s.is_invalid_request_exception()
                }) =>
            {
                return Err(StoreError::NotFound);
            }
            Err(e) => return Err(classify(e)),
        }
        count(&self.calls.update_stage);
        let moved = self
            .client
            .update_secret_version_stage()
            .secret_id(name)
            .version_stage(CURRENT)
            .move_to_version_id(token.as_str())
            .remove_from_version_id(&previous.0)
            .send()
            .await;
        match moved {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Err(StoreError::NotFound);
            }
            // AWSCURRENT is no longer on the version we read (or is already on ours, after a
            // retried request): re-read and decide again.
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_invalid_parameter_exception() || s.is_invalid_request_exception()
                }) =>
            {
                return Err(StoreError::Conflict);
            }
            Err(e) => return Err(classify(e)),
        }
        Ok(())
    }

    fn name(&self, org: &OrgId, id: &ConnectionId) -> String {
        secret_name(&self.prefix, org, id)
    }

    fn tags(c: &Connection) -> Vec<Tag> {
        tags_of(c)
            .into_iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().into())
            .collect()
    }
}

/// The statuses of a connection not linked.
const UNLINKED: [&str; 2] = ["draft", "failed"];

/// Whether a listed secret is tagged as a connection not linked (the filters match keys and values
/// apart, so the pair is checked here).
fn is_unlinked(s: &aws_sdk_secretsmanager::types::SecretListEntry) -> bool {
    s.tags()
        .iter()
        .any(|t| t.key() == Some(STATUS_TAG) && t.value().is_some_and(|v| UNLINKED.contains(&v)))
}

fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What an SDK error means for us: throttling and outages are retryable (the SDK has already
/// retried them with jittered backoff), anything else is a failure of the backend.
fn classify<E>(err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        // A 5xx is the service's own failure, whatever its code: worth another try later.
        SdkError::ServiceError(se) if se.raw().status().is_server_error() => true,
        SdkError::ServiceError(se) => matches!(
            se.err().code(),
            Some(
                "ThrottlingException"
                    | "Throttling"
                    | "TooManyRequestsException"
                    | "InternalServiceError"
                    | "InternalFailure"
                    | "ServiceUnavailable"
                    | "RequestTimeout"
            )
        ),
        _ => false,
    };
    if transient {
        StoreError::Unavailable(Box::new(err))
    } else {
        StoreError::Backend(Box::new(err))
    }
}

#[async_trait]
impl ConnectionStore for SecretsManagerStore {
    async fn load(&self, org: &OrgId, id: &ConnectionId) -> Result<Option<Versioned>, StoreError> {
        Ok(self
            .read_stored(org, id)
            .await?
            .map(|(version, connection, pages)| Versioned {
                version,
                connection,
                pages,
            }))
    }

    async fn create(&self, connection: &Connection, token: &WriteToken) -> Result<VersionId, StoreError> {
        if let Some((record, value)) = CredentialChange::of(None, connection).put {
            self.put_credential(connection, record, value).await?;
        }
        let (doc, _) = self
            .store_pages(connection, &std::collections::BTreeSet::new())
            .await?;
        count(&self.calls.create);
        self.calls.wrote(doc.len());
        let result = self
            .client
            .create_secret()
            .name(self.name(&connection.org, &connection.id))
            .description(DESCRIPTION)
            .client_request_token(token.as_str())
            .secret_string(doc.as_str())
            .set_kms_key_id(self.kms_key_id.clone())
            .set_tags(Some(Self::tags(connection)))
            .send()
            .await;
        match result {
            Ok(out) => Ok(VersionId(out.version_id().unwrap_or(token.as_str()).to_owned())),
            // Taken, or deleted and waiting out its recovery window (the name is held meanwhile).
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_resource_exists_exception() || s.is_invalid_request_exception()
                }) =>
            {
                Err(StoreError::AlreadyExists)
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn replace(
        &self,
        previous: &Versioned,
        next: &Connection,
        token: &WriteToken,
    ) -> Result<VersionId, StoreError> {
        let name = self.name(&next.org, &next.id);
        let change = CredentialChange::of(Some(&previous.connection), next);
        if let Some((record, value)) = change.put {
            self.put_credential(next, record, value).await?;
        }
        let (doc, pages) = self.store_pages(next, &previous.pages).await?;
        self.swap(&name, &previous.version, &doc, token).await?;
        self.retag_name(&name, &previous.connection, next).await?;
        self.erase_after_write(next, change.erase).await;
        self.drop_pages(previous, &pages).await;
        Ok(VersionId(token.as_str().to_owned()))
    }

    async fn reveal(&self, connection: &Connection) -> Result<Option<ClientSecret>, StoreError> {
        let Some(record) = &connection.client_secret else {
            return Ok(None);
        };
        if let Some(held) = record.secret() {
            return Ok(Some(held.clone()));
        }
        count(&self.calls.get);
        let read = self
            .client
            .get_secret_value()
            .secret_id(self.credential(connection, &record.credential_id()))
            .send()
            .await;
        let out = match read {
            Ok(out) => out,
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_resource_not_found_exception() || s.is_invalid_request_exception()
                }) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(classify(e)),
        };
        let text = out
            .secret_string()
            .ok_or_else(|| StoreError::Backend("credential has no SecretString".into()))?;
        let secret = ClientSecret::parse(secrecy::SecretString::from(text.to_owned()))
            .map_err(|e| StoreError::Corrupt(document::DocumentError::Secret(e)))?;
        Ok(Some(secret))
    }

    async fn scan_page(&self, next: Option<String>) -> Result<ScanPage, StoreError> {
        let filter = |key, value: &str| Filter::builder().key(key).values(value).build();
        count(&self.calls.list);
        let out = self
            .client
            .list_secrets()
            .filters(filter(FilterNameStringType::Name, &self.prefix))
            .filters(filter(FilterNameStringType::TagKey, EXPIRES_TAG))
            .max_results(100)
            .set_next_token(next)
            .send()
            .await
            .map_err(classify)?;
        let entries = out
            .secret_list()
            .iter()
            .filter_map(|s| {
                let rest = s.name()?.strip_prefix(&self.prefix)?;
                ScanEntry::parse(rest, |k| {
                    s.tags()
                        .iter()
                        .find(|t| t.key() == Some(k))
                        .and_then(|t| t.value())
                })
            })
            .collect();
        Ok(ScanPage {
            entries,
            next: out.next_token().filter(|t| !t.is_empty()).map(str::to_owned),
        })
    }

    async fn linked_page(&self, next: Option<String>) -> Result<LinkedPage, StoreError> {
        let filter = |key, values: &[&str]| {
            Filter::builder()
                .key(key)
                .set_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
                .build()
        };
        count(&self.calls.list);
        let out = self
            .client
            .list_secrets()
            .filters(filter(FilterNameStringType::Name, &[&self.prefix]))
            .filters(filter(FilterNameStringType::TagKey, &[STATUS_TAG]))
            .filters(filter(FilterNameStringType::TagValue, &["connected", "degraded"]))
            .max_results(100)
            .set_next_token(next)
            .send()
            .await
            .map_err(classify)?;
        let entries = out
            .secret_list()
            .iter()
            .filter_map(|s| {
                let rest = s.name()?.strip_prefix(&self.prefix)?;
                let status = s
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(STATUS_TAG))
                    .and_then(|t| t.value());
                LinkedEntry::parse(rest, status)
            })
            .collect();
        Ok(LinkedPage {
            entries,
            next: out.next_token().filter(|t| !t.is_empty()).map(str::to_owned),
        })
    }

    async fn unlinked_page(&self, next: Option<String>) -> Result<super::UnlinkedPage, StoreError> {
        count(&self.calls.list);
        let out = self
            .unlinked_listing(&self.prefix)
            .set_next_token(next)
            .send()
            .await
            .map_err(classify)?;
        let entries = out
            .secret_list()
            .iter()
            .filter(|s| is_unlinked(s))
            .filter_map(|s| {
                let (org, id) = s.name()?.strip_prefix(&self.prefix)?.split_once('/')?;
                Some(super::UnlinkedEntry {
                    org: OrgId::parse(org).ok()?,
                    connection: ConnectionId::parse(id).ok()?,
                    last_changed: s
                        .last_changed_date()
                        .and_then(|d| chrono::DateTime::from_timestamp(d.secs(), d.subsec_nanos())),
                })
            })
            .collect();
        Ok(super::UnlinkedPage {
            entries,
            next: out.next_token().filter(|t| !t.is_empty()).map(str::to_owned),
        })
    }

    async fn unlinked_of(&self, org: &OrgId, enough: usize) -> Result<Vec<ConnectionId>, StoreError> {
        let prefix = format!("{}{org}/", self.prefix);
        let mut pages = self.unlinked_listing(&prefix).into_paginator().send();
        let mut held = Vec::new();
        while let Some(page) = pages.next().await {
            count(&self.calls.list);
            let out = page.map_err(classify)?;
            held.extend(
                out.secret_list()
                    .iter()
                    .filter(|s| is_unlinked(s))
                    .filter_map(|s| s.name()?.strip_prefix(&prefix))
                    .filter_map(|id| ConnectionId::parse(id).ok()),
            );
            if held.len() >= enough {
                break;
            }
        }
        Ok(held)
    }

    async fn load_index(&self, org: &OrgId) -> Result<Option<VersionedIndex>, StoreError> {
        let Some((version, text)) = self.read_current(&index_name(&self.prefix, org)).await? else {
            return Ok(None);
        };
        Ok(Some(VersionedIndex {
            version,
            index: OrgIndex::decode(org, &text)?,
        }))
    }

    async fn write_index(
        &self,
        previous: Option<&VersionedIndex>,
        next: &OrgIndex,
        token: &WriteToken,
    ) -> Result<VersionId, StoreError> {
        let name = index_name(&self.prefix, &next.org);
        let what = "azure-connect: an organization's index (its connections' places; no secret)";
        self.write_doc(&name, what, previous.map(|p| &p.version), next.encode(), token)
            .await
    }

    async fn load_ties(&self, org: &OrgId, path: &ShardPath) -> Result<Option<VersionedTies>, StoreError> {
        let Some((version, text)) = self.read_current(&ties_name(&self.prefix, org, path)).await? else {
            return Ok(None);
        };
        Ok(Some(VersionedTies {
            version,
            shard: TieShard::decode(org, path, &text)?,
        }))
    }

    async fn write_ties(
        &self,
        previous: Option<&VersionedTies>,
        next: &TieShard,
        token: &WriteToken,
    ) -> Result<VersionId, StoreError> {
        let name = ties_name(&self.prefix, &next.org, &next.path);
        let what = "azure-connect: an organization's ties (accounts, subscriptions, groups; no secret)";
        self.write_doc(&name, what, previous.map(|p| &p.version), next.encode(), token)
            .await
    }

    /// A claim is a secret that is created and at once scheduled for deletion (7 days): while it
    /// waits, its name cannot be created again, and it costs nothing and cleans itself up.
    async fn claim_run(&self, job: &str, run: &str) -> Result<bool, StoreError> {
        let name = claim_name(&self.prefix, job, run);
        count(&self.calls.create);
        let created = self
            .client
            .create_secret()
            .name(&name)
            .description("azure-connect: a claimed run (no data)")
            .secret_string("{}")
            // A fresh token: a retry of the same run must not pass as the first claim.
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_resource_exists_exception() || s.is_invalid_request_exception()
                }) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(classify(e)),
        }
        count(&self.calls.delete);
        self.client
            .delete_secret()
            .secret_id(&name)
            .recovery_window_in_days(7)
            .send()
            .await
            .map_err(classify)?;
        Ok(true)
    }

    async fn find(&self, org: &OrgId, by: &Lookup<'_>) -> Result<Vec<ConnectionId>, StoreError> {
        let (key, value) = by.tag();
        let prefix = format!("{}{org}/", self.prefix);
        let filter = |key, value: &str| Filter::builder().key(key).values(value).build();
        let mut found = Vec::new();
        let mut pages = self
            .client
            .list_secrets()
            .filters(filter(FilterNameStringType::Name, &prefix))
            .filters(filter(FilterNameStringType::TagKey, key))
            .filters(filter(FilterNameStringType::TagValue, &value))
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            count(&self.calls.list);
            let out = page.map_err(classify)?;
            for s in out.secret_list() {
                let tagged = s
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(key) && t.value() == Some(value.as_str()));
                let id = s
                    .name()
                    .and_then(|n| n.strip_prefix(&prefix))
                    .and_then(|rest| ConnectionId::parse(rest).ok());
                if let (true, Some(id)) = (tagged, id) {
                    found.push((s.last_changed_date().map(|d| d.as_secs_f64()).unwrap_or(0.0), id));
                }
            }
        }
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    /// Every credential of the connection is erased (no recovery), then its document is deleted
    /// with a recovery window: an operator can restore it for a while, without its secret.
    async fn delete(&self, org: &OrgId, id: &ConnectionId) -> Result<bool, StoreError> {
        let name = self.name(org, id);
        // A DeleteSecret of what is not there may succeed: ask first, so that deleting what is
        // not there is a 404.
        count(&self.calls.describe);
        match self.client.describe_secret().secret_id(&name).send().await {
            Ok(d) if d.deleted_date().is_none() => {}
            Ok(_) => return Ok(false),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(classify(e)),
        }
        let credentials = format!("{}{org}/{id}/", self.credential_prefix);
        let mut pages = self
            .client
            .list_secrets()
            .filters(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(&credentials)
                    .build(),
            )
            .max_results(100)
            .into_paginator()
            .send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            count(&self.calls.list);
            let out = page.map_err(classify)?;
            names.extend(
                out.secret_list()
                    .iter()
                    .filter_map(|s| s.name())
                    .filter(|n| n.starts_with(&credentials))
                    .map(str::to_owned),
            );
        }
        for credential in names {
            self.erase(&credential).await?;
        }
        // An estate's pages go with it (the same recovery window).
        if let Some((_, text)) = self.read_current(&name).await? {
            let hashes = document::page_refs(&text)?.hashes;
            self.delete_pages(org, id, &hashes, Some(RECOVERY_WINDOW_DAYS))
                .await;
        }
        count(&self.calls.delete);
        let result = self
            .client
            .delete_secret()
            .secret_id(&name)
            .recovery_window_in_days(RECOVERY_WINDOW_DAYS)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_resource_not_found_exception() || s.is_invalid_request_exception()
                }) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify(e)),
        }
    }
}

/// Days a deleted connection's document can be restored (Secrets Manager's minimum is 7).
pub const RECOVERY_WINDOW_DAYS: i64 = 7;
