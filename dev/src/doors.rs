//! The local server's side doors, shut as the deployment's are:
//! - it answers only to the names it listens on (`Host`): a page elsewhere that rebinds its own
//!   name to 127.0.0.1 (DNS rebinding) gets 421; it listens beyond loopback only with tokens;
//! - `POST /events` takes `Content-Type: application/json` only (415 otherwise: a form post from
//!   any web page cannot reach it);
//! - once `--dev-token`s are given, every door takes them: `POST /events` acts for the token's
//!   organization (an event naming another is refused), `POST /health-checks` needs a token, and
//!   the page's event stream (`GET /wizard/events`, where a browser's EventSource cannot send a
//!   header) needs a one-time ticket from `POST /wizard/ticket` and shows that organization's
//!   events only; the emulator's control routes (`/local/azure/emulator/…`) need a token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shared::domain::OrgId;
use shared::edge::request::token_owner;

/// How long a stream ticket may wait to be used.
const TICKET_LIFE: Duration = Duration::from_secs(60);
/// The largest console event taken (as the API's bodies).
const MAX_EVENT: usize = 16 * 1024;

/// The organization the page's event stream is for (from its ticket).
#[derive(Debug, Clone)]
pub struct StreamFor(pub OrgId);

#[derive(Debug)]
pub struct Doors {
    /// Names it answers to; `None` when it listens beyond loopback (tokens guard it then).
    hosts: Option<Vec<String>>,
    tokens: Vec<(String, OrgId)>,
    tickets: Mutex<HashMap<String, (OrgId, Instant)>>,
}

impl Doors {
    /// Refuses to listen beyond loopback without tokens.
    pub fn new(listening: SocketAddr, tokens: Vec<(String, OrgId)>) -> Result<Arc<Self>, String> {
        let hosts = if listening.ip().is_loopback() {
            let port = listening.port();
            let mut names: Vec<String> = ["localhost".to_owned(), "127.0.0.1".to_owned(), "[::1]".to_owned()]
                .into_iter()
                .chain(std::iter::once(match listening {
                    SocketAddr::V4(a) => a.ip().to_string(),
                    SocketAddr::V6(a) => format!("[{}]", a.ip()),
                }))
                .map(|h| format!("{h}:{port}"))
                .collect();
            if port == 80 {
                names.extend(["localhost", "127.0.0.1", "[::1]"].map(str::to_owned));
            }
            Some(names)
        } else if tokens.is_empty() {
            return Err(format!(
                "--listen {listening} is beyond loopback: give --dev-token TOKEN=ORG so that every route needs a token"
            ));
        } else {
            None
        };
        Ok(Arc::new(Self {
            hosts,
            tokens,
            tickets: Mutex::new(HashMap::new()),
        }))
    }

    fn bearer(&self, req: &Request) -> Option<OrgId> {
        let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
        token_owner(&self.tokens, value.strip_prefix("Bearer ")?.trim()).cloned()
    }

    fn ticket(&self, org: OrgId) -> String {
        let ticket = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        if let Ok(mut t) = self.tickets.lock() {
            t.retain(|_, (_, at)| at.elapsed() < TICKET_LIFE);
            t.insert(ticket.clone(), (org, Instant::now()));
        }
        ticket
    }

    /// A ticket's organization: once, within its life.
    fn redeem(&self, ticket: &str) -> Option<OrgId> {
        let (org, at) = self.tickets.lock().ok()?.remove(ticket)?;
        (at.elapsed() < TICKET_LIFE).then_some(org)
    }
}

fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("urn:azure-connect:problem:{code}"),
        "status": status.as_u16(),
        "code": code,
        "title": status.canonical_reason(),
        "detail": detail,
        "retryable": false,
    });
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

fn unauthenticated() -> Response {
    problem(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "This server takes tokens (--dev-token): send Authorization: Bearer <token>.",
    )
}

pub async fn guard(State(doors): State<Arc<Doors>>, req: Request, next: Next) -> Response {
    if let Some(hosts) = &doors.hosts {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return problem(
                StatusCode::MISDIRECTED_REQUEST,
                "host-not-served",
                "This server answers to the loopback name and address it listens on only.",
            );
        }
    }
    let guarded = !doors.tokens.is_empty();
    match (req.method().clone(), req.uri().path()) {
        (Method::POST, "/events") => events(&doors, req, next).await,
        (Method::POST, "/health-checks") if guarded && doors.bearer(&req).is_none() => unauthenticated(),
        // The emulator's world changes only for a token's holder once tokens are given.
        (_, path)
            if guarded && path.starts_with("/local/azure/emulator/") && doors.bearer(&req).is_none() =>
        {
            unauthenticated()
        }
        (Method::POST, "/wizard/ticket") => match doors.bearer(&req) {
            Some(org) => {
                axum::Json(json!({"ticket": doors.ticket(org), "expiresInSeconds": TICKET_LIFE.as_secs()}))
                    .into_response()
            }
            None if !guarded => problem(
                StatusCode::NOT_FOUND,
                "route-not-found",
                "No tokens, no tickets: the stream is open.",
            ),
            None => unauthenticated(),
        },
        (Method::GET, "/wizard/events") if guarded => {
            let ticket = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ticket=")))
                .map(str::to_owned);
            match ticket.and_then(|t| doors.redeem(&t)) {
                Some(org) => {
                    let mut req = req;
                    req.extensions_mut().insert(StreamFor(org));
                    next.run(req).await
                }
                None => unauthenticated(),
            }
        }
        _ => next.run(req).await,
    }
}

async fn events(doors: &Doors, req: Request, next: Next) -> Response {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send the event as application/json.",
        );
    }
    if doors.tokens.is_empty() {
        return next.run(req).await;
    }
    let Some(org) = doors.bearer(&req) else {
        return unauthenticated();
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_EVENT).await else {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The body is larger than 16 KiB.",
        );
    };
    let Ok(mut event) = serde_json::from_slice::<Value>(&bytes) else {
        // Not JSON: the console door says why.
        return next.run(Request::from_parts(parts, Body::from(bytes))).await;
    };
    match event["detail"].get("orgId").and_then(Value::as_str) {
        Some(named) if named != org.as_str() => {
            return problem(
                StatusCode::FORBIDDEN,
                "console-event-refused",
                "The event names another organization than its token's.",
            );
        }
        _ => {}
    }
    if let Some(detail) = event.get_mut("detail").and_then(Value::as_object_mut) {
        detail.insert("orgId".to_owned(), Value::String(org.to_string()));
    }
    next.run(Request::from_parts(parts, Body::from(event.to_string())))
        .await
}
