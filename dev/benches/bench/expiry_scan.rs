//! The daily expiry scan over N connections in moto.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shared::app::App;
use shared::events::MemorySink;
use shared::store::ConnectionStore;
use shared::store::secrets_manager::SecretsManagerStore;

use super::lambdas::{run_binary, runtime_api};
use super::support::*;

/// The daily expiry scan over `n` connections in moto, 1 % of them due: wall time and Secrets
/// Manager calls by operation in process, then the `secret-expiry` binary's peak memory on the same
/// connections a fortnight later (the due ones have expired by then).
pub(crate) async fn expiry_scan_bench(n: usize) {
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
    let (_, _, peak, ok, errors, took) = run_binary("secret-expiry", &api, addr, 1, &env).await;
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
