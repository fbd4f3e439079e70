//! One connection: what the customer has entered so far and where the wizard stands.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::estate::{Estate, EstateError, Scope, Survey};
use super::ids::{AccountId, ClientId, ConnectionId, ManagementGroupId, OrgId, SubscriptionId, TenantId};
use super::role::CustomRole;
use super::secret::{ClientSecret, SecretExpiry};
pub use super::secret::{SecretRecord, SecretValue};

/// How many request ids a connection remembers, so a retried request changes nothing.
pub const REMEMBERED_REQUESTS: usize = 16;

/// The wizard's steps, in order. `Start` is 3.1; `RoleAssignment` is 3.6 ("Connect Account").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Start,
    AppRegistration,
    ClientSecret,
    /// For secretless connections, in place of the client secret: the federated credential the
    /// customer adds to the app registration.
    FederatedCredential,
    Subscription,
    CustomRole,
    RoleAssignment,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::AppRegistration => "app-registration",
            Self::ClientSecret => "client-secret",
            Self::FederatedCredential => "federated-credential",
            Self::Subscription => "subscription",
            Self::CustomRole => "custom-role",
            Self::RoleAssignment => "role-assignment",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Inputs are being collected (or changed since the last validation).
    Draft,
    /// Validated against Azure and linked.
    Connected,
    /// The last validation failed; inputs are kept.
    Failed,
    /// The client secret has expired.
    Expired,
    /// Linked, but a health check found something broken since (the diagnosis is kept).
    Degraded,
}

impl Status {
    /// Whether a connection in this status holds one of its organization's places among the
    /// unlinked connections (the quota): drafts and failed ones, as the store's listings count.
    pub fn holds_place(self) -> bool {
        matches!(self, Self::Draft | Self::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Connected => "connected",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Degraded => "degraded",
        }
    }
}

/// How the app proves who it is to Entra ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialType {
    /// A client secret the customer pastes (3.3); it expires and is reminded, rotated.
    #[default]
    Secret,
    /// Workload identity federation: the app trusts our OpenID issuer; no secret anywhere.
    Federated,
}

impl CredentialType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Federated => "federated",
        }
    }

    /// `secret` or `federated`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "secret" => Some(Self::Secret),
            "federated" => Some(Self::Federated),
            _ => None,
        }
    }
}

impl fmt::Display for CredentialType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The federated credential's values were handed out (the step of a federated connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FederatedExport {
    pub exported_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRegistration {
    pub tenant: TenantId,
    pub client: ClientId,
    pub submitted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub subscription: SubscriptionId,
    pub submitted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleExport {
    pub role_name: String,
    pub exported_at: DateTime<Utc>,
}

/// The outcome of the last Connect Account validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationRecord {
    pub checked_at: DateTime<Utc>,
    /// Which inputs were validated ([`ValidationInputs::fingerprint`]).
    pub inputs: String,
    /// What was checked, in order (e.g. `token`, `subscription`, `permissions`).
    pub checks: Vec<String>,
    pub warnings: Vec<String>,
    pub subscription_name: Option<String>,
    pub failure: Option<FailureRecord>,
    /// Whether the app may manage its own credentials (Graph); `None` when Graph was not asked.
    pub graph_manages_credentials: Option<bool>,
    /// The Azure key id of the secret in use, and its real end (Graph, matched by hint).
    pub secret_key_id: Option<String>,
    pub secret_end: Option<DateTime<Utc>>,
    /// The credential the validation used.
    pub credential: CredentialType,
    /// The version of Spot's role whose required actions were found granted.
    pub role_version: u32,
    /// The id of the role definition assigned to the app (when it has exactly one): the export
    /// names it, so the customer updates that role.
    pub role_id: Option<String>,
    /// What the app may do beyond Spot's role, as last found (a warning, not a failure).
    pub over_privilege: Option<super::privilege::OverPrivilege>,
}

/// The last rotation of the client secret: which rotation (Secrets Manager's token), which version
/// it was built on, and the Azure key it retires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRecord {
    pub token: String,
    pub base_version: String,
    /// When the secret being replaced was submitted: a different one at finish means the customer
    /// typed a new secret meanwhile, which wins over the rotation.
    pub replaces_secret_of: Option<DateTime<Utc>>,
    /// The credential of the secret being replaced (erased once the rotation finishes).
    pub replaces_credential: Option<String>,
    pub retired_key_id: Option<String>,
    pub rotated_at: DateTime<Utc>,
}

/// Automatic rotation of the client secret, this many days before it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationSettings {
    pub days_before: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRecord {
    pub step: Step,
    pub code: String,
    pub retryable: bool,
    pub missing_actions: Vec<String>,
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthVerdict {
    Healthy,
    /// Azure answered, definitely: something the customer must fix, at the step named.
    Broken(FailureRecord),
}

/// The connection's health as last changed (a healthy check of a healthy connection writes
/// nothing, so `checked_at` is when the health last changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRecord {
    pub checked_at: DateTime<Utc>,
    /// While degraded: what broke.
    pub diagnosis: Option<FailureRecord>,
    /// Actions of recommended role versions not granted, as last reported (`Custom Role Outdated`).
    pub outdated: Vec<String>,
}

/// How Connect Account proves the app's identity.
#[derive(Debug, Clone)]
pub enum Proof {
    Secret(ClientSecret),
    /// An assertion of our issuer for this connection's subject, signed for each token request.
    Federated {
        org: OrgId,
        connection: ConnectionId,
        /// The connection's [`Connection::subject_salt`].
        salt: Option<String>,
    },
}

impl Proof {
    pub fn credential_type(&self) -> CredentialType {
        match self {
            Self::Secret(_) => CredentialType::Secret,
            Self::Federated { .. } => CredentialType::Federated,
        }
    }

    /// The secret, for what only secrets do (rotation, matching Graph's password credentials).
    pub fn secret(&self) -> Option<&ClientSecret> {
        match self {
            Self::Secret(s) => Some(s),
            Self::Federated { .. } => None,
        }
    }
}

/// Everything Connect Account needs, taken from a connection that has it all.
#[derive(Debug, Clone)]
pub struct ValidationInputs {
    pub tenant: TenantId,
    pub client: ClientId,
    pub proof: Proof,
    /// The subscription, or the management group whose subscriptions are surveyed.
    pub scope: Scope,
    /// Identifies these inputs (no secret material: the secret's submission time stands for it).
    pub fingerprint: String,
}

/// A change the customer asks for, already parsed.
#[derive(Debug, Clone)]
pub enum Command {
    AppRegistration {
        tenant: TenantId,
        client: ClientId,
    },
    ClientSecret {
        secret: ClientSecret,
        expires_at: Option<SecretExpiry>,
    },
    Subscription {
        subscription: SubscriptionId,
        /// Whether the caller knows it drops the estate's ties to Spot accounts (refused
        /// otherwise: [`EstateError::HasLinks`]).
        replace_estate: bool,
    },
    /// `PUT …/scope` for a management group: its subscriptions, surveyed at Connect Account; the
    /// connection's own account holds `default_subscription` when one is named.
    ManagementGroup {
        group: ManagementGroupId,
        default_subscription: Option<SubscriptionId>,
        /// As for [`Command::Subscription`]: another group drops the estate's ties.
        replace_estate: bool,
    },
    /// Ties a subscription of the estate to a Spot account.
    LinkSubscription {
        subscription: SubscriptionId,
        account: AccountId,
    },
    /// Connect Account's verdict on an estate, with its survey when it connected (`start`: a
    /// survey in the background begins instead, [`super::survey`]).
    RecordEstateValidation {
        record: Box<ValidationRecord>,
        survey: Option<Survey>,
        start: Option<Box<super::survey::SurveyStart>>,
    },
    /// A chunk of a survey in the background, surveyed: merged once (`survey`: the run it belongs
    /// to; `None` for a health pass's chunk, recorded only where it changes something).
    RecordSurveyChunk {
        survey: Option<String>,
        group: ManagementGroupId,
        index: u32,
        part: Box<Survey>,
    },
    /// A chunk of the run `survey` failed for good: the run ends failed.
    FailSurvey {
        survey: String,
        code: String,
        retryable: bool,
    },
    /// "Export JSON Policy": hands out the role and records that it was handed out.
    ExportCustomRole,
    /// Connect Account's verdict on the inputs it validated.
    RecordValidation(Box<ValidationRecord>),
    /// The expiry scan sent the reminder of this threshold (days before expiry).
    RecordReminder {
        threshold: u32,
    },
    /// The expiry scan found the client secret expired.
    MarkExpired,
    /// A health check's verdict on the inputs it validated (their fingerprint), and what Graph
    /// said of the app's rights over its own credentials (`None`: Graph not asked or no answer).
    RecordHealth {
        inputs: String,
        verdict: HealthVerdict,
        graph_manages_credentials: Option<bool>,
        /// When healthy: the role version validated, and the recommended actions not granted.
        role_version: Option<u32>,
        outdated: Vec<String>,
        /// When healthy: what the app may do beyond Spot's role (`None`: no more than it needs).
        over_privilege: Option<Option<super::privilege::OverPrivilege>>,
        /// An estate's survey (when the group could be read).
        survey: Option<Survey>,
    },
    /// `PUT /connections/{id}/rotation`: on (days before expiry) or off.
    SetRotation(Option<RotationSettings>),
    /// `PUT /connections/{id}/credential-type`.
    SetCredentialType(CredentialType),
    /// The federated credential's values were handed out.
    ExportFederatedCredential,
    /// A setup command was issued (its token's hash; the one before is replaced).
    IssueSetup(super::setup::SetupGrant),
    /// A setup report's write is allowed: its token still in force, and what it names the same as
    /// what the connection holds (a command can only finish what it was issued for). Changes
    /// nothing; checked on the version being written, at every compare-and-swap attempt.
    GuardSetupReport {
        token_hash: String,
        tenant: TenantId,
        client: ClientId,
        scope: Scope,
    },
}

impl Command {
    pub fn step(&self) -> Step {
        match self {
            Self::AppRegistration { .. } => Step::AppRegistration,
            Self::ClientSecret { .. } => Step::ClientSecret,
            Self::Subscription { .. } | Self::ManagementGroup { .. } | Self::LinkSubscription { .. } => {
                Step::Subscription
            }
            Self::ExportCustomRole => Step::CustomRole,
            Self::RecordValidation(_)
            | Self::RecordEstateValidation { .. }
            | Self::RecordHealth { .. }
            | Self::RecordSurveyChunk { .. }
            | Self::FailSurvey { .. } => Step::RoleAssignment,
            Self::RecordReminder { .. } | Self::MarkExpired | Self::SetRotation(_) => Step::ClientSecret,
            Self::SetCredentialType(_) => Step::Start,
            Self::ExportFederatedCredential => Step::FederatedCredential,
            Self::IssueSetup(_) | Self::GuardSetupReport { .. } => Step::Start,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("step {step} needs step {needs} first")]
    MissingPrerequisite { step: Step, needs: Step },
    #[error("the inputs changed while they were being validated")]
    InputsChanged,
    #[error("rotation needs the app to manage its own credentials in Microsoft Graph")]
    GraphPermissionMissing,
    #[error("step {step} is not for connections with a {credential} credential")]
    WrongCredentialType { step: Step, credential: CredentialType },
    #[error("the connection is not for a management group")]
    NotAnEstate,
    /// The group's subscriptions do not fit in the connection's document.
    #[error("{0} subscriptions are more than a connection's document holds")]
    EstateTooLarge(usize),
    #[error("{0}")]
    Estate(#[from] EstateError),
    #[error("{0}")]
    Survey(#[from] super::survey::SurveyError),
    /// A use case asked for the secret's value without revealing it from the store first.
    #[error("the client secret's value was not read from the store")]
    SecretSealed,
    /// The setup command a report came with is no longer in force (replaced, spent, expired).
    #[error("{0}")]
    SetupToken(super::setup::SetupTokenError),
    #[error("{0}")]
    SetupConflict(#[from] super::setup::SetupConflict),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub id: ConnectionId,
    pub org: OrgId,
    pub account: AccountId,
    pub status: Status,
    pub credential_type: CredentialType,
    pub app_registration: Option<AppRegistration>,
    pub client_secret: Option<SecretRecord>,
    pub subscription: Option<SubscriptionRecord>,
    pub custom_role: Option<RoleExport>,
    pub federated: Option<FederatedExport>,
    pub validation: Option<ValidationRecord>,
    /// When the account was first linked (connected).
    pub linked_at: Option<DateTime<Utc>>,
    /// The last expiry reminder sent (days before expiry), for the current secret.
    pub reminded: Option<u32>,
    pub rotation: Option<RotationSettings>,
    pub last_rotation: Option<RotationRecord>,
    /// The last change of health found by a health check.
    pub health: Option<HealthRecord>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A random part of this connection's federated subject, drawn when it is created: a
    /// connection made again under the same id (after a delete) gets another subject, so it never
    /// inherits the trust an app gave the one before. `None` for connections made before it.
    pub subject_salt: Option<String>,
    /// Ids of the last requests that changed this connection (newest last).
    pub recent_requests: Vec<String>,
    /// The setup command issued last ([`super::setup`]).
    pub setup: Option<super::setup::SetupGrant>,
    /// A management group's subscriptions, in place of [`Self::subscription`] ([`super::estate`]).
    pub estate: Option<Estate>,
}

impl Connection {
    pub fn new(id: ConnectionId, org: OrgId, account: AccountId, at: DateTime<Utc>) -> Self {
        Self {
            id,
            org,
            account,
            status: Status::Draft,
            credential_type: CredentialType::Secret,
            app_registration: None,
            client_secret: None,
            subscription: None,
            custom_role: None,
            federated: None,
            validation: None,
            linked_at: None,
            reminded: None,
            rotation: None,
            last_rotation: None,
            health: None,
            created_at: at,
            updated_at: at,
            subject_salt: Some(uuid::Uuid::new_v4().simple().to_string()),
            recent_requests: Vec::new(),
            setup: None,
            estate: None,
        }
    }

    /// [`Command::GuardSetupReport`]: the grant, then each value the connection already holds.
    fn guard_setup_report(
        &self,
        token_hash: &str,
        tenant: &TenantId,
        client: &ClientId,
        scope: &Scope,
        at: DateTime<Utc>,
    ) -> Result<(), RuleError> {
        use super::setup::SetupConflict;
        self.setup
            .as_ref()
            .ok_or(super::setup::SetupTokenError::Unknown)
            .and_then(|g| g.still_admits(token_hash, super::setup::SetupPurpose::Connect, at))
            .map_err(RuleError::SetupToken)?;
        if let Some(app) = &self.app_registration {
            if app.client != *client {
                return Err(
                    SetupConflict::new("clientId", &app.client.to_string(), &client.to_string()).into(),
                );
            }
            // A domain and a GUID cannot be compared offline: refused (the app keeps the tenant
            // as the connection holds it when the client is the same, see `setup_report`).
            let same_tenant = match (&app.tenant, tenant) {
                (TenantId::Guid(a), TenantId::Guid(b)) => a == b,
                (TenantId::Domain(a), TenantId::Domain(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            };
            if !same_tenant {
                return Err(
                    SetupConflict::new("tenantId", &app.tenant.to_string(), &tenant.to_string()).into(),
                );
            }
        }
        match (self.scope(), scope) {
            (Some(held), reported) if held != *reported => {
                let field = match held {
                    Scope::Subscription(_) => "subscriptionId",
                    Scope::ManagementGroup(_) => "managementGroupId",
                };
                Err(SetupConflict::new(field, &held.id(), &reported.id()).into())
            }
            _ => Ok(()),
        }
    }

    /// Whether `token` is this connection's current setup token, still in force.
    pub fn admit_setup(
        &self,
        token: &super::setup::SetupToken,
        now: DateTime<Utc>,
    ) -> Result<super::setup::SetupAccess, super::setup::SetupTokenError> {
        self.setup
            .as_ref()
            .ok_or(super::setup::SetupTokenError::Unknown)?
            .admit(&self.org, self.id, token, now)
    }

    /// The first step still missing, or `None` once connected.
    pub fn next_step(&self) -> Option<Step> {
        // Connected with a role the customer made themselves (never exported here) is done too.
        if self.status == Status::Connected {
            None
        } else if let (Status::Degraded, Some(d)) = (
            self.status,
            self.health.as_ref().and_then(|h| h.diagnosis.as_ref()),
        ) {
            // Where to fix what broke, then "Connect Account" again (or wait for the next check).
            Some(d.step)
        } else if self.app_registration.is_none() {
            Some(Step::AppRegistration)
        } else if self.credential_type == CredentialType::Secret && self.client_secret.is_none() {
            Some(Step::ClientSecret)
        } else if self.credential_type == CredentialType::Federated && self.federated.is_none() {
            Some(Step::FederatedCredential)
        } else if self.scope().is_none() {
            Some(Step::Subscription)
        } else if self.custom_role.is_none() {
            Some(Step::CustomRole)
        } else {
            Some(Step::RoleAssignment)
        }
    }

    /// The subscription (3.4) or the management group the connection reaches, once entered.
    pub fn scope(&self) -> Option<Scope> {
        match (&self.subscription, &self.estate) {
            (Some(s), _) => Some(Scope::Subscription(s.subscription)),
            (None, Some(e)) => Some(e.scope()),
            (None, None) => None,
        }
    }

    /// The role to create for this connection's subscription or management group.
    pub fn custom_role(&self) -> Result<CustomRole, RuleError> {
        self.scope()
            .map(CustomRole::for_scope)
            .ok_or(RuleError::MissingPrerequisite {
                step: Step::CustomRole,
                needs: Step::Subscription,
            })
    }

    /// What Connect Account validates; the first missing input step otherwise. A secret must
    /// have been revealed ([`SecretRecord::reveal`]).
    pub fn validation_inputs(&self) -> Result<ValidationInputs, RuleError> {
        let fingerprint = self.inputs_fingerprint()?;
        let (Some(app), Some(scope)) = (&self.app_registration, self.scope()) else {
            return Err(RuleError::SecretSealed);
        };
        let proof = match self.credential_type {
            CredentialType::Secret => Proof::Secret(
                self.client_secret
                    .as_ref()
                    .and_then(SecretRecord::secret)
                    .ok_or(RuleError::SecretSealed)?
                    .clone(),
            ),
            CredentialType::Federated => Proof::Federated {
                org: self.org.clone(),
                connection: self.id,
                salt: self.subject_salt.clone(),
            },
        };
        Ok(ValidationInputs {
            tenant: app.tenant.clone(),
            client: app.client,
            proof,
            scope,
            fingerprint,
        })
    }

    /// Which inputs a validation is of (the secret by its submission, not its value); the first
    /// missing input step otherwise.
    pub fn inputs_fingerprint(&self) -> Result<String, RuleError> {
        let missing = |needs| RuleError::MissingPrerequisite {
            step: Step::RoleAssignment,
            needs,
        };
        let app = self
            .app_registration
            .as_ref()
            .ok_or(missing(Step::AppRegistration))?;
        let proven_by = match self.credential_type {
            CredentialType::Secret => {
                let record = self.client_secret.as_ref().ok_or(missing(Step::ClientSecret))?;
                record.submitted_at.timestamp_micros().to_string()
            }
            CredentialType::Federated => {
                let export = self.federated.ok_or(missing(Step::FederatedCredential))?;
                format!("federated:{}", export.exported_at.timestamp_micros())
            }
        };
        let scope = match self.scope().ok_or(missing(Step::Subscription))? {
            Scope::Subscription(s) => s.to_string(),
            Scope::ManagementGroup(g) => format!("mg:{g}"),
        };
        Ok(format!("{}|{}|{}|{}", app.tenant, app.client, scope, proven_by))
    }

    /// The document of a rotation: this connection with the new secret (its value, Azure's end and
    /// key id), reminders started over, and the record of the rotation.
    pub fn with_rotated_secret(
        &self,
        secret: ClientSecret,
        end: Option<SecretExpiry>,
        key_id: String,
        rotation: RotationRecord,
    ) -> Self {
        let mut next = self.clone();
        next.client_secret = Some(SecretRecord::new(secret, end, rotation.rotated_at));
        next.reminded = None;
        if let Some(v) = next.validation.as_mut() {
            v.secret_key_id = Some(key_id);
            v.secret_end = end.map(|e| e.at());
        }
        if next.status == Status::Expired {
            next.status = Status::Draft;
        }
        next.updated_at = rotation.rotated_at;
        next.last_rotation = Some(rotation);
        next
    }

    /// A rotation finishing on top of writes made while it ran: this (newer) connection with the
    /// rotated secret of `pending`.
    pub fn merged_with_rotation(&self, pending: &Connection) -> Self {
        let mut next = self.clone();
        next.client_secret = pending.client_secret.clone();
        next.reminded = None;
        let (key, end) = pending
            .validation
            .as_ref()
            .map_or((None, None), |v| (v.secret_key_id.clone(), v.secret_end));
        if let Some(v) = next.validation.as_mut() {
            v.secret_key_id = key;
            v.secret_end = end;
        }
        next.last_rotation = pending.last_rotation.clone();
        next
    }

    /// Whether the request `record` ([`crate::app::RequestMeta::record`]: its id, and with a
    /// client's key what it asked) was applied already.
    pub fn handled(&self, record: &str) -> bool {
        self.recent_requests.iter().any(|r| r == record)
    }

    /// Whether `request_id` (a client's key) was applied for another request than `record`.
    pub fn reused(&self, request_id: &str, record: &str) -> bool {
        let mine = format!("{request_id}~");
        self.recent_requests
            .iter()
            .any(|r| r.starts_with(&mine) && r != record)
    }

    /// Applies a command. Returns whether anything changed: submitting the same values again is
    /// not a change, so it costs no write.
    pub fn apply(
        &mut self,
        command: &Command,
        request_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, RuleError> {
        let changed = match command {
            Command::AppRegistration { tenant, client } => {
                let same = self
                    .app_registration
                    .as_ref()
                    .is_some_and(|a| &a.tenant == tenant && &a.client == client);
                if !same {
                    self.app_registration = Some(AppRegistration {
                        tenant: tenant.clone(),
                        client: *client,
                        submitted_at: at,
                    });
                }
                !same
            }
            Command::ClientSecret { .. } if self.credential_type == CredentialType::Federated => {
                return Err(RuleError::WrongCredentialType {
                    step: Step::ClientSecret,
                    credential: CredentialType::Federated,
                });
            }
            Command::ClientSecret { secret, expires_at } => {
                let same = self
                    .client_secret
                    .as_ref()
                    .is_some_and(|s| s.is(secret) && &s.expires_at == expires_at);
                if !same {
                    // A new secret or expiry: its reminders start over.
                    self.reminded = None;
                    self.client_secret = Some(SecretRecord::new(secret.clone(), *expires_at, at));
                }
                !same
            }
            Command::Subscription {
                subscription,
                replace_estate,
            } => {
                let same = self
                    .subscription
                    .as_ref()
                    .is_some_and(|s| &s.subscription == subscription);
                if !same {
                    self.refuse_dropping_links(None, *replace_estate)?;
                    self.subscription = Some(SubscriptionRecord {
                        subscription: *subscription,
                        submitted_at: at,
                    });
                    self.estate = None;
                    // A role exported for another subscription has the wrong scope.
                    self.custom_role = None;
                }
                !same
            }
            Command::ManagementGroup {
                group,
                default_subscription,
                replace_estate,
            } => match self.estate.as_mut() {
                Some(e) if &e.group == group => {
                    // Another default subscription only: what is known of the group stays.
                    let changed = e.default_subscription != *default_subscription;
                    e.default_subscription = *default_subscription;
                    changed
                }
                _ => {
                    self.refuse_dropping_links(Some(group), *replace_estate)?;
                    self.estate = Some(Estate::new(group.clone(), *default_subscription, at));
                    self.subscription = None;
                    self.custom_role = None;
                    true
                }
            },
            Command::LinkSubscription {
                subscription,
                account,
            } => self
                .estate
                .as_mut()
                .ok_or(RuleError::NotAnEstate)?
                .link(*subscription, account, at)?,
            Command::RecordEstateValidation {
                record,
                survey,
                start,
            } => {
                let changed = self.record_validation(record)?;
                let found = match survey {
                    Some(survey) if record.failure.is_none() => self.record_survey(survey)?,
                    _ => false,
                };
                let started = match start {
                    Some(start) if record.failure.is_none() => self.start_survey(start)?,
                    _ => false,
                };
                changed || found || started
            }
            Command::RecordSurveyChunk {
                survey,
                group,
                index,
                part,
            } => self.record_chunk(survey.as_deref(), group, *index, part)?,
            Command::FailSurvey {
                survey,
                code,
                retryable,
            } => self
                .estate
                .as_mut()
                .is_some_and(|e| e.fail_survey(survey, code, *retryable, at)),
            Command::ExportCustomRole => {
                let role = self.custom_role()?;
                let name = role.name();
                let same = self.custom_role.as_ref().is_some_and(|r| r.role_name == name);
                if !same {
                    self.custom_role = Some(RoleExport {
                        role_name: name,
                        exported_at: at,
                    });
                }
                !same
            }
            Command::RecordValidation(record) => self.record_validation(record)?,
            Command::RecordReminder { threshold } => {
                if self.reminded.is_some_and(|r| r <= *threshold) {
                    false
                } else {
                    self.reminded = Some(*threshold);
                    true
                }
            }
            Command::SetRotation(Some(_)) if self.credential_type == CredentialType::Federated => {
                // No secret to rotate.
                return Err(RuleError::WrongCredentialType {
                    step: Step::ClientSecret,
                    credential: CredentialType::Federated,
                });
            }
            Command::SetRotation(settings) => {
                let allowed =
                    self.validation.as_ref().and_then(|v| v.graph_manages_credentials) == Some(true);
                if settings.is_some() && !allowed {
                    return Err(RuleError::GraphPermissionMissing);
                }
                let changed = self.rotation != *settings;
                self.rotation = *settings;
                changed
            }
            Command::IssueSetup(grant) => {
                let changed = self.setup.as_ref() != Some(grant);
                self.setup = Some(grant.clone());
                changed
            }
            Command::GuardSetupReport {
                token_hash,
                tenant,
                client,
                scope,
            } => {
                self.guard_setup_report(token_hash, tenant, client, scope, at)?;
                false
            }
            Command::SetCredentialType(credential) => {
                let changed = self.credential_type != *credential;
                self.credential_type = *credential;
                changed
            }
            Command::ExportFederatedCredential => {
                if self.credential_type != CredentialType::Federated {
                    return Err(RuleError::WrongCredentialType {
                        step: Step::FederatedCredential,
                        credential: self.credential_type,
                    });
                }
                if self.app_registration.is_none() {
                    return Err(RuleError::MissingPrerequisite {
                        step: Step::FederatedCredential,
                        needs: Step::AppRegistration,
                    });
                }
                if self.federated.is_some() {
                    false
                } else {
                    self.federated = Some(FederatedExport { exported_at: at });
                    true
                }
            }
            Command::RecordHealth { .. } => self.record_health(command, at)?,
            Command::MarkExpired => {
                let expired = self
                    .client_secret
                    .as_ref()
                    .and_then(|s| s.expires_at)
                    .is_some_and(|e| e.at() <= at);
                if expired && self.status != Status::Expired {
                    self.status = Status::Expired;
                    true
                } else {
                    false
                }
            }
        };
        if changed {
            // New credentials are unproven until Connect Account validates them again.
            if matches!(
                command,
                Command::AppRegistration { .. } | Command::ClientSecret { .. } | Command::Subscription { .. }
            ) || matches!(command, Command::ManagementGroup { .. } if self.custom_role.is_none())
            {
                self.status = Status::Draft;
            }
            self.touch(request_id, at);
        }
        Ok(changed)
    }

    fn touch(&mut self, request_id: &str, at: DateTime<Utc>) {
        self.updated_at = at;
        self.recent_requests.push(request_id.to_owned());
        if self.recent_requests.len() > REMEMBERED_REQUESTS {
            let extra = self.recent_requests.len() - REMEMBERED_REQUESTS;
            self.recent_requests.drain(..extra);
        }
    }

    /// Remembers the request that created the connection.
    pub fn created_by(mut self, request_id: &str) -> Self {
        self.recent_requests = vec![request_id.to_owned()];
        self
    }
}

mod replace;
mod ties;
mod verdicts;

#[cfg(test)]
mod tests;
