//! The store conformance suite: every test runs against SQLite (a fresh file per test) and PostgreSQL (a fresh
//! database per test, created through the admin URL in `TEST_POSTGRES_URL`). The PostgreSQL tests fail, never
//! skip, when that variable is unset: `scripts/test.sh` starts PostgreSQL and sets it.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use township_policy::{PerIndicator, Policy};
use township_registry::domain::catalogue::*;
use township_registry::domain::model::*;
use township_registry::domain::names::{CityCode, CountyCode, Scope, TownshipCode, township_name};
use township_registry::store::{
    self, Create, Created, CreatedRecord, DivisionTownship, NewRecord, PageRequest, RequestKey, Store, StoreError,
};
use township_runtime::now_ms;

// ------------------------------------------------------------------------------------------------------------
// Harness

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// One test's database: the store, and the URL to open more stores on it (other "replicas").
#[derive(Clone)]
struct TestDb {
    store: Arc<dyn Store>,
    url: String,
}

const POSTGRES_HELP: &str = "set TEST_POSTGRES_URL (an admin URL of a PostgreSQL server whose role may CREATE \
     DATABASE, e.g. postgres://township:township@127.0.0.1:5432/postgres), or run scripts/test.sh which starts \
     PostgreSQL";

/// The URL with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (head, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let host_end = head[scheme_end..].find('/').map_or(head.len(), |i| scheme_end + i);
    format!("{}/{database}{query}", &head[..host_end])
}

/// Runs `test` against a fresh database of `backend`, then drops the database (PostgreSQL) or file (SQLite).
async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let url = format!("sqlite://{}", dir.path().join("registry.db").display());
            let store = store::open(&url).await.expect("opening the SQLite store");
            let outcome = tokio::spawn(test(TestDb { store, url })).await;
            drop(dir);
            if let Err(error) = outcome {
                std::panic::resume_unwind(error.into_panic());
            }
        }
        Backend::Postgres => {
            let admin_url = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| panic!("{POSTGRES_HELP}"));
            let name = format!("township_test_{}", uuid::Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("connecting to TEST_POSTGRES_URL: {e}; {POSTGRES_HELP}"));
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("CREATE DATABASE");
            let url = with_database(&admin_url, &name);
            let outcome = match store::open(&url).await {
                Ok(store) => tokio::spawn(test(TestDb { store, url })).await,
                Err(error) => {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin).await;
                    panic!("opening the PostgreSQL store: {error:#}");
                }
            };
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin).await;
            admin.close().await;
            if let Err(error) = outcome {
                std::panic::resume_unwind(error.into_panic());
            }
        }
    }
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::run(super::Backend::Sqlite, super::$test).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::run(super::Backend::Postgres, super::$test).await;
                }
            )*
        }
    };
}

conformance!(
    import_and_hierarchy_pagination,
    township_create_and_update_with_revisions,
    observations_are_all_or_nothing,
    observation_history_is_kept_and_cohort_inputs_use_the_latest,
    recording_the_latest_values_again_changes_nothing,
    validate_only_observations_store_nothing,
    outbox_claims_and_generations,
    failed_attempts_back_off_then_dead_letter,
    runs_report_only_moved_classes,
    policy_versions_increment_and_mark_cohorts_pending,
    overrides_keep_the_computed_class,
    plaque_limit_names_existing_plaques,
    office_limit_counts_active_institutions_of_the_kind,
    post_quota_and_post_revisions,
    deleting_an_institution_deletes_its_plaques,
    concurrent_creates_respect_the_limit,
    audit_events_record_every_write,
    township_facts_gather_the_scope,
    concurrent_claims_never_share_a_cohort,
    catalogue_templates_are_inherited_extended_and_overridden,
    catalogue_items_check_their_institution_and_linked_power,
    township_facts_resolve_the_effective_catalogue,
    a_restarted_worker_releases_its_own_leases_only,
    batch_creates_are_all_or_nothing_and_name_the_failing_record,
    a_retried_create_with_its_request_id_makes_one_record,
    a_request_id_names_one_request_only,
    institution_updates_check_the_revision_and_end_without_orphaning,
    plaque_and_catalogue_item_updates_check_the_revision,
);

// ------------------------------------------------------------------------------------------------------------
// Fixtures

const ACTOR: &str = "alice@example.org";

fn city() -> CityCode {
    CityCode::parse("4301").unwrap()
}

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).unwrap()
}

fn code(text: &str) -> TownshipCode {
    TownshipCode::parse(text).unwrap()
}

fn page(size: u32) -> PageRequest {
    PageRequest { size, after: None }
}

fn next(size: u32, after: &Option<String>) -> PageRequest {
    PageRequest { size, after: after.clone() }
}

/// City 4301 with counties 430102 (three townships) and 430103 (two).
async fn import_fixture(store: &dyn Store) {
    let cities = [City { code: city(), name: "长沙市".into(), province_code: "43".into() }];
    let counties = [
        County { code: county("430102"), name: "芙蓉区".into() },
        County { code: county("430103"), name: "天心区".into() },
    ];
    let townships = [
        ("430102001", "文艺路街道"),
        ("430102002", "朝阳街道"),
        ("430102003", "东湖镇"),
        ("430103001", "坡子街街道"),
        ("430103002", "暮云乡"),
    ]
    .map(|(c, name)| DivisionTownship {
        code: code(c),
        name: name.into(),
        kind: TownshipKind::from_division_name(name),
    });
    let counts = store.import_divisions(&cities, &counties, &townships, ACTOR).await.unwrap();
    assert_eq!((counts.cities, counts.counties, counts.townships), (1, 2, 5));
}

fn values(population: f64, fiscal_revenue: f64, land_area: f64) -> PerIndicator<f64> {
    PerIndicator { population, fiscal_revenue, land_area }
}

fn observation(township: &str, data_year: i32, population: f64) -> NewObservation {
    NewObservation {
        township: code(township),
        data_year,
        values: values(population, population * 100.0, 20.0),
        source: "县统计局年报".into(),
    }
}

fn cohort(data_year: i32) -> CohortKey {
    CohortKey { city: city(), data_year }
}

fn line(township: &str, class: u8, score: f64) -> RunLine {
    RunLine {
        township: code(township),
        inputs: values(1.0, 100.0, 20.0),
        indices: values(score, score, score),
        score,
        rank: 1,
        class,
        explanation: format!("score {score} → class {class}"),
    }
}

fn new_run(data_year: i32, generation: i64, lines: Vec<RunLine>) -> NewRun {
    NewRun {
        cohort: cohort(data_year),
        generation,
        policy_version: 0,
        policy_fingerprint: Policy::builtin_default().fingerprint(),
        lines,
        response: vec![1, 2, 3, 0, 255],
    }
}

/// Records an observation for each township of the city in `data_year`, claims the cohort and stores a run
/// with the given classes.
async fn classify(store: &dyn Store, data_year: i32, classes: &[(&str, u8)]) -> township_registry::store::StoredRun {
    // New values every call: recording the latest values again would not make the cohort due.
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let population = 5.0 + f64::from(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) / 1000.0;
    let observations: Vec<_> = classes.iter().map(|(t, _)| observation(t, data_year, population)).collect();
    store.record_observations(&observations, ACTOR, false).await.unwrap();
    let job = store.claim_due_cohort("worker-1", 60_000).await.unwrap().expect("a due cohort");
    assert_eq!(job.cohort, cohort(data_year));
    let lines = classes.iter().map(|(t, class)| line(t, *class, 100.0 - f64::from(*class) * 10.0)).collect();
    store.complete_run(&new_run(data_year, job.generation, lines), "worker-1").await.unwrap()
}

fn new_institution(township: &str, kind: InstitutionKind, name: &str) -> NewInstitution {
    NewInstitution {
        township: code(township),
        kind,
        name: name.into(),
        staffing_quota: 5,
        approving_document: "编委〔2024〕1号".into(),
        valid_from: Some("2024-01-01".into()),
        valid_to: None,
    }
}

fn new_post(township: &str, role: &str, holder: Option<&str>) -> NewPost {
    NewPost { township: code(township), role: role.into(), holder: holder.map(Into::into), mandated_role: None }
}

fn template(county_code: &str, code: &str, area: DutyArea, institution_title: &str) -> NewCatalogueItem {
    NewCatalogueItem {
        owner: CatalogueOwner::County(county(county_code)),
        code: code.into(),
        title: format!("事项 {code}"),
        duty_area: area,
        responsible_institution_id: None,
        responsible_institution_title: institution_title.into(),
        details: ItemDetails::PublicService {
            service_domain: "社会保障".into(), handling_mode: HandlingMode::Direct
        },
    }
}

fn own_item(township: &str, code: &str, area: DutyArea, institution_id: i64) -> NewCatalogueItem {
    NewCatalogueItem {
        owner: CatalogueOwner::Township(self::code(township)),
        code: code.into(),
        title: format!("本级事项 {code}"),
        duty_area: area,
        responsible_institution_id: Some(institution_id),
        responsible_institution_title: String::new(),
        details: ItemDetails::PublicService { service_domain: "民政".into(), handling_mode: HandlingMode::OnBehalf },
    }
}

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

/// Every entry of a catalogue, `size` at a time, checking that pages chain.
async fn whole_catalogue(
    store: &dyn Store,
    owner: &CatalogueOwner,
    item_type: Option<CatalogueItemType>,
    size: u32,
) -> Vec<CatalogueEntry> {
    let mut entries = Vec::new();
    let mut request = page(size);
    loop {
        let listed = store.list_catalogue_items(owner, item_type, &request).await.unwrap();
        assert!(listed.items.len() <= size as usize);
        entries.extend(listed.items);
        match listed.next {
            Some(_) => request = next(size, &listed.next),
            None => return entries,
        }
    }
}

fn codes(entries: &[CatalogueEntry]) -> Vec<(&str, bool)> {
    entries.iter().map(|e| (e.item.code.as_str(), e.inherited)).collect()
}

// ------------------------------------------------------------------------------------------------------------
// Tests

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

async fn outbox_claims_and_generations(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let before = now_ms();
    store.record_observations(&[observation("430102001", 2023, 5.0)], ACTOR, false).await.unwrap();
    let job = store.cohort_job(&cohort(2023)).await.unwrap().unwrap();
    assert_eq!((job.state, job.generation, job.attempts, job.last_run), (CohortState::Pending, 1, 0, None));
    assert!(job.next_attempt_at >= before && job.next_attempt_at <= now_ms());
    store.record_observations(&[observation("430102002", 2023, 3.0)], ACTOR, false).await.unwrap();
    assert_eq!(store.cohort_job(&cohort(2023)).await.unwrap().unwrap().generation, 2);
    assert!(store.next_due_at().await.unwrap().unwrap() <= now_ms());

    let claimed = store.claim_due_cohort("worker-1", 60_000).await.unwrap().expect("the pending cohort");
    assert_eq!((claimed.cohort.clone(), claimed.generation), (cohort(2023), 2));
    assert_eq!(store.claim_due_cohort("worker-2", 60_000).await.unwrap(), None, "the lease holds");
    // While leased, the cohort is due when the lease runs out.
    assert!(store.next_due_at().await.unwrap().unwrap() > now_ms() + 50_000);

    // A change arrives while classifying: the run is stored but the job stays pending.
    store.record_observations(&[observation("430102003", 2023, 2.0)], ACTOR, false).await.unwrap();
    let lines = vec![line("430102001", 1, 90.0), line("430102002", 2, 60.0)];
    let error = store.complete_run(&new_run(2023, claimed.generation, lines.clone()), "worker-2").await.unwrap_err();
    assert!(matches!(&error, StoreError::Conflict(m) if m.contains("worker-2")), "{error}");
    let stale = store.complete_run(&new_run(2023, claimed.generation, lines), "worker-1").await.unwrap();
    assert!(!stale.job_cleared);
    let job = store.cohort_job(&cohort(2023)).await.unwrap().unwrap();
    assert_eq!((job.state, job.generation, job.last_run), (CohortState::Pending, 3, Some(stale.run_id)));
    assert!(job.next_attempt_at <= now_ms());

    // The lease was released: the next pass claims it again and clears it.
    let again = store.claim_due_cohort("worker-2", 60_000).await.unwrap().expect("pending again");
    assert_eq!(again.generation, 3);
    let lines = vec![line("430102001", 1, 90.0), line("430102002", 2, 60.0), line("430102003", 3, 30.0)];
    let fresh = store.complete_run(&new_run(2023, 3, lines), "worker-2").await.unwrap();
    assert!(fresh.job_cleared);
    let job = store.cohort_job(&cohort(2023)).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts, job.last_run), (CohortState::Current, 0, Some(fresh.run_id)));
    assert_eq!(store.claim_due_cohort("worker-1", 60_000).await.unwrap(), None);
    assert_eq!(store.next_due_at().await.unwrap(), None);
    assert_eq!(store.cohort_job(&cohort(2019)).await.unwrap(), None);
}

async fn a_restarted_worker_releases_its_own_leases_only(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    store
        .record_observations(&[observation("430102001", 2023, 5.0), observation("430102002", 2022, 4.0)], ACTOR, false)
        .await
        .unwrap();
    let mine = store.claim_due_cohort("host-a:50052", 60_000).await.unwrap().expect("a due cohort");
    let theirs = store.claim_due_cohort("host-b:50052", 60_000).await.unwrap().expect("the other cohort");
    assert_eq!(store.claim_due_cohort("host-c:50052", 60_000).await.unwrap(), None, "both are leased");

    // host-a crashed and came back under the same id: its lease goes, host-b's stays.
    assert_eq!(store.release_leases("host-a:50052").await.unwrap(), 1);
    let reclaimed = store.claim_due_cohort("host-a:50052", 60_000).await.unwrap().expect("free again");
    assert_eq!(reclaimed.cohort, mine.cohort);
    assert_ne!(reclaimed.cohort, theirs.cohort);
    assert_eq!(store.release_leases("host-z:50052").await.unwrap(), 0);
}

async fn failed_attempts_back_off_then_dead_letter(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    store.record_observations(&[observation("430102001", 2023, 5.0)], ACTOR, false).await.unwrap();
    let job = store.claim_due_cohort("worker-1", 60_000).await.unwrap().unwrap();
    let later = now_ms() + 3_600_000;
    let error = store.fail_attempt(&job.cohort, "worker-2", "boom", later, false).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)));
    store.fail_attempt(&job.cohort, "worker-1", "classifier unavailable", later, false).await.unwrap();
    let failed = store.cohort_job(&job.cohort).await.unwrap().unwrap();
    assert_eq!(
        (failed.state, failed.attempts, failed.last_error.as_str(), failed.next_attempt_at),
        (CohortState::Pending, 1, "classifier unavailable", later)
    );
    assert_eq!(store.claim_due_cohort("worker-1", 60_000).await.unwrap(), None, "not due yet");
    assert_eq!(store.next_due_at().await.unwrap(), Some(later));
    // The lease was released: failing again without claiming is refused.
    assert!(matches!(
        store.fail_attempt(&job.cohort, "worker-1", "x", later, false).await,
        Err(StoreError::Conflict(_))
    ));

    // Due again now (as if the back-off elapsed) …
    store.record_observations(&[observation("430102002", 2023, 3.0)], ACTOR, false).await.unwrap();
    let job = store.claim_due_cohort("worker-1", 60_000).await.unwrap().unwrap();
    assert_eq!(job.attempts, 0, "a new change resets the attempts");
    store.fail_attempt(&job.cohort, "worker-1", "first", now_ms() - 1, false).await.unwrap();
    let job = store.claim_due_cohort("worker-1", 60_000).await.unwrap().expect("due again");
    assert_eq!(job.attempts, 1);
    store.fail_attempt(&job.cohort, "worker-1", "gave up", now_ms(), true).await.unwrap();
    let dead = store.cohort_job(&job.cohort).await.unwrap().unwrap();
    assert_eq!((dead.state, dead.attempts, dead.last_error.as_str()), (CohortState::DeadLetter, 2, "gave up"));
    assert_eq!(store.claim_due_cohort("worker-1", 60_000).await.unwrap(), None);
    assert_eq!(store.next_due_at().await.unwrap(), None);

    // A new change revives a dead-lettered cohort.
    store.record_observations(&[observation("430102001", 2023, 5.5)], ACTOR, false).await.unwrap();
    let revived = store.cohort_job(&job.cohort).await.unwrap().unwrap();
    assert_eq!((revived.state, revived.attempts, revived.last_error.as_str()), (CohortState::Pending, 0, ""));
}

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
    assert_eq!((steady.computed_class, steady.previous_class), (Some(1), Some(1)));
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
}

async fn policy_versions_increment_and_mark_cohorts_pending(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    assert_eq!(store.latest_city_policy(&city()).await.unwrap(), None);
    classify(store, 2022, &[("430102001", 1)]).await;
    classify(store, 2023, &[("430102001", 2)]).await;
    assert_eq!(store.cohort_job(&cohort(2023)).await.unwrap().unwrap().state, CohortState::Current);

    let mut policy = Policy::builtin_default();
    let first = store.insert_city_policy(&city(), &policy, ACTOR).await.unwrap();
    assert_eq!((first.version, first.fingerprint.clone()), (1, policy.fingerprint()));
    policy.max_plaques_per_township = 2;
    let second = store.insert_city_policy(&city(), &policy, ACTOR).await.unwrap();
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
    assert!(matches!(store.insert_city_policy(&unknown, &policy, ACTOR).await, Err(StoreError::NotFound(_))));
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
    assert_eq!(record.effective_class(), Some(1));
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
        })
        .collect();
    assert_eq!(names, ["党政办公室", "党委书记", "经济发展办公室"]);
    assert_eq!((nothing_kept("430102001").await, nothing_kept("430102002").await), (2, 1));
    assert_eq!(audit_events().await, audit_before + 3);
}

async fn post_quota_and_post_revisions(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430103002");
    let secretary = store.create_post(&new_post("430103002", "党委书记", Some("张三")), 2, ACTOR).await.unwrap();
    let mayor = store.create_post(&new_post("430103002", "乡长", None), 2, ACTOR).await.unwrap();
    assert_eq!((secretary.revision, mayor.holder.clone()), (1, None));
    match store.create_post(&new_post("430103002", "副乡长", Some("李四")), 2, ACTOR).await.unwrap_err() {
        StoreError::LimitExceeded(message) => {
            assert!(message.contains("township 430103002 already has 2 leadership posts"), "{message}");
            assert!(message.contains("党委书记 张三"), "{message}");
            assert!(message.contains("乡长 (vacant)"), "{message}");
            assert!(message.contains("at most 2"), "{message}");
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }

    let change = LeadershipPost {
        holder: Some("王五".into()),
        mandated_role: Some(MandatedRole::DisciplineInspectionSecretary),
        ..mayor.clone()
    };
    let updated = store.update_post(&change, 1, ACTOR).await.unwrap();
    assert_eq!((updated.revision, updated.holder.as_deref()), (2, Some("王五")));
    assert_eq!(store.get_post(&township, mayor.id).await.unwrap(), updated);
    match store.update_post(&change, 1, ACTOR).await.unwrap_err() {
        StoreError::Conflict(message) => {
            assert!(message.contains("expected revision 1") && message.contains("stored revision 2"), "{message}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let posts = store.list_posts(&township, &page(1)).await.unwrap();
    assert_eq!(posts.items, std::slice::from_ref(&secretary));
    let rest = store.list_posts(&township, &next(1, &posts.next)).await.unwrap();
    assert_eq!((rest.items.clone(), rest.next.clone()), (vec![updated], None));

    store.delete_post(&township, secretary.id, ACTOR).await.unwrap();
    assert!(matches!(store.get_post(&township, secretary.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_post(&township, secretary.id, ACTOR).await, Err(StoreError::NotFound(_))));
    store.create_post(&new_post("430103002", "副乡长", Some("李四")), 2, ACTOR).await.unwrap();
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

async fn audit_events_record_every_write(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430102001");
    let name = township_name(&township);
    let observed = store.record_observations(&[observation("430102001", 2023, 5.0)], "bob", false).await.unwrap();
    let institution = store
        .create_institution(&new_institution("430102001", InstitutionKind::PublicInstitution, "中心"), 5, "carol")
        .await
        .unwrap();
    let post = store.create_post(&new_post("430102001", "镇长", None), 10, "dave").await.unwrap();
    store.update_post(&LeadershipPost { holder: Some("赵六".into()), ..post.clone() }, 1, "dave").await.unwrap();
    let stored = store.get_township(&township).await.unwrap();
    store.update_township(&Township { name: "文艺路".into(), ..stored }, 1, "erin").await.unwrap();
    store.create_post(&new_post("430102002", "镇长", None), 10, "frank").await.unwrap();

    let events = store.list_audit_events(&name, &page(0)).await.unwrap();
    let summary: Vec<(&str, &str, &str)> =
        events.items.iter().map(|e| (e.action.as_str(), e.actor.as_str(), e.resource.as_str())).collect();
    let institution_name = format!("{name}/institutions/{}", institution.id);
    let post_name = format!("{name}/posts/{}", post.id);
    let observation_name = format!("{name}/indicators/2023/observations/{}", observed[0].observation.id);
    assert_eq!(
        summary,
        [
            ("UpdateTownship", "erin", name.as_str()),
            ("UpdateLeadershipPost", "dave", post_name.as_str()),
            ("CreateLeadershipPost", "dave", post_name.as_str()),
            ("CreateInstitution", "carol", institution_name.as_str()),
            ("RecordIndicators", "bob", observation_name.as_str()),
            ("ImportDivisions", ACTOR, name.as_str()),
        ]
    );
    let update = &events.items[1];
    let before: serde_json::Value = serde_json::from_str(update.before.as_deref().unwrap()).unwrap();
    let after: serde_json::Value = serde_json::from_str(update.after.as_deref().unwrap()).unwrap();
    assert_eq!((before["holder"].clone(), after["holder"].clone()), (serde_json::Value::Null, "赵六".into()));
    assert_eq!((before["revision"].as_i64(), after["revision"].as_i64()), (Some(1), Some(2)));
    let create = &events.items[3];
    assert_eq!(create.before, None);
    let after: Institution = serde_json::from_str(create.after.as_deref().unwrap()).unwrap();
    assert_eq!(after, institution);
    assert!(events.items.windows(2).all(|w| w[0].id > w[1].id && w[0].at >= w[1].at));

    // Paging, and the prefix filter: the whole city sees every event, "…/townships/43010200" none.
    let first = store.list_audit_events(&name, &page(2)).await.unwrap();
    let second = store.list_audit_events(&name, &next(2, &first.next)).await.unwrap();
    assert_eq!(second.items[0], events.items[2]);
    let all = store.list_audit_events("", &page(1000)).await.unwrap();
    let city_wide = store.list_audit_events("cities/4301", &page(1000)).await.unwrap();
    assert_eq!(all.items.len(), city_wide.items.len());
    assert!(all.items.iter().any(|e| e.actor == "frank"));
    assert!(
        store
            .list_audit_events("cities/4301/counties/430102/townships/43010200_", &page(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(store.list_audit_events("CITIES/4301", &page(10)).await.unwrap().items.is_empty());
}

async fn township_facts_gather_the_scope(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    classify(store, 2022, &[("430102001", 1), ("430102002", 2)]).await;
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
    assert_eq!((class.data_year, class.computed_class), (2023, Some(2)), "the latest classified year");
    assert_eq!((first.institutions.clone(), first.plaques.clone(), first.posts.len()), (vec![office], vec![plaque], 0));
    let second = &facts[1];
    let class = second.class.as_ref().unwrap();
    assert_eq!((class.data_year, class.computed_class), (2022, Some(2)), "its own latest classified year");
    assert_eq!((second.institutions.clone(), second.plaques.len(), second.posts.clone()), (vec![unit], 0, vec![post]));
    let third = &facts[2];
    assert!(
        third.class.is_none() && third.institutions.is_empty() && third.plaques.is_empty() && third.posts.is_empty()
    );

    assert_eq!(store.township_facts(&Scope::City(city())).await.unwrap().len(), 5);
    let one = store.township_facts(&Scope::Township(code("430102002"))).await.unwrap();
    assert_eq!(one, facts[1..2]);
    assert!(matches!(store.township_facts(&Scope::County(county("430199"))).await, Err(StoreError::NotFound(_))));
}

/// Several replicas claiming at once never get the same cohort (on SQLite the single writer serialises them;
/// on PostgreSQL it is `FOR UPDATE SKIP LOCKED` and the lease).
async fn concurrent_claims_never_share_a_cohort(db: TestDb) {
    import_fixture(&*db.store).await;
    let years: Vec<i32> = (2010..2022).collect();
    let observations: Vec<_> = years.iter().map(|y| observation("430102001", *y, 5.0)).collect();
    db.store.record_observations(&observations, ACTOR, false).await.unwrap();
    let replica = store::open(&db.url).await.unwrap();
    let stores = [db.store.clone(), replica];
    let claims = (0..24).map(|i| {
        let store = stores[i % 2].clone();
        tokio::spawn(async move { store.claim_due_cohort(&format!("worker-{i}"), 60_000).await.unwrap() })
    });
    let mut claimed = Vec::new();
    for claim in claims.collect::<Vec<_>>() {
        if let Some(job) = claim.await.unwrap() {
            claimed.push(job.cohort.data_year);
        }
    }
    let distinct: HashSet<i32> = claimed.iter().copied().collect();
    assert_eq!(distinct.len(), claimed.len(), "a cohort was claimed twice: {claimed:?}");
    assert_eq!(distinct, years.iter().copied().collect::<HashSet<_>>());
    assert_eq!(stores[0].claim_due_cohort("late", 60_000).await.unwrap(), None);
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

async fn institution_updates_check_the_revision_and_end_without_orphaning(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430102003");
    let kind = InstitutionKind::PartyGovernmentOffice;
    let office = store.create_institution(&new_institution("430102003", kind, "党政办公室"), 6, ACTOR).await.unwrap();
    let renamed = Institution { name: "党政综合办公室".into(), staffing_quota: 7, ..office.clone() };
    let updated = store.update_institution(&renamed, office.revision, 6, ACTOR).await.unwrap();
    assert_eq!((updated.name.as_str(), updated.staffing_quota, updated.revision), ("党政综合办公室", 7, 2));
    assert_eq!(store.get_institution(&township, office.id).await.unwrap(), updated);
    // A writer holding the first revision is told the record moved on, and changes nothing.
    match store.update_institution(&renamed, office.revision, 6, ACTOR).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }

    // Ending it while a catalogue item names it would orphan the item: refused, naming the item.
    store
        .create_catalogue_item(&own_item("430102003", "GG-1", DutyArea::PartyBuilding, office.id), ACTOR)
        .await
        .unwrap();
    let ended = Institution { valid_to: Some("2025-06-30".into()), ..updated.clone() };
    match store.update_institution(&ended, updated.revision, 6, ACTOR).await {
        Err(StoreError::FailedPrecondition(message)) => assert!(message.contains("GG-1"), "{message}"),
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }
    let item = whole_catalogue(store, &CatalogueOwner::Township(township.clone()), None, 10).await;
    store.delete_catalogue_item(&item[0].item.owner, item[0].item.id, ACTOR).await.unwrap();
    let ended = store.update_institution(&ended, updated.revision, 6, ACTOR).await.unwrap();
    assert_eq!(ended.valid_to.as_deref(), Some("2025-06-30"));

    // Bringing it back into force counts against the limit of its kind again.
    let second = store.create_institution(&new_institution("430102003", kind, "党建办公室"), 1, ACTOR).await.unwrap();
    assert_eq!(second.revision, 1);
    let revived = Institution { valid_to: None, ..ended.clone() };
    assert!(matches!(
        store.update_institution(&revived, ended.revision, 1, ACTOR).await,
        Err(StoreError::LimitExceeded(_))
    ));
    store.update_institution(&revived, ended.revision, 2, ACTOR).await.unwrap();
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

#[tokio::test]
async fn sqlite_refuses_in_memory_databases() {
    let error = store::open("sqlite::memory:").await.unwrap_err();
    assert!(error.to_string().contains("in-memory"), "{error:#}");
}

#[test]
fn database_urls_are_rewritten() {
    assert_eq!(with_database("postgres://u:p@h:5432/postgres", "t1"), "postgres://u:p@h:5432/t1");
    assert_eq!(with_database("postgres://u:p@h/postgres?sslmode=disable", "t1"), "postgres://u:p@h/t1?sslmode=disable");
    assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
}
