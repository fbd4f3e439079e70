//! The emulator's own control routes (`/_emulator/…`): the world, behaviour, grants, requests.
//! Their bodies are checked as strictly as Azure checks what they stand for: an unknown or
//! missing field, a value of the wrong type or outside what Azure allows is a 400 naming the
//! field (`{"error": {"code": "InvalidControlBody", "field", "message"}}`), and nothing changes.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::behaviour::{Behaviour, Recorded};
use super::graph::{add_federated, federated_json};
use super::world::{FederatedCredential, Grant, World};
use super::{Emulator, is_guid, now};

/// A control body that does not hold: 400 naming the field.
#[derive(Debug)]
pub(crate) struct Invalid {
    field: String,
    message: String,
}

impl Invalid {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {
            "code": "InvalidControlBody",
            "field": self.field,
            "message": format!("{}: {}", self.field, self.message),
        }});
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }
}

/// A JSON object of exactly the fields `T` declares (deny_unknown_fields on each body type).
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, Invalid> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde names a missing field in its message, not in the path (an unknown one is the
        // path's last segment).
        let missing = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("missing field"));
        let field = match missing {
            Some(f) if path == "." => f.to_owned(),
            Some(f) => format!("{path}.{f}"),
            None if path == "." => "body".to_owned(),
            None => path,
        };
        let message = message.split(" at line ").next().unwrap_or_default().to_owned();
        Invalid::new(&field, message)
    })
}

fn guid(field: &str, value: &str) -> Result<(), Invalid> {
    if is_guid(value) {
        Ok(())
    } else {
        Err(Invalid::new(field, "must be a GUID"))
    }
}

fn non_empty(field: &str, values: &[String]) -> Result<(), Invalid> {
    match values.iter().position(|v| v.trim().is_empty()) {
        _ if values.is_empty() => Err(Invalid::new(field, "must hold at least one value")),
        Some(i) => Err(Invalid::new(&format!("{field}[{i}]"), "must not be empty")),
        None => Ok(()),
    }
}

/// `POST …/grants`: a role assignment as its permission entry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GrantBody {
    /// The app's client id, or a user's object id.
    app_id: String,
    actions: Vec<String>,
    #[serde(default)]
    not_actions: Vec<String>,
    #[serde(default)]
    role_definition_id: Option<String>,
    #[serde(default)]
    assigned_at: Option<DateTime<Utc>>,
}

impl GrantBody {
    /// Azure's rules for a role's permissions: actions are `{provider}/{resource}/{action}` (or
    /// `*`), at least one per role definition (roleDefinitions, Microsoft.Authorization
    /// 2022-04-01, `Permission.actions`; docs "Azure custom roles", Actions: "required").
    fn parse(bytes: &Bytes) -> Result<Grant, Invalid> {
        let b: GrantBody = body(bytes)?;
        guid("appId", &b.app_id)?;
        non_empty("actions", &b.actions)?;
        if let Some(i) = b.not_actions.iter().position(|a| a.trim().is_empty()) {
            return Err(Invalid::new(&format!("notActions[{i}]"), "must not be empty"));
        }
        if let Some(id) = &b.role_definition_id {
            guid("roleDefinitionId", id)?;
        }
        Ok(Grant {
            app_id: b.app_id,
            role_definition_id: b.role_definition_id.unwrap_or_default(),
            actions: b.actions,
            not_actions: b.not_actions,
            assigned_at: b.assigned_at,
            assignment_id: None,
        })
    }
}

pub(crate) async fn get_world(State(emu): State<Emulator>) -> axum::Json<World> {
    axum::Json(World::clone(&emu.world()))
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
    // New limits start from full buckets.
    emu.set_behaviour(b);
    StatusCode::NO_CONTENT
}

/// Assigns a role now, as the customer does in the portal (`assignedAt` = now).
pub(crate) async fn add_grant(State(emu): State<Emulator>, Path(id): Path<String>, bytes: Bytes) -> Response {
    let grant = match GrantBody::parse(&bytes) {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
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
    bytes: Bytes,
) -> Response {
    let grant = match GrantBody::parse(&bytes) {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
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
) -> Response {
    grant.assigned_at.get_or_insert_with(now);
    let mut found = false;
    emu.update(|w| {
        if let Some(grants) = at(w) {
            grants.push(grant);
            found = true;
        }
    });
    if found {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
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
    bytes: Bytes,
) -> Response {
    let cred = match FederatedBody::parse(&bytes) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
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
        Some(Ok(cred)) => (StatusCode::CREATED, axum::Json(federated_json(&cred))).into_response(),
        Some(Err(r)) => *r,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `POST …/federated-credentials`: Graph's federatedIdentityCredential as created (v1.0 API
/// reference, "Create federatedIdentityCredential": name unique per app, at most 120 characters;
/// issuer a URL of at most 600; subject at most 600; audiences required, one value, at most 600;
/// description at most 600).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FederatedBody {
    name: String,
    issuer: String,
    subject: String,
    audiences: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}

impl FederatedBody {
    fn parse(bytes: &Bytes) -> Result<FederatedCredential, Invalid> {
        let b: FederatedBody = body(bytes)?;
        let within = |field: &str, value: &str, max: usize| {
            if value.trim().is_empty() {
                Err(Invalid::new(field, "must not be empty"))
            } else if value.chars().count() > max {
                Err(Invalid::new(field, format!("at most {max} characters")))
            } else {
                Ok(())
            }
        };
        within("name", &b.name, 120)?;
        within("issuer", &b.issuer, 600)?;
        if !(b.issuer.starts_with("https://") || b.issuer.starts_with("http://")) {
            return Err(Invalid::new("issuer", "must be a URL"));
        }
        within("subject", &b.subject, 600)?;
        match b.audiences.as_slice() {
            [one] => within("audiences[0]", one, 600)?,
            _ => return Err(Invalid::new("audiences", "must hold exactly one value")),
        }
        if let Some(d) = &b.description {
            if d.chars().count() > 600 {
                return Err(Invalid::new("description", "at most 600 characters"));
            }
        }
        Ok(FederatedCredential {
            name: b.name,
            issuer: b.issuer,
            subject: b.subject,
            audiences: b.audiences,
            description: b.description,
            ..FederatedCredential::default()
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveTo {
    to: String,
}

/// `POST /_emulator/subscriptions/{id}/move {"to": "<group>"}`: the subscription moves under
/// another management group (what a customer does in the portal).
pub(crate) async fn move_subscription(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let to: MoveTo = match body(&bytes) {
        Ok(to) => to,
        Err(e) => return e.into_response(),
    };
    if to.to.trim().is_empty() {
        return Invalid::new("to", "must name a management group").into_response();
    }
    let mut moved = false;
    emu.update(|w| moved = w.move_subscription(&id, &to.to));
    if moved {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// ARM's `SubscriptionState` (subscriptions 2022-12-01, `subscriptions.json`: Enabled, Warned,
/// PastDue, Disabled, Deleted).
const SUBSCRIPTION_STATES: [&str; 5] = ["Enabled", "Warned", "PastDue", "Disabled", "Deleted"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateTo {
    state: String,
}

/// `PUT /_emulator/subscriptions/{id}/state {"state": "Disabled"}` (one of ARM's states).
pub(crate) async fn set_state(State(emu): State<Emulator>, Path(id): Path<String>, bytes: Bytes) -> Response {
    let to: StateTo = match body(&bytes) {
        Ok(to) => to,
        Err(e) => return e.into_response(),
    };
    if !SUBSCRIPTION_STATES.contains(&to.state.as_str()) {
        return Invalid::new(
            "state",
            format!("must be one of {}", SUBSCRIPTION_STATES.join(", ")),
        )
        .into_response();
    }
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
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
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
