//! The PostgreSQL store, for several registry replicas on one database.
//!
//! Every write transaction starts by locking the audit chain's head row ([`PostgresStore::begin_write`]), so
//! writers queue in one order and never deadlock.
//! Township-scoped writes lock the township row (`SELECT … FOR NO KEY UPDATE`) before counting against a limit, so
//! concurrent creates cannot both pass; the worker's claim locks the cohort row with `FOR UPDATE SKIP LOCKED`
//! in the same statement that writes the lease, so replicas never claim the same cohort.

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Transaction};

use crate::store::{AuditRepo, StoreResult};

type Db = sqlx::Postgres;
type ThisStore = PostgresStore;

/// Locks a row against other writers of it (and against their limit checks) while still letting concurrent
/// inserts of rows that reference it take their foreign-key share locks: no key is ever updated.
const FOR_UPDATE: &str = " FOR NO KEY UPDATE";
const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";

const CONNECTIONS: u32 = 10;

// The Store methods, shared with the sqlite store (see sql.rs).
#[allow(clippy::duplicate_mod, reason = "shared/ is compiled once per backend on purpose")]
#[path = "shared/mod.rs"]
mod shared;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    read: PgPool,
    write: PgPool,
}

impl PostgresStore {
    /// Connects to `postgres://…` and applies the migrations (under PostgreSQL's migration lock, so replicas
    /// starting together do not race).
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let pool =
            PgPoolOptions::new().max_connections(CONNECTIONS).connect(url).await.context("connecting to PostgreSQL")?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await.context("applying the PostgreSQL migrations")?;
        let store = Self { read: pool.clone(), write: pool };
        store.chain_unchained_audit_events().await.context("chaining the audit log")?;
        Ok(store)
    }

    /// A write transaction that first locks the audit chain's head row, the one row every write ends by
    /// locking (its audit event). Writers then queue in one order, as SQLite's `BEGIN IMMEDIATE` makes them:
    /// without it, a write that locked a row and then waited for the head could deadlock with one holding the
    /// head and waiting for that row (a batch's second create, a run's cohort row against an indicator write).
    async fn begin_write(&self) -> StoreResult<Transaction<'static, Db>> {
        let mut tx = self.write.begin().await?;
        sqlx::query("SELECT seq FROM audit_head WHERE only_row = 1 FOR UPDATE").execute(&mut *tx).await?;
        Ok(tx)
    }

    /// A read transaction: one consistent snapshot for several queries.
    async fn begin_snapshot(&self) -> StoreResult<Transaction<'static, Db>> {
        Ok(self.read.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?)
    }
}
