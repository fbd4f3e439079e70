//! An estate's stored form. A secret's value holds at most 64 KiB and a group can hold a thousand
//! subscriptions, so the subscriptions are kept as one JSON array of compact rows, deflated
//! (miniz_oxide, pure Rust) and base64-encoded: ~30 bytes a subscription instead of ~150 (the
//! figures: `BENCH_ONLY=estate scripts/bench`). [`MAX_ENCODED`] bounds what a document may carry.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::estate::{Estate, EstateEntry, SubscriptionState};
use crate::domain::ids::{AccountId, ManagementGroupId, SubscriptionId};
use crate::domain::privilege::OverPrivilege;
use crate::domain::role::required_actions;
use crate::domain::survey::{SurveyRun, SurveyState};

/// Room for the encoded subscriptions, leaving the rest of a 64 KiB secret to the connection's
/// other fields: what the figures' capacity is counted against. What is checked is the whole
/// document ([`super::MAX_DOCUMENT`]).
pub const MAX_ENCODED: usize = 56 * 1024;

/// Why stored subscriptions did not decode.
#[derive(Debug, thiserror::Error)]
pub enum EstateDocError {
    #[error("not base64 of deflated data")]
    Encoding,
    #[error("not the rows expected")]
    Rows(#[source] serde_json::Error),
    #[error("a page of the list is missing or not what the document names")]
    PageMissing,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EstateDoc {
    management_group_id: ManagementGroupId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_subscription_id: Option<SubscriptionId>,
    submitted_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    surveyed_at: Option<DateTime<Utc>>,
    /// Base64 of the deflated JSON array of [`Row`]s.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    subscriptions: String,
    /// The distinct findings of more than Spot needs: a row names one by its place here. Owner
    /// at the group makes every subscription below say the same, so this stays a few entries
    /// long whatever the group's size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    over_privilege_kinds: Vec<OverPrivilegeDoc>,
    /// Read only: where documents written before the kinds kept them, by subscription (its id
    /// again for each, uncompressed: ~100 bytes a subscription, what overflowed the document).
    #[serde(default, skip_serializing)]
    over_privileged: BTreeMap<SubscriptionId, OverPrivilegeDoc>,
    /// A list too large to keep inline: its pages, each a document of its own named by the hash
    /// of its content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pages: Vec<PageRef>,
    /// The survey in the background, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    survey: Option<SurveyRunDoc>,
}

/// A background survey as stored ([`SurveyRun`]).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SurveyRunDoc {
    id: String,
    /// `surveying`, `done` or `failed`.
    state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(default)]
    retryable: bool,
    total: u32,
    surveyed: u32,
    chunks: u32,
    #[serde(default)]
    merged: BTreeSet<u32>,
    started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    announced_at: Option<DateTime<Utc>>,
}

impl SurveyRunDoc {
    fn of(run: &SurveyRun) -> Self {
        let (code, retryable) = match &run.state {
            SurveyState::Failed { code, retryable } => (Some(code.clone()), *retryable),
            _ => (None, false),
        };
        Self {
            id: run.id.clone(),
            state: run.state.as_str().to_owned(),
            code,
            retryable,
            total: run.total,
            surveyed: run.surveyed,
            chunks: run.chunks,
            merged: run.merged.clone(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            announced_at: run.announced_at,
        }
    }

    fn run(self) -> SurveyRun {
        let state = match self.state.as_str() {
            "surveying" => SurveyState::Surveying,
            "done" => SurveyState::Done,
            _ => SurveyState::Failed {
                code: self.code.unwrap_or_else(|| "survey-failed".to_owned()),
                retryable: self.retryable,
            },
        };
        SurveyRun {
            id: self.id,
            state,
            total: self.total,
            surveyed: self.surveyed,
            chunks: self.chunks,
            merged: self.merged,
            started_at: self.started_at,
            finished_at: self.finished_at,
            announced_at: self.announced_at,
        }
    }
}

/// A page of an estate's list, as the connection's document names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageRef {
    /// The SHA-256 of the page's text (hex, first 32 characters): its name, and its check.
    hash: String,
    /// Subscriptions on the page.
    count: u32,
}

/// A page's stored text: rows and the findings they name, as an inline list keeps them.
#[derive(Serialize, Deserialize)]
struct PageDoc {
    rows: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    kinds: Vec<OverPrivilegeDoc>,
}

/// A page of an estate's list to be stored beside the connection's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Its name: the SHA-256 of `text` (hex, first 32 characters).
    pub hash: String,
    pub text: String,
}

/// A list that takes more than this, encoded, leaves the document for pages.
pub const INLINE_LIST: usize = 40 * 1024;
/// The most a page's text takes (a secret holds 65,536 bytes).
pub const PAGE_LIMIT: usize = 56 * 1024;
/// Pages are split by the first bits of the hashes of the subscriptions' ids: at most 2^8 of
/// them (~300,000 subscriptions).
const MAX_PAGE_BITS: u32 = 8;

fn page_hash(text: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The first `bits` bits of the SHA-256 of a subscription's id: its page (a hash, not the id
/// itself, so that ids that share their first characters still spread over the pages).
fn prefix(subscription: &SubscriptionId, bits: u32) -> u8 {
    page_key(subscription)[0] >> (8 - bits)
}

/// Where a subscription falls among an estate's pages, whatever their number: the SHA-256 of its
/// id. Subscriptions in this order fill the pages one after another, so a piece of work taken in
/// this order (a survey's chunk) changes one or two pages, not every one.
pub fn page_key(subscription: &SubscriptionId) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(subscription.to_string().as_bytes()).into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OverPrivilegeDoc {
    extra_grants: Vec<String>,
    roles: Vec<String>,
}

/// One subscription: id, display name, state, account, lost, when its status changed, the
/// missing actions, and the place of its over-privilege finding among the document's kinds
/// (absent in rows written before there were kinds).
#[derive(Serialize, Deserialize)]
struct Row(
    SubscriptionId,
    String,
    String,
    Option<AccountId>,
    bool,
    DateTime<Utc>,
    Vec<Action>,
    #[serde(default)] Option<u16>,
);

/// A missing action: its place in Spot's 85 actions of version 1 (`required_actions`: fixed, later
/// versions add theirs in `role-versions.txt`; reordering that file would need a new document
/// schema), or its name when it is not one of them. A subscription missing every action takes 85
/// small numbers instead of ~3.5 KB of names.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Action {
    Index(u16),
    Name(String),
}

impl Action {
    fn of(name: &str) -> Self {
        required_actions()
            .position(|a| a == name)
            .and_then(|i| u16::try_from(i).ok())
            .map_or_else(|| Self::Name(name.to_owned()), Self::Index)
    }

    fn name(self) -> Option<String> {
        match self {
            Self::Name(n) => Some(n),
            Self::Index(i) => required_actions().nth(usize::from(i)).map(str::to_owned),
        }
    }
}

/// What the stored list of `estate`'s subscriptions takes, encoded in one piece (the figures'
/// "list").
pub fn list_bytes(estate: &Estate) -> usize {
    encode_entries(estate.entries.values()).0.len()
}

/// The encoded subscriptions `entries`, and the distinct over-privilege findings they name.
fn encode_entries<'a>(entries: impl Iterator<Item = &'a EstateEntry>) -> (String, Vec<OverPrivilegeDoc>) {
    let mut entries = entries.peekable();
    if entries.peek().is_none() {
        return (String::new(), Vec::new());
    }
    let mut kinds: Vec<OverPrivilegeDoc> = Vec::new();
    let rows: Vec<Row> = entries
        .map(|e| {
            let kind = e.over_privilege.as_ref().map(|o| {
                let doc = OverPrivilegeDoc {
                    extra_grants: o.extra_grants.clone(),
                    roles: o.roles.clone(),
                };
                let at = kinds.iter().position(|k| k == &doc).unwrap_or_else(|| {
                    kinds.push(doc);
                    kinds.len() - 1
                });
                // A group holds far fewer distinct findings than 65,536.
                u16::try_from(at).unwrap_or(u16::MAX)
            });
            Row(
                e.subscription,
                e.display_name.clone(),
                e.state.to_string(),
                e.account.clone(),
                e.lost,
                e.checked_at,
                e.missing_actions.iter().map(|a| Action::of(a)).collect(),
                kind,
            )
        })
        .collect();
    // Plain data into JSON cannot fail.
    let json = serde_json::to_vec(&rows).unwrap_or_default();
    (
        // Level 6: within 1 % of 9's size on these rows, several times faster on a large list.
        STANDARD.encode(miniz_oxide::deflate::compress_to_vec(&json, 6)),
        kinds,
    )
}

impl EstateDoc {
    /// The estate with its whole list inline.
    pub fn of(e: &Estate) -> Self {
        let (subscriptions, over_privilege_kinds) = encode_entries(e.entries.values());
        Self {
            management_group_id: e.group.clone(),
            default_subscription_id: e.default_subscription,
            submitted_at: e.submitted_at,
            surveyed_at: e.surveyed_at,
            subscriptions,
            over_privilege_kinds,
            over_privileged: BTreeMap::new(),
            pages: Vec::new(),
            survey: e.survey.as_ref().map(SurveyRunDoc::of),
        }
    }

    /// The estate as stored: its list inline while it takes at most [`INLINE_LIST`], else in
    /// pages (split by the first bits of the ids' hashes until each fits [`PAGE_LIMIT`]) that
    /// the document names. `None`: even 2^8 pages would not hold it.
    pub fn stored(e: &Estate) -> Option<(Self, Vec<Page>)> {
        let mut doc = Self::of(e);
        if doc.subscriptions.len() <= INLINE_LIST {
            return Some((doc, Vec::new()));
        }
        let inline = doc.subscriptions.len();
        doc.subscriptions.clear();
        doc.over_privilege_kinds.clear();
        // The first split worth trying: the fewest pages whose average fits a page's room, as
        // the inline list divides (hashes spread the subscriptions evenly); more if one does not.
        let mut first = 1;
        while first < MAX_PAGE_BITS && inline >> first > PAGE_LIMIT {
            first += 1;
        }
        for bits in first..=MAX_PAGE_BITS {
            let mut groups: BTreeMap<u8, Vec<&EstateEntry>> = BTreeMap::new();
            for entry in e.entries.values() {
                groups
                    .entry(prefix(&entry.subscription, bits))
                    .or_default()
                    .push(entry);
            }
            let pages: Vec<(Page, u32)> = groups
                .into_values()
                .map(|entries| {
                    let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
                    let (rows, kinds) = encode_entries(entries.into_iter());
                    // Plain data into JSON cannot fail.
                    let text = serde_json::to_string(&PageDoc { rows, kinds }).unwrap_or_default();
                    (
                        Page {
                            hash: page_hash(&text),
                            text,
                        },
                        count,
                    )
                })
                .collect();
            if pages.iter().all(|(p, _)| p.text.len() <= PAGE_LIMIT) {
                doc.pages = pages
                    .iter()
                    .map(|(p, count)| PageRef {
                        hash: p.hash.clone(),
                        count: *count,
                    })
                    .collect();
                return Some((doc, pages.into_iter().map(|(p, _)| p).collect()));
            }
        }
        None
    }

    /// The names (hashes) of the pages this document's list is in; none when it is inline.
    pub fn page_hashes(&self) -> impl Iterator<Item = &str> {
        self.pages.iter().map(|p| p.hash.as_str())
    }

    /// The estate, its list read inline or from `pages` (by hash; each checked against it).
    pub fn estate_with(mut self, pages: &BTreeMap<String, String>) -> Result<Estate, EstateDocError> {
        let mut estate = Estate::new(
            self.management_group_id.clone(),
            self.default_subscription_id,
            self.submitted_at,
        );
        estate.surveyed_at = self.surveyed_at;
        estate.survey = self.survey.take().map(SurveyRunDoc::run);
        let refs = std::mem::take(&mut self.pages);
        for page in &refs {
            let text = pages.get(&page.hash).ok_or(EstateDocError::PageMissing)?;
            if page_hash(text) != page.hash {
                return Err(EstateDocError::PageMissing);
            }
            let doc: PageDoc = serde_json::from_str(text).map_err(EstateDocError::Rows)?;
            self.add_rows(&mut estate, &doc.rows, &doc.kinds)?;
        }
        let (rows, kinds) = (
            std::mem::take(&mut self.subscriptions),
            std::mem::take(&mut self.over_privilege_kinds),
        );
        self.add_rows(&mut estate, &rows, &kinds)?;
        Ok(estate)
    }

    /// The estate of a document whose list is inline (a paged one: [`EstateDocError::PageMissing`]).
    pub fn estate(self) -> Result<Estate, EstateDocError> {
        self.estate_with(&BTreeMap::new())
    }

    /// The rows `encoded` (naming `kinds`) added to `estate`.
    fn add_rows(
        &mut self,
        estate: &mut Estate,
        encoded: &str,
        kinds: &[OverPrivilegeDoc],
    ) -> Result<(), EstateDocError> {
        if encoded.is_empty() {
            return Ok(());
        }
        let deflated = STANDARD
            .decode(encoded.as_bytes())
            .map_err(|_| EstateDocError::Encoding)?;
        let json = miniz_oxide::inflate::decompress_to_vec_with_limit(&deflated, 16 << 20)
            .map_err(|_| EstateDocError::Encoding)?;
        let rows: Vec<Row> = serde_json::from_slice(&json).map_err(EstateDocError::Rows)?;
        for Row(subscription, display_name, state, account, lost, checked_at, missing_actions, kind) in rows {
            let over = match kind {
                Some(k) => Some(
                    kinds
                        .get(usize::from(k))
                        .cloned()
                        .ok_or(EstateDocError::Encoding)?,
                ),
                None => self.over_privileged.remove(&subscription),
            };
            estate.entries.insert(
                subscription,
                EstateEntry {
                    subscription,
                    display_name,
                    state: SubscriptionState::parse(&state),
                    account,
                    missing_actions: missing_actions.into_iter().filter_map(Action::name).collect(),
                    over_privilege: over.map(|o| OverPrivilege {
                        extra_grants: o.extra_grants,
                        roles: o.roles,
                    }),
                    lost,
                    checked_at,
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::estate::{Sighting, Survey};

    #[test]
    fn a_document_written_before_the_kinds_reads_the_same() {
        // Rows of seven, and the findings by subscription beside them (what was stored before).
        let s1 = "00000000-0000-4000-8000-000000000001";
        let s2 = "00000000-0000-4000-8000-000000000002";
        let rows = serde_json::json!([
            [
                s1,
                "one",
                "Enabled",
                "act-00000001",
                false,
                "2026-11-26T10:05:00Z",
                [0, "Microsoft.Newer/thing/write"]
            ],
            [s2, "two", "Disabled", null, true, "2026-11-26T10:06:00Z", []]
        ]);
        let deflated = miniz_oxide::deflate::compress_to_vec(rows.to_string().as_bytes(), 9);
        let old = serde_json::json!({
            "managementGroupId": "g",
            "submittedAt": "2026-11-26T10:00:00Z",
            "subscriptions": STANDARD.encode(deflated),
            "overPrivileged": {s2: {"extraGrants": ["*"], "roles": ["Owner (built-in)"]}}
        });
        let estate = serde_json::from_value::<EstateDoc>(old)
            .unwrap()
            .estate()
            .unwrap();
        let one = &estate.entries[&SubscriptionId::parse(s1).unwrap()];
        assert_eq!(one.account.as_ref().map(AccountId::as_str), Some("act-00000001"));
        assert_eq!(
            one.missing_actions,
            [required_actions().next().unwrap(), "Microsoft.Newer/thing/write"]
        );
        assert!(one.over_privilege.is_none());
        let two = &estate.entries[&SubscriptionId::parse(s2).unwrap()];
        assert!(two.lost);
        assert_eq!(two.over_privilege.as_ref().unwrap().roles, ["Owner (built-in)"]);
        // Written again, in the new form: the same estate, no map by subscription.
        let text = serde_json::to_string(&EstateDoc::of(&estate)).unwrap();
        assert!(!text.contains("overPrivileged\""), "{text}");
        let back = serde_json::from_str::<EstateDoc>(&text)
            .unwrap()
            .estate()
            .unwrap();
        assert_eq!(back, estate);
    }

    #[test]
    fn a_survey_in_the_background_is_stored_as_it_stands() {
        use crate::domain::survey::{SurveyRun, SurveyState};
        let mut e = Estate::new(ManagementGroupId::parse("g").unwrap(), None, Utc::now());
        for state in [
            SurveyState::Surveying,
            SurveyState::Done,
            SurveyState::Failed {
                code: "azure-throttled".into(),
                retryable: true,
            },
        ] {
            let mut run = SurveyRun::start("r1".into(), 1_200, 500, Utc::now());
            run.merged = [0, 2].into();
            run.surveyed = 700;
            run.state = state;
            e.survey = Some(run);
            let text = serde_json::to_string(&EstateDoc::of(&e)).unwrap();
            let back = serde_json::from_str::<EstateDoc>(&text)
                .unwrap()
                .estate()
                .unwrap();
            assert_eq!(back, e, "{text}");
        }
    }

    #[test]
    fn missing_actions_round_trip_by_place_or_name_and_take_little_room() {
        let mut e = Estate::new(ManagementGroupId::parse("g").unwrap(), None, Utc::now());
        let every: Vec<String> = required_actions().map(str::to_owned).collect();
        let mut odd = every.clone();
        odd.push("Microsoft.Newer/thing/write".into());
        let survey = Survey {
            looked_at: None,
            checked_at: Utc::now(),
            found: (0..200u32)
                .map(|i| Sighting {
                    subscription: SubscriptionId::parse(&format!("00000000-0000-4000-8000-{i:012x}"))
                        .unwrap(),
                    display_name: format!("s{i}"),
                    state: SubscriptionState::Enabled,
                    missing_actions: if i == 0 { odd.clone() } else { every.clone() },
                    over_privilege: (i == 1).then(|| OverPrivilege {
                        extra_grants: vec!["*".into()],
                        roles: vec!["Owner (built-in)".into()],
                    }),
                })
                .collect(),
        };
        e.record(&survey, &AccountId::parse("act-00000001").unwrap());
        let doc = EstateDoc::of(&e);
        let back = serde_json::from_str::<EstateDoc>(&serde_json::to_string(&doc).unwrap())
            .unwrap()
            .estate()
            .unwrap();
        assert_eq!(back, e);
        // By place: far below the names' size.
        assert!(list_bytes(&e) < 200 * 40, "{}", list_bytes(&e));
    }
}
