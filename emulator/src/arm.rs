//! Azure Resource Manager: the subscription read and the caller's permissions on it.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::entra::Token;
use super::paging::Listing;
use super::world::{Grant, Subscription, World};
use super::{Emulator, is_arm, is_guid};

/// ARM's error body.
pub(crate) fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// The checks every ARM read makes: api-version, token, subscription id, tenant.
pub(crate) fn arm_access(
    world: &World,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    id: &str,
) -> Result<(Token, Subscription), Box<Response>> {
    if !query.contains_key("api-version") {
        return Err(Box::new(arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )));
    }
    let Some(token) = Token::from_headers(headers) else {
        return Err(Box::new(arm_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        )));
    };
    if !is_arm(&token.resource) {
        return Err(Box::new(arm_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token has been obtained for wrong audience or resource.",
        )));
    }
    if !is_guid(id) {
        return Err(Box::new(arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidSubscriptionId",
            &format!("The provided subscription identifier '{id}' is malformed or invalid."),
        )));
    }
    let Some(sub) = world.subscriptions.iter().find(|s| s.id.eq_ignore_ascii_case(id)) else {
        return Err(Box::new(arm_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{id}' could not be found."),
        )));
    };
    if !sub.tenant_id.eq_ignore_ascii_case(&token.tenant) {
        return Err(Box::new(arm_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationTokenTenant",
            "The access token is from the wrong issuer. It must match the tenant associated with this subscription.",
        )));
    }
    Ok((token, sub.clone()))
}

/// What the token's app (or user) holds among `grants` (the world's own, by app id) and
/// `assignments` (made through ARM, to its principal: their roles' actions).
pub(crate) fn holdings<'w>(
    world: &'w World,
    tenant_id: &str,
    token: &Token,
    grants: impl Iterator<Item = &'w Grant>,
    assignments: impl Iterator<Item = &'w super::world::RoleAssignment>,
) -> Vec<Grant> {
    let principal = principal_of(world, token);
    let tenant = world
        .tenants
        .iter()
        .find(|t| t.id.eq_ignore_ascii_case(tenant_id));
    let assigned = assignments
        .filter(|a| !principal.is_empty() && a.principal_id.eq_ignore_ascii_case(&principal))
        .filter_map(|a| {
            let d = tenant?
                .role_definitions
                .iter()
                .find(|d| d.id == a.role_definition_id)?;
            Some(Grant {
                app_id: token.app_id.clone(),
                role_definition_id: d.id.clone(),
                actions: d.actions.clone(),
                not_actions: d.not_actions.clone(),
                assigned_at: a.created_at,
                assignment_id: Some(a.id.clone()),
            })
        });
    grants
        .filter(|g| g.app_id.eq_ignore_ascii_case(&token.app_id))
        .cloned()
        .chain(assigned)
        .collect()
}

/// The grants of the token's app on `sub` that its token can see (propagation): the
/// subscription's and those of every management group above it.
pub(crate) fn visible_grants(world: &World, sub: &Subscription, token: &Token) -> Vec<Grant> {
    visible_grants_below(world, sub, token, world.ancestors(&sub.id))
}

/// [`visible_grants`] with the groups above `sub` already found (a list of every subscription
/// finds them once for all: `World::parents`).
pub(crate) fn visible_grants_below(
    world: &World,
    sub: &Subscription,
    token: &Token,
    ancestors: Vec<&crate::world::ManagementGroup>,
) -> Vec<Grant> {
    let delay = chrono::Duration::seconds(world.behaviour.propagation_seconds as i64);
    holdings(
        world,
        &sub.tenant_id,
        token,
        sub.grants
            .iter()
            .chain(ancestors.iter().flat_map(|g| g.grants.iter())),
        sub.role_assignments
            .iter()
            .chain(ancestors.iter().flat_map(|g| g.role_assignments.iter())),
    )
    .into_iter()
    // Tokens carry their time to the millisecond: compared at that grain.
    .filter(|g| {
        g.assigned_at
            .is_none_or(|at| token.issued.timestamp_millis() >= (at + delay).timestamp_millis())
    })
    .collect()
}

pub(crate) fn principal_of(world: &World, token: &Token) -> String {
    if token.user {
        return token.oid.clone().unwrap_or_default();
    }
    world
        .tenants
        .iter()
        .flat_map(|t| &t.apps)
        .find(|a| a.app_id.eq_ignore_ascii_case(&token.app_id))
        .map(|a| a.principal_id.clone())
        .unwrap_or_default()
}

pub(crate) async fn subscription(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let world = emu.world();
    let (token, sub) = match arm_access(&world, &headers, &query, &id) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    if visible_grants(&world, &sub, &token).is_empty() {
        let principal = principal_of(&world, &token);
        return arm_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            &format!(
                "The client '{principal}' with object id '{principal}' does not have authorization to perform action 'Microsoft.Resources/subscriptions/read' over scope '/subscriptions/{}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                sub.id
            ),
        );
    }
    axum::Json(json!({
        "id": format!("/subscriptions/{}", sub.id),
        "authorizationSource": "RoleBased",
        "subscriptionId": sub.id,
        "tenantId": sub.tenant_id,
        "displayName": sub.display_name,
        "state": sub.state,
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
    }))
    .into_response()
}

pub(crate) async fn permissions(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let world = emu.world();
    let (token, sub) = match arm_access(&world, &headers, &query, &id) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let entries: Vec<Value> = visible_grants(&world, &sub, &token)
        .iter()
        .map(|g| json!({"actions": g.actions, "notActions": g.not_actions, "dataActions": [], "notDataActions": []}))
        .collect();
    let list = Listing {
        headers: &headers,
        uri: &uri,
        query: &query,
    };
    list.arm(entries, world.behaviour.permissions_page_size)
}

/// `GET /subscriptions/{id}/providers/Microsoft.Authorization/roleAssignments`: the caller's own
/// role assignments on the subscription (as `$filter=principalId eq '{oid}'` for the caller gives),
/// each naming its role definition.
pub(crate) async fn role_assignments(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let world = emu.world();
    let list = Listing {
        headers: &headers,
        uri: &uri,
        query: &query,
    };
    let size = world.behaviour.arm_page_size;
    let (token, sub) = match arm_access(&world, &headers, &query, &id) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let principal = principal_of(&world, &token);
    let filter = query.get("$filter").map(String::as_str).unwrap_or_default();
    let asked = filter
        .split_once("principalId eq '")
        .and_then(|(_, r)| r.split_once('\''))
        .map(|(p, _)| p.to_ascii_lowercase());
    // Another principal's assignments (what `az role assignment list` asks for): ARM's own.
    if let Some(asked) = asked.as_deref().filter(|a| !a.eq_ignore_ascii_case(&principal)) {
        let value = super::rbac::assignments_of(&sub, Some(asked));
        return list.arm(value, size);
    }
    let mut value: Vec<Value> = visible_grants(&world, &sub, &token)
        .iter()
        .enumerate()
        .map(|(i, g)| {
            // A grant given as actions stands for a role of its own (one name each).
            let role = if g.role_definition_id.is_empty() {
                let key = if i == 0 { format!("{}|{}", sub.id, g.app_id) } else { format!("{}|{}|{i}", sub.id, g.app_id) };
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).to_string()
            } else {
                g.role_definition_id.clone()
            };
            let assignment = g.assignment_id.clone().unwrap_or_else(|| {
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("{}|{}|{role}", sub.id, g.app_id).as_bytes()).to_string()
            });
            json!({
                "id": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleAssignments/{assignment}", sub.id),
                "name": assignment,
                "type": "Microsoft.Authorization/roleAssignments",
                "properties": {
                    "roleDefinitionId": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role}", sub.id),
                    "principalId": principal,
                    "principalType": "ServicePrincipal",
                    "scope": format!("/subscriptions/{}", sub.id),
                }
            })
        })
        .collect();
    // Everything at the scope (`atScope()`): every principal's.
    if asked.is_none() && filter.contains("atScope()") {
        for a in super::rbac::assignments_of(&sub, None) {
            if !value.iter().any(|v| v["name"] == a["name"]) {
                value.push(a);
            }
        }
    }
    list.arm(value, size)
}
