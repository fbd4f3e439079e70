//! An Azure emulator: the Entra ID token and OpenID endpoints, Azure Resource Manager's subscription
//! and permissions reads, and Graph's application password credentials, with Microsoft's wire
//! formats and error bodies. Driven by a JSON [`World`] (tenants, apps, secrets with expiry,
//! subscriptions, role grants) and [`Behaviour`] switches (latency, throttling, outage, delayed
//! propagation). Login, ARM and Graph share one listener: their paths do not overlap.
//!
//! Control endpoints (not Azure's): `GET|PUT /_emulator/world`, `PUT /_emulator/behaviour`,
//! `GET /_emulator/requests` (every request received, bodies included), `DELETE /_emulator/requests`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Resource ids (token scopes without `/.default`) of the clouds' ARM and Graph.
pub const ARM_RESOURCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.usgovcloudapi.net",
    "https://management.chinacloudapi.cn",
];
pub const GRAPH_RESOURCES: &[&str] = &[
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct World {
    pub tenants: Vec<Tenant>,
    pub subscriptions: Vec<Subscription>,
    pub behaviour: Behaviour,
}

impl World {
    /// The usual small world: one tenant (GUID and one verified domain) with one app knowing
    /// `secrets`, and one enabled subscription of that tenant where the app holds a role granting
    /// `actions` (`None`: no role assigned).
    pub fn single(
        tenant: &str,
        domain: &str,
        app_id: &str,
        secrets: &[&str],
        subscription: &str,
        actions: Option<Vec<String>>,
    ) -> Self {
        Self {
            tenants: vec![Tenant {
                id: tenant.into(),
                domains: vec![domain.into()],
                apps: vec![App {
                    app_id: app_id.into(),
                    passwords: secrets
                        .iter()
                        .map(|s| Password {
                            secret_text: (*s).into(),
                            ..Password::default()
                        })
                        .collect(),
                    ..App::default()
                }],
                blocked_apps: vec![],
            }],
            subscriptions: vec![Subscription {
                id: subscription.into(),
                tenant_id: tenant.into(),
                display_name: "Subscription".into(),
                state: "Enabled".into(),
                grants: actions
                    .map(|actions| Grant {
                        app_id: app_id.into(),
                        actions,
                        ..Grant::default()
                    })
                    .into_iter()
                    .collect(),
            }],
            behaviour: Behaviour::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Tenant {
    pub id: String,
    /// Verified domains, e.g. contoso.onmicrosoft.com.
    pub domains: Vec<String>,
    pub apps: Vec<App>,
    /// App ids that a Conditional Access policy blocks (AADSTS53003).
    pub blocked_apps: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct App {
    pub app_id: String,
    /// Object id of the application (Graph `id`).
    pub object_id: String,
    /// Object id of its service principal (what ARM names in AuthorizationFailed).
    pub principal_id: String,
    pub display_name: String,
    pub disabled: bool,
    /// Owns itself with `Application.ReadWrite.OwnedBy`: may read and manage its credentials.
    pub manages_own_credentials: bool,
    pub passwords: Vec<Password>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Password {
    pub key_id: String,
    pub display_name: String,
    /// The secret value (`secretText`, shown by Azure only once).
    pub secret_text: String,
    pub start_date_time: Option<DateTime<Utc>>,
    pub end_date_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subscription {
    pub id: String,
    pub tenant_id: String,
    pub display_name: String,
    /// Enabled | Warned | PastDue | Disabled | Deleted
    pub state: String,
    pub grants: Vec<Grant>,
}

/// A role assigned to an app on the subscription, as its permission entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Grant {
    pub app_id: String,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    /// When it was assigned; with [`Behaviour::propagation_seconds`], tokens issued before it
    /// became visible do not see it.
    pub assigned_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Behaviour {
    /// Added to every Azure answer.
    pub latency_ms: u64,
    /// Answer the next N Azure requests with 429 (and Retry-After).
    pub throttle_next: u32,
    pub retry_after_seconds: u64,
    /// Answer every Azure request with 503.
    pub outage: bool,
    /// A grant is visible to tokens issued at least this long after its assignment.
    pub propagation_seconds: u64,
    /// Entries per page of the permissions list (nextLink paging).
    pub permissions_page_size: usize,
    /// A password added through Graph is accepted by the token endpoint only after this long.
    pub new_secret_delay_seconds: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            throttle_next: 0,
            retry_after_seconds: 1,
            outage: false,
            propagation_seconds: 0,
            permissions_page_size: 2,
            new_secret_delay_seconds: 0,
        }
    }
}

/// A request as received (for tests: what was sent where).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Default)]
struct Inner {
    world: World,
    requests: Vec<Recorded>,
}

#[derive(Debug, Clone, Default)]
pub struct Emulator {
    inner: Arc<Mutex<Inner>>,
}

impl Emulator {
    pub fn new(world: World) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                world,
                requests: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn world(&self) -> World {
        self.lock().world.clone()
    }

    /// Changes the world in place (e.g. assign a role now).
    pub fn update(&self, f: impl FnOnce(&mut World)) {
        f(&mut self.lock().world);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/{tenant}/v2.0/.well-known/openid-configuration", get(openid))
            .route("/subscriptions/{id}", get(subscription))
            .route(
                "/subscriptions/{id}/providers/Microsoft.Authorization/permissions",
                get(permissions),
            )
            .route("/v1.0/{app}", get(graph_application))
            .route("/v1.0/{app}/{action}", post(graph_action))
            .layer(middleware::from_fn_with_state(self.clone(), azure_behaviour))
            .route("/_emulator/world", get(get_world).put(put_world))
            .route("/_emulator/behaviour", put(put_behaviour))
            .route("/_emulator/subscriptions/{id}/grants", post(add_grant))
            .route("/_emulator/requests", get(get_requests))
            .route("/_emulator/requests", delete(clear_requests))
            .with_state(self.clone())
    }

    /// Serves on `addr` (port 0: any free port) in the background; returns the bound address.
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "emulator stopped");
            }
        });
        Ok(bound)
    }
}

/// Records every Azure request, then applies latency, outage and throttling.
async fn azure_behaviour(State(emu): State<Emulator>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let behaviour = {
        let mut inner = emu.lock();
        inner.requests.push(Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or("").to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        });
        let b = inner.world.behaviour.clone();
        if inner.world.behaviour.throttle_next > 0 {
            inner.world.behaviour.throttle_next -= 1;
        }
        b
    };
    if behaviour.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(behaviour.latency_ms)).await;
    }
    let is_login = parts.uri.path().contains("/oauth2/") || parts.uri.path().contains("/.well-known/");
    if behaviour.outage {
        return if is_login {
            (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
        } else {
            arm_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The service is temporarily unavailable.",
            )
        };
    }
    if behaviour.throttle_next > 0 {
        let retry = [(header::RETRY_AFTER, behaviour.retry_after_seconds.to_string())];
        return if is_login {
            (StatusCode::TOO_MANY_REQUESTS, retry, "Too Many Requests").into_response()
        } else {
            let mut r = arm_error(
                StatusCode::TOO_MANY_REQUESTS,
                "SubscriptionRequestsThrottled",
                "Number of requests for subscription exceeded the limit.",
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                retry[0]
                    .1
                    .parse()
                    .unwrap_or(header::HeaderValue::from_static("1")),
            );
            r
        };
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn is_guid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

fn find_tenant<'a>(world: &'a World, id: &str) -> Option<&'a Tenant> {
    let id = id.to_ascii_lowercase();
    world
        .tenants
        .iter()
        .find(|t| t.id.eq_ignore_ascii_case(&id) || t.domains.iter().any(|d| d.eq_ignore_ascii_case(&id)))
}

/// Entra ID's error body.
fn aad_error(status: StatusCode, error: &str, code: u32, message: &str) -> Response {
    let trace = uuid::Uuid::new_v4();
    let correlation = uuid::Uuid::new_v4();
    let ts = now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}"),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, axum::Json(body)).into_response()
}

/// ARM's error body.
fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn tenant_syntax_ok(t: &str) -> bool {
    is_guid(t)
        || (t.contains('.')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct TokenForm {
    grant_type: String,
    client_id: String,
    client_secret: Option<String>,
    client_assertion: Option<String>,
    scope: String,
}

/// Tokens are readable on purpose: `emu.{tenant}.{appId}.{resource}.{issued ms}.{nonce}`.
#[derive(Debug, Clone)]
struct Token {
    tenant: String,
    app_id: String,
    resource: String,
    issued: DateTime<Utc>,
}

impl Token {
    fn encode(&self) -> String {
        let resource = self.resource.replace('.', "~");
        format!(
            "emu.{}.{}.{}.{}.{}",
            self.tenant,
            self.app_id,
            resource,
            self.issued.timestamp_millis(),
            uuid::Uuid::new_v4().simple()
        )
    }

    fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let raw = auth.strip_prefix("Bearer ")?;
        let mut parts = raw.split('.');
        if parts.next()? != "emu" {
            return None;
        }
        let tenant = parts.next()?.to_owned();
        let app_id = parts.next()?.to_owned();
        let resource = parts.next()?.replace('~', ".");
        let issued = DateTime::from_timestamp_millis(parts.next()?.parse().ok()?)?;
        Some(Self {
            tenant,
            app_id,
            resource,
            issued,
        })
    }
}

async fn token(
    State(emu): State<Emulator>,
    Path(tenant_in): Path<String>,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    let world = emu.world();
    if form.grant_type != "client_credentials" {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if !tenant_syntax_ok(&tenant_in) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900023,
            &format!(
                "Specified tenant identifier '{tenant_in}' is neither a valid DNS name, nor a valid external domain."
            ),
        );
    }
    let Some(tenant) = find_tenant(&world, &tenant_in) else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant_in}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    };
    let Some(resource) = form
        .scope
        .strip_suffix("/.default")
        .map(|r| r.trim_end_matches('/').to_owned())
    else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid.",
        );
    };
    if !ARM_RESOURCES.contains(&resource.as_str()) && !GRAPH_RESOURCES.contains(&resource.as_str()) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            &format!(
                "The resource principal named {resource} was not found in the tenant named {}.",
                tenant.id
            ),
        );
    }
    let Some(app) = tenant
        .apps
        .iter()
        .find(|a| a.app_id.eq_ignore_ascii_case(&form.client_id))
    else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory '{}'.",
                form.client_id, tenant.id
            ),
        );
    };
    if app.disabled {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            7000112,
            "Application is disabled.",
        );
    }
    let Some(secret) = form.client_secret.filter(|s| !s.is_empty()) else {
        let _ = form.client_assertion;
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    };
    let Some(password) = app.passwords.iter().find(|p| p.secret_text == secret) else {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                app.app_id
            ),
        );
    };
    let now = now();
    if password.start_date_time.is_some_and(|s| s > now) {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        );
    }
    if password.end_date_time.is_some_and(|e| e <= now) {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            &format!(
                "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app.",
                app.app_id
            ),
        );
    }
    if tenant
        .blocked_apps
        .iter()
        .any(|b| b.eq_ignore_ascii_case(&app.app_id))
    {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "access_denied",
            53003,
            "Access has been blocked by Conditional Access policies.",
        );
    }
    let token = Token {
        tenant: tenant.id.to_ascii_lowercase(),
        app_id: app.app_id.to_ascii_lowercase(),
        resource,
        issued: now,
    };
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token.encode()}))
        .into_response()
}

async fn openid(State(emu): State<Emulator>, Path(tenant_in): Path<String>, headers: HeaderMap) -> Response {
    let world = emu.world();
    let Some(tenant) = find_tenant(&world, &tenant_in) else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!(
                "Tenant '{tenant_in}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    };
    let base = base_url(&headers);
    axum::Json(json!({
        "issuer": format!("{base}/{}/v2.0", tenant.id),
        "token_endpoint": format!("{base}/{}/oauth2/v2.0/token", tenant.id),
        "authorization_endpoint": format!("{base}/{}/oauth2/v2.0/authorize", tenant.id),
        "jwks_uri": format!("{base}/{}/discovery/v2.0/keys", tenant.id),
        "tenant_region_scope": "EU",
    }))
    .into_response()
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// The checks every ARM read makes: api-version, token, subscription id, tenant.
fn arm_access(
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
    if !ARM_RESOURCES.contains(&token.resource.as_str()) {
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

/// The grants of the token's app that its token can see (propagation).
fn visible_grants(world: &World, sub: &Subscription, token: &Token) -> Vec<Grant> {
    let delay = chrono::Duration::seconds(world.behaviour.propagation_seconds as i64);
    sub.grants
        .iter()
        .filter(|g| g.app_id.eq_ignore_ascii_case(&token.app_id))
        .filter(|g| g.assigned_at.is_none_or(|at| token.issued >= at + delay))
        .cloned()
        .collect()
}

fn principal_of(world: &World, token: &Token) -> String {
    world
        .tenants
        .iter()
        .flat_map(|t| &t.apps)
        .find(|a| a.app_id.eq_ignore_ascii_case(&token.app_id))
        .map(|a| a.principal_id.clone())
        .unwrap_or_default()
}

async fn subscription(
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

async fn permissions(
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
    let entries: Vec<Value> = visible_grants(&world, &sub, &token)
        .iter()
        .map(|g| json!({"actions": g.actions, "notActions": g.not_actions, "dataActions": [], "notDataActions": []}))
        .collect();
    let size = world.behaviour.permissions_page_size.max(1);
    let skip: usize = query.get("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = entries.iter().skip(skip).take(size).cloned().collect();
    let mut body = json!({ "value": page });
    if skip + size < entries.len() {
        body["nextLink"] = json!(format!(
            "{}/subscriptions/{}/providers/Microsoft.Authorization/permissions?api-version={}&$skiptoken={}",
            base_url(&headers),
            sub.id,
            query.get("api-version").map_or("2022-04-01", String::as_str),
            skip + size
        ));
    }
    axum::Json(body).into_response()
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"code": code, "message": message, "innerError": {"request-id": uuid::Uuid::new_v4()}}})))
        .into_response()
}

/// The Graph caller's access to `applications(appId='…')`: its own app, with
/// `Application.ReadWrite.OwnedBy` as its owner. Returns (tenant index, app index).
fn graph_access(world: &World, segment: &str, headers: &HeaderMap) -> Result<(usize, usize), Box<Response>> {
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
    let Some(token) = Token::from_headers(headers).filter(|t| GRAPH_RESOURCES.contains(&t.resource.as_str()))
    else {
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
    if !(app.app_id.eq_ignore_ascii_case(&token.app_id) && app.manages_own_credentials) {
        return Err(Box::new(graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )));
    }
    Ok((ti, ai))
}

fn password_json(p: &Password, with_secret: bool) -> Value {
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
async fn graph_application(
    State(emu): State<Emulator>,
    Path(segment): Path<String>,
    headers: HeaderMap,
) -> Response {
    let world = emu.world();
    let (ti, ai) = match graph_access(&world, &segment, &headers) {
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
struct GraphAction {
    password_credential: Option<NewPassword>,
    key_id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct NewPassword {
    display_name: Option<String>,
    end_date_time: Option<DateTime<Utc>>,
}

/// `POST /v1.0/applications(appId='…')/addPassword` and `/removePassword`.
async fn graph_action(
    State(emu): State<Emulator>,
    Path((segment, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let world = emu.world();
    let (ti, ai) = match graph_access(&world, &segment, &headers) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let input: GraphAction = serde_json::from_slice(&body).unwrap_or_default();
    match action.as_str() {
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

async fn get_world(State(emu): State<Emulator>) -> axum::Json<World> {
    axum::Json(emu.world())
}

async fn put_world(State(emu): State<Emulator>, axum::Json(world): axum::Json<World>) -> StatusCode {
    emu.update(|w| *w = world);
    StatusCode::NO_CONTENT
}

async fn put_behaviour(State(emu): State<Emulator>, axum::Json(b): axum::Json<Behaviour>) -> StatusCode {
    emu.update(|w| w.behaviour = b);
    StatusCode::NO_CONTENT
}

/// Assigns a role now, as the customer does in the portal (`assignedAt` = now).
async fn add_grant(
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

async fn get_requests(State(emu): State<Emulator>) -> axum::Json<Vec<Recorded>> {
    axum::Json(emu.requests())
}

async fn clear_requests(State(emu): State<Emulator>) -> StatusCode {
    emu.clear_requests();
    StatusCode::NO_CONTENT
}
