//! The federated credential step (secretless connections): the values the customer enters on the
//! app registration so that it trusts our issuer for this connection, and nothing else.

use serde::Serialize;
use serde_json::{Value, json};

use super::error::AppError;
use super::operations::{App, Outcome};
use super::request::RequestMeta;
use crate::domain::{ClientId, Command, Connection, ConnectionId, OrgId};
use crate::issuer::{AUDIENCE, Issuer};

/// What the customer enters in the portal (App registrations > the app > Certificates & secrets >
/// Federated credentials > Add credential > "Other issuer"), and the same as an `az` command and
/// a Microsoft Graph request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedCredentialValues {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    pub name: String,
    pub description: String,
    pub az_cli: String,
    /// `POST` to the cloud's Microsoft Graph endpoint + `path`.
    pub graph_request: Value,
}

impl FederatedCredentialValues {
    pub fn of(issuer_url: &str, org: &OrgId, id: &ConnectionId, client: &ClientId) -> Self {
        let subject = Issuer::subject(org, id);
        let name = format!("spot-azure-connect-{id}");
        let description = "Spot (azure-connect): signs in without a client secret".to_owned();
        let body = json!({
            "name": name,
            "issuer": issuer_url,
            "subject": subject,
            "audiences": [AUDIENCE],
            "description": description,
        });
        Self {
            issuer: issuer_url.to_owned(),
            subject,
            audiences: vec![AUDIENCE.to_owned()],
            az_cli: format!("az ad app federated-credential create --id {client} --parameters '{body}'"),
            graph_request: json!({
                "method": "POST",
                "path": format!("/v1.0/applications(appId='{client}')/federatedIdentityCredentials"),
                "body": body,
            }),
            name,
            description,
        }
    }
}

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
    Ok(FederatedCredentialValues::of(issuer_url, &c.org, &c.id, &client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_values_name_our_issuer_and_this_connection_exactly() {
        let org = OrgId::parse("org-1").unwrap();
        let id = ConnectionId::parse("0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a").unwrap();
        let client = ClientId::parse("11111111-2222-4333-8444-555555555555").unwrap();
        let v = FederatedCredentialValues::of("https://api.example.com/oidc", &org, &id, &client);
        assert_eq!(v.issuer, "https://api.example.com/oidc");
        assert_eq!(
            v.subject,
            "azure-connect:org:org-1:connection:0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a"
        );
        assert_eq!(v.audiences, ["api://AzureADTokenExchange"]);
        assert_eq!(v.graph_request["body"]["subject"], v.subject);
        assert_eq!(
            v.graph_request["path"],
            "/v1.0/applications(appId='11111111-2222-4333-8444-555555555555')/federatedIdentityCredentials"
        );
        assert!(v.az_cli.starts_with(
            "az ad app federated-credential create --id 11111111-2222-4333-8444-555555555555 --parameters '{"
        ));
        assert!(v.name.len() <= 120 && v.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
}
