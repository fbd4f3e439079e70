//! Every outcome event the application publishes, typed, in one place. Built from domain values
//! only (the secret has no way in); [`OutcomeEvent::to_wire`] gives the EventBridge shape
//! (`detail-type` + `detail`) that the sinks deliver.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::error::Rejection;
use super::request::{RequestMeta, Trigger};
use crate::domain::{
    AccountId, ClientId, Connection, ConnectionId, OrgId, RoleFormat, Status, Step, SubscriptionId, TenantId,
};
use crate::events::OutEvent;
use crate::issuer::FederatedCredentialValues;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "detail-type", content = "detail")]
pub enum OutcomeEvent {
    /// A step's input was taken (or a connection was started).
    #[serde(rename = "Step Completed")]
    StepCompleted(Progress),
    /// A request was refused: the problem says why and where to go back to.
    #[serde(rename = "Step Rejected")]
    StepRejected(Rejected),
    #[serde(rename = "Connection Deleted")]
    ConnectionDeleted(Subject),
    /// "Export JSON Policy": the role JSON, for the console to hand out.
    #[serde(rename = "Custom Role Exported")]
    CustomRoleExported(RoleExported),
    /// The federated credential's values, for the console to show (no secret in them).
    #[serde(rename = "Federated Credential Exported")]
    FederatedCredentialExported(FederatedExported),
    #[serde(rename = "Account Connected")]
    AccountConnected(Connected),
    /// Connect Account's diagnosis.
    #[serde(rename = "Connection Failed")]
    ConnectionFailed(Rejected),
    #[serde(rename = "Client Secret Expiring")]
    ClientSecretExpiring(Expiring),
    #[serde(rename = "Client Secret Expired")]
    ClientSecretExpired(Expired),
    #[serde(rename = "Client Secret Rotated")]
    ClientSecretRotated(Rotated),
    #[serde(rename = "Client Secret Rotation Failed")]
    ClientSecretRotationFailed(RotationFailed),
    /// A health check found a linked connection broken (the diagnosis says where to fix it).
    #[serde(rename = "Connection Degraded")]
    ConnectionDegraded(HealthChanged),
    /// A degraded connection checked healthy again.
    #[serde(rename = "Connection Restored")]
    ConnectionRestored(HealthChanged),
    /// Rotation is on but the app lost the Graph rights it needs: found by a health check, before
    /// the secret expires.
    #[serde(rename = "Rotation Unavailable")]
    RotationUnavailable(RotationUnavailable),
    /// Spot's role has a newer version whose actions the customer's role lacks.
    #[serde(rename = "Custom Role Outdated")]
    CustomRoleOutdated(RoleOutdated),
    /// A draft or failed connection untouched for the abandonment period, deleted by the daily scan.
    #[serde(rename = "Connection Abandoned")]
    ConnectionAbandoned(Abandoned),
    /// A connection moved off its client secret, and the secret could not be removed from the app
    /// (Graph does not allow it, or refused): the customer should delete it in the portal.
    #[serde(rename = "Client Secret Left In Azure")]
    ClientSecretLeftInAzure(SecretLeftInAzure),
    /// A setup command was handed out (never its token: when it expires).
    #[serde(rename = "Setup Command Issued")]
    SetupCommandIssued(SetupIssued),
    /// The setup script reported a phase (the page shows the run's progress).
    #[serde(rename = "Setup Progress")]
    SetupProgress(SetupProgressed),
    /// The app may do more than Spot needs (once per change): the extra grants and their roles.
    #[serde(rename = "Connection Over-Privileged")]
    ConnectionOverPrivileged(OverPrivileged),
    /// A subscription found under an estate's management group for the first time (the console
    /// may create a Spot account for it).
    #[serde(rename = "Subscription Discovered")]
    SubscriptionDiscovered(SubscriptionChanged),
    /// A subscription of an estate tied to a Spot account.
    #[serde(rename = "Subscription Linked")]
    SubscriptionLinked(SubscriptionChanged),
    /// A subscription moved out of the group, deleted, or no longer visible to the app.
    #[serde(rename = "Subscription Lost")]
    SubscriptionLost(SubscriptionChanged),
    /// Any other change of a subscription's status (permissions reduced or restored, disabled,
    /// found again).
    #[serde(rename = "Subscription Changed")]
    SubscriptionChanged(SubscriptionChanged),
    /// A subscription's tie to a Spot account dropped: the estate was replaced (a subscription
    /// or another group entered with `replaceEstate`).
    #[serde(rename = "Subscription Unlinked")]
    SubscriptionUnlinked(SubscriptionChanged),
    /// A survey in the background went on (at most every few seconds), finished or failed.
    #[serde(rename = "Estate Survey Progress")]
    EstateSurveyProgress(SurveyProgress),
}

impl OutcomeEvent {
    /// Every `detail-type` published, for documentation and drift tests.
    pub const DETAIL_TYPES: [&'static str; 26] = [
        "Step Completed",
        "Step Rejected",
        "Connection Deleted",
        "Custom Role Exported",
        "Federated Credential Exported",
        "Account Connected",
        "Connection Failed",
        "Client Secret Expiring",
        "Client Secret Expired",
        "Client Secret Rotated",
        "Client Secret Rotation Failed",
        "Connection Degraded",
        "Connection Restored",
        "Rotation Unavailable",
        "Custom Role Outdated",
        "Client Secret Left In Azure",
        "Connection Abandoned",
        "Setup Command Issued",
        "Setup Progress",
        "Connection Over-Privileged",
        "Subscription Discovered",
        "Subscription Linked",
        "Subscription Lost",
        "Subscription Changed",
        "Subscription Unlinked",
        "Estate Survey Progress",
    ];

    /// The EventBridge entry's `detail-type` and `detail`.
    pub fn to_wire(&self) -> Result<OutEvent, serde_json::Error> {
        serde_json::from_value(serde_json::to_value(self)?)
    }
}

/// How an estate's survey in the background stands.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyProgress {
    #[serde(flatten)]
    pub subject: Subject,
    pub account_id: AccountId,
    pub management_group_id: String,
    /// `surveying`, `done` or `failed`.
    pub state: &'static str,
    pub surveyed: u32,
    pub total: u32,
    /// When it failed: why, and whether Connect Account again may help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
}

/// One subscription of an estate, as it now stands.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionChanged {
    #[serde(flatten)]
    pub subject: Subject,
    pub management_group_id: String,
    pub subscription_id: SubscriptionId,
    pub display_name: String,
    /// Azure's state (`Enabled`, `Disabled`, …).
    pub state: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<&'static str>,
    /// The Spot account holding the subscription, once linked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleOutdated {
    #[serde(flatten)]
    pub subject: Subject,
    pub account_id: AccountId,
    /// The version the connection's role was last validated at, and Spot's latest.
    pub validated_version: u32,
    pub latest_version: u32,
    /// Exactly the actions to add (export the role again: same name, every action).
    pub added_actions: Vec<String>,
    /// Required: the connection is degraded until they are granted; otherwise a warning.
    pub required: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationUnavailable {
    #[serde(flatten)]
    pub subject: Subject,
    pub account_id: AccountId,
    pub expires_at: Option<DateTime<Utc>>,
    /// The Graph application permission the app needs back.
    pub needs: &'static str,
}

/// A connection deleted for being left unlinked (its credentials erased; its document
/// restorable by an operator for the recovery window).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Abandoned {
    #[serde(flatten)]
    pub subject: Subject,
    pub account_id: AccountId,
    pub status: Status,
    pub last_changed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverPrivileged {
    #[serde(flatten)]
    pub subject: Subject,
    pub account_id: AccountId,
    /// In an estate: the subscription where the app may do more (and its group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_group_id: Option<String>,
    pub extra_grants: Vec<String>,
    pub roles: Vec<String>,
    /// How to narrow the grant.
    pub advice: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupIssued {
    #[serde(flatten)]
    pub progress: Progress,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupProgressed {
    #[serde(flatten)]
    pub progress: Progress,
    /// started, checked, application, credential, role, assignment, reported, failed, uninstalled.
    pub phase: &'static str,
    pub script_version: String,
    /// A failed run: the step and code the script stopped at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<SetupFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupFailure {
    pub phase: String,
    pub code: String,
}

/// The secret a connection moved off is still on its app in Azure.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretLeftInAzure {
    #[serde(flatten)]
    pub subject: Subject,
    pub account_id: AccountId,
    /// The credential's key id in Entra ID, when known; the hint (its first three characters, as
    /// the portal shows them) otherwise finds it.
    pub key_id: Option<String>,
    pub hint: String,
    /// `no-graph-permission` (the app may not manage its own credentials) or `graph-refused`.
    pub reason: &'static str,
    pub what_to_do: &'static str,
}

/// A connection's health changed: its status before and after, and (degraded) the diagnosis in
/// the words of Connect Account's problems.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthChanged {
    #[serde(flatten)]
    pub subject: Subject,
    pub account_id: AccountId,
    pub status: Status,
    pub previous_status: Status,
    pub checked_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<HealthDiagnosis>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthDiagnosis {
    pub step: Step,
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_actions: Vec<String>,
}

impl HealthChanged {
    pub fn of(
        subject: Subject,
        c: &Connection,
        previous_status: Status,
        diagnosis: Option<crate::domain::FailureRecord>,
    ) -> Self {
        Self {
            subject,
            account_id: c.account.clone(),
            status: c.status,
            previous_status,
            checked_at: c.health.as_ref().map(|h| h.checked_at),
            diagnosis: diagnosis.map(|d| HealthDiagnosis {
                step: d.step,
                code: d.code,
                missing_actions: d.missing_actions,
            }),
        }
    }
}

/// What every event carries: the organization, the connection, the wizard step and the request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    pub org_id: OrgId,
    pub connection_id: Option<ConnectionId>,
    pub step: Step,
    pub request_id: String,
    pub trigger: Trigger,
}

impl Subject {
    pub fn new(req: &RequestMeta, org: &OrgId, step: Step, connection: Option<ConnectionId>) -> Self {
        Self {
            org_id: org.clone(),
            connection_id: connection,
            step,
            request_id: req.request_id.clone(),
            trigger: req.trigger,
        }
    }
}

/// Where a connection stands after a change.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    #[serde(flatten)]
    pub subject: Subject,
    pub account_id: AccountId,
    pub status: Status,
    pub next_step: Option<Step>,
}

impl Progress {
    pub fn of(mut subject: Subject, c: &Connection) -> Self {
        subject.connection_id = Some(c.id);
        Self {
            subject,
            account_id: c.account.clone(),
            status: c.status,
            next_step: c.next_step(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    #[serde(flatten)]
    pub subject: Subject,
    pub problem: Rejection,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleExported {
    #[serde(flatten)]
    pub progress: Progress,
    pub format: RoleFormat,
    pub role: Value,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedExported {
    #[serde(flatten)]
    pub progress: Progress,
    #[serde(flatten)]
    pub values: FederatedCredentialValues,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connected {
    #[serde(flatten)]
    pub progress: Progress,
    pub tenant_id: Option<TenantId>,
    pub client_id: Option<ClientId>,
    pub subscription_id: Option<SubscriptionId>,
    pub secret_expires_at: Option<DateTime<Utc>>,
    pub linked_at: Option<DateTime<Utc>>,
    pub warnings: Vec<String>,
}

impl Connected {
    pub fn of(subject: Subject, c: &Connection) -> Self {
        Self {
            progress: Progress::of(subject, c),
            tenant_id: c.app_registration.as_ref().map(|a| a.tenant.clone()),
            client_id: c.app_registration.as_ref().map(|a| a.client),
            subscription_id: c.subscription.as_ref().map(|s| s.subscription),
            secret_expires_at: secret_expiry(c),
            linked_at: c.linked_at,
            warnings: c
                .validation
                .as_ref()
                .map(|v| v.warnings.clone())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiring {
    #[serde(flatten)]
    pub subject: Subject,
    pub account_id: AccountId,
    pub expires_at: Option<DateTime<Utc>>,
    /// The reminder threshold reached (days before expiry).
    pub threshold: u32,
    pub days_left: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Expired {
    #[serde(flatten)]
    pub subject: Subject,
    pub account_id: AccountId,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The events of a rotation name the rotation, not a request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationSubject {
    pub org_id: OrgId,
    pub connection_id: ConnectionId,
    pub trigger: Trigger,
    pub rotation_token: String,
}

impl RotationSubject {
    pub fn new(org: &OrgId, connection: &ConnectionId, token: &str) -> Self {
        Self {
            org_id: org.clone(),
            connection_id: *connection,
            trigger: Trigger::Rotation,
            rotation_token: token.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotated {
    #[serde(flatten)]
    pub subject: RotationSubject,
    /// Always the client-secret step.
    pub step: Step,
    pub account_id: AccountId,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationFailed {
    #[serde(flatten)]
    pub subject: RotationSubject,
    /// The rotation step that failed (`createSecret`, …).
    pub step: &'static str,
    /// The failure's stable code.
    pub reason: &'static str,
}

/// The client secret's expiry, if known.
pub fn secret_expiry(c: &Connection) -> Option<DateTime<Utc>> {
    c.client_secret
        .as_ref()
        .and_then(|s| s.expires_at)
        .map(|e| e.at())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_serializes_under_a_listed_detail_type() {
        let org = OrgId::parse("o").unwrap();
        let id = ConnectionId::new_random();
        let req = RequestMeta {
            request_id: "r".into(),
            received_at: Utc::now(),
            trigger: Trigger::Http,
            fingerprint: None,
        };
        let subject = Subject::new(&req, &org, Step::Start, Some(id));
        let events = [
            OutcomeEvent::ConnectionDeleted(subject.clone()),
            OutcomeEvent::ClientSecretRotationFailed(RotationFailed {
                subject: RotationSubject::new(&org, &id, "t"),
                step: "createSecret",
                reason: "graph-permission-missing",
            }),
        ];
        for e in &events {
            let wire = e.to_wire().unwrap();
            assert!(OutcomeEvent::DETAIL_TYPES.contains(&wire.detail_type.as_str()));
            assert_eq!(wire.detail["orgId"], "o");
        }
        let failed = events[1].to_wire().unwrap();
        assert_eq!(failed.detail["step"], "createSecret");
        assert_eq!(failed.detail["trigger"], "rotation");
        assert_eq!(failed.detail["rotationToken"], "t");
    }
}
