//! Replacing a connection's scope: an estate whose subscriptions are tied to Spot accounts is not
//! dropped by a subscription or another group unless the caller says so.

use super::{Connection, EstateError, RuleError};
use crate::domain::ManagementGroupId;

impl Connection {
    /// Replacing the estate (by a subscription, or another group) drops its ties to Spot
    /// accounts: refused unless the caller says so (`replaceEstate`).
    pub(super) fn refuse_dropping_links(
        &self,
        group: Option<&ManagementGroupId>,
        replace: bool,
    ) -> Result<(), RuleError> {
        let Some(estate) = &self.estate else {
            return Ok(());
        };
        if group == Some(&estate.group) || replace {
            return Ok(());
        }
        match estate.linked().len() {
            0 => Ok(()),
            linked => Err(RuleError::Estate(EstateError::HasLinks { linked })),
        }
    }
}
