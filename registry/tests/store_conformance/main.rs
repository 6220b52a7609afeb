//! The store conformance suite: every test runs against SQLite (a fresh file per test) and PostgreSQL (a fresh
//! database per test, created through the admin URL in `TEST_POSTGRES_URL`). The PostgreSQL tests fail, never
//! skip, when that variable is unset: `scripts/test.sh` starts PostgreSQL and sets it.
//!
//! One module per entity, each naming its tests in `conformance!`; the harness and the fixtures they share are
//! here.

use std::future::Future;
use std::sync::Arc;

use township_policy::{PerIndicator, Policy};
use township_registry::domain::catalogue::{
    CatalogueEntry, CatalogueItemType, CatalogueOwner, DutyArea, HandlingMode, ItemDetails, NewCatalogueItem,
};
use township_registry::domain::model::{
    City, CohortKey, County, InstitutionKind, NewInstitution, NewObservation, NewPost, NewRun, RunLine, TownshipKind,
};
use township_registry::domain::names::{CityCode, CountyCode, TownshipCode};
use township_registry::store::{self, DivisionTownship, PageRequest, Store};

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

/// Makes each listed test of the invoking module a test per backend: `<module>::sqlite::<test>` and
/// `<module>::postgres::<test>`.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    crate::run(crate::Backend::Sqlite, super::$test).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    crate::run(crate::Backend::Postgres, super::$test).await;
                }
            )*
        }
    };
}

mod audit;
mod catalogue;
mod classes;
mod creates;
mod deviations;
mod facts;
mod hierarchy;
mod indicators;
mod institutions;
mod outbox;
mod policies;
mod posts;
mod staffing;
mod years;

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

// ------------------------------------------------------------------------------------------------------------
// Tests of the harness and of opening a store

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
