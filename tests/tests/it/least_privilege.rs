//! Least privilege, enforced: the backend deployed as `template.yaml` says (every function built
//! as its `main` builds it, with the environment the template gives it), each function's AWS calls
//! made with its own credentials through the IAM gate, which refuses what the function's role does
//! not allow (action and resource). Every path of the suite is walked — the wizard over the HTTP
//! API and over console events, Spot's credentials API, the move to secretless, rotation started
//! by the expiry scan and its four steps, the health check, deletion — with nothing refused; and
//! every action a function uses is needed: without it, a call on the walk is refused, naming the
//! function, the action and the resource.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use azure_emulator::{Emulator, World};
use chrono::Utc;
use integration_tests::deployed::Deployed;
use integration_tests::iam::{Call, TemplatePolicies, Verdict};
use integration_tests::{SECRET, emulator};
use serde_json::{Value, json};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP: &str = "11111111-2222-4333-8444-555555555555";
const SUB: &str = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab";
/// The console's wizard's and Spot's API's subscriptions (a subscription is one account's): two of
/// the group `estate`'s, where the app holds its role.
const CONSOLE_SUB: &str = "00000000-0000-4000-8000-0000000e5701";
const SPOT_SUB: &str = "00000000-0000-4000-8000-0000000e5702";
const ORG: &str = "org-iam";
const OLD_KEY: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

/// The app's subscription and 11 more under the management group `estate`, where the app holds
/// Spot's role with discovery's actions (the estate's walk: more discoveries than one `PutEvents`
/// batch carries).
fn world() -> World {
    let mut w = integration_tests::world_of_one_app(true, OLD_KEY, Some(10));
    let mut under = vec![SUB.to_owned()];
    for i in 0..11 {
        let id = format!("00000000-0000-4000-8000-0000000e57{i:02}");
        w.subscriptions.push(azure_emulator::Subscription {
            id: id.clone(),
            tenant_id: TENANT.into(),
            display_name: format!("estate {i}"),
            state: "Enabled".into(),
            ..azure_emulator::Subscription::default()
        });
        under.push(id);
    }
    w.management_groups.push(azure_emulator::ManagementGroup {
        name: "estate".into(),
        tenant_id: TENANT.into(),
        display_name: "Estate".into(),
        subscriptions: under,
        grants: vec![azure_emulator::Grant {
            app_id: APP.into(),
            actions: shared::domain::role::required_actions()
                .chain(shared::domain::estate::GROUP_ACTIONS)
                .map(str::to_owned)
                .collect(),
            ..azure_emulator::Grant::default()
        }],
        ..azure_emulator::ManagementGroup::default()
    });
    // A group whose list leaves the connection's document for pages of their own.
    let mut big = Vec::new();
    for i in 0..BIG {
        let id = big_sub(i);
        w.subscriptions.push(azure_emulator::Subscription {
            id: id.clone(),
            tenant_id: TENANT.into(),
            display_name: format!("big {i}"),
            state: "Enabled".into(),
            ..azure_emulator::Subscription::default()
        });
        big.push(id);
    }
    let grants = w.management_groups[0].grants.clone();
    w.management_groups.push(azure_emulator::ManagementGroup {
        name: "big".into(),
        tenant_id: TENANT.into(),
        display_name: "Big".into(),
        subscriptions: big,
        grants,
        ..azure_emulator::ManagementGroup::default()
    });
    w
}

/// Subscriptions of the group `big`: more than a connection's document keeps inline.
const BIG: usize = 1_400;

/// Subscription `i` of `big`: random-looking, as Azure's ids are (ids in a row would deflate to
/// little and stay inline).
fn big_sub(i: usize) -> String {
    let bits = (i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    uuid::Builder::from_random_bytes(bits.to_le_bytes())
        .into_uuid()
        .to_string()
}

/// The body of a successful answer; on any other, the failure with every call the gate refused.
fn ok(d: &Deployed, r: &integration_tests::Reply, what: &str) -> Value {
    assert!(
        r.status.is_success(),
        "{what}: {} {}\nrefused: {:?}",
        r.status,
        r.body,
        d.gate.refused()
    );
    r.body.clone()
}

/// The wizard to `connected` over the HTTP API, with a client secret expiring in 10 days.
async fn wizard_over_http(d: &Deployed) -> String {
    let c = ok(
        d,
        &d.call(
            "POST",
            "/connections",
            ORG,
            Some(json!({"accountId": "act-1a2b3c4d"})),
        )
        .await,
        "start",
    );
    let id = c["connectionId"].as_str().unwrap().to_owned();
    let base = format!("/connections/{id}");
    let expires = (Utc::now() + chrono::Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    for (step, body) in [
        ("app-registration", json!({"tenantId": TENANT, "clientId": APP})),
        (
            "client-secret",
            json!({"clientSecret": SECRET, "expiresAt": expires}),
        ),
        ("subscription", json!({"subscriptionId": SUB})),
    ] {
        ok(
            d,
            &d.call("PUT", &format!("{base}/{step}"), ORG, Some(body)).await,
            step,
        );
    }
    ok(
        d,
        &d.call("GET", &format!("{base}/custom-role?format=cli"), ORG, None)
            .await,
        "custom role",
    );
    let c = ok(
        d,
        &d.call("POST", &format!("{base}/connect"), ORG, None).await,
        "connect",
    );
    assert_eq!(c["status"], "connected", "{c}");
    ok(d, &d.call("GET", &base, ORG, None).await, "read");
    id
}

/// The wizard over console events (the secret over the API, as the console must send it).
async fn wizard_over_console(d: &Deployed) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let detail = |extra: Value| {
        let mut d = json!({"orgId": ORG, "connectionId": id});
        d.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        d
    };
    let step = |dt: &'static str, extra: Value| {
        let detail = detail(extra);
        async move {
            let out = d
                .console("spot.console", dt, detail)
                .await
                .unwrap_or_else(|| panic!("no rule takes {dt}"))
                .unwrap_or_else(|e| panic!("{dt}: {e}"));
            assert_ne!(out["outcome"], "rejected", "{dt}: {out}");
        }
    };
    step("Connection Started", json!({"accountId": "act-2b3c4d5e"})).await;
    step(
        "App Registration Submitted",
        json!({"tenantId": TENANT, "clientId": APP}),
    )
    .await;
    ok(
        d,
        &d.call(
            "PUT",
            &format!("/connections/{id}/client-secret"),
            ORG,
            Some(json!({"clientSecret": SECRET})),
        )
        .await,
        "client secret",
    );
    step("Subscription Submitted", json!({"subscriptionId": CONSOLE_SUB})).await;
    step("Custom Role Requested", json!({})).await;
    step("Connect Account Requested", json!({})).await;
    id
}

/// Spot's credentials API: set, read, validate.
async fn spots_api(d: &Deployed) {
    let account = "act-3c4d5e6f";
    let body =
        json!({"clientId": APP, "clientSecret": SECRET, "tenantId": TENANT, "subscriptionId": SPOT_SUB});
    ok(
        d,
        &d.call(
            "POST",
            &format!("/azure/setup/credentials?accountId={account}"),
            ORG,
            Some(body.clone()),
        )
        .await,
        "Spot: set",
    );
    ok(
        d,
        &d.call(
            "GET",
            &format!("/azure/setup/credentials?accountId={account}"),
            ORG,
            None,
        )
        .await,
        "Spot: get",
    );
    ok(
        d,
        &d.call(
            "POST",
            &format!("/azure/setup/credentials/validation?accountId={account}"),
            ORG,
            Some(body),
        )
        .await,
        "Spot: validate",
    );
}

/// A connected secret connection moves to secretless (our issuer's keys fetched by the emulator
/// from the `oidc` function).
async fn move_to_secretless(d: &Deployed, emulator: &Emulator, id: &str) {
    let base = format!("/connections/{id}");
    ok(
        d,
        &d.call(
            "PUT",
            &format!("{base}/credential-type"),
            ORG,
            Some(json!({"credentialType": "federated"})),
        )
        .await,
        "credential type",
    );
    let values = ok(
        d,
        &d.call("GET", &format!("{base}/federated-credential"), ORG, None)
            .await,
        "values",
    );
    integration_tests::add_federated_credential(emulator, &values);
    let c = ok(
        d,
        &d.call("POST", &format!("{base}/connect"), ORG, None).await,
        "connect federated",
    );
    assert_eq!(
        (c["status"].as_str(), c["credentialType"].as_str()),
        (Some("connected"), Some("federated")),
        "{c}"
    );
}

/// Rotation on; the expiry scan starts it (RotateSecret names the function); Secrets Manager's
/// four steps, as it sends them.
async fn rotation(d: &Deployed, id: &str) {
    ok(
        d,
        &d.call(
            "PUT",
            &format!("/connections/{id}/rotation"),
            ORG,
            Some(json!({"enabled": true, "daysBefore": 14})),
        )
        .await,
        "rotation on",
    );
    let scan = d
        .expiry(json!({"scanId": uuid::Uuid::new_v4().to_string(), "scheduledAt": Utc::now().to_rfc3339()}))
        .await
        .unwrap();
    assert!(scan["rotations"].as_u64().unwrap_or(0) >= 1, "{scan}");
    let name = format!("{}{ORG}/{id}", d.prefix);
    let sm = aws_sdk_secretsmanager::Client::new(&integration_tests::sdk_config().await);
    let described = sm.describe_secret().secret_id(&name).send().await.unwrap();
    let token = described
        .version_ids_to_stages()
        .unwrap()
        .iter()
        .find(|(_, s)| s.iter().any(|l| l == "AWSPENDING"))
        .map(|(v, _)| v.clone())
        .expect("RotateSecret left an AWSPENDING version");
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        d.expiry(json!({"Step": step, "SecretId": name, "ClientRequestToken": token}))
            .await
            .unwrap_or_else(|e| panic!("{step}: {e}"));
    }
}

/// Walks every path; returns the stack (its gate holds every call) and the emulator.
/// An estate over the HTTP API: scope, connect (12 subscriptions discovered, announced in
/// batches), the list, a subscription tied to an account (the organization's connections of that
/// account looked up by tag).
async fn estate(d: &Deployed) {
    let c = ok(
        d,
        &d.call(
            "POST",
            "/connections",
            ORG,
            Some(json!({"accountId": "act-e5e5e5e5"})),
        )
        .await,
        "estate start",
    );
    let base = format!("/connections/{}", c["connectionId"].as_str().unwrap());
    for (step, body) in [
        ("app-registration", json!({"tenantId": TENANT, "clientId": APP})),
        ("client-secret", json!({"clientSecret": SECRET})),
        ("scope", json!({"managementGroupId": "estate"})),
    ] {
        ok(
            d,
            &d.call("PUT", &format!("{base}/{step}"), ORG, Some(body)).await,
            step,
        );
    }
    let c = ok(
        d,
        &d.call("POST", &format!("{base}/connect"), ORG, None).await,
        "estate connect",
    );
    assert_eq!(c["estate"]["subscriptions"], 12, "{c}");
    let page = ok(
        d,
        &d.call("GET", &format!("{base}/subscriptions"), ORG, None).await,
        "list",
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 12, "{page}");
    let linked = ok(
        d,
        &d.call(
            "PUT",
            // Not SUB: the wizard's connection holds it (nor the console's, nor Spot's API's).
            &format!("{base}/subscriptions/00000000-0000-4000-8000-0000000e5700"),
            ORG,
            Some(json!({"accountId": "act-e6e6e6e6"})),
        )
        .await,
        "link",
    );
    assert_eq!(linked["status"], "linked", "{linked}");
    // Every discovery reached the bus (two PutEvents batches and more).
    let discovered = d
        .bus_events()
        .await
        .into_iter()
        .filter(|e| {
            e["detail-type"] == "Subscription Discovered" && e["detail"]["managementGroupId"] == "estate"
        })
        .count();
    assert_eq!(discovered, 12);
}

/// An estate of [`BIG`] subscriptions: its list in pages made by Connect Account, one replaced by
/// a link, all of them deleted with the connection.
async fn big_estate(d: &Deployed) {
    let c = ok(
        d,
        &d.call(
            "POST",
            "/connections",
            ORG,
            Some(json!({"accountId": "act-b1b1b1b1"})),
        )
        .await,
        "big start",
    );
    let base = format!("/connections/{}", c["connectionId"].as_str().unwrap());
    for (step, body) in [
        ("app-registration", json!({"tenantId": TENANT, "clientId": APP})),
        ("client-secret", json!({"clientSecret": SECRET})),
        ("scope", json!({"managementGroupId": "big"})),
    ] {
        ok(
            d,
            &d.call("PUT", &format!("{base}/{step}"), ORG, Some(body)).await,
            step,
        );
    }
    // Beyond the stack's `SurveyAtOnce`: 202, surveyed in the background through the survey
    // queue, drained by Connect Account's SQS trigger (in chunks of 500).
    let r = d.call("POST", &format!("{base}/connect"), ORG, None).await;
    let c = ok(d, &r, "big connect");
    assert_eq!(r.status, 202, "{c}");
    assert_eq!(c["estate"]["survey"]["state"], "surveying", "{c}");
    assert_eq!(d.drain_survey().await, (BIG.div_ceil(500), 0));
    let c = ok(d, &d.call("GET", &base, ORG, None).await, "big read");
    assert_eq!(c["estate"]["subscriptions"], BIG, "{c}");
    assert_eq!(c["estate"]["survey"]["state"], "done", "{c}");
    let linked = ok(
        d,
        &d.call(
            "PUT",
            &format!("{base}/subscriptions/{}", big_sub(7)),
            ORG,
            Some(json!({"accountId": "act-b2b2b2b2"})),
        )
        .await,
        "big link",
    );
    assert_eq!(linked["status"], "linked", "{linked}");
    let r = d.call("DELETE", &base, ORG, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
}

async fn walk_everything(d: &Deployed, emulator: &Emulator) {
    let secret = wizard_over_http(d).await;
    estate(d).await;
    Box::pin(big_estate(d)).await;
    wizard_over_console(d).await;
    spots_api(d).await;
    rotation(d, &secret).await;
    let health = d.health(json!({"force": true})).await.unwrap();
    assert!(health["checked"].as_u64().unwrap() >= 2, "{health}");
    move_to_secretless(d, emulator, &secret).await;
    let health = d.health(json!({"force": true})).await.unwrap();
    assert!(health["checked"].as_u64().unwrap() >= 2, "{health}");
    // A draft left untouched past the abandonment period goes with the daily scan.
    ok(
        d,
        &d.call(
            "POST",
            "/connections",
            ORG,
            Some(json!({"accountId": "act-4d5e6f7a"})),
        )
        .await,
        "a draft",
    );
    let later = (Utc::now() + chrono::Duration::days(31)).to_rfc3339();
    let scan = d
        .expiry_later(31, json!({"scanId": "abandon", "scheduledAt": later}))
        .await
        .unwrap();
    assert!(scan["abandoned"].as_u64().unwrap() >= 1, "{scan}");
    // A scheduled run claims itself once in the store.
    let run = d
        .health(json!({"scheduledAt": Utc::now().to_rfc3339()}))
        .await
        .unwrap();
    assert!(run.get("checked").is_some(), "{run}");
    let r = d
        .call("DELETE", &format!("/connections/{secret}"), ORG, None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
}

async fn stack(edit: impl FnOnce(TemplatePolicies) -> TemplatePolicies) -> (Deployed, Emulator) {
    let (emulator, azure) = emulator(world(), Duration::from_secs(3)).await;
    // The big estate (1,400) beyond what is surveyed at once: its survey goes to the queue.
    let params = [("SurveyAtOnce", "1000")];
    let d = Deployed::start_with_params(azure.authority_host.as_deref().unwrap(), &params, edit).await;
    (d, emulator)
}

/// The whole walk on a thread of its own with 16 MiB of stack: in a debug build every function's
/// handler polls its use case's future inline through the Lambda adapter, the router and the
/// store, deeper than a test thread's 2 MiB (release frames are a fraction of these; the release
/// binaries survey 10,000 subscriptions in `scripts/bench`).
#[test]
fn every_path_runs_under_exactly_the_templates_permissions() {
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(every_path())
        })
        .unwrap()
        .join()
        .unwrap();
}

#[allow(
    clippy::print_stdout,
    reason = "the summary of the walk's calls, as the test printed it"
)]
async fn every_path() {
    let (d, emulator) = stack(|p| p).await;
    // On the heap: the whole walk is one future, too large for a test thread's stack.
    Box::pin(walk_everything(&d, &emulator)).await;
    d.gate.assert_nothing_refused("the walk");
    let calls = d.gate.calls();
    // The big estate's pages were made by Connect Account, one replaced by a link, the rest
    // deleted with the connection, each under its function's own role.
    // Its survey's chunks sent, received and deleted under Connect Account's role.
    for action in [
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
    ] {
        assert!(
            calls.iter().any(|c| c.function == "ConnectAccountFunction"
                && c.action == action
                && c.resource.ends_with("-survey")),
            "ConnectAccountFunction made no {action} on the survey queue"
        );
    }
    for (function, action) in [
        ("ConnectAccountFunction", "secretsmanager:CreateSecret"),
        ("SubscriptionFunction", "secretsmanager:CreateSecret"),
        ("SubscriptionFunction", "secretsmanager:DeleteSecret"),
        ("ConnectionsFunction", "secretsmanager:DeleteSecret"),
    ] {
        assert!(
            calls
                .iter()
                .any(|c| c.function == function && c.action == action && c.resource.contains("+p-")),
            "{function} made no {action} on an estate page"
        );
    }

    // Every function made its calls under its own role.
    let callers: BTreeSet<&str> = calls.iter().map(|c| c.function.as_str()).collect();
    let template = TemplatePolicies::template();
    let functions: BTreeSet<String> = TemplatePolicies::from_template(&template, &d.stack)
        .functions()
        .map(str::to_owned)
        .collect();
    for f in &functions {
        // The script's function has no AWS permission and makes no AWS call.
        if f == "SetupScriptFunction" {
            assert!(!callers.contains(f.as_str()), "{f} called AWS");
            continue;
        }
        assert!(
            callers.contains(f.as_str()),
            "{f} made no AWS call on the walk: {callers:?}"
        );
    }
    assert!(callers.iter().all(|c| functions.contains(*c)), "{callers:?}");

    // Each action a function uses is needed: without it, the same calls are refused.
    let policies = TemplatePolicies::from_template(&template, &d.stack);
    let used: BTreeSet<(String, String)> = d.gate.actions();
    for (function, action) in &used {
        let without = policies.clone().without(function, action);
        let refused: Vec<&Call> = calls
            .iter()
            .filter(|c| &c.function == function && &c.action == action)
            .filter(|c| without.evaluate(&c.function, &c.action, &c.resource) != Verdict::Allowed)
            .collect();
        assert!(!refused.is_empty(), "{function}: {action} is granted twice over");
    }
    let summary: Vec<String> = used.iter().map(|(f, a)| format!("{f} {a}")).collect();
    println!("AWS calls by function on the walk:\n  {}", summary.join("\n  "));
}

/// The gate refuses as AWS does, and the function meets the refusal: without DeleteSecret on the
/// credentials, the move to secretless cannot erase the secret it moved off.
#[tokio::test]
async fn a_removed_action_is_refused_naming_the_function_the_action_and_the_resource() {
    let (d, emulator) = stack(|p| {
        p.without_on(
            "ConnectAccountFunction",
            "secretsmanager:DeleteSecret",
            "-credentials/",
        )
    })
    .await;
    let id = wizard_over_http(&d).await;
    d.gate.assert_nothing_refused("the wizard");
    move_to_secretless(&d, &emulator, &id).await;
    let refused = d.gate.refused();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let r = &refused[0];
    assert_eq!(
        (r.function.as_str(), r.action.as_str()),
        ("ConnectAccountFunction", "secretsmanager:DeleteSecret")
    );
    let credentials = shared::store::default_credential_prefix(&d.prefix);
    assert!(
        r.resource.contains(&format!(":secret:{credentials}{ORG}/{id}/")),
        "{r}"
    );
    assert!(
        format!("{r}").contains(
            "ConnectAccountFunction was REFUSED secretsmanager:DeleteSecret on arn:aws:secretsmanager:"
        ),
        "{r}"
    );
}

/// AWS documents that Secrets Manager encrypts a new value under a customer managed key with the
/// caller's permissions, GenerateDataKey and Decrypt: without Decrypt, 3.3 fails in AWS, and the
/// gate refuses it the same way (it once checked GenerateDataKey only, and so hid exactly this).
#[tokio::test]
async fn a_writer_without_kms_decrypt_cannot_store_a_secret_as_in_aws() {
    let (d, _emulator) = stack(|p| p.without("ClientSecretFunction", "kms:Decrypt")).await;
    let start = d
        .call(
            "POST",
            "/connections",
            ORG,
            Some(serde_json::json!({"accountId": "act-0000dec0"})),
        )
        .await;
    let id = start.body["connectionId"].as_str().unwrap().to_owned();
    let r = d
        .call(
            "PUT",
            &format!("/connections/{id}/client-secret"),
            ORG,
            Some(serde_json::json!({"clientSecret": integration_tests::SECRET})),
        )
        .await;
    assert!(
        r.status.is_server_error(),
        "stored without kms:Decrypt: {}",
        r.body
    );
    let refused = d.gate.refused();
    assert!(
        refused
            .iter()
            .any(|c| c.function == "ClientSecretFunction" && c.action == "kms:Decrypt"),
        "{refused:?}"
    );
}

/// The client secret is readable only where it is used: by role (GetSecretValue on the
/// credentials, Decrypt with their key, through Secrets Manager) and end to end (custom-role's
/// credentials, through the gate, cannot read a connection's secret).
#[tokio::test]
async fn only_the_functions_that_use_the_secret_can_read_it() {
    let (d, emulator) = stack(|p| p).await;
    let id = wizard_over_http(&d).await;
    let _ = emulator;
    let template = TemplatePolicies::template();
    let policies = TemplatePolicies::from_template(&template, &d.stack);
    let credential = format!(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:{}{ORG}/{id}/1-0123abcd-AbC123",
        shared::store::default_credential_prefix(&d.prefix)
    );
    let key = d.stack.attrs["CredentialKey.Arn"].clone();
    let via = Some("secretsmanager.us-east-1.amazonaws.com");
    let readers: BTreeSet<&str> = policies
        .functions()
        .filter(|f| {
            policies.evaluate(f, "secretsmanager:GetSecretValue", &credential) == Verdict::Allowed
                && policies.evaluate_in(f, "kms:Decrypt", &key, via) == Verdict::Allowed
        })
        .collect();
    assert_eq!(
        readers,
        BTreeSet::from([
            "ConnectAccountFunction",
            "HealthCheckFunction",
            "SetupFunction",
            "SecretExpiryFunction",
            "SpotCredentialsFunction"
        ])
    );
    // Decrypt outside Secrets Manager: nobody.
    for f in policies.functions() {
        assert_ne!(
            policies.evaluate_in(f, "kms:Decrypt", &key, None),
            Verdict::Allowed,
            "{f}"
        );
    }

    // custom-role's own credentials, through the gate: refused, as AWS would.
    let name = integration_tests::credentials_of(
        &d.prefix,
        &shared::domain::OrgId::parse(ORG).unwrap(),
        &shared::domain::ConnectionId::parse(&id).unwrap(),
    )
    .await
    .pop()
    .expect("the connection's credential")
    .0;
    let sm = aws_sdk_secretsmanager::Client::new(&d.sdk_for("CustomRoleFunction").await);
    let read = sm.get_secret_value().secret_id(&name).send().await;
    let err = read.expect_err("custom-role read a client secret");
    assert_eq!(
        err.as_service_error().and_then(|e| e.meta().code()),
        Some("AccessDeniedException")
    );
    let refused: BTreeSet<(String, String)> = d
        .gate
        .refused()
        .into_iter()
        .map(|c| (c.function, c.action))
        .collect();
    assert_eq!(
        refused,
        BTreeSet::from([
            (
                "CustomRoleFunction".to_owned(),
                "secretsmanager:GetSecretValue".to_owned()
            ),
            ("CustomRoleFunction".to_owned(), "kms:Decrypt".to_owned()),
        ]),
        "refused by its role and by the key's policy"
    );
    // And the document custom-role does read holds no secret.
    let doc = sm
        .get_secret_value()
        .secret_id(format!("{}{ORG}/{id}", d.prefix))
        .send()
        .await
        .unwrap();
    assert!(!doc.secret_string().unwrap().contains(SECRET));
}

/// The key policies, as the template writes them: the issuer key signs for the two signing roles
/// and refuses everyone else explicitly (the other functions, an administrator, any role of the
/// account); the credentials' key decrypts, through Secrets Manager only, for the roles that send
/// a secret to Azure and for the one that only writes one (Secrets Manager decrypts with the
/// writer's permissions when it encrypts a new value: AWS documents GenerateDataKey and Decrypt).
#[test]
fn the_keys_serve_only_the_roles_that_need_them() {
    use integration_tests::iam::{Context, Stack};
    let template = TemplatePolicies::template();
    let stack = Stack::fixed(&template);
    let policies = TemplatePolicies::from_template(&template, &stack);
    let outsiders = [
        "arn:aws:iam::123456789012:role/Administrator".to_owned(),
        "arn:aws:iam::123456789012:role/azc-us-east-1-connect-copy".to_owned(),
        "arn:aws:iam::123456789012:user/operator".to_owned(),
    ];
    let principals: Vec<(String, String)> = policies
        .functions()
        .map(|f| (f.to_owned(), policies.role_arn(f).to_owned()))
        .chain(outsiders.iter().map(|o| (o.clone(), o.clone())))
        .collect();
    let verdicts = |key: &str, action: &str, via: Option<&str>| -> BTreeMap<Verdict, BTreeSet<String>> {
        let mut out: BTreeMap<Verdict, BTreeSet<String>> = BTreeMap::new();
        for (who, arn) in &principals {
            let context = Context {
                principal_arn: arn.clone(),
                via_service: via.map(str::to_owned),
                source: None,
            };
            out.entry(policies.key_policy(key, action, &context))
                .or_default()
                .insert(who.clone());
        }
        out
    };
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let issuer = &stack.attrs["IssuerKey.Arn"];
    let sign = verdicts(issuer, "kms:Sign", None);
    assert_eq!(
        sign[&Verdict::Allowed],
        names(&["ConnectAccountFunction", "HealthCheckFunction", "SetupFunction"])
    );
    assert_eq!(
        sign.get(&Verdict::NotAllowed),
        None,
        "everyone else is refused explicitly: {sign:?}"
    );
    assert_eq!(sign[&Verdict::Denied].len(), principals.len() - 3);
    let publish = verdicts(issuer, "kms:GetPublicKey", None);
    assert_eq!(
        publish[&Verdict::Allowed],
        names(&[
            "ConnectAccountFunction",
            "HealthCheckFunction",
            "OidcFunction",
            "SetupFunction"
        ])
    );

    let credentials = &stack.attrs["CredentialKey.Arn"];
    let via = Some("secretsmanager.us-east-1.amazonaws.com");
    let decrypt = verdicts(credentials, "kms:Decrypt", via);
    let users = names(&[
        "ClientSecretFunction",
        "ConnectAccountFunction",
        "HealthCheckFunction",
        "SecretExpiryFunction",
        "SetupFunction",
        "SpotCredentialsFunction",
    ]);
    assert_eq!(decrypt[&Verdict::Allowed], users);
    assert_eq!(decrypt.get(&Verdict::NotAllowed), None, "{decrypt:?}");
    // Not through Secrets Manager: nobody, the readers included.
    let direct = verdicts(credentials, "kms:Decrypt", None);
    assert_eq!(direct.get(&Verdict::Allowed), None, "{direct:?}");
    let encrypt = verdicts(credentials, "kms:GenerateDataKey", via);
    assert_eq!(
        encrypt[&Verdict::Allowed],
        names(&[
            "ClientSecretFunction",
            "SecretExpiryFunction",
            "SetupFunction",
            "SpotCredentialsFunction"
        ])
    );
}
