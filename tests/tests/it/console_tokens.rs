//! Console tokens checked against their issuer's keys (`tests/src/idp.rs`, on a loopback port):
//! only signing keys for RS256 verify a token (`use` "sig" or absent, `alg` "RS256" or absent:
//! RFC 7517 4.2 and 4.4), and the keys are fetched at most once a minute, whether the last fetch
//! worked or failed (an issuer that is down is not asked at every request).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use integration_tests::idp::Idp;
use serde_json::{Value, json};
use shared::tokens::{ConsoleTokens, Jwks, TokenRefused};

fn jwks(idp: &Idp) -> Jwks {
    Jwks::new(
        &idp.issuer,
        vec!["azure-connect".into()],
        "org_id",
        reqwest::Client::new(),
    )
}

#[tokio::test]
async fn only_a_signing_key_for_rs256_verifies_a_token() {
    /// What the key says of itself, and whether it verifies.
    type Case = (&'static str, fn(&mut Value), bool);
    let cases: [Case; 5] = [
        ("use and alg absent", |_| {}, true),
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
    ];
    for (what, edit, accepted) in cases {
        let idp = Idp::start_with(edit).await;
        let answer = jwks(&idp)
            .organization(&idp.token("org-a", "azure-connect").await)
            .await;
        if accepted {
            assert_eq!(answer.map(|o| o.to_string()), Ok("org-a".to_owned()), "{what}");
        } else {
            assert_eq!(answer, Err(TokenRefused::UnknownKey), "{what}");
        }
    }
}

#[tokio::test]
async fn an_issuer_that_is_down_is_asked_at_most_once_a_minute() {
    let idp = Idp::start().await;
    idp.down.store(true, Ordering::SeqCst);
    let jwks = Arc::new(jwks(&idp));
    let token = idp.token("org-a", "azure-connect").await;
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
        idp.fetches.load(Ordering::SeqCst),
        1,
        "asked more than once in a minute"
    );
    // Up again: still resting until the minute is over (the keys are not asked for again).
    idp.down.store(false, Ordering::SeqCst);
    assert_eq!(
        jwks.organization(&token).await,
        Err(TokenRefused::KeysUnavailable)
    );
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
}
