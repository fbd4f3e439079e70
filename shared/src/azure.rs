//! The Azure adapter: the client-credentials token (one form POST, implemented directly: see the
//! README for why not azure_identity), the tenant probe, and the ARM reads Connect Account needs.
//! Errors come back as [`AzureFailure`], plain facts that the domain diagnoses.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::diagnosis::{AzureFailure, SubscriptionState};
use crate::domain::rbac::PermissionEntry;
use crate::domain::{ClientId, ClientSecret, ManagementGroupId, SubscriptionId, TenantId};

pub mod estate;
mod pacing;

use pacing::pace;

pub const SUBSCRIPTION_API: &str = "2022-12-01";
pub const PERMISSIONS_API: &str = "2022-04-01";
/// Pages of an ARM list followed at most (each page one round trip).
const MAX_PAGES: usize = 100;

/// Endpoints of one Azure cloud. The token scopes stay the cloud's resource ids whatever the
/// endpoint URLs are (an emulator on `http://127.0.0.1` still asks for
/// `https://management.azure.com/.default`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    pub authority_host: String,
    pub resource_manager: String,
    pub graph: String,
    pub arm_scope: String,
    pub graph_scope: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    #[error("must be public, usgov or china")]
    UnknownCloud,
}

impl Cloud {
    pub fn preset(name: &str) -> Result<Self, CloudError> {
        let (login, arm, graph) = match name.trim().to_ascii_lowercase().as_str() {
            "" | "public" | "azurecloud" => (
                "https://login.microsoftonline.com",
                "https://management.azure.com",
                "https://graph.microsoft.com",
            ),
            "usgov" | "azureusgovernment" => (
                "https://login.microsoftonline.us",
                "https://management.usgovcloudapi.net",
                "https://graph.microsoft.us",
            ),
            "china" | "azurechinacloud" => (
                "https://login.chinacloudapi.cn",
                "https://management.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
            _ => return Err(CloudError::UnknownCloud),
        };
        Ok(Self {
            authority_host: login.to_owned(),
            resource_manager: arm.to_owned(),
            graph: graph.to_owned(),
            arm_scope: format!("{arm}/.default"),
            graph_scope: format!("{graph}/.default"),
        })
    }
}

/// How the app proves who it is: its client secret, or a signed assertion of an issuer it trusts
/// (workload identity federation; RFC 7523 `jwt-bearer` client assertion).
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    Secret(&'a ClientSecret),
    Assertion(&'a SecretString),
}

/// `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A bearer token; redacted in `Debug`.
#[derive(Clone)]
pub struct AccessToken(SecretString);

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(redacted)")
    }
}

impl AccessToken {
    pub fn new(token: String) -> Self {
        Self(SecretString::from(token))
    }

    /// The token's payload: Entra's access tokens are JWTs. Read, not verified: the token came
    /// from Entra's token endpoint over TLS, and it only tells us what the app may do, not who
    /// anyone is. None when it is not a JWT.
    fn payload(&self) -> Option<serde_json::Value> {
        use base64::Engine;
        let payload = self.0.expose_secret().split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// One string claim of the payload (e.g. `oid`, the app's service principal).
    pub fn claim(&self, name: &str) -> Option<String> {
        self.payload()?.get(name)?.as_str().map(str::to_owned)
    }

    /// The application permissions the token carries (its `roles` claim).
    pub fn roles(&self) -> Vec<String> {
        self.payload()
            .and_then(|p| p.get("roles").cloned())
            .and_then(|r| serde_json::from_value(r).ok())
            .unwrap_or_default()
    }
}

/// What Connect Account reads of the subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub display_name: String,
    pub state: SubscriptionState,
}

/// OAuth2 client credentials against `{authority}/{tenant}/oauth2/v2.0/token`.
#[async_trait]
pub trait TokenClient: Send + Sync + std::fmt::Debug {
    async fn token(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        credential: Credential<'_>,
        scope: &str,
    ) -> Result<AccessToken, AzureFailure>;
}

/// The reads of Connect Account and of the early check at 3.2.
#[async_trait]
pub trait AzureReads: Send + Sync + std::fmt::Debug {
    /// Whether the tenant exists in this cloud (OpenID configuration, no credentials).
    async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, AzureFailure>;
    async fn subscription(
        &self,
        token: &AccessToken,
        id: &SubscriptionId,
    ) -> Result<SubscriptionInfo, AzureFailure>;
    /// Every permission entry of the caller on the subscription (all pages).
    async fn permissions(
        &self,
        token: &AccessToken,
        id: &SubscriptionId,
    ) -> Result<Vec<PermissionEntry>, AzureFailure>;
    /// The ids (GUIDs) of the role definitions assigned to the caller on the subscription (Spot's
    /// role grants `Microsoft.Authorization/roleAssignments/read`).
    async fn assigned_roles(
        &self,
        token: &AccessToken,
        id: &SubscriptionId,
    ) -> Result<Vec<String>, AzureFailure>;
    /// A management group's display name (ARM `GET …/managementGroups/{group}`, 2021-04-01).
    async fn management_group_name(
        &self,
        token: &AccessToken,
        group: &ManagementGroupId,
    ) -> Result<String, AzureFailure>;
    /// One page of the subscriptions below a management group ([`estate`]).
    async fn descendants(
        &self,
        token: &AccessToken,
        group: &ManagementGroupId,
        next: Option<&str>,
    ) -> Result<DescendantsPage, AzureFailure>;
    /// One page of the subscriptions the caller can read in its tenant, with their state (ARM
    /// "Subscriptions - List", 2022-12-01; [`estate`]).
    async fn subscriptions_page(
        &self,
        token: &AccessToken,
        next: Option<&str>,
    ) -> Result<SubscriptionsPage, AzureFailure>;
}

/// One page of the subscriptions the caller can read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionsPage {
    pub subscriptions: Vec<(SubscriptionId, SubscriptionInfo)>,
    /// The next page's link, as ARM gave it.
    pub next: Option<String>,
}

/// One page of the subscriptions below a management group (every level).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescendantsPage {
    /// Each subscription's id and display name.
    pub subscriptions: Vec<(SubscriptionId, String)>,
    /// The next page's link, as ARM gave it.
    pub next: Option<String>,
}

/// One page of an ARM list as it is sent (`x-ms-pageable`: `value`, `nextLink`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArmPage<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    next_link: Option<String>,
}

/// One password credential of an app registration, as Graph lists it (never the secret text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordInfo {
    pub key_id: String,
    pub display_name: String,
    /// The first 3 characters of the secret.
    pub hint: String,
    pub end: Option<DateTime<Utc>>,
}

/// A password Graph just created: the only time its value is returned.
#[derive(Debug, Clone)]
pub struct NewPassword {
    pub key_id: String,
    pub secret: ClientSecret,
    pub end: Option<DateTime<Utc>>,
}

/// The app's own password credentials through Microsoft Graph (needs `Application.ReadWrite.OwnedBy`
/// with the app's service principal as an owner of the app).
#[async_trait]
pub trait GraphApps: Send + Sync + std::fmt::Debug {
    async fn passwords(&self, token: &AccessToken, app: &ClientId)
    -> Result<Vec<PasswordInfo>, AzureFailure>;
    async fn add_password(
        &self,
        token: &AccessToken,
        app: &ClientId,
        display_name: &str,
        end: Option<DateTime<Utc>>,
    ) -> Result<NewPassword, AzureFailure>;
    /// Removing a key that is already gone is fine.
    async fn remove_password(
        &self,
        token: &AccessToken,
        app: &ClientId,
        key_id: &str,
    ) -> Result<(), AzureFailure>;
}

/// Both traits over one reqwest client (one connection pool per cold start).
#[derive(Debug, Clone)]
pub struct AzureHttp {
    http: reqwest::Client,
    cloud: Cloud,
}

impl AzureHttp {
    /// `timeout`: per request (the caller's budget bounds the whole validation); `connect`: to
    /// connect.
    pub fn new(cloud: Cloud, timeout: Duration, connect: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config())
            // Never: a token request re-sent elsewhere would carry the secret with it, an ARM or
            // Graph call its bearer token.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(connect.min(timeout))
            .user_agent(concat!("azure-connect/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, cloud })
    }

    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// A `nextLink` is followed (with the bearer token) only to the endpoint it came from.
    fn same_origin(&self, next: String, endpoint: &str) -> Result<String, AzureFailure> {
        let origin = |u: &str| reqwest::Url::parse(u).ok().map(|u| u.origin());
        match (origin(&next), origin(endpoint)) {
            (Some(a), Some(b)) if a == b => Ok(next),
            _ => Err(AzureFailure::Protocol("a nextLink to another host".to_owned())),
        }
    }
}

/// TLS to Azure: Mozilla's root certificates compiled in (`webpki-roots`), ready to use, where
/// reqwest's platform verifier reads and parses the system's bundle at every cold start (2.3 ms
/// of init, measured by `scripts/bench`). Azure's endpoints chain to roots in Mozilla's set.
fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
        Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
        // Unreachable with aws-lc-rs's default provider; rustls's own defaults then.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
            .with_no_client_auth(),
    }
}

fn transport(e: &reqwest::Error) -> AzureFailure {
    // Never the URL or body: only what kind of failure it was.
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() || e.is_body() {
        "unreadable answer"
    } else {
        "request failed"
    };
    AzureFailure::Unavailable(kind.to_owned())
}

/// The JSON of an answer: a body that could not be read (reset, cut short, too slow) is a
/// transport failure, worth a retry; one read whole that is not the JSON expected is a protocol
/// failure, named by `what`.
async fn read_json<T: serde::de::DeserializeOwned>(
    res: reqwest::Response,
    what: &str,
) -> Result<T, AzureFailure> {
    let bytes = res.bytes().await.map_err(|e| transport(&e))?;
    serde_json::from_slice(&bytes).map_err(|_| AzureFailure::Protocol(what.to_owned()))
}

/// Longest Retry-After taken as said: beyond it, the answer is "not within any budget of ours".
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// Entra ID's error body.
#[derive(Debug, Deserialize)]
struct AadError {
    error: String,
    #[serde(default)]
    error_codes: Vec<u32>,
    #[serde(default)]
    error_description: String,
}

/// ARM's error body.
#[derive(Debug, Deserialize)]
struct ArmErrorBody {
    error: ArmErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ArmErrorDetail {
    code: String,
}

/// Which API answered an error: both use `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Copy)]
enum Api {
    Arm,
    Graph,
}

async fn api_failure(res: reqwest::Response, api: Api) -> AzureFailure {
    let status = res.status().as_u16();
    if status == 429 {
        return AzureFailure::Throttled {
            retry_after: retry_after(res.headers()),
        };
    }
    match (res.json::<ArmErrorBody>().await, api) {
        (Ok(body), Api::Arm) => AzureFailure::Arm {
            status,
            code: body.error.code,
        },
        (Ok(body), Api::Graph) => AzureFailure::Graph {
            status,
            code: body.error.code,
        },
        (Err(_), _) if status >= 500 => AzureFailure::Unavailable(format!("HTTP {status}")),
        (Err(_), _) => {
            AzureFailure::Protocol(format!("{api:?} answered HTTP {status} without an error body"))
        }
    }
}

#[async_trait]
impl TokenClient for AzureHttp {
    async fn token(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        credential: Credential<'_>,
        scope: &str,
    ) -> Result<AccessToken, AzureFailure> {
        let url = format!("{}/{tenant}/oauth2/v2.0/token", self.cloud.authority_host);
        let client_id = client.to_string();
        // Form-encoded by reqwest: real secrets contain ~ . _ - and legacy ones + / = [ ] @ :
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("scope", scope),
        ];
        match credential {
            Credential::Secret(secret) => form.push(("client_secret", secret.expose())),
            Credential::Assertion(assertion) => {
                form.push(("client_assertion_type", JWT_BEARER));
                form.push(("client_assertion", assertion.expose_secret()));
            }
        }
        let res = self
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = res.status().as_u16();
        if res.status().is_success() {
            #[derive(Deserialize)]
            struct Ok {
                access_token: String,
            }
            let body: Ok = read_json(res, "token answer without access_token").await?;
            return Ok(AccessToken::new(body.access_token));
        }
        if status == 429 {
            return Err(AzureFailure::Throttled {
                retry_after: retry_after(res.headers()),
            });
        }
        if status >= 500 {
            return Err(AzureFailure::Unavailable(format!("HTTP {status}")));
        }
        let body = res.bytes().await.map_err(|e| transport(&e))?;
        match serde_json::from_slice::<AadError>(&body) {
            Ok(e) => {
                let aadsts = e.error_codes.first().copied().or_else(|| {
                    let rest = e.error_description.strip_prefix("AADSTS")?;
                    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
                });
                Err(AzureFailure::TokenRefused {
                    status,
                    error: e.error,
                    aadsts,
                })
            }
            Err(_) => Err(AzureFailure::Protocol(format!(
                "token endpoint answered HTTP {status} without an error body"
            ))),
        }
    }
}

#[async_trait]
impl AzureReads for AzureHttp {
    async fn descendants(
        &self,
        token: &AccessToken,
        group: &ManagementGroupId,
        next: Option<&str>,
    ) -> Result<DescendantsPage, AzureFailure> {
        self.descendants_page(token, group, next).await
    }

    async fn management_group_name(
        &self,
        token: &AccessToken,
        group: &ManagementGroupId,
    ) -> Result<String, AzureFailure> {
        self.group_name(token, group).await
    }

    async fn subscriptions_page(
        &self,
        token: &AccessToken,
        next: Option<&str>,
    ) -> Result<SubscriptionsPage, AzureFailure> {
        self.subscriptions_listed(token, next).await
    }

    async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, AzureFailure> {
        let url = format!(
            "{}/{tenant}/v2.0/.well-known/openid-configuration",
            self.cloud.authority_host
        );
        let res = self.http.get(url).send().await.map_err(|e| transport(&e))?;
        let status = res.status().as_u16();
        match status {
            200 => Ok(true),
            400 | 404 => Ok(false),
            429 => Err(AzureFailure::Throttled {
                retry_after: retry_after(res.headers()),
            }),
            s if s >= 500 => Err(AzureFailure::Unavailable(format!("HTTP {s}"))),
            s => Err(AzureFailure::Protocol(format!(
                "OpenID configuration answered HTTP {s}"
            ))),
        }
    }

    async fn subscription(
        &self,
        token: &AccessToken,
        id: &SubscriptionId,
    ) -> Result<SubscriptionInfo, AzureFailure> {
        let url = format!(
            "{}/subscriptions/{id}?api-version={SUBSCRIPTION_API}",
            self.cloud.resource_manager
        );
        let res = self.get_ok(url, token, Api::Arm).await?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Sub {
            #[serde(default)]
            display_name: String,
            state: String,
        }
        let sub: Sub = read_json(res, "subscription answer unreadable").await?;
        Ok(SubscriptionInfo {
            display_name: sub.display_name,
            state: SubscriptionState::parse(&sub.state),
        })
    }

    async fn permissions(
        &self,
        token: &AccessToken,
        id: &SubscriptionId,
    ) -> Result<Vec<PermissionEntry>, AzureFailure> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Entry {
            #[serde(default)]
            actions: Vec<String>,
            #[serde(default)]
            not_actions: Vec<String>,
        }
        let url = format!(
            "{}/subscriptions/{id}/providers/Microsoft.Authorization/permissions?api-version={PERMISSIONS_API}",
            self.cloud.resource_manager
        );
        let entries: Vec<Entry> = self.arm_list(url, token, "permissions").await?;
        Ok(entries
            .into_iter()
            .map(|e| PermissionEntry {
                actions: e.actions,
                not_actions: e.not_actions,
            })
            .collect())
    }

    async fn assigned_roles(
        &self,
        token: &AccessToken,
        id: &SubscriptionId,
    ) -> Result<Vec<String>, AzureFailure> {
        #[derive(Deserialize)]
        struct Assignment {
            properties: Properties,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Properties {
            role_definition_id: String,
        }
        // The caller's own assignments: its service principal is the token's `oid`.
        let principal = token.claim("oid").unwrap_or_default();
        let url = format!(
            "{}/subscriptions/{id}/providers/Microsoft.Authorization/roleAssignments?api-version={PERMISSIONS_API}&$filter=principalId%20eq%20'{principal}'",
            self.cloud.resource_manager
        );
        let assignments: Vec<Assignment> = self.arm_list(url, token, "role assignments").await?;
        let mut roles: Vec<String> = assignments
            .into_iter()
            .filter_map(|a| {
                a.properties
                    .role_definition_id
                    .rsplit('/')
                    .next()
                    .map(str::to_ascii_lowercase)
            })
            .collect();
        roles.sort();
        roles.dedup();
        Ok(roles)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphPassword {
    key_id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    hint: Option<String>,
    #[serde(default)]
    end_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    secret_text: Option<SecretString>,
}

impl AzureHttp {
    /// Every entry of an ARM list, following `nextLink` (ARM pages every list:
    /// `x-ms-pageable` in Azure/azure-rest-api-specs) to the same endpoint only, at most
    /// [`MAX_PAGES`] pages.
    async fn arm_list<T: serde::de::DeserializeOwned>(
        &self,
        mut url: String,
        token: &AccessToken,
        what: &str,
    ) -> Result<Vec<T>, AzureFailure> {
        let mut entries = Vec::new();
        for _ in 0..MAX_PAGES {
            let res = self.get_ok(&url, token, Api::Arm).await?;
            let page: ArmPage<T> = read_json(res, "list answer unreadable").await?;
            entries.extend(page.value);
            match page.next_link {
                Some(next) if !next.is_empty() => {
                    url = self.same_origin(next, &self.cloud.resource_manager)?
                }
                _ => return Ok(entries),
            }
        }
        Err(AzureFailure::Protocol(format!(
            "more than {MAX_PAGES} pages of {what}"
        )))
    }

    /// A GET with the bearer token; an error answer becomes its [`AzureFailure`].
    async fn get_ok(
        &self,
        url: impl reqwest::IntoUrl,
        token: &AccessToken,
        api: Api,
    ) -> Result<reqwest::Response, AzureFailure> {
        let res = self
            .http
            .get(url)
            .bearer_auth(token.0.expose_secret())
            .send()
            .await
            .map_err(|e| transport(&e))?;
        if let (Api::Arm, Some(wait)) = (api, pace(res.headers())) {
            tokio::time::sleep(wait).await;
        }
        if res.status().is_success() {
            Ok(res)
        } else {
            Err(api_failure(res, api).await)
        }
    }

    /// A JSON POST with the bearer token; an error answer becomes its [`AzureFailure`].
    async fn post_ok(
        &self,
        url: String,
        token: &AccessToken,
        body: &serde_json::Value,
        api: Api,
    ) -> Result<reqwest::Response, AzureFailure> {
        let res = self
            .http
            .post(url)
            .bearer_auth(token.0.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        if res.status().is_success() {
            Ok(res)
        } else {
            Err(api_failure(res, api).await)
        }
    }

    fn graph_app_url(&self, app: &ClientId) -> String {
        format!("{}/v1.0/applications(appId='{app}')", self.cloud.graph)
    }
}

#[async_trait]
impl GraphApps for AzureHttp {
    async fn passwords(
        &self,
        token: &AccessToken,
        app: &ClientId,
    ) -> Result<Vec<PasswordInfo>, AzureFailure> {
        let url = format!("{}?$select=id,appId,passwordCredentials", self.graph_app_url(app));
        let res = self.get_ok(url, token, Api::Graph).await?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct App {
            #[serde(default)]
            password_credentials: Vec<GraphPassword>,
        }
        let app: App = read_json(res, "Graph application unreadable").await?;
        Ok(app
            .password_credentials
            .into_iter()
            .map(|p| PasswordInfo {
                key_id: p.key_id,
                display_name: p.display_name.unwrap_or_default(),
                hint: p.hint.unwrap_or_default(),
                end: p.end_date_time,
            })
            .collect())
    }

    async fn add_password(
        &self,
        token: &AccessToken,
        app: &ClientId,
        display_name: &str,
        end: Option<DateTime<Utc>>,
    ) -> Result<NewPassword, AzureFailure> {
        let url = format!("{}/addPassword", self.graph_app_url(app));
        let body =
            serde_json::json!({"passwordCredential": {"displayName": display_name, "endDateTime": end}});
        let res = self.post_ok(url, token, &body, Api::Graph).await?;
        let p: GraphPassword = read_json(res, "addPassword answer unreadable").await?;
        let text = p
            .secret_text
            .ok_or_else(|| AzureFailure::Protocol("addPassword returned no secretText".into()))?;
        let secret = ClientSecret::parse(text)
            .map_err(|_| AzureFailure::Protocol("addPassword returned an unusable secret".into()))?;
        Ok(NewPassword {
            key_id: p.key_id,
            secret,
            end: p.end_date_time,
        })
    }

    async fn remove_password(
        &self,
        token: &AccessToken,
        app: &ClientId,
        key_id: &str,
    ) -> Result<(), AzureFailure> {
        let url = format!("{}/removePassword", self.graph_app_url(app));
        let body = serde_json::json!({"keyId": key_id});
        match self.post_ok(url, token, &body, Api::Graph).await.map(|_| ()) {
            // Graph answers 400 (or 404) for a key id the app no longer has: already gone.
            Ok(())
            | Err(AzureFailure::Graph {
                status: 400 | 404, ..
            }) => Ok(()),
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_read_from_the_tokens_payload() {
        use base64::Engine;
        let part =
            |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let jwt = format!(
            "{}.{}.sig",
            part(serde_json::json!({"alg": "RS256"})),
            part(
                serde_json::json!({"aud": "https://graph.microsoft.com", "roles": ["Application.Read.All"]})
            )
        );
        assert_eq!(
            AccessToken::new(jwt).roles(),
            vec!["Application.Read.All".to_owned()]
        );
        let none = format!(
            "{}.{}.sig",
            part(serde_json::json!({})),
            part(serde_json::json!({"aud": "x"}))
        );
        assert!(AccessToken::new(none).roles().is_empty());
        for junk in ["", "opaque", "a.%%%.c", "a.bm90IGpzb24.c"] {
            assert!(AccessToken::new(junk.to_owned()).roles().is_empty(), "{junk}");
        }
    }

    #[test]
    fn tokens_are_redacted() {
        assert_eq!(
            format!("{:?}", AccessToken::new("eyJ0eXAi.secret".into())),
            "AccessToken(redacted)"
        );
    }
}

/// Property test: whatever Azure answers (any status, any body, any Retry-After), the adapter gives
/// a failure of the right kind, and never panics.
#[cfg(test)]
mod properties {
    use std::sync::{Arc, Mutex};

    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    use super::*;

    type Canned = Arc<Mutex<(u16, Vec<u8>, Option<String>)>>;

    /// One server for all cases; each case sets what it answers.
    fn serve(runtime: &tokio::runtime::Runtime, canned: Canned) -> String {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = axum::Router::new().fallback(move || {
                let canned = canned.clone();
                async move {
                    let (status, body, retry) = canned.lock().unwrap().clone();
                    let mut r = axum::response::Response::new(axum::body::Body::from(body));
                    *r.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                    if let Some(v) = retry.and_then(|v| axum::http::HeaderValue::from_str(&v).ok()) {
                        r.headers_mut().insert("retry-after", v);
                    }
                    r
                }
            });
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            format!("http://{addr}")
        })
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            Just(br#"{"error":"invalid_client","error_codes":[7000215]}"#.to_vec()),
            Just(br#"{"error":"invalid_client","error_description":"AADSTS99999999999999: x"}"#.to_vec()),
            Just(br#"{"error":{"code":"AuthorizationFailed"}}"#.to_vec()),
            Just(br#"{"error":{"code":1}}"#.to_vec()),
            Just(br#"{"access_token":"t"}"#.to_vec()),
            Just(br#"{"access_token":7}"#.to_vec()),
            Just(br#"{"displayName":"s","state":"Enabled","subscriptionId":"x"}"#.to_vec()),
            Just(br#"{"value":[{"actions":["*"]}],"nextLink":"http://127.0.0.1:1/next"}"#.to_vec()),
        ]
    }

    #[test]
    fn any_answer_becomes_a_failure_of_its_kind() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let canned: Canned = Arc::new(Mutex::new((200, vec![], None)));
        let base = serve(&runtime, canned.clone());
        let cloud = Cloud {
            authority_host: base.clone(),
            resource_manager: base.clone(),
            graph: base,
            arm_scope: "https://management.azure.com/.default".into(),
            graph_scope: "https://graph.microsoft.com/.default".into(),
        };
        let http = AzureHttp::new(cloud, Duration::from_secs(5), Duration::from_secs(1)).unwrap();
        let tenant = TenantId::parse("contoso.onmicrosoft.com").unwrap();
        let client = ClientId::parse("11111111-2222-4333-8444-555555555555").unwrap();
        let secret = ClientSecret::parse(SecretString::from(
            "Ab1Q~prop.secret-0123456789abcdefghijkl".to_owned(),
        ))
        .unwrap();
        let sub = SubscriptionId::parse("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab").unwrap();
        let config = Config {
            cases: 200,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(0x0a2_a5e),
            ..Config::default()
        };
        let statuses = prop_oneof![
            Just(200u16),
            Just(400),
            Just(401),
            Just(403),
            Just(404),
            Just(429),
            Just(500),
            Just(503),
            200u16..600
        ];
        let retry = proptest::option::of(prop_oneof![
            Just("5".to_owned()),
            Just("-1".to_owned()),
            Just("soon".to_owned()),
            "[0-9]{1,25}"
        ]);
        proptest!(config, |(status in statuses, body in body(), retry in retry)| {
            *canned.lock().unwrap() = (status, body, retry.clone());
            let (token, reads) = runtime.block_on(async {
                let token = http.token(&tenant, &client, Credential::Secret(&secret), "https://management.azure.com/.default").await;
                let t = AccessToken::new("t".into());
                let reads = (http.subscription(&t, &sub).await.err(), http.permissions(&t, &sub).await.err());
                (token, reads)
            });
            match status {
                200..=299 => {}
                429 => prop_assert!(matches!(token, Err(AzureFailure::Throttled { .. })), "{token:?}"),
                500..=599 => prop_assert!(matches!(token, Err(AzureFailure::Unavailable(_))), "{token:?}"),
                _ => prop_assert!(matches!(token, Err(AzureFailure::TokenRefused { .. } | AzureFailure::Protocol(_))), "{token:?}"),
            }
            for failure in [reads.0, reads.1].into_iter().flatten() {
                match status {
                    429 => prop_assert!(matches!(failure, AzureFailure::Throttled { .. }), "{failure:?}"),
                    500..=599 => prop_assert!(failure.is_transient(), "{failure:?}"),
                    _ => {}
                }
            }
        });
    }
}
