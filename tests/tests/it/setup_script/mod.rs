//! One command: the setup script (`shared/data/azure-connect.sh`) run by bash with the real Azure
//! CLI (`azure-cli` 2.91 from PyPI) signed in to the Azure emulator over HTTPS, against the
//! backend deployed as `template.yaml` says (every call under its function's IAM policy). The
//! command is the one `POST /connections/{id}/setup-command` hands out, pasted as a customer
//! pastes it (`curl … | bash -s -- …`). Nothing leaves the machine: az's proxies point at a port
//! that counts connections, and each test asserts it counted none.

use std::sync::atomic::Ordering;

use azure_emulator::{Emulator, Grant, World};
use integration_tests::az::{AzCli, Ran, script_path};
use integration_tests::deployed::Deployed;
use serde_json::{Value, json};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SUB: &str = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab";
/// The customer signed in to az (a service principal: the emulator signs in apps).
const CALLER: &str = "c0c0c0c0-1111-4222-8333-444455556666";
const CALLER_SECRET: &str = "caller-secret-8Q~not-a-real-one";
const ORG: &str = "org-setup";

/// A tenant with the customer's own app (Graph `Application.ReadWrite.All`, Owner-like on the
/// subscription) and nothing of Spot's yet.
fn world() -> World {
    let mut w = World::single(
        TENANT,
        "contoso.onmicrosoft.com",
        CALLER,
        &[CALLER_SECRET],
        SUB,
        None,
    );
    let caller = &mut w.tenants[0].apps[0];
    caller.object_id = "c0c0c0c0-0000-4000-8000-000000000001".into();
    caller.principal_id = "c0c0c0c0-0000-4000-8000-000000000002".into();
    caller.display_name = "customer".into();
    caller.graph_roles = vec!["Application.ReadWrite.All".into()];
    w.subscriptions[0].display_name = "Contoso Production".into();
    w.subscriptions[0].grants = vec![Grant {
        app_id: CALLER.into(),
        actions: vec!["*".into()],
        ..Grant::default()
    }];
    w
}

struct Setup {
    d: Deployed,
    emulator: Emulator,
    az: AzCli,
    id: String,
}

impl Setup {
    async fn start(world: World) -> Self {
        let emulator = Emulator::new(world);
        let addr = emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let d = Deployed::start(&format!("http://{addr}")).await;
        let az = AzCli::sign_in(&emulator, TENANT, CALLER, CALLER_SECRET).await;
        let r = d
            .call(
                "POST",
                "/connections",
                ORG,
                Some(json!({"accountId": "act-5e7c0a11"})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.body["connectionId"].as_str().unwrap().to_owned();
        emulator.clear_requests();
        Self { d, emulator, az, id }
    }

    /// The world of `w` where members may not register apps and `name` (object id `user`,
    /// holding `roles`, Owner-like on the subscription) is signed in to az; a connection made.
    async fn signed_in_user(mut w: World, user: &str, name: &str, roles: &[&str], account: &str) -> Self {
        let upn = format!("{name}@contoso.onmicrosoft.com");
        w.tenants[0].users = vec![azure_emulator::User {
            object_id: user.into(),
            user_principal_name: upn.clone(),
            password: "user-password".into(),
            display_name: name.into(),
            directory_roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }];
        w.tenants[0].device_code_user = upn;
        w.tenants[0].users_may_not_create_apps = true;
        w.subscriptions[0].grants.push(Grant {
            app_id: user.into(),
            actions: vec!["*".into()],
            ..Grant::default()
        });
        let emulator = Emulator::new(w);
        let addr = emulator.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let d = Deployed::start(&format!("http://{addr}")).await;
        let az = AzCli::sign_in_user(&emulator, TENANT).await;
        let r = d
            .call("POST", "/connections", ORG, Some(json!({"accountId": account})))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.body["connectionId"].as_str().unwrap().to_owned();
        emulator.clear_requests();
        Self { d, emulator, az, id }
    }

    /// A fresh setup command, as the wizard shows it.
    async fn command(&self) -> String {
        self.command_with(None).await
    }

    /// A fresh command to uninstall (the wizard's "Remove with one command").
    async fn uninstall_command(&self) -> String {
        let c = self.command_with(Some(json!({"purpose": "uninstall"}))).await;
        assert!(c.ends_with(" --uninstall"), "{c}");
        c
    }

    async fn command_with(&self, body: Option<Value>) -> String {
        let r = self
            .d
            .call(
                "POST",
                &format!("/connections/{}/setup-command", self.id),
                ORG,
                body,
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let expires = chrono::DateTime::parse_from_rfc3339(r.body["expiresAt"].as_str().unwrap()).unwrap();
        let minutes = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
        assert!((28..=30).contains(&minutes), "30 minutes: {minutes}");
        let command = r.body["command"].as_str().unwrap().to_owned();
        assert!(
            command.starts_with(&format!(
                " curl -fsSL {}/setup/scripts/azure-connect.sh | bash -s -- --token acs1.",
                self.d.url
            )),
            "{command}"
        );
        command
    }

    /// Runs `command` as pasted, granting with `--yes` (no terminal to ask on here; the consent
    /// itself is tested under a pseudo-terminal).
    async fn run(&self, command: &str, extra: &str) -> Ran {
        self.run_as_pasted(command, &format!("{extra} --yes")).await
    }

    async fn run_as_pasted(&self, command: &str, extra: &str) -> Ran {
        let ran = self.az.paste(command, extra).await;
        assert_eq!(
            self.az.escaped.load(Ordering::SeqCst),
            0,
            "a call tried to leave the machine"
        );
        assert!(
            self.d.gate.refused().is_empty(),
            "refused by IAM: {:?}",
            self.d.gate.refused()
        );
        ran
    }

    /// Every write az made in "Azure" since the last look (token requests are not writes).
    fn writes(&self) -> Vec<String> {
        let w = self
            .emulator
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET" && !r.path.contains("/oauth2/") && !r.path.contains("getByIds"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        self.emulator.clear_requests();
        w
    }

    async fn connection(&self) -> Value {
        self.d
            .call("GET", &format!("/connections/{}", self.id), ORG, None)
            .await
            .body
    }

    /// The app the script made.
    fn made_app(&self) -> Option<azure_emulator::App> {
        self.emulator.world().tenants[0]
            .apps
            .iter()
            .find(|a| a.display_name == format!("spot-azure-connect-{}", self.id))
            .cloned()
    }
}

fn connected(ran: &Ran) {
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.last_line().contains("connected"), "{ran:?}");
}

#[tokio::test]
async fn one_command_connects_a_subscription_secretless_and_running_it_again_changes_nothing() {
    let mut w = world();
    // Azure's replication delays, a few seconds each: the new service principal (unknown to
    // role assignments without a principal type), the federated credential (AADSTS70021), the
    // role assignment (not yet in the token's permissions).
    w.behaviour.principal_replication_seconds = 3;
    w.behaviour.federated_credential_delay_seconds = 3;
    w.behaviour.propagation_seconds = 3;
    let s = Setup::start(w).await;
    let before = s.emulator.world();
    let command = s.command().await;
    let started = std::time::Instant::now();
    let ran = s.run(&command, "").await;
    connected(&ran);
    println!(
        "figure: one command to connected in {:.1} s with replication delays of 3 s: {}",
        started.elapsed().as_secs_f64(),
        ran.last_line()
    );

    // Azure holds exactly what the issue says, nothing more.
    let world = s.emulator.world();
    assert_eq!(world.tenants[0].apps.len(), before.tenants[0].apps.len() + 1);
    let app = s.made_app().expect("the app");
    assert!(!app.principal_id.is_empty(), "with its service principal");
    assert!(app.passwords.is_empty(), "no secret");
    let fc =
        s.d.call(
            "GET",
            &format!("/connections/{}/federated-credential", s.id),
            ORG,
            None,
        )
        .await
        .body;
    assert_eq!(app.federated_credentials.len(), 1);
    let f = &app.federated_credentials[0];
    assert_eq!(
        (
            f.name.as_str(),
            f.issuer.as_str(),
            f.subject.as_str(),
            f.audiences.clone()
        ),
        (
            fc["name"].as_str().unwrap(),
            fc["issuer"].as_str().unwrap(),
            fc["subject"].as_str().unwrap(),
            vec![fc["audiences"][0].as_str().unwrap().to_owned()]
        ),
        "equal to what GET …/federated-credential hands out"
    );
    let role =
        s.d.call(
            "GET",
            &format!("/connections/{}/custom-role?format=cli", s.id),
            ORG,
            None,
        )
        .await
        .body;
    let defs = &world.tenants[0].role_definitions;
    assert_eq!(defs.len(), 1, "{defs:?}");
    assert_eq!(defs[0].role_name, role["Name"].as_str().unwrap());
    assert_eq!(defs[0].role_name, format!("spotCustomRole_{SUB}"));
    let mut want: Vec<String> = role["Actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let mut have = defs[0].actions.clone();
    want.sort();
    have.sort();
    assert_eq!(have, want, "every required action");
    assert_eq!(defs[0].assignable_scopes, vec![format!("/subscriptions/{SUB}")]);
    let assignments = &world.subscriptions[0].role_assignments;
    assert_eq!(assignments.len(), 1, "{assignments:?}");
    assert_eq!(
        (
            assignments[0].principal_id.as_str(),
            assignments[0].principal_type.as_str(),
            assignments[0].role_definition_id.as_str()
        ),
        (app.principal_id.as_str(), "ServicePrincipal", defs[0].id.as_str())
    );
    let c = s.connection().await;
    assert_eq!(
        (
            &c["status"],
            &c["credentialType"],
            &c["clientId"],
            &c["clientSecret"]
        ),
        (
            &json!("connected"),
            &json!("federated"),
            &json!(app.app_id),
            &Value::Null
        ),
        "{c}"
    );
    let events = s.d.bus_events().await;
    let types: Vec<&str> = events.iter().filter_map(|e| e["detail-type"].as_str()).collect();
    for t in ["Setup Command Issued", "Setup Progress", "Account Connected"] {
        assert!(types.contains(&t), "{t}: {types:?}");
    }
    let mut phases: Vec<&str> = events
        .iter()
        .filter(|e| e["detail-type"] == "Setup Progress")
        .filter_map(|e| e["detail"]["phase"].as_str())
        .collect();
    // `done` is posted again while Azure propagates.
    phases.dedup();
    assert_eq!(
        phases,
        [
            "checked",
            "application",
            "credential",
            "role",
            "assignment",
            "done"
        ],
        "the page follows the run"
    );
    assert!(
        !events.iter().any(|e| e.to_string().contains(
            command
                .split("--token ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        )),
        "the token is in no event"
    );
    s.writes();

    // The same command again: everything is found in place, nothing is written, "connected".
    let again = s.run(&command, "").await;
    connected(&again);
    assert_eq!(s.writes(), Vec::<String>::new(), "{again:?}");
    assert_eq!(
        s.emulator.world().tenants[0].apps.len(),
        before.tenants[0].apps.len() + 1
    );
}

/// A person signed in to az (Cloud Shell's case): the checks ask Graph about the user, not an app.
#[tokio::test]
async fn a_user_signed_in_connects_and_a_user_who_may_not_register_apps_is_told_what_is_needed() {
    const USER: &str = "d0d0d0d0-0000-4000-8000-000000000001";
    // Members may not register apps in this tenant; Ada holds no role that may.
    let s = Setup::signed_in_user(world(), USER, "ada", &[], "act-5e7c0a12").await;
    let command = s.command().await;
    let refused = s.run(&command, "").await;
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(
        refused.stderr.contains("Users can register applications")
            && refused.stderr.contains("Application Developer"),
        "{refused:?}"
    );
    assert!(s.made_app().is_none());
    // Given the Application Developer role, Ada connects.
    s.emulator
        .update(|w| w.tenants[0].users[0].directory_roles = vec!["Application Developer".into()]);
    let ran = s.run(&command, "").await;
    connected(&ran);
    assert!(ran.stdout.contains("(user)"), "{ran:?}");
    let app = s.made_app().unwrap();
    assert_eq!(
        app.owners,
        vec![USER.to_owned()],
        "Ada owns the app she registered"
    );
}

#[tokio::test]
async fn with_client_secret_the_secret_goes_to_our_api_and_nowhere_else() {
    let s = Setup::start(world()).await;
    let command = s.command().await;
    let ran = s.run(&command, "--client-secret").await;
    connected(&ran);
    let app = s.made_app().unwrap();
    assert_eq!(app.passwords.len(), 1, "one 24-month secret");
    let p = &app.passwords[0];
    let months = (p.end_date_time.unwrap() - chrono::Utc::now()).num_days() / 30;
    assert!((23..=24).contains(&months), "{months}");
    let secret = &p.secret_text;
    assert!(
        !ran.stdout.contains(secret) && !ran.stderr.contains(secret),
        "never printed"
    );
    assert!(app.federated_credentials.is_empty());
    let c = s.connection().await;
    assert_eq!(
        (&c["status"], &c["credentialType"], &c["clientId"]),
        (&json!("connected"), &json!("secret"), &json!(app.app_id)),
        "{c}"
    );
    assert_eq!(c["clientSecret"]["hint"], json!(secret[..3].to_owned()), "{c}");
    let events = s.d.bus_events().await;
    assert!(
        !serde_json::to_string(&events).unwrap().contains(secret),
        "in no event"
    );
    // Run again: connected already with a secret; no second secret is added.
    s.writes();
    connected(&s.run(&command, "--client-secret").await);
    assert_eq!(s.writes(), Vec::<String>::new());
    assert_eq!(s.made_app().unwrap().passwords.len(), 1);
}

#[tokio::test]
async fn a_run_that_dies_half_way_is_resumed_by_the_same_command() {
    let mut w = world();
    w.behaviour.fail_writes_to = "roleAssignments".into();
    let s = Setup::start(w).await;
    let command = s.command().await;
    let died = s.run(&command, "").await;
    assert_eq!(died.code, 5, "{died:?}");
    assert!(died.stderr.contains("assignment"), "{died:?}");
    assert_eq!(
        s.emulator.world().tenants[0].role_definitions.len(),
        1,
        "the role was made"
    );
    assert_eq!(s.connection().await["status"], "draft");
    s.emulator.update(|w| w.behaviour.fail_writes_to.clear());
    connected(&s.run(&command, "").await);
    let world = s.emulator.world();
    let made: Vec<_> = world.tenants[0]
        .apps
        .iter()
        .filter(|a| a.display_name.starts_with("spot-azure-connect-"))
        .collect();
    assert_eq!(made.len(), 1, "one app");
    assert_eq!(made[0].federated_credentials.len(), 1, "one credential");
    assert_eq!(world.tenants[0].role_definitions.len(), 1, "one role");
    assert_eq!(world.subscriptions[0].role_assignments.len(), 1, "one assignment");
}

#[tokio::test]
async fn each_check_stops_the_run_with_its_fix_before_anything_is_written() {
    let s = Setup::start(world()).await;
    let command = s.command().await;
    /// What breaks, how it is mended, what the run must say.
    type Case = (
        &'static str,
        Box<dyn Fn(&mut World)>,
        Box<dyn Fn(&mut World)>,
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (
            "may not create apps",
            Box::new(|w: &mut World| w.tenants[0].apps[0].graph_roles.clear()),
            Box::new(|w: &mut World| {
                w.tenants[0].apps[0].graph_roles = vec!["Application.ReadWrite.All".into()]
            }),
            // A service principal: what an app needs (the user setting applies to people only).
            &[
                "cannot-create-apps",
                "Application.ReadWrite.OwnedBy",
                "admin consent",
                "Application Developer",
            ],
        ),
        (
            "no roleAssignments/write",
            Box::new(|w: &mut World| {
                w.subscriptions[0].grants[0].actions = vec![
                    "*/read".into(),
                    "Microsoft.Authorization/roleDefinitions/write".into(),
                ]
            }),
            Box::new(|w: &mut World| w.subscriptions[0].grants[0].actions = vec!["*".into()]),
            &[
                "missing-permission",
                "Microsoft.Authorization/roleAssignments/write",
                "User Access Administrator",
            ],
        ),
        (
            "excluded by notActions",
            Box::new(|w: &mut World| {
                w.subscriptions[0].grants[0].not_actions = vec!["Microsoft.Authorization/*/write".into()]
            }),
            Box::new(|w: &mut World| w.subscriptions[0].grants[0].not_actions.clear()),
            &["missing-permission", "roleDefinitions/write"],
        ),
        (
            "subscription disabled",
            Box::new(|w: &mut World| w.subscriptions[0].state = "Disabled".into()),
            Box::new(|w: &mut World| w.subscriptions[0].state = "Enabled".into()),
            &["subscription-not-enabled", "Disabled"],
        ),
    ];
    for (name, break_it, mend, says) in cases {
        s.emulator.update(|w| break_it(w));
        let ran = s.run(&command, "").await;
        assert_eq!(ran.code, 4, "{name}: {ran:?}");
        for text in says {
            assert!(ran.stderr.contains(text), "{name}: {text:?} in {}", ran.stderr);
        }
        assert_eq!(s.writes(), Vec::<String>::new(), "{name}: nothing written");
        assert!(s.made_app().is_none(), "{name}");
        s.emulator.update(|w| mend(w));
    }
    // The failures were told to the page, and the connection is as it was.
    let failures: Vec<String> =
        s.d.bus_events()
            .await
            .iter()
            .filter(|e| e["detail-type"] == "Setup Progress" && e["detail"]["phase"] == "failed")
            .map(|e| e["detail"]["failure"]["code"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(
        failures,
        [
            "cannot-create-apps",
            "missing-permission",
            "missing-permission",
            "subscription-not-enabled"
        ]
    );
    assert_eq!(s.connection().await["status"], "draft");
}

#[tokio::test]
async fn a_dry_run_prints_the_writes_and_makes_none() {
    let s = Setup::start(world()).await;
    let command = s.command().await;
    let ran = s.run(&command, "--dry-run").await;
    assert_eq!(ran.code, 0, "{ran:?}");
    for w in [
        "would run: az rest --method post --url https://localhost:",
        "would run: az ad sp create",
        "would run: az ad app federated-credential create",
        "would run: az role definition create",
        "would run: az role assignment create",
    ] {
        assert!(ran.stdout.contains(w), "{w}: {}", ran.stdout);
    }
    assert_eq!(s.writes(), Vec::<String>::new());
    let c = s.connection().await;
    assert_eq!(
        (&c["status"], &c["clientId"]),
        (&json!("draft"), &Value::Null),
        "{c}"
    );
    let reports =
        s.d.bus_events()
            .await
            .iter()
            .filter(|e| e["detail-type"] == "Setup Progress")
            .count();
    assert_eq!(reports, 0, "a dry run reports nothing");
}

#[tokio::test]
async fn uninstall_with_a_fresh_command_leaves_azure_as_it_was() {
    let s = Setup::start(world()).await;
    let before = s.emulator.world();
    let command = s.command().await;
    connected(&s.run(&command, "").await);
    // A connect command cannot uninstall (this one is spent too).
    let spent = s.run(&command, "--uninstall").await;
    assert_eq!(spent.code, 3, "{spent:?}");
    // An uninstall command cannot connect: its report of `done` is refused.
    let fresh = s.uninstall_command().await;
    let ran = s.run(&fresh, "").await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.last_line().contains("uninstalled"), "{ran:?}");
    let after = s.emulator.world();
    assert_eq!(
        serde_json::to_value(&after.tenants[0].apps).unwrap(),
        serde_json::to_value(&before.tenants[0].apps).unwrap()
    );
    assert_eq!(
        after.tenants[0].role_definitions,
        before.tenants[0].role_definitions
    );
    assert_eq!(
        after.subscriptions[0].role_assignments,
        before.subscriptions[0].role_assignments
    );
    let gone =
        s.d.call("GET", &format!("/connections/{}", s.id), ORG, None)
            .await;
    assert_eq!(
        gone.status, 404,
        "the connection and its credential are deleted: {:?}",
        gone.body
    );
}

#[tokio::test]
async fn the_script_passes_shellcheck() {
    let out = tokio::process::Command::new("shellcheck")
        .args(["--severity=style", "--shell=bash"])
        .arg(script_path())
        .output()
        .await
        .expect("shellcheck is needed (Debian's package; scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_script_served_is_the_one_in_the_repository_and_public() {
    let s = Setup::start(world()).await;
    let r =
        s.d.http("GET", "/setup/scripts/azure-connect.sh", None, &[], None)
            .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body.as_str().unwrap(),
        std::fs::read_to_string(script_path()).unwrap()
    );
    assert!(
        !r.body.as_str().unwrap().contains("microsoftonline")
            && !r.body.as_str().unwrap().contains("management.azure.com"),
        "no Azure host in the script"
    );
}

/// Our cloud presets against `az cloud list`, a table we did not write.
#[tokio::test]
async fn the_cloud_presets_match_the_azure_clis_own_table() {
    let s = Setup::start(world()).await;
    let ran = s.az.az(&["cloud", "list", "-o", "json"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let clouds: Value = serde_json::from_str(&ran.stdout).unwrap();
    for (preset, name) in [
        ("public", "AzureCloud"),
        ("usgov", "AzureUSGovernment"),
        ("china", "AzureChinaCloud"),
    ] {
        let ours = shared::azure::Cloud::preset(preset).unwrap();
        let theirs = clouds
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        let e = &theirs["endpoints"];
        let trim = |v: &Value| v.as_str().unwrap().trim_end_matches('/').to_owned();
        assert_eq!(
            (
                ours.authority_host.clone(),
                ours.resource_manager.clone(),
                ours.graph.clone()
            ),
            (
                trim(&e["activeDirectory"]),
                trim(&e["resourceManager"]),
                trim(&e["microsoftGraphResourceId"])
            ),
            "{preset}"
        );
    }
}

/// `az account management-group list --no-register` (what a management-group setup will ask):
/// every page, and no resource provider registered on the way.
#[tokio::test]
async fn az_lists_management_groups_without_registering_anything() {
    let mut w = world();
    w.behaviour.management_groups_page_size = 2;
    w.management_groups = ["root", "platform", "workloads"]
        .iter()
        .map(|n| azure_emulator::ManagementGroup {
            name: (*n).into(),
            tenant_id: TENANT.into(),
            display_name: format!("{n} group"),
            ..Default::default()
        })
        .collect();
    let s = Setup::start(w).await;
    let ran =
        s.az.az(&[
            "account",
            "management-group",
            "list",
            "--no-register",
            "--query",
            "[].name",
            "-o",
            "tsv",
        ])
        .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(
        ran.stdout.lines().collect::<Vec<_>>(),
        ["root", "platform", "workloads"]
    );
    assert_eq!(s.writes(), Vec::<String>::new(), "nothing registered");
    assert_eq!(s.az.escaped.load(Ordering::SeqCst), 0);
}

/// The tenant of [`world`] with its subscription and two more under the management group
/// `contoso-prod` (one of them in its child `contoso-team`), the customer Owner-like at the group.
fn estate_world() -> World {
    let mut w = world();
    let under = |id: &str, name: &str| azure_emulator::Subscription {
        id: id.into(),
        tenant_id: TENANT.into(),
        display_name: name.into(),
        state: "Enabled".into(),
        ..azure_emulator::Subscription::default()
    };
    w.subscriptions.push(under(S2, "Contoso Prod EU"));
    w.subscriptions.push(under(S3, "Contoso Team"));
    let group = |name: &str, children: &[&str], subs: &[&str]| azure_emulator::ManagementGroup {
        name: name.into(),
        tenant_id: TENANT.into(),
        display_name: name.into(),
        children: children.iter().map(|c| (*c).to_owned()).collect(),
        subscriptions: subs.iter().map(|s| (*s).to_owned()).collect(),
        ..azure_emulator::ManagementGroup::default()
    };
    w.management_groups = vec![
        group("contoso-prod", &["contoso-team"], &[SUB, S2]),
        group("contoso-team", &[], &[S3]),
    ];
    w.management_groups[0].grants = vec![Grant {
        app_id: CALLER.into(),
        actions: vec!["*".into()],
        ..Grant::default()
    }];
    w
}

const S2: &str = "0a1b2c3d-1111-4222-8333-444455556601";
const S3: &str = "0a1b2c3d-1111-4222-8333-444455556602";

#[tokio::test]
async fn one_command_connects_a_management_group_finds_everything_again_and_uninstalls() {
    let s = Setup::start(estate_world()).await;
    let before = s.emulator.world();
    let command = s.command().await;
    let ran = s.run(&command, "--management-group contoso-prod").await;
    connected(&ran);
    assert!(
        ran.last_line().contains("management group contoso-prod"),
        "{ran:?}"
    );

    // One role, assignable at the group, with discovery's actions; one assignment, at the group.
    let world = s.emulator.world();
    let defs = &world.tenants[0].role_definitions;
    assert_eq!(defs.len(), 1, "{defs:?}");
    assert_eq!(defs[0].role_name, "spotCustomRole_mg_contoso-prod");
    assert_eq!(
        defs[0].assignable_scopes,
        ["/providers/Microsoft.Management/managementGroups/contoso-prod"]
    );
    for a in shared::domain::estate::GROUP_ACTIONS {
        assert!(defs[0].actions.iter().any(|x| x == a), "{a}");
    }
    let app = s.made_app().expect("the app");
    let at_group = &world.management_groups[0].role_assignments;
    assert_eq!(at_group.len(), 1, "{at_group:?}");
    assert_eq!(at_group[0].principal_id, app.principal_id);
    assert_eq!(at_group[0].role_definition_id, defs[0].id);
    assert!(world.subscriptions.iter().all(|s| s.role_assignments.is_empty()));

    // The connection is the group's: every subscription below it found.
    let c = s.connection().await;
    assert_eq!(c["status"], "connected", "{c}");
    assert_eq!(
        c["scope"],
        json!({"type": "managementGroup", "id": "contoso-prod"})
    );
    assert_eq!(c["estate"]["subscriptions"], 3, "{c}");

    // Again: everything is found, nothing written.
    s.writes();
    connected(&s.run(&command, "--management-group contoso-prod").await);
    assert_eq!(s.writes(), Vec::<String>::new());

    // Uninstall (an uninstall command; the group is the connection's own): Azure as it was.
    let fresh = s.uninstall_command().await;
    let ran = s.run(&fresh, "").await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let after = s.emulator.world();
    assert_eq!(
        after.tenants[0].role_definitions,
        before.tenants[0].role_definitions
    );
    assert_eq!(
        after.management_groups[0].role_assignments,
        before.management_groups[0].role_assignments
    );
    assert!(s.made_app().is_none());
}

mod groups;
mod paging;
mod safety;
