//! The metrics as CloudWatch reads them: the wizard walked to `connected` (and a request refused,
//! a health pass, an expiry reminder) with the Lambda functions' EMF recorder installed, every
//! line flushed held against the Embedded Metric Format specification, every metric against its
//! declaration in `shared::metrics::METRICS` (name, unit, labels), and no organization or
//! connection as a dimension.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use shared::app::{App, Window};
use shared::domain::OrgId;
use shared::events::MemorySink;

/// CloudWatch's units (`MetricDatum.Unit`).
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// One EMF line checked against the specification; returns (metric, dimensions) pairs.
fn check_line(line: &str) -> Vec<(String, BTreeSet<String>, Option<String>)> {
    let doc: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let aws = &doc["_aws"];
    assert!(
        aws["Timestamp"].as_u64().is_some_and(|t| t > 1_700_000_000_000),
        "Timestamp in ms: {line}"
    );
    let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics");
    assert!(!directives.is_empty(), "{line}");
    let mut found = Vec::new();
    for d in directives {
        let ns = d["Namespace"].as_str().expect("Namespace");
        assert!(!ns.is_empty() && ns.len() <= 255);
        assert_eq!(ns, shared::metrics::NAMESPACE);
        let sets = d["Dimensions"].as_array().expect("Dimensions");
        let mut dims = BTreeSet::new();
        for set in sets {
            let set = set.as_array().expect("a dimension set");
            assert!(set.len() <= 30, "at most 30 dimensions: {line}");
            for key in set {
                let key = key.as_str().expect("a dimension name");
                let value = doc[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("dimension {key} is a member: {line}"));
                assert!(!value.is_empty() && value.len() <= 1024, "{line}");
                dims.insert(key.to_owned());
            }
        }
        let metrics = d["Metrics"].as_array().expect("Metrics");
        assert!(
            !metrics.is_empty() && metrics.len() <= 100,
            "1 to 100 metrics: {line}"
        );
        for m in metrics {
            let name = m["Name"].as_str().expect("Name");
            assert!(!name.is_empty() && name.len() <= 255);
            let unit = m.get("Unit").and_then(Value::as_str).map(str::to_owned);
            if let Some(u) = &unit {
                assert!(UNITS.contains(&u.as_str()), "unit {u}: {line}");
            }
            match &doc[name] {
                Value::Number(_) => {}
                Value::Array(values) => {
                    assert!(!values.is_empty() && values.len() <= 100, "{line}");
                    assert!(values.iter().all(Value::is_number), "{line}");
                }
                other => panic!("metric {name} is a member with a number, not {other}: {line}"),
            }
            found.push((name.to_owned(), dims.clone(), unit));
        }
    }
    found
}

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
        for (name, dims, unit) in check_line(line) {
            let def =
                shared::metrics::def(&name).unwrap_or_else(|| panic!("{name} is not declared in METRICS"));
            let allowed: BTreeSet<String> = def.labels.iter().map(|l| l.to_string()).collect();
            assert!(dims.is_subset(&allowed), "{name}: {dims:?} beyond {allowed:?}");
            let declared = match def.unit {
                metrics::Unit::Count => "Count",
                metrics::Unit::Seconds => "Seconds",
                metrics::Unit::Milliseconds => "Milliseconds",
                other => panic!("{name}: a unit this test does not know: {other:?}"),
            };
            assert_eq!(unit.as_deref(), Some(declared), "{name}'s unit");
            seen.insert(name);
        }
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
    ] {
        assert!(
            seen.contains(funnel),
            "{funnel} was not emitted: {seen:?}\n{text}"
        );
    }
    println!("EMF lines:\n{text}");
}
