//! A management group itself and the role assignments made at it (what the setup script's
//! `--management-group` reads): `GET /providers/Microsoft.Management/managementGroups/{name}` and
//! `GET …/{name}/providers/Microsoft.Authorization/roleAssignments[?$filter=principalId eq '…']`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Emulator;
use super::arm::arm_error;
use super::rbac::{MANAGEMENT_GROUPS, assignment_json, group_may, token_of};

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
    axum::Json(json!({ "value": value })).into_response()
}
