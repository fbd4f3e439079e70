//! Erasure that erases, on the deployed stack (IAM enforced): after a delete no version of
//! anything we store holds the secret, and an operator can restore the connection for the
//! recovery window — without its secret; a secret moved off that Graph will not let us remove
//! is the customer's to delete, and they are told.

use std::time::Duration;

use azure_emulator::World;
use integration_tests::deployed::Deployed;
use integration_tests::{SECRET, emulator};
use serde_json::{Value, json};
use shared::domain::{ConnectionId, OrgId};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP: &str = "11111111-2222-4333-8444-555555555555";
const SUB: &str = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab";
const ORG: &str = "org-erasure";

fn world(manages_own_credentials: bool) -> World {
    integration_tests::world_of_one_app(
        manages_own_credentials,
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        None,
    )
}

async fn connected(d: &Deployed) -> String {
    let c = d
        .call(
            "POST",
            "/connections",
            ORG,
            Some(json!({"accountId": "act-0d0d0d0d"})),
        )
        .await;
    let id = c.body["connectionId"].as_str().unwrap().to_owned();
    for (step, body) in [
        ("app-registration", json!({"tenantId": TENANT, "clientId": APP})),
        ("client-secret", json!({"clientSecret": SECRET})),
        ("subscription", json!({"subscriptionId": SUB})),
    ] {
        let r = d
            .call("PUT", &format!("/connections/{id}/{step}"), ORG, Some(body))
            .await;
        assert_eq!(r.status, 200, "{step}: {}", r.body);
    }
    let r = d
        .call("POST", &format!("/connections/{id}/connect"), ORG, None)
        .await;
    assert_eq!(r.body["status"], "connected", "{}", r.body);
    id
}

#[tokio::test]
async fn a_deleted_connection_keeps_no_secret_and_comes_back_without_one() {
    let (_emulator, azure) = emulator(world(true), Duration::from_secs(3)).await;
    let d = Deployed::start(azure.authority_host.as_deref().unwrap()).await;
    let id = connected(&d).await;
    let (org, cid) = (OrgId::parse(ORG).unwrap(), ConnectionId::parse(&id).unwrap());
    assert_eq!(
        integration_tests::credentials_of(&d.prefix, &org, &cid)
            .await
            .len(),
        1,
        "positive control: the secret's credential"
    );
    let r = d.call("DELETE", &format!("/connections/{id}"), ORG, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    d.gate.assert_nothing_refused("delete");
    let left = integration_tests::credentials_of(&d.prefix, &org, &cid).await;
    assert!(left.is_empty(), "credentials left after the delete: {left:?}");
    assert_eq!(
        d.call("GET", &format!("/connections/{id}"), ORG, None)
            .await
            .status,
        404
    );

    // An operator restores it within the recovery window: the document, not the secret.
    let sm = aws_sdk_secretsmanager::Client::new(&integration_tests::sdk_config().await);
    let name = format!("{}{ORG}/{id}", d.prefix);
    sm.restore_secret().secret_id(&name).send().await.unwrap();
    // Every version of the document, deprecated ones included, and no credential left.
    super::federated::assert_erased(&d.prefix, &org, &cid).await;
    let back = d.call("GET", &format!("/connections/{id}"), ORG, None).await;
    assert_eq!(back.status, 200, "{}", back.body);
    let again = d
        .call("POST", &format!("/connections/{id}/connect"), ORG, None)
        .await;
    assert_eq!(
        (
            again.status.as_u16(),
            again.body["code"].as_str(),
            again.body["step"].as_str()
        ),
        (409, Some("step-prerequisite-missing"), Some("client-secret")),
        "the secret must be entered again: {}",
        again.body
    );
}

#[tokio::test]
async fn a_secret_moved_off_that_graph_will_not_remove_is_the_customers_to_delete_and_they_are_told() {
    let (emulator, azure) = emulator(world(false), Duration::from_secs(3)).await;
    let d = Deployed::start(azure.authority_host.as_deref().unwrap()).await;
    let id = connected(&d).await;
    let base = format!("/connections/{id}");
    d.call(
        "PUT",
        &format!("{base}/credential-type"),
        ORG,
        Some(json!({"credentialType": "federated"})),
    )
    .await;
    let values: Value = d
        .call("GET", &format!("{base}/federated-credential"), ORG, None)
        .await
        .body;
    integration_tests::add_federated_credential(&emulator, &values);
    let r = d.call("POST", &format!("{base}/connect"), ORG, None).await;
    assert_eq!(r.body["status"], "connected", "{}", r.body);
    assert_eq!(
        emulator.world().tenants[0].apps[0].passwords.len(),
        1,
        "Graph does not let the app manage its credentials: the secret stays in Azure"
    );
    let told: Vec<Value> = d
        .bus_events()
        .await
        .into_iter()
        .filter(|e| e["detail-type"] == "Client Secret Left In Azure")
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    let detail = &told[0]["detail"];
    assert_eq!(detail["connectionId"], id.as_str());
    assert_eq!(detail["hint"], &SECRET[..3]);
    assert_eq!(detail["reason"], "no-graph-permission");
    assert!(!told[0].to_string().contains(SECRET));
    let left = integration_tests::credentials_of(
        &d.prefix,
        &OrgId::parse(ORG).unwrap(),
        &ConnectionId::parse(&id).unwrap(),
    )
    .await;
    assert!(left.is_empty(), "our copy is erased all the same: {left:?}");
}
