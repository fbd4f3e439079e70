//! What the API shows of an over-privilege warning (a connection's, or a subscription's in an
//! estate).

use serde::Serialize;

use crate::domain::privilege::OverPrivilege;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverPrivilegedView {
    pub extra_grants: Vec<String>,
    pub roles: Vec<String>,
    /// How to narrow the grant.
    pub advice: String,
}

impl From<&OverPrivilege> for OverPrivilegedView {
    fn from(o: &OverPrivilege) -> Self {
        Self {
            extra_grants: o.extra_grants.clone(),
            roles: o.roles.clone(),
            advice: o.advice(),
        }
    }
}
