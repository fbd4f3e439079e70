//! Rotation of a connection's client secret, as the four steps Secrets Manager drives
//! (`createSecret`, `setSecret`, `testSecret`, `finishSecret`). Every step may come more than once
//! and in any interleaving with wizard writes:
//! - createSecret makes the new Azure credential with a display name carrying the rotation token,
//!   so a retry after a crash between `addPassword` and the put finds (and removes) the credential
//!   whose value it never stored, and ends with exactly one new one;
//! - finishSecret moves `AWSCURRENT` by compare-and-swap; if a wizard write landed meanwhile, the
//!   rotated secret is merged into that newer document instead of overwriting it;
//! - a failure that retrying cannot fix leaves `AWSCURRENT` untouched, removes the new credential
//!   and the stale `AWSPENDING`, and is announced (`Client Secret Rotation Failed`).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use crate::app::events::{Rotated, RotationFailed, RotationSubject, secret_expiry};
use crate::app::{self, CAS_ATTEMPTS, OutcomeEvent, error::error_chain};
use crate::azure::{AccessToken, Credential, GraphApps, TokenClient};
use crate::domain::connection::RotationRecord;
use crate::domain::diagnosis::AzureFailure;
use crate::domain::{Connection, ConnectionId, OrgId, RuleError, SecretExpiry, Step};
use crate::events::EventSink;
use crate::retry::{self, Backoff, GaveUp, Verdict};
use crate::store::{RotationStore, Stage, StoreError, VersionId, VersionInfo, WriteToken};

/// Display name of the credentials we make: the rotation token follows.
pub const DISPLAY_PREFIX: &str = "azure-connect rotation ";
/// Lifetime of a new secret: the Azure portal's longest.
pub const NEW_SECRET_DAYS: i64 = 730;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    Create,
    Set,
    Test,
    Finish,
}

impl RotationStep {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "createSecret" => Some(Self::Create),
            "setSecret" => Some(Self::Set),
            "testSecret" => Some(Self::Test),
            "finishSecret" => Some(Self::Finish),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "createSecret",
            Self::Set => "setSecret",
            Self::Test => "testSecret",
            Self::Finish => "finishSecret",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("rotation is not enabled for this secret")]
    NotEnabled,
    #[error("the rotation token is not a version of this secret")]
    UnknownToken,
    #[error("the rotation token's version is not AWSPENDING")]
    NotPending,
    #[error("the secret is not a connection, or has no current document")]
    NoCurrent,
    #[error("the connection lacks an input rotation needs")]
    Incomplete(#[source] RuleError),
    #[error("no pending document: createSecret has not run")]
    NoPending,
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("Azure refused")]
    Azure(#[from] AzureFailure),
    #[error("Azure did not accept the new secret in time")]
    NotAccepted(#[source] AzureFailure),
    #[error("a new client secret was entered while the rotation ran")]
    SecretReplaced,
}

impl RotationError {
    /// Secrets Manager retries the step; worth it only for these.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable() || matches!(e, StoreError::Conflict),
            Self::Azure(f) => f.is_transient(),
            _ => false,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::NotEnabled => "rotation-not-enabled",
            Self::UnknownToken => "unknown-token",
            Self::NotPending => "not-pending",
            Self::NoCurrent => "no-current-version",
            Self::Incomplete(_) => "connection-incomplete",
            Self::NoPending => "no-pending-version",
            Self::Store(_) => "store-failed",
            Self::Azure(AzureFailure::Graph { status: 403, .. }) => "graph-permission-missing",
            Self::Azure(f) if f.is_transient() => "azure-unavailable",
            Self::Azure(_) => "azure-refused",
            Self::NotAccepted(_) => "new-secret-not-accepted",
            Self::SecretReplaced => "secret-replaced-meanwhile",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rotator {
    store: Arc<dyn RotationStore>,
    events: Arc<dyn EventSink>,
    token: Arc<dyn TokenClient>,
    graph: Arc<dyn GraphApps>,
    arm_scope: String,
    graph_scope: String,
    prefix: String,
    /// How long testSecret waits for Azure to accept the new secret (it takes seconds).
    test_budget: Duration,
}

impl Rotator {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn RotationStore>,
        events: Arc<dyn EventSink>,
        token: Arc<dyn TokenClient>,
        graph: Arc<dyn GraphApps>,
        arm_scope: String,
        graph_scope: String,
        prefix: String,
        test_budget: Duration,
    ) -> Self {
        Self {
            store,
            events,
            token,
            graph,
            arm_scope,
            graph_scope,
            prefix,
            test_budget,
        }
    }

    /// One step, with the pre-checks of AWS's rotation template.
    pub async fn step(&self, step: RotationStep, secret_id: &str, token: &str) -> Result<(), RotationError> {
        let info = self.store.versions(secret_id).await?;
        let result = self.checked_step(step, &info, secret_id, token).await;
        if let Err(e) = &result {
            self.failed(&info, secret_id, token, step, e).await;
        }
        result
    }

    async fn checked_step(
        &self,
        step: RotationStep,
        info: &VersionInfo,
        secret_id: &str,
        token: &str,
    ) -> Result<(), RotationError> {
        if info.rotation_enabled == Some(false) {
            return Err(RotationError::NotEnabled);
        }
        let has = |stage| info.holds(token, stage);
        if has(Stage::Current) {
            // Already finished; a repeated finishSecret completes what may not have been.
            if step == RotationStep::Finish {
                let current = self.current(info, secret_id).await?;
                self.finish_tail(info, secret_id, token, &current).await?;
            }
            return Ok(());
        }
        if step == RotationStep::Finish && !has(Stage::Pending) {
            // Finished on a merged version after a wizard write, then delivered again.
            let current = self.current(info, secret_id).await?;
            if current.last_rotation.as_ref().is_some_and(|r| r.token == token) {
                return self.finish_tail(info, secret_id, token, &current).await;
            }
        }
        if !info.stages.contains_key(token) {
            return Err(RotationError::UnknownToken);
        }
        if !has(Stage::Pending) {
            return Err(RotationError::NotPending);
        }
        match step {
            RotationStep::Create => self.create(info, secret_id, token).await,
            // createSecret already made the credential in Azure: nothing left to apply.
            RotationStep::Set => Ok(()),
            RotationStep::Test => self.test(secret_id, token).await,
            RotationStep::Finish => self.finish(info, secret_id, token).await,
        }
    }

    async fn current(&self, info: &VersionInfo, secret_id: &str) -> Result<Connection, RotationError> {
        let id = info.holder_of(Stage::Current).ok_or(RotationError::NoCurrent)?;
        self.store
            .version(secret_id, id, Stage::Current)
            .await?
            .ok_or(RotationError::NoCurrent)
    }

    async fn token_for(&self, c: &Connection, scope: &str) -> Result<AccessToken, RotationError> {
        let mut c = c.clone();
        if c.client_secret.as_ref().is_some_and(|r| r.secret().is_none()) {
            let value = self.store.reveal(&c).await?.ok_or(RotationError::NoCurrent)?;
            if let Some(record) = c.client_secret.as_mut() {
                record.reveal(value);
            }
        }
        let inputs = c.validation_inputs().map_err(RotationError::Incomplete)?;
        Ok(self
            .token
            .token(
                &inputs.tenant,
                &inputs.client,
                Credential::Secret(inputs.proof.secret().ok_or(RotationError::Incomplete(
                    RuleError::WrongCredentialType {
                        step: Step::ClientSecret,
                        credential: inputs.proof.credential_type(),
                    },
                ))?),
                scope,
            )
            .await?)
    }

    async fn create(&self, info: &VersionInfo, secret_id: &str, token: &str) -> Result<(), RotationError> {
        if self
            .store
            .version(secret_id, token, Stage::Pending)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let base_version = info
            .holder_of(Stage::Current)
            .ok_or(RotationError::NoCurrent)?
            .to_owned();
        let current = self.current(info, secret_id).await?;
        let client = current
            .app_registration
            .as_ref()
            .map(|a| a.client)
            .ok_or(RotationError::NoCurrent)?;
        let graph_token = self.token_for(&current, &self.graph_scope).await?;
        let display = format!("{DISPLAY_PREFIX}{token}");
        let passwords = self.graph.passwords(&graph_token, &client).await?;
        // A credential an earlier attempt made but never stored: its value is gone, so it goes.
        for orphan in passwords.iter().filter(|p| p.display_name == display) {
            tracing::warn!(key_id = %orphan.key_id, "removing the credential of an interrupted createSecret");
            self.graph
                .remove_password(&graph_token, &client, &orphan.key_id)
                .await?;
        }
        let retired = current
            .validation
            .as_ref()
            .and_then(|v| v.secret_key_id.clone())
            .or_else(|| {
                let hint = current.client_secret.as_ref()?.hint();
                let mut same = passwords
                    .iter()
                    .filter(|p| p.hint == hint.as_str() && p.display_name != display);
                match (same.next(), same.next()) {
                    (Some(p), None) => Some(p.key_id.clone()),
                    _ => None,
                }
            });
        let now = Utc::now();
        let end = now + chrono::Duration::days(NEW_SECRET_DAYS);
        let new = self
            .graph
            .add_password(&graph_token, &client, &display, Some(end))
            .await?;
        let record = RotationRecord {
            token: token.to_owned(),
            base_version,
            replaces_secret_of: current.client_secret.as_ref().map(|s| s.submitted_at),
            replaces_credential: current.client_secret.as_ref().map(|s| s.credential_id()),
            retired_key_id: retired,
            rotated_at: now,
        };
        let pending = current.with_rotated_secret(
            new.secret,
            new.end.map(SecretExpiry::from_azure),
            new.key_id,
            record,
        );
        self.store
            .put_version(secret_id, token, &pending, Stage::Pending)
            .await?;
        Ok(())
    }

    async fn test(&self, secret_id: &str, token: &str) -> Result<(), RotationError> {
        let pending = self
            .store
            .version(secret_id, token, Stage::Pending)
            .await?
            .ok_or(RotationError::NoPending)?;
        // A new secret takes seconds before the token endpoint accepts it.
        let not_yet = |e: &RotationError| match e {
            RotationError::Azure(f)
                if f.is_transient()
                    || matches!(
                        f,
                        AzureFailure::TokenRefused {
                            aadsts: Some(7000215),
                            ..
                        }
                    ) =>
            {
                Verdict::Retry
            }
            _ => Verdict::Stop,
        };
        let deadline = Instant::now() + self.test_budget;
        let tried = retry::until(
            deadline,
            Backoff::POLL,
            || self.token_for(&pending, &self.arm_scope),
            not_yet,
        )
        .await;
        match tried {
            Ok(_) => Ok(()),
            Err(GaveUp::Failed(e)) => Err(e),
            Err(GaveUp::OutOfTime(RotationError::Azure(f))) => Err(RotationError::NotAccepted(f)),
            Err(GaveUp::OutOfTime(e)) => Err(e),
            Err(GaveUp::TimedOut) => Err(RotationError::NotAccepted(AzureFailure::Unavailable(
                "timed out".into(),
            ))),
        }
    }

    async fn finish(&self, info: &VersionInfo, secret_id: &str, token: &str) -> Result<(), RotationError> {
        let pending = self
            .store
            .version(secret_id, token, Stage::Pending)
            .await?
            .ok_or(RotationError::NoPending)?;
        let base = pending
            .last_rotation
            .as_ref()
            .map(|r| r.base_version.clone())
            .ok_or(RotationError::NoPending)?;
        let mut info = info.clone();
        for attempt in 0..CAS_ATTEMPTS {
            if attempt > 0 {
                info = self.store.versions(secret_id).await?;
            }
            let current_id = info
                .holder_of(Stage::Current)
                .ok_or(RotationError::NoCurrent)?
                .to_owned();
            let current = self
                .store
                .version(secret_id, &current_id, Stage::Current)
                .await?
                .ok_or(RotationError::NoCurrent)?;
            let replaced = pending.last_rotation.as_ref().and_then(|r| r.replaces_secret_of);
            if current.client_secret.as_ref().map(|s| s.submitted_at) != replaced {
                // The customer entered a new secret while the rotation ran: theirs wins.
                return Err(RotationError::SecretReplaced);
            }
            let (target, doc) = if current_id == base {
                (token.to_owned(), pending.clone())
            } else {
                // A wizard write landed while the rotation ran: keep it, with the new secret.
                let merged = current.merged_with_rotation(&pending);
                let merged_token = WriteToken::derive(token, Some(&VersionId(current_id.clone())), attempt);
                self.store
                    .put_version(secret_id, merged_token.as_str(), &merged, Stage::Staged)
                    .await?;
                (merged_token.as_str().to_owned(), merged)
            };
            match self
                .store
                .move_stage(secret_id, Stage::Current, Some(&target), Some(&current_id))
                .await
            {
                Ok(()) => {
                    self.store.retag(secret_id, &current, &doc).await?;
                    return self.finish_tail(&info, secret_id, token, &doc).await;
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RotationError::Store(StoreError::Conflict))
    }

    /// After `AWSCURRENT` moved: the old key goes from Azure (already gone is fine), `AWSPENDING`
    /// goes, the rotation is announced. Safe to repeat.
    async fn finish_tail(
        &self,
        info: &VersionInfo,
        secret_id: &str,
        token: &str,
        current: &Connection,
    ) -> Result<(), RotationError> {
        if let Some(old) = current
            .last_rotation
            .as_ref()
            .and_then(|r| r.retired_key_id.clone())
        {
            let client = current
                .app_registration
                .as_ref()
                .map(|a| a.client)
                .ok_or(RotationError::NoCurrent)?;
            let graph_token = self.token_for(current, &self.graph_scope).await?;
            self.graph.remove_password(&graph_token, &client, &old).await?;
        }
        // The secret rotated out: its credential is erased, every version of it.
        let replaced = current
            .last_rotation
            .as_ref()
            .and_then(|r| r.replaces_credential.clone());
        let now_in_use = current.client_secret.as_ref().map(|s| s.credential_id());
        if let (Some((org, id)), Some(old)) = (self.parse_name(&info.name), replaced) {
            if now_in_use.as_ref() != Some(&old) {
                self.store.erase_credential(&org, &id, &old).await?;
            }
        }
        if let Some(holder) = info.holder_of(Stage::Pending) {
            match self
                .store
                .move_stage(secret_id, Stage::Pending, None, Some(holder))
                .await
            {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some((org, id)) = self.parse_name(&info.name) {
            crate::metrics::rotation("rotated", "finishSecret");
            let event = OutcomeEvent::ClientSecretRotated(Rotated {
                subject: RotationSubject::new(&org, &id, token),
                step: Step::ClientSecret,
                account_id: current.account.clone(),
                expires_at: secret_expiry(current),
            });
            app::publish(self.events.as_ref(), &event).await;
        }
        Ok(())
    }

    /// A failed step: Secrets Manager retries transient failures; anything else is final, so
    /// nothing of the attempt is left behind and `AWSCURRENT` stays where it was.
    async fn failed(
        &self,
        info: &VersionInfo,
        secret_id: &str,
        token: &str,
        step: RotationStep,
        e: &RotationError,
    ) {
        tracing::error!(secret_id, step = step.as_str(), code = e.code(), error = %error_chain(e), "rotation step failed");
        if e.is_transient() {
            return;
        }
        if let Ok(Some(pending)) = self.store.version(secret_id, token, Stage::Pending).await {
            let key = pending.validation.as_ref().and_then(|v| v.secret_key_id.clone());
            let client = pending.app_registration.as_ref().map(|a| a.client);
            if let (Some(key), Some(client)) = (key, client) {
                let removed = match self.current(info, secret_id).await {
                    Ok(current) => match self.token_for(&current, &self.graph_scope).await {
                        Ok(t) => self
                            .graph
                            .remove_password(&t, &client, &key)
                            .await
                            .map_err(RotationError::from),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                if let Err(err) = removed {
                    tracing::error!(secret_id, error = %error_chain(&err), "could not remove the new credential of a failed rotation");
                }
            }
            // Its value is of no use now: erased (unless the connection took it after all).
            if let (Some((org, id)), Some(new)) =
                (self.parse_name(&info.name), pending.client_secret.as_ref())
            {
                let new = new.credential_id();
                let in_use = match self.current(info, secret_id).await {
                    Ok(current) => current.client_secret.map(|s| s.credential_id()),
                    Err(_) => Some(new.clone()),
                };
                if in_use.as_ref() != Some(&new) {
                    if let Err(err) = self.store.erase_credential(&org, &id, &new).await {
                        tracing::error!(secret_id, error = %error_chain(&err), "could not erase the credential of a failed rotation");
                    }
                }
            }
        }
        if info.holds(token, Stage::Pending) {
            if let Err(err) = self
                .store
                .move_stage(secret_id, Stage::Pending, None, Some(token))
                .await
            {
                tracing::error!(secret_id, error = %error_chain(&err), "could not remove the pending version of a failed rotation");
            }
        }
        crate::metrics::rotation("failed", step.as_str());
        if let Some((org, id)) = self.parse_name(&info.name) {
            let event = OutcomeEvent::ClientSecretRotationFailed(RotationFailed {
                subject: RotationSubject::new(&org, &id, token),
                step: step.as_str(),
                reason: e.code(),
            });
            app::publish(self.events.as_ref(), &event).await;
        }
    }

    fn parse_name(&self, name: &str) -> Option<(OrgId, ConnectionId)> {
        let (org, id) = name.strip_prefix(&self.prefix)?.split_once('/')?;
        Some((OrgId::parse(org).ok()?, ConnectionId::parse(id).ok()?))
    }
}
