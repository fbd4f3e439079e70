//! What Azure (or something posing as it) can send back must not turn against us: a redirect is
//! never followed (a token request would carry the secret to it, an ARM call its bearer token),
//! a `nextLink` is followed only to the endpoint it came from, and a `Retry-After` of any size is
//! a time-out in the budget, not a crash. Each against a real HTTP server on a loopback port.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use integration_tests::SECRET;
use secrecy::SecretString;
use shared::azure::{AccessToken, AzureHttp, AzureReads, Cloud, Credential, TokenClient};
use shared::domain::{ClientId, ClientSecret, SubscriptionId, TenantId};

/// A server whose every request counts and is answered by `answer`.
async fn server(
    answer: impl Fn(&str) -> axum::response::Response + Clone + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (answer, counted) = (answer.clone(), counted.clone());
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            answer(req.uri().path())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

fn azure_at(url: &str) -> AzureHttp {
    let cloud = Cloud {
        authority_host: url.to_owned(),
        resource_manager: url.to_owned(),
        graph: url.to_owned(),
        ..Cloud::preset("public").unwrap()
    };
    AzureHttp::new(cloud, Duration::from_secs(5), Duration::from_secs(2)).unwrap()
}

fn ids() -> (TenantId, ClientId, SubscriptionId) {
    (
        TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
        ClientId::parse("11111111-2222-4333-8444-555555555555").unwrap(),
        SubscriptionId::parse("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab").unwrap(),
    )
}

#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_not_followed_with_the_secret() {
    let (elsewhere, stolen) = server(|_| StatusCode::OK.into_response()).await;
    let target = format!("{elsewhere}/collect");
    let (login, hits) = server(move |_| {
        let mut h = HeaderMap::new();
        h.insert("location", target.parse().unwrap());
        (StatusCode::TEMPORARY_REDIRECT, h).into_response()
    })
    .await;
    let (tenant, client, _) = ids();
    let secret = ClientSecret::parse(SecretString::from(SECRET.to_owned())).unwrap();
    let got = azure_at(&login)
        .token(
            &tenant,
            &client,
            Credential::Secret(&secret),
            "https://management.azure.com/.default",
        )
        .await;
    assert!(got.is_err(), "a redirect is no token");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        stolen.load(Ordering::SeqCst),
        0,
        "the secret was sent on to the redirect's target"
    );
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed_with_the_token() {
    let (elsewhere, stolen) = server(|_| axum::Json(serde_json::json!({"value": []})).into_response()).await;
    let next = format!("{elsewhere}/subscriptions/x/providers/Microsoft.Authorization/permissions");
    let (arm, _) = server(move |_| {
        axum::Json(
            serde_json::json!({"value": [{"actions": ["Microsoft.Compute/*/read"]}], "nextLink": next}),
        )
        .into_response()
    })
    .await;
    let (_, _, sub) = ids();
    let got = azure_at(&arm)
        .permissions(&AccessToken::new("eyJ0.token.sig".into()), &sub)
        .await;
    assert!(got.is_err(), "{got:?}");
    assert_eq!(
        stolen.load(Ordering::SeqCst),
        0,
        "the bearer token went to another host"
    );
}

#[tokio::test]
async fn a_next_link_on_the_same_endpoint_is_followed() {
    let me: Arc<std::sync::OnceLock<String>> = Arc::default();
    let url = me.clone();
    let (arm, hits) = server(move |path| {
        if path == "/second" {
            axum::Json(serde_json::json!({"value": [{"actions": ["b"]}]})).into_response()
        } else {
            let next = format!("{}/second", url.get().unwrap());
            axum::Json(serde_json::json!({"value": [{"actions": ["a"]}], "nextLink": next})).into_response()
        }
    })
    .await;
    me.set(arm.clone()).unwrap();
    let (_, _, sub) = ids();
    let got = azure_at(&arm)
        .permissions(&AccessToken::new("eyJ0.token.sig".into()), &sub)
        .await
        .unwrap();
    assert_eq!(got.len(), 2, "both pages");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_retry_after_of_any_size_is_a_time_out_not_a_crash() {
    let (login, hits) = server(|_| {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "18446744073709551615".parse().unwrap());
        (StatusCode::TOO_MANY_REQUESTS, h, "{}").into_response()
    })
    .await;
    let validator = integration_tests::azure_at(&login, Duration::from_secs(2))
        .validator()
        .unwrap();
    let (tenant, client, _) = ids();
    let secret = ClientSecret::parse(SecretString::from(SECRET.to_owned())).unwrap();
    let started = Instant::now();
    let outcome = validator.check_credentials(&tenant, &client, &secret).await;
    assert!(outcome.is_err(), "throttled is no token");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a wait past the budget is not waited"
    );
}
