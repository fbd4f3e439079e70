//! Least privilege, reported: `Connection Over-Privileged` once per change of what the app may do
//! beyond Spot's role, found by Connect Account or a health pass.

use super::events::{OutcomeEvent, OverPrivileged, Subject};
use super::operations::App;
use super::request::RequestMeta;
use crate::domain::{Connection, Step};

impl App {
    /// Announces the over-privilege `after` records when it is new (not what `before` had).
    pub(super) async fn announce_over_privilege(
        &self,
        req: &RequestMeta,
        before: &Connection,
        after: &Connection,
    ) {
        let found = after.validation.as_ref().and_then(|v| v.over_privilege.as_ref());
        let was = before.validation.as_ref().and_then(|v| v.over_privilege.as_ref());
        let Some(found) = found.filter(|f| Some(*f) != was) else {
            return;
        };
        self.publish(OutcomeEvent::ConnectionOverPrivileged(OverPrivileged {
            subject: Subject::new(req, &after.org, Step::RoleAssignment, Some(after.id)),
            account_id: after.account.clone(),
            subscription_id: None,
            management_group_id: None,
            extra_grants: found.extra_grants.clone(),
            roles: found.roles.clone(),
            advice: found.advice(),
        }))
        .await;
    }
}
