//! Least privilege, reported: what an app may do beyond what Spot needs. Connect Account and the
//! health pass already read the app's permissions on the subscription and the roles assigned to it;
//! from those, the grants that go further than Spot's role — a wildcard that reaches a write,
//! delete or action outside Spot's list (`*`, `Microsoft.Compute/*`), any write, delete or action
//! outside it, a built-in Owner, Contributor or User Access Administrator assignment — and the
//! roles they come from. Reads beyond Spot's list are not reported (a `*/read` grant is Reader's).

use super::rbac::{PermissionEntry, covers, intersects};

/// Built-in roles that grant far more than Spot needs (their ids are the same in every tenant).
pub const BROAD_BUILT_IN_ROLES: [(&str, &str); 3] = [
    ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner"),
    ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"),
    (
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "User Access Administrator",
    ),
];

/// Kinds of operation that change something (what a grant beyond Spot's list must not reach).
const CHANGES: [&str; 3] = ["*/write", "*/delete", "*/action"];

/// More than Spot needs: the grants beyond its role, and the roles assigned (built-in ones named).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OverPrivilege {
    /// Action patterns granted beyond Spot's role, as Azure lists them, in order, once each.
    pub extra_grants: Vec<String>,
    /// The roles assigned to the app on the subscription: `Owner (built-in)`, … or
    /// `custom role {id}`; the broad built-in ones first.
    pub roles: Vec<String>,
}

/// What the app may do beyond `spot` (Spot's action patterns), from its permission `entries` and
/// the ids of the roles assigned to it; `None` when it holds no more than it needs.
pub fn over_privilege<'a>(
    spot: impl IntoIterator<Item = &'a str>,
    entries: &[PermissionEntry],
    assigned_roles: &[String],
) -> Option<OverPrivilege> {
    let spot: Vec<String> = spot.into_iter().map(str::to_ascii_lowercase).collect();
    let mut extra_grants: Vec<String> = Vec::new();
    for action in entries.iter().flat_map(|e| &e.actions) {
        let a = action.trim().to_ascii_lowercase();
        let changes = CHANGES.iter().any(|c| intersects(&a, c));
        let within_spot = spot.iter().any(|s| covers(s, &a));
        if changes && !within_spot && !extra_grants.iter().any(|g| g.eq_ignore_ascii_case(action)) {
            extra_grants.push(action.trim().to_owned());
        }
    }
    let broad: Vec<&str> = BROAD_BUILT_IN_ROLES
        .iter()
        .filter(|(id, _)| assigned_roles.iter().any(|r| r.eq_ignore_ascii_case(id)))
        .map(|(_, name)| *name)
        .collect();
    if extra_grants.is_empty() && broad.is_empty() {
        return None;
    }
    let mut roles: Vec<String> = broad.iter().map(|n| format!("{n} (built-in)")).collect();
    roles.extend(
        assigned_roles
            .iter()
            .filter(|r| {
                !BROAD_BUILT_IN_ROLES
                    .iter()
                    .any(|(id, _)| r.eq_ignore_ascii_case(id))
            })
            .map(|r| format!("custom role {r}")),
    );
    Some(OverPrivilege { extra_grants, roles })
}

impl OverPrivilege {
    /// What the customer reads (the connection's warning and the event's detail).
    pub fn advice(&self) -> String {
        let grants = if self.extra_grants.is_empty() {
            "everything the built-in role grants".to_owned()
        } else {
            self.extra_grants.join(", ")
        };
        format!(
            "The app may do more than Spot needs: {grants} (from {}). Narrow it: assign only the custom role Spot's \"Export JSON Policy\" hands out (Access control (IAM) > Role assignments: remove the broader assignment), and keep that role's actions as exported.",
            if self.roles.is_empty() {
                "its roles".to_owned()
            } else {
                self.roles.join(", ")
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::role::required_actions;

    fn e(actions: &[&str]) -> PermissionEntry {
        PermissionEntry::new(actions.iter().copied(), std::iter::empty::<&str>())
    }

    fn spot() -> Vec<&'static str> {
        required_actions().collect()
    }

    #[test]
    fn spots_own_role_is_not_over_privileged() {
        let entries = [e(&spot())];
        assert_eq!(
            over_privilege(spot(), &entries, &["0c3ce3a1-2a5d-4a5a-9c84-5b1f9b6b0e4f".into()]),
            None
        );
        // Reads beyond it neither (Reader's `*/read`).
        let with_reader = [e(&spot()), e(&["*/read"])];
        assert_eq!(over_privilege(spot(), &with_reader, &[]), None);
    }

    #[test]
    fn wildcards_writes_and_broad_roles_are_reported_with_their_roles() {
        let owner = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635".to_owned();
        let custom = "0c3ce3a1-2a5d-4a5a-9c84-5b1f9b6b0e4f".to_owned();
        let entries = [e(&spot()), e(&["*"])];
        let found = over_privilege(spot(), &entries, &[custom.clone(), owner.clone()]).unwrap();
        assert_eq!(found.extra_grants, ["*"]);
        assert_eq!(
            found.roles,
            ["Owner (built-in)".to_owned(), format!("custom role {custom}")]
        );
        assert!(found.advice().contains("Owner (built-in)"), "{}", found.advice());
        // A provider's wildcard, a write and a delete outside Spot's list.
        let entries = [
            e(&spot()),
            e(&[
                "Microsoft.Network/*",
                "Microsoft.Sql/servers/write",
                "Microsoft.Storage/storageAccounts/delete",
            ]),
        ];
        let found = over_privilege(spot(), &entries, std::slice::from_ref(&custom)).unwrap();
        assert_eq!(
            found.extra_grants,
            [
                "Microsoft.Network/*",
                "Microsoft.Sql/servers/write",
                "Microsoft.Storage/storageAccounts/delete"
            ]
        );
        // A broad built-in role alone (its actions not listed apart) is reported too.
        let found = over_privilege(spot(), &[e(&spot())], &[owner]).unwrap();
        assert!(found.extra_grants.is_empty());
        assert_eq!(found.roles, ["Owner (built-in)"]);
    }
}
