//! Console events prove their organization: the bus takes the console's source from the console's
//! principal only (its policy, enforced by the IAM gate for any other principal whatever its IAM
//! policies say); a function refuses an event of another source or account; with the console's
//! token issuer set, an event acts for its token's organization only.

use std::time::Duration;

use integration_tests::deployed::Deployed;
use integration_tests::iam::{Stack, TemplatePolicies, Verdict};
use integration_tests::idp::Idp;
use serde_json::{Value, json};

const CONSOLE: &str = "arn:aws:iam::123456789012:role/spot-console";
const INTRUDER: &str = "arn:aws:iam::123456789012:role/Administrator";

#[test]
fn only_the_consoles_principal_puts_console_events_on_the_bus() {
    let template = TemplatePolicies::template();
    let stack = Stack::fixed_with(&template, &[("ConsolePrincipalArn", CONSOLE)]);
    let bus = stack.attrs["EventBus.Arn"].clone();
    let policies = TemplatePolicies::from_template(&template, &stack)
        .with_principal("Console", CONSOLE, &[])
        .with_principal("Intruder", INTRUDER, &["events:*"]);
    let put =
        |who: &str, source: &str| policies.evaluate_with(who, "events:PutEvents", &bus, None, Some(source));
    assert_eq!(
        put("Console", "spot.console"),
        Verdict::Allowed,
        "by the bus's policy"
    );
    assert_eq!(
        put("Intruder", "spot.console"),
        Verdict::Denied,
        "whatever its IAM policies allow"
    );
    for f in policies.functions().filter(|f| f.ends_with("Function")) {
        if put(f, "azure-connect") == Verdict::Allowed {
            assert_eq!(
                put(f, "spot.console"),
                Verdict::Denied,
                "{f} cannot speak for the console"
            );
        }
    }
    // Without a console principal, nobody speaks for the console.
    let closed = Stack::fixed(&template);
    let policies =
        TemplatePolicies::from_template(&template, &closed).with_principal("Console", CONSOLE, &["events:*"]);
    assert_eq!(
        policies.evaluate_with("Console", "events:PutEvents", &bus, None, Some("spot.console")),
        Verdict::Denied
    );
}

async fn stack(params: &[(&str, &str)]) -> (azure_emulator::Emulator, Deployed) {
    let (emulator, config) =
        integration_tests::emulator(azure_emulator::World::default(), Duration::from_secs(3)).await;
    let d = Deployed::start_with_params(config.authority_host.as_deref().unwrap(), params, |p| {
        p.with_principal("Console", CONSOLE, &[])
            .with_principal("Intruder", INTRUDER, &["events:*"])
    })
    .await;
    (emulator, d)
}

#[tokio::test]
async fn the_bus_refuses_console_events_from_anyone_but_the_console() {
    let (_e, d) = stack(&[("ConsolePrincipalArn", CONSOLE)]).await;
    let put = |who: &'static str| {
        let d = d.clone();
        async move {
            let events = aws_sdk_eventbridge::Client::new(&d.sdk_for(who).await);
            let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(&d.bus_name)
                .source("spot.console")
                .detail_type("Connection Started")
                .detail(json!({"orgId": "org-victim", "accountId": "act-1a2b3c4d"}).to_string())
                .build();
            events.put_events().entries(entry).send().await
        }
    };
    assert!(put("Console").await.is_ok());
    let refused = put("Intruder")
        .await
        .expect_err("an intruder put a console event");
    assert_eq!(
        refused
            .as_service_error()
            .and_then(|e| aws_sdk_eventbridge::error::ProvideErrorMetadata::code(e)),
        Some("AccessDeniedException")
    );
    assert_eq!(d.gate.refused().len(), 1, "{:?}", d.gate.refused());
}

fn event(source: &str, account: &str, detail: Value) -> Value {
    json!({"version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Connection Started",
        "source": source, "account": account, "time": "2026-11-29T10:00:00Z", "region": "us-east-1",
        "resources": [], "detail": detail})
}

#[tokio::test]
async fn a_function_refuses_an_event_of_another_source_or_account() {
    let (_e, d) = stack(&[("ConsolePrincipalArn", CONSOLE)]).await;
    let detail = json!({"orgId": "org-1", "accountId": "act-1a2b3c4d"});
    for (source, account) in [("evil.console", "123456789012"), ("spot.console", "999999999999")] {
        let out = d
            .console_to("ConnectionsFunction", event(source, account, detail.clone()))
            .await
            .unwrap();
        assert_eq!(
            (out["outcome"].as_str(), out["code"].as_str()),
            (Some("rejected"), Some("console-event-refused")),
            "{source} {account}: {out}"
        );
    }
    let ok = d
        .console_to(
            "ConnectionsFunction",
            event("spot.console", "123456789012", detail),
        )
        .await
        .unwrap();
    assert_eq!(ok["outcome"], "created", "{ok}");
}

#[tokio::test]
async fn with_the_token_issuer_set_an_event_acts_for_its_tokens_organization_only() {
    let idp = Idp::start().await;
    let (_e, d) = stack(&[
        ("ConsolePrincipalArn", CONSOLE),
        ("ConsoleTokenIssuer", &idp.issuer),
    ])
    .await;
    let send = |detail: Value| {
        d.console_to(
            "ConnectionsFunction",
            event("spot.console", "123456789012", detail),
        )
    };
    let token = idp.token("org-a", "azure-connect").await;
    let refused = |out: Value| {
        (
            out["outcome"] == "rejected",
            out["code"].as_str().map(str::to_owned),
        )
    };
    let code = Some("console-event-refused".to_owned());
    // No token, a token of another organization than named, another audience, expired, forged.
    let out = send(json!({"orgId": "org-a", "accountId": "act-1a2b3c4d"}))
        .await
        .unwrap();
    assert_eq!(refused(out), (true, code.clone()));
    let out = send(json!({"orgId": "org-b", "accountId": "act-1a2b3c4d", "token": token}))
        .await
        .unwrap();
    assert_eq!(refused(out), (true, code.clone()));
    let other_audience = idp.token("org-a", "someone-else").await;
    let out = send(json!({"accountId": "act-1a2b3c4d", "token": other_audience}))
        .await
        .unwrap();
    assert_eq!(refused(out), (true, code.clone()));
    let now = chrono::Utc::now().timestamp();
    let expired = idp
        .sign(&json!({"iss": idp.issuer, "aud": "azure-connect", "org_id": "org-a", "exp": now - 600}))
        .await;
    let out = send(json!({"accountId": "act-1a2b3c4d", "token": expired}))
        .await
        .unwrap();
    assert_eq!(refused(out), (true, code.clone()));
    let forged = Idp::start().await.token("org-a", "azure-connect").await;
    let out = send(json!({"accountId": "act-1a2b3c4d", "token": forged}))
        .await
        .unwrap();
    assert_eq!(refused(out), (true, code.clone()));

    // The token's organization, named or not.
    let out = send(json!({"accountId": "act-1a2b3c4d", "token": token}))
        .await
        .unwrap();
    assert_eq!(out["outcome"], "created", "{out}");
    let out = send(json!({"orgId": "org-a", "accountId": "act-2b3c4d5e", "token": token}))
        .await
        .unwrap();
    assert_eq!(out["outcome"], "created", "{out}");
    let created: Vec<Value> = d
        .bus_events()
        .await
        .into_iter()
        .filter(|e| e["detail-type"] == "Step Completed")
        .collect();
    assert_eq!(created.len(), 2);
    assert!(
        created.iter().all(|e| e["detail"]["orgId"] == "org-a"),
        "{created:?}"
    );
    assert!(
        !format!("{created:?}").contains(&token),
        "the token is not repeated"
    );
}
