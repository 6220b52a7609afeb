//! Classes, overrides, class history and runs (`ClassRepo`).

use township_policy::Policy;
use township_registry::domain::model::{ChangeCause, ClassOverride};
use township_registry::domain::names::Scope;
use township_registry::store::StoreError;

use crate::{
    ACTOR, TestDb, city, classify, code, county, import_fixture, line, new_run, next, observation, page, values,
};

conformance!(runs_report_only_moved_classes, overrides_keep_the_computed_class);

async fn runs_report_only_moved_classes(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let first = classify(store, 2023, &[("430102001", 1), ("430102002", 2), ("430103001", 3)]).await;
    assert_eq!(first.changes.len(), 3, "a first classification is a change");
    assert!(first.changes.iter().all(|c| c.previous_class.is_none() && c.cause == ChangeCause::Classification));
    assert_eq!(first.changes[0].township_name, "文艺路街道");
    assert_eq!(first.changes[0].run_id, Some(first.run_id));

    let second = classify(store, 2023, &[("430102001", 1), ("430102002", 1), ("430103001", 3)]).await;
    assert_eq!(second.changes.len(), 1);
    let change = &second.changes[0];
    assert_eq!(
        (change.township.as_str(), change.previous_class, change.new_class, change.data_year),
        ("430102002", Some(2), 1, 2023)
    );

    let class = store.get_class(&code("430102002"), 2023).await.unwrap().unwrap();
    assert_eq!((class.computed_class, class.previous_class, class.run_id), (Some(1), Some(2), Some(second.run_id)));
    assert_eq!(class.effective_class(), Some(1));
    assert_eq!(class.indices, values(90.0, 90.0, 90.0));
    let steady = store.get_class(&code("430102001"), 2023).await.unwrap().unwrap();
    assert_eq!(
        (steady.computed_class, steady.previous_class),
        (Some(1), None),
        "never changed since its first class: nothing before the latest change"
    );
    assert_eq!(store.get_class(&code("430102003"), 2023).await.unwrap(), None);
    assert!(matches!(store.get_class(&code("430102999"), 2023).await, Err(StoreError::NotFound(_))));

    let history = store.class_history(&code("430102002"), &page(1)).await.unwrap();
    assert_eq!(history.items[0].new_class, 1, "newest first");
    let older = store.class_history(&code("430102002"), &next(1, &history.next)).await.unwrap();
    assert_eq!((older.items[0].previous_class, older.items[0].new_class), (None, 2));
    assert_eq!(older.next, None);

    let run = store.get_run(&city(), second.run_id).await.unwrap();
    assert_eq!((run.classes_changed, run.lines.len(), run.response.clone()), (1, 3, vec![1, 2, 3, 0, 255]));
    assert_eq!(run.lines[1], line("430102002", 1, 90.0));
    assert_eq!(run.policy_fingerprint, Policy::builtin_default().fingerprint());
    let runs = store.list_runs(&city(), &page(10)).await.unwrap();
    assert_eq!(runs.items.iter().map(|r| r.id).collect::<Vec<_>>(), [second.run_id, first.run_id]);
    assert!(runs.items.iter().all(|r| r.lines.is_empty() && r.response.is_empty()));
    assert_eq!(runs.items[1].classes_changed, 3);
    assert!(matches!(store.get_run(&city(), second.run_id + 100).await, Err(StoreError::NotFound(_))));

    let classes = store.list_classes(&Scope::City(city()), 2023, &page(2)).await.unwrap();
    assert_eq!(classes.items.iter().map(|c| c.township.as_str()).collect::<Vec<_>>(), ["430102001", "430102002"]);
    let rest = store.list_classes(&Scope::City(city()), 2023, &next(2, &classes.next)).await.unwrap();
    assert_eq!(rest.items.iter().map(|c| c.township.as_str()).collect::<Vec<_>>(), ["430103001"]);
    assert_eq!(rest.next, None);
    let county_classes = store.list_classes(&Scope::County(county("430103")), 2023, &page(0)).await.unwrap();
    assert_eq!(county_classes.items.len(), 1);

    // A run naming a township outside the city is refused, and stores nothing.
    store.record_observations(&[observation("430102001", 2023, 9.0)], ACTOR, false).await.unwrap();
    let job = store.claim_due_cohort("worker-1", 60_000).await.unwrap().unwrap();
    let bad = new_run(2023, job.generation, vec![line("430102001", 2, 50.0), line("430202001", 1, 99.0)]);
    assert!(
        matches!(store.complete_run(&bad, "worker-1").await, Err(StoreError::NotFound(m)) if m.contains("430202001"))
    );
    assert_eq!(store.get_class(&code("430102001"), 2023).await.unwrap().unwrap().computed_class, Some(1));
    assert_eq!(store.list_runs(&city(), &page(10)).await.unwrap().items.len(), 2);

    // A run that moves nothing keeps each class's previous class: the class before the latest change.
    let steady_run = new_run(
        2023,
        job.generation,
        vec![line("430102001", 1, 90.0), line("430102002", 1, 90.0), line("430103001", 3, 70.0)],
    );
    assert_eq!(store.complete_run(&steady_run, "worker-1").await.unwrap().changes, []);
    let class = store.get_class(&code("430102002"), 2023).await.unwrap().unwrap();
    assert_eq!((class.computed_class, class.previous_class), (Some(1), Some(2)), "not the previous run's class");
    assert_eq!(store.get_class(&code("430102001"), 2023).await.unwrap().unwrap().previous_class, None);
}

async fn overrides_keep_the_computed_class(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    classify(store, 2023, &[("430102001", 2), ("430102002", 3)]).await;
    let township = code("430102001");
    let class_override = ClassOverride {
        class: 1,
        reason: "县委决定".into(),
        document_number: "湘编〔2024〕7号".into(),
        set_by: ACTOR.into(),
        set_at: 1_700_000_000_000,
    };
    let (record, change) = store.set_override(&township, 2023, &class_override, ACTOR).await.unwrap();
    assert_eq!(record.computed_class, Some(2));
    assert_eq!(record.class_override.as_ref(), Some(&class_override));
    assert_eq!((record.effective_class(), record.previous_class), (Some(1), Some(2)));
    let change = change.expect("the effective class moved");
    assert_eq!((change.previous_class, change.new_class, change.cause), (Some(2), 1, ChangeCause::Override));
    assert_eq!(change.township_name, "文艺路街道");
    assert_eq!(store.get_class(&township, 2023).await.unwrap().unwrap(), record);

    // Setting the same class again moves nothing.
    let (_, again) = store.set_override(&township, 2023, &class_override, ACTOR).await.unwrap();
    assert_eq!(again, None);

    // A reclassification updates the computed class under the override.
    let run = classify(store, 2023, &[("430102001", 3), ("430102002", 3)]).await;
    assert_eq!(run.changes.len(), 1);
    let record = store.get_class(&township, 2023).await.unwrap().unwrap();
    assert_eq!((record.computed_class, record.effective_class()), (Some(3), Some(1)));

    let (cleared, change) = store.clear_override(&township, 2023, ACTOR).await.unwrap();
    assert_eq!((cleared.class_override.clone(), cleared.computed_class), (None, Some(3)));
    assert_eq!(cleared.previous_class, Some(1), "the override's class, before the latest change");
    let change = change.unwrap();
    assert_eq!((change.previous_class, change.new_class, change.cause), (Some(1), 3, ChangeCause::Override));
    assert_eq!(store.get_class(&township, 2023).await.unwrap().unwrap(), cleared);
    let (_, nothing) = store.clear_override(&township, 2023, ACTOR).await.unwrap();
    assert_eq!(nothing, None);

    let causes: Vec<ChangeCause> =
        store.class_history(&township, &page(0)).await.unwrap().items.iter().map(|c| c.cause).collect();
    use ChangeCause::{Classification, Override};
    assert_eq!(causes, [Override, Classification, Override, Classification]);

    // An override for a year without a classification creates the row, with no computed class.
    let (record, change) = store.set_override(&township, 2030, &class_override, ACTOR).await.unwrap();
    assert_eq!((record.computed_class, record.effective_class(), record.run_id), (None, Some(1), None));
    assert_eq!(change.unwrap().previous_class, None);
    let (cleared, change) = store.clear_override(&township, 2030, ACTOR).await.unwrap();
    assert_eq!((cleared.effective_class(), change), (None, None));
    assert_eq!(store.get_class(&township, 2030).await.unwrap(), None);
    assert!(matches!(store.clear_override(&township, 2031, ACTOR).await, Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.set_override(&code("430102999"), 2023, &class_override, ACTOR).await,
        Err(StoreError::NotFound(_))
    ));
}
