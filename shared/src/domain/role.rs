//! The custom role Spot needs (wizard step 3.5, "Export JSON Policy").
//!
//! The 85 actions ship inside the binary (`shared/data/spot-azure-role-actions.txt`); the same list
//! is what Connect Account will check the granted permissions against.

use serde::Serialize;
use serde_json::{Value, json};

use super::estate::{GROUP_ACTIONS, Scope};
use super::ids::SubscriptionId;

const ACTIONS_TXT: &str = include_str!("../../data/spot-azure-role-actions.txt");

pub const ROLE_DESCRIPTION: &str = "Custom Role for Spot Account.";

/// The actions of Spot's role, in the published order.
pub fn required_actions() -> impl Iterator<Item = &'static str> {
    ACTIONS_TXT
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

const VERSIONS_TXT: &str = include_str!("../../data/role-versions.txt");

/// One version of Spot's role: the actions it adds, and whether a connection must have them
/// (degraded until granted) or should (a warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleVersion {
    pub version: u32,
    pub added: Vec<String>,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleVersionsError {
    #[error("line {0}: expected `version N required` or `version N recommended`")]
    BadHeader(usize),
    #[error("line {0}: an action before any `version` line")]
    NoVersion(usize),
    #[error("version {0}: versions must count up from 2 by one")]
    OutOfOrder(u32),
    #[error("version {0} adds no action, or one an earlier version has")]
    NothingNew(u32),
}

/// Every version of Spot's role, oldest first: version 1 is the 85 actions
/// (`shared/data/spot-azure-role-actions.txt`), later ones come from `shared/data/role-versions.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleVersions {
    versions: Vec<RoleVersion>,
}

impl RoleVersions {
    /// Version 1 alone: the 85 actions.
    pub fn builtin_v1() -> Self {
        Self {
            versions: vec![RoleVersion {
                version: 1,
                added: required_actions().map(str::to_owned).collect(),
                required: true,
            }],
        }
    }

    /// The versions shipped in the binary.
    pub fn builtin() -> Self {
        let first = Self::builtin_v1();
        // The data file is tested to parse (`the_shipped_versions_parse`); version 1 alone otherwise.
        Self::parse(VERSIONS_TXT)
            .and_then(|later| later.into_iter().try_fold(first.clone(), |all, v| all.with(v)))
            .unwrap_or(first)
    }

    /// The later versions of a text in the data file's format.
    pub fn parse(text: &str) -> Result<Vec<RoleVersion>, RoleVersionsError> {
        let mut out: Vec<RoleVersion> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("version ") {
                let mut words = rest.split_whitespace();
                let version = words.next().and_then(|n| n.parse().ok());
                let required = match words.next() {
                    Some("required") => true,
                    Some("recommended") => false,
                    _ => return Err(RoleVersionsError::BadHeader(i + 1)),
                };
                let version = version.ok_or(RoleVersionsError::BadHeader(i + 1))?;
                out.push(RoleVersion {
                    version,
                    added: Vec::new(),
                    required,
                });
            } else {
                let current = out.last_mut().ok_or(RoleVersionsError::NoVersion(i + 1))?;
                current.added.push(line.to_owned());
            }
        }
        Ok(out)
    }

    /// These versions and `next` (the next number, adding only new actions).
    pub fn with(mut self, next: RoleVersion) -> Result<Self, RoleVersionsError> {
        if next.version != self.latest() + 1 {
            return Err(RoleVersionsError::OutOfOrder(next.version));
        }
        let known: std::collections::HashSet<String> =
            self.actions().iter().map(|a| a.to_ascii_lowercase()).collect();
        if next.added.is_empty() || next.added.iter().any(|a| known.contains(&a.to_ascii_lowercase())) {
            return Err(RoleVersionsError::NothingNew(next.version));
        }
        self.versions.push(next);
        Ok(self)
    }

    pub fn latest(&self) -> u32 {
        self.versions.last().map_or(1, |v| v.version)
    }

    /// Every action of every version, in order: what an exported role grants.
    pub fn actions(&self) -> Vec<&str> {
        self.versions
            .iter()
            .flat_map(|v| v.added.iter().map(String::as_str))
            .collect()
    }

    /// What a connection must have.
    pub fn required(&self) -> Vec<&str> {
        self.versions
            .iter()
            .filter(|v| v.required)
            .flat_map(|v| v.added.iter().map(String::as_str))
            .collect()
    }

    /// What a connection should have, beyond the required.
    pub fn recommended(&self) -> Vec<&str> {
        self.versions
            .iter()
            .filter(|v| !v.required)
            .flat_map(|v| v.added.iter().map(String::as_str))
            .collect()
    }

    /// The version that added `action` (any case).
    pub fn version_of(&self, action: &str) -> Option<&RoleVersion> {
        self.versions
            .iter()
            .find(|v| v.added.iter().any(|a| a.eq_ignore_ascii_case(action)))
    }
}

/// Which JSON shape to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleFormat {
    /// The Azure portal's "Add custom role → JSON" tab and the REST API shape.
    #[default]
    Portal,
    /// `az role definition create --role-definition @file.json`.
    Cli,
}

impl RoleFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "portal" => Some(Self::Portal),
            "cli" => Some(Self::Cli),
            _ => None,
        }
    }
}

/// The role for one subscription or one management group. The name is derived from the scope's
/// id only, so it is unique per scope (role names are unique in a tenant) and the same on every
/// export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRole {
    pub scope: Scope,
}

impl CustomRole {
    pub fn for_subscription(subscription: SubscriptionId) -> Self {
        Self::for_scope(Scope::Subscription(subscription))
    }

    pub fn for_scope(scope: Scope) -> Self {
        Self { scope }
    }

    pub fn name(&self) -> String {
        match &self.scope {
            Scope::Subscription(s) => format!("spotCustomRole_{s}"),
            Scope::ManagementGroup(g) => format!("spotCustomRole_mg_{g}"),
        }
    }

    pub fn scope(&self) -> String {
        self.scope.arm_path()
    }

    /// Spot's actions, and at a management group what discovery needs as well.
    pub fn actions<'a>(&self, versions: &'a RoleVersions) -> Vec<&'a str> {
        let mut actions = versions.actions();
        if let Scope::ManagementGroup(_) = self.scope {
            actions.extend(GROUP_ACTIONS);
        }
        actions
    }

    pub fn to_json(&self, format: RoleFormat) -> Value {
        self.to_json_with(format, &RoleVersions::builtin(), None)
    }

    /// The role with every action of `versions`, under the same name whatever the version: the
    /// customer updates the role they have. `id`: the role definition's id (GUID) when known: the
    /// CLI format then names it as `az role definition update` needs it (tried with az 2.91): the
    /// full resource id as `Id` and the name as `roleName` as well (az reads `roleName` whenever
    /// `Id` is given, and dies with `KeyError: 'roleName'` without it). `az role definition
    /// create` takes the same file (it ignores both).
    pub fn to_json_with(&self, format: RoleFormat, versions: &RoleVersions, id: Option<&str>) -> Value {
        let actions = self.actions(versions);
        let mut role = match format {
            RoleFormat::Portal => json!({
                "properties": {
                    "roleName": self.name(),
                    "description": ROLE_DESCRIPTION,
                    "assignableScopes": [self.scope()],
                    "permissions": [{
                        "actions": actions,
                        "notActions": [],
                        "dataActions": [],
                        "notDataActions": [],
                    }],
                }
            }),
            RoleFormat::Cli => json!({
                "Name": self.name(),
                "IsCustom": true,
                "Description": ROLE_DESCRIPTION,
                "Actions": actions,
                "NotActions": [],
                "DataActions": [],
                "NotDataActions": [],
                "AssignableScopes": [self.scope()],
            }),
        };
        if let (RoleFormat::Cli, Some(id)) = (format, id) {
            role["Id"] = Value::String(format!(
                "{}/providers/Microsoft.Authorization/roleDefinitions/{id}",
                self.scope()
            ));
            role["roleName"] = Value::String(self.name());
        }
        role
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub() -> SubscriptionId {
        SubscriptionId::parse("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab").unwrap()
    }

    #[test]
    fn ships_the_85_actions_without_duplicates() {
        let actions: Vec<_> = required_actions().collect();
        assert_eq!(actions.len(), 85);
        let mut lower: Vec<_> = actions.iter().map(|a| a.to_ascii_lowercase()).collect();
        lower.sort();
        lower.dedup();
        assert_eq!(lower.len(), 85);
        assert!(actions.contains(&"Microsoft.Compute/virtualMachines/*"));
    }

    #[test]
    fn the_shipped_versions_parse() {
        let later = RoleVersions::parse(VERSIONS_TXT).unwrap();
        let all = later
            .into_iter()
            .try_fold(RoleVersions::builtin_v1(), |all, v| all.with(v))
            .unwrap();
        assert_eq!(all, RoleVersions::builtin());
        assert_eq!(
            RoleVersions::builtin().actions().len(),
            RoleVersions::builtin()
                .versions
                .iter()
                .map(|v| v.added.len())
                .sum::<usize>()
        );
    }

    #[test]
    fn versions_add_new_actions_in_order() {
        let text = "# a comment\nversion 2 recommended\nMicrosoft.A/x/read\nMicrosoft.A/y/read # why\n\nversion 3 required\nMicrosoft.B/z/write\n";
        let later = RoleVersions::parse(text).unwrap();
        assert_eq!(later.len(), 2);
        let all = later
            .into_iter()
            .try_fold(RoleVersions::builtin_v1(), |a, v| a.with(v))
            .unwrap();
        assert_eq!(all.latest(), 3);
        assert_eq!(all.actions().len(), 88);
        assert_eq!(all.required().len(), 86);
        assert_eq!(
            all.recommended(),
            vec!["Microsoft.A/x/read", "Microsoft.A/y/read"]
        );
        assert_eq!(all.version_of("microsoft.b/z/WRITE").map(|v| v.version), Some(3));
        let role = CustomRole::for_subscription(sub());
        assert_eq!(
            role.to_json_with(RoleFormat::Cli, &all, None)["Name"],
            role.to_json(RoleFormat::Cli)["Name"]
        );
        assert_eq!(
            role.to_json_with(RoleFormat::Cli, &all, None)["Actions"]
                .as_array()
                .unwrap()
                .len(),
            88
        );
        for (bad, err) in [
            ("Microsoft.A/x/read", RoleVersionsError::NoVersion(1)),
            ("version two required", RoleVersionsError::BadHeader(1)),
            ("version 2 maybe", RoleVersionsError::BadHeader(1)),
        ] {
            assert_eq!(RoleVersions::parse(bad), Err(err), "{bad}");
        }
        let again = RoleVersion {
            version: 2,
            added: vec!["Microsoft.Compute/virtualMachines/*".into()],
            required: true,
        };
        assert_eq!(
            RoleVersions::builtin_v1().with(again),
            Err(RoleVersionsError::NothingNew(2))
        );
        let skip = RoleVersion {
            version: 3,
            added: vec!["X/y".into()],
            required: true,
        };
        assert_eq!(
            RoleVersions::builtin_v1().with(skip),
            Err(RoleVersionsError::OutOfOrder(3))
        );
    }

    #[test]
    fn the_cli_format_names_the_role_id_when_known() {
        let role = CustomRole::for_subscription(sub());
        let id = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
        let versions = RoleVersions::builtin();
        let cli = role.to_json_with(RoleFormat::Cli, &versions, Some(id));
        assert_eq!(
            cli["Id"],
            format!(
                "{}/providers/Microsoft.Authorization/roleDefinitions/{id}",
                role.scope()
            )
        );
        assert_eq!(cli["roleName"], cli["Name"]);
        assert!(
            role.to_json_with(RoleFormat::Cli, &versions, None)
                .get("Id")
                .is_none()
        );
        assert!(
            role.to_json_with(RoleFormat::Portal, &versions, Some(id))
                .get("Id")
                .is_none()
        );
    }

    #[test]
    fn portal_shape() {
        let v = CustomRole::for_subscription(sub()).to_json(RoleFormat::Portal);
        let p = &v["properties"];
        assert_eq!(
            p["roleName"],
            "spotCustomRole_6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"
        );
        assert_eq!(
            p["assignableScopes"],
            json!(["/subscriptions/6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"])
        );
        assert_eq!(p["permissions"][0]["actions"].as_array().unwrap().len(), 85);
        assert_eq!(p["permissions"][0]["notActions"], json!([]));
    }

    #[test]
    fn cli_shape_is_flat() {
        let v = CustomRole::for_subscription(sub()).to_json(RoleFormat::Cli);
        assert_eq!(v["IsCustom"], true);
        assert_eq!(v["Actions"].as_array().unwrap().len(), 85);
        assert!(v.get("properties").is_none());
        assert_eq!(
            v["AssignableScopes"][0],
            "/subscriptions/6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"
        );
    }

    #[test]
    fn name_is_stable_and_per_subscription() {
        let a = CustomRole::for_subscription(sub()).name();
        assert_eq!(a, CustomRole::for_subscription(sub()).name());
        let other = SubscriptionId::parse("00000000-aaaa-4bbb-8ccc-0123456789ab").unwrap();
        assert_ne!(a, CustomRole::for_subscription(other).name());
    }
}
