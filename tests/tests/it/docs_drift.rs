//! `openapi.yaml` and `template.yaml` are held against the real router, and the docs against the
//! configuration and the events (and their links against the files), so none can drift.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use integration_tests::{StoreKind, app, store};
use serde_json::Value;
use shared::edge::Function;
use shared::edge::http::{OrgSource, ROUTES, router, with_console_events};

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)).unwrap()
}

fn openapi() -> Value {
    serde_yaml_ng::from_str(&read("openapi.yaml")).unwrap()
}

/// `/connections/{connectionId}` and `/connections/{id}` are the same route.
fn normalize(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "{}" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

fn ops_of_openapi(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                ops.insert((method.to_uppercase(), normalize(path)));
            }
        }
    }
    ops
}

fn routes() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|(_, m, p)| (m.to_string(), normalize(p)))
        .chain(
            shared::edge::spot::ROUTES
                .iter()
                .map(|(m, p)| (m.to_string(), p.to_string())),
        )
        .collect()
}

async fn full_router() -> axum::Router {
    let (app, _) = app(store(StoreKind::Embedded).await);
    let app = app.with_issuer(integration_tests::local_issuer("http://localhost:3000/oidc"));
    let r = router(app.clone(), OrgSource::local_header(), &Function::ALL);
    let config = shared::config::Config::from_lookup(|_| None).unwrap();
    let r = shared::edge::health::with_health_checks(r, app.clone(), config.health);
    with_console_events(r, app, shared::edge::console::ConsoleGate::open(), &Function::ALL)
}

async fn send(
    router: &axum::Router,
    method: &str,
    path: &str,
    org: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let r = integration_tests::send_json(router, method, path, org, body).await;
    (r.status.as_u16(), r.body)
}

#[test]
fn openapi_documents_exactly_the_routes_plus_the_local_event_door() {
    let mut expected = routes();
    expected.insert(("POST".into(), "/events".into()));
    expected.insert(("POST".into(), "/health-checks".into()));
    assert_eq!(ops_of_openapi(&openapi()), expected);
}

/// docs/api.md's route table names exactly the operations of `openapi.yaml` (which the test
/// above holds to the router): a route added, removed or renamed fails here until the page says so.
#[test]
fn the_api_page_lists_exactly_the_routes() {
    let page = read("docs/api.md");
    let listed: BTreeSet<(String, String)> = page
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .filter_map(|op| op.split_once(' '))
        .filter(|(method, _)| ["GET", "PUT", "POST", "DELETE", "PATCH"].contains(method))
        .map(|(method, path)| {
            let path = path.split('?').next().unwrap_or(path);
            (method.to_owned(), normalize(path))
        })
        .collect();
    assert_eq!(listed, ops_of_openapi(&openapi()));
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let router = full_router().await;
    for (method, path) in ops_of_openapi(&openapi()) {
        let path = path.replace("{}", "0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a");
        let (status, body) = send(&router, &method, &path, None, None).await;
        assert_ne!(body["code"], "route-not-found", "{method} {path}");
        assert_ne!(body["code"], "method-not-allowed", "{method} {path}");
        assert!(status < 500, "{method} {path}: {status}");
    }
}

#[tokio::test]
async fn request_examples_get_the_documented_success_status() {
    let doc = openapi();
    let router = full_router().await;
    let (_, created) = send(
        &router,
        "POST",
        "/connections",
        Some("606079861234"),
        Some(&serde_json::json!({"accountId": "act-1a2b3c4d"})),
    )
    .await;
    let id = created["connectionId"].as_str().unwrap().to_owned();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(examples) = op
                .pointer("/requestBody/content/application~1json/examples")
                .and_then(Value::as_object)
            else {
                continue;
            };
            let success: Vec<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|k| k.parse().ok())
                .filter(|s| *s < 300)
                .collect();
            // Spot's routes need Azure behind them: tests/python drives them with Spot's own SDK.
            if path.starts_with("/azure/") {
                continue;
            }
            for (name, ex) in examples {
                let mut body = ex["value"].clone();
                if path == "/events" {
                    body["detail"]["connectionId"] = Value::String(id.clone());
                }
                let real = path.replace("{connectionId}", &id);
                let (status, answer) = send(
                    &router,
                    &method.to_uppercase(),
                    &real,
                    Some("606079861234"),
                    Some(&body),
                )
                .await;
                assert!(
                    success.contains(&status),
                    "{method} {path} example {name}: {status} {answer}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 7, "only {checked} examples");
}

#[tokio::test]
async fn problem_examples_are_what_the_router_answers() {
    let doc = openapi();
    let router = full_router().await;
    let example = |name: &str| {
        doc["components"]["responses"][name]["content"]["application/problem+json"]["examples"].clone()
    };
    let unknown = "/connections/0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a";

    let (_, real) = send(&router, "GET", unknown, None, None).await;
    assert_eq!(real, example("Unauthorized")["noOrg"]["value"]);
    let (_, real) = send(&router, "GET", unknown, Some("o"), None).await;
    assert_eq!(real, example("NotFound")["missing"]["value"]);

    let (_, c) = send(
        &router,
        "POST",
        "/connections",
        Some("o"),
        Some(&serde_json::json!({"accountId": "act-1a2b3c4d"})),
    )
    .await;
    let base = format!("/connections/{}", c["connectionId"].as_str().unwrap());
    let (_, real) = send(&router, "GET", &format!("{base}/custom-role"), Some("o"), None).await;
    assert_eq!(real, example("Conflict")["prerequisite"]["value"]);
    let secret_id = serde_json::json!({"clientSecret": "0F8FAD5B-D9CB-469F-A165-70867728950E"});
    let (_, real) = send(
        &router,
        "PUT",
        &format!("{base}/client-secret"),
        Some("o"),
        Some(&secret_id),
    )
    .await;
    assert_eq!(real, example("Refused")["secretId"]["value"]);
    let (_, real) = send(
        &router,
        "PUT",
        &format!("{base}/client-secret"),
        Some("o"),
        Some(&serde_json::json!({"clientSecret": ""})),
    )
    .await;
    assert_eq!(real, example("BadRequest")["emptySecret"]["value"]);
}

#[test]
fn every_problem_code_is_documented() {
    let doc = openapi();
    let documented: BTreeSet<String> = doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let used: BTreeSet<String> = shared::edge::problem::codes()
        .chain(shared::domain::diagnosis::CODES.iter().copied())
        .map(|c| c.to_string())
        .collect();
    assert_eq!(used, documented);
}

#[test]
fn the_sam_template_routes_each_path_to_its_function() {
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("template.yaml")).unwrap();
    let mut found = BTreeSet::new();
    for (_, resource) in template["Resources"].as_mapping().unwrap() {
        let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str();
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            if event["Type"].as_str() == Some("HttpApi") {
                let p = &event["Properties"];
                found.insert((
                    binary.unwrap().to_owned(),
                    p["Method"].as_str().unwrap().to_owned(),
                    normalize(p["Path"].as_str().unwrap()),
                ));
            }
        }
    }
    let expected: BTreeSet<_> = ROUTES
        .iter()
        .map(|(f, m, p)| (f.name().to_owned(), m.to_string(), normalize(p)))
        .chain(
            shared::edge::spot::ROUTES
                .iter()
                .map(|(m, p)| ("spot-credentials".to_owned(), m.to_string(), p.to_string())),
        )
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn the_sam_template_sends_each_console_event_to_its_function() {
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("template.yaml")).unwrap();
    let mut found = BTreeSet::new();
    for (_, resource) in template["Resources"].as_mapping().unwrap() {
        let Some(binary) = resource["Metadata"]["BuildProperties"]["Binary"].as_str() else {
            continue;
        };
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            if event["Type"].as_str() == Some("EventBridgeRule") {
                for dt in event["Properties"]["Pattern"]["detail-type"]
                    .as_sequence()
                    .unwrap()
                {
                    found.insert((binary.to_owned(), dt.as_str().unwrap().to_owned()));
                }
            }
        }
    }
    let expected: BTreeSet<_> = Function::ALL
        .iter()
        .filter_map(|f| f.console_event().map(|e| (f.name().to_owned(), e.to_owned())))
        .collect();
    assert_eq!(found, expected);
}

/// The configuration page's table lists exactly the variables `Config` reads, with their defaults.
#[test]
fn the_configuration_table_matches_the_code() {
    let section = read("docs/configuration.md");
    let rows: BTreeMap<String, String> = section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_owned(), cells.get(2)?.to_string()))
        })
        .collect();
    let vars = shared::config::Config::variables();
    let names: BTreeSet<&str> = vars.iter().map(|(n, _, _)| n.as_str()).collect();
    let documented: BTreeSet<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(documented, names, "docs/configuration.md vs Config");
    for (name, default, _) in &vars {
        if let Some(d) = default {
            assert_eq!(
                rows[name],
                format!("`{d}`"),
                "{name}'s default in docs/configuration.md"
            );
        }
    }
}

/// Every event we publish is named in the API page's Events section.
#[test]
fn the_api_page_names_every_outcome_event() {
    let page = read("docs/api.md");
    let events = page
        .split("## Events\n")
        .nth(1)
        .expect("docs/api.md has an Events section");
    for name in shared::app::OutcomeEvent::DETAIL_TYPES {
        assert!(
            events.contains(&format!("`{name}`")),
            "docs/api.md does not name `{name}`"
        );
    }
}

/// The README is a front door (at most ~250 lines) and every relative link of it and of the
/// pages in `docs/` leads to a file that exists.
#[test]
fn the_readme_is_short_and_every_link_resolves() {
    let readme = read("README.md");
    assert!(
        readme.lines().count() <= 250,
        "README: {} lines",
        readme.lines().count()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let dir = page.parent().unwrap();
        for rest in text.match_indices("](").map(|(i, _)| &text[i + 2..]) {
            let Some(target) = rest.split(')').next() else {
                continue;
            };
            let file = target.split('#').next().unwrap_or_default();
            if file.is_empty() || file.contains("://") || file.contains(' ') {
                continue;
            }
            if !dir.join(file).exists() {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}

/// The keys are used only where needed, by the roles' policies: the issuer key's `kms:Sign` by
/// the two functions that sign in to Azure, `kms:GetPublicKey` by them and `oidc`; the
/// credentials' key decrypted by the four that send a secret to Azure, encrypted with by the three
/// that take one in. The OIDC routes are the only unauthenticated ones.
#[test]
fn the_sam_template_limits_the_keys_and_the_public_routes() {
    use integration_tests::iam::{Stack, TemplatePolicies};
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("template.yaml")).unwrap();
    let policies = TemplatePolicies::from_template(&template, &Stack::fixed(&template));
    let mut kms: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut public = BTreeSet::new();
    for (name, resource) in template["Resources"].as_mapping().unwrap() {
        let Some(binary) = resource["Metadata"]["BuildProperties"]["Binary"].as_str() else {
            continue;
        };
        let actions = policies.actions(name.as_str().unwrap());
        let k: BTreeSet<String> = actions.into_iter().filter(|a| a.starts_with("kms:")).collect();
        if !k.is_empty() {
            kms.insert(binary.to_owned(), k);
        }
        for (_, event) in resource["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            if event["Properties"]["Auth"]["Authorizer"].as_str() == Some("NONE") {
                public.insert(event["Properties"]["Path"].as_str().unwrap().to_owned());
            }
        }
    }
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let expected: BTreeMap<String, BTreeSet<String>> = [
        (
            "connect-account",
            set(&["kms:Sign", "kms:GetPublicKey", "kms:Decrypt"]),
        ),
        (
            "health-check",
            set(&["kms:Sign", "kms:GetPublicKey", "kms:Decrypt"]),
        ),
        ("oidc", set(&["kms:GetPublicKey"])),
        // Decrypt through Secrets Manager only: it encrypts a new value with the caller's rights.
        ("client-secret", set(&["kms:GenerateDataKey", "kms:Decrypt"])),
        ("spot-credentials", set(&["kms:GenerateDataKey", "kms:Decrypt"])),
        ("secret-expiry", set(&["kms:GenerateDataKey", "kms:Decrypt"])),
        (
            "setup",
            set(&[
                "kms:Sign",
                "kms:GetPublicKey",
                "kms:GenerateDataKey",
                "kms:Decrypt",
            ]),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(kms, expected);
    assert_eq!(
        public,
        set(&[
            "/oidc/.well-known/openid-configuration",
            "/oidc/jwks",
            "/setup/plan",
            "/setup/report",
            "/setup/scripts/azure-connect.sh"
        ])
    );
    let key = &template["Resources"]["IssuerKey"]["Properties"];
    assert_eq!(
        (key["KeySpec"].as_str(), key["KeyUsage"].as_str()),
        (Some("RSA_2048"), Some("SIGN_VERIFY"))
    );
}

/// Rotation can start in AWS: the scan's role may invoke the function `RotateSecret` names (by a
/// name derived from the stack, since its own ARN in its own role is a cycle); the schedule is
/// named from the stack; one dead-letter queue, watched by an alarm.
#[test]
fn the_sam_template_lets_rotation_start_and_names_things_from_the_stack() {
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("template.yaml")).unwrap();
    let resources = &template["Resources"];
    let expiry = serde_yaml_ng::to_string(&resources["SecretExpiryFunction"]).unwrap();
    assert!(
        expiry.contains("FunctionName: !Sub ${AWS::StackName}-secret-expiry"),
        "named from the stack:\n{expiry}"
    );
    use integration_tests::iam::{Stack, TemplatePolicies, Verdict};
    let policies = TemplatePolicies::from_template(&template, &Stack::fixed(&template));
    assert_eq!(
        policies.evaluate(
            "SecretExpiryFunction",
            "lambda:InvokeFunction",
            "arn:aws:lambda:us-east-1:123456789012:function:azc-secret-expiry"
        ),
        Verdict::Allowed,
        "RotateSecret's caller may invoke the rotation function"
    );
    assert!(
        expiry.contains("Name: !Sub ${AWS::StackName}-expiry-scan"),
        "{expiry}"
    );
    for (name, resource) in resources.as_mapping().unwrap() {
        for (event, e) in resource["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            let dlq = &e["Properties"]["DeadLetterConfig"];
            if !dlq.is_null() {
                assert!(
                    dlq.get("Type").is_none() && dlq.get("Arn").is_some(),
                    "{name:?}/{event:?}: a DLQ of its own beside FailedEventsQueue"
                );
            }
        }
    }
    let alarm = serde_yaml_ng::to_string(&resources["FailedEventsAlarm"]).unwrap();
    assert!(
        alarm.contains("FailedEventsQueue.QueueName") && alarm.contains("ApproximateNumberOfMessagesVisible"),
        "{alarm}"
    );
}

#[test]
fn connect_account_answers_inside_the_lambda_time_out_at_its_slowest() {
    // The slowest Connect Account: the store's read and write at their operation time-out, and
    // the whole Azure budget in between; it must answer before Lambda (and API Gateway) give up.
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("template.yaml")).unwrap();
    let lambda = std::time::Duration::from_secs(template["Globals"]["Function"]["Timeout"].as_u64().unwrap());
    let budget = &template["Parameters"]["AzureValidationBudgetMs"];
    let most = std::time::Duration::from_millis(budget["MaxValue"].as_u64().unwrap());
    let default = std::time::Duration::from_millis(budget["Default"].as_u64().unwrap());
    let margin = std::time::Duration::from_secs(2);
    assert!(
        lambda < std::time::Duration::from_secs(30),
        "API Gateway waits 30 s"
    );
    assert!(
        most + 2 * shared::config::AWS_OPERATION_TIMEOUT + margin <= lambda,
        "a budget of {most:?} can outlast the {lambda:?} Lambda time-out"
    );
    let config = shared::config::Config::from_lookup(|_| None).unwrap();
    assert_eq!(
        config.azure.budget, default,
        "the code's default and the template's differ"
    );
}

/// Deleting the stack keeps what customers trust and what failed for good; the health schedule is
/// a valid rate for every interval the template allows (EventBridge wants `rate(1 minute)`); the
/// architecture is a parameter (x86_64 where the arm64 target cannot be had).
#[test]
fn the_sam_template_keeps_what_matters_and_schedules_validly() {
    use integration_tests::iam::{Resolved, Stack, resolve};
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("template.yaml")).unwrap();
    let resources = &template["Resources"];
    for name in ["IssuerKey", "CredentialKey", "FailedEventsQueue"] {
        for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
            assert_eq!(
                resources[name][policy].as_str(),
                Some("Retain"),
                "{name} {policy}"
            );
        }
    }
    let expression = &resources["HealthCheckFunction"]["Properties"]["Events"]["Every"]["Properties"]["ScheduleExpression"];
    for (minutes, expected) in [
        ("1", "rate(1 minute)"),
        ("2", "rate(2 minutes)"),
        ("15", "rate(15 minutes)"),
    ] {
        let stack = Stack::new(&template, "azc", &[("HealthCheckIntervalMinutes", minutes)]);
        let Resolved::One(got) = resolve(expression, &template, &stack) else {
            panic!("one expression")
        };
        assert_eq!(got, expected);
    }
    assert_eq!(
        serde_yaml_ng::to_string(&template["Globals"]["Function"]["Architectures"])
            .unwrap()
            .trim(),
        "- !Ref Architecture"
    );
    let allowed: Vec<&str> = template["Parameters"]["Architecture"]["AllowedValues"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(allowed, ["arm64", "x86_64"]);
}

/// The deploy page's parameter table names every parameter of the template, with its default.
#[test]
fn the_deploy_page_lists_every_parameter_with_its_default() {
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("template.yaml")).unwrap();
    let page = read("docs/deploy.md");
    let rows: Vec<&str> = page
        .lines()
        .filter(|l| l.trim_start().starts_with("| `"))
        .collect();
    for (name, p) in template["Parameters"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let row = rows
            .iter()
            .find(|r| {
                r.split('|')
                    .nth(1)
                    .is_some_and(|c| c.contains(&format!("`{name}`")))
            })
            .unwrap_or_else(|| panic!("docs/deploy.md does not list the parameter {name}"));
        let default = match &p["Default"] {
            serde_yaml_ng::Value::String(s) if s.is_empty() => "empty".to_owned(),
            serde_yaml_ng::Value::String(s) => format!("`{s}`"),
            serde_yaml_ng::Value::Number(n) => format!("`{n}`"),
            _ => "(required)".to_owned(),
        };
        assert!(
            row.split('|').nth(2).is_some_and(|c| c.contains(&default)),
            "{name}: default {default} in {row}"
        );
    }
}

/// The operations page's metrics table names every metric the code declares.
#[test]
fn the_operations_page_lists_every_metric() {
    let page = read("docs/operations.md");
    for m in shared::metrics::METRICS {
        assert!(
            page.contains(&format!("`{}`", m.name)),
            "docs/operations.md does not list {}",
            m.name
        );
    }
}

/// Every alarm notifies the alarm topic; every metric an alarm or the dashboard names in our
/// namespace is one the code declares (with labels it may carry), and the dashboard shows the
/// whole funnel: they cannot drift apart.
#[test]
fn alarms_and_the_dashboard_name_only_metrics_the_code_emits() {
    use serde_yaml_ng::Value as Y;
    let template: Y = serde_yaml_ng::from_str(&read("template.yaml")).unwrap();
    let mut named: Vec<(String, Vec<String>)> = Vec::new();
    let mut alarms = 0;
    for (logical, r) in template["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        alarms += 1;
        let runbook = read("docs/operations.md");
        let heading = format!("### {}", logical.as_str().unwrap());
        assert!(
            runbook.contains(&heading),
            "docs/operations.md has no entry {heading}"
        );
        let p = &r["Properties"];
        let actions = serde_yaml_ng::to_string(&p["AlarmActions"]).unwrap();
        assert!(
            actions.contains("AlarmTopic"),
            "{logical:?} notifies the alarm topic: {actions}"
        );
        let mut metrics = vec![(
            p["Namespace"].clone(),
            p["MetricName"].clone(),
            p["Dimensions"].clone(),
        )];
        for q in p["Metrics"].as_sequence().into_iter().flatten() {
            let m = &q["MetricStat"]["Metric"];
            metrics.push((
                m["Namespace"].clone(),
                m["MetricName"].clone(),
                m["Dimensions"].clone(),
            ));
        }
        for (ns, name, dims) in metrics {
            if ns.as_str() != Some(shared::metrics::NAMESPACE) {
                continue;
            }
            let dims: Vec<String> = dims
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|d| d["Name"].as_str().map(str::to_owned))
                .collect();
            named.push((name.as_str().unwrap().to_owned(), dims));
        }
    }
    assert!(alarms >= 10, "{alarms} alarms");
    let body = match &template["Resources"]["Dashboard"]["Properties"]["DashboardBody"] {
        Y::Tagged(t) => t.value.as_str().unwrap().to_owned(),
        other => panic!("a !Sub body: {other:?}"),
    };
    // Substituted as CloudFormation would (any value will do for the JSON to parse).
    let mut text = String::new();
    let mut rest = body.as_str();
    while let Some(i) = rest.find("${") {
        text.push_str(&rest[..i]);
        let end = rest[i..].find('}').unwrap();
        text.push('x');
        rest = &rest[i + end + 1..];
    }
    text.push_str(rest);
    let dashboard: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("dashboard JSON: {e}\n{text}"));
    let mut shown = BTreeSet::new();
    for w in dashboard["widgets"].as_array().unwrap() {
        for m in w["properties"]["metrics"].as_array().unwrap() {
            let m = m.as_array().unwrap();
            if m[0] == shared::metrics::NAMESPACE {
                shown.insert(m[1].as_str().unwrap().to_owned());
            }
            if let Some(e) = m[0]["expression"].as_str() {
                let name = e
                    .split("MetricName=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                let labels: Vec<String> = e
                    .split('{')
                    .nth(1)
                    .unwrap()
                    .split('}')
                    .next()
                    .unwrap()
                    .split(',')
                    .skip(1)
                    .map(str::to_owned)
                    .collect();
                named.push((name.to_owned(), labels));
                shown.insert(name.to_owned());
            }
        }
    }
    for name in &shown {
        named.push((name.clone(), vec![]));
    }
    for (name, dims) in &named {
        let def = shared::metrics::def(name).unwrap_or_else(|| panic!("{name} is named but not emitted"));
        for d in dims {
            assert!(def.labels.contains(&d.as_str()), "{name} has no label {d}");
        }
    }
    for funnel in [
        "ConnectionStarted",
        "StepCompleted",
        "StepRejected",
        "AccountConnected",
    ] {
        assert!(shown.contains(funnel), "the dashboard shows {funnel}");
    }
}

/// docs/security.md shows exactly the table the IAM gate enforces (what AWS documents each API
/// the code calls to need).
#[test]
fn the_security_page_shows_the_gates_table() {
    let page = read("docs/security.md");
    let start = page
        .find("<!-- gate-table -->")
        .expect("the gate's table in docs/security.md");
    let end = page.find("<!-- /gate-table -->").unwrap();
    let rows: Vec<&str> = page[start..end].lines().skip(3).collect();
    let want = integration_tests::iam::documented::markdown_rows();
    assert_eq!(
        rows.join("\n").trim(),
        want.trim(),
        "docs/security.md's gate table; it should read:\n{want}"
    );
}
