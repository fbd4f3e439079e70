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
    let azure = azure_at(&base);
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

/// Azure at the emulator's address.
fn azure_at(base: &str) -> shared::config::AzureConfig {
    shared::config::AzureConfig::from_lookup(|k| match k {
        "AZURE_AUTHORITY_HOST" | "AZURE_RESOURCE_MANAGER_ENDPOINT" | "AZURE_GRAPH_ENDPOINT" => {
            Some(base.to_owned())
        }
        _ => None,
    })
    .unwrap()
}

/// A signer that takes `delay` longer: KMS at a distance (moto answers in a millisecond).
#[derive(Debug)]
struct Distant {
    inner: shared::issuer::kms::KmsSigner,
    delay: Duration,
    signs: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl shared::issuer::Signer for Distant {
    fn keys(&self) -> &[shared::issuer::Jwk] {
        self.inner.keys()
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, shared::issuer::SigningError> {
        self.signs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(self.delay).await;
        self.inner.sign(message).await
    }
}

/// Connect Account on a federated connection, with 150 ms added to every Azure answer and to every
/// KMS `Sign` (moto's KMS behind a delay): the floor is one signature, then the two Azure round
/// trips (token, then the reads side by side); the ARM and Graph assertions are signed side by side.
pub(crate) async fn federated_connect_latency() {
    const LATENCY_MS: u64 = 150;
    let (emulator, base) = azure(LATENCY_MS).await;
    let azure = azure_at(&base);
    let kms = aws_sdk_kms::Client::new(&shared::config::aws_sdk_config().await);
    let key = kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let signer = Arc::new(Distant {
        inner: shared::issuer::kms::KmsSigner::load(kms, vec![key_id])
            .await
            .unwrap(),
        delay: Duration::from_millis(LATENCY_MS),
        signs: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = Arc::new(shared::issuer::Issuer::new(
        format!("http://{}/oidc", listener.local_addr().unwrap()),
        signer.clone(),
    ));
    let store: Arc<dyn ConnectionStore> = Arc::new(EmbeddedStore::open(&temp_dir(), "bench/").unwrap());
    let validator = azure.validator().unwrap().with_issuer(issuer.clone());
    let app = App::new(store, Arc::new(MemorySink::default()))
        .with_validator(Arc::new(validator))
        .with_issuer(issuer);
    let router = router(app, OrgSource::local_header(), &Function::ALL);
    let served = router.clone();
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    let (_, c) = call(
        &router,
        "POST",
        "/connections",
        Some(json!({"accountId": "act-0000feed", "credentialType": "federated"})),
    )
    .await;
    let id = c["connectionId"].as_str().unwrap().to_owned();
    let b = format!("/connections/{id}");
    call(
        &router,
        "PUT",
        &format!("{b}/app-registration"),
        Some(json!({"tenantId": "contoso.onmicrosoft.com", "clientId": "11111111-2222-4333-8444-555555555555"})),
    )
    .await;
    let (_, values) = call(&router, "GET", &format!("{b}/federated-credential"), None).await;
    call(
        &router,
        "PUT",
        &format!("{b}/subscription"),
        Some(json!({"subscriptionId": "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"})),
    )
    .await;
    emulator.update(|w| {
        w.tenants[0].apps[0]
            .federated_credentials
            .push(azure_emulator::FederatedCredential {
                id: "bench".into(),
                name: values["name"].as_str().unwrap().to_owned(),
                issuer: values["issuer"].as_str().unwrap().to_owned(),
                subject: values["subject"].as_str().unwrap().to_owned(),
                audiences: vec!["api://AzureADTokenExchange".into()],
                description: None,
                created_at: None,
            })
    });
    let rounds = 10;
    let mut connect = Vec::new();
    let mut azure_calls = 0;
    let before = signer.signs.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..rounds {
        emulator.clear_requests();
        let t = Instant::now();
        let (s, v) = call(&router, "POST", &format!("{b}/connect"), None).await;
        connect.push(t.elapsed());
        assert_eq!(s, 200, "{v}");
        azure_calls += emulator.requests().len();
    }
    let signs = signer.signs.load(std::sync::atomic::Ordering::Relaxed) - before;
    let floor = Duration::from_millis(LATENCY_MS * 3);
    let p50 = pct(&mut connect, 0.5);
    println!(
        "\n## Federated Connect Account ({LATENCY_MS} ms added to every Azure answer and to every KMS Sign; {rounds} runs)\n"
    );
    println!("| operation | KMS signs | Azure calls | p50 | floor (sign + 2 round trips) | ratio | goal |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| Connect Account, federated | {:.1} | {:.1} | {:.0} ms | {:.0} ms | {:.2} | ≤ 1.1 |",
        signs as f64 / rounds as f64,
        azure_calls as f64 / rounds as f64,
        p50.as_secs_f64() * 1e3,
        floor.as_secs_f64() * 1e3,
        p50.as_secs_f64() / floor.as_secs_f64()
    );
}
