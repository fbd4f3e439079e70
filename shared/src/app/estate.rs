//! An estate's use cases (issue 18): its subscriptions listed and tied to Spot accounts, and what
//! a survey changed announced, one event per change (a thousand subscriptions found at once go out
//! in batches).

use sha2::{Digest, Sha256};

use super::error::AppError;
use super::events::{OutcomeEvent, OverPrivileged, Subject, SubscriptionChanged};
use super::operations::{App, Outcome};
use super::request::RequestMeta;
use crate::domain::estate::{Estate, EstateChange, EstateEntry, EstateError, SubscriptionStatus, Survey};
use crate::domain::{AccountId, Command, Connection, ConnectionId, OrgId, RuleError, Step, SubscriptionId};

/// Subscriptions in one page of `GET …/subscriptions` unless the caller asks fewer.
pub const PAGE_SIZE: usize = 100;
/// The most a caller may ask for in one page.
pub const MAX_PAGE_SIZE: usize = 500;

impl App {
    /// Announces what changed in the estate from `before` to `after`.
    pub(super) async fn announce_estate(&self, req: &RequestMeta, before: &Connection, after: &Connection) {
        let subject = Subject::new(req, &after.org, Step::Subscription, Some(after.id));
        let mut events = Vec::new();
        // The ties an estate replaced dropped, each announced.
        if let Some(replaced) = &before.estate {
            for entry in Estate::dropped_links(Some(replaced), after.estate.as_ref()) {
                let change = EstateChange::Unlinked(entry.clone());
                events.push(estate_event(subject.clone(), &after.account, replaced, change));
            }
        }
        if let Some(estate) = &after.estate {
            for change in Estate::changes(before.estate.as_ref(), estate) {
                events.push(estate_event(subject.clone(), &after.account, estate, change));
            }
        }
        if events.is_empty() {
            return;
        }
        let wire: Vec<_> = events
            .into_iter()
            .filter_map(|event| match event.to_wire() {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::error!(error = %e, "estate event not serializable; not published");
                    None
                }
            })
            .collect();
        let failed = self.events.publish_all(&wire).await;
        for (i, e) in &failed {
            tracing::error!(detail_type = %wire[*i].detail_type, error = %super::error::error_chain(e), "event not published");
        }
        tracing::info!(connection = %after.id, announced = wire.len() - failed.len(), "estate changes announced");
    }

    /// `PUT /connections/{id}/subscriptions/{subscriptionId}`: ties a found subscription to a Spot
    /// account, one to one across the organization: the write claims the account and the
    /// subscription in the organization's ties (an account whose own connection entered a
    /// subscription holds that one). The same pair again changes and announces nothing.
    pub(super) async fn link_subscription(
        &self,
        req: &RequestMeta,
        org: &OrgId,
        id: &ConnectionId,
        subscription: SubscriptionId,
        account: AccountId,
    ) -> Result<Outcome, AppError> {
        let current = self.load(org, id).await?;
        let before = current.connection.clone();
        if before.estate.is_none() {
            return Err(RuleError::NotAnEstate.into());
        }
        let command = Command::LinkSubscription {
            subscription,
            account,
        };
        let (after, wrote) = self
            .update_from(req, org, id, std::slice::from_ref(&command), false, Some(current))
            .await?;
        if wrote {
            self.announce_estate(req, &before, &after).await;
        }
        let entry = after
            .estate
            .as_ref()
            .and_then(|e| e.entries.get(&subscription).cloned())
            .ok_or(RuleError::Estate(EstateError::UnknownSubscription))?;
        Ok(Outcome::Subscription {
            connection: after,
            entry: Box::new(entry),
        })
    }

    /// `GET /connections/{id}/subscriptions`: one page, by subscription id, after `after`.
    pub(super) async fn list_subscriptions(
        &self,
        org: &OrgId,
        id: &ConnectionId,
        after: Option<SubscriptionId>,
        limit: usize,
        status: Option<SubscriptionStatus>,
    ) -> Result<Outcome, AppError> {
        let connection = self.load(org, id).await?.connection;
        let estate = connection.estate.as_ref().ok_or(RuleError::NotAnEstate)?;
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let mut rest = estate
            .entries
            .range((
                after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
                std::ops::Bound::Unbounded,
            ))
            .map(|(_, e)| e)
            .filter(|e| status.is_none_or(|s| e.status() == s))
            .cloned();
        let items: Vec<EstateEntry> = rest.by_ref().take(limit).collect();
        let next = match rest.next() {
            Some(_) => items.last().map(|e| e.subscription),
            None => None,
        };
        Ok(Outcome::Subscriptions {
            connection,
            items,
            next,
            status,
        })
    }
}

/// What a health pass's survey found, from which state of the estate, for its write's request id:
/// overlapping runs that find the same change from the same state get the same key (one write,
/// one announcement); a change back to an earlier state gets another.
pub(super) fn survey_key(survey: Option<&Survey>, from: Option<&Estate>) -> String {
    let Some(survey) = survey else {
        return String::new();
    };
    let mut h = Sha256::new();
    if let Some(at) = from.and_then(|e| e.surveyed_at) {
        h.update(at.timestamp_micros().to_le_bytes());
    }
    for s in &survey.found {
        h.update(format!(
            "{}|{}|{}|{};",
            s.subscription,
            s.state,
            s.display_name,
            s.missing_actions.join(",")
        ));
    }
    let digest = h.finalize();
    format!(
        "|estate:{}",
        digest[..8].iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn estate_event(subject: Subject, own: &AccountId, estate: &Estate, change: EstateChange) -> OutcomeEvent {
    let changed = |subject, entry: EstateEntry, from: Option<&'static str>| SubscriptionChanged {
        subject,
        management_group_id: estate.group.to_string(),
        subscription_id: entry.subscription,
        display_name: entry.display_name.clone(),
        state: entry.state.to_string(),
        status: entry.status().as_str(),
        previous_status: from,
        account_id: entry.account.clone(),
        missing_actions: entry.missing_actions,
    };
    match change {
        EstateChange::Discovered(e) => OutcomeEvent::SubscriptionDiscovered(changed(subject, e, None)),
        EstateChange::Linked(e) => OutcomeEvent::SubscriptionLinked(changed(subject, e, None)),
        EstateChange::Lost(e) => OutcomeEvent::SubscriptionLost(changed(subject, e, None)),
        EstateChange::Unlinked(e) => OutcomeEvent::SubscriptionUnlinked(changed(subject, e, None)),
        EstateChange::StatusChanged { entry, from } => {
            OutcomeEvent::SubscriptionChanged(changed(subject, entry, Some(from.as_str())))
        }
        EstateChange::OverPrivileged(entry) => {
            let found = entry.over_privilege.unwrap_or_default();
            OutcomeEvent::ConnectionOverPrivileged(OverPrivileged {
                subject,
                account_id: entry.account.unwrap_or_else(|| own.clone()),
                subscription_id: Some(entry.subscription),
                management_group_id: Some(estate.group.to_string()),
                advice: found.advice(),
                extra_grants: found.extra_grants,
                roles: found.roles,
            })
        }
    }
}
