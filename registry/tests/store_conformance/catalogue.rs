//! Duty catalogues: templates, own items and the links they check (`CatalogueRepo`).

use township_registry::domain::catalogue::{
    CatalogueEntry, CatalogueItem, CatalogueItemType, CatalogueOwner, DutyArea, ItemDetails, NewCatalogueItem,
    PowerCategory, PowerOrigin, Resolution,
};
use township_registry::domain::model::{InstitutionKind, NewInstitution};
use township_registry::domain::names::township_name;
use township_registry::store::StoreError;

use crate::{ACTOR, TestDb, code, county, import_fixture, new_institution, own_item, page, template, whole_catalogue};

conformance!(
    catalogue_templates_are_inherited_extended_and_overridden,
    catalogue_items_check_their_institution_and_linked_power,
);

fn power_details() -> ItemDetails {
    ItemDetails::Power {
        category: PowerCategory::Penalty,
        legal_basis: "《中华人民共和国行政处罚法》".into(),
        origin: PowerOrigin::Devolved,
    }
}

fn responsibility_details(linked: Option<&str>) -> ItemDetails {
    ItemDetails::Responsibility {
        power_item_code: linked.map(Into::into),
        duties: "依法实施行政处罚".into(),
        accountability_cases: "不履行或者不正确履行职责的".into(),
    }
}

fn codes(entries: &[CatalogueEntry]) -> Vec<(&str, bool)> {
    entries.iter().map(|e| (e.item.code.as_str(), e.inherited)).collect()
}

async fn catalogue_templates_are_inherited_extended_and_overridden(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let county_owner = CatalogueOwner::County(county("430102"));
    let town = code("430102003"); // 东湖镇
    let town_owner = CatalogueOwner::Township(town.clone());
    let power = NewCatalogueItem {
        details: power_details(),
        ..template("430102", "T-01", DutyArea::PartyBuilding, "党政办公室")
    };
    let power = store.create_catalogue_item(&power, ACTOR).await.unwrap();
    assert_eq!((power.item_type(), power.responsible_institution_id), (CatalogueItemType::Power, None));
    assert_eq!(power.owner, county_owner);
    store
        .create_catalogue_item(&template("430102", "T-02", DutyArea::PublicService, "社会事务办公室"), ACTOR)
        .await
        .unwrap();
    store
        .create_catalogue_item(
            &template("430102", "T-03", DutyArea::MaintainPublicSafety, "社会治安和应急管理办公室"),
            ACTOR,
        )
        .await
        .unwrap();
    let linked = NewCatalogueItem {
        details: responsibility_details(Some("T-01")),
        ..template("430102", "T-04", DutyArea::PartyBuilding, "党政办公室")
    };
    store.create_catalogue_item(&linked, ACTOR).await.unwrap();
    let duplicate = template("430102", "T-01", DutyArea::PartyBuilding, "党政办公室");
    match store.create_catalogue_item(&duplicate, ACTOR).await.unwrap_err() {
        StoreError::AlreadyExists(message) => {
            assert!(
                message.contains("\"T-01\" of county 430102") && message.contains(&power.resource_name()),
                "{message}"
            )
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert!(matches!(
        store.create_catalogue_item(&template("430199", "T-01", DutyArea::PartyBuilding, "x"), ACTOR).await,
        Err(StoreError::NotFound(m)) if m.contains("430199")
    ));

    // The county's template: every area of both lists, in code order, two at a time; not resolved.
    let templates = whole_catalogue(store, &county_owner, None, 2).await;
    assert_eq!(codes(&templates), [("T-01", false), ("T-02", false), ("T-03", false), ("T-04", false)]);
    assert!(templates.iter().all(|e| e.resolution == Resolution::NotApplicable));
    assert_eq!(templates[0].item, power);
    let powers = whole_catalogue(store, &county_owner, Some(CatalogueItemType::Power), 10).await;
    assert_eq!(codes(&powers), [("T-01", false)]);

    // 东湖镇 inherits the template items of a town's areas, replaces T-02 and adds O-01.
    let office = store
        .create_institution(
            &new_institution("430102003", InstitutionKind::PartyGovernmentOffice, "党政办公室"),
            6,
            ACTOR,
        )
        .await
        .unwrap();
    let replacing = store
        .create_catalogue_item(&own_item("430102003", "T-02", DutyArea::PublicService, office.id), ACTOR)
        .await
        .unwrap();
    assert_eq!(replacing.responsible_institution_title, "党政办公室", "the institution's name is recorded");
    let extra = store
        .create_catalogue_item(&own_item("430102003", "O-01", DutyArea::TownManagement, office.id), ACTOR)
        .await
        .unwrap();
    let effective = whole_catalogue(store, &town_owner, None, 2).await;
    assert_eq!(codes(&effective), [("O-01", false), ("T-01", true), ("T-02", false), ("T-04", true)]);
    assert_eq!(effective[1].resolution, Resolution::Resolved(office.clone()), "the title resolves in the township");
    assert_eq!(
        (effective[2].item.clone(), effective[2].resolution.clone()),
        (replacing.clone(), Resolution::Resolved(office.clone()))
    );
    let services = whole_catalogue(store, &town_owner, Some(CatalogueItemType::PublicService), 1).await;
    assert_eq!(codes(&services), [("O-01", false), ("T-02", false)]);
    assert_eq!(store.get_catalogue_item(&town_owner, extra.id).await.unwrap(), extra);
    assert!(matches!(store.get_catalogue_item(&county_owner, extra.id).await, Err(StoreError::NotFound(_))));

    // A sub-district of the county inherits the sub-district areas; its title finds no institution.
    let street = whole_catalogue(store, &CatalogueOwner::Township(code("430102001")), None, 10).await;
    assert_eq!(codes(&street), [("T-01", true), ("T-03", true), ("T-04", true)]);
    assert!(street.iter().all(|e| e.resolution == Resolution::Unmatched));
    // Another county's township inherits nothing; codes are per owner.
    let other = CatalogueOwner::Township(code("430103002"));
    assert!(whole_catalogue(store, &other, None, 10).await.is_empty());
    let elsewhere = store
        .create_institution(
            &new_institution("430103002", InstitutionKind::PartyGovernmentOffice, "党政办公室"),
            6,
            ACTOR,
        )
        .await
        .unwrap();
    store
        .create_catalogue_item(&own_item("430103002", "O-01", DutyArea::TownManagement, elsewhere.id), ACTOR)
        .await
        .unwrap();
    assert!(matches!(
        store.list_catalogue_items(&CatalogueOwner::Township(code("430102999")), None, &page(10)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.list_catalogue_items(&CatalogueOwner::County(county("430199")), None, &page(10)).await,
        Err(StoreError::NotFound(_))
    ));

    // Deleting the replacing item brings the template item back.
    store.delete_catalogue_item(&town_owner, replacing.id, ACTOR).await.unwrap();
    let effective = whole_catalogue(store, &town_owner, None, 10).await;
    assert_eq!(codes(&effective), [("O-01", false), ("T-01", true), ("T-02", true), ("T-04", true)]);
    assert!(matches!(
        store.delete_catalogue_item(&town_owner, replacing.id, ACTOR).await,
        Err(StoreError::NotFound(_))
    ));

    let events = store.list_audit_events(&township_name(&town), &page(3)).await.unwrap();
    let summary: Vec<(&str, &str)> = events.items.iter().map(|e| (e.action.as_str(), e.resource.as_str())).collect();
    let (replacing_name, extra_name) = (replacing.resource_name(), extra.resource_name());
    assert_eq!(
        summary,
        [
            ("DeleteCatalogueItem", replacing_name.as_str()),
            ("CreateCatalogueItem", extra_name.as_str()),
            ("CreateCatalogueItem", replacing_name.as_str()),
        ]
    );
    let after: CatalogueItem = serde_json::from_str(events.items[1].after.as_deref().unwrap()).unwrap();
    assert_eq!(after, extra);
    let before: CatalogueItem = serde_json::from_str(events.items[0].before.as_deref().unwrap()).unwrap();
    assert_eq!((before, events.items[0].after.clone()), (replacing, None));
}

async fn catalogue_items_check_their_institution_and_linked_power(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let town = CatalogueOwner::Township(code("430102003"));
    let kind = InstitutionKind::PartyGovernmentOffice;
    let office = store.create_institution(&new_institution("430102003", kind, "党政办公室"), 6, ACTOR).await.unwrap();
    let ended =
        NewInstitution { valid_to: Some("2001-12-31".into()), ..new_institution("430102003", kind, "旧办公室") };
    let ended = store.create_institution(&ended, 6, ACTOR).await.unwrap();
    let neighbour =
        store.create_institution(&new_institution("430102002", kind, "党政办公室"), 6, ACTOR).await.unwrap();

    match store.create_catalogue_item(&own_item("430102003", "A-1", DutyArea::PartyBuilding, 9999), ACTOR).await {
        Err(StoreError::NotFound(message)) => assert!(
            message.contains("townships/430102003/institutions/9999") && message.contains("catalogue item A-1"),
            "{message}"
        ),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let foreign = own_item("430102003", "A-1", DutyArea::PartyBuilding, neighbour.id);
    assert!(matches!(store.create_catalogue_item(&foreign, ACTOR).await, Err(StoreError::NotFound(_))));
    match store.create_catalogue_item(&own_item("430102003", "A-1", DutyArea::PartyBuilding, ended.id), ACTOR).await {
        Err(StoreError::FailedPrecondition(message)) => assert!(
            message.contains("旧办公室") && message.contains("no longer in force") && message.contains("2001-12-31"),
            "{message}"
        ),
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }
    let unnamed = NewCatalogueItem {
        responsible_institution_id: None,
        ..own_item("430102003", "A-1", DutyArea::PartyBuilding, 0)
    };
    assert!(matches!(store.create_catalogue_item(&unnamed, ACTOR).await, Err(StoreError::FailedPrecondition(_))));

    // A responsibility links a power item of the township's catalogue: its own or its county's template.
    let dangling = NewCatalogueItem {
        details: responsibility_details(Some("QL-404")),
        ..own_item("430102003", "ZR-1", DutyArea::PartyBuilding, office.id)
    };
    match store.create_catalogue_item(&dangling, ACTOR).await {
        Err(StoreError::NotFound(message)) => {
            assert!(message.contains("\"QL-404\"") && message.contains("township 430102003"), "{message}")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let county_power = NewCatalogueItem {
        details: power_details(),
        ..template("430102", "QL-1", DutyArea::PartyBuilding, "党政办公室")
    };
    store.create_catalogue_item(&county_power, ACTOR).await.unwrap();
    let own_power = NewCatalogueItem {
        details: power_details(),
        ..own_item("430102003", "QL-2", DutyArea::PartyBuilding, office.id)
    };
    store.create_catalogue_item(&own_power, ACTOR).await.unwrap();
    for (code, linked) in [("ZR-1", "QL-1"), ("ZR-2", "QL-2")] {
        let item = NewCatalogueItem {
            details: responsibility_details(Some(linked)),
            ..own_item("430102003", code, DutyArea::PartyBuilding, office.id)
        };
        let created = store.create_catalogue_item(&item, ACTOR).await.unwrap();
        assert_eq!(created.details, responsibility_details(Some(linked)));
    }
    let standalone = NewCatalogueItem {
        details: responsibility_details(None),
        ..own_item("430102003", "ZR-3", DutyArea::PartyBuilding, office.id)
    };
    store.create_catalogue_item(&standalone, ACTOR).await.unwrap();
    // A template may link only the county's own power items.
    let template_link = NewCatalogueItem {
        details: responsibility_details(Some("QL-2")),
        ..template("430102", "ZR-9", DutyArea::PartyBuilding, "党政办公室")
    };
    assert!(matches!(store.create_catalogue_item(&template_link, ACTOR).await, Err(StoreError::NotFound(_))));

    let listed = whole_catalogue(store, &town, None, 10).await;
    assert_eq!(
        codes(&listed),
        [("QL-1", true), ("QL-2", false), ("ZR-1", false), ("ZR-2", false), ("ZR-3", false)],
        "refused items are not stored"
    );
    let responsibilities = whole_catalogue(store, &town, Some(CatalogueItemType::Responsibility), 10).await;
    assert_eq!(responsibilities.len(), 3);
}
