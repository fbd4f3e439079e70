//! An estate over HTTP: `PUT …/scope` (a subscription or a management group), the subscriptions
//! listed (`GET …/subscriptions`, paged) and tied to accounts (`PUT …/subscriptions/{id}`).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, put};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::error::EdgeError;
use super::input::{self, StepInput};
use super::request::{ApiState, Caller, RawBody};
use super::respond::{put_step, respond};
use crate::app::estate::PAGE_SIZE;
use crate::app::{App, FieldError, Operation};
use crate::domain::estate::SubscriptionStatus;
use crate::domain::{AccountId, Command, ManagementGroupId, Step, SubscriptionId};

/// The estate's routes (served by the subscription step's function).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/connections/{id}/scope", put(put_step::<ScopeBody>))
        .route("/connections/{id}/subscriptions", get(list))
        .route("/connections/{id}/subscriptions/{subscription}", put(link))
}

/// `{"subscriptionId"}` (the same as 3.4) or `{"managementGroupId", "defaultSubscriptionId"?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScopeBody {
    #[serde(default, deserialize_with = "super::input::present")]
    subscription_id: Option<String>,
    #[serde(default, deserialize_with = "super::input::present")]
    management_group_id: Option<String>,
    #[serde(default, deserialize_with = "super::input::present")]
    default_subscription_id: Option<String>,
    /// Replacing an estate (by a subscription, or another group) drops its ties to Spot
    /// accounts: only with `true` (else 409 `estate-has-links`).
    #[serde(default)]
    replace_estate: bool,
}

impl StepInput for ScopeBody {
    const STEP: Step = Step::Subscription;
    fn into_command(self, _now: DateTime<Utc>) -> Result<Command, EdgeError> {
        let sub = |field: &str, raw: &str| {
            SubscriptionId::parse(raw).map_err(|e| EdgeError::invalid(vec![FieldError::new(field, e)]))
        };
        match (self.subscription_id, self.management_group_id) {
            (Some(raw), None) if self.default_subscription_id.is_none() => Ok(Command::Subscription {
                subscription: sub("subscriptionId", &raw)?,
                replace_estate: self.replace_estate,
            }),
            (None, Some(raw)) => Ok(Command::ManagementGroup {
                group: ManagementGroupId::parse(&raw)
                    .map_err(|e| EdgeError::invalid(vec![FieldError::new("managementGroupId", e)]))?,
                default_subscription: self
                    .default_subscription_id
                    .as_deref()
                    .map(|raw| sub("defaultSubscriptionId", raw))
                    .transpose()?,
                replace_estate: self.replace_estate,
            }),
            _ => Err(EdgeError::invalid(vec![FieldError::new(
                "body",
                "needs either subscriptionId, or managementGroupId (with defaultSubscriptionId if the connection's account holds one of its subscriptions)",
            )])),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LinkBody {
    account_id: String,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    after: Option<String>,
    limit: Option<String>,
    status: Option<String>,
}

/// `GET /connections/{id}/subscriptions[?after=&limit=]`.
async fn list(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    respond(&app, caller, Step::Subscription, Some(&id), |_| {
        let connection = input::connection_id(&id)?;
        let query = query
            .map_err(|_| EdgeError::invalid(vec![FieldError::new("query", "is not valid")]))?
            .0;
        let after = query
            .after
            .as_deref()
            .map(|raw| {
                SubscriptionId::parse(raw).map_err(|e| EdgeError::invalid(vec![FieldError::new("after", e)]))
            })
            .transpose()?;
        let limit = match query.limit.as_deref() {
            None => PAGE_SIZE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=crate::app::estate::MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    EdgeError::invalid(vec![FieldError::new(
                        "limit",
                        "must be a whole number from 1 to 500",
                    )])
                })?,
        };
        let status = query
            .status
            .as_deref()
            .map(|raw| {
                SubscriptionStatus::ALL
                    .into_iter()
                    .find(|s| s.as_str() == raw)
                    .ok_or_else(|| {
                        EdgeError::invalid(vec![FieldError::new(
                            "status",
                            "must be one of lost, disabled, missing-actions, linked, awaiting-account",
                        )])
                    })
            })
            .transpose()?;
        Ok(Operation::ListSubscriptions {
            connection,
            after,
            limit,
            status,
        })
    })
    .await
}

/// `PUT /connections/{id}/subscriptions/{subscriptionId}` `{"accountId"}`.
async fn link(
    State(app): State<App>,
    caller: Caller,
    Path((id, subscription)): Path<(String, String)>,
    body: RawBody,
) -> Response {
    let caller = caller.with_body(&body);
    respond(&app, caller, Step::Subscription, Some(&id), |_| {
        let connection = input::connection_id(&id)?;
        let subscription = SubscriptionId::parse(&subscription)
            .map_err(|e| EdgeError::invalid(vec![FieldError::new("subscriptionId", e)]))?;
        let body = input::parse_json::<LinkBody>(&body.0?)?;
        let account = AccountId::parse(&body.account_id)
            .map_err(|e| EdgeError::invalid(vec![FieldError::new("accountId", e)]))?;
        Ok(Operation::LinkSubscription {
            connection,
            subscription,
            account,
        })
    })
    .await
}
