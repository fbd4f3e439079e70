//! The local server as a user runs it: the real binary, over Secrets Manager in moto and over the
//! embedded store. Drives the whole wizard, the console-event door and bad requests, then looks
//! for the client secret in everything it can capture.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// The secretless connection's subscription (another account's than the first connection's).
const FEDERATED_SUBSCRIPTION: &str = "7a2e3d4c-bbbb-4ccc-8ddd-0123456789ab";
const SECRET: &str = "Lk42Q~local.SERVER_canary-0123456789abcd";
const ORG: &str = "org-local";

struct Server {
    child: Child,
    base: String,
    log_lines: Vec<String>,
}

/// An Azure emulator that knows the wizard's inputs below; no role assigned yet.
async fn azure() -> (azure_emulator::Emulator, String) {
    let world = azure_emulator::World::single(
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "contoso.onmicrosoft.com",
        "11111111-2222-4333-8444-555555555555",
        &[SECRET],
        "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab",
        None,
    );
    let emulator = azure_emulator::Emulator::new(world);
    let addr = emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (emulator, format!("http://{addr}"))
}

impl Server {
    fn start(args: &[&str], azure: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_azure-connect-local"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("AZURE_AUTHORITY_HOST", azure)
            .env("AZURE_RESOURCE_MANAGER_ENDPOINT", azure)
            .env("AZURE_GRAPH_ENDPOINT", azure)
            .env("AZURE_VALIDATION_BUDGET_MS", "1500")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The first log line says where it listens.
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert_eq!(ready["fields"]["message"], "azure-connect-local ready", "{line}");
        let base = format!("http://{}", ready["fields"]["listen"].as_str().unwrap());
        child.stdout = Some(out.into_inner());
        Self {
            child,
            base,
            log_lines: vec![line],
        }
    }

    /// Stops the server and returns everything it logged.
    fn stop(mut self) -> String {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let status = self.child.wait().unwrap();
        let mut logs = self.log_lines.concat();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        assert!(
            status.success() || status.code().is_none(),
            "exit: {status:?}\n{logs}"
        );
        logs
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    /// Every status line, header and body received.
    seen: String,
}

impl Client {
    async fn send(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-org-id", ORG);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        self.seen.push_str(&format!("{status} {:?}\n", res.headers()));
        let text = res.text().await.unwrap();
        self.seen.push_str(&text);
        self.seen.push('\n');
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }
}

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("azc-local-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The wizard, console events, bad requests and Connect Account. Returns the connection id.
async fn exercise(c: &mut Client, azure: &azure_emulator::Emulator) -> String {
    let (s, v) = c
        .send("POST", "/connections", Some(json!({"accountId": "act-0badcafe"})))
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["connectionId"].as_str().unwrap().to_owned();
    let base = format!("/connections/{id}");

    let (s, _) = c
        .send(
            "PUT",
            &format!("{base}/app-registration"),
            Some(json!({"tenantId": "contoso.onmicrosoft.com", "clientId": "11111111-2222-4333-8444-555555555555"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = c
        .send(
            "PUT",
            &format!("{base}/client-secret"),
            Some(json!({"clientSecret": SECRET, "expiresAt": "2099-12-31"})),
        )
        .await;
    assert_eq!((s, v["clientSecret"]["hint"].as_str()), (200, Some(&SECRET[..3])));

    // Bad requests of many kinds, including ones that carry the secret: 4xx, and the server lives on.
    let bad: Vec<(&str, String, Value)> = vec![
        (
            "PUT",
            format!("{base}/client-secret"),
            json!({"clientSecret": format!(" {SECRET}")}),
        ),
        (
            "PUT",
            format!("{base}/client-secret"),
            json!({"clientSecret": SECRET, "expiresAt": SECRET}),
        ),
        (
            "PUT",
            format!("{base}/client-secret"),
            json!({"clientSecret": SECRET, SECRET: 1}),
        ),
        (
            "PUT",
            format!("{base}/client-secret"),
            json!({"clientSecret": [SECRET]}),
        ),
        (
            "PUT",
            format!("{base}/subscription"),
            json!({"subscriptionId": SECRET}),
        ),
        (
            "PUT",
            format!("{base}/app-registration"),
            json!({"tenantId": SECRET, "clientId": SECRET}),
        ),
        (
            "PUT",
            "/connections/zzz/client-secret".to_owned(),
            json!({"clientSecret": SECRET}),
        ),
        ("GET", format!("{base}/custom-role"), Value::Null),
    ];
    for (method, path, body) in bad {
        let (s, v) = c.send(method, &path, (!body.is_null()).then_some(body)).await;
        assert!((400..500).contains(&s), "{method} {path}: {s} {v}");
    }

    let (s, _) = c
        .send(
            "PUT",
            &format!("{base}/subscription"),
            Some(json!({"subscriptionId": "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"})),
        )
        .await;
    assert_eq!(s, 200);

    // The console's door: an event is handled like the HTTP call; one with a secret is refused.
    let event =
        |dt: &str, detail: Value| json!({"source": "spot.console", "detail-type": dt, "detail": detail});
    let (s, v) = c
        .send(
            "POST",
            "/events",
            Some(event(
                "Custom Role Requested",
                json!({"orgId": ORG, "connectionId": id, "format": "cli"}),
            )),
        )
        .await;
    assert_eq!((s, v["IsCustom"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = c
        .send(
            "POST",
            "/events",
            Some(event(
                "Client Secret Submitted",
                json!({"orgId": ORG, "connectionId": id, "clientSecret": SECRET}),
            )),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (400, Some("secret-not-accepted-over-events")),
        "{v}"
    );
    let (s, _) = c
        .send(
            "POST",
            "/events",
            Some(event("App Registration Submitted", json!({"orgId": ORG, "connectionId": id, "tenantId": "contoso.com", "clientId": "11111111-2222-4333-8444-555555555555", "clientSecret": SECRET}))),
        )
        .await;
    assert_eq!(s, 400, "a secret in any console event is refused");

    let (s, v) = c.send("GET", &base, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["nextStep"], "role-assignment", "{v}");
    assert_eq!(
        v["tenantId"], "contoso.onmicrosoft.com",
        "the refused event changed nothing"
    );

    // 3.6 before the role is assigned: the step to go back to, retryable.
    let (s, v) = c.send("POST", &format!("{base}/connect"), None).await;
    assert_eq!(
        (s, v["code"].as_str(), v["step"].as_str()),
        (422, Some("role-not-assigned"), Some("role-assignment")),
        "{v}"
    );
    // The customer pastes the exported role and assigns it; Connect Account links the account.
    let (_, role) = c.send("GET", &format!("{base}/custom-role"), None).await;
    let actions: Vec<String> = role["properties"]["permissions"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    azure.update(|w| {
        w.subscriptions[0].grants.push(azure_emulator::Grant {
            app_id: "11111111-2222-4333-8444-555555555555".into(),
            actions,
            ..Default::default()
        });
        // Another subscription of the tenant, for the secretless connection below (a subscription
        // is one Spot account's).
        let mut other = w.subscriptions[0].clone();
        other.id = FEDERATED_SUBSCRIPTION.into();
        w.subscriptions.push(other);
    });
    let (s, v) = c.send("POST", &format!("{base}/connect"), None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("connected")), "{v}");

    // A secretless connection of the same app: the emulator fetches this server's issuer
    // documents and keys, as Entra does, and verifies the assertion it is sent.
    let (s, v) = c
        .send(
            "POST",
            "/connections",
            Some(json!({"accountId": "act-5e5e5e5e", "credentialType": "federated"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let fbase = format!("/connections/{}", v["connectionId"].as_str().unwrap());
    c.send(
        "PUT",
        &format!("{fbase}/app-registration"),
        Some(json!({"tenantId": "contoso.onmicrosoft.com", "clientId": "11111111-2222-4333-8444-555555555555"})),
    )
    .await;
    let (s, values) = c
        .send("GET", &format!("{fbase}/federated-credential"), None)
        .await;
    assert_eq!(s, 200, "{values}");
    assert_eq!(
        values["issuer"],
        format!("{}/oidc", c.base),
        "the local issuer is the server itself"
    );
    c.send(
        "PUT",
        &format!("{fbase}/subscription"),
        Some(json!({"subscriptionId": FEDERATED_SUBSCRIPTION})),
    )
    .await;
    azure.update(|w| {
        w.tenants[0].apps[0]
            .federated_credentials
            .push(azure_emulator::FederatedCredential {
                id: "local".into(),
                name: values["name"].as_str().unwrap().to_owned(),
                issuer: values["issuer"].as_str().unwrap().to_owned(),
                subject: values["subject"].as_str().unwrap().to_owned(),
                audiences: vec!["api://AzureADTokenExchange".into()],
                description: None,
                created_at: None,
            })
    });
    let (s, v) = c.send("POST", &format!("{fbase}/connect"), None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("connected")), "{v}");
    id
}

/// The assertions the server sent to the token endpoint: bearer credentials, never to be seen
/// anywhere else.
fn assertions(azure: &azure_emulator::Emulator) -> Vec<String> {
    let found: Vec<String> = azure
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .flat_map(|r| {
            r.body
                .split('&')
                .filter_map(|kv| kv.strip_prefix("client_assertion="))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!found.is_empty(), "positive control: assertions were sent");
    found
}

fn assert_no_assertion(what: &str, text: &str, assertions: &[String]) {
    for a in assertions {
        // The signature part is unique to each assertion.
        let signature = a.rsplit('.').next().unwrap();
        assert!(
            signature.len() > 40 && !text.contains(signature),
            "{what} contains an assertion"
        );
    }
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.is_empty(), "{what}: nothing captured");
    assert!(!text.contains(SECRET), "{what} contains the client secret");
    assert!(
        !text.contains(&SECRET[3..20]),
        "{what} contains part of the client secret"
    );
}

/// Azure saw the secret at the token endpoint only.
fn assert_no_secret_beyond_the_token_endpoint(azure: &azure_emulator::Emulator) {
    let requests = azure.requests();
    let token = requests
        .iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .count();
    assert!(token >= 2, "the token endpoint was asked");
    for r in requests
        .iter()
        .filter(|r| !r.path.ends_with("/oauth2/v2.0/token"))
    {
        assert_no_secret(
            &format!("Azure request {} {}", r.method, r.path),
            &format!("{} {} {:?} {}", r.path, r.query, r.headers, r.body),
        );
    }
}

#[tokio::test]
async fn over_secrets_manager_the_secret_is_stored_and_appears_nowhere_else() {
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").expect("run via scripts/test: AWS_ENDPOINT_URL (moto) is not set");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let bus = format!("bus-{}", uuid::Uuid::new_v4().simple());
    aws_sdk_eventbridge::Client::new(&sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap();
    let prefix = format!("local-{}/", uuid::Uuid::new_v4().simple());
    let dir = temp_dir();
    let events_file = dir.join("events.jsonl");
    let (emulator, azure_url) = azure().await;
    let server = Server::start(
        &[
            "--store",
            "secretsmanager",
            "--prefix",
            &prefix,
            "--event-bus",
            &bus,
            "--events-file",
            events_file.to_str().unwrap(),
        ],
        &azure_url,
    );
    let mut client = Client {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        seen: String::new(),
    };
    let id = exercise(&mut client, &emulator).await;
    let logs = server.stop();
    assert!(
        !logs.contains("event not published"),
        "EventBridge refused events:\n{logs}"
    );

    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let listed = sm.list_secrets().filters(
        aws_sdk_secretsmanager::types::Filter::builder()
            .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
            .values(&prefix)
            .build(),
    );
    let listed = listed.send().await.unwrap();
    let metadata = format!("{:?}", listed.secret_list());
    assert!(
        metadata.contains(&id),
        "the connection's secret is listed: {metadata}"
    );
    assert!(
        metadata.contains("azure-connect:status"),
        "tags are set: {metadata}"
    );
    let value = sm
        .get_secret_value()
        .secret_id(format!("{prefix}{ORG}/{id}"))
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    assert!(
        !value.secret_string().unwrap().contains(SECRET),
        "the connection's document does not hold the secret"
    );
    let credentials = sm
        .list_secrets()
        .filters(
            aws_sdk_secretsmanager::types::Filter::builder()
                .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                .values(format!(
                    "{}{ORG}/{id}/",
                    shared::store::default_credential_prefix(&prefix)
                ))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let [credential] = credentials.secret_list() else {
        panic!("one credential: {:?}", credentials.secret_list())
    };
    let value = sm
        .get_secret_value()
        .secret_id(credential.name().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        value.secret_string(),
        Some(SECRET),
        "positive control: the store holds the secret, in its own credential"
    );
    let metadata = format!("{metadata} {:?}", credentials.secret_list());

    assert_no_secret("responses", &client.seen);
    assert_no_secret("logs", &logs);
    assert_no_secret("events file", &std::fs::read_to_string(&events_file).unwrap());
    assert_no_secret("secret names, descriptions and tags", &metadata);
    assert_no_secret_beyond_the_token_endpoint(&emulator);
    let sent = assertions(&emulator);
    let events = std::fs::read_to_string(&events_file).unwrap();
    for (what, text) in [
        ("responses", &client.seen),
        ("logs", &logs),
        ("events file", &events),
        ("secret names, descriptions and tags", &metadata),
    ] {
        assert_no_assertion(what, text, &sent);
    }
    let _ = endpoint;
}

#[tokio::test]
async fn over_the_embedded_store_the_file_is_private_and_the_secret_appears_nowhere_else() {
    let dir = temp_dir();
    let store_dir = dir.join("store");
    let events_file = dir.join("events.jsonl");
    let (emulator, azure_url) = azure().await;
    let server = Server::start(
        &[
            "--store",
            &format!("embedded:{}", store_dir.display()),
            "--events-file",
            events_file.to_str().unwrap(),
        ],
        &azure_url,
    );
    let mut client = Client {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        seen: String::new(),
    };
    exercise(&mut client, &emulator).await;
    // The funnel at GET /metrics (Prometheus text), as the functions emit it in EMF.
    let metrics = client
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "StepCompleted{step=\"app-registration\"}",
        "AccountConnected{credentialType=\"secret\"}",
        "ConnectionStarted{credentialType=\"secret\"}",
        "StepRejected{step=\"custom-role\",code=\"step-prerequisite-missing\"}",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    let logs = server.stop();

    let file = store_dir.join("connections.json");
    assert!(
        std::fs::read_to_string(&file).unwrap().contains(SECRET),
        "positive control"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let events = std::fs::read_to_string(&events_file).unwrap();
    assert!(
        events.lines().count() >= 10,
        "every outcome was appended:\n{events}"
    );
    assert!(events.contains("Step Rejected") && events.contains("Custom Role Exported"));
    assert_no_secret("responses", &client.seen);
    assert_no_secret("logs", &logs);
    assert_no_secret("events file", &events);
    assert_no_secret("metrics", &metrics);
    assert!(events.contains("Account Connected") && events.contains("Connection Failed"));
    assert_no_secret_beyond_the_token_endpoint(&emulator);
    let sent = assertions(&emulator);
    for (what, text) in [
        ("responses", &client.seen),
        ("logs", &logs),
        ("events file", &events),
    ] {
        assert_no_assertion(what, text, &sent);
    }
    assert!(Path::new(&store_dir).is_dir());
}

#[tokio::test]
async fn with_dev_tokens_every_route_takes_the_token_and_no_longer_trusts_x_org_id() {
    let (_azure, url) = azure().await;
    let dir = temp_dir();
    let store = format!("embedded:{}", dir.join("store").display());
    let events = dir.join("events.jsonl");
    let server = Server::start(
        &[
            "--store",
            &store,
            "--events-file",
            events.to_str().unwrap(),
            "--dev-token",
            "tok-1=org-tok",
        ],
        &url,
    );
    let http = reqwest::Client::new();
    let start = |headers: &[(&str, &str)]| {
        let mut req = http
            .post(format!("{}/connections", server.base))
            .json(&json!({"accountId": "act-0badcafe"}));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let header_only = start(&[("x-org-id", ORG)]).await.unwrap();
    assert_eq!(header_only.status(), 401, "X-Org-Id trusted beside tokens");
    let wrong = start(&[("authorization", "Bearer tok-2")]).await.unwrap();
    assert_eq!(wrong.status(), 401);
    let created = start(&[("authorization", "Bearer tok-1"), ("x-org-id", ORG)])
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    // The token's organization, not the header's, owns the connection.
    let read = |auth: &'static str| {
        http.get(format!("{}/connections/{id}", server.base))
            .header("authorization", auth)
            .send()
    };
    assert_eq!(read("Bearer tok-1").await.unwrap().status(), 200);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The side doors: the `Host` it answers to, the console door's media type, and with tokens every
/// door (the console door acting for the token's organization, the health check, the page's
/// stream through one-time tickets); and never beyond loopback without tokens.
#[tokio::test]
async fn its_side_doors_are_shut() {
    let (_azure, url) = azure().await;
    let dir = temp_dir();
    let store = format!("embedded:{}", dir.join("store").display());
    let events_file = dir.join("events.jsonl");
    let server = Server::start(
        &[
            "--store",
            &store,
            "--events-file",
            events_file.to_str().unwrap(),
            "--dev-token",
            "tok-1=org-tok",
        ],
        &url,
    );
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let port = base.rsplit(':').next().unwrap().to_owned();
    let status = |r: reqwest::Response| r.status().as_u16();

    // DNS rebinding: another name for this address is refused, the loopback names are served.
    let rebound = http
        .get(format!("{base}/"))
        .header("host", format!("attacker.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(status(rebound), 421);
    let named = http
        .get(format!("{base}/"))
        .header("host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(status(named), 200);

    let event = |org: Option<&str>| {
        let mut detail = json!({"accountId": "act-0badcafe"});
        if let Some(o) = org {
            detail["orgId"] = json!(o);
        }
        json!({"source": "spot.console", "detail-type": "Connection Started", "detail": detail}).to_string()
    };
    let post_event = |body: String, content_type: &'static str, auth: Option<&'static str>| {
        let mut req = http
            .post(format!("{base}/events"))
            .header("content-type", content_type)
            .body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    // A form post from any web page: not JSON, refused before anything is read.
    assert_eq!(
        status(
            post_event(event(None), "text/plain", Some("Bearer tok-1"))
                .await
                .unwrap()
        ),
        415
    );
    assert_eq!(
        status(
            post_event(event(Some("org-tok")), "application/json", None)
                .await
                .unwrap()
        ),
        401
    );
    assert_eq!(
        status(
            post_event(event(Some("org-other")), "application/json", Some("Bearer tok-1"))
                .await
                .unwrap()
        ),
        403,
        "an event naming another organization than its token's"
    );
    let created = post_event(event(None), "application/json", Some("Bearer tok-1"))
        .await
        .unwrap();
    assert_eq!(status(created), 201);

    let health = |auth: Option<&'static str>| {
        let mut req = http.post(format!("{base}/health-checks")).json(&json!({}));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    assert_eq!(status(health(None).await.unwrap()), 401);
    assert_eq!(status(health(Some("Bearer tok-1")).await.unwrap()), 200);

    let stream = |query: String| http.get(format!("{base}/wizard/events{query}")).send();
    assert_eq!(status(stream(String::new()).await.unwrap()), 401);
    let ticket: Value = http
        .post(format!("{base}/wizard/ticket"))
        .header("authorization", "Bearer tok-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let open = stream(format!("?ticket={ticket}")).await.unwrap();
    assert_eq!(status(open), 200);
    assert_eq!(
        status(stream(format!("?ticket={ticket}")).await.unwrap()),
        401,
        "a ticket is used once"
    );
    server.stop();

    // Beyond loopback, tokens are required.
    let refused = Command::new(env!("CARGO_BIN_EXE_azure-connect-local"))
        .args(["--listen", "0.0.0.0:0", "--store", &store])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(said.contains("--dev-token"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
