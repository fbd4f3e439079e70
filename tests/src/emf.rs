//! The Embedded Metric Format, as CloudWatch reads it: a line held against the specification, and
//! its metrics against their declarations in `shared::metrics::METRICS`.

use std::collections::BTreeSet;

use serde_json::Value;

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
pub fn check_line(line: &str) -> Vec<(String, BTreeSet<String>, Option<String>)> {
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

/// [`check_line`], and every metric declared with its unit and labels.
pub fn check_declared(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (name, dims, unit) in check_line(line) {
        let def = shared::metrics::def(&name).unwrap_or_else(|| panic!("{name} is not declared in METRICS"));
        let allowed: BTreeSet<String> = def.labels.iter().map(|l| l.to_string()).collect();
        assert!(dims.is_subset(&allowed), "{name}: {dims:?} beyond {allowed:?}");
        let declared = match def.unit {
            metrics::Unit::Count => "Count",
            metrics::Unit::Seconds => "Seconds",
            metrics::Unit::Milliseconds => "Milliseconds",
            other => panic!("{name}: a unit this check does not know: {other:?}"),
        };
        assert_eq!(unit.as_deref(), Some(declared), "{name}'s unit");
        names.push(name);
    }
    names
}
