//! Per step: Secrets Manager calls and handler latency, embedded store and Secrets Manager (moto).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shared::app::App;
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};
use shared::events::MemorySink;
use shared::store::ConnectionStore;
use shared::store::secrets_manager::SecretsManagerStore;

use super::support::*;

pub(crate) const STEPS: [&str; 8] = [
    "start (POST)",
    "app-registration (PUT)",
    "client-secret (PUT)",
    "subscription (PUT)",
    "custom-role, first export (GET)",
    "custom-role, again (GET)",
    "read (GET)",
    "delete (DELETE)",
];

/// Runs the wizard `n` times; per step, the latencies and the store calls.
pub(crate) async fn steps(
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
