//! A stand-in for the console's identity provider: an OpenID discovery document and JWKS on a
//! loopback port, and RS256 tokens with whatever claims a test needs (signed by a fresh key).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use shared::issuer::Signer;
use shared::issuer::local::LocalKey;

#[derive(Debug, Clone)]
pub struct Idp {
    pub issuer: String,
    key: Arc<LocalKey>,
}

impl Idp {
    pub async fn start() -> Self {
        let key = Arc::new(LocalKey::ephemeral().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let (jwks, me) = (json!({"keys": key.keys()}), issuer.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let me = me.clone();
                    async move { axum::Json(json!({"issuer": me, "jwks_uri": format!("{me}/keys")})) }
                }),
            )
            .route(
                "/keys",
                axum::routing::get(move || {
                    let jwks = jwks.clone();
                    async move { axum::Json(jwks) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { issuer, key }
    }

    /// A token of this issuer for `audience`, naming `org` (claim `org_id`), valid for an hour.
    pub async fn token(&self, org: &str, audience: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        self.sign(&json!({"iss": self.issuer, "aud": audience, "org_id": org, "sub": "user-1", "iat": now, "exp": now + 3600}))
            .await
    }

    /// Any claims, signed.
    pub async fn sign(&self, claims: &Value) -> String {
        let kid = &self.key.keys()[0].kid;
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let signed = format!(
            "{}.{}",
            b64(&json!({"alg": "RS256", "typ": "JWT", "kid": kid})),
            b64(claims)
        );
        let sig = self.key.sign(signed.as_bytes()).await.unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}
