//! Rotation end to end: Secrets Manager (moto, with its Lambda invocations stubbed so that
//! `RotateSecret` leaves the AWSPENDING version for us, as AWS does before it invokes the function)
//! and Azure (the emulator). Every step runs three times; a crash between addPassword and the put,
//! a wizard write in the middle, and a Graph refusal each end right.

use std::sync::Arc;
use std::time::Duration;

use azure_emulator::{App as AzApp, Emulator, Grant, Password, Subscription, Tenant, World};
use chrono::Utc;
use integration_tests::fault::{Fault, FaultProxy};
use integration_tests::{SECRET, request, sm_store, unique_prefix};
use shared::app::{App, Operation};
use shared::domain::connection::RotationSettings;
use shared::domain::role::required_actions;
use shared::domain::{Command, ConnectionId, OrgId, SubscriptionId};
use shared::events::MemorySink;
use shared::rotation::{DISPLAY_PREFIX, NEW_SECRET_DAYS, RotationStep, Rotator};
use shared::store::Stage;
use shared::store::secrets_manager::SecretsManagerStore;
use shared::store::{ConnectionStore, RotationStore, secret_name};

const APP: &str = "11111111-2222-4333-8444-555555555555";
const ORG: &str = "org-rotation";
const STEPS: [RotationStep; 4] = [
    RotationStep::Create,
    RotationStep::Set,
    RotationStep::Test,
    RotationStep::Finish,
];
const OLD_KEY: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

fn world(manages: bool) -> World {
    World {
        tenants: vec![Tenant {
            id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
            domains: vec!["contoso.onmicrosoft.com".into()],
            apps: vec![AzApp {
                app_id: APP.into(),
                manages_own_credentials: manages,
                passwords: vec![Password {
                    key_id: OLD_KEY.into(),
                    secret_text: SECRET.into(),
                    end_date_time: Some(Utc::now() + chrono::Duration::days(10)),
                    ..Password::default()
                }],
                ..AzApp::default()
            }],
            blocked_apps: vec![],
            ..Tenant::default()
        }],
        subscriptions: vec![Subscription {
            id: "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab".into(),
            tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
            display_name: "Rotation".into(),
            state: "Enabled".into(),
            grants: vec![Grant {
                app_id: APP.into(),
                actions: required_actions().map(str::to_owned).collect(),
                ..Grant::default()
            }],
            role_assignments: vec![],
        }],
        management_groups: vec![],
        behaviour: Default::default(),
    }
}

/// moto: Lambda invocations stubbed, and a function for `RotateSecret` to name.
async fn moto_rotation_function() -> String {
    integration_tests::moto_lambda_function(&format!("secret-expiry-{}", uuid::Uuid::new_v4().simple())).await
}

struct Setup {
    emulator: Emulator,
    store: Arc<SecretsManagerStore>,
    app: App,
    rotator: Rotator,
    sink: Arc<MemorySink>,
    org: OrgId,
    id: ConnectionId,
    name: String,
    prefix: String,
    azure: shared::config::AzureConfig,
}

impl Setup {
    /// A connected connection with rotation on, and a rotation started (its token returned).
    async fn started() -> (Self, String) {
        let (emulator, azure) = integration_tests::emulator(world(true), Duration::from_secs(3)).await;
        let prefix = unique_prefix();
        let store = sm_store(&prefix).await;
        let sink = Arc::new(MemorySink::default());
        let app = App::new(store.clone(), sink.clone())
            .with_validator(Arc::new(azure.validator().unwrap()))
            .with_rotation(store.clone());
        let rotator = azure.rotator(store.clone(), sink.clone(), &prefix).unwrap();
        let config = azure.clone();
        let org = OrgId::parse(ORG).unwrap();
        let connected = integration_tests::walk(&app, &org, "act-0000a0a0", true).await;
        let c = connected.clone();
        assert_eq!(
            connected.validation.as_ref().unwrap().secret_key_id.as_deref(),
            Some(OLD_KEY)
        );
        let on = Command::SetRotation(Some(RotationSettings { days_before: 14 }));
        app.execute(
            &request("rotation-on"),
            &org,
            Operation::Submit {
                connection: c.id,
                command: on,
            },
        )
        .await
        .unwrap();

        let arn = moto_rotation_function().await;
        store.start_rotation(&org, &c.id, &arn).await.unwrap();
        let name = secret_name(&prefix, &org, &c.id);
        let info = store.versions(&name).await.unwrap();
        let token = info
            .holder_of(Stage::Pending)
            .expect("RotateSecret left an AWSPENDING version")
            .to_owned();
        (
            Self {
                emulator,
                store,
                app,
                rotator,
                sink,
                org,
                id: c.id,
                name,
                prefix,
                azure: config,
            },
            token,
        )
    }

    /// The four steps once each, as Secrets Manager sends them.
    async fn rotate(&self, token: &str) {
        for step in STEPS {
            self.rotator
                .step(step, &self.name, token)
                .await
                .unwrap_or_else(|e| panic!("{step:?}: {e} ({})", e.code()));
        }
    }

    fn passwords(&self) -> Vec<Password> {
        self.emulator.world().tenants[0].apps[0].passwords.clone()
    }

    async fn current(&self) -> shared::domain::Connection {
        self.store
            .load(&self.org, &self.id)
            .await
            .unwrap()
            .unwrap()
            .connection
    }

    /// The current secret's value, read from its credential.
    async fn current_secret(&self) -> String {
        let current = self.current().await;
        self.store
            .reveal(&current)
            .await
            .unwrap()
            .expect("the current secret's credential")
            .expose()
            .to_owned()
    }

    fn events(&self, detail_type: &str) -> Vec<serde_json::Value> {
        self.sink
            .events()
            .into_iter()
            .filter(|e| e.detail_type == detail_type)
            .map(|e| e.detail)
            .collect()
    }
}

#[tokio::test]
async fn every_step_three_times_ends_with_exactly_one_new_credential() {
    let (s, token) = Setup::started().await;
    for step in STEPS {
        for _ in 0..3 {
            s.rotator
                .step(step, &s.name, &token)
                .await
                .unwrap_or_else(|e| panic!("{step:?}: {e} ({})", e.code()));
        }
    }
    let passwords = s.passwords();
    assert_eq!(passwords.len(), 1, "the old key removed, one new: {passwords:?}");
    assert_eq!(passwords[0].display_name, format!("{DISPLAY_PREFIX}{token}"));
    let current = s.current().await;
    let secret = s.current_secret().await;
    assert_eq!(secret, passwords[0].secret_text, "AWSCURRENT names the new value");
    assert_ne!(secret, SECRET);
    assert_eq!(
        current.rotation,
        Some(RotationSettings { days_before: 14 }),
        "settings kept"
    );
    let info = s.store.versions(&s.name).await.unwrap();
    assert!(info.holder_of(Stage::Pending).is_none(), "AWSPENDING cleaned");
    assert_eq!(info.holder_of(Stage::Current), Some(token.as_str()));
    let rotated = s.events("Client Secret Rotated");
    assert!(!rotated.is_empty());
    assert!(
        !serde_json::to_string(&s.sink.events()).unwrap().contains(&secret),
        "no secret in events"
    );
    // The secret rotated out is erased: one credential left, the new one.
    let credentials = integration_tests::credentials_of(&s.prefix, &s.org, &s.id).await;
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!(credentials[0].1, secret, "the one left holds the new value");
    // The scan tags follow the new expiry.
    let page = s.store.scan_page(None).await.unwrap();
    let tags = &page.entries.iter().find(|e| e.connection == s.id).unwrap().tags;
    assert!(tags.expires > (Utc::now() + chrono::Duration::days(365)).date_naive());
}

#[tokio::test]
async fn a_crash_between_add_password_and_put_leaves_no_orphan() {
    let (s, token) = Setup::started().await;
    // What a createSecret killed right after addPassword leaves behind in Azure.
    s.emulator.update(|w| {
        w.tenants[0].apps[0].passwords.push(Password {
            key_id: "00000000-0000-4000-8000-00000000dead".into(),
            display_name: format!("{DISPLAY_PREFIX}{token}"),
            secret_text: "Orp8Q~orphan.value-0123456789abcdefghijk".into(),
            ..Password::default()
        })
    });
    s.rotator
        .step(RotationStep::Create, &s.name, &token)
        .await
        .unwrap();
    let ours: Vec<_> = s
        .passwords()
        .into_iter()
        .filter(|p| p.display_name == format!("{DISPLAY_PREFIX}{token}"))
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_ne!(ours[0].secret_text, "Orp8Q~orphan.value-0123456789abcdefghijk");
}

#[tokio::test]
async fn wizard_writes_between_the_steps_are_kept() {
    let (s, token) = Setup::started().await;
    let steps = STEPS;
    let mut last = None;
    for (i, step) in steps.into_iter().enumerate() {
        // A wizard write before each step, as the customer keeps using the wizard.
        let other = SubscriptionId::parse(&format!("0000000{i}-aaaa-4bbb-8ccc-0123456789ab")).unwrap();
        let op = Operation::Submit {
            connection: s.id,
            command: Command::Subscription {
                subscription: other,
                replace_estate: false,
            },
        };
        s.app
            .execute(&request(&format!("wizard-{i}")), &s.org, op)
            .await
            .unwrap();
        last = Some(other);
        for _ in 0..3 {
            s.rotator.step(step, &s.name, &token).await.unwrap();
        }
    }
    let current = s.current().await;
    assert_eq!(
        current.subscription.unwrap().subscription,
        last.unwrap(),
        "the wizard's writes survived"
    );
    assert_ne!(s.current_secret().await, SECRET, "and the secret rotated");
    assert_eq!(s.passwords().len(), 1);
}

#[tokio::test]
async fn a_graph_refusal_fails_cleanly_and_is_announced() {
    let (s, token) = Setup::started().await;
    s.emulator
        .update(|w| w.tenants[0].apps[0].manages_own_credentials = false);
    let err = s
        .rotator
        .step(RotationStep::Create, &s.name, &token)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "graph-permission-missing");
    assert_eq!(s.current_secret().await, SECRET, "AWSCURRENT untouched");
    let info = s.store.versions(&s.name).await.unwrap();
    assert!(
        info.holder_of(Stage::Pending).is_none(),
        "the stale AWSPENDING is gone"
    );
    let failed = s.events("Client Secret Rotation Failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["reason"], "graph-permission-missing");
    assert_eq!(failed[0]["step"], "createSecret");
    assert_eq!(s.passwords().len(), 1, "no credential made");
}

#[tokio::test]
async fn throttling_fails_the_step_for_a_retry_without_cleaning_up() {
    let (s, token) = Setup::started().await;
    s.emulator.update(|w| {
        w.behaviour.throttle_next = 1;
        w.behaviour.retry_after_seconds = 1;
    });
    let err = s
        .rotator
        .step(RotationStep::Create, &s.name, &token)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}: {}", err.code());
    assert!(
        s.events("Client Secret Rotation Failed").is_empty(),
        "a retry is coming: nothing announced"
    );
    let info = s.store.versions(&s.name).await.unwrap();
    assert_eq!(
        info.holder_of(Stage::Pending),
        Some(token.as_str()),
        "AWSPENDING kept for the retry"
    );
    // Secrets Manager's retry.
    s.rotate(&token).await;
    assert_eq!(s.passwords().len(), 1);
}

#[tokio::test]
async fn the_scan_starts_the_rotation_of_a_due_connection() {
    let (s, token) = Setup::started().await;
    // Finish the first rotation, then make the secret due again and let the scan start the next.
    s.rotate(&token).await;
    let arn = moto_rotation_function().await;
    let later = Utc::now() + chrono::Duration::days(NEW_SECRET_DAYS - 10);
    let report = s
        .app
        .scan_expiry(
            "scan-rotate",
            later,
            &shared::domain::expiry::ReminderPolicy::default(),
            Duration::ZERO,
            Some(&arn),
        )
        .await
        .unwrap();
    assert_eq!(report.rotations, 1, "{report:?}");
    let info = s.store.versions(&s.name).await.unwrap();
    let next = info.holder_of(Stage::Pending).expect("a new rotation is pending");
    assert_ne!(next, token);
}

#[tokio::test]
async fn an_azure_outage_fails_the_step_for_a_retry_and_a_slow_new_secret_is_waited_for() {
    let (s, token) = Setup::started().await;
    s.emulator.update(|w| w.behaviour.outage = true);
    let err = s
        .rotator
        .step(RotationStep::Create, &s.name, &token)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}: {}", err.code());
    assert!(s.events("Client Secret Rotation Failed").is_empty());
    s.emulator.update(|w| {
        w.behaviour.outage = false;
        // Azure accepts the new secret only after a while.
        w.behaviour.new_secret_delay_seconds = 2;
    });
    let started = std::time::Instant::now();
    s.rotate(&token).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "testSecret polled until Azure accepted it"
    );
    assert_eq!(s.passwords().len(), 1);
}

#[tokio::test]
async fn a_secret_typed_during_the_rotation_wins_over_it() {
    let (s, token) = Setup::started().await;
    s.rotator
        .step(RotationStep::Create, &s.name, &token)
        .await
        .unwrap();
    s.rotator.step(RotationStep::Test, &s.name, &token).await.unwrap();
    // The customer pastes another valid secret of the app meanwhile.
    let typed = "Typ8Q~typed.by-hand-0123456789abcdefghijk";
    s.emulator.update(|w| {
        w.tenants[0].apps[0].passwords.push(Password {
            key_id: "00000000-0000-4000-8000-0000000000bb".into(),
            secret_text: typed.into(),
            ..Password::default()
        })
    });
    let command = Command::ClientSecret {
        secret: shared::domain::ClientSecret::parse(secrecy::SecretString::from(typed.to_owned())).unwrap(),
        expires_at: None,
    };
    s.app
        .execute(
            &request("typed"),
            &s.org,
            Operation::Submit {
                connection: s.id,
                command,
            },
        )
        .await
        .unwrap();
    let err = s
        .rotator
        .step(RotationStep::Finish, &s.name, &token)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "secret-replaced-meanwhile");
    assert_eq!(s.current_secret().await, typed, "the customer's secret stays");
    let ours = s
        .passwords()
        .into_iter()
        .filter(|p| p.display_name.starts_with(DISPLAY_PREFIX))
        .count();
    assert_eq!(ours, 0, "the rotation's credential was removed");
    assert!(
        s.store
            .versions(&s.name)
            .await
            .unwrap()
            .holder_of(Stage::Pending)
            .is_none()
    );
    assert_eq!(
        s.events("Client Secret Rotation Failed")[0]["reason"],
        "secret-replaced-meanwhile"
    );
}

/// One rotation with a fault in the first request of each step to `dependency` (in createSecret
/// on Azure: the addPassword, whose answer may be lost after Azure made the credential).
async fn rotate_through(dependency: &'static str, fault: Fault) -> String {
    let (s, token) = Setup::started().await;
    let aws = FaultProxy::start(&integration_tests::aws_endpoint()).await;
    let azure = FaultProxy::start(&s.azure.endpoints().authority_host).await;
    let url = azure.url().to_owned();
    let config = shared::config::AzureConfig::from_lookup(|k| match k {
        "AZURE_AUTHORITY_HOST" | "AZURE_RESOURCE_MANAGER_ENDPOINT" | "AZURE_GRAPH_ENDPOINT" => {
            Some(url.clone())
        }
        _ => None,
    })
    .unwrap();
    let sdk = integration_tests::sdk_config().await;
    let through = aws_sdk_secretsmanager::config::Builder::from(&sdk)
        .endpoint_url(aws.url())
        .build();
    let store = Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::from_conf(through),
        &s.prefix,
        None,
    ));
    let rotator = config.rotator(store, s.sink.clone(), &s.prefix).unwrap();
    for step in STEPS {
        let what = format!("{fault:?} on {dependency} in {step:?}");
        let (proxy, marker) = match (dependency, step) {
            ("azure", RotationStep::Create) => (&azure, "addPassword"),
            ("azure", _) => (&azure, " /"),
            _ => (&aws, " /"),
        };
        proxy.fault(marker, fault, 1);
        let started = std::time::Instant::now();
        let first = rotator.step(step, &s.name, &token).await;
        let took = started.elapsed();
        proxy.heal();
        eprintln!(
            "{what}: {} in {took:.1?}",
            first.as_ref().map_or_else(|e| e.code(), |_| "done")
        );
        // Well inside the function's 900 s, so that Secrets Manager sees the failure and retries.
        assert!(took < Duration::from_secs(90), "{what}: {took:?}");
        if let Err(e) = &first {
            assert!(
                e.is_transient(),
                "{what}: {e} ({}) is not worth a retry",
                e.code()
            );
            // Secrets Manager invokes the step again; on a healthy network it completes.
            rotator
                .step(step, &s.name, &token)
                .await
                .unwrap_or_else(|e| panic!("{what}, retried: {e} ({})", e.code()));
        }
    }
    let passwords = s.passwords();
    assert_eq!(
        passwords.len(),
        1,
        "{fault:?} on {dependency}: one credential, no orphan: {passwords:?}"
    );
    assert_eq!(passwords[0].display_name, format!("{DISPLAY_PREFIX}{token}"));
    assert_eq!(s.current_secret().await, passwords[0].secret_text);
    let info = s.store.versions(&s.name).await.unwrap();
    assert!(info.holder_of(Stage::Pending).is_none(), "AWSPENDING cleaned");
    assert_eq!(info.holder_of(Stage::Current), Some(token.as_str()));
    passwords[0].secret_text.clone()
}

#[tokio::test]
async fn each_step_meeting_each_fault_fails_for_a_retry_or_succeeds_and_the_rotation_ends_right() {
    let (logs, _guard) = integration_tests::Captured::start();
    // Every run on this thread (a test's runtime is single-threaded): all of them are captured.
    let mut runs = Vec::new();
    for dependency in ["aws", "azure"] {
        for fault in Fault::ALL {
            runs.push(tokio::spawn(rotate_through(dependency, fault)));
        }
    }
    let mut secrets = vec![SECRET.to_owned()];
    for run in runs {
        secrets.push(run.await.unwrap());
    }
    let text = logs.text();
    assert!(
        text.contains("\"level\":\"WARN\"") || text.contains("\"level\":\"INFO\""),
        "nothing captured"
    );
    for secret in secrets {
        assert!(
            !text.contains(&secret),
            "a secret is in a log line of a failure path"
        );
    }
}
