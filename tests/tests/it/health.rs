//! Connection health: after `connected`, breakages induced in the Azure emulator are found by one
//! health pass at the right step and code (`degraded`, announced once), clear after the fix and one
//! more pass (`connected`, announced once); transients never degrade; a healthy check writes
//! nothing; a run is never done twice.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use integration_tests::{SECRET, STORES, StoreKind, request};
use serde_json::Value;
use shared::app::{App, HealthReport, HealthSchedule, Operation, Outcome, Window};
use shared::domain::role::required_actions;
use shared::domain::{ConnectionId, OrgId, Status};
use shared::events::MemorySink;
use shared::store::ConnectionStore;

const ORG: &str = "org-health";
const SCHEDULE: HealthSchedule = HealthSchedule {
    period: Duration::from_secs(86_400),
    pace: Duration::ZERO,
};

struct Setup {
    emulator: azure_emulator::Emulator,
    emulator_url: String,
    store: Arc<dyn ConnectionStore>,
    /// The same store when it is Secrets Manager: its call counts.
    sm: Option<Arc<shared::store::secrets_manager::SecretsManagerStore>>,
    app: App,
    sink: Arc<MemorySink>,
    org: OrgId,
    id: ConnectionId,
}

/// The id of the custom role assigned to the app in the emulator.
const ROLE_ID: &str = "0c3ce3a1-2a5d-4a5a-9c84-5b1f9b6b0e4f";

fn world() -> azure_emulator::World {
    let mut w = azure_emulator::World::single(
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "contoso.onmicrosoft.com",
        "11111111-2222-4333-8444-555555555555",
        &[SECRET],
        "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab",
        Some(required_actions().map(str::to_owned).collect()),
    );
    w.subscriptions[0].grants[0].role_definition_id = ROLE_ID.into();
    w
}

impl Setup {
    /// A connection walked to `connected` on `kind`.
    async fn connected(kind: StoreKind) -> Self {
        let (emulator, azure) = integration_tests::emulator(world(), Duration::from_secs(2)).await;
        let emulator_url = azure.endpoints().authority_host;
        let (store, sm): (Arc<dyn ConnectionStore>, _) = match kind {
            StoreKind::SecretsManager => {
                let sm = integration_tests::sm_store(&integration_tests::unique_prefix()).await;
                (sm.clone(), Some(sm))
            }
            StoreKind::Embedded => (integration_tests::store(kind).await, None),
        };
        let sink = Arc::new(MemorySink::default());
        let app = App::new(store.clone(), sink.clone()).with_validator(Arc::new(azure.validator().unwrap()));
        let org = OrgId::parse(ORG).unwrap();
        let c = integration_tests::walk(&app, &org, "act-0000bead", true).await;
        Self {
            emulator,
            emulator_url,
            store,
            sm,
            app,
            sink,
            org,
            id: c.id,
        }
    }

    async fn pass(&self) -> HealthReport {
        self.app
            .health_pass("forced", Utc::now(), Window::All, SCHEDULE)
            .await
            .unwrap()
    }

    async fn status(&self) -> (Status, Option<shared::domain::FailureRecord>) {
        let c = self
            .store
            .load(&self.org, &self.id)
            .await
            .unwrap()
            .unwrap()
            .connection;
        (c.status, c.health.and_then(|h| h.diagnosis))
    }

    fn events(&self, detail_type: &str) -> Vec<Value> {
        self.sink
            .events()
            .into_iter()
            .filter(|e| e.detail_type == detail_type)
            .map(|e| e.detail)
            .collect()
    }
}

type Breakage = (
    &'static str,
    fn(&mut azure_emulator::World),
    fn(&mut azure_emulator::World),
);

/// Each breakage (and its fix), as a customer or an admin causes it after linking.
fn breakages() -> Vec<Breakage> {
    vec![
        (
            "secret revoked",
            |w| w.tenants[0].apps[0].passwords.clear(),
            |w| *w = world(),
        ),
        ("app deleted", |w| w.tenants[0].apps.clear(), |w| *w = world()),
        (
            "app disabled",
            |w| w.tenants[0].apps[0].disabled = true,
            |w| w.tenants[0].apps[0].disabled = false,
        ),
        (
            "subscription disabled",
            |w| w.subscriptions[0].state = "Disabled".into(),
            |w| w.subscriptions[0].state = "Enabled".into(),
        ),
        (
            "subscription deleted",
            |w| w.subscriptions.clear(),
            |w| *w = world(),
        ),
        (
            "subscription moved to another tenant",
            |w| w.subscriptions[0].tenant_id = "00000000-0000-4000-8000-0000000000aa".into(),
            |w| *w = world(),
        ),
        (
            "role assignment removed",
            |w| w.subscriptions[0].grants.clear(),
            |w| *w = world(),
        ),
        (
            "actions removed from the role",
            |w| {
                w.subscriptions[0].grants[0]
                    .actions
                    .retain(|a| !a.starts_with("Microsoft.Compute/disks/"))
            },
            |w| *w = world(),
        ),
    ]
}

/// What each breakage is diagnosed as: (breakage, step, code). The table of docs/health.md is this one.
pub const DETECTION: &[(&str, &str, &str)] = &[
    ("secret revoked", "client-secret", "client-secret-invalid"),
    ("app deleted", "app-registration", "application-not-found"),
    ("app disabled", "app-registration", "application-disabled"),
    ("subscription disabled", "subscription", "subscription-disabled"),
    ("subscription deleted", "subscription", "subscription-not-found"),
    (
        "subscription moved to another tenant",
        "subscription",
        "subscription-in-other-tenant",
    ),
    ("role assignment removed", "role-assignment", "role-not-assigned"),
    ("actions removed from the role", "custom-role", "missing-actions"),
];

#[tokio::test]
async fn every_breakage_degrades_at_its_step_and_clears_after_the_fix() {
    for kind in STORES {
        for (name, breaks, fixes) in breakages() {
            let s = Setup::connected(kind).await;
            s.emulator.update(breaks);
            let report = s.pass().await;
            let (status, diagnosis) = s.status().await;
            let d =
                diagnosis.unwrap_or_else(|| panic!("{kind:?} {name}: {status:?}, no diagnosis ({report:?})"));
            let found = (d.step.as_str(), d.code.as_str());
            let want = DETECTION
                .iter()
                .find(|(n, ..)| *n == name)
                .map(|(_, step, code)| (*step, *code));
            assert_eq!(Some(found), want, "{kind:?} {name}");
            assert_eq!(
                (status, report.degraded),
                (Status::Degraded, 1),
                "{kind:?} {name}: {report:?}"
            );
            if name == "actions removed from the role" {
                assert!(
                    d.missing_actions
                        .iter()
                        .all(|a| a.starts_with("Microsoft.Compute/disks/"))
                        && !d.missing_actions.is_empty()
                );
            }
            let degraded = s.events("Connection Degraded");
            assert_eq!(degraded.len(), 1, "{kind:?} {name}");
            assert_eq!(degraded[0]["diagnosis"]["code"], d.code, "{kind:?} {name}");
            // Still broken: nothing written, nothing announced again.
            let again = s.pass().await;
            assert_eq!(
                (again.unchanged, again.degraded),
                (1, 0),
                "{kind:?} {name}: {again:?}"
            );
            assert_eq!(s.events("Connection Degraded").len(), 1, "{kind:?} {name}");
            // Fixed: restored after one more pass, announced once.
            s.emulator.update(fixes);
            let fixed = s.pass().await;
            assert_eq!(fixed.restored, 1, "{kind:?} {name}: {fixed:?}");
            assert_eq!(s.status().await, (Status::Connected, None), "{kind:?} {name}");
            assert_eq!(s.events("Connection Restored").len(), 1, "{kind:?} {name}");
            assert_eq!(s.pass().await.unchanged, 1);
            assert_eq!(
                s.events("Connection Restored").len(),
                1,
                "{kind:?} {name}: announced once"
            );
        }
    }
}

/// Break, pass, fix, pass, break, pass, … within one period: every change of verdict is written
/// and announced, whatever was written in between (a pass's key names the state it started
/// from), by forced passes and by scheduled runs alike.
#[tokio::test]
async fn every_change_of_verdict_is_recorded_whatever_came_between() {
    for kind in STORES {
        for scheduled in [false, true] {
            let s = Setup::connected(kind).await;
            let mut run = 0;
            let mut pass = || {
                run += 1;
                let now = Utc::now();
                let (name, window) = if scheduled {
                    let from = now - chrono::Duration::days(1);
                    (format!("scheduled-{run}"), Window::Slots { from, to: now })
                } else {
                    ("forced".to_owned(), Window::All)
                };
                let app = s.app.clone();
                async move { app.health_pass(&name, now, window, SCHEDULE).await.unwrap() }
            };
            for round in 1..=3 {
                s.emulator
                    .update(|w| w.subscriptions[0].state = "Disabled".into());
                let r = pass().await;
                assert_eq!(
                    r.degraded, 1,
                    "{kind:?} scheduled={scheduled} round {round}: {r:?}"
                );
                assert_eq!(s.status().await.0, Status::Degraded, "{kind:?} round {round}");
                s.emulator.update(|w| w.subscriptions[0].state = "Enabled".into());
                let r = pass().await;
                assert_eq!(
                    r.restored, 1,
                    "{kind:?} scheduled={scheduled} round {round}: {r:?}"
                );
                assert_eq!(
                    s.status().await,
                    (Status::Connected, None),
                    "{kind:?} round {round}"
                );
                assert_eq!(
                    (
                        s.events("Connection Degraded").len(),
                        s.events("Connection Restored").len()
                    ),
                    (round, round),
                    "{kind:?} scheduled={scheduled}: each change announced once"
                );
            }
        }
    }
}

#[tokio::test]
async fn transients_never_degrade() {
    let s = Setup::connected(StoreKind::SecretsManager).await;
    for (name, f) in [
        (
            "outage",
            (|w: &mut azure_emulator::World| w.behaviour.outage = true) as fn(&mut azure_emulator::World),
        ),
        ("throttling", |w| {
            w.behaviour.throttle_next = 1_000;
            w.behaviour.retry_after_seconds = 1;
        }),
        ("slow answers", |w| w.behaviour.latency_ms = 3_000),
    ] {
        s.emulator.update(f);
        let report = s.pass().await;
        assert_eq!((report.deferred, report.degraded), (1, 0), "{name}: {report:?}");
        assert_eq!(s.status().await, (Status::Connected, None), "{name}");
        s.emulator.update(|w| w.behaviour = Default::default());
    }
    assert!(s.events("Connection Degraded").is_empty());
}

#[tokio::test]
async fn a_healthy_check_writes_nothing() {
    let s = Setup::connected(StoreKind::SecretsManager).await;
    let before = s.store.load(&s.org, &s.id).await.unwrap().unwrap().version;
    let calls = || s.sm.as_ref().unwrap().calls().total();
    let (calls_before, gets_before) = (
        calls(),
        s.sm.as_ref()
            .unwrap()
            .calls()
            .get
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    let report = s.pass().await;
    assert_eq!((report.checked, report.unchanged), (1, 1), "{report:?}");
    // One page of the listing, the connection's read and its secret's: nothing else.
    let gets =
        s.sm.as_ref()
            .unwrap()
            .calls()
            .get
            .load(std::sync::atomic::Ordering::Relaxed)
            - gets_before;
    assert_eq!(
        (calls() - calls_before, gets),
        (3, 2),
        "Secrets Manager calls of a healthy check"
    );
    let after = s.store.load(&s.org, &s.id).await.unwrap().unwrap().version;
    assert_eq!(before, after, "a healthy check wrote a new version");
    assert!(
        s.sink
            .events()
            .iter()
            .all(|e| !e.detail_type.starts_with("Connection "))
    );
}

#[tokio::test]
async fn a_run_is_done_once_whatever_retries_or_duplicates_do() {
    for kind in STORES {
        let s = Setup::connected(kind).await;
        let now = Utc::now();
        // A window that holds every slot: the run checks the connection.
        let window = Window::Slots {
            from: now - chrono::Duration::days(1),
            to: now,
        };
        let run = format!("{}", now.timestamp());
        let first = s.app.health_pass(&run, now, window, SCHEDULE).await.unwrap();
        assert_eq!(first.checked, 1, "{kind:?}: {first:?}");
        let calls = s.emulator.requests().len();
        // The same run delivered again, twice at once: nothing is checked again.
        let (a, b) = tokio::join!(
            s.app.health_pass(&run, now, window, SCHEDULE),
            s.app.health_pass(&run, now, window, SCHEDULE)
        );
        for r in [a.unwrap(), b.unwrap()] {
            assert!(r.already_run && r.checked == 0, "{kind:?}: {r:?}");
        }
        assert_eq!(
            s.emulator.requests().len(),
            calls,
            "{kind:?}: Azure was asked again"
        );
        // Windows that do not hold the connection's slot skip it.
        let slot = shared::domain::health::slot(&s.id, SCHEDULE.period);
        let start = now - chrono::Duration::days(2);
        let aligned = start - chrono::Duration::seconds(start.timestamp().rem_euclid(86_400));
        let slot_at = aligned + chrono::Duration::from_std(slot).unwrap();
        let before = Window::Slots {
            from: slot_at - chrono::Duration::minutes(15),
            to: slot_at - chrono::Duration::seconds(1),
        };
        let r = s
            .app
            .health_pass("before-slot", now, before, SCHEDULE)
            .await
            .unwrap();
        assert_eq!((r.checked, r.skipped), (0, 1), "{kind:?}: {r:?}");
        let holding = Window::Slots {
            from: slot_at - chrono::Duration::minutes(15),
            to: slot_at,
        };
        let r = s
            .app
            .health_pass("holding-slot", now, holding, SCHEDULE)
            .await
            .unwrap();
        assert_eq!(r.checked, 1, "{kind:?}: {r:?}");
    }
}

#[tokio::test]
async fn the_scheduled_sample_runs_through_the_handler_once() {
    use lambda_runtime::{Context, LambdaEvent};
    let s = Setup::connected(StoreKind::SecretsManager).await;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/health-check/schedule-run.json");
    let payload: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let config = shared::config::Config::from_lookup(|_| None).unwrap();
    // The sample's time, as the schedule delivers it: a few seconds late.
    let at = chrono::DateTime::parse_from_rfc3339(payload["scheduledAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let handler = shared::edge::health::HealthHandler::new(s.app.clone(), config.health)
        .with_clock(std::sync::Arc::new(move || at + chrono::Duration::seconds(5)));
    let first = handler
        .handle(LambdaEvent::new(payload.clone(), Context::default()))
        .await
        .unwrap();
    assert_eq!(
        first["checked"].as_u64().unwrap() + first["skipped"].as_u64().unwrap(),
        1,
        "{first}"
    );
    let again = handler
        .handle(LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    assert_eq!(again["alreadyRun"], true, "{again}");
    // A malformed input fails the invocation naming the field, never repeating it.
    let bad = serde_json::json!({"scheduledAt": "Zq9~not-a-time"});
    let err = handler
        .handle(LambdaEvent::new(bad, Context::default()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("scheduledAt") && !err.contains("Zq9~"), "{err}");
    // A time the schedule cannot send (a day later than the clock, or long past) is refused.
    for when in [at + chrono::Duration::days(1), at - chrono::Duration::days(1)] {
        let err = handler
            .handle(LambdaEvent::new(
                serde_json::json!({"scheduledAt": when}),
                Context::default(),
            ))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("scheduledAt"), "{err}");
    }
}

#[test]
fn the_documented_detection_table_is_the_tested_one() {
    let page =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/health.md"))
            .unwrap();
    for (breakage, step, code) in DETECTION {
        let row = format!("| {breakage} | `{step}` | `{code}`");
        assert!(page.contains(&row), "docs/health.md lacks: {row}");
    }
}

#[tokio::test]
async fn spots_credentials_api_reports_the_health_of_the_item() {
    let s = Setup::connected(StoreKind::Embedded).await;
    let spot = shared::edge::spot::router(s.app.clone(), shared::edge::http::OrgSource::local_header());
    let item = || async {
        let r = integration_tests::send(
            &spot,
            "GET",
            "/azure/setup/credentials?accountId=act-0000bead",
            Some(ORG),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["response"]["items"][0]["health"].clone()
    };
    assert_eq!(item().await["status"], "healthy");
    s.emulator.update(|w| w.subscriptions[0].grants.clear());
    s.pass().await;
    let health = item().await;
    assert_eq!(
        (health["status"].as_str(), health["diagnosis"]["code"].as_str()),
        (Some("degraded"), Some("role-not-assigned")),
        "{health}"
    );
}

#[tokio::test]
async fn rotation_is_reported_unavailable_when_the_app_loses_its_graph_rights() {
    use shared::domain::Command;
    use shared::domain::connection::RotationSettings;
    // An app that owns itself with Application.ReadWrite.OwnedBy: rotation can be turned on.
    let (emulator, azure) = integration_tests::emulator(
        {
            let mut w = world();
            w.tenants[0].apps[0].manages_own_credentials = true;
            w
        },
        Duration::from_secs(2),
    )
    .await;
    let store = integration_tests::store(StoreKind::Embedded).await;
    let sink = Arc::new(MemorySink::default());
    let app = App::new(store.clone(), sink.clone()).with_validator(Arc::new(azure.validator().unwrap()));
    let org = OrgId::parse(ORG).unwrap();
    let c = integration_tests::walk(&app, &org, "act-0000beef", true).await;
    let on = Command::SetRotation(Some(RotationSettings { days_before: 14 }));
    app.execute(
        &request("on"),
        &org,
        Operation::Submit {
            connection: c.id,
            command: on,
        },
    )
    .await
    .unwrap();
    let unavailable = || {
        sink.events()
            .into_iter()
            .filter(|e| e.detail_type == "Rotation Unavailable")
            .count()
    };

    // An admin swaps the permission for Application.Read.All: the app still reads itself, but can
    // no longer add or remove passwords.
    emulator.update(|w| {
        w.tenants[0].apps[0].manages_own_credentials = false;
        w.tenants[0].apps[0].graph_roles = vec!["Application.Read.All".into()];
    });
    let pass = || app.health_pass("forced", Utc::now(), Window::All, SCHEDULE);
    let report = pass().await.unwrap();
    assert_eq!((report.degraded, unavailable()), (0, 1), "{report:?}");
    let c = store.load(&org, &c.id).await.unwrap().unwrap().connection;
    assert_eq!(c.status, Status::Connected, "the connection itself works");
    assert_eq!(c.validation.unwrap().graph_manages_credentials, Some(false));
    pass().await.unwrap();
    assert_eq!(unavailable(), 1, "announced once");
}

#[tokio::test]
async fn reading_the_app_is_not_managing_it() {
    // Application.Read.All only: Connect Account must not offer rotation.
    let mut w = world();
    w.tenants[0].apps[0].graph_roles = vec!["Application.Read.All".into()];
    let (_emulator, azure) = integration_tests::emulator(w, Duration::from_secs(2)).await;
    let store = integration_tests::store(StoreKind::Embedded).await;
    let (app, _) = integration_tests::app(store);
    let app = app.with_validator(Arc::new(azure.validator().unwrap()));
    let org = OrgId::parse(ORG).unwrap();
    let c = integration_tests::walk(&app, &org, "act-0000feed", true).await;
    assert_eq!(c.validation.unwrap().graph_manages_credentials, Some(false));
}

/// Version 2 of Spot's role: three new actions.
fn version_2(required: bool) -> Arc<shared::domain::role::RoleVersions> {
    let v2 = shared::domain::role::RoleVersion {
        version: 2,
        added: vec![
            "Microsoft.Compute/hostGroups/read".into(),
            "Microsoft.Compute/hostGroups/hosts/read".into(),
            "Microsoft.Compute/proximityPlacementGroups/write".into(),
        ],
        required,
    };
    Arc::new(shared::domain::role::RoleVersions::builtin_v1().with(v2).unwrap())
}

/// The same store and events, after Spot deployed the role's version 2.
async fn upgraded(s: &Setup, roles: Arc<shared::domain::role::RoleVersions>) -> App {
    let url = s.emulator_url.clone();
    let azure = shared::config::AzureConfig::from_lookup(|k| match k {
        "AZURE_AUTHORITY_HOST" | "AZURE_RESOURCE_MANAGER_ENDPOINT" | "AZURE_GRAPH_ENDPOINT" => {
            Some(url.clone())
        }
        "AZURE_VALIDATION_BUDGET_MS" => Some("2000".into()),
        _ => None,
    })
    .unwrap();
    App::new(s.store.clone(), s.sink.clone())
        .with_validator(Arc::new(azure.validator().unwrap().with_roles(roles.clone())))
        .with_roles(roles)
}

#[tokio::test]
async fn a_required_role_version_degrades_until_granted_and_the_export_upgrades_the_same_role() {
    for kind in STORES {
        let s = Setup::connected(kind).await;
        let roles = version_2(true);
        let added: Vec<String> = roles.actions()[85..].iter().map(|a| (*a).to_owned()).collect();
        let app = upgraded(&s, roles.clone()).await;
        let pass = || app.health_pass("forced", Utc::now(), Window::All, SCHEDULE);
        let report = pass().await.unwrap();
        assert_eq!(report.degraded, 1, "{kind:?}: {report:?}");
        let (status, d) = s.status().await;
        let d = d.unwrap();
        assert_eq!(
            (status, d.step.as_str(), d.code.as_str()),
            (Status::Degraded, "custom-role", "missing-actions")
        );
        let mut missing = d.missing_actions.clone();
        missing.sort();
        let mut want = added.clone();
        want.sort();
        assert_eq!(missing, want, "{kind:?}: exactly the added actions");
        let outdated = s.events("Custom Role Outdated");
        assert_eq!(outdated.len(), 1, "{kind:?}");
        assert_eq!(
            (
                outdated[0]["required"].as_bool(),
                outdated[0]["latestVersion"].as_u64()
            ),
            (Some(true), Some(2))
        );
        assert_eq!(outdated[0]["addedActions"].as_array().unwrap().len(), 3);
        // The export: the same role name, every action of both versions.
        let export = Operation::ExportRole {
            connection: s.id,
            format: shared::domain::RoleFormat::Cli,
        };
        let Outcome::Role { role, .. } = app.execute(&request("export"), &s.org, export).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(
            role["Name"],
            format!("spotCustomRole_{}", "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab")
        );
        assert_eq!(role["Actions"].as_array().unwrap().len(), 88, "{kind:?}");
        // And the id of the role assigned to the app, read at Connect Account: `az role definition
        // update` changes that role.
        assert_eq!(
            role["Id"],
            format!(
                "/subscriptions/6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab/providers/Microsoft.Authorization/roleDefinitions/{ROLE_ID}"
            ),
            "{kind:?}: {role}"
        );
        assert_eq!(
            role["roleName"], role["Name"],
            "{kind:?}: az reads roleName when Id is given"
        );
        // The customer updates the role they have; the next pass restores the connection.
        s.emulator
            .update(|w| w.subscriptions[0].grants[0].actions.extend(added.iter().cloned()));
        let report = pass().await.unwrap();
        assert_eq!(report.restored, 1, "{kind:?}: {report:?}");
        let c = s.store.load(&s.org, &s.id).await.unwrap().unwrap().connection;
        assert_eq!(
            (c.status, c.validation.unwrap().role_version),
            (Status::Connected, 2),
            "{kind:?}"
        );
        assert_eq!(
            s.events("Custom Role Outdated").len(),
            1,
            "{kind:?}: announced once"
        );
    }
}

#[tokio::test]
async fn a_recommended_role_version_is_a_warning_only() {
    for kind in STORES {
        let s = Setup::connected(kind).await;
        let roles = version_2(false);
        let added: Vec<String> = roles.actions()[85..].iter().map(|a| (*a).to_owned()).collect();
        let app = upgraded(&s, roles).await;
        let pass = || app.health_pass("forced", Utc::now(), Window::All, SCHEDULE);
        let report = pass().await.unwrap();
        assert_eq!(report.degraded, 0, "{kind:?}: {report:?}");
        let c = s.store.load(&s.org, &s.id).await.unwrap().unwrap().connection;
        assert_eq!(c.status, Status::Connected);
        assert_eq!(c.health.as_ref().unwrap().outdated, added, "{kind:?}");
        let outdated = s.events("Custom Role Outdated");
        assert_eq!(
            (outdated.len(), outdated[0]["required"].as_bool()),
            (1, Some(false)),
            "{kind:?}"
        );
        // Still missing: nothing written, nothing announced again.
        let version = s.store.load(&s.org, &s.id).await.unwrap().unwrap().version;
        pass().await.unwrap();
        assert_eq!(
            s.store.load(&s.org, &s.id).await.unwrap().unwrap().version,
            version,
            "{kind:?}"
        );
        assert_eq!(s.events("Custom Role Outdated").len(), 1, "{kind:?}");
        // Granted: the warning clears.
        s.emulator
            .update(|w| w.subscriptions[0].grants[0].actions.extend(added.iter().cloned()));
        pass().await.unwrap();
        let c = s.store.load(&s.org, &s.id).await.unwrap().unwrap().connection;
        assert!(c.health.unwrap().outdated.is_empty(), "{kind:?}");
        assert_eq!(s.events("Custom Role Outdated").len(), 1, "{kind:?}");
    }
}

/// More than Spot needs is reported, once per change, by a health pass and by Connect Account;
/// narrowed, it is cleared without an event.
#[tokio::test]
async fn over_privilege_is_reported_once_per_change_with_the_roles_it_comes_from() {
    const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
    for kind in STORES {
        let s = Setup::connected(kind).await;
        let over = || async {
            s.store
                .load(&s.org, &s.id)
                .await
                .unwrap()
                .unwrap()
                .connection
                .validation
                .unwrap()
                .over_privilege
        };
        assert_eq!(over().await, None, "{kind:?}: Spot's role alone");
        assert!(s.events("Connection Over-Privileged").is_empty());
        // Someone also makes the app an Owner.
        s.emulator.update(|w| {
            w.subscriptions[0].grants.push(azure_emulator::Grant {
                app_id: "11111111-2222-4333-8444-555555555555".into(),
                role_definition_id: OWNER.into(),
                actions: vec!["*".into()],
                ..Default::default()
            })
        });
        let report = s.pass().await;
        assert_eq!(
            s.status().await.0,
            Status::Connected,
            "{kind:?}: a warning, not a failure"
        );
        let found = over().await.expect("found by the health pass");
        assert_eq!(found.extra_grants, ["*"], "{kind:?}");
        assert_eq!(
            found.roles,
            ["Owner (built-in)".to_owned(), format!("custom role {ROLE_ID}")],
            "{kind:?}"
        );
        let events = s.events("Connection Over-Privileged");
        assert_eq!(events.len(), 1, "{kind:?}: {report:?}");
        assert_eq!(events[0]["extraGrants"], serde_json::json!(["*"]));
        assert!(events[0]["advice"].as_str().unwrap().contains("Owner (built-in)"));
        // The same again: nothing written, nothing announced.
        let again = s.pass().await;
        assert_eq!(
            (again.unchanged, s.events("Connection Over-Privileged").len()),
            (1, 1),
            "{kind:?}"
        );
        // Narrowed: cleared, without an event.
        s.emulator.update(|w| w.subscriptions[0].grants.truncate(1));
        s.pass().await;
        assert_eq!(over().await, None, "{kind:?}");
        assert_eq!(s.events("Connection Over-Privileged").len(), 1, "{kind:?}");
        // A write outside Spot's role in its own custom role, found by Connect Account.
        s.emulator.update(|w| {
            w.subscriptions[0].grants[0]
                .actions
                .push("Microsoft.Sql/servers/write".into())
        });
        let connect = shared::app::Operation::Connect { connection: s.id };
        s.app
            .execute(&integration_tests::request("again"), &s.org, connect)
            .await
            .unwrap();
        let found = over().await.expect("found by Connect Account");
        assert_eq!(found.extra_grants, ["Microsoft.Sql/servers/write"], "{kind:?}");
        assert_eq!(s.events("Connection Over-Privileged").len(), 2, "{kind:?}");
    }
}
