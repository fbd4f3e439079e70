//! Microsoft Graph: an application's password credentials (read, add, remove).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::entra::Token;
use super::paging::Listing;
use super::world::{FederatedCredential, Password, World};
use super::{Emulator, is_graph, now};

pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"code": code, "message": message, "innerError": {"request-id": uuid::Uuid::new_v4()}}})))
        .into_response()
}

/// What a Graph call needs of the caller's application permissions (its token's `roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// The Graph caller's access to `applications(appId='…')`: its own app with
/// `Application.ReadWrite.OwnedBy` as its owner (read and write), any app with
/// `Application.ReadWrite.All` (read and write) or `Application.Read.All` (read only). Returns
/// (tenant index, app index).
pub(crate) fn graph_access(
    world: &World,
    segment: &str,
    headers: &HeaderMap,
    access: Access,
) -> Result<(usize, usize), Box<Response>> {
    let Some(app_id) = segment
        .strip_prefix("applications(appId='")
        .and_then(|s| s.strip_suffix("')"))
    else {
        return Err(Box::new(graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Resource not found for the segment.",
        )));
    };
    let Some(token) = Token::from_headers(headers).filter(|t| is_graph(&t.resource)) else {
        return Err(Box::new(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
        )));
    };
    let Some(ti) = world
        .tenants
        .iter()
        .position(|t| t.id.eq_ignore_ascii_case(&token.tenant))
    else {
        return Err(Box::new(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Unknown tenant.",
        )));
    };
    let tenant = &world.tenants[ti];
    let Some(ai) = tenant
        .apps
        .iter()
        .position(|a| a.app_id.eq_ignore_ascii_case(app_id))
    else {
        return Err(Box::new(graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{app_id}' does not exist."),
        )));
    };
    let app = &tenant.apps[ai];
    let owner = app.app_id.eq_ignore_ascii_case(&token.app_id)
        && app.manages_own_credentials
        && token.has_role("Application.ReadWrite.OwnedBy");
    let allowed = owner
        || token.has_role("Application.ReadWrite.All")
        || (access == Access::Read && token.has_role("Application.Read.All"));
    if !allowed {
        return Err(Box::new(graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )));
    }
    Ok((ti, ai))
}

pub(crate) fn password_json(p: &Password, with_secret: bool) -> Value {
    json!({
        "customKeyIdentifier": null,
        "keyId": p.key_id,
        "displayName": p.display_name,
        "hint": p.secret_text.chars().take(3).collect::<String>(),
        "startDateTime": p.start_date_time,
        "endDateTime": p.end_date_time,
        "secretText": if with_secret { Value::String(p.secret_text.clone()) } else { Value::Null },
    })
}

/// `GET /v1.0/applications(appId='{appId}')`: the app's password credentials, no secret texts.
pub(crate) async fn graph_application(
    State(emu): State<Emulator>,
    Path(segment): Path<String>,
    headers: HeaderMap,
) -> Response {
    let world = emu.world();
    let (ti, ai) = match graph_access(&world, &segment, &headers, Access::Read) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let app = &world.tenants[ti].apps[ai];
    let creds: Vec<Value> = app.passwords.iter().map(|p| password_json(p, false)).collect();
    axum::Json(json!({"id": app.object_id, "appId": app.app_id, "passwordCredentials": creds}))
        .into_response()
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct GraphAction {
    password_credential: Option<NewPassword>,
    key_id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct NewPassword {
    display_name: Option<String>,
    end_date_time: Option<DateTime<Utc>>,
}

/// A federated identity credential as Graph v1.0 answers it (`federatedIdentityCredential`:
/// `id`, `name`, `issuer`, `subject`, `audiences`, `description`; clean_v10_metadata), without
/// what the emulator keeps of its own (when it was added).
pub(crate) fn federated_json(f: &FederatedCredential) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "issuer": f.issuer,
        "subject": f.subject,
        "audiences": f.audiences,
        "description": f.description,
    })
}

/// `GET /v1.0/applications(appId='…')/federatedIdentityCredentials`, paged.
pub(crate) async fn graph_list(
    State(emu): State<Emulator>,
    Path((segment, collection)): Path<(String, String)>,
    headers: HeaderMap,
    list: &Listing<'_>,
) -> Response {
    let world = emu.world();
    let (ti, ai) = match graph_access(&world, &segment, &headers, Access::Read) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    if collection != "federatedIdentityCredentials" {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Resource not found for the segment.",
        );
    }
    let app = &world.tenants[ti].apps[ai];
    let items = app.federated_credentials.iter().map(federated_json).collect();
    let context = format!("applications('{}')/federatedIdentityCredentials", app.object_id);
    list.graph(items, world.behaviour.graph_page_size, &context)
}

/// `DELETE /v1.0/applications(appId='…')/federatedIdentityCredentials/{id or name}`.
pub(crate) async fn graph_delete_federated(
    State(emu): State<Emulator>,
    Path((segment, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let world = emu.world();
    let (ti, ai) = match graph_access(&world, &segment, &headers, Access::Write) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let mut found = false;
    emu.update(|w| {
        let creds = &mut w.tenants[ti].apps[ai].federated_credentials;
        let before = creds.len();
        creds.retain(|f| f.id != id && f.name != id);
        found = creds.len() != before;
    });
    if found {
        StatusCode::NO_CONTENT.into_response()
    } else {
        graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "Resource does not exist.",
        )
    }
}

/// Adds a federated credential to an app as Graph validates it (name unique, at most 20).
pub(crate) fn add_federated(
    app: &mut super::world::App,
    mut cred: FederatedCredential,
) -> Result<FederatedCredential, Box<Response>> {
    if cred.name.is_empty() || cred.issuer.is_empty() || cred.subject.is_empty() || cred.audiences.is_empty()
    {
        return Err(Box::new(graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "name, issuer, subject and audiences are required.",
        )));
    }
    if app.federated_credentials.iter().any(|f| f.name == cred.name) {
        return Err(Box::new(graph_error(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            "FederatedIdentityCredential with name already exists.",
        )));
    }
    if app.federated_credentials.len() >= 20 {
        return Err(Box::new(graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "An application can have at most 20 federated identity credentials.",
        )));
    }
    cred.id = uuid::Uuid::new_v4().to_string();
    app.federated_credentials.push(cred.clone());
    Ok(cred)
}

/// `POST /v1.0/applications(appId='…')/addPassword` and `/removePassword`.
pub(crate) async fn graph_action(
    State(emu): State<Emulator>,
    Path((segment, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let world = emu.world();
    let (ti, ai) = match graph_access(&world, &segment, &headers, Access::Write) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    match action.as_str() {
        "federatedIdentityCredentials" => {
            let Ok(cred) = serde_json::from_slice::<FederatedCredential>(&body) else {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "Invalid request body.",
                );
            };
            let mut result = None;
            emu.update(|w| result = Some(add_federated(&mut w.tenants[ti].apps[ai], cred)));
            match result {
                Some(Ok(cred)) => (StatusCode::CREATED, axum::Json(federated_json(&cred))).into_response(),
                Some(Err(r)) => *r,
                None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
        _ => password_action(&emu, ti, ai, &action, &body),
    }
}

/// `addPassword` / `removePassword` on the app at (tenant, app) indexes, rights already checked.
pub(crate) fn password_action(emu: &Emulator, ti: usize, ai: usize, action: &str, body: &[u8]) -> Response {
    let world = emu.world();
    let input: GraphAction = serde_json::from_slice(body).unwrap_or_default();
    match action {
        "addPassword" => {
            let now = now();
            let want = input.password_credential.unwrap_or_default();
            // Azure's current format: 3 characters, "8Q~", then 34 URL-safe characters.
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
            let mut seed = uuid::Uuid::new_v4().as_u128() ^ (uuid::Uuid::new_v4().as_u128() << 7);
            let mut pick = || {
                let c = alphabet[(seed % alphabet.len() as u128) as usize] as char;
                seed /= alphabet.len() as u128;
                if seed < 1_000_000 {
                    seed ^= uuid::Uuid::new_v4().as_u128();
                }
                c
            };
            let head: String = (0..3).map(|_| pick()).collect();
            let tail: String = (0..34).map(|_| pick()).collect();
            let delay = chrono::Duration::seconds(world.behaviour.new_secret_delay_seconds as i64);
            let password = Password {
                key_id: uuid::Uuid::new_v4().to_string(),
                display_name: want.display_name.unwrap_or_default(),
                secret_text: format!("{head}8Q~{tail}"),
                start_date_time: Some(now + delay),
                end_date_time: Some(want.end_date_time.unwrap_or(now + chrono::Duration::days(730))),
            };
            let answer = password_json(&password, true);
            emu.update(|w| w.tenants[ti].apps[ai].passwords.push(password));
            axum::Json(answer).into_response()
        }
        "removePassword" => {
            let key = input.key_id.unwrap_or_default();
            let mut found = false;
            emu.update(|w| {
                let passwords = &mut w.tenants[ti].apps[ai].passwords;
                let before = passwords.len();
                passwords.retain(|p| !p.key_id.eq_ignore_ascii_case(&key));
                found = passwords.len() != before;
            });
            if found {
                StatusCode::NO_CONTENT.into_response()
            } else {
                graph_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidValue",
                    &format!("No password credential found with keyId {key}."),
                )
            }
        }
        _ => graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Unsupported action."),
    }
}
