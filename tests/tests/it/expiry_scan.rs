//! The daily expiry scan on both stores: each reminder threshold once across repeated and
//! duplicate runs, expired connections marked and announced once, a new secret starting over.

use std::time::Duration;

use chrono::{DateTime, Utc};
use integration_tests::{STORES, app, app_registration, request};
use secrecy::SecretString;
use shared::app::{Operation, Outcome};
use shared::domain::expiry::ReminderPolicy;
use shared::domain::{AccountId, ClientSecret, Command, ConnectionId, OrgId, SecretExpiry, Status};

fn secret_expiring(at: DateTime<Utc>, now: DateTime<Utc>) -> Command {
    Command::ClientSecret {
        secret: ClientSecret::parse(SecretString::from(
            "Sc4nQ~expiry.scan-0123456789abcdefghijk".to_owned(),
        ))
        .unwrap(),
        expires_at: Some(SecretExpiry::parse(&at.to_rfc3339(), now).unwrap()),
    }
}

#[tokio::test]
async fn reminders_once_per_threshold_expiry_once() {
    for kind in STORES {
        let store = integration_tests::store(kind).await;
        let (app, sink) = app(store.clone());
        let org = OrgId::parse("org-expiry").unwrap();
        let t0 = Utc::now();
        let days = |d: i64| t0 + chrono::Duration::days(d);
        let mut ids = Vec::new();
        for (i, d) in [Some(40), Some(25), Some(10), Some(5), Some(3), None]
            .into_iter()
            .enumerate()
        {
            let start = Operation::Start {
                account: AccountId::parse("act-0000e001").unwrap(),
                connection: Some(ConnectionId::new_random()),
                credential: Default::default(),
            };
            let Outcome::Created(c) = app
                .execute(&request(&format!("s{i}")), &org, start)
                .await
                .unwrap()
            else {
                panic!()
            };
            app.execute(
                &request(&format!("a{i}")),
                &org,
                Operation::Submit {
                    connection: c.id,
                    command: app_registration(),
                },
            )
            .await
            .unwrap();
            if let Some(d) = d {
                let op = Operation::Submit {
                    connection: c.id,
                    command: secret_expiring(days(d), t0),
                };
                app.execute(&request(&format!("c{i}")), &org, op).await.unwrap();
            }
            ids.push(c.id);
        }
        let policy = ReminderPolicy::default();
        let expiring = |from: usize| -> Vec<(String, u64)> {
            sink.events()[from..]
                .iter()
                .filter(|e| e.detail_type == "Client Secret Expiring")
                .map(|e| {
                    (
                        e.detail["connectionId"].as_str().unwrap().to_owned(),
                        e.detail["threshold"].as_u64().unwrap(),
                    )
                })
                .collect()
        };
        let expired = |from: usize| {
            sink.events()[from..]
                .iter()
                .filter(|e| e.detail_type == "Client Secret Expired")
                .count()
        };

        let mark = sink.events().len();
        let report = app
            .scan_expiry("scan-1", t0, &policy, Duration::ZERO, None)
            .await
            .unwrap();
        assert_eq!(
            (report.listed, report.reminded, report.expired),
            (5, 4, 0),
            "{kind:?}: {report:?}"
        );
        let mut sent = expiring(mark);
        sent.sort();
        let mut want = vec![
            (ids[1].to_string(), 30),
            (ids[2].to_string(), 14),
            (ids[3].to_string(), 7),
            (ids[4].to_string(), 7),
        ];
        want.sort();
        assert_eq!(sent, want, "{kind:?}");

        // The same run delivered again, and the next day's run: nothing twice.
        for scan in ["scan-1", "scan-2"] {
            let mark = sink.events().len();
            let report = app
                .scan_expiry(scan, t0, &policy, Duration::ZERO, None)
                .await
                .unwrap();
            assert_eq!((report.reminded, report.expired), (0, 0), "{kind:?} {scan}");
            assert!(expiring(mark).is_empty() && expired(mark) == 0, "{kind:?} {scan}");
        }

        // Four days on: new thresholds crossed, one secret expired.
        let mark = sink.events().len();
        let report = app
            .scan_expiry("scan-3", days(4), &policy, Duration::ZERO, None)
            .await
            .unwrap();
        assert_eq!((report.reminded, report.expired), (2, 1), "{kind:?}: {report:?}");
        let mut sent = expiring(mark);
        sent.sort();
        let mut want = vec![(ids[2].to_string(), 7), (ids[3].to_string(), 1)];
        want.sort();
        assert_eq!(sent, want, "{kind:?}");
        assert_eq!(expired(mark), 1, "{kind:?}");
        let gone = store.load(&org, &ids[4]).await.unwrap().unwrap().connection;
        assert_eq!(gone.status, Status::Expired, "{kind:?}");
        let again = app
            .scan_expiry("scan-4", days(4), &policy, Duration::ZERO, None)
            .await
            .unwrap();
        assert_eq!(
            (again.reminded, again.expired),
            (0, 0),
            "{kind:?}: announced once"
        );

        // A new secret: its reminders start over, the old ones do not come back.
        let op = Operation::Submit {
            connection: ids[2],
            command: secret_expiring(days(200), days(4)),
        };
        app.execute(&request("renew"), &org, op).await.unwrap();
        let renewed = store.load(&org, &ids[2]).await.unwrap().unwrap().connection;
        assert_eq!(renewed.reminded, None, "{kind:?}");
        let page = store.scan_page(None).await.unwrap();
        let tags = &page.entries.iter().find(|e| e.connection == ids[2]).unwrap().tags;
        assert_eq!(tags.reminded, None, "{kind:?}: the old reminder tag is gone");
        let tags = &page.entries.iter().find(|e| e.connection == ids[4]).unwrap().tags;
        assert!(tags.expired, "{kind:?}: the status tag follows");
        let report = app
            .scan_expiry("scan-5", days(4), &policy, Duration::ZERO, None)
            .await
            .unwrap();
        assert_eq!(report.reminded, 0, "{kind:?}: {report:?}");
    }
}

#[tokio::test]
async fn the_scan_reads_no_secret_value_of_connections_not_due() {
    let prefix = integration_tests::unique_prefix();
    let store = integration_tests::sm_store(&prefix).await;
    let (app, _) = app(store.clone());
    let org = OrgId::parse("org-expiry").unwrap();
    let t0 = Utc::now();
    for i in 0..5 {
        let start = Operation::Start {
            account: AccountId::parse("act-0000e002").unwrap(),
            connection: None,
            credential: Default::default(),
        };
        let Outcome::Created(c) = app
            .execute(&request(&format!("s{i}")), &org, start)
            .await
            .unwrap()
        else {
            panic!()
        };
        let far = t0 + chrono::Duration::days(300);
        let op = Operation::Submit {
            connection: c.id,
            command: secret_expiring(far, t0),
        };
        app.execute(&request(&format!("c{i}")), &org, op).await.unwrap();
    }
    let calls = |s: &shared::store::secrets_manager::SecretsManagerStore| {
        use std::sync::atomic::Ordering::Relaxed;
        (
            s.calls().list.load(Relaxed),
            s.calls().get.load(Relaxed),
            s.calls().total(),
        )
    };
    let (list0, get0, total0) = calls(&store);
    let report = app
        .scan_expiry("scan", t0, &ReminderPolicy::default(), Duration::ZERO, None)
        .await
        .unwrap();
    let (list1, get1, total1) = calls(&store);
    assert_eq!(report.listed, 5);
    assert_eq!(
        (list1 - list0, get1 - get0, total1 - total0),
        (2, 0, 2),
        "one list call for expiry, one for abandoned drafts (these are recent: not read), nothing else"
    );
}

#[tokio::test]
async fn the_scheduled_sample_runs_through_the_handler() {
    use lambda_runtime::{Context, LambdaEvent};
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/secret-expiry/schedule-scan.json");
    let payload: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let store = integration_tests::sm_store(&integration_tests::unique_prefix()).await;
    let (app, _) = app(store);
    let config = shared::config::Config::from_lookup(|_| None).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(payload["scheduledAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let handler = shared::edge::expiry::ExpiryHandler::new(app, &config.expiry)
        .with_clock(std::sync::Arc::new(move || at + chrono::Duration::seconds(5)));
    // A scan "a month from now" is not the schedule's: it would expire and abandon early.
    let early = handler
        .handle(LambdaEvent::new(
            serde_json::json!({"scheduledAt": at + chrono::Duration::days(31)}),
            Context::default(),
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(early.contains("scheduledAt is in the future"), "{early}");
    let out = handler
        .handle(LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    assert_eq!(out["pages"], 1, "{out}");
    assert_eq!(out["failed"], 0, "{out}");
    // Without Azure (no rotator) a rotation step fails, so Secrets Manager reports it; tests/rotation.rs
    // runs the steps with one.
    let rotation = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events/secret-expiry/rotation-create-secret.json");
    let step: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(rotation).unwrap()).unwrap();
    assert!(
        handler
            .handle(LambdaEvent::new(step, Context::default()))
            .await
            .is_err()
    );
}

/// The scan with a fault in the first request of one kind (listing, reading, writing): it
/// completes, or fails the invocation for the schedule's retry; the retry and a duplicate run
/// send each reminder exactly once.
async fn scan_through(marker: &'static str, fault: integration_tests::fault::Fault) {
    let prefix = integration_tests::unique_prefix();
    let direct = integration_tests::sm_store(&prefix).await;
    let (app, _) = app(direct);
    let proxy = integration_tests::fault::FaultProxy::start(&integration_tests::aws_endpoint()).await;
    let faulty = integration_tests::sm_store_at(proxy.url(), &prefix).await;
    let (scanner, sink) = integration_tests::app(faulty);
    let org = OrgId::parse("org-expiry-faults").unwrap();
    let t0 = Utc::now();
    let mut ids = Vec::new();
    for (i, d) in [5, 25].into_iter().enumerate() {
        let start = Operation::Start {
            account: AccountId::parse("act-0000e002").unwrap(),
            connection: Some(ConnectionId::new_random()),
            credential: Default::default(),
        };
        let Outcome::Created(c) = app
            .execute(&request(&format!("s{i}")), &org, start)
            .await
            .unwrap()
        else {
            panic!()
        };
        for (j, command) in [
            app_registration(),
            secret_expiring(t0 + chrono::Duration::days(d), t0),
        ]
        .into_iter()
        .enumerate()
        {
            let op = Operation::Submit {
                connection: c.id,
                command,
            };
            app.execute(&request(&format!("c{i}{j}")), &org, op)
                .await
                .unwrap();
        }
        ids.push(c.id.to_string());
    }
    let policy = ReminderPolicy::default();
    let what = format!("{fault:?} on {marker}");
    proxy.fault(marker, fault, 1);
    let started = std::time::Instant::now();
    let first = scanner
        .scan_expiry("scan-f", t0, &policy, Duration::ZERO, None)
        .await;
    let took = started.elapsed();
    proxy.heal();
    assert!(proxy.hits() == 1, "{what}: never happened");
    assert!(took < Duration::from_secs(60), "{what}: {took:?}");
    if let Err(e) = &first {
        assert!(e.is_retryable(), "{what}: {e}");
    }
    // The schedule's retry (the same scan id), then the next run.
    for scan in ["scan-f", "scan-g"] {
        scanner
            .scan_expiry(scan, t0, &policy, Duration::ZERO, None)
            .await
            .unwrap_or_else(|e| panic!("{what}, {scan}: {e}"));
    }
    let mut sent: Vec<(String, u64)> = sink
        .events()
        .iter()
        .filter(|e| e.detail_type == "Client Secret Expiring")
        .map(|e| {
            (
                e.detail["connectionId"].as_str().unwrap().to_owned(),
                e.detail["threshold"].as_u64().unwrap(),
            )
        })
        .collect();
    sent.sort();
    let mut want = vec![(ids[0].clone(), 7), (ids[1].clone(), 30)];
    want.sort();
    assert_eq!(sent, want, "{what}: each reminder exactly once");
}

#[tokio::test]
async fn the_scan_meeting_each_fault_sends_each_reminder_exactly_once() {
    let mut runs = Vec::new();
    for marker in [
        "secretsmanager.ListSecrets",
        "secretsmanager.GetSecretValue",
        "secretsmanager.PutSecretValue",
    ] {
        for fault in integration_tests::fault::Fault::ALL {
            runs.push(tokio::spawn(scan_through(marker, fault)));
        }
    }
    for run in runs {
        run.await.unwrap();
    }
}

/// Drafts and failed connections left untouched for 30 days are deleted by the daily scan, each
/// announced once; linked ones and recent drafts stay; a second scan deletes nothing.
#[tokio::test]
async fn drafts_left_untouched_are_deleted_once_and_announced() {
    for kind in STORES {
        let store = integration_tests::store(kind).await;
        let (app, sink) = app(store.clone());
        let org = OrgId::parse("org-abandon").unwrap();
        let (_azure, validator) = integration_tests::azure().await;
        let app = app.with_validator(validator);
        // (The walk derives its connection's id from the organization: one walk each.)
        let linked = integration_tests::walk(&app, &org, "act-0000a001", true).await;
        let draft_org = OrgId::parse("org-abandon-2").unwrap();
        let draft = integration_tests::walk(&app, &draft_org, "act-0000a002", false).await;
        let policy = ReminderPolicy::default();
        let t0 = Utc::now();
        let recent = app
            .scan_expiry("abandon-0", t0, &policy, Duration::ZERO, None)
            .await
            .unwrap();
        assert_eq!(recent.abandoned, 0, "{kind:?}: nothing is old yet");
        let later = t0 + chrono::Duration::days(31);
        let report = app
            .scan_expiry("abandon-1", later, &policy, Duration::ZERO, None)
            .await
            .unwrap();
        assert_eq!(report.abandoned, 1, "{kind:?}: {report:?}");
        assert!(
            store.load(&draft_org, &draft.id).await.unwrap().is_none(),
            "{kind:?}"
        );
        assert_eq!(
            store
                .load(&org, &linked.id)
                .await
                .unwrap()
                .unwrap()
                .connection
                .status,
            Status::Connected,
            "{kind:?}: a linked connection stays"
        );
        let again = app
            .scan_expiry("abandon-2", later, &policy, Duration::ZERO, None)
            .await
            .unwrap();
        assert_eq!(again.abandoned, 0, "{kind:?}");
        let told: Vec<_> = sink
            .events()
            .into_iter()
            .filter(|e| e.detail_type == "Connection Abandoned")
            .collect();
        assert_eq!(told.len(), 1, "{kind:?}");
        assert_eq!(told[0].detail["connectionId"], draft.id.to_string());
        assert_eq!(told[0].detail["status"], "draft");
    }
}
