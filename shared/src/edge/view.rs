//! The connection view: what the API shows of a connection. Of the secret, the hint only.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{
    AccountId, ClientId, Connection, ConnectionId, CredentialType, Status, Step, SubscriptionId, TenantId,
};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    pub connection_id: ConnectionId,
    pub account_id: AccountId,
    pub status: Status,
    pub next_step: Option<Step>,
    pub credential_type: CredentialType,
    pub tenant_id: Option<TenantId>,
    pub client_id: Option<ClientId>,
    pub subscription_id: Option<SubscriptionId>,
    /// What the connection reaches: `{type: subscription|managementGroup, id}`.
    pub scope: Option<super::estate_view::ScopeView>,
    /// A management group's subscriptions, counted by status (the list: `GET …/subscriptions`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estate: Option<super::estate_view::EstateView>,
    pub client_secret: Option<SecretView>,
    pub custom_role: Option<RoleView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federated_credential: Option<FederatedView>,
    pub validation: Option<ValidationView>,
    /// Once linked: the health the checks found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthView>,
    pub rotation: RotationView,
    pub linked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretView {
    /// The first 3 characters, as Azure shows them; never more.
    pub hint: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleView {
    pub role_name: String,
    pub exported_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedView {
    pub exported_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationView {
    pub enabled: bool,
    pub days_before: Option<u32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationView {
    pub checked_at: DateTime<Utc>,
    pub checks: Vec<String>,
    pub warnings: Vec<String>,
    pub subscription_name: Option<String>,
    pub failure: Option<FailureView>,
    /// Whether the app may manage its own credentials (rotation needs it).
    pub graph_manages_credentials: Option<bool>,
    /// The version of Spot's role whose required actions were found granted.
    pub role_version: u32,
    /// More than Spot needs (a warning): the extra grants, the roles, how to narrow them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over_privileged: Option<OverPrivilegedView>,
}

pub use super::privilege_view::OverPrivilegedView;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    /// When the health last changed (a healthy check of a healthy connection records nothing).
    pub checked_at: Option<DateTime<Utc>>,
    /// `healthy` or `degraded`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<FailureView>,
    /// Actions of newer, recommended versions of Spot's role that the role lacks (a warning).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outdated_actions: Vec<String>,
    /// While degraded by what the one command puts back (the role assignment, the role's actions,
    /// the federated credential) on a connection it made: a new setup command repairs it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub repair_by_command: bool,
}

/// The diagnoses a new setup command repairs: what the script makes again when it finds it gone.
const REPAIRED_BY_COMMAND: [&str; 6] = [
    "role-not-assigned",
    "missing-actions",
    "federated-credential-not-found",
    "federated-credential-issuer-mismatch",
    "federated-credential-audience-mismatch",
    "federated-credential-subject-mismatch",
];

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureView {
    pub step: Step,
    pub code: String,
    pub retryable: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_actions: Vec<String>,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        Self {
            connection_id: c.id,
            account_id: c.account.clone(),
            status: c.status,
            next_step: c.next_step(),
            credential_type: c.credential_type,
            tenant_id: c.app_registration.as_ref().map(|a| a.tenant.clone()),
            client_id: c.app_registration.as_ref().map(|a| a.client),
            subscription_id: c.subscription.as_ref().map(|s| s.subscription),
            scope: super::estate_view::ScopeView::of(c),
            estate: super::estate_view::EstateView::of(c),
            client_secret: c.client_secret.as_ref().map(|s| SecretView {
                hint: s.hint().as_str().to_owned(),
                expires_at: s.expires_at.map(|e| e.at()),
            }),
            custom_role: c.custom_role.as_ref().map(|r| RoleView {
                role_name: r.role_name.clone(),
                exported_at: r.exported_at,
            }),
            federated_credential: c.federated.map(|f| FederatedView {
                exported_at: f.exported_at,
            }),
            validation: c.validation.as_ref().map(|v| ValidationView {
                checked_at: v.checked_at,
                checks: v.checks.clone(),
                warnings: v.warnings.clone(),
                subscription_name: v.subscription_name.clone(),
                graph_manages_credentials: v.graph_manages_credentials,
                role_version: v.role_version,
                over_privileged: v.over_privilege.as_ref().map(OverPrivilegedView::from),
                failure: v.failure.as_ref().map(|f| FailureView {
                    step: f.step,
                    code: f.code.clone(),
                    retryable: f.retryable,
                    missing_actions: f.missing_actions.clone(),
                }),
            }),
            health: health_of(c),
            rotation: RotationView {
                enabled: c.rotation.is_some(),
                days_before: c.rotation.map(|r| r.days_before),
            },
            linked_at: c.linked_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// The health of a linked connection (`None` before it was ever linked).
pub fn health_of(c: &Connection) -> Option<HealthView> {
    let linked = matches!(c.status, Status::Connected | Status::Degraded);
    if !linked && c.health.is_none() {
        return None;
    }
    let diagnosis = c.health.as_ref().and_then(|h| h.diagnosis.as_ref());
    Some(HealthView {
        checked_at: c.health.as_ref().map(|h| h.checked_at),
        status: if c.status == Status::Degraded {
            "degraded"
        } else {
            "healthy"
        },
        diagnosis: diagnosis
            .filter(|_| c.status == Status::Degraded)
            .map(|f| FailureView {
                step: f.step,
                code: f.code.clone(),
                retryable: f.retryable,
                missing_actions: f.missing_actions.clone(),
            }),
        outdated_actions: c.health.as_ref().map(|h| h.outdated.clone()).unwrap_or_default(),
        // Made by the one command: the last command connected it (spent).
        repair_by_command: c.status == Status::Degraded
            && c.setup.as_ref().is_some_and(|g| g.spent_at.is_some())
            && diagnosis.is_some_and(|d| REPAIRED_BY_COMMAND.contains(&d.code.as_str())),
    })
}
