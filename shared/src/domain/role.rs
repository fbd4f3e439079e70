//! The custom role Spot needs (wizard step 3.5, "Export JSON Policy").
//!
//! The 85 actions ship inside the binary (`shared/data/spot-azure-role-actions.txt`); the same list
//! is what Connect Account will check the granted permissions against.

use serde::Serialize;
use serde_json::{Value, json};

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

/// The role for one subscription. The name is derived from the subscription id only, so it is
/// unique per subscription and the same on every export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRole {
    pub subscription: SubscriptionId,
}

impl CustomRole {
    pub fn for_subscription(subscription: SubscriptionId) -> Self {
        Self { subscription }
    }

    pub fn name(&self) -> String {
        format!("spotCustomRole_{}", self.subscription)
    }

    pub fn scope(&self) -> String {
        format!("/subscriptions/{}", self.subscription)
    }

    pub fn to_json(&self, format: RoleFormat) -> Value {
        let actions: Vec<&str> = required_actions().collect();
        match format {
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
        }
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
