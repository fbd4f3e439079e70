//! Console events: the Spot console drives the wizard through EventBridge as well as through the
//! HTTP API. An event's `detail` carries `orgId`, `connectionId` and the step's fields (the same
//! fields, parsed by the same code, as the HTTP bodies).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroize;

use super::error::{EdgeError, InputProblem};
use super::function::Function;
use super::input::{self, AppRegistrationBody, StepInput, SubscriptionBody};
use crate::app::{App, FieldError, Operation, Outcome, RequestMeta, Trigger};
use crate::domain::{AccountId, OrgId, RoleFormat, Step};

pub use super::function::{
    APP_REGISTRATION_SUBMITTED, CLIENT_SECRET_SUBMITTED, CONNECT_ACCOUNT_REQUESTED, CONNECTION_STARTED,
    CUSTOM_ROLE_REQUESTED, FEDERATED_CREDENTIAL_REQUESTED, SUBSCRIPTION_SUBMITTED,
};

/// An EventBridge entry as the console sends it (the subset we read).
#[derive(Debug, Clone, Deserialize)]
pub struct ConsoleEvent {
    #[serde(default)]
    pub id: Option<String>,
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub detail: Value,
}

pub fn step_of(detail_type: &str) -> Step {
    match detail_type {
        CONNECTION_STARTED => Step::Start,
        APP_REGISTRATION_SUBMITTED => Step::AppRegistration,
        SUBSCRIPTION_SUBMITTED => Step::Subscription,
        CUSTOM_ROLE_REQUESTED => Step::CustomRole,
        CONNECT_ACCOUNT_REQUESTED => Step::RoleAssignment,
        FEDERATED_CREDENTIAL_REQUESTED => Step::FederatedCredential,
        _ => Step::ClientSecret,
    }
}

/// Removes any client secret from the detail, zeroing it, and says whether there was one.
fn strip_secret(detail: &mut Value) -> bool {
    let Value::Object(map) = detail else { return false };
    let keys: Vec<String> = map
        .keys()
        .filter(|k| {
            let k = k.to_ascii_lowercase().replace(['_', '-'], "");
            k.contains("secret")
        })
        .cloned()
        .collect();
    for k in &keys {
        if let Some(Value::String(mut s)) = map.remove(k) {
            s.zeroize();
        }
    }
    !keys.is_empty()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StartDetail {
    account_id: String,
    #[serde(default)]
    connection_id: Option<String>,
    #[serde(default)]
    credential_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyDetail {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleDetail {
    #[serde(default)]
    format: Option<String>,
}

/// Handles one console event for the given functions: publishes the outcome (or the rejection)
/// and returns it.
pub async fn handle(
    app: &App,
    functions: &[Function],
    mut event: ConsoleEvent,
) -> Result<Outcome, EdgeError> {
    let req = RequestMeta {
        request_id: event
            .id
            .clone()
            .filter(|id| super::request::bounded_id(id))
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        received_at: event.time.unwrap_or_else(Utc::now),
        trigger: Trigger::Console,
    };
    let step = step_of(&event.detail_type);
    let had_secret = strip_secret(&mut event.detail);
    let Value::Object(mut detail) = event.detail else {
        let err = EdgeError::input(
            InputProblem::MalformedBody,
            vec![FieldError::new("detail", "must be an object")],
        );
        app.reject(&req, None, step, None, &err).await;
        return Err(err);
    };
    let org = match detail
        .remove("orgId")
        .as_ref()
        .and_then(Value::as_str)
        .map(OrgId::parse)
    {
        Some(Ok(org)) => org,
        _ => {
            let err = EdgeError::Unauthenticated;
            app.reject(&req, None, step, None, &err).await;
            return Err(err);
        }
    };
    let raw_connection = if step == Step::Start {
        None
    } else {
        detail.remove("connectionId")
    };
    let connection = raw_connection
        .as_ref()
        .and_then(Value::as_str)
        .and_then(|s| input::connection_id(s).ok());
    let parsed = (|| {
        if had_secret || event.detail_type == CLIENT_SECRET_SUBMITTED {
            return Err(EdgeError::SecretOverEvent);
        }
        if !functions
            .iter()
            .any(|f| f.console_event() == Some(event.detail_type.as_str()))
        {
            return Err(EdgeError::UnknownEvent);
        }
        let rest = Value::Object(std::mem::take(&mut detail));
        if step == Step::Start {
            let d: StartDetail = input::parse_value(rest)?;
            let account = AccountId::parse(&d.account_id)
                .map_err(|e| EdgeError::invalid(vec![FieldError::new("accountId", e)]))?;
            let connection = d.connection_id.as_deref().map(input::connection_id).transpose()?;
            let credential = input::credential_type(d.credential_type.as_deref())?;
            return Ok(Operation::Start {
                account,
                connection,
                credential,
            });
        }
        let id = match raw_connection.as_ref() {
            Some(Value::String(s)) => input::connection_id(s)?,
            _ => {
                return Err(EdgeError::invalid(vec![FieldError::new(
                    "connectionId",
                    "is required",
                )]));
            }
        };
        Ok(match step {
            Step::AppRegistration => Operation::Submit {
                connection: id,
                command: input::parse_value::<AppRegistrationBody>(rest)?.into_command(req.received_at)?,
            },
            Step::Subscription => Operation::Submit {
                connection: id,
                command: input::parse_value::<SubscriptionBody>(rest)?.into_command(req.received_at)?,
            },
            Step::RoleAssignment => {
                let _: EmptyDetail = input::parse_value(rest)?;
                Operation::Connect { connection: id }
            }
            Step::FederatedCredential => {
                let _: EmptyDetail = input::parse_value(rest)?;
                Operation::ExportFederatedCredential { connection: id }
            }
            _ => {
                let d: RoleDetail = input::parse_value(rest)?;
                let format = match d.format.as_deref() {
                    None => RoleFormat::default(),
                    Some(f) => RoleFormat::parse(f).ok_or_else(|| {
                        EdgeError::invalid(vec![FieldError::new("format", "must be portal or cli")])
                    })?,
                };
                Operation::ExportRole {
                    connection: id,
                    format,
                }
            }
        })
    })();
    match parsed {
        Ok(op) => app.execute(&req, &org, op).await.map_err(EdgeError::from),
        Err(err) => {
            app.reject(&req, Some(&org), step, connection, &err).await;
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_removed_and_reported() {
        let mut d = json!({"orgId": "o", "clientSecret": "abc8Q~zzz", "client_secret": "x"});
        assert!(strip_secret(&mut d));
        assert_eq!(d, json!({"orgId": "o"}));
        let mut d = json!({"orgId": "o"});
        assert!(!strip_secret(&mut d));
    }
}
