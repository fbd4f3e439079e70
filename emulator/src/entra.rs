//! Entra ID: the client-credentials token endpoint and the tenant's OpenID configuration.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::federation;
use super::world::{Tenant, World};

/// `client_assertion_type` of a JWT client assertion.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
use super::{Emulator, is_arm, is_graph, is_guid, now};

pub(crate) fn find_tenant<'a>(world: &'a World, id: &str) -> Option<&'a Tenant> {
    let id = id.to_ascii_lowercase();
    world
        .tenants
        .iter()
        .find(|t| t.id.eq_ignore_ascii_case(&id) || t.domains.iter().any(|d| d.eq_ignore_ascii_case(&id)))
}

/// Entra ID's error body.
pub(crate) fn aad_error(status: StatusCode, error: &str, code: u32, message: &str) -> Response {
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

pub(crate) fn tenant_syntax_ok(t: &str) -> bool {
    is_guid(t)
        || (t.contains('.')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct TokenForm {
    grant_type: String,
    client_id: String,
    client_secret: Option<String>,
    client_assertion: Option<String>,
    client_assertion_type: Option<String>,
    scope: String,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    device_code: Option<String>,
}

/// Tokens are JWTs as Entra's are (unsigned here: `alg: none`), their payload readable on purpose:
/// `tid`, `appid`, `aud` (the resource), `iat`, and for Microsoft Graph the app's `roles`.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tenant: String,
    pub(crate) app_id: String,
    pub(crate) resource: String,
    pub(crate) issued: DateTime<Utc>,
    /// Application permissions (Graph): what the caller may do there.
    pub(crate) roles: Vec<String>,
    /// The app's service principal (object id), as Entra puts it in app-only tokens; a user's
    /// object id in a user's token.
    pub(crate) oid: Option<String>,
    /// A user's token (delegated): `app_id` is then the user's object id.
    pub(crate) user: bool,
}

impl Token {
    fn encode(&self) -> String {
        use base64::Engine;
        let b64 =
            |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let header = json!({"typ": "JWT", "alg": "none"});
        let mut payload = json!({
            "tid": self.tenant,
            "appid": self.app_id,
            "aud": self.resource,
            "iat": self.issued.timestamp(),
            "iat_ms": self.issued.timestamp_millis(),
            "jti": uuid::Uuid::new_v4().simple().to_string(),
        });
        if !self.roles.is_empty() {
            payload["roles"] = json!(self.roles);
        }
        if let Some(oid) = &self.oid {
            payload["oid"] = json!(oid);
        }
        payload["idtyp"] = json!(if self.user { "user" } else { "app" });
        format!("{}.{}.emu", b64(&header), b64(&payload))
    }

    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Self> {
        use base64::Engine;
        let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let raw = auth.strip_prefix("Bearer ")?;
        let mut parts = raw.split('.');
        let (_, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if signature != "emu" || parts.next().is_some() {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        Some(Self {
            tenant: claims["tid"].as_str()?.to_owned(),
            app_id: claims["appid"].as_str()?.to_owned(),
            resource: claims["aud"].as_str()?.to_owned(),
            issued: DateTime::from_timestamp_millis(claims["iat_ms"].as_i64()?)?,
            roles: claims["roles"]
                .as_array()
                .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            oid: claims["oid"].as_str().map(str::to_owned),
            user: claims["idtyp"].as_str() == Some("user"),
        })
    }

    /// Whether the token carries Graph application permission `role`.
    pub(crate) fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

pub(crate) async fn token(
    State(emu): State<Emulator>,
    Path(tenant_in): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    let world = emu.world();
    if matches!(
        form.grant_type.as_str(),
        "password" | "refresh_token" | "urn:ietf:params:oauth:grant-type:device_code"
    ) {
        return user_token(&world, &tenant_in, &form, &headers);
    }
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
    if !is_arm(&resource) && !is_graph(&resource) {
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
    let now = now();
    match (
        form.client_secret.filter(|s| !s.is_empty()),
        form.client_assertion.filter(|a| !a.is_empty()),
    ) {
        (Some(secret), _) => {
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
        }
        (None, Some(assertion)) => {
            if form.client_assertion_type.as_deref() != Some(JWT_BEARER) {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    50027,
                    "JWT token is invalid or malformed: client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                );
            }
            if let Err(refusal) = federation::check(
                app,
                &assertion,
                now.timestamp(),
                world.behaviour.federated_credential_delay_seconds as i64,
            )
            .await
            {
                return aad_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    refusal.code,
                    &refusal.message,
                );
            }
        }
        (None, None) => {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
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
    // Graph tokens carry the app's application permissions (`roles`), as Entra's do.
    let roles = if is_graph(&resource) {
        let mut roles = app.graph_roles.clone();
        if app.manages_own_credentials {
            roles.push("Application.ReadWrite.OwnedBy".to_owned());
        }
        roles
    } else {
        Vec::new()
    };
    let token = Token {
        tenant: tenant.id.to_ascii_lowercase(),
        app_id: app.app_id.to_ascii_lowercase(),
        resource,
        issued: now,
        roles,
        oid: Some(app.principal_id.clone()).filter(|p| !p.is_empty()),
        user: false,
    };
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token.encode()}))
        .into_response()
}

pub(crate) async fn openid(
    State(emu): State<Emulator>,
    Path(tenant_in): Path<String>,
    headers: HeaderMap,
) -> Response {
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
        "device_authorization_endpoint": format!("{base}/{}/oauth2/v2.0/devicecode", tenant.id),
        "tenant_region_scope": "EU",
    }))
    .into_response()
}

pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = headers
        .get(super::SCHEME_HEADER)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// A user signs in (`az login -u … -p …`: the password grant), and later tokens come from the
/// refresh token (another resource, another tenant path). The answer carries what MSAL keeps of
/// an account: `id_token` (unsigned here) and `client_info`.
fn user_token(world: &World, tenant_in: &str, form: &TokenForm, headers: &HeaderMap) -> Response {
    use base64::Engine;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let username = match form.grant_type.as_str() {
        "password" => form.username.clone().unwrap_or_default(),
        _ => form
            .refresh_token
            .as_deref()
            .or(form.device_code.as_deref())
            .and_then(|t| t.strip_prefix("emu-rt.").or_else(|| t.strip_prefix("emu-dc.")))
            .and_then(|t| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default(),
    };
    let found = world.tenants.iter().find_map(|t| {
        t.users
            .iter()
            .find(|u| u.user_principal_name.eq_ignore_ascii_case(&username))
            .map(|u| (t, u))
    });
    let Some((tenant, user)) = found else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50034,
            "The user account does not exist in this directory.",
        );
    };
    if form.grant_type == "password" && form.password.as_deref() != Some(user.password.as_str()) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        );
    }
    if !matches!(tenant_in, "organizations" | "common")
        && find_tenant(world, tenant_in).is_none_or(|t| t.id != tenant.id)
    {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50020,
            "The user account does not exist in the tenant.",
        );
    }
    let resource = form
        .scope
        .split(' ')
        .find(|s| s.ends_with("/.default"))
        .and_then(|s| s.strip_suffix("/.default"))
        .map(|r| r.trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let now = now();
    let token = Token {
        tenant: tenant.id.to_ascii_lowercase(),
        app_id: user.object_id.to_ascii_lowercase(),
        resource,
        issued: now,
        roles: Vec::new(),
        oid: Some(user.object_id.clone()),
        user: true,
    };
    let base = base_url(headers);
    let id_token = format!(
        "{}.{}.",
        b64(json!({"typ": "JWT", "alg": "none"}).to_string().as_bytes()),
        b64(json!({
            "iss": format!("{base}/{}/v2.0", tenant.id),
            "aud": form.client_id,
            "iat": now.timestamp(), "nbf": now.timestamp(), "exp": now.timestamp() + 3600,
            "oid": user.object_id, "sub": user.object_id, "tid": tenant.id,
            "preferred_username": user.user_principal_name, "name": user.display_name,
        })
        .to_string()
        .as_bytes())
    );
    axum::Json(json!({
        "token_type": "Bearer",
        "scope": form.scope,
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": token.encode(),
        "refresh_token": format!("emu-rt.{}", b64(user.user_principal_name.as_bytes())),
        "id_token": id_token,
        "client_info": b64(json!({"uid": user.object_id, "utid": tenant.id}).to_string().as_bytes()),
    }))
    .into_response()
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`: a device code that the tenant's `deviceCodeUser`
/// completes at once (the first poll gets the tokens).
pub(crate) async fn device_code(State(emu): State<Emulator>, Path(tenant_in): Path<String>) -> Response {
    use base64::Engine;
    let world = emu.world();
    let Some(tenant) = find_tenant(&world, &tenant_in).filter(|t| !t.device_code_user.is_empty()) else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant_in}' has no one to complete a device code sign-in."),
        );
    };
    let code = format!(
        "emu-dc.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tenant.device_code_user.as_bytes())
    );
    axum::Json(json!({
        "device_code": code,
        "user_code": "EMULATOR",
        "verification_uri": "https://microsoft.com/devicelogin",
        "expires_in": 900,
        "interval": 1,
        "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code EMULATOR to authenticate.",
    }))
    .into_response()
}
