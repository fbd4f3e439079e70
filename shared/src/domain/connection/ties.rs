//! What a connection holds against the rest of its organization (issue 27).

use super::Connection;

impl Connection {
    /// What this connection holds against the rest of its organization ([`crate::domain::ties`]): its
    /// account's subscription (3.4), or an estate's group, its links, and its own account's
    /// default subscription. Held from the moment it is entered (pending until the connection
    /// links), as a default subscription is from `PUT …/scope`.
    pub fn ties(&self) -> std::collections::BTreeSet<crate::domain::ties::Tie> {
        use crate::domain::ties::Tie;
        let mut ties = std::collections::BTreeSet::new();
        if let (Some(record), None) = (&self.subscription, &self.estate) {
            ties.insert(Tie::Link {
                account: self.account.clone(),
                subscription: record.subscription,
            });
        }
        if let Some(estate) = &self.estate {
            ties.insert(Tie::Group(estate.group.clone()));
            // The default is the own account's until a survey links it (or the account holds
            // another of the estate's subscriptions: then the default is never linked).
            if let (Some(subscription), None) = (estate.default_subscription, estate.holder_of(&self.account))
            {
                ties.insert(Tie::Link {
                    account: self.account.clone(),
                    subscription,
                });
            }
            for entry in estate.entries.values() {
                if let Some(account) = &entry.account {
                    ties.insert(Tie::Link {
                        account: account.clone(),
                        subscription: entry.subscription,
                    });
                }
            }
        }
        ties
    }
}
