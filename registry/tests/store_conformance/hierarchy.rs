//! The hierarchy: division imports, cities, counties and townships (`HierarchyRepo`).

use township_registry::domain::model::{Township, TownshipKind};
use township_registry::domain::names::{CityCode, Scope};
use township_registry::store::{DivisionTownship, StoreError};

use crate::{ACTOR, TestDb, city, code, county, import_fixture, next, page};

conformance!(import_and_hierarchy_pagination, township_create_and_update_with_revisions);

async fn import_and_hierarchy_pagination(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;

    let cities = store.list_cities(&page(0)).await.unwrap();
    assert_eq!(cities.items.len(), 1);
    assert_eq!(cities.next, None);
    assert_eq!(store.get_city(&city()).await.unwrap().name, "长沙市");

    let first = store.list_counties(&city(), &page(1)).await.unwrap();
    assert_eq!(first.items.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(), ["430102"]);
    let second = store.list_counties(&city(), &next(1, &first.next)).await.unwrap();
    assert_eq!(second.items.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(), ["430103"]);
    assert_eq!(second.next, None);
    assert_eq!(store.get_county(&county("430103")).await.unwrap().name, "天心区");

    // The city's townships, two at a time, in code order.
    let mut seen = Vec::new();
    let mut request = page(2);
    loop {
        let townships = store.list_townships(&Scope::City(city()), &request).await.unwrap();
        assert!(townships.items.len() <= 2);
        seen.extend(townships.items.iter().map(|t| t.code.to_string()));
        match townships.next {
            Some(_) => request = next(2, &townships.next),
            None => break,
        }
    }
    assert_eq!(seen, ["430102001", "430102002", "430102003", "430103001", "430103002"]);
    let in_county = store.list_townships(&Scope::County(county("430103")), &page(10)).await.unwrap();
    assert_eq!(in_county.items.iter().map(|t| t.code.as_str()).collect::<Vec<_>>(), ["430103001", "430103002"]);
    assert_eq!(in_county.next, None);

    let township = store.get_township(&code("430102003")).await.unwrap();
    assert_eq!((township.name.as_str(), township.kind, township.revision), ("东湖镇", TownshipKind::Town, 1));
    assert_eq!(store.get_township(&code("430103002")).await.unwrap().kind, TownshipKind::Township);

    // Unknown parents.
    assert!(matches!(
        store.list_counties(&CityCode::parse("9999").unwrap(), &page(10)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.list_townships(&Scope::County(county("430199")), &page(10)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(store.get_township(&code("430102999")).await, Err(StoreError::NotFound(_))));

    // Re-importing the same rows changes nothing; a renamed township gets a new revision.
    let renamed =
        [DivisionTownship { code: code("430102003"), name: "东湖街道".into(), kind: TownshipKind::Subdistrict }];
    let unchanged =
        [DivisionTownship { code: code("430102002"), name: "朝阳街道".into(), kind: TownshipKind::Subdistrict }];
    store.import_divisions(&[], &[], &renamed, ACTOR).await.unwrap();
    store.import_divisions(&[], &[], &unchanged, ACTOR).await.unwrap();
    let township = store.get_township(&code("430102003")).await.unwrap();
    assert_eq!((township.name.as_str(), township.kind, township.revision), ("东湖街道", TownshipKind::Subdistrict, 2));
    assert_eq!(store.get_township(&code("430102002")).await.unwrap().revision, 1);

    // All or nothing: a township whose county is unknown fails the whole import.
    let bad = [
        DivisionTownship { code: code("430102004"), name: "新镇".into(), kind: TownshipKind::Town },
        DivisionTownship { code: code("430104001"), name: "无县镇".into(), kind: TownshipKind::Town },
    ];
    let error = store.import_divisions(&[], &[], &bad, ACTOR).await.unwrap_err();
    assert!(matches!(&error, StoreError::NotFound(m) if m.contains("430104")), "{error}");
    assert!(matches!(store.get_township(&code("430102004")).await, Err(StoreError::NotFound(_))));
}

async fn township_create_and_update_with_revisions(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = Township {
        code: code("430102099"),
        name: "新区街道".into(),
        kind: TownshipKind::Subdistrict,
        flags: vec!["pilot".into()],
        valid_from: Some("2024-01-01".into()),
        valid_to: None,
        revision: 0,
        updated_at: 0,
    };
    let created = store.create_township(&township, ACTOR).await.unwrap();
    assert_eq!(created.revision, 1);
    assert_eq!(store.get_township(&township.code).await.unwrap(), created);
    assert!(matches!(store.create_township(&township, ACTOR).await, Err(StoreError::AlreadyExists(_))));
    let orphan = Township { code: code("430199001"), ..township.clone() };
    assert!(
        matches!(store.create_township(&orphan, ACTOR).await, Err(StoreError::NotFound(m)) if m.contains("430199"))
    );

    let change = Township { name: "新区街道(更名)".into(), flags: vec![], ..created.clone() };
    let updated = store.update_township(&change, 1, ACTOR).await.unwrap();
    assert_eq!((updated.revision, updated.name.as_str()), (2, "新区街道(更名)"));
    assert_eq!(store.get_township(&township.code).await.unwrap(), updated);

    let error = store.update_township(&change, 1, ACTOR).await.unwrap_err();
    match error {
        StoreError::Conflict(message) => {
            assert!(message.contains("expected revision 1"), "{message}");
            assert!(message.contains("stored revision 2"), "{message}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.get_township(&township.code).await.unwrap().revision, 2);
    let missing = Township { code: code("430102098"), ..change };
    assert!(matches!(store.update_township(&missing, 1, ACTOR).await, Err(StoreError::NotFound(_))));
}
