//! Every sample in `events/` goes through its function's Lambda handler (over Secrets Manager in
//! moto), as the Lambda runtime would deliver it.

use std::path::Path;

use integration_tests::{
    app, app_registration, client_secret, request, sm_store, subscription, unique_prefix,
};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use shared::app::Operation;
use shared::domain::{AccountId, ConnectionId, CredentialType, OrgId};
use shared::edge::Function;
use shared::edge::lambda::Handler;

const SAMPLE_CONNECTION: &str = "0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a";
const SAMPLE_ORG: &str = "606079861234";

fn samples() -> Vec<(Function, std::path::PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut out = Vec::new();
    for f in Function::ALL {
        let dir = root.join(f.name());
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                out.push((f, path));
            }
        }
    }
    out
}

#[test]
fn every_function_has_a_sample_for_every_trigger() {
    let all = samples();
    for f in Function::ALL {
        let names: Vec<String> = all
            .iter()
            .filter(|(g, _)| *g == f)
            .map(|(_, p)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with("http-")),
            "{}: no HTTP sample",
            f.name()
        );
        if f.console_event().is_some() {
            assert!(
                names.iter().any(|n| n.starts_with("console-")),
                "{}: no console sample",
                f.name()
            );
        }
    }
}

/// One sample through its function's handler, on a connection with every input step done so that
/// each sample can succeed.
async fn run_sample(function: Function, file: &str) {
    shared::metrics::install_emf();
    run_sample_through(function, file).await;
    // The function's metrics, as CloudWatch reads them: every line valid EMF, every metric declared.
    let mut out = Vec::new();
    shared::metrics::flush_emf(&mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(
        !text.is_empty() || matches!(function, Function::Issuer | Function::SetupScript),
        "{file}: no metrics"
    );
    for line in text.lines() {
        integration_tests::emf::check_declared(line);
    }
}

async fn run_sample_through(function: Function, file: &str) {
    {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../events")
            .join(function.name())
            .join(file);
        let name = file.to_owned();
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // The script's function composes nothing: its own handler, as its main.
        if function == Function::SetupScript {
            use shared::edge::lambda::EventHandler;
            let out = shared::edge::lambda::ScriptHandler::default()
                .handle_event(LambdaEvent::new(payload, Context::default()))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(out["statusCode"], 200, "{name}: {out}");
            assert!(
                out["body"].as_str().unwrap().starts_with("#!/usr/bin/env bash"),
                "{name}"
            );
            return;
        }

        // A connection with every input step done, so that each sample can succeed.
        let store = sm_store(&unique_prefix()).await;
        let (app, sink) = app(store);
        let (_azure, validator) = integration_tests::azure().await;
        let issuer = integration_tests::local_issuer("https://api.example.com/oidc");
        let app = app.with_validator(validator).with_issuer(issuer);
        let org = OrgId::parse(SAMPLE_ORG).unwrap();
        let id = ConnectionId::parse(SAMPLE_CONNECTION).unwrap();
        // The federated-credential step's samples need a secretless connection.
        let federated = function == Function::FederatedCredential && name != "http-put-credential-type.json";
        let start = Operation::Start {
            account: AccountId::parse("act-1a2b3c4d").unwrap(),
            connection: Some(id),
            credential: if federated {
                CredentialType::Federated
            } else {
                CredentialType::Secret
            },
        };
        app.execute(&request("setup-0"), &org, start).await.unwrap();
        let inputs = if federated {
            vec![app_registration(), subscription()]
        } else {
            vec![app_registration(), client_secret(), subscription()]
        };
        for (i, command) in inputs.into_iter().enumerate() {
            let op = Operation::Submit {
                connection: id,
                command,
            };
            app.execute(&request(&format!("setup-{}", i + 1)), &org, op)
                .await
                .unwrap();
        }
        let before = sink.events().len();

        let handler = Handler::new(function, app, "org_id");
        let out = handler
            .handle(LambdaEvent::new(payload, Context::default()))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let published = &sink.events()[before..];
        if function == Function::SpotCredentials {
            assert_eq!(out["statusCode"], 200, "{name}: {out}");
            let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
            assert_eq!(body["response"]["status"]["code"], 200, "{name}: {body}");
            assert_eq!(body["response"]["kind"], "spotinst:azure:setup:credentials");
            if name == "http-set-credentials.json" {
                assert!(
                    published.iter().any(|e| e.detail_type == "Account Connected"),
                    "{name}: {published:?}"
                );
            }
            if name == "http-get-credentials.json" {
                assert_eq!(
                    body["response"]["items"][0]["clientSecret"], "Zq7****",
                    "{name}: {body}"
                );
            }
            return;
        }
        if function == Function::Issuer {
            assert_eq!(out["statusCode"], 200, "{name}: {out}");
            let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
            match name.as_str() {
                "http-get-jwks.json" => assert_eq!(body["keys"][0]["alg"], "RS256", "{name}: {body}"),
                _ => assert_eq!(body["issuer"], "https://api.example.com/oidc", "{name}: {body}"),
            }
            assert!(
                published.is_empty(),
                "{name}: the issuer's documents publish nothing"
            );
            return;
        }
        if function == Function::Setup {
            let body = out["body"].as_str().unwrap();
            {
                assert_eq!(out["statusCode"], 201, "{name}: {out}");
                let body: Value = serde_json::from_str(body).unwrap();
                // The command names the API by the domain the request came to.
                assert!(
                    body["command"].as_str().unwrap().starts_with(
                        " curl -fsSL https://abc123.execute-api.us-east-1.amazonaws.com/setup/scripts/azure-connect.sh | bash -s -- --token acs1."
                    ),
                    "{name}: {body}"
                );
                assert_eq!(published.len(), 1, "{name}: {published:?}");
                assert_eq!(published[0].detail_type, "Setup Command Issued", "{name}");
                assert!(
                    !published[0].detail.to_string().contains("acs1."),
                    "{name}: the token is in no event"
                );
            }
            return;
        }
        if name == "http-read.json" {
            assert_eq!(out["statusCode"], 200, "{name}: {out}");
            let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
            assert_eq!(body["connectionId"], SAMPLE_CONNECTION, "{name}");
            assert!(published.is_empty(), "{name}: a read publishes nothing");
            return;
        }
        assert_eq!(published.len(), 1, "{name}: one outcome event, got {published:?}");
        let event = &published[0];

        if name.contains("rejected") {
            assert_eq!(out["outcome"], "rejected", "{name}: {out}");
            assert_eq!(event.detail_type, "Step Rejected", "{name}");
            assert_eq!(
                event.detail["problem"]["code"], "secret-not-accepted-over-events",
                "{name}"
            );
            assert!(
                !event.detail.to_string().contains("Xy18Q~"),
                "{name}: the secret went out"
            );
        } else if name.starts_with("http-") {
            let status = out["statusCode"].as_u64().unwrap_or(0);
            assert!((200..300).contains(&status), "{name}: {out}");
            let expected = match name.as_str() {
                "http-delete.json" => "Connection Deleted",
                "http-connect.json" => "Account Connected",
                "http-get.json" if function == Function::FederatedCredential => {
                    "Federated Credential Exported"
                }
                n if n.starts_with("http-get") => "Custom Role Exported",
                _ => "Step Completed",
            };
            assert_eq!(event.detail_type, expected, "{name}");
            if status != 204 {
                let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
                assert!(body.is_object(), "{name}: {body}");
            }
        } else {
            assert_ne!(out["outcome"], "rejected", "{name}: {out}");
            assert_ne!(event.detail_type, "Step Rejected", "{name}: {event:?}");
        }
        assert_eq!(event.detail["orgId"], SAMPLE_ORG, "{name}");
    }
}

/// One test per sample (a failure names its sample); [`every_sample_has_its_test`] holds the list
/// against `events/`.
macro_rules! sample_tests {
    ($($test:ident: $function:ident, $file:literal;)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                run_sample(Function::$function, $file).await;
            }
        )*
        const CASES: &[(Function, &str)] = &[$((Function::$function, $file)),*];
    };
}

sample_tests! {
    connections_console_connection_started: Connections, "console-connection-started.json";
    connections_http_create: Connections, "http-create.json";
    connections_http_delete: Connections, "http-delete.json";
    connections_http_read: Connections, "http-read.json";
    app_registration_console_app_registration_submitted: AppRegistration, "console-app-registration-submitted.json";
    app_registration_http_put: AppRegistration, "http-put.json";
    client_secret_console_rejected_secret: ClientSecret, "console-rejected-secret.json";
    client_secret_http_put: ClientSecret, "http-put.json";
    subscription_console_subscription_submitted: Subscription, "console-subscription-submitted.json";
    subscription_http_put: Subscription, "http-put.json";
    custom_role_console_custom_role_requested: CustomRole, "console-custom-role-requested.json";
    custom_role_http_get_cli: CustomRole, "http-get-cli.json";
    custom_role_http_get_portal: CustomRole, "http-get-portal.json";
    connect_account_console_connect_account_requested: ConnectAccount, "console-connect-account-requested.json";
    connect_account_http_connect: ConnectAccount, "http-connect.json";
    spot_credentials_http_get_credentials: SpotCredentials, "http-get-credentials.json";
    spot_credentials_http_set_credentials: SpotCredentials, "http-set-credentials.json";
    spot_credentials_http_validate_credentials: SpotCredentials, "http-validate-credentials.json";
    federated_credential_console_requested: FederatedCredential, "console-federated-credential-requested.json";
    federated_credential_http_get: FederatedCredential, "http-get.json";
    federated_credential_http_put_credential_type: FederatedCredential, "http-put-credential-type.json";
    oidc_http_get_openid_configuration: Issuer, "http-get-openid-configuration.json";
    oidc_http_get_jwks: Issuer, "http-get-jwks.json";
    setup_http_setup_command: Setup, "http-setup-command.json";
    setup_script_http_get_script: SetupScript, "http-get-script.json";
}

#[test]
fn every_sample_has_its_test() {
    let mut on_disk: Vec<(Function, String)> = samples()
        .into_iter()
        .map(|(f, p)| (f, p.file_name().unwrap().to_string_lossy().into_owned()))
        .collect();
    let mut tested: Vec<(Function, String)> = CASES.iter().map(|(f, n)| (*f, (*n).to_owned())).collect();
    let key = |c: &(Function, String)| (c.0.name(), c.1.clone());
    on_disk.sort_by_key(key);
    tested.sort_by_key(key);
    assert_eq!(
        tested, on_disk,
        "add a sample_tests! line for every file of events/"
    );
}

#[tokio::test]
async fn a_redelivered_event_makes_no_second_version() {
    let prefix = unique_prefix();
    let store = sm_store(&prefix).await;
    let (app, sink) = app(store);
    let org = OrgId::parse(SAMPLE_ORG).unwrap();
    let id = ConnectionId::parse(SAMPLE_CONNECTION).unwrap();
    let start = Operation::Start {
        account: AccountId::parse("act-1a2b3c4d").unwrap(),
        connection: Some(id),
        credential: Default::default(),
    };
    app.execute(&request("setup-0"), &org, start).await.unwrap();

    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events/subscription/console-subscription-submitted.json");
    let payload: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let handler = Handler::new(Function::Subscription, app, "org_id");
    let sm = aws_sdk_secretsmanager::Client::new(&integration_tests::sdk_config().await);
    let name = format!("{prefix}{SAMPLE_ORG}/{SAMPLE_CONNECTION}");
    let mut versions = Vec::new();
    for _ in 0..3 {
        let out = handler
            .handle(LambdaEvent::new(payload.clone(), Context::default()))
            .await
            .unwrap();
        assert_eq!(out["outcome"], "completed");
        let listed = sm
            .list_secret_version_ids()
            .secret_id(&name)
            .send()
            .await
            .unwrap();
        versions.push(listed.versions().len());
    }
    assert_eq!(
        versions,
        [2, 2, 2],
        "created + one write, however often the event comes"
    );
    assert_eq!(
        sink.events().len(),
        4,
        "each delivery still answers with its outcome"
    );
}
