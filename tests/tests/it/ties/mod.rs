//! The organization's ties held by the store (issue 27), on both stores, through the real router
//! and the Azure emulator: one account one subscription, one group one estate and a default
//! subscription are claimed by compare-and-swap before the connection is written, so parallel
//! writers cannot both win — with Secrets Manager's listing made to lag (moto's is immediate: a
//! proxy answers every `ListSecrets` with an empty page, as a listing that has not yet seen the
//! last minutes' changes would); a write that dies between the claim and the connection leaves
//! no lost slot and no double tie; the shards split when they outgrow a secret.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use chrono::Utc;
use integration_tests::fault::{Fault, FaultProxy};
use integration_tests::{Reply, SECRET, STORES, StoreKind, send};
use serde_json::{Value, json};
use shared::app::App;
use shared::app::quota::Quotas;
use shared::domain::role::required_actions;
use shared::domain::ties::{Held, ShardPath, Tie, TieKey, TieShard};
use shared::domain::{AccountId, ConnectionId, OrgId};
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};
use shared::events::MemorySink;
use shared::store::secrets_manager::SecretsManagerStore;
use shared::store::{ConnectionStore, StoreError, WriteToken};

mod single;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SPOT: &str = "11111111-2222-4333-8444-555555555555";
const ORG: &str = "org-ties";
const GROUPS: usize = 5;
const PER_GROUP: usize = 10;

/// Subscription `n` of group `g`.
fn sub(g: usize, n: usize) -> String {
    format!("00000000-0000-4000-8000-{:06x}{:06x}", g, n)
}

/// `all` holds the groups `g0`…`g4` of ten subscriptions each; Spot's app holds its role (and
/// discovery's two actions) at `all`.
fn world() -> azure_emulator::World {
    use azure_emulator::{App as AzApp, Grant, ManagementGroup, Password, Subscription, Tenant, World};
    let mut w = World::default();
    let mut children = Vec::new();
    for g in 0..GROUPS {
        let subs: Vec<String> = (0..PER_GROUP).map(|n| sub(g, n)).collect();
        for s in &subs {
            w.subscriptions.push(Subscription {
                id: s.clone(),
                tenant_id: TENANT.into(),
                display_name: format!("Sub {s}"),
                state: "Enabled".into(),
                ..Subscription::default()
            });
        }
        w.management_groups.push(ManagementGroup {
            name: format!("g{g}"),
            tenant_id: TENANT.into(),
            display_name: format!("Group {g}"),
            subscriptions: subs,
            ..ManagementGroup::default()
        });
        children.push(format!("g{g}"));
    }
    w.management_groups.push(ManagementGroup {
        name: "all".into(),
        tenant_id: TENANT.into(),
        display_name: "All".into(),
        children,
        grants: vec![Grant {
            app_id: SPOT.into(),
            actions: required_actions()
                .chain(shared::domain::estate::GROUP_ACTIONS)
                .map(str::to_owned)
                .collect(),
            ..Grant::default()
        }],
        ..ManagementGroup::default()
    });
    w.tenants.push(Tenant {
        id: TENANT.into(),
        domains: vec!["contoso.onmicrosoft.com".into()],
        apps: vec![AzApp {
            app_id: SPOT.into(),
            passwords: vec![Password {
                secret_text: SECRET.into(),
                ..Password::default()
            }],
            ..AzApp::default()
        }],
        ..Tenant::default()
    });
    w
}

struct Rig {
    router: Router,
    store: Arc<dyn ConnectionStore>,
    /// In front of moto (Secrets Manager only): every listing answered empty.
    proxy: Option<FaultProxy>,
    _emulator: azure_emulator::Emulator,
}

/// The store of `kind`; Secrets Manager through a proxy whose listings lag (empty).
async fn lagging_store(kind: StoreKind) -> (Arc<dyn ConnectionStore>, Option<FaultProxy>) {
    match kind {
        StoreKind::Embedded => (integration_tests::store(kind).await, None),
        StoreKind::SecretsManager => {
            let (store, proxy, _) = integration_tests::lagging_sm_store().await;
            (store, Some(proxy))
        }
    }
}

impl Rig {
    async fn new(kind: StoreKind, quotas: Quotas) -> Self {
        let (emulator, azure) = integration_tests::emulator(world(), Duration::from_secs(5)).await;
        let (store, proxy) = lagging_store(kind).await;
        let app = App::new(store.clone(), Arc::new(MemorySink::default()))
            .with_validator(Arc::new(azure.validator().unwrap()))
            .with_quotas(quotas);
        Self {
            router: router(app, OrgSource::local_header(), &Function::ALL),
            store,
            proxy,
            _emulator: emulator,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        call(&self.router, method, path, body).await
    }

    /// A connection of `account` with its app registration and secret entered.
    async fn entered(&self, account: &str) -> String {
        let r = self
            .call("POST", "/connections", Some(json!({"accountId": account})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.body["connectionId"].as_str().unwrap().to_owned();
        for (step, body) in [
            ("/app-registration", json!({"tenantId": TENANT, "clientId": SPOT})),
            ("/client-secret", json!({"clientSecret": SECRET})),
        ] {
            let r = self
                .call("PUT", &format!("/connections/{id}{step}"), Some(body))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{step}: {:?}", r.body);
        }
        id
    }

    /// A connected estate of `account` over `scope` (`{"managementGroupId": …}`).
    async fn estate(&self, account: &str, scope: Value) -> String {
        let id = self.entered(account).await;
        let r = self
            .call("PUT", &format!("/connections/{id}/scope"), Some(scope))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let r = self
            .call("POST", &format!("/connections/{id}/connect"), None)
            .await;
        assert_eq!(r.body["status"], "connected", "{:?}", r.body);
        id
    }

    /// Every linked subscription of the estate `id`: (subscription, account).
    async fn links(&self, id: &str) -> Vec<(String, String)> {
        let r = self
            .call(
                "GET",
                &format!("/connections/{id}/subscriptions?status=linked&limit=500"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["subscriptionId"].as_str().unwrap().to_owned(),
                    i["accountId"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

async fn call(router: &Router, method: &str, path: &str, body: Option<Value>) -> Reply {
    let headers: &[(&str, &str)] = if body.is_some() {
        &[("content-type", "application/json")]
    } else {
        &[]
    };
    send(
        router,
        method,
        path,
        Some(ORG),
        headers,
        body.map(|b| b.to_string()),
    )
    .await
}

/// The answers of `requests` sent all at once; each sent again, as a client would, while it is
/// answered 409 `write-conflict` (retryable: it lost too many races on one document).
async fn burst(router: &Router, requests: Vec<(String, Value)>) -> Vec<Reply> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (path, body)) in requests.into_iter().enumerate() {
        let router = router.clone();
        set.spawn(async move {
            for _ in 0..10 {
                let r = call(&router, "PUT", &path, Some(body.clone())).await;
                if r.body["code"] != "write-conflict" {
                    return (i, r);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (i, call(&router, "PUT", &path, Some(body)).await)
        });
    }
    let mut replies: Vec<(usize, Reply)> = set.join_all().await;
    replies.sort_by_key(|(i, _)| *i);
    replies.into_iter().map(|(_, r)| r).collect()
}

fn codes(replies: &[Reply]) -> Vec<(u16, String)> {
    replies
        .iter()
        .map(|r| {
            (
                r.status.as_u16(),
                r.body["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_links_of_one_account_in_five_estates_tie_exactly_one() {
    for kind in STORES {
        let rig = Rig::new(kind, Quotas::default()).await;
        let mut estates = Vec::new();
        for g in 0..GROUPS {
            let own = format!("act-0000f00{g}");
            estates.push(
                rig.estate(&own, json!({"managementGroupId": format!("g{g}")}))
                    .await,
            );
        }
        let account = "act-0000abcd";
        let mut requests = Vec::new();
        for (g, id) in estates.iter().enumerate() {
            for n in 0..PER_GROUP {
                requests.push((
                    format!("/connections/{id}/subscriptions/{}", sub(g, n)),
                    json!({"accountId": account}),
                ));
            }
        }
        let replies = burst(&rig.router, requests).await;
        let answered = codes(&replies);
        let won = answered.iter().filter(|(s, _)| *s == 200).count();
        assert_eq!(won, 1, "{kind:?}: {answered:?}");
        assert!(
            answered
                .iter()
                .all(|(s, c)| *s == 200 || (*s == 409 && c == "account-already-linked")),
            "{kind:?}: {answered:?}"
        );
        // Stored: the account holds exactly one subscription across the five estates.
        let mut ties = Vec::new();
        for id in &estates {
            ties.extend(rig.links(id).await.into_iter().filter(|(_, a)| a == account));
        }
        assert_eq!(ties.len(), 1, "{kind:?}: {ties:?}");
        // Spot's credentials API answers from the ties: that very subscription.
        let r = rig
            .call(
                "GET",
                &format!("/azure/setup/credentials?accountId={account}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        assert_eq!(
            r.body["response"]["items"][0]["subscriptionId"],
            ties[0].0.as_str()
        );
        if let Some(proxy) = &rig.proxy {
            assert!(proxy.requests() > 0, "the store went through the lagging proxy");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_group_is_one_estate_whatever_the_race_and_given_back_on_delete() {
    for kind in STORES {
        let rig = Rig::new(kind, Quotas::default()).await;
        let mut ids = Vec::new();
        for n in 0..10 {
            ids.push(rig.entered(&format!("act-0000e1{n:02}")).await);
        }
        let requests = ids
            .iter()
            .map(|id| {
                (
                    format!("/connections/{id}/scope"),
                    json!({"managementGroupId": "g3"}),
                )
            })
            .collect();
        let answered = codes(&burst(&rig.router, requests).await);
        let winners: Vec<usize> = (0..ids.len()).filter(|i| answered[*i].0 == 200).collect();
        assert_eq!(winners.len(), 1, "{kind:?}: {answered:?}");
        assert!(
            answered
                .iter()
                .all(|(s, c)| *s == 200 || (*s == 409 && c == "management-group-already-connected")),
            "{kind:?}: {answered:?}"
        );
        let winner = &ids[winners[0]];
        let loser = ids.iter().find(|id| *id != winner).unwrap();
        let view = rig.call("GET", &format!("/connections/{loser}"), None).await;
        assert!(view.body.get("estate").is_none(), "{kind:?}: {:?}", view.body);
        // Deleted, the winner gives the group back: a loser takes it.
        let r = rig.call("DELETE", &format!("/connections/{winner}"), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{loser}/scope"),
                Some(json!({"managementGroupId": "g3"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
    }
}

#[tokio::test]
async fn a_default_subscription_tied_elsewhere_is_refused_at_scope_and_never_auto_linked() {
    for kind in STORES {
        let rig = Rig::new(kind, Quotas::default()).await;
        let first = rig
            .estate("act-0000d001", json!({"managementGroupId": "g0"}))
            .await;
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{first}/subscriptions/{}", sub(0, 1)),
                Some(json!({"accountId": "act-0000d0aa"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

        // `all` overlaps `g0`: its default may not be a subscription tied in the first estate…
        let second = rig.entered("act-0000d002").await;
        let scope = |default: &str| json!({"managementGroupId": "all", "defaultSubscriptionId": default});
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{second}/scope"),
                Some(scope(&sub(0, 1))),
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::CONFLICT, Some("subscription-already-linked")),
            "{kind:?}: {:?}",
            r.body
        );
        let view = rig.call("GET", &format!("/connections/{second}"), None).await;
        assert!(view.body.get("estate").is_none(), "{kind:?}: {:?}", view.body);
        // …nor be taken by an account that holds another.
        let third = rig.entered("act-0000d0aa").await;
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{third}/scope"),
                Some(json!({"managementGroupId": "g1", "defaultSubscriptionId": sub(1, 0)})),
            )
            .await;
        assert_eq!(r.body["code"], "account-already-linked", "{kind:?}: {:?}", r.body);

        // A free default is held from `PUT …/scope` on: linked at Connect, and no other estate
        // may link it meanwhile.
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{second}/scope"),
                Some(scope(&sub(0, 2))),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{first}/subscriptions/{}", sub(0, 2)),
                Some(json!({"accountId": "act-0000d0bb"})),
            )
            .await;
        assert_eq!(
            r.body["code"], "subscription-already-linked",
            "{kind:?}: {:?}",
            r.body
        );
        let r = rig
            .call("POST", &format!("/connections/{second}/connect"), None)
            .await;
        assert_eq!(r.body["status"], "connected", "{kind:?}: {:?}", r.body);
        assert_eq!(
            rig.links(&second).await,
            [(sub(0, 2), "act-0000d002".to_owned())],
            "{kind:?}"
        );
        // The first estate never tied it: its subscription (0, 1) is its only link.
        assert_eq!(
            rig.links(&first).await,
            [(sub(0, 1), "act-0000d0aa".to_owned())],
            "{kind:?}"
        );
        // A default replaced before Connect is given back: free to link elsewhere; the new one
        // is held.
        let fourth = rig.entered("act-0000d004").await;
        for n in [0, 1] {
            let r = rig
                .call(
                    "PUT",
                    &format!("/connections/{fourth}/scope"),
                    Some(json!({"managementGroupId": "g2", "defaultSubscriptionId": sub(2, n)})),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        }
        let path = |s: String| format!("/connections/{second}/subscriptions/{s}");
        let r = rig
            .call(
                "PUT",
                &path(sub(2, 0)),
                Some(json!({"accountId": "act-0000d0cc"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        let r = rig
            .call(
                "PUT",
                &path(sub(2, 1)),
                Some(json!({"accountId": "act-0000d0dd"})),
            )
            .await;
        assert_eq!(
            r.body["code"], "subscription-already-linked",
            "{kind:?}: {:?}",
            r.body
        );
    }
}

#[tokio::test]
async fn a_write_that_dies_between_the_claim_and_the_connection_leaves_no_lost_slot_and_no_double_tie() {
    // Longer than the dying write takes to give up (its resets retried with backoff).
    let grace = Duration::from_secs(8);
    let quotas = Quotas {
        reservation_grace: grace,
        ..Quotas::default()
    };
    let (emulator, azure) = integration_tests::emulator(world(), Duration::from_secs(5)).await;
    let proxy = FaultProxy::start(&integration_tests::aws_endpoint()).await;
    let sdk = integration_tests::sdk_config().await;
    let through = aws_sdk_secretsmanager::config::Builder::from(&sdk)
        .endpoint_url(proxy.url())
        .build();
    let store: Arc<dyn ConnectionStore> = Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::from_conf(through),
        integration_tests::unique_prefix(),
        None,
    ));
    let app = App::new(store.clone(), Arc::new(MemorySink::default()))
        .with_validator(Arc::new(azure.validator().unwrap()))
        .with_quotas(quotas);
    let rig = Rig {
        router: router(app, OrgSource::local_header(), &Function::ALL),
        store,
        proxy: Some(proxy.clone()),
        _emulator: emulator,
    };
    let e0 = rig
        .estate("act-0000c000", json!({"managementGroupId": "g0"}))
        .await;
    let e1 = rig
        .estate("act-0000c001", json!({"managementGroupId": "g1"}))
        .await;
    let link = |id: &str, s: String, account: &str, key: &str| {
        let path = format!("/connections/{id}/subscriptions/{s}");
        let body = json!({"accountId": account}).to_string();
        let key = key.to_owned();
        let router = rig.router.clone();
        async move {
            send(
                &router,
                "PUT",
                &path,
                Some(ORG),
                &[("content-type", "application/json"), ("idempotency-key", &key)],
                Some(body),
            )
            .await
        }
    };

    // The link claims its account and its subscription (two writes of the ties), then its
    // connection write dies: every try of it reset before it arrives.
    proxy.fault_after("secretsmanager.PutSecretValue", 2, Fault::Reset, 20);
    let dying = std::time::Instant::now();
    let r = link(&e0, sub(0, 0), "act-0000cafe", "dies").await;
    proxy.heal();
    assert!(
        dying.elapsed() < grace / 2,
        "the write took {:?} to die",
        dying.elapsed()
    );
    assert!(r.status.is_server_error(), "{:?} {:?}", r.status, r.body);
    assert!(rig.links(&e0).await.is_empty(), "the connection was not written");

    // Within the grace the claim stands (its writer may still be writing)…
    let r = link(&e1, sub(1, 0), "act-0000cafe", "other-1").await;
    assert_eq!(r.body["code"], "account-already-linked", "{:?}", r.body);
    // …after it, the claim its connection does not hold is settled: no slot lost.
    tokio::time::sleep(grace.saturating_sub(dying.elapsed()) + Duration::from_millis(1200)).await;
    let r = link(&e1, sub(1, 0), "act-0000cafe", "other-2").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = link(&e0, sub(0, 0), "act-0000beef", "other-3").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the subscription's claim too: {:?}",
        r.body
    );
    // The dead request retried: the account is another's now; no double tie.
    let r = link(&e0, sub(0, 1), "act-0000cafe", "dies").await;
    assert_eq!(r.body["code"], "account-already-linked", "{:?}", r.body);
    let mut all = rig.links(&e0).await;
    all.extend(rig.links(&e1).await);
    all.sort();
    assert_eq!(
        all,
        [
            (sub(0, 0), "act-0000beef".to_owned()),
            (sub(1, 0), "act-0000cafe".to_owned())
        ]
    );
}

#[tokio::test]
async fn ties_shards_are_written_by_compare_and_swap_and_split_keeping_every_key() {
    for kind in STORES {
        let s = integration_tests::store(kind).await;
        let org = OrgId::parse("org-ties-store").unwrap();
        let root = ShardPath::root();
        assert!(s.load_ties(&org, &root).await.unwrap().is_none(), "{kind:?}");
        let mut first = TieShard::new(org.clone(), root.clone());
        let c = ConnectionId::new_random();
        let account = AccountId::parse("act-00001234").unwrap();
        let subscription = shared::domain::SubscriptionId::parse(&sub(0, 0)).unwrap();
        let tie = Tie::Link {
            account: account.clone(),
            subscription,
        };
        first.held.insert(
            TieKey::Account(account),
            Held {
                tie: tie.clone(),
                connection: c,
                at: Utc::now(),
                // Stored and read back as it was (a pending claim may be taken over).
                pending: true,
            },
        );
        // A first write, and a second first write that loses.
        s.write_ties(None, &first, &WriteToken::derive("t1", None, 0))
            .await
            .unwrap();
        let again = s
            .write_ties(None, &first, &WriteToken::derive("t2", None, 0))
            .await;
        assert!(matches!(again, Err(StoreError::Conflict)), "{kind:?}: {again:?}");
        let read = s.load_ties(&org, &root).await.unwrap().unwrap();
        let mut sealed = read.shard.clone();
        sealed.sealed = true;
        s.write_ties(
            Some(&read),
            &sealed,
            &WriteToken::derive("t3", Some(&read.version), 0),
        )
        .await
        .unwrap();
        let stale = s
            .write_ties(
                Some(&read),
                &first,
                &WriteToken::derive("t4", Some(&read.version), 0),
            )
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict)), "{kind:?}: {stale:?}");
        assert!(s.load_ties(&org, &root).await.unwrap().unwrap().shard.sealed);
        // A child is a document of its own.
        let child = ShardPath::parse("1").unwrap();
        assert!(s.load_ties(&org, &child).await.unwrap().is_none(), "{kind:?}");
        // A shard of many ties is stored deflated, within a secret, and read back whole.
        let mut full = TieShard::new(org.clone(), child.clone());
        for n in 0..1_000u32 {
            let account = AccountId::parse(&format!("act-{:08x}", n.wrapping_mul(2_654_435_761))).unwrap();
            let subscription =
                shared::domain::SubscriptionId::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
            full.held.insert(
                TieKey::Account(account.clone()),
                Held {
                    tie: Tie::Link {
                        account,
                        subscription,
                    },
                    connection: c,
                    at: Utc::now(),
                    pending: false,
                },
            );
        }
        let stored = full.encode();
        assert!(
            stored.starts_with("z1:") && stored.len() < 60 * 1024,
            "{kind:?}: {}",
            stored.len()
        );
        s.write_ties(None, &full, &WriteToken::derive("t5", None, 0))
            .await
            .unwrap();
        let read = s.load_ties(&org, &child).await.unwrap().unwrap();
        assert_eq!(read.shard.held.len(), 1_000, "{kind:?}");
        for (key, held) in &full.held {
            let back = &read.shard.held[key];
            assert_eq!(
                (&back.tie, back.connection),
                (&held.tie, held.connection),
                "{kind:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ties_outgrowing_a_shard_split_and_every_rule_still_holds() {
    for kind in STORES {
        // Shards of 2 KiB: a dozen ties each, so fifty links split the trie a few levels deep.
        let quotas = Quotas {
            ties_shard_bytes: 2048,
            ..Quotas::default()
        };
        let rig = Rig::new(kind, quotas).await;
        let mut estates = Vec::new();
        for g in 0..GROUPS {
            estates.push(
                rig.estate(
                    &format!("act-0000b00{g}"),
                    json!({"managementGroupId": format!("g{g}")}),
                )
                .await,
            );
        }
        // Every subscription but the last of each group linked to an account of its own, in
        // parallel.
        let account = |g: usize, n: usize| format!("act-0000{g:02x}{n:02x}");
        let free = PER_GROUP - 1;
        let mut requests = Vec::new();
        for (g, id) in estates.iter().enumerate() {
            for n in 0..free {
                requests.push((
                    format!("/connections/{id}/subscriptions/{}", sub(g, n)),
                    json!({"accountId": account(g, n)}),
                ));
            }
        }
        let answered = codes(&burst(&rig.router, requests).await);
        assert!(answered.iter().all(|(s, _)| *s == 200), "{kind:?}: {answered:?}");
        // The root is sealed: the ties live below it.
        let org = OrgId::parse(ORG).unwrap();
        let root = rig
            .store
            .load_ties(&org, &ShardPath::root())
            .await
            .unwrap()
            .unwrap();
        assert!(
            root.shard.sealed,
            "{kind:?}: {} keys in the root",
            root.shard.held.len()
        );
        // Every rule still holds across the shards: each account, each subscription, each group.
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{}/subscriptions/{}", estates[1], sub(1, 0)),
                Some(json!({"accountId": "act-0000ffff"})),
            )
            .await;
        assert_eq!(r.body["code"], "subscription-already-linked", "{kind:?}");
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{}/subscriptions/{}", estates[1], sub(1, free)),
                Some(json!({"accountId": account(3, 3)})),
            )
            .await;
        assert_eq!(r.body["code"], "account-already-linked", "{kind:?}");
        let other = rig.entered("act-0000fffe").await;
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{other}/scope"),
                Some(json!({"managementGroupId": "g4"})),
            )
            .await;
        assert_eq!(r.body["code"], "management-group-already-connected", "{kind:?}");
        for (g, n) in [(0, 0), (2, 7), (4, 8)] {
            let r = rig
                .call(
                    "GET",
                    &format!("/azure/setup/credentials?accountId={}", account(g, n)),
                    None,
                )
                .await;
            assert_eq!(
                r.body["response"]["items"][0]["subscriptionId"],
                sub(g, n).as_str()
            );
        }
        // A deleted estate gives back every tie, whichever shard holds it.
        let r = rig
            .call("DELETE", &format!("/connections/{}", estates[2]), None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        for n in 0..free {
            let r = rig
                .call(
                    "GET",
                    &format!("/azure/setup/credentials?accountId={}", account(2, n)),
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{kind:?}: {:?}", r.body);
        }
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{}/subscriptions/{}", estates[1], sub(1, free)),
                Some(json!({"accountId": account(2, 5)})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{other}/scope"),
                Some(json!({"managementGroupId": "g2"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
    }
}
