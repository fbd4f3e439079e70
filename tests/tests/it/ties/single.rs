//! The ties of connections of one subscription (3.4) and what finds them: a subscription entered
//! by many accounts at once, the wizard started again by the same account, an estate's default
//! that no wizard takes over, Spot's credentials API through the ties.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_subscription_entered_by_many_accounts_at_once_is_held_by_exactly_one() {
    for kind in STORES {
        let rig = Rig::new(kind, Quotas::default()).await;
        let mut ids = Vec::new();
        for n in 0..20 {
            ids.push(rig.entered(&format!("act-0000c1{n:02}")).await);
        }
        let requests = ids
            .iter()
            .map(|id| {
                (
                    format!("/connections/{id}/subscription"),
                    json!({"subscriptionId": sub(0, 0)}),
                )
            })
            .collect();
        let answered = codes(&burst(&rig.router, requests).await);
        let winners: Vec<usize> = (0..ids.len()).filter(|i| answered[*i].0 == 200).collect();
        assert_eq!(winners.len(), 1, "{kind:?}: {answered:?}");
        assert!(
            answered
                .iter()
                .all(|(s, c)| *s == 200 || (*s == 409 && c == "subscription-already-linked")),
            "{kind:?}: {answered:?}"
        );
        let winner = ids[winners[0]].clone();
        let winner_account = format!("act-0000c1{:02}", winners[0]);
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| *i != winners[0]) {
            let view = rig.call("GET", &format!("/connections/{id}"), None).await;
            assert!(
                view.body["subscriptionId"].is_null(),
                "{kind:?} {i}: {:?}",
                view.body
            );
        }
        // An estate over the group finds it, and may tie it to no other account; nor tie the
        // account that holds it to another subscription.
        let estate = rig
            .estate("act-0000c200", json!({"managementGroupId": "g0"}))
            .await;
        let link = |s: String, account: &str| {
            (
                format!("/connections/{estate}/subscriptions/{s}"),
                json!({ "accountId": account }),
            )
        };
        let (path, body) = link(sub(0, 0), "act-0000c201");
        let r = rig.call("PUT", &path, Some(body)).await;
        assert_eq!(
            r.body["code"], "subscription-already-linked",
            "{kind:?}: {:?}",
            r.body
        );
        let (path, body) = link(sub(0, 1), &winner_account);
        let r = rig.call("PUT", &path, Some(body)).await;
        assert_eq!(r.body["code"], "account-already-linked", "{kind:?}: {:?}", r.body);
        // Deleted, the connection gives both back.
        let r = rig.call("DELETE", &format!("/connections/{winner}"), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let (path, body) = link(sub(0, 0), "act-0000c201");
        let r = rig.call("PUT", &path, Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        let (path, body) = link(sub(0, 1), &winner_account);
        let r = rig.call("PUT", &path, Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
    }
}

#[tokio::test]
async fn the_wizard_started_again_takes_over_its_own_pending_subscription_and_the_first_to_connect_holds_it()
{
    for kind in STORES {
        let rig = Rig::new(kind, Quotas::default()).await;
        let account = "act-0000c300";
        let rig = &rig;
        let enter = |id: String, s: String| async move {
            rig.call(
                "PUT",
                &format!("/connections/{id}/subscription"),
                Some(json!({"subscriptionId": s})),
            )
            .await
        };
        let first = rig.entered(account).await;
        assert_eq!(enter(first.clone(), sub(1, 0)).await.status, StatusCode::OK);
        // The same account starts again (the first wizard abandoned): the same subscription is
        // its to enter again; another account's is not.
        let second = rig.entered(account).await;
        let r = enter(second.clone(), sub(1, 0)).await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        let other = rig.entered("act-0000c301").await;
        let r = enter(other.clone(), sub(1, 0)).await;
        assert_eq!(
            r.body["code"], "subscription-already-linked",
            "{kind:?}: {:?}",
            r.body
        );
        // The first connects after all: it holds the subscription, linked; the second may not
        // connect it too, nor enter another.
        let r = rig
            .call("POST", &format!("/connections/{first}/connect"), None)
            .await;
        assert_eq!(r.body["status"], "connected", "{kind:?}: {:?}", r.body);
        let r = rig
            .call("POST", &format!("/connections/{second}/connect"), None)
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::CONFLICT, Some("account-already-linked")),
            "{kind:?}: {:?}",
            r.body
        );
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("this very subscription"),
            "{:?}",
            r.body
        );
        let view = rig.call("GET", &format!("/connections/{second}"), None).await;
        assert_eq!(view.body["status"], "draft", "{kind:?}: {:?}", view.body);
        let r = enter(second.clone(), sub(1, 1)).await;
        assert_eq!(r.body["code"], "account-already-linked", "{kind:?}: {:?}", r.body);
        // Spot's credentials API answers with the one linked.
        let r = rig
            .call(
                "GET",
                &format!("/azure/setup/credentials?accountId={account}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        assert_eq!(r.body["response"]["items"][0]["subscriptionId"], sub(1, 0));
        // The first deleted, the second connects.
        let r = rig.call("DELETE", &format!("/connections/{first}"), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let r = rig
            .call("POST", &format!("/connections/{second}/connect"), None)
            .await;
        assert_eq!(r.body["status"], "connected", "{kind:?}: {:?}", r.body);
    }
}

#[tokio::test]
async fn spots_credentials_api_finds_the_accounts_connection_through_the_ties_whatever_the_listing_shows() {
    for kind in STORES {
        let rig = Rig::new(kind, Quotas::default()).await;
        let account = "act-0000c400";
        let id = rig.entered(account).await;
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{id}/subscription"),
                Some(json!({"subscriptionId": sub(2, 0)})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        let r = rig
            .call("POST", &format!("/connections/{id}/connect"), None)
            .await;
        assert_eq!(r.body["status"], "connected", "{kind:?}: {:?}", r.body);
        // (Secrets Manager's listing answers nothing here.)
        let path = format!("/azure/setup/credentials?accountId={account}");
        let r = rig.call("GET", &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        let item = &r.body["response"]["items"][0];
        assert_eq!(
            (item["connectionId"].as_str(), item["subscriptionId"].as_str()),
            (Some(id.as_str()), Some(sub(2, 0).as_str()))
        );
        // Set again through Spot's API: the same connection, not a second one refused.
        let body = json!({"clientId": SPOT, "clientSecret": SECRET, "tenantId": TENANT, "subscriptionId": sub(2, 0)});
        let r = rig.call("POST", &path, Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        let r = rig.call("GET", &path, None).await;
        assert_eq!(
            r.body["response"]["items"][0]["connectionId"],
            id.as_str(),
            "{kind:?}: {:?}",
            r.body
        );
    }
}

#[tokio::test]
async fn an_estates_default_is_held_as_its_group_is_and_no_wizard_of_its_account_takes_it_over() {
    for kind in STORES {
        let rig = Rig::new(kind, Quotas::default()).await;
        let own = "act-0000c500";
        let estate = rig.entered(own).await;
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{estate}/scope"),
                Some(json!({"managementGroupId": "g3", "defaultSubscriptionId": sub(3, 0)})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kind:?}: {:?}", r.body);
        // The same account's wizard for the same subscription: the estate's, before it connects.
        let single = rig.entered(own).await;
        let r = rig
            .call(
                "PUT",
                &format!("/connections/{single}/subscription"),
                Some(json!({"subscriptionId": sub(3, 0)})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::CONFLICT, Some("account-already-linked")),
            "{kind:?}: {:?}",
            r.body
        );
        let r = rig
            .call("POST", &format!("/connections/{estate}/connect"), None)
            .await;
        assert_eq!(r.body["status"], "connected", "{kind:?}: {:?}", r.body);
        assert_eq!(
            rig.links(&estate).await,
            [(sub(3, 0), own.to_owned())],
            "{kind:?}"
        );
    }
}
