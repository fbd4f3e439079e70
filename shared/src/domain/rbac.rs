//! Azure RBAC evaluation: which of the required actions the caller's permissions grant.
//!
//! Azure's rules: action strings are case-insensitive; `*` matches any characters; within one
//! permission entry an action is allowed when it matches some `actions` pattern and no `notActions`
//! pattern of THAT entry (notActions is not a deny: another entry can grant it); an action is
//! allowed when any entry allows it. A required pattern with a wildcard
//! (`Microsoft.Compute/virtualMachines/*`) is granted only when everything it covers is granted.

/// One entry of `GET …/providers/Microsoft.Authorization/permissions`: one role held at the scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionEntry {
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
}

impl PermissionEntry {
    pub fn new<A: Into<String>, N: Into<String>>(
        actions: impl IntoIterator<Item = A>,
        not_actions: impl IntoIterator<Item = N>,
    ) -> Self {
        Self {
            actions: actions.into_iter().map(Into::into).collect(),
            not_actions: not_actions.into_iter().map(Into::into).collect(),
        }
    }
}

/// How deep a wildcard's holes are chased through other entries.
const MAX_DEPTH: usize = 4;

/// The required actions the entries do not grant, in the order given.
pub fn missing_actions<'a>(
    required: impl IntoIterator<Item = &'a str>,
    entries: &[PermissionEntry],
) -> Vec<&'a str> {
    let entries: Vec<(Vec<String>, Vec<String>)> = entries
        .iter()
        .map(|e| (lower(&e.actions), lower(&e.not_actions)))
        .collect();
    required
        .into_iter()
        .filter(|r| !granted(&r.to_ascii_lowercase(), &entries, 0))
        .collect()
}

fn lower(v: &[String]) -> Vec<String> {
    v.iter().map(|s| s.trim().to_ascii_lowercase()).collect()
}

/// Is every action that `required` covers allowed by some entry?
fn granted(required: &str, entries: &[(Vec<String>, Vec<String>)], depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    entries.iter().enumerate().any(|(i, (actions, not_actions))| {
        if !actions.iter().any(|a| covers(a, required)) {
            return false;
        }
        // Every exclusion of this entry that overlaps the required set leaves a hole, which one of
        // the other entries must fill. An exclusion that covers all of `required`, or overlaps it
        // only partly (a hole we cannot describe exactly), counts as not filled.
        not_actions.iter().filter(|n| intersects(n, required)).all(|n| {
            if !covers(required, n) {
                return false;
            }
            let others: Vec<_> = entries
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != i)
                .map(|(_, e)| e.clone())
                .collect();
            granted(n, &others, depth + 1)
        })
    })
}

/// Does `pattern` match every string that `target` matches? A `*` in `target` can only be
/// absorbed by a `*` of `pattern`. Both lower case.
pub fn covers(pattern: &str, target: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), target.as_bytes());
    // Classic glob matching with backtracking on the last star.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == t[j] && t[j] != b'*' {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

/// Is there a string that both patterns match?
pub fn intersects(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut memo = vec![vec![None; b.len() + 1]; a.len() + 1];
    fn go(a: &[u8], b: &[u8], i: usize, j: usize, memo: &mut Vec<Vec<Option<bool>>>) -> bool {
        if let Some(r) = memo[i][j] {
            return r;
        }
        let r = match (a.get(i), b.get(j)) {
            (None, None) => true,
            (Some(b'*'), _) => go(a, b, i + 1, j, memo) || (j < b.len() && go(a, b, i, j + 1, memo)),
            (_, Some(b'*')) => go(a, b, i, j + 1, memo) || (i < a.len() && go(a, b, i + 1, j, memo)),
            (Some(x), Some(y)) => x == y && go(a, b, i + 1, j + 1, memo),
            _ => false,
        };
        memo[i][j] = Some(r);
        r
    }
    go(a, b, 0, 0, &mut memo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::role::required_actions;

    fn e(actions: &[&str], not_actions: &[&str]) -> PermissionEntry {
        PermissionEntry::new(actions.iter().copied(), not_actions.iter().copied())
    }

    #[test]
    fn coverage_and_intersection() {
        assert!(covers("*", "microsoft.compute/virtualmachines/*"));
        assert!(covers(
            "microsoft.compute/*",
            "microsoft.compute/virtualmachines/*"
        ));
        assert!(covers("*/read", "microsoft.compute/disks/read"));
        assert!(!covers("*/read", "microsoft.compute/disks/*"));
        assert!(!covers(
            "microsoft.compute/virtualmachines/read",
            "microsoft.compute/virtualmachines/*"
        ));
        assert!(covers(
            "microsoft.network/*/read",
            "microsoft.network/virtualnetworks/subnets/read"
        ));
        assert!(intersects(
            "microsoft.compute/virtualmachines/delete",
            "microsoft.compute/virtualmachines/*"
        ));
        assert!(intersects("*/read", "microsoft.compute/*"));
        assert!(!intersects("microsoft.network/*", "microsoft.compute/*"));
        assert!(!intersects("*/write", "microsoft.compute/disks/read"));
    }

    #[test]
    fn exact_actions_case_insensitively() {
        let granted = [e(&["MICROSOFT.COMPUTE/DISKS/READ"], &[])];
        assert!(missing_actions(["Microsoft.Compute/disks/read"], &granted).is_empty());
        assert_eq!(
            missing_actions(["Microsoft.Compute/disks/write"], &granted),
            ["Microsoft.Compute/disks/write"]
        );
    }

    #[test]
    fn wildcards_grant_what_they_cover() {
        let granted = [e(&["Microsoft.Compute/*", "*/read"], &[])];
        let req = [
            "Microsoft.Compute/virtualMachines/*",
            "Microsoft.Network/virtualNetworks/read",
            "Microsoft.Network/virtualNetworks/write",
        ];
        assert_eq!(
            missing_actions(req, &granted),
            ["Microsoft.Network/virtualNetworks/write"]
        );
    }

    #[test]
    fn not_actions_subtract_within_their_entry_only() {
        let owner_minus = [e(&["*"], &["Microsoft.Compute/disks/delete"])];
        assert_eq!(
            missing_actions(["Microsoft.Compute/disks/delete"], &owner_minus),
            ["Microsoft.Compute/disks/delete"]
        );
        let plus_other_role = [owner_minus[0].clone(), e(&["Microsoft.Compute/disks/*"], &[])];
        assert!(missing_actions(["Microsoft.Compute/disks/delete"], &plus_other_role).is_empty());
    }

    #[test]
    fn a_wildcard_requirement_needs_everything_it_covers() {
        let holed = [e(
            &["Microsoft.Compute/*"],
            &["Microsoft.Compute/virtualMachines/delete"],
        )];
        assert_eq!(
            missing_actions(["Microsoft.Compute/virtualMachines/*"], &holed),
            ["Microsoft.Compute/virtualMachines/*"]
        );
        // Another role fills the hole.
        let filled = [
            holed[0].clone(),
            e(&["Microsoft.Compute/virtualMachines/delete"], &[]),
        ];
        assert!(missing_actions(["Microsoft.Compute/virtualMachines/*"], &filled).is_empty());
        // An exclusion of all of it.
        let all_out = [e(&["*"], &["Microsoft.Compute/*"])];
        assert_eq!(
            missing_actions(["Microsoft.Compute/virtualMachines/*"], &all_out),
            ["Microsoft.Compute/virtualMachines/*"]
        );
        // Individual actions never add up to a wildcard: nobody knows every action it covers.
        let pieces = [e(
            &[
                "Microsoft.Compute/virtualMachines/read",
                "Microsoft.Compute/virtualMachines/write",
            ],
            &[],
        )];
        assert_eq!(
            missing_actions(["Microsoft.Compute/virtualMachines/*"], &pieces).len(),
            1
        );
    }

    #[test]
    fn no_entries_grant_nothing() {
        assert_eq!(missing_actions(required_actions(), &[]).len(), 85);
    }

    #[test]
    fn the_exported_role_grants_itself_and_owner_grants_everything() {
        let role = [PermissionEntry::new(required_actions(), Vec::<String>::new())];
        assert!(missing_actions(required_actions(), &role).is_empty());
        assert!(missing_actions(required_actions(), &[e(&["*"], &[])]).is_empty());
        // Contributor: everything but authorization writes and a few more; Spot's role only reads those.
        let contributor = [e(
            &["*"],
            &[
                "Microsoft.Authorization/*/Delete",
                "Microsoft.Authorization/*/Write",
                "Microsoft.Authorization/elevateAccess/Action",
            ],
        )];
        assert!(missing_actions(required_actions(), &contributor).is_empty());
        // Reader: reads only.
        let missing = missing_actions(required_actions(), &[e(&["*/read"], &[])]);
        assert!(missing.contains(&"Microsoft.Compute/disks/write"));
        assert!(!missing.contains(&"Microsoft.Compute/disks/read"));
    }
}
