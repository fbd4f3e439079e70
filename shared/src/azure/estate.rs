//! A management group's subscriptions: ARM's management group descendants, one page per call.
//! The live service types a subscription `/subscriptions` (the API's documented example differs),
//! so a subscription is known by its `/subscriptions/{id}` id whatever its type says. Their states
//! from ARM's subscriptions list, one page per call.

use serde::Deserialize;

use super::{
    Api, ArmPage, AzureHttp, DescendantsPage, SUBSCRIPTION_API, SubscriptionInfo, SubscriptionsPage,
    read_json,
};
use crate::domain::diagnosis::{AzureFailure, SubscriptionState};
use crate::domain::{ManagementGroupId, SubscriptionId};

pub const MANAGEMENT_GROUPS_API: &str = "2021-04-01";

impl AzureHttp {
    /// `group`'s display name (`properties.displayName`; managementGroups.json, 2021-04-01).
    pub(super) async fn group_name(
        &self,
        token: &super::AccessToken,
        group: &ManagementGroupId,
    ) -> Result<String, AzureFailure> {
        #[derive(Deserialize)]
        struct Group {
            #[serde(default)]
            properties: Option<GroupProperties>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct GroupProperties {
            #[serde(default)]
            display_name: Option<String>,
        }
        let url = format!(
            "{}/providers/Microsoft.Management/managementGroups/{group}?api-version={MANAGEMENT_GROUPS_API}",
            self.cloud.resource_manager
        );
        let res = self.get_ok(&url, token, Api::Arm).await?;
        let g: Group = read_json(res, "management group unreadable").await?;
        Ok(g.properties.and_then(|p| p.display_name).unwrap_or_default())
    }

    /// One page of `group`'s descendants: the first without `next`, then the link ARM gave.
    pub(super) async fn descendants_page(
        &self,
        token: &super::AccessToken,
        group: &ManagementGroupId,
        next: Option<&str>,
    ) -> Result<DescendantsPage, AzureFailure> {
        #[derive(Deserialize)]
        struct Item {
            id: String,
            #[serde(default)]
            properties: Option<Properties>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Properties {
            #[serde(default)]
            display_name: Option<String>,
        }
        let base = &self.cloud.resource_manager;
        let url = match next {
            Some(link) => self.same_origin(link.to_owned(), base)?,
            None => format!(
                "{base}/providers/Microsoft.Management/managementGroups/{group}/descendants?api-version={MANAGEMENT_GROUPS_API}"
            ),
        };
        let res = self.get_ok(&url, token, Api::Arm).await?;
        let page: ArmPage<Item> = read_json(res, "management group descendants unreadable").await?;
        let subscriptions = page
            .value
            .into_iter()
            .filter_map(|item| {
                let id = item.id.strip_prefix("/subscriptions/")?;
                let id = SubscriptionId::parse(id).ok()?;
                let name = item.properties.and_then(|p| p.display_name).unwrap_or_default();
                Some((id, name))
            })
            .collect();
        Ok(DescendantsPage {
            subscriptions,
            next: page.next_link.filter(|n| !n.is_empty()),
        })
    }

    /// One page of ARM's subscriptions list (each subscription the caller can read, with its
    /// state). The page size is not documented: the caller bounds how many pages it follows.
    pub(super) async fn subscriptions_listed(
        &self,
        token: &super::AccessToken,
        next: Option<&str>,
    ) -> Result<SubscriptionsPage, AzureFailure> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Item {
            subscription_id: String,
            #[serde(default)]
            display_name: String,
            #[serde(default)]
            state: String,
        }
        let base = &self.cloud.resource_manager;
        let url = match next {
            Some(link) => self.same_origin(link.to_owned(), base)?,
            None => format!("{base}/subscriptions?api-version={SUBSCRIPTION_API}"),
        };
        let res = self.get_ok(&url, token, Api::Arm).await?;
        let page: ArmPage<Item> = read_json(res, "subscriptions list unreadable").await?;
        let subscriptions = page
            .value
            .into_iter()
            .filter_map(|item| {
                let id = SubscriptionId::parse(&item.subscription_id).ok()?;
                let info = SubscriptionInfo {
                    display_name: item.display_name,
                    state: SubscriptionState::parse(&item.state),
                };
                Some((id, info))
            })
            .collect();
        Ok(SubscriptionsPage {
            subscriptions,
            next: page.next_link.filter(|n| !n.is_empty()),
        })
    }
}
