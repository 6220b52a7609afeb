//! Batch and retry-safe creates (`CreateRepo`).

use township_registry::domain::model::InstitutionKind;
use township_registry::domain::names::township_name;
use township_registry::store::{Create, Created, CreatedRecord, NewRecord, RequestKey, StoreError};

use crate::{ACTOR, TestDb, code, import_fixture, new_institution, new_post, observation, page};

conformance!(
    batch_creates_are_all_or_nothing_and_name_the_failing_record,
    a_retried_create_with_its_request_id_makes_one_record,
    a_request_id_names_one_request_only,
);

async fn batch_creates_are_all_or_nothing_and_name_the_failing_record(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let audit_events = || async { store.list_audit_events("cities/4301", &page(1000)).await.unwrap().items.len() };
    let audit_before = audit_events().await;
    let kind = InstitutionKind::PartyGovernmentOffice;
    let office = |township: &str, name: &str| NewRecord::Institution {
        institution: new_institution(township, kind, name),
        max_of_kind: 2,
    };
    let post = NewRecord::Post { post: new_post("430102002", "党委书记", Some("张三")), quota: 9 };
    // The third office of 430102001 breaks the limit of 2, counting the batch's own earlier records.
    let batch = [
        office("430102001", "党政办公室"),
        post.clone(),
        office("430102001", "经济发展办公室"),
        office("430102001", "社会事务办公室"),
    ];
    match store.batch_create(&batch, ACTOR, false).await.unwrap_err() {
        StoreError::LimitExceeded(message) => {
            assert!(message.starts_with("requests[3]: township 430102001 already has 2"), "{message}");
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    let nothing_kept = |township: &'static str| async move {
        store.list_institutions(&code(township), &page(10)).await.unwrap().items.len()
            + store.list_posts(&code(township), &page(10)).await.unwrap().items.len()
    };
    assert_eq!(nothing_kept("430102001").await + nothing_kept("430102002").await, 0);

    // validate_only answers what would be created and keeps nothing, not even an audit event.
    let valid = &batch[..3];
    let preview = store.batch_create(valid, ACTOR, true).await.unwrap();
    assert_eq!(preview.len(), 3);
    assert_eq!(nothing_kept("430102001").await + nothing_kept("430102002").await, 0);
    assert_eq!(audit_events().await, audit_before);

    let created = store.batch_create(valid, ACTOR, false).await.unwrap();
    let names: Vec<_> = created
        .iter()
        .map(|record| match record {
            CreatedRecord::Institution(institution) => institution.name.clone(),
            CreatedRecord::Post(post) => post.role.clone(),
            CreatedRecord::CatalogueItem(item) => item.code.clone(),
            CreatedRecord::StaffingApproval(approval) => approval.approval.document_number.clone(),
            CreatedRecord::StaffingHeadcount(headcount) => headcount.staffing_type.as_str().to_owned(),
        })
        .collect();
    assert_eq!(names, ["党政办公室", "党委书记", "经济发展办公室"]);
    assert_eq!((nothing_kept("430102001").await, nothing_kept("430102002").await), (2, 1));
    // Each office's staffing quota is audited as its first staffing approval.
    assert_eq!(audit_events().await, audit_before + 3 + 2);
}

fn key(request_id: &str, method: &str, fingerprint: &str) -> RequestKey {
    RequestKey { request_id: request_id.into(), method: method.into(), fingerprint: fingerprint.into() }
}

async fn a_retried_create_with_its_request_id_makes_one_record(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430102003");
    let create = Create::Institution {
        institution: new_institution("430102003", InstitutionKind::PublicInstitution, "农业综合服务中心"),
        max_of_kind: 5,
    };
    let first_key = key("3f2c9a", "CreateInstitution", "fp-1");
    let (first, replayed) = store.create_once(Some(&first_key), &create, ACTOR).await.unwrap();
    assert!(!replayed);
    // The reply was lost; the client retries the same request with the same id.
    let (again, replayed) = store.create_once(Some(&first_key), &create, ACTOR).await.unwrap();
    assert!(replayed);
    assert_eq!(again, first);
    assert_eq!(store.list_institutions(&township, &page(10)).await.unwrap().items.len(), 1);
    let events = store.list_audit_events(&township_name(&township), &page(0)).await.unwrap();
    assert_eq!(events.items.iter().filter(|e| e.action == "CreateInstitution").count(), 1);

    // Without a request id every create is a new one.
    store.create_once(None, &create, ACTOR).await.unwrap();
    assert_eq!(store.list_institutions(&township, &page(10)).await.unwrap().items.len(), 2);

    // A batch is remembered whole; so are observations, which are due for classification once.
    let batch = Create::Batch(vec![NewRecord::Post { post: new_post("430102003", "党委书记", None), quota: 9 }]);
    let batch_key = key("batch-1", "BatchCreateLeadershipPosts", "fp-2");
    let (made, _) = store.create_once(Some(&batch_key), &batch, ACTOR).await.unwrap();
    let (replay, replayed) = store.create_once(Some(&batch_key), &batch, ACTOR).await.unwrap();
    assert!(replayed && replay == made);
    assert_eq!(store.list_posts(&township, &page(10)).await.unwrap().items.len(), 1);
    let observations = Create::Observations(vec![observation("430102003", 2024, 5.0)]);
    let observations_key = key("obs-1", "RecordIndicators", "fp-3");
    store.create_once(Some(&observations_key), &observations, ACTOR).await.unwrap();
    let (replay, replayed) = store.create_once(Some(&observations_key), &observations, ACTOR).await.unwrap();
    assert!(replayed);
    let Created::Observations(recorded) = replay else { panic!("expected observations, got {replay:?}") };
    assert!(!recorded[0].unchanged, "the replay answers what the first call answered");
    assert_eq!(store.list_observations(&township, Some(2024), &page(10)).await.unwrap().items.len(), 1);
}

async fn a_request_id_names_one_request_only(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430102003");
    let post = |role: &str| Create::Post { post: new_post("430102003", role, None), quota: 9 };
    store.create_once(Some(&key("r-1", "CreateLeadershipPost", "fp-a")), &post("党委书记"), ACTOR).await.unwrap();
    // The same id with another request, or for another method, is refused and creates nothing.
    for other in [key("r-1", "CreateLeadershipPost", "fp-b"), key("r-1", "CreateInstitution", "fp-a")] {
        match store.create_once(Some(&other), &post("镇长"), ACTOR).await {
            Err(StoreError::AlreadyExists(message)) => assert!(message.contains("r-1"), "{message}"),
            result => panic!("expected AlreadyExists, got {result:?}"),
        }
    }
    assert_eq!(store.list_posts(&township, &page(10)).await.unwrap().items.len(), 1);
    // A refused create remembers nothing: once the cause is fixed, the same id makes the record.
    let over_quota = Create::Post { post: new_post("430102003", "镇长", None), quota: 1 };
    let retry_key = key("r-2", "CreateLeadershipPost", "fp-c");
    assert!(matches!(store.create_once(Some(&retry_key), &over_quota, ACTOR).await, Err(StoreError::LimitExceeded(_))));
    let (_, replayed) = store.create_once(Some(&retry_key), &post("镇长"), ACTOR).await.unwrap();
    assert!(!replayed);
    assert_eq!(store.list_posts(&township, &page(10)).await.unwrap().items.len(), 2);
}
