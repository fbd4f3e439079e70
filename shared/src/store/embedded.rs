//! The embedded store: every connection in one JSON file (mode 0600) under a directory, with the
//! same compare-and-swap and idempotency semantics as Secrets Manager. For the local server and
//! tests on one machine; one process owns the file at a time.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{
    ConnectionStore, CredentialChange, LinkedEntry, LinkedPage, Lookup, STATUS_TAG, ScanEntry, ScanPage,
    StoreError, VersionId, Versioned, VersionedIndex, VersionedTies, WriteToken, claim_name, credential_name,
    index_name, secret_name, tags_of, ties_name,
};
use crate::domain::document;
use crate::domain::organization::OrgIndex;
use crate::domain::ties::{ShardPath, TieShard};
use crate::domain::{ClientSecret, Connection, ConnectionId, OrgId};

const FILE_NAME: &str = "connections.json";

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create or read the store directory {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the store file")]
    Write(#[source] StoreError),
    #[error("the store file {path} is not valid")]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Default, Serialize, Deserialize)]
struct Secrets {
    secrets: BTreeMap<String, Entry>,
    /// Claimed runs ([`ConnectionStore::claim_run`]), oldest first, the last [`CLAIMS_KEPT`].
    #[serde(default)]
    claims: Vec<String>,
    /// Each client secret's value, by credential name (see [`crate::store`]).
    #[serde(default)]
    credentials: BTreeMap<String, Zeroizing<String>>,
    /// Each organization's index ([`crate::domain::organization`]), by its secret's name.
    #[serde(default)]
    indexes: BTreeMap<String, IndexEntry>,
}

#[derive(Serialize, Deserialize)]
struct IndexEntry {
    current: String,
    document: String,
}

/// How many claims the embedded store remembers (a week of 15-minute runs is 672).
const CLAIMS_KEPT: usize = 2_000;

#[derive(Serialize, Deserialize)]
struct Entry {
    current: String,
    document: Zeroizing<String>,
    tags: BTreeMap<String, String>,
    /// Bumped on every write: "most recently changed first" for [`ConnectionStore::find`].
    #[serde(default)]
    changed: u64,
}

pub struct EmbeddedStore {
    prefix: String,
    credential_prefix: String,
    file: PathBuf,
    state: Mutex<Secrets>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store under `dir`: the directory 0700, the file 0600.
    pub fn open(dir: &Path, prefix: &str) -> Result<Self, OpenError> {
        let io = |source| OpenError::Io {
            path: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let file = dir.join(FILE_NAME);
        let state = match fs::read(&file) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                serde_json::from_slice(&bytes).map_err(|source| OpenError::Invalid {
                    path: file.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Secrets::default(),
            Err(e) => {
                return Err(OpenError::Io {
                    path: file,
                    source: e,
                });
            }
        };
        let store = Self {
            prefix: prefix.to_owned(),
            credential_prefix: super::default_credential_prefix(prefix),
            file,
            state: Mutex::new(state),
        };
        {
            let guard = store.lock().map_err(OpenError::Write)?;
            store.persist(&guard).map_err(OpenError::Write)?;
        }
        Ok(store)
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Secrets>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::Backend("embedded store lock poisoned".into()))
    }

    /// Writes the whole file to a temporary sibling (0600) and renames it over the old one.
    fn persist(&self, state: &Secrets) -> Result<(), StoreError> {
        let bytes = Zeroizing::new(serde_json::to_vec(state).map_err(|e| StoreError::Backend(e.into()))?);
        let tmp = self.file.with_extension("json.tmp");
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let write = || -> std::io::Result<()> {
            let mut f = options.open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.file)
        };
        write().map_err(|e| StoreError::Backend(e.into()))
    }

    fn next_change(state: &Secrets) -> u64 {
        state.secrets.values().map(|e| e.changed).max().unwrap_or(0) + 1
    }

    fn tags(c: &Connection) -> BTreeMap<String, String> {
        tags_of(c).into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    fn credential(&self, c: &Connection, credential_id: &str) -> String {
        credential_name(&self.credential_prefix, &c.org, &c.id, credential_id)
    }

    /// The credentials a write puts and erases (in memory; persisted with the document).
    fn apply_credentials(&self, state: &mut Secrets, previous: Option<&Connection>, next: &Connection) {
        let change = CredentialChange::of(previous, next);
        if let Some((record, value)) = change.put {
            state.credentials.insert(
                self.credential(next, &record.credential_id()),
                Zeroizing::new(value.expose().to_owned()),
            );
        }
        if let Some(credential_id) = change.erase {
            state.credentials.remove(&self.credential(next, &credential_id));
        }
    }
}

impl EmbeddedStore {
    /// An organization's document (index or ties shard) written by compare-and-swap.
    fn write_doc(
        &self,
        name: String,
        previous: Option<&VersionId>,
        document: String,
        token: &WriteToken,
    ) -> Result<VersionId, StoreError> {
        let mut state = self.lock()?;
        let current = state.indexes.get(&name).map(|e| e.current.as_str());
        if current != previous.map(|p| p.0.as_str()) {
            return Err(StoreError::Conflict);
        }
        let entry = IndexEntry {
            current: token.as_str().to_owned(),
            document,
        };
        let old = state.indexes.insert(name.clone(), entry);
        if let Err(e) = self.persist(&state) {
            match old {
                Some(old) => state.indexes.insert(name, old),
                None => state.indexes.remove(&name),
            };
            return Err(e);
        }
        Ok(VersionId(token.as_str().to_owned()))
    }
}

#[async_trait]
impl ConnectionStore for EmbeddedStore {
    async fn reveal(&self, connection: &Connection) -> Result<Option<ClientSecret>, StoreError> {
        let Some(record) = &connection.client_secret else {
            return Ok(None);
        };
        if let Some(held) = record.secret() {
            return Ok(Some(held.clone()));
        }
        let state = self.lock()?;
        let Some(value) = state
            .credentials
            .get(&self.credential(connection, &record.credential_id()))
        else {
            return Ok(None);
        };
        ClientSecret::parse(secrecy::SecretString::from(value.to_string()))
            .map(Some)
            .map_err(|e| StoreError::Corrupt(document::DocumentError::Secret(e)))
    }

    async fn load(&self, org: &OrgId, id: &ConnectionId) -> Result<Option<Versioned>, StoreError> {
        let name = secret_name(&self.prefix, org, id);
        let state = self.lock()?;
        let Some(entry) = state.secrets.get(&name) else {
            return Ok(None);
        };
        Ok(Some(Versioned {
            version: VersionId(entry.current.clone()),
            connection: document::decode(&entry.document)?,
            pages: Default::default(),
        }))
    }

    async fn create(&self, connection: &Connection, token: &WriteToken) -> Result<VersionId, StoreError> {
        let name = secret_name(&self.prefix, &connection.org, &connection.id);
        let doc = document::encode(connection);
        let mut state = self.lock()?;
        let changed = Self::next_change(&state);
        if let Some(existing) = state.secrets.get(&name) {
            // CreateSecret with the same token and value is a no-op in Secrets Manager too.
            if existing.current == token.as_str() && *existing.document == *doc {
                return Ok(VersionId(existing.current.clone()));
            }
            return Err(StoreError::AlreadyExists);
        }
        let credentials = state.credentials.clone();
        self.apply_credentials(&mut state, None, connection);
        state.secrets.insert(
            name.clone(),
            Entry {
                current: token.as_str().to_owned(),
                document: doc,
                tags: Self::tags(connection),
                changed,
            },
        );
        if let Err(e) = self.persist(&state) {
            state.secrets.remove(&name);
            state.credentials = credentials;
            return Err(e);
        }
        Ok(VersionId(token.as_str().to_owned()))
    }

    async fn replace(
        &self,
        previous: &Versioned,
        next: &Connection,
        token: &WriteToken,
    ) -> Result<VersionId, StoreError> {
        let name = secret_name(&self.prefix, &next.org, &next.id);
        let doc = document::encode(next);
        let mut state = self.lock()?;
        let changed = Self::next_change(&state);
        let Some(entry) = state.secrets.get_mut(&name) else {
            return Err(StoreError::NotFound);
        };
        // Also a repeat of a write that already landed: like Secrets Manager, whose label move
        // then finds AWSCURRENT no longer on `previous`.
        if entry.current != previous.version.0 {
            return Err(StoreError::Conflict);
        }
        let old = std::mem::replace(
            entry,
            Entry {
                current: token.as_str().to_owned(),
                document: doc,
                tags: Self::tags(next),
                changed,
            },
        );
        let credentials = state.credentials.clone();
        self.apply_credentials(&mut state, Some(&previous.connection), next);
        if let Err(e) = self.persist(&state) {
            state.secrets.insert(name, old);
            state.credentials = credentials;
            return Err(e);
        }
        Ok(VersionId(token.as_str().to_owned()))
    }

    async fn scan_page(&self, _next: Option<String>) -> Result<ScanPage, StoreError> {
        let state = self.lock()?;
        let entries = state
            .secrets
            .iter()
            .filter_map(|(name, e)| {
                let rest = name.strip_prefix(&self.prefix)?;
                ScanEntry::parse(rest, |k| e.tags.get(k).map(String::as_str))
            })
            .collect();
        Ok(ScanPage { entries, next: None })
    }

    async fn linked_page(&self, _next: Option<String>) -> Result<LinkedPage, StoreError> {
        let state = self.lock()?;
        let entries = state
            .secrets
            .iter()
            .filter_map(|(name, e)| {
                let rest = name.strip_prefix(&self.prefix)?;
                LinkedEntry::parse(rest, e.tags.get(STATUS_TAG).map(String::as_str))
            })
            .collect();
        Ok(LinkedPage { entries, next: None })
    }

    async fn unlinked_page(&self, _next: Option<String>) -> Result<super::UnlinkedPage, StoreError> {
        let state = self.lock()?;
        let entries = state
            .secrets
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e.tags.get(STATUS_TAG).map(String::as_str),
                    Some("draft" | "failed")
                )
            })
            .filter_map(|(name, e)| {
                let (org, id) = name.strip_prefix(&self.prefix)?.split_once('/')?;
                Some(super::UnlinkedEntry {
                    org: OrgId::parse(org).ok()?,
                    connection: ConnectionId::parse(id).ok()?,
                    last_changed: document::decode(&e.document).ok().map(|c| c.updated_at),
                })
            })
            .collect();
        Ok(super::UnlinkedPage { entries, next: None })
    }

    async fn unlinked_of(&self, org: &OrgId, enough: usize) -> Result<Vec<ConnectionId>, StoreError> {
        let prefix = format!("{}{org}/", self.prefix);
        let state = self.lock()?;
        Ok(state
            .secrets
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e.tags.get(STATUS_TAG).map(String::as_str),
                    Some("draft" | "failed")
                )
            })
            .filter_map(|(name, _)| ConnectionId::parse(name.strip_prefix(&prefix)?).ok())
            .take(enough)
            .collect())
    }

    async fn load_index(&self, org: &OrgId) -> Result<Option<VersionedIndex>, StoreError> {
        let state = self.lock()?;
        let Some(entry) = state.indexes.get(&index_name(&self.prefix, org)) else {
            return Ok(None);
        };
        Ok(Some(VersionedIndex {
            version: VersionId(entry.current.clone()),
            index: OrgIndex::decode(org, &entry.document)?,
        }))
    }

    async fn write_index(
        &self,
        previous: Option<&VersionedIndex>,
        next: &OrgIndex,
        token: &WriteToken,
    ) -> Result<VersionId, StoreError> {
        let name = index_name(&self.prefix, &next.org);
        self.write_doc(name, previous.map(|p| &p.version), next.encode(), token)
    }

    async fn load_ties(&self, org: &OrgId, path: &ShardPath) -> Result<Option<VersionedTies>, StoreError> {
        let state = self.lock()?;
        let Some(entry) = state.indexes.get(&ties_name(&self.prefix, org, path)) else {
            return Ok(None);
        };
        Ok(Some(VersionedTies {
            version: VersionId(entry.current.clone()),
            shard: TieShard::decode(org, path, &entry.document)?,
        }))
    }

    async fn write_ties(
        &self,
        previous: Option<&VersionedTies>,
        next: &TieShard,
        token: &WriteToken,
    ) -> Result<VersionId, StoreError> {
        let name = ties_name(&self.prefix, &next.org, &next.path);
        self.write_doc(name, previous.map(|p| &p.version), next.encode(), token)
    }

    async fn claim_run(&self, job: &str, run: &str) -> Result<bool, StoreError> {
        let name = claim_name(&self.prefix, job, run);
        let mut state = self.lock()?;
        if state.claims.contains(&name) {
            return Ok(false);
        }
        state.claims.push(name);
        let excess = state.claims.len().saturating_sub(CLAIMS_KEPT);
        state.claims.drain(..excess);
        self.persist(&state)?;
        Ok(true)
    }

    async fn find(&self, org: &OrgId, by: &Lookup<'_>) -> Result<Vec<ConnectionId>, StoreError> {
        let (key, value) = by.tag();
        let prefix = format!("{}{org}/", self.prefix);
        let state = self.lock()?;
        let mut found: Vec<(u64, ConnectionId)> = state
            .secrets
            .iter()
            .filter(|(name, e)| name.starts_with(&prefix) && e.tags.get(key) == Some(&value))
            .filter_map(|(name, e)| {
                ConnectionId::parse(&name[prefix.len()..])
                    .ok()
                    .map(|id| (e.changed, id))
            })
            .collect();
        found.sort_by_key(|(changed, _)| std::cmp::Reverse(*changed));
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    async fn delete(&self, org: &OrgId, id: &ConnectionId) -> Result<bool, StoreError> {
        let name = secret_name(&self.prefix, org, id);
        let mut state = self.lock()?;
        let Some(old) = state.secrets.remove(&name) else {
            return Ok(false);
        };
        let credentials = state.credentials.clone();
        let mine = format!("{}{org}/{id}/", self.credential_prefix);
        state.credentials.retain(|k, _| !k.starts_with(&mine));
        if let Err(e) = self.persist(&state) {
            state.secrets.insert(name, old);
            state.credentials = credentials;
            return Err(e);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_is_private() {
        let dir = std::env::temp_dir().join(format!("azc-embedded-{}", uuid::Uuid::new_v4()));
        let store = EmbeddedStore::open(&dir, "p/").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.file()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        fs::remove_dir_all(dir).unwrap();
    }
}
