//! City policy versions (`PolicyRepo`).

use township_policy::Policy;
use township_registry::domain::model::CohortState;
use township_registry::domain::names::CityCode;
use township_registry::store::StoreError;

use crate::{ACTOR, TestDb, city, classify, cohort, import_fixture, next, page};

conformance!(policy_versions_increment_and_mark_cohorts_pending);

async fn policy_versions_increment_and_mark_cohorts_pending(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    assert_eq!(store.latest_city_policy(&city()).await.unwrap(), None);
    classify(store, 2022, &[("430102001", 1)]).await;
    classify(store, 2023, &[("430102001", 2)]).await;
    assert_eq!(store.cohort_job(&cohort(2023)).await.unwrap().unwrap().state, CohortState::Current);

    let mut policy = Policy::builtin_default();
    let first = store.insert_city_policy(&city(), &policy, "", ACTOR).await.unwrap();
    assert_eq!((first.version, first.fingerprint.clone()), (1, policy.fingerprint()));
    policy.max_plaques_per_township = 2;
    let second = store.insert_city_policy(&city(), &policy, "", ACTOR).await.unwrap();
    assert_eq!(second.version, 2);
    assert_ne!(second.fingerprint, first.fingerprint);

    let latest = store.latest_city_policy(&city()).await.unwrap().unwrap();
    assert_eq!(latest, second);
    assert_eq!(latest.policy.max_plaques_per_township, 2);
    assert_eq!(store.get_city_policy(&city(), 1).await.unwrap(), first);
    assert!(matches!(store.get_city_policy(&city(), 3).await, Err(StoreError::NotFound(_))));
    let listed = store.list_city_policies(&city(), &page(1)).await.unwrap();
    assert_eq!(listed.items[0].version, 2);
    let older = store.list_city_policies(&city(), &next(1, &listed.next)).await.unwrap();
    assert_eq!((older.items[0].version, older.next.clone()), (1, None));

    for year in [2022, 2023] {
        let job = store.cohort_job(&cohort(year)).await.unwrap().unwrap();
        assert_eq!((job.state, job.generation), (CohortState::Pending, 3), "cohort {year}");
    }
    let unknown = CityCode::parse("9999").unwrap();
    assert!(matches!(store.insert_city_policy(&unknown, &policy, "", ACTOR).await, Err(StoreError::NotFound(_))));
}
