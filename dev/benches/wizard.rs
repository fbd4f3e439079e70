//! `scripts/bench`: per-step Secrets Manager calls and handler latency, the local server's
//! throughput and memory, and each Lambda function binary's peak memory under a Lambda Runtime API
//! stand-in. Prints tables; asserts nothing about speed (goals are printed beside the figures).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use serde_json::{Value, json};
use shared::app::App;
use shared::edge::Function;
use shared::edge::http::{OrgSource, router, with_console_events};
use shared::events::MemorySink;
use shared::store::ConnectionStore;
use shared::store::embedded::EmbeddedStore;
use shared::store::secrets_manager::SecretsManagerStore;
use tokio::sync::Mutex;
use tower::ServiceExt;

const SECRET: &str = "Bn55Q~bench.secret_value-0123456789abcdef";
const OTHER_SECRET: &str = "Bn66Q~bench.other_value-0123456789abcdef";
const STEPS: [&str; 8] = [
    "start (POST)",
    "app-registration (PUT)",
    "client-secret (PUT)",
    "subscription (PUT)",
    "custom-role, first export (GET)",
    "custom-role, again (GET)",
    "read (GET)",
    "delete (DELETE)",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("azc-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn call(router: &axum::Router, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("x-org-id", "org-bench")
        .header("content-type", "application/json")
        .body(
            body.map(|b| Body::from(b.to_string()))
                .unwrap_or_else(Body::empty),
        )
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Runs the wizard `n` times; per step, the latencies and the store calls.
async fn steps(
    store: Arc<dyn ConnectionStore>,
    calls: Option<Arc<SecretsManagerStore>>,
    n: usize,
) -> Vec<(Vec<Duration>, u64)> {
    let router = router(
        App::new(store, Arc::new(MemorySink::default())),
        OrgSource::local_header(),
        &Function::ALL,
    );
    let mut out: Vec<(Vec<Duration>, u64)> = STEPS.iter().map(|_| (Vec::new(), 0)).collect();
    let total = || calls.as_ref().map_or(0, |c| c.calls().total());
    for _ in 0..n {
        let mut id = String::new();
        for (i, _) in STEPS.iter().enumerate() {
            let base = format!("/connections/{id}");
            let (method, path, body) = match i {
                0 => (
                    "POST",
                    "/connections".to_owned(),
                    Some(json!({"accountId": "act-0000beef"})),
                ),
                1 => (
                    "PUT",
                    format!("{base}/app-registration"),
                    Some(
                        json!({"tenantId": "contoso.onmicrosoft.com", "clientId": "11111111-2222-4333-8444-555555555555"}),
                    ),
                ),
                2 => (
                    "PUT",
                    format!("{base}/client-secret"),
                    Some(json!({"clientSecret": SECRET, "expiresAt": "2099-01-01"})),
                ),
                3 => (
                    "PUT",
                    format!("{base}/subscription"),
                    Some(json!({"subscriptionId": "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"})),
                ),
                4 | 5 => ("GET", format!("{base}/custom-role"), None),
                6 => ("GET", base.clone(), None),
                _ => ("DELETE", base.clone(), None),
            };
            let before = total();
            let t = Instant::now();
            let (status, body) = call(&router, method, &path, body).await;
            out[i].0.push(t.elapsed());
            out[i].1 += total() - before;
            assert!(status < 300, "{method} {path}: {status} {body}");
            if i == 0 {
                id = body["connectionId"].as_str().unwrap().to_owned();
            }
        }
    }
    out
}

fn status_kb(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

async fn local_server() {
    let dir = temp_dir();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_azure-connect-local"))
        .args(["--listen", "127.0.0.1:0", "--store"])
        .arg(format!("embedded:{}", dir.join("store").display()))
        .arg("--events-file")
        .arg(dir.join("events.jsonl"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let startup = started.elapsed();
    // Keep reading its log lines (one per request), as a log shipper would.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let ready: Value = serde_json::from_str(&line).unwrap();
    let base = format!("http://{}", ready["fields"]["listen"].as_str().unwrap());
    let pid = child.id();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rest = status_kb(pid, "VmRSS:");

    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/connections"))
        .header("x-org-id", "org-bench")
        .json(&json!({"accountId": "act-0000beef"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{base}/connections/{}", created["connectionId"].as_str().unwrap());
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(3);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (http, url, done) = (http.clone(), url.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = http
                        .get(&url)
                        .header("x-org-id", "org-bench")
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t = Instant::now();
    for task in tasks {
        task.await.unwrap();
    }
    let rps = done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    let peak = status_kb(pid, "VmHWM:");
    child.kill().unwrap();
    child.wait().unwrap();

    println!("\n## Local server (release, embedded store, 16 concurrent clients on loopback, 3 s)\n");
    println!("| figure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| start-up to ready | {:.0} ms | well under 1 s |",
        startup.as_secs_f64() * 1000.0
    );
    println!("| GET /connections/{{id}} | {rps:.0} requests/s | |");
    println!("| RSS at rest | {} | |", mb(rest));
    println!("| peak RSS under load | {} | |", mb(peak));
}

/// A stand-in for the Lambda Runtime API: hands out `events` one by one, counts the answers.
#[derive(Clone)]
struct RuntimeApi {
    queue: Arc<Mutex<VecDeque<Value>>>,
    ok: Arc<AtomicUsize>,
    errors: Arc<AtomicUsize>,
}

async fn next(State(api): State<RuntimeApi>) -> axum::response::Response {
    let event = api.queue.lock().await.pop_front();
    let Some(event) = event else {
        // No more work: park the function, as Lambda does between invocations.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let deadline = (chrono::Utc::now() + chrono::Duration::seconds(30)).timestamp_millis();
    axum::response::Response::builder()
        .header("lambda-runtime-aws-request-id", uuid::Uuid::new_v4().to_string())
        .header("lambda-runtime-deadline-ms", deadline.to_string())
        .header(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench",
        )
        .header("content-type", "application/json")
        .body(Body::from(event.to_string()))
        .unwrap()
}

async fn function_memory(
    function: Function,
    invocations: usize,
    azure: &str,
) -> (u64, u64, usize, usize, Duration) {
    let dir = root().join("events").join(function.name());
    let samples: Vec<Value> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    let queue: VecDeque<Value> = samples.iter().cycle().take(invocations).cloned().collect();
    let (api, addr, server) = runtime_api(queue).await;

    // The sample events name this connection; make it exist, with every input step done.
    let prefix = format!("bench-{}/", uuid::Uuid::new_v4().simple());
    let sdk = shared::config::aws_sdk_config().await;
    let store = Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        prefix.clone(),
        None,
    ));
    let app = App::new(store, Arc::new(MemorySink::default()));
    let setup = with_console_events(
        router(app.clone(), OrgSource::local_header(), &Function::ALL),
        app,
        &Function::ALL,
    );
    let org_req = |method: &str, path: String, body: Value| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("x-org-id", "606079861234")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let id = "0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a";
    let start = json!({"source": "spot.console", "detail-type": "Connection Started",
        "detail": {"orgId": "606079861234", "accountId": "act-1a2b3c4d", "connectionId": id}});
    let r = setup
        .clone()
        .oneshot(org_req("POST", "/events".into(), start))
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    for (path, body) in [
        (
            "app-registration",
            json!({"tenantId": "contoso.onmicrosoft.com", "clientId": "11111111-2222-4333-8444-555555555555"}),
        ),
        ("client-secret", json!({"clientSecret": SECRET})),
        (
            "subscription",
            json!({"subscriptionId": "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"}),
        ),
    ] {
        let r = setup
            .clone()
            .oneshot(org_req("PUT", format!("/connections/{id}/{path}"), body))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    let env = [
        ("CONNECTION_SECRET_PREFIX", prefix),
        ("ORG_ID_CLAIM", "org_id".to_owned()),
        ("AZURE_AUTHORITY_HOST", azure.to_owned()),
        ("AZURE_RESOURCE_MANAGER_ENDPOINT", azure.to_owned()),
        ("AZURE_GRAPH_ENDPOINT", azure.to_owned()),
    ];
    let result = run_binary(function.name(), &api, addr, invocations, &env).await;
    server.abort();
    result
}

/// Connect Account and the 3.3 early check with 150 ms added to every Azure answer: latency as a
/// ratio to the floor of the round trips the work needs (2 for connect: token, then subscription and
/// permissions side by side; 1 for the early check: the token).
/// An Azure emulator that knows the bench's and the sample events' inputs, with Spot's role assigned.
async fn azure(latency_ms: u64) -> (azure_emulator::Emulator, String) {
    let mut world = azure_emulator::World::single(
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "contoso.onmicrosoft.com",
        "11111111-2222-4333-8444-555555555555",
        &[SECRET, OTHER_SECRET, "Xy18Q~sample.Secret_Value-0123456789abcd"],
        "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab",
        Some(
            shared::domain::role::required_actions()
                .map(str::to_owned)
                .collect(),
        ),
    );
    world.behaviour = azure_emulator::Behaviour {
        latency_ms,
        permissions_page_size: 10,
        ..Default::default()
    };
    let emulator = azure_emulator::Emulator::new(world);
    let addr = emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (emulator, format!("http://{addr}"))
}

async fn connect_latency() {
    const LATENCY_MS: u64 = 150;
    let secrets = [SECRET, OTHER_SECRET];
    let (emulator, base) = azure(LATENCY_MS).await;
    let azure = shared::config::AzureConfig::from_lookup(|k| match k {
        "AZURE_AUTHORITY_HOST" | "AZURE_RESOURCE_MANAGER_ENDPOINT" | "AZURE_GRAPH_ENDPOINT" => {
            Some(base.clone())
        }
        _ => None,
    })
    .unwrap();
    let store: Arc<dyn ConnectionStore> = Arc::new(EmbeddedStore::open(&temp_dir(), "bench/").unwrap());
    let app =
        App::new(store, Arc::new(MemorySink::default())).with_validator(Arc::new(azure.validator().unwrap()));
    let router = router(app, OrgSource::local_header(), &Function::ALL);
    let (_, c) = call(
        &router,
        "POST",
        "/connections",
        Some(json!({"accountId": "act-0000beef"})),
    )
    .await;
    let id = c["connectionId"].as_str().unwrap().to_owned();
    let b = format!("/connections/{id}");
    for (path, body) in [
        (
            "app-registration",
            json!({"tenantId": "contoso.onmicrosoft.com", "clientId": "11111111-2222-4333-8444-555555555555"}),
        ),
        (
            "subscription",
            json!({"subscriptionId": "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"}),
        ),
    ] {
        assert_eq!(
            call(&router, "PUT", &format!("{b}/{path}"), Some(body)).await.0,
            200
        );
    }
    let rounds = 10;
    let (mut early, mut connect) = (Vec::new(), Vec::new());
    let (mut early_calls, mut connect_calls) = (0, 0);
    for i in 0..rounds {
        emulator.clear_requests();
        let t = Instant::now();
        let (s, v) = call(
            &router,
            "PUT",
            &format!("{b}/client-secret"),
            Some(json!({"clientSecret": secrets[i % 2]})),
        )
        .await;
        early.push(t.elapsed());
        assert_eq!(s, 200, "{v}");
        early_calls += emulator.requests().len();
        emulator.clear_requests();
        let t = Instant::now();
        let (s, v) = call(&router, "POST", &format!("{b}/connect"), None).await;
        connect.push(t.elapsed());
        assert_eq!(s, 200, "{v}");
        connect_calls += emulator.requests().len();
    }
    let floor = |trips: u64| Duration::from_millis(LATENCY_MS * trips);
    println!(
        "\n## Azure round trips ({LATENCY_MS} ms added to every Azure answer by the emulator; {rounds} runs)\n"
    );
    println!("| operation | Azure calls | p50 | floor | ratio | goal |");
    println!("|---|---|---|---|---|---|");
    for (name, mut v, calls, trips) in [
        ("Connect Account", connect, connect_calls, 2),
        ("3.3 early check (PUT client-secret)", early, early_calls, 1),
    ] {
        let p50 = pct(&mut v, 0.5);
        println!(
            "| {name} | {:.1} | {:.0} ms | {:.0} ms | {:.2} | ≤ 1.1 |",
            calls as f64 / rounds as f64,
            p50.as_secs_f64() * 1e3,
            floor(trips).as_secs_f64() * 1e3,
            p50.as_secs_f64() / floor(trips).as_secs_f64()
        );
    }
}

/// Serves a Lambda Runtime API stand-in that hands out `queue`.
async fn runtime_api(
    queue: VecDeque<Value>,
) -> (
    RuntimeApi,
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let api = RuntimeApi {
        queue: Arc::new(Mutex::new(queue)),
        ok: Arc::default(),
        errors: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", axum::routing::get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            axum::routing::post(|State(api): State<RuntimeApi>| async move {
                api.ok.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::ACCEPTED
            }),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            axum::routing::post(|State(api): State<RuntimeApi>| async move {
                api.errors.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::ACCEPTED
            }),
        )
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    (api, addr, server)
}

/// Runs a release binary against the stand-in until it answered `invocations` events; its RSS
/// after, its peak RSS, answers, errors, wall time.
async fn run_binary(
    name: &str,
    api: &RuntimeApi,
    addr: std::net::SocketAddr,
    invocations: usize,
    env: &[(&str, String)],
) -> (u64, u64, usize, usize, Duration) {
    let binary = root().join("target/release").join(name);
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run scripts/bench, which builds the release binaries)",
                binary.display()
            )
        });
    let pid = child.id();
    while api.ok.load(Ordering::SeqCst) + api.errors.load(Ordering::SeqCst) < invocations {
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{name} did not finish"
        );
    }
    let took = started.elapsed();
    let (rss, peak) = (status_kb(pid, "VmRSS:"), status_kb(pid, "VmHWM:"));
    child.kill().unwrap();
    child.wait().unwrap();
    (
        rss,
        peak,
        api.ok.load(Ordering::SeqCst),
        api.errors.load(Ordering::SeqCst),
        took,
    )
}

/// The daily expiry scan over `n` connections in moto, 1 % of them due: wall time and Secrets
/// Manager calls by operation in process, then the `secret-expiry` binary's peak memory on the same
/// connections a fortnight later (the due ones have expired by then).
async fn expiry_scan_bench(n: usize) {
    use shared::domain::{
        AccountId, ClientId, ClientSecret, Command, Connection, ConnectionId, OrgId, SecretExpiry, TenantId,
    };
    use shared::store::WriteToken;
    let prefix = format!("scan-{}/", uuid::Uuid::new_v4().simple());
    let sdk = shared::config::aws_sdk_config().await;
    let store = Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        prefix.clone(),
        None,
    ));
    let now = chrono::Utc::now();
    let created = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    for i in 0..n {
        let (store, limit) = (store.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let days = if i % 100 == 0 { 10 } else { 200 };
            let org = OrgId::parse(&format!("org-{}", i % 50)).unwrap();
            let mut c = Connection::new(
                ConnectionId::new_random(),
                org,
                AccountId::parse("act-0000beef").unwrap(),
                now,
            );
            let secret = ClientSecret::parse(secrecy::SecretString::from(SECRET.to_owned())).unwrap();
            let expiry =
                SecretExpiry::parse(&(now + chrono::Duration::days(days)).to_rfc3339(), now).unwrap();
            let commands = [
                Command::AppRegistration {
                    tenant: TenantId::parse("contoso.onmicrosoft.com").unwrap(),
                    client: ClientId::parse("11111111-2222-4333-8444-555555555555").unwrap(),
                },
                Command::ClientSecret {
                    secret,
                    expires_at: Some(expiry),
                },
            ];
            for cmd in &commands {
                c.apply(cmd, "seed", now).unwrap();
            }
            store
                .create(&c, &WriteToken::derive(&format!("seed-{i}"), None, 0))
                .await
                .unwrap();
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let seeding = created.elapsed();

    use std::sync::atomic::Ordering::Relaxed;
    let c = store.calls();
    let snapshot = || [&c.list, &c.get, &c.put, &c.update_stage, &c.tag].map(|a| a.load(Relaxed));
    let before = snapshot();
    let app = App::new(store.clone(), Arc::new(MemorySink::default()));
    let started = Instant::now();
    let report = app
        .scan_expiry(
            "bench",
            now,
            &shared::domain::expiry::ReminderPolicy::default(),
            Duration::ZERO,
            None,
        )
        .await
        .unwrap();
    let wall = started.elapsed();
    let after = snapshot();
    let d: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();

    // The binary, a fortnight later, writes paced at 100 connections/s for the bench.
    let later = now + chrono::Duration::days(15);
    let event = json!({"scanId": "bench-binary", "scheduledAt": later});
    let (api, addr, server) = runtime_api(VecDeque::from([event])).await;
    let env = [
        ("CONNECTION_SECRET_PREFIX", prefix),
        ("SCAN_WRITES_PER_SECOND", "100".to_owned()),
    ];
    let (_, peak, ok, errors, took) = run_binary("secret-expiry", &api, addr, 1, &env).await;
    server.abort();

    println!(
        "\n## Expiry scan over {n} connections in moto (1 % due; seeding took {:.0} s)\n",
        seeding.as_secs_f64()
    );
    println!("| figure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| listed / reminded / expired | {} / {} / {} | |",
        report.listed, report.reminded, report.expired
    );
    println!(
        "| wall time, in process (no pacing) | {:.2} s | |",
        wall.as_secs_f64()
    );
    println!(
        "| Secrets Manager calls: ListSecrets / GetSecretValue / PutSecretValue / UpdateSecretVersionStage / Tag+Untag | {} / {} / {} / {} / {} | ⌈N/100⌉ = {} list calls + work for due only |",
        d[0],
        d[1],
        d[2],
        d[3],
        d[4],
        n.div_ceil(100)
    );
    println!(
        "| `secret-expiry` binary, a fortnight later (expires the due ones, paced 100/s): answered, errors, wall, peak RSS | {ok}, {errors}, {:.1} s, {} | |",
        took.as_secs_f64(),
        mb(peak)
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        std::env::var("AWS_ENDPOINT_URL").expect("run scripts/bench: it starts moto and sets AWS_ENDPOINT_URL");

        let embedded: Arc<dyn ConnectionStore> = Arc::new(EmbeddedStore::open(&temp_dir(), "bench/").unwrap());
        let emb = steps(embedded, None, 300).await;
        let sm = Arc::new(SecretsManagerStore::new(
            aws_sdk_secretsmanager::Client::new(&shared::config::aws_sdk_config().await),
            format!("bench-{}/", uuid::Uuid::new_v4().simple()),
            None,
        ));
        let moto = steps(sm.clone(), Some(sm), 30).await;

        println!("## Per step (release build; handler = the router the Lambdas serve)\n");
        println!("| step | Secrets Manager calls / request | goal | handler p50, embedded | p99, embedded | p50, Secrets Manager (moto) |");
        println!("|---|---|---|---|---|---|");
        for (i, name) in STEPS.iter().enumerate() {
            let (mut e, _) = emb[i].clone();
            let (mut m, calls) = moto[i].clone();
            let goal = match i {
                0 => "1 (create)",
                4 => "≤ 3 (write)",
                1..=3 => "≤ 3 (write)",
                5 | 6 => "1 (read)",
                _ => "",
            };
            println!(
                "| {name} | {:.1} | {goal} | {:.0} µs | {:.0} µs | {:.1} ms |",
                calls as f64 / m.len() as f64,
                pct(&mut e, 0.5).as_secs_f64() * 1e6,
                pct(&mut e, 0.99).as_secs_f64() * 1e6,
                pct(&mut m, 0.5).as_secs_f64() * 1e3,
            );
        }

        connect_latency().await;

        let n = std::env::var("BENCH_SCAN_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
        expiry_scan_bench(n).await;

        local_server().await;

        println!("\n## Lambda function binaries (release; a Lambda Runtime API stand-in feeds each its events/ samples 200 times; Secrets Manager = moto)\n");
        println!("| function | answered | errors | RSS after | peak RSS | goal | wall time |");
        println!("|---|---|---|---|---|---|---|");
        let (_azure, azure_url) = azure(0).await;
        for f in Function::ALL {
            let (rss, peak, ok, errors, took) = function_memory(f, 200, &azure_url).await;
            println!(
                "| {} | {ok} | {errors} | {} | {} | ≤ 30 MB | {:.2} s |",
                f.name(),
                mb(rss),
                mb(peak),
                took.as_secs_f64()
            );
        }
    });
}
