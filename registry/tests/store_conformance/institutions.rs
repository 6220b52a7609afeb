//! Institutions and plaques: limits, deletes and updates (`InstitutionRepo`).

use township_registry::domain::catalogue::{CatalogueItem, CatalogueOwner, DutyArea};
use township_registry::domain::model::{Institution, InstitutionKind, NewInstitution, NewPlaque, Plaque};
use township_registry::domain::names::township_name;
use township_registry::store::StoreError;

use crate::{ACTOR, TestDb, code, import_fixture, new_institution, next, own_item, page, whole_catalogue};

conformance!(
    plaque_limit_names_existing_plaques,
    office_limit_counts_active_institutions_of_the_kind,
    deleting_an_institution_deletes_its_plaques,
    concurrent_creates_respect_the_limit,
    institution_updates_check_the_revision_and_end_without_orphaning,
    plaque_and_catalogue_item_updates_check_the_revision,
    plaques_hang_only_on_offices_and_public_institutions_in_force,
    an_institution_brought_back_into_force_brings_its_plaques_under_the_limit,
);

async fn plaque_limit_names_existing_plaques(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430102001");
    let office = store
        .create_institution(
            &new_institution("430102001", InstitutionKind::PartyGovernmentOffice, "党政办公室"),
            6,
            ACTOR,
        )
        .await
        .unwrap();
    for name in ["退役军人服务站", "人大工作室", "政协联络组"] {
        let plaque = NewPlaque { institution_id: office.id, name: name.into(), approving_document: "文件".into() };
        let created = store.create_plaque(&township, &plaque, 3, ACTOR).await.unwrap();
        assert_eq!((created.township.clone(), created.institution_id), (township.clone(), office.id));
    }
    let fourth =
        NewPlaque { institution_id: office.id, name: "第四块牌子".into(), approving_document: String::new() };
    match store.create_plaque(&township, &fourth, 3, ACTOR).await.unwrap_err() {
        StoreError::LimitExceeded(message) => {
            assert_eq!(
                message,
                "township 430102001 already has 3 plaques (退役军人服务站, 人大工作室, 政协联络组); the policy allows \
                 at most 3"
            );
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    let plaques = store.list_plaques(&township, None, &page(2)).await.unwrap();
    assert_eq!(plaques.items.len(), 2);
    let rest = store.list_plaques(&township, Some(office.id), &next(2, &plaques.next)).await.unwrap();
    assert_eq!((rest.items.len(), rest.next.clone()), (1, None));

    // An institution of another township is not found through this one.
    let other = code("430102002");
    assert!(matches!(store.create_plaque(&other, &fourth, 3, ACTOR).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.list_plaques(&other, Some(office.id), &page(10)).await, Err(StoreError::NotFound(_))));

    // Removing one makes room.
    let first = &plaques.items[0];
    assert!(matches!(
        store.delete_plaque(&township, office.id, first.id + 1000, ACTOR).await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_plaque(&township, office.id, first.id, ACTOR).await.unwrap();
    store.create_plaque(&township, &fourth, 3, ACTOR).await.unwrap();
}

async fn office_limit_counts_active_institutions_of_the_kind(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let kind = InstitutionKind::PartyGovernmentOffice;
    let ended =
        NewInstitution { valid_to: Some("2001-12-31".into()), ..new_institution("430102001", kind, "旧办公室") };
    store.create_institution(&ended, 2, ACTOR).await.unwrap();
    store.create_institution(&new_institution("430102001", kind, "党政办公室"), 2, ACTOR).await.unwrap();
    store.create_institution(&new_institution("430102001", kind, "经济发展办公室"), 2, ACTOR).await.unwrap();
    match store.create_institution(&new_institution("430102001", kind, "第三个办公室"), 2, ACTOR).await.unwrap_err()
    {
        StoreError::LimitExceeded(message) => {
            assert!(message.contains("township 430102001 already has 2"), "{message}");
            assert!(message.contains("党政办公室, 经济发展办公室"), "{message}");
            assert!(message.contains("at most 2"), "{message}");
            assert!(!message.contains("旧办公室"), "{message}");
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    // Other kinds and other townships have their own counts.
    let unit = new_institution("430102001", InstitutionKind::LawEnforcementUnit, "综合行政执法大队");
    let created = store.create_institution(&unit, 1, ACTOR).await.unwrap();
    assert_eq!(store.get_institution(&code("430102001"), created.id).await.unwrap(), created);
    store.create_institution(&new_institution("430102002", kind, "党政办公室"), 2, ACTOR).await.unwrap();
    assert!(matches!(
        store.create_institution(&new_institution("430102999", kind, "x"), 2, ACTOR).await,
        Err(StoreError::NotFound(_))
    ));
    let listed = store.list_institutions(&code("430102001"), &page(3)).await.unwrap();
    assert_eq!(listed.items.len(), 3);
    let rest = store.list_institutions(&code("430102001"), &next(3, &listed.next)).await.unwrap();
    assert_eq!((rest.items.len(), rest.next.clone()), (1, None));
    assert!(matches!(store.get_institution(&code("430102002"), created.id).await, Err(StoreError::NotFound(_))));
}

async fn deleting_an_institution_deletes_its_plaques(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430102003");
    let kind = InstitutionKind::PublicInstitution;
    let centre =
        store.create_institution(&new_institution("430102003", kind, "综合便民服务中心"), 5, ACTOR).await.unwrap();
    let other =
        store.create_institution(&new_institution("430102003", kind, "农业综合服务中心"), 5, ACTOR).await.unwrap();
    for (institution, name) in [(centre.id, "政务服务中心"), (centre.id, "退役军人服务站"), (other.id, "林业站")]
    {
        let plaque = NewPlaque { institution_id: institution, name: name.into(), approving_document: String::new() };
        store.create_plaque(&township, &plaque, 3, ACTOR).await.unwrap();
    }
    store.delete_institution(&township, centre.id, ACTOR).await.unwrap();
    assert!(matches!(store.get_institution(&township, centre.id).await, Err(StoreError::NotFound(_))));
    let left = store.list_plaques(&township, None, &page(10)).await.unwrap();
    assert_eq!(left.items.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["林业站"]);
    assert!(matches!(store.list_plaques(&township, Some(centre.id), &page(10)).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_institution(&township, centre.id, ACTOR).await, Err(StoreError::NotFound(_))));
    // The freed places count again.
    let plaque = NewPlaque { institution_id: other.id, name: "水利站".into(), approving_document: String::new() };
    store.create_plaque(&township, &plaque, 3, ACTOR).await.unwrap();
    let events = store.list_audit_events(&township_name(&township), &page(0)).await.unwrap();
    let actions: Vec<&str> = events.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(&actions[..4], ["CreatePlaque", "DeleteInstitution", "DeletePlaque", "DeletePlaque"]);
}

async fn concurrent_creates_respect_the_limit(db: TestDb) {
    let store = db.store.clone();
    import_fixture(&*store).await;
    let township = code("430102001");
    let office = store
        .create_institution(
            &new_institution("430102001", InstitutionKind::PartyGovernmentOffice, "党政办公室"),
            6,
            ACTOR,
        )
        .await
        .unwrap();
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        let township = township.clone();
        tokio::spawn(async move {
            let plaque =
                NewPlaque { institution_id: office.id, name: format!("牌子{i}"), approving_document: String::new() };
            store.create_plaque(&township, &plaque, 3, ACTOR).await
        })
    });
    let mut created = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::LimitExceeded(_)) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(created, 3);
    assert_eq!(store.list_plaques(&township, None, &page(10)).await.unwrap().items.len(), 3);
}

async fn institution_updates_check_the_revision_and_end_without_orphaning(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430102003");
    let kind = InstitutionKind::PartyGovernmentOffice;
    let office = store.create_institution(&new_institution("430102003", kind, "党政办公室"), 6, ACTOR).await.unwrap();
    let renamed = Institution { name: "党政综合办公室".into(), staffing_quota: 7, ..office.clone() };
    let updated = store.update_institution(&renamed, office.revision, 6, 3, ACTOR).await.unwrap();
    // The staffing quota is the ledger's sum (StaffingRepo): an update leaves it.
    assert_eq!((updated.name.as_str(), updated.staffing_quota, updated.revision), ("党政综合办公室", 5, 2));
    assert_eq!(store.get_institution(&township, office.id).await.unwrap(), updated);
    // A writer holding the first revision is told the record moved on, and changes nothing.
    match store.update_institution(&renamed, office.revision, 6, 3, ACTOR).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }

    // Ending it while a catalogue item names it would orphan the item: refused, naming the item.
    store
        .create_catalogue_item(&own_item("430102003", "GG-1", DutyArea::PartyBuilding, office.id), ACTOR)
        .await
        .unwrap();
    let ended = Institution { valid_to: Some("2025-06-30".into()), ..updated.clone() };
    match store.update_institution(&ended, updated.revision, 6, 3, ACTOR).await {
        Err(StoreError::FailedPrecondition(message)) => assert!(message.contains("GG-1"), "{message}"),
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }
    let item = whole_catalogue(store, &CatalogueOwner::Township(township.clone()), None, 10).await;
    store.delete_catalogue_item(&item[0].item.owner, item[0].item.id, ACTOR).await.unwrap();
    let ended = store.update_institution(&ended, updated.revision, 6, 3, ACTOR).await.unwrap();
    assert_eq!(ended.valid_to.as_deref(), Some("2025-06-30"));

    // Bringing it back into force counts against the limit of its kind again.
    let second = store.create_institution(&new_institution("430102003", kind, "党建办公室"), 1, ACTOR).await.unwrap();
    assert_eq!(second.revision, 1);
    let revived = Institution { valid_to: None, ..ended.clone() };
    assert!(matches!(
        store.update_institution(&revived, ended.revision, 1, 3, ACTOR).await,
        Err(StoreError::LimitExceeded(_))
    ));
    store.update_institution(&revived, ended.revision, 2, 3, ACTOR).await.unwrap();
    let events = store.list_audit_events(&township_name(&township), &page(0)).await.unwrap();
    assert_eq!(events.items.iter().filter(|e| e.action == "UpdateInstitution").count(), 3);
}

async fn plaque_and_catalogue_item_updates_check_the_revision(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430102003");
    let centre = store
        .create_institution(&new_institution("430102003", InstitutionKind::PublicInstitution, "便民服务中心"), 5, ACTOR)
        .await
        .unwrap();
    let new = NewPlaque {
        institution_id: centre.id, name: "退役军人服务站".into(), approving_document: String::new()
    };
    let plaque = store.create_plaque(&township, &new, 3, ACTOR).await.unwrap();
    assert_eq!(store.get_plaque(&township, centre.id, plaque.id).await.unwrap(), plaque);
    let documented = Plaque { approving_document: "编委〔2024〕7号".into(), ..plaque.clone() };
    let updated = store.update_plaque(&documented, plaque.revision, ACTOR).await.unwrap();
    assert_eq!((updated.approving_document.as_str(), updated.revision), ("编委〔2024〕7号", 2));
    assert!(matches!(store.update_plaque(&documented, plaque.revision, ACTOR).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.get_plaque(&township, centre.id, plaque.id + 100).await, Err(StoreError::NotFound(_))));

    let item = store
        .create_catalogue_item(&own_item("430102003", "GG-1", DutyArea::PartyBuilding, centre.id), ACTOR)
        .await
        .unwrap();
    let retitled = CatalogueItem { title: "便民服务事项".into(), ..item.clone() };
    let updated = store.update_catalogue_item(&retitled, item.revision, ACTOR).await.unwrap();
    assert_eq!((updated.title.as_str(), updated.revision), ("便民服务事项", 2));
    assert!(matches!(store.update_catalogue_item(&retitled, item.revision, ACTOR).await, Err(StoreError::Conflict(_))));
    // An update names its responsible institution under the create's rules: it must exist in the township.
    let dangling = CatalogueItem { responsible_institution_id: Some(9999), ..updated.clone() };
    assert!(matches!(
        store.update_catalogue_item(&dangling, updated.revision, ACTOR).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn plaques_hang_only_on_offices_and_public_institutions_in_force(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430102003");
    let plaque = |institution_id: i64, name: &str| NewPlaque {
        institution_id,
        name: name.into(),
        approving_document: "编委〔2024〕2号".into(),
    };
    let brigade = store
        .create_institution(
            &new_institution("430102003", InstitutionKind::LawEnforcementUnit, "综合行政执法大队"),
            1,
            ACTOR,
        )
        .await
        .unwrap();
    match store.create_plaque(&township, &plaque(brigade.id, "执法中队"), 3, ACTOR).await {
        Err(StoreError::FailedPrecondition(message)) => assert!(message.contains("综合行政执法大队"), "{message}"),
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }
    let kind = InstitutionKind::PublicInstitution;
    let ended = NewInstitution { valid_to: Some("2001-12-31".into()), ..new_institution("430102003", kind, "旧站") };
    let ended = store.create_institution(&ended, 5, ACTOR).await.unwrap();
    match store.create_plaque(&township, &plaque(ended.id, "旧牌子"), 3, ACTOR).await {
        Err(StoreError::FailedPrecondition(message)) => assert!(message.contains("no longer in force"), "{message}"),
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }

    // Three plaques, then their institution ends: they are history, and three new ones may hang elsewhere.
    let centre = store.create_institution(&new_institution("430102003", kind, "便民服务中心"), 5, ACTOR).await.unwrap();
    for name in ["牌子一", "牌子二", "牌子三"] {
        store.create_plaque(&township, &plaque(centre.id, name), 3, ACTOR).await.unwrap();
    }
    let office = store
        .create_institution(
            &new_institution("430102003", InstitutionKind::PartyGovernmentOffice, "党政办公室"),
            6,
            ACTOR,
        )
        .await
        .unwrap();
    assert!(matches!(
        store.create_plaque(&township, &plaque(office.id, "牌子四"), 3, ACTOR).await,
        Err(StoreError::LimitExceeded(_))
    ));
    let centre = store.get_institution(&township, centre.id).await.unwrap();
    let ending = Institution { valid_to: Some("2002-06-30".into()), ..centre.clone() };
    store.update_institution(&ending, centre.revision, 5, 3, ACTOR).await.unwrap();
    store.create_plaque(&township, &plaque(office.id, "牌子四"), 3, ACTOR).await.unwrap();
}

async fn an_institution_brought_back_into_force_brings_its_plaques_under_the_limit(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430102003");
    let kind = InstitutionKind::PartyGovernmentOffice;
    let old = store.create_institution(&new_institution("430102003", kind, "旧办公室"), 6, ACTOR).await.unwrap();
    let plaque = |institution_id, name: &str| NewPlaque {
        institution_id,
        name: name.into(),
        approving_document: "X政发〔2024〕1号".into(),
    };
    store.create_plaque(&township, &plaque(old.id, "旧牌子"), 3, ACTOR).await.unwrap();
    let ended = Institution { valid_to: Some("2020-12-31".into()), ..old.clone() };
    let ended = store.update_institution(&ended, old.revision, 6, 3, ACTOR).await.unwrap();
    // Its plaque no longer counts: three more fit on a new office.
    let new = store.create_institution(&new_institution("430102003", kind, "党政办公室"), 6, ACTOR).await.unwrap();
    for name in ["一", "二", "三"] {
        store.create_plaque(&township, &plaque(new.id, name), 3, ACTOR).await.unwrap();
    }
    // Reviving the old office would hang a fourth: refused, naming the limit.
    let revived = Institution { valid_to: None, ..ended.clone() };
    match store.update_institution(&revived, ended.revision, 6, 3, ACTOR).await {
        Err(StoreError::LimitExceeded(message)) => {
            assert!(message.contains("at most 3 plaques"), "{message}");
            assert!(message.contains("cannot come back into force"), "{message}");
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    // With room for it (a township deviation's figure of 4, say), it comes back.
    store.update_institution(&revived, ended.revision, 6, 4, ACTOR).await.unwrap();
}
