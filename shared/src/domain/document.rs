//! The stored form of a connection: the versioned JSON document kept in one secret.
//!
//! The client secret's value is not in it (schema 2): it is kept in a credential of its own that
//! only the functions using it may read ([`crate::store`]); the document holds its hint (the
//! three characters Azure shows), its fingerprint and its dates. Documents of schema 1 held the
//! value inline: they still decode (the value held), and lose it at their next write.
//! [`Connection`] has no `Serialize`, so it cannot end up in a response, an event or a log.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::connection::{
    AppRegistration, Connection, CredentialType, FailureRecord, FederatedExport, RoleExport, SecretRecord,
    Status, Step, SubscriptionRecord, ValidationRecord,
};
use super::ids::{AccountId, ClientId, ConnectionId, OrgId, SubscriptionId, TenantId};
use super::secret::{ClientSecret, SecretExpiry, SecretFingerprint, SecretHint};

pub mod estate;

/// Version of the document layout; bump and migrate in [`decode`] when it changes.
pub const SCHEMA: u32 = 2;
/// Schema 1: the same, with the client secret's value inline.
const SCHEMA_INLINE_SECRET: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("stored connection document is not valid (schema {SCHEMA})")]
    Invalid(#[source] serde_json::Error),
    #[error("stored connection document has schema {0}, this code reads {SCHEMA}")]
    UnknownSchema(u32),
    #[error("stored client secret no longer parses")]
    Secret(#[source] super::secret::SecretError),
    #[error("stored client secret has no valid hint or fingerprint")]
    SecretRecord,
    #[error("stored estate subscriptions are not valid")]
    Estate(#[source] estate::EstateDocError),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc<'a> {
    schema: u32,
    connection_id: ConnectionId,
    org_id: OrgId,
    account_id: AccountId,
    status: Status,
    #[serde(default, skip_serializing_if = "is_secret")]
    credential_type: CredentialType,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_registration: Option<AppDoc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<SecretDoc<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription: Option<SubDoc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_role: Option<RoleDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    federated_credential: Option<FederatedDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    validation: Option<ValidationDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    linked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reminded: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotation_days_before: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_rotation: Option<RotationDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    health: Option<HealthDoc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(default)]
    recent_requests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject_salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    setup: Option<SetupDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    estate: Option<estate::EstateDoc>,
}

/// The setup command issued last: its token's SHA-256 only.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetupDoc {
    token_hash: String,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spent_at: Option<DateTime<Utc>>,
    /// `uninstall`; absent: connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organization_name: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppDoc {
    tenant_id: TenantId,
    client_id: ClientId,
    submitted_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretDoc<'a> {
    /// Schema 1 only: never written.
    #[serde(default, skip_serializing)]
    value: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    hint: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    expires_at: Option<SecretExpiry>,
    submitted_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubDoc {
    subscription_id: SubscriptionId,
    submitted_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleDoc {
    role_name: String,
    exported_at: DateTime<Utc>,
}

fn is_secret(c: &CredentialType) -> bool {
    *c == CredentialType::Secret
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FederatedDoc {
    exported_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValidationDoc {
    checked_at: DateTime<Utc>,
    inputs: String,
    checks: Vec<String>,
    warnings: Vec<String>,
    subscription_name: Option<String>,
    failure: Option<FailureDoc>,
    #[serde(default)]
    graph_manages_credentials: Option<bool>,
    #[serde(default)]
    secret_key_id: Option<String>,
    #[serde(default)]
    secret_end: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "is_secret")]
    credential: CredentialType,
    #[serde(default = "first_version")]
    role_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    over_privilege: Option<OverPrivilegeDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OverPrivilegeDoc {
    extra_grants: Vec<String>,
    roles: Vec<String>,
}

/// Documents written before role versions were validated against version 1.
fn first_version() -> u32 {
    1
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailureDoc {
    step: Step,
    code: String,
    retryable: bool,
    missing_actions: Vec<String>,
}

impl From<&ValidationRecord> for ValidationDoc {
    fn from(v: &ValidationRecord) -> Self {
        Self {
            checked_at: v.checked_at,
            inputs: v.inputs.clone(),
            checks: v.checks.clone(),
            warnings: v.warnings.clone(),
            subscription_name: v.subscription_name.clone(),
            failure: v.failure.as_ref().map(|f| FailureDoc {
                step: f.step,
                code: f.code.clone(),
                retryable: f.retryable,
                missing_actions: f.missing_actions.clone(),
            }),
            graph_manages_credentials: v.graph_manages_credentials,
            secret_key_id: v.secret_key_id.clone(),
            secret_end: v.secret_end,
            credential: v.credential,
            role_version: v.role_version,
            role_id: v.role_id.clone(),
            over_privilege: v.over_privilege.as_ref().map(|o| OverPrivilegeDoc {
                extra_grants: o.extra_grants.clone(),
                roles: o.roles.clone(),
            }),
        }
    }
}

impl From<ValidationDoc> for ValidationRecord {
    fn from(v: ValidationDoc) -> Self {
        Self {
            checked_at: v.checked_at,
            inputs: v.inputs,
            checks: v.checks,
            warnings: v.warnings,
            subscription_name: v.subscription_name,
            failure: v.failure.map(|f| FailureRecord {
                step: f.step,
                code: f.code,
                retryable: f.retryable,
                missing_actions: f.missing_actions,
            }),
            graph_manages_credentials: v.graph_manages_credentials,
            secret_key_id: v.secret_key_id,
            secret_end: v.secret_end,
            credential: v.credential,
            role_version: v.role_version,
            role_id: v.role_id,
            over_privilege: v.over_privilege.map(|o| super::privilege::OverPrivilege {
                extra_grants: o.extra_grants,
                roles: o.roles,
            }),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthDoc {
    checked_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    diagnosis: Option<FailureDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    outdated: Vec<String>,
}

impl FailureDoc {
    fn of(f: &FailureRecord) -> Self {
        Self {
            step: f.step,
            code: f.code.clone(),
            retryable: f.retryable,
            missing_actions: f.missing_actions.clone(),
        }
    }

    fn record(self) -> FailureRecord {
        FailureRecord {
            step: self.step,
            code: self.code,
            retryable: self.retryable,
            missing_actions: self.missing_actions,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RotationDoc {
    token: String,
    base_version: String,
    #[serde(default)]
    replaces_secret_of: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replaces_credential: Option<String>,
    retired_key_id: Option<String>,
    rotated_at: DateTime<Utc>,
}

/// The most a connection's stored document may take: a secret's value holds at most 65,536 bytes
/// ("SecretString … Maximum length of 65536", Secrets Manager API reference), and the embedded
/// store keeps the same bound.
pub const MAX_DOCUMENT: usize = 65_536;

/// A connection as stored: its document, and the pages of an estate's list too large to keep
/// inline, each to be stored under its hash before the document that names them.
pub struct Stored {
    pub doc: Zeroizing<String>,
    pub pages: Vec<estate::Page>,
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The document holds the secret: never shown.
        f.debug_struct("Stored")
            .field("doc_bytes", &self.doc.len())
            .field("pages", &self.pages.len())
            .finish()
    }
}

/// [`encode`] with an estate's list in pages when it is too large to keep inline; `None` when
/// even pages would not hold it (never for a connection that passed [`Connection::check_size`]).
pub fn encode_stored(c: &Connection) -> Option<Stored> {
    let (estate, pages) = match &c.estate {
        Some(e) => {
            let (doc, pages) = estate::EstateDoc::stored(e)?;
            (Some(doc), pages)
        }
        None => (None, Vec::new()),
    };
    Some(Stored {
        doc: to_doc(c, estate),
        pages,
    })
}

/// Where a stored document's estate list is: the document's organization and connection, and
/// the hashes of its pages (none when the list is inline).
#[derive(Debug)]
pub struct PageRefs {
    pub org: OrgId,
    pub connection: ConnectionId,
    pub hashes: Vec<String>,
}

/// [`PageRefs`] of a stored document.
pub fn page_refs(s: &str) -> Result<PageRefs, DocumentError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Refs {
        org_id: OrgId,
        connection_id: ConnectionId,
        #[serde(default)]
        estate: Option<estate::EstateDoc>,
    }
    let doc: Refs = serde_json::from_str(s).map_err(DocumentError::Invalid)?;
    Ok(PageRefs {
        org: doc.org_id,
        connection: doc.connection_id,
        hashes: doc
            .estate
            .map(|e| e.page_hashes().map(str::to_owned).collect())
            .unwrap_or_default(),
    })
}

/// Serializes a connection with its whole estate list inline. The string holds the secret: it is
/// zeroed on drop.
pub fn encode(c: &Connection) -> Zeroizing<String> {
    to_doc(c, c.estate.as_ref().map(estate::EstateDoc::of))
}

fn to_doc(c: &Connection, estate: Option<estate::EstateDoc>) -> Zeroizing<String> {
    let doc = Doc {
        schema: SCHEMA,
        connection_id: c.id,
        org_id: c.org.clone(),
        account_id: c.account.clone(),
        status: c.status,
        credential_type: c.credential_type,
        app_registration: c.app_registration.as_ref().map(|a| AppDoc {
            tenant_id: a.tenant.clone(),
            client_id: a.client,
            submitted_at: a.submitted_at,
        }),
        client_secret: c.client_secret.as_ref().map(|s| SecretDoc {
            value: None,
            hint: Some(s.hint().as_str().to_owned()),
            fingerprint: Some(s.fingerprint().as_str().to_owned()),
            expires_at: s.expires_at,
            submitted_at: s.submitted_at,
        }),
        subscription: c.subscription.as_ref().map(|s| SubDoc {
            subscription_id: s.subscription,
            submitted_at: s.submitted_at,
        }),
        custom_role: c.custom_role.as_ref().map(|r| RoleDoc {
            role_name: r.role_name.clone(),
            exported_at: r.exported_at,
        }),
        federated_credential: c.federated.map(|f| FederatedDoc {
            exported_at: f.exported_at,
        }),
        validation: c.validation.as_ref().map(ValidationDoc::from),
        linked_at: c.linked_at,
        reminded: c.reminded,
        rotation_days_before: c.rotation.map(|r| r.days_before),
        last_rotation: c.last_rotation.as_ref().map(|r| RotationDoc {
            token: r.token.clone(),
            base_version: r.base_version.clone(),
            replaces_secret_of: r.replaces_secret_of,
            replaces_credential: r.replaces_credential.clone(),
            retired_key_id: r.retired_key_id.clone(),
            rotated_at: r.rotated_at,
        }),
        health: c.health.as_ref().map(|h| HealthDoc {
            checked_at: h.checked_at,
            diagnosis: h.diagnosis.as_ref().map(FailureDoc::of),
            outdated: h.outdated.clone(),
        }),
        created_at: c.created_at,
        updated_at: c.updated_at,
        recent_requests: c.recent_requests.clone(),
        subject_salt: c.subject_salt.clone(),
        setup: c.setup.as_ref().map(|g| SetupDoc {
            token_hash: g.token_hash.clone(),
            issued_at: g.issued_at,
            expires_at: g.expires_at,
            spent_at: g.spent_at,
            purpose: (g.purpose != super::setup::SetupPurpose::Connect)
                .then(|| g.purpose.as_str().to_owned()),
            organization_name: g.organization_name.as_ref().map(|n| n.as_str().to_owned()),
        }),
        estate,
    };
    // Serializing plain data into a String cannot fail.
    Zeroizing::new(serde_json::to_string(&doc).unwrap_or_default())
}

/// A stored connection whose estate list is inline (one in pages: [`decode_with_pages`]).
pub fn decode(s: &str) -> Result<Connection, DocumentError> {
    decode_with_pages(s, &std::collections::BTreeMap::new())
}

/// A stored connection, its estate list read from `pages` (text by hash) when it is in pages.
pub fn decode_with_pages(
    s: &str,
    pages: &std::collections::BTreeMap<String, String>,
) -> Result<Connection, DocumentError> {
    let doc: Doc<'static> = serde_json::from_str(s).map_err(DocumentError::Invalid)?;
    if doc.schema != SCHEMA && doc.schema != SCHEMA_INLINE_SECRET {
        return Err(DocumentError::UnknownSchema(doc.schema));
    }
    let client_secret = match doc.client_secret {
        None => None,
        Some(SecretDoc {
            value: Some(value),
            expires_at,
            submitted_at,
            ..
        }) => Some(SecretRecord::new(
            ClientSecret::parse(SecretString::from(value.into_owned())).map_err(DocumentError::Secret)?,
            expires_at,
            submitted_at,
        )),
        Some(s) => Some(SecretRecord::sealed(
            s.hint
                .as_deref()
                .and_then(SecretHint::parse)
                .ok_or(DocumentError::SecretRecord)?,
            s.fingerprint
                .as_deref()
                .and_then(SecretFingerprint::parse)
                .ok_or(DocumentError::SecretRecord)?,
            s.expires_at,
            s.submitted_at,
        )),
    };
    Ok(Connection {
        id: doc.connection_id,
        org: doc.org_id,
        account: doc.account_id,
        status: doc.status,
        credential_type: doc.credential_type,
        app_registration: doc.app_registration.map(|a| AppRegistration {
            tenant: a.tenant_id,
            client: a.client_id,
            submitted_at: a.submitted_at,
        }),
        client_secret,
        subscription: doc.subscription.map(|s| SubscriptionRecord {
            subscription: s.subscription_id,
            submitted_at: s.submitted_at,
        }),
        custom_role: doc.custom_role.map(|r| RoleExport {
            role_name: r.role_name,
            exported_at: r.exported_at,
        }),
        federated: doc.federated_credential.map(|f| FederatedExport {
            exported_at: f.exported_at,
        }),
        validation: doc.validation.map(ValidationRecord::from),
        linked_at: doc.linked_at,
        reminded: doc.reminded,
        rotation: doc
            .rotation_days_before
            .map(|days_before| super::connection::RotationSettings { days_before }),
        last_rotation: doc.last_rotation.map(|r| super::connection::RotationRecord {
            token: r.token,
            base_version: r.base_version,
            replaces_secret_of: r.replaces_secret_of,
            replaces_credential: r.replaces_credential,
            retired_key_id: r.retired_key_id,
            rotated_at: r.rotated_at,
        }),
        health: doc.health.map(|h| super::health::HealthRecord {
            checked_at: h.checked_at,
            diagnosis: h.diagnosis.map(FailureDoc::record),
            outdated: h.outdated,
        }),
        created_at: doc.created_at,
        updated_at: doc.updated_at,
        recent_requests: doc.recent_requests,
        subject_salt: doc.subject_salt,
        setup: doc.setup.map(|g| super::setup::SetupGrant {
            token_hash: g.token_hash,
            issued_at: g.issued_at,
            expires_at: g.expires_at,
            spent_at: g.spent_at,
            // An unknown purpose is none we issued: it admits nothing it could be mistaken for.
            purpose: g
                .purpose
                .as_deref()
                .map_or(
                    Some(super::setup::SetupPurpose::Connect),
                    super::setup::SetupPurpose::parse,
                )
                .unwrap_or(super::setup::SetupPurpose::Uninstall),
            organization_name: g
                .organization_name
                .as_deref()
                .and_then(|n| super::setup::OrganizationName::parse(n).ok()),
        }),
        estate: doc
            .estate
            .map(|e| e.estate_with(pages))
            .transpose()
            .map_err(DocumentError::Estate)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Command;

    #[test]
    fn round_trips_every_field() {
        let at = Utc::now();
        let mut c = Connection::new(
            ConnectionId::new_random(),
            OrgId::parse("org-1").unwrap(),
            AccountId::parse("act-12345678").unwrap(),
            at,
        )
        .created_by("r0");
        for cmd in [
            Command::AppRegistration {
                tenant: TenantId::parse("contoso.onmicrosoft.com").unwrap(),
                client: ClientId::parse("11111111-2222-4333-8444-555555555555").unwrap(),
            },
            Command::ClientSecret {
                secret: ClientSecret::parse(SecretString::from("abc8Q~xyz.-_0123456789".to_owned())).unwrap(),
                expires_at: Some(SecretExpiry::parse("2099-01-01", at).unwrap()),
            },
            Command::Subscription {
                subscription: SubscriptionId::parse("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab").unwrap(),
                replace_estate: false,
            },
            Command::ExportCustomRole,
            Command::IssueSetup(crate::domain::setup::SetupGrant::new(
                &crate::domain::setup::SetupToken::mint(c.org.clone(), c.id, [9; 32]),
                at,
            )),
        ] {
            c.apply(&cmd, "r", at).unwrap();
        }
        let encoded = encode(&c);
        assert!(encoded.contains("\"schema\":2"));
        assert!(encoded.contains("\"tokenHash\""), "{}", *encoded);
        assert!(
            !encoded.contains("abc8Q~xyz"),
            "the value is not in the document: {}",
            *encoded
        );
        let decoded = decode(&encoded).unwrap();
        assert_eq!(decoded, c);
        let record = decoded.client_secret.unwrap();
        assert!(record.secret().is_none(), "read back sealed");
        assert_eq!(record.hint().as_str(), "abc");
    }

    #[test]
    fn a_schema_1_document_decodes_with_its_inline_secret_and_is_written_without_it() {
        let at = Utc::now();
        let mut c = Connection::new(
            ConnectionId::new_random(),
            OrgId::parse("org-1").unwrap(),
            AccountId::parse("act-12345678").unwrap(),
            at,
        );
        let secret = ClientSecret::parse(SecretString::from("abc8Q~xyz.-_0123456789".to_owned())).unwrap();
        c.apply(
            &Command::ClientSecret {
                secret,
                expires_at: None,
            },
            "r",
            at,
        )
        .unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&encode(&c)).unwrap();
        v["schema"] = 1.into();
        v["clientSecret"] =
            serde_json::json!({"value": "abc8Q~xyz.-_0123456789", "expiresAt": null, "submittedAt": at});
        let legacy = decode(&v.to_string()).unwrap();
        let record = legacy.client_secret.as_ref().unwrap();
        assert_eq!(
            record.secret().map(|s| s.expose()),
            Some("abc8Q~xyz.-_0123456789")
        );
        assert_eq!(&legacy, &c);
        assert!(!encode(&legacy).contains("abc8Q~xyz"));
    }

    #[test]
    fn refuses_unknown_schema() {
        let at = Utc::now();
        let c = Connection::new(
            ConnectionId::new_random(),
            OrgId::parse("o").unwrap(),
            AccountId::parse("act-12345678").unwrap(),
            at,
        );
        let s = encode(&c).replace("\"schema\":2", "\"schema\":99");
        assert!(matches!(decode(&s), Err(DocumentError::UnknownSchema(99))));
    }
}
