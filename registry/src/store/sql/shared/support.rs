//! What several entities' methods share: the audit event every write records, finding and locking a township
//! (the lock that keeps the limits), telling an empty scope from a missing one, marking a cohort PENDING, the
//! revision check of the updates, and the resource names the audit events and errors use.

use super::rows::{TOWNSHIP_COLUMNS, township_from_row};
use super::{Conn, DbRow, FOR_UPDATE, ThisStore};
use crate::domain::model::{CohortKey, IndicatorObservation, TimestampMs, Township};
use crate::domain::names::{CityCode, CountyCode, Scope, TownshipCode, city_name, township_name};
use crate::store::sql::{after_id_ascending, page_by, page_limit};
use crate::store::{Page, PageRequest, StoreError, StoreResult};

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

/// Writes one audit event, in the caller's transaction.
pub(super) async fn audit(
    conn: &mut Conn,
    actor: &str,
    at: TimestampMs,
    action: &str,
    resource: &str,
    before: Option<String>,
    after: Option<String>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_events (actor, at, action, resource, before_json, after_json) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(actor)
    .bind(at)
    .bind(action)
    .bind(resource)
    .bind(before)
    .bind(after)
    .execute(&mut *conn)
    .await?;
    Ok(())
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
