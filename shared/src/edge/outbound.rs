//! The events we publish. Built from domain values only: the secret has no way in.

use serde_json::{Value, json};

use super::problem::Problem;
use super::view::ConnectionView;
use crate::app::{AppError, Outcome, RequestMeta};
use crate::domain::{ConnectionId, OrgId, Step};
use crate::events::OutEvent;

pub const STEP_COMPLETED: &str = "Step Completed";
pub const STEP_REJECTED: &str = "Step Rejected";
pub const CONNECTION_DELETED: &str = "Connection Deleted";
pub const CUSTOM_ROLE_EXPORTED: &str = "Custom Role Exported";
pub const ACCOUNT_CONNECTED: &str = "Account Connected";
pub const CONNECTION_FAILED: &str = "Connection Failed";
pub const CLIENT_SECRET_EXPIRING: &str = "Client Secret Expiring";
pub const CLIENT_SECRET_EXPIRED: &str = "Client Secret Expired";

fn base(
    req: &RequestMeta,
    org: &OrgId,
    step: Step,
    connection: Option<ConnectionId>,
) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("orgId".into(), json!(org));
    m.insert("connectionId".into(), json!(connection));
    m.insert("step".into(), json!(step));
    m.insert("requestId".into(), json!(req.request_id));
    m.insert("trigger".into(), json!(req.trigger));
    m
}

/// The event for a successful change (the caller skips reads).
pub fn completed(
    req: &RequestMeta,
    org: &OrgId,
    step: Step,
    connection: Option<ConnectionId>,
    outcome: &Outcome,
) -> Option<OutEvent> {
    let with_view = |mut m: serde_json::Map<String, Value>, c| {
        let view = ConnectionView::from(c);
        m.insert("connectionId".into(), json!(view.connection_id));
        m.insert("accountId".into(), json!(view.account_id));
        m.insert("status".into(), json!(view.status));
        m.insert("nextStep".into(), json!(view.next_step));
        m
    };
    match outcome {
        Outcome::Created(c) => Some(OutEvent {
            detail_type: STEP_COMPLETED.into(),
            detail: Value::Object(with_view(base(req, org, step, connection), c)),
        }),
        Outcome::Current(c) => Some(OutEvent {
            detail_type: STEP_COMPLETED.into(),
            detail: Value::Object(with_view(base(req, org, step, connection), c)),
        }),
        Outcome::Deleted => Some(OutEvent {
            detail_type: CONNECTION_DELETED.into(),
            detail: Value::Object(base(req, org, step, connection)),
        }),
        Outcome::Connected(c) => {
            let mut m = with_view(base(req, org, step, connection), c);
            let view = ConnectionView::from(c);
            m.insert("tenantId".into(), json!(view.tenant_id));
            m.insert("clientId".into(), json!(view.client_id));
            m.insert("subscriptionId".into(), json!(view.subscription_id));
            m.insert(
                "secretExpiresAt".into(),
                json!(view.client_secret.and_then(|s| s.expires_at)),
            );
            m.insert("linkedAt".into(), json!(view.linked_at));
            m.insert(
                "warnings".into(),
                json!(view.validation.map(|v| v.warnings).unwrap_or_default()),
            );
            Some(OutEvent {
                detail_type: ACCOUNT_CONNECTED.into(),
                detail: Value::Object(m),
            })
        }
        Outcome::Role {
            connection: c,
            format,
            role,
        } => {
            let mut m = with_view(base(req, org, step, connection), c);
            m.insert("format".into(), json!(format));
            m.insert("role".into(), role.clone());
            Some(OutEvent {
                detail_type: CUSTOM_ROLE_EXPORTED.into(),
                detail: Value::Object(m),
            })
        }
    }
}

/// The expiry scan's announcements: a reminder, or the secret has expired.
pub fn expiry(
    req: &RequestMeta,
    org: &OrgId,
    c: &crate::domain::Connection,
    due: crate::domain::expiry::Due,
) -> OutEvent {
    use crate::domain::expiry::Due;
    let mut m = base(req, org, Step::ClientSecret, Some(c.id));
    let expires_at = c
        .client_secret
        .as_ref()
        .and_then(|s| s.expires_at)
        .map(|e| e.at());
    m.insert("accountId".into(), json!(c.account));
    m.insert("expiresAt".into(), json!(expires_at));
    let detail_type = match due {
        Due::Remind { threshold } => {
            let days_left = expires_at.map(|e| (e - req.received_at).num_days());
            m.insert("threshold".into(), json!(threshold));
            m.insert("daysLeft".into(), json!(days_left));
            CLIENT_SECRET_EXPIRING
        }
        Due::Expire | Due::Rotate => CLIENT_SECRET_EXPIRED,
    };
    OutEvent {
        detail_type: detail_type.into(),
        detail: Value::Object(m),
    }
}

/// Connect Account failed: the diagnosis, with the step to go back to.
pub fn connection_failed(
    req: &RequestMeta,
    org: &OrgId,
    connection: Option<ConnectionId>,
    diagnosis: &crate::domain::diagnosis::Diagnosis,
) -> OutEvent {
    let mut m = base(req, org, Step::RoleAssignment, connection);
    let err = AppError::Validation(Box::new(diagnosis.clone()));
    m.insert(
        "problem".into(),
        json!(Problem::from_error(&err, Step::RoleAssignment)),
    );
    OutEvent {
        detail_type: CONNECTION_FAILED.into(),
        detail: Value::Object(m),
    }
}

pub fn rejected(
    req: &RequestMeta,
    org: &OrgId,
    step: Step,
    connection: Option<ConnectionId>,
    err: &AppError,
) -> OutEvent {
    let mut m = base(req, org, step, connection);
    m.insert("problem".into(), json!(Problem::from_error(err, step)));
    OutEvent {
        detail_type: STEP_REJECTED.into(),
        detail: Value::Object(m),
    }
}
