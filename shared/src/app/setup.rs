//! The one-command setup: a setup command for a connection (a one-time token, its hash kept on
//! the connection), the plan the script reads with it (names and values particular to the
//! connection), and the script's reports: progress, and at the end what it made, from which the
//! backend fills steps 3.2–3.5 with the wizard's own rules and runs Connect Account. The backend,
//! not the script, decides "connected".

use chrono::{DateTime, Utc};

use super::error::{AppError, Rejectable};
use super::events::{OutcomeEvent, Progress, SetupFailure, SetupIssued, SetupProgressed, Subject};
use super::operations::{App, Outcome};
use super::request::RequestMeta;
use crate::domain::setup::{
    OrganizationName, SetupAccess, SetupGrant, SetupPhase, SetupPurpose, SetupToken, SetupTokenError,
};
use crate::domain::{
    ClientId, ClientSecret, Command, Connection, ConnectionId, CredentialType, CustomRole, ManagementGroupId,
    OrgId, Scope, Status, Step, SubscriptionId, TenantId,
};
use crate::issuer::{AUDIENCE, Issuer};
use crate::store::Versioned;

/// The version of the setup script this backend serves (the script reports its own).
pub const SCRIPT_VERSION: &str = "1";
/// The app registration's display name prefix (the connection id follows).
pub const APP_NAME_PREFIX: &str = "spot-azure-connect-";
/// What the script writes into the app's `notes` when it creates it (the connection id follows):
/// with the signed-in principal its only owner, the proof that an app of that name is the one a
/// run made, not one someone else registered under the name.
pub const APP_NOTES_PREFIX: &str = "Made by Spot's azure-connect setup script for connection ";

/// A setup command just issued: the token is in here once, to be put in the command.
#[derive(Debug)]
pub struct IssuedSetup {
    pub connection: Connection,
    pub token: SetupToken,
    pub expires_at: DateTime<Utc>,
    pub purpose: SetupPurpose,
}

/// What the script needs to know, particular to the connection (and the subscription it chose).
#[derive(Debug, Clone, PartialEq)]
pub struct SetupPlan {
    pub connection: ConnectionId,
    /// Whom the run grants: the Spot organization (its display name when the console sent one)
    /// and account, shown by the script before it asks for consent.
    pub organization: OrgId,
    pub organization_name: Option<String>,
    pub account: crate::domain::AccountId,
    /// What the command was issued for.
    pub purpose: SetupPurpose,
    pub status: Status,
    /// Whether the token may still change the connection (spent once connected).
    pub access: SetupAccess,
    pub credential_type: CredentialType,
    pub tenant: Option<TenantId>,
    pub client: Option<ClientId>,
    /// The connection's own subscription (3.4), if it has one.
    pub subscription: Option<SubscriptionId>,
    /// The connection's own management group (an estate), if it has one.
    pub management_group: Option<ManagementGroupId>,
    pub app_name: String,
    /// The app's `notes` as the script writes them at creation ([`APP_NOTES_PREFIX`]).
    pub app_notes: String,
    /// The federated credential to add (none when this backend has no issuer).
    pub federated: Option<FederatedPlan>,
    /// For the subscription asked about (or the connection's own): the role and the assignment.
    pub role: Option<RolePlan>,
    pub script_version: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FederatedPlan {
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audience: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RolePlan {
    /// The subscription or management group the role is for.
    pub target: Scope,
    pub name: String,
    pub description: &'static str,
    pub scope: String,
    pub actions: Vec<String>,
    /// The role assignment's name: fixed for the connection and subscription, so that running
    /// the script again finds it instead of making a second one.
    pub assignment_name: uuid::Uuid,
}

/// What the script reports (parsed at the edge).
#[derive(Debug, Clone)]
pub struct SetupReport {
    pub phase: SetupPhase,
    pub script_version: String,
    pub tenant: Option<TenantId>,
    pub client: Option<ClientId>,
    pub subscription: Option<SubscriptionId>,
    /// With `--management-group`: the group made the connection's scope (in place of a subscription).
    pub management_group: Option<ManagementGroupId>,
    /// With `--client-secret`: the secret the script added to the app (it goes nowhere else).
    pub client_secret: Option<ClientSecret>,
    pub failure: Option<SetupFailure>,
}

/// A setup token admitted: for which connection (as read: a report writes from this version), with
/// what access. Opaque to the edge, which hands it back to [`App::setup_plan`] and
/// [`App::setup_report`].
#[derive(Debug)]
pub struct SetupAdmission {
    read: Versioned,
    access: SetupAccess,
    token_hash: String,
}

impl SetupAdmission {
    pub fn connection(&self) -> &Connection {
        &self.read.connection
    }

    pub fn access(&self) -> SetupAccess {
        self.access
    }
}

/// The answer to a report.
#[derive(Debug)]
pub enum SetupAnswer {
    /// Progress noted (or nothing to change): where the connection stands.
    Noted(Connection),
    /// Connect Account linked it.
    Connected(Connection),
    /// Uninstalled: the connection is deleted.
    Removed,
}

impl App {
    /// `POST /connections/{id}/setup-command`: a new token (the one before stops working).
    pub async fn issue_setup(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        id: &ConnectionId,
        purpose: SetupPurpose,
        organization_name: Option<OrganizationName>,
    ) -> Result<IssuedSetup, AppError> {
        let mut random = [0u8; 32];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| AppError::RandomUnavailable)?;
        let token = SetupToken::mint(org.clone(), *id, random);
        let life = chrono::Duration::minutes(i64::from(self.setup_token_minutes));
        let grant =
            SetupGrant::lasting(&token, req.received_at, life).for_purpose(purpose, organization_name);
        let expires_at = grant.expires_at;
        // Each command is new: not the replay of an earlier request.
        let req = req.phase(&token.hash()[..16]);
        let connection = self.update(&req, org, id, &Command::IssueSetup(grant)).await?;
        let subject = Subject::new(&req, org, Step::Start, Some(*id));
        self.publish(OutcomeEvent::SetupCommandIssued(SetupIssued {
            progress: Progress::of(subject, &connection),
            expires_at,
        }))
        .await;
        Ok(IssuedSetup {
            connection,
            token,
            expires_at,
            purpose,
        })
    }

    /// The connection a setup token is for (the version read: a report writes from it), if the
    /// token is its current one and in force.
    pub async fn setup_access(
        &self,
        token: &SetupToken,
        now: DateTime<Utc>,
    ) -> Result<SetupAdmission, AppError> {
        let read = self
            .store
            .load(token.org(), &token.connection())
            .await?
            .ok_or(AppError::SetupToken(SetupTokenError::Unknown))?;
        let access = read
            .connection
            .admit_setup(token, now)
            .map_err(AppError::SetupToken)?;
        Ok(SetupAdmission {
            read,
            access,
            token_hash: token.hash(),
        })
    }

    /// `GET /setup/plan`: what the script needs, for `target` (a subscription or a management
    /// group; else the connection's own scope).
    pub fn setup_plan(&self, admission: &SetupAdmission, target: Option<Scope>) -> SetupPlan {
        let (c, access) = (admission.connection(), admission.access);
        let role = target.or_else(|| c.scope()).map(|target| {
            let role = CustomRole::for_scope(target.clone());
            RolePlan {
                name: role.name(),
                description: crate::domain::role::ROLE_DESCRIPTION,
                scope: role.scope(),
                actions: role.actions(&self.roles).into_iter().map(str::to_owned).collect(),
                assignment_name: uuid::Uuid::new_v5(
                    &uuid::Uuid::NAMESPACE_URL,
                    format!("azure-connect:{}:{}:{}", c.org, c.id, target.id()).as_bytes(),
                ),
                target,
            }
        });
        let grant = c.setup.as_ref();
        SetupPlan {
            connection: c.id,
            organization: c.org.clone(),
            organization_name: grant
                .and_then(|g| g.organization_name.as_ref())
                .map(|n| n.as_str().to_owned()),
            account: c.account.clone(),
            purpose: grant.map_or(SetupPurpose::Connect, |g| g.purpose),
            status: c.status,
            access,
            credential_type: c.credential_type,
            tenant: c.app_registration.as_ref().map(|a| a.tenant.clone()),
            client: c.app_registration.as_ref().map(|a| a.client),
            subscription: c.subscription.as_ref().map(|s| s.subscription),
            management_group: c.estate.as_ref().map(|e| e.group.clone()),
            app_name: format!("{APP_NAME_PREFIX}{}", c.id),
            app_notes: format!("{APP_NOTES_PREFIX}{}", c.id),
            federated: self.issuer.as_ref().map(|issuer| FederatedPlan {
                name: format!("{APP_NAME_PREFIX}{}", c.id),
                issuer: issuer.url().to_owned(),
                subject: Issuer::subject(&c.org, &c.id, c.subject_salt.as_deref()),
                audience: AUDIENCE,
            }),
            role,
            script_version: SCRIPT_VERSION,
        }
    }

    /// `POST /setup/report`. Every phase goes out as `Setup Progress`; `done` fills the steps
    /// from what the script made (one write, the wizard's rules) and runs Connect Account.
    pub async fn setup_report(
        &self,
        req: &RequestMeta,
        admission: SetupAdmission,
        report: SetupReport,
    ) -> Result<SetupAnswer, AppError> {
        let SetupAdmission {
            read,
            access,
            token_hash,
        } = admission;
        let connection = read.connection.clone();
        let org = connection.org.clone();
        let id = connection.id;
        let subject = Subject::new(req, &org, Step::Start, Some(id));
        self.publish(OutcomeEvent::SetupProgress(SetupProgressed {
            progress: Progress::of(subject, &connection),
            phase: report.phase.as_str(),
            script_version: report.script_version.clone(),
            failure: report.failure.clone(),
        }))
        .await;
        // A connect command cannot delete; an uninstall command cannot connect.
        let purpose = connection
            .setup
            .as_ref()
            .map_or(SetupPurpose::Connect, |g| g.purpose);
        let wanted = match report.phase {
            SetupPhase::Done => Some(SetupPurpose::Connect),
            SetupPhase::Uninstalled => Some(SetupPurpose::Uninstall),
            _ => None,
        };
        if wanted.is_some_and(|w| w != purpose) {
            return Err(AppError::SetupToken(SetupTokenError::OtherPurpose));
        }
        // Spent (connected under this token): the run finds everything in place; nothing changes.
        if access == SetupAccess::Spent {
            return Ok(SetupAnswer::Noted(connection));
        }
        match report.phase {
            SetupPhase::Done => {}
            // `--uninstall` removed the app, its credentials, the role and its assignment: the
            // connection goes too (its credential erased, as a delete does).
            SetupPhase::Uninstalled => {
                self.execute(
                    &req.phase("uninstall"),
                    &org,
                    super::Operation::Delete { connection: id },
                )
                .await?;
                return Ok(SetupAnswer::Removed);
            }
            _ => return Ok(SetupAnswer::Noted(connection)),
        }
        if connection.status == Status::Connected && inputs_match(&connection, &report) {
            return Ok(SetupAnswer::Connected(connection));
        }
        let missing = |field: &str| {
            AppError::Rule(crate::domain::RuleError::MissingPrerequisite {
                step: Step::RoleAssignment,
                needs: match field {
                    "subscriptionId" => Step::Subscription,
                    _ => Step::AppRegistration,
                },
            })
        };
        let reported_tenant = report.tenant.clone().ok_or_else(|| missing("tenantId"))?;
        let client = report.client.ok_or_else(|| missing("clientId"))?;
        // The tenant entered at 3.2 as a domain (or a GUID) and reported the other way: kept as
        // entered when the client is the same (a report never moves a connection's tenant; the
        // guard below refuses any other tenant).
        let tenant = match connection.app_registration.as_ref() {
            Some(held)
                if held.client == client
                    && matches!(
                        (&held.tenant, &reported_tenant),
                        (TenantId::Domain(_), TenantId::Guid(_)) | (TenantId::Guid(_), TenantId::Domain(_))
                    ) =>
            {
                held.tenant.clone()
            }
            _ => reported_tenant,
        };
        let scope = match (&report.management_group, report.subscription) {
            (Some(group), _) => Command::ManagementGroup {
                group: group.clone(),
                // The same group again keeps the account's subscription named before.
                default_subscription: connection
                    .estate
                    .as_ref()
                    .filter(|e| &e.group == group)
                    .and_then(|e| e.default_subscription),
                // A setup token never drops an estate's ties: that is the wizard's, signed in.
                replace_estate: false,
            },
            (None, Some(subscription)) => Command::Subscription {
                subscription,
                replace_estate: false,
            },
            (None, None) => return Err(missing("subscriptionId")),
        };
        // First, inside the write (every compare-and-swap attempt): the token still in force and
        // nothing the connection holds replaced.
        let mut commands = vec![Command::GuardSetupReport {
            token_hash,
            tenant: tenant.clone(),
            client,
            scope: match &scope {
                Command::ManagementGroup { group, .. } => Scope::ManagementGroup(group.clone()),
                Command::Subscription { subscription, .. } => Scope::Subscription(*subscription),
                _ => return Err(missing("subscriptionId")),
            },
        }];
        match report.client_secret {
            Some(secret) => {
                commands.push(Command::SetCredentialType(CredentialType::Secret));
                commands.push(Command::AppRegistration { tenant, client });
                commands.push(Command::ClientSecret {
                    secret,
                    expires_at: None,
                });
            }
            None => {
                commands.push(Command::SetCredentialType(CredentialType::Federated));
                commands.push(Command::AppRegistration { tenant, client });
                commands.push(Command::ExportFederatedCredential);
            }
        }
        commands.push(scope);
        commands.push(Command::ExportCustomRole);
        // From the version the token was checked against: no second read.
        let filled = self
            .update_from(&req.phase("fill"), &org, &id, &commands, false, Some(read))
            .await;
        if let Err(e @ AppError::Rule(crate::domain::RuleError::SetupConflict(_))) = &filled {
            // Announced as the run's failure: the page shows it beside the run's progress.
            let subject = Subject::new(req, &org, Step::Start, Some(id));
            self.publish(OutcomeEvent::SetupProgress(SetupProgressed {
                progress: Progress::of(subject, &connection),
                phase: SetupPhase::Failed.as_str(),
                script_version: report.script_version.clone(),
                failure: Some(SetupFailure {
                    phase: "connect".to_owned(),
                    code: e.rejection(Step::Start).code.to_owned(),
                }),
            }))
            .await;
        }
        filled?;
        match self
            .execute(
                &req.phase("connect"),
                &org,
                super::Operation::Connect { connection: id },
            )
            .await?
        {
            Outcome::Connected(c) => Ok(SetupAnswer::Connected(c)),
            Outcome::Created(c) | Outcome::Current(c) => Ok(SetupAnswer::Noted(c)),
            _ => Err(AppError::NotFound),
        }
    }
}

/// Whether the report names what the connection already holds (a run after `connected`).
fn inputs_match(c: &Connection, r: &SetupReport) -> bool {
    let app = c
        .app_registration
        .as_ref()
        .is_some_and(|a| Some(&a.tenant) == r.tenant.as_ref() && Some(a.client) == r.client);
    let reported = match (&r.management_group, r.subscription) {
        (Some(g), _) => Some(Scope::ManagementGroup(g.clone())),
        (None, s) => s.map(Scope::Subscription),
    };
    app && reported.is_some() && c.scope() == reported && r.client_secret.is_none()
}
