//! Secrets Manager throttling and outages end as 503 `retryable` after the SDK's bounded retries.
//! moto cannot throttle, so a stand-in answers every call with Secrets Manager's throttling error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::app::App;
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};
use shared::events::MemorySink;
use tower::ServiceExt;

async fn app_against(endpoint: &str) -> App {
    let store = integration_tests::sm_store_at(endpoint, "outage/").await;
    App::new(store, Arc::new(MemorySink::default()))
}

async fn put_subscription(app: App) -> (StatusCode, Option<String>, Value) {
    let router = router(app, OrgSource::local_header(), &Function::ALL);
    let body = json!({"subscriptionId": "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"});
    let path = "/connections/0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a/subscription";
    let r = integration_tests::send_json(&router, "PUT", path, Some("org-1"), Some(&body)).await;
    let retry_after = r
        .headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status, retry_after, r.body)
}

/// A stand-in for Secrets Manager that answers every call with the error `kind` (and `message`);
/// its address, and how many calls it got.
async fn failing_aws(kind: &'static str, message: &'static str) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let stand_in = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            (
                StatusCode::BAD_REQUEST,
                [
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amzn-errortype", kind),
                ],
                json!({"__type": kind, "message": message}).to_string(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, stand_in).await.unwrap() });
    (format!("http://{addr}"), calls)
}

#[tokio::test]
async fn throttling_is_retried_then_503_retryable() {
    let (url, calls) = failing_aws("ThrottlingException", "Rate exceeded").await;
    let (status, retry_after, body) = put_subscription(app_against(&url).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "store-unavailable");
    assert_eq!(body["retryable"], true);
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the SDK's standard mode: 3 attempts, then give up"
    );
}

#[tokio::test]
async fn an_unreachable_store_is_503_retryable() {
    // A port that was just free: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (status, _, body) = put_subscription(app_against(&format!("http://{addr}")).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["retryable"], true);
}

#[tokio::test]
async fn a_rotation_step_against_a_throttled_store_fails_for_a_retry() {
    let (url, _) = failing_aws("ThrottlingException", "Rate exceeded").await;
    let store = integration_tests::sm_store_at(&url, "outage/").await;
    let sink = Arc::new(MemorySink::default());
    let rotator = shared::config::AzureConfig::from_lookup(|_| None)
        .unwrap()
        .rotator(store, sink.clone(), "outage/")
        .unwrap();
    let err = rotator
        .step(
            shared::rotation::RotationStep::Create,
            "outage/org/0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a",
            "token",
        )
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}: {}", err.code());
    assert!(
        sink.events().is_empty(),
        "nothing announced: Secrets Manager retries the step"
    );
}

#[tokio::test]
async fn a_store_failure_is_logged_with_its_cause_and_the_request_id_and_never_the_secret() {
    // Secrets Manager refuses (a permission missing in IAM): ours to fix, a 500.
    let (url, _) = failing_aws(
        "AccessDeniedException",
        "not authorized to perform secretsmanager:GetSecretValue (cause-canary-7731)",
    )
    .await;

    let (logs, _guard) = integration_tests::Captured::start();

    let app = app_against(&url).await;
    let req = Request::put("/connections/0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a/client-secret")
        .header("x-org-id", "org-1")
        .header("content-type", "application/json")
        .header("idempotency-key", "req-cause-1")
        .body(Body::from(
            json!({"clientSecret": integration_tests::SECRET}).to_string(),
        ))
        .unwrap();
    let res = router(app, OrgSource::local_header(), &Function::ALL)
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        !body.contains("cause-canary-7731"),
        "the cause stays in the log: {body}"
    );

    let text = logs.text();
    let line = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["fields"]["code"] == "internal-error")
        .unwrap_or_else(|| panic!("no log line for the failure in:\n{text}"));
    assert_eq!(line["level"], "ERROR", "{line}");
    assert_eq!(
        line["fields"]["request_id"], "org-1:req-cause-1",
        "{line}: the key, scoped to its organization"
    );
    let error = line["fields"]["error"].as_str().unwrap();
    assert!(
        error.contains("cause-canary-7731"),
        "the underlying cause is logged: {error}"
    );
    assert!(
        !text.contains(integration_tests::SECRET),
        "the secret is in the log"
    );
}

#[tokio::test]
async fn a_stalled_store_answers_503_within_the_operation_time_out() {
    // Accepts connections and never answers: the SDK's attempt and operation time-outs end it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = std::time::Instant::now();
    // Without time-outs the request would hang: give up (and fail) well before the test runner.
    let (status, retry_after, body) = tokio::time::timeout(
        std::time::Duration::from_secs(25),
        put_subscription(app_against(&format!("http://{addr}")).await),
    )
    .await
    .expect("a stalled store hung the request: no time-out");
    let took = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        (body["retryable"].as_bool(), retry_after.as_deref()),
        (Some(true), Some("1"))
    );
    assert!(
        took <= shared::config::AWS_OPERATION_TIMEOUT + std::time::Duration::from_secs(2),
        "answered after {took:?}: well inside API Gateway's 30 s"
    );
}
