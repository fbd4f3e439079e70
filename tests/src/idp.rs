//! A stand-in for the console's identity provider: an OpenID discovery document and JWKS on a
//! loopback port, and RS256 tokens with whatever claims a test needs (signed by a fresh key). It
//! counts the key fetches and can be taken down (the JWKS then answers 503).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use shared::issuer::Signer;
use shared::issuer::local::LocalKey;

#[derive(Debug, Clone)]
pub struct Idp {
    pub issuer: String,
    key: Arc<LocalKey>,
    /// How often the JWKS was fetched.
    pub fetches: Arc<AtomicUsize>,
    /// While set, the JWKS answers 503.
    pub down: Arc<AtomicBool>,
}

impl Idp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// An issuer whose JWKS holds its one key with `edit` applied (`use`, `alg`, …).
    pub async fn start_with(edit: fn(&mut Value)) -> Self {
        let key = Arc::new(LocalKey::ephemeral().unwrap());
        let mut jwk = serde_json::to_value(&key.keys()[0]).unwrap();
        edit(&mut jwk);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let (fetches, down) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (jwks, me, f, d) = (
            json!({"keys": [jwk]}),
            issuer.clone(),
            fetches.clone(),
            down.clone(),
        );
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
                    let (jwks, f, d) = (jwks.clone(), f.clone(), d.clone());
                    async move {
                        f.fetch_add(1, Ordering::SeqCst);
                        if d.load(Ordering::SeqCst) {
                            Err(axum::http::StatusCode::SERVICE_UNAVAILABLE)
                        } else {
                            Ok(axum::Json(jwks))
                        }
                    }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            issuer,
            key,
            fetches,
            down,
        }
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
