//! Connect Account and the 3.3 early check against round-trip floors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shared::app::App;
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};
use shared::events::MemorySink;
use shared::store::ConnectionStore;
use shared::store::embedded::EmbeddedStore;

use super::support::*;

/// Connect Account and the 3.3 early check with 150 ms added to every Azure answer: latency as a
/// ratio to the floor of the round trips the work needs (2 for connect: token, then subscription and
/// permissions side by side; 1 for the early check: the token).
pub(crate) async fn connect_latency() {
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
