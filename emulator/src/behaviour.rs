//! Behaviour switches (latency, throttling, outage, propagation) and the request log: a
//! middleware in front of every Azure route.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Emulator;
use super::arm::arm_error;
use super::entra::Token;
use super::throttle::{BucketKey, Limit, Take};

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
    /// A federated credential added through Graph signs nothing in for this long (AADSTS70021).
    pub federated_credential_delay_seconds: u64,
    /// A new service principal is unknown to role assignments that do not give
    /// `principalType` for this long (`PrincipalNotFound`).
    pub principal_replication_seconds: u64,
    /// A custom role created through ARM is unknown to role assignments for this long
    /// (`RoleDefinitionDoesNotExist`; see `RoleDefinition::replicated`).
    pub role_replication_seconds: u64,
    /// Non-empty: every write (not GET) whose path contains this fails with 500 (a run that dies
    /// half way).
    pub fail_writes_to: String,
    /// Entries per page of management group lists (nextLink paging).
    pub management_groups_page_size: usize,
    /// Entries per page of Microsoft Graph collections without `$top` (`@odata.nextLink`
    /// paging; see `paging.rs`). Small by default so that every reader meets a second page.
    pub graph_page_size: usize,
    /// Entries per page of ARM's other lists (role assignments, role definitions, subscriptions,
    /// tenants; `nextLink` paging). Small by default for the same reason.
    pub arm_page_size: usize,
    /// ARM's throttling (`throttle.rs`): token buckets per principal and subscription or tenant,
    /// `x-ms-ratelimit-remaining-*` on every answer, 429 with `Retry-After` when empty.
    pub arm_throttling: bool,
    pub arm_read_burst: u32,
    pub arm_reads_per_second: u32,
    pub arm_write_burst: u32,
    pub arm_writes_per_second: u32,
    /// Descendants type subscriptions as the API's documented example does
    /// (`Microsoft.Management/managementGroups/subscriptions`) instead of the live service's
    /// `/subscriptions`.
    pub descendants_typed_as_documented: bool,
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
            federated_credential_delay_seconds: 0,
            principal_replication_seconds: 0,
            role_replication_seconds: 0,
            fail_writes_to: String::new(),
            management_groups_page_size: 100,
            graph_page_size: 1,
            arm_page_size: 1,
            descendants_typed_as_documented: false,
            // ARM's documented limits (throttle.rs).
            arm_throttling: true,
            arm_read_burst: 250,
            arm_reads_per_second: 25,
            arm_write_burst: 200,
            arm_writes_per_second: 10,
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
    /// Answered 429 by ARM's throttling (its bucket was empty).
    #[serde(default)]
    pub throttled: bool,
}

/// Records every Azure request, then applies latency, outage and throttling.
pub(crate) async fn azure_behaviour(State(emu): State<Emulator>, req: Request, next: Next) -> Response {
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
            throttled: false,
        });
        let b = inner.world.behaviour.clone();
        if inner.world.behaviour.throttle_next > 0 {
            std::sync::Arc::make_mut(&mut inner.world).behaviour.throttle_next -= 1;
        }
        // ARM's buckets (not the token endpoint's, not Graph's); a request without a token is
        // left to its route to refuse.
        let path = parts.uri.path();
        let arm = !path.contains("/oauth2/") && !path.contains("/.well-known/") && !path.starts_with("/v1.0");
        let bucket = match Token::from_headers(&parts.headers) {
            Some(token) if arm && b.arm_throttling => {
                let principal = if token.user {
                    token.oid.clone().unwrap_or_default()
                } else {
                    token.app_id.clone()
                };
                let write = !matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD);
                let key = BucketKey::of(&principal, &token.tenant, path, write);
                let limit = if write {
                    Limit {
                        burst: b.arm_write_burst,
                        per_second: b.arm_writes_per_second,
                    }
                } else {
                    Limit {
                        burst: b.arm_read_burst,
                        per_second: b.arm_reads_per_second,
                    }
                };
                let taken = inner.buckets.take(key.clone(), limit, std::time::Instant::now());
                if let (Take::Throttled(_), Some(last)) = (&taken, inner.requests.last_mut()) {
                    last.throttled = true;
                }
                Some((key, taken))
            }
            _ => None,
        };
        (b, bucket)
    };
    let (behaviour, bucket) = behaviour;
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
    if !behaviour.fail_writes_to.is_empty()
        && parts.method != axum::http::Method::GET
        && parts.uri.path().contains(&behaviour.fail_writes_to)
    {
        return arm_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Encountered internal server error.",
        );
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
    match bucket {
        Some((key, Take::Throttled(seconds))) => {
            let mut r = arm_error(
                StatusCode::TOO_MANY_REQUESTS,
                key.code(),
                "Number of requests exceeded the limit. Please retry later.",
            );
            if let Ok(v) = header::HeaderValue::from_str(&seconds.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            if let Ok(v) = header::HeaderValue::from_str("0") {
                r.headers_mut().insert(key.header(), v);
            }
            r
        }
        Some((key, Take::Left(left))) => {
            let mut r = next
                .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await;
            if let Ok(v) = header::HeaderValue::from_str(&left.to_string()) {
                r.headers_mut().insert(key.header(), v);
            }
            r
        }
        None => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
    }
}
