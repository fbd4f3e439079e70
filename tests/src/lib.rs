//! Support for the integration tests: the emulator started by `scripts/test`, fresh stores,
//! sample values.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod az;
pub mod deployed;
pub mod emf;
pub mod fault;
pub mod iam;
pub mod idp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use chrono::Utc;
use secrecy::SecretString;
use shared::app::{App, RequestMeta, Trigger};
use shared::config::AzureConfig;
use shared::domain::{ClientId, ClientSecret, Command, SubscriptionId, TenantId};
use shared::events::MemorySink;
use shared::store::ConnectionStore;
use shared::store::embedded::EmbeddedStore;
use shared::store::secrets_manager::SecretsManagerStore;
use shared::validation::Validator;

/// A distinctive secret value that tests look for in everything captured.
pub const SECRET: &str = "Zq78Q~leak.CANARY_0123456789abcdefghijkl";

/// The Secrets Manager endpoint of the emulator that `scripts/test` started. Tests that need it
/// fail (never skip) without it, so a missing emulator cannot pass as green.
pub fn aws_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: run the tests with scripts/test, which starts the AWS emulator (moto)",
    )
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_endpoint();
    shared::config::aws_sdk_config().await
}

/// A name prefix no other test uses, so tests can share one emulator.
pub fn unique_prefix() -> String {
    format!("test-{}/", uuid::Uuid::new_v4().simple())
}

pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("azc-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The two stores under one contract.
#[derive(Debug, Clone, Copy)]
pub enum StoreKind {
    Embedded,
    SecretsManager,
}

pub const STORES: [StoreKind; 2] = [StoreKind::Embedded, StoreKind::SecretsManager];

pub async fn sm_store(prefix: &str) -> Arc<SecretsManagerStore> {
    let sdk = sdk_config().await;
    Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        prefix,
        None,
    ))
}

pub async fn store(kind: StoreKind) -> Arc<dyn ConnectionStore> {
    let prefix = unique_prefix();
    match kind {
        StoreKind::Embedded => Arc::new(EmbeddedStore::open(&temp_dir(), &prefix).unwrap()),
        StoreKind::SecretsManager => sm_store(&prefix).await,
    }
}

pub fn app(store: Arc<dyn ConnectionStore>) -> (App, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::default());
    (App::new(store, sink.clone()), sink)
}

/// The emulator serving `world` on a free port, and the Azure configuration pointed at it with
/// Connect Account's `budget`.
pub async fn emulator(
    world: azure_emulator::World,
    budget: Duration,
) -> (azure_emulator::Emulator, AzureConfig) {
    let emulator = azure_emulator::Emulator::new(world);
    let addr = emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}");
    let budget = budget.as_millis().to_string();
    let azure = AzureConfig::from_lookup(|k| match k {
        "AZURE_AUTHORITY_HOST" | "AZURE_RESOURCE_MANAGER_ENDPOINT" | "AZURE_GRAPH_ENDPOINT" => {
            Some(base.clone())
        }
        "AZURE_VALIDATION_BUDGET_MS" => Some(budget.clone()),
        _ => None,
    })
    .unwrap();
    (emulator, azure)
}

/// Our issuer at `url`, signing with a fresh in-memory key (the local stand-in for KMS).
pub fn local_issuer(url: &str) -> Arc<shared::issuer::Issuer> {
    let key = shared::issuer::local::LocalKey::ephemeral().unwrap();
    Arc::new(shared::issuer::Issuer::new(url, Arc::new(key)))
}

/// An answer of the HTTP API.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

/// One request through `router`, as API Gateway or the local server would pass it: the
/// organization in `X-Org-Id`, the extra `headers`, the raw `body`.
pub async fn send(
    router: &Router,
    method: &str,
    path: &str,
    org: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(org) = org {
        req = req.header("x-org-id", org);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// [`send`] with a JSON body (or none).
pub async fn send_json(
    router: &Router,
    method: &str,
    path: &str,
    org: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    send(
        router,
        method,
        path,
        org,
        &[("content-type", "application/json")],
        body.map(Value::to_string),
    )
    .await
}

/// One tenant, one app holding [`SECRET`] (its key id `key_id`, expiring in `days` when given),
/// one subscription granting Spot's role; `manages_own_credentials`: Graph lets the app add and
/// remove its passwords (rotation, removing a secret moved off).
pub fn world_of_one_app(
    manages_own_credentials: bool,
    key_id: &str,
    days: Option<i64>,
) -> azure_emulator::World {
    let mut w = azure_emulator::World::single(
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "contoso.onmicrosoft.com",
        "11111111-2222-4333-8444-555555555555",
        &[SECRET],
        "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab",
        Some(
            shared::domain::role::required_actions()
                .map(str::to_owned)
                .collect(),
        ),
    );
    let app = &mut w.tenants[0].apps[0];
    app.manages_own_credentials = manages_own_credentials;
    app.passwords[0].key_id = key_id.to_owned();
    app.passwords[0].end_date_time = days.map(|d| Utc::now() + chrono::Duration::days(d));
    w
}

/// [`world_of_one_app`] (secret-manageable) with a management group `all` of `count`
/// subscriptions (the one subscription of that world first, then `00000000-0000-4000-8000-…`
/// numbered from 1), where Spot's app holds its role and discovery's actions.
pub fn group_world(count: usize) -> azure_emulator::World {
    let mut w = world_of_one_app(true, "k1", None);
    let tenant = w.tenants[0].id.clone();
    let app = w.tenants[0].apps[0].app_id.clone();
    let mut subs = vec![w.subscriptions[0].id.clone()];
    for i in 1..count {
        let id = group_subscription(i);
        w.subscriptions.push(azure_emulator::Subscription {
            id: id.clone(),
            tenant_id: tenant.clone(),
            display_name: format!("workload {i}"),
            state: "Enabled".into(),
            ..azure_emulator::Subscription::default()
        });
        subs.push(id);
    }
    w.management_groups.push(azure_emulator::ManagementGroup {
        name: "all".into(),
        tenant_id: tenant,
        display_name: "All".into(),
        subscriptions: subs,
        grants: vec![azure_emulator::Grant {
            app_id: app,
            actions: shared::domain::role::required_actions()
                .chain(shared::domain::estate::GROUP_ACTIONS)
                .map(str::to_owned)
                .collect(),
            ..azure_emulator::Grant::default()
        }],
        ..azure_emulator::ManagementGroup::default()
    });
    w
}

/// The `i`-th subscription of [`group_world`] (from 1).
pub fn group_subscription(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// The customer adds the federated credential to the (first) app in `emulator`, with exactly the
/// values `GET …/federated-credential` handed out.
pub fn add_federated_credential(emulator: &azure_emulator::Emulator, values: &Value) {
    let cred = azure_emulator::FederatedCredential {
        id: uuid::Uuid::new_v4().to_string(),
        name: values["name"].as_str().unwrap().to_owned(),
        issuer: values["issuer"].as_str().unwrap().to_owned(),
        subject: values["subject"].as_str().unwrap().to_owned(),
        audiences: vec![values["audiences"][0].as_str().unwrap().to_owned()],
        description: None,
        created_at: None,
    };
    emulator.update(|w| w.tenants[0].apps[0].federated_credentials.push(cred));
}

/// An Azure emulator that knows the inputs of [`app_registration`], [`client_secret`] and
/// [`subscription`], with Spot's role assigned; and a validator pointed at it.
pub async fn azure() -> (azure_emulator::Emulator, Arc<Validator>) {
    let world = azure_emulator::World::single(
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "contoso.onmicrosoft.com",
        "11111111-2222-4333-8444-555555555555",
        // Ours, and the one of the sample events in events/.
        &[SECRET, "Xy18Q~sample.Secret_Value-0123456789abcd"],
        "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab",
        Some(
            shared::domain::role::required_actions()
                .map(str::to_owned)
                .collect(),
        ),
    );
    let (emulator, azure) = emulator(world, Duration::from_secs(3)).await;
    (emulator, Arc::new(azure.validator().unwrap()))
}

pub fn request(id: &str) -> RequestMeta {
    RequestMeta {
        request_id: id.to_owned(),
        received_at: Utc::now(),
        trigger: Trigger::Http,
        fingerprint: None,
    }
}

pub fn app_registration() -> Command {
    Command::AppRegistration {
        tenant: TenantId::parse("contoso.onmicrosoft.com").unwrap(),
        client: ClientId::parse("11111111-2222-4333-8444-555555555555").unwrap(),
    }
}

pub fn client_secret() -> Command {
    Command::ClientSecret {
        secret: ClientSecret::parse(SecretString::from(SECRET.to_owned())).unwrap(),
        expires_at: None,
    }
}

pub fn subscription() -> Command {
    Command::Subscription {
        subscription: SubscriptionId::parse("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab").unwrap(),
        replace_estate: false,
    }
}

/// Starts a connection for `account` and submits the inputs of [`app_registration`],
/// [`client_secret`] and [`subscription`]; with `connect`, Connect Account too (it must link).
pub async fn walk(
    app: &App,
    org: &shared::domain::OrgId,
    account: &str,
    connect: bool,
) -> shared::domain::Connection {
    use shared::app::{Operation, Outcome};
    let start = Operation::Start {
        account: shared::domain::AccountId::parse(account).unwrap(),
        connection: None,
        credential: Default::default(),
    };
    let Outcome::Created(c) = app.execute(&request("start"), org, start).await.unwrap() else {
        panic!("not created")
    };
    let mut last = c;
    for (i, command) in [app_registration(), client_secret(), subscription()]
        .into_iter()
        .enumerate()
    {
        let op = Operation::Submit {
            connection: last.id,
            command,
        };
        let Outcome::Current(c) = app.execute(&request(&format!("in{i}")), org, op).await.unwrap() else {
            panic!("not submitted")
        };
        last = c;
    }
    if !connect {
        return last;
    }
    let op = Operation::Connect { connection: last.id };
    match app.execute(&request("connect"), org, op).await.unwrap() {
        Outcome::Connected(c) => c,
        other => panic!("not connected: {other:?}"),
    }
}

/// Azure configured at `url` (authority, ARM and Graph alike) with Connect Account's `budget`.
pub fn azure_at(url: &str, budget: Duration) -> AzureConfig {
    let budget = budget.as_millis().to_string();
    AzureConfig::from_lookup(|k| match k {
        "AZURE_AUTHORITY_HOST" | "AZURE_RESOURCE_MANAGER_ENDPOINT" | "AZURE_GRAPH_ENDPOINT" => {
            Some(url.to_owned())
        }
        "AZURE_VALIDATION_BUDGET_MS" => Some(budget.clone()),
        _ => None,
    })
    .unwrap()
}

/// A Secrets Manager store (moto) whose listings lag: a proxy answers every `ListSecrets` with an
/// empty page, as a listing that has not yet seen the last minutes' changes would ("ListSecrets
/// is eventually consistent", Secrets Manager API reference; moto's listing is immediate). With
/// its prefix, for a direct store beside it.
pub async fn lagging_sm_store() -> (Arc<SecretsManagerStore>, fault::FaultProxy, String) {
    let proxy = fault::FaultProxy::start(&aws_endpoint()).await;
    proxy.fault(
        "secretsmanager.ListSecrets",
        fault::Fault::EmptyListing,
        usize::MAX,
    );
    let prefix = unique_prefix();
    (sm_store_at(proxy.url(), &prefix).await, proxy, prefix)
}

/// A Secrets Manager store under `prefix` whose calls go to `endpoint` (a fault proxy, a
/// stand-in) instead of the emulator's address.
pub async fn sm_store_at(endpoint: &str, prefix: &str) -> Arc<SecretsManagerStore> {
    let sdk = sdk_config().await;
    let conf = aws_sdk_secretsmanager::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .build();
    Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::from_conf(conf),
        prefix,
        None,
    ))
}

/// The JSON log lines written on this thread while the guard lives.
#[derive(Debug, Clone, Default)]
pub struct Captured(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Captures this thread's logs (a test's runtime is single-threaded: all its tasks) as JSON,
    /// at the most verbose level a function can be set to (`LogLevel` DEBUG; TRACE is not taken),
    /// through the functions' own filter.
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(shared::telemetry::lambda_filter(Some("TRACE")))
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// A Lambda function in moto, named `name` (invocations stubbed: moto runs no code), for
/// `RotateSecret` to name; its ARN.
pub async fn moto_lambda_function(name: &str) -> String {
    let endpoint = aws_endpoint();
    let http = reqwest::Client::new();
    http.post(format!("{endpoint}/moto-api/config"))
        .json(&serde_json::json!({"lambda": {"use_docker": false}}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let auth = |service: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential=test/20261126/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        )
    };
    let role = format!("rotation-{}", uuid::Uuid::new_v4().simple());
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    http.post(format!("{endpoint}/"))
        .header("Authorization", auth("iam"))
        .form(&[
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", role.as_str()),
            ("AssumeRolePolicyDocument", trust),
        ])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    // A zip holding one empty file.
    let zip = "UEsDBAoAAAAAAAAAIQAAAAAAAAAAAAAAAAAJAAAAYm9vdHN0cmFwUEsBAhQACgAAAAAAAAAhAAAAAAAAAAAAAAAAAAkAAAAAAAAAAAAAAAAAAAAAAGJvb3RzdHJhcFBLBQYAAAAAAQABADcAAAAnAAAAAAA=";
    let created: serde_json::Value = http
        .post(format!("{endpoint}/2015-03-31/functions"))
        .header("Authorization", auth("lambda"))
        .json(&serde_json::json!({
            "FunctionName": name, "Runtime": "provided.al2023", "Handler": "bootstrap",
            "Role": format!("arn:aws:iam::123456789012:role/{role}"), "Code": {"ZipFile": zip},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["FunctionArn"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned()
}

/// Every credential (client secret value) the Secrets Manager store keeps for connection `id`,
/// pending deletion included, with the value of each version that still has one: (name, value).
pub async fn credentials_of(
    prefix: &str,
    org: &shared::domain::OrgId,
    id: &shared::domain::ConnectionId,
) -> Vec<(String, String)> {
    let sm = aws_sdk_secretsmanager::Client::new(&sdk_config().await);
    let prefix = format!("{}{org}/{id}/", shared::store::default_credential_prefix(prefix));
    let listed = sm
        .list_secrets()
        .include_planned_deletion(true)
        .filters(
            aws_sdk_secretsmanager::types::Filter::builder()
                .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                .values(&prefix)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for s in listed.secret_list() {
        let name = s.name().unwrap().to_owned();
        let value = sm
            .get_secret_value()
            .secret_id(&name)
            .send()
            .await
            .map(|v| v.secret_string().unwrap_or_default().to_owned())
            .unwrap_or_default();
        out.push((name, value));
    }
    out
}

/// A fresh setup command to connect `id`, as the wizard issues it.
pub async fn connect_command(
    app: &App,
    org: &shared::domain::OrgId,
    id: &shared::domain::ConnectionId,
    req: &RequestMeta,
) -> shared::app::setup::IssuedSetup {
    app.issue_setup(req, org, id, shared::domain::setup::SetupPurpose::Connect, None)
        .await
        .unwrap()
}
