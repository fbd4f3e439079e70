//! What a setup token can and cannot do, through the app on both stores (issue 25): a command's
//! token only finishes what its connection was started with. A stolen token's report naming other
//! ids is refused (409 `setup-conflict`), the connection untouched and the refusal announced; the
//! same ids repair; a report racing a newer command loses inside the write; a spent token changes
//! nothing.

use integration_tests::{SECRET, STORES, StoreKind, request, walk};
use secrecy::SecretString;
use shared::app::setup::{SetupAnswer, SetupReport};
use shared::app::{App, AppError};
use shared::domain::setup::SetupPhase;
use shared::domain::{ClientId, ClientSecret, OrgId, Status, SubscriptionId, TenantId};
use shared::events::MemorySink;
use std::sync::Arc;

const ORG: &str = "org-setup-token";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-2222-4333-8444-555555555555";
const SUB: &str = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab";

fn report(tenant: &str, client: &str, sub: &str) -> SetupReport {
    SetupReport {
        phase: SetupPhase::Done,
        script_version: "1".into(),
        tenant: Some(TenantId::parse(tenant).unwrap()),
        client: Some(ClientId::parse(client).unwrap()),
        subscription: Some(SubscriptionId::parse(sub).unwrap()),
        management_group: None,
        client_secret: Some(ClientSecret::parse(SecretString::from(SECRET.to_owned())).unwrap()),
        failure: None,
    }
}

async fn connected(kind: StoreKind) -> (App, Arc<MemorySink>, OrgId, shared::domain::Connection) {
    let (_emulator, validator) = integration_tests::azure().await;
    // The emulator lives as long as the test: leak it (a few KB).
    std::mem::forget(_emulator);
    let store = integration_tests::store(kind).await;
    let (app, sink) = integration_tests::app(store);
    let app = app.with_validator(validator);
    let org = OrgId::parse(ORG).unwrap();
    let c = walk(&app, &org, "act-5e7c0ded", true).await;
    assert_eq!(c.status, Status::Connected);
    (app, sink, org, c)
}

#[tokio::test]
async fn a_stolen_token_cannot_move_a_working_connection() {
    for kind in STORES {
        let (app, sink, org, c) = connected(kind).await;
        // Whoever saw a fresh command for this connected connection reports ids of their own.
        let issued = integration_tests::connect_command(&app, &org, &c.id, &request("cmd-1")).await;
        let other_tenant = uuid::Uuid::new_v4().to_string();
        let other_client = uuid::Uuid::new_v4().to_string();
        let other_sub = uuid::Uuid::new_v4().to_string();
        for (tenant, client, sub, field) in [
            (TENANT, other_client.as_str(), SUB, "clientId"),
            (TENANT, CLIENT, other_sub.as_str(), "subscriptionId"),
            // Entered as contoso.onmicrosoft.com: another domain is another tenant.
            ("fabrikam.onmicrosoft.com", CLIENT, SUB, "tenantId"),
        ] {
            let admission = app.setup_access(&issued.token, chrono::Utc::now()).await.unwrap();
            let err = app
                .setup_report(
                    &request(&format!("report-{field}")),
                    admission,
                    report(tenant, client, sub),
                )
                .await
                .unwrap_err();
            let AppError::Rule(shared::domain::RuleError::SetupConflict(conflict)) = &err else {
                panic!("{kind:?} {field}: {err:?}")
            };
            assert_eq!(conflict.field, field, "{kind:?}");
            let after = read(&app, &org, c.id).await;
            assert_eq!(
                (after.status, after.app_registration.as_ref().map(|a| a.client)),
                (Status::Connected, c.app_registration.as_ref().map(|a| a.client)),
                "{kind:?} {field}: the connection changed"
            );
            assert_eq!(
                after.subscription.as_ref().map(|s| s.subscription),
                c.subscription.as_ref().map(|s| s.subscription)
            );
        }
        let failures: Vec<_> = sink
            .events()
            .into_iter()
            .filter(|e| e.detail_type == "Setup Progress" && e.detail["phase"] == "failed")
            .collect();
        assert_eq!(failures.len(), 3, "{kind:?}: each refusal announced");
        assert!(
            failures
                .iter()
                .all(|e| e.detail["failure"]["code"] == "setup-conflict")
        );
        // The same app and subscription, the tenant as a GUID (what az reports) where 3.2 had its
        // domain: a repair, accepted, the tenant kept as entered (a report never moves it).
        let _ = other_tenant;
        let admission = app.setup_access(&issued.token, chrono::Utc::now()).await.unwrap();
        let answer = app
            .setup_report(&request("report-same"), admission, report(TENANT, CLIENT, SUB))
            .await
            .unwrap();
        assert!(
            matches!(answer, SetupAnswer::Connected(_)),
            "{kind:?}: {answer:?}"
        );
        let after = read(&app, &org, c.id).await;
        assert_eq!(
            after.app_registration.map(|a| a.tenant.to_string()),
            Some("contoso.onmicrosoft.com".to_owned()),
            "{kind:?}"
        );
        // Spent by connecting: the same token changes nothing any more.
        let admission = app.setup_access(&issued.token, chrono::Utc::now()).await.unwrap();
        assert_eq!(admission.access(), shared::domain::setup::SetupAccess::Spent);
    }
}

#[tokio::test]
async fn a_report_racing_a_newer_command_loses_inside_the_write() {
    for kind in STORES {
        let store = integration_tests::store(kind).await;
        let (app, _sink) = integration_tests::app(store);
        let org = OrgId::parse(ORG).unwrap();
        let c = walk(&app, &org, "act-5e7c0dee", false).await;
        let first = integration_tests::connect_command(&app, &org, &c.id, &request("cmd-a")).await;
        // Admitted with the first command…
        let admission = app.setup_access(&first.token, chrono::Utc::now()).await.unwrap();
        // …while a newer one replaces it before the report's write.
        integration_tests::connect_command(&app, &org, &c.id, &request("cmd-b")).await;
        let err = app
            .setup_report(&request("late-report"), admission, report(TENANT, CLIENT, SUB))
            .await
            .unwrap_err();
        assert!(
            matches!(err, AppError::Rule(shared::domain::RuleError::SetupToken(_))),
            "{kind:?}: {err:?}"
        );
        let after = read(&app, &org, c.id).await;
        assert_eq!(after.status, Status::Draft, "{kind:?}");
    }
}

async fn read(app: &App, org: &OrgId, id: shared::domain::ConnectionId) -> shared::domain::Connection {
    use shared::app::{Operation, Outcome};
    match app
        .execute(
            &request(&uuid::Uuid::new_v4().to_string()),
            org,
            Operation::Read { connection: id },
        )
        .await
        .unwrap()
    {
        Outcome::Current(c) => c,
        other => panic!("{other:?}"),
    }
}
