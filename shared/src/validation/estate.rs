//! Connect Account and the health pass for a management group: a token, then the group's
//! subscriptions (every page of its descendants), then their states from ARM's subscriptions list
//! (a page holds many), then the app's permissions on each (and the state of any the list did not
//! hold), [`SURVEY_CONCURRENCY`] subscriptions at a time, all within the one budget.
//!
//! The connection stands on the group: it connects when the group can be read with its credential
//! and role. What each subscription needs is listed ([`crate::domain::estate`]), not failed.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use tokio::time::Instant;

use super::{Validated, Validator, not_yet_authorized, retrying, stale_token, wait_for_propagation};
use crate::azure::{AccessToken, SubscriptionInfo};
use crate::domain::diagnosis::{AzureFailure, SubscriptionState, ValidationFailure};
use crate::domain::estate::{Sighting, Survey};
use crate::domain::privilege::over_privilege;
use crate::domain::rbac;
use crate::domain::{ManagementGroupId, SubscriptionId, ValidationInputs};

/// ARM reads in flight at once, each of another subscription (the app's permissions there, or the
/// state of one the subscriptions list did not hold). ARM limits reads per principal and per
/// subscription; these are spread over many subscriptions, so 64 at a time stays far below the
/// per-subscription bucket while 1,000 subscriptions at ~100 ms a read take ~2 s (`scripts/bench`).
pub const SURVEY_CONCURRENCY: usize = 64;

/// Pages of descendants followed at most (ARM's pages hold hundreds of entries).
const MAX_DESCENDANT_PAGES: usize = 1_000;

/// ARM's subscriptions list gives each subscription's state, a page at a time; its page size is
/// not documented. A survey follows it while its pages hold at least this many subscriptions and
/// for at most `subscriptions / LISTED_PER_PAGE` pages (one at least): each page saves at least
/// this many reads. What the pages did not hold is read one call each, as before.
const LISTED_PER_PAGE: usize = 50;

impl Validator {
    /// Validates a management-group connection: its credential, the group's role (reading the
    /// descendants), and a survey of every subscription below.
    pub(super) async fn validate_estate(
        &self,
        inputs: &ValidationInputs,
        group: &ManagementGroupId,
    ) -> Result<Validated, ValidationFailure> {
        let deadline = Instant::now() + self.budget;
        let mut round = 0;
        let mut refreshed = false;
        loop {
            let (token, graph_token) = tokio::join!(
                self.token_for(inputs, &self.arm_scope, deadline),
                self.graph_token(inputs, deadline)
            );
            let token = token?;
            let (listing, graph, name) = tokio::join!(
                self.descendants(&token, group, deadline),
                self.graph_look(graph_token.as_ref(), inputs, deadline),
                retrying(deadline, || self.reads.management_group_name(&token, group)),
            );
            if stale_token(&listing) && !refreshed {
                refreshed = true;
                continue;
            }
            if not_yet_authorized(&listing) {
                wait_for_propagation(&mut round, deadline)
                    .await
                    .map_err(|e| match e {
                        // At a group, the customer is sent to the group's Access control.
                        ValidationFailure::NotPropagated => ValidationFailure::GroupRoleNotPropagated,
                        other => other,
                    })?;
                continue;
            }
            let listing = listing.map_err(|e| match e {
                ValidationFailure::Azure(AzureFailure::Arm { status: 404, .. }) => {
                    ValidationFailure::ManagementGroupNotFound
                }
                other => other,
            })?;
            let (survey, listing) = match self.survey_at_once {
                Some(limit) if listing.len() > limit => (None, Some(listing)),
                _ => (Some(self.survey(&token, listing, deadline).await?), None),
            };
            // The group's display name, as the portal shows it; its id when it has none or
            // cannot be read (the listing above is what decides).
            let name = name.ok().filter(|n| !n.trim().is_empty());
            return Ok(Validated {
                subscription_name: name.unwrap_or_else(|| group.to_string()),
                warnings: Vec::new(),
                graph,
                role_version: self.roles.latest(),
                missing_recommended: Vec::new(),
                role_id: None,
                over_privilege: None,
                survey,
                listing,
            });
        }
    }

    /// A chunk of a group's subscriptions (id, display name as listed), surveyed with the
    /// connection's credential within one budget: the part of a survey in the background.
    pub async fn survey_part(
        &self,
        inputs: &ValidationInputs,
        chunk: Vec<(SubscriptionId, String)>,
    ) -> Result<Survey, ValidationFailure> {
        let deadline = Instant::now() + self.budget;
        let token = self.token_for(inputs, &self.arm_scope, deadline).await?;
        let looked_at = chunk.iter().map(|(id, _)| *id).collect();
        let mut survey = self.survey(&token, chunk, deadline).await?;
        survey.looked_at = Some(looked_at);
        Ok(survey)
    }

    /// Every subscription below `group` (all pages), each once.
    async fn descendants(
        &self,
        token: &AccessToken,
        group: &ManagementGroupId,
        deadline: Instant,
    ) -> Result<Vec<(SubscriptionId, String)>, ValidationFailure> {
        let mut found: Vec<(SubscriptionId, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_DESCENDANT_PAGES {
            let page = retrying(deadline, || self.reads.descendants(token, group, next.as_deref())).await?;
            for (id, name) in page.subscriptions {
                if seen.insert(id) {
                    found.push((id, name));
                }
            }
            match page.next {
                Some(link) => next = Some(link),
                None => return Ok(found),
            }
        }
        Err(ValidationFailure::Azure(AzureFailure::Protocol(format!(
            "more than {MAX_DESCENDANT_PAGES} pages of management group descendants"
        ))))
    }

    /// The states of the `wanted` subscriptions from ARM's subscriptions list, page after page
    /// until every one is found or the pages stop paying ([`LISTED_PER_PAGE`]). Best effort: a
    /// list that cannot be read leaves the states to be read one call each.
    async fn listed_states(
        &self,
        token: &AccessToken,
        wanted: HashSet<SubscriptionId>,
        deadline: Instant,
    ) -> HashMap<SubscriptionId, SubscriptionInfo> {
        let mut found = HashMap::new();
        let mut next: Option<String> = None;
        for _ in 0..(wanted.len() / LISTED_PER_PAGE).max(1) {
            let page =
                match retrying(deadline, || self.reads.subscriptions_page(token, next.as_deref())).await {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::info!(error = ?e, "subscriptions list not read; states read one by one");
                        break;
                    }
                };
            // Pages smaller than what one must save will not pay: the rest one call each.
            let small = page.subscriptions.len() < LISTED_PER_PAGE;
            found.extend(
                page.subscriptions
                    .into_iter()
                    .filter(|(id, _)| wanted.contains(id)),
            );
            match page.next {
                Some(link) if found.len() < wanted.len() && !small => next = Some(link),
                _ => break,
            }
        }
        found
    }

    /// Each subscription's state and what the app lacks there, [`SURVEY_CONCURRENCY`] at a time.
    /// A subscription the app cannot read (gone, or not visible any more) is left out: the merge
    /// marks it lost. Azure unavailable fails the whole survey (no half-survey is recorded).
    async fn survey(
        &self,
        token: &AccessToken,
        listing: Vec<(SubscriptionId, String)>,
        deadline: Instant,
    ) -> Result<Survey, ValidationFailure> {
        let required = self.roles.required();
        let spot = self.roles.actions();
        let spot = &spot;
        // The list's pages (one after another), then the state of each subscription they did
        // not hold, side by side with the permissions: [`SURVEY_CONCURRENCY`] reads in flight
        // between the two.
        let slots = tokio::sync::Semaphore::new(SURVEY_CONCURRENCY);
        let slots = &slots;
        let wanted: HashSet<SubscriptionId> = listing.iter().map(|(id, _)| *id).collect();
        let states = async {
            let listed = self.listed_states(token, wanted.clone(), deadline).await;
            let unlisted: Vec<SubscriptionId> = wanted
                .iter()
                .filter(|id| !listed.contains_key(id))
                .copied()
                .collect();
            let read = futures_util::stream::iter(unlisted)
                .map(|id| async move {
                    let _slot = slots.acquire().await.ok();
                    (
                        id,
                        retrying(deadline, || self.reads.subscription(token, &id)).await,
                    )
                })
                .buffer_unordered(SURVEY_CONCURRENCY)
                .collect::<Vec<_>>()
                .await;
            let mut states: HashMap<SubscriptionId, Result<SubscriptionInfo, ValidationFailure>> =
                listed.into_iter().map(|(id, info)| (id, Ok(info))).collect();
            states.extend(read);
            states
        };
        let permissions = futures_util::stream::iter(listing)
            .map(|(id, listed_name)| async move {
                let _slot = slots.acquire().await.ok();
                let perms = retrying(deadline, || self.reads.permissions(token, &id)).await;
                // More than Spot needs there: the roles it comes from are read (one more call,
                // only then; best effort).
                let mut over = perms
                    .as_ref()
                    .ok()
                    .and_then(|p| over_privilege(spot.iter().copied(), p, &[]));
                if let (Some(_), Ok(p)) = (&over, &perms) {
                    let roles = retrying(deadline, || self.reads.assigned_roles(token, &id))
                        .await
                        .unwrap_or_default();
                    over = over_privilege(spot.iter().copied(), p, &roles);
                }
                (id, listed_name, perms, over)
            })
            .buffer_unordered(SURVEY_CONCURRENCY)
            .collect::<Vec<_>>();
        let (mut states, looks) = tokio::join!(states, permissions);
        let looks: Vec<_> = looks
            .into_iter()
            .map(|(id, listed_name, perms, over)| {
                let sub = states.remove(&id).unwrap_or_else(|| {
                    Err(ValidationFailure::Azure(AzureFailure::Protocol(
                        "a subscription's state was neither listed nor read".into(),
                    )))
                });
                (id, listed_name, sub, perms, over)
            })
            .collect();
        let mut found = Vec::with_capacity(looks.len());
        for (id, listed_name, sub, perms, over_privilege) in looks {
            let sub = match sub {
                Ok(s) => s,
                Err(ValidationFailure::Azure(AzureFailure::Arm {
                    status: 403 | 404, ..
                })) => continue,
                Err(e) => return Err(e),
            };
            let missing: Vec<String> = match perms {
                Ok(p) => rbac::missing_actions(required.iter().copied(), &p)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                // The role does not reach it (yet): everything is missing.
                Err(ValidationFailure::Azure(AzureFailure::Arm { status: 403, .. })) => {
                    required.iter().map(|a| (*a).to_owned()).collect()
                }
                Err(e) => return Err(e),
            };
            let state = match sub.state {
                SubscriptionState::Other(s) if s.is_empty() => SubscriptionState::Enabled,
                s => s,
            };
            found.push(Sighting {
                subscription: id,
                display_name: if sub.display_name.is_empty() {
                    listed_name
                } else {
                    sub.display_name
                },
                state,
                missing_actions: missing,
                over_privilege,
            });
        }
        found.sort_by_key(|s| s.subscription);
        Ok(Survey::whole(chrono::Utc::now(), found))
    }
}
