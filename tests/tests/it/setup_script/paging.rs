//! Every collection the script reads through `az rest` pages (Graph's `@odata.nextLink`, ARM's
//! `nextLink`), and `az rest` follows neither: the script must (issue 26). Here the emulator
//! answers one entry a page (its default), and what the run needs sits on a later page each time:
//! the caller's Graph app role, a directory role, the permission entry that grants the writes,
//! the app's second owner, and (on the second run) the role assignment it made.

use super::*;

fn pages_read(emulator: &Emulator, path_part: &str) -> usize {
    emulator
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains(path_part) && r.query.contains("skiptoken"))
        .count()
}

/// A service principal signed in whose Graph permission to register apps is its second app role
/// assignment, and whose rights on the subscription are in its second permission entry: the run
/// reads both second pages and connects; run again, it finds its assignment on a second page
/// (behind another assignment of the same principal) and writes nothing.
#[tokio::test]
async fn what_the_run_needs_on_a_later_page_is_found() {
    let mut w = world();
    w.behaviour.graph_page_size = 1;
    w.behaviour.arm_page_size = 1;
    w.behaviour.permissions_page_size = 1;
    w.tenants[0].apps[0].graph_roles = vec![
        "Application.Read.All".into(),
        "Application.ReadWrite.OwnedBy".into(),
    ];
    w.subscriptions[0].grants = vec![
        Grant {
            app_id: CALLER.into(),
            actions: vec!["Microsoft.Resources/subscriptions/read".into()],
            ..Grant::default()
        },
        Grant {
            app_id: CALLER.into(),
            actions: vec!["*".into()],
            ..Grant::default()
        },
    ];
    let s = Setup::start(w).await;
    let command = s.command().await;
    let ran = s.run(&command, "").await;
    connected(&ran);
    assert!(
        pages_read(&s.emulator, "/appRoleAssignments") >= 1,
        "the second page of app role assignments was read"
    );
    assert!(
        pages_read(&s.emulator, "/permissions") >= 1,
        "the second page of permissions was read"
    );

    // Another assignment of the same principal, listed before ours.
    let app = s.made_app().unwrap();
    s.emulator.update(|w| {
        let sub = &mut w.subscriptions[0];
        let mine = sub
            .role_assignments
            .iter()
            .position(|a| a.principal_id.eq_ignore_ascii_case(&app.principal_id))
            .expect("the run's assignment");
        let mut other = sub.role_assignments[mine].clone();
        other.id = "00000000-0000-4000-8000-0000000000aa".into();
        other.role_definition_id = "acdd72a7-3385-48ef-bd42-f606fba81ae7".into(); // Reader
        sub.role_assignments.insert(0, other);
    });
    s.emulator.clear_requests();
    let again = s.run(&s.command().await, "").await;
    connected(&again);
    assert!(again.stdout.contains("role assignment in place"), "{again:?}");
    assert!(
        pages_read(&s.emulator, "/roleAssignments") >= 1,
        "the second page of role assignments was read"
    );
    assert_eq!(
        s.writes(),
        Vec::<String>::new(),
        "nothing written the second time"
    );
}

/// A user whose directory role that may register apps is the second one listed (members may not
/// register apps in this tenant): the run reads the second page and connects.
#[tokio::test]
async fn a_directory_role_on_a_later_page_lets_a_user_register_the_app() {
    const USER: &str = "d0d0d0d0-0000-4000-8000-000000000002";
    let mut w = world();
    w.behaviour.graph_page_size = 1;
    let roles = ["Global Reader", "Application Developer"];
    let s = Setup::signed_in_user(w, USER, "grace", &roles, "act-5e7c0a13").await;
    s.emulator.clear_requests();
    let ran = s.run(&s.command().await, "").await;
    connected(&ran);
    assert!(
        pages_read(&s.emulator, "/transitiveMemberOf/") >= 1,
        "the second page of directory roles was read"
    );
}
