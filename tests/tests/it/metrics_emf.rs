//! The metrics as CloudWatch reads them: the wizard walked to `connected` (and a request refused,
//! a health pass, an expiry reminder) with the Lambda functions' EMF recorder installed, every
//! line flushed held against the Embedded Metric Format specification, every metric against its
//! declaration in `shared::metrics::METRICS` (name, unit, labels), and no organization or
//! connection as a dimension.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use shared::app::{App, Window};
use shared::domain::OrgId;
use shared::events::MemorySink;

#[tokio::test]
async fn every_metric_line_is_valid_emf_and_declared() {
    shared::metrics::install_emf();
    let (emulator, azure) = integration_tests::emulator(
        integration_tests::world_of_one_app(false, "0f8fad5b-d9cb-469f-a165-70867728950e", Some(10)),
        Duration::from_secs(3),
    )
    .await;
    let store = integration_tests::store(integration_tests::StoreKind::Embedded).await;
    let sink = Arc::new(MemorySink::default());
    let app = App::new(store, sink).with_validator(Arc::new(azure.validator().unwrap()));
    let org = OrgId::parse("org-metrics").unwrap();
    let c = integration_tests::walk(&app, &org, "act-0e0e0e0e", true).await;
    // A refusal: Connect Account on a connection that is not there.
    let other = integration_tests::walk(&app, &org, "act-0e0e0e0f", false).await;
    let _ = app
        .execute(
            &integration_tests::request("connect-unknown"),
            &org,
            shared::app::Operation::Connect {
                connection: shared::domain::ConnectionId::new_random(),
            },
        )
        .await;
    // A health pass and an expiry scan (the secret expires in 10 days: the 14-day reminder).
    app.health_pass(
        "forced",
        Utc::now(),
        Window::All,
        shared::app::HealthSchedule {
            period: Duration::from_secs(86_400),
            pace: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    app.scan_expiry(
        "scan",
        Utc::now(),
        &shared::domain::expiry::ReminderPolicy::default(),
        Duration::ZERO,
        None,
    )
    .await
    .unwrap();
    drop(emulator);

    let mut out = Vec::new();
    shared::metrics::flush_emf(&mut out);
    let text = String::from_utf8(out).unwrap();
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        seen.extend(integration_tests::emf::check_declared(line));
    }
    for never in [org.as_str(), &c.id.to_string(), &other.id.to_string()] {
        assert!(
            !text.contains(never),
            "an organization or connection in a metric: {never}"
        );
    }
    for funnel in [
        "ConnectionStarted",
        "StepCompleted",
        "StepRejected",
        "AccountConnected",
        "TimeToConnect",
        "ConnectOutcome",
        "ConnectDuration",
        "HealthChecked",
        "HealthPasses",
        "AzureCalls",
        "DegradedConnections",
        "LinkedConnections",
    ] {
        assert!(
            seen.contains(funnel),
            "{funnel} was not emitted: {seen:?}\n{text}"
        );
    }
    println!("EMF lines:\n{text}");
}
