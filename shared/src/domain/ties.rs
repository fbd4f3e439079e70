//! The organization's ties, held by the store (issue 27): what one connection of an organization
//! holds so that no other may — a Spot account's subscription (each account one subscription, each
//! subscription one account) and a management group (one estate per group).
//!
//! A tie is claimed *before* the connection that holds it is written, by compare-and-swap on the
//! document its key hashes to, so two parallel writers of one key cannot both win, whatever a
//! listing shows (ListSecrets "is eventually consistent", Secrets Manager API reference). A link
//! has two keys (its account and its subscription), claimed one after the other; a writer that
//! wins the first and loses the second gives the first back.
//!
//! The documents form a binary trie of secrets: the root (`+ties`) holds every key until it
//! would outgrow a secret, then it is *sealed* (its content frozen) and split into `+ties-0` and
//! `+ties-1` by the next bit of each key's hash, and so on. A reader walks from the root through
//! sealed documents to the leaf of its key; a child missing under a sealed parent (a split cut
//! short) is made again from the parent's frozen content, so no key is ever lost in a split.
//! An organization with few ties pays for one secret.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ids::{AccountId, ConnectionId, ManagementGroupId, OrgId, SubscriptionId};

const SCHEMA: u32 = 1;

/// The deepest a shard may be (2^24 leaves: far beyond any organization).
pub const MAX_DEPTH: usize = 24;

/// A shard's JSON up to this size is stored as it is (an organization with a few ties: readable
/// in the console); beyond, deflated and base64'd after [`DEFLATED`]. Its ids are random hex and
/// its holders repeat: a full shard stores in about 40 % of its JSON, so a secret holds about
/// 2.5 times the ties it would (the figures: `an_organizations_ties_cost…`).
const PLAIN_UP_TO: usize = 4 * 1024;
const DEFLATED: &str = "z1:";
/// The most a stored shard may inflate to (a shard is written within one secret's 64 KiB).
const MAX_INFLATED: usize = 4 << 20;

/// What a connection holds against every other connection of its organization.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tie {
    /// A Spot account tied to a subscription (an estate's link, or its default subscription).
    Link {
        account: AccountId,
        subscription: SubscriptionId,
    },
    /// A management group (an estate).
    Group(ManagementGroupId),
}

/// One key of a tie: what is unique across the organization.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TieKey {
    Account(AccountId),
    Subscription(SubscriptionId),
    Group(ManagementGroupId),
}

impl Tie {
    /// Its keys, in the order they are claimed.
    pub fn keys(&self) -> Vec<TieKey> {
        match self {
            Self::Link {
                account,
                subscription,
            } => vec![
                TieKey::Account(account.clone()),
                TieKey::Subscription(*subscription),
            ],
            Self::Group(g) => vec![TieKey::Group(g.clone())],
        }
    }
}

impl TieKey {
    fn text(&self) -> String {
        match self {
            Self::Account(a) => format!("a:{a}"),
            Self::Subscription(s) => format!("s:{s}"),
            Self::Group(g) => format!("g:{g}"),
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let (kind, value) = text.split_once(':')?;
        match kind {
            "a" => AccountId::parse(value).ok().map(Self::Account),
            "s" => SubscriptionId::parse(value).ok().map(Self::Subscription),
            "g" => ManagementGroupId::parse(value).ok().map(Self::Group),
            _ => None,
        }
    }

    /// Bit `i` of the key's hash: which child of a shard at depth `i` holds it.
    fn bit(&self, i: usize) -> bool {
        let hash = Sha256::digest(self.text().as_bytes());
        hash[i / 8] & (0x80 >> (i % 8)) != 0
    }
}

/// Where a shard sits in the trie: the bits of the hash its keys share ("" for the root).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardPath(String);

impl ShardPath {
    pub fn root() -> Self {
        Self(String::new())
    }

    /// The child of this shard that holds `key`; `None` beyond [`MAX_DEPTH`].
    pub fn towards(&self, key: &TieKey) -> Option<Self> {
        let depth = self.0.len();
        (depth < MAX_DEPTH).then(|| Self(format!("{}{}", self.0, u8::from(key.bit(depth)))))
    }

    pub fn children(&self) -> Option<[Self; 2]> {
        (self.0.len() < MAX_DEPTH).then(|| [Self(format!("{}0", self.0)), Self(format!("{}1", self.0))])
    }

    /// The suffix of the shard's name: "" for the root, `-0110` below it.
    pub fn suffix(&self) -> String {
        if self.0.is_empty() {
            String::new()
        } else {
            format!("-{}", self.0)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parse(text: &str) -> Option<Self> {
        (text.len() <= MAX_DEPTH && text.bytes().all(|b| b == b'0' || b == b'1'))
            .then(|| Self(text.to_owned()))
    }
}

/// A key's holder: the connection, the tie it holds, since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub tie: Tie,
    pub connection: ConnectionId,
    pub at: DateTime<Utc>,
    /// Claimed by a connection never linked yet (a wizard that entered its subscription, an
    /// estate's default before Connect Account): the very same tie claimed by another connection
    /// takes it over (the same account starting the wizard again); the holder claims it back,
    /// no longer pending, when it links ([`TieShard::claim`]).
    pub pending: bool,
}

/// What [`TieShard::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: taken (write the shard).
    Made,
    /// The connection holds this very tie already: nothing to write.
    Held,
    /// Another connection, or another tie of this connection, holds the key.
    Taken(Held),
}

/// One document of the trie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TieShard {
    pub org: OrgId,
    pub path: ShardPath,
    /// Split: its content is frozen and its keys live in its children.
    pub sealed: bool,
    pub held: BTreeMap<TieKey, Held>,
}

#[derive(Debug, thiserror::Error)]
pub enum TiesError {
    #[error("stored ties are not valid")]
    Invalid(#[source] serde_json::Error),
    #[error("stored ties have schema {0}, this code reads {SCHEMA}")]
    UnknownSchema(u32),
    #[error("stored ties are of another organization or shard")]
    Misplaced,
    #[error("stored ties hold a key that does not parse: {0}")]
    BadKey(String),
    #[error("stored ties are deflated and do not inflate")]
    Packed,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    schema: u32,
    org_id: OrgId,
    path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    sealed: bool,
    held: BTreeMap<String, HeldDoc>,
}

/// A holder, compact: the connection, when (Unix seconds), and the tie's other key when a link.
#[derive(Serialize, Deserialize)]
struct HeldDoc {
    c: ConnectionId,
    t: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<SubscriptionId>,
    /// Pending ([`Held::pending`]); absent when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    p: bool,
}

impl TieShard {
    pub fn new(org: OrgId, path: ShardPath) -> Self {
        Self {
            org,
            path,
            sealed: false,
            held: BTreeMap::new(),
        }
    }

    /// Takes `key` for `held` unless another holds it. The same link (one account, one
    /// subscription) held pending by another connection is taken over (a group never is); held pending by this one and claimed by it linked, it is
    /// made no longer pending (both [`Claim::Made`]: the shard is to be written).
    pub fn claim(&mut self, key: &TieKey, held: Held) -> Claim {
        match self.held.get(key) {
            Some(h)
                if h.connection == held.connection && h.tie == held.tie && (!h.pending || held.pending) =>
            {
                Claim::Held
            }
            Some(h) if h.tie == held.tie && h.pending && matches!(h.tie, Tie::Link { .. }) => {
                self.held.insert(key.clone(), held);
                Claim::Made
            }
            Some(h) => Claim::Taken(h.clone()),
            None => {
                self.held.insert(key.clone(), held);
                Claim::Made
            }
        }
    }

    /// Gives `key` back if `connection` holds it with `tie`; `true` when it did.
    pub fn release(&mut self, key: &TieKey, connection: &ConnectionId, tie: &Tie) -> bool {
        let ours = self
            .held
            .get(key)
            .is_some_and(|h| &h.connection == connection && &h.tie == tie);
        if ours {
            self.held.remove(key);
        }
        ours
    }

    /// The two children of this shard, each with the keys whose next bit is its own; `None` at
    /// [`MAX_DEPTH`].
    pub fn split(&self) -> Option<[Self; 2]> {
        let [zero, one] = self.path.children()?;
        let depth = self.path.as_str().len();
        let mut children = [
            Self::new(self.org.clone(), zero),
            Self::new(self.org.clone(), one),
        ];
        for (key, held) in &self.held {
            children[usize::from(key.bit(depth))]
                .held
                .insert(key.clone(), held.clone());
        }
        Some(children)
    }

    /// The shard as stored: its JSON, deflated beyond [`PLAIN_UP_TO`].
    pub fn encode(&self) -> String {
        let json = self.json();
        if json.len() <= PLAIN_UP_TO {
            return json;
        }
        use base64::Engine as _;
        let deflated = miniz_oxide::deflate::compress_to_vec(json.as_bytes(), 6);
        format!(
            "{DEFLATED}{}",
            base64::engine::general_purpose::STANDARD.encode(deflated)
        )
    }

    /// The shard's JSON (what [`Self::decode`] reads, deflated or not).
    fn json(&self) -> String {
        let held = self
            .held
            .iter()
            .map(|(key, h)| {
                let (a, s) = match (&h.tie, key) {
                    (Tie::Link { subscription, .. }, TieKey::Account(_)) => (None, Some(*subscription)),
                    (Tie::Link { account, .. }, TieKey::Subscription(_)) => (Some(account.clone()), None),
                    _ => (None, None),
                };
                let doc = HeldDoc {
                    c: h.connection,
                    t: h.at.timestamp(),
                    a,
                    s,
                    p: h.pending,
                };
                (key.text(), doc)
            })
            .collect();
        let doc = Doc {
            schema: SCHEMA,
            org_id: self.org.clone(),
            path: self.path.as_str().to_owned(),
            sealed: self.sealed,
            held,
        };
        // Plain data of our own types: serializing it cannot fail.
        serde_json::to_string(&doc).unwrap_or_default()
    }

    /// The shard of `org` at `path` from its stored text (as [`Self::encode`] wrote it, deflated
    /// or not; shards written before deflating read the same).
    pub fn decode(org: &OrgId, path: &ShardPath, text: &str) -> Result<Self, TiesError> {
        let inflated;
        let text = match text.strip_prefix(DEFLATED) {
            Some(packed) => {
                use base64::Engine as _;
                let deflated = base64::engine::general_purpose::STANDARD
                    .decode(packed)
                    .map_err(|_| TiesError::Packed)?;
                let json = miniz_oxide::inflate::decompress_to_vec_with_limit(&deflated, MAX_INFLATED)
                    .map_err(|_| TiesError::Packed)?;
                inflated = String::from_utf8(json).map_err(|_| TiesError::Packed)?;
                inflated.as_str()
            }
            None => text,
        };
        let doc: Doc = serde_json::from_str(text).map_err(TiesError::Invalid)?;
        if doc.schema != SCHEMA {
            return Err(TiesError::UnknownSchema(doc.schema));
        }
        if &doc.org_id != org || doc.path != path.as_str() {
            return Err(TiesError::Misplaced);
        }
        let mut held = BTreeMap::new();
        for (text, h) in doc.held {
            let key = TieKey::parse(&text).ok_or_else(|| TiesError::BadKey(text.clone()))?;
            let tie = match (&key, h.a, h.s) {
                (TieKey::Account(a), None, Some(s)) => Tie::Link {
                    account: a.clone(),
                    subscription: s,
                },
                (TieKey::Subscription(s), Some(a), None) => Tie::Link {
                    account: a,
                    subscription: *s,
                },
                (TieKey::Group(g), None, None) => Tie::Group(g.clone()),
                _ => return Err(TiesError::BadKey(text)),
            };
            let at = DateTime::from_timestamp(h.t, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
            held.insert(
                key,
                Held {
                    tie,
                    connection: h.c,
                    at,
                    pending: h.p,
                },
            );
        }
        Ok(Self {
            org: doc.org_id,
            path: path.clone(),
            sealed: doc.sealed,
            held,
        })
    }
}

impl TieShard {
    /// The bytes one key takes in [`Self::encode`] (its entry, without the comma between two).
    fn entry_len(key: &TieKey, held: &Held) -> usize {
        let (a, s) = match (&held.tie, key) {
            (Tie::Link { subscription, .. }, TieKey::Account(_)) => (None, Some(*subscription)),
            (Tie::Link { account, .. }, TieKey::Subscription(_)) => (Some(account.clone()), None),
            _ => (None, None),
        };
        let doc = HeldDoc {
            c: held.connection,
            t: held.at.timestamp(),
            a,
            s,
            p: held.pending,
        };
        // Plain data of our own types: serializing it cannot fail.
        let value = serde_json::to_string(&doc).unwrap_or_default();
        let name = serde_json::to_string(&key.text()).unwrap_or_default();
        name.len() + 1 + value.len()
    }
}

/// How many secrets an organization's ties take once `ties` (each with its holder) are claimed
/// one after the other, shards split at `limit` stored bytes as the app splits them (sealed ones
/// included): the figures of the cost table. A shard's JSON is summed entry by entry; it is
/// encoded (deflated) only as its JSON nears the size at which it would pass `limit`, halving the
/// distance each time, so a split may come a few entries later than the app's.
pub fn secrets_for(org: &OrgId, ties: impl IntoIterator<Item = Held>, limit: usize) -> usize {
    struct Sized {
        shard: TieShard,
        /// Its JSON's length.
        len: usize,
        /// The JSON length at which it is encoded next.
        check_at: usize,
    }
    let sized = |shard: TieShard| {
        let len = shard.json().len();
        Sized {
            shard,
            len,
            check_at: limit,
        }
    };
    let mut trie: BTreeMap<ShardPath, Sized> = BTreeMap::new();
    trie.insert(
        ShardPath::root(),
        sized(TieShard::new(org.clone(), ShardPath::root())),
    );
    for held in ties {
        for key in held.tie.keys() {
            let mut path = ShardPath::root();
            while let Some(next) = trie
                .get(&path)
                .filter(|s| s.shard.sealed)
                .and_then(|_| path.towards(&key))
            {
                path = next;
            }
            let Some(s) = trie.get_mut(&path) else {
                continue;
            };
            if s.shard.claim(&key, held.clone()) != Claim::Made {
                continue;
            }
            s.len += TieShard::entry_len(&key, &held) + usize::from(s.shard.held.len() > 1);
            if s.len <= s.check_at {
                continue;
            }
            let stored = s.shard.encode().len();
            if stored <= limit {
                // Where the stored size would reach the limit at this ratio: half way there.
                let full = s.len.saturating_mul(limit) / stored.max(1);
                s.check_at = s.len + (full.saturating_sub(s.len) / 2).max(256);
                continue;
            }
            s.shard.sealed = true;
            if let Some(children) = s.shard.split() {
                for child in children {
                    trie.insert(child.path.clone(), sized(child));
                }
            }
        }
    }
    trie.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u32) -> AccountId {
        AccountId::parse(&format!("act-{n:08x}")).unwrap()
    }

    fn sub(n: u128) -> SubscriptionId {
        SubscriptionId::parse(&uuid::Uuid::from_u128(n).to_string()).unwrap()
    }

    fn link(a: u32, s: u128) -> Tie {
        Tie::Link {
            account: account(a),
            subscription: sub(s),
        }
    }

    fn held(tie: Tie, c: &ConnectionId) -> Held {
        Held {
            tie,
            connection: *c,
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            pending: false,
        }
    }

    #[test]
    fn a_key_is_held_by_one_tie_of_one_connection() {
        let (c1, c2) = (ConnectionId::new_random(), ConnectionId::new_random());
        let mut shard = TieShard::new(OrgId::parse("org-1").unwrap(), ShardPath::root());
        let key = TieKey::Account(account(1));
        assert_eq!(shard.claim(&key, held(link(1, 1), &c1)), Claim::Made);
        assert_eq!(shard.claim(&key, held(link(1, 1), &c1)), Claim::Held);
        assert!(matches!(
            shard.claim(&key, held(link(1, 2), &c1)),
            Claim::Taken(_)
        ));
        assert!(matches!(
            shard.claim(&key, held(link(1, 1), &c2)),
            Claim::Taken(_)
        ));
        assert!(!shard.release(&key, &c2, &link(1, 1)), "not c2's to give back");
        assert!(shard.release(&key, &c1, &link(1, 1)));
        assert_eq!(shard.claim(&key, held(link(1, 2), &c2)), Claim::Made);
    }

    #[test]
    fn a_pending_link_is_taken_over_by_the_same_link_and_a_pending_group_never() {
        let (c1, c2, c3) = (
            ConnectionId::new_random(),
            ConnectionId::new_random(),
            ConnectionId::new_random(),
        );
        let pending = |tie, c| Held {
            pending: true,
            ..held(tie, c)
        };
        let mut shard = TieShard::new(OrgId::parse("org-1").unwrap(), ShardPath::root());
        let key = TieKey::Account(account(1));
        assert_eq!(shard.claim(&key, pending(link(1, 1), &c1)), Claim::Made);
        // Another link of the account is refused, pending or not.
        assert!(matches!(
            shard.claim(&key, held(link(1, 2), &c2)),
            Claim::Taken(_)
        ));
        // The very same link from another connection (the wizard started again) takes it over.
        assert_eq!(shard.claim(&key, pending(link(1, 1), &c2)), Claim::Made);
        assert_eq!(shard.held[&key].connection, c2);
        // The first links: it claims back, no longer pending; then nobody takes it over.
        assert_eq!(shard.claim(&key, held(link(1, 1), &c1)), Claim::Made);
        assert!(!shard.held[&key].pending);
        assert_eq!(shard.claim(&key, held(link(1, 1), &c1)), Claim::Held);
        assert!(matches!(
            shard.claim(&key, pending(link(1, 1), &c2)),
            Claim::Taken(_)
        ));
        assert!(matches!(
            shard.claim(&key, held(link(1, 1), &c3)),
            Claim::Taken(_)
        ));
        // Held pending by itself, a pending claim changes nothing.
        let group = TieKey::Group(ManagementGroupId::parse("g1").unwrap());
        let tie = Tie::Group(ManagementGroupId::parse("g1").unwrap());
        assert_eq!(shard.claim(&group, pending(tie.clone(), &c1)), Claim::Made);
        assert_eq!(shard.claim(&group, pending(tie.clone(), &c1)), Claim::Held);
        // A group is one estate's, pending or not.
        assert!(matches!(shard.claim(&group, pending(tie, &c2)), Claim::Taken(_)));
        // Stored and read back with the mark.
        let org = OrgId::parse("org-1").unwrap();
        let read = TieShard::decode(&org, &ShardPath::root(), &shard.encode()).unwrap();
        assert_eq!(read, shard);
        assert!(read.held[&group].pending);
    }

    /// The trie's secrets for `links` estate links of random subscriptions, at the store's bound.
    fn secrets_for_links(links: u32) -> usize {
        let org = OrgId::parse("org-1").unwrap();
        let c = ConnectionId::new_random();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            rng
        };
        // Random accounts and subscriptions (as Spot's and Azure's are: random ids deflate least),
        // claimed over a day.
        let ties = (0..links).map(|_| {
            let tie = Tie::Link {
                account: account((next() >> 32) as u32),
                subscription: sub(u128::from(next()) << 64 | u128::from(next())),
            };
            Held {
                at: DateTime::from_timestamp(1_700_000_000 + (next() % 86_400) as i64, 0).unwrap(),
                ..held(tie, &c)
            }
        });
        super::secrets_for(&org, ties.collect::<Vec<_>>(), 60 * 1024)
    }

    #[test]
    fn the_sizes_summed_are_the_encoded_sizes() {
        let org = OrgId::parse("org-1").unwrap();
        let c = ConnectionId::new_random();
        let mut shard = TieShard::new(org, ShardPath::root());
        let mut len = shard.json().len();
        for n in 0..20u32 {
            let tie = link(n, u128::from(n) * 7_919);
            for key in tie.keys() {
                let h = held(tie.clone(), &c);
                shard.claim(&key, h.clone());
                len += TieShard::entry_len(&key, &h) + usize::from(shard.held.len() > 1);
                assert_eq!(len, shard.json().len());
            }
        }
    }

    #[test]
    fn an_organizations_ties_cost_a_secret_per_few_hundred_links() {
        // Printed with --nocapture: the figures of docs/state.md.
        for (links, most) in [(10, 1), (1_000, 5), (10_000, 48), (20_000, 96)] {
            let secrets = secrets_for_links(links);
            println!("{links} links: {secrets} secrets");
            assert!(secrets <= most, "{links} links took {secrets} secrets");
        }
    }

    #[test]
    fn a_shard_round_trips_and_splits_by_the_next_bit_keeping_every_key() {
        let org = OrgId::parse("org-1").unwrap();
        let c = ConnectionId::new_random();
        let mut shard = TieShard::new(org.clone(), ShardPath::root());
        for n in 0..64u32 {
            let tie = link(n, u128::from(n));
            for key in tie.keys() {
                shard.claim(&key, held(tie.clone(), &c));
            }
        }
        let g = ManagementGroupId::parse("contoso-prod").unwrap();
        shard.claim(&TieKey::Group(g.clone()), held(Tie::Group(g), &c));
        // Stored deflated (its JSON is beyond the plain size), read back whole; a shard written
        // before deflating (plain JSON of any size) reads the same.
        let stored = shard.encode();
        assert!(
            stored.starts_with(DEFLATED) && stored.len() * 2 < shard.json().len(),
            "{}",
            stored.len()
        );
        let back = TieShard::decode(&org, &ShardPath::root(), &stored).unwrap();
        assert_eq!(back, shard);
        assert_eq!(
            TieShard::decode(&org, &ShardPath::root(), &shard.json()).unwrap(),
            shard
        );
        assert!(matches!(
            TieShard::decode(&org, &ShardPath::root(), "z1:not base64!"),
            Err(TiesError::Packed)
        ));
        assert!(TieShard::decode(&org, &ShardPath::parse("0").unwrap(), &shard.encode()).is_err());

        let [zero, one] = shard.split().unwrap();
        assert_eq!(zero.held.len() + one.held.len(), shard.held.len());
        assert!(!zero.held.is_empty() && !one.held.is_empty());
        for child in [&zero, &one] {
            for key in child.held.keys() {
                assert_eq!(ShardPath::root().towards(key).as_ref(), Some(&child.path));
            }
        }
        let [zz, _] = zero.split().unwrap();
        assert_eq!(zz.path.suffix(), "-00");
    }
}
