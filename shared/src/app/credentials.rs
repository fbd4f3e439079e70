//! Spot's credentials API (`/azure/setup/credentials`) on the wizard's use cases: the four values
//! in one write, then Connect Account; the same checks without saving; the account's connection.

use super::error::AppError;
use super::events::OutcomeEvent;
use super::events::{Progress, Subject};
use super::operations::{App, Operation, Outcome};
use super::request::{RequestMeta, derive_connection_id};
use crate::domain::diagnosis::Diagnosis;
use crate::domain::ties::TieKey;
use crate::domain::{
    AccountId, ClientId, ClientSecret, Command, Connection, CredentialType, OrgId, Proof, Scope,
    SecretExpiry, Step, SubscriptionId, TenantId, ValidationInputs,
};
use crate::store::Lookup;
use crate::validation::Validated;

/// The four values (and the optional expiry) of Spot's credentials API, parsed.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub tenant: TenantId,
    pub client: ClientId,
    pub secret: ClientSecret,
    pub subscription: SubscriptionId,
    pub expires_at: Option<SecretExpiry>,
    /// The caller knows the account's connection is an estate whose ties this drops.
    pub replace_estate: bool,
}

impl Credentials {
    fn commands(&self) -> [Command; 3] {
        [
            Command::AppRegistration {
                tenant: self.tenant.clone(),
                client: self.client,
            },
            Command::ClientSecret {
                secret: self.secret.clone(),
                expires_at: self.expires_at,
            },
            Command::Subscription {
                subscription: self.subscription,
                replace_estate: self.replace_estate,
            },
        ]
    }
}

impl App {
    /// `POST /azure/setup/credentials`: the wizard's input steps and Connect Account in one go, on
    /// the account's connection (the most recent one, or a new one).
    pub async fn set_credentials(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        account: AccountId,
        credentials: Credentials,
    ) -> Result<Outcome, AppError> {
        // Each phase gets its own request id, so that each is idempotent on its own.
        let id = match self.account_connection(org, &account).await? {
            Some(id) => id,
            None => {
                let id = derive_connection_id(org, &format!("spot-credentials|{account}"));
                let start = Operation::Start {
                    account: account.clone(),
                    connection: Some(id),
                    credential: CredentialType::Secret,
                };
                self.execute(&req.phase("start"), org, start).await?;
                id
            }
        };
        let phase = req.phase("credentials");
        match self
            .update_announced(&phase, org, &id, &credentials.commands(), false)
            .await
        {
            Ok((c, _)) => {
                let subject = Subject::new(&phase, org, Step::ClientSecret, Some(id));
                self.publish(OutcomeEvent::StepCompleted(Progress::of(subject, &c)))
                    .await;
            }
            Err(e) => {
                self.reject(&phase, Some(org), Step::ClientSecret, Some(id), &e)
                    .await;
                return Err(e);
            }
        }
        self.execute(&req.phase("connect"), org, Operation::Connect { connection: id })
            .await
    }

    /// `POST /azure/setup/credentials/validation`: the same checks, nothing saved.
    pub async fn validate_credentials(
        &self,
        org: &OrgId,
        credentials: &Credentials,
    ) -> Result<Validated, AppError> {
        let validator = self.validator.as_ref().ok_or(AppError::AzureNotConfigured)?;
        self.admit_validation(org, chrono::Utc::now()).await?;
        let inputs = ValidationInputs {
            tenant: credentials.tenant.clone(),
            client: credentials.client,
            proof: Proof::Secret(credentials.secret.clone()),
            scope: Scope::Subscription(credentials.subscription),
            fingerprint: String::new(),
        };
        validator
            .validate(&inputs)
            .await
            .map_err(|f| AppError::Validation(Box::new(Diagnosis::of(&f))))
    }

    /// The account's connection: the one that holds the account in the organization's ties
    /// (current, whatever a listing shows), else the one it started most recently (found by tag,
    /// a listing that may lag: only a connection that has entered no subscription yet is found
    /// this way alone).
    async fn account_connection(
        &self,
        org: &OrgId,
        account: &AccountId,
    ) -> Result<Option<crate::domain::ConnectionId>, AppError> {
        if let Some(held) = self.holder_of(org, &TieKey::Account(account.clone())).await? {
            return Ok(Some(held.connection));
        }
        Ok(self
            .store
            .find(org, &Lookup::Account(account))
            .await?
            .first()
            .copied())
    }

    /// `GET /azure/setup/credentials`: the account's connection and the subscription it holds:
    /// the connection that holds the account in the organization's ties (its own connection
    /// that entered a subscription, or the estate one of whose subscriptions it holds), else the
    /// connection the account started (found by tag: one without a subscription yet).
    pub async fn credentials_of(&self, org: &OrgId, account: &AccountId) -> Result<Holding, AppError> {
        if let Some(id) = self.account_connection(org, account).await? {
            let connection = self.load(org, &id).await?.connection;
            // An estate's own account awaiting its default: none yet.
            let subscription = match &connection.estate {
                Some(estate) => estate.holder_of(account),
                None => connection.subscription.as_ref().map(|s| s.subscription),
            };
            return Ok(Holding {
                connection,
                subscription,
            });
        }
        Err(AppError::NotFound)
    }
}

/// A Spot account's connection, and the subscription the account holds through it (none yet for
/// an estate's own account that awaits one).
#[derive(Debug)]
pub struct Holding {
    pub connection: Connection,
    pub subscription: Option<SubscriptionId>,
}
