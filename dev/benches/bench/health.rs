//! The health check over N linked connections in moto with the Azure emulator, 1 % of them broken
//! (half with a secret Azure no longer knows, half with a subscription that is gone).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shared::app::{App, HealthSchedule, Window};
use shared::events::MemorySink;
use shared::store::ConnectionStore;
use shared::store::secrets_manager::SecretsManagerStore;

use super::lambdas::{run_binary, runtime_api};
use super::support::*;

pub(crate) async fn health_bench(n: usize) {
    use shared::domain::{
        AccountId, ClientId, ClientSecret, Command, Connection, ConnectionId, CredentialType, OrgId,
        SubscriptionId, TenantId, ValidationRecord,
    };
    use shared::store::WriteToken;
    let (emulator, azure_url) = azure(0).await;
    let prefix = format!("health-{}/", uuid::Uuid::new_v4().simple());
    let sdk = shared::config::aws_sdk_config().await;
    let store = Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        prefix.clone(),
        None,
    ));
    let now = chrono::Utc::now();
    let seeded = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    // moto is not safe under many concurrent writers ("dictionary changed size during
    // iteration", answered as an HTML 500): a few at a time, and a seed retried on that.
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    for i in 0..n {
        let (store, limit) = (store.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let org = OrgId::parse(&format!("org-{}", i % 50)).unwrap();
            let mut c = Connection::new(
                ConnectionId::new_random(),
                org,
                AccountId::parse("act-0000beef").unwrap(),
                now,
            );
            // 1 % broken since they were linked: a revoked secret, or a subscription gone.
            let secret = if i % 200 == 0 {
                OTHER_SECRET.replace("Bn66", "Gone")
            } else {
                SECRET.to_owned()
            };
            let subscription = if i % 200 == 100 {
                "00000000-0000-4000-8000-00000000dead"
            } else {
                "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"
            };
            let commands = [
                Command::AppRegistration {
                    tenant: TenantId::parse("contoso.onmicrosoft.com").unwrap(),
                    client: ClientId::parse("11111111-2222-4333-8444-555555555555").unwrap(),
                },
                Command::ClientSecret {
                    secret: ClientSecret::parse(secrecy::SecretString::from(secret)).unwrap(),
                    expires_at: None,
                },
                Command::Subscription {
                    subscription: SubscriptionId::parse(subscription).unwrap(),
                    replace_estate: false,
                },
                Command::ExportCustomRole,
            ];
            for cmd in &commands {
                c.apply(cmd, "seed", now).unwrap();
            }
            let inputs = c.validation_inputs().unwrap().fingerprint;
            let linked = ValidationRecord {
                checked_at: now,
                inputs,
                checks: vec![],
                warnings: vec![],
                subscription_name: Some("Bench".into()),
                failure: None,
                graph_manages_credentials: Some(false),
                secret_key_id: None,
                secret_end: None,
                credential: CredentialType::Secret,
                role_version: 1,
                role_id: None,
                over_privilege: None,
            };
            c.apply(&Command::RecordValidation(Box::new(linked)), "seed-linked", now)
                .unwrap();
            let token = WriteToken::derive(&format!("seed-{i}"), None, 0);
            let mut attempt = 0;
            loop {
                match store.create(&c, &token).await {
                    Ok(_) | Err(shared::store::StoreError::AlreadyExists) => break,
                    Err(e) if attempt < 5 => {
                        attempt += 1;
                        eprintln!("seed {i}: {e}; again");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("seed {i}: {e}"),
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let seeding = seeded.elapsed();

    use std::sync::atomic::Ordering::Relaxed;
    let c = store.calls();
    let snapshot = || {
        [
            &c.list,
            &c.get,
            &c.create,
            &c.put,
            &c.update_stage,
            &c.tag,
            &c.delete,
        ]
        .map(|a| a.load(Relaxed))
    };
    let config = shared::config::Config::from_lookup(|k| match k {
        "AZURE_AUTHORITY_HOST" | "AZURE_RESOURCE_MANAGER_ENDPOINT" | "AZURE_GRAPH_ENDPOINT" => {
            Some(azure_url.clone())
        }
        _ => None,
    })
    .unwrap();
    let app = App::new(store.clone(), Arc::new(MemorySink::default()))
        .with_validator(Arc::new(config.azure.validator().unwrap()));
    let schedule = HealthSchedule {
        period: Duration::from_secs(86_400),
        pace: Duration::ZERO,
    };
    let before = snapshot();
    let azure_before = emulator.requests().len();
    let started = Instant::now();
    let report = app
        .health_pass("bench", now, Window::All, schedule)
        .await
        .unwrap();
    let wall = started.elapsed();
    let d: Vec<u64> = snapshot().iter().zip(before).map(|(a, b)| a - b).collect();
    let azure_calls = emulator.requests().len() - azure_before;

    // The binary over the same connections (a forced pass: every one checked, the broken ones
    // already degraded, so no write at all).
    let event = json!({"force": true});
    let (api, addr, server) = runtime_api(VecDeque::from([event])).await;
    let env = [
        ("CONNECTION_SECRET_PREFIX", prefix),
        ("HEALTH_CHECKS_PER_SECOND", "1000".to_owned()),
        ("AZURE_AUTHORITY_HOST", azure_url.clone()),
        ("AZURE_RESOURCE_MANAGER_ENDPOINT", azure_url.clone()),
        ("AZURE_GRAPH_ENDPOINT", azure_url.clone()),
    ];
    let (_, _, peak, ok, errors, took) = run_binary("health-check", &api, addr, 1, &env).await;
    server.abort();

    println!(
        "\n## Health check over {n} linked connections in moto, Azure in the emulator (1 % broken; seeding took {:.0} s)\n",
        seeding.as_secs_f64()
    );
    println!("| figure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| checked / degraded / unchanged / deferred | {} / {} / {} / {} | degraded = the broken 1 % |",
        report.checked, report.degraded, report.unchanged, report.deferred
    );
    println!(
        "| wall time, in process (no pacing) | {:.1} s | |",
        wall.as_secs_f64()
    );
    println!(
        "| Secrets Manager: ListSecrets / GetSecretValue / CreateSecret / PutSecretValue / UpdateSecretVersionStage / Tag+Untag / DeleteSecret | {} / {} / {} / {} / {} / {} / {} | ⌈N/100⌉ = {} list pages, 2N reads (the document, the secret's credential), writes for the broken only |",
        d[0],
        d[1],
        d[2],
        d[3],
        d[4],
        d[5],
        d[6],
        n.div_ceil(100)
    );
    println!(
        "| Azure calls per connection | {:.1} | |",
        azure_calls as f64 / n as f64
    );
    println!(
        "| `health-check` binary, forced pass over the same connections: answered, errors, wall, peak RSS | {ok}, {errors}, {:.1} s, {} | ≤ 30 MB |",
        took.as_secs_f64(),
        mb(peak)
    );
}
