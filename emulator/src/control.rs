//! The emulator's own control routes (`/_emulator/…`): the world, behaviour, grants, requests.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::behaviour::{Behaviour, Recorded};
use super::graph::add_federated;
use super::world::{FederatedCredential, Grant, World};
use super::{Emulator, now};

pub(crate) async fn get_world(State(emu): State<Emulator>) -> axum::Json<World> {
    axum::Json(emu.world())
}

pub(crate) async fn put_world(
    State(emu): State<Emulator>,
    axum::Json(world): axum::Json<World>,
) -> StatusCode {
    emu.update(|w| *w = world);
    StatusCode::NO_CONTENT
}

pub(crate) async fn put_behaviour(
    State(emu): State<Emulator>,
    axum::Json(b): axum::Json<Behaviour>,
) -> StatusCode {
    emu.update(|w| w.behaviour = b);
    StatusCode::NO_CONTENT
}

/// Assigns a role now, as the customer does in the portal (`assignedAt` = now).
pub(crate) async fn add_grant(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    axum::Json(mut grant): axum::Json<Grant>,
) -> StatusCode {
    grant.assigned_at.get_or_insert_with(now);
    let mut found = false;
    emu.update(|w| {
        if let Some(sub) = w
            .subscriptions
            .iter_mut()
            .find(|s| s.id.eq_ignore_ascii_case(&id))
        {
            sub.grants.push(grant);
            found = true;
        }
    });
    if found {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

pub(crate) async fn get_requests(State(emu): State<Emulator>) -> axum::Json<Vec<Recorded>> {
    axum::Json(emu.requests())
}

pub(crate) async fn clear_requests(State(emu): State<Emulator>) -> StatusCode {
    emu.clear_requests();
    StatusCode::NO_CONTENT
}

/// `POST /_emulator/apps/{appId}/federated-credentials`: what the customer does in the portal
/// (App registrations > the app > Certificates & secrets > Federated credentials > Add credential).
pub(crate) async fn add_federated_credential(
    State(emu): State<Emulator>,
    Path(app_id): Path<String>,
    axum::Json(cred): axum::Json<FederatedCredential>,
) -> Response {
    let mut result = None;
    emu.update(|w| {
        let app = w
            .tenants
            .iter_mut()
            .flat_map(|t| t.apps.iter_mut())
            .find(|a| a.app_id.eq_ignore_ascii_case(&app_id));
        result = app.map(|a| add_federated(a, cred));
    });
    match result {
        Some(Ok(cred)) => (StatusCode::CREATED, axum::Json(cred)).into_response(),
        Some(Err(r)) => *r,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
