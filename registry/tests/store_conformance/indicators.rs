//! Indicator observations and cohort inputs (`IndicatorRepo`).

use township_registry::domain::model::NewObservation;
use township_registry::store::StoreError;

use crate::{ACTOR, TestDb, city, code, cohort, import_fixture, next, observation, page, values};

conformance!(
    observations_are_all_or_nothing,
    observation_history_is_kept_and_cohort_inputs_use_the_latest,
    recording_the_latest_values_again_changes_nothing,
    validate_only_observations_store_nothing,
);

async fn observations_are_all_or_nothing(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let error = store
        .record_observations(&[observation("430102001", 2023, 5.0), observation("430102999", 2023, 1.0)], ACTOR, false)
        .await
        .unwrap_err();
    assert!(matches!(&error, StoreError::NotFound(m) if m.contains("430102999")), "{error}");
    assert!(store.list_observations(&code("430102001"), None, &page(10)).await.unwrap().items.is_empty());
    assert_eq!(store.cohort_job(&cohort(2023)).await.unwrap(), None);
    assert_eq!(store.latest_data_year(&city()).await.unwrap(), None);
    assert_eq!(store.next_due_at().await.unwrap(), None);
    assert!(store.record_observations(&[], ACTOR, false).await.unwrap().is_empty());
}

async fn observation_history_is_kept_and_cohort_inputs_use_the_latest(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let first = store.record_observations(&[observation("430102001", 2023, 5.0)], ACTOR, false).await.unwrap();
    let second = store
        .record_observations(&[observation("430102001", 2023, 6.5), observation("430102002", 2023, 3.0)], ACTOR, false)
        .await
        .unwrap();
    store.record_observations(&[observation("430102001", 2022, 4.0)], ACTOR, false).await.unwrap();
    assert_eq!(first[0].observation.recorded_by, ACTOR);
    assert_eq!(first[0].observation.values, values(5.0, 500.0, 20.0));

    let all = store.list_observations(&code("430102001"), Some(2023), &page(0)).await.unwrap();
    let populations: Vec<f64> = all.items.iter().map(|o| o.values.population).collect();
    assert_eq!(populations, [6.5, 5.0], "newest first, history kept");
    assert_eq!(all.items[1], first[0].observation);

    // Every year, paged one at a time.
    let one = store.list_observations(&code("430102001"), None, &page(1)).await.unwrap();
    assert_eq!(one.items[0].data_year, 2022);
    let two = store.list_observations(&code("430102001"), None, &next(1, &one.next)).await.unwrap();
    assert_eq!(two.items[0].values.population, 6.5);
    let three = store.list_observations(&code("430102001"), None, &next(1, &two.next)).await.unwrap();
    assert_eq!(three.items[0].values.population, 5.0);
    assert_eq!(three.next, None);

    let inputs = store.cohort_inputs(&cohort(2023)).await.unwrap();
    let summary: Vec<(&str, f64)> = inputs.iter().map(|(t, o)| (t.code.as_str(), o.values.population)).collect();
    assert_eq!(summary, [("430102001", 6.5), ("430102002", 3.0)]);
    assert_eq!(inputs[0].1, second[0].observation);
    assert_eq!(inputs[1].0.name, "朝阳街道");
    assert_eq!(store.latest_data_year(&city()).await.unwrap(), Some(2023));
    assert!(store.cohort_inputs(&cohort(2021)).await.unwrap().is_empty());
}

async fn recording_the_latest_values_again_changes_nothing(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let first = store.record_observations(&[observation("430102001", 2023, 5.0)], ACTOR, false).await.unwrap();
    let job = store.cohort_job(&cohort(2023)).await.unwrap().expect("the cohort is pending");
    let same = store.record_observations(&[observation("430102001", 2023, 5.0)], ACTOR, false).await.unwrap();
    assert!(same[0].unchanged);
    let after = store.cohort_job(&cohort(2023)).await.unwrap().unwrap();
    assert_eq!(after.generation, job.generation, "nothing to reclassify");

    let again = store
        .record_observations(&[observation("430102001", 2023, 5.0), observation("430102002", 2023, 3.0)], ACTOR, false)
        .await
        .unwrap();
    assert!(again[0].unchanged && !again[1].unchanged);
    assert_eq!(again[0].observation, first[0].observation, "the stored observation comes back");
    let history = store.list_observations(&code("430102001"), Some(2023), &page(0)).await.unwrap();
    assert_eq!(history.items.len(), 1, "no second history row for equal values");

    // A value that differs, or only another source, is a new observation; so is an older value again.
    let changed = store.record_observations(&[observation("430102001", 2023, 5.5)], ACTOR, false).await.unwrap();
    let sourced = NewObservation { source: "县统计局 2023 年报".into(), ..observation("430102001", 2023, 5.5) };
    let resourced = store.record_observations(&[sourced], ACTOR, false).await.unwrap();
    let back = store.record_observations(&[observation("430102001", 2023, 5.0)], ACTOR, false).await.unwrap();
    assert!(!changed[0].unchanged && !resourced[0].unchanged && !back[0].unchanged);
    let history = store.list_observations(&code("430102001"), Some(2023), &page(0)).await.unwrap();
    assert_eq!(history.items.len(), 4);
    assert!(store.cohort_job(&cohort(2023)).await.unwrap().unwrap().generation > job.generation);
}

async fn validate_only_observations_store_nothing(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let checked = store.record_observations(&[observation("430102001", 2023, 5.0)], ACTOR, true).await.unwrap();
    assert!(!checked[0].unchanged);
    assert!(store.list_observations(&code("430102001"), None, &page(10)).await.unwrap().items.is_empty());
    assert_eq!(store.cohort_job(&cohort(2023)).await.unwrap(), None, "no cohort marked pending");
    let missing = store.record_observations(&[observation("430102999", 2023, 1.0)], ACTOR, true).await.unwrap_err();
    assert!(matches!(&missing, StoreError::NotFound(m) if m.contains("430102999")), "{missing}");
}
