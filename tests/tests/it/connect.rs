//! Connect Account against the Azure emulator: the happy path, a test per failure class (every
//! AADSTS and ARM error of the reference, each RBAC rule, propagation, throttling, outage), and the
//! secret going nowhere but the token endpoint.

use std::sync::Arc;
use std::time::Duration;

use azure_emulator::{App as AzApp, Behaviour, Emulator, Grant, Password, Subscription, Tenant, World};
use chrono::Utc;
use integration_tests::{StoreKind, emulator, send_json, store};
use serde_json::{Value, json};
use shared::app::App;
use shared::domain::role::required_actions;
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};
use shared::events::MemorySink;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP: &str = "11111111-2222-4333-8444-555555555555";
const SUB: &str = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab";
const SECRET: &str = "Cn77Q~connect.TEST_secret-0123456789abcde";

fn spot_role() -> Grant {
    Grant {
        app_id: APP.into(),
        actions: required_actions().map(str::to_owned).collect(),
        ..Grant::default()
    }
}

fn world(grants: Vec<Grant>) -> World {
    World {
        tenants: vec![Tenant {
            id: TENANT.into(),
            domains: vec!["contoso.onmicrosoft.com".into()],
            apps: vec![AzApp {
                app_id: APP.into(),
                object_id: "a0a0a0a0-0000-4000-8000-000000000001".into(),
                principal_id: "b0b0b0b0-0000-4000-8000-000000000001".into(),
                display_name: "spot".into(),
                passwords: vec![Password {
                    key_id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
                    secret_text: SECRET.into(),
                    end_date_time: Some(Utc::now() + chrono::Duration::days(300)),
                    ..Password::default()
                }],
                ..AzApp::default()
            }],
            blocked_apps: vec![],
            ..Tenant::default()
        }],
        subscriptions: vec![Subscription {
            id: SUB.into(),
            tenant_id: TENANT.into(),
            display_name: "Contoso Production".into(),
            state: "Enabled".into(),
            grants,
            role_assignments: vec![],
        }],
        management_groups: vec![],
        behaviour: Behaviour::default(),
    }
}

struct Setup {
    emulator: Emulator,
    router: axum::Router,
    sink: Arc<MemorySink>,
    id: String,
}

impl Setup {
    async fn new(world: World, budget: Duration) -> Self {
        let (emulator, azure) = emulator(world, budget).await;
        let validator = azure.validator().unwrap();
        let sink = Arc::new(MemorySink::default());
        let app =
            App::new(store(StoreKind::Embedded).await, sink.clone()).with_validator(Arc::new(validator));
        let router = router(app, OrgSource::local_header(), &Function::ALL);
        let mut s = Self {
            emulator,
            router,
            sink,
            id: String::new(),
        };
        let (_, c) = s
            .call("POST", "/connections", Some(json!({"accountId": "act-1a2b3c4d"})))
            .await;
        s.id = c["connectionId"].as_str().unwrap().to_owned();
        s
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let r = send_json(&self.router, method, path, Some("org-1"), body.as_ref()).await;
        (r.status.as_u16(), r.body)
    }

    /// Enters the inputs (each must be accepted).
    async fn submit(&self, tenant: &str, client: &str, secret: &str, sub: &str) {
        let base = format!("/connections/{}", self.id);
        for (path, body) in [
            (
                "app-registration",
                json!({"tenantId": tenant, "clientId": client}),
            ),
            ("client-secret", json!({"clientSecret": secret})),
            ("subscription", json!({"subscriptionId": sub})),
        ] {
            let (s, v) = self.call("PUT", &format!("{base}/{path}"), Some(body)).await;
            assert_eq!(s, 200, "{path}: {v}");
        }
    }

    /// Enters the inputs, then clicks "Connect Account".
    async fn connect_with(&self, tenant: &str, client: &str, secret: &str, sub: &str) -> (u16, Value) {
        self.submit(tenant, client, secret, sub).await;
        self.connect().await
    }

    async fn connect(&self) -> (u16, Value) {
        self.call("POST", &format!("/connections/{}/connect", self.id), None)
            .await
    }

    async fn view(&self) -> Value {
        self.call("GET", &format!("/connections/{}", self.id), None)
            .await
            .1
    }
}

/// Enters good inputs, then Azure becomes `world` (a secret deleted, a role changed, …), then
/// "Connect Account".
async fn connect(world_then: World) -> (u16, Value, Setup) {
    let s = Setup::new(world(vec![spot_role()]), Duration::from_secs(4)).await;
    s.submit(TENANT, APP, SECRET, SUB).await;
    s.emulator.update(|w| *w = world_then);
    s.emulator.clear_requests();
    let (status, body) = s.connect().await;
    (status, body, s)
}

fn assert_problem(status: u16, body: &Value, expected_status: u16, step: &str, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["step"], step, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["detail"].as_str().unwrap().len() > 20,
        "an actionable message: {body}"
    );
}

#[tokio::test]
async fn the_happy_path_links_the_account() {
    let (status, body, s) = connect(world(vec![spot_role()])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "connected");
    assert!(body["nextStep"].is_null());
    assert!(body["linkedAt"].is_string());
    assert_eq!(body["validation"]["subscriptionName"], "Contoso Production");
    assert_eq!(
        body["validation"]["checks"],
        json!(["token", "subscription", "permissions", "required-actions"])
    );
    let events = s.sink.events();
    let connected = events
        .iter()
        .find(|e| e.detail_type == "Account Connected")
        .expect("Account Connected");
    for k in [
        "orgId",
        "accountId",
        "tenantId",
        "clientId",
        "subscriptionId",
        "secretExpiresAt",
        "linkedAt",
    ] {
        assert!(
            connected.detail.get(k).is_some(),
            "{k} missing: {}",
            connected.detail
        );
    }
    assert!(!serde_json::to_string(&events).unwrap().contains(SECRET));

    // The secret went to the token endpoint and nowhere else.
    let requests = s.emulator.requests();
    assert!(requests.iter().any(|r| r.path.ends_with("/oauth2/v2.0/token")));
    for r in &requests {
        let all = format!("{} {} {:?} {}", r.path, r.query, r.headers, r.body);
        let carries = all.contains(SECRET) || all.contains("Cn77Q%7Econnect");
        assert_eq!(
            carries,
            r.path.ends_with("/oauth2/v2.0/token"),
            "{} {}",
            r.method,
            r.path
        );
    }
    // As few round trips as the work needs: one token, then subscription and permissions.
    let tokens = |resource: &str| {
        requests
            .iter()
            .filter(|r| r.path.ends_with("/token") && r.body.contains(resource))
            .count()
    };
    assert_eq!(
        (tokens("management.azure.com"), tokens("graph.microsoft.com")),
        (1, 1)
    );
}

#[tokio::test]
async fn graph_rights_are_recorded_and_rotation_needs_them() {
    // Without Graph rights: connected, but rotation cannot be turned on.
    let (st, body, s) = connect(world(vec![spot_role()])).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["validation"]["graphManagesCredentials"], false);
    let rotation = format!("/connections/{}/rotation", s.id);
    let (st, body) = s.call("PUT", &rotation, Some(json!({"enabled": true}))).await;
    assert_problem(st, &body, 422, "app-registration", "graph-permission-missing");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Application.ReadWrite.OwnedBy")
    );
    let (st, _) = s.call("PUT", &rotation, Some(json!({"enabled": false}))).await;
    assert_eq!(st, 200, "turning it off is always allowed");

    // With them: the real end of the secret in use comes from Graph (matched by hint).
    let real_end = Utc::now() + chrono::Duration::days(123);
    let mut w = world(vec![spot_role()]);
    w.tenants[0].apps[0].manages_own_credentials = true;
    w.tenants[0].apps[0].passwords[0].end_date_time = Some(real_end);
    w.tenants[0].apps[0].passwords.push(Password {
        key_id: "00000000-0000-4000-8000-0000000000aa".into(),
        secret_text: "Oth8Q~another.secret-0123456789abcdefghij".into(),
        ..Password::default()
    });
    let (st, body, s) = connect(w).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["validation"]["graphManagesCredentials"], true);
    let shown: chrono::DateTime<Utc> =
        serde_json::from_value(body["clientSecret"]["expiresAt"].clone()).unwrap();
    assert!(
        (shown - real_end).num_seconds().abs() < 2,
        "{shown} vs {real_end}"
    );
    let rotation = format!("/connections/{}/rotation", s.id);
    let (st, body) = s
        .call("PUT", &rotation, Some(json!({"enabled": true, "daysBefore": 30})))
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["rotation"], json!({"enabled": true, "daysBefore": 30}));
    let (st, body) = s
        .call("PUT", &rotation, Some(json!({"enabled": true, "daysBefore": 0})))
        .await;
    assert_problem(st, &body, 400, "client-secret", "invalid-input");
}

#[tokio::test]
async fn aadsts_failures_land_on_their_steps() {
    let mut deleted_secret = world(vec![spot_role()]);
    deleted_secret.tenants[0].apps[0].passwords.clear();
    let mut deleted_app = world(vec![spot_role()]);
    deleted_app.tenants[0].apps.clear();
    let mut no_tenant = world(vec![spot_role()]);
    no_tenant.tenants.clear();
    let cases = [
        (deleted_secret, "client-secret", "client-secret-invalid"),
        (deleted_app, "app-registration", "application-not-found"),
        (no_tenant, "app-registration", "tenant-not-found"),
    ];
    for (w, step, code) in cases {
        let (st, body, s) = connect(w).await;
        assert_problem(st, &body, 422, step, code);
        assert_eq!(body["retryable"], false);
        let view = s.view().await;
        assert_eq!(view["status"], "failed");
        assert_eq!(view["validation"]["failure"]["code"], code);
        assert_eq!(view["tenantId"], TENANT, "inputs are kept");
        assert_eq!(view["clientSecret"]["hint"], &SECRET[..3], "inputs are kept");
        let failed = s
            .sink
            .events()
            .into_iter()
            .find(|e| e.detail_type == "Connection Failed")
            .expect("event");
        assert_eq!(failed.detail["problem"]["code"], code);
    }
}

#[tokio::test]
async fn wrong_inputs_are_refused_at_their_own_step() {
    let s = Setup::new(world(vec![spot_role()]), Duration::from_secs(4)).await;
    let base = format!("/connections/{}", s.id);
    // 3.2: an unknown tenant is refused there and then (OpenID configuration, no credentials).
    let (st, body) = s
        .call(
            "PUT",
            &format!("{base}/app-registration"),
            Some(json!({"tenantId": "00000000-0000-4000-8000-000000000000", "clientId": APP})),
        )
        .await;
    assert_problem(st, &body, 422, "app-registration", "tenant-not-found");
    assert!(s.view().await["tenantId"].is_null(), "not stored");
    let (st, _) = s
        .call(
            "PUT",
            &format!("{base}/app-registration"),
            Some(json!({"tenantId": "contoso.onmicrosoft.com", "clientId": APP})),
        )
        .await;
    assert_eq!(st, 200);

    // 3.3: a token with the three values, one round trip; a wrong secret is not kept.
    s.emulator.clear_requests();
    let (st, body) = s
        .call(
            "PUT",
            &format!("{base}/client-secret"),
            Some(json!({"clientSecret": "Wr0ng~secret.value_0123456789abcdefghijk"})),
        )
        .await;
    assert_problem(st, &body, 422, "client-secret", "client-secret-invalid");
    assert!(body["detail"].as_str().unwrap().contains("not its Secret ID"));
    assert!(
        s.view().await["clientSecret"].is_null(),
        "a refused secret is not kept"
    );
    assert_eq!(s.emulator.requests().len(), 1, "one token request");
    let rejected = s
        .sink
        .events()
        .into_iter()
        .rev()
        .find(|e| e.detail_type == "Step Rejected")
        .expect("event");
    assert_eq!(rejected.detail["problem"]["code"], "client-secret-invalid");
    assert!(
        !serde_json::to_string(&s.sink.events())
            .unwrap()
            .contains("Wr0ng~")
    );

    // Azure out of reach: the secret is kept, Connect Account will tell.
    s.emulator.update(|w| w.behaviour.outage = true);
    let (st, body) = s
        .call(
            "PUT",
            &format!("{base}/client-secret"),
            Some(json!({"clientSecret": SECRET})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(s.view().await["clientSecret"]["hint"], &SECRET[..3]);
    s.emulator.update(|w| w.behaviour.outage = false);

    // The same secret again is no change: no second check.
    s.emulator.clear_requests();
    let (st, _) = s
        .call(
            "PUT",
            &format!("{base}/client-secret"),
            Some(json!({"clientSecret": SECRET})),
        )
        .await;
    assert_eq!(st, 200);
    assert!(s.emulator.requests().is_empty());
}

#[tokio::test]
async fn expired_disabled_and_blocked_apps() {
    let mut w = world(vec![spot_role()]);
    w.tenants[0].apps[0].passwords[0].end_date_time = Some(Utc::now() - chrono::Duration::days(1));
    let (st, body, _) = connect(w).await;
    assert_problem(st, &body, 422, "client-secret", "client-secret-expired");

    let mut w = world(vec![spot_role()]);
    w.tenants[0].apps[0].disabled = true;
    let (st, body, _) = connect(w).await;
    assert_problem(st, &body, 422, "app-registration", "application-disabled");

    let mut w = world(vec![spot_role()]);
    w.tenants[0].blocked_apps = vec![APP.into()];
    let (st, body, _) = connect(w).await;
    assert_problem(
        st,
        &body,
        422,
        "app-registration",
        "blocked-by-conditional-access",
    );
}

#[tokio::test]
async fn subscription_failures_land_on_the_subscription_step() {
    let (st, body, s) = connect(world(vec![spot_role()])).await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = s
        .connect_with(TENANT, APP, SECRET, "00000000-aaaa-4bbb-8ccc-0123456789ab")
        .await;
    assert_problem(st, &body, 422, "subscription", "subscription-not-found");

    let mut w = world(vec![spot_role()]);
    w.subscriptions[0].tenant_id = "00000000-1111-4000-8000-000000000000".into();
    let (st, body, _) = connect(w).await;
    assert_problem(st, &body, 422, "subscription", "subscription-in-other-tenant");

    for (state, code) in [
        ("Disabled", "subscription-disabled"),
        ("Deleted", "subscription-deleted"),
    ] {
        let mut w = world(vec![spot_role()]);
        w.subscriptions[0].state = state.into();
        let (st, body, _) = connect(w).await;
        assert_problem(st, &body, 422, "subscription", code);
    }
    for state in ["Warned", "PastDue"] {
        let mut w = world(vec![spot_role()]);
        w.subscriptions[0].state = state.into();
        let (st, body, _) = connect(w).await;
        assert_eq!(st, 200, "{body}");
        let warnings = body["validation"]["warnings"].as_array().unwrap();
        assert!(warnings[0].as_str().unwrap().contains(state), "{warnings:?}");
    }
}

#[tokio::test]
async fn missing_actions_are_listed_exactly() {
    let mut partial = spot_role();
    partial
        .actions
        .retain(|a| a != "Microsoft.Compute/disks/write" && a != "Microsoft.Network/virtualNetworks/read");
    let (st, body, _) = connect(world(vec![partial])).await;
    assert_problem(st, &body, 422, "custom-role", "missing-actions");
    assert_eq!(
        body["missingActions"],
        json!([
            "Microsoft.Compute/disks/write",
            "Microsoft.Network/virtualNetworks/read"
        ])
    );

    // notActions subtract within their role only; wildcards need everything they cover.
    let holed = Grant {
        app_id: APP.into(),
        actions: vec!["*".into()],
        not_actions: vec!["Microsoft.Compute/virtualMachines/delete".into()],
        ..Grant::default()
    };
    let (st, body, _) = connect(world(vec![holed.clone()])).await;
    assert_problem(st, &body, 422, "custom-role", "missing-actions");
    assert_eq!(
        body["missingActions"],
        json!(["Microsoft.Compute/virtualMachines/*"])
    );
    let filler = Grant {
        app_id: APP.into(),
        actions: vec!["microsoft.compute/virtualmachines/*".into()],
        ..Grant::default()
    };
    let (st, body, _) = connect(world(vec![holed, filler])).await;
    assert_eq!(st, 200, "another role fills the hole: {body}");

    // Owner-like and paged: many entries over several pages.
    let mut grants: Vec<Grant> = (0..5)
        .map(|_| Grant {
            app_id: APP.into(),
            ..Grant::default()
        })
        .collect();
    grants.push(Grant {
        app_id: APP.into(),
        actions: vec!["*".into()],
        ..Grant::default()
    });
    let (st, body, s) = connect(world(grants)).await;
    assert_eq!(st, 200, "{body}");
    let pages = s
        .emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/permissions"))
        .count();
    assert_eq!(pages, 3, "nextLink followed to the last page");
}

#[tokio::test]
async fn no_role_assigned_is_role_assignment_and_retryable() {
    let (st, body, _) = connect(world(vec![])).await;
    assert_problem(st, &body, 422, "role-assignment", "role-not-assigned");
    assert_eq!(body["retryable"], true);
    assert!(body["detail"].as_str().unwrap().contains("10 minutes"));
}

#[tokio::test]
async fn a_propagating_assignment_is_waited_for_within_the_budget() {
    let mut grant = spot_role();
    grant.assigned_at = Some(Utc::now());
    let mut w = world(vec![grant]);
    w.behaviour.propagation_seconds = 2;
    let s = Setup::new(w, Duration::from_secs(10)).await;
    let (st, body) = s.connect_with(TENANT, APP, SECRET, SUB).await;
    assert_eq!(st, 200, "{body}");
    let tokens = s
        .emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/token"))
        .count();
    assert!(tokens >= 2, "a new token for each look: {tokens}");

    // Slower than the budget: role-assignment, retryable; a later connect succeeds.
    let mut grant = spot_role();
    grant.assigned_at = Some(Utc::now());
    let mut w = world(vec![grant]);
    w.behaviour.propagation_seconds = 4;
    let s = Setup::new(w, Duration::from_secs(2)).await;
    let (st, body) = s.connect_with(TENANT, APP, SECRET, SUB).await;
    assert_problem(st, &body, 422, "role-assignment", "role-not-assigned");
    assert_eq!(body["retryable"], true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (st, body) = s.connect().await;
    assert_eq!(st, 200, "once Azure caught up: {body}");
}

#[tokio::test]
async fn throttling_is_retried_after_retry_after() {
    let mut w = world(vec![spot_role()]);
    w.behaviour.throttle_next = 0;
    let s = Setup::new(w, Duration::from_secs(8)).await;
    s.emulator.update(|w| {
        w.behaviour.throttle_next = 2;
        w.behaviour.retry_after_seconds = 1;
    });
    let (st, body) = s.connect_with(TENANT, APP, SECRET, SUB).await;
    assert_eq!(st, 200, "{body}");

    // Retry-After beyond the budget: 503 at once, retryable.
    s.emulator.update(|w| {
        w.behaviour.throttle_next = 100;
        w.behaviour.retry_after_seconds = 60;
    });
    let started = std::time::Instant::now();
    let (st, body) = s.connect().await;
    assert_eq!(
        (st, body["code"].as_str(), body["retryable"].as_bool()),
        (503, Some("azure-unavailable"), Some(true)),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn an_outage_is_503_retryable_within_the_budget() {
    let s = Setup::new(world(vec![spot_role()]), Duration::from_secs(2)).await;
    s.submit(TENANT, APP, SECRET, SUB).await;
    let before = s.view().await;
    s.emulator.update(|w| w.behaviour.outage = true);
    let started = std::time::Instant::now();
    let (st, body) = s.connect().await;
    assert_eq!(
        (st, body["code"].as_str(), body["retryable"].as_bool()),
        (503, Some("azure-unavailable"), Some(true)),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "bounded by the budget"
    );
    assert!(s.emulator.requests().len() > 2, "retried");
    // An outage is no verdict on the connection: nothing is written.
    assert_eq!(s.view().await, before, "an outage changed the connection");
    assert_eq!(
        before["clientSecret"]["hint"],
        &SECRET[..3],
        "nothing typed is lost"
    );
}

#[tokio::test]
async fn connect_needs_every_input_first() {
    let s = Setup::new(world(vec![spot_role()]), Duration::from_secs(2)).await;
    let (st, body) = s.connect().await;
    assert_eq!(st, 409, "{body}");
    assert_eq!(body["step"], "app-registration");
    assert!(s.emulator.requests().is_empty(), "no Azure call without inputs");
}
