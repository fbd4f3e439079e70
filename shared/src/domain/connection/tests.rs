//! The connection's rules, one command at a time.
use super::*;
use secrecy::SecretString;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn conn() -> Connection {
    Connection::new(
        ConnectionId::new_random(),
        OrgId::parse("org-1").unwrap(),
        AccountId::parse("act-12345678").unwrap(),
        t("2026-11-26T10:00:00Z"),
    )
}

fn app_reg() -> Command {
    Command::AppRegistration {
        tenant: TenantId::parse("contoso.onmicrosoft.com").unwrap(),
        client: ClientId::parse("11111111-2222-4333-8444-555555555555").unwrap(),
    }
}

fn secret() -> Command {
    Command::ClientSecret {
        secret: ClientSecret::parse(SecretString::from(
            "abc8Q~0123456789abcdefghijklmnopqrstuvwx".to_owned(),
        ))
        .unwrap(),
        expires_at: None,
    }
}

fn sub(s: &str) -> Command {
    Command::Subscription {
        subscription: SubscriptionId::parse(s).unwrap(),
        replace_estate: false,
    }
}

#[test]
fn next_step_walks_the_wizard_in_order() {
    let mut c = conn();
    let at = t("2026-11-26T10:01:00Z");
    assert_eq!(c.next_step(), Some(Step::AppRegistration));
    c.apply(&secret(), "r1", at).unwrap();
    assert_eq!(c.next_step(), Some(Step::AppRegistration), "steps in any order");
    c.apply(&app_reg(), "r2", at).unwrap();
    assert_eq!(c.next_step(), Some(Step::Subscription));
    c.apply(&sub("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"), "r3", at)
        .unwrap();
    assert_eq!(c.next_step(), Some(Step::CustomRole));
    c.apply(&Command::ExportCustomRole, "r4", at).unwrap();
    assert_eq!(c.next_step(), Some(Step::RoleAssignment));
    c.status = Status::Connected;
    assert_eq!(c.next_step(), None);
}

#[test]
fn custom_role_needs_the_subscription() {
    let mut c = conn();
    assert_eq!(
        c.apply(&Command::ExportCustomRole, "r1", t("2026-11-26T10:01:00Z")),
        Err(RuleError::MissingPrerequisite {
            step: Step::CustomRole,
            needs: Step::Subscription
        })
    );
}

#[test]
fn same_values_again_are_no_change() {
    let mut c = conn();
    let at = t("2026-11-26T10:01:00Z");
    assert!(c.apply(&app_reg(), "r1", at).unwrap());
    let before = c.clone();
    assert!(!c.apply(&app_reg(), "r2", t("2026-11-26T11:00:00Z")).unwrap());
    assert_eq!(c, before);
}

#[test]
fn a_new_subscription_invalidates_the_exported_role_and_the_connection() {
    let mut c = conn();
    let at = t("2026-11-26T10:01:00Z");
    c.apply(&sub("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"), "r1", at)
        .unwrap();
    c.apply(&Command::ExportCustomRole, "r2", at).unwrap();
    c.status = Status::Connected;
    c.apply(&sub("00000000-aaaa-4bbb-8ccc-0123456789ab"), "r3", at)
        .unwrap();
    assert!(c.custom_role.is_none());
    assert_eq!(c.status, Status::Draft);
}

fn record(c: &Connection, failure: Option<FailureRecord>) -> ValidationRecord {
    ValidationRecord {
        checked_at: t("2026-11-26T10:05:00Z"),
        inputs: c.validation_inputs().unwrap().fingerprint,
        checks: vec!["token".into()],
        warnings: vec![],
        subscription_name: None,
        failure,
        graph_manages_credentials: None,
        secret_key_id: None,
        secret_end: None,
        credential: c.credential_type,
        role_version: 1,
        role_id: None,
        over_privilege: None,
    }
}

#[test]
fn a_federated_connection_asks_for_the_federated_credential_never_for_a_secret() {
    let mut c = conn();
    let at = t("2026-11-26T10:01:00Z");
    c.apply(&Command::SetCredentialType(CredentialType::Federated), "r0", at)
        .unwrap();
    assert_eq!(c.next_step(), Some(Step::AppRegistration));
    let err = c
        .apply(&Command::ExportFederatedCredential, "r1", at)
        .unwrap_err();
    assert_eq!(
        err,
        RuleError::MissingPrerequisite {
            step: Step::FederatedCredential,
            needs: Step::AppRegistration
        }
    );
    c.apply(&app_reg(), "r2", at).unwrap();
    assert_eq!(c.next_step(), Some(Step::FederatedCredential));
    assert!(matches!(
        c.apply(&secret(), "r3", at),
        Err(RuleError::WrongCredentialType { .. })
    ));
    assert!(c.apply(&Command::ExportFederatedCredential, "r4", at).unwrap());
    assert!(
        !c.apply(&Command::ExportFederatedCredential, "r5", at).unwrap(),
        "exported once"
    );
    assert!(
        matches!(
            c.apply(
                &Command::SetRotation(Some(RotationSettings { days_before: 14 })),
                "r5b",
                at
            ),
            Err(RuleError::WrongCredentialType { .. })
        ),
        "nothing to rotate"
    );
    assert_eq!(c.next_step(), Some(Step::Subscription));
    c.apply(&sub("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"), "r6", at)
        .unwrap();
    let inputs = c.validation_inputs().unwrap();
    assert!(matches!(inputs.proof, Proof::Federated { .. }));
    assert!(inputs.proof.secret().is_none());
    c.apply(&Command::RecordValidation(Box::new(record(&c, None))), "r7", at)
        .unwrap();
    assert_eq!((c.status, c.next_step()), (Status::Connected, None));
}

#[test]
fn moving_off_a_secret_keeps_it_until_a_federated_validation_succeeds() {
    let mut c = conn();
    let at = t("2026-11-26T10:01:00Z");
    c.apply(&app_reg(), "r1", at).unwrap();
    c.apply(&secret(), "r2", at).unwrap();
    c.apply(&sub("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"), "r3", at)
        .unwrap();
    c.apply(&Command::RecordValidation(Box::new(record(&c, None))), "r4", at)
        .unwrap();
    assert_eq!(c.status, Status::Connected);
    c.apply(&Command::SetCredentialType(CredentialType::Federated), "r5", at)
        .unwrap();
    assert_eq!(c.status, Status::Connected, "still working on its secret");
    assert!(c.client_secret.is_some());
    c.apply(&Command::ExportFederatedCredential, "r6", at).unwrap();
    let failed = FailureRecord {
        step: Step::FederatedCredential,
        code: "federated-credential-not-found".into(),
        retryable: true,
        missing_actions: vec![],
    };
    let before = c.clone();
    let changed = c
        .apply(
            &Command::RecordValidation(Box::new(record(&c, Some(failed)))),
            "r7",
            at,
        )
        .unwrap();
    assert!(!changed, "a failed switch changes nothing");
    assert_eq!(c, before, "exactly as it was: connected on its secret");
    c.apply(&Command::RecordValidation(Box::new(record(&c, None))), "r8", at)
        .unwrap();
    assert!(c.client_secret.is_none(), "proven without it: the secret is gone");
    assert_eq!(c.status, Status::Connected);
}

#[test]
fn validation_connects_fails_and_goes_stale() {
    let mut c = conn();
    let at = t("2026-11-26T10:01:00Z");
    assert_eq!(
        c.validation_inputs().unwrap_err(),
        RuleError::MissingPrerequisite {
            step: Step::RoleAssignment,
            needs: Step::AppRegistration
        }
    );
    for (i, cmd) in [app_reg(), secret(), sub("6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab")]
        .iter()
        .enumerate()
    {
        c.apply(cmd, &format!("r{i}"), at).unwrap();
    }
    let failure = FailureRecord {
        step: Step::CustomRole,
        code: "missing-actions".into(),
        retryable: false,
        missing_actions: vec!["x".into()],
    };
    c.apply(
        &Command::RecordValidation(Box::new(record(&c, Some(failure)))),
        "v1",
        at,
    )
    .unwrap();
    assert_eq!((c.status, c.linked_at), (Status::Failed, None));
    assert!(
        c.app_registration.is_some() && c.client_secret.is_some(),
        "inputs are kept"
    );
    let ok = record(&c, None);
    c.apply(&Command::RecordValidation(Box::new(ok.clone())), "v2", at)
        .unwrap();
    assert_eq!(
        (c.status, c.linked_at, c.next_step()),
        (Status::Connected, Some(ok.checked_at), None)
    );
    // A verdict on other inputs is refused; a new input puts the connection back to draft.
    let stale = ok.clone();
    c.apply(&sub("00000000-aaaa-4bbb-8ccc-0123456789ab"), "r9", at)
        .unwrap();
    assert_eq!(c.status, Status::Draft);
    assert_eq!(
        c.apply(&Command::RecordValidation(Box::new(stale)), "v3", at),
        Err(RuleError::InputsChanged)
    );
}

#[test]
fn a_reminder_or_an_expiry_is_recorded_once() {
    let mut c = conn();
    let t0 = t("2026-11-26T10:00:00Z");
    let secret = Command::ClientSecret {
        secret: ClientSecret::parse(SecretString::from(
            "abc8Q~0123456789abcdefghijklmnopqrstuvwx".to_owned(),
        ))
        .unwrap(),
        expires_at: Some(SecretExpiry::parse("2026-12-10", t0).unwrap()),
    };
    c.apply(&secret, "s", t0).unwrap();
    // Two scans that both saw the old tags: only the first records (and announces).
    assert!(
        c.apply(&Command::RecordReminder { threshold: 14 }, "scan-a", t0)
            .unwrap()
    );
    assert!(
        !c.apply(&Command::RecordReminder { threshold: 14 }, "scan-b", t0)
            .unwrap()
    );
    assert!(
        !c.apply(&Command::RecordReminder { threshold: 30 }, "scan-c", t0)
            .unwrap(),
        "no going back"
    );
    assert!(
        c.apply(&Command::RecordReminder { threshold: 7 }, "scan-d", t0)
            .unwrap()
    );
    // Not expired yet; then expired, once.
    assert!(!c.apply(&Command::MarkExpired, "scan-e", t0).unwrap());
    let later = t("2026-12-11T00:00:00Z");
    assert!(c.apply(&Command::MarkExpired, "scan-f", later).unwrap());
    assert_eq!(c.status, Status::Expired);
    assert!(!c.apply(&Command::MarkExpired, "scan-g", later).unwrap());
}

#[test]
fn remembers_a_bounded_number_of_requests() {
    let mut c = conn();
    for i in 0..40 {
        let s = format!("{:08x}-aaaa-4bbb-8ccc-0123456789ab", i);
        c.apply(&sub(&s), &format!("r{i}"), t("2026-11-26T10:01:00Z"))
            .unwrap();
    }
    assert_eq!(c.recent_requests.len(), REMEMBERED_REQUESTS);
    assert!(c.handled("r39"));
    assert!(!c.handled("r0"));
}

/// A survey of `n` random subscriptions, each with `over` (the app's extra rights there).
fn big_survey(
    n: u64,
    over: Option<crate::domain::privilege::OverPrivilege>,
) -> crate::domain::estate::Survey {
    use crate::domain::estate::{Sighting, SubscriptionState, Survey};
    Survey {
        looked_at: None,
        checked_at: t("2026-11-26T10:05:00Z"),
        found: (0..n)
            .map(|i| {
                let mut rng = fastrand::Rng::with_seed(i);
                Sighting {
                    subscription: SubscriptionId::parse(
                        &uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes())
                            .into_uuid()
                            .to_string(),
                    )
                    .unwrap(),
                    display_name: format!("workload {i}"),
                    state: SubscriptionState::Enabled,
                    missing_actions: vec![],
                    over_privilege: over.clone(),
                }
            })
            .collect(),
    }
}

/// An estate connection with its inputs entered, before Connect Account.
fn estate_conn() -> Connection {
    let mut c = conn();
    let group = Command::ManagementGroup {
        group: ManagementGroupId::parse("huge").unwrap(),
        default_subscription: None,
        replace_estate: false,
    };
    for cmd in [app_reg(), secret(), group] {
        c.apply(&cmd, "r", t("2026-11-26T10:01:00Z")).unwrap();
    }
    c
}

#[test]
fn owner_at_the_group_makes_every_subscription_over_privileged_and_the_document_still_fits() {
    // The misconfiguration the warning is for: Owner at the group, so every subscription below
    // says the same. Whatever a survey is let record, the whole stored document fits a secret.
    let owner = crate::domain::privilege::OverPrivilege {
        extra_grants: vec!["*".into()],
        roles: vec!["Owner (built-in)".into(), "Spot by NetApp (custom)".into()],
    };
    for n in [500, 1_000, 2_000] {
        let mut c = estate_conn();
        let validated = Command::RecordEstateValidation {
            start: None,
            record: Box::new(record(&c, None)),
            survey: Some(big_survey(n, Some(owner.clone()))),
        };
        let recorded = c.apply(&validated, "v", t("2026-11-26T10:05:00Z"));
        let stored = crate::domain::document::encode_stored(&c).unwrap();
        assert_eq!(recorded, Ok(true), "{n} subscriptions: {stored:?}");
        for size in std::iter::once(stored.doc.len()).chain(stored.pages.iter().map(|p| p.text.len())) {
            assert!(size <= 65_536, "{n} subscriptions stored in a {size}-byte secret");
        }
        let pages = stored
            .pages
            .iter()
            .map(|p| (p.hash.clone(), p.text.clone()))
            .collect();
        let back = crate::domain::document::decode_with_pages(&stored.doc, &pages).unwrap();
        assert_eq!(back.estate, c.estate);
    }
}

#[test]
fn a_group_beyond_the_inline_list_goes_to_pages_and_one_that_fits_no_page_is_refused() {
    use crate::domain::estate::{Sighting, SubscriptionState, Survey};
    let mut c = conn();
    let group = Command::ManagementGroup {
        group: ManagementGroupId::parse("huge").unwrap(),
        default_subscription: None,
        replace_estate: false,
    };
    for cmd in [app_reg(), secret(), group] {
        c.apply(&cmd, "r", t("2026-11-26T10:01:00Z")).unwrap();
    }
    let survey = |n: u64| Survey {
        looked_at: None,
        checked_at: t("2026-11-26T10:05:00Z"),
        found: (0..n)
            .map(|i| {
                let mut rng = fastrand::Rng::with_seed(i);
                Sighting {
                    subscription: SubscriptionId::parse(
                        &uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes())
                            .into_uuid()
                            .to_string(),
                    )
                    .unwrap(),
                    display_name: format!("workload {i}"),
                    state: SubscriptionState::Enabled,
                    missing_actions: vec![],
                    over_privilege: None,
                }
            })
            .collect(),
    };
    let validated = |n| Command::RecordEstateValidation {
        start: None,
        record: Box::new(record(&c, None)),
        survey: Some(survey(n)),
    };
    // Ten thousand fit, their list in pages; the document itself stays small.
    let mut big = c.clone();
    assert_eq!(
        big.apply(&validated(10_000), "v", t("2026-11-26T10:05:00Z")),
        Ok(true)
    );
    let stored = crate::domain::document::encode_stored(&big).unwrap();
    // With --nocapture: the figure of docs/estate.md.
    println!("10,000 subscriptions: {stored:?}");
    assert!(stored.pages.len() >= 8, "{stored:?}");
    assert!(stored.doc.len() < 8 * 1024, "{stored:?}");
    // A subscription whose row alone would not fit a page can never be stored: refused.
    let mut huge = survey(2);
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    huge.found[0].display_name = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + u8::try_from(x % 26).unwrap_or(0))
        })
        .collect();
    let refused = Command::RecordEstateValidation {
        start: None,
        record: Box::new(record(&c, None)),
        survey: Some(huge),
    };
    assert_eq!(
        c.clone().apply(&refused, "v", t("2026-11-26T10:05:00Z")),
        Err(RuleError::EstateTooLarge(2))
    );
    // A thousand fit inline.
    assert_eq!(
        c.apply(&validated(1_000), "v", t("2026-11-26T10:05:00Z")),
        Ok(true)
    );
    assert_eq!(c.estate.as_ref().map(|e| e.entries.len()), Some(1_000));
    assert!(
        crate::domain::document::encode_stored(&c)
            .unwrap()
            .pages
            .is_empty()
    );
}
