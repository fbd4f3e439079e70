//! Connect Account (validate the stored inputs against Azure, record the verdict) and the early
//! checks of steps 3.2 and 3.3.

use chrono::Utc;

use super::error::AppError;
use super::events::{OutcomeEvent, SecretLeftInAzure, Subject};
use super::operations::{App, Outcome};
use super::request::RequestMeta;
use crate::domain::diagnosis::{AzureFailure, Diagnosis, ValidationFailure};
use crate::domain::{
    Command, Connection, ConnectionId, CredentialType, FailureRecord, OrgId, Scope, ValidationInputs,
    ValidationRecord,
};
use crate::validation::{CHECKS, Validator};

impl App {
    /// Validates the stored inputs against Azure (no store lock is held meanwhile), then records
    /// the verdict by compare-and-swap: connected, or failed with everything the customer typed
    /// kept. A retryable failure is no verdict and records nothing.
    pub(super) async fn connect(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        id: &ConnectionId,
    ) -> Result<Outcome, AppError> {
        let current = self.revealed(self.load(org, id).await?.connection).await?;
        let inputs = current.validation_inputs()?;
        self.admit_validation(org, Utc::now()).await?;
        let validator = self.validator.as_ref().ok_or(AppError::AzureNotConfigured)?;
        let started = std::time::Instant::now();
        let mut verdict = validator.validate(&inputs).await;
        // A group too large for one answer: surveyed in the background when there is a queue,
        // else here and now.
        let mut listing = None;
        if let Some(found) = verdict.as_mut().ok().and_then(|v| v.listing.take()) {
            if self.surveys_in_background() {
                listing = Some(found);
            } else {
                // Boxed: a survey's future is large, and this one sits beside the validation's.
                let survey = Box::pin(validator.survey_part(&inputs, found)).await;
                verdict = match (verdict, survey) {
                    (Ok(mut v), Ok(mut survey)) => {
                        survey.looked_at = None;
                        v.survey = Some(survey);
                        Ok(v)
                    }
                    (_, Err(e)) | (Err(e), _) => Err(e),
                };
            }
        }
        let credential = inputs.proof.credential_type();
        let diagnosis = verdict
            .as_ref()
            .err()
            .map(|f| Diagnosis::of_credential(f, credential));
        crate::metrics::connect_outcome(
            diagnosis.as_ref().map_or("connected", |d| d.code),
            started.elapsed(),
        );
        let graph = verdict.as_ref().ok().and_then(|v| v.graph.as_ref());
        let record = ValidationRecord {
            checked_at: Utc::now(),
            inputs: inputs.fingerprint.clone(),
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
            credential,
            role_version: verdict.as_ref().map_or_else(
                |_| current.validation.as_ref().map_or(1, |v| v.role_version),
                |v| v.role_version,
            ),
            role_id: verdict.as_ref().ok().and_then(|v| v.role_id.clone()),
            over_privilege: verdict.as_ref().ok().and_then(|v| v.over_privilege.clone()),
        };
        if let Some(d) = &diagnosis {
            tracing::info!(request_id = %req.request_id, connection = %id, step = %d.step, code = d.code, retryable = d.retryable, "connect failed");
            // A failure that may go away by itself (Azure busy or out of reach, a grant still
            // propagating) is not a verdict on the connection: nothing is written, the answer
            // says to retry, and the connection stays as it was.
            if d.retryable {
                return Err(AppError::Validation(Box::new(d.clone())));
            }
        }
        let command = match (&inputs.scope, verdict.as_ref().ok()) {
            (Scope::ManagementGroup(_), found) => Command::RecordEstateValidation {
                start: listing.as_deref().map(|l| Box::new(self.survey_start(req, l))),
                record: Box::new(record),
                survey: found.and_then(|v| v.survey.clone()),
            },
            (Scope::Subscription(_), _) => Command::RecordValidation(Box::new(record)),
        };
        let connection = self.update(req, org, id, &command).await?;
        if current.status.holds_place() && !connection.status.holds_place() {
            self.give_back_places(&req.request_id, org, &[*id]).await;
        }
        self.announce_estate(req, &current, &connection).await;
        if let (Some(found), Scope::ManagementGroup(group)) = (listing, &inputs.scope) {
            let run = connection.estate.as_ref().and_then(|e| e.survey.as_ref());
            if let Some(run) = run.filter(|r| r.is_surveying()) {
                self.announce_progress(req, &current, &connection).await;
                Box::pin(self.send_chunks(req, &connection, group, Some(run.id.clone()), found)).await?;
            }
        }
        if diagnosis.is_none() && credential == CredentialType::Federated {
            self.retire_secret(req, &current, &inputs, validator).await?;
        }
        self.announce_over_privilege(req, &current, &connection).await;
        match diagnosis {
            None => Ok(Outcome::Connected(connection)),
            Some(d) => Err(AppError::Validation(Box::new(d))),
        }
    }

    /// A federated connection proved itself: its write erased the secret's credential (the store
    /// erases what no document names), and the old secret goes from the app where the app may
    /// manage its own credentials; where it may not, or Graph refuses, the customer is told
    /// (`Client Secret Left In Azure`). Safe to repeat.
    async fn retire_secret(
        &self,
        req: &RequestMeta,
        before: &Connection,
        inputs: &ValidationInputs,
        validator: &Validator,
    ) -> Result<(), AppError> {
        let Some(secret) = &before.client_secret else {
            return Ok(());
        };
        let validation = before.validation.as_ref();
        let key = validation.and_then(|v| v.secret_key_id.clone());
        let manages = validation.and_then(|v| v.graph_manages_credentials) == Some(true);
        let reason = match (&key, manages) {
            (Some(key), true) => match validator.remove_password(inputs, key).await {
                Ok(()) => {
                    tracing::info!(connection = %before.id, "the secret moved off is removed from the app");
                    return Ok(());
                }
                Err(failure) => {
                    tracing::warn!(connection = %before.id, ?failure, "the secret moved off could not be removed from the app");
                    "graph-refused"
                }
            },
            _ => "no-graph-permission",
        };
        let event = OutcomeEvent::ClientSecretLeftInAzure(SecretLeftInAzure {
            subject: Subject::new(
                req,
                &before.org,
                crate::domain::Step::ClientSecret,
                Some(before.id),
            ),
            account_id: before.account.clone(),
            key_id: key,
            hint: secret.hint().as_str().to_owned(),
            reason,
            what_to_do: "Delete this client secret from the app registration (Certificates & secrets): the connection no longer uses it.",
        });
        self.publish(event).await;
        Ok(())
    }

    /// Earlier feedback where it is cheap: at 3.2 the tenant must exist; at 3.3 the three values
    /// must get a token. A definite "no" from Azure rejects the input (the secret is not kept);
    /// Azure out of reach accepts it, and Connect Account will tell.
    pub(super) async fn early_check(&self, current: &Connection, command: &Command) -> Result<(), AppError> {
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
}
