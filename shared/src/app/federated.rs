//! The federated credential step (secretless connections): the values the customer enters on the
//! app registration so that it trusts our issuer for this connection, and nothing else.

use super::error::AppError;
use super::operations::{App, Outcome};
use super::request::RequestMeta;
use crate::domain::{Command, Connection, ConnectionId, OrgId};
use crate::issuer::FederatedCredentialValues;

impl App {
    /// `GET /connections/{id}/federated-credential`: recorded on the first export (the step is
    /// then done); exporting again costs one read.
    pub(super) async fn export_federated(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        id: &ConnectionId,
    ) -> Result<Outcome, AppError> {
        let issuer = self.issuer.as_ref().ok_or(AppError::IssuerNotConfigured)?;
        let connection = self
            .update(req, org, id, &Command::ExportFederatedCredential)
            .await?;
        let values = values_of(issuer.url(), &connection)?;
        Ok(Outcome::FederatedCredential { connection, values })
    }
}

fn values_of(issuer_url: &str, c: &Connection) -> Result<FederatedCredentialValues, AppError> {
    let client = c
        .app_registration
        .as_ref()
        .map(|a| a.client)
        .ok_or(AppError::Rule(crate::domain::RuleError::MissingPrerequisite {
            step: crate::domain::Step::FederatedCredential,
            needs: crate::domain::Step::AppRegistration,
        }))?;
    Ok(FederatedCredentialValues::of(
        issuer_url,
        &c.org,
        &c.id,
        c.subject_salt.as_deref(),
        &client,
    ))
}
