//! An organization's rules held by its index (issue 27), on both stores: the index is written by
//! compare-and-swap; parallel starts of one organization are admitted up to its quota and never
//! beyond, whatever a listing shows; a start that died between taking its place and writing its
//! connection loses the place only for the grace; a link or a delete gives its place back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use integration_tests::{STORES, StoreKind, app, send, sm_store, store, unique_prefix};
use serde_json::json;
use shared::app::quota::Quotas;
use shared::domain::organization::OrgIndex;
use shared::domain::{ConnectionId, OrgId};
use shared::edge::Function;
use shared::edge::http::{OrgSource, router};
use shared::store::{ConnectionStore, StoreError, WriteToken};

fn quota(unlinked: u32) -> Quotas {
    Quotas {
        unlinked,
        ..Quotas::default()
    }
}

async fn start(r: &axum::Router, org: &str, key: &str) -> (u16, serde_json::Value) {
    let reply = send(
        r,
        "POST",
        "/connections",
        Some(org),
        &[("content-type", "application/json"), ("idempotency-key", key)],
        Some(json!({"accountId": "act-1a2b3c4d"}).to_string()),
    )
    .await;
    (reply.status.as_u16(), reply.body)
}

#[tokio::test]
async fn the_index_is_written_by_compare_and_swap() {
    for kind in STORES {
        let s = store(kind).await;
        let org = OrgId::parse("org-index").unwrap();
        assert!(s.load_index(&org).await.unwrap().is_none(), "{kind:?}");
        let mut first = OrgIndex::new(org.clone());
        first.unlinked.insert(ConnectionId::new_random(), Utc::now());
        s.write_index(None, &first, &WriteToken::derive("w1", None, 0))
            .await
            .unwrap();
        // Made meanwhile by another writer: a second first write loses.
        let again = s
            .write_index(None, &first, &WriteToken::derive("w2", None, 0))
            .await;
        assert!(matches!(again, Err(StoreError::Conflict)), "{kind:?}: {again:?}");
        let read = s.load_index(&org).await.unwrap().unwrap();
        assert_eq!(read.index, first, "{kind:?}");
        let mut second = first.clone();
        second.unlinked.insert(ConnectionId::new_random(), Utc::now());
        s.write_index(
            Some(&read),
            &second,
            &WriteToken::derive("w3", Some(&read.version), 0),
        )
        .await
        .unwrap();
        // Written over a version that is no longer current: refused, nothing changed.
        let stale = s
            .write_index(
                Some(&read),
                &first,
                &WriteToken::derive("w4", Some(&read.version), 0),
            )
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict)), "{kind:?}: {stale:?}");
        assert_eq!(
            s.load_index(&org).await.unwrap().unwrap().index,
            second,
            "{kind:?}"
        );
        // Another organization's index is its own.
        let other = OrgId::parse("org-index-2").unwrap();
        assert!(s.load_index(&other).await.unwrap().is_none(), "{kind:?}");
    }
}

/// A start as a console makes it: an answer that says `retryable` (a write that lost too many
/// races to the others, the store throttling) is asked again with the same idempotency key.
async fn start_until_answered(r: &axum::Router, org: &str, key: &str) -> (u16, serde_json::Value) {
    for _ in 0..20 {
        let (status, body) = start(r, org, key).await;
        if body["retryable"] != true || status == 429 {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{key}: still retryable after 20 tries");
}

/// Starts of one organization at once, many more than its quota: exactly the quota's worth of
/// connections is made, every other start is refused with `quota-exceeded` (a start that lost
/// too many races to the others is told to retry, and is retried as a console would). 200 starts
/// and a quota of 50 on the embedded store; on Secrets Manager (moto) 40 and 10: moto answers
/// about 100 calls a second, and a burst on one index costs tens of calls a start there (in AWS
/// such a burst meets Secrets Manager's write quota and is answered 409 or 503, retryable).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_starts_of_one_organization_are_admitted_up_to_its_quota_exactly() {
    for (kind, burst, limit) in [(STORES[0], 200, 50), (STORES[1], 40, 10)] {
        // Secrets Manager's listing made to lag: the quota must not lean on it.
        let (s, through): (Arc<dyn ConnectionStore>, Arc<dyn ConnectionStore>) = match kind {
            StoreKind::Embedded => {
                let s = store(kind).await;
                (s.clone(), s)
            }
            StoreKind::SecretsManager => {
                let (lagging, _proxy, prefix) = integration_tests::lagging_sm_store().await;
                (sm_store(&prefix).await, lagging)
            }
        };
        let (app, _) = app(through);
        let r = router(
            app.with_quotas(quota(limit)),
            OrgSource::local_header(),
            &Function::ALL,
        );
        let starts: Vec<_> = (0..burst)
            .map(|i| {
                let r = r.clone();
                tokio::spawn(
                    async move { start_until_answered(&r, "org-burst", &format!("burst-{i}")).await },
                )
            })
            .collect();
        let mut made = 0;
        let mut refused = 0;
        for joined in starts {
            let (status, body) = joined.await.unwrap();
            match status {
                201 => made += 1,
                429 => {
                    assert_eq!(body["code"], "quota-exceeded", "{kind:?}");
                    refused += 1;
                }
                other => panic!("{kind:?}: {other} {body}"),
            }
        }
        assert_eq!((made, refused), (limit, burst - limit), "{kind:?}");
        let org = OrgId::parse("org-burst").unwrap();
        let stored = s.unlinked_of(&org, 1_000).await.unwrap().len();
        assert_eq!(stored, limit as usize, "{kind:?}");
        let places = s.load_index(&org).await.unwrap().unwrap().index.unlinked.len();
        assert_eq!(places, limit as usize, "{kind:?}");
    }
}

/// The places a start took before it died (its connection never written) hold for the grace,
/// then are given back to the next start; a place whose connection was linked without the index
/// hearing of it is given back the same way.
#[tokio::test]
async fn a_place_left_by_a_start_that_died_is_given_back_after_the_grace() {
    for kind in STORES {
        let s = store(kind).await;
        let org = OrgId::parse("org-crash").unwrap();
        let (app, _) = app(s.clone());
        let r = router(
            app.with_quotas(quota(3)),
            OrgSource::local_header(),
            &Function::ALL,
        );
        // Three starts died after taking their places: just now.
        let mut index = OrgIndex::new(org.clone());
        for _ in 0..3 {
            index.unlinked.insert(ConnectionId::new_random(), Utc::now());
        }
        s.write_index(None, &index, &WriteToken::derive("crash", None, 0))
            .await
            .unwrap();
        let (status, body) = start(&r, "org-crash", "after-1").await;
        assert_eq!(status, 429, "{kind:?}: within the grace the places hold: {body}");
        // Ten minutes later (the grace is five): settled, the start admitted.
        let read = s.load_index(&org).await.unwrap().unwrap();
        let mut aged = read.index.clone();
        for at in aged.unlinked.values_mut() {
            *at -= chrono::Duration::minutes(10);
        }
        s.write_index(
            Some(&read),
            &aged,
            &WriteToken::derive("age", Some(&read.version), 0),
        )
        .await
        .unwrap();
        let (status, body) = start(&r, "org-crash", "after-2").await;
        assert_eq!(status, 201, "{kind:?}: {body}");
        let held = s.load_index(&org).await.unwrap().unwrap().index.unlinked;
        assert_eq!(
            held.len(),
            1,
            "{kind:?}: only the new connection holds a place: {held:?}"
        );
        assert!(held.contains_key(&ConnectionId::parse(body["connectionId"].as_str().unwrap()).unwrap()));
    }
}

/// Deleting a connection gives its place back at once.
#[tokio::test]
async fn a_delete_gives_the_place_back() {
    for kind in STORES {
        let s = store(kind).await;
        let (app, _) = app(s.clone());
        let r = router(
            app.with_quotas(quota(1)),
            OrgSource::local_header(),
            &Function::ALL,
        );
        let (status, body) = start(&r, "org-del", "d1").await;
        assert_eq!(status, 201, "{kind:?}");
        assert_eq!(start(&r, "org-del", "d2").await.0, 429, "{kind:?}");
        let id = body["connectionId"].as_str().unwrap();
        let gone = send(
            &r,
            "DELETE",
            &format!("/connections/{id}"),
            Some("org-del"),
            &[],
            None,
        )
        .await;
        assert_eq!(gone.status.as_u16(), 204, "{kind:?}");
        let org = OrgId::parse("org-del").unwrap();
        assert!(
            s.load_index(&org)
                .await
                .unwrap()
                .unwrap()
                .index
                .unlinked
                .is_empty(),
            "{kind:?}"
        );
        assert_eq!(start(&r, "org-del", "d3").await.0, 201, "{kind:?}");
    }
}

/// Secrets Manager's listing may lag by minutes: once the organization has its index, a start
/// lists nothing (its first start lists once, to count what was made before the index).
#[tokio::test]
async fn a_start_never_lists_once_the_index_exists() {
    let s = sm_store(&unique_prefix()).await;
    let (app, _) = app(s.clone() as Arc<dyn ConnectionStore>);
    let r = router(
        app.with_quotas(quota(5)),
        OrgSource::local_header(),
        &Function::ALL,
    );
    assert_eq!(start(&r, "org-lag", "l1").await.0, 201);
    let listed = s.calls().list.load(Ordering::SeqCst);
    assert!(listed >= 1, "the first index counts what exists");
    for key in ["l2", "l3", "l4", "l5"] {
        assert_eq!(start(&r, "org-lag", key).await.0, 201);
    }
    assert_eq!(start(&r, "org-lag", "l6").await.0, 429);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        s.calls().list.load(Ordering::SeqCst),
        listed,
        "no listing after the first"
    );
}
