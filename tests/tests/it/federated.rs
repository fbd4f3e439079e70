//! Secretless connections end to end: our API serves its OpenID issuer on a real port, the Azure
//! emulator fetches its discovery document and keys like Entra ID and checks every assertion; a
//! federated connection walks to `connected` on both stores with no secret anywhere; the keys roll
//! over (KMS in moto, two keys); a connection moves off its secret.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use tower::ServiceExt;

use azure_emulator::{Emulator, World};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use integration_tests::{SECRET, STORES, StoreKind, app, emulator, send_json, store};
use serde_json::{Value, json};
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};
use shared::events::MemorySink;
use shared::issuer::Issuer;
use shared::issuer::kms::KmsSigner;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP: &str = "11111111-2222-4333-8444-555555555555";
const SUB: &str = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab";

fn world() -> World {
    World::single(
        TENANT,
        "contoso.onmicrosoft.com",
        APP,
        &[SECRET],
        SUB,
        Some(
            shared::domain::role::required_actions()
                .map(str::to_owned)
                .collect(),
        ),
    )
}

/// Our API on a free port (the emulator must reach its issuer over HTTP), with `signer`'s keys.
struct Api {
    router: axum::Router,
    emulator: Emulator,
    sink: Arc<MemorySink>,
    issuer_url: String,
    /// The secret name prefix (Secrets Manager), to look at the versions.
    prefix: String,
    /// What Entra fetches can be made to fail: the issuer's routes answer 503.
    issuer_down: Arc<AtomicBool>,
    /// A JWKS to serve instead of ours.
    jwks_instead: Arc<Mutex<Option<Value>>>,
}

impl Api {
    async fn start(
        kind: StoreKind,
        emulator: Emulator,
        azure: shared::config::AzureConfig,
        signer: Option<Arc<dyn shared::issuer::Signer>>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer_url = format!("http://{}/oidc", listener.local_addr().unwrap());
        let issuer = Arc::new(match signer {
            Some(signer) => Issuer::new(&issuer_url, signer),
            None => {
                let key = shared::issuer::local::LocalKey::ephemeral().unwrap();
                Issuer::new(&issuer_url, Arc::new(key))
            }
        });
        let validator = azure.validator().unwrap().with_issuer(issuer.clone());
        let prefix = integration_tests::unique_prefix();
        let store: Arc<dyn shared::store::ConnectionStore> = match kind {
            StoreKind::SecretsManager => integration_tests::sm_store(&prefix).await,
            StoreKind::Embedded => store(kind).await,
        };
        let (app, sink) = app(store);
        let app = app.with_validator(Arc::new(validator)).with_issuer(issuer);
        let router = router(app, OrgSource::local_header(), &Function::ALL);
        let issuer_down = Arc::new(AtomicBool::new(false));
        let jwks_instead: Arc<Mutex<Option<Value>>> = Arc::default();
        let (real, down, instead) = (router.clone(), issuer_down.clone(), jwks_instead.clone());
        let front = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (real, down, instead) = (real.clone(), down.clone(), instead.clone());
            async move {
                let path = req.uri().path().to_owned();
                if path.starts_with("/oidc/") && down.load(Ordering::SeqCst) {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                if path == "/oidc/jwks" {
                    if let Some(jwks) = instead.lock().unwrap().clone() {
                        return axum::Json(jwks).into_response();
                    }
                }
                real.oneshot(req).await.into_response()
            }
        });
        tokio::spawn(async move { axum::serve(listener, front).await.unwrap() });
        Self {
            router,
            emulator,
            sink,
            issuer_url,
            prefix,
            issuer_down,
            jwks_instead,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let r = send_json(&self.router, method, path, Some("org-1"), body.as_ref()).await;
        (r.status.as_u16(), r.body)
    }

    /// Start, app registration, federated credential values, subscription, role: all but connect.
    async fn walk(&self) -> (String, Value) {
        let (st, c) = self
            .call(
                "POST",
                "/connections",
                Some(json!({"accountId": "act-0f0f0f0f", "credentialType": "federated"})),
            )
            .await;
        assert_eq!(st, 201, "{c}");
        assert_eq!(c["credentialType"], "federated");
        let id = c["connectionId"].as_str().unwrap().to_owned();
        let base = format!("/connections/{id}");
        let (st, c) = self
            .call(
                "PUT",
                &format!("{base}/app-registration"),
                Some(json!({"tenantId": TENANT, "clientId": APP})),
            )
            .await;
        assert_eq!(
            (st, c["nextStep"].as_str()),
            (200, Some("federated-credential")),
            "{c}"
        );
        let (st, values) = self
            .call("GET", &format!("{base}/federated-credential"), None)
            .await;
        assert_eq!(st, 200, "{values}");
        let (_, c) = self.call("GET", &base, None).await;
        assert_eq!(c["nextStep"], "subscription", "{c}");
        let (st, _) = self
            .call(
                "PUT",
                &format!("{base}/subscription"),
                Some(json!({"subscriptionId": SUB})),
            )
            .await;
        assert_eq!(st, 200);
        let (st, _) = self.call("GET", &format!("{base}/custom-role"), None).await;
        assert_eq!(st, 200);
        (id, values)
    }

    /// The customer adds the federated credential to the app, with exactly the values handed out.
    fn add_credential(&self, values: &Value) {
        integration_tests::add_federated_credential(&self.emulator, values);
    }

    /// The assertions the emulator received, decoded.
    fn assertions(&self) -> Vec<(Value, Value)> {
        self.emulator
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
            .map(|r| {
                let form: Vec<(String, String)> = url_pairs(&r.body);
                assert!(
                    !form.iter().any(|(k, _)| k == "client_secret"),
                    "a federated token request carries no secret"
                );
                let assertion = &form.iter().find(|(k, _)| k == "client_assertion").unwrap().1;
                let mut parts = assertion.split('.');
                let decode =
                    |p: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
                (decode(parts.next().unwrap()), decode(parts.next().unwrap()))
            })
            .collect()
    }
}

fn url_pairs(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn a_federated_connection_walks_to_connected_with_no_secret_anywhere() {
    for kind in STORES {
        let (emu, azure) = emulator(world(), Duration::from_secs(5)).await;
        let api = Api::start(kind, emu, azure, None).await;
        let (id, values) = api.walk().await;
        assert_eq!(values["issuer"], api.issuer_url);
        let subject = values["subject"].as_str().unwrap();
        let salt = subject
            .strip_prefix(&format!("azure-connect:org:org-1:connection:{id}:"))
            .unwrap_or_else(|| panic!("{subject}"));
        assert!(
            salt.len() == 32 && salt.bytes().all(|b| b.is_ascii_hexdigit()),
            "{subject}"
        );
        assert_eq!(values["audiences"], json!(["api://AzureADTokenExchange"]));

        // Connect before the credential exists: the diagnosis sends the customer back to it.
        let (st, p) = api
            .call("POST", &format!("/connections/{id}/connect"), None)
            .await;
        assert_eq!(st, 422, "{p}");
        assert_eq!(
            (p["step"].as_str(), p["code"].as_str()),
            (
                Some("federated-credential"),
                Some("federated-credential-not-found")
            ),
            "{p}"
        );
        assert_eq!(p["retryable"], true);

        api.add_credential(&values);
        let (st, c) = api
            .call("POST", &format!("/connections/{id}/connect"), None)
            .await;
        assert_eq!(st, 200, "{kind:?}: {c}");
        assert_eq!(
            (c["status"].as_str(), c["clientSecret"].as_str()),
            (Some("connected"), None),
            "{c}"
        );

        let assertions = api.assertions();
        assert!(
            assertions.len() >= 3,
            "ARM and Graph tokens, before and after: {}",
            assertions.len()
        );
        let mut jtis = std::collections::BTreeSet::new();
        for (header, claims) in &assertions {
            assert_eq!(header["alg"], "RS256");
            assert_eq!(claims["iss"], api.issuer_url);
            assert_eq!(claims["sub"], values["subject"]);
            assert_eq!(claims["aud"], "api://AzureADTokenExchange");
            let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
            assert!((1..=600).contains(&lifetime), "lifetime {lifetime} s");
            assert!(
                jtis.insert(claims["jti"].as_str().unwrap().to_owned()),
                "a fresh assertion per request"
            );
        }
        // No assertion, and nothing of a secret, in any event.
        let events = serde_json::to_string(&api.sink.events()).unwrap();
        assert!(
            !events.contains("client_assertion") && !events.contains("eyJ"),
            "an assertion went out in an event"
        );
        assert!(events.contains("Federated Credential Exported"));
        assert!(events.contains("Account Connected"));

        // The store holds no secret for it (nor anything like an assertion).
        if let StoreKind::SecretsManager = kind {
            let sm = aws_sdk_secretsmanager::Client::new(&integration_tests::sdk_config().await);
            let doc = sm
                .get_secret_value()
                .secret_id(format!("{}org-1/{id}", api.prefix))
                .version_stage("AWSCURRENT")
                .send()
                .await
                .unwrap();
            let doc: Value = serde_json::from_str(doc.secret_string().unwrap()).unwrap();
            assert_eq!(doc["credentialType"], "federated", "{doc}");
            assert!(
                doc.get("clientSecret").is_none() && !doc.to_string().contains("eyJ"),
                "{doc}"
            );
        }

        // Spot's credentials API reports it, with no secret field at all.
        let (st, spot) = api
            .call("GET", "/azure/setup/credentials?accountId=act-0f0f0f0f", None)
            .await;
        assert_eq!(st, 200, "{spot}");
        let item = &spot["response"]["items"][0];
        assert_eq!(
            (item["credentialType"].as_str(), item["status"].as_str()),
            (Some("federated"), Some("connected")),
            "{item}"
        );
        assert!(
            item.get("clientSecret").is_none() && item.get("expirationDate").is_none(),
            "{item}"
        );
    }
}

#[tokio::test]
async fn every_mismatch_is_diagnosed_at_the_federated_step() {
    let (emu, azure) = emulator(world(), Duration::from_secs(3)).await;
    let api = Api::start(StoreKind::Embedded, emu, azure, None).await;
    let (id, values) = api.walk().await;
    let cases = [
        (
            "issuer",
            json!("https://elsewhere.example.com/oidc"),
            "federated-credential-issuer-mismatch",
        ),
        (
            "subject",
            json!("azure-connect:org:org-1:connection:another"),
            "federated-credential-subject-mismatch",
        ),
        (
            "audiences",
            json!(["api://SomethingElse"]),
            "federated-credential-audience-mismatch",
        ),
    ];
    for (field, wrong, code) in cases {
        let mut bad = values.clone();
        bad[field] = wrong;
        api.emulator
            .update(|w| w.tenants[0].apps[0].federated_credentials.clear());
        api.add_credential(&bad);
        let (st, p) = api
            .call("POST", &format!("/connections/{id}/connect"), None)
            .await;
        assert_eq!(
            (st, p["step"].as_str(), p["code"].as_str()),
            (422, Some("federated-credential"), Some(code)),
            "{field}: {p}"
        );
    }
}

#[tokio::test]
async fn an_issuer_azure_cannot_reach_is_ours_and_retryable() {
    let (emu, azure) = emulator(world(), Duration::from_secs(3)).await;
    let api = Api::start(StoreKind::Embedded, emu, azure, None).await;
    let (id, values) = api.walk().await;
    api.add_credential(&values);
    api.issuer_down.store(true, Ordering::SeqCst);
    let (st, p) = api
        .call("POST", &format!("/connections/{id}/connect"), None)
        .await;
    assert_eq!(
        (
            st,
            p["step"].as_str(),
            p["code"].as_str(),
            p["retryable"].as_bool()
        ),
        (
            500,
            Some("federated-credential"),
            Some("issuer-unreachable"),
            Some(true)
        ),
        "{p}"
    );
    api.issuer_down.store(false, Ordering::SeqCst);
    let (st, c) = api
        .call("POST", &format!("/connections/{id}/connect"), None)
        .await;
    assert_eq!(st, 200, "back once the issuer answers: {c}");
}

/// Two KMS keys in moto: the first signs, all are published.
async fn kms_keys(n: usize) -> (aws_sdk_kms::Client, Vec<String>) {
    let kms = aws_sdk_kms::Client::new(&integration_tests::sdk_config().await);
    let mut ids = Vec::new();
    for _ in 0..n {
        let key = kms
            .create_key()
            .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
            .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
            .send()
            .await
            .unwrap();
        ids.push(key.key_metadata().unwrap().key_id().to_owned());
    }
    (kms, ids)
}

#[tokio::test]
async fn keys_roll_over_without_a_failed_sign_in() {
    let (kms, keys) = kms_keys(2).await;
    let (old, new) = (keys[0].clone(), keys[1].clone());
    // Each phase: the keys published (the first signs). The old key stays published until its
    // assertions have expired; the new one is published before it signs.
    let phases: [(&str, Vec<String>); 4] = [
        ("before", vec![old.clone()]),
        ("new key published", vec![old.clone(), new.clone()]),
        ("new key signs", vec![new.clone(), old.clone()]),
        ("old key gone", vec![new.clone()]),
    ];
    for (phase, ids) in phases {
        let signer = KmsSigner::load(kms.clone(), ids.clone()).await.unwrap();
        use shared::issuer::Signer as _;
        assert_eq!(signer.keys().len(), ids.len(), "{phase}: every key published");
        let (emu, azure) = emulator(world(), Duration::from_secs(5)).await;
        let api = Api::start(StoreKind::Embedded, emu, azure, Some(Arc::new(signer))).await;
        let (id, values) = api.walk().await;
        api.add_credential(&values);
        let (st, c) = api
            .call("POST", &format!("/connections/{id}/connect"), None)
            .await;
        assert_eq!(st, 200, "{phase}: {c}");
        let jwks: Value = send_json(&api.router, "GET", "/oidc/jwks", None, None).await.body;
        let signing_kid = api.assertions()[0].0["kid"].clone();
        assert_eq!(
            jwks["keys"][0]["kid"], signing_kid,
            "{phase}: the first key signs"
        );
    }
}

#[tokio::test]
async fn an_assertion_signed_by_a_key_no_longer_published_is_refused_as_ours() {
    let (kms, keys) = kms_keys(2).await;
    let (emu, azure) = emulator(world(), Duration::from_secs(3)).await;
    let signing = KmsSigner::load(kms.clone(), vec![keys[0].clone()]).await.unwrap();
    let api = Api::start(StoreKind::Embedded, emu, azure, Some(Arc::new(signing))).await;
    let (id, values) = api.walk().await;
    api.add_credential(&values);
    // Our issuer publishes only the other key (an old key dropped too early, say).
    let other = KmsSigner::load(kms, vec![keys[1].clone()]).await.unwrap();
    let other = Issuer::new(&api.issuer_url, Arc::new(other));
    *api.jwks_instead.lock().unwrap() = Some(other.jwks());
    let (st, p) = api
        .call("POST", &format!("/connections/{id}/connect"), None)
        .await;
    assert_eq!(
        (st, p["step"].as_str(), p["code"].as_str()),
        (
            500,
            Some("federated-credential"),
            Some("assertion-signature-invalid")
        ),
        "{p}"
    );
    *api.jwks_instead.lock().unwrap() = None;
    let (st, c) = api
        .call("POST", &format!("/connections/{id}/connect"), None)
        .await;
    assert_eq!(st, 200, "{c}");
}

#[tokio::test]
async fn a_connected_secret_connection_moves_off_its_secret_and_the_secret_is_gone_everywhere() {
    for kind in STORES {
        let key_id = uuid::Uuid::new_v4().to_string();
        let mut w = world();
        w.tenants[0].apps[0].manages_own_credentials = true;
        w.tenants[0].apps[0].passwords[0].key_id = key_id.clone();
        let (emu, azure) = emulator(w, Duration::from_secs(5)).await;
        let api = Api::start(kind, emu, azure, None).await;
        let (st, c) = api
            .call("POST", "/connections", Some(json!({"accountId": "act-0e0e0e0e"})))
            .await;
        assert_eq!(st, 201);
        let id = c["connectionId"].as_str().unwrap().to_owned();
        let base = format!("/connections/{id}");
        for (step, body) in [
            ("app-registration", json!({"tenantId": TENANT, "clientId": APP})),
            ("client-secret", json!({"clientSecret": SECRET})),
            ("subscription", json!({"subscriptionId": SUB})),
        ] {
            let (st, c) = api.call("PUT", &format!("{base}/{step}"), Some(body)).await;
            assert_eq!(st, 200, "{step}: {c}");
        }
        api.call("GET", &format!("{base}/custom-role"), None).await;
        let (st, c) = api.call("POST", &format!("{base}/connect"), None).await;
        assert_eq!((st, c["status"].as_str()), (200, Some("connected")), "{c}");

        // The switch is asked for; until it succeeds the connection works on its secret.
        let (st, c) = api
            .call(
                "PUT",
                &format!("{base}/credential-type"),
                Some(json!({"credentialType": "federated"})),
            )
            .await;
        assert_eq!(
            (st, c["status"].as_str(), c["credentialType"].as_str()),
            (200, Some("connected"), Some("federated")),
            "{c}"
        );
        let (_, values) = api
            .call("GET", &format!("{base}/federated-credential"), None)
            .await;
        let (_, before) = api.call("GET", &base, None).await;
        let (st, p) = api.call("POST", &format!("{base}/connect"), None).await;
        assert_eq!(
            (st, p["code"].as_str()),
            (422, Some("federated-credential-not-found")),
            "{p}"
        );
        let (_, after) = api.call("GET", &base, None).await;
        assert_eq!(
            after, before,
            "a failed switch leaves the connection exactly as it was"
        );
        assert_eq!(after["clientSecret"]["hint"], &SECRET[..3]);
        assert!(
            api.emulator.world().tenants[0].apps[0]
                .passwords
                .iter()
                .any(|p| p.key_id == key_id),
            "and its secret in Azure"
        );

        api.add_credential(&values);
        let (st, c) = api.call("POST", &format!("{base}/connect"), None).await;
        assert_eq!((st, c["status"].as_str()), (200, Some("connected")), "{c}");
        assert_eq!(c["clientSecret"], Value::Null, "{c}");
        assert!(
            !api.emulator.world().tenants[0].apps[0]
                .passwords
                .iter()
                .any(|p| p.key_id == key_id),
            "the old password credential is removed from the app"
        );
        if let StoreKind::SecretsManager = kind {
            let org = shared::domain::OrgId::parse("org-1").unwrap();
            let cid = shared::domain::ConnectionId::parse(&id).unwrap();
            assert_erased(&api.prefix, &org, &cid).await;
        }
    }
}

/// Erasure: every version of the connection's document, deprecated ones included, read back
/// without the secret; no credential of the connection left (pending deletion included).
pub(crate) async fn assert_erased(
    prefix: &str,
    org: &shared::domain::OrgId,
    id: &shared::domain::ConnectionId,
) {
    let sm = aws_sdk_secretsmanager::Client::new(&integration_tests::sdk_config().await);
    let name = format!("{prefix}{org}/{id}");
    let versions = sm
        .list_secret_version_ids()
        .secret_id(&name)
        .include_deprecated(true)
        .send()
        .await
        .unwrap();
    assert!(!versions.versions().is_empty());
    for v in versions.versions() {
        let doc = sm
            .get_secret_value()
            .secret_id(&name)
            .version_id(v.version_id().unwrap())
            .send()
            .await
            .unwrap();
        assert!(
            !doc.secret_string().unwrap_or_default().contains(SECRET),
            "version {:?} ({:?}) holds the secret",
            v.version_id(),
            v.version_stages()
        );
    }
    let credentials = integration_tests::credentials_of(prefix, org, id).await;
    assert!(
        credentials.is_empty(),
        "credentials left: {:?}",
        credentials.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
}

/// What Entra does with the JWKS the Lambda function `oidc` serves (through its handler, as the
/// HTTP API delivers the request): it verifies an assertion the backend signs with the same key.
#[tokio::test]
async fn the_jwks_of_the_lambda_function_verifies_the_backends_assertions() {
    let (kms, keys) = kms_keys(1).await;
    let signer = Arc::new(KmsSigner::load(kms, keys).await.unwrap());
    let issuer = Arc::new(Issuer::new("https://connect.example.com/oidc", signer));
    let (app, _) = app(store(StoreKind::Embedded).await);
    let handler =
        shared::edge::lambda::Handler::new(Function::Issuer, app.with_issuer(issuer.clone()), "org_id");
    let event = |file: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../events/oidc")
            .join(file);
        serde_json::from_str::<Value>(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let body = |out: Value| serde_json::from_str::<Value>(out["body"].as_str().unwrap()).unwrap();
    let ctx = lambda_runtime::Context::default;
    let discovery = body(
        handler
            .handle(lambda_runtime::LambdaEvent::new(
                event("http-get-openid-configuration.json"),
                ctx(),
            ))
            .await
            .unwrap(),
    );
    assert_eq!(discovery["issuer"], "https://connect.example.com/oidc");
    assert_eq!(discovery["jwks_uri"], "https://connect.example.com/oidc/jwks");
    let jwks = body(
        handler
            .handle(lambda_runtime::LambdaEvent::new(
                event("http-get-jwks.json"),
                ctx(),
            ))
            .await
            .unwrap(),
    );
    let org = shared::domain::OrgId::parse("org-1").unwrap();
    let id = shared::domain::ConnectionId::new_random();
    let assertion = issuer
        .assertion(&org, &id, None, chrono::Utc::now())
        .await
        .unwrap();
    use secrecy::ExposeSecret;
    let jwt = assertion.secret().expose_secret().to_owned();
    let mut parts = jwt.split('.');
    let (h, c, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the signing key is published");
    let part =
        |k: &str| rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(key[k].as_str().unwrap()).unwrap());
    let public = rsa::RsaPublicKey::new(part("n"), part("e")).unwrap();
    let signature =
        rsa::pkcs1v15::Signature::try_from(URL_SAFE_NO_PAD.decode(s).unwrap().as_slice()).unwrap();
    use rsa::signature::Verifier;
    rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(public)
        .verify(format!("{h}.{c}").as_bytes(), &signature)
        .expect("the published key verifies the assertion");
}

/// The emulator's time and shape checks, which our issuer never fails: an assertion past its time
/// (a clock far behind) and a malformed one.
#[tokio::test]
async fn the_emulator_refuses_stale_and_malformed_assertions_like_entra() {
    let (emu, azure) = emulator(world(), Duration::from_secs(3)).await;
    let api = Api::start(StoreKind::Embedded, emu, azure.clone(), None).await;
    let (id, values) = api.walk().await;
    api.add_credential(&values);
    let issuer = Issuer::new(
        &api.issuer_url,
        Arc::new(shared::issuer::local::LocalKey::ephemeral().unwrap()),
    );
    let org = shared::domain::OrgId::parse("org-1").unwrap();
    let connection = shared::domain::ConnectionId::parse(&id).unwrap();
    // The connection's own subject: its salt is the subject's last part.
    let salt = values["subject"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let stale = issuer
        .assertion(
            &org,
            &connection,
            Some(&salt),
            chrono::Utc::now() - chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    use secrecy::ExposeSecret;
    let token_url = format!("{}/{TENANT}/oauth2/v2.0/token", azure.endpoints().authority_host);
    let ask = |assertion: String| {
        let token_url = token_url.clone();
        async move {
            let res = reqwest::Client::new()
                .post(&token_url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", APP),
                    ("scope", "https://management.azure.com/.default"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            res.json::<Value>().await.unwrap()["error_codes"][0].as_u64()
        }
    };
    assert_eq!(ask(stale.secret().expose_secret().to_owned()).await, Some(700024));
    assert_eq!(ask("not.a-jwt".to_owned()).await, Some(50027));
    let diagnosis = |code| {
        shared::domain::diagnosis::Diagnosis::of_credential(
            &shared::domain::diagnosis::ValidationFailure::Azure(
                shared::domain::diagnosis::AzureFailure::TokenRefused {
                    status: 401,
                    error: "invalid_client".into(),
                    aadsts: Some(code),
                },
            ),
            shared::domain::CredentialType::Federated,
        )
        .code
    };
    assert_eq!(
        (diagnosis(700024), diagnosis(50027)),
        ("assertion-time-invalid", "assertion-invalid")
    );
}

/// A connection made again under the same id (the same Idempotency-Key after a delete) gets a
/// subject of its own: the app's trust in the deleted one is not inherited. Secrets Manager holds
/// the deleted one's name for its recovery window, so there it cannot be made again meanwhile.
#[tokio::test]
async fn a_connection_made_again_under_its_id_does_not_inherit_azures_trust() {
    for kind in STORES {
        let (emu, azure) = emulator(world(), Duration::from_secs(3)).await;
        let api = Api::start(kind, emu, azure, None).await;
        let start = || async {
            integration_tests::send(
                &api.router,
                "POST",
                "/connections",
                Some("org-1"),
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", "same-key"),
                ],
                Some(json!({"accountId": "act-0c0c0c0c", "credentialType": "federated"}).to_string()),
            )
            .await
        };
        let walk = |id: String| {
            let api = &api;
            async move {
                let base = format!("/connections/{id}");
                let (st, _) = api
                    .call(
                        "PUT",
                        &format!("{base}/app-registration"),
                        Some(json!({"tenantId": TENANT, "clientId": APP})),
                    )
                    .await;
                assert_eq!(st, 200);
                let (_, values) = api
                    .call("GET", &format!("{base}/federated-credential"), None)
                    .await;
                api.call(
                    "PUT",
                    &format!("{base}/subscription"),
                    Some(json!({"subscriptionId": SUB})),
                )
                .await;
                values
            }
        };
        let first = start().await;
        assert_eq!(first.status, 201, "{kind:?}");
        let id = first.body["connectionId"].as_str().unwrap().to_owned();
        let values = walk(id.clone()).await;
        api.add_credential(&values);
        let (st, c) = api
            .call("POST", &format!("/connections/{id}/connect"), None)
            .await;
        assert_eq!(
            (st, c["status"].as_str()),
            (200, Some("connected")),
            "{kind:?}: {c}"
        );
        let (st, _) = api.call("DELETE", &format!("/connections/{id}"), None).await;
        assert_eq!(st, 204);

        let again = start().await;
        if let StoreKind::SecretsManager = kind {
            assert_eq!(
                (again.status.as_u16(), again.body["code"].as_str()),
                (409, Some("connection-id-taken")),
                "held for the recovery window: {}",
                again.body
            );
            continue;
        }
        assert_eq!(again.status, 201, "{kind:?}: {}", again.body);
        assert_eq!(again.body["connectionId"], id.as_str(), "the same id");
        let values_again = walk(id.clone()).await;
        assert_ne!(values_again["subject"], values["subject"], "a subject of its own");
        let (st, p) = api
            .call("POST", &format!("/connections/{id}/connect"), None)
            .await;
        assert_eq!(
            (st, p["step"].as_str()),
            (422, Some("federated-credential")),
            "the app trusts the deleted connection's subject, not this one's: {p}"
        );
    }
}
