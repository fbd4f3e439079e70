//! The connection view: what the API shows of a connection. Of the secret, the hint only.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{AccountId, ClientId, Connection, ConnectionId, Status, Step, SubscriptionId, TenantId};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    pub connection_id: ConnectionId,
    pub account_id: AccountId,
    pub status: Status,
    pub next_step: Option<Step>,
    pub tenant_id: Option<TenantId>,
    pub client_id: Option<ClientId>,
    pub subscription_id: Option<SubscriptionId>,
    pub client_secret: Option<SecretView>,
    pub custom_role: Option<RoleView>,
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

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        Self {
            connection_id: c.id,
            account_id: c.account.clone(),
            status: c.status,
            next_step: c.next_step(),
            tenant_id: c.app_registration.as_ref().map(|a| a.tenant.clone()),
            client_id: c.app_registration.as_ref().map(|a| a.client),
            subscription_id: c.subscription.as_ref().map(|s| s.subscription),
            client_secret: c.client_secret.as_ref().map(|s| SecretView {
                hint: s.hint().as_str().to_owned(),
                expires_at: s.expires_at.map(|e| e.at()),
            }),
            custom_role: c.custom_role.as_ref().map(|r| RoleView {
                role_name: r.role_name.clone(),
                exported_at: r.exported_at,
            }),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}
