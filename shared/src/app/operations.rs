//! The application: one [`Operation`] for one organization, run and announced; rejections logged
//! with their causes and announced.

use std::sync::Arc;

use crate::domain::estate::{EstateEntry, SubscriptionStatus};
use crate::domain::role::RoleVersions;
use crate::domain::{
    AccountId, Command, Connection, ConnectionId, CredentialType, OrgId, RoleFormat, Step, SubscriptionId,
};
use crate::events::EventSink;
use crate::issuer::Issuer;
use crate::store::{ConnectionStore, RotationStore, StoreError, Versioned, WriteToken};
use crate::validation::Validator;

use super::error::{self, AppError, Rejectable};
use super::events::{Connected, FederatedExported, OutcomeEvent, Progress, Rejected, RoleExported, Subject};
use super::request::{RequestMeta, derive_connection_id};
use crate::issuer::FederatedCredentialValues;

/// What a caller asks for, parsed.
#[derive(Debug, Clone)]
pub enum Operation {
    Start {
        account: AccountId,
        connection: Option<ConnectionId>,
        credential: CredentialType,
    },
    Read {
        connection: ConnectionId,
    },
    Delete {
        connection: ConnectionId,
    },
    Submit {
        connection: ConnectionId,
        command: Command,
    },
    ExportRole {
        connection: ConnectionId,
        format: RoleFormat,
    },
    /// "Connect Account": validate against Azure and link.
    Connect {
        connection: ConnectionId,
    },
    /// The federated credential's values (secretless connections).
    ExportFederatedCredential {
        connection: ConnectionId,
    },
    /// An estate's subscriptions, one page (by subscription id, after `after`).
    ListSubscriptions {
        connection: ConnectionId,
        after: Option<SubscriptionId>,
        limit: usize,
        /// Only the subscriptions in this status (what needs attention first).
        status: Option<SubscriptionStatus>,
    },
    /// Ties a subscription of an estate to a Spot account.
    LinkSubscription {
        connection: ConnectionId,
        subscription: SubscriptionId,
        account: AccountId,
    },
}

impl Operation {
    pub fn step(&self) -> Step {
        match self {
            Self::Start { .. } | Self::Read { .. } | Self::Delete { .. } => Step::Start,
            Self::Submit { command, .. } => command.step(),
            Self::ExportRole { .. } => Step::CustomRole,
            Self::Connect { .. } => Step::RoleAssignment,
            Self::ExportFederatedCredential { .. } => Step::FederatedCredential,
            Self::ListSubscriptions { .. } | Self::LinkSubscription { .. } => Step::Subscription,
        }
    }

    pub fn connection(&self) -> Option<ConnectionId> {
        match self {
            Self::Start { connection, .. } => *connection,
            Self::Read { connection }
            | Self::Delete { connection }
            | Self::Submit { connection, .. }
            | Self::ExportRole { connection, .. }
            | Self::Connect { connection }
            | Self::ExportFederatedCredential { connection }
            | Self::ListSubscriptions { connection, .. }
            | Self::LinkSubscription { connection, .. } => Some(*connection),
        }
    }
}

#[derive(Debug)]
pub enum Outcome {
    Created(Connection),
    Current(Connection),
    Deleted,
    Role {
        connection: Connection,
        format: RoleFormat,
        role: serde_json::Value,
    },
    /// Validated and linked.
    Connected(Connection),
    FederatedCredential {
        connection: Connection,
        values: FederatedCredentialValues,
    },
    /// One page of an estate's subscriptions (`next`: the last one, when more follow).
    Subscriptions {
        connection: Connection,
        items: Vec<EstateEntry>,
        next: Option<SubscriptionId>,
        status: Option<SubscriptionStatus>,
    },
    /// One subscription of an estate, as it stands after a change.
    Subscription {
        connection: Connection,
        entry: Box<EstateEntry>,
    },
}

impl Outcome {
    /// The funnel: a connection started, a step taken, an account connected.
    fn count(&self, step: Step) {
        match self {
            Self::Created(c) => crate::metrics::connection_started(c.credential_type),
            Self::Connected(c) => {
                let since = (c.linked_at.unwrap_or(c.updated_at) - c.created_at)
                    .to_std()
                    .unwrap_or_default();
                crate::metrics::account_connected(c.credential_type, since);
            }
            Self::Current(_)
            | Self::Role { .. }
            | Self::FederatedCredential { .. }
            | Self::Subscriptions { .. }
            | Self::Subscription { .. } => crate::metrics::step_completed(step),
            Self::Deleted => {}
        }
    }

    /// The event announcing this outcome (reads announce nothing: the caller skips them).
    fn event(&self, subject: Subject) -> OutcomeEvent {
        match self {
            Self::Created(c)
            | Self::Current(c)
            | Self::Subscriptions { connection: c, .. }
            | Self::Subscription { connection: c, .. } => {
                OutcomeEvent::StepCompleted(Progress::of(subject, c))
            }
            Self::Deleted => OutcomeEvent::ConnectionDeleted(subject),
            Self::Connected(c) => OutcomeEvent::AccountConnected(Connected::of(subject, c)),
            Self::Role {
                connection,
                format,
                role,
            } => OutcomeEvent::CustomRoleExported(RoleExported {
                progress: Progress::of(subject, connection),
                format: *format,
                role: role.clone(),
            }),
            Self::FederatedCredential { connection, values } => {
                OutcomeEvent::FederatedCredentialExported(FederatedExported {
                    progress: Progress::of(subject, connection),
                    values: values.clone(),
                })
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub(super) store: Arc<dyn ConnectionStore>,
    pub(super) events: Arc<dyn EventSink>,
    pub(super) validator: Option<Arc<Validator>>,
    pub(super) issuer: Option<Arc<Issuer>>,
    pub(super) rotation: Option<Arc<dyn RotationStore>>,
    /// Spot's role, every version: what "Export JSON Policy" hands out.
    pub(super) roles: Arc<RoleVersions>,
    pub(super) quotas: super::quota::Quotas,
    pub(super) claim_hints: super::quota::ClaimHints,
    /// The API's public URL for setup commands (`None`: the edge takes the request's).
    pub(super) public_api_url: Option<Arc<str>>,
    /// How long a setup command can be used.
    pub(super) setup_token_minutes: u16,
    /// Where the chunks of a survey in the background go (`None`: every survey at once).
    pub(super) survey_queue: Option<Arc<dyn crate::queue::WorkQueue>>,
    pub(super) survey_settings: crate::domain::survey::SurveySettings,
}

impl App {
    pub fn new(store: Arc<dyn ConnectionStore>, events: Arc<dyn EventSink>) -> Self {
        Self {
            store,
            events,
            validator: None,
            issuer: None,
            rotation: None,
            roles: Arc::new(RoleVersions::builtin()),
            quotas: super::quota::Quotas::default(),
            claim_hints: Default::default(),
            public_api_url: None,
            setup_token_minutes: crate::domain::setup::SETUP_TOKEN_MINUTES as u16,
            survey_queue: None,
            survey_settings: Default::default(),
        }
    }

    /// How long a setup command can be used, in minutes.
    pub fn with_setup_token_minutes(mut self, minutes: u16) -> Self {
        self.setup_token_minutes = minutes;
        self
    }

    /// The API's public URL, as setup commands name it.
    pub fn with_public_api_url(mut self, url: Option<String>) -> Self {
        self.public_api_url = url.map(Into::into);
        self
    }

    pub fn public_api_url(&self) -> Option<&str> {
        self.public_api_url.as_deref()
    }

    /// Per-organization quotas (the defaults otherwise).
    pub fn with_quotas(mut self, quotas: super::quota::Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// Exports these versions of Spot's role (the shipped ones by default).
    pub fn with_roles(mut self, roles: Arc<RoleVersions>) -> Self {
        self.roles = roles;
        self
    }

    /// Our OpenID issuer, if this function has one.
    pub fn issuer(&self) -> Option<&Arc<Issuer>> {
        self.issuer.as_ref()
    }

    /// Gives the app our OpenID issuer: the federated credential step needs its URL.
    pub fn with_issuer(mut self, issuer: Arc<Issuer>) -> Self {
        self.issuer = Some(issuer);
        self
    }

    /// Lets the expiry scan start rotations (`RotateSecret`): Secrets Manager only.
    pub fn with_rotation(mut self, store: Arc<dyn RotationStore>) -> Self {
        self.rotation = Some(store);
        self
    }

    /// Gives the app Azure: Connect Account and the early checks need it.
    pub fn with_validator(mut self, validator: Arc<Validator>) -> Self {
        self.validator = Some(validator);
        self
    }

    /// Runs one operation for one organization and publishes its outcome.
    pub async fn execute(&self, req: &RequestMeta, org: &OrgId, op: Operation) -> Result<Outcome, AppError> {
        let step = op.step();
        let connection = op.connection();
        let is_read = matches!(op, Operation::Read { .. } | Operation::ListSubscriptions { .. });
        let result = self.run(req, org, op).await;
        match &result {
            Ok(_) if is_read => {}
            Ok(outcome) => {
                outcome.count(step);
                self.publish(outcome.event(Subject::new(req, org, step, connection)))
                    .await
            }
            Err(err @ AppError::Validation(_)) if step == Step::RoleAssignment => {
                let event = OutcomeEvent::ConnectionFailed(Rejected {
                    subject: Subject::new(req, org, step, connection),
                    problem: err.rejection(step),
                });
                self.publish(event).await;
            }
            Err(err) => self.reject(req, Some(org), step, connection, err).await,
        }
        result
    }

    /// Logs a rejected request with every cause of its error (faults at error level), counts it
    /// and publishes `Step Rejected`; for requests that failed at the edge or in [`Self::execute`].
    pub async fn reject(
        &self,
        req: &RequestMeta,
        org: Option<&OrgId>,
        step: Step,
        connection: Option<ConnectionId>,
        err: &dyn Rejectable,
    ) {
        let rejection = err.rejection(step);
        crate::metrics::step_rejected(step, rejection.code);
        let chain = error::error_chain(err);
        if rejection.kind.is_fault() {
            tracing::error!(request_id = %req.request_id, step = %step, code = rejection.code, error = %chain, "request failed");
        } else {
            tracing::info!(request_id = %req.request_id, step = %step, code = rejection.code, error = %chain, "request rejected");
        }
        // Without an organization there is nobody to tell.
        if let Some(org) = org {
            let event = OutcomeEvent::StepRejected(Rejected {
                subject: Subject::new(req, org, step, connection),
                problem: rejection,
            });
            self.publish(event).await;
        }
    }

    /// Publishes an event. The state is the truth and is already written: a lost event is
    /// logged, not failed.
    pub(crate) async fn publish(&self, event: OutcomeEvent) {
        publish(self.events.as_ref(), &event).await;
    }

    async fn run(&self, req: &RequestMeta, org: &OrgId, op: Operation) -> Result<Outcome, AppError> {
        match op {
            Operation::Start {
                account,
                connection,
                credential,
            } => self.start(req, org, account, connection, credential).await,
            Operation::ExportFederatedCredential { connection } => {
                self.export_federated(req, org, &connection).await
            }
            Operation::Read { connection } => {
                Ok(Outcome::Current(self.load(org, &connection).await?.connection))
            }
            Operation::Delete { connection } => {
                // What it holds across the organization, given back once it is gone.
                let ties = match self.store.load(org, &connection).await? {
                    Some(read) => read.connection.ties(),
                    None => Default::default(),
                };
                if self.store.delete(org, &connection).await? {
                    self.give_back_places(&req.request_id, org, &[connection]).await;
                    let ties: Vec<_> = ties.into_iter().collect();
                    self.release_ties(&req.request_id, org, &connection, &ties).await;
                    Ok(Outcome::Deleted)
                } else {
                    Err(AppError::NotFound)
                }
            }
            Operation::Submit { connection, command } => {
                let commands = std::slice::from_ref(&command);
                let (c, _) = self
                    .update_announced(req, org, &connection, commands, true)
                    .await?;
                Ok(Outcome::Current(c))
            }
            Operation::Connect { connection } => self.connect(req, org, &connection).await,
            Operation::ListSubscriptions {
                connection,
                after,
                limit,
                status,
            } => {
                self.list_subscriptions(org, &connection, after, limit, status)
                    .await
            }
            Operation::LinkSubscription {
                connection,
                subscription,
                account,
            } => {
                self.link_subscription(req, org, &connection, subscription, account)
                    .await
            }
            Operation::ExportRole { connection, format } => {
                // Recorded on the first export; exporting again (or in the other format) changes
                // nothing, so it costs one read.
                let connection = self
                    .update(req, org, &connection, &Command::ExportCustomRole)
                    .await?;
                let role = connection.custom_role()?.to_json_with(
                    format,
                    &self.roles,
                    connection.validation.as_ref().and_then(|v| v.role_id.as_deref()),
                );
                Ok(Outcome::Role {
                    connection,
                    format,
                    role,
                })
            }
        }
    }

    pub(super) async fn load(&self, org: &OrgId, id: &ConnectionId) -> Result<Versioned, AppError> {
        self.store.load(org, id).await?.ok_or(AppError::NotFound)
    }

    /// `c` with its client secret's value read from the store, for the use cases that send it to
    /// Azure (only their functions may read it). A credential that is gone (a connection restored
    /// after a delete) leaves the connection without a secret, as if none had been entered.
    pub(super) async fn revealed(&self, mut c: Connection) -> Result<Connection, AppError> {
        if c.client_secret.as_ref().is_none_or(|s| s.secret().is_some()) {
            return Ok(c);
        }
        match self.store.reveal(&c).await? {
            Some(value) => {
                if let Some(record) = c.client_secret.as_mut() {
                    if !record.reveal(value) {
                        return Err(AppError::Store(crate::store::StoreError::Backend(
                            "the credential read is not the one the connection names".into(),
                        )));
                    }
                }
            }
            None => {
                tracing::warn!(connection = %c.id, "the client secret's credential is gone: the connection needs a secret again");
                c.client_secret = None;
            }
        }
        Ok(c)
    }

    async fn start(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        account: AccountId,
        requested: Option<ConnectionId>,
        credential: CredentialType,
    ) -> Result<Outcome, AppError> {
        // Without an id from the caller, derive one from the request: a retried request finds the
        // connection its first attempt made instead of making a second one.
        let id = requested.unwrap_or_else(|| derive_connection_id(org, &req.request_id));
        // A new connection needs a place among the organization's unlinked ones, taken in its
        // index before the connection is written; a retried start (over the quota meanwhile)
        // finds the connection its first attempt made.
        if let Err(full) = self
            .reserve_place(&req.request_id, org, id, req.received_at)
            .await
        {
            if self.store.load(org, &id).await?.is_none() {
                return Err(full);
            }
        }
        let mut connection =
            Connection::new(id, org.clone(), account, req.received_at).created_by(&req.record());
        connection.credential_type = credential;
        let token = WriteToken::derive(&req.request_id, None, 0);
        match self.store.create(&connection, &token).await {
            Ok(_) => Ok(Outcome::Created(connection)),
            Err(StoreError::AlreadyExists) => {
                // A name that reads as nothing is a deleted connection's, held for its recovery
                // window: not to be made again meanwhile.
                let existing = self
                    .store
                    .load(org, &id)
                    .await?
                    .ok_or(AppError::IdTaken)?
                    .connection;
                if existing.handled(&req.record()) {
                    Ok(Outcome::Created(existing))
                } else if existing.reused(&req.request_id, &req.record()) {
                    Err(AppError::KeyReused)
                } else if existing.account == connection.account {
                    Ok(Outcome::Current(existing))
                } else {
                    Err(AppError::IdTaken)
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Publishes one event to a sink, logging (not failing) a lost one with its causes.
pub async fn publish(sink: &dyn EventSink, event: &OutcomeEvent) {
    let wire = match event.to_wire() {
        Ok(wire) => wire,
        Err(e) => {
            tracing::error!(error = %e, "event not serializable; not published");
            return;
        }
    };
    if let Err(e) = sink.publish(&wire).await {
        tracing::error!(detail_type = %wire.detail_type, error = %error::error_chain(&e), "event not published");
    }
}
