//! What every figure uses: paths, percentiles, one request through a router, /proc memory, the
//! Azure emulator.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use tower::ServiceExt;

pub(crate) const SECRET: &str = "Bn55Q~bench.secret_value-0123456789abcdef";
pub(crate) const OTHER_SECRET: &str = "Bn66Q~bench.other_value-0123456789abcdef";
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("azc-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub(crate) fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub(crate) async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
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

pub(crate) fn status_kb(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A request of the HTTP trigger with this id, received now.
pub(crate) fn req(id: &str) -> shared::app::RequestMeta {
    shared::app::RequestMeta {
        request_id: id.to_owned(),
        received_at: chrono::Utc::now(),
        trigger: shared::app::Trigger::Http,
        fingerprint: None,
    }
}

pub(crate) fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

/// An Azure emulator that knows the bench's and the sample events' inputs, with Spot's role assigned.
pub(crate) async fn azure(latency_ms: u64) -> (azure_emulator::Emulator, String) {
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
