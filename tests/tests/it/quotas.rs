//! Per-organization quotas, through the HTTP API on both stores: the connections an organization
//! holds unlinked, and its validations of the minute; refused with 429 `quota-exceeded` (and
//! `Retry-After` where waiting helps), other organizations untouched.

use chrono::Timelike;
use integration_tests::{SECRET, STORES, app, send, send_json, store};
use serde_json::json;
use shared::app::quota::Quotas;
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};

fn quotas(unlinked: u32, validations_per_minute: u32) -> Quotas {
    Quotas {
        unlinked,
        validations_per_minute,
        ..Quotas::default()
    }
}

#[tokio::test]
async fn an_organization_holds_at_most_its_quota_of_unlinked_connections() {
    for kind in STORES {
        let (app, _) = app(store(kind).await);
        let r = router(
            app.with_quotas(quotas(3, 30)),
            OrgSource::local_header(),
            &Function::ALL,
        );
        let start = |org: &'static str, key: &'static str| {
            let r = r.clone();
            async move {
                send(
                    &r,
                    "POST",
                    "/connections",
                    Some(org),
                    &[("content-type", "application/json"), ("idempotency-key", key)],
                    Some(json!({"accountId": "act-1a2b3c4d"}).to_string()),
                )
                .await
            }
        };
        let mut ids = Vec::new();
        for key in ["k1", "k2", "k3"] {
            let c = start("org-q", key).await;
            assert_eq!(c.status, 201, "{kind:?}: {}", c.body);
            ids.push(c.body["connectionId"].as_str().unwrap().to_owned());
        }
        let refused = start("org-q", "k4").await;
        assert_eq!(refused.status, 429, "{kind:?}: {}", refused.body);
        assert_eq!(refused.body["code"], "quota-exceeded");
        assert!(
            refused.headers.get("retry-after").is_none(),
            "waiting does not help"
        );
        // A retry of a start that was made is no new connection.
        assert_eq!(start("org-q", "k2").await.status, 201, "{kind:?}");
        // Another organization has its own quota.
        assert_eq!(start("org-other", "k1").await.status, 201, "{kind:?}");
        // Deleting one frees a place.
        let gone = send_json(
            &r,
            "DELETE",
            &format!("/connections/{}", ids[0]),
            Some("org-q"),
            None,
        )
        .await;
        assert_eq!(gone.status, 204, "{kind:?}");
        assert_eq!(start("org-q", "k5").await.status, 201, "{kind:?}");
    }
}

#[tokio::test]
async fn an_organization_validates_at_most_its_quota_a_minute() {
    // Three validations inside one minute.
    let second = chrono::Utc::now().second();
    if second > 50 {
        tokio::time::sleep(std::time::Duration::from_secs(u64::from(61 - second))).await;
    }
    for kind in STORES {
        let (app, _) = app(store(kind).await);
        let (_azure, validator) = integration_tests::azure().await;
        let app = app.with_validator(validator).with_quotas(quotas(50, 2));
        let r = router(app, OrgSource::local_header(), &Function::ALL);
        let c = send_json(
            &r,
            "POST",
            "/connections",
            Some("org-v"),
            Some(&json!({"accountId": "act-1a2b3c4d"})),
        )
        .await;
        let id = c.body["connectionId"].as_str().unwrap().to_owned();
        for (step, body) in [
            (
                "app-registration",
                json!({"tenantId": "contoso.onmicrosoft.com", "clientId": "11111111-2222-4333-8444-555555555555"}),
            ),
            ("client-secret", json!({"clientSecret": SECRET})),
            (
                "subscription",
                json!({"subscriptionId": "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"}),
            ),
        ] {
            let s = send_json(
                &r,
                "PUT",
                &format!("/connections/{id}/{step}"),
                Some("org-v"),
                Some(&body),
            )
            .await;
            assert_eq!(s.status, 200, "{kind:?} {step}: {}", s.body);
        }
        let path = format!("/connections/{id}/connect");
        let connect = || send_json(&r, "POST", &path, Some("org-v"), None);
        assert_eq!(connect().await.status, 200, "{kind:?}");
        assert_eq!(connect().await.status, 200, "{kind:?}");
        let refused = connect().await;
        assert_eq!(refused.status, 429, "{kind:?}: {}", refused.body);
        assert_eq!(
            (refused.body["code"].as_str(), refused.body["retryable"].as_bool()),
            (Some("quota-exceeded"), Some(true))
        );
        let after: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&after), "{after}");
    }
}
