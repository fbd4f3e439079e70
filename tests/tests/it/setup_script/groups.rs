//! The script's paths at a management group, against ARM's answers there (issue 26): a custom role
//! that has not replicated yet (retried), an assignment of our role to our principal made by hand
//! under another name (found, nothing written), and the plan's assignment name taken by another
//! principal (a clear stop, never a silent success).

use super::*;

/// A custom role just created is unknown to role assignments for a while (ARM's replication):
/// the run waits and retries at the group, then connects.
#[tokio::test]
async fn a_role_not_yet_replicated_at_the_group_is_retried() {
    let mut w = estate_world();
    w.behaviour.role_replication_seconds = 6;
    let s = Setup::start(w).await;
    let ran = s.run(&s.command().await, "--management-group contoso-prod").await;
    connected(&ran);
    assert!(ran.stdout.contains("waiting for Azure to replicate"), "{ran:?}");
    let refused = s
        .emulator
        .requests()
        .iter()
        .filter(|r| {
            r.method == "PUT"
                && r.path.contains(
                    "managementGroups/contoso-prod/providers/Microsoft.Authorization/roleAssignments/",
                )
        })
        .count();
    assert!(
        refused >= 2,
        "the assignment was tried more than once ({refused})"
    );
}

/// Someone assigned our role to our principal at the group by hand, under another name: the run
/// finds it (reading every page) and writes nothing.
#[tokio::test]
async fn an_assignment_made_by_hand_at_the_group_is_found() {
    let s = Setup::start(estate_world()).await;
    let command = s.command().await;
    connected(&s.run(&command, "--management-group contoso-prod").await);
    s.emulator.update(|w| {
        let at = &mut w.management_groups[0].role_assignments;
        at[0].id = "0000aaaa-0000-4000-8000-00000000beef".into();
    });
    s.writes();
    let again = s.run(&s.command().await, "--management-group contoso-prod").await;
    connected(&again);
    assert!(
        again
            .stdout
            .contains("role assignment in place: 0000aaaa-0000-4000-8000-00000000beef"),
        "{again:?}"
    );
    assert_eq!(s.writes(), Vec::<String>::new());
}

/// The plan's assignment name is already used at the group for another principal: ARM refuses
/// (400 `RoleAssignmentUpdateNotPermitted`) and the run stops with exit 5, saying so; the other
/// principal's assignment is untouched.
#[tokio::test]
async fn the_assignment_name_taken_by_another_principal_stops_the_run() {
    let s = Setup::start(estate_world()).await;
    let command = s.command().await;
    // The plan names the assignment: learn it from a dry run's writes.
    let dry = s.run(&command, "--management-group contoso-prod --dry-run").await;
    assert_eq!(dry.code, 0, "{dry:?}");
    let name = dry
        .stdout
        .split("--name ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the dry run shows the assignment's name")
        .to_owned();
    let other = azure_emulator::RoleAssignment {
        id: name.clone(),
        role_definition_id: "acdd72a7-3385-48ef-bd42-f606fba81ae7".into(),
        principal_id: "c0c0c0c0-0000-4000-8000-000000000002".into(),
        principal_type: "ServicePrincipal".into(),
        created_at: None,
    };
    s.emulator
        .update(|w| w.management_groups[0].role_assignments.push(other.clone()));
    let ran = s.run(&command, "--management-group contoso-prod").await;
    assert_eq!(ran.code, 5, "{ran:?}");
    assert!(
        ran.stderr.contains("assignment-name-taken")
            && ran.stderr.contains("RoleAssignmentUpdateNotPermitted"),
        "{ran:?}"
    );
    let world = s.emulator.world();
    assert!(
        world.management_groups[0].role_assignments.contains(&other),
        "the other principal's assignment is untouched"
    );
    assert_ne!(s.connection().await["status"], "connected");
}
