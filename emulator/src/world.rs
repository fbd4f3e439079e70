//! The world: tenants, their apps (with password credentials), subscriptions and role grants.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::behaviour::Behaviour;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct World {
    pub tenants: Vec<Tenant>,
    pub subscriptions: Vec<Subscription>,
    /// Management groups (of the tenants above), each with its direct subscriptions and children.
    pub management_groups: Vec<ManagementGroup>,
    pub behaviour: Behaviour,
}

impl World {
    /// The demo world (`emulator/worlds/demo.json`, compiled in): one tenant
    /// (contoso.onmicrosoft.com) with one app and its client secret, three subscriptions and the
    /// management group `contoso-prod` above them; no role assigned yet.
    pub fn demo() -> Result<Self, serde_json::Error> {
        serde_json::from_str(include_str!("../worlds/demo.json"))
    }

    /// The management groups above subscription `sub`, nearest first.
    pub fn ancestors(&self, sub: &str) -> Vec<&ManagementGroup> {
        self.management_groups
            .iter()
            .find(|g| g.subscriptions.iter().any(|s| s.eq_ignore_ascii_case(sub)))
            .map(|g| self.group_chain(&g.name))
            .unwrap_or_default()
    }

    /// Each subscription's (lowercased id's) group: [`Self::ancestors`] for many subscriptions
    /// without a scan of every group's list for each.
    pub fn parents(&self) -> std::collections::HashMap<String, &str> {
        let mut parents = std::collections::HashMap::new();
        for g in &self.management_groups {
            for s in &g.subscriptions {
                parents.entry(s.to_ascii_lowercase()).or_insert(g.name.as_str());
            }
        }
        parents
    }

    /// Group `name` and the groups above it, nearest first.
    pub fn group_chain(&self, name: &str) -> Vec<&ManagementGroup> {
        let mut out: Vec<&ManagementGroup> = Vec::new();
        let mut current = self
            .management_groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name));
        while let Some(g) = current {
            if out.iter().any(|o| o.name == g.name) {
                break;
            }
            out.push(g);
            current = self
                .management_groups
                .iter()
                .find(|p| p.children.iter().any(|c| c.eq_ignore_ascii_case(&g.name)));
        }
        out
    }

    /// Moves subscription `sub` under group `to` (out of wherever it was).
    pub fn move_subscription(&mut self, sub: &str, to: &str) -> bool {
        if !self
            .management_groups
            .iter()
            .any(|g| g.name.eq_ignore_ascii_case(to))
        {
            return false;
        }
        for g in &mut self.management_groups {
            g.subscriptions.retain(|s| !s.eq_ignore_ascii_case(sub));
            if g.name.eq_ignore_ascii_case(to) {
                g.subscriptions.push(sub.to_owned());
            }
        }
        true
    }

    /// The usual small world: one tenant (GUID and one verified domain) with one app knowing
    /// `secrets`, and one enabled subscription of that tenant where the app holds a role granting
    /// `actions` (`None`: no role assigned).
    pub fn single(
        tenant: &str,
        domain: &str,
        app_id: &str,
        secrets: &[&str],
        subscription: &str,
        actions: Option<Vec<String>>,
    ) -> Self {
        Self {
            tenants: vec![Tenant {
                id: tenant.into(),
                domains: vec![domain.into()],
                apps: vec![App {
                    app_id: app_id.into(),
                    passwords: secrets
                        .iter()
                        .map(|s| Password {
                            secret_text: (*s).into(),
                            ..Password::default()
                        })
                        .collect(),
                    ..App::default()
                }],
                blocked_apps: vec![],
                ..Tenant::default()
            }],
            subscriptions: vec![Subscription {
                id: subscription.into(),
                tenant_id: tenant.into(),
                display_name: "Subscription".into(),
                state: "Enabled".into(),
                grants: actions
                    .map(|actions| Grant {
                        app_id: app_id.into(),
                        actions,
                        ..Grant::default()
                    })
                    .into_iter()
                    .collect(),
                role_assignments: vec![],
            }],
            management_groups: vec![],
            behaviour: Behaviour::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Tenant {
    pub id: String,
    /// Verified domains, e.g. contoso.onmicrosoft.com.
    pub domains: Vec<String>,
    pub apps: Vec<App>,
    /// App ids that a Conditional Access policy blocks (AADSTS53003).
    pub blocked_apps: Vec<String>,
    /// "Users can register applications" (`authorizationPolicy.defaultUserRolePermissions.
    /// allowedToCreateApps`); Entra's default is yes. Applies to users; an app calling Graph
    /// needs `Application.ReadWrite.All`/`OwnedBy` or a directory role.
    pub users_may_not_create_apps: bool,
    /// Custom role definitions (names unique in the tenant).
    pub role_definitions: Vec<RoleDefinition>,
    /// People who sign in (`az login -u … -p …`: the password grant). A user's grants on a
    /// subscription name its object id as `appId`.
    pub users: Vec<User>,
    /// The user (UPN) who completes every device code sign-in of this tenant at once (`az login
    /// --use-device-code`: the person at microsoft.com/devicelogin).
    pub device_code_user: String,
}

/// A management group: `name` is its id (`/providers/Microsoft.Management/managementGroups/{name}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManagementGroup {
    pub name: String,
    pub tenant_id: String,
    pub display_name: String,
    /// Child management groups (names).
    pub children: Vec<String>,
    /// Subscriptions directly under it (ids).
    pub subscriptions: Vec<String>,
    /// Roles granted at the group (as a subscription's): inherited by everything below it.
    pub grants: Vec<Grant>,
    /// Role assignments made through ARM at the group: inherited by everything below it.
    pub role_assignments: Vec<RoleAssignment>,
}

/// A member of the tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct User {
    pub object_id: String,
    pub user_principal_name: String,
    pub password: String,
    pub display_name: String,
    /// Directory roles (display names, e.g. "Application Developer").
    pub directory_roles: Vec<String>,
}

/// A custom role (ARM `Microsoft.Authorization/roleDefinitions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleDefinition {
    /// The GUID (the resource's `name`).
    pub id: String,
    pub role_name: String,
    pub description: String,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub data_actions: Vec<String>,
    pub assignable_scopes: Vec<String>,
    /// When it was first created through ARM: with [`Behaviour::role_replication_seconds`], role
    /// assignments do not find it before that long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

impl RoleDefinition {
    /// Whether ARM's role assignments find it yet: a custom role just created takes a while to
    /// replicate, and an assignment of it meanwhile fails with `RoleDefinitionDoesNotExist`
    /// ("a transient error which may occur when the Resource Provider in ARM is yet to complete
    /// replication of the newly created Role Definition": Azure/terraform-azurerm-caf-enterprise-scale
    /// wiki, Troubleshooting; the setup script retries it).
    pub fn replicated(&self, behaviour: &Behaviour) -> bool {
        let delay = chrono::Duration::seconds(behaviour.role_replication_seconds as i64);
        self.created_at.is_none_or(|at| at + delay <= Utc::now())
    }
}

/// A role assignment at a subscription (ARM `Microsoft.Authorization/roleAssignments`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleAssignment {
    /// The GUID (the resource's `name`).
    pub id: String,
    /// The role definition's GUID.
    pub role_definition_id: String,
    /// The service principal's object id.
    pub principal_id: String,
    pub principal_type: String,
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct App {
    pub app_id: String,
    /// Object id of the application (Graph `id`).
    pub object_id: String,
    /// Object id of its service principal (what ARM names in AuthorizationFailed).
    pub principal_id: String,
    pub display_name: String,
    pub disabled: bool,
    /// Owns itself with `Application.ReadWrite.OwnedBy`: may read and manage its credentials.
    pub manages_own_credentials: bool,
    /// Further Microsoft Graph application permissions granted with admin consent (the `roles`
    /// of its Graph tokens), e.g. `Application.Read.All` (reads any app, manages none).
    pub graph_roles: Vec<String>,
    pub passwords: Vec<Password>,
    /// Issuers the app trusts (workload identity federation), at most 20 as in Entra.
    pub federated_credentials: Vec<FederatedCredential>,
    /// Directory roles held by its service principal (display names, e.g. "Application
    /// Developer"), when the app is a caller (signed in to `az`).
    pub directory_roles: Vec<String>,
    /// App ids of its owners (who made it through Graph).
    pub owners: Vec<String>,
    /// Graph's `notes` (free text; the emulator refuses more than 1,024 characters, a stricter
    /// reading than the v1.0 reference, which states no limit): what the setup script marks its apps
    /// with.
    pub notes: Option<String>,
    /// Made through Graph (`POST /applications`): when, and when its service principal was.
    pub created_at: Option<DateTime<Utc>>,
    pub principal_created_at: Option<DateTime<Utc>>,
}

/// A federated identity credential: an assertion with exactly this issuer, subject and one of
/// the audiences (case-sensitive) signs the app in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FederatedCredential {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    pub description: Option<String>,
    /// When it was added through Graph: with [`Behaviour::federated_credential_delay_seconds`],
    /// Entra does not use it before that long (AADSTS70021).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Password {
    pub key_id: String,
    pub display_name: String,
    /// The secret value (`secretText`, shown by Azure only once).
    pub secret_text: String,
    pub start_date_time: Option<DateTime<Utc>>,
    pub end_date_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subscription {
    pub id: String,
    pub tenant_id: String,
    pub display_name: String,
    /// Enabled | Warned | PastDue | Disabled | Deleted
    pub state: String,
    pub grants: Vec<Grant>,
    /// Role assignments made through ARM (each names a role definition of the tenant).
    pub role_assignments: Vec<RoleAssignment>,
}

/// A role assigned to an app on the subscription, as its permission entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Grant {
    pub app_id: String,
    /// The id (GUID) of the role definition assigned; empty: one derived from the subscription
    /// and the app.
    pub role_definition_id: String,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    /// When it was assigned; with [`Behaviour::propagation_seconds`], tokens issued before it
    /// became visible do not see it.
    pub assigned_at: Option<DateTime<Utc>>,
    /// The role assignment it comes from, when ARM made it (not part of a world file).
    #[serde(skip)]
    pub assignment_id: Option<String>,
}
