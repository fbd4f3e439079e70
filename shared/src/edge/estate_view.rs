//! What the API shows of an estate: the scope and the counts in a connection's view, and each
//! subscription in the list.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::privilege_view::OverPrivilegedView;
use crate::domain::estate::{EstateEntry, SubscriptionStatus};
use crate::domain::survey::{SurveyRun, SurveyState};
use crate::domain::{AccountId, Connection, SubscriptionId};

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
    /// The survey in the background, when the group was too large for one answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey: Option<SurveyView>,
}

/// A survey in the background, in the estate's view.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyView {
    /// `surveying`, `done` or `failed`.
    pub state: &'static str,
    pub surveyed: u32,
    pub total: u32,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// When it failed: why, and whether Connect Account again may help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
}

impl SurveyView {
    fn of(run: &SurveyRun) -> Self {
        let state = run.state_at(Utc::now());
        let (code, retryable) = match &state {
            SurveyState::Failed { code, retryable } => (Some(code.clone()), Some(*retryable)),
            _ => (None, None),
        };
        Self {
            state: state.as_str(),
            surveyed: run.surveyed,
            total: run.total,
            started_at: run.started_at,
            finished_at: run.finished_at,
            code,
            retryable,
        }
    }
}

impl EstateView {
    pub fn of(c: &Connection) -> Option<Self> {
        let e = c.estate.as_ref()?;
        Some(Self {
            management_group_id: e.group.to_string(),
            default_subscription_id: e.default_subscription,
            surveyed_at: e.surveyed_at,
            subscriptions: e.entries.len(),
            by_status: e.counts().into_iter().map(|(s, n)| (s.as_str(), n)).collect(),
            survey: e.survey.as_ref().map(SurveyView::of),
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
    /// The app may do more there than Spot needs (a warning beside the status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over_privileged: Option<OverPrivilegedView>,
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
            over_privileged: e.over_privilege.as_ref().map(OverPrivilegedView::from),
            checked_at: e.checked_at,
        }
    }
}

/// One page of an estate's subscriptions.
#[derive(Debug, Serialize)]
pub struct SubscriptionsPage {
    items: Vec<SubscriptionView>,
    /// The next page's path, or null.
    next: Option<String>,
}

impl SubscriptionsPage {
    pub fn of(
        connection: &Connection,
        items: &[EstateEntry],
        next: Option<SubscriptionId>,
        status: Option<SubscriptionStatus>,
    ) -> Self {
        let filter = status.map_or(String::new(), |s| format!("&status={}", s.as_str()));
        Self {
            items: items.iter().map(SubscriptionView::from).collect(),
            next: next.map(|after| {
                format!(
                    "/connections/{}/subscriptions?after={after}{filter}",
                    connection.id
                )
            }),
        }
    }
}
