//! Approved deviations (`DeviationRepo`): created once per parent and rule, listed by parent, revoked but never
//! deleted, and read by compliance's facts and the write-time limits.

use township_registry::domain::deviations::{DeviationRevocation, DeviationScope, NewApprovedDeviation};
use township_registry::domain::names::Scope;
use township_registry::store::StoreError;

use crate::{ACTOR, TestDb, code, county, import_fixture, page};

conformance!(
    a_deviation_is_kept_per_parent_and_revoked_not_deleted,
    facts_carry_the_deviations_of_each_townships_county_and_its_own
);

fn offices(scope: DeviationScope, allowed: u32) -> NewApprovedDeviation {
    NewApprovedDeviation {
        scope,
        rule: "offices.count".into(),
        allowed: Some(allowed),
        allowed_description: String::new(),
        document_number: "长编发〔2025〕7号".into(),
        approved_on: "2025-03-01".into(),
        reason: "山区大镇".into(),
        valid_to: None,
    }
}

async fn a_deviation_is_kept_per_parent_and_revoked_not_deleted(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let county_scope = DeviationScope::County(county("430102"));
    let created = store.create_deviation(&offices(county_scope.clone(), 7), ACTOR).await.unwrap();
    assert_eq!(created.name(), format!("cities/4301/counties/430102/approvedDeviations/{}", created.id));
    assert_eq!(store.get_deviation(&county_scope, created.id).await.unwrap(), created);
    let other_county = DeviationScope::County(county("430103"));
    assert!(matches!(store.get_deviation(&other_county, created.id).await, Err(StoreError::NotFound(_))));

    let again = store.create_deviation(&offices(county_scope.clone(), 8), ACTOR).await;
    assert!(matches!(&again, Err(StoreError::AlreadyExists(m)) if m.contains("长编发〔2025〕7号")), "{again:?}");
    let township_scope = DeviationScope::Township(code("430102001"));
    let own = store.create_deviation(&offices(township_scope.clone(), 8), ACTOR).await.unwrap();
    store.create_deviation(&offices(other_county.clone(), 9), ACTOR).await.unwrap();
    let missing = store.create_deviation(&offices(DeviationScope::County(county("430199")), 7), ACTOR).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));

    let ids = |items: Vec<township_registry::domain::deviations::ApprovedDeviation>| {
        items.into_iter().map(|d| d.id).collect::<Vec<_>>()
    };
    let listed = store.list_deviations(&county_scope, &page(10)).await.unwrap();
    assert_eq!(ids(listed.items), [created.id, own.id], "a county's list holds nothing of another county");
    let listed = store.list_deviations(&DeviationScope::Township(code("430102002")), &page(10)).await.unwrap();
    assert_eq!(ids(listed.items), [created.id], "a township's list: what applies to it");
    let first = store.list_deviations(&county_scope, &page(1)).await.unwrap();
    assert_eq!(ids(first.items), [created.id]);
    assert!(first.next.is_some());

    let revocation =
        DeviationRevocation { document_number: "长编发〔2025〕9号".into(), reason: "已调整".into() };
    let revoked = store.revoke_deviation(&county_scope, created.id, &revocation, ACTOR).await.unwrap();
    let kept = revoked.revocation.as_ref().unwrap();
    assert_eq!((kept.document_number.as_str(), kept.revoked_by.as_str()), ("长编发〔2025〕9号", ACTOR));
    assert_eq!(store.get_deviation(&county_scope, created.id).await.unwrap(), revoked, "kept, not deleted");
    let twice = store.revoke_deviation(&county_scope, created.id, &revocation, ACTOR).await;
    assert!(matches!(twice, Err(StoreError::FailedPrecondition(_))));
    // Revoked, it no longer applies and another may be recorded.
    let in_force = store.deviations_in_force(&code("430102002")).await.unwrap();
    assert_eq!(in_force, []);
    store.create_deviation(&offices(county_scope.clone(), 8), ACTOR).await.unwrap();

    let events = store.list_audit_events("cities/4301/counties/430102/approvedDeviations", &page(10)).await.unwrap();
    let actions: Vec<_> = events.items.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"RevokeApprovedDeviation") && actions.contains(&"CreateApprovedDeviation"));
}

async fn facts_carry_the_deviations_of_each_townships_county_and_its_own(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let of_county = store.create_deviation(&offices(DeviationScope::County(county("430102")), 7), ACTOR).await.unwrap();
    let own = store.create_deviation(&offices(DeviationScope::Township(code("430102001")), 8), ACTOR).await.unwrap();
    let elsewhere = store.create_deviation(&offices(DeviationScope::County(county("430103")), 9), ACTOR).await.unwrap();
    let mut future = offices(DeviationScope::Township(code("430102002")), 9);
    future.approved_on = "2999-01-01".into();
    store.create_deviation(&future, ACTOR).await.unwrap();

    let facts = store.township_facts(&Scope::City(crate::city())).await.unwrap();
    let by_township: Vec<(String, Vec<i64>)> =
        facts.iter().map(|f| (f.township.code.to_string(), f.deviations.iter().map(|d| d.id).collect())).collect();
    assert_eq!(
        by_township,
        [
            ("430102001".to_owned(), vec![of_county.id, own.id]),
            ("430102002".to_owned(), vec![of_county.id]),
            ("430102003".to_owned(), vec![of_county.id]),
            ("430103001".to_owned(), vec![elsewhere.id]),
            ("430103002".to_owned(), vec![elsewhere.id]),
        ]
    );
    let ids: Vec<i64> = store.deviations_in_force(&code("430102001")).await.unwrap().iter().map(|d| d.id).collect();
    assert_eq!(ids, [of_county.id, own.id]);
}
