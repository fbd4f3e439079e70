//! Concurrent submissions of different steps to one connection lose nothing, on both stores.

use integration_tests::{STORES, app, app_registration, client_secret, request, store, subscription};
use shared::app::{Operation, Outcome};
use shared::domain::{AccountId, OrgId, Step};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_steps_all_land() {
    for kind in STORES {
        for round in 0..3 {
            let (app, _) = app(store(kind).await);
            let org = OrgId::parse("org-race").unwrap();
            let start = Operation::Start {
                account: AccountId::parse("act-0000cafe").unwrap(),
                connection: None,
                credential: Default::default(),
            };
            let Outcome::Created(c) = app
                .execute(&request(&format!("start-{round}")), &org, start)
                .await
                .unwrap()
            else {
                panic!("not created")
            };
            let commands = [app_registration(), client_secret(), subscription()];
            let tasks: Vec<_> = commands
                .into_iter()
                .enumerate()
                .map(|(i, command)| {
                    let (app, org) = (app.clone(), org.clone());
                    tokio::spawn(async move {
                        let op = Operation::Submit {
                            connection: c.id,
                            command,
                        };
                        app.execute(&request(&format!("step-{round}-{i}")), &org, op)
                            .await
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap().unwrap();
            }
            let Outcome::Current(done) = app
                .execute(&request("read"), &org, Operation::Read { connection: c.id })
                .await
                .unwrap()
            else {
                panic!("no connection")
            };
            assert!(done.app_registration.is_some(), "{kind:?}: app registration lost");
            assert!(done.client_secret.is_some(), "{kind:?}: client secret lost");
            assert!(done.subscription.is_some(), "{kind:?}: subscription lost");
            assert_eq!(done.next_step(), Some(Step::CustomRole), "{kind:?}");
        }
    }
}
