//! Persistence: one [`Store`] trait, implemented for SQLite (the embedded default) and PostgreSQL, chosen by
//! the database URL ([`open`]). Every write method commits before it returns, and writes its audit events in
//! the same transaction as the change.

mod sql;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use township_policy::Policy;

use crate::domain::catalogue::{CatalogueEntry, CatalogueItem, CatalogueItemType, CatalogueOwner, NewCatalogueItem};
use crate::domain::model::*;
use crate::domain::names::{CityCode, CountyCode, Scope, TownshipCode};

pub use sql::{PostgresStore, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A record with this key exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A limit of the policy would be exceeded; the message names the limit and what already exists.
    #[error("{0}")]
    LimitExceeded(String),
    /// The record changed since the caller read it (stale revision/etag).
    #[error("{0}")]
    Conflict(String),
    /// The write names a record that exists but cannot serve (an institution no longer in force).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The database cannot be reached now (connection refused or lost, pool exhausted, database busy): a retry
    /// later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database answered, but with something the registry cannot accept: a corrupt row, a broken
    /// constraint, an unexpected schema. Retrying will not help; an operator must look.
    #[error("database error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let busy = match &error {
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), and their extended codes: another writer holds the file.
            sqlx::Error::Database(e) => e.code().is_some_and(|code| {
                code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
                    // PostgreSQL: connection exceptions (08…), too many connections, shutting down, cannot connect.
                    || code.starts_with("08")
                    || matches!(code.as_ref(), "53300" | "57P01" | "57P02" | "57P03")
            }),
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            _ => false,
        };
        if busy { StoreError::Unavailable(error.to_string()) } else { StoreError::Internal(error.to_string()) }
    }
}

impl StoreError {
    /// The error of the `index`th record of a batch: its message names the record, as the request's
    /// `requests[index]`.
    pub fn in_request(self, index: usize) -> Self {
        let at = |message: String| format!("requests[{index}]: {message}");
        match self {
            StoreError::NotFound(m) => StoreError::NotFound(at(m)),
            StoreError::AlreadyExists(m) => StoreError::AlreadyExists(at(m)),
            StoreError::LimitExceeded(m) => StoreError::LimitExceeded(at(m)),
            StoreError::Conflict(m) => StoreError::Conflict(at(m)),
            StoreError::FailedPrecondition(m) => StoreError::FailedPrecondition(at(m)),
            StoreError::Unavailable(m) => StoreError::Unavailable(m),
            StoreError::Internal(m) => StoreError::Internal(m),
        }
    }
}

impl StoreError {
    /// The batch index [`StoreError::in_request`] put on this error, if it is a batch record's.
    pub fn request_index(&self) -> Option<usize> {
        let (StoreError::NotFound(m)
        | StoreError::AlreadyExists(m)
        | StoreError::LimitExceeded(m)
        | StoreError::Conflict(m)
        | StoreError::FailedPrecondition(m)) = self
        else {
            return None;
        };
        m.strip_prefix("requests[")?.split_once("]: ")?.0.parse().ok()
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One record of a batch create, with the limit the service computed for its township.
#[derive(Debug, Clone)]
pub enum NewRecord {
    Institution { institution: NewInstitution, max_of_kind: u32 },
    Post { post: NewPost, quota: u32 },
    CatalogueItem(NewCatalogueItem),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CreatedRecord {
    Institution(Institution),
    Post(LeadershipPost),
    CatalogueItem(CatalogueItem),
}

/// A create's `request_id` (AIP-155) with what identifies the request it first came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub request_id: String,
    /// The RPC, e.g. `CreateInstitution`: one id names one request of one method.
    pub method: String,
    /// SHA-256 of the request without its id.
    pub fingerprint: String,
}

/// A create that [`Store::create_once`] makes at most once per request id.
#[derive(Debug, Clone)]
pub enum Create {
    Township(Township),
    Observations(Vec<NewObservation>),
    Policy { city: CityCode, policy: Policy },
    Institution { institution: NewInstitution, max_of_kind: u32 },
    Plaque { township: TownshipCode, plaque: NewPlaque, max_per_township: u32 },
    Post { post: NewPost, quota: u32 },
    CatalogueItem(NewCatalogueItem),
    Batch(Vec<NewRecord>),
}

/// What a [`Create`] made, as it is remembered for a retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Created {
    Township(Township),
    Observations(Vec<RecordedObservation>),
    Policy(CityPolicy),
    Institution(Institution),
    Plaque(Plaque),
    Post(LeadershipPost),
    CatalogueItem(CatalogueItem),
    Batch(Vec<CreatedRecord>),
}

/// One observation as recorded: the new one, or the equal one already stored (`unchanged`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedObservation {
    pub observation: IndicatorObservation,
    pub unchanged: bool,
}

/// A page request: at most `size` items after the key `after` (exclusive) in the listing's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u32,
    /// The sort key of the last item of the previous page, as the store returned it.
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The key to pass as `after` for the next page; None on the last page.
    pub next: Option<String>,
}

/// What an import upserted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub cities: u32,
    pub counties: u32,
    pub townships: u32,
}

/// A township of an imported division file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DivisionTownship {
    pub code: TownshipCode,
    pub name: String,
    pub kind: TownshipKind,
}

/// The outcome of storing a classification run.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    pub run_id: i64,
    /// Every township whose computed class moved (first classification included).
    pub changes: Vec<ClassChange>,
    /// False when a newer change to the cohort arrived while classifying: the job stays pending.
    pub job_cleared: bool,
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    // --- hierarchy -------------------------------------------------------------------------------------
    /// Upserts by code in one transaction: all rows or none. Counties' cities and townships' counties must be
    /// among the rows or already stored.
    async fn import_divisions(
        &self,
        cities: &[City],
        counties: &[County],
        townships: &[DivisionTownship],
        actor: &str,
    ) -> StoreResult<ImportCounts>;
    async fn get_city(&self, city: &CityCode) -> StoreResult<City>;
    async fn list_cities(&self, page: &PageRequest) -> StoreResult<Page<City>>;
    async fn get_county(&self, county: &CountyCode) -> StoreResult<County>;
    async fn list_counties(&self, city: &CityCode, page: &PageRequest) -> StoreResult<Page<County>>;
    async fn get_township(&self, township: &TownshipCode) -> StoreResult<Township>;
    /// Townships in a city or county scope, in code order.
    async fn list_townships(&self, scope: &Scope, page: &PageRequest) -> StoreResult<Page<Township>>;
    /// The county must exist. Revision starts at 1.
    async fn create_township(&self, township: &Township, actor: &str) -> StoreResult<Township>;
    /// Replaces the stored fields when the stored revision equals `expected_revision`; bumps the revision.
    async fn update_township(&self, township: &Township, expected_revision: i64, actor: &str) -> StoreResult<Township>;

    // --- indicators and the outbox ------------------------------------------------------------------------
    /// Inserts the observations and, in the same transaction, marks each affected cohort (city, data year)
    /// PENDING with its generation bumped. All or nothing; every township must exist. An observation equal to
    /// the latest of its township and year (values and source) is not stored again: it comes back `unchanged`,
    /// as the stored one. With `validate_only` nothing is kept.
    async fn record_observations(
        &self,
        observations: &[NewObservation],
        actor: &str,
        validate_only: bool,
    ) -> StoreResult<Vec<RecordedObservation>>;
    /// A township's observations, newest first; `data_year` filters when given. Keys are observation ids.
    async fn list_observations(
        &self,
        township: &TownshipCode,
        data_year: Option<i32>,
        page: &PageRequest,
    ) -> StoreResult<Page<IndicatorObservation>>;
    /// The cohort's inputs: each township of the city with its latest observation for the year, in code order.
    async fn cohort_inputs(&self, cohort: &CohortKey) -> StoreResult<Vec<(Township, IndicatorObservation)>>;
    /// The newest data year with observations in the city.
    async fn latest_data_year(&self, city: &CityCode) -> StoreResult<Option<i32>>;

    // --- policies --------------------------------------------------------------------------------------
    /// Stores the next version of the city's policy and marks every cohort of the city that has observations
    /// PENDING, in one transaction.
    async fn insert_city_policy(&self, city: &CityCode, policy: &Policy, actor: &str) -> StoreResult<CityPolicy>;
    async fn latest_city_policy(&self, city: &CityCode) -> StoreResult<Option<CityPolicy>>;
    async fn get_city_policy(&self, city: &CityCode, version: i64) -> StoreResult<CityPolicy>;
    /// Newest first; keys are versions.
    async fn list_city_policies(&self, city: &CityCode, page: &PageRequest) -> StoreResult<Page<CityPolicy>>;

    // --- the classification worker ---------------------------------------------------------------------
    /// Claims one PENDING cohort whose next attempt is due and that no live lease holds, leasing it to `worker`
    /// for `lease_ms`. Concurrent callers (other replicas) never get the same cohort while the lease lives.
    async fn claim_due_cohort(&self, worker: &str, lease_ms: i64) -> StoreResult<Option<CohortJob>>;
    /// Releases every lease `worker` holds, so that a replica restarted under the same worker id resumes its
    /// cohorts at once instead of waiting for its dead leases to expire. Returns how many were released.
    async fn release_leases(&self, worker: &str) -> StoreResult<u64>;
    /// Stores the run, every township's class, and the history of classes that moved, in one transaction;
    /// clears the job if its generation is still `run.generation`, otherwise leaves it PENDING for another pass.
    async fn complete_run(&self, run: &NewRun, worker: &str) -> StoreResult<StoredRun>;
    /// Records a failed attempt: back to PENDING with `next_attempt_at`, or DEAD_LETTER; releases the lease.
    async fn fail_attempt(
        &self,
        cohort: &CohortKey,
        worker: &str,
        error: &str,
        next_attempt_at: TimestampMs,
        dead_letter: bool,
    ) -> StoreResult<()>;
    /// The outbox row of a cohort, if it ever had one.
    async fn cohort_job(&self, cohort: &CohortKey) -> StoreResult<Option<CohortJob>>;
    /// The earliest `next_attempt_at` among PENDING cohorts, for the worker to sleep until.
    async fn next_due_at(&self) -> StoreResult<Option<TimestampMs>>;

    // --- classes and runs --------------------------------------------------------------------------------
    async fn get_class(&self, township: &TownshipCode, data_year: i32) -> StoreResult<Option<ClassRecord>>;
    /// Classes of the townships in scope for the year, in code order; keys are township codes.
    async fn list_classes(&self, scope: &Scope, data_year: i32, page: &PageRequest) -> StoreResult<Page<ClassRecord>>;
    /// Newest first; keys are opaque.
    async fn class_history(&self, township: &TownshipCode, page: &PageRequest) -> StoreResult<Page<ClassChange>>;
    /// Sets the override and records the change in the history when the effective class moves.
    async fn set_override(
        &self,
        township: &TownshipCode,
        data_year: i32,
        class_override: &ClassOverride,
        actor: &str,
    ) -> StoreResult<(ClassRecord, Option<ClassChange>)>;
    async fn clear_override(
        &self,
        township: &TownshipCode,
        data_year: i32,
        actor: &str,
    ) -> StoreResult<(ClassRecord, Option<ClassChange>)>;
    async fn get_run(&self, city: &CityCode, run_id: i64) -> StoreResult<ClassificationRun>;
    /// Newest first, without lines or response; keys are run ids.
    async fn list_runs(&self, city: &CityCode, page: &PageRequest) -> StoreResult<Page<ClassificationRun>>;

    // --- institutions, plaques, posts ------------------------------------------------------------------
    /// Refused with `LimitExceeded` when the township already has `max_of_kind` active institutions of this
    /// kind (checked in the same transaction as the insert).
    async fn create_institution(
        &self,
        institution: &NewInstitution,
        max_of_kind: u32,
        actor: &str,
    ) -> StoreResult<Institution>;
    async fn get_institution(&self, township: &TownshipCode, id: i64) -> StoreResult<Institution>;
    async fn list_institutions(&self, township: &TownshipCode, page: &PageRequest) -> StoreResult<Page<Institution>>;
    /// Replaces name, staffing quota, approving document and validity when the stored revision equals
    /// `expected_revision`; bumps the revision. Refused with `FailedPrecondition` when it sets a new `valid_to`
    /// while catalogue items of the township name the institution as responsible (they would be orphaned), and
    /// with `LimitExceeded` when it brings an ended institution back into force beyond `max_of_kind`.
    async fn update_institution(
        &self,
        institution: &Institution,
        expected_revision: i64,
        max_of_kind: u32,
        actor: &str,
    ) -> StoreResult<Institution>;
    /// Deletes the institution and its plaques.
    async fn delete_institution(&self, township: &TownshipCode, id: i64, actor: &str) -> StoreResult<()>;
    /// Refused with `LimitExceeded` when the institution's township already has `max_per_township` plaques.
    async fn create_plaque(
        &self,
        township: &TownshipCode,
        plaque: &NewPlaque,
        max_per_township: u32,
        actor: &str,
    ) -> StoreResult<Plaque>;
    /// Plaques of one institution, or of every institution of the township when `institution_id` is None.
    async fn list_plaques(
        &self,
        township: &TownshipCode,
        institution_id: Option<i64>,
        page: &PageRequest,
    ) -> StoreResult<Page<Plaque>>;
    async fn get_plaque(&self, township: &TownshipCode, institution_id: i64, id: i64) -> StoreResult<Plaque>;
    /// Replaces name and approving document when the stored revision equals `expected_revision`.
    async fn update_plaque(&self, plaque: &Plaque, expected_revision: i64, actor: &str) -> StoreResult<Plaque>;
    async fn delete_plaque(
        &self,
        township: &TownshipCode,
        institution_id: i64,
        id: i64,
        actor: &str,
    ) -> StoreResult<()>;
    /// Refused with `LimitExceeded` when the township already has `quota` posts.
    async fn create_post(&self, post: &NewPost, quota: u32, actor: &str) -> StoreResult<LeadershipPost>;
    async fn list_posts(&self, township: &TownshipCode, page: &PageRequest) -> StoreResult<Page<LeadershipPost>>;
    async fn get_post(&self, township: &TownshipCode, id: i64) -> StoreResult<LeadershipPost>;
    /// Replaces role, holder and mandated role when the stored revision equals `expected_revision`.
    async fn update_post(
        &self,
        post: &LeadershipPost,
        expected_revision: i64,
        actor: &str,
    ) -> StoreResult<LeadershipPost>;
    async fn delete_post(&self, township: &TownshipCode, id: i64, actor: &str) -> StoreResult<()>;

    // --- retry-safe creates (AIP-155) ---------------------------------------------------------------------
    /// Makes `create` under the same rules as its own method. With a key, in one transaction with a row that
    /// remembers the result under `key.request_id`: a retry with the same key returns the first result and
    /// changes nothing (`true`: replayed); the same id with another method or request is refused with
    /// `AlreadyExists`.
    async fn create_once(&self, key: Option<&RequestKey>, create: &Create, actor: &str)
    -> StoreResult<(Created, bool)>;

    // --- duty catalogues --------------------------------------------------------------------------------
    /// Stores a county's template item or a township's own item, in one transaction with its audit event.
    /// Refused with `AlreadyExists` when the owner has an item of that code, `NotFound` when the owner, a
    /// township item's responsible institution (of that township) or a responsibility item's linked power item
    /// (in the owner's catalogue, a township's including its county's template) does not exist, and
    /// `FailedPrecondition` when that institution is no longer in force.
    async fn create_catalogue_item(&self, item: &NewCatalogueItem, actor: &str) -> StoreResult<CatalogueItem>;
    /// Creates every record in one transaction, in order, under the same rules as the single creates: all or
    /// nothing; an error names the failing record (`requests[i]`). With `validate_only` nothing is kept.
    async fn batch_create(
        &self,
        records: &[NewRecord],
        actor: &str,
        validate_only: bool,
    ) -> StoreResult<Vec<CreatedRecord>>;
    async fn get_catalogue_item(&self, owner: &CatalogueOwner, id: i64) -> StoreResult<CatalogueItem>;
    /// A county's template items; or a township's effective catalogue: its own items and its county's template
    /// items of its duty areas whose code no own item takes (marked inherited), each with its responsible
    /// institution resolved among the township's institutions. In code order; keys are codes.
    async fn list_catalogue_items(
        &self,
        owner: &CatalogueOwner,
        item_type: Option<CatalogueItemType>,
        page: &PageRequest,
    ) -> StoreResult<Page<CatalogueEntry>>;
    /// Replaces title, duty area, responsible institution and details (of the same type) when the stored
    /// revision equals `expected_revision`, under the links rules of the create; code and type never change.
    async fn update_catalogue_item(
        &self,
        item: &CatalogueItem,
        expected_revision: i64,
        actor: &str,
    ) -> StoreResult<CatalogueItem>;
    async fn delete_catalogue_item(&self, owner: &CatalogueOwner, id: i64, actor: &str) -> StoreResult<()>;

    // --- compliance and audit ----------------------------------------------------------------------------
    /// Facts of every township in scope (city, county or one township), in code order, with the class of
    /// each township's latest classified data year and the institutions still in force (no `valid_to`, or
    /// `valid_to` today or later), and its effective catalogue with each item's responsible institution resolved.
    async fn township_facts(&self, scope: &Scope) -> StoreResult<Vec<TownshipFacts>>;
    /// Newest first; `resource_prefix` filters by resource name prefix.
    async fn list_audit_events(&self, resource_prefix: &str, page: &PageRequest) -> StoreResult<Page<AuditEvent>>;
}

/// Opens the store a URL names: `sqlite://path/to/file.db` (created if missing) or `postgres://…`. Applies
/// the backend's migrations before returning.
pub async fn open(url: &str) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PostgresStore::open(url).await?))
    } else {
        anyhow::bail!("unsupported database URL {url:?}: use sqlite://FILE or postgres://…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_record_error_names_its_index_and_keeps_its_kind() {
        let error = StoreError::LimitExceeded("township 430102001 already has 6".to_owned()).in_request(7);
        assert_eq!(error.request_index(), Some(7));
        assert!(
            matches!(error, StoreError::LimitExceeded(ref m) if m == "requests[7]: township 430102001 already has 6")
        );
        assert_eq!(StoreError::NotFound("requests[x]: y".to_owned()).request_index(), None);
        assert_eq!(StoreError::Unavailable("down".to_owned()).in_request(2).request_index(), None);
    }
}
