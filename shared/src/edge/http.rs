//! The HTTP API: one axum router, served by the Lambda functions (through lambda_http) and by the
//! local server alike. Parsing, the organization, rejections and responses are handled here once;
//! the routes only say which body and which operation.

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use serde::Deserialize;

use super::error::EdgeError;
use super::function::Function;
use super::input::{
    self, AppRegistrationBody, ClientSecretBody, CredentialTypeBody, RotationBody, StartBody,
    SubscriptionBody,
};
pub use super::request::OrgSource;
use super::request::{ApiState, Caller, RawBody, json_response, problem_response, read_body};
use super::respond::{put_step, respond, success_response};
use super::{console, spot};
use crate::app::{App, FieldError, Operation};
use crate::domain::{RoleFormat, Step};

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
    (Function::Subscription, "PUT", "/connections/{id}/scope"),
    (Function::Subscription, "GET", "/connections/{id}/subscriptions"),
    (
        Function::Subscription,
        "PUT",
        "/connections/{id}/subscriptions/{subscriptionId}",
    ),
    (Function::CustomRole, "GET", "/connections/{id}/custom-role"),
    (Function::ConnectAccount, "POST", "/connections/{id}/connect"),
    (
        Function::FederatedCredential,
        "PUT",
        "/connections/{id}/credential-type",
    ),
    (
        Function::FederatedCredential,
        "GET",
        "/connections/{id}/federated-credential",
    ),
    (Function::Issuer, "GET", "/oidc/.well-known/openid-configuration"),
    (Function::Issuer, "GET", "/oidc/jwks"),
    (Function::Setup, "POST", "/connections/{id}/setup-command"),
    (Function::Setup, "GET", "/setup/plan"),
    (Function::Setup, "POST", "/setup/report"),
    (Function::SetupScript, "GET", "/setup/scripts/azure-connect.sh"),
];

/// The router of the given functions' routes (the local server passes them all).
pub fn router(app: App, org: OrgSource, functions: &[Function]) -> Router {
    let mut r = Router::<ApiState>::new();
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
            Function::Subscription => r
                .route(
                    "/connections/{id}/subscription",
                    put(put_step::<SubscriptionBody>),
                )
                .merge(super::estate::routes()),
            Function::CustomRole => r.route("/connections/{id}/custom-role", get(get_custom_role)),
            Function::ConnectAccount => r.route("/connections/{id}/connect", post(connect_account)),
            Function::FederatedCredential => r
                .route(
                    "/connections/{id}/credential-type",
                    put(put_step::<CredentialTypeBody>),
                )
                .route(
                    "/connections/{id}/federated-credential",
                    get(get_federated_credential),
                ),
            Function::Issuer => r
                .route(
                    "/oidc/.well-known/openid-configuration",
                    get(openid_configuration),
                )
                .route("/oidc/jwks", get(jwks)),
            // Served by its own router (Spot's envelope), merged below.
            Function::SpotCredentials => r,
            Function::Setup => r.merge(super::setup::routes()),
            Function::SetupScript => r.route(super::setup::SCRIPT_PATH, get(super::setup::script)),
        };
    }
    let state = ApiState::new(app, org);
    let r = if functions.contains(&Function::SpotCredentials) {
        r.merge(spot::routes())
    } else {
        r
    };
    r.fallback(|| async { problem_response(&EdgeError::NoRoute, Step::Start) })
        .method_not_allowed_fallback(|| async { problem_response(&EdgeError::MethodNotAllowed, Step::Start) })
        .with_state(state)
        .layer(middleware::from_fn(log_requests))
}

/// Adds `POST /events`: console events in the shape of an EventBridge entry (`source`,
/// `detail-type`, `detail`), for trying the event path without EventBridge (local server).
pub fn with_console_events(
    router: Router,
    app: App,
    gate: console::ConsoleGate,
    functions: &'static [Function],
) -> Router {
    let events = Router::new()
        .route("/events", post(console_event))
        .with_state(ConsoleState { app, gate, functions });
    router.merge(events)
}

#[derive(Debug, Clone)]
struct ConsoleState {
    app: App,
    gate: console::ConsoleGate,
    functions: &'static [Function],
}

async fn console_event(State(s): State<ConsoleState>, req: Request) -> Response {
    let step = Step::Start;
    let parsed = match read_body(req).await {
        Ok(bytes) => input::parse_json::<console::ConsoleEvent>(&bytes),
        Err(e) => Err(e),
    };
    let event = match parsed {
        Ok(event) => event,
        Err(e) => return problem_response(&e, step),
    };
    let detail_type = event.detail_type.clone();
    match console::handle(&s.app, &s.gate, s.functions, event).await {
        Ok(outcome) => success_response(outcome),
        Err(e) => problem_response(&e, console::step_of(&detail_type)),
    }
}

async fn create_connection(State(app): State<App>, caller: Caller, body: RawBody) -> Response {
    let caller = caller.with_body(&body);
    respond(&app, caller, Step::Start, None, |_| {
        let bytes = body.0?;
        let body = input::parse_json::<StartBody>(&bytes)?;
        Ok(Operation::Start {
            account: body.account()?,
            connection: None,
            credential: body.credential()?,
        })
    })
    .await
}

async fn read_connection(State(app): State<App>, caller: Caller, Path(id): Path<String>) -> Response {
    respond(&app, caller, Step::Start, Some(&id), |_| {
        Ok(Operation::Read {
            connection: input::connection_id(&id)?,
        })
    })
    .await
}

async fn delete_connection(State(app): State<App>, caller: Caller, Path(id): Path<String>) -> Response {
    respond(&app, caller, Step::Start, Some(&id), |_| {
        Ok(Operation::Delete {
            connection: input::connection_id(&id)?,
        })
    })
    .await
}

/// "Connect Account": no body (an empty JSON object is accepted too).
async fn connect_account(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: RawBody,
) -> Response {
    let caller = caller.with_body(&body);
    respond(&app, caller, Step::RoleAssignment, Some(&id), |_| {
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

async fn get_federated_credential(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    respond(&app, caller, Step::FederatedCredential, Some(&id), |_| {
        Ok(Operation::ExportFederatedCredential {
            connection: input::connection_id(&id)?,
        })
    })
    .await
}

/// Our issuer's OpenID configuration: what Entra ID fetches first (no authentication, public).
async fn openid_configuration(State(app): State<App>) -> Response {
    match app.issuer() {
        Some(issuer) => public_json(&issuer.discovery()),
        None => problem_response(&EdgeError::NoRoute, Step::FederatedCredential),
    }
}

/// Our issuer's public keys (the first signs; all verify).
async fn jwks(State(app): State<App>) -> Response {
    match app.issuer() {
        Some(issuer) => public_json(&issuer.jwks()),
        None => problem_response(&EdgeError::NoRoute, Step::FederatedCredential),
    }
}

/// Public, cacheable for a few minutes (a new key is published well before it signs).
fn public_json(body: &serde_json::Value) -> Response {
    let mut r = json_response(StatusCode::OK, body);
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

#[derive(Debug, Deserialize)]
struct RoleQuery {
    format: Option<String>,
}

async fn get_custom_role(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<RoleQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    respond(&app, caller, Step::CustomRole, Some(&id), |_| {
        let connection = input::connection_id(&id)?;
        let bad_format = || EdgeError::invalid(vec![FieldError::new("format", "must be portal or cli")]);
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
