//! `BENCH_ONLY=estate scripts/bench`: one management group of 1,000 subscriptions (10 child groups
//! of 100) in the Azure emulator with every ARM call 100 ms away, on Secrets Manager (moto):
//! Connect Account's wall time, ARM calls, Secrets Manager calls, the bytes stored and the events;
//! one health pass over the estate; the process's memory; and how many subscriptions the stored
//! list holds at most (typical, and with every subscription missing every action).

use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::app::{App, HealthSchedule, Operation, Outcome, Window};
use shared::domain::document::{self, estate::MAX_ENCODED, estate::list_bytes};
use shared::domain::estate::{Estate, GROUP_ACTIONS, Sighting, SubscriptionState, Survey};
use shared::domain::role::required_actions;
use shared::domain::{
    AccountId, ClientId, ClientSecret, Command, ManagementGroupId, OrgId, SubscriptionId, TenantId,
};
use shared::events::MemorySink;
use shared::store::ConnectionStore;
use shared::store::secrets_manager::SecretsManagerStore;

use crate::support::{SECRET, mb, req, status_kb};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP: &str = "11111111-2222-4333-8444-555555555555";

/// Subscription `i`'s id: random-looking as Azure's are (a sequence would deflate to nothing and
/// flatter the stored size), the same on every run.
pub(crate) fn sub_id(i: usize) -> String {
    let mut rng = fastrand::Rng::with_seed(i as u64 ^ 0x5eed_e57a7e);
    uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes())
        .into_uuid()
        .to_string()
}

pub(crate) fn world(n: usize, latency_ms: u64) -> azure_emulator::World {
    use azure_emulator::{App as AzApp, Grant, ManagementGroup, Password, Subscription, Tenant, World};
    let groups = 10;
    let mut w = World {
        subscriptions: (0..n)
            .map(|i| Subscription {
                id: sub_id(i),
                tenant_id: TENANT.into(),
                display_name: format!("Contoso workload {i:04}"),
                state: "Enabled".into(),
                ..Subscription::default()
            })
            .collect(),
        ..World::default()
    };
    w.management_groups.push(ManagementGroup {
        name: "contoso".into(),
        tenant_id: TENANT.into(),
        display_name: "Contoso".into(),
        children: (0..groups).map(|g| format!("contoso-{g}")).collect(),
        grants: vec![Grant {
            app_id: APP.into(),
            actions: required_actions()
                .chain(GROUP_ACTIONS)
                .map(str::to_owned)
                .collect(),
            ..Grant::default()
        }],
        ..ManagementGroup::default()
    });
    for g in 0..groups {
        w.management_groups.push(ManagementGroup {
            name: format!("contoso-{g}"),
            tenant_id: TENANT.into(),
            display_name: format!("Contoso {g}"),
            subscriptions: (0..n).filter(|i| i % groups == g).map(sub_id).collect(),
            ..ManagementGroup::default()
        });
    }
    w.tenants.push(Tenant {
        id: TENANT.into(),
        domains: vec!["contoso.onmicrosoft.com".into()],
        apps: vec![AzApp {
            app_id: APP.into(),
            passwords: vec![Password {
                secret_text: SECRET.into(),
                ..Password::default()
            }],
            ..AzApp::default()
        }],
        ..Tenant::default()
    });
    w.behaviour = azure_emulator::Behaviour {
        latency_ms,
        management_groups_page_size: 200,
        arm_page_size: list_page(),
        ..Default::default()
    };
    w
}

/// Subscriptions per page of ARM's subscriptions list (and its other lists) in the emulator:
/// `BENCH_LIST_PAGE`, 1,000 by default. ARM does not document the size; 1 is the stricter reading
/// (every state then read one call each, as before the list was used).
pub(crate) fn list_page() -> usize {
    std::env::var("BENCH_LIST_PAGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

/// A connection of `account` (made under `connection` when given) with the app's registration,
/// its secret and the group `contoso` entered (`default`: the subscription of its own account).
pub(crate) async fn entered(
    app: &App,
    org: &OrgId,
    tag: &str,
    account: &str,
    connection: Option<shared::domain::ConnectionId>,
    default: Option<SubscriptionId>,
) -> shared::domain::ConnectionId {
    let Outcome::Created(c) = app
        .execute(
            &req(&format!("{tag}-start")),
            org,
            Operation::Start {
                account: AccountId::parse(account).unwrap(),
                connection,
                credential: Default::default(),
            },
        )
        .await
        .unwrap()
    else {
        panic!("not created")
    };
    let commands = [
        Command::AppRegistration {
            tenant: TenantId::parse(TENANT).unwrap(),
            client: ClientId::parse(APP).unwrap(),
        },
        Command::ClientSecret {
            secret: ClientSecret::parse(secrecy::SecretString::from(SECRET.to_owned())).unwrap(),
            expires_at: None,
        },
        Command::ManagementGroup {
            group: ManagementGroupId::parse("contoso").unwrap(),
            default_subscription: default,
            replace_estate: false,
        },
    ];
    for (i, command) in commands.into_iter().enumerate() {
        app.execute(
            &req(&format!("{tag}-in{i}")),
            org,
            Operation::Submit {
                connection: c.id,
                command,
            },
        )
        .await
        .unwrap();
    }
    c.id
}

pub(crate) async fn estate_bench(n: usize) {
    let latency_ms = 100;
    let emulator = azure_emulator::Emulator::new(world(n, latency_ms));
    let addr = emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("http://{addr}");
    let azure = shared::config::AzureConfig::from_lookup(|k| match k {
        "AZURE_AUTHORITY_HOST" | "AZURE_RESOURCE_MANAGER_ENDPOINT" | "AZURE_GRAPH_ENDPOINT" => {
            Some(url.clone())
        }
        "AZURE_VALIDATION_BUDGET_MS" => Some("25000".into()),
        _ => None,
    })
    .unwrap();
    let sdk = shared::config::aws_sdk_config().await;
    let prefix = format!("estate-{}/", uuid::Uuid::new_v4().simple());
    let store = Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        prefix.clone(),
        None,
    ));
    let sink = Arc::new(MemorySink::default());
    let app = App::new(store.clone(), sink.clone()).with_validator(Arc::new(azure.validator().unwrap()));
    let org = OrgId::parse("org-estate-bench").unwrap();
    let default = Some(SubscriptionId::parse(&sub_id(0)).unwrap());
    let id = entered(&app, &org, "estate", "act-0000e5e5", None, default).await;
    let pid = std::process::id();
    let rss_before = status_kb(pid, "VmRSS");
    emulator.clear_requests();
    let sm_before = store.calls().total();
    let events_before = sink.events().len();
    let started = Instant::now();
    let connected = app
        .execute(&req("connect"), &org, Operation::Connect { connection: id })
        .await;
    let connect_wall = started.elapsed();
    let Ok(Outcome::Connected(connected)) = connected else {
        panic!("not connected: {connected:?}")
    };
    let arm_calls = emulator.requests().len();
    let sm_calls = store.calls().total() - sm_before;
    let events = sink.events().len() - events_before;
    let rss_after = status_kb(pid, "VmRSS");
    let doc_bytes = document::encode(&connected).len();
    let estate = connected.estate.as_ref().unwrap();
    let list_size = list_bytes(estate);

    emulator.clear_requests();
    let sm_before = store.calls().total();
    let started = Instant::now();
    let report = app
        .health_pass(
            "estate-bench",
            chrono::Utc::now(),
            Window::All,
            HealthSchedule {
                period: Duration::from_secs(86_400),
                pace: Duration::ZERO,
            },
        )
        .await
        .unwrap();
    let pass_wall = started.elapsed();
    let pass_arm = emulator.requests().len();
    let pass_sm = store.calls().total() - sm_before;

    // The connect-account function itself (the release binary under a Lambda Runtime API
    // stand-in) connecting the same group: its peak memory.
    let (binary_peak, binary_wall) = binary_connect(&app, &store, &prefix, &url, n).await;

    // Capacity of the stored list: typical rows, and the worst case (every action missing).
    let per_sub = list_size as f64 / estate.entries.len() as f64;
    let worst = {
        let mut e = Estate::new(
            ManagementGroupId::parse("contoso").unwrap(),
            None,
            chrono::Utc::now(),
        );
        let missing: Vec<String> = required_actions().map(str::to_owned).collect();
        let survey = Survey {
            looked_at: None,
            checked_at: chrono::Utc::now(),
            found: (0..n)
                .map(|i| Sighting {
                    subscription: SubscriptionId::parse(&sub_id(i)).unwrap(),
                    display_name: format!("Contoso workload {i:04}"),
                    state: SubscriptionState::Enabled,
                    missing_actions: missing.clone(),
                    over_privilege: None,
                })
                .collect(),
        };
        e.record(&survey, &AccountId::parse("act-0000e5e5").unwrap());
        list_bytes(&e) as f64 / n as f64
    };

    println!(
        "\n## An estate: one management group of {n} subscriptions (ARM {latency_ms} ms away, its subscriptions list {} a page; Secrets Manager in moto)\n",
        list_page()
    );
    println!("| what | figure |");
    println!("|---|---|");
    println!(
        "| Connect Account, wall time | {:.2} s (API Gateway's limit: 29 s) |",
        connect_wall.as_secs_f64()
    );
    println!(
        "| Connect Account, ARM calls | {arm_calls} (descendants and subscriptions list pages, a permissions read per subscription and a state read for each the list did not hold; 64 in flight) |"
    );
    println!("| Connect Account, Secrets Manager calls | {sm_calls} |");
    println!(
        "| Connect Account, events | {events} (`Subscription Discovered` × {n}, `Linked` × 1, …; PutEvents by 10) |"
    );
    println!(
        "| connection document stored | {:.1} KiB of 64 KiB (the list: {:.1} KiB deflated) |",
        doc_bytes as f64 / 1024.0,
        list_size as f64 / 1024.0
    );
    println!(
        "| stored list per subscription | {per_sub:.1} B typical, {worst:.1} B with every action missing |"
    );
    println!(
        "| subscriptions the list holds at most | ~{} typical, ~{} with every action missing |",
        (MAX_ENCODED as f64 / per_sub) as usize,
        (MAX_ENCODED as f64 / worst) as usize
    );
    println!(
        "| health pass over the estate, wall time | {:.2} s ({} unchanged, nothing written) |",
        pass_wall.as_secs_f64(),
        report.unchanged
    );
    println!("| health pass, ARM calls / Secrets Manager calls | {pass_arm} / {pass_sm} |");
    println!(
        "| process memory during Connect Account (bench + emulator) | {} → {} |",
        mb(rss_before),
        mb(rss_after)
    );
    println!(
        "| the connect-account function (release binary, one HTTP invocation): peak memory, wall | {}, {:.2} s |",
        mb(binary_peak),
        binary_wall.as_secs_f64()
    );
}

/// Runs the `connect-account` release binary on the sample HTTP event for a connection made here
/// with the same group: its peak RSS (kB) and wall time.
async fn binary_connect(
    app: &App,
    store: &Arc<SecretsManagerStore>,
    prefix: &str,
    azure: &str,
    n: usize,
) -> (u64, std::time::Duration) {
    let sample = crate::support::root().join("events/connect-account/http-connect.json");
    let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    let org = OrgId::parse(
        event["requestContext"]["authorizer"]["jwt"]["claims"]["org_id"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let id = shared::domain::ConnectionId::parse(event["pathParameters"]["id"].as_str().unwrap()).unwrap();
    entered(app, &org, "binary", "act-0000b1b1", Some(id), None).await;
    let (api, addr, server) = crate::lambdas::runtime_api(std::iter::once(event).collect()).await;
    let env = [
        ("CONNECTION_SECRET_PREFIX", prefix.to_owned()),
        ("ORG_ID_CLAIM", "org_id".to_owned()),
        ("AZURE_AUTHORITY_HOST", azure.to_owned()),
        ("AZURE_RESOURCE_MANAGER_ENDPOINT", azure.to_owned()),
        ("AZURE_GRAPH_ENDPOINT", azure.to_owned()),
        ("AZURE_VALIDATION_BUDGET_MS", "15000".to_owned()),
    ];
    let (_, _, peak, ok, errors, took) =
        crate::lambdas::run_binary("connect-account", &api, addr, 1, &env).await;
    server.abort();
    assert_eq!((ok, errors), (1, 0), "the function answered");
    let connected = store.load(&org, &id).await.unwrap().unwrap().connection;
    assert_eq!(
        connected.estate.map(|e| e.entries.len()),
        Some(n).filter(|_| connected.status == shared::domain::Status::Connected),
        "the function connected the group"
    );
    (peak, took)
}

/// What storing a large estate costs in CPU: the stored form (inline list, or pages) of 1,000,
/// 10,000 and 20,000 subscriptions, each linked, computed as a write computes it (the size check
/// and the new pages: twice; the previous version's page names come with the version read).
pub(crate) fn stored_form() {
    use shared::domain::{Connection, ConnectionId, OrgId};
    println!("\n## An estate's stored form (release; median of 5)\n");
    println!("| subscriptions | pages | document | one stored form | a write's two |");
    println!("|---|---|---|---|---|");
    let now = chrono::Utc::now();
    for n in [1_000usize, 10_000, 20_000] {
        let mut c = Connection::new(
            ConnectionId::new_random(),
            OrgId::parse("org-bench").unwrap(),
            AccountId::parse("act-00c0ffee").unwrap(),
            now,
        );
        let mut estate = Estate::new(ManagementGroupId::parse("contoso").unwrap(), None, now);
        let survey = Survey {
            looked_at: None,
            checked_at: now,
            found: (0..n)
                .map(|i| Sighting {
                    subscription: SubscriptionId::parse(&sub_id(i)).unwrap(),
                    display_name: format!("Contoso workload {i:05}"),
                    state: SubscriptionState::Enabled,
                    missing_actions: Vec::new(),
                    over_privilege: None,
                })
                .collect(),
        };
        estate.record(&survey, &c.account);
        let ids: Vec<SubscriptionId> = estate.entries.keys().copied().collect();
        for (i, id) in ids.iter().enumerate() {
            estate
                .link(*id, &AccountId::parse(&format!("act-{i:08x}")).unwrap(), now)
                .unwrap();
        }
        c.estate = Some(estate);
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..5 {
            let started = Instant::now();
            last = document::encode_stored(&c);
            times.push(started.elapsed());
        }
        times.sort();
        let one = times[2];
        let stored = last.unwrap();
        println!(
            "| {n} | {} | {:.1} KiB | {:.1} ms | {:.1} ms |",
            stored.pages.len(),
            stored.doc.len() as f64 / 1024.0,
            one.as_secs_f64() * 1e3,
            2.0 * one.as_secs_f64() * 1e3
        );
    }
}
