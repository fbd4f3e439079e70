//! The one-command setup over HTTP: `POST /connections/{id}/setup-command` (the console's caller,
//! as every wizard route) hands out the command; the script, holding the command's token as
//! `Authorization: Bearer`, reads `GET /setup/plan` and posts `POST /setup/report`; the script
//! itself is `GET /setup/scripts/azure-connect.sh` (public, one file for everyone).
//!
//! The script's two routes answer in lines of `key=value` (`text/plain`), problems included,
//! so that plain bash reads them without jq. A token that is not the connection's current one,
//! expired, or unreadable is refused with 401 before any body is read.

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HOST, X_CONTENT_TYPE_OPTIONS};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::EdgeError;
use super::input::{self, secret_error};
use super::problem::Problem;
use super::request::{ApiState, Caller, json_response, problem_response, read_body};
use crate::app::events::SetupFailure;
use crate::app::setup::{SetupAdmission, SetupAnswer, SetupPlan, SetupReport};
use crate::app::{App, AppError, FieldError};
use crate::domain::setup::{
    OrganizationName, SCRIPT_STEPS, SetupAccess, SetupPhase, SetupPurpose, SetupToken, SetupTokenError,
};
use crate::domain::{ClientId, ClientSecret, ManagementGroupId, Scope, Step, SubscriptionId, TenantId};

/// The script, one static file for everyone.
pub const SCRIPT: &str = include_str!("../../data/azure-connect.sh");
pub const SCRIPT_PATH: &str = "/setup/scripts/azure-connect.sh";

/// The `setup` function's routes (the script is `setup-script`'s).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/connections/{id}/setup-command", post(issue))
        .route("/setup/plan", get(plan))
        .route("/setup/report", post(report))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SetupCommandView {
    command: String,
    script_url: String,
    expires_at: String,
}

/// `POST /connections/{id}/setup-command` body (optional): what the command is for, and the
/// organization's display name the script shows before asking for consent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CommandBody {
    #[serde(default, deserialize_with = "input::present")]
    purpose: Option<String>,
    #[serde(default, deserialize_with = "input::present")]
    organization_name: Option<String>,
}

/// `POST /connections/{id}/setup-command`: a body is optional.
async fn issue(State(app): State<App>, caller: Caller, Path(id): Path<String>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let step = Step::Start;
    let connection = input::connection_id(&id).ok();
    let org = match caller.org {
        Ok(org) => org,
        Err(e) => {
            app.reject(&caller.req, None, step, connection, &e).await;
            return problem_response(&e, step);
        }
    };
    let parsed = async {
        let connection = input::connection_id(&id)?;
        let bytes = read_body(Request::from_parts(parts.clone(), body)).await?;
        let body: CommandBody = if bytes.iter().all(u8::is_ascii_whitespace) {
            CommandBody::default()
        } else {
            input::parse_json(&bytes)?
        };
        let purpose = match body.purpose.as_deref() {
            None => SetupPurpose::Connect,
            Some(p) => SetupPurpose::parse(p).ok_or_else(|| {
                EdgeError::invalid(vec![FieldError::new("purpose", "must be connect or uninstall")])
            })?,
        };
        let name = body
            .organization_name
            .as_deref()
            .map(OrganizationName::parse)
            .transpose()
            .map_err(|e| EdgeError::invalid(vec![FieldError::new("organizationName", e)]))?;
        Ok::<_, EdgeError>((connection, purpose, name))
    };
    let (id, purpose, organization_name) = match parsed.await {
        Ok(id) => id,
        Err(e) => {
            app.reject(&caller.req, Some(&org), step, connection, &e).await;
            return problem_response(&e, step);
        }
    };
    match app
        .issue_setup(&caller.req, &org, &id, purpose, organization_name)
        .await
    {
        Ok(issued) => {
            let base = app
                .public_api_url()
                .map_or_else(|| public_base(&parts), str::to_owned);
            let script_url = format!("{base}{SCRIPT_PATH}");
            let view = SetupCommandView {
                // A leading space: shells that ignore such lines in their history (bash's
                // `ignorespace`/`ignoreboth`, Debian's and Cloud Shell's default .bashrc) do not
                // keep the token there.
                command: format!(
                    " curl -fsSL {script_url} | bash -s -- --token {} --api {base}{}",
                    issued.token.expose(),
                    match issued.purpose {
                        SetupPurpose::Connect => "",
                        SetupPurpose::Uninstall => " --uninstall",
                    }
                ),
                script_url,
                expires_at: issued.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            };
            json_response(StatusCode::CREATED, &view)
        }
        Err(e) => problem_response(&e.into(), step),
    }
}

/// Where this API is reached: API Gateway's domain (HTTPS), else the Host the request came to
/// (the local server, plain HTTP).
fn public_base(parts: &Parts) -> String {
    let lambda = match parts.extensions.get::<lambda_http::request::RequestContext>() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.domain_name.clone(),
        _ => None,
    };
    match lambda {
        Some(domain) => format!("https://{domain}"),
        None => {
            let host = parts
                .headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| {
                    h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
                })
                .unwrap_or("127.0.0.1");
            format!("http://{host}")
        }
    }
}

/// The setup token of `Authorization: Bearer`.
fn bearer(parts: &Parts) -> Result<SetupToken, AppError> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AppError::SetupToken(SetupTokenError::Malformed))
        .and_then(|t| SetupToken::parse(t).map_err(AppError::SetupToken))
}

async fn admit(app: &App, parts: &Parts, now: DateTime<Utc>) -> Result<SetupAdmission, AppError> {
    let token = bearer(parts)?;
    app.setup_access(&token, now).await
}

#[derive(Debug, Deserialize)]
struct PlanQuery {
    subscription: Option<String>,
    #[serde(rename = "managementGroup")]
    management_group: Option<String>,
}

/// `GET /setup/plan[?subscription=ID]`.
async fn plan(
    State(app): State<App>,
    caller: Caller,
    query: Result<Query<PlanQuery>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> Response {
    let (parts, _) = req.into_parts();
    let admission = match admit(&app, &parts, caller.req.received_at).await {
        Ok(ok) => ok,
        Err(e) => return problem_lines(&e.into()),
    };
    let query = query.ok().map(|q| q.0);
    let target = match query.map(|q| (q.subscription, q.management_group)) {
        None | Some((None, None)) => None,
        Some((Some(raw), None)) => match SubscriptionId::parse(&raw) {
            Ok(s) => Some(Scope::Subscription(s)),
            Err(e) => return problem_lines(&EdgeError::invalid(vec![FieldError::new("subscription", e)])),
        },
        Some((None, Some(raw))) => match ManagementGroupId::parse(&raw) {
            Ok(g) => Some(Scope::ManagementGroup(g)),
            Err(e) => return problem_lines(&EdgeError::invalid(vec![FieldError::new("managementGroup", e)])),
        },
        Some((Some(_), Some(_))) => {
            return problem_lines(&EdgeError::invalid(vec![FieldError::new(
                "query",
                "names a subscription or a management group, not both",
            )]));
        }
    };
    lines(StatusCode::OK, &plan_lines(&app.setup_plan(&admission, target)))
}

fn plan_lines(p: &SetupPlan) -> Vec<(&'static str, String)> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let mut out = vec![
        ("connection", p.connection.to_string()),
        ("organization_id", p.organization.to_string()),
        (
            "organization_name",
            p.organization_name.clone().unwrap_or_default(),
        ),
        ("account_id", p.account.to_string()),
        ("purpose", p.purpose.as_str().to_owned()),
        ("status", p.status.as_str().to_owned()),
        (
            "token",
            match p.access {
                SetupAccess::Active => "active",
                SetupAccess::Spent => "spent",
            }
            .to_owned(),
        ),
        ("credential_type", p.credential_type.as_str().to_owned()),
        ("tenant_id", opt(p.tenant.as_ref().map(ToString::to_string))),
        ("client_id", opt(p.client.map(|c| c.to_string()))),
        ("subscription_id", opt(p.subscription.map(|s| s.to_string()))),
        (
            "management_group_id",
            opt(p.management_group.as_ref().map(ToString::to_string)),
        ),
        ("app_name", p.app_name.clone()),
        ("app_notes", p.app_notes.clone()),
        ("script_version", p.script_version.to_owned()),
    ];
    if let Some(f) = &p.federated {
        out.extend([
            ("federated_name", f.name.clone()),
            ("federated_issuer", f.issuer.clone()),
            ("federated_subject", f.subject.clone()),
            ("federated_audience", f.audience.to_owned()),
        ]);
    }
    if let Some(r) = &p.role {
        out.extend([
            ("role_target_type", r.target.kind().to_owned()),
            ("role_target", r.target.id()),
            ("role_name", r.name.clone()),
            ("role_description", r.description.to_owned()),
            ("role_scope", r.scope.clone()),
            ("role_actions", r.actions.join(" ")),
            ("assignment_name", r.assignment_name.to_string()),
        ]);
    }
    out
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReportBody {
    phase: String,
    script_version: String,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    subscription_id: Option<String>,
    #[serde(default)]
    management_group_id: Option<String>,
    #[serde(default)]
    application_object_id: Option<String>,
    #[serde(default)]
    service_principal_id: Option<String>,
    #[serde(default)]
    role_definition_id: Option<String>,
    #[serde(default)]
    role_assignment_id: Option<String>,
    #[serde(default)]
    client_secret: Option<SecretString>,
    #[serde(default)]
    failure: Option<FailureBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailureBody {
    phase: String,
    code: String,
}

fn short_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

impl ReportBody {
    fn parse(self) -> Result<SetupReport, EdgeError> {
        let mut errors = Vec::new();
        let phase = SetupPhase::parse(&self.phase);
        if phase.is_none() {
            errors.push(FieldError::new(
                "phase",
                "must be one of started, checked, application, credential, role, assignment, done, failed, uninstalled",
            ));
        }
        if !short_token(&self.script_version, 16) {
            errors.push(FieldError::new(
                "scriptVersion",
                "must be 1 to 16 of A-Z a-z 0-9 - . _",
            ));
        }
        let mut field = |name: &'static str, raw: Option<String>, parse: fn(&str) -> Result<(), String>| {
            if let Some(raw) = raw {
                if let Err(e) = parse(&raw) {
                    errors.push(FieldError::new(name, e));
                }
            }
        };
        let guid = |s: &str| ClientId::parse(s).map(|_| ()).map_err(|e| e.to_string());
        field("applicationObjectId", self.application_object_id, guid);
        field("servicePrincipalId", self.service_principal_id, guid);
        field("roleDefinitionId", self.role_definition_id, guid);
        field("roleAssignmentId", self.role_assignment_id, guid);
        let tenant = self
            .tenant_id
            .map(|t| TenantId::parse(&t).map_err(|e| FieldError::new("tenantId", e)))
            .transpose();
        let client = self
            .client_id
            .map(|c| ClientId::parse(&c).map_err(|e| FieldError::new("clientId", e)))
            .transpose();
        let subscription = self
            .subscription_id
            .map(|s| SubscriptionId::parse(&s).map_err(|e| FieldError::new("subscriptionId", e)))
            .transpose();
        let group = self
            .management_group_id
            .map(|g| ManagementGroupId::parse(&g).map_err(|e| FieldError::new("managementGroupId", e)))
            .transpose();
        let secret = self
            .client_secret
            .map(|s| ClientSecret::parse(s).map_err(|e| secret_error("clientSecret", e)))
            .transpose();
        let failure = match self.failure {
            Some(f) if SCRIPT_STEPS.contains(&f.phase.as_str()) && short_token(&f.code, 64) => {
                Some(SetupFailure {
                    phase: f.phase,
                    code: f.code,
                })
            }
            Some(_) => {
                errors.push(FieldError::new(
                    "failure",
                    "must name the step (checks, application, credential, role, assignment, connect, uninstall) and a code of 1 to 64 of A-Z a-z 0-9 - . _",
                ));
                None
            }
            None => None,
        };
        let (tenant, client, subscription, group, secret) =
            match (tenant, client, subscription, group, secret) {
                (Ok(t), Ok(c), Ok(s), Ok(g), Ok(k)) if errors.is_empty() => (t, c, s, g, k),
                (t, c, s, g, k) => {
                    errors.extend(
                        t.err()
                            .into_iter()
                            .chain(c.err())
                            .chain(s.err())
                            .chain(g.err())
                            .chain(k.err()),
                    );
                    return Err(EdgeError::invalid(errors));
                }
            };
        Ok(SetupReport {
            phase: phase.ok_or_else(|| EdgeError::invalid(vec![]))?,
            script_version: self.script_version,
            tenant,
            client,
            subscription,
            management_group: group,
            client_secret: secret,
            failure,
        })
    }
}

/// `POST /setup/report`.
async fn report(State(app): State<App>, caller: Caller, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let admission = match admit(&app, &parts, caller.req.received_at).await {
        Ok(ok) => ok,
        Err(e) => return problem_lines(&e.into()),
    };
    let report = async {
        let bytes = read_body(Request::from_parts(parts, body)).await?;
        input::parse_json::<ReportBody>(&bytes)?.parse()
    };
    let report = match report.await {
        Ok(r) => r,
        Err(e) => {
            app.reject(
                &caller.req,
                Some(&admission.connection().org),
                Step::Start,
                Some(admission.connection().id),
                &e,
            )
            .await;
            return problem_lines(&e);
        }
    };
    match app.setup_report(&caller.req, admission, report).await {
        Ok(SetupAnswer::Connected(c)) | Ok(SetupAnswer::Noted(c)) => lines(
            StatusCode::OK,
            &[
                ("status", c.status.as_str().to_owned()),
                ("credential_type", c.credential_type.as_str().to_owned()),
                (
                    "next_step",
                    c.next_step().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                ),
            ],
        ),
        Ok(SetupAnswer::Removed) => lines(StatusCode::OK, &[("status", "deleted".to_owned())]),
        Err(e) => problem_lines(&e.into()),
    }
}

/// The script: public, the same for everyone, cacheable for a few minutes.
pub(super) async fn script() -> Response {
    (
        StatusCode::OK,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/x-shellscript; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        SCRIPT,
    )
        .into_response()
}

/// `key=value` lines; a value never spans lines.
fn lines(status: StatusCode, pairs: &[(&str, String)]) -> Response {
    let mut text = String::new();
    for (k, v) in pairs {
        text.push_str(k);
        text.push('=');
        text.push_str(&v.replace(['\r', '\n'], " "));
        text.push('\n');
    }
    (
        status,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        text,
    )
        .into_response()
}

/// The one problem mapping, in lines (`code=`, `title=`, `detail=`, `step=`, `retryable=`,
/// `retryAfter=`, `missingActions=` space-separated, ...).
fn problem_lines(err: &EdgeError) -> Response {
    let p = Problem::of(err, Step::Start);
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Ok(Value::Object(map)) = serde_json::to_value(&p) {
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s,
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                Value::Null => continue,
                other => other.to_string(),
            };
            pairs.push((k, text));
        }
    }
    if let Some(after) = p.rejection.retry_after {
        pairs.push(("retry_after".to_owned(), after.as_secs().max(1).to_string()));
    }
    let borrowed: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut r = lines(p.status_code(), &borrowed);
    if let Some(after) = p.rejection.retry_after {
        if let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string()) {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
    }
    r
}
