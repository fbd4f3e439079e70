//! The emulator held to Microsoft's own descriptions (issue 26). Every kind of ARM and Graph answer
//! the backend, the setup script and `az` read from it — success and error, every page — is
//! validated against the definitions kept in `emulator/specs/` (trimmed from
//! Azure/azure-rest-api-specs and microsoftgraph/msgraph-metadata, each with its path, commit and
//! api-version), and no answer may carry a property its description does not declare: Azure's
//! clients ignore unknown properties, so a test of ours must never rely on one (the stricter
//! reading; the descriptions mark most Graph types open).

use azure_emulator::{Emulator, Grant, User, World};
use serde_json::{Map, Value, json};

const ARM_SPECS: &str = include_str!("../../../emulator/specs/arm.json");
const GRAPH_SPECS: &str = include_str!("../../../emulator/specs/graph-v1.0.json");

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SUB: &str = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab";
const ADMIN: &str = "a11ce000-0000-4000-8000-00000000ad01";
/// The demo world's other app (Spot's).
const SPOT: &str = "11111111-2222-4333-8444-555555555555";
const ADMIN_SECRET: &str = "Adm1n~demo.Local_Admin-0123456789abcdef";
const GUID: &str = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
const DATE_TIME: &str = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$";

/// Every object schema that lists its properties admits no other (the stricter reading).
fn close(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    if map.contains_key("properties") && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        properties.values_mut().for_each(close);
    }
    if let Some(items) = map.get_mut("items") {
        close(items);
    }
}

/// A validator for ARM definition `name` (closed).
fn arm(name: &str) -> jsonschema::Validator {
    let specs: Value = serde_json::from_str(ARM_SPECS).unwrap();
    let mut definitions = specs["definitions"].clone();
    definitions.as_object_mut().unwrap().values_mut().for_each(close);
    let schema = json!({"$ref": format!("#/definitions/{name}"), "definitions": definitions});
    jsonschema::draft4::new(&schema).unwrap()
}

/// Graph's CSDL types (trimmed) as JSON Schema definitions: each entity or complex type with the
/// properties of its base types, no other property but OData's annotations (`@odata.*`).
fn graph_definitions() -> Value {
    let specs: Value = serde_json::from_str(GRAPH_SPECS).unwrap();
    let types = specs["types"].as_object().unwrap();
    let edm = |ty: &str| -> Value {
        let inner = ty.strip_prefix("Collection(").and_then(|t| t.strip_suffix(')'));
        let one = |t: &str| match t {
            "Edm.String" | "Edm.Binary" | "Edm.Date" | "Edm.Duration" | "Edm.TimeOfDay" => {
                json!({"type": "string"})
            }
            "Edm.Guid" => json!({"type": "string", "pattern": GUID}),
            "Edm.DateTimeOffset" => json!({"type": "string", "pattern": DATE_TIME}),
            "Edm.Boolean" => json!({"type": "boolean"}),
            "Edm.Int32" | "Edm.Int64" => json!({"type": "integer"}),
            "Edm.Double" | "Edm.Single" | "Edm.Decimal" => json!({"type": "number"}),
            other => match other.strip_prefix("graph.") {
                Some(name) if types.contains_key(name) => json!({"$ref": format!("#/definitions/{name}")}),
                _ => json!({}),
            },
        };
        match inner {
            Some(t) => json!({"type": "array", "items": one(t)}),
            None => one(ty),
        }
    };
    let mut definitions = Map::new();
    for (name, t) in types {
        if t["kind"] == "enum" {
            definitions.insert(name.clone(), json!({"type": "string", "enum": t["members"]}));
            continue;
        }
        let mut properties = Map::new();
        let mut current = Some(t);
        while let Some(c) = current {
            for (p, d) in c["properties"].as_object().unwrap() {
                let schema = edm(d["type"].as_str().unwrap());
                let schema = if d["nullable"] == true {
                    json!({"anyOf": [schema, {"type": "null"}]})
                } else {
                    schema
                };
                properties.entry(p.clone()).or_insert(schema);
            }
            current = c["base"].as_str().and_then(|b| types.get(b));
        }
        definitions.insert(
            name.clone(),
            json!({
                "type": "object",
                "properties": properties,
                "patternProperties": {"^@odata\\.": {}},
                "additionalProperties": false,
            }),
        );
    }
    // Graph's error body (the v1.0 OpenAPI description's microsoft.graph.ODataErrors.ODataError,
    // MainError and ErrorDetails, generated from the same metadata): `code` and `message`
    // required; `innerError` is the service's own.
    definitions.insert(
        "ODataError".into(),
        json!({
            "type": "object",
            "required": ["error"],
            "additionalProperties": false,
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "additionalProperties": false,
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "target": {"type": ["string", "null"]},
                    "details": {"type": "array", "items": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "target": {"type": ["string", "null"]}},
                        "additionalProperties": false,
                    }},
                    "innerError": {"type": "object"},
                },
            }},
        }),
    );
    Value::Object(definitions)
}

/// A validator for Graph type `name`: one entity or a page of them (`collection`); `*`: a page of
/// entries of any type (each then checked by its `@odata.type`).
fn graph(name: &str, collection: bool) -> jsonschema::Validator {
    let one = if name == "*" {
        json!({})
    } else {
        json!({"$ref": format!("#/definitions/{name}")})
    };
    let schema = if collection {
        json!({
            "type": "object",
            "required": ["@odata.context", "value"],
            "additionalProperties": false,
            "properties": {
                "@odata.context": {"type": "string"},
                "@odata.nextLink": {"type": "string"},
                "value": {"type": "array", "items": one},
            },
            "definitions": graph_definitions(),
        })
    } else {
        json!({"allOf": [one], "definitions": graph_definitions()})
    };
    jsonschema::draft4::new(&schema).unwrap()
}

fn check(validator: &jsonschema::Validator, what: &str, answer: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(answer)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}\n{answer:#}");
}

struct Azure {
    base: String,
    http: reqwest::Client,
    arm: String,
    graph: String,
}

impl Azure {
    async fn start() -> (Self, Emulator) {
        let mut world = World::demo().unwrap();
        world.tenants[0].apps[1].directory_roles =
            vec!["Global Reader".into(), "Application Developer".into()];
        world.tenants[0].apps[1]
            .graph_roles
            .push("Application.Read.All".into());
        world.tenants[0].users.push(User {
            object_id: "d0d0d0d0-0000-4000-8000-0000000000d1".into(),
            user_principal_name: "ada@contoso.onmicrosoft.com".into(),
            password: "pw".into(),
            display_name: "Ada".into(),
            directory_roles: vec![],
        });
        world.behaviour.management_groups_page_size = 1;
        world.subscriptions[0].grants.push(Grant {
            app_id: ADMIN.into(),
            actions: vec!["Microsoft.Resources/subscriptions/read".into()],
            ..Grant::default()
        });
        let emulator = Emulator::new(world);
        let base = format!(
            "http://{}",
            emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap()
        );
        let http = reqwest::Client::new();
        let token = |scope: &'static str| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let r: Value = http
                    .post(format!("{base}/{TENANT}/oauth2/v2.0/token"))
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", ADMIN),
                        ("client_secret", ADMIN_SECRET),
                        ("scope", scope),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                r["access_token"].as_str().unwrap().to_owned()
            }
        };
        let arm = token("https://management.azure.com/.default").await;
        let graph = token("https://graph.microsoft.com/.default").await;
        (
            Self {
                base,
                http,
                arm,
                graph,
            },
            emulator,
        )
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self.http.request(method.parse().unwrap(), url).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Every page of a collection, each validated; the entries of all pages.
    async fn pages(
        &self,
        path: &str,
        token: &str,
        validator: &jsonschema::Validator,
        link: &str,
    ) -> Vec<Value> {
        let mut url = path.to_owned();
        let mut all = Vec::new();
        for _ in 0..50 {
            let (status, page) = self.call("GET", &url, token, None).await;
            assert_eq!(status, 200, "{url}: {page}");
            check(validator, &url, &page);
            all.extend(page["value"].as_array().unwrap().iter().cloned());
            match page[link].as_str() {
                Some(next) => url = next.to_owned(),
                None => return all,
            }
        }
        panic!("{path}: more than 50 pages");
    }
}

#[tokio::test]
async fn every_arm_answer_is_as_azure_describes_it() {
    let (az, _emulator) = Azure::start().await;
    let t = az.arm.clone();
    let error = arm("ErrorResponse");
    let is_error = |status: u16, body: &Value, code: &str, what: &str| {
        check(&error, what, body);
        assert!(status >= 400, "{what}: {status}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.contains('{')),
            "{what}: {body}"
        );
    };

    let subs = az
        .pages(
            "/subscriptions?api-version=2022-12-01",
            &t,
            &arm("SubscriptionListResult"),
            "nextLink",
        )
        .await;
    assert!(
        subs.len() >= 2,
        "the admin sees the group's subscriptions, a page each"
    );
    let (s, sub) = az
        .call(
            "GET",
            &format!("/subscriptions/{SUB}?api-version=2022-12-01"),
            &t,
            None,
        )
        .await;
    assert_eq!(s, 200);
    check(&arm("Subscription"), "subscription", &sub);
    az.pages(
        "/tenants?api-version=2022-12-01",
        &t,
        &arm("TenantListResult"),
        "nextLink",
    )
    .await;
    let permissions = az
        .pages(
            &format!(
                "/subscriptions/{SUB}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01"
            ),
            &t,
            &arm("PermissionGetResult"),
            "nextLink",
        )
        .await;
    assert!(permissions.len() >= 2, "two entries, two pages");

    // Management groups: the list, a group, what is below it (a page each), one that is not there.
    const GROUPS: &str = "/providers/Microsoft.Management/managementGroups";
    let groups = az
        .pages(
            &format!("{GROUPS}?api-version=2021-04-01"),
            &t,
            &arm("ManagementGroupListResult"),
            "nextLink",
        )
        .await;
    assert!(!groups.is_empty());
    let (s, group) = az
        .call(
            "GET",
            &format!("{GROUPS}/contoso-prod?api-version=2021-04-01"),
            &t,
            None,
        )
        .await;
    assert_eq!(s, 200, "{group}");
    check(&arm("ManagementGroup"), "group", &group);
    let below = az
        .pages(
            &format!("{GROUPS}/contoso-prod/descendants?api-version=2021-04-01"),
            &t,
            &arm("DescendantListResult"),
            "nextLink",
        )
        .await;
    assert!(below.len() >= 2, "{below:?}");
    let (s, body) = az
        .call(
            "GET",
            &format!("{GROUPS}/nowhere?api-version=2021-04-01"),
            &t,
            None,
        )
        .await;
    check(&arm("ManagementGroupErrorResponse"), "an unknown group", &body);
    assert_eq!(s, 404);

    // A custom role, assigned at the subscription and at the group, each read back and listed.
    for scope in [
        format!("/subscriptions/{SUB}"),
        "/providers/Microsoft.Management/managementGroups/contoso-prod".to_owned(),
    ] {
        let role = uuid::Uuid::new_v4().to_string();
        let (s, def) = az
            .call(
                "PUT",
                &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{role}?api-version=2022-04-01"),
                &t,
                Some(json!({"properties": {"roleName": format!("schema {role}"), "type": "CustomRole", "description": "d",
                    "permissions": [{"actions": ["Microsoft.Compute/*/read"], "notActions": [], "dataActions": [], "notDataActions": []}],
                    "assignableScopes": [scope]}})),
            )
            .await;
        assert_eq!(s, 201, "{def}");
        check(&arm("RoleDefinition"), "created role", &def);
        let (s, def) = az
            .call(
                "GET",
                &format!(
                    "{scope}/providers/Microsoft.Authorization/roleDefinitions/{role}?api-version=2022-04-01"
                ),
                &t,
                None,
            )
            .await;
        assert_eq!(s, 200);
        check(&arm("RoleDefinition"), "role", &def);
        az.pages(
            &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01"),
            &t,
            &arm("RoleDefinitionListResult"),
            "nextLink",
        )
        .await;
        let (s, missing) = az
            .call(
                "GET",
                &format!(
                    "{scope}/providers/Microsoft.Authorization/roleDefinitions/{}?api-version=2022-04-01",
                    uuid::Uuid::new_v4()
                ),
                &t,
                None,
            )
            .await;
        is_error(
            s,
            &missing,
            "RoleDefinitionDoesNotExist",
            "a role that does not exist",
        );

        // Another app's principal: the caller's own assignments are listed as its token sees them.
        let principal = az
            .call(
                "GET",
                &format!("/v1.0/servicePrincipals(appId='{SPOT}')"),
                &az.graph,
                None,
            )
            .await
            .1["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let assignment = |name: String, principal: String| {
            let scope = scope.clone();
            let role = role.clone();
            let az = &az;
            let t = t.clone();
            async move {
                az.call(
                    "PUT",
                    &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"),
                    &t,
                    Some(json!({"properties": {
                        "roleDefinitionId": format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                        "principalId": principal, "principalType": "ServicePrincipal"}})),
                )
                .await
            }
        };
        let name = uuid::Uuid::new_v4().to_string();
        let (s, made) = assignment(name.clone(), principal.clone()).await;
        assert_eq!(s, 201, "{made}");
        check(&arm("RoleAssignment"), "created assignment", &made);
        let (s, again) = assignment(uuid::Uuid::new_v4().to_string(), principal.clone()).await;
        is_error(
            s,
            &again,
            "RoleAssignmentExists",
            &format!("the same role again at {scope}"),
        );
        let (s, other) = assignment(name.clone(), "d0d0d0d0-0000-4000-8000-0000000000d1".into()).await;
        is_error(
            s,
            &other,
            "RoleAssignmentUpdateNotPermitted",
            &format!("an existing name, another principal, at {scope}"),
        );
        let (s, nobody) =
            assignment(uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string()).await;
        is_error(
            s,
            &nobody,
            "PrincipalNotFound",
            &format!("a principal not in the directory at {scope}"),
        );
        let listed = az
            .pages(
                &format!("{scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20'{principal}'"),
                &t,
                &arm("RoleAssignmentListResult"),
                "nextLink",
            )
            .await;
        assert!(listed.iter().any(|a| a["name"] == name.as_str()), "{listed:?}");
        let path = format!(
            "{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"
        );
        let (s, read) = az.call("GET", &path, &t, None).await;
        assert_eq!(s, 200);
        check(&arm("RoleAssignment"), "assignment", &read);
        let (s, deleted) = az.call("DELETE", &path, &t, None).await;
        assert_eq!(s, 200, "{deleted}");
        check(&arm("RoleAssignment"), "deleted assignment", &deleted);
    }

    let (s, body) = az
        .call(
            "GET",
            &format!("/subscriptions/{}?api-version=2022-12-01", uuid::Uuid::new_v4()),
            &t,
            None,
        )
        .await;
    is_error(s, &body, "SubscriptionNotFound", "an unknown subscription");
    let (s, body) = az.call("GET", &format!("/subscriptions/{SUB}"), &t, None).await;
    is_error(s, &body, "MissingApiVersionParameter", "no api-version");
    let (s, body) = az
        .call(
            "GET",
            &format!("/subscriptions/{SUB}?api-version=2022-12-01"),
            "not-a-token",
            None,
        )
        .await;
    check(&error, "no token", &body);
    assert_eq!(s, 401);
}

#[tokio::test]
async fn every_graph_answer_is_as_graph_describes_it() {
    let (az, _emulator) = Azure::start().await;
    let t = az.graph.clone();
    let error = graph("ODataError", false);

    let (s, app) = az
        .call(
            "POST",
            "/v1.0/applications",
            &t,
            Some(json!({"displayName": "schema-app", "notes": "n"})),
        )
        .await;
    assert_eq!(s, 201, "{app}");
    check(&graph("application", false), "created application", &app);
    let object = app["id"].as_str().unwrap().to_owned();
    let app_id = app["appId"].as_str().unwrap().to_owned();
    let (s, read) = az
        .call("GET", &format!("/v1.0/applications/{object}"), &t, None)
        .await;
    assert_eq!(s, 200);
    check(&graph("application", false), "application", &read);
    az.pages(
        "/v1.0/applications",
        &t,
        &graph("application", true),
        "@odata.nextLink",
    )
    .await;
    az.pages(
        "/v1.0/applications?$filter=displayName%20eq%20'schema-app'",
        &t,
        &graph("application", true),
        "@odata.nextLink",
    )
    .await;

    let (s, sp) = az
        .call(
            "POST",
            "/v1.0/servicePrincipals",
            &t,
            Some(json!({"appId": app_id})),
        )
        .await;
    assert_eq!(s, 201, "{sp}");
    check(
        &graph("servicePrincipal", false),
        "created service principal",
        &sp,
    );
    assert_eq!(
        sp["appOwnerOrganizationId"], TENANT,
        "registered in the tenant: {sp}"
    );
    for path in [
        format!("/v1.0/servicePrincipals/{}", sp["id"].as_str().unwrap()),
        format!("/v1.0/servicePrincipals(appId='{app_id}')"),
    ] {
        let (s, read) = az.call("GET", &path, &t, None).await;
        assert_eq!(s, 200, "{path}: {read}");
        check(&graph("servicePrincipal", false), &path, &read);
    }
    let principals = az
        .pages(
            "/v1.0/servicePrincipals",
            &t,
            &graph("servicePrincipal", true),
            "@odata.nextLink",
        )
        .await;
    assert!(principals.len() >= 2, "{principals:?}");

    let (s, cred) = az
        .call(
            "POST",
            &format!("/v1.0/applications/{object}/federatedIdentityCredentials"),
            &t,
            Some(json!({"name": "spot", "issuer": "https://issuer.example", "subject": "s", "audiences": ["api://AzureADTokenExchange"]})),
        )
        .await;
    assert_eq!(s, 201, "{cred}");
    check(
        &graph("federatedIdentityCredential", false),
        "created federated credential",
        &cred,
    );
    az.pages(
        &format!("/v1.0/applications/{object}/federatedIdentityCredentials"),
        &t,
        &graph("federatedIdentityCredential", true),
        "@odata.nextLink",
    )
    .await;
    let (s, pw) = az
        .call(
            "POST",
            &format!("/v1.0/applications/{object}/addPassword"),
            &t,
            Some(json!({"passwordCredential": {"displayName": "x"}})),
        )
        .await;
    assert_eq!(s, 200, "{pw}");
    check(&graph("passwordCredential", false), "added password", &pw);

    // Owners are directory objects of their own types (a service principal here).
    let owners = az
        .pages(
            &format!("/v1.0/applications/{object}/owners"),
            &t,
            &graph("*", true),
            "@odata.nextLink",
        )
        .await;
    for owner in &owners {
        let ty = owner["@odata.type"]
            .as_str()
            .unwrap()
            .trim_start_matches("#microsoft.graph.");
        check(&graph(ty, false), "owner", owner);
    }
    let roles = az
        .pages(
            &format!("/v1.0/servicePrincipals(appId='{ADMIN}')/appRoleAssignments"),
            &t,
            &graph("appRoleAssignment", true),
            "@odata.nextLink",
        )
        .await;
    assert!(roles.len() >= 2, "two app roles, two pages: {roles:?}");
    let directory_roles = az
        .pages(
            &format!(
                "/v1.0/servicePrincipals(appId='{ADMIN}')/transitiveMemberOf/microsoft.graph.directoryRole"
            ),
            &t,
            &graph("directoryRole", true),
            "@odata.nextLink",
        )
        .await;
    assert_eq!(directory_roles.len(), 2, "{directory_roles:?}");
    let (s, policy) = az
        .call("GET", "/v1.0/policies/authorizationPolicy", &t, None)
        .await;
    assert_eq!(s, 200);
    check(
        &graph("authorizationPolicy", false),
        "authorization policy",
        &policy,
    );

    let (s, body) = az
        .call(
            "GET",
            &format!("/v1.0/applications/{}", uuid::Uuid::new_v4()),
            &t,
            None,
        )
        .await;
    check(&error, "an unknown application", &body);
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("Request_ResourceNotFound"))
    );
    let (s, body) = az.call("GET", "/v1.0/applications?$top=1000", &t, None).await;
    check(&error, "$top beyond 999", &body);
    assert_eq!(s, 400);
    let (s, body) = az.call("GET", "/v1.0/applications", &az.arm, None).await;
    check(&error, "an ARM token at Graph", &body);
    assert_eq!(s, 401);
}
