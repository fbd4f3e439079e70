//! The console's user tokens, for console events that must prove their organization: a JWT of
//! the console's identity provider (the same one the HTTP API's JWT authorizer trusts), verified
//! as that authorizer does (RS256 signature by a key of the issuer's JWKS, `iss`, `aud`, `exp`,
//! `nbf`), the organization taken from its claim.
//!
//! The port is [`ConsoleTokens`]; [`Jwks`] the adapter: the issuer's discovery document and keys
//! over HTTPS (rustls), fetched once per cold start and again when a token names a key not yet
//! known (key rollover), at most once a minute; signatures checked with aws-lc-rs (already
//! there for TLS).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::RwLock;

use crate::domain::OrgId;

/// Why a token was refused. Never the token or a claim's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token is not signed with RS256")]
    Algorithm,
    #[error("the token's key is not one of the issuer's")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token is of another issuer")]
    Issuer,
    #[error("the token is for another audience")]
    Audience,
    #[error("the token has expired or is not valid yet")]
    Expired,
    #[error("the token names no organization")]
    NoOrganization,
    #[error("the issuer's keys could not be fetched")]
    KeysUnavailable,
}

impl TokenRefused {
    /// Worth delivering the event again (the issuer's keys were out of reach).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::KeysUnavailable)
    }
}

#[async_trait]
pub trait ConsoleTokens: Send + Sync + fmt::Debug {
    /// The organization of a verified token.
    async fn organization(&self, token: &str) -> Result<OrgId, TokenRefused>;
}

/// Leeway for clocks (`exp`, `nbf`).
const LEEWAY_SECS: i64 = 60;
/// Unknown keys refetch the JWKS at most this often.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// Tokens of `issuer` for one of `audiences`, the organization in `org_claim`.
pub struct Jwks {
    issuer: String,
    audiences: Vec<String>,
    org_claim: String,
    http: reqwest::Client,
    keys: RwLock<KeyCache>,
}

/// The keys last fetched, when the last fetch was tried, and whether it failed.
#[derive(Default)]
struct KeyCache {
    keys: Keys,
    tried_at: Option<Instant>,
    failed: bool,
}

/// An RSA key's modulus and exponent (big-endian).
type RsaKey = (Vec<u8>, Vec<u8>);
/// `kid` → its key.
type Keys = HashMap<String, RsaKey>;

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwks")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

impl Jwks {
    pub fn new(
        issuer: impl Into<String>,
        audiences: Vec<String>,
        org_claim: impl Into<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audiences,
            org_claim: org_claim.into(),
            http,
            keys: RwLock::new(KeyCache::default()),
        }
    }

    async fn fetch(&self) -> Result<Keys, TokenRefused> {
        let get = |url: String| async move {
            let res = self
                .http
                .get(url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|_| TokenRefused::KeysUnavailable)?;
            res.json::<Value>()
                .await
                .map_err(|_| TokenRefused::KeysUnavailable)
        };
        let discovery = get(format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        ))
        .await?;
        let uri = discovery["jwks_uri"]
            .as_str()
            .ok_or(TokenRefused::KeysUnavailable)?
            .to_owned();
        let jwks = get(uri).await?;
        let b64 = |v: &Value| v.as_str().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
        // Signing keys for RS256 only: `use` "sig" or absent, `alg` "RS256" or absent (RFC 7517
        // 4.2, 4.4); an encryption key or one of another algorithm never verifies a token.
        let absent_or = |v: &Value, want: &str| v.is_null() || v.as_str() == Some(want);
        Ok(jwks["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|k| k["kty"] == "RSA" && absent_or(&k["use"], "sig") && absent_or(&k["alg"], "RS256"))
            .filter_map(|k| Some((k["kid"].as_str()?.to_owned(), (b64(&k["n"])?, b64(&k["e"])?))))
            .collect())
    }

    /// The key `kid`, fetching the keys when it is not known: at most once a minute, whether the
    /// last fetch worked or failed (an issuer that is down is not asked at every request).
    async fn key(&self, kid: &str) -> Result<RsaKey, TokenRefused> {
        let recent = |c: &KeyCache| c.tried_at.is_some_and(|at| at.elapsed() < REFETCH_AFTER);
        let known_or_rested = |c: &KeyCache| -> Option<Result<RsaKey, TokenRefused>> {
            if let Some(k) = c.keys.get(kid) {
                return Some(Ok(k.clone()));
            }
            recent(c).then_some(Err(if c.failed {
                TokenRefused::KeysUnavailable
            } else {
                TokenRefused::UnknownKey
            }))
        };
        if let Some(answer) = known_or_rested(&*self.keys.read().await) {
            return answer;
        }
        // One fetch at a time: whoever waited here finds what it fetched.
        let mut cache = self.keys.write().await;
        if let Some(answer) = known_or_rested(&cache) {
            return answer;
        }
        cache.tried_at = Some(Instant::now());
        match self.fetch().await {
            Ok(fetched) => {
                cache.keys = fetched;
                cache.failed = false;
                cache.keys.get(kid).cloned().ok_or(TokenRefused::UnknownKey)
            }
            Err(e) => {
                cache.failed = true;
                Err(e)
            }
        }
    }
}

#[async_trait]
impl ConsoleTokens for Jwks {
    async fn organization(&self, token: &str) -> Result<OrgId, TokenRefused> {
        let mut parts = token.trim().split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenRefused::Malformed);
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenRefused::Malformed);
        let header: Header = serde_json::from_slice(&decode(h)?).map_err(|_| TokenRefused::Malformed)?;
        if header.alg != "RS256" {
            return Err(TokenRefused::Algorithm);
        }
        let (n, e) = self.key(header.kid.as_deref().unwrap_or_default()).await?;
        let signed = &token.trim()[..h.len() + 1 + p.len()];
        aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e }
            .verify(
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                signed.as_bytes(),
                &decode(s)?,
            )
            .map_err(|_| TokenRefused::Signature)?;
        let claims: Value = serde_json::from_slice(&decode(p)?).map_err(|_| TokenRefused::Malformed)?;
        if claims["iss"].as_str() != Some(self.issuer.as_str()) {
            return Err(TokenRefused::Issuer);
        }
        let audiences: Vec<&str> = match &claims["aud"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !audiences
            .iter()
            .any(|a| self.audiences.iter().any(|ours| ours == a))
        {
            return Err(TokenRefused::Audience);
        }
        let now = chrono::Utc::now().timestamp();
        let exp = claims["exp"].as_i64().ok_or(TokenRefused::Expired)?;
        let nbf = claims["nbf"].as_i64().unwrap_or(i64::MIN);
        if now > exp.saturating_add(LEEWAY_SECS) || now < nbf.saturating_sub(LEEWAY_SECS) {
            return Err(TokenRefused::Expired);
        }
        claims[self.org_claim.as_str()]
            .as_str()
            .and_then(|o| OrgId::parse(o).ok())
            .ok_or(TokenRefused::NoOrganization)
    }
}
