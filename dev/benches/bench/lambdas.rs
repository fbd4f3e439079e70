//! Each Lambda function binary under a Lambda Runtime API stand-in: answers, errors, memory.

use std::collections::VecDeque;
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
use shared::store::secrets_manager::SecretsManagerStore;
use tokio::sync::Mutex;
use tower::ServiceExt;

use super::support::*;

/// A stand-in for the Lambda Runtime API: hands out `events` one by one, counts the answers.
#[derive(Clone)]
pub(crate) struct RuntimeApi {
    queue: Arc<Mutex<VecDeque<Value>>>,
    /// When the function first asked for work: the end of its init.
    pub(crate) first_next: Arc<std::sync::Mutex<Option<Instant>>>,
    ok: Arc<AtomicUsize>,
    errors: Arc<AtomicUsize>,
}

pub(crate) async fn next(State(api): State<RuntimeApi>) -> axum::response::Response {
    api.first_next.lock().unwrap().get_or_insert_with(Instant::now);
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

pub(crate) async fn function_memory(function: Function, invocations: usize, azure: &str) -> Run {
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
        shared::edge::console::ConsoleGate::open(),
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

/// Serves a Lambda Runtime API stand-in that hands out `queue`.
pub(crate) async fn runtime_api(
    queue: VecDeque<Value>,
) -> (
    RuntimeApi,
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let api = RuntimeApi {
        queue: Arc::new(Mutex::new(queue)),
        first_next: Arc::default(),
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

/// What one binary did under the stand-in: RSS after the first 100 answers and after all of
/// them, peak RSS (kB), answers, errors, wall time.
pub(crate) type Run = (u64, u64, u64, usize, usize, Duration);

/// Runs a release binary against the stand-in until it answered `invocations` events.
pub(crate) async fn run_binary(
    name: &str,
    api: &RuntimeApi,
    addr: std::net::SocketAddr,
    invocations: usize,
    env: &[(&str, String)],
) -> Run {
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
    let mut early = 0;
    loop {
        let answered = api.ok.load(Ordering::SeqCst) + api.errors.load(Ordering::SeqCst);
        if early == 0 && answered >= 100.min(invocations) {
            early = status_kb(pid, "VmRSS:");
        }
        if answered >= invocations {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
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
        early,
        rss,
        peak,
        api.ok.load(Ordering::SeqCst),
        api.errors.load(Ordering::SeqCst),
        took,
    )
}
