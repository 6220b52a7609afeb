//! Persistence: one [`Store`], made of one repository trait per entity ([`HierarchyRepo`], [`IndicatorRepo`],
//! [`PolicyRepo`], [`OutboxRepo`], [`ClassRepo`], [`InstitutionRepo`], [`PostRepo`], [`StaffingRepo`], [`CatalogueRepo`],
//! [`DeviationRepo`], [`FactsRepo`], [`YearRepo`], [`AuditRepo`], and [`CreateRepo`] for the creates across entities), implemented for SQLite
//! (the embedded default) and PostgreSQL, chosen by the database URL ([`open`]). Every write method commits
//! before it returns, and writes its audit events in the same transaction as the change.

mod audit;
mod catalogue;
mod classes;
mod creates;
mod deviations;
mod facts;
mod gauges;
mod hierarchy;
mod indicators;
mod institutions;
mod outbox;
mod policies;
mod posts;
mod sql;
mod staffing;
mod years;

pub use audit::AuditRepo;
pub use catalogue::CatalogueRepo;
pub use classes::ClassRepo;
pub use creates::{Create, CreateRepo, Created, CreatedRecord, NewRecord, RequestKey};
pub use deviations::DeviationRepo;
pub use facts::FactsRepo;
pub use gauges::{GaugeRepo, StoreGauges};
pub use hierarchy::{DivisionTownship, HierarchyRepo, ImportCounts};
pub use indicators::{IndicatorRepo, RecordedObservation};
pub use institutions::InstitutionRepo;
pub use outbox::{OutboxRepo, StoredRun};
pub use policies::PolicyRepo;
pub use posts::PostRepo;
pub(crate) use sql::iso_date;
pub use sql::{PostgresStore, SqliteStore};
pub use staffing::StaffingRepo;
pub use years::YearRepo;

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
        // PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled back whole and a
        // retry may succeed, so it is a concurrency conflict (ABORTED), not a broken database.
        let aborted =
            matches!(&error, sqlx::Error::Database(e) if matches!(e.code().as_deref(), Some("40P01" | "40001")));
        if aborted {
            StoreError::Conflict(format!("the transaction met a concurrent one and was rolled back; retry: {error}"))
        } else if busy {
            StoreError::Unavailable(error.to_string())
        } else {
            StoreError::Internal(error.to_string())
        }
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

/// The whole store: every repository, implemented together by each backend. Callers hold an `Arc<dyn Store>` and
/// call any repository's method on it; a trait object's supertrait methods need no import.
pub trait Store:
    HierarchyRepo
    + IndicatorRepo
    + PolicyRepo
    + OutboxRepo
    + ClassRepo
    + InstitutionRepo
    + PostRepo
    + StaffingRepo
    + CatalogueRepo
    + DeviationRepo
    + FactsRepo
    + YearRepo
    + AuditRepo
    + CreateRepo
    + GaugeRepo
    + Send
    + Sync
    + std::fmt::Debug
{
}

impl<T> Store for T where
    T: HierarchyRepo
        + IndicatorRepo
        + PolicyRepo
        + OutboxRepo
        + ClassRepo
        + InstitutionRepo
        + PostRepo
        + StaffingRepo
        + CatalogueRepo
        + DeviationRepo
        + FactsRepo
        + YearRepo
        + AuditRepo
        + CreateRepo
        + GaugeRepo
        + Send
        + Sync
        + std::fmt::Debug
{
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
