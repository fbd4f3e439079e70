//! Spot's public credentials API on the same domain code as the wizard, in Spot's paths, query and
//! envelope, so that Spot's SDKs and Terraform provider work unchanged:
//! `POST /azure/setup/credentials?accountId=…`, `POST /azure/setup/credentials/validation?accountId=…`,
//! `GET /azure/setup/credentials?accountId=…`. Errors keep Spot's envelope and carry our diagnosis
//! (the step to fix, the missing actions) in `response.errors`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::post;
use chrono::Utc;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::EdgeError;
use super::input::{expiry_error, parse_json, secret_error};
use super::problem::Problem;
use super::request::{ApiState, Caller, OrgSource, json_response, read_body};
use crate::app::{App, Credentials, FieldError, RequestMeta};
use crate::domain::ids::trim_pasted;
use crate::domain::{
    AccountId, ClientId, ClientSecret, Connection, OrgId, SecretExpiry, Step, SubscriptionId, TenantId,
};

pub const KIND: &str = "spotinst:azure:setup:credentials";

/// Spot's routes, as (method, path).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/azure/setup/credentials"),
    ("GET", "/azure/setup/credentials"),
    ("POST", "/azure/setup/credentials/validation"),
];

/// Spot's routes, for a router whose state is [`ApiState`].
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/azure/setup/credentials",
            post(set_credentials).get(get_credentials),
        )
        .route("/azure/setup/credentials/validation", post(validate_credentials))
}

/// Spot's routes on their own, with their own source of organizations (the local server's
/// `--dev-token`s).
pub fn router(app: App, org: OrgSource) -> Router {
    routes().with_state(ApiState::new(app, org))
}

/// The flat body of Spot's API (camelCase); `expirationDate` is optional for older clients.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredentialsBody {
    client_id: String,
    client_secret: SecretString,
    tenant_id: String,
    subscription_id: String,
    #[serde(default)]
    expiration_date: Option<String>,
    /// The account's connection is an estate whose ties to Spot accounts this would drop: only
    /// with `true` (else 409 `estate-has-links`).
    #[serde(default)]
    replace_estate: bool,
}

impl CredentialsBody {
    fn parse(self, now: chrono::DateTime<Utc>) -> Result<Credentials, EdgeError> {
        let mut errors = Vec::new();
        let mut field = |e: FieldError| errors.push(e);
        let tenant = TenantId::parse(&self.tenant_id)
            .map_err(|e| field(FieldError::new("tenantId", e)))
            .ok();
        let client = ClientId::parse(&self.client_id)
            .map_err(|e| field(FieldError::new("clientId", e)))
            .ok();
        let secret = ClientSecret::parse(self.client_secret)
            .map_err(|e| field(secret_error("clientSecret", e)))
            .ok();
        let subscription = SubscriptionId::parse(&self.subscription_id)
            .map_err(|e| field(FieldError::new("subscriptionId", e)))
            .ok();
        let expires_at = match self
            .expiration_date
            .as_deref()
            .filter(|s| !trim_pasted(s).is_empty())
        {
            None => Some(None),
            Some(s) => SecretExpiry::parse(s, now)
                .map(Some)
                .map_err(|e| field(expiry_error("expirationDate", e)))
                .ok(),
        };
        match (tenant, client, secret, subscription, expires_at) {
            (Some(tenant), Some(client), Some(secret), Some(subscription), Some(expires_at)) => {
                Ok(Credentials {
                    tenant,
                    client,
                    secret,
                    subscription,
                    expires_at,
                    replace_estate: self.replace_estate,
                })
            }
            _ => Err(EdgeError::invalid(errors)),
        }
    }
}

#[derive(Debug, Deserialize)]
struct AccountQuery {
    #[serde(rename = "accountId")]
    account_id: Option<String>,
}

/// The request as Spot's envelope echoes it.
struct Echo {
    id: String,
    url: String,
    method: Method,
}

fn envelope(echo: &Echo, status: StatusCode, response: serde_json::Map<String, Value>) -> Response {
    let mut response = response;
    response.insert(
        "status".into(),
        json!({"code": status.as_u16(), "message": status.canonical_reason().unwrap_or("")}),
    );
    response.entry("kind").or_insert_with(|| json!(KIND));
    let body = json!({
        "request": {"id": echo.id, "url": echo.url, "method": echo.method.as_str(), "timestamp": Utc::now()},
        "response": response,
    });
    json_response(status, &body)
}

fn ok(echo: &Echo, items: Vec<Value>, warnings: Vec<Value>) -> Response {
    let mut r = serde_json::Map::new();
    r.insert("count".into(), json!(items.len()));
    r.insert("items".into(), Value::Array(items));
    if !warnings.is_empty() {
        r.insert("warnings".into(), Value::Array(warnings));
    }
    envelope(echo, StatusCode::OK, r)
}

/// Our problem, in Spot's error shape: one error per bad field, or one carrying the diagnosis.
fn error(echo: &Echo, err: &EdgeError, step: Step) -> Response {
    let p = Problem::of(err, step);
    let status = p.status_code();
    let p = p.rejection;
    let errors: Vec<Value> = if p.errors.is_empty() {
        let mut message = match p.step {
            Some(step) => format!("{} (wizard step: {step}). {}", p.title, p.detail),
            None => format!("{}. {}", p.title, p.detail),
        };
        if !p.missing_actions.is_empty() {
            message.push_str(&format!(" Missing actions: {}.", p.missing_actions.join(", ")));
        }
        let mut e = json!({"code": p.code, "message": message, "retryable": p.retryable});
        if let Some(step) = p.step {
            e["step"] = json!(step);
        }
        if !p.missing_actions.is_empty() {
            e["missingActions"] = json!(p.missing_actions);
        }
        vec![e]
    } else {
        p.errors
            .iter()
            .map(|f| json!({"code": p.code, "message": format!("{} {}", f.field, f.message), "field": f.field}))
            .collect()
    };
    let mut r = serde_json::Map::new();
    r.insert("errors".into(), Value::Array(errors));
    let mut response = envelope(echo, status, r);
    if let Some(after) = p.retry_after {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        if let Ok(v) = axum::http::HeaderValue::from_str(&secs.max(1).to_string()) {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
    }
    response
}

fn item(c: &Connection, subscription: Option<SubscriptionId>) -> Value {
    let mut item = json!({
        "clientId": c.app_registration.as_ref().map(|a| a.client),
        "tenantId": c.app_registration.as_ref().map(|a| a.tenant.clone()),
        "subscriptionId": subscription,
        "connectionId": c.id,
        "status": c.status,
        "credentialType": c.credential_type,
    });
    // Held through an estate: the group, and where the subscription stands in it.
    if let Some(estate) = &c.estate {
        item["managementGroupId"] = json!(estate.group);
        if let Some(entry) = subscription.and_then(|s| estate.entries.get(&s)) {
            item["subscriptionStatus"] = json!(entry.status().as_str());
        }
    }
    // What the health checks found once it was linked (Spot's console shows it per item).
    if let Some(health) = super::view::health_of(c) {
        item["health"] = json!(health);
    }
    // A secretless connection has no secret to report, masked or not.
    if let Some(secret) = c.client_secret.as_ref() {
        item["clientSecret"] = json!(format!("{}****", secret.hint().as_str()));
        item["expirationDate"] = json!(secret.expires_at.map(|e| e.at()));
    }
    item
}

/// What every route starts with: the caller, the echo, the account.
async fn begin(
    org: &OrgSource,
    req: Request,
) -> (Echo, Result<(RequestMeta, OrgId, AccountId), EdgeError>, Request) {
    let (mut parts, body) = req.into_parts();
    let caller = Caller::of(&parts, org);
    let echo = Echo {
        id: caller.req.request_id.clone(),
        url: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        method: parts.method.clone(),
    };
    let query = Query::<AccountQuery>::from_request_parts(&mut parts, &()).await;
    let req = Request::from_parts(parts, body);
    let account = || {
        let raw = query
            .map_err(|_| EdgeError::invalid(vec![FieldError::new("accountId", "is not a valid query")]))?
            .0;
        let raw = raw
            .account_id
            .ok_or_else(|| EdgeError::invalid(vec![FieldError::new("accountId", "is required")]))?;
        AccountId::parse(&raw).map_err(|e| EdgeError::invalid(vec![FieldError::new("accountId", e)]))
    };
    let begun = match caller.org {
        Err(e) => Err(e),
        Ok(org) => account().map(|a| (caller.req, org, a)),
    };
    (echo, begun, req)
}

/// The body, parsed into domain values.
async fn read_credentials(req: Request, meta: &RequestMeta) -> Result<Credentials, EdgeError> {
    let bytes = read_body(req).await?;
    parse_json::<CredentialsBody>(&bytes)?.parse(meta.received_at)
}

async fn set_credentials(
    State(app): State<App>,
    State(org): State<Arc<OrgSource>>,
    req: Request,
) -> Response {
    let (echo, begun, req) = begin(&org, req).await;
    let (meta, org, account) = match begun {
        Ok(b) => b,
        Err(e) => return error(&echo, &e, Step::Start),
    };
    let credentials = match read_credentials(req, &meta).await {
        Ok(c) => c,
        Err(e) => {
            app.reject(&meta, Some(&org), Step::ClientSecret, None, &e).await;
            return error(&echo, &e, Step::ClientSecret);
        }
    };
    let warnings = expiry_warning(&credentials);
    match app.set_credentials(&meta, &org, account, credentials).await {
        Ok(_) => ok(&echo, vec![], warnings),
        Err(e) => error(&echo, &e.into(), Step::RoleAssignment),
    }
}

async fn validate_credentials(
    State(app): State<App>,
    State(org): State<Arc<OrgSource>>,
    req: Request,
) -> Response {
    let (echo, begun, req) = begin(&org, req).await;
    let (meta, org, _account) = match begun {
        Ok(b) => b,
        Err(e) => return error(&echo, &e, Step::Start),
    };
    let credentials = match read_credentials(req, &meta).await {
        Ok(c) => c,
        Err(e) => return error(&echo, &e, Step::ClientSecret),
    };
    let warnings = expiry_warning(&credentials);
    match app.validate_credentials(&org, &credentials).await {
        Ok(v) => {
            let mut all = warnings;
            all.extend(
                v.warnings
                    .into_iter()
                    .map(|w| json!({"code": "subscription-state", "message": w})),
            );
            ok(&echo, vec![], all)
        }
        Err(e) => error(&echo, &e.into(), Step::RoleAssignment),
    }
}

async fn get_credentials(
    State(app): State<App>,
    State(org): State<Arc<OrgSource>>,
    req: Request,
) -> Response {
    let (echo, begun, _req) = begin(&org, req).await;
    let (_meta, org, account) = match begun {
        Ok(b) => b,
        Err(e) => return error(&echo, &e, Step::Start),
    };
    match app.credentials_of(&org, &account).await {
        Ok(held) => ok(&echo, vec![item(&held.connection, held.subscription)], vec![]),
        Err(e) => error(&echo, &e.into(), Step::Start),
    }
}

fn expiry_warning(c: &Credentials) -> Vec<Value> {
    if c.expires_at.is_some() {
        return vec![];
    }
    vec![json!({
        "code": "expiration-date-missing",
        "message": "expirationDate was not sent: Spot cannot remind you before the client secret expires. Send the secret's expiry (Azure portal > App registrations > your app > Certificates & secrets > Expires).",
    })]
}

#[cfg(test)]
mod properties {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};
    use tower::ServiceExt;

    use super::*;
    use crate::events::MemorySink;
    use crate::store::embedded::EmbeddedStore;

    const FIELDS: &[&str] = &[
        "clientId",
        "clientSecret",
        "tenantId",
        "subscriptionId",
        "expirationDate",
        "other",
    ];

    fn value(canary: String, field: &'static str) -> BoxedStrategy<Value> {
        let valid = match field {
            "clientId" | "subscriptionId" => json!("0b6c1f5e-6d2a-4c1b-9a57-2f1e8d3c4b5a"),
            "expirationDate" => json!("2099-01-01"),
            // The tenant is never valid, so no body reaches Azure: the parsers are under test.
            _ => Value::Null,
        };
        prop_oneof![
            Just(json!(canary.clone())),
            Just(json!([canary.clone()])),
            Just(json!({ "x": canary })),
            any::<i64>().prop_map(|n| json!(n)),
            Just(valid),
        ]
        .boxed()
    }

    fn body() -> impl Strategy<Value = (String, Vec<u8>)> {
        let canary = "Zq9~[A-Za-z0-9._-]{6,30}";
        prop_oneof![
            1 => (canary, proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(c, mut b)| {
                b.extend_from_slice(c.as_bytes());
                (c, b)
            }),
            4 => (canary, proptest::collection::vec(proptest::sample::select(FIELDS), 0..6))
                .prop_flat_map(move |(c, fields)| {
                    let values: Vec<_> = fields.iter().map(|f| value(c.clone(), f)).collect();
                    (Just(c), Just(fields), values)
                })
                .prop_map(|(c, fields, values)| {
                    let map: serde_json::Map<String, Value> =
                        fields.iter().map(|f| (*f).to_owned()).zip(values).collect();
                    (c, serde_json::to_vec(&map).unwrap())
                }),
        ]
    }

    proptest! {
        #![proptest_config(Config { cases: 256, failure_persistence: None, rng_seed: RngSeed::Fixed(0x5_b07), ..Config::default() })]

        /// Any request to Spot's API gets Spot's envelope with a 4xx, errors naming a field, and
        /// nothing of what was sent in it (the secret least of all).
        #[test]
        fn any_request_gets_spots_envelope_without_repeating_it(
            (canary, bytes) in body(),
            path in proptest::sample::select(&["/azure/setup/credentials", "/azure/setup/credentials/validation"][..]),
            account in proptest::option::of(prop_oneof![Just("act-1a2b3c4d".to_owned()), "Zq9~[A-Za-z0-9]{4,12}"]),
        ) {
            let dir = std::env::temp_dir().join(format!("azc-spot-{}", uuid::Uuid::new_v4().simple()));
            let store = Arc::new(EmbeddedStore::open(&dir, "p/").unwrap());
            let app = App::new(store, Arc::new(MemorySink::default()));
            let uri = match &account {
                Some(a) => format!("{path}?accountId={a}"),
                None => path.to_owned(),
            };
            let request = Request::post(&uri)
                .header("x-org-id", "org-1")
                .header("content-type", "application/json")
                .body(Body::from(bytes))
                .unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let (status, body) = runtime.block_on(async {
                let response = router(app, OrgSource::local_header()).oneshot(request).await.unwrap();
                let status = response.status();
                (status, response.into_body().collect().await.unwrap().to_bytes())
            });
            std::fs::remove_dir_all(&dir).ok();
            prop_assert!(status.is_client_error(), "{status}");
            let body: Value = serde_json::from_slice(&body).unwrap();
            prop_assert_eq!(&body["response"]["status"]["code"], &json!(status.as_u16()));
            let errors = body["response"]["errors"].as_array().unwrap();
            prop_assert!(!errors.is_empty());
            for e in errors {
                prop_assert!(e["code"].is_string() && e["message"].is_string(), "{e}");
            }
            // The echo repeats the query (Spot's envelope does); nothing of the body comes back.
            let text = body.to_string();
            let outside_echo = text.replace(&uri, "");
            prop_assert!(!outside_echo.contains(&canary), "{canary} repeated in {text}");
            if let Some(a) = account.filter(|a| a.starts_with("Zq9~")) {
                prop_assert!(!outside_echo.contains(&a), "{a} repeated in {text}");
            }
        }
    }
}
