//! What several entities' methods share: the audit event every write records, finding and locking a township
//! (the lock that keeps the limits), telling an empty scope from a missing one, marking a cohort PENDING, the
//! revision check of the updates, and the resource names the audit events and errors use.

use super::rows::{AUDIT_COLUMNS, TOWNSHIP_COLUMNS, audit_from_row, township_from_row};
use super::{Conn, DbRow, FOR_UPDATE, ThisStore};
use crate::domain::audit_chain::{ChainHash, event_hash};
use crate::domain::model::{AuditEvent, CohortKey, IndicatorObservation, TimestampMs, Township};
use crate::domain::names::{CityCode, CountyCode, Scope, TownshipCode, city_name, township_name};
use crate::store::sql::{after_id_ascending, corrupt, page_by, page_limit};
use crate::store::{Page, PageRequest, StoreError, StoreResult};
use sqlx::Row;

// ------------------------------------------------------------------------------------------------------------
// Statements and checks used by several entities

/// One page of a township's records in id order (institutions, posts): `sql` selects them by township (`$1`),
/// after an id (`$2`), at most `$3`. An empty page of a township that does not exist is `NotFound`.
pub(super) async fn township_records<T>(
    store: &ThisStore,
    sql: &str,
    township: &TownshipCode,
    page: &PageRequest,
    from_row: fn(&DbRow) -> StoreResult<T>,
    id: fn(&T) -> i64,
) -> StoreResult<Page<T>> {
    let limit = page_limit(page);
    let after = after_id_ascending(page)?;
    let mut conn = store.read.acquire().await?;
    let rows = sqlx::query(sql).bind(township.as_str()).bind(after).bind(limit + 1).fetch_all(&mut *conn).await?;
    if rows.is_empty() {
        ensure_scope(&mut conn, &Scope::Township(township.clone())).await?;
    }
    let records = rows.iter().map(from_row).collect::<StoreResult<Vec<_>>>()?;
    Ok(page_by(records, limit, |record| id(record).to_string()))
}

/// Writes one audit event, in the caller's transaction, chained to the event before it: the head row is locked
/// (PostgreSQL) or the single writer holds the lock (SQLite), so sequence numbers stay gap-free and two writers
/// never chain to the same predecessor. A write that rolls back takes its event and the head's advance with it.
pub(super) async fn audit(
    conn: &mut Conn,
    actor: &str,
    at: TimestampMs,
    action: &str,
    resource: &str,
    before: Option<String>,
    after: Option<String>,
) -> StoreResult<()> {
    let (head_seq, head_hash) = audit_head(conn).await?;
    let event = AuditEvent {
        id: 0,
        actor: actor.to_owned(),
        at,
        action: action.to_owned(),
        resource: resource.to_owned(),
        before,
        after,
    };
    append_chained(conn, head_seq + 1, head_hash, &event).await
}

/// The chain's head: the last sequence number and its hash, locked until the transaction ends.
pub(super) async fn audit_head(conn: &mut Conn) -> StoreResult<(u64, ChainHash)> {
    let sql = format!("SELECT seq, hash FROM audit_head WHERE only_row = 1{FOR_UPDATE}");
    let row = sqlx::query(&sql).fetch_one(&mut *conn).await?;
    let seq: i64 = row.try_get("seq")?;
    let hash: String = row.try_get("hash")?;
    let seq = u64::try_from(seq).map_err(|_| corrupt(format!("audit head seq {seq}")))?;
    Ok((seq, ChainHash::from_hex(&hash).ok_or_else(|| corrupt(format!("audit head hash {hash:?}")))?))
}

/// Inserts `event` (or, for an event recorded before the chain existed, chains the stored row `event.id`) as
/// number `seq` after `prev`, and moves the head to it.
async fn append_chained(conn: &mut Conn, seq: u64, prev: ChainHash, event: &AuditEvent) -> StoreResult<()> {
    let hash = event_hash(prev, seq, event);
    let seq_value = i64::try_from(seq).map_err(|_| corrupt(format!("audit seq {seq} out of range")))?;
    if event.id == 0 {
        sqlx::query(
            "INSERT INTO audit_events (actor, at, action, resource, before_json, after_json, seq, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&event.actor)
        .bind(event.at)
        .bind(&event.action)
        .bind(&event.resource)
        .bind(&event.before)
        .bind(&event.after)
        .bind(seq_value)
        .bind(prev.to_hex())
        .bind(hash.to_hex())
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query("UPDATE audit_events SET seq = $1, prev_hash = $2, hash = $3 WHERE id = $4 AND hash IS NULL")
            .bind(seq_value)
            .bind(prev.to_hex())
            .bind(hash.to_hex())
            .bind(event.id)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE only_row = 1")
        .bind(seq_value)
        .bind(hash.to_hex())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Chains the events recorded before the chain existed (migration 0008), in id order. Runs when the store
/// opens; a no-op once done.
pub(super) async fn chain_unchained_audit_events(conn: &mut Conn) -> StoreResult<u64> {
    let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events a WHERE a.hash IS NULL ORDER BY a.id");
    let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (mut seq, mut prev) = audit_head(conn).await?;
    for row in &rows {
        let event = audit_from_row(row)?;
        seq += 1;
        append_chained(conn, seq, prev, &event).await?;
        prev = event_hash(prev, seq, &event);
    }
    Ok(rows.len() as u64)
}

pub(super) async fn find_township(conn: &mut Conn, code: &TownshipCode) -> StoreResult<Option<Township>> {
    let sql = format!("SELECT {TOWNSHIP_COLUMNS} FROM townships t WHERE t.code = $1");
    sqlx::query(&sql)
        .bind(code.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| township_from_row(&row))
        .transpose()
}

/// The township, its row locked until the transaction ends (PostgreSQL), so that limits counted after this
/// cannot be passed by a concurrent transaction. NotFound when it does not exist.
pub(super) async fn lock_township(conn: &mut Conn, code: &TownshipCode) -> StoreResult<Township> {
    let sql = format!("SELECT {TOWNSHIP_COLUMNS} FROM townships t WHERE t.code = $1{FOR_UPDATE}");
    match sqlx::query(&sql).bind(code.as_str()).fetch_optional(&mut *conn).await? {
        Some(row) => township_from_row(&row),
        None => Err(township_not_found(code)),
    }
}

pub(super) fn township_not_found(code: &TownshipCode) -> StoreError {
    StoreError::NotFound(format!("township {code}"))
}

pub(super) async fn city_exists(conn: &mut Conn, city: &CityCode) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT 1 FROM cities WHERE code = $1")
        .bind(city.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

pub(super) async fn county_exists(conn: &mut Conn, county: &CountyCode) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT 1 FROM counties WHERE code = $1")
        .bind(county.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// NotFound unless the scope's city, county or township exists. Listings call it when they find nothing, to
/// tell an empty scope from a missing one.
pub(super) async fn ensure_scope(conn: &mut Conn, scope: &Scope) -> StoreResult<()> {
    let found = match scope {
        Scope::City(city) => city_exists(conn, city).await?,
        Scope::County(county) => county_exists(conn, county).await?,
        Scope::Township(township) => find_township(conn, township).await?.is_some(),
    };
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound(match scope {
            Scope::City(city) => format!("city {city}"),
            Scope::County(county) => format!("county {county}"),
            Scope::Township(township) => format!("township {township}"),
        }))
    }
}

/// Marks a cohort PENDING with its generation bumped, due now (the outbox row).
pub(super) async fn mark_pending(conn: &mut Conn, cohort: &CohortKey, now: TimestampMs) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO cohort_jobs (city, data_year, state, generation, attempts, last_error, next_attempt_at, \
         lease_owner, lease_until, last_run, updated_at) \
         VALUES ($1, $2, 'pending', 1, 0, '', $3, NULL, NULL, NULL, $3) \
         ON CONFLICT (city, data_year) DO UPDATE SET state = 'pending', generation = cohort_jobs.generation + 1, \
         attempts = 0, last_error = '', next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at",
    )
    .bind(cohort.city.as_str())
    .bind(i64::from(cohort.data_year))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Refuses a lost update: the caller read `expected`, the store holds `stored`.
pub(super) fn check_revision(resource: &str, expected: i64, stored: i64) -> StoreResult<()> {
    if expected == stored {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "{resource} changed since it was read: expected revision {expected}, stored revision {stored}; read it \
             again and retry"
        )))
    }
}

// ------------------------------------------------------------------------------------------------------------
// Resource names

pub(super) fn institution_resource(township: &TownshipCode, id: i64) -> String {
    format!("{}/institutions/{id}", township_name(township))
}

pub(super) fn plaque_resource(township: &TownshipCode, institution_id: i64, id: i64) -> String {
    format!("{}/plaques/{id}", institution_resource(township, institution_id))
}

pub(super) fn staffing_approval_resource(township: &TownshipCode, institution_id: i64, id: i64) -> String {
    format!("{}/staffingApprovals/{id}", institution_resource(township, institution_id))
}

pub(super) fn staffing_headcount_resource(
    township: &TownshipCode,
    institution_id: i64,
    staffing_type: crate::domain::model::StaffingType,
) -> String {
    format!("{}/staffingHeadcounts/{}", institution_resource(township, institution_id), staffing_type.as_str())
}

pub(super) fn post_resource(township: &TownshipCode, id: i64) -> String {
    format!("{}/posts/{id}", township_name(township))
}

pub(super) fn observation_resource(observation: &IndicatorObservation) -> String {
    format!(
        "{}/indicators/{}/observations/{}",
        township_name(&observation.township),
        observation.data_year,
        observation.id
    )
}

pub(super) fn class_resource(township: &TownshipCode, data_year: i32) -> String {
    format!("{}/classes/{data_year}", township_name(township))
}

pub(super) fn policy_resource(city: &CityCode, version: i64) -> String {
    format!("{}/policies/{version}", city_name(city))
}

pub(super) fn run_resource(city: &CityCode, id: i64) -> String {
    format!("{}/classificationRuns/{id}", city_name(city))
}

pub(super) fn cohort_resource(cohort: &CohortKey) -> String {
    format!("{}/cohorts/{}", city_name(&cohort.city), cohort.data_year)
}
