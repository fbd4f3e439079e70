//! Faults between the backend and its dependencies, injected by a proxy ([`FaultProxy`]) in front
//! of Secrets Manager (moto) and of Azure (the emulator): a reset before the request arrives, a
//! reset half way through the answer, an answer that never comes, one cut short, one trickling.
//!
//! For every wizard step and Connect Account, each fault hitting the step's write to the store
//! (or its first call to Azure) must end in a success or a retryable 503 with `Retry-After`, in
//! time for API Gateway; the connection read back (around the proxy) must be fully before or fully
//! after the step, never half; the same request retried with its `Idempotency-Key` must then
//! succeed once; and no log line or answer may carry the secret.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use integration_tests::fault::{Fault, FaultProxy};
use integration_tests::{Reply, SECRET, send};
use serde_json::{Value, json};
use shared::app::App;
use shared::config::AzureConfig;
use shared::domain::{AccountId, OrgId};
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};
use shared::events::MemorySink;
use shared::store::ConnectionStore;
use shared::store::secrets_manager::SecretsManagerStore;

const ORG: &str = "org-faults";
const ACCOUNT: &str = "act-0badcafe";
/// What API Gateway waits for, less a margin: every answer must come before.
const ANSWER_WITHIN: Duration = Duration::from_secs(25);

/// The steps, in the wizard's order: method, path after `/connections/{id}`, body.
fn steps() -> Vec<(&'static str, &'static str, &'static str, Option<Value>)> {
    vec![
        ("start", "POST", "", Some(json!({"accountId": ACCOUNT}))),
        (
            "app-registration",
            "PUT",
            "/app-registration",
            Some(
                json!({"tenantId": "contoso.onmicrosoft.com", "clientId": "11111111-2222-4333-8444-555555555555"}),
            ),
        ),
        (
            "client-secret",
            "PUT",
            "/client-secret",
            Some(json!({"clientSecret": SECRET, "expiresAt": "2099-01-31"})),
        ),
        (
            "subscription",
            "PUT",
            "/subscription",
            Some(json!({"subscriptionId": "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"})),
        ),
        ("custom-role", "GET", "/custom-role", None),
        ("connect", "POST", "/connect", None),
    ]
}

/// The view's field a step fills in (the start: the connection itself).
fn done(step: &str, view: &Value) -> bool {
    match step {
        "start" => view["connectionId"].is_string(),
        "app-registration" => view["tenantId"].is_string(),
        "client-secret" => view["clientSecret"].is_object(),
        "subscription" => view["subscriptionId"].is_string(),
        "custom-role" => !view["customRole"].is_null(),
        _ => view["status"] == "connected",
    }
}

struct Rig {
    aws: FaultProxy,
    azure: FaultProxy,
    /// Through the proxies.
    faulty: Router,
    /// Around them: what is really stored.
    direct: Router,
    direct_store: Arc<SecretsManagerStore>,
    _emulator: azure_emulator::Emulator,
}

async fn rig() -> Rig {
    let world = azure_emulator::World::single(
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "contoso.onmicrosoft.com",
        "11111111-2222-4333-8444-555555555555",
        &[SECRET],
        "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab",
        Some(
            shared::domain::role::required_actions()
                .map(str::to_owned)
                .collect(),
        ),
    );
    let emulator = azure_emulator::Emulator::new(world);
    let addr = emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let azure = FaultProxy::start(&format!("http://{addr}")).await;
    let aws = FaultProxy::start(&integration_tests::aws_endpoint()).await;
    let url = azure.url().to_owned();
    let config = AzureConfig::from_lookup(|k| match k {
        "AZURE_AUTHORITY_HOST" | "AZURE_RESOURCE_MANAGER_ENDPOINT" | "AZURE_GRAPH_ENDPOINT" => {
            Some(url.clone())
        }
        "AZURE_VALIDATION_BUDGET_MS" => Some("4000".into()),
        _ => None,
    })
    .unwrap();
    let prefix = integration_tests::unique_prefix();
    let sdk = integration_tests::sdk_config().await;
    let through = aws_sdk_secretsmanager::config::Builder::from(&sdk)
        .endpoint_url(aws.url())
        .build();
    let faulty_store = Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::from_conf(through),
        &prefix,
        None,
    ));
    let app = App::new(faulty_store, Arc::new(MemorySink::default()))
        .with_validator(Arc::new(config.validator().unwrap()));
    let direct_store = integration_tests::sm_store(&prefix).await;
    let direct_app = App::new(direct_store.clone(), Arc::new(MemorySink::default()));
    Rig {
        aws,
        azure,
        faulty: router(app, OrgSource::local_header(), &Function::ALL),
        direct: router(direct_app, OrgSource::local_header(), &Function::ALL),
        direct_store,
        _emulator: emulator,
    }
}

async fn call(router: &Router, method: &str, path: &str, key: &str, body: Option<&Value>) -> Reply {
    let mut headers = vec![("idempotency-key", key)];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    send(
        router,
        method,
        path,
        Some(ORG),
        &headers,
        body.map(Value::to_string),
    )
    .await
}

/// What is stored: the view, or `Null` when there is no connection.
async fn stored(rig: &Rig, id: Option<&str>) -> Value {
    let org = OrgId::parse(ORG).unwrap();
    let found = rig
        .direct_store
        .find(
            &org,
            &shared::store::Lookup::Account(&AccountId::parse(ACCOUNT).unwrap()),
        )
        .await
        .unwrap();
    assert!(found.len() <= 1, "two connections for one start: {found:?}");
    let Some(id) = id
        .map(str::to_owned)
        .or_else(|| found.first().map(|c| c.to_string()))
    else {
        return Value::Null;
    };
    let r = call(
        &rig.direct,
        "GET",
        &format!("/connections/{id}"),
        "read-back",
        None,
    )
    .await;
    if r.status == StatusCode::NOT_FOUND {
        return Value::Null;
    }
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// One case: walk to just before `target` (healthy), fault its first request that contains
/// `marker`, check the answer, the state and a retry. Returns everything answered.
async fn case(target: usize, dependency: &str, marker: &str, fault: Fault, times: usize) -> String {
    let rig = rig().await;
    let steps = steps();
    let mut id: Option<String> = None;
    let mut seen = String::new();
    for (i, (name, method, path, body)) in steps.iter().enumerate() {
        let full = match &id {
            None => "/connections".to_owned(),
            Some(id) => format!("/connections/{id}{path}"),
        };
        let key = format!("{name}-1");
        if i < target {
            let r = call(&rig.faulty, method, &full, &key, body.as_ref()).await;
            assert!(
                r.status.is_success(),
                "{name} on a healthy network: {} {}",
                r.status,
                r.body
            );
            if id.is_none() {
                id = r.body["connectionId"].as_str().map(str::to_owned);
            }
            continue;
        }
        let what = format!("{fault:?} ×{times} on {dependency} during {name}");
        let before = stored(&rig, id.as_deref()).await;
        let proxy = if dependency == "azure" {
            &rig.azure
        } else {
            &rig.aws
        };
        proxy.fault(marker, fault, times);
        let started = Instant::now();
        let r = call(&rig.faulty, method, &full, &key, body.as_ref()).await;
        let took = started.elapsed();
        proxy.heal();
        eprintln!("{what}: {} in {took:.1?}", r.status);
        seen.push_str(&format!("{} {:?} {}\n", r.status, r.headers, r.body));
        assert!(proxy.hits() >= 1, "{what}: the fault never happened");
        assert!(took <= ANSWER_WITHIN, "{what}: answered after {took:?}");
        match r.status.as_u16() {
            200..=299 => {}
            503 => {
                assert_eq!(r.body["retryable"], true, "{what}: {}", r.body);
                assert!(r.headers.contains_key("retry-after"), "{what}: no Retry-After");
            }
            other => panic!(
                "{what}: {other} {} (a network fault is neither the customer's nor a 5xx of ours)",
                r.body
            ),
        }
        // Fully before or fully after, never half.
        let after = stored(&rig, id.as_deref()).await;
        if after != before {
            assert!(done(name, &after), "{what}: half written: {after}");
            for field in [
                "accountId",
                "tenantId",
                "clientId",
                "subscriptionId",
                "credentialType",
            ] {
                if !before.is_null() && !before[field].is_null() {
                    assert_eq!(before[field], after[field], "{what}: {field} changed");
                }
            }
        }
        // The client's retry, on a healthy network, succeeds and leaves the step done, once.
        let again = call(&rig.faulty, method, &full, &key, body.as_ref()).await;
        seen.push_str(&format!("{} {}\n", again.status, again.body));
        assert!(
            again.status.is_success(),
            "{what}, retried: {} {}",
            again.status,
            again.body
        );
        let id = id
            .clone()
            .or_else(|| again.body["connectionId"].as_str().map(str::to_owned));
        let last = stored(&rig, id.as_deref()).await;
        assert!(done(name, &last), "{what}, retried: not done: {last}");
        break;
    }
    assert!(rig.aws.requests() > 0);
    seen
}

/// Runs the cases side by side (most of their time is waiting), capturing the logs.
async fn run(cases: Vec<(usize, &'static str, &'static str, Fault, usize)>) {
    let (logs, _guard) = integration_tests::Captured::start();
    // Side by side on this one thread (a test's runtime is single-threaded, and the log capture
    // is per thread).
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(step, dependency, marker, fault, times)| {
            tokio::spawn(case(step, dependency, marker, fault, times))
        })
        .collect();
    let mut answers = Vec::new();
    for h in handles {
        answers.push(h.await.unwrap());
    }
    let text = logs.text();
    assert!(!text.is_empty(), "nothing logged: the capture is broken");
    assert!(
        !text.contains(SECRET),
        "the secret is in a log line of a failure path"
    );
    for a in answers {
        assert!(!a.contains(SECRET), "the secret is in an answer: {a}");
    }
}

#[tokio::test]
async fn store_faults_on_each_step_end_in_success_or_503_and_never_half_written() {
    let mut cases = Vec::new();
    for (i, (name, ..)) in steps().iter().enumerate() {
        let marker = if *name == "start" {
            "secretsmanager.CreateSecret"
        } else {
            "secretsmanager.PutSecretValue"
        };
        for fault in Fault::ALL {
            cases.push((i, "aws", marker, fault, 1));
        }
        // Every attempt the SDK makes meets the fault: the answer is 503, the step undone.
        cases.push((i, "aws", marker, Fault::ResetMidResponse, 3));
    }
    cases.push((5, "aws", "secretsmanager.PutSecretValue", Fault::Stall, 3));
    run(cases).await;
}

#[tokio::test]
async fn azure_faults_end_in_success_or_503_and_are_never_the_customers_fault() {
    let mut cases = Vec::new();
    // The early checks of 3.2 and 3.3, and Connect Account: the first Azure call of each.
    for step in [1, 2, 5] {
        for fault in Fault::ALL {
            cases.push((step, "azure", " /", fault, 1));
        }
        // Azure out of reach for longer than the budget.
        for fault in [Fault::Reset, Fault::Truncate] {
            cases.push((step, "azure", " /", fault, 100));
        }
    }
    run(cases).await;
}

#[tokio::test]
async fn a_store_read_meeting_each_fault_ends_in_success_or_503() {
    let cases = Fault::ALL
        .into_iter()
        .map(|fault| (3, "aws", "secretsmanager.GetSecretValue", fault, 1))
        .chain([(3, "aws", "secretsmanager.GetSecretValue", Fault::Stall, 3)])
        .collect();
    run(cases).await;
}
