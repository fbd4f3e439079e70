//! The emulator's control routes, over real HTTP: a body that does not hold is a 400 naming the
//! field, and the world is as it was (an empty grant, a state Azure does not have, a federated
//! credential Graph would refuse); a body that holds changes the world.

use serde_json::{Value, json};

const SUB: &str = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab";
const APP: &str = "11111111-2222-4333-8444-555555555555";

async fn post(url: &str, method: reqwest::Method, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method, url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn control_bodies_are_checked_and_a_refused_one_changes_nothing() {
    let emulator = azure_emulator::Emulator::new(azure_emulator::World::demo().unwrap());
    let base = format!(
        "http://{}",
        emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap()
    );
    let before = serde_json::to_value(emulator.world()).unwrap();
    let grants = format!("{base}/_emulator/subscriptions/{SUB}/grants");
    let group_grants = format!("{base}/_emulator/management-groups/contoso-prod/grants");
    let state = format!("{base}/_emulator/subscriptions/{SUB}/state");
    let moved = format!("{base}/_emulator/subscriptions/{SUB}/move");
    let federated = format!("{base}/_emulator/apps/{APP}/federated-credentials");
    let fic = |f: &dyn Fn(&mut Value)| {
        let mut v = json!({"name": "spot", "issuer": "https://issuer.example", "subject": "s",
            "audiences": ["api://AzureADTokenExchange"]});
        f(&mut v);
        v.to_string()
    };
    use reqwest::Method;
    let cases: Vec<(&str, Method, String, &str)> = vec![
        (&grants, Method::POST, "{}".into(), "appId"),
        (
            &grants,
            Method::POST,
            json!({"appId": APP}).to_string(),
            "actions",
        ),
        (
            &grants,
            Method::POST,
            json!({"appId": APP, "actions": []}).to_string(),
            "actions",
        ),
        (
            &grants,
            Method::POST,
            json!({"appId": APP, "actions": [""]}).to_string(),
            "actions[0]",
        ),
        (
            &grants,
            Method::POST,
            json!({"appId": "spot", "actions": ["*"]}).to_string(),
            "appId",
        ),
        (
            &grants,
            Method::POST,
            json!({"appId": APP, "actions": "*"}).to_string(),
            "actions",
        ),
        (
            &grants,
            Method::POST,
            json!({"appId": APP, "actions": ["*"], "scope": "x"}).to_string(),
            "scope",
        ),
        (&group_grants, Method::POST, "{}".into(), "appId"),
        (&grants, Method::POST, "not json".into(), "body"),
        (
            &state,
            Method::PUT,
            json!({"state": "Bogus"}).to_string(),
            "state",
        ),
        (&state, Method::PUT, "{}".into(), "state"),
        (&moved, Method::POST, json!({"to": ""}).to_string(), "to"),
        (
            &federated,
            Method::POST,
            fic(&|v| v["issuer"] = json!("")),
            "issuer",
        ),
        (
            &federated,
            Method::POST,
            fic(&|v| v["audiences"] = json!([])),
            "audiences",
        ),
        (
            &federated,
            Method::POST,
            fic(&|v| v["name"] = json!("x".repeat(121))),
            "name",
        ),
        (
            &federated,
            Method::POST,
            fic(&|v| {
                v.as_object_mut().unwrap().remove("subject");
            }),
            "subject",
        ),
    ];
    for (url, method, body, field) in cases {
        let (status, answer) = post(url, method.clone(), &body).await;
        assert_eq!(status, 400, "{method} {url} {body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{method} {url} {body}: {answer}");
        assert_eq!(answer["error"]["code"], "InvalidControlBody");
    }
    assert_eq!(
        serde_json::to_value(emulator.world()).unwrap(),
        before,
        "a refused body changed the world"
    );
    // What holds is taken.
    let (status, _) = post(
        &grants,
        Method::POST,
        &json!({"appId": APP, "actions": ["*"]}).to_string(),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = post(&state, Method::PUT, &json!({"state": "PastDue"}).to_string()).await;
    assert_eq!(status, 204);
    let (status, _) = post(&federated, Method::POST, &fic(&|_| {})).await;
    assert_eq!(status, 201);
    let world = emulator.world();
    let sub = world.subscriptions.iter().find(|s| s.id == SUB).unwrap();
    assert_eq!((sub.grants.len(), sub.state.as_str()), (1, "PastDue"));
    assert_eq!(world.tenants[0].apps[0].federated_credentials.len(), 1);
}

/// Graph v1.0 "Update federatedIdentityCredential": a PATCH changes only the properties it sends;
/// an empty issuer is refused and changes nothing.
#[tokio::test]
async fn patching_a_federated_credential_changes_only_what_is_sent() {
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const ADMIN: &str = "a11ce000-0000-4000-8000-00000000ad01";
    const OBJECT: &str = "a0a0a0a0-0000-4000-8000-000000000001";
    let emulator = azure_emulator::Emulator::new(azure_emulator::World::demo().unwrap());
    let base = format!(
        "http://{}",
        emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap()
    );
    let http = reqwest::Client::new();
    let (status, _) = post(
        &format!("{base}/_emulator/apps/{APP}/federated-credentials"),
        reqwest::Method::POST,
        &json!({"name": "spot", "issuer": "https://issuer.example", "subject": "old", "audiences": ["api://AzureADTokenExchange"]}).to_string(),
    )
    .await;
    assert_eq!(status, 201);
    let token: Value = http
        .post(format!("{base}/{TENANT}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ADMIN),
            ("client_secret", "Adm1n~demo.Local_Admin-0123456789abcdef"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().unwrap().to_owned();
    let patch = |body: Value| {
        http.patch(format!(
            "{base}/v1.0/applications/{OBJECT}/federatedIdentityCredentials/spot"
        ))
        .bearer_auth(&bearer)
        .json(&body)
        .send()
    };
    assert_eq!(
        patch(json!({"subject": "new"})).await.unwrap().status().as_u16(),
        204
    );
    assert_eq!(patch(json!({"issuer": ""})).await.unwrap().status().as_u16(), 400);
    let world = emulator.world();
    let f = &world.tenants[0].apps[0].federated_credentials[0];
    assert_eq!(
        (f.issuer.as_str(), f.subject.as_str(), f.audiences.clone()),
        (
            "https://issuer.example",
            "new",
            vec!["api://AzureADTokenExchange".to_owned()]
        )
    );
}
