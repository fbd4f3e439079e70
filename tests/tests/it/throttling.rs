//! ARM's throttling (issue 27), in the emulator as Azure Resource Manager documents it (token
//! buckets per principal and subscription or tenant; `x-ms-ratelimit-remaining-*` on every
//! answer; 429 with `Retry-After` when empty: `emulator/src/throttle.rs`), and honoured by the
//! backend: an estate's survey spaces its reads out when a bucket runs low instead of running it
//! dry.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use integration_tests::{SECRET, send};
use serde_json::json;
use shared::app::App;
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};
use shared::events::MemorySink;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP: &str = "11111111-2222-4333-8444-555555555555";
const SUB: &str = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab";

async fn arm_token(base: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{base}/{TENANT}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", APP),
            ("client_secret", SECRET),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// An app over the embedded store and `validator`, and a connection of `account` in `org` with
/// its app registration, secret and the group `all` entered: the app, its router, the connection.
async fn entered_group(
    validator: shared::validation::Validator,
    org: &'static str,
    account: &str,
) -> (App, axum::Router, String) {
    let store = integration_tests::store(integration_tests::StoreKind::Embedded).await;
    let app = App::new(store, Arc::new(MemorySink::default())).with_validator(Arc::new(validator));
    let r = router(app.clone(), OrgSource::local_header(), &Function::ALL);
    let started = send(
        &r,
        "POST",
        "/connections",
        Some(org),
        &[("content-type", "application/json")],
        Some(json!({ "accountId": account }).to_string()),
    )
    .await;
    let id = started.body["connectionId"].as_str().unwrap().to_owned();
    for (step, body) in [
        ("app-registration", json!({"tenantId": TENANT, "clientId": APP})),
        ("client-secret", json!({"clientSecret": SECRET})),
        ("scope", json!({"managementGroupId": "all"})),
    ] {
        let reply = send(
            &r,
            "PUT",
            &format!("/connections/{id}/{step}"),
            Some(org),
            &[("content-type", "application/json")],
            Some(body.to_string()),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{step}: {:?}", reply.body);
    }
    (app, r, id)
}

/// A bodiless request of `org` to `r`.
async fn call(r: &axum::Router, org: &str, method: &str, path: &str) -> integration_tests::Reply {
    send(r, method, path, Some(org), &[], None).await
}

#[tokio::test]
async fn the_emulator_throttles_reads_per_principal_and_subscription_as_arm_documents() {
    let world = integration_tests::world_of_one_app(true, "k1", None);
    let emulator = azure_emulator::Emulator::new(world);
    let addr = emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}");
    emulator.set_behaviour(azure_emulator::Behaviour {
        arm_read_burst: 3,
        arm_reads_per_second: 2,
        ..azure_emulator::Behaviour::default()
    });
    let token = arm_token(&base).await;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{base}{path}?api-version=2022-12-01"))
            .bearer_auth(&token)
            .send()
    };
    let left = |r: &reqwest::Response, h: &str| r.headers().get(h).map(|v| v.to_str().unwrap().to_owned());
    let mut seen = Vec::new();
    for _ in 0..3 {
        let r = get(&format!("/subscriptions/{SUB}")).await.unwrap();
        assert_eq!(r.status(), 200);
        seen.push(left(&r, "x-ms-ratelimit-remaining-subscription-reads"));
    }
    assert_eq!(seen, [Some("2".into()), Some("1".into()), Some("0".into())]);
    // Empty: 429, ARM's code, when to come back; nothing taken.
    let r = get(&format!("/subscriptions/{SUB}")).await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SubscriptionRequestsThrottled");
    // Tenant-level reads have a bucket of their own.
    let r = get("/subscriptions").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        left(&r, "x-ms-ratelimit-remaining-tenant-reads").as_deref(),
        Some("2")
    );
    // Refilled at its rate: two a second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = get(&format!("/subscriptions/{SUB}")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(emulator.requests().iter().filter(|r| r.throttled).count() == 1);
}

#[tokio::test]
async fn a_survey_spaces_its_reads_out_when_arms_buckets_run_low_and_is_never_throttled() {
    // Buckets of three reads, two a second back. A survey reads each subscription twice side by
    // side: Connect Account leaves one read in each bucket, and a health pass right after would
    // meet a 429 on each subscription, unless the reads wait for what the answers say is left.
    let (emulator, azure) =
        integration_tests::emulator(integration_tests::group_world(12), Duration::from_secs(15)).await;
    emulator.set_behaviour(azure_emulator::Behaviour {
        arm_read_burst: 3,
        arm_reads_per_second: 2,
        ..azure_emulator::Behaviour::default()
    });
    let (app, r, id) = entered_group(azure.validator().unwrap(), "org-throttle", "act-0000c0de").await;
    let connected = call(&r, "org-throttle", "POST", &format!("/connections/{id}/connect")).await;
    assert_eq!(connected.body["status"], "connected", "{:?}", connected.body);
    assert_eq!(connected.body["estate"]["subscriptions"], 12);
    let report = app
        .health_pass(
            "throttle-pass",
            chrono::Utc::now(),
            shared::app::Window::All,
            shared::app::HealthSchedule {
                period: Duration::from_secs(86_400),
                pace: Duration::ZERO,
            },
        )
        .await
        .unwrap();
    assert_eq!(report.unchanged, 1, "{report:?}");
    let throttled = emulator.requests().iter().filter(|r| r.throttled).count();
    assert_eq!(throttled, 0, "the survey ran a bucket dry {throttled} times");
}

#[tokio::test]
async fn a_survey_reads_states_from_arms_subscriptions_list_and_only_the_rest_one_call_each() {
    let mut world = integration_tests::group_world(120);
    let disabled = integration_tests::group_subscription(7);
    world
        .subscriptions
        .iter_mut()
        .filter(|s| s.id == disabled)
        .for_each(|s| s.state = "Disabled".into());
    let (emulator, azure) = integration_tests::emulator(world, Duration::from_secs(15)).await;
    // Pages of the subscriptions list that hold the whole group.
    emulator.set_behaviour(azure_emulator::Behaviour {
        arm_page_size: 200,
        ..azure_emulator::Behaviour::default()
    });
    let (app, r, id) = entered_group(azure.validator().unwrap(), "org-listed", "act-0000c0df").await;
    // (list calls, one-subscription reads) ARM answered since the last count.
    let reads = || {
        let requests = emulator.requests();
        emulator.clear_requests();
        let listed = requests
            .iter()
            .filter(|r| r.method == "GET" && r.path == "/subscriptions")
            .count();
        let one_each = requests
            .iter()
            .filter(|r| {
                r.method == "GET"
                    && r.path
                        .strip_prefix("/subscriptions/")
                        .is_some_and(|rest| !rest.contains('/'))
            })
            .count();
        (listed, one_each)
    };
    reads();
    let connected = call(&r, "org-listed", "POST", &format!("/connections/{id}/connect")).await;
    assert_eq!(connected.body["status"], "connected", "{:?}", connected.body);
    assert_eq!(connected.body["estate"]["subscriptions"], 120);
    assert_eq!(
        connected.body["estate"]["byStatus"]["disabled"], 1,
        "{:?}",
        connected.body
    );
    assert_eq!(reads(), (1, 0), "every state from one page of the list");

    // Pages of one (the stricter reading of an undocumented size): a page that small does not pay,
    // the list is left after it and the rest read one call each; the same states.
    emulator.set_behaviour(azure_emulator::Behaviour::default());
    let report = app
        .health_pass(
            "listed-pass",
            chrono::Utc::now(),
            shared::app::Window::All,
            shared::app::HealthSchedule {
                period: Duration::from_secs(86_400),
                pace: Duration::ZERO,
            },
        )
        .await
        .unwrap();
    assert_eq!(report.unchanged, 1, "{report:?}");
    assert_eq!(reads(), (1, 119));
}
