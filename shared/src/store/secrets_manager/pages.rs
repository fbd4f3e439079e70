//! An estate's list too large for its connection's secret ([`document::encode_stored`]) lives in
//! pages, each a secret of its own named by the hash of its content:
//! `{prefix}{orgId}/{connectionId}+p-{hash}`. A page is never changed: a write whose list
//! changed stores the pages it does not find (create-once: the same name is the same content),
//! then swaps the document that names them, then deletes the pages the document no longer names
//! (at once; a deleted connection's within its recovery window, as its document). A
//! reader reads the document, then its pages; a page deleted meanwhile (a newer write replaced
//! it) sends it back to the document.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use futures_util::future::try_join_all;
use zeroize::Zeroizing;

use super::{SecretsManagerStore, VersionId, classify, count};
use crate::domain::document::{self, estate::Page};
use crate::domain::{Connection, ConnectionId, OrgId};
use crate::store::StoreError;

const PAGE_DESCRIPTION: &str = "azure-connect: a page of an estate's subscriptions (no secret)";

/// How many times a reader goes back to the document when a page it names is gone.
const READ_AGAIN: usize = 3;

/// Pages read at once.
const PAGES_AT_ONCE: usize = 8;

impl SecretsManagerStore {
    fn page_name(&self, org: &OrgId, id: &ConnectionId, hash: &str) -> String {
        format!("{}+p-{hash}", self.name(org, id))
    }

    /// The current connection with its pages, and the pages' hashes; `None` when there is none.
    pub(super) async fn read_stored(
        &self,
        org: &OrgId,
        id: &ConnectionId,
    ) -> Result<Option<(VersionId, Connection, BTreeSet<String>)>, StoreError> {
        let name = self.name(org, id);
        for _ in 0..READ_AGAIN {
            let Some((version, text)) = self.read_current(&name).await? else {
                return Ok(None);
            };
            let hashes = document::page_refs(&text)?.hashes;
            if hashes.is_empty() {
                return Ok(Some((version, document::decode(&text)?, BTreeSet::new())));
            }
            if let Some(pages) = self.read_pages(org, id, &hashes).await? {
                let connection = document::decode_with_pages(&text, &pages)?;
                return Ok(Some((version, connection, hashes.into_iter().collect())));
            }
            tracing::debug!(connection = %id, "a page was replaced while it was read; reading again");
        }
        Err(StoreError::Unavailable(
            "the estate's pages kept changing while they were read".into(),
        ))
    }

    /// A stored document `text` (of any version) with its pages: `None` when one is gone.
    pub(super) async fn decode_read(&self, text: &str) -> Result<Option<Connection>, StoreError> {
        let refs = document::page_refs(text)?;
        if refs.hashes.is_empty() {
            return Ok(Some(document::decode(text)?));
        }
        match self.read_pages(&refs.org, &refs.connection, &refs.hashes).await? {
            Some(pages) => Ok(Some(document::decode_with_pages(text, &pages)?)),
            None => Ok(None),
        }
    }

    /// The pages `hashes` by hash; `None` when one is gone (deleted by a newer write).
    async fn read_pages(
        &self,
        org: &OrgId,
        id: &ConnectionId,
        hashes: &[String],
    ) -> Result<Option<BTreeMap<String, String>>, StoreError> {
        let mut pages = BTreeMap::new();
        for chunk in hashes.chunks(PAGES_AT_ONCE) {
            let reads = chunk.iter().map(|hash| async move {
                let read = self.read_current(&self.page_name(org, id, hash)).await?;
                Ok::<_, StoreError>(read.map(|(_, text)| (hash.clone(), text)))
            });
            for read in try_join_all(reads).await? {
                let Some((hash, text)) = read else {
                    return Ok(None);
                };
                pages.insert(hash, text.to_string());
            }
        }
        Ok(Some(pages))
    }

    /// `connection` encoded as stored, its pages (those not among `had`, the pages of the
    /// version it replaces) stored first.
    pub(super) async fn store_pages(
        &self,
        connection: &Connection,
        had: &BTreeSet<String>,
    ) -> Result<(Zeroizing<String>, Vec<String>), StoreError> {
        let stored = document::encode_stored(connection)
            .ok_or_else(|| StoreError::Backend("the estate's list does not fit even in pages".into()))?;
        let new: Vec<&Page> = stored.pages.iter().filter(|p| !had.contains(&p.hash)).collect();
        for chunk in new.chunks(PAGES_AT_ONCE) {
            try_join_all(
                chunk
                    .iter()
                    .map(|page| self.put_page(&connection.org, &connection.id, page)),
            )
            .await?;
        }
        let hashes = stored.pages.into_iter().map(|p| p.hash).collect();
        Ok((stored.doc, hashes))
    }

    /// A page made once: there already (the same content: the same name), or restored when it
    /// waits out its recovery window.
    async fn put_page(&self, org: &OrgId, id: &ConnectionId, page: &Page) -> Result<(), StoreError> {
        let name = self.page_name(org, id, &page.hash);
        count(&self.calls.create);
        self.calls.wrote(page.text.len());
        let created = self
            .client
            .create_secret()
            .name(&name)
            .description(PAGE_DESCRIPTION)
            .secret_string(&page.text)
            .set_kms_key_id(self.kms_key_id.clone())
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
            // Its name still held by a deletion (Secrets Manager's deletes are eventually
            // consistent): retryable.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_request_exception()) =>
            {
                Err(StoreError::Unavailable(
                    "an estate page's name is still held by its deletion".into(),
                ))
            }
            Err(e) => Err(classify(e)),
        }
    }

    /// After a write: the pages `previous` named that `kept` does not, deleted at once (no
    /// recovery window: a page is only a copy of what the document named, and its name, its
    /// content, may be needed again). A failure is logged, not the write's (an unnamed page is
    /// only a cost).
    pub(super) async fn drop_pages(&self, previous: &crate::store::Versioned, kept: &[String]) {
        let gone: Vec<String> = previous
            .pages
            .iter()
            .filter(|h| !kept.contains(h))
            .cloned()
            .collect();
        let c = &previous.connection;
        self.delete_pages(&c.org, &c.id, &gone, None).await;
    }

    /// The pages `hashes` of a connection deleted: within `recovery_days` when given (a deleted
    /// connection's, as its own document), else at once.
    pub(super) async fn delete_pages(
        &self,
        org: &OrgId,
        id: &ConnectionId,
        hashes: &[String],
        recovery_days: Option<i64>,
    ) {
        for hash in hashes {
            count(&self.calls.delete);
            let deleted = self
                .client
                .delete_secret()
                .secret_id(self.page_name(org, id, hash))
                .set_recovery_window_in_days(recovery_days)
                .set_force_delete_without_recovery(recovery_days.is_none().then_some(true))
                .send()
                .await;
            if let Err(e) = deleted {
                let code = e.code().unwrap_or_default().to_owned();
                if !matches!(
                    code.as_str(),
                    "ResourceNotFoundException" | "InvalidRequestException"
                ) {
                    tracing::warn!(connection = %id, error = %e, "an estate page no longer named was not deleted");
                }
            }
        }
    }
}
