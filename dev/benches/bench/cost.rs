//! `BENCH_ONLY=cost scripts/bench`: what one connection costs a month, from the calls measured
//! here (Secrets Manager through the counting store in moto, KMS signatures through a counting
//! signer, events through the sink, the health check's time with Azure 150 ms away) and the dated
//! table of public AWS prices below. Health every 24 h, the expiry scan daily; one line per item,
//! at 1,000, 10,000 and 100,000 connections (the stack's fixed costs shared among them).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use shared::app::{App, HealthSchedule, Operation, Window};
use shared::domain::{AccountId, Command, CredentialType, OrgId};
use shared::events::MemorySink;
use shared::issuer::{Issuer, Jwk, Signer, SigningError};
use shared::store::secrets_manager::SecretsManagerStore;

use crate::support::{SECRET, azure, req};

/// Public prices, us-east-1, as read on 2026-11-29 (aws.amazon.com/<service>/pricing). Free tiers
/// left out (an account's, not a connection's).
pub(crate) mod price {
    /// Secrets Manager: per secret and month; per 10,000 API calls.
    pub const SECRET_MONTH: f64 = 0.40;
    pub const SM_PER_10K_CALLS: f64 = 0.05;
    /// KMS: per customer managed key and month; per 10,000 symmetric requests (the credential
    /// key's decrypts through Secrets Manager); per 10,000 asymmetric requests (the issuer's
    /// `Sign`: the asymmetric rate, 5 × the symmetric one, taken conservatively for RSA 2048).
    pub const KMS_KEY_MONTH: f64 = 1.00;
    pub const KMS_PER_10K_SYMMETRIC: f64 = 0.03;
    pub const KMS_PER_10K_ASYMMETRIC: f64 = 0.15;
    /// Lambda arm64: per GB-second; per million requests.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_PER_MILLION: f64 = 0.20;
    /// EventBridge: per million custom events put; Scheduler: per million invocations.
    pub const EVENTS_PER_MILLION: f64 = 1.00;
    pub const SCHEDULER_PER_MILLION: f64 = 1.00;
    /// CloudWatch Logs: per GB ingested (the functions' JSON logs and EMF lines).
    pub const LOGS_PER_GB: f64 = 0.50;
    /// CloudWatch: per alarm and month (standard resolution); per dashboard and month.
    pub const ALARM_MONTH: f64 = 0.10;
    pub const DASHBOARD_MONTH: f64 = 3.00;
}

/// A signer that counts its signatures (each is one KMS `Sign` in AWS).
#[derive(Debug)]
struct CountingSigner {
    inner: Arc<dyn Signer>,
    signs: Arc<AtomicU64>,
}

#[async_trait]
impl Signer for CountingSigner {
    fn keys(&self) -> &[Jwk] {
        self.inner.keys()
    }
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        self.signs.fetch_add(1, Relaxed);
        self.inner.sign(message).await
    }
}

/// What one healthy check of one connection costs in calls, measured.
#[derive(Debug, Clone, Copy, Default)]
struct PerCheck {
    sm_calls: f64,
    signs: f64,
    events: f64,
    millis: f64,
}

/// Walks a connection of `credential` to connected, then runs `rounds` forced health passes over
/// it: the calls of one check, averaged.
async fn measure(credential: CredentialType, rounds: u32) -> PerCheck {
    let (emulator, azure_url) = azure(150).await;
    let sdk = shared::config::aws_sdk_config().await;
    let store = Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        format!("cost-{}/", uuid::Uuid::new_v4().simple()),
        None,
    ));
    let signs = Arc::new(AtomicU64::new(0));
    let key = shared::issuer::local::LocalKey::ephemeral().unwrap();
    let signer = Arc::new(CountingSigner {
        inner: Arc::new(key),
        signs: signs.clone(),
    });
    // The emulator fetches the issuer's keys from here.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = Arc::new(Issuer::new(
        format!("http://{}/oidc", listener.local_addr().unwrap()),
        signer,
    ));
    let config = shared::config::Config::from_lookup(|k| match k {
        "AZURE_AUTHORITY_HOST" | "AZURE_RESOURCE_MANAGER_ENDPOINT" | "AZURE_GRAPH_ENDPOINT" => {
            Some(azure_url.clone())
        }
        _ => None,
    })
    .unwrap();
    let sink = Arc::new(MemorySink::default());
    let app = App::new(store.clone(), sink.clone())
        .with_validator(Arc::new(
            config.azure.validator().unwrap().with_issuer(issuer.clone()),
        ))
        .with_issuer(issuer);
    let served = shared::edge::http::router(
        app.clone(),
        shared::edge::http::OrgSource::local_header(),
        &[shared::edge::Function::Issuer],
    );
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    let org = OrgId::parse("org-cost").unwrap();
    let start = Operation::Start {
        account: AccountId::parse("act-0000c057").unwrap(),
        connection: None,
        credential,
    };
    let shared::app::Outcome::Created(c) = app.execute(&req("start"), &org, start).await.unwrap() else {
        panic!("created")
    };
    let mut commands = vec![Command::AppRegistration {
        tenant: shared::domain::TenantId::parse("contoso.onmicrosoft.com").unwrap(),
        client: shared::domain::ClientId::parse("11111111-2222-4333-8444-555555555555").unwrap(),
    }];
    match credential {
        CredentialType::Secret => commands.push(Command::ClientSecret {
            secret: shared::domain::ClientSecret::parse(secrecy::SecretString::from(SECRET.to_owned()))
                .unwrap(),
            expires_at: None,
        }),
        CredentialType::Federated => {}
    }
    commands.push(Command::Subscription {
        subscription: shared::domain::SubscriptionId::parse("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab").unwrap(),
        replace_estate: false,
    });
    commands.push(Command::ExportCustomRole);
    for (i, command) in commands.into_iter().enumerate() {
        app.execute(
            &req(&format!("step-{i}")),
            &org,
            Operation::Submit {
                connection: c.id,
                command,
            },
        )
        .await
        .unwrap();
    }
    if credential == CredentialType::Federated {
        // The customer adds the federated credential the step hands out.
        let export = Operation::ExportFederatedCredential { connection: c.id };
        let shared::app::Outcome::FederatedCredential { values, .. } =
            app.execute(&req("federated"), &org, export).await.unwrap()
        else {
            panic!("values")
        };
        emulator.update(|w| {
            w.tenants[0].apps[0]
                .federated_credentials
                .push(azure_emulator::FederatedCredential {
                    id: "cost".into(),
                    name: values.name.clone(),
                    issuer: values.issuer.clone(),
                    subject: values.subject.clone(),
                    audiences: values.audiences.clone(),
                    description: None,
                    created_at: None,
                })
        });
    }
    app.execute(&req("connect"), &org, Operation::Connect { connection: c.id })
        .await
        .unwrap();

    let calls = store.calls();
    let total = || calls.total();
    let (sm0, signs0, events0) = (total(), signs.load(Relaxed), sink.events().len());
    let schedule = HealthSchedule {
        period: Duration::from_secs(86_400),
        pace: Duration::ZERO,
    };
    let started = Instant::now();
    for round in 0..rounds {
        app.health_pass(
            &format!("cost-{round}"),
            chrono::Utc::now(),
            Window::All,
            schedule,
        )
        .await
        .unwrap();
    }
    let n = f64::from(rounds);
    // A pass lists its page (one `ListSecrets` per 100 connections): taken out here, added back
    // per connection below.
    let lists = f64::from(rounds);
    PerCheck {
        sm_calls: ((total() - sm0) as f64 - lists) / n,
        signs: (signs.load(Relaxed) - signs0) as f64 / n,
        events: (sink.events().len() - events0) as f64 / n,
        millis: started.elapsed().as_secs_f64() * 1000.0 / n,
    }
}

/// The fixed costs of a stack a month: the two keys, the alarms, the dashboard, the schedules.
fn stack_month() -> f64 {
    let alarms = 11.0;
    let scheduler_runs = 30.0 * (96.0 + 1.0);
    2.0 * price::KMS_KEY_MONTH
        + alarms * price::ALARM_MONTH
        + price::DASHBOARD_MONTH
        + scheduler_runs * price::SCHEDULER_PER_MILLION / 1e6
        + scheduler_runs * price::LAMBDA_PER_MILLION / 1e6
}

pub(crate) async fn cost() {
    let rounds = 20;
    let secret = measure(CredentialType::Secret, rounds).await;
    let federated = measure(CredentialType::Federated, rounds).await;
    let checks = 30.0; // health every 24 h
    let scans = 30.0; // the expiry scan, daily
    let log_bytes_per_check = 400.0; // a check's log line and its share of the pass's EMF lines
    let memory_gb = 128.0 / 1024.0;
    println!(
        "\n## Cost of one connection a month (health every 24 h; prices of 2026-11-29, us-east-1; calls measured: {rounds} passes)\n"
    );
    println!("| item | per unit | secret | secretless |");
    println!("|---|---|---|---|");
    let lines: Vec<(&str, String, f64, f64)> = vec![
        (
            "Secrets Manager: secrets stored",
            format!("${}/secret", price::SECRET_MONTH),
            2.0 * price::SECRET_MONTH,
            price::SECRET_MONTH,
        ),
        (
            "Secrets Manager: API calls (health checks; the scan's list pages)",
            format!("${}/10k", price::SM_PER_10K_CALLS),
            (secret.sm_calls * checks + 2.0 * scans / 100.0) * price::SM_PER_10K_CALLS / 1e4,
            (federated.sm_calls * checks + 2.0 * scans / 100.0) * price::SM_PER_10K_CALLS / 1e4,
        ),
        (
            "KMS: the credential's decrypts (secret) / the issuer's signatures (secretless)",
            format!(
                "${} / ${} per 10k",
                price::KMS_PER_10K_SYMMETRIC,
                price::KMS_PER_10K_ASYMMETRIC
            ),
            checks * price::KMS_PER_10K_SYMMETRIC / 1e4,
            federated.signs * checks * price::KMS_PER_10K_ASYMMETRIC / 1e4,
        ),
        (
            "Lambda: the checks' duration (128 MB)",
            format!("${}/GB-s", price::LAMBDA_GB_SECOND),
            secret.millis / 1000.0 * memory_gb * checks * price::LAMBDA_GB_SECOND,
            federated.millis / 1000.0 * memory_gb * checks * price::LAMBDA_GB_SECOND,
        ),
        (
            "EventBridge: events of healthy checks",
            format!("${}/M", price::EVENTS_PER_MILLION),
            secret.events * checks * price::EVENTS_PER_MILLION / 1e6,
            federated.events * checks * price::EVENTS_PER_MILLION / 1e6,
        ),
        (
            "CloudWatch Logs: the checks' lines and metrics",
            format!("${}/GB", price::LOGS_PER_GB),
            log_bytes_per_check * checks * price::LOGS_PER_GB / 1e9,
            log_bytes_per_check * checks * price::LOGS_PER_GB / 1e9,
        ),
    ];
    let (mut s_total, mut f_total) = (0.0, 0.0);
    for (item, unit, s, f) in &lines {
        s_total += s;
        f_total += f;
        println!("| {item} | {unit} | ${s:.6} | ${f:.6} |");
    }
    println!("| **per connection** | | **${s_total:.4}** | **${f_total:.4}** |");
    for n in [1_000.0, 10_000.0, 100_000.0] {
        let fixed = stack_month() / n;
        println!(
            "| with the stack's fixed ${:.2}/month shared by {n:.0} connections | | ${:.4} | ${:.4} |",
            stack_month(),
            s_total + fixed,
            f_total + fixed
        );
    }
    println!(
        "\nMeasured per healthy check: Secrets Manager calls {:.1} (secret) / {:.1} (secretless), KMS signatures {:.1} / {:.1}, events {:.1} / {:.1}, {:.0} ms / {:.0} ms with Azure 150 ms away.",
        secret.sm_calls,
        federated.sm_calls,
        secret.signs,
        federated.signs,
        secret.events,
        federated.events,
        secret.millis,
        federated.millis
    );
    println!(
        "The biggest item: the secrets stored ($0.40 each; a connection with a client secret keeps two: its document and its secret's own credential). Secretless halves it; packing several connections into one secret would cut it further at the price of a shared compare-and-swap and of the per-connection erasure (docs/security.md)."
    );
    estate_costs();
}

/// What an organization's rules and an estate's list add in secrets stored: the organization's
/// index (its places), its ties (every subscription of the estate tied to an account of its own,
/// and the group: shards as the app splits them, `shared::domain::ties::secrets_for`), and the
/// estate's pages (`document::encode_stored`, typical rows with Azure's random ids).
fn estate_costs() {
    use shared::app::quota::Quotas;
    use shared::domain::estate::{Estate, Sighting, SubscriptionState, Survey};
    use shared::domain::ties::{Held, secrets_for};
    use shared::domain::{Connection, ConnectionId, ManagementGroupId, SubscriptionId};
    println!(
        "\n## Cost of an estate a month: one connection over a group, every subscription tied to a Spot account (secrets stored; prices of 2026-11-29)\n"
    );
    println!(
        "| subscriptions | the connection (document, credential) | its list's pages | the organization's index | the organization's ties (shards) | secrets | a month | per subscription |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let org = OrgId::parse("org-cost").unwrap();
    let now = chrono::Utc::now();
    for n in [1_000usize, 10_000, 20_000] {
        let mut c = Connection::new(
            ConnectionId::new_random(),
            org.clone(),
            AccountId::parse("act-00c0ffee").unwrap(),
            now,
        );
        let group = ManagementGroupId::parse("contoso").unwrap();
        let mut estate = Estate::new(group, None, now);
        let survey = Survey {
            looked_at: None,
            checked_at: now,
            found: (0..n)
                .map(|i| Sighting {
                    subscription: SubscriptionId::parse(&crate::estate::sub_id(i)).unwrap(),
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
            let account = AccountId::parse(&format!("act-{i:08x}")).unwrap();
            estate.link(*id, &account, now).unwrap();
        }
        c.estate = Some(estate);
        let pages = shared::domain::document::encode_stored(&c).map_or(0, |s| s.pages.len());
        let ties = c.ties().into_iter().map(|tie| Held {
            tie,
            connection: c.id,
            at: now,
            pending: false,
        });
        let shards = secrets_for(
            &org,
            ties.collect::<Vec<Held>>(),
            Quotas::default().ties_shard_bytes,
        );
        let secrets = 2 + pages + 1 + shards;
        let month = secrets as f64 * price::SECRET_MONTH;
        println!(
            "| {n} | 2 | {pages} | 1 | {shards} | {secrets} | ${month:.2} | ${:.5} |",
            month / n as f64
        );
    }
    println!(
        "\nA secret per tie instead (a create-once name kept for each claim) would be $0.40 a subscription: $8,000 a month at 20,000."
    );
}
