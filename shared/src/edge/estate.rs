//! An estate over HTTP: `PUT …/scope` (a subscription or a management group), the subscriptions
//! listed (`GET …/subscriptions`, paged) and tied to accounts (`PUT …/subscriptions/{id}`).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, put};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::EdgeError;
use super::http::{put_step, respond};
use super::input::{self, StepInput};
use super::request::{ApiState, Caller, RawBody, json_response};
use crate::app::estate::PAGE_SIZE;
use crate::app::{App, FieldError, Operation};
use crate::domain::estate::{EstateEntry, Scope};
use crate::domain::{AccountId, Command, Connection, ManagementGroupId, Step, SubscriptionId};

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
    #[serde(default)]
    subscription_id: Option<String>,
    #[serde(default)]
    management_group_id: Option<String>,
    #[serde(default)]
    default_subscription_id: Option<String>,
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
            }),
            (None, Some(raw)) => Ok(Command::ManagementGroup {
                group: ManagementGroupId::parse(&raw)
                    .map_err(|e| EdgeError::invalid(vec![FieldError::new("managementGroupId", e)]))?,
                default_subscription: self
                    .default_subscription_id
                    .as_deref()
                    .map(|raw| sub("defaultSubscriptionId", raw))
                    .transpose()?,
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
            .map(|raw| SubscriptionId::parse(raw).map_err(|e| EdgeError::invalid(vec![FieldError::new("after", e)])))
            .transpose()?;
        let limit = match query.limit.as_deref() {
            None => PAGE_SIZE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=crate::app::estate::MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    EdgeError::invalid(vec![FieldError::new("limit", "must be a whole number from 1 to 500")])
                })?,
        };
        Ok(Operation::ListSubscriptions {
            connection,
            after,
            limit,
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

/// What a connection reaches, in its view.
#[derive(Debug, Serialize)]
pub struct ScopeView {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
}

impl ScopeView {
    pub fn of(c: &Connection) -> Option<Self> {
        c.scope().map(|s| Self {
            kind: s.kind(),
            id: s.id(),
        })
    }
}

/// An estate in its connection's view: the group and how many subscriptions stand where.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EstateView {
    pub management_group_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_subscription_id: Option<SubscriptionId>,
    pub surveyed_at: Option<DateTime<Utc>>,
    pub subscriptions: usize,
    /// Subscriptions per status (only the statuses some have).
    pub by_status: std::collections::BTreeMap<&'static str, usize>,
}

impl EstateView {
    pub fn of(c: &Connection) -> Option<Self> {
        let e = c.estate.as_ref()?;
        debug_assert!(matches!(e.scope(), Scope::ManagementGroup(_)));
        Some(Self {
            management_group_id: e.group.to_string(),
            default_subscription_id: e.default_subscription,
            surveyed_at: e.surveyed_at,
            subscriptions: e.entries.len(),
            by_status: e.counts().into_iter().map(|(s, n)| (s.as_str(), n)).collect(),
        })
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    pub subscription_id: SubscriptionId,
    pub display_name: String,
    pub state: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_actions: Vec<String>,
    pub checked_at: DateTime<Utc>,
}

impl From<&EstateEntry> for SubscriptionView {
    fn from(e: &EstateEntry) -> Self {
        Self {
            subscription_id: e.subscription,
            display_name: e.display_name.clone(),
            state: e.state.to_string(),
            status: e.status().as_str(),
            account_id: e.account.clone(),
            missing_actions: e.missing_actions.clone(),
            checked_at: e.checked_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct PageView {
    items: Vec<SubscriptionView>,
    /// The next page's path, or null.
    next: Option<String>,
}

pub(super) fn page_response(
    connection: &Connection,
    items: &[EstateEntry],
    next: Option<SubscriptionId>,
) -> Response {
    let page = PageView {
        items: items.iter().map(SubscriptionView::from).collect(),
        next: next.map(|after| format!("/connections/{}/subscriptions?after={after}", connection.id)),
    };
    json_response(axum::http::StatusCode::OK, &page)
}

pub(super) fn entry_response(entry: &EstateEntry) -> Response {
    json_response(axum::http::StatusCode::OK, &SubscriptionView::from(entry))
}
