//! Management groups: the list and its pages, a group itself, its descendants, the rights held at
//! a group (inherited from the groups above), and the role assignments made at it (what the setup
//! script's `--management-group` reads and writes):
//! `GET /providers/Microsoft.Management/managementGroups[/{name}[/descendants]]` and
//! `…/{name}/providers/Microsoft.Authorization/roleAssignments[/{name}]`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::arm::arm_error;
use super::paging::Listing;
use super::rbac::{
    MANAGEMENT_GROUPS, admit_assignment, assignment_json, group_may, refused, requested_assignment, token_of,
};
use super::world::RoleAssignment;
use super::{Emulator, now};

/// The group, to a caller that may read it (`Microsoft.Management/managementGroups/read` at the
/// group or above); 403 otherwise, 404 when there is no such group in the caller's tenant.
pub(crate) async fn group(
    State(emu): State<Emulator>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = match token_of(&headers, &query) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let world = emu.world();
    let Some(g) = world
        .management_groups
        .iter()
        .find(|g| g.name.eq_ignore_ascii_case(&name) && g.tenant_id.eq_ignore_ascii_case(&token.tenant))
    else {
        return arm_error(StatusCode::NOT_FOUND, "NotFound", &format!("'{name}' not found"));
    };
    if !group_may(
        &world,
        &g.name,
        &token,
        "Microsoft.Management/managementGroups/read",
    ) {
        return arm_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            &format!(
                "The client does not have authorization to perform action 'Microsoft.Management/managementGroups/read' over scope '{MANAGEMENT_GROUPS}/{}'.",
                g.name
            ),
        );
    }
    axum::Json(json!({
        "id": format!("{MANAGEMENT_GROUPS}/{}", g.name),
        "type": "Microsoft.Management/managementGroups",
        "name": g.name,
        "properties": {"tenantId": g.tenant_id, "displayName": g.display_name},
    }))
    .into_response()
}

/// The role assignments made at the group (by ARM), optionally of one principal.
pub(crate) async fn group_role_assignments(
    State(emu): State<Emulator>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let token = match token_of(&headers, &query) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let world = emu.world();
    let Some(g) = world
        .management_groups
        .iter()
        .find(|g| g.name.eq_ignore_ascii_case(&name) && g.tenant_id.eq_ignore_ascii_case(&token.tenant))
    else {
        return arm_error(StatusCode::NOT_FOUND, "NotFound", &format!("'{name}' not found"));
    };
    let principal = query
        .get("$filter")
        .and_then(|f| f.split_once("principalId eq '"))
        .and_then(|(_, r)| r.split_once('\''))
        .map(|(p, _)| p.to_ascii_lowercase());
    let scope = format!("{MANAGEMENT_GROUPS}/{}", g.name);
    let value: Vec<_> = g
        .role_assignments
        .iter()
        .filter(|a| {
            principal
                .as_deref()
                .is_none_or(|p| a.principal_id.eq_ignore_ascii_case(p))
        })
        .map(|a| assignment_json(&scope, a))
        .collect();
    let list = Listing {
        headers: &headers,
        uri: &uri,
        query: &query,
    };
    list.arm(value, world.behaviour.arm_page_size)
}

/// `GET /providers/Microsoft.Management/managementGroups`: the caller's tenant's groups
/// (`az account management-group list --no-register`), paged.
pub(crate) async fn list_management_groups(
    State(emu): State<Emulator>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let token = match token_of(&headers, &query) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let world = emu.world();
    let items: Vec<Value> = world
        .management_groups
        .iter()
        .filter(|g| g.tenant_id.eq_ignore_ascii_case(&token.tenant))
        .map(|g| {
            json!({
                "id": format!("{MANAGEMENT_GROUPS}/{}", g.name),
                "type": "Microsoft.Management/managementGroups",
                "name": g.name,
                "properties": {"tenantId": g.tenant_id, "displayName": g.display_name},
            })
        })
        .collect();
    let list = Listing {
        headers: &headers,
        uri: &uri,
        query: &query,
    };
    list.arm(items, world.behaviour.management_groups_page_size)
}

/// `GET /providers/Microsoft.Management/managementGroups/{name}/descendants`: every group and
/// subscription below, subscriptions typed `/subscriptions` as the live service answers.
pub(crate) async fn descendants(
    State(emu): State<Emulator>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let token = match token_of(&headers, &query) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let world = emu.world();
    let find = |n: &str| {
        world
            .management_groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(n) && g.tenant_id.eq_ignore_ascii_case(&token.tenant))
    };
    let Some(root) = find(&name) else {
        return arm_error(StatusCode::NOT_FOUND, "NotFound", &format!("'{name}' not found"));
    };
    // Reading what is below a group is an action of its own, granted at the group or above.
    if !group_may(
        &world,
        &root.name,
        &token,
        "Microsoft.Management/managementGroups/descendants/read",
    ) {
        return arm_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            &format!(
                "The client does not have authorization to perform action 'Microsoft.Management/managementGroups/descendants/read' over scope '{MANAGEMENT_GROUPS}/{}'.",
                root.name
            ),
        );
    }
    let subscription_type = if world.behaviour.descendants_typed_as_documented {
        "Microsoft.Management/managementGroups/subscriptions"
    } else {
        "/subscriptions"
    };
    // Display names by id, once per request (a group may hold tens of thousands).
    let names: HashMap<String, &str> = world
        .subscriptions
        .iter()
        .map(|s| (s.id.to_ascii_lowercase(), s.display_name.as_str()))
        .collect();
    let mut items = Vec::new();
    let mut queue = vec![root];
    while let Some(g) = queue.pop() {
        let parent = json!({"id": format!("{MANAGEMENT_GROUPS}/{}", g.name)});
        for sub in &g.subscriptions {
            let display = names
                .get(&sub.to_ascii_lowercase())
                .map(|n| (*n).to_owned())
                .unwrap_or_default();
            items.push(json!({
                "id": format!("/subscriptions/{sub}"),
                "type": subscription_type,
                "name": sub,
                "properties": {"displayName": display, "parent": parent},
            }));
        }
        for child in &g.children {
            if let Some(c) = find(child) {
                items.push(json!({
                    "id": format!("{MANAGEMENT_GROUPS}/{}", c.name),
                    "type": "Microsoft.Management/managementGroups",
                    "name": c.name,
                    "properties": {"displayName": c.display_name, "parent": parent},
                }));
                queue.push(c);
            }
        }
    }
    let list = Listing {
        headers: &headers,
        uri: &uri,
        query: &query,
    };
    list.arm(items, world.behaviour.management_groups_page_size)
}

/// `PUT|GET|DELETE /providers/Microsoft.Management/managementGroups/{name}/providers/
/// Microsoft.Authorization/roleAssignments/{guid}`: a role assigned at a group, inherited by every
/// subscription below it. The role must be assignable at the group (or a group above it).
pub(crate) async fn group_role_assignment(
    State(emu): State<Emulator>,
    Path((group, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = match token_of(&headers, &query) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let world = emu.world();
    let Some(gi) = world
        .management_groups
        .iter()
        .position(|g| g.name.eq_ignore_ascii_case(&group) && g.tenant_id.eq_ignore_ascii_case(&token.tenant))
    else {
        return arm_error(StatusCode::NOT_FOUND, "NotFound", &format!("'{group}' not found"));
    };
    let scope = format!("{MANAGEMENT_GROUPS}/{}", world.management_groups[gi].name);
    let existing = world.management_groups[gi]
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
                "The role assignment is not found.",
            ),
        },
        Method::DELETE => {
            if !group_may(
                &world,
                &group,
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
            emu.update(|w| w.management_groups[gi].role_assignments.retain(|x| x.id != a.id));
            axum::Json(assignment_json(&scope, &a)).into_response()
        }
        Method::PUT => {
            if !group_may(
                &world,
                &group,
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
            // Assignable here when one of its scopes is this group or a group above it.
            let above: Vec<String> = world
                .group_chain(&group)
                .iter()
                .map(|g| format!("{MANAGEMENT_GROUPS}/{}", g.name).to_ascii_lowercase())
                .collect();
            let tenant = world
                .tenants
                .iter()
                .find(|t| t.id.eq_ignore_ascii_case(&token.tenant));
            let assignable = tenant.is_some_and(|t| {
                t.role_definitions.iter().any(|d| {
                    d.id == role
                        && d.assignable_scopes
                            .iter()
                            .any(|s| above.contains(&s.to_ascii_lowercase()))
                        && d.replicated(&world.behaviour)
                })
            });
            if !assignable {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "RoleDefinitionDoesNotExist",
                    &format!(
                        "The specified role definition with ID '{role}' does not exist at scope '{scope}'."
                    ),
                );
            }
            // The same answers as at a subscription (ARM's role assignments are one API whatever
            // the scope: authorization 2022-04-01, roleAssignmentsCalls.json).
            if let Err(answer) = admit_assignment(
                &world,
                &token.tenant,
                &world.management_groups[gi].role_assignments,
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
            emu.update(|w| w.management_groups[gi].role_assignments.push(assignment));
            (StatusCode::CREATED, axum::Json(answer)).into_response()
        }
        _ => arm_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Not supported.",
        ),
    }
}
