//! The facts of a scope's townships (`FactsRepo`).

use township_registry::domain::catalogue::{CatalogueOwner, DutyArea, Resolution};
use township_registry::domain::model::{InstitutionKind, NewPlaque};
use township_registry::domain::names::Scope;
use township_registry::store::StoreError;

use crate::{
    ACTOR, TestDb, city, classify, code, county, import_fixture, new_institution, new_post, own_item, template,
    whole_catalogue,
};

conformance!(township_facts_gather_the_scope, township_facts_resolve_the_effective_catalogue);

async fn township_facts_gather_the_scope(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    // 2022 covers the city, 2023 only one township: 2022 is the current year, whose classes are official.
    let all = ["430102001", "430102002", "430102003", "430103001", "430103002"];
    classify(store, 2022, &all.map(|t| (t, if t == "430102001" { 1 } else { 2 }))).await;
    classify(store, 2023, &[("430102001", 2)]).await;
    let office = store
        .create_institution(
            &new_institution("430102001", InstitutionKind::PartyGovernmentOffice, "党政办公室"),
            6,
            ACTOR,
        )
        .await
        .unwrap();
    let unit = store
        .create_institution(&new_institution("430102002", InstitutionKind::LawEnforcementUnit, "执法大队"), 1, ACTOR)
        .await
        .unwrap();
    let plaque =
        NewPlaque {
            institution_id: office.id, name: "退役军人服务站".into(), approving_document: String::new()
        };
    let plaque = store.create_plaque(&code("430102001"), &plaque, 3, ACTOR).await.unwrap();
    let post = store.create_post(&new_post("430102002", "党委书记", Some("张三")), 10, ACTOR).await.unwrap();

    let facts = store.township_facts(&Scope::County(county("430102"))).await.unwrap();
    assert_eq!(
        facts.iter().map(|f| f.township.code.as_str()).collect::<Vec<_>>(),
        ["430102001", "430102002", "430102003"]
    );
    let first = &facts[0];
    let class = first.class.as_ref().unwrap();
    assert_eq!((class.data_year, class.computed_class), (2022, Some(1)), "the current year, not its latest");
    assert_eq!((first.institutions.clone(), first.plaques.clone(), first.posts.len()), (vec![office], vec![plaque], 0));
    let second = &facts[1];
    let class = second.class.as_ref().unwrap();
    assert_eq!((class.data_year, class.computed_class), (2022, Some(2)), "the current year");
    assert_eq!((second.institutions.clone(), second.plaques.len(), second.posts.clone()), (vec![unit], 0, vec![post]));
    let third = &facts[2];
    assert_eq!(third.class.as_ref().map(|c| c.data_year), Some(2022));
    assert!(third.institutions.is_empty() && third.plaques.is_empty() && third.posts.is_empty());

    assert_eq!(store.township_facts(&Scope::City(city())).await.unwrap().len(), 5);
    let one = store.township_facts(&Scope::Township(code("430102002"))).await.unwrap();
    assert_eq!(one, facts[1..2]);
    assert!(matches!(store.township_facts(&Scope::County(county("430199"))).await, Err(StoreError::NotFound(_))));
}

async fn township_facts_resolve_the_effective_catalogue(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let kind = InstitutionKind::PartyGovernmentOffice;
    let office = store.create_institution(&new_institution("430102003", kind, "党政办公室"), 6, ACTOR).await.unwrap();
    let social = store
        .create_institution(&new_institution("430102003", kind, "社会事务办公室(卫生健康办公室)"), 6, ACTOR)
        .await
        .unwrap();
    let doomed = store.create_institution(&new_institution("430102003", kind, "临时办公室"), 6, ACTOR).await.unwrap();
    store
        .create_catalogue_item(&template("430102", "T-01", DutyArea::PartyBuilding, "党政办公室"), ACTOR)
        .await
        .unwrap();
    store
        .create_catalogue_item(&template("430102", "T-02", DutyArea::PublicService, "社会事务办公室"), ACTOR)
        .await
        .unwrap();
    store
        .create_catalogue_item(&template("430102", "T-05", DutyArea::TownManagement, "城镇管理办公室"), ACTOR)
        .await
        .unwrap();
    store
        .create_catalogue_item(&template("430102", "T-06", DutyArea::GuideGrassrootsAutonomy, "党政办公室"), ACTOR)
        .await
        .unwrap();
    store
        .create_catalogue_item(&own_item("430102003", "O-01", DutyArea::SocialGovernance, doomed.id), ACTOR)
        .await
        .unwrap();
    store.delete_institution(&code("430102003"), doomed.id, ACTOR).await.unwrap();

    let facts = store.township_facts(&Scope::County(county("430102"))).await.unwrap();
    let town = facts.iter().find(|f| f.township.code == code("430102003")).unwrap();
    let summary: Vec<(&str, bool, &Resolution)> =
        town.catalogue.iter().map(|e| (e.item.code.as_str(), e.inherited, &e.resolution)).collect();
    assert_eq!(
        summary,
        [
            ("O-01", false, &Resolution::Deleted { institution_id: doomed.id }),
            ("T-01", true, &Resolution::Resolved(office)),
            ("T-02", true, &Resolution::Resolved(social)),
            ("T-05", true, &Resolution::Unmatched),
        ]
    );
    // The facts' catalogue is the township's listing.
    let listed = whole_catalogue(store, &CatalogueOwner::Township(code("430102003")), None, 2).await;
    assert_eq!(town.catalogue, listed);
    let street = facts.iter().find(|f| f.township.code == code("430102001")).unwrap();
    assert_eq!(street.catalogue.iter().map(|e| e.item.code.as_str()).collect::<Vec<_>>(), ["T-01", "T-06"]);
    let elsewhere = store.township_facts(&Scope::Township(code("430103002"))).await.unwrap();
    assert!(elsewhere[0].catalogue.is_empty());
    let one = store.township_facts(&Scope::Township(code("430102003"))).await.unwrap();
    assert_eq!(&one[0], town);
}
