//! What every HTTP route needs, whichever router serves it (the wizard's or Spot's): the state,
//! the caller (organization and request id), the body read within its limit, and JSON and problem
//! responses.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, X_CONTENT_TYPE_OPTIONS};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use zeroize::Zeroizing;

use super::error::{EdgeError, InputProblem};
use super::input::{self, MAX_BODY_BYTES};
use super::problem::{self, Problem};
use crate::app::{App, FieldError, RequestMeta, Trigger};
use crate::domain::{OrgId, Step};

/// Where the organization of a request comes from.
#[derive(Debug, Clone)]
pub enum OrgSource {
    /// A header set by a trusted front (the local server: `X-Org-Id`).
    Header(HeaderName),
    /// A claim of the HTTP API's JWT authorizer (Lambda).
    JwtClaim(String),
    /// `Authorization: Bearer <token>` looked up in a table (the local server's `--dev-token`),
    /// compared in constant time.
    BearerTokens(Arc<Vec<(String, OrgId)>>),
}

impl OrgSource {
    pub fn local_header() -> Self {
        Self::Header(HeaderName::from_static("x-org-id"))
    }

    /// For the local server's `--dev-token TOKEN=ORG`.
    pub fn dev_tokens(pairs: &[(String, OrgId)]) -> Self {
        Self::BearerTokens(Arc::new(pairs.to_vec()))
    }
}

/// The state of every router: the use cases and where the organization comes from.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub app: App,
    pub org: Arc<OrgSource>,
}

impl ApiState {
    pub fn new(app: App, org: OrgSource) -> Self {
        Self {
            app,
            org: Arc::new(org),
        }
    }
}

impl FromRef<ApiState> for App {
    fn from_ref(s: &ApiState) -> Self {
        s.app.clone()
    }
}

impl FromRef<ApiState> for Arc<OrgSource> {
    fn from_ref(s: &ApiState) -> Self {
        s.org.clone()
    }
}

/// The caller: who (organization) and which request. Never rejects; a missing organization is
/// reported by the route so that it is logged and announced like every other problem.
#[derive(Debug)]
pub struct Caller {
    pub org: Result<OrgId, EdgeError>,
    pub req: RequestMeta,
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<OrgSource>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, &Arc::<OrgSource>::from_ref(state)))
    }
}

impl Caller {
    pub fn of(parts: &Parts, source: &OrgSource) -> Self {
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
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .and_then(|t| token_owner(tokens, t.trim()))
                .map(|o| o.to_string()),
        };
        let (key, bad_key) = match idempotency_key(&parts.headers) {
            Some(Ok(key)) => (Some(key), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let org = org
            .and_then(|o| OrgId::parse(&o).ok())
            .ok_or(EdgeError::Unauthenticated);
        // A client's key is the client's own: scoped to its organization, so a key another
        // organization happens to reuse replays nothing of this one.
        let scope = org.as_ref().map(|o| o.to_string()).unwrap_or_default();
        // A key we cannot keep would leave the client believing its retries are safe.
        let org = match (org, bad_key) {
            (Ok(_), Some(e)) => Err(e),
            (org, _) => org,
        };
        let request_id = key
            .as_ref()
            .map(|key| format!("{scope}:{key}"))
            .or_else(|| {
                lambda
                    .and_then(|c| c.request_id.clone())
                    .filter(|id| bounded_id(id))
            })
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        // With a client's key, what it asks: its method and path here, its body when read.
        let fingerprint = key
            .as_ref()
            .map(|_| digest(&format!("{} {}", parts.method, parts.uri.path()), b""));
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
                fingerprint,
            },
        }
    }
}

impl Caller {
    /// The request's body in what it asks (only when a client's key makes it matter).
    pub fn with_body(mut self, body: &RawBody) -> Self {
        if let (Some(asked), Ok(bytes)) = (&self.req.fingerprint, &body.0) {
            self.req.fingerprint = Some(digest(asked, bytes));
        }
        self
    }
}

/// A digest of `head` and `body` (SHA-256, the first 128 bits in hex).
fn digest(head: &str, body: &[u8]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(head.as_bytes());
    h.update([0u8]);
    h.update(body);
    h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn lambda_context(parts: &Parts) -> Option<&aws_lambda_events::apigw::ApiGatewayV2httpRequestContext> {
    match parts.extensions.get::<lambda_http::request::RequestContext>() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => Some(c),
        _ => None,
    }
}

/// A client's `Idempotency-Key` makes its retries safe end to end; one we cannot keep is an error
/// naming the header (never repeating it).
fn idempotency_key(headers: &HeaderMap) -> Option<Result<String, EdgeError>> {
    let v = headers.get("idempotency-key")?;
    Some(
        v.to_str()
            .ok()
            .filter(|v| bounded_id(v))
            .map(str::to_owned)
            .ok_or_else(|| {
                EdgeError::invalid(vec![FieldError::new(
                    "Idempotency-Key",
                    "must be 1 to 64 of A-Z a-z 0-9 - _ . =",
                )])
            }),
    )
}

/// Ids we keep and log (idempotency keys, API Gateway's request ids): 1 to 64 of `A-Za-z0-9-_.=`.
pub fn bounded_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.=".contains(&b))
}

/// The organization of a bearer token; every token is compared, each in constant time, so the
/// answer's timing says nothing about how much of a token matched.
pub fn token_owner<'a>(tokens: &'a [(String, OrgId)], presented: &str) -> Option<&'a OrgId> {
    use subtle::ConstantTimeEq;
    let mut owner = None;
    for (token, org) in tokens {
        let same: bool = token.as_bytes().ct_eq(presented.as_bytes()).into();
        if same {
            owner = Some(org);
        }
    }
    owner
}

/// The raw body, read up to the limit (zeroed when dropped: it may hold a secret). Never rejects:
/// errors become problems in the route.
#[derive(Debug)]
pub struct RawBody(pub Result<Zeroizing<Vec<u8>>, EdgeError>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(read_body(req).await))
    }
}

/// A JSON body (`application/json` or `+json`, or no content type), at most [`MAX_BODY_BYTES`].
pub async fn read_body(req: Request) -> Result<Zeroizing<Vec<u8>>, EdgeError> {
    let json = req.headers().get(CONTENT_TYPE).is_none_or(|ct| {
        ct.to_str()
            .map(|s| {
                let essence = s.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            })
            .unwrap_or(false)
    });
    if !json {
        return Err(EdgeError::input(
            InputProblem::UnsupportedMediaType,
            vec![FieldError::new("content-type", "must be application/json")],
        ));
    }
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES);
    let bytes = limited
        .collect()
        .await
        .map_err(|_| input::too_large())?
        .to_bytes();
    Ok(Zeroizing::new(bytes.to_vec()))
}

/// A JSON answer; connection data is never cached.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The one mapping from errors to HTTP responses.
pub fn problem_response(err: &EdgeError, step: Step) -> Response {
    respond_problem(Problem::of(err, step))
}

/// The same, for a route outside the wizard's steps: the problem names none.
pub fn stepless_problem_response(err: &EdgeError) -> Response {
    respond_problem(Problem::stepless(err))
}

fn respond_problem(p: Problem) -> Response {
    let mut r = json_response(p.status_code(), &p);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(problem::CONTENT_TYPE));
    if let Some(after) = p.rejection.retry_after {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            r.headers_mut().insert(RETRY_AFTER, v);
        }
    } else if p.status == 503 {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_belongs_to_its_organization_and_nothing_near_it_does() {
        let org = OrgId::parse("org-1").unwrap();
        let tokens = vec![("s3cret-token".to_owned(), org.clone())];
        assert_eq!(token_owner(&tokens, "s3cret-token"), Some(&org));
        for near in ["s3cret-toke", "s3cret-token!", "", "S3CRET-TOKEN"] {
            assert_eq!(token_owner(&tokens, near), None, "{near}");
        }
    }

    #[test]
    fn kept_ids_are_bounded_in_length_and_charset() {
        assert!(bounded_id("Vh1Ab07EXAMPLE="));
        assert!(bounded_id(&"a".repeat(64)));
        for bad in ["", &"a".repeat(65), "has space", "new\nline", "semi;colon", "ünï"] {
            assert!(!bounded_id(bad), "{bad:?}");
        }
    }
}
