//! The use cases of the wizard, shared by every trigger: HTTP API, console events, local server.
//!
//! A write reads the connection (one call), applies a domain [`Command`], and writes it back by
//! compare-and-swap; on a lost race it re-reads and re-applies, a bounded number of times.
//! Every outcome, success or rejection, is published as an event.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::diagnosis::{AzureFailure, Diagnosis, ValidationFailure};
use crate::domain::expiry::{self, Due, ReminderPolicy};
use crate::domain::{
    AccountId, Command, Connection, ConnectionId, FailureRecord, OrgId, RoleFormat, RuleError, Step,
    ValidationRecord,
};
use crate::domain::{ClientId, ClientSecret, SecretExpiry, SubscriptionId, TenantId, ValidationInputs};
use crate::edge::outbound;
use crate::events::{EventSink, OutEvent};
use crate::store::{ConnectionStore, RotationStore, ScanEntry, StoreError, Versioned, WriteToken};
use crate::validation::{CHECKS, Validated, Validator};

/// Attempts of one compare-and-swap write before answering 409.
pub const CAS_ATTEMPTS: u32 = 8;

/// Which door a request came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Http,
    Console,
    /// The daily expiry scan.
    Schedule,
}

/// What the trigger tells about a request: its id (stable across retries of the same request) and
/// when it was received (so a retried request computes the same document).
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub received_at: DateTime<Utc>,
    pub trigger: Trigger,
}

/// One field that did not parse; the message never repeats the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl ToString) -> Self {
        Self {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// What was wrong with the request as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputProblem {
    /// Fields parsed as JSON but not as domain values.
    InvalidInput,
    /// Not JSON, wrong types, unknown or missing fields.
    MalformedBody,
    BodyTooLarge,
    UnsupportedMediaType,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the request is not valid")]
    Input {
        problem: InputProblem,
        errors: Vec<FieldError>,
    },
    #[error("the request carries no organization")]
    Unauthenticated,
    #[error("no such connection")]
    NotFound,
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("this connection id is already used by another account's connection")]
    IdTaken,
    #[error("too many concurrent changes to this connection")]
    Contended,
    #[error("client secrets are accepted over the authenticated API only")]
    SecretOverEvent,
    #[error("this function does not handle console events of this type")]
    UnknownEvent,
    #[error("the connection store failed")]
    Store(#[from] StoreError),
    /// Connect Account's verdict: the customer (or Azure) has something to fix.
    #[error("validation against Azure failed: {}", .0.code)]
    Validation(Box<Diagnosis>),
    #[error("this function has no Azure configuration")]
    AzureNotConfigured,
}

impl AppError {
    pub fn input(problem: InputProblem, errors: Vec<FieldError>) -> Self {
        Self::Input { problem, errors }
    }

    pub fn invalid(errors: Vec<FieldError>) -> Self {
        Self::input(InputProblem::InvalidInput, errors)
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Contended | Self::Rule(RuleError::InputsChanged) => true,
            Self::Validation(d) => d.retryable,
            _ => false,
        }
    }
}

/// What one expiry scan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanReport {
    pub pages: usize,
    pub listed: usize,
    pub reminded: usize,
    pub expired: usize,
    pub rotations: usize,
    pub failed: usize,
}

/// The four values (and the optional expiry) of Spot's credentials API, parsed.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub tenant: TenantId,
    pub client: ClientId,
    pub secret: ClientSecret,
    pub subscription: SubscriptionId,
    pub expires_at: Option<SecretExpiry>,
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
            },
        ]
    }
}

/// What a caller asks for, parsed.
#[derive(Debug, Clone)]
pub enum Operation {
    Start {
        account: AccountId,
        connection: Option<ConnectionId>,
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
}

impl Operation {
    pub fn step(&self) -> Step {
        match self {
            Self::Start { .. } | Self::Read { .. } | Self::Delete { .. } => Step::Start,
            Self::Submit { command, .. } => command.step(),
            Self::ExportRole { .. } => Step::CustomRole,
            Self::Connect { .. } => Step::RoleAssignment,
        }
    }

    pub fn connection(&self) -> Option<ConnectionId> {
        match self {
            Self::Start { connection, .. } => *connection,
            Self::Read { connection }
            | Self::Delete { connection }
            | Self::Submit { connection, .. }
            | Self::ExportRole { connection, .. }
            | Self::Connect { connection } => Some(*connection),
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
}

#[derive(Debug, Clone)]
pub struct App {
    store: Arc<dyn ConnectionStore>,
    events: Arc<dyn EventSink>,
    validator: Option<Arc<Validator>>,
    rotation: Option<Arc<dyn RotationStore>>,
}

impl App {
    pub fn new(store: Arc<dyn ConnectionStore>, events: Arc<dyn EventSink>) -> Self {
        Self {
            store,
            events,
            validator: None,
            rotation: None,
        }
    }

    /// Lets the expiry scan start rotations (`RotateSecret`): Secrets Manager only.
    pub fn with_rotation(mut self, store: Arc<dyn RotationStore>) -> Self {
        self.rotation = Some(store);
        self
    }

    pub fn events(&self) -> &Arc<dyn EventSink> {
        &self.events
    }

    /// Gives the app Azure: Connect Account needs it.
    pub fn with_validator(mut self, validator: Arc<Validator>) -> Self {
        self.validator = Some(validator);
        self
    }

    /// Runs one operation for one organization and publishes its outcome.
    pub async fn execute(&self, req: &RequestMeta, org: &OrgId, op: Operation) -> Result<Outcome, AppError> {
        let step = op.step();
        let connection = op.connection();
        let is_read = matches!(op, Operation::Read { .. });
        let result = self.run(req, org, op).await;
        match &result {
            Ok(_) if is_read => {}
            Ok(outcome) => {
                if let Some(event) = outbound::completed(req, org, step, connection, outcome) {
                    self.publish(event).await;
                }
            }
            Err(AppError::Validation(d)) if step == Step::RoleAssignment => {
                self.publish(outbound::connection_failed(req, org, connection, d))
                    .await;
            }
            Err(err) => self.reject(req, Some(org), step, connection, err).await,
        }
        result
    }

    /// Publishes the rejection of a request that failed (at the edge or in [`Self::execute`]).
    pub async fn reject(
        &self,
        req: &RequestMeta,
        org: Option<&OrgId>,
        step: Step,
        connection: Option<ConnectionId>,
        err: &AppError,
    ) {
        tracing::info!(
            request_id = %req.request_id,
            step = %step,
            code = crate::edge::problem::Problem::from_error(err, step).code,
            error = %err,
            "request rejected"
        );
        // Without an organization there is nobody to tell.
        if let Some(org) = org {
            self.publish(outbound::rejected(req, org, step, connection, err))
                .await;
        }
    }

    async fn publish(&self, event: OutEvent) {
        if let Err(e) = self.events.publish(&event).await {
            // The state is the truth and is already written; a lost event is logged, not failed.
            tracing::error!(detail_type = %event.detail_type, error = %e, source = ?std::error::Error::source(&e), "event not published");
        }
    }

    async fn run(&self, req: &RequestMeta, org: &OrgId, op: Operation) -> Result<Outcome, AppError> {
        match op {
            Operation::Start { account, connection } => self.start(req, org, account, connection).await,
            Operation::Read { connection } => {
                Ok(Outcome::Current(self.load(org, &connection).await?.connection))
            }
            Operation::Delete { connection } => {
                if self.store.delete(org, &connection).await? {
                    Ok(Outcome::Deleted)
                } else {
                    Err(AppError::NotFound)
                }
            }
            Operation::Submit { connection, command } => {
                let c = self.update(req, org, &connection, &command).await?;
                Ok(Outcome::Current(c))
            }
            Operation::Connect { connection } => self.connect(req, org, &connection).await,
            Operation::ExportRole { connection, format } => {
                // Recorded on the first export; exporting again (or in the other format) changes
                // nothing, so it costs one read.
                let connection = self
                    .update(req, org, &connection, &Command::ExportCustomRole)
                    .await?;
                let role = connection.custom_role()?;
                Ok(Outcome::Role {
                    connection,
                    format,
                    role: role.to_json(format),
                })
            }
        }
    }

    /// Validates the stored inputs against Azure (no store lock is held meanwhile), then records
    /// the verdict by compare-and-swap: connected, or failed with everything the customer typed kept.
    async fn connect(&self, req: &RequestMeta, org: &OrgId, id: &ConnectionId) -> Result<Outcome, AppError> {
        let current = self.load(org, id).await?.connection;
        let inputs = current.validation_inputs()?;
        let validator = self.validator.as_ref().ok_or(AppError::AzureNotConfigured)?;
        let verdict = validator.validate(&inputs).await;
        let diagnosis = verdict.as_ref().err().map(Diagnosis::of);
        let graph = verdict.as_ref().ok().and_then(|v| v.graph.as_ref());
        let record = ValidationRecord {
            checked_at: Utc::now(),
            inputs: inputs.fingerprint,
            checks: CHECKS.iter().map(|c| c.to_string()).collect(),
            warnings: verdict.as_ref().map(|v| v.warnings.clone()).unwrap_or_default(),
            subscription_name: verdict.as_ref().ok().map(|v| v.subscription_name.clone()),
            failure: diagnosis.as_ref().map(|d| FailureRecord {
                step: d.step,
                code: d.code.to_owned(),
                retryable: d.retryable,
                missing_actions: d.missing_actions.clone(),
            }),
            graph_manages_credentials: graph.map(|g| g.manages_credentials),
            secret_key_id: graph.and_then(|g| g.key_id.clone()),
            secret_end: graph.and_then(|g| g.secret_end),
        };
        if let Some(d) = &diagnosis {
            tracing::info!(connection = %id, step = %d.step, code = d.code, "connect failed");
        }
        let connection = self
            .update(req, org, id, &Command::RecordValidation(record))
            .await?;
        match diagnosis {
            None => Ok(Outcome::Connected(connection)),
            Some(d) => Err(AppError::Validation(Box::new(d))),
        }
    }

    /// The daily expiry scan: pages through the connections by tag (names and tags only), and for
    /// each one that is due sends the reminder of its threshold once, or marks it expired, each
    /// by compare-and-swap. A duplicate delivery of the same run (`scan_id`) or a re-run sends
    /// nothing twice. Writes are paced (`pace` between due connections) to stay well inside Secrets
    /// Manager's 50 writes/s account-wide quota.
    pub async fn scan_expiry(
        &self,
        scan_id: &str,
        now: DateTime<Utc>,
        policy: &ReminderPolicy,
        pace: Duration,
        rotation_lambda: Option<&str>,
    ) -> Result<ScanReport, AppError> {
        let today = now.date_naive();
        let mut report = ScanReport::default();
        let mut next = None;
        loop {
            let page = self.store.scan_page(next.take()).await?;
            report.pages += 1;
            for entry in page.entries {
                report.listed += 1;
                let Some(due) = expiry::due(policy, &entry.tags, today) else {
                    continue;
                };
                let req = RequestMeta {
                    request_id: format!("{scan_id}|{}|{due:?}", entry.connection),
                    received_at: now,
                    trigger: Trigger::Schedule,
                };
                match self.apply_due(&req, &entry, due, rotation_lambda).await {
                    Ok(true) => match due {
                        Due::Remind { .. } => report.reminded += 1,
                        Due::Expire => report.expired += 1,
                        Due::Rotate => report.rotations += 1,
                    },
                    Ok(false) => {}
                    // Throttled or down: stop, so that the scheduled run fails and is retried.
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(e) => {
                        report.failed += 1;
                        tracing::error!(connection = %entry.connection, error = %e, "expiry scan: connection skipped");
                    }
                }
                if !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
            }
            match page.next {
                Some(token) => next = Some(token),
                None => return Ok(report),
            }
        }
    }

    /// Does the due work; `true` if this call did it (and announced it).
    async fn apply_due(
        &self,
        req: &RequestMeta,
        entry: &ScanEntry,
        due: Due,
        rotation_lambda: Option<&str>,
    ) -> Result<bool, AppError> {
        let command = match due {
            Due::Remind { threshold } => Command::RecordReminder { threshold },
            Due::Expire => Command::MarkExpired,
            Due::Rotate => {
                // Secrets Manager takes it from here: the four steps come to `secret-expiry`.
                return match (&self.rotation, rotation_lambda) {
                    (Some(store), Some(arn)) => {
                        store.start_rotation(&entry.org, &entry.connection, arn).await?;
                        Ok(true)
                    }
                    _ => Ok(false),
                };
            }
        };
        let (connection, wrote) = self
            .update_all(
                req,
                &entry.org,
                &entry.connection,
                std::slice::from_ref(&command),
                false,
            )
            .await?;
        if wrote {
            self.publish(outbound::expiry(req, &entry.org, &connection, due))
                .await;
        }
        Ok(wrote)
    }

    /// Spot's `POST /azure/setup/credentials`: the wizard's input steps and Connect Account in one
    /// go, on the account's connection (the most recent one, or a new one).
    pub async fn set_credentials(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        account: AccountId,
        credentials: Credentials,
    ) -> Result<Outcome, AppError> {
        // Each phase gets its own request id, so that each is idempotent on its own.
        let phase = |name: &str| RequestMeta {
            request_id: format!("{}#{name}", req.request_id),
            ..req.clone()
        };
        let id = match self.store.find(org, &account).await?.first() {
            Some(id) => *id,
            None => {
                let id = derive_connection_id(org, &format!("spot-credentials|{account}"));
                let start = Operation::Start {
                    account: account.clone(),
                    connection: Some(id),
                };
                self.execute(&phase("start"), org, start).await?;
                id
            }
        };
        let commands = credentials.commands();
        let stored = self
            .update_all(&phase("credentials"), org, &id, &commands, false)
            .await;
        match stored {
            Ok((c, _)) => {
                let outcome = Outcome::Current(c);
                let event =
                    outbound::completed(&phase("credentials"), org, Step::ClientSecret, Some(id), &outcome);
                if let Some(event) = event {
                    self.publish(event).await;
                }
            }
            Err(e) => {
                self.reject(&phase("credentials"), Some(org), Step::ClientSecret, Some(id), &e)
                    .await;
                return Err(e);
            }
        }
        self.execute(&phase("connect"), org, Operation::Connect { connection: id })
            .await
    }

    /// Spot's `POST /azure/setup/credentials/validation`: the same checks, nothing saved.
    pub async fn validate_credentials(&self, credentials: &Credentials) -> Result<Validated, AppError> {
        let validator = self.validator.as_ref().ok_or(AppError::AzureNotConfigured)?;
        let inputs = ValidationInputs {
            tenant: credentials.tenant.clone(),
            client: credentials.client,
            secret: credentials.secret.clone(),
            subscription: credentials.subscription,
            fingerprint: String::new(),
        };
        validator
            .validate(&inputs)
            .await
            .map_err(|f| AppError::Validation(Box::new(Diagnosis::of(&f))))
    }

    /// Spot's `GET /azure/setup/credentials`: the account's connection.
    pub async fn credentials_of(&self, org: &OrgId, account: &AccountId) -> Result<Connection, AppError> {
        let id = self
            .store
            .find(org, account)
            .await?
            .first()
            .copied()
            .ok_or(AppError::NotFound)?;
        Ok(self.load(org, &id).await?.connection)
    }

    /// Earlier feedback where it is cheap: at 3.2 the tenant must exist; at 3.3 the three values
    /// must get a token. A definite "no" from Azure rejects the input (the secret is not kept);
    /// Azure out of reach accepts it, and Connect Account will tell.
    async fn early_check(&self, current: &Connection, command: &Command) -> Result<(), AppError> {
        let Some(validator) = &self.validator else {
            return Ok(());
        };
        let verdict = match command {
            Command::AppRegistration { tenant, .. } => validator.probe_tenant(tenant).await,
            Command::ClientSecret { secret, .. } => match &current.app_registration {
                Some(app) => {
                    validator
                        .check_credentials(&app.tenant, &app.client, secret)
                        .await
                }
                None => Ok(()),
            },
            _ => Ok(()),
        };
        match verdict {
            Err(f @ ValidationFailure::Azure(AzureFailure::TokenRefused { .. })) => {
                let diagnosis = Diagnosis::of(&f);
                tracing::info!(step = %diagnosis.step, code = diagnosis.code, "early check refused the input");
                Err(AppError::Validation(Box::new(diagnosis)))
            }
            Err(other) => {
                tracing::warn!(failure = ?other, "early check could not reach Azure; input accepted");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    async fn load(&self, org: &OrgId, id: &ConnectionId) -> Result<Versioned, AppError> {
        self.store.load(org, id).await?.ok_or(AppError::NotFound)
    }

    async fn start(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        account: AccountId,
        requested: Option<ConnectionId>,
    ) -> Result<Outcome, AppError> {
        // Without an id from the caller, derive one from the request: a retried request finds the
        // connection its first attempt made instead of making a second one.
        let id = requested.unwrap_or_else(|| derive_connection_id(org, &req.request_id));
        let connection =
            Connection::new(id, org.clone(), account, req.received_at).created_by(&req.request_id);
        let token = WriteToken::derive(&req.request_id, None, 0);
        match self.store.create(&connection, &token).await {
            Ok(_) => Ok(Outcome::Created(connection)),
            Err(StoreError::AlreadyExists) => {
                let existing = self.load(org, &id).await?.connection;
                if existing.handled(&req.request_id) {
                    Ok(Outcome::Created(existing))
                } else if existing.account == connection.account {
                    Ok(Outcome::Current(existing))
                } else {
                    Err(AppError::IdTaken)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Read, apply, compare-and-swap; on a lost race, again (bounded, jittered).
    async fn update(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        id: &ConnectionId,
        command: &Command,
    ) -> Result<Connection, AppError> {
        self.update_all(req, org, id, std::slice::from_ref(command), true)
            .await
            .map(|(c, _)| c)
    }

    /// Applies `commands` in one compare-and-swap write; with `early_checks`, each new input is
    /// first checked against Azure where that is cheap.
    async fn update_all(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        id: &ConnectionId,
        commands: &[Command],
        early_checks: bool,
    ) -> Result<(Connection, bool), AppError> {
        for attempt in 0..CAS_ATTEMPTS {
            let current = self.load(org, id).await?;
            if current.connection.handled(&req.request_id) {
                return Ok((current.connection, false));
            }
            let mut next = current.connection.clone();
            let mut changed = false;
            for command in commands {
                changed |= next.apply(command, &req.request_id, req.received_at)?;
            }
            if !changed {
                return Ok((current.connection, false));
            }
            if attempt == 0 && early_checks {
                for command in commands {
                    self.early_check(&current.connection, command).await?;
                }
            }
            let token = WriteToken::derive(&req.request_id, Some(&current.version), attempt);
            match self.store.replace(&current, &next, &token).await {
                Ok(_) => return Ok((next, true)),
                Err(StoreError::Conflict) => {
                    tracing::debug!(attempt, connection = %id, "write lost a race; re-reading");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(StoreError::NotFound) => return Err(AppError::NotFound),
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Contended)
    }
}

/// Full jitter on an exponential base: 0..(10 ms × 2^attempt), at most 400 ms.
fn backoff(attempt: u32) -> Duration {
    let cap = (10u64 << attempt.min(6)).min(400);
    Duration::from_millis(fastrand::u64(0..=cap))
}

fn derive_connection_id(org: &OrgId, request_id: &str) -> ConnectionId {
    const NS: uuid::Uuid = uuid::Uuid::from_u128(0x2f0c_7a51_8e3d_4b6a_9c1f_0d2e_3b4a_5c6d);
    let uuid = uuid::Uuid::new_v5(&NS, format!("{org}|{request_id}").as_bytes());
    // Parsing our own canonical form cannot fail; fall back to random to stay total.
    ConnectionId::parse(&uuid.to_string()).unwrap_or_else(|_| ConnectionId::new_random())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        for a in 0..20 {
            assert!(backoff(a) <= Duration::from_millis(400));
        }
    }

    #[test]
    fn derived_ids_depend_on_org_and_request() {
        let a = OrgId::parse("a").unwrap();
        let b = OrgId::parse("b").unwrap();
        assert_eq!(derive_connection_id(&a, "r1"), derive_connection_id(&a, "r1"));
        assert_ne!(derive_connection_id(&a, "r1"), derive_connection_id(&a, "r2"));
        assert_ne!(derive_connection_id(&a, "r1"), derive_connection_id(&b, "r1"));
    }
}
