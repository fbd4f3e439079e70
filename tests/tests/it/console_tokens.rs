//! Console tokens checked against their issuer's keys, with an issuer of our own on a loopback
//! port: only signing keys for RS256 verify a token (`use` "sig" or absent, `alg` "RS256" or
//! absent: RFC 7517 4.2 and 4.4), and the keys are fetched at most once a minute, whether the last
//! fetch worked or failed (an issuer that is down is not asked at every request).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use shared::issuer::Signer;
use shared::issuer::local::LocalKey;
use shared::tokens::{ConsoleTokens, Jwks, TokenRefused};

struct Issuer {
    url: String,
    key: Arc<LocalKey>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

/// An issuer whose JWKS holds its one key with `edit` applied.
async fn issuer(edit: fn(&mut Value)) -> Issuer {
    let key = Arc::new(LocalKey::ephemeral().unwrap());
    let mut jwk = serde_json::to_value(&key.keys()[0]).unwrap();
    edit(&mut jwk);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (fetches, down) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let (me, f, d) = (url.clone(), fetches.clone(), down.clone());
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
                let (jwks, f, d) = (json!({"keys": [jwk.clone()]}), f.clone(), d.clone());
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
    Issuer {
        url,
        key,
        fetches,
        down,
    }
}

impl Issuer {
    fn jwks(&self) -> Jwks {
        Jwks::new(
            &self.url,
            vec!["azure-connect".into()],
            "org_id",
            reqwest::Client::new(),
        )
    }

    async fn token(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"iss": self.url, "aud": "azure-connect", "org_id": "org-a", "exp": now + 600});
        let kid = &self.key.keys()[0].kid;
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let signed = format!("{}.{}", b64(&json!({"alg": "RS256", "kid": kid})), b64(&claims));
        let sig = self.key.sign(signed.as_bytes()).await.unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

#[tokio::test]
async fn only_a_signing_key_for_rs256_verifies_a_token() {
    for (what, edit, accepted) in [
        ("use and alg absent", (|_| {}) as fn(&mut Value), true),
        (
            "use sig, alg RS256",
            |k| {
                k["use"] = json!("sig");
                k["alg"] = json!("RS256");
            },
            true,
        ),
        ("an encryption key", |k| k["use"] = json!("enc"), false),
        ("a key for RS512", |k| k["alg"] = json!("RS512"), false),
        ("a key for RSA-OAEP", |k| k["alg"] = json!("RSA-OAEP"), false),
    ] {
        let issuer = issuer(edit).await;
        let answer = issuer.jwks().organization(&issuer.token().await).await;
        if accepted {
            assert_eq!(answer.map(|o| o.to_string()), Ok("org-a".to_owned()), "{what}");
        } else {
            assert_eq!(answer, Err(TokenRefused::UnknownKey), "{what}");
        }
    }
}

#[tokio::test]
async fn an_issuer_that_is_down_is_asked_at_most_once_a_minute() {
    let issuer = issuer(|_| {}).await;
    issuer.down.store(true, Ordering::SeqCst);
    let jwks = Arc::new(issuer.jwks());
    let token = issuer.token().await;
    // A burst of checks, some at once: one fetch, each refused as retryable.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (jwks, token) = (jwks.clone(), token.clone());
        burst.spawn(async move { jwks.organization(&token).await });
    }
    while let Some(answer) = burst.join_next().await {
        assert_eq!(answer.unwrap(), Err(TokenRefused::KeysUnavailable));
    }
    assert_eq!(
        issuer.fetches.load(Ordering::SeqCst),
        1,
        "asked more than once in a minute"
    );
    // Up again: still resting until the minute is over (the keys are not asked for again).
    issuer.down.store(false, Ordering::SeqCst);
    assert_eq!(
        jwks.organization(&token).await,
        Err(TokenRefused::KeysUnavailable)
    );
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1);
}
