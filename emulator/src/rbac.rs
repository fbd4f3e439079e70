//! ARM's access control as `az role` and `az account` use it: the subscriptions a caller sees,
//! custom role definitions (create/update by PUT, list by name, delete) and role assignments
//! (create by PUT, list, delete), with Azure's conflicts (`RoleDefinitionWithSameNameExists`,
//! `RoleAssignmentExists`), a new service principal's replication (`PrincipalNotFound`) and the
//! caller's own rights (`AuthorizationFailed`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::arm::{arm_access, arm_error, principal_of, visible_grants, visible_grants_below};
use super::entra::Token;
use super::paging::Listing;
use super::world::{RoleAssignment, RoleDefinition, Subscription, World};
use super::{Emulator, is_arm, now};

/// Whether an Azure action pattern (`*` anywhere, case-insensitive) covers `action`.
pub(crate) fn action_matches(pattern: &str, action: &str) -> bool {
    let (p, a) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == a;
    }
    let mut rest = a.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

/// Whether the caller's visible grants on `sub` permit `action`.
pub(crate) fn caller_may(world: &World, sub: &Subscription, token: &Token, action: &str) -> bool {
    visible_grants(world, sub, token).iter().any(|g| {
        g.actions.iter().any(|p| action_matches(p, action))
            && !g.not_actions.iter().any(|p| action_matches(p, action))
    })
}

pub(crate) fn refused(world: &World, token: &Token, action: &str, scope: &str) -> Response {
    let principal = principal_of(world, token);
    arm_error(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        &format!(
            "The client '{principal}' with object id '{principal}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
        ),
    )
}

pub(crate) fn definition_json(scope: &str, d: &RoleDefinition) -> Value {
    json!({
        "id": format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{}", d.id),
        "name": d.id,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": d.role_name,
            "description": d.description,
            "type": "CustomRole",
            "permissions": [{"actions": d.actions, "notActions": d.not_actions, "dataActions": d.data_actions, "notDataActions": []}],
            "assignableScopes": d.assignable_scopes,
        }
    })
}

/// A role assignment at `scope` (`/subscriptions/{id}` or a management group's id).
/// (authorization 2022-04-01 `RoleAssignment`: `createdOn` is a date-time string, never null.)
pub(crate) fn assignment_json(scope: &str, a: &RoleAssignment) -> Value {
    let mut answer = json!({
        "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", a.id),
        "name": a.id,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{}", a.role_definition_id),
            "principalId": a.principal_id,
            "principalType": a.principal_type,
            "scope": scope,
        }
    });
    if let Some(at) = a.created_at {
        answer["properties"]["createdOn"] = json!(at);
    }
    answer
}

/// What a `PUT …/roleAssignments/{id}` asks: the role definition's GUID, the principal, its type.
pub(crate) fn requested_assignment(body: &[u8]) -> (String, String, Option<String>) {
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let p = &input["properties"];
    let role = p["roleDefinitionId"]
        .as_str()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let principal = p["principalId"].as_str().unwrap_or_default().to_ascii_lowercase();
    (role, principal, p["principalType"].as_str().map(str::to_owned))
}

/// `GET /subscriptions`: the subscriptions of the caller's tenant where it holds a role, there or
/// inherited from a management group above (ARM "Subscriptions - List", 2022-12-01,
/// `subscriptions.json` in Azure/azure-rest-api-specs: `x-ms-pageable` with `nextLink`; the
/// fields of its example). The page size is not documented: `arm_page_size` (one by default, the
/// stricter reading: every reader meets a second page). A tenant-level read for ARM's
/// throttling (`throttle.rs`, via `azure.md` "Scale"). Each subscription's groups are found once
/// per request (`World::parents`): the same answer as `visible_grants`, without a scan of every
/// group's list for each subscription.
pub(crate) async fn list_subscriptions(
    State(emu): State<Emulator>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !query.contains_key("api-version") {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    let Some(token) = Token::from_headers(&headers).filter(|t| is_arm(&t.resource)) else {
        return arm_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        );
    };
    let world = emu.world();
    let parents = world.parents();
    let value: Vec<Value> = world
        .subscriptions
        .iter()
        .filter(|s| s.tenant_id.eq_ignore_ascii_case(&token.tenant))
        .filter(|s| {
            let above = parents
                .get(&s.id.to_ascii_lowercase())
                .map(|g| world.group_chain(g))
                .unwrap_or_default();
            !visible_grants_below(&world, s, &token, above).is_empty()
        })
        .map(|s| {
            json!({
                "id": format!("/subscriptions/{}", s.id),
                "subscriptionId": s.id,
                "tenantId": s.tenant_id,
                "displayName": s.display_name,
                "state": s.state,
                "authorizationSource": "RoleBased",
                "managedByTenants": [],
                "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
            })
        })
        .collect();
    let list = Listing {
        headers: &headers,
        uri: &uri,
        query: &query,
    };
    list.arm(value, world.behaviour.arm_page_size)
}

/// `/subscriptions/{id}/providers/Microsoft.Authorization/roleDefinitions[/{guid}]`.
pub(crate) async fn role_definitions(
    State(emu): State<Emulator>,
    Path(params): Path<Vec<(String, String)>>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: HashMap<String, String> = params.into_iter().collect();
    let id = params.get("id").cloned().unwrap_or_default();
    let world = emu.world();
    let (token, sub) = match arm_access(&world, &headers, &query, &id) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let scope = format!("/subscriptions/{}", sub.id);
    let role = params.get("role").cloned();
    let may = |action: &str| caller_may(&world, &sub, &token, action);
    definitions_at(
        &emu,
        &world,
        &sub.tenant_id,
        &scope,
        &may,
        &token,
        method,
        role,
        &Listing {
            headers: &headers,
            uri: &uri,
            query: &query,
        },
        &body,
    )
}

/// `/providers/Microsoft.Management/managementGroups/{group}/providers/Microsoft.Authorization/
/// roleDefinitions[/{guid}]`: custom roles at a group (one group in their assignable scopes, no
/// DataActions there, as Azure has it).
pub(crate) async fn group_role_definitions(
    State(emu): State<Emulator>,
    Path(params): Path<Vec<(String, String)>>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: HashMap<String, String> = params.into_iter().collect();
    let group = params.get("group").cloned().unwrap_or_default();
    let token = match token_of(&headers, &query) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let world = emu.world();
    let Some(g) = world
        .management_groups
        .iter()
        .find(|g| g.name.eq_ignore_ascii_case(&group) && g.tenant_id.eq_ignore_ascii_case(&token.tenant))
    else {
        return arm_error(StatusCode::NOT_FOUND, "NotFound", &format!("'{group}' not found"));
    };
    let scope = format!("{MANAGEMENT_GROUPS}/{}", g.name);
    if method == Method::PUT {
        let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let p = &input["properties"];
        let groups = p["assignableScopes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| {
                s.as_str().is_some_and(|s| {
                    s.to_ascii_lowercase()
                        .starts_with("/providers/microsoft.management/")
                })
            })
            .count();
        let data = p["permissions"][0]["dataActions"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        if groups > 1 || data {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidRoleDefinition",
                "A custom role can have one management group in its assignable scopes, and no DataActions at a management group.",
            );
        }
    }
    let role = params.get("role").cloned();
    let may = |action: &str| group_may(&world, &group, &token, action);
    definitions_at(
        &emu,
        &world,
        &token.tenant,
        &scope,
        &may,
        &token,
        method,
        role,
        &Listing {
            headers: &headers,
            uri: &uri,
            query: &query,
        },
        &body,
    )
}

/// Custom role definitions at `scope` (a subscription's or a group's), the caller's rights there
/// being `may`.
#[allow(clippy::too_many_arguments)]
fn definitions_at(
    emu: &Emulator,
    world: &World,
    tenant_id: &str,
    scope: &str,
    may: &dyn Fn(&str) -> bool,
    token: &Token,
    method: Method,
    role: Option<String>,
    list: &Listing,
    body: &[u8],
) -> Response {
    let query = list.query;
    let Some(ti) = world
        .tenants
        .iter()
        .position(|t| t.id.eq_ignore_ascii_case(tenant_id))
    else {
        return arm_error(StatusCode::NOT_FOUND, "TenantNotFound", "No tenant.");
    };
    let assignable_here =
        |d: &RoleDefinition| d.assignable_scopes.iter().any(|s| s.eq_ignore_ascii_case(scope));
    match (method, role) {
        (Method::GET, None) => {
            let filter = query.get("$filter").cloned().unwrap_or_default();
            let name = filter
                .split_once("roleName eq '")
                .and_then(|(_, r)| r.split_once('\''))
                .map(|(n, _)| n.to_owned());
            let value: Vec<Value> = world.tenants[ti]
                .role_definitions
                .iter()
                .filter(|d| assignable_here(d))
                .filter(|d| name.as_ref().is_none_or(|n| d.role_name == *n))
                .map(|d| definition_json(scope, d))
                .collect();
            list.arm(value, world.behaviour.arm_page_size)
        }
        (Method::GET, Some(role)) => match world.tenants[ti]
            .role_definitions
            .iter()
            .find(|d| d.id.eq_ignore_ascii_case(&role) && assignable_here(d))
        {
            Some(d) => axum::Json(definition_json(scope, d)).into_response(),
            None => arm_error(
                StatusCode::NOT_FOUND,
                "RoleDefinitionDoesNotExist",
                &format!("The specified role definition with ID '{role}' does not exist."),
            ),
        },
        (Method::PUT, Some(role)) => {
            if !may("Microsoft.Authorization/roleDefinitions/write") {
                return refused(
                    world,
                    token,
                    "Microsoft.Authorization/roleDefinitions/write",
                    scope,
                );
            }
            let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let p = &input["properties"];
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default()
            };
            let definition = RoleDefinition {
                id: role.to_ascii_lowercase(),
                role_name: p["roleName"].as_str().unwrap_or_default().to_owned(),
                description: p["description"].as_str().unwrap_or_default().to_owned(),
                actions: strings(&p["permissions"][0]["actions"]),
                not_actions: strings(&p["permissions"][0]["notActions"]),
                data_actions: strings(&p["permissions"][0]["dataActions"]),
                assignable_scopes: strings(&p["assignableScopes"]),
                created_at: None,
            };
            if definition.role_name.is_empty() || definition.assignable_scopes.is_empty() {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRoleDefinition",
                    "The role definition needs a roleName and at least one assignable scope.",
                );
            }
            if world.tenants[ti]
                .role_definitions
                .iter()
                .any(|d| d.role_name.eq_ignore_ascii_case(&definition.role_name) && d.id != definition.id)
            {
                return arm_error(
                    StatusCode::CONFLICT,
                    "RoleDefinitionWithSameNameExists",
                    "A custom role with the same name already exists in this directory. Use a different name.",
                );
            }
            let answer = definition_json(scope, &definition);
            emu.update(|w| {
                let defs = &mut w.tenants[ti].role_definitions;
                match defs.iter_mut().find(|d| d.id == definition.id) {
                    Some(d) => {
                        let created_at = d.created_at;
                        *d = RoleDefinition {
                            created_at,
                            ..definition
                        };
                    }
                    None => defs.push(RoleDefinition {
                        created_at: Some(now()),
                        ..definition
                    }),
                }
            });
            (StatusCode::CREATED, axum::Json(answer)).into_response()
        }
        (Method::DELETE, Some(role)) => {
            if !may("Microsoft.Authorization/roleDefinitions/delete") {
                return refused(
                    world,
                    token,
                    "Microsoft.Authorization/roleDefinitions/delete",
                    scope,
                );
            }
            let Some(d) = world.tenants[ti]
                .role_definitions
                .iter()
                .find(|d| d.id.eq_ignore_ascii_case(&role))
            else {
                return StatusCode::NO_CONTENT.into_response();
            };
            let assigned = world
                .subscriptions
                .iter()
                .flat_map(|s| &s.role_assignments)
                .chain(world.management_groups.iter().flat_map(|g| &g.role_assignments))
                .any(|a| a.role_definition_id.eq_ignore_ascii_case(&d.id));
            if assigned {
                return arm_error(
                    StatusCode::CONFLICT,
                    "RoleDefinitionHasAssignments",
                    "There are existing role assignments referencing role. Remove them first.",
                );
            }
            let answer = definition_json(scope, d);
            emu.update(|w| {
                w.tenants[ti]
                    .role_definitions
                    .retain(|x| !x.id.eq_ignore_ascii_case(&role))
            });
            axum::Json(answer).into_response()
        }
        _ => arm_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Not supported.",
        ),
    }
}

/// `PUT|GET|DELETE /subscriptions/{id}/providers/Microsoft.Authorization/roleAssignments/{guid}`.
pub(crate) async fn role_assignment(
    State(emu): State<Emulator>,
    Path((id, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let world = emu.world();
    let (token, sub) = match arm_access(&world, &headers, &query, &id) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let scope = format!("/subscriptions/{}", sub.id);
    let existing = sub
        .role_assignments
        .iter()
        .find(|a| a.id.eq_ignore_ascii_case(&name))
        .cloned();
    match method {
        Method::GET => match existing {
            Some(a) => axum::Json(assignment_json(&scope, &a)).into_response(),
            None => arm_error(
                StatusCode::NOT_FOUND,
                "RoleAssignmentNotFound",
                &format!("The role assignment '{name}' is not found."),
            ),
        },
        Method::DELETE => {
            if !caller_may(
                &world,
                &sub,
                &token,
                "Microsoft.Authorization/roleAssignments/delete",
            ) {
                return refused(
                    &world,
                    &token,
                    "Microsoft.Authorization/roleAssignments/delete",
                    &scope,
                );
            }
            let Some(a) = existing else {
                return StatusCode::NO_CONTENT.into_response();
            };
            let sid = sub.id.clone();
            emu.update(|w| {
                if let Some(s) = w.subscriptions.iter_mut().find(|s| s.id == sid) {
                    s.role_assignments.retain(|x| x.id != a.id);
                }
            });
            axum::Json(assignment_json(&scope, &a)).into_response()
        }
        Method::PUT => {
            if !caller_may(
                &world,
                &sub,
                &token,
                "Microsoft.Authorization/roleAssignments/write",
            ) {
                return refused(
                    &world,
                    &token,
                    "Microsoft.Authorization/roleAssignments/write",
                    &scope,
                );
            }
            let (role, principal, principal_type) = requested_assignment(&body);
            let tenant = world
                .tenants
                .iter()
                .find(|t| t.id.eq_ignore_ascii_case(&sub.tenant_id));
            if !tenant.is_some_and(|t| {
                t.role_definitions.iter().any(|d| {
                    d.id == role
                        && d.assignable_scopes.iter().any(|s| s.eq_ignore_ascii_case(&scope))
                        && d.replicated(&world.behaviour)
                })
            }) {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "RoleDefinitionDoesNotExist",
                    &format!("The specified role definition with ID '{role}' does not exist."),
                );
            }
            if let Err(answer) = admit_assignment(
                &world,
                &sub.tenant_id,
                &sub.role_assignments,
                existing.as_ref(),
                (&role, &principal, principal_type.as_deref()),
                &scope,
            ) {
                return *answer;
            }
            let assignment = RoleAssignment {
                id: name.to_ascii_lowercase(),
                role_definition_id: role,
                principal_id: principal,
                principal_type: principal_type.unwrap_or_else(|| "ServicePrincipal".to_owned()),
                created_at: Some(now()),
            };
            let answer = assignment_json(&scope, &assignment);
            let sid = sub.id.clone();
            emu.update(|w| {
                if let Some(s) = w.subscriptions.iter_mut().find(|s| s.id == sid) {
                    s.role_assignments.push(assignment);
                }
            });
            (StatusCode::CREATED, axum::Json(answer)).into_response()
        }
        _ => arm_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Not supported.",
        ),
    }
}

/// The role assignments ARM made at `sub`, as list entries (the backend's own reads included).
pub(crate) fn assignments_of(sub: &Subscription, principal: Option<&str>) -> Vec<Value> {
    sub.role_assignments
        .iter()
        .filter(|a| principal.is_none_or(|p| a.principal_id.eq_ignore_ascii_case(p)))
        .map(|a| assignment_json(&format!("/subscriptions/{}", sub.id), a))
        .collect()
}

/// `GET /tenants`: the caller's own tenant (what `az login` lists for a user).
pub(crate) async fn list_tenants(
    State(emu): State<Emulator>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(token) = Token::from_headers(&headers).filter(|t| is_arm(&t.resource)) else {
        return arm_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        );
    };
    let world = emu.world();
    let value: Vec<Value> = world
        .tenants
        .iter()
        .filter(|t| t.id.eq_ignore_ascii_case(&token.tenant))
        .map(|t| {
            json!({
                "id": format!("/tenants/{}", t.id),
                "tenantId": t.id,
                "tenantCategory": "Home",
                "displayName": t.domains.first().cloned().unwrap_or_default(),
                "defaultDomain": t.domains.first().cloned().unwrap_or_default(),
                "domains": t.domains,
            })
        })
        .collect();
    let list = Listing {
        headers: &headers,
        uri: &uri,
        query: &query,
    };
    list.arm(value, world.behaviour.arm_page_size)
}

pub(crate) const MANAGEMENT_GROUPS: &str = "/providers/Microsoft.Management/managementGroups";

pub(crate) fn token_of(headers: &HeaderMap, query: &HashMap<String, String>) -> Result<Token, Box<Response>> {
    if !query.contains_key("api-version") {
        return Err(Box::new(arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )));
    }
    Token::from_headers(headers)
        .filter(|t| is_arm(&t.resource))
        .ok_or_else(|| {
            Box::new(arm_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "The access token is invalid.",
            ))
        })
}

/// Whether a new role assignment may be made where `assignments` are, as ARM answers it at any
/// scope (Azure RBAC troubleshooting, "Symptom - … PrincipalNotFound" and "RoleAssignmentExists";
/// authorization 2022-04-01, `RoleAssignments_Create`):
/// - the principal must be in the directory (a new one, before it replicates, only with its
///   `principalType` given): else 400 `PrincipalNotFound`;
/// - an existing assignment of that name: the same principal and role is the same assignment
///   (201 with it), anything else 400 `RoleAssignmentUpdateNotPermitted`;
/// - the same role for the same principal under another name: 409 `RoleAssignmentExists`.
///
/// `Ok`: make it; `Err`: the answer instead.
pub(crate) fn admit_assignment(
    world: &World,
    tenant: &str,
    assignments: &[RoleAssignment],
    existing: Option<&RoleAssignment>,
    (role, principal, principal_type): (&str, &str, Option<&str>),
    scope: &str,
) -> Result<(), Box<Response>> {
    let delay = chrono::Duration::seconds(world.behaviour.principal_replication_seconds as i64);
    let directory = world.tenants.iter().find(|t| t.id.eq_ignore_ascii_case(tenant));
    let sp = directory.and_then(|t| {
        t.apps
            .iter()
            .find(|a| !a.principal_id.is_empty() && a.principal_id.eq_ignore_ascii_case(principal))
    });
    // People are principals too: a role is assigned to a user, group, service principal or
    // managed identity ("security principal", Azure RBAC overview; authorization 2022-04-01
    // `PrincipalType`: User, Group, ServicePrincipal, ForeignGroup).
    let user = directory.is_some_and(|t| {
        t.users
            .iter()
            .any(|u| u.object_id.eq_ignore_ascii_case(principal))
    });
    let replicated = user || sp.is_some_and(|a| a.principal_created_at.is_none_or(|at| at + delay <= now()));
    if (sp.is_none() && !user) || (principal_type.is_none() && !replicated) {
        return Err(Box::new(arm_error(
            StatusCode::BAD_REQUEST,
            "PrincipalNotFound",
            &format!(
                "Principal {} does not exist in the directory {}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
                principal.replace('-', ""),
                tenant
            ),
        )));
    }
    if let Some(a) = existing {
        if a.principal_id.eq_ignore_ascii_case(principal) && a.role_definition_id == role {
            return Err(Box::new(
                (StatusCode::CREATED, axum::Json(assignment_json(scope, a))).into_response(),
            ));
        }
        return Err(Box::new(arm_error(
            StatusCode::BAD_REQUEST,
            "RoleAssignmentUpdateNotPermitted",
            "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
        )));
    }
    if assignments
        .iter()
        .any(|a| a.principal_id.eq_ignore_ascii_case(principal) && a.role_definition_id == role)
    {
        return Err(Box::new(arm_error(
            StatusCode::CONFLICT,
            "RoleAssignmentExists",
            "The role assignment already exists.",
        )));
    }
    Ok(())
}

/// The grants the token's app (or user) holds at group `name`: its own and its ancestors'.
fn group_grants(world: &World, name: &str, token: &Token) -> Vec<super::world::Grant> {
    let chain = world.group_chain(name);
    super::arm::holdings(
        world,
        &token.tenant,
        token,
        chain.iter().flat_map(|g| g.grants.iter()),
        chain.iter().flat_map(|g| g.role_assignments.iter()),
    )
}

pub(crate) fn group_may(world: &World, name: &str, token: &Token, action: &str) -> bool {
    group_grants(world, name, token).iter().any(|g| {
        g.actions.iter().any(|p| action_matches(p, action))
            && !g.not_actions.iter().any(|p| action_matches(p, action))
    })
}
