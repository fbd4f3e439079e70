//! The Azure emulator's estate (issue 18's ground): management groups in a hierarchy, their
//! descendants, role grants and ARM role assignments at a group inherited by every subscription
//! below it, and the control routes that move, disable and delete a subscription — over real
//! HTTP with the emulator's own tokens.

use azure_emulator::{
    App as AzApp, Emulator, Grant, ManagementGroup, Password, RoleDefinition, Subscription, World,
};
use serde_json::{Value, json};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SPOT: &str = "11111111-2222-4333-8444-555555555555";
const ADMIN: &str = "a0a0a0a0-1111-4222-8333-444455556666";
const S1: &str = "00000000-0000-4000-8000-000000000001";
const S2: &str = "00000000-0000-4000-8000-000000000002";
const ROLE: &str = "0c3ce3a1-2a5d-4a5a-9c84-5b1f9b6b0e4f";

fn world() -> World {
    let app = |id: &str, principal: &str, secret: &str| AzApp {
        app_id: id.into(),
        principal_id: principal.into(),
        passwords: vec![Password {
            secret_text: secret.into(),
            ..Password::default()
        }],
        ..AzApp::default()
    };
    let sub = |id: &str| Subscription {
        id: id.into(),
        tenant_id: TENANT.into(),
        display_name: format!("sub {id}"),
        state: "Enabled".into(),
        ..Subscription::default()
    };
    let group = |name: &str, children: &[&str], subs: &[&str]| ManagementGroup {
        name: name.into(),
        tenant_id: TENANT.into(),
        display_name: name.into(),
        children: children.iter().map(|c| (*c).to_owned()).collect(),
        subscriptions: subs.iter().map(|s| (*s).to_owned()).collect(),
        ..ManagementGroup::default()
    };
    let mut w = World {
        subscriptions: vec![sub(S1), sub(S2)],
        management_groups: vec![
            group("root", &["platform"], &[S2]),
            group("platform", &[], &[S1]),
            group("other", &[], &[]),
        ],
        ..World::default()
    };
    w.tenants.push(azure_emulator::Tenant {
        id: TENANT.into(),
        domains: vec!["contoso.onmicrosoft.com".into()],
        apps: vec![
            app(SPOT, "b0b0b0b0-0000-4000-8000-000000000001", "spot-secret"),
            app(ADMIN, "b0b0b0b0-0000-4000-8000-000000000002", "admin-secret"),
        ],
        role_definitions: vec![RoleDefinition {
            id: ROLE.into(),
            role_name: "spotCustomRole_root".into(),
            actions: vec!["Microsoft.Compute/virtualMachines/read".into()],
            assignable_scopes: vec!["/providers/Microsoft.Management/managementGroups/root".into()],
            ..RoleDefinition::default()
        }],
        ..azure_emulator::Tenant::default()
    });
    // The administrator owns the root group; Spot's app reads resource groups there.
    w.management_groups[0].grants = vec![
        Grant {
            app_id: ADMIN.into(),
            actions: vec!["*".into()],
            ..Grant::default()
        },
        Grant {
            app_id: SPOT.into(),
            actions: vec![
                "Microsoft.Resources/subscriptions/resourceGroups/read".into(),
                "Microsoft.Management/managementGroups/descendants/read".into(),
            ],
            ..Grant::default()
        },
    ];
    w
}

struct Azure {
    base: String,
    http: reqwest::Client,
}

impl Azure {
    async fn token(&self, app: &str, secret: &str) -> String {
        let r: Value = self
            .http
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", self.base))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", app),
                ("client_secret", secret),
                ("scope", "https://management.azure.com/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"].as_str().unwrap().to_owned()
    }

    /// Every entry of a list, page after page (ARM pages every list; the emulator one a page).
    async fn list(&self, token: &str, path: &str) -> Vec<Value> {
        let (status, mut page) = self.get(token, path).await;
        assert_eq!(status, 200, "{page}");
        let mut all = Vec::new();
        loop {
            all.extend(page["value"].as_array().cloned().unwrap_or_default());
            let Some(next) = page["nextLink"].as_str().map(str::to_owned) else {
                return all;
            };
            page = self
                .http
                .get(next)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        }
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}?api-version=2022-04-01", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn actions(&self, token: &str, sub: &str) -> Vec<String> {
        let (_, p) = self
            .get(
                token,
                &format!("/subscriptions/{sub}/providers/Microsoft.Authorization/permissions"),
            )
            .await;
        p["value"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| e["actions"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    }

    async fn descendants(&self, token: &str, group: &str) -> Vec<String> {
        let (_, d) = self
            .get(
                token,
                &format!("/providers/Microsoft.Management/managementGroups/{group}/descendants"),
            )
            .await;
        d["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["type"] == "/subscriptions")
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> u16 {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap().status().as_u16()
    }
}

#[tokio::test]
async fn an_estate_is_inherited_moved_disabled_and_deleted_as_in_azure() {
    let emulator = Emulator::new(world());
    let addr = emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let az = Azure {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
    };
    let spot = az.token(SPOT, "spot-secret").await;
    let admin = az.token(ADMIN, "admin-secret").await;

    // Granted at the root group: inherited two levels down (root → platform → S1) and one (S2).
    let mut both = az.descendants(&spot, "root").await;
    both.sort();
    assert_eq!(both, [S1, S2]);
    for sub in [S1, S2] {
        assert!(
            az.actions(&spot, sub)
                .await
                .contains(&"Microsoft.Resources/subscriptions/resourceGroups/read".to_owned()),
            "{sub}"
        );
    }
    // An assignment made through ARM at the root group: its role's actions below it too.
    let put = az
        .http
        .put(format!(
            "{}/providers/Microsoft.Management/managementGroups/root/providers/Microsoft.Authorization/roleAssignments/7d3d2b8e-1111-4222-8333-444455556666?api-version=2022-04-01",
            az.base
        ))
        .bearer_auth(&admin)
        .json(&json!({"properties": {"roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{ROLE}"), "principalId": "b0b0b0b0-0000-4000-8000-000000000001", "principalType": "ServicePrincipal"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 201);
    // At a group ARM answers as at a subscription (authorization 2022-04-01; RBAC
    // troubleshooting): the same role for the same principal under another name is
    // RoleAssignmentExists, a principal not in the directory is PrincipalNotFound, an existing name
    // with another principal is RoleAssignmentUpdateNotPermitted; the same PUT again is the same.
    let assign = |name: &'static str, principal: &'static str| {
        az.http
            .put(format!(
                "{}/providers/Microsoft.Management/managementGroups/root/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01",
                az.base
            ))
            .bearer_auth(&admin)
            .json(&json!({"properties": {"roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{ROLE}"), "principalId": principal, "principalType": "ServicePrincipal"}}))
            .send()
    };
    for (name, principal, status, code) in [
        (
            "9d3d2b8e-1111-4222-8333-444455556666",
            "b0b0b0b0-0000-4000-8000-000000000001",
            409,
            "RoleAssignmentExists",
        ),
        (
            "9d3d2b8e-1111-4222-8333-444455556667",
            "b0b0b0b0-0000-4000-8000-0000000000ff",
            400,
            "PrincipalNotFound",
        ),
        (
            "7d3d2b8e-1111-4222-8333-444455556666",
            "b0b0b0b0-0000-4000-8000-000000000002",
            400,
            "RoleAssignmentUpdateNotPermitted",
        ),
        (
            "7d3d2b8e-1111-4222-8333-444455556666",
            "b0b0b0b0-0000-4000-8000-000000000001",
            201,
            "",
        ),
    ] {
        let r = assign(name, principal).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{name} {principal}");
        let body: Value = r.json().await.unwrap();
        if !code.is_empty() {
            assert_eq!(body["error"]["code"], code, "{body}");
        }
    }
    let spot = az.token(SPOT, "spot-secret").await;
    assert!(
        az.actions(&spot, S1)
            .await
            .contains(&"Microsoft.Compute/virtualMachines/read".to_owned())
    );
    // Spot's app may not assign roles at the group.
    let refused = az
        .http
        .put(format!(
            "{}/providers/Microsoft.Management/managementGroups/root/providers/Microsoft.Authorization/roleAssignments/8d3d2b8e-1111-4222-8333-444455556666?api-version=2022-04-01",
            az.base
        ))
        .bearer_auth(&spot)
        .json(&json!({"properties": {"roleDefinitionId": ROLE, "principalId": "b0b0b0b0-0000-4000-8000-000000000001"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);

    // A custom role made at the group (one group in its scopes, no DataActions there).
    let role_at = |id: &str, body: Value| {
        az.http
            .put(format!(
                "{}/providers/Microsoft.Management/managementGroups/root/providers/Microsoft.Authorization/roleDefinitions/{id}?api-version=2022-04-01",
                az.base
            ))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let group_role = |data: bool| {
        json!({"properties": {"roleName": "spotCustomRole_estate", "assignableScopes": ["/providers/Microsoft.Management/managementGroups/root"],
            "permissions": [{"actions": ["Microsoft.Management/managementGroups/descendants/read"], "notActions": [], "dataActions": if data { json!(["Microsoft.Storage/x/read"]) } else { json!([]) }}]}})
    };
    assert_eq!(
        role_at("1c3ce3a1-2a5d-4a5a-9c84-5b1f9b6b0e4f", group_role(true))
            .await
            .unwrap()
            .status()
            .as_u16(),
        400
    );
    assert_eq!(
        role_at("1c3ce3a1-2a5d-4a5a-9c84-5b1f9b6b0e4f", group_role(false))
            .await
            .unwrap()
            .status()
            .as_u16(),
        201
    );
    let listed = az
        .list(&admin, "/providers/Microsoft.Management/managementGroups/root/providers/Microsoft.Authorization/roleDefinitions")
        .await;
    let names: Vec<&str> = listed
        .iter()
        .filter_map(|d| d["properties"]["roleName"].as_str())
        .collect();
    assert!(names.contains(&"spotCustomRole_estate"), "{listed:?}");

    // Moved out of the estate: no longer a descendant, nothing inherited.
    assert_eq!(
        az.control(
            reqwest::Method::POST,
            &format!("/_emulator/subscriptions/{S1}/move"),
            Some(json!({"to": "other"}))
        )
        .await,
        204
    );
    assert_eq!(az.descendants(&spot, "root").await, [S2]);
    assert!(az.actions(&spot, S1).await.is_empty());
    assert_eq!(az.get(&spot, &format!("/subscriptions/{S1}")).await.0, 403);
    // Disabled: its state says so.
    assert_eq!(
        az.control(
            reqwest::Method::PUT,
            &format!("/_emulator/subscriptions/{S2}/state"),
            Some(json!({"state": "Disabled"}))
        )
        .await,
        204
    );
    assert_eq!(
        az.get(&spot, &format!("/subscriptions/{S2}")).await.1["state"],
        "Disabled"
    );
    // Deleted: gone from the group and from ARM.
    assert_eq!(
        az.control(
            reqwest::Method::DELETE,
            &format!("/_emulator/subscriptions/{S2}"),
            None
        )
        .await,
        204
    );
    assert!(az.descendants(&spot, "root").await.is_empty());
    assert_eq!(az.get(&spot, &format!("/subscriptions/{S2}")).await.0, 404);
}
