//! Console events: the Spot console drives the wizard through EventBridge as well as through the
//! HTTP API. An event's `detail` carries `orgId`, `connectionId` and the step's fields (the same
//! fields, parsed by the same code, as the HTTP bodies).
//!
//! An event must prove it speaks for the console ([`ConsoleGate`]): its `source` and `account`
//! are the console's, and where the console's token issuer is configured it carries the user's
//! token (`detail.token`), whose organization it acts for (an `orgId` naming another is refused).

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

/// Who may speak for the console: the `source` and `account` its events carry and, when set, the
/// verifier of the user's token they must carry.
#[derive(Debug, Clone)]
pub struct ConsoleGate {
    pub source: String,
    pub account: Option<String>,
    pub tokens: Option<std::sync::Arc<dyn crate::tokens::ConsoleTokens>>,
}

impl ConsoleGate {
    /// The console's events as the configuration says (the local server and tests: any account).
    pub fn of(config: &crate::config::ConsoleConfig, org_claim: &str) -> Result<Self, reqwest::Error> {
        Ok(Self {
            source: config.source.clone(),
            account: config.account.clone(),
            tokens: config.tokens(org_claim)?,
        })
    }

    /// `spot.console` from any account, no token (tests).
    pub fn open() -> Self {
        Self {
            source: "spot.console".to_owned(),
            account: None,
            tokens: None,
        }
    }

    /// The organization the event may act for: the token's (and `orgId`, if given, must be the
    /// same), or without a token issuer the `orgId` it names.
    async fn organization(
        &self,
        source: &str,
        account: Option<&str>,
        detail: &mut serde_json::Map<String, Value>,
    ) -> Result<OrgId, EdgeError> {
        if source != self.source {
            return Err(EdgeError::ConsoleRefused("its source is not the console's"));
        }
        if let Some(ours) = &self.account {
            if account != Some(ours.as_str()) {
                return Err(EdgeError::ConsoleRefused("it comes from another AWS account"));
            }
        }
        let named = detail.remove("orgId");
        let named = named.as_ref().and_then(Value::as_str).map(OrgId::parse);
        let token = detail.remove("token");
        let Some(tokens) = &self.tokens else {
            return match named {
                Some(Ok(org)) => Ok(org),
                _ => Err(EdgeError::Unauthenticated),
            };
        };
        let Some(Value::String(token)) = token else {
            return Err(EdgeError::ConsoleRefused(
                "it carries no user token (detail.token)",
            ));
        };
        let org = match tokens.organization(&token).await {
            Ok(org) => org,
            Err(e) if e.is_retryable() => return Err(EdgeError::TokenKeysUnavailable),
            Err(e) => {
                tracing::info!(reason = %e, "console event token refused");
                return Err(EdgeError::ConsoleRefused("its user token does not verify"));
            }
        };
        match named {
            None => Ok(org),
            Some(Ok(n)) if n == org => Ok(org),
            Some(_) => Err(EdgeError::ConsoleRefused(
                "it names another organization than its token's",
            )),
        }
    }
}

/// An EventBridge entry as the console sends it (the subset we read).
#[derive(Debug, Clone, Deserialize)]
pub struct ConsoleEvent {
    #[serde(default)]
    pub id: Option<String>,
    pub source: String,
    #[serde(default)]
    pub account: Option<String>,
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
    gate: &ConsoleGate,
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
        fingerprint: None,
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
    let org = match gate
        .organization(&event.source, event.account.as_deref(), &mut detail)
        .await
    {
        Ok(org) => org,
        Err(err) => {
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

/// Property test: any console event, however malformed, is answered (never a panic), and nothing
/// it carried is repeated in the answer or in the events published about it.
#[cfg(test)]
mod properties {
    use std::sync::Arc;

    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};
    use serde_json::{Value, json};

    use super::*;
    use crate::events::MemorySink;
    use crate::store::embedded::EmbeddedStore;

    const DETAIL_TYPES: &[&str] = &[
        CONNECTION_STARTED,
        APP_REGISTRATION_SUBMITTED,
        SUBSCRIPTION_SUBMITTED,
        CUSTOM_ROLE_REQUESTED,
        CONNECT_ACCOUNT_REQUESTED,
        FEDERATED_CREDENTIAL_REQUESTED,
        CLIENT_SECRET_SUBMITTED,
        "Something Else",
    ];
    const KEYS: &[&str] = &[
        "orgId",
        "connectionId",
        "accountId",
        "tenantId",
        "clientId",
        "subscriptionId",
        "format",
        "credentialType",
        "clientSecret",
        "extra",
    ];

    fn value(canary: String) -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(canary.clone())),
            Just(json!([canary.clone()])),
            Just(json!({ "x": canary })),
            any::<i32>().prop_map(|n| json!(n)),
            Just(json!("org-1")),
            Just(json!("0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a")),
            Just(json!("act-1a2b3c4d")),
            Just(Value::Null),
        ]
    }

    proptest! {
        #![proptest_config(Config { cases: 256, failure_persistence: None, rng_seed: RngSeed::Fixed(0x0c0_7501e), ..Config::default() })]

        #[test]
        fn any_console_event_is_answered_without_repeating_what_it_carried(
            canary in "Zq9~[A-Za-z0-9._-]{6,30}",
            detail_type in proptest::sample::select(DETAIL_TYPES),
            entries in proptest::collection::vec((proptest::sample::select(KEYS), "Zq9~[A-Za-z0-9._-]{6,30}".prop_flat_map(value)), 0..6),
            detail_is_object in proptest::bool::weighted(0.9),
        ) {
            let detail = if detail_is_object {
                Value::Object(entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
            } else {
                json!(canary.clone())
            };
            let event: ConsoleEvent = serde_json::from_value(json!({
                "id": canary.clone(), "source": "spot.console", "detail-type": detail_type, "detail": detail,
            })).unwrap();
            let dir = std::env::temp_dir().join(format!("azc-prop-{}", uuid::Uuid::new_v4().simple()));
            let store = Arc::new(EmbeddedStore::open(&dir, "p/").unwrap());
            let sink = Arc::new(MemorySink::default());
            let app = App::new(store, sink.clone());
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let answer = runtime.block_on(handle(&app, &ConsoleGate::open(), &Function::ALL, event));
            let seen = format!("{answer:?}{:?}", sink.events());
            std::fs::remove_dir_all(&dir).ok();
            // The event's id is a request id, and request ids are ours to repeat; values are not.
            let values: Vec<String> = entries
                .iter()
                .filter_map(|(_, v)| v.as_str().or_else(|| v.get(0).and_then(Value::as_str)).or_else(|| v.get("x").and_then(Value::as_str)))
                .filter(|s| s.starts_with("Zq9~"))
                .map(str::to_owned)
                .collect();
            for v in values {
                prop_assert!(!seen.contains(&v), "{v} repeated in {seen}");
            }
        }
    }
}
