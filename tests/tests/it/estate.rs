//! An estate (issue 18), on both stores, through the real router and the Azure emulator over real
//! HTTP: a management-group connection walks to `connected` with its subscriptions listed (paged)
//! and tied to accounts one to one; a subscription added to the group later is discovered by the
//! next health pass (announced once), one moved out becomes `lost`, a reduced role lists exactly
//! the missing actions on each subscription, and a pass that finds nothing new writes nothing.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use chrono::Utc;
use integration_tests::{Reply, SECRET, STORES, StoreKind, send};
use serde_json::{Value, json};
use shared::app::{App, HealthSchedule, Window};
use shared::domain::estate::GROUP_ACTIONS;
use shared::domain::role::required_actions;
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};
use shared::events::MemorySink;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SPOT: &str = "11111111-2222-4333-8444-555555555555";
const S1: &str = "00000000-0000-4000-8000-0000000000a1";
const S2: &str = "00000000-0000-4000-8000-0000000000a2";
const S3: &str = "00000000-0000-4000-8000-0000000000a3";
const S4: &str = "00000000-0000-4000-8000-0000000000a4";
const ORG: &str = "org-estate";
const OWN: &str = "act-0000e001";
const SCHEDULE: HealthSchedule = HealthSchedule {
    period: Duration::from_secs(86_400),
    pace: Duration::ZERO,
};

/// `contoso` holds S1 and the group `prod` (S2, S3); S4 sits in `elsewhere`. Spot's app holds its
/// role at `contoso`: every required action and discovery's two.
fn world() -> azure_emulator::World {
    use azure_emulator::{App as AzApp, Grant, ManagementGroup, Password, Subscription, Tenant, World};
    let sub = |id: &str, name: &str| Subscription {
        id: id.into(),
        tenant_id: TENANT.into(),
        display_name: name.into(),
        state: "Enabled".into(),
        ..Subscription::default()
    };
    let group = |name: &str, children: &[&str], subs: &[&str]| ManagementGroup {
        name: name.into(),
        tenant_id: TENANT.into(),
        display_name: name.into(),
        children: children.iter().map(|c| (*c).to_owned()).collect(),
        subscriptions: subs.iter().map(|s| (*s).to_owned()).collect(),
        ..ManagementGroup::default()
    };
    let mut w = World {
        subscriptions: vec![
            sub(S1, "Contoso Shared"),
            sub(S2, "Contoso Prod EU"),
            sub(S3, "Contoso Prod US"),
            sub(S4, "Contoso Lab"),
        ],
        management_groups: vec![
            ManagementGroup {
                display_name: "Contoso (all)".into(),
                ..group("contoso", &["prod"], &[S1])
            },
            group("prod", &[], &[S2, S3]),
            group("elsewhere", &[], &[S4]),
        ],
        ..World::default()
    };
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
    w.management_groups[0].grants = vec![Grant {
        app_id: SPOT.into(),
        actions: required_actions()
            .chain(GROUP_ACTIONS)
            .map(str::to_owned)
            .collect(),
        ..Grant::default()
    }];
    w
}

struct Estate {
    emulator: azure_emulator::Emulator,
    app: App,
    router: Router,
    sink: Arc<MemorySink>,
    id: String,
}

impl Estate {
    async fn new(kind: StoreKind) -> Self {
        let (emulator, azure) = integration_tests::emulator(world(), Duration::from_secs(5)).await;
        let store = integration_tests::store(kind).await;
        let sink = Arc::new(MemorySink::default());
        let app = App::new(store, sink.clone()).with_validator(Arc::new(azure.validator().unwrap()));
        let router = router(app.clone(), OrgSource::local_header(), &Function::ALL);
        Self {
            emulator,
            app,
            router,
            sink,
            id: String::new(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let headers: &[(&str, &str)] = if body.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        send(
            &self.router,
            method,
            path,
            Some(ORG),
            headers,
            body.map(|b| b.to_string()),
        )
        .await
    }

    /// `PUT …/subscriptions/{sub}` with `account`.
    async fn link(&self, sub: &str, account: &str) -> Reply {
        let path = self.path(&format!("/subscriptions/{sub}"));
        self.call("PUT", &path, Some(json!({"accountId": account}))).await
    }

    fn path(&self, rest: &str) -> String {
        format!("/connections/{}{rest}", self.id)
    }

    /// Started, app registration and secret entered, scope set to `contoso` with S1 for the
    /// connection's own account.
    async fn entered(kind: StoreKind) -> Self {
        let mut e = Self::new(kind).await;
        let r = e
            .call("POST", "/connections", Some(json!({"accountId": OWN})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        e.id = r.body["connectionId"].as_str().unwrap().to_owned();
        for (step, body) in [
            ("/app-registration", json!({"tenantId": TENANT, "clientId": SPOT})),
            ("/client-secret", json!({"clientSecret": SECRET})),
            (
                "/scope",
                json!({"managementGroupId": "contoso", "defaultSubscriptionId": S1}),
            ),
        ] {
            let r = e.call("PUT", &e.path(step), Some(body)).await;
            assert_eq!(r.status, StatusCode::OK, "{step}: {:?}", r.body);
        }
        e
    }

    async fn connected(kind: StoreKind) -> Self {
        let e = Self::entered(kind).await;
        let r = e.call("POST", &e.path("/connect"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["status"], "connected");
        // The group as the portal names it.
        assert_eq!(r.body["validation"]["subscriptionName"], "Contoso (all)");
        e
    }

    /// Every subscription, following `next` (pages of `limit`).
    async fn list(&self, limit: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut path = self.path(&format!("/subscriptions?limit={limit}"));
        loop {
            let r = self.call("GET", &path, None).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            items.extend(r.body["items"].as_array().unwrap().iter().cloned());
            match r.body["next"].as_str() {
                Some(next) => path = format!("{next}&limit={limit}"),
                None => return items,
            }
        }
    }

    async fn status_of(&self, sub: &str) -> Value {
        self.list(100)
            .await
            .into_iter()
            .find(|i| i["subscriptionId"] == sub)
            .unwrap_or(Value::Null)
    }

    fn events(&self, detail_type: &str) -> Vec<Value> {
        self.sink
            .events()
            .into_iter()
            .filter(|e| e.detail_type == detail_type)
            .map(|e| e.detail)
            .collect()
    }

    fn events_for(&self, detail_type: &str, sub: &str) -> usize {
        self.events(detail_type)
            .iter()
            .filter(|e| e["subscriptionId"] == sub)
            .count()
    }

    async fn pass(&self) -> shared::app::HealthReport {
        self.app
            .health_pass(
                &format!("run-{}", uuid::Uuid::new_v4()),
                Utc::now(),
                Window::All,
                SCHEDULE,
            )
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_role_for_a_group_is_assignable_there_and_reads_what_is_below() {
    let e = Estate::entered(StoreKind::Embedded).await;
    let r = e.call("GET", &e.path("/custom-role"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let props = &r.body["properties"];
    assert_eq!(props["roleName"], "spotCustomRole_mg_contoso");
    assert_eq!(
        props["assignableScopes"],
        json!(["/providers/Microsoft.Management/managementGroups/contoso"])
    );
    let actions = props["permissions"][0]["actions"].as_array().unwrap();
    for a in required_actions().chain(GROUP_ACTIONS) {
        assert!(actions.iter().any(|x| x == a), "{a} missing");
    }
    // Azure takes no DataActions at a management group: Spot's role has none.
    assert_eq!(props["permissions"][0]["dataActions"], json!([]));
    let view = e.call("GET", &e.path(""), None).await.body;
    assert_eq!(view["scope"], json!({"type": "managementGroup", "id": "contoso"}));
    assert_eq!(view["nextStep"], "role-assignment");
    // A single subscription again: the group goes.
    let r = e
        .call("PUT", &e.path("/scope"), Some(json!({"subscriptionId": S4})))
        .await;
    assert_eq!(r.body["scope"], json!({"type": "subscription", "id": S4}));
    assert!(r.body.get("estate").is_none());
    let r = e.call("GET", &e.path("/subscriptions"), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["code"], "not-an-estate");
    for bad in [
        json!({}),
        json!({"subscriptionId": S1, "managementGroupId": "contoso"}),
        json!({"managementGroupId": "has space"}),
        json!({"managementGroupId": "contoso", "defaultSubscriptionId": "nope"}),
        json!({"managementGroupId": "contoso", "defaultSubscriptionId": null}),
        json!({"subscriptionId": null}),
    ] {
        let r = e.call("PUT", &e.path("/scope"), Some(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
    }
}

#[tokio::test]
async fn a_group_connects_with_its_subscriptions_listed_and_linked_one_to_one() {
    for kind in STORES {
        let e = Estate::connected(kind).await;
        let view = e.call("GET", &e.path(""), None).await.body;
        assert_eq!(view["estate"]["subscriptions"], 3, "{kind:?}");
        assert_eq!(
            view["estate"]["byStatus"],
            json!({"linked": 1, "awaiting-account": 2})
        );
        // Paged by two: every subscription once, in order.
        let items = e.list(2).await;
        let ids: Vec<_> = items.iter().map(|i| i["subscriptionId"].clone()).collect();
        assert_eq!(ids, json!([S1, S2, S3]).as_array().unwrap().clone(), "{kind:?}");
        assert_eq!(items[0]["status"], "linked");
        assert_eq!(items[0]["accountId"], OWN);
        assert_eq!(items[1]["status"], "awaiting-account");
        assert_eq!(items[1]["displayName"], "Contoso Prod EU");
        assert_eq!(items[1]["state"], "Enabled");
        assert!(items[1].get("accountId").is_none());
        for s in [S1, S2, S3] {
            assert_eq!(e.events_for("Subscription Discovered", s), 1, "{kind:?} {s}");
        }
        assert_eq!(e.events_for("Subscription Discovered", S4), 0);
        assert_eq!(e.events_for("Subscription Linked", S1), 1);

        // S2 to a new account; the same pair again is 200 and announces nothing more.
        for _ in 0..2 {
            let r = e
                .call(
                    "PUT",
                    &e.path(&format!("/subscriptions/{S2}")),
                    Some(json!({"accountId": "act-0000e002"})),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            assert_eq!(r.body["status"], "linked");
            assert_eq!(r.body["accountId"], "act-0000e002");
        }
        assert_eq!(e.events_for("Subscription Linked", S2), 1, "{kind:?}");
        // One account, one subscription; one subscription, one account.
        for (sub, account, status, code) in [
            (S3, "act-0000e002", 409, "account-already-linked"),
            (S3, OWN, 409, "account-already-linked"),
            (S2, "act-0000e003", 409, "subscription-already-linked"),
            (S4, "act-0000e003", 404, "subscription-not-in-estate"),
        ] {
            let r = e
                .call(
                    "PUT",
                    &e.path(&format!("/subscriptions/{sub}")),
                    Some(json!({"accountId": account})),
                )
                .await;
            assert_eq!(r.status.as_u16(), status, "{sub} {account}: {:?}", r.body);
            assert_eq!(r.body["code"], code);
        }
        // An account whose own connection entered a subscription (3.4) holds that one.
        let other = e
            .call("POST", "/connections", Some(json!({"accountId": "act-0000e004"})))
            .await;
        assert_eq!(other.status, StatusCode::CREATED);
        let other = other.body["connectionId"].as_str().unwrap().to_owned();
        let elsewhere = "00000000-0000-4000-8000-0000000000f9";
        let r = e
            .call(
                "PUT",
                &format!("/connections/{other}/subscription"),
                Some(json!({"subscriptionId": elsewhere})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        let r = e
            .call(
                "PUT",
                &e.path(&format!("/subscriptions/{S3}")),
                Some(json!({"accountId": "act-0000e004"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{kind:?}: {:?}", r.body);
        assert_eq!(r.body["code"], "account-already-linked");
        // One that started a connection and entered nothing yet holds nothing: linked here, it
        // may not then enter another subscription there.
        let started = e
            .call("POST", "/connections", Some(json!({"accountId": "act-0000e005"})))
            .await;
        let started = started.body["connectionId"].as_str().unwrap().to_owned();
        let r = e
            .call(
                "PUT",
                &e.path(&format!("/subscriptions/{S3}")),
                Some(json!({"accountId": "act-0000e005"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        let r = e
            .call(
                "PUT",
                &format!("/connections/{started}/subscription"),
                Some(json!({"subscriptionId": elsewhere})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::CONFLICT, Some("account-already-linked")),
            "{kind:?}: {:?}",
            r.body
        );
        let view = e.call("GET", &format!("/connections/{started}"), None).await;
        assert!(view.body["subscriptionId"].is_null(), "{kind:?}: {:?}", view.body);
    }
}

#[tokio::test]
async fn health_passes_discover_lose_and_diagnose_subscriptions_once_per_change() {
    for kind in STORES {
        let e = Estate::connected(kind).await;
        let writes = |e: &Estate| e.sink.events().len();
        // Nothing changed: nothing written, nothing announced.
        let before = writes(&e);
        let r = e.pass().await;
        assert_eq!((r.unchanged, r.degraded, r.restored), (1, 0, 0), "{kind:?}");
        assert_eq!(writes(&e), before);

        // S4 moved under the group: discovered by the next pass, once.
        e.emulator.update(|w| assert!(w.move_subscription(S4, "prod")));
        e.pass().await;
        e.pass().await;
        assert_eq!(e.events_for("Subscription Discovered", S4), 1, "{kind:?}");
        assert_eq!(e.status_of(S4).await["status"], "awaiting-account");

        // S3 moved out: lost, once; the connection stays connected.
        e.emulator
            .update(|w| assert!(w.move_subscription(S3, "elsewhere")));
        e.pass().await;
        e.pass().await;
        assert_eq!(e.events_for("Subscription Lost", S3), 1, "{kind:?}");
        assert_eq!(e.status_of(S3).await["status"], "lost");
        let view = e.call("GET", &e.path(""), None).await.body;
        assert_eq!(view["status"], "connected");
        // A lost subscription is not linked to an account.
        let r = e
            .call(
                "PUT",
                &e.path(&format!("/subscriptions/{S3}")),
                Some(json!({"accountId": "act-0000e009"})),
            )
            .await;
        assert_eq!(r.body["code"], "subscription-lost");

        // The group's role loses one action: every subscription under it lists exactly that one.
        let dropped = required_actions().nth(3).unwrap().to_owned();
        let d = dropped.clone();
        e.emulator.update(move |w| {
            w.management_groups[0].grants[0].actions.retain(|a| *a != d);
        });
        e.pass().await;
        e.pass().await;
        for s in [S1, S2, S4] {
            let item = e.status_of(s).await;
            assert_eq!(item["status"], "missing-actions", "{kind:?} {s}");
            assert_eq!(item["missingActions"], json!([dropped]), "{kind:?} {s}");
            let changed: Vec<_> = e
                .events("Subscription Changed")
                .into_iter()
                .filter(|ev| ev["subscriptionId"] == s && ev["status"] == "missing-actions")
                .collect();
            assert_eq!(changed.len(), 1, "{kind:?} {s}");
            assert_eq!(changed[0]["missingActions"], json!([dropped]));
        }
        // Lost beats missing actions.
        assert_eq!(e.status_of(S3).await["status"], "lost");
        // Granted again: back as they were, announced once more.
        let d = dropped.clone();
        e.emulator
            .update(move |w| w.management_groups[0].grants[0].actions.push(d));
        e.pass().await;
        assert_eq!(e.status_of(S1).await["status"], "linked");
        assert_eq!(e.status_of(S2).await["status"], "awaiting-account");
        assert_eq!(e.events_for("Subscription Changed", S1), 2, "{kind:?}");
        // S1 disabled in Azure: disabled (it was linked), once; S4 deleted: lost.
        e.emulator.update(|w| {
            w.subscriptions.iter_mut().find(|s| s.id == S1).unwrap().state = "Disabled".into();
            w.subscriptions.retain(|s| s.id != S4);
            for g in &mut w.management_groups {
                g.subscriptions.retain(|s| s != S4);
            }
        });
        e.pass().await;
        e.pass().await;
        let disabled = e.status_of(S1).await;
        assert_eq!(
            (&disabled["status"], &disabled["state"]),
            (&json!("disabled"), &json!("Disabled"))
        );
        let changed: Vec<_> = e
            .events("Subscription Changed")
            .into_iter()
            .filter(|ev| ev["subscriptionId"] == S1 && ev["status"] == "disabled")
            .collect();
        assert_eq!(changed.len(), 1, "{kind:?}");
        assert_eq!(changed[0]["previousStatus"], "linked");
        assert_eq!(e.status_of(S4).await["status"], "lost");
        assert_eq!(e.events_for("Subscription Lost", S4), 1, "{kind:?}");
        // Every event names its subscription and the group; none carries the secret.
        for ev in e.sink.events() {
            assert!(!ev.detail.to_string().contains(SECRET));
            if ev.detail_type.starts_with("Subscription ") {
                assert_eq!(ev.detail["managementGroupId"], "contoso");
                assert!(ev.detail["subscriptionId"].is_string());
            }
        }
    }
}

/// Break, pass, fix, pass, … within one period, for an estate: the group's role taken away
/// degrades the connection and given back restores it, each time; a subscription disabled and
/// enabled again changes its status each time; by forced passes and by scheduled runs.
#[tokio::test]
async fn every_change_of_an_estate_is_recorded_whatever_came_between() {
    for kind in STORES {
        for scheduled in [false, true] {
            let e = Estate::connected(kind).await;
            let pass = |round: u32| {
                let now = Utc::now();
                let (run, window) = if scheduled {
                    let from = now - chrono::Duration::days(1);
                    (
                        format!("scheduled-{round}-{}", uuid::Uuid::new_v4()),
                        Window::Slots { from, to: now },
                    )
                } else {
                    ("forced".to_owned(), Window::All)
                };
                let app = e.app.clone();
                async move { app.health_pass(&run, now, window, SCHEDULE).await.unwrap() }
            };
            let grants = e.emulator.world().management_groups[0].grants.clone();
            let status = || async { e.call("GET", &e.path(""), None).await.body["status"].clone() };
            for round in 1..=2 {
                e.emulator.update(|w| w.management_groups[0].grants.clear());
                let r = pass(round).await;
                assert_eq!(
                    r.degraded, 1,
                    "{kind:?} scheduled={scheduled} round {round}: {r:?}"
                );
                assert_eq!(status().await, "degraded", "{kind:?} round {round}");
                let g = grants.clone();
                e.emulator.update(move |w| w.management_groups[0].grants = g);
                let r = pass(round).await;
                assert_eq!(
                    r.restored, 1,
                    "{kind:?} scheduled={scheduled} round {round}: {r:?}"
                );
                assert_eq!(status().await, "connected", "{kind:?} round {round}");
                let state = |to: &'static str| {
                    move |w: &mut azure_emulator::World| {
                        w.subscriptions.iter_mut().find(|s| s.id == S2).unwrap().state = to.into()
                    }
                };
                e.emulator.update(state("Disabled"));
                pass(round).await;
                assert_eq!(
                    e.status_of(S2).await["status"],
                    "disabled",
                    "{kind:?} round {round}"
                );
                e.emulator.update(state("Enabled"));
                pass(round).await;
                assert_eq!(
                    e.status_of(S2).await["status"],
                    "awaiting-account",
                    "{kind:?} round {round}"
                );
                let changes = e.events_for("Subscription Changed", S2);
                assert_eq!(changes, 2 * round as usize, "{kind:?} scheduled={scheduled}");
                assert_eq!(
                    (
                        e.events("Connection Degraded").len(),
                        e.events("Connection Restored").len()
                    ),
                    (round as usize, round as usize),
                    "{kind:?} scheduled={scheduled}: each change announced once"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_group_the_app_cannot_read_below_is_diagnosed() {
    let e = Estate::entered(StoreKind::Embedded).await;
    // No discovery action: the role was made for a subscription, not for a group.
    e.emulator.update(|w| {
        w.management_groups[0].grants[0]
            .actions
            .retain(|a| !a.starts_with("Microsoft.Management/"))
    });
    let r = e.call("POST", &e.path("/connect"), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["code"], "role-not-assigned");
    assert_eq!(r.body["retryable"], true);
    // Sent to the group's Access control, not a subscription's.
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("Management groups > the group > Access control (IAM)"),
        "{detail}"
    );
    // A group that does not exist.
    let r = e
        .call(
            "PUT",
            &e.path("/scope"),
            Some(json!({"managementGroupId": "no-such-group"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = e.call("POST", &e.path("/connect"), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["code"], "management-group-not-found");
    assert_eq!(r.body["step"], "subscription");
}

#[tokio::test]
async fn one_account_one_subscription_across_the_organization_and_spots_api_answers_for_each() {
    for kind in STORES {
        let mut e = Estate::connected(kind).await;
        assert_eq!(e.link(S2, "act-0000e002").await.status, StatusCode::OK);
        // S3 is another connection's subscription (3.4): not linked here.
        let single = e
            .call("POST", "/connections", Some(json!({"accountId": "act-0000e007"})))
            .await;
        let single = single.body["connectionId"].as_str().unwrap().to_owned();
        let r = e
            .call(
                "PUT",
                &format!("/connections/{single}/subscription"),
                Some(json!({"subscriptionId": S3})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = e.link(S3, "act-0000e008").await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{kind:?}: {:?}", r.body);
        assert_eq!(r.body["code"], "subscription-already-linked");
        // The other way round: 3.4 of another connection cannot take S2, linked here.
        let r = e
            .call(
                "PUT",
                &format!("/connections/{single}/subscription"),
                Some(json!({"subscriptionId": S2})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{kind:?}: {:?}", r.body);
        assert_eq!(r.body["code"], "subscription-already-linked");

        // A second estate of the organization, over `prod` (S2, S3, and S4 moved in): S2 is
        // linked in the first.
        e.emulator.update(|w| assert!(w.move_subscription(S4, "prod")));
        let first = e.id.clone();
        let r = e
            .call("POST", "/connections", Some(json!({"accountId": "act-0000e00a"})))
            .await;
        e.id = r.body["connectionId"].as_str().unwrap().to_owned();
        for (step, body) in [
            ("/app-registration", json!({"tenantId": TENANT, "clientId": SPOT})),
            ("/client-secret", json!({"clientSecret": SECRET})),
            ("/scope", json!({"managementGroupId": "prod"})),
        ] {
            assert_eq!(
                e.call("PUT", &e.path(step), Some(body)).await.status,
                StatusCode::OK
            );
        }
        let r = e.call("POST", &e.path("/connect"), None).await;
        assert_eq!(r.body["estate"]["subscriptions"], 3, "{kind:?}: {:?}", r.body);
        let r = e.link(S2, "act-0000e00b").await;
        assert_eq!(r.body["code"], "subscription-already-linked", "{kind:?}");
        // The account that holds S2 in the first estate is told it holds this very one.
        let r = e.link(S2, "act-0000e002").await;
        assert_eq!(r.body["code"], "account-already-linked", "{kind:?}");
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("this very subscription"),
            "{:?}",
            r.body
        );
        // The same group as a third estate of the organization: refused at 3.4, nothing written.
        let third = e
            .call("POST", "/connections", Some(json!({"accountId": "act-0000e00d"})))
            .await;
        let third = third.body["connectionId"].as_str().unwrap().to_owned();
        let r = e
            .call(
                "PUT",
                &format!("/connections/{third}/scope"),
                Some(json!({"managementGroupId": "prod"})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::CONFLICT, Some("management-group-already-connected")),
            "{kind:?}: {:?}",
            r.body
        );
        let view = e.call("GET", &format!("/connections/{third}"), None).await;
        assert!(view.body.get("estate").is_none(), "{:?}", view.body);
        // An account holding a subscription of the first estate holds no other.
        let r = e.link(S4, "act-0000e002").await;
        assert_eq!(r.body["code"], "account-already-linked", "{kind:?}");
        assert_eq!(e.link(S4, "act-0000e00c").await.status, StatusCode::OK);

        // Spot's credentials API: each account's subscription, through the estate that holds it.
        for (account, sub) in [("act-0000e002", S2), (OWN, S1)] {
            let r = e
                .call(
                    "GET",
                    &format!("/azure/setup/credentials?accountId={account}"),
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
            let item = &r.body["response"]["items"][0];
            assert_eq!(item["subscriptionId"], sub, "{kind:?} {account}");
            assert_eq!(item["connectionId"], first.as_str());
            assert_eq!(item["managementGroupId"], "contoso");
            assert_eq!(item["subscriptionStatus"], "linked");
            assert_eq!(item["clientId"], SPOT);
        }
        // The second estate's own account holds nothing yet.
        let r = e
            .call("GET", "/azure/setup/credentials?accountId=act-0000e00a", None)
            .await;
        assert_eq!(r.body["response"]["items"][0]["subscriptionId"], Value::Null);
        let r = e
            .call("GET", "/azure/setup/credentials?accountId=act-0000e0ff", None)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{kind:?}");
    }
}

#[tokio::test]
async fn more_than_spot_needs_on_one_subscription_is_reported_there_once() {
    for kind in STORES {
        let e = Estate::connected(kind).await;
        assert!(e.status_of(S2).await.get("overPrivileged").is_none());
        // Someone grants the app everything on S2.
        e.emulator.update(|w| {
            let s2 = w.subscriptions.iter_mut().find(|s| s.id == S2).unwrap();
            s2.grants.push(azure_emulator::Grant {
                app_id: SPOT.into(),
                actions: vec!["*".into()],
                ..azure_emulator::Grant::default()
            });
        });
        e.pass().await;
        e.pass().await;
        let item = e.status_of(S2).await;
        assert_eq!(
            item["overPrivileged"]["extraGrants"],
            json!(["*"]),
            "{kind:?}: {item}"
        );
        assert!(item["overPrivileged"]["advice"].as_str().unwrap().contains('*'));
        // A warning, not a status.
        assert_eq!(item["status"], "awaiting-account");
        assert!(e.status_of(S1).await.get("overPrivileged").is_none());
        let events: Vec<_> = e
            .events("Connection Over-Privileged")
            .into_iter()
            .filter(|ev| ev["subscriptionId"] == S2)
            .collect();
        assert_eq!(events.len(), 1, "{kind:?}");
        assert_eq!(events[0]["managementGroupId"], "contoso");
        assert_eq!(events[0]["extraGrants"], json!(["*"]));
    }
}

#[tokio::test]
async fn subscriptions_are_known_by_their_id_whatever_type_the_descendants_give_them() {
    let e = Estate::entered(StoreKind::Embedded).await;
    // The API's documented example types them `…/managementGroups/subscriptions`; the live
    // service `/subscriptions`. Either way they are found by their `/subscriptions/` id, and a
    // child group is never taken for one.
    e.emulator
        .update(|w| w.behaviour.descendants_typed_as_documented = true);
    let r = e.call("POST", &e.path("/connect"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let ids: Vec<_> = e
        .list(100)
        .await
        .iter()
        .map(|i| i["subscriptionId"].clone())
        .collect();
    assert_eq!(ids, json!([S1, S2, S3]).as_array().unwrap().clone());
}

/// Entering a subscription or another group on an estate whose subscriptions are tied to Spot
/// accounts would drop every tie (3.4, `PUT …/scope`, Spot's credentials API): 409
/// `estate-has-links`, nothing changed; with `"replaceEstate": true` it is replaced, and each tie
/// dropped is announced once (`Subscription Unlinked`).
#[tokio::test]
async fn replacing_an_estate_with_links_is_refused_unless_asked_and_each_dropped_tie_is_announced() {
    for kind in STORES {
        let e = Estate::connected(kind).await;
        assert_eq!(
            e.link(S2, "act-0000e002").await.status,
            StatusCode::OK,
            "{kind:?}"
        );
        let refused = [
            ("/subscription", json!({"subscriptionId": S4})),
            ("/scope", json!({"subscriptionId": S4})),
            ("/scope", json!({"managementGroupId": "elsewhere"})),
        ];
        for (step, body) in refused {
            let r = e.call("PUT", &e.path(step), Some(body)).await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{kind:?} {step}: {:?}", r.body);
            assert_eq!(r.body["code"], "estate-has-links", "{kind:?} {step}");
        }
        let spot =
            json!({"clientId": SPOT, "clientSecret": SECRET, "tenantId": TENANT, "subscriptionId": S4});
        let r = e
            .call(
                "POST",
                &format!("/azure/setup/credentials?accountId={OWN}"),
                Some(spot.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{kind:?}: {:?}", r.body);
        assert!(
            r.body.to_string().contains("estate-has-links"),
            "{kind:?}: {:?}",
            r.body
        );
        assert_eq!(
            e.status_of(S2).await["accountId"],
            "act-0000e002",
            "{kind:?}: unchanged"
        );
        assert!(e.events("Subscription Unlinked").is_empty());

        let r = e
            .call(
                "PUT",
                &e.path("/subscription"),
                Some(json!({"subscriptionId": S4, "replaceEstate": true})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        let unlinked = e.events("Subscription Unlinked");
        let mut ties: Vec<(String, String)> = unlinked
            .iter()
            .map(|u| {
                assert_eq!(u["managementGroupId"], "contoso");
                (
                    u["subscriptionId"].as_str().unwrap().to_owned(),
                    u["accountId"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        ties.sort();
        assert!(
            ties.contains(&(S2.to_owned(), "act-0000e002".to_owned())),
            "{kind:?}: {ties:?}"
        );
        assert_eq!(
            ties.len(),
            e.events("Subscription Linked").len(),
            "{kind:?}: each tie once"
        );
    }
}

/// `?status=` lists only the subscriptions in that status, page after page (`next` keeps the
/// filter), so a console shows what needs attention first; an unknown status is a 400 naming it.
#[tokio::test]
async fn the_list_filters_by_status_across_pages() {
    let e = Estate::connected(StoreKind::Embedded).await;
    let first = e
        .call(
            "GET",
            &e.path("/subscriptions?status=awaiting-account&limit=1"),
            None,
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["items"][0]["subscriptionId"], S2);
    let next = first.body["next"].as_str().unwrap().to_owned();
    assert!(next.contains("status=awaiting-account"), "{next}");
    let second = e.call("GET", &format!("{next}&limit=1"), None).await;
    assert_eq!(second.body["items"][0]["subscriptionId"], S3);
    assert_eq!(second.body["next"], Value::Null);
    let linked = e.call("GET", &e.path("/subscriptions?status=linked"), None).await;
    let ids: Vec<_> = linked.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["subscriptionId"].clone())
        .collect();
    assert_eq!(ids, [json!(S1)]);
    assert_eq!(
        e.call("GET", &e.path("/subscriptions?status=missing-actions"), None)
            .await
            .body["items"],
        json!([])
    );
    let bad = e.call("GET", &e.path("/subscriptions?status=broken"), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.to_string().contains("status"), "{:?}", bad.body);
}
