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
    axum::Json(grant): axum::Json<Grant>,
) -> StatusCode {
    grant_where(&emu, grant, |w| {
        w.subscriptions
            .iter_mut()
            .find(|s| s.id.eq_ignore_ascii_case(&id))
            .map(|s| &mut s.grants)
    })
}

/// `POST /_emulator/management-groups/{name}/grants`: a role granted at a group, inherited by
/// everything below it.
pub(crate) async fn add_group_grant(
    State(emu): State<Emulator>,
    Path(name): Path<String>,
    axum::Json(grant): axum::Json<Grant>,
) -> StatusCode {
    grant_where(&emu, grant, |w| {
        w.management_groups
            .iter_mut()
            .find(|g| g.name.eq_ignore_ascii_case(&name))
            .map(|g| &mut g.grants)
    })
}

/// Adds `grant` (assigned now unless it says when) to the grants `at` finds; 404 without them.
fn grant_where(
    emu: &Emulator,
    mut grant: Grant,
    at: impl FnOnce(&mut World) -> Option<&mut Vec<Grant>>,
) -> StatusCode {
    grant.assigned_at.get_or_insert_with(now);
    let mut found = false;
    emu.update(|w| {
        if let Some(grants) = at(w) {
            grants.push(grant);
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

#[derive(Debug, serde::Deserialize)]
pub(crate) struct MoveTo {
    to: String,
}

/// `POST /_emulator/subscriptions/{id}/move {"to": "<group>"}`: the subscription moves under
/// another management group (what a customer does in the portal).
pub(crate) async fn move_subscription(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    axum::Json(to): axum::Json<MoveTo>,
) -> StatusCode {
    let mut moved = false;
    emu.update(|w| moved = w.move_subscription(&id, &to.to));
    if moved {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct StateTo {
    state: String,
}

/// `PUT /_emulator/subscriptions/{id}/state {"state": "Disabled"}` (Enabled, Warned, PastDue,
/// Disabled).
pub(crate) async fn set_state(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    axum::Json(to): axum::Json<StateTo>,
) -> StatusCode {
    let mut found = false;
    emu.update(|w| {
        if let Some(s) = w
            .subscriptions
            .iter_mut()
            .find(|s| s.id.eq_ignore_ascii_case(&id))
        {
            s.state = to.state.clone();
            found = true;
        }
    });
    if found {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

/// `DELETE /_emulator/subscriptions/{id}`: the subscription is gone (from its group too).
pub(crate) async fn delete_subscription(State(emu): State<Emulator>, Path(id): Path<String>) -> StatusCode {
    let mut found = false;
    emu.update(|w| {
        let before = w.subscriptions.len();
        w.subscriptions.retain(|s| !s.id.eq_ignore_ascii_case(&id));
        found = w.subscriptions.len() != before;
        for g in &mut w.management_groups {
            g.subscriptions.retain(|s| !s.eq_ignore_ascii_case(&id));
        }
    });
    if found {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}
