//! Microsoft Graph's directory as `az ad` and `az rest` use it: applications (list by filter,
//! create, read, update, delete), their federated credentials and passwords by object id,
//! service principals, `directoryObjects/getByIds`, the tenant's authorization policy and the
//! caller's directory roles and app role assignments. Everything under `/v1.0/` comes here; the
//! `applications(appId='…')` forms the backend uses go on to [`super::graph`].

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

use super::entra::{Token, base_url};
use super::graph::{self, add_federated, graph_error, password_json};
use super::paging::Listing;
use super::world::{App, FederatedCredential, Tenant, World};
use super::{Emulator, is_graph, now};

/// Directory roles that may register applications (besides "Users can register applications").
const APP_CREATORS: &[&str] = &[
    "Application Developer",
    "Application Administrator",
    "Cloud Application Administrator",
    "Global Administrator",
];
/// Directory roles that manage every application.
const APP_ADMINS: &[&str] = &[
    "Application Administrator",
    "Cloud Application Administrator",
    "Global Administrator",
];
/// Microsoft Graph's app role ids (the `appRoleId` of an app role assignment).
const GRAPH_APP_ROLE_IDS: &[(&str, &str)] = &[
    (
        "Application.ReadWrite.All",
        "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
    ),
    (
        "Application.ReadWrite.OwnedBy",
        "18a4783c-866b-4cc7-a460-3d5e5662c884",
    ),
    ("Application.Read.All", "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"),
];
/// Directory role template ids, as Graph's `directoryRole.roleTemplateId`.
const ROLE_TEMPLATES: &[(&str, &str)] = &[
    ("Application Developer", "cf1c38e5-3621-4004-a7cb-879624dced7c"),
    (
        "Application Administrator",
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    ),
    (
        "Cloud Application Administrator",
        "158c047a-c907-4556-b7ef-446551a6b5f7",
    ),
    ("Global Administrator", "62e90394-69f5-4237-9190-012177145e10"),
];

/// The caller: its tenant (index) and its own app, from a Graph token.
struct Caller {
    tenant: usize,
    token: Token,
}

impl Caller {
    fn of(world: &World, headers: &HeaderMap) -> Result<Self, Box<Response>> {
        let token = Token::from_headers(headers)
            .filter(|t| is_graph(&t.resource))
            .ok_or_else(|| {
                Box::new(graph_error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "Access token validation failure. Invalid audience.",
                ))
            })?;
        let tenant = world
            .tenants
            .iter()
            .position(|t| t.id.eq_ignore_ascii_case(&token.tenant))
            .ok_or_else(|| {
                Box::new(graph_error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "Unknown tenant.",
                ))
            })?;
        Ok(Self { tenant, token })
    }

    fn app<'w>(&self, world: &'w World) -> Option<&'w App> {
        world.tenants[self.tenant]
            .apps
            .iter()
            .find(|a| a.app_id.eq_ignore_ascii_case(&self.token.app_id))
    }

    fn user<'w>(&self, world: &'w World) -> Option<&'w super::world::User> {
        if !self.token.user {
            return None;
        }
        world.tenants[self.tenant]
            .users
            .iter()
            .find(|u| u.object_id.eq_ignore_ascii_case(&self.token.app_id))
    }

    fn directory_roles<'w>(&self, world: &'w World) -> &'w [String] {
        match (self.user(world), self.app(world)) {
            (Some(u), _) => &u.directory_roles,
            (None, Some(a)) if !self.token.user => &a.directory_roles,
            _ => &[],
        }
    }

    fn has_directory_role(&self, world: &World, roles: &[&str]) -> bool {
        self.directory_roles(world)
            .iter()
            .any(|r| roles.contains(&r.as_str()))
    }

    fn may_create_apps(&self, world: &World) -> bool {
        // A member, when "Users can register applications" is on.
        (self.token.user && !world.tenants[self.tenant].users_may_not_create_apps)
            || self.token.has_role("Application.ReadWrite.All")
            || self.token.has_role("Application.ReadWrite.OwnedBy")
            || self.has_directory_role(world, APP_CREATORS)
    }

    /// Whether the caller may change `app` (an owner, or one who manages every app).
    fn may_manage(&self, world: &World, app: &App) -> bool {
        self.token.has_role("Application.ReadWrite.All")
            || self.has_directory_role(world, APP_ADMINS)
            || app
                .owners
                .iter()
                .any(|o| o.eq_ignore_ascii_case(&self.token.app_id))
    }
}

fn denied() -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

fn not_found(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn application_json(app: &App) -> Value {
    json!({
        "id": app.object_id,
        "appId": app.app_id,
        "displayName": app.display_name,
        "signInAudience": "AzureADMyOrg",
        "notes": app.notes,
        "createdDateTime": app.created_at,
        "passwordCredentials": app.passwords.iter().map(|p| password_json(p, false)).collect::<Vec<_>>(),
        "keyCredentials": [],
        "requiredResourceAccess": [],
        "identifierUris": [],
        "web": {"redirectUris": []},
        "api": {},
        "appRoles": [],
        "tags": [],
        "addIns": [],
        "publisherDomain": null,
        "isFallbackPublicClient": null,
        "info": {},
        "optionalClaims": null,
        "publicClient": {"redirectUris": []},
        "spa": {"redirectUris": []},
    })
}

/// An app role assignment of Microsoft Graph's to `app`'s service principal (Graph v1.0
/// `appRoleAssignment`: `id`, `appRoleId`, `createdDateTime`, `deletedDateTime`,
/// `principalDisplayName`, `principalId`, `principalType`, `resourceDisplayName`, `resourceId`).
fn app_role_assignment_json(app: &App, role: &str, tenant_id: &str) -> Value {
    let id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{}|{role}", app.principal_id).as_bytes(),
    );
    json!({
        "id": id,
        "appRoleId": role,
        "createdDateTime": app.principal_created_at.or(app.created_at),
        "deletedDateTime": null,
        "principalDisplayName": app.display_name,
        "principalId": app.principal_id,
        "principalType": "ServicePrincipal",
        "resourceDisplayName": "Microsoft Graph",
        "resourceId": graph_principal_id(tenant_id),
    })
}

/// Microsoft Graph's own service principal in a tenant (the resource of its app roles).
fn graph_principal_id(tenant_id: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{tenant_id}|00000003-0000-0000-c000-000000000000").as_bytes(),
    )
    .to_string()
}

/// A service principal as Graph v1.0 answers it; `appOwnerOrganizationId` is the tenant where its
/// app is registered (every app here is registered in its own tenant).
fn service_principal_json(app: &App, tenant_id: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.servicePrincipal",
        "id": app.principal_id,
        "appId": app.app_id,
        "displayName": app.display_name,
        "servicePrincipalNames": [app.app_id],
        "servicePrincipalType": "Application",
        "accountEnabled": !app.disabled,
        "appOwnerOrganizationId": tenant_id,
    })
}

/// The subset of OData `$filter` that `az ad` sends: `prop eq 'v'`, `startswith(prop,'v')`,
/// `servicePrincipalNames/any(c:c eq 'v')`.
fn matches_filter(filter: &str, fields: &[(&str, &str)], names: &[&str]) -> bool {
    let filter = filter.trim();
    let quoted = |s: &str| {
        s.trim()
            .trim_start_matches('\'')
            .trim_end_matches('\'')
            .to_owned()
    };
    if let Some(rest) = filter.strip_prefix("startswith(") {
        let rest = rest.trim_end_matches(')');
        let Some((prop, value)) = rest.split_once(',') else {
            return false;
        };
        let value = quoted(value).to_ascii_lowercase();
        return fields
            .iter()
            .any(|(k, v)| *k == prop.trim() && v.to_ascii_lowercase().starts_with(&value));
    }
    if let Some(rest) = filter.strip_prefix("servicePrincipalNames/any(") {
        let value = rest
            .split_once(" eq ")
            .map(|(_, v)| quoted(v.trim_end_matches(')')))
            .unwrap_or_default();
        return names.iter().any(|n| n.eq_ignore_ascii_case(&value));
    }
    if let Some((prop, value)) = filter.split_once(" eq ") {
        let value = quoted(value);
        return fields
            .iter()
            .any(|(k, v)| *k == prop.trim() && v.eq_ignore_ascii_case(&value));
    }
    false
}

fn find_app(tenant: &Tenant, object_id: &str) -> Option<usize> {
    tenant
        .apps
        .iter()
        .position(|a| a.object_id.eq_ignore_ascii_case(object_id) && !a.object_id.is_empty())
}

/// Everything under `/v1.0/`.
pub(crate) async fn dispatch(
    State(emu): State<Emulator>,
    Path(rest): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let list = Listing {
        headers: &headers,
        uri: &uri,
        query: &query,
    };
    let segments: Vec<String> = rest.split('/').map(str::to_owned).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    // The backend's forms (`applications(appId='…')`): its own credentials.
    if seg[0].starts_with("applications(appId=") {
        let first = seg[0].to_owned();
        return match (&method, &seg[..]) {
            (&Method::GET, [_]) => graph::graph_application(State(emu), Path(first), headers).await,
            (&Method::GET, [_, collection]) => {
                graph::graph_list(
                    State(emu),
                    Path((first, (*collection).to_owned())),
                    headers.clone(),
                    &list,
                )
                .await
            }
            (&Method::POST, [_, action]) => {
                graph::graph_action(State(emu), Path((first, (*action).to_owned())), headers, body).await
            }
            (&Method::DELETE, [_, "federatedIdentityCredentials", id]) => {
                graph::graph_delete_federated(State(emu), Path((first, (*id).to_owned())), headers).await
            }
            _ => graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Resource not found for the segment.",
            ),
        };
    }
    let world = emu.world();
    let caller = match Caller::of(&world, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let filter = query.get("$filter").map(String::as_str);
    let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let page_size = world.behaviour.graph_page_size;
    let tenant_id = world.tenants[caller.tenant].id.clone();
    let entity = |context: &str, mut value: Value| {
        value["@odata.context"] = json!(format!("{}/v1.0/$metadata#{context}/$entity", base_url(&headers)));
        axum::Json(value).into_response()
    };
    match (&method, &seg[..]) {
        (&Method::GET, ["applications"]) => {
            let tenant = &world.tenants[caller.tenant];
            let value: Vec<Value> = tenant
                .apps
                .iter()
                .filter(|a| !a.object_id.is_empty())
                .filter(|a| {
                    filter.is_none_or(|f| {
                        matches_filter(
                            f,
                            &[
                                ("displayName", &a.display_name),
                                ("appId", &a.app_id),
                                ("id", &a.object_id),
                            ],
                            &[],
                        )
                    })
                })
                .map(application_json)
                .collect();
            list.graph(value, page_size, "applications")
        }
        (&Method::POST, ["applications"]) => create_application(&emu, &world, &caller, &input),
        (&Method::GET, ["applications", id]) => match find_app(&world.tenants[caller.tenant], id) {
            Some(i) => entity(
                "applications",
                application_json(&world.tenants[caller.tenant].apps[i]),
            ),
            None => not_found(id),
        },
        (&Method::PATCH, ["applications", id]) => with_app(&emu, &world, &caller, id, |app| {
            if let Some(name) = input.get("displayName").and_then(Value::as_str) {
                app.display_name = name.to_owned();
            }
            if let Some(notes) = input.get("notes") {
                app.notes = notes.as_str().map(str::to_owned);
            }
            StatusCode::NO_CONTENT.into_response()
        }),
        (&Method::DELETE, ["applications", id]) => {
            let tenant = caller.tenant;
            let Some(i) = find_app(&world.tenants[tenant], id) else {
                return not_found(id);
            };
            if !caller.may_manage(&world, &world.tenants[tenant].apps[i]) {
                return denied();
            }
            // Deleting an application deletes its service principal too.
            emu.update(|w| {
                w.tenants[tenant].apps.remove(i);
            });
            StatusCode::NO_CONTENT.into_response()
        }
        // Graph v1.0 "List owners of an application": directoryObjects (a user's or a service
        // principal's object id and type).
        (&Method::GET, ["applications", id, "owners"]) => match find_app(&world.tenants[caller.tenant], id) {
            Some(i) => {
                let tenant = &world.tenants[caller.tenant];
                let owners: Vec<Value> = tenant.apps[i]
                    .owners
                    .iter()
                    .map(
                        |owner| match tenant.apps.iter().find(|a| a.app_id.eq_ignore_ascii_case(owner)) {
                            Some(sp) => json!({
                                "@odata.type": "#microsoft.graph.servicePrincipal",
                                "id": sp.principal_id,
                                "appId": sp.app_id,
                                "displayName": sp.display_name,
                            }),
                            None => {
                                let user = tenant
                                    .users
                                    .iter()
                                    .find(|u| u.object_id.eq_ignore_ascii_case(owner));
                                json!({
                                    "@odata.type": "#microsoft.graph.user",
                                    "id": owner,
                                    "userPrincipalName": user.map(|u| u.user_principal_name.clone()),
                                    "displayName": user.map(|u| u.display_name.clone()),
                                })
                            }
                        },
                    )
                    .collect();
                list.graph(owners, page_size, "directoryObjects")
            }
            None => not_found(id),
        },
        (&Method::GET, ["applications", id, "federatedIdentityCredentials"]) => {
            match find_app(&world.tenants[caller.tenant], id) {
                Some(i) => {
                    let app = &world.tenants[caller.tenant].apps[i];
                    let items = app
                        .federated_credentials
                        .iter()
                        .map(graph::federated_json)
                        .collect();
                    let context = format!("applications('{}')/federatedIdentityCredentials", app.object_id);
                    list.graph(items, page_size, &context)
                }
                None => not_found(id),
            }
        }
        (&Method::POST, ["applications", id, "federatedIdentityCredentials"]) => {
            let Ok(mut cred) = serde_json::from_value::<FederatedCredential>(input.clone()) else {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "Invalid request body.",
                );
            };
            cred.created_at = Some(now());
            with_app(&emu, &world, &caller, id, |app| match add_federated(app, cred) {
                Ok(cred) => (StatusCode::CREATED, axum::Json(graph::federated_json(&cred))).into_response(),
                Err(r) => *r,
            })
        }
        // Graph v1.0 "Update federatedIdentityCredential": only the properties sent change
        // (issuer, subject, audiences, description); an empty issuer or subject, or audiences not
        // of exactly one value, is refused as at creation.
        (&Method::PATCH, ["applications", id, "federatedIdentityCredentials", fid]) => {
            let text = |k: &str| input.get(k).map(|v| v.as_str().map(str::to_owned));
            let (issuer, subject, description) = (text("issuer"), text("subject"), text("description"));
            let audiences = input
                .get("audiences")
                .map(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok());
            let bad = [&issuer, &subject]
                .iter()
                .any(|v| matches!(v, Some(None)) || matches!(v, Some(Some(s)) if s.trim().is_empty()))
                || matches!(&audiences, Some(None))
                || matches!(&audiences, Some(Some(a)) if a.len() != 1)
                || matches!(description, Some(None)) && !input["description"].is_null();
            if bad {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "Invalid value for a property of the federated identity credential.",
                );
            }
            with_app(&emu, &world, &caller, id, |app| {
                match app
                    .federated_credentials
                    .iter_mut()
                    .find(|f| f.id == *fid || f.name == *fid)
                {
                    Some(f) => {
                        if let Some(Some(v)) = issuer {
                            f.issuer = v;
                        }
                        if let Some(Some(v)) = subject {
                            f.subject = v;
                        }
                        if let Some(Some(v)) = audiences {
                            f.audiences = v;
                        }
                        if let Some(v) = description {
                            f.description = v;
                        }
                        f.created_at = Some(now());
                        StatusCode::NO_CONTENT.into_response()
                    }
                    None => not_found(fid),
                }
            })
        }
        (&Method::DELETE, ["applications", id, "federatedIdentityCredentials", fid]) => {
            with_app(&emu, &world, &caller, id, |app| {
                let before = app.federated_credentials.len();
                app.federated_credentials
                    .retain(|f| f.id != *fid && f.name != *fid);
                if app.federated_credentials.len() == before {
                    not_found(fid)
                } else {
                    StatusCode::NO_CONTENT.into_response()
                }
            })
        }
        (&Method::POST, ["applications", id, action @ ("addPassword" | "removePassword")]) => {
            let Some(i) = find_app(&world.tenants[caller.tenant], id) else {
                return not_found(id);
            };
            if !caller.may_manage(&world, &world.tenants[caller.tenant].apps[i]) {
                return denied();
            }
            // The same operation as the backend's form, with the caller's rights checked above.
            graph::password_action(&emu, caller.tenant, i, action, &body)
        }
        (&Method::GET, ["servicePrincipals"]) => {
            let value: Vec<Value> = world.tenants[caller.tenant]
                .apps
                .iter()
                .filter(|a| !a.principal_id.is_empty())
                .filter(|a| {
                    filter.is_none_or(|f| {
                        matches_filter(
                            f,
                            &[
                                ("displayName", &a.display_name),
                                ("appId", &a.app_id),
                                ("id", &a.principal_id),
                            ],
                            &[&a.app_id],
                        )
                    })
                })
                .map(|a| service_principal_json(a, &tenant_id))
                .collect();
            list.graph(value, page_size, "servicePrincipals")
        }
        (&Method::POST, ["servicePrincipals"]) => create_service_principal(&emu, &world, &caller, &input),
        (&Method::GET, ["servicePrincipals", id]) => {
            match world.tenants[caller.tenant]
                .apps
                .iter()
                .find(|a| !a.principal_id.is_empty() && a.principal_id.eq_ignore_ascii_case(id))
            {
                Some(app) => entity("servicePrincipals", service_principal_json(app, &tenant_id)),
                None => not_found(id),
            }
        }
        // Graph v1.0 "Get servicePrincipal": `GET /servicePrincipals(appId='{appId}')` is one of
        // the documented addresses (an alternate key).
        (&Method::GET, [sp]) if sp.starts_with("servicePrincipals(appId=") => {
            match principal_by_app_segment(&world.tenants[caller.tenant], sp) {
                Some(app) => entity("servicePrincipals", service_principal_json(app, &tenant_id)),
                None => not_found(sp),
            }
        }
        (&Method::GET, [sp, "appRoleAssignments"]) if sp.starts_with("servicePrincipals(appId=") => {
            match principal_by_app_segment(&world.tenants[caller.tenant], sp) {
                Some(app) => {
                    let value: Vec<Value> = app
                        .graph_roles
                        .iter()
                        .chain(
                            app.manages_own_credentials
                                .then(|| "Application.ReadWrite.OwnedBy".to_owned())
                                .iter(),
                        )
                        .filter_map(|role| GRAPH_APP_ROLE_IDS.iter().find(|(n, _)| n == role))
                        .map(|(_, role)| app_role_assignment_json(app, role, &tenant_id))
                        .collect();
                    let context = format!("servicePrincipals('{}')/appRoleAssignments", app.principal_id);
                    list.graph(value, page_size, &context)
                }
                None => not_found(sp),
            }
        }
        (&Method::GET, [sp, "transitiveMemberOf", "microsoft.graph.directoryRole"])
            if sp.starts_with("servicePrincipals(appId=") =>
        {
            match principal_by_app_segment(&world.tenants[caller.tenant], sp) {
                Some(app) => list.graph(
                    directory_roles_json(&app.directory_roles),
                    page_size,
                    "directoryRoles",
                ),
                None => not_found(sp),
            }
        }
        (&Method::GET, ["me", "transitiveMemberOf", "microsoft.graph.directoryRole"])
            if caller.token.user =>
        {
            list.graph(
                directory_roles_json(caller.directory_roles(&world)),
                page_size,
                "directoryRoles",
            )
        }
        (&Method::GET, ["me"]) if caller.token.user => match caller.user(&world) {
            Some(u) => entity(
                "users",
                json!({"id": u.object_id, "userPrincipalName": u.user_principal_name, "displayName": u.display_name}),
            ),
            None => not_found("me"),
        },
        (_, ["me", ..]) => graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        ),
        (&Method::POST, ["directoryObjects", "getByIds"]) => {
            let ids: Vec<String> = input
                .get("ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let value: Vec<Value> = world.tenants[caller.tenant]
                .apps
                .iter()
                .filter(|a| {
                    !a.principal_id.is_empty() && ids.iter().any(|i| i.eq_ignore_ascii_case(&a.principal_id))
                })
                .map(|a| service_principal_json(a, &tenant_id))
                .collect();
            // getByIds answers at most 1,000 ids in one collection, unpaged.
            let context = format!("{}/v1.0/$metadata#directoryObjects", base_url(&headers));
            axum::Json(json!({"@odata.context": context, "value": value})).into_response()
        }
        (&Method::GET, ["policies", "authorizationPolicy"]) => {
            let tenant = &world.tenants[caller.tenant];
            entity(
                "policies/authorizationPolicy",
                json!({
                    "id": "authorizationPolicy",
                    "displayName": "Authorization Policy",
                    "defaultUserRolePermissions": {
                        "allowedToCreateApps": !tenant.users_may_not_create_apps,
                        "allowedToCreateSecurityGroups": true,
                        "allowedToReadOtherUsers": true,
                    },
                }),
            )
        }
        _ => graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Resource not found for the segment '{rest}'."),
        ),
    }
}

fn directory_roles_json(roles: &[String]) -> Vec<Value> {
    roles
        .iter()
        .map(|name| {
            let template = ROLE_TEMPLATES
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, id)| id);
            json!({"@odata.type": "#microsoft.graph.directoryRole", "id": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()), "displayName": name, "roleTemplateId": template})
        })
        .collect()
}

fn principal_by_app_segment<'t>(tenant: &'t Tenant, segment: &str) -> Option<&'t App> {
    let app_id = segment
        .strip_prefix("servicePrincipals(appId='")?
        .strip_suffix("')")?;
    tenant
        .apps
        .iter()
        .find(|a| a.app_id.eq_ignore_ascii_case(app_id) && !a.principal_id.is_empty())
}

/// Runs `f` on the app with object id `id` when the caller may manage it.
fn with_app(
    emu: &Emulator,
    world: &World,
    caller: &Caller,
    id: &str,
    f: impl FnOnce(&mut App) -> Response,
) -> Response {
    let tenant = caller.tenant;
    let Some(i) = find_app(&world.tenants[tenant], id) else {
        return not_found(id);
    };
    if !caller.may_manage(world, &world.tenants[tenant].apps[i]) {
        return denied();
    }
    let mut answer = None;
    emu.update(|w| answer = Some(f(&mut w.tenants[tenant].apps[i])));
    answer.unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn create_application(emu: &Emulator, world: &World, caller: &Caller, input: &Value) -> Response {
    if !caller.may_create_apps(world) {
        return denied();
    }
    let Some(name) = input.get("displayName").and_then(Value::as_str) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Property 'displayName' is required.",
        );
    };
    // Graph v1.0 application resource: `notes` is a string ("Notes relevant for the management of
    // the application"); the reference states no limit, so the emulator takes the stricter reading
    // of 1,024 characters (the setup script writes about 90).
    let notes = input.get("notes").and_then(Value::as_str).map(str::to_owned);
    if notes.as_ref().is_some_and(|n| n.chars().count() > 1024) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Property 'notes' exceeds 1024 characters.",
        );
    }
    let app = App {
        app_id: uuid::Uuid::new_v4().to_string(),
        object_id: uuid::Uuid::new_v4().to_string(),
        display_name: name.to_owned(),
        owners: vec![caller.token.app_id.clone()],
        notes,
        created_at: Some(now()),
        ..App::default()
    };
    let answer = application_json(&app);
    let tenant = caller.tenant;
    emu.update(|w| w.tenants[tenant].apps.push(app));
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

fn create_service_principal(emu: &Emulator, world: &World, caller: &Caller, input: &Value) -> Response {
    let app_id = input.get("appId").and_then(Value::as_str).unwrap_or_default();
    let tenant = caller.tenant;
    let Some(i) = world.tenants[tenant]
        .apps
        .iter()
        .position(|a| a.app_id.eq_ignore_ascii_case(app_id) && !a.object_id.is_empty())
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!(
                "The appId '{app_id}' of the service principal does not reference a valid application object."
            ),
        );
    };
    if !caller.may_manage(world, &world.tenants[tenant].apps[i]) {
        return denied();
    }
    if !world.tenants[tenant].apps[i].principal_id.is_empty() {
        return graph_error(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            "The service principal cannot be created, updated, or restored because the service principal name is already in use.",
        );
    }
    let mut answer = Value::Null;
    let tenant_id = world.tenants[tenant].id.clone();
    emu.update(|w| {
        let app = &mut w.tenants[tenant].apps[i];
        app.principal_id = uuid::Uuid::new_v4().to_string();
        app.principal_created_at = Some(now());
        answer = service_principal_json(app, &tenant_id);
    });
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}
