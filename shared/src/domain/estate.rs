//! An estate: one connection for a management group's subscriptions (issue 18).
//!
//! A connection's [`Scope`] is one subscription (step 3.4) or one management group. For a group,
//! Connect Account and every health pass survey it: the subscriptions below it (every level), each
//! one's state and the actions the app is missing there. [`Estate::record`] merges a [`Survey`]
//! into what was known and says what changed, so that events go out once per change and a pass
//! that finds nothing new writes nothing. A Spot account holds one subscription:
//! [`Estate::link`] ties them, one to one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Duration, Utc};

use super::ids::{AccountId, ManagementGroupId, SubscriptionId};
use super::privilege::OverPrivilege;
use super::survey::{PROGRESS_EVERY_SECONDS, SurveyError, SurveyStart, SurveyState};

/// `state` of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionState {
    Enabled,
    Warned,
    PastDue,
    Disabled,
    Deleted,
    Other(String),
}

impl SubscriptionState {
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "enabled" => Self::Enabled,
            "warned" => Self::Warned,
            "pastdue" => Self::PastDue,
            "disabled" => Self::Disabled,
            "deleted" => Self::Deleted,
            _ => Self::Other(s.to_owned()),
        }
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Enabled => "Enabled",
            Self::Warned => "Warned",
            Self::PastDue => "PastDue",
            Self::Disabled => "Disabled",
            Self::Deleted => "Deleted",
            Self::Other(s) => s,
        })
    }
}

/// What a connection reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Subscription(SubscriptionId),
    ManagementGroup(ManagementGroupId),
}

impl Scope {
    /// The scope's ARM path (what a role's `assignableScopes` and an assignment name).
    pub fn arm_path(&self) -> String {
        match self {
            Self::Subscription(s) => format!("/subscriptions/{s}"),
            Self::ManagementGroup(g) => {
                format!("/providers/Microsoft.Management/managementGroups/{g}")
            }
        }
    }

    /// `subscription` or `managementGroup`, as the API names the kinds.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Subscription(_) => "subscription",
            Self::ManagementGroup(_) => "managementGroup",
        }
    }

    pub fn id(&self) -> String {
        match self {
            Self::Subscription(s) => s.to_string(),
            Self::ManagementGroup(g) => g.to_string(),
        }
    }
}

/// What Spot's role needs beyond its actions when it is assigned at a management group: reading
/// the group and what is below it (discovery). Assignable at a group with Spot's actions: none of
/// them is a DataAction, which Azure does not allow at a management group.
pub const GROUP_ACTIONS: [&str; 2] = [
    "Microsoft.Management/managementGroups/read",
    "Microsoft.Management/managementGroups/descendants/read",
];

/// Where a subscription of an estate stands. When several apply, the first in this order wins:
/// lost, disabled, missing-actions, linked, awaiting-account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubscriptionStatus {
    /// No longer under the group, or no longer visible to the app.
    Lost,
    /// Disabled or deleted in Azure.
    Disabled,
    /// The app lacks some of Spot's required actions there.
    MissingActions,
    /// Tied to a Spot account and working.
    Linked,
    /// Found and working, not yet tied to a Spot account.
    AwaitingAccount,
}

impl SubscriptionStatus {
    pub const ALL: [Self; 5] = [
        Self::Lost,
        Self::Disabled,
        Self::MissingActions,
        Self::Linked,
        Self::AwaitingAccount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lost => "lost",
            Self::Disabled => "disabled",
            Self::MissingActions => "missing-actions",
            Self::Linked => "linked",
            Self::AwaitingAccount => "awaiting-account",
        }
    }

    /// Whether the customer has something to do (an account to name is not trouble).
    pub fn needs_attention(self) -> bool {
        matches!(self, Self::Lost | Self::Disabled | Self::MissingActions)
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One subscription as a survey saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub subscription: SubscriptionId,
    pub display_name: String,
    pub state: SubscriptionState,
    /// Spot's required actions the app does not hold there.
    pub missing_actions: Vec<String>,
    /// What the app may do there beyond Spot's role (a warning, not a status).
    pub over_privilege: Option<OverPrivilege>,
}

/// The subscriptions under the group the app can see, as one survey found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    pub checked_at: DateTime<Utc>,
    pub found: Vec<Sighting>,
    /// What the survey looked at: `None`, the whole group (a subscription not found is lost);
    /// else only these (one not found among them is lost, the others are left as they were: a
    /// chunk of a survey in the background, [`super::survey`]).
    pub looked_at: Option<BTreeSet<SubscriptionId>>,
}

impl Survey {
    /// A survey of the whole group.
    pub fn whole(checked_at: DateTime<Utc>, found: Vec<Sighting>) -> Self {
        Self {
            checked_at,
            found,
            looked_at: None,
        }
    }

    /// A survey of the subscriptions `looked_at` only.
    pub fn part(
        checked_at: DateTime<Utc>,
        found: Vec<Sighting>,
        looked_at: BTreeSet<SubscriptionId>,
    ) -> Self {
        Self {
            checked_at,
            found,
            looked_at: Some(looked_at),
        }
    }
}

/// One subscription of an estate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstateEntry {
    pub subscription: SubscriptionId,
    pub display_name: String,
    pub state: SubscriptionState,
    pub account: Option<AccountId>,
    pub missing_actions: Vec<String>,
    /// What the app may do there beyond Spot's role, as last found.
    pub over_privilege: Option<OverPrivilege>,
    pub lost: bool,
    /// When its status last changed (a survey that finds it as it was changes nothing).
    pub checked_at: DateTime<Utc>,
}

impl EstateEntry {
    pub fn status(&self) -> SubscriptionStatus {
        if self.lost {
            SubscriptionStatus::Lost
        } else if matches!(
            self.state,
            SubscriptionState::Disabled | SubscriptionState::Deleted
        ) {
            SubscriptionStatus::Disabled
        } else if !self.missing_actions.is_empty() {
            SubscriptionStatus::MissingActions
        } else if self.account.is_some() {
            SubscriptionStatus::Linked
        } else {
            SubscriptionStatus::AwaitingAccount
        }
    }
}

/// What changed between two states of an estate: each is announced once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EstateChange {
    /// Found for the first time (the console may create an account for it).
    Discovered(EstateEntry),
    /// Tied to a Spot account.
    Linked(EstateEntry),
    /// No longer under the group, or no longer visible.
    Lost(EstateEntry),
    /// The app may do more there than Spot needs (newly, or other grants than before).
    OverPrivileged(EstateEntry),
    /// Its tie to a Spot account dropped with the estate (replaced by a subscription or another
    /// group).
    Unlinked(EstateEntry),
    /// Any other change of status (permissions reduced or restored, disabled, found again).
    StatusChanged {
        entry: EstateEntry,
        from: SubscriptionStatus,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EstateError {
    #[error("the subscription was not found under the management group")]
    UnknownSubscription,
    #[error("the subscription is no longer under the management group")]
    SubscriptionLost,
    #[error("the subscription is already linked to another account")]
    SubscriptionTaken,
    #[error("the account already holds another subscription")]
    AccountTaken,
    #[error("the account already holds this subscription through another connection")]
    HeldElsewhere,
    #[error("the management group is already another connection's estate")]
    GroupTaken,
    #[error(
        "the estate has {linked} subscriptions tied to Spot accounts; replacing it would drop those ties"
    )]
    HasLinks { linked: usize },
}

/// A connection's management group and what is known of its subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estate {
    pub group: ManagementGroupId,
    /// The subscription the connection's own account (3.1) holds, when `PUT …/scope` named one.
    pub default_subscription: Option<SubscriptionId>,
    pub submitted_at: DateTime<Utc>,
    /// When a survey last changed what is known (`None` before the first).
    pub surveyed_at: Option<DateTime<Utc>>,
    pub entries: BTreeMap<SubscriptionId, EstateEntry>,
    /// The survey in the background, when the group was too large for one answer (the last
    /// one, however it ended; a survey of the whole group in one piece clears it).
    pub survey: Option<super::survey::SurveyRun>,
}

impl Estate {
    pub fn new(
        group: ManagementGroupId,
        default_subscription: Option<SubscriptionId>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            group,
            default_subscription,
            submitted_at: at,
            surveyed_at: None,
            entries: BTreeMap::new(),
            survey: None,
        }
    }

    pub fn scope(&self) -> Scope {
        Scope::ManagementGroup(self.group.clone())
    }

    /// Merges a survey: new subscriptions are added (the default one tied to `own_account` when
    /// that account holds no other), changed ones updated, ones looked at and not seen marked
    /// lost. Returns whether anything changed.
    pub fn record(&mut self, survey: &Survey, own_account: &AccountId) -> bool {
        let at = survey.checked_at;
        let mut changed = false;
        let own_taken = self.holder_of(own_account).is_some();
        for seen in &survey.found {
            match self.entries.get_mut(&seen.subscription) {
                None => {
                    let account = (self.default_subscription == Some(seen.subscription) && !own_taken)
                        .then(|| own_account.clone());
                    self.entries.insert(
                        seen.subscription,
                        EstateEntry {
                            subscription: seen.subscription,
                            display_name: seen.display_name.clone(),
                            state: seen.state.clone(),
                            account,
                            missing_actions: seen.missing_actions.clone(),
                            over_privilege: seen.over_privilege.clone(),
                            lost: false,
                            checked_at: at,
                        },
                    );
                    changed = true;
                }
                Some(entry) => {
                    let before = entry.status();
                    let differs = entry.lost
                        || entry.state != seen.state
                        || entry.missing_actions != seen.missing_actions
                        || entry.over_privilege != seen.over_privilege
                        || entry.display_name != seen.display_name;
                    if differs {
                        entry.lost = false;
                        entry.state = seen.state.clone();
                        entry.missing_actions = seen.missing_actions.clone();
                        entry.over_privilege = seen.over_privilege.clone();
                        entry.display_name = seen.display_name.clone();
                        if entry.status() != before {
                            entry.checked_at = at;
                        }
                        changed = true;
                    }
                }
            }
        }
        let found: BTreeSet<SubscriptionId> = survey.found.iter().map(|s| s.subscription).collect();
        for entry in self.entries.values_mut() {
            let looked = survey
                .looked_at
                .as_ref()
                .is_none_or(|l| l.contains(&entry.subscription));
            if looked && !found.contains(&entry.subscription) && !entry.lost {
                entry.lost = true;
                entry.checked_at = at;
                changed = true;
            }
        }
        if survey.looked_at.is_none() && self.survey.take().is_some() {
            changed = true;
        }
        if changed || self.surveyed_at.is_none() {
            self.surveyed_at = Some(at);
            changed = true;
        }
        changed
    }

    /// The subscription `account` holds here, if any.
    /// The subscriptions tied to a Spot account, in subscription order.
    pub fn linked(&self) -> Vec<&EstateEntry> {
        self.entries.values().filter(|e| e.account.is_some()).collect()
    }

    /// The ties `before` held that `after` no longer can: every one, when the estate is gone or
    /// is another group's (what replacing an estate drops).
    pub fn dropped_links<'a>(before: Option<&'a Estate>, after: Option<&Estate>) -> Vec<&'a EstateEntry> {
        match (before, after) {
            (Some(b), Some(a)) if a.group == b.group => Vec::new(),
            (Some(b), _) => b.linked(),
            (None, _) => Vec::new(),
        }
    }

    pub fn holder_of(&self, account: &AccountId) -> Option<SubscriptionId> {
        self.entries
            .values()
            .find(|e| e.account.as_ref() == Some(account))
            .map(|e| e.subscription)
    }

    /// Ties a found subscription to a Spot account: one account per subscription and one
    /// subscription per account. The same pair again changes nothing (`Ok(false)`).
    pub fn link(
        &mut self,
        subscription: SubscriptionId,
        account: &AccountId,
        at: DateTime<Utc>,
    ) -> Result<bool, EstateError> {
        let holder = self.holder_of(account);
        let entry = self
            .entries
            .get_mut(&subscription)
            .ok_or(EstateError::UnknownSubscription)?;
        if entry.account.as_ref() == Some(account) {
            return Ok(false);
        }
        if entry.lost {
            return Err(EstateError::SubscriptionLost);
        }
        if entry.account.is_some() {
            return Err(EstateError::SubscriptionTaken);
        }
        if holder.is_some() {
            return Err(EstateError::AccountTaken);
        }
        entry.account = Some(account.clone());
        entry.checked_at = at;
        Ok(true)
    }

    /// How many subscriptions are in each status.
    pub fn counts(&self) -> BTreeMap<SubscriptionStatus, usize> {
        let mut counts = BTreeMap::new();
        for e in self.entries.values() {
            *counts.entry(e.status()).or_insert(0) += 1;
        }
        counts
    }

    /// What changed from `before` to `after` (no `before`: everything is new).
    pub fn changes(before: Option<&Estate>, after: &Estate) -> Vec<EstateChange> {
        let same_group = before.filter(|b| b.group == after.group);
        let mut changes = Vec::new();
        for entry in after.entries.values() {
            let old = same_group.and_then(|b| b.entries.get(&entry.subscription));
            if entry.over_privilege.is_some() && old.is_none_or(|o| o.over_privilege != entry.over_privilege)
            {
                changes.push(EstateChange::OverPrivileged(entry.clone()));
            }
            let Some(old) = old else {
                changes.push(EstateChange::Discovered(entry.clone()));
                if entry.account.is_some() {
                    changes.push(EstateChange::Linked(entry.clone()));
                }
                continue;
            };
            if old.account != entry.account && entry.account.is_some() {
                changes.push(EstateChange::Linked(entry.clone()));
            }
            let (from, to) = (old.status(), entry.status());
            if from == to {
                continue;
            }
            if to == SubscriptionStatus::Lost {
                changes.push(EstateChange::Lost(entry.clone()));
            } else if !(from == SubscriptionStatus::AwaitingAccount && to == SubscriptionStatus::Linked) {
                changes.push(EstateChange::StatusChanged {
                    entry: entry.clone(),
                    from,
                });
            }
        }
        changes
    }
}

/// A survey in the background ([`super::survey`]).
impl Estate {
    /// Starts a background survey from the group's listing: what is not listed any more is lost
    /// at once; the rest waits for its chunk. Replaces any run before. Returns whether anything
    /// changed.
    pub fn start_survey(&mut self, start: &SurveyStart, own: &AccountId) -> bool {
        let gone: BTreeSet<SubscriptionId> = self
            .entries
            .keys()
            .filter(|s| !start.listed.contains(s))
            .copied()
            .collect();
        let mut changed = !gone.is_empty() && self.record(&Survey::part(start.at, Vec::new(), gone), own);
        if let Some(run) = &start.run {
            self.survey = Some(run.clone());
            changed = true;
        }
        changed
    }

    /// What a health pass's survey in the background finds at once: the subscriptions no longer
    /// in the group's `listing`, looked at and not found (lost).
    pub fn left_out_of(&self, listing: &[(SubscriptionId, String)], at: DateTime<Utc>) -> Survey {
        let listed: BTreeSet<SubscriptionId> = listing.iter().map(|(id, _)| *id).collect();
        let gone = self
            .entries
            .keys()
            .filter(|s| !listed.contains(s))
            .copied()
            .collect();
        Survey::part(at, Vec::new(), gone)
    }

    /// Merges one chunk of the run `id` (`None`: a health pass's chunk, which records nothing but
    /// what changed). A chunk merged before changes nothing.
    pub fn record_chunk(
        &mut self,
        id: Option<&str>,
        index: u32,
        part: &Survey,
        own: &AccountId,
    ) -> Result<bool, SurveyError> {
        let Some(id) = id else {
            return Ok(self.record(part, own));
        };
        let run = self
            .survey
            .as_mut()
            .filter(|r| r.id == id && r.is_surveying())
            .ok_or(SurveyError::Superseded)?;
        if !run.merged.insert(index) {
            return Ok(false);
        }
        let at = part.checked_at;
        let looked = u32::try_from(part.looked_at.as_ref().map_or(0, BTreeSet::len)).unwrap_or(0);
        run.surveyed = run.surveyed.saturating_add(looked).min(run.total);
        let finished = run.merged.len() >= usize::try_from(run.chunks).unwrap_or(usize::MAX);
        if finished {
            run.state = SurveyState::Done;
            run.finished_at = Some(at);
        }
        if finished
            || run
                .announced_at
                .is_none_or(|t| at - t >= Duration::seconds(PROGRESS_EVERY_SECONDS))
        {
            run.announced_at = Some(at);
        }
        self.record(part, own);
        if finished {
            self.surveyed_at = Some(at);
        }
        Ok(true)
    }

    /// A chunk of the run `id` failed for good: the run ends failed (what the merged chunks found
    /// stays). A run already ended or replaced changes nothing.
    pub fn fail_survey(&mut self, id: &str, code: &str, retryable: bool, at: DateTime<Utc>) -> bool {
        match self.survey.as_mut() {
            Some(run) if run.id == id && run.is_surveying() => {
                run.state = SurveyState::Failed {
                    code: code.to_owned(),
                    retryable,
                };
                run.finished_at = Some(at);
                run.announced_at = Some(at);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(n: u8) -> SubscriptionId {
        SubscriptionId::parse(&format!("00000000-0000-4000-8000-0000000000{n:02x}")).unwrap()
    }

    fn seen(n: u8) -> Sighting {
        Sighting {
            subscription: sub(n),
            display_name: format!("sub {n}"),
            state: SubscriptionState::Enabled,
            missing_actions: Vec::new(),
            over_privilege: None,
        }
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn acct(s: &str) -> AccountId {
        AccountId::parse(s).unwrap()
    }

    fn estate() -> Estate {
        let group = ManagementGroupId::parse("contoso-prod").unwrap();
        Estate::new(group, Some(sub(1)), at(0))
    }

    #[test]
    fn a_survey_finds_links_the_default_and_announces_each_once() {
        let own = acct("act-12345678");
        let mut e = estate();
        let before = e.clone();
        let survey = Survey {
            looked_at: None,
            checked_at: at(10),
            found: vec![seen(1), seen(2)],
        };
        assert!(e.record(&survey, &own));
        assert_eq!(e.entries[&sub(1)].status(), SubscriptionStatus::Linked);
        assert_eq!(e.entries[&sub(2)].status(), SubscriptionStatus::AwaitingAccount);
        let changes = Estate::changes(Some(&before), &e);
        assert_eq!(
            changes
                .iter()
                .filter(|c| matches!(c, EstateChange::Discovered(_)))
                .count(),
            2
        );
        assert_eq!(
            changes
                .iter()
                .filter(|c| matches!(c, EstateChange::Linked(_)))
                .count(),
            1
        );
        // The same survey again: nothing changes, nothing is written or announced.
        let again = e.clone();
        assert!(!e.record(
            &Survey {
                looked_at: None,
                checked_at: at(20),
                found: vec![seen(1), seen(2)],
            },
            &own
        ));
        assert!(Estate::changes(Some(&again), &e).is_empty());
    }

    #[test]
    fn moved_out_is_lost_reduced_lists_the_missing_actions_and_lost_wins() {
        let own = acct("act-12345678");
        let mut e = estate();
        e.record(
            &Survey {
                looked_at: None,
                checked_at: at(10),
                found: vec![seen(1), seen(2), seen(3)],
            },
            &own,
        );
        let before = e.clone();
        let mut reduced = seen(2);
        reduced.missing_actions = vec!["Microsoft.Compute/disks/write".into()];
        let mut disabled = seen(1);
        disabled.state = SubscriptionState::Disabled;
        disabled.missing_actions = vec!["x/read".into()];
        assert!(e.record(
            &Survey {
                looked_at: None,
                checked_at: at(20),
                found: vec![disabled, reduced],
            },
            &own
        ));
        assert_eq!(e.entries[&sub(3)].status(), SubscriptionStatus::Lost);
        assert_eq!(e.entries[&sub(3)].checked_at, at(20));
        assert_eq!(e.entries[&sub(2)].status(), SubscriptionStatus::MissingActions);
        // Disabled beats missing actions, which beat linked.
        assert_eq!(e.entries[&sub(1)].status(), SubscriptionStatus::Disabled);
        let changes = Estate::changes(Some(&before), &e);
        assert!(changes.contains(&EstateChange::Lost(e.entries[&sub(3)].clone())));
        assert!(changes.contains(&EstateChange::StatusChanged {
            entry: e.entries[&sub(2)].clone(),
            from: SubscriptionStatus::AwaitingAccount
        }));
        assert_eq!(changes.len(), 3);
        // More than Spot needs on one: announced once, a warning beside its status.
        let before = e.clone();
        let mut wide = seen(2);
        wide.missing_actions = vec!["Microsoft.Compute/disks/write".into()];
        wide.over_privilege = Some(OverPrivilege {
            extra_grants: vec!["*".into()],
            roles: vec!["Owner (built-in)".into()],
        });
        let mut disabled = seen(1);
        disabled.state = SubscriptionState::Disabled;
        disabled.missing_actions = vec!["x/read".into()];
        let again = Survey {
            looked_at: None,
            checked_at: at(30),
            found: vec![disabled, wide],
        };
        assert!(e.record(&again, &own));
        assert_eq!(
            Estate::changes(Some(&before), &e),
            [EstateChange::OverPrivileged(e.entries[&sub(2)].clone())]
        );
        let before = e.clone();
        assert!(!e.record(&again, &own));
        assert!(Estate::changes(Some(&before), &e).is_empty());
    }

    #[test]
    fn links_are_one_to_one() {
        let own = acct("act-12345678");
        let mut e = estate();
        e.record(
            &Survey {
                looked_at: None,
                checked_at: at(10),
                found: vec![seen(1), seen(2), seen(3)],
            },
            &own,
        );
        let other = acct("act-abcdef01");
        assert_eq!(e.link(sub(2), &other, at(11)), Ok(true));
        assert_eq!(e.link(sub(2), &other, at(12)), Ok(false));
        assert_eq!(e.link(sub(3), &other, at(12)), Err(EstateError::AccountTaken));
        assert_eq!(e.link(sub(3), &own, at(12)), Err(EstateError::AccountTaken));
        assert_eq!(
            e.link(sub(2), &acct("act-00000001"), at(12)),
            Err(EstateError::SubscriptionTaken)
        );
        assert_eq!(
            e.link(sub(9), &acct("act-00000001"), at(12)),
            Err(EstateError::UnknownSubscription)
        );
    }
}
