//! The HTTP API: one axum router, served by the Lambda functions (through lambda_http) and by the
//! local server alike. Parsing, the organization, rejections and responses are handled here once;
//! the routes only say which body and which operation.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::input::{
    self, AppRegistrationBody, ClientSecretBody, MAX_BODY_BYTES, RotationBody, StartBody, StepInput,
    SubscriptionBody,
};
use super::problem::{self, Problem};
use super::view::ConnectionView;
use super::{Function, spot};
use crate::app::{App, AppError, FieldError, InputProblem, Operation, Outcome, RequestMeta, Trigger};
use crate::domain::{OrgId, RoleFormat, Step};

/// Where the organization of a request comes from.
#[derive(Debug, Clone)]
pub enum OrgSource {
    /// A header set by a trusted front (the local server: `X-Org-Id`).
    Header(HeaderName),
    /// A claim of the HTTP API's JWT authorizer (Lambda).
    JwtClaim(String),
    /// `Authorization: Bearer <token>` looked up in a table (the local server's `--dev-token`).
    BearerTokens(Arc<std::collections::HashMap<String, OrgId>>),
}

impl OrgSource {
    pub fn local_header() -> Self {
        Self::Header(HeaderName::from_static("x-org-id"))
    }
}

#[derive(Debug, Clone)]
struct HttpState {
    app: App,
    org: Arc<OrgSource>,
}

/// Every HTTP route as (function, method, path): what [`router`] serves, and what the drift tests
/// hold `openapi.yaml` and `template.yaml` against.
pub const ROUTES: &[(Function, &str, &str)] = &[
    (Function::Connections, "POST", "/connections"),
    (Function::Connections, "GET", "/connections/{id}"),
    (Function::Connections, "DELETE", "/connections/{id}"),
    (
        Function::AppRegistration,
        "PUT",
        "/connections/{id}/app-registration",
    ),
    (Function::ClientSecret, "PUT", "/connections/{id}/client-secret"),
    (Function::ClientSecret, "PUT", "/connections/{id}/rotation"),
    (Function::Subscription, "PUT", "/connections/{id}/subscription"),
    (Function::CustomRole, "GET", "/connections/{id}/custom-role"),
    (Function::ConnectAccount, "POST", "/connections/{id}/connect"),
];

/// The router of the given functions' routes (the local server passes them all).
pub fn router(app: App, org: OrgSource, functions: &[Function]) -> Router {
    let mut r = Router::new();
    for f in functions {
        r = match f {
            Function::Connections => r.route("/connections", post(create_connection)).route(
                "/connections/{id}",
                get(read_connection).delete(delete_connection),
            ),
            Function::AppRegistration => r.route(
                "/connections/{id}/app-registration",
                put(put_step::<AppRegistrationBody>),
            ),
            Function::ClientSecret => r
                .route(
                    "/connections/{id}/client-secret",
                    put(put_step::<ClientSecretBody>),
                )
                .route("/connections/{id}/rotation", put(put_step::<RotationBody>)),
            Function::Subscription => r.route(
                "/connections/{id}/subscription",
                put(put_step::<SubscriptionBody>),
            ),
            Function::CustomRole => r.route("/connections/{id}/custom-role", get(get_custom_role)),
            Function::ConnectAccount => r.route("/connections/{id}/connect", post(connect_account)),
            // Served by its own router (Spot's envelope), merged below.
            Function::SpotCredentials => r,
        };
    }
    let spot = functions
        .contains(&Function::SpotCredentials)
        .then(|| spot::router(app.clone(), org.clone()));
    let r = r
        .fallback(|| async { problem_response(&AppError::NoRoute, Step::Start) })
        .method_not_allowed_fallback(|| async { problem_response(&AppError::MethodNotAllowed, Step::Start) })
        .with_state(HttpState {
            app,
            org: Arc::new(org),
        });
    let r = match spot {
        Some(spot) => r.merge(spot),
        None => r,
    };
    r.layer(middleware::from_fn(log_requests))
}

/// Adds `POST /events`: console events in the shape of an EventBridge entry (`source`,
/// `detail-type`, `detail`), for trying the event path without EventBridge (local server).
pub fn with_console_events(router: Router, app: App, functions: &'static [Function]) -> Router {
    let events = Router::new()
        .route("/events", post(console_event))
        .with_state(ConsoleState { app, functions });
    router.merge(events)
}

#[derive(Debug, Clone)]
struct ConsoleState {
    app: App,
    functions: &'static [Function],
}

async fn console_event(State(s): State<ConsoleState>, req: Request) -> Response {
    let step = Step::Start;
    let parsed = match read_body(req).await {
        Ok(bytes) => input::parse_json::<super::console::ConsoleEvent>(&bytes),
        Err(e) => Err(e),
    };
    let event = match parsed {
        Ok(event) => event,
        Err(e) => return problem_response(&e, step),
    };
    let detail_type = event.detail_type.clone();
    match super::console::handle(&s.app, s.functions, event).await {
        Ok(outcome) => success_response(outcome),
        Err(e) => problem_response(&e, super::console::step_of(&detail_type)),
    }
}

/// The caller: who (organization) and which request. Never rejects; a missing organization is
/// reported by [`HttpState::respond`] so that it is logged like every other problem.
pub(crate) struct Caller {
    pub(crate) org: Result<OrgId, AppError>,
    pub(crate) req: RequestMeta,
}

impl FromRequestParts<HttpState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, &state.org))
    }
}

impl Caller {
    pub(crate) fn of(parts: &Parts, source: &OrgSource) -> Self {
        let lambda = lambda_context(parts);
        let org = match source {
            OrgSource::Header(name) => parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            OrgSource::JwtClaim(claim) => lambda
                .and_then(|c| c.authorizer.as_ref())
                .and_then(|a| a.jwt.as_ref())
                .and_then(|j| j.claims.get(claim))
                .cloned(),
            OrgSource::BearerTokens(tokens) => parts
                .headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .and_then(|t| tokens.get(t.trim()))
                .map(|o| o.to_string()),
        };
        let org = org
            .and_then(|o| OrgId::parse(&o).ok())
            .ok_or(AppError::Unauthenticated);
        let request_id = idempotency_key(&parts.headers)
            .or_else(|| lambda.and_then(|c| c.request_id.clone()))
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let received_at = lambda
            .and_then(|c| DateTime::<Utc>::from_timestamp_millis(c.time_epoch))
            .filter(|t| t.timestamp() > 0)
            .unwrap_or_else(Utc::now);
        Self {
            org,
            req: RequestMeta {
                request_id,
                received_at,
                trigger: Trigger::Http,
            },
        }
    }
}

fn lambda_context(parts: &Parts) -> Option<&aws_lambda_events::apigw::ApiGatewayV2httpRequestContext> {
    match parts.extensions.get::<lambda_http::request::RequestContext>() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => Some(c),
        _ => None,
    }
}

/// A client's `Idempotency-Key` (1 to 64 of `A-Za-z0-9-_.`) makes its retries safe end to end.
fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("idempotency-key")?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then(|| v.to_owned())
}

/// The raw body, read up to the limit. Never rejects: errors become problems in the handler.
struct RawBody(Result<Zeroizing<Vec<u8>>, AppError>);

impl FromRequest<HttpState> for RawBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, _: &HttpState) -> Result<Self, Self::Rejection> {
        Ok(Self(read_body(req).await))
    }
}

pub(crate) async fn read_body(req: Request) -> Result<Zeroizing<Vec<u8>>, AppError> {
    let json = req.headers().get(CONTENT_TYPE).is_none_or(|ct| {
        ct.to_str()
            .map(|s| {
                let essence = s.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            })
            .unwrap_or(false)
    });
    if !json {
        return Err(AppError::input(
            InputProblem::UnsupportedMediaType,
            vec![FieldError::new("content-type", "must be application/json")],
        ));
    }
    let too_large = || {
        AppError::input(
            InputProblem::BodyTooLarge,
            vec![FieldError::new(
                "body",
                format!("is larger than {MAX_BODY_BYTES} bytes"),
            )],
        )
    };
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES);
    let bytes = limited.collect().await.map_err(|_| too_large())?.to_bytes();
    Ok(Zeroizing::new(bytes.to_vec()))
}

impl HttpState {
    /// The one path of every route: organization, parse, execute, respond; every failure is
    /// published and answered as a problem document.
    async fn respond(
        &self,
        caller: Caller,
        step: Step,
        raw_id: Option<&str>,
        parse: impl FnOnce(&RequestMeta) -> Result<Operation, AppError>,
    ) -> Response {
        let req = caller.req;
        let connection = raw_id.and_then(|id| input::connection_id(id).ok());
        let org = match caller.org {
            Ok(org) => org,
            Err(e) => {
                self.app.reject(&req, None, step, connection, &e).await;
                return problem_response(&e, step);
            }
        };
        let op = match parse(&req) {
            Ok(op) => op,
            Err(e) => {
                self.app.reject(&req, Some(&org), step, connection, &e).await;
                return problem_response(&e, step);
            }
        };
        match self.app.execute(&req, &org, op).await {
            Ok(outcome) => success_response(outcome),
            Err(e) => problem_response(&e, step),
        }
    }
}

pub(crate) fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn success_response(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Created(c) => {
            let mut r = json_response(StatusCode::CREATED, &ConnectionView::from(&c));
            if let Ok(v) = HeaderValue::from_str(&format!("/connections/{}", c.id)) {
                r.headers_mut().insert(LOCATION, v);
            }
            r
        }
        Outcome::Current(c) | Outcome::Connected(c) => {
            json_response(StatusCode::OK, &ConnectionView::from(&c))
        }
        Outcome::Deleted => StatusCode::NO_CONTENT.into_response(),
        Outcome::Role { role, .. } => json_response(StatusCode::OK, &role),
    }
}

/// The one mapping from errors to HTTP responses.
pub fn problem_response(err: &AppError, step: Step) -> Response {
    let p = Problem::from_error(err, step);
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json_response(status, &p);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(problem::CONTENT_TYPE));
    if p.status == 503 {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

async fn create_connection(State(s): State<HttpState>, caller: Caller, body: RawBody) -> Response {
    s.respond(caller, Step::Start, None, |_| {
        let bytes = body.0?;
        let account = input::parse_json::<StartBody>(&bytes)?.account()?;
        Ok(Operation::Start {
            account,
            connection: None,
        })
    })
    .await
}

async fn read_connection(State(s): State<HttpState>, caller: Caller, Path(id): Path<String>) -> Response {
    s.respond(caller, Step::Start, Some(&id), |_| {
        Ok(Operation::Read {
            connection: input::connection_id(&id)?,
        })
    })
    .await
}

async fn delete_connection(State(s): State<HttpState>, caller: Caller, Path(id): Path<String>) -> Response {
    s.respond(caller, Step::Start, Some(&id), |_| {
        Ok(Operation::Delete {
            connection: input::connection_id(&id)?,
        })
    })
    .await
}

/// `PUT /connections/{id}/<step>`: the body `B` becomes that step's command.
async fn put_step<B: StepInput>(
    State(s): State<HttpState>,
    caller: Caller,
    Path(id): Path<String>,
    body: RawBody,
) -> Response {
    s.respond(caller, B::STEP, Some(&id), |req| {
        let connection = input::connection_id(&id)?;
        let command = input::parse_json::<B>(&body.0?)?.into_command(req.received_at)?;
        Ok(Operation::Submit { connection, command })
    })
    .await
}

/// "Connect Account": no body (an empty JSON object is accepted too).
async fn connect_account(
    State(s): State<HttpState>,
    caller: Caller,
    Path(id): Path<String>,
    body: RawBody,
) -> Response {
    s.respond(caller, Step::RoleAssignment, Some(&id), |_| {
        let connection = input::connection_id(&id)?;
        let bytes = body.0?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Empty {}
            let _: Empty = input::parse_json(&bytes)?;
        }
        Ok(Operation::Connect { connection })
    })
    .await
}

#[derive(Debug, Deserialize)]
struct RoleQuery {
    format: Option<String>,
}

async fn get_custom_role(
    State(s): State<HttpState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<RoleQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    s.respond(caller, Step::CustomRole, Some(&id), |_| {
        let connection = input::connection_id(&id)?;
        let bad_format = || AppError::invalid(vec![FieldError::new("format", "must be portal or cli")]);
        let format = match query.map_err(|_| bad_format())?.0.format {
            None => RoleFormat::default(),
            Some(f) => RoleFormat::parse(&f).ok_or_else(bad_format)?,
        };
        Ok(Operation::ExportRole { connection, format })
    })
    .await
}

/// One JSON log line per request: method, path, status, latency. Never bodies, queries or headers.
async fn log_requests(req: Request<Body>, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "http request"
    );
    response
}
