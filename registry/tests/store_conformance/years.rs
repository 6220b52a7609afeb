//! Data years, adoptions and the current year (`YearRepo`), and the official class every consumer takes from
//! them: the write-time limits and compliance agree through a partial year and switch together on adoption.

use township_policy::Policy;
use township_registry::domain::names::{CityCode, Scope, TownshipCode};
use township_registry::domain::rules;
use township_registry::domain::years::{NewYearAdoption, YearState, current_year};
use township_registry::limits::{TownshipLimits, official_class};
use township_registry::store::{Store, StoreError};

use crate::{ACTOR, TestDb, city, classify, code, import_fixture, new_post};

conformance!(a_partial_year_stays_provisional_until_adopted, limits_and_compliance_agree_through_a_partial_year);

fn adoption(data_year: i32) -> NewYearAdoption {
    NewYearAdoption {
        city: city(),
        data_year,
        document_number: "长政办发〔2025〕3号".into(),
        adopted_on: "2025-03-01".into(),
        reason: "三个乡镇的统计数据延期报送".into(),
    }
}

const EVERY_TOWNSHIP: [&str; 5] = ["430102001", "430102002", "430102003", "430103001", "430103002"];

async fn a_partial_year_stays_provisional_until_adopted(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    assert_eq!(store.data_years(&city()).await.unwrap(), []);
    assert_eq!(store.current_data_year(&city()).await.unwrap(), None);

    classify(store, 2023, &EVERY_TOWNSHIP.map(|t| (t, 2))).await;
    classify(store, 2024, &[("430102001", 1), ("430102002", 1)]).await;
    let years = store.data_years(&city()).await.unwrap();
    let summary: Vec<_> = years
        .iter()
        .map(|y| (y.data_year, y.townships_with_data, y.townships_in_force, y.adoption.is_some()))
        .collect();
    assert_eq!(summary, [(2023, 5, 5, false), (2024, 2, 5, false)]);
    assert_eq!(store.current_data_year(&city()).await.unwrap(), Some(2023), "a partial year is not current");
    assert_eq!(current_year(&years), Some(2023));
    assert_eq!(years[1].state(Some(2023)), YearState::Provisional);
    let official = official_class(store, &code("430102001")).await.unwrap().unwrap();
    assert_eq!((official.data_year, official.effective_class()), (2023, Some(2)));

    // Refused adoptions.
    match store.adopt_data_year(&adoption(2030), ACTOR).await.unwrap_err() {
        StoreError::FailedPrecondition(message) => {
            assert!(message.contains("data_year") && message.contains("2030"), "{message}")
        }
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }
    let elsewhere = NewYearAdoption { city: CityCode::parse("4302").unwrap(), ..adoption(2024) };
    assert!(matches!(store.adopt_data_year(&elsewhere, ACTOR).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.data_years(&CityCode::parse("4302").unwrap()).await, Err(StoreError::NotFound(_))));

    let adopted = store.adopt_data_year(&adoption(2024), "city-admin").await.unwrap();
    assert_eq!(
        adopted.townships_without_data,
        ["430102003", "430103001", "430103002"].map(code).to_vec(),
        "the townships without data are kept in the adoption"
    );
    assert_eq!((adopted.townships_in_force, adopted.adopted_by.as_str()), (5, "city-admin"));
    assert!(matches!(store.adopt_data_year(&adoption(2024), ACTOR).await, Err(StoreError::AlreadyExists(_))));
    assert_eq!(store.current_data_year(&city()).await.unwrap(), Some(2024));
    let years = store.data_years(&city()).await.unwrap();
    assert_eq!(years[1].adoption.as_ref(), Some(&adopted));
    assert_eq!((years[0].state(Some(2024)), years[1].state(Some(2024))), (YearState::Complete, YearState::Current));
    let official = official_class(store, &code("430102001")).await.unwrap().unwrap();
    assert_eq!((official.data_year, official.effective_class()), (2024, Some(1)));
    assert_eq!(official_class(store, &code("430103002")).await.unwrap(), None, "no class in the adopted year");

    // A later complete year supersedes the adopted one.
    classify(store, 2025, &EVERY_TOWNSHIP.map(|t| (t, 3))).await;
    assert_eq!(store.current_data_year(&city()).await.unwrap(), Some(2025));
    let years = store.data_years(&city()).await.unwrap();
    assert_eq!(years[1].state(Some(2025)), YearState::Adopted);
}

/// How many posts the write-time limits allow the township now.
async fn posts_allowed(store: &dyn Store, township: &TownshipCode) -> u32 {
    TownshipLimits::now(store, &Policy::builtin_default(), township).await.unwrap().leadership_posts().max
}

/// Creates posts up to what the limits allow, checks the next is refused, and that compliance over the same
/// township does not flag the posts (rule `posts.quota`).
async fn fill_to_the_limit(store: &dyn Store, township: &str, expected_limit: u32) {
    let code = code(township);
    let limit = posts_allowed(store, &code).await;
    assert_eq!(limit, expected_limit, "township {township}");
    let existing = store.township_facts(&Scope::Township(code.clone())).await.unwrap()[0].posts.len();
    for n in existing..usize::try_from(limit).unwrap() {
        store.create_post(&new_post(township, &format!("副职{n}"), None), limit, ACTOR).await.unwrap();
    }
    let refused = store.create_post(&new_post(township, "多余的副职", None), limit, ACTOR).await.unwrap_err();
    assert!(matches!(refused, StoreError::LimitExceeded(_)), "{refused:?}");
    let facts = store.township_facts(&Scope::Township(code)).await.unwrap();
    assert_eq!(facts[0].posts.len(), usize::try_from(limit).unwrap());
    let findings = rules::findings(&Policy::builtin_default(), &facts[0]);
    assert!(
        !findings.iter().any(|f| f.rule == "posts.quota"),
        "compliance flags what the limits accepted for {township}: {findings:?}"
    );
}

async fn limits_and_compliance_agree_through_a_partial_year(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    // 2023 complete: both townships class 3 (9 posts).
    classify(store, 2023, &EVERY_TOWNSHIP.map(|t| (t, 3))).await;
    // 2024 partial: 430102001 is class 1 there, 430103002 has no data.
    classify(store, 2024, &[("430102001", 1), ("430102002", 1)]).await;
    assert_eq!(store.current_data_year(&city()).await.unwrap(), Some(2023));

    // The case: the township without new-year data keeps its 2023 class for both.
    fill_to_the_limit(store, "430103002", 9).await;
    // The township with a partial-year class of 1 is still class 3 for both.
    fill_to_the_limit(store, "430102001", 9).await;
    let facts = store.township_facts(&Scope::City(city())).await.unwrap();
    assert!(facts.iter().all(|f| f.class.as_ref().is_some_and(|c| c.data_year == 2023)), "{facts:?}");

    // Adopting 2024 switches both together.
    store.adopt_data_year(&adoption(2024), "city-admin").await.unwrap();
    fill_to_the_limit(store, "430102001", 13).await;
    let facts = store.township_facts(&Scope::Township(code("430102001"))).await.unwrap();
    let class = facts[0].class.as_ref().unwrap();
    assert_eq!((class.data_year, class.effective_class()), (2024, Some(1)));
    // Unclassified in the current year: no official class, the most permissive limits for both.
    let facts = store.township_facts(&Scope::Township(code("430103002"))).await.unwrap();
    assert_eq!(facts[0].class, None);
    fill_to_the_limit(store, "430103002", 13).await;
}
