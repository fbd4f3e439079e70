//! One contract, two stores: the embedded file store and Secrets Manager (moto).

use chrono::Utc;
use integration_tests::{STORES, StoreKind, app_registration, client_secret, store, subscription};
use shared::domain::{AccountId, Command, Connection, ConnectionId, OrgId, SubscriptionId};
use shared::store::{ConnectionStore, Lookup, StoreError, Versioned, WriteToken};

const SUB: &str = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab";

fn new_connection() -> Connection {
    Connection::new(
        ConnectionId::new_random(),
        OrgId::parse("org-contract").unwrap(),
        AccountId::parse("act-0000beef").unwrap(),
        Utc::now(),
    )
    .created_by("create-1")
}

async fn created(s: &dyn ConnectionStore) -> Versioned {
    let c = new_connection();
    s.create(&c, &WriteToken::derive("create-1", None, 0))
        .await
        .unwrap();
    s.load(&c.org, &c.id).await.unwrap().unwrap()
}

fn changed(v: &Versioned, request: &str) -> Connection {
    let mut next = v.connection.clone();
    assert!(next.apply(&subscription(), request, Utc::now()).unwrap());
    next
}

#[tokio::test]
async fn missing_connection_loads_as_none() {
    for kind in STORES {
        let s = store(kind).await;
        let got = s
            .load(&OrgId::parse("o").unwrap(), &ConnectionId::new_random())
            .await
            .unwrap();
        assert!(got.is_none(), "{kind:?}");
    }
}

#[tokio::test]
async fn create_then_load_round_trips_the_document() {
    for kind in STORES {
        let s = store(kind).await;
        let mut c = new_connection();
        c.apply(&app_registration(), "r1", Utc::now()).unwrap();
        c.apply(&client_secret(), "r2", Utc::now()).unwrap();
        let token = WriteToken::derive("create-1", None, 0);
        let v = s.create(&c, &token).await.unwrap();
        let loaded = s.load(&c.org, &c.id).await.unwrap().unwrap();
        assert_eq!(loaded.connection, c, "{kind:?}");
        assert_eq!(loaded.version, v, "{kind:?}");
    }
}

#[tokio::test]
async fn create_is_idempotent_per_token_and_refuses_a_second_connection() {
    for kind in STORES {
        let s = store(kind).await;
        let c = new_connection();
        let token = WriteToken::derive("create-1", None, 0);
        let v1 = s.create(&c, &token).await.unwrap();
        assert_eq!(
            s.create(&c, &token).await.unwrap(),
            v1,
            "{kind:?}: same token, same document"
        );
        let other = WriteToken::derive("create-2", None, 0);
        assert!(
            matches!(s.create(&c, &other).await, Err(StoreError::AlreadyExists)),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn replace_is_compare_and_swap() {
    for kind in STORES {
        let s = store(kind).await;
        let v0 = created(s.as_ref()).await;
        let next = changed(&v0, "r1");
        let v1 = s
            .replace(&v0, &next, &WriteToken::derive("r1", Some(&v0.version), 0))
            .await
            .unwrap();
        let loaded = s.load(&next.org, &next.id).await.unwrap().unwrap();
        assert_eq!((&loaded.version, &loaded.connection), (&v1, &next), "{kind:?}");

        // A writer that read v0 lost the race.
        let stale = changed(&v0, "r2");
        let err = s
            .replace(&v0, &stale, &WriteToken::derive("r2", Some(&v0.version), 0))
            .await;
        assert!(matches!(err, Err(StoreError::Conflict)), "{kind:?}: {err:?}");
        let still = s
            .load(&loaded.connection.org, &loaded.connection.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            still.version, loaded.version,
            "{kind:?}: the loser changed nothing"
        );
    }
}

#[tokio::test]
async fn a_repeated_write_makes_no_new_version() {
    for kind in STORES {
        let s = store(kind).await;
        let v0 = created(s.as_ref()).await;
        let next = changed(&v0, "r1");
        let token = WriteToken::derive("r1", Some(&v0.version), 0);
        let v1 = s.replace(&v0, &next, &token).await.unwrap();
        // The retry builds on the same read: it cannot move AWSCURRENT again, and nothing changes.
        let again = s.replace(&v0, &next, &token).await;
        assert!(
            matches!(again, Err(StoreError::Conflict) | Ok(_)),
            "{kind:?}: {again:?}"
        );
        let loaded = s.load(&next.org, &next.id).await.unwrap().unwrap();
        assert_eq!(loaded.version, v1, "{kind:?}");
        assert_eq!(loaded.connection, next, "{kind:?}");
    }
}

#[tokio::test]
async fn delete_removes_once() {
    for kind in STORES {
        let s = store(kind).await;
        let v = created(s.as_ref()).await;
        let (org, id) = (v.connection.org.clone(), v.connection.id);
        assert!(s.delete(&org, &id).await.unwrap(), "{kind:?}");
        assert!(!s.delete(&org, &id).await.unwrap(), "{kind:?}");
        assert!(s.load(&org, &id).await.unwrap().is_none(), "{kind:?}");
    }
}

#[tokio::test]
async fn replace_of_a_deleted_connection_is_not_found() {
    for kind in STORES {
        let s = store(kind).await;
        let v = created(s.as_ref()).await;
        s.delete(&v.connection.org, &v.connection.id).await.unwrap();
        let next = changed(&v, "r1");
        let err = s
            .replace(&v, &next, &WriteToken::derive("r1", Some(&v.version), 0))
            .await;
        // A deleted connection's document waits out its recovery window. Secrets Manager refuses
        // writes to it (InvalidRequestException → NotFound); moto 5.2.5 takes them (a gap of the
        // stand-in), so there the promise is the one that matters: it stays deleted.
        match kind {
            StoreKind::Embedded => assert!(matches!(err, Err(StoreError::NotFound)), "{kind:?}: {err:?}"),
            StoreKind::SecretsManager => assert!(
                matches!(err, Err(StoreError::NotFound) | Ok(_)),
                "{kind:?}: {err:?}"
            ),
        }
        assert!(
            s.load(&v.connection.org, &v.connection.id)
                .await
                .unwrap()
                .is_none(),
            "{kind:?}: a write after the delete brought it back"
        );
    }
}

#[tokio::test]
async fn organizations_are_separate_namespaces() {
    for kind in STORES {
        let s = store(kind).await;
        let v = created(s.as_ref()).await;
        let other = OrgId::parse("someone-else").unwrap();
        assert!(
            s.load(&other, &v.connection.id).await.unwrap().is_none(),
            "{kind:?}"
        );
        assert!(!s.delete(&other, &v.connection.id).await.unwrap(), "{kind:?}");
        assert!(
            s.load(&v.connection.org, &v.connection.id)
                .await
                .unwrap()
                .is_some(),
            "{kind:?}"
        );
    }
}

#[test]
fn both_stores_are_under_contract() {
    assert!(matches!(STORES, [StoreKind::Embedded, StoreKind::SecretsManager]));
}

#[tokio::test]
async fn find_lists_connections_by_tag_of_account_subscription_or_estate() {
    for kind in STORES {
        let s = store(kind).await;
        let org = OrgId::parse("org-contract").unwrap();
        let account = AccountId::parse("act-0000beef").unwrap();
        let mut mine = Vec::new();
        let mut ids = Vec::new();
        for (i, (o, a)) in [
            ("org-contract", "act-0000beef"),
            ("org-contract", "act-0000beef"),
            ("org-contract", "act-0000cafe"),
            ("someone-else", "act-0000beef"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut c = Connection::new(
                ConnectionId::new_random(),
                OrgId::parse(o).unwrap(),
                AccountId::parse(a).unwrap(),
                Utc::now(),
            );
            // The first and the last of one subscription (in two organizations); the third an
            // estate.
            let scope = match i {
                0 | 3 => Some(Command::Subscription {
                    subscription: SubscriptionId::parse(SUB).unwrap(),
                    replace_estate: false,
                }),
                2 => Some(Command::ManagementGroup {
                    group: shared::domain::ManagementGroupId::parse("contoso").unwrap(),
                    default_subscription: None,
                    replace_estate: false,
                }),
                _ => None,
            };
            if let Some(command) = scope {
                c.apply(&command, "scope", Utc::now()).unwrap();
            }
            s.create(&c, &WriteToken::derive(&format!("c{i}"), None, 0))
                .await
                .unwrap();
            if o == "org-contract" && a == "act-0000beef" {
                mine.push(c.id);
            }
            ids.push(c.id);
        }
        let mut found = s.find(&org, &Lookup::Account(&account)).await.unwrap();
        found.sort();
        mine.sort();
        assert_eq!(found, mine, "{kind:?}");
        assert!(
            s.find(&org, &Lookup::Account(&AccountId::parse("act-00000000").unwrap()))
                .await
                .unwrap()
                .is_empty(),
            "{kind:?}"
        );
        let sub = SubscriptionId::parse(SUB).unwrap();
        assert_eq!(
            s.find(&org, &Lookup::Subscription(sub)).await.unwrap(),
            [ids[0]],
            "{kind:?}"
        );
        assert_eq!(
            s.find(&org, &Lookup::Estates).await.unwrap(),
            [ids[2]],
            "{kind:?}"
        );
    }
}

/// A survey of `n` random subscriptions, every one over-privileged as Owner at the group makes
/// them (the case that once overflowed the document), the first `changed` of them disabled.
fn owner_survey(n: u64, changed: u64) -> shared::domain::estate::Survey {
    use shared::domain::estate::{Sighting, SubscriptionState, Survey};
    use shared::domain::privilege::OverPrivilege;
    Survey {
        looked_at: None,
        checked_at: Utc::now(),
        found: (0..n)
            .map(|i| {
                // Spread over the id space as Azure's random ids are.
                let bits = (u128::from(i) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
                Sighting {
                    subscription: SubscriptionId::parse(
                        &uuid::Builder::from_random_bytes(bits.to_le_bytes())
                            .into_uuid()
                            .to_string(),
                    )
                    .unwrap(),
                    display_name: format!("workload {i}"),
                    state: if i < changed {
                        SubscriptionState::parse("Disabled")
                    } else {
                        SubscriptionState::Enabled
                    },
                    missing_actions: vec![],
                    over_privilege: Some(OverPrivilege {
                        extra_grants: vec!["*".into()],
                        roles: vec!["Owner (built-in)".into()],
                    }),
                }
            })
            .collect(),
    }
}

#[tokio::test]
async fn an_estate_of_thousands_round_trips_its_list_in_pages_and_only_changed_pages_are_written() {
    use shared::domain::estate::Estate;
    use std::sync::atomic::Ordering;
    for kind in STORES {
        // Secrets Manager's own type too, to count what it was asked to create.
        let sm = integration_tests::sm_store(&integration_tests::unique_prefix()).await;
        let s: std::sync::Arc<dyn ConnectionStore> = match kind {
            StoreKind::Embedded => store(kind).await,
            StoreKind::SecretsManager => sm.clone(),
        };
        let v = created(s.as_ref()).await;
        let mut next = v.connection.clone();
        let mut estate = Estate::new(
            shared::domain::ManagementGroupId::parse("huge").unwrap(),
            None,
            Utc::now(),
        );
        estate.record(&owner_survey(3_000, 0), &next.account);
        next.estate = Some(estate.clone());
        next.check_size().expect("3,000 subscriptions fit, in pages");
        let stored = shared::domain::document::encode_stored(&next).unwrap();
        assert!(stored.pages.len() >= 2, "{kind:?}: {stored:?}");
        assert!(
            stored.doc.len() < 8 * 1024,
            "{kind:?}: {} bytes",
            stored.doc.len()
        );
        s.replace(&v, &next, &WriteToken::derive("w1", Some(&v.version), 0))
            .await
            .unwrap();
        let read = s.load(&next.org, &next.id).await.unwrap().unwrap();
        assert_eq!(read.connection.estate, next.estate, "{kind:?}");

        // One subscription changes: one page is new, the others are the same.
        let mut again = read.connection.clone();
        let mut changed = estate.clone();
        changed.record(&owner_survey(3_000, 1), &again.account);
        again.estate = Some(changed);
        let after = shared::domain::document::encode_stored(&again).unwrap();
        let new: Vec<_> = after
            .pages
            .iter()
            .filter(|p| !stored.pages.iter().any(|q| q.hash == p.hash))
            .collect();
        assert_eq!(new.len(), 1, "{kind:?}");
        let creates = sm.calls().create.load(Ordering::Relaxed);
        let deletes = sm.calls().delete.load(Ordering::Relaxed);
        s.replace(&read, &again, &WriteToken::derive("w2", Some(&read.version), 0))
            .await
            .unwrap();
        if matches!(kind, StoreKind::SecretsManager) {
            // The one page that changed, created; the document swapped; the page it replaced
            // (named by the version read) deleted.
            assert_eq!(sm.calls().create.load(Ordering::Relaxed) - creates, 1);
            assert_eq!(sm.calls().delete.load(Ordering::Relaxed) - deletes, 1);
            assert_eq!(
                read.pages.len(),
                stored.pages.len(),
                "the version read names its pages"
            );
        }
        let read = s.load(&again.org, &again.id).await.unwrap().unwrap();
        assert_eq!(read.connection.estate, again.estate, "{kind:?}");
        // Deleted, the connection takes its pages with it; nothing of it loads.
        assert!(s.delete(&again.org, &again.id).await.unwrap(), "{kind:?}");
        assert!(s.load(&again.org, &again.id).await.unwrap().is_none(), "{kind:?}");
    }
}
