//! The HTTP API through the real router (the one the Lambdas and the local server serve), over the
//! embedded store: every route, every kind of bad input, organizations, idempotency.

use axum::Router;
use axum::http::StatusCode;
use integration_tests::{Reply, SECRET, StoreKind, app, send, store};
use serde_json::{Value, json};
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};

struct Api {
    router: Router,
    sink: std::sync::Arc<shared::events::MemorySink>,
}

impl Api {
    async fn new() -> Self {
        let (app, sink) = app(store(StoreKind::Embedded).await);
        Self {
            router: router(app, OrgSource::local_header(), &Function::ALL),
            sink,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        org: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        send(&self.router, method, path, org, headers, body).await
    }

    async fn call(&self, method: &str, path: &str, org: &str, body: Option<Value>) -> Reply {
        let headers: &[(&str, &str)] = if body.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        self.send(method, path, Some(org), headers, body.map(|b| b.to_string()))
            .await
    }

    async fn start(&self, org: &str) -> String {
        let r = self
            .call(
                "POST",
                "/connections",
                org,
                Some(json!({"accountId": "act-1234abcd"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["connectionId"].as_str().unwrap().to_owned()
    }
}

fn is_problem(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(r.body["status"], status);
    assert_eq!(r.body["code"], code, "{}", r.body);
    for k in ["type", "title", "detail", "retryable"] {
        assert!(r.body.get(k).is_some(), "problem without {k}: {}", r.body);
    }
    // A step to go back to only where a wizard step is to blame.
    let stepless = [
        "route-not-found",
        "method-not-allowed",
        "unauthenticated",
        "connection-not-found",
    ];
    assert_eq!(
        r.body.get("step").is_none(),
        stepless.contains(&code),
        "step: {}",
        r.body
    );
}

#[tokio::test]
async fn the_wizard_from_start_to_role_export() {
    let api = Api::new().await;
    let r = api
        .call(
            "POST",
            "/connections",
            "org-1",
            Some(json!({"accountId": "act-1234ABCD"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["connectionId"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["location"], format!("/connections/{id}"));
    assert_eq!(r.body["accountId"], "act-1234abcd");
    assert_eq!(r.body["status"], "draft");
    assert_eq!(r.body["nextStep"], "app-registration");

    let base = format!("/connections/{id}");
    let r = api
        .call(
            "PUT",
            &format!("{base}/app-registration"),
            "org-1",
            Some(json!({"tenantId": "72F988BF-86F1-41AF-91AB-2D7CD011DB47", "clientId": "11111111-2222-4333-8444-555555555555"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["tenantId"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_eq!(r.body["nextStep"], "client-secret");

    let r = api
        .call(
            "PUT",
            &format!("{base}/client-secret"),
            "org-1",
            Some(json!({"clientSecret": SECRET, "expiresAt": "2099-01-31"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["clientSecret"],
        json!({"hint": &SECRET[..3], "expiresAt": "2099-01-31T00:00:00Z"})
    );
    assert_eq!(r.body["nextStep"], "subscription");

    let r = api
        .call(
            "PUT",
            &format!("{base}/subscription"),
            "org-1",
            Some(json!({"subscriptionId": "6F1D2C3B-AAAA-4BBB-8CCC-0123456789AB"})),
        )
        .await;
    assert_eq!(r.body["subscriptionId"], "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab");
    assert_eq!(r.body["nextStep"], "custom-role");

    let portal = api
        .call("GET", &format!("{base}/custom-role"), "org-1", None)
        .await;
    assert_eq!(portal.status, StatusCode::OK);
    let p = &portal.body["properties"];
    assert_eq!(p["permissions"][0]["actions"].as_array().unwrap().len(), 85);
    assert_eq!(
        p["assignableScopes"],
        json!(["/subscriptions/6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"])
    );
    let cli = api
        .call("GET", &format!("{base}/custom-role?format=cli"), "org-1", None)
        .await;
    assert_eq!(
        cli.body["Name"], p["roleName"],
        "one role name, whatever the format"
    );
    assert_eq!(cli.body["Actions"].as_array().unwrap().len(), 85);
    let again = api
        .call("GET", &format!("{base}/custom-role"), "org-1", None)
        .await;
    assert_eq!(again.body, portal.body, "stable across calls");

    let r = api.call("GET", &base, "org-1", None).await;
    assert_eq!(r.body["nextStep"], "role-assignment");
    assert_eq!(r.body["customRole"]["roleName"], p["roleName"]);

    let r = api.call("DELETE", &base, "org-1", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    is_problem(
        &api.call("GET", &base, "org-1", None).await,
        404,
        "connection-not-found",
    );

    let types: Vec<String> = api.sink.events().iter().map(|e| e.detail_type.clone()).collect();
    assert_eq!(
        types,
        [
            "Step Completed",
            "Step Completed",
            "Step Completed",
            "Step Completed",
            "Custom Role Exported",
            "Custom Role Exported",
            "Custom Role Exported",
            "Connection Deleted",
            "Step Rejected"
        ]
    );
}

#[tokio::test]
async fn no_organization_is_401_on_every_route() {
    let api = Api::new().await;
    let id = api.start("org-1").await;
    let routes = [
        (
            "POST",
            "/connections".to_owned(),
            Some(json!({"accountId": "act-1234abcd"})),
        ),
        ("GET", format!("/connections/{id}"), None),
        ("DELETE", format!("/connections/{id}"), None),
        (
            "PUT",
            format!("/connections/{id}/app-registration"),
            Some(json!({"tenantId": "x", "clientId": "y"})),
        ),
        (
            "PUT",
            format!("/connections/{id}/client-secret"),
            Some(json!({"clientSecret": SECRET})),
        ),
        (
            "PUT",
            format!("/connections/{id}/subscription"),
            Some(json!({"subscriptionId": "x"})),
        ),
        ("GET", format!("/connections/{id}/custom-role"), None),
    ];
    for (method, path, body) in routes {
        let r = api
            .send(
                method,
                &path,
                None,
                &[("content-type", "application/json")],
                body.map(|b| b.to_string()),
            )
            .await;
        is_problem(&r, 401, "unauthenticated");
        let r = api.send(method, &path, Some("bad/org"), &[], None).await;
        is_problem(&r, 401, "unauthenticated");
    }
    let r = api
        .call("GET", &format!("/connections/{id}"), "org-1", None)
        .await;
    assert!(r.body["clientSecret"].is_null(), "nothing was changed");
}

#[tokio::test]
async fn another_organizations_connection_is_404_and_untouched() {
    let api = Api::new().await;
    let id = api.start("org-1").await;
    let base = format!("/connections/{id}");
    is_problem(
        &api.call("GET", &base, "org-2", None).await,
        404,
        "connection-not-found",
    );
    let r = api
        .call(
            "PUT",
            &format!("{base}/client-secret"),
            "org-2",
            Some(json!({"clientSecret": SECRET})),
        )
        .await;
    is_problem(&r, 404, "connection-not-found");
    let r = api
        .call(
            "PUT",
            &format!("{base}/subscription"),
            "org-2",
            Some(json!({"subscriptionId": "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"})),
        )
        .await;
    is_problem(&r, 404, "connection-not-found");
    is_problem(
        &api.call("DELETE", &base, "org-2", None).await,
        404,
        "connection-not-found",
    );
    let r = api.call("GET", &base, "org-1", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["clientSecret"].is_null() && r.body["subscriptionId"].is_null());
}

#[tokio::test]
async fn bad_input_of_every_kind_is_a_4xx_problem_naming_the_field() {
    let api = Api::new().await;
    let id = api.start("org-1").await;
    let b = format!("/connections/{id}");
    let long = "x".repeat(200);
    let big = json!({"subscriptionId": "a".repeat(17 * 1024)}).to_string();
    // (method, path, body, status, code, field named in errors)
    type Case<'a> = (&'a str, String, Option<String>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/connections".into(),
            Some("{}".into()),
            400,
            "malformed-body",
            "accountId",
        ),
        (
            "POST",
            "/connections".into(),
            Some(r#"{"accountId":"acct-1"}"#.into()),
            400,
            "invalid-input",
            "accountId",
        ),
        (
            "POST",
            "/connections".into(),
            Some(r#"{"accountId":5}"#.into()),
            400,
            "malformed-body",
            "accountId",
        ),
        (
            "POST",
            "/connections".into(),
            Some("{\"accountId\":".into()),
            400,
            "malformed-body",
            "body",
        ),
        (
            "POST",
            "/connections".into(),
            Some("not json".into()),
            400,
            "malformed-body",
            "body",
        ),
        ("POST", "/connections".into(), None, 400, "malformed-body", "body"),
        (
            "PUT",
            format!("{b}/subscription"),
            Some(big),
            413,
            "body-too-large",
            "body",
        ),
        (
            "PUT",
            format!("{b}/subscription"),
            Some(r#"{"subscriptionId":"6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab","x":1}"#.into()),
            400,
            "malformed-body",
            "x",
        ),
        (
            "PUT",
            format!("{b}/subscription"),
            Some(r#"{"subscriptionId":"nope"}"#.into()),
            400,
            "invalid-input",
            "subscriptionId",
        ),
        (
            "PUT",
            format!("{b}/subscription"),
            Some(r#"{"subscriptionId":null}"#.into()),
            400,
            "malformed-body",
            "subscriptionId",
        ),
        (
            "PUT",
            "/connections/not-a-guid/subscription".into(),
            Some(r#"{"subscriptionId":"6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"}"#.into()),
            400,
            "invalid-input",
            "connectionId",
        ),
        (
            "GET",
            "/connections/not-a-guid".into(),
            None,
            400,
            "invalid-input",
            "connectionId",
        ),
        (
            "PUT",
            format!("{b}/app-registration"),
            Some(r#"{"tenantId":"contoso","clientId":"11111111-2222-4333-8444-555555555555"}"#.into()),
            400,
            "invalid-input",
            "tenantId",
        ),
        (
            "PUT",
            format!("{b}/app-registration"),
            Some(r#"{"tenantId":"contoso.com","clientId":"abc"}"#.into()),
            400,
            "invalid-input",
            "clientId",
        ),
        (
            "PUT",
            format!("{b}/client-secret"),
            Some(r#"{"clientSecret":"0F8FAD5B-D9CB-469F-A165-70867728950E"}"#.into()),
            422,
            "input-refused",
            "clientSecret",
        ),
        (
            "PUT",
            format!("{b}/client-secret"),
            Some(r#"{"clientSecret":""}"#.into()),
            400,
            "invalid-input",
            "clientSecret",
        ),
        (
            "PUT",
            format!("{b}/client-secret"),
            Some(format!(r#"{{"clientSecret":" {SECRET}"}}"#)),
            400,
            "invalid-input",
            "clientSecret",
        ),
        (
            "PUT",
            format!("{b}/client-secret"),
            Some(r#"{"clientSecret":"abc\u0007def"}"#.into()),
            400,
            "invalid-input",
            "clientSecret",
        ),
        (
            "PUT",
            format!("{b}/client-secret"),
            Some(format!(r#"{{"clientSecret":"{long}"}}"#)),
            400,
            "invalid-input",
            "clientSecret",
        ),
        (
            "PUT",
            format!("{b}/client-secret"),
            Some(format!(
                r#"{{"clientSecret":"{SECRET}","expiresAt":"2001-01-01"}}"#
            )),
            422,
            "input-refused",
            "expiresAt",
        ),
        (
            // One field of the wrong form makes the whole request 400, even beside a refused one.
            "PUT",
            format!("{b}/client-secret"),
            Some(r#"{"clientSecret":"0F8FAD5B-D9CB-469F-A165-70867728950E","expiresAt":"soon"}"#.into()),
            400,
            "invalid-input",
            "expiresAt",
        ),
        (
            "PUT",
            format!("{b}/rotation"),
            Some(r#"{"enabled":true,"daysBefore":14.5}"#.into()),
            400,
            "malformed-body",
            "daysBefore",
        ),
        (
            "PUT",
            format!("{b}/rotation"),
            Some(r#"{"enabled":true,"daysBefore":366.0}"#.into()),
            400,
            "invalid-input",
            "daysBefore",
        ),
        (
            "PUT",
            format!("{b}/client-secret"),
            Some(format!(r#"{{"clientSecret":"{SECRET}","expiresAt":"soon"}}"#)),
            400,
            "invalid-input",
            "expiresAt",
        ),
        (
            "PUT",
            format!("{b}/client-secret"),
            Some(format!(r#"{{"clientSecret":"{SECRET}","expiresAt":20990101}}"#)),
            400,
            "malformed-body",
            "expiresAt",
        ),
        (
            "GET",
            format!("{b}/custom-role?format=xml"),
            None,
            400,
            "invalid-input",
            "format",
        ),
    ];
    for (method, path, body, status, code, field) in cases {
        let headers: &[(&str, &str)] = if body.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        let r = api.send(method, &path, Some("org-1"), headers, body).await;
        is_problem(&r, status, code);
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&field),
            "{method} {path}: {fields:?} lacks {field}"
        );
        assert!(
            !r.body.to_string().contains("Zq78Q~leak"),
            "the secret echoed: {}",
            r.body
        );
    }

    let r = api
        .send(
            "PUT",
            &format!("{b}/subscription"),
            Some("org-1"),
            &[("content-type", "text/plain")],
            Some("x".into()),
        )
        .await;
    is_problem(&r, 415, "unsupported-media-type");
    is_problem(
        &api.call("GET", "/nope", "org-1", None).await,
        404,
        "route-not-found",
    );
    is_problem(
        &api.call("PATCH", &b, "org-1", None).await,
        405,
        "method-not-allowed",
    );
    let r = api.call("GET", &format!("{b}/custom-role"), "org-1", None).await;
    is_problem(&r, 409, "step-prerequisite-missing");
    assert_eq!(r.body["step"], "subscription");

    // Nothing of the bad requests was stored.
    let r = api.call("GET", &b, "org-1", None).await;
    assert!(
        r.body["clientSecret"].is_null()
            && r.body["subscriptionId"].is_null()
            && r.body["tenantId"].is_null()
    );
}

#[tokio::test]
async fn an_idempotency_key_makes_retries_no_ops() {
    let api = Api::new().await;
    let create = || {
        api.send(
            "POST",
            "/connections",
            Some("org-1"),
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "create-42"),
            ],
            Some(json!({"accountId": "act-1234abcd"}).to_string()),
        )
    };
    let (a, b) = (create().await, create().await);
    assert_eq!((a.status, b.status), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(a.body, b.body, "the retry found the first connection");

    let path = format!(
        "/connections/{}/subscription",
        a.body["connectionId"].as_str().unwrap()
    );
    let put = |sub: &'static str| {
        api.send(
            "PUT",
            &path,
            Some("org-1"),
            &[("content-type", "application/json"), ("idempotency-key", "sub-1")],
            Some(json!({"subscriptionId": sub}).to_string()),
        )
    };
    let first = put("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab").await;
    let retry = put("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab").await;
    assert_eq!(first.body["updatedAt"], retry.body["updatedAt"]);
}

#[tokio::test]
async fn an_idempotency_key_is_scoped_to_its_organization_and_bounded() {
    async fn create(api: &Api, org: &str, key: &str) -> Reply {
        api.send(
            "POST",
            "/connections",
            Some(org),
            &[("content-type", "application/json"), ("idempotency-key", key)],
            Some(json!({"accountId": "act-1234abcd"}).to_string()),
        )
        .await
    }
    let api = Api::new().await;
    let a = create(&api, "org-a", "shared-key-1").await;
    let b = create(&api, "org-b", "shared-key-1").await;
    assert_eq!((a.status, b.status), (StatusCode::CREATED, StatusCode::CREATED));
    let (ida, idb) = (a.body["connectionId"].clone(), b.body["connectionId"].clone());
    assert_ne!(ida, idb, "another organization's key replays nothing");
    // Each organization's key is its own request: the two are told apart everywhere (events too).
    let request_ids: Vec<String> = api
        .sink
        .events()
        .iter()
        .filter(|e| e.detail_type == "Step Completed")
        .map(|e| e.detail["requestId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(request_ids.len(), 2);
    assert_ne!(
        request_ids[0], request_ids[1],
        "one request id for two organizations' requests"
    );
    let r = api
        .call(
            "GET",
            &format!("/connections/{}", ida.as_str().unwrap()),
            "org-b",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "nor reads anything");
    // A key out of bounds (too long, or not of the charset) is refused, naming the header and
    // not repeating the key: ignoring it would leave the client's retries unsafe.
    for bad in ["k".repeat(65), "has space".to_owned()] {
        let x = create(&api, "org-a", &bad).await;
        is_problem(&x, 400, "invalid-input");
        assert_eq!(x.body["errors"][0]["field"], "Idempotency-Key", "{}", x.body);
        assert!(!x.body.to_string().contains(&bad), "{bad:?} repeated");
    }
}

#[tokio::test]
async fn every_answer_with_connection_data_is_neither_cached_nor_sniffed() {
    let api = Api::new().await;
    let created = api
        .call(
            "POST",
            "/connections",
            "org-1",
            Some(json!({"accountId": "act-1234abcd"})),
        )
        .await;
    let id = created.body["connectionId"].as_str().unwrap().to_owned();
    let mut answers = vec![created];
    for (method, path) in shared::edge::http::ROUTES
        .iter()
        .map(|(_, m, p)| (*m, p.replace("{id}", &id)))
    {
        if path.starts_with("/oidc/") || path == "/setup/scripts/azure-connect.sh" {
            continue; // public and cacheable by design: no connection data
        }
        answers.push(api.call(method, &path, "org-1", None).await);
        answers.push(api.send(method, &path, None, &[], None).await);
    }
    answers.push(
        api.call(
            "GET",
            "/azure/setup/credentials?accountId=act-1234abcd",
            "org-1",
            None,
        )
        .await,
    );
    for r in &answers {
        if r.status == StatusCode::NO_CONTENT {
            continue;
        }
        assert_eq!(r.headers["cache-control"], "no-store", "{} {}", r.status, r.body);
        assert_eq!(
            r.headers["x-content-type-options"], "nosniff",
            "{} {}",
            r.status, r.body
        );
    }
    assert!(answers.len() > 20);
}

/// An `Idempotency-Key` makes retries safe, and only retries: the same request again answers the
/// first result; the key with another request (body, path or method) is refused, 422
/// `idempotency-key-reused`, and changes nothing.
#[tokio::test]
async fn an_idempotency_key_reused_for_another_request_is_refused() {
    let api = Api::new().await;
    let send = |method: &'static str, path: String, key: &'static str, body: Value| {
        let api = &api;
        async move {
            api.send(
                method,
                &path,
                Some("org-k"),
                &[("content-type", "application/json"), ("idempotency-key", key)],
                Some(body.to_string()),
            )
            .await
        }
    };
    let first = send(
        "POST",
        "/connections".into(),
        "key-start",
        json!({"accountId": "act-1234abcd"}),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = send(
        "POST",
        "/connections".into(),
        "key-start",
        json!({"accountId": "act-1234abcd"}),
    )
    .await;
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::CREATED, &first.body),
        "the same request answers the first result"
    );
    let other = send(
        "POST",
        "/connections".into(),
        "key-start",
        json!({"accountId": "act-9999abcd"}),
    )
    .await;
    is_problem(&other, 422, "idempotency-key-reused");

    let id = first.body["connectionId"].as_str().unwrap().to_owned();
    let put = |key: &'static str, step: &'static str, body: Value| {
        send("PUT", format!("/connections/{id}/{step}"), key, body)
    };
    let app_reg =
        json!({"tenantId": "contoso.onmicrosoft.com", "clientId": "11111111-2222-4333-8444-555555555555"});
    assert_eq!(
        put("key-step", "app-registration", app_reg.clone()).await.status,
        StatusCode::OK
    );
    assert_eq!(
        put("key-step", "app-registration", app_reg).await.status,
        StatusCode::OK
    );
    let changed = put(
        "key-step",
        "app-registration",
        json!({"tenantId": "fabrikam.onmicrosoft.com", "clientId": "11111111-2222-4333-8444-555555555555"}),
    )
    .await;
    is_problem(&changed, 422, "idempotency-key-reused");
    let elsewhere = put(
        "key-step",
        "subscription",
        json!({"subscriptionId": "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"}),
    )
    .await;
    is_problem(&elsewhere, 422, "idempotency-key-reused");
    let now = api
        .call("GET", &format!("/connections/{id}"), "org-k", None)
        .await;
    assert_eq!(now.body["tenantId"], "contoso.onmicrosoft.com", "{}", now.body);
    assert_eq!(now.body["subscriptionId"], Value::Null, "{}", now.body);
}
