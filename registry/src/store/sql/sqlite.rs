//! The SQLite store: one file, WAL, `synchronous=FULL`, foreign keys on, checked on every connection.
//!
//! Writes go through a pool of ONE connection and start with `BEGIN IMMEDIATE`, so a write transaction holds
//! the write lock from its first statement: no two write transactions of this process interleave, and a
//! transaction never has to upgrade a read lock (the cause of SQLITE_BUSY deadlocks). Reads use a separate
//! pool and see the last committed state (WAL readers do not block the writer).

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool, Transaction};

use crate::store::{AuditRepo, StoreResult};

type Db = sqlx::Sqlite;
type ThisStore = SqliteStore;

/// SQLite has no row locks: the single writer connection serialises the write transactions.
const FOR_UPDATE: &str = "";
const SKIP_LOCKED: &str = "";

/// How long a connection waits for a lock another process holds before failing with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const READERS: u32 = 4;

// The Store methods, shared with the postgres store (see sql.rs).
#[allow(clippy::duplicate_mod, reason = "shared/ is compiled once per backend on purpose")]
#[path = "shared/mod.rs"]
mod shared;

/// The embedded default store: a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) `sqlite://path/to/file.db`, checks the pragmas on every connection and
    /// applies the migrations. In-memory databases are refused: the reader and writer pools must share a file.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("{url:?} is not a SQLite URL (sqlite://path/to/file.db)"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        if url.contains(":memory:") || url.contains("mode=memory") {
            anyhow::bail!("{url:?}: in-memory SQLite is not supported; name a file (sqlite://path/to/file.db)");
        }
        // Check the pragmas once on a connection of our own, so that a misconfiguration fails open() with its
        // reason (inside a pool it would surface as a pool timeout); every pooled connection is checked again.
        let mut probe = SqliteConnection::connect_with(&options).await.with_context(|| format!("opening {url}"))?;
        check_pragmas(&mut probe).await.with_context(|| format!("opening {url}"))?;
        probe.close().await?;
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(|conn, _| Box::pin(async move { check_pragmas(conn).await }))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("opening {url}"))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&write)
            .await
            .with_context(|| format!("applying the SQLite migrations to {url}"))?;
        let read = SqlitePoolOptions::new()
            .max_connections(READERS)
            .after_connect(|conn, _| Box::pin(async move { check_pragmas(conn).await }))
            .connect_with(options)
            .await
            .with_context(|| format!("opening {url} for reading"))?;
        // Connect one reader now, so that a misconfiguration fails open() rather than the first read.
        drop(read.acquire().await.with_context(|| format!("opening {url} for reading"))?);
        let store = Self { read, write };
        store.chain_unchained_audit_events().await.with_context(|| format!("chaining the audit log of {url}"))?;
        Ok(store)
    }

    async fn begin_write(&self) -> StoreResult<Transaction<'static, Db>> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A read transaction: one consistent snapshot for several queries.
    async fn begin_snapshot(&self) -> StoreResult<Transaction<'static, Db>> {
        Ok(self.read.begin().await?)
    }
}

/// Reads the durability pragmas back (DESIGN.md §5): a connection that is not in WAL mode with
/// `synchronous=FULL`, foreign keys and a busy timeout is refused.
async fn check_pragmas(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let journal_mode: String = sqlx::query("PRAGMA journal_mode").fetch_one(&mut *conn).await?.try_get(0)?;
    let synchronous: i64 = sqlx::query("PRAGMA synchronous").fetch_one(&mut *conn).await?.try_get(0)?;
    let foreign_keys: i64 = sqlx::query("PRAGMA foreign_keys").fetch_one(&mut *conn).await?.try_get(0)?;
    let busy_timeout: i64 = sqlx::query("PRAGMA busy_timeout").fetch_one(&mut *conn).await?.try_get(0)?;
    let mut wrong = Vec::new();
    if !journal_mode.eq_ignore_ascii_case("wal") {
        wrong.push(format!("journal_mode is {journal_mode}, not wal"));
    }
    if synchronous != 2 {
        wrong.push(format!("synchronous is {synchronous}, not 2 (FULL)"));
    }
    if foreign_keys != 1 {
        wrong.push(format!("foreign_keys is {foreign_keys}, not 1 (ON)"));
    }
    if u128::try_from(busy_timeout).ok() != Some(BUSY_TIMEOUT.as_millis()) {
        wrong.push(format!("busy_timeout is {busy_timeout} ms, not {} ms", BUSY_TIMEOUT.as_millis()));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(sqlx::Error::Configuration(format!("SQLite pragmas are not as set: {}", wrong.join("; ")).into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pragmas_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("check.db").display());
        let options = SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true);
        let mut conn =
            SqliteConnection::connect_with(&options.clone().foreign_keys(false).synchronous(SqliteSynchronous::Normal))
                .await
                .unwrap();
        let error = check_pragmas(&mut conn).await.unwrap_err().to_string();
        assert!(error.contains("journal_mode is delete, not wal"), "{error}");
        assert!(error.contains("synchronous is 1, not 2 (FULL)"), "{error}");
        assert!(error.contains("foreign_keys is 0, not 1"), "{error}");
        conn.close().await.unwrap();

        let store = SqliteStore::open(&url).await.unwrap();
        let mut conn = store.write.acquire().await.unwrap();
        check_pragmas(&mut conn).await.unwrap();
    }
}
