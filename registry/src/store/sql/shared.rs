//! The [`Store`] methods, written once for both backends.
//!
//! This file is compiled twice, as `sqlite::shared` and `postgres::shared` (see `sql.rs`): `super::Db` is the
//! sqlx database, `super::ThisStore` the store type, `FOR_UPDATE` / `SKIP_LOCKED` the row-locking clauses
//! (empty on SQLite, whose single writer connection serialises writes), and `begin_write` / `begin_snapshot`
//! start transactions the backend's way. Every `$N` placeholder first appears in increasing order.

use std::collections::{BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use sqlx::Row;
use township_policy::{PerIndicator, Policy, TownshipClass};

use super::super::{
    after_id_ascending, after_id_descending, after_text, corrupt, iso_date, json, keyed_page, like_prefix,
    list_or_none, now_ms, page_by, page_limit, scope_filter,
};
use super::{Db, FOR_UPDATE, SKIP_LOCKED, ThisStore};
use crate::domain::catalogue::{
    CatalogueEntry, CatalogueItem, CatalogueItemType, CatalogueOwner, DutyArea, HandlingMode, ItemDetails,
    NewCatalogueItem, PowerCategory, PowerOrigin, Resolution, catalogue_item_name, duty_areas_for, effective_catalogue,
    in_force, resolve,
};
use crate::domain::model::*;
use crate::domain::names::{CityCode, CountyCode, Scope, TownshipCode, city_name, county_name, township_name};
use crate::store::{
    Create, Created, CreatedRecord, DivisionTownship, ImportCounts, NewRecord, Page, PageRequest, RecordedObservation,
    RequestKey, Store, StoreError, StoreResult, StoredRun,
};

type Conn = <Db as sqlx::Database>::Connection;
type DbRow = <Db as sqlx::Database>::Row;

// ------------------------------------------------------------------------------------------------------------
// Columns and row decoding

const CITY_COLUMNS: &str = "c.code, c.name, c.province_code";
const COUNTY_COLUMNS: &str = "k.code, k.name";
const TOWNSHIP_COLUMNS: &str = "t.code, t.name, t.kind, t.flags, t.valid_from, t.valid_to, t.revision, t.updated_at";
const OBSERVATION_COLUMNS: &str = "o.id, o.township, o.data_year, o.population, o.fiscal_revenue, o.land_area, \
     o.source, o.recorded_at, o.recorded_by";
const POLICY_COLUMNS: &str = "p.city, p.version, p.policy_toml, p.fingerprint, p.created_at";
const JOB_COLUMNS: &str = "city, data_year, state, generation, attempts, last_error, next_attempt_at, last_run";
const CLASS_COLUMNS: &str = "c.township, c.data_year, c.computed_class, c.previous_class, c.override_class, \
     c.override_reason, c.override_document_number, c.override_set_by, c.override_set_at, c.score, c.class_rank, \
     c.index_population, c.index_fiscal_revenue, c.index_land_area, c.run_id, c.explanation";
const HISTORY_COLUMNS: &str = "h.id, h.township, t.name AS township_name, h.data_year, h.previous_class, \
     h.new_class, h.score, h.cause, h.run_id, h.changed_at";
const RUN_COLUMNS: &str =
    "r.id, r.city, r.data_year, r.policy_version, r.policy_fingerprint, r.run_at, r.classes_changed";
const INSTITUTION_COLUMNS: &str = "i.id, i.township, i.kind, i.name, i.staffing_quota, i.approving_document, \
     i.valid_from, i.valid_to, i.created_at, i.revision, i.updated_at";
const PLAQUE_COLUMNS: &str =
    "p.id, p.institution_id, p.township, p.name, p.approving_document, p.created_at, p.revision, p.updated_at";
const POST_COLUMNS: &str = "p.id, p.township, p.role, p.holder, p.mandated_role, p.revision, p.updated_at";
const CATALOGUE_COLUMNS: &str = "c.id, c.owner, c.code, c.title, c.item_type, c.duty_area, \
     c.responsible_institution_id, c.responsible_institution_title, c.power_category, c.legal_basis, c.power_origin, \
     c.power_item_code, c.duties, c.accountability_cases, c.service_domain, c.handling_mode, c.created_at, \
     c.revision, c.updated_at";
const AUDIT_COLUMNS: &str = "a.id, a.actor, a.at, a.action, a.resource, a.before_json, a.after_json";

fn city_code(text: &str) -> StoreResult<CityCode> {
    CityCode::parse(text).map_err(|e| corrupt(e.0))
}

fn county_code(text: &str) -> StoreResult<CountyCode> {
    CountyCode::parse(text).map_err(|e| corrupt(e.0))
}

fn township_code(text: &str) -> StoreResult<TownshipCode> {
    TownshipCode::parse(text).map_err(|e| corrupt(e.0))
}

fn class_value(value: i64) -> StoreResult<TownshipClass> {
    TownshipClass::try_from(value).map_err(|_| corrupt(format!("township class {value}")))
}

fn optional_class(value: Option<i64>) -> StoreResult<Option<TownshipClass>> {
    value.map(class_value).transpose()
}

fn unsigned(value: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| corrupt(format!("{what} {value}")))
}

fn year(value: i64) -> StoreResult<i32> {
    i32::try_from(value).map_err(|_| corrupt(format!("data year {value}")))
}

fn city_from_row(row: &DbRow) -> StoreResult<City> {
    Ok(City {
        code: city_code(row.try_get("code")?)?,
        name: row.try_get("name")?,
        province_code: row.try_get("province_code")?,
    })
}

fn county_from_row(row: &DbRow) -> StoreResult<County> {
    Ok(County { code: county_code(row.try_get("code")?)?, name: row.try_get("name")? })
}

fn township_from_row(row: &DbRow) -> StoreResult<Township> {
    let kind: &str = row.try_get("kind")?;
    let flags: &str = row.try_get("flags")?;
    Ok(Township {
        code: township_code(row.try_get("code")?)?,
        name: row.try_get("name")?,
        kind: TownshipKind::parse(kind).ok_or_else(|| corrupt(format!("township kind {kind:?}")))?,
        flags: serde_json::from_str(flags).map_err(|e| corrupt(format!("township flags {flags:?}: {e}")))?,
        valid_from: row.try_get("valid_from")?,
        valid_to: row.try_get("valid_to")?,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn observation_from_row(row: &DbRow) -> StoreResult<IndicatorObservation> {
    Ok(IndicatorObservation {
        id: row.try_get("id")?,
        township: township_code(row.try_get("township")?)?,
        data_year: year(row.try_get("data_year")?)?,
        values: PerIndicator {
            population: row.try_get("population")?,
            fiscal_revenue: row.try_get("fiscal_revenue")?,
            land_area: row.try_get("land_area")?,
        },
        source: row.try_get("source")?,
        recorded_at: row.try_get("recorded_at")?,
        recorded_by: row.try_get("recorded_by")?,
    })
}

fn policy_from_row(row: &DbRow) -> StoreResult<CityPolicy> {
    let toml: &str = row.try_get("policy_toml")?;
    Ok(CityPolicy {
        city: city_code(row.try_get("city")?)?,
        version: row.try_get("version")?,
        policy: Policy::from_toml(toml).map_err(|e| corrupt(format!("stored policy: {e}")))?,
        fingerprint: row.try_get("fingerprint")?,
        created_at: row.try_get("created_at")?,
    })
}

fn state_text(state: CohortState) -> &'static str {
    match state {
        CohortState::Current => "current",
        CohortState::Pending => "pending",
        CohortState::DeadLetter => "dead_letter",
    }
}

fn job_from_row(row: &DbRow) -> StoreResult<CohortJob> {
    let state: &str = row.try_get("state")?;
    let state = [CohortState::Current, CohortState::Pending, CohortState::DeadLetter]
        .into_iter()
        .find(|s| state_text(*s) == state)
        .ok_or_else(|| corrupt(format!("cohort state {state:?}")))?;
    Ok(CohortJob {
        cohort: CohortKey { city: city_code(row.try_get("city")?)?, data_year: year(row.try_get("data_year")?)? },
        state,
        generation: row.try_get("generation")?,
        attempts: unsigned(row.try_get("attempts")?, "attempt count")?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_run: row.try_get("last_run")?,
    })
}

fn class_from_row(row: &DbRow) -> StoreResult<ClassRecord> {
    let class_override = match optional_class(row.try_get("override_class")?)? {
        None => None,
        Some(class) => Some(ClassOverride {
            class,
            reason: row.try_get::<Option<String>, _>("override_reason")?.unwrap_or_default(),
            document_number: row.try_get::<Option<String>, _>("override_document_number")?.unwrap_or_default(),
            set_by: row.try_get::<Option<String>, _>("override_set_by")?.unwrap_or_default(),
            set_at: row.try_get::<Option<i64>, _>("override_set_at")?.unwrap_or_default(),
        }),
    };
    Ok(ClassRecord {
        township: township_code(row.try_get("township")?)?,
        data_year: year(row.try_get("data_year")?)?,
        computed_class: optional_class(row.try_get("computed_class")?)?,
        previous_class: optional_class(row.try_get("previous_class")?)?,
        class_override,
        score: row.try_get("score")?,
        rank: unsigned(row.try_get("class_rank")?, "rank")?,
        indices: PerIndicator {
            population: row.try_get("index_population")?,
            fiscal_revenue: row.try_get("index_fiscal_revenue")?,
            land_area: row.try_get("index_land_area")?,
        },
        run_id: row.try_get("run_id")?,
        explanation: row.try_get("explanation")?,
    })
}

/// A history line and its id (the listing's key).
fn change_from_row(row: &DbRow) -> StoreResult<(i64, ClassChange)> {
    let cause: &str = row.try_get("cause")?;
    let cause = [ChangeCause::Classification, ChangeCause::Override]
        .into_iter()
        .find(|c| c.as_str() == cause)
        .ok_or_else(|| corrupt(format!("change cause {cause:?}")))?;
    Ok((
        row.try_get("id")?,
        ClassChange {
            township: township_code(row.try_get("township")?)?,
            township_name: row.try_get("township_name")?,
            data_year: year(row.try_get("data_year")?)?,
            previous_class: optional_class(row.try_get("previous_class")?)?,
            new_class: class_value(row.try_get("new_class")?)?,
            score: row.try_get("score")?,
            cause,
            run_id: row.try_get("run_id")?,
            changed_at: row.try_get("changed_at")?,
        },
    ))
}

/// A run; its lines and response only when the row has them (`get_run`), empty otherwise (listings).
fn run_from_row(row: &DbRow, with_body: bool) -> StoreResult<ClassificationRun> {
    let (lines, response) = if with_body {
        let lines: &str = row.try_get("lines")?;
        let lines: Vec<RunLine> =
            serde_json::from_str(lines).map_err(|e| corrupt(format!("classification run lines: {e}")))?;
        (lines, row.try_get::<Vec<u8>, _>("response")?)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(ClassificationRun {
        id: row.try_get("id")?,
        cohort: CohortKey { city: city_code(row.try_get("city")?)?, data_year: year(row.try_get("data_year")?)? },
        policy_version: row.try_get("policy_version")?,
        policy_fingerprint: row.try_get("policy_fingerprint")?,
        run_at: row.try_get("run_at")?,
        classes_changed: unsigned(row.try_get("classes_changed")?, "classes changed")?,
        lines,
        response,
    })
}

fn institution_from_row(row: &DbRow) -> StoreResult<Institution> {
    let kind: &str = row.try_get("kind")?;
    Ok(Institution {
        id: row.try_get("id")?,
        township: township_code(row.try_get("township")?)?,
        kind: InstitutionKind::parse(kind).ok_or_else(|| corrupt(format!("institution kind {kind:?}")))?,
        name: row.try_get("name")?,
        staffing_quota: unsigned(row.try_get("staffing_quota")?, "staffing quota")?,
        approving_document: row.try_get("approving_document")?,
        valid_from: row.try_get("valid_from")?,
        valid_to: row.try_get("valid_to")?,
        created_at: row.try_get("created_at")?,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn plaque_from_row(row: &DbRow) -> StoreResult<Plaque> {
    Ok(Plaque {
        id: row.try_get("id")?,
        institution_id: row.try_get("institution_id")?,
        township: township_code(row.try_get("township")?)?,
        name: row.try_get("name")?,
        approving_document: row.try_get("approving_document")?,
        created_at: row.try_get("created_at")?,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn post_from_row(row: &DbRow) -> StoreResult<LeadershipPost> {
    let mandated_role = match row.try_get::<Option<&str>, _>("mandated_role")? {
        None => None,
        Some(role) => Some(MandatedRole::parse(role).ok_or_else(|| corrupt(format!("mandated role {role:?}")))?),
    };
    Ok(LeadershipPost {
        id: row.try_get("id")?,
        township: township_code(row.try_get("township")?)?,
        role: row.try_get("role")?,
        holder: row.try_get("holder")?,
        mandated_role,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A stored enum value, decoded with its `parse`.
fn decode<T>(text: &str, parse: impl Fn(&str) -> Option<T>, what: &str) -> StoreResult<T> {
    parse(text).ok_or_else(|| corrupt(format!("{what} {text:?}")))
}

fn catalogue_item_from_row(row: &DbRow) -> StoreResult<CatalogueItem> {
    let owner: &str = row.try_get("owner")?;
    let owner = if owner.len() == 6 {
        CatalogueOwner::County(county_code(owner)?)
    } else {
        CatalogueOwner::Township(township_code(owner)?)
    };
    // A column the item's type requires.
    let required = |column: &str| -> StoreResult<String> {
        row.try_get::<Option<String>, _>(column)?.ok_or_else(|| corrupt(format!("catalogue item without {column}")))
    };
    let item_type: &str = row.try_get("item_type")?;
    let details = match decode(item_type, CatalogueItemType::parse, "catalogue item type")? {
        CatalogueItemType::Power => ItemDetails::Power {
            category: decode(&required("power_category")?, PowerCategory::parse, "power category")?,
            legal_basis: required("legal_basis")?,
            origin: decode(&required("power_origin")?, PowerOrigin::parse, "power origin")?,
        },
        CatalogueItemType::Responsibility => ItemDetails::Responsibility {
            power_item_code: row.try_get("power_item_code")?,
            duties: required("duties")?,
            accountability_cases: required("accountability_cases")?,
        },
        CatalogueItemType::PublicService => ItemDetails::PublicService {
            service_domain: required("service_domain")?,
            handling_mode: decode(&required("handling_mode")?, HandlingMode::parse, "handling mode")?,
        },
    };
    Ok(CatalogueItem {
        id: row.try_get("id")?,
        owner,
        code: row.try_get("code")?,
        title: row.try_get("title")?,
        duty_area: decode(row.try_get("duty_area")?, DutyArea::parse, "duty area")?,
        responsible_institution_id: row.try_get("responsible_institution_id")?,
        responsible_institution_title: row.try_get("responsible_institution_title")?,
        details,
        created_at: row.try_get("created_at")?,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn audit_from_row(row: &DbRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: row.try_get("id")?,
        actor: row.try_get("actor")?,
        at: row.try_get("at")?,
        action: row.try_get("action")?,
        resource: row.try_get("resource")?,
        before: row.try_get("before_json")?,
        after: row.try_get("after_json")?,
    })
}

// ------------------------------------------------------------------------------------------------------------
// Resource names

fn institution_resource(township: &TownshipCode, id: i64) -> String {
    format!("{}/institutions/{id}", township_name(township))
}

fn plaque_resource(township: &TownshipCode, institution_id: i64, id: i64) -> String {
    format!("{}/plaques/{id}", institution_resource(township, institution_id))
}

fn post_resource(township: &TownshipCode, id: i64) -> String {
    format!("{}/posts/{id}", township_name(township))
}

fn observation_resource(observation: &IndicatorObservation) -> String {
    format!(
        "{}/indicators/{}/observations/{}",
        township_name(&observation.township),
        observation.data_year,
        observation.id
    )
}

fn class_resource(township: &TownshipCode, data_year: i32) -> String {
    format!("{}/classes/{data_year}", township_name(township))
}

fn policy_resource(city: &CityCode, version: i64) -> String {
    format!("{}/policies/{version}", city_name(city))
}

fn run_resource(city: &CityCode, id: i64) -> String {
    format!("{}/classificationRuns/{id}", city_name(city))
}

fn cohort_resource(cohort: &CohortKey) -> String {
    format!("{}/cohorts/{}", city_name(&cohort.city), cohort.data_year)
}

// ------------------------------------------------------------------------------------------------------------
// Statements used by several methods

/// Writes one audit event, in the caller's transaction.
async fn audit(
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

async fn find_township(conn: &mut Conn, code: &TownshipCode) -> StoreResult<Option<Township>> {
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
async fn lock_township(conn: &mut Conn, code: &TownshipCode) -> StoreResult<Township> {
    let sql = format!("SELECT {TOWNSHIP_COLUMNS} FROM townships t WHERE t.code = $1{FOR_UPDATE}");
    match sqlx::query(&sql).bind(code.as_str()).fetch_optional(&mut *conn).await? {
        Some(row) => township_from_row(&row),
        None => Err(township_not_found(code)),
    }
}

fn township_not_found(code: &TownshipCode) -> StoreError {
    StoreError::NotFound(format!("township {code}"))
}

async fn city_exists(conn: &mut Conn, city: &CityCode) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT 1 FROM cities WHERE code = $1")
        .bind(city.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

async fn county_exists(conn: &mut Conn, county: &CountyCode) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT 1 FROM counties WHERE code = $1")
        .bind(county.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// NotFound unless the scope's city, county or township exists. Listings call it when they find nothing, to
/// tell an empty scope from a missing one.
async fn ensure_scope(conn: &mut Conn, scope: &Scope) -> StoreResult<()> {
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
async fn mark_pending(conn: &mut Conn, cohort: &CohortKey, now: TimestampMs) -> StoreResult<()> {
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

/// The cohort's outbox row and its lease holder, locked (PostgreSQL).
async fn lock_job(conn: &mut Conn, cohort: &CohortKey) -> StoreResult<(CohortJob, Option<String>)> {
    let sql =
        format!("SELECT {JOB_COLUMNS}, lease_owner FROM cohort_jobs WHERE city = $1 AND data_year = $2{FOR_UPDATE}");
    let row = sqlx::query(&sql)
        .bind(cohort.city.as_str())
        .bind(i64::from(cohort.data_year))
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            StoreError::NotFound(format!("classification job of cohort {} {}", cohort.city, cohort.data_year))
        })?;
    Ok((job_from_row(&row)?, row.try_get("lease_owner")?))
}

fn check_lease(cohort: &CohortKey, holder: Option<&str>, worker: &str) -> StoreResult<()> {
    if holder == Some(worker) {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "cohort {} {} is not leased to {worker:?} (lease holder: {}); its lease expired and another worker may \
         have claimed it",
        cohort.city,
        cohort.data_year,
        holder.map_or_else(|| "none".to_owned(), |h| format!("{h:?}"))
    )))
}

async fn find_class(conn: &mut Conn, township: &TownshipCode, data_year: i32) -> StoreResult<Option<ClassRecord>> {
    let sql = format!("SELECT {CLASS_COLUMNS} FROM township_classes c WHERE c.township = $1 AND c.data_year = $2");
    sqlx::query(&sql)
        .bind(township.as_str())
        .bind(i64::from(data_year))
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| class_from_row(&row))
        .transpose()
}

async fn insert_history(conn: &mut Conn, change: &ClassChange) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO class_history (township, data_year, previous_class, new_class, score, cause, run_id, changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(change.township.as_str())
    .bind(i64::from(change.data_year))
    .bind(change.previous_class.map(i64::from))
    .bind(i64::from(change.new_class))
    .bind(change.score)
    .bind(change.cause.as_str())
    .bind(change.run_id)
    .bind(change.changed_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn find_institution(conn: &mut Conn, township: &TownshipCode, id: i64) -> StoreResult<Institution> {
    let sql = format!("SELECT {INSTITUTION_COLUMNS} FROM institutions i WHERE i.township = $1 AND i.id = $2");
    match sqlx::query(&sql).bind(township.as_str()).bind(id).fetch_optional(&mut *conn).await? {
        Some(row) => institution_from_row(&row),
        None => Err(StoreError::NotFound(format!("institution {}", institution_resource(township, id)))),
    }
}

async fn find_post(conn: &mut Conn, township: &TownshipCode, id: i64) -> StoreResult<LeadershipPost> {
    let sql = format!("SELECT {POST_COLUMNS} FROM leadership_posts p WHERE p.township = $1 AND p.id = $2");
    match sqlx::query(&sql).bind(township.as_str()).bind(id).fetch_optional(&mut *conn).await? {
        Some(row) => post_from_row(&row),
        None => Err(StoreError::NotFound(format!("leadership post {}", post_resource(township, id)))),
    }
}

/// The county, its row locked until the transaction ends (PostgreSQL), so that two template items of one code
/// cannot both pass the duplicate check. NotFound when it does not exist.
async fn lock_county(conn: &mut Conn, county: &CountyCode) -> StoreResult<()> {
    let sql = format!("SELECT code FROM counties WHERE code = $1{FOR_UPDATE}");
    match sqlx::query(&sql).bind(county.as_str()).fetch_optional(&mut *conn).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!("county {county}"))),
    }
}

async fn find_catalogue_item(conn: &mut Conn, owner: &CatalogueOwner, id: i64) -> StoreResult<CatalogueItem> {
    let sql = format!("SELECT {CATALOGUE_COLUMNS} FROM catalogue_items c WHERE c.owner = $1 AND c.id = $2");
    match sqlx::query(&sql).bind(owner.code()).bind(id).fetch_optional(&mut *conn).await? {
        Some(row) => catalogue_item_from_row(&row),
        None => Err(StoreError::NotFound(format!("catalogue item {}", catalogue_item_name(owner, id)))),
    }
}

/// Every institution of a township, ended ones included, in id order: what its catalogue items resolve among.
async fn all_institutions(conn: &mut Conn, township: &TownshipCode) -> StoreResult<Vec<Institution>> {
    let sql = format!("SELECT {INSTITUTION_COLUMNS} FROM institutions i WHERE i.township = $1 ORDER BY i.id");
    let rows = sqlx::query(&sql).bind(township.as_str()).fetch_all(&mut *conn).await?;
    rows.iter().map(institution_from_row).collect()
}

/// The SQL list of the duty areas a township of `kind` inherits template items of (constants, not input).
fn duty_area_list(kind: TownshipKind) -> String {
    duty_areas_for(kind).iter().map(|area| format!("'{}'", area.as_str())).collect::<Vec<_>>().join(", ")
}

fn describe_post(post: &LeadershipPost) -> String {
    match &post.holder {
        Some(holder) => format!("{} {holder}", post.role),
        None => format!("{} (vacant)", post.role),
    }
}

// ------------------------------------------------------------------------------------------------------------
// The store

#[async_trait]
impl Store for ThisStore {
    // --- hierarchy -------------------------------------------------------------------------------------------

    async fn import_divisions(
        &self,
        cities: &[City],
        counties: &[County],
        townships: &[DivisionTownship],
        actor: &str,
    ) -> StoreResult<ImportCounts> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        for city in cities {
            let sql = format!("SELECT {CITY_COLUMNS} FROM cities c WHERE c.code = $1");
            let before = sqlx::query(&sql).bind(city.code.as_str()).fetch_optional(&mut *tx).await?;
            let before = before.map(|row| city_from_row(&row)).transpose()?;
            if before.as_ref() == Some(city) {
                continue;
            }
            sqlx::query(
                "INSERT INTO cities (code, name, province_code, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, province_code = excluded.province_code, \
                 updated_at = excluded.updated_at",
            )
            .bind(city.code.as_str())
            .bind(&city.name)
            .bind(&city.province_code)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let resource = city_name(&city.code);
            audit(&mut tx, actor, now, "ImportDivisions", &resource, before.map(|b| json(&b)), Some(json(city)))
                .await?;
        }
        for county in counties {
            let city = county.code.city();
            if !city_exists(&mut tx, &city).await? {
                return Err(StoreError::NotFound(format!("city {city} (of county {})", county.code)));
            }
            let sql = format!("SELECT {COUNTY_COLUMNS} FROM counties k WHERE k.code = $1");
            let before = sqlx::query(&sql).bind(county.code.as_str()).fetch_optional(&mut *tx).await?;
            let before = before.map(|row| county_from_row(&row)).transpose()?;
            if before.as_ref() == Some(county) {
                continue;
            }
            sqlx::query(
                "INSERT INTO counties (code, city, name, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at",
            )
            .bind(county.code.as_str())
            .bind(city.as_str())
            .bind(&county.name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let resource = county_name(&county.code);
            audit(&mut tx, actor, now, "ImportDivisions", &resource, before.map(|b| json(&b)), Some(json(county)))
                .await?;
        }
        let mut known_counties = HashSet::new();
        for township in townships {
            let county = township.code.county();
            if !known_counties.contains(&county) {
                if !county_exists(&mut tx, &county).await? {
                    return Err(StoreError::NotFound(format!("county {county} (of township {})", township.code)));
                }
                known_counties.insert(county.clone());
            }
            let before = find_township(&mut tx, &township.code).await?;
            let after = match &before {
                Some(stored) if stored.name == township.name && stored.kind == township.kind => continue,
                Some(stored) => Township {
                    name: township.name.clone(),
                    kind: township.kind,
                    revision: stored.revision + 1,
                    updated_at: now,
                    ..stored.clone()
                },
                None => Township {
                    code: township.code.clone(),
                    name: township.name.clone(),
                    kind: township.kind,
                    flags: Vec::new(),
                    valid_from: None,
                    valid_to: None,
                    revision: 1,
                    updated_at: now,
                },
            };
            sqlx::query(
                "INSERT INTO townships (code, county, city, name, kind, flags, valid_from, valid_to, revision, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, '[]', NULL, NULL, 1, $6) \
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
                 revision = townships.revision + 1, updated_at = excluded.updated_at",
            )
            .bind(township.code.as_str())
            .bind(county.as_str())
            .bind(township.code.city().as_str())
            .bind(&township.name)
            .bind(township.kind.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let resource = township_name(&township.code);
            audit(&mut tx, actor, now, "ImportDivisions", &resource, before.map(|b| json(&b)), Some(json(&after)))
                .await?;
        }
        tx.commit().await?;
        Ok(ImportCounts {
            cities: cities.len() as u32,
            counties: counties.len() as u32,
            townships: townships.len() as u32,
        })
    }

    async fn get_city(&self, city: &CityCode) -> StoreResult<City> {
        let sql = format!("SELECT {CITY_COLUMNS} FROM cities c WHERE c.code = $1");
        match sqlx::query(&sql).bind(city.as_str()).fetch_optional(&self.read).await? {
            Some(row) => city_from_row(&row),
            None => Err(StoreError::NotFound(format!("city {city}"))),
        }
    }

    async fn list_cities(&self, page: &PageRequest) -> StoreResult<Page<City>> {
        let limit = page_limit(page);
        let sql = format!("SELECT {CITY_COLUMNS} FROM cities c WHERE c.code > $1 ORDER BY c.code LIMIT $2");
        let rows = sqlx::query(&sql).bind(after_text(page)).bind(limit + 1).fetch_all(&self.read).await?;
        let cities = rows.iter().map(city_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(cities, limit, |city| city.code.to_string()))
    }

    async fn get_county(&self, county: &CountyCode) -> StoreResult<County> {
        let sql = format!("SELECT {COUNTY_COLUMNS} FROM counties k WHERE k.code = $1");
        match sqlx::query(&sql).bind(county.as_str()).fetch_optional(&self.read).await? {
            Some(row) => county_from_row(&row),
            None => Err(StoreError::NotFound(format!("county {county}"))),
        }
    }

    async fn list_counties(&self, city: &CityCode, page: &PageRequest) -> StoreResult<Page<County>> {
        let limit = page_limit(page);
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {COUNTY_COLUMNS} FROM counties k WHERE k.city = $1 AND k.code > $2 ORDER BY k.code LIMIT $3"
        );
        let rows =
            sqlx::query(&sql).bind(city.as_str()).bind(after_text(page)).bind(limit + 1).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            ensure_scope(&mut conn, &Scope::City(city.clone())).await?;
        }
        let counties = rows.iter().map(county_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(counties, limit, |county| county.code.to_string()))
    }

    async fn get_township(&self, township: &TownshipCode) -> StoreResult<Township> {
        let mut conn = self.read.acquire().await?;
        find_township(&mut conn, township).await?.ok_or_else(|| township_not_found(township))
    }

    async fn list_townships(&self, scope: &Scope, page: &PageRequest) -> StoreResult<Page<Township>> {
        let limit = page_limit(page);
        let (column, value) = scope_filter(scope);
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {TOWNSHIP_COLUMNS} FROM townships t WHERE t.{column} = $1 AND t.code > $2 ORDER BY t.code LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(value).bind(after_text(page)).bind(limit + 1).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            ensure_scope(&mut conn, scope).await?;
        }
        let townships = rows.iter().map(township_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(townships, limit, |township| township.code.to_string()))
    }

    async fn create_township(&self, township: &Township, actor: &str) -> StoreResult<Township> {
        let mut tx = self.begin_write().await?;
        let created = insert_township(&mut tx, township, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn update_township(&self, township: &Township, expected_revision: i64, actor: &str) -> StoreResult<Township> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let stored = lock_township(&mut tx, &township.code).await?;
        if stored.revision != expected_revision {
            return Err(StoreError::Conflict(format!(
                "township {} changed since it was read: expected revision {expected_revision}, stored revision {}; \
                 read it again and retry",
                township.code, stored.revision
            )));
        }
        let updated = Township { revision: stored.revision + 1, updated_at: now, ..township.clone() };
        sqlx::query(
            "UPDATE townships SET name = $1, kind = $2, flags = $3, valid_from = $4, valid_to = $5, revision = $6, \
             updated_at = $7 WHERE code = $8 AND revision = $9",
        )
        .bind(&updated.name)
        .bind(updated.kind.as_str())
        .bind(json(&updated.flags))
        .bind(&updated.valid_from)
        .bind(&updated.valid_to)
        .bind(updated.revision)
        .bind(updated.updated_at)
        .bind(updated.code.as_str())
        .bind(stored.revision)
        .execute(&mut *tx)
        .await?;
        let resource = township_name(&updated.code);
        audit(&mut tx, actor, now, "UpdateTownship", &resource, Some(json(&stored)), Some(json(&updated))).await?;
        tx.commit().await?;
        Ok(updated)
    }

    // --- indicators and the outbox ---------------------------------------------------------------------------

    async fn record_observations(
        &self,
        observations: &[NewObservation],
        actor: &str,
        validate_only: bool,
    ) -> StoreResult<Vec<RecordedObservation>> {
        if observations.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let recorded = record_in(&mut tx, observations, actor, now_ms(), validate_only).await?;
        if validate_only {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(recorded)
    }

    async fn list_observations(
        &self,
        township: &TownshipCode,
        data_year: Option<i32>,
        page: &PageRequest,
    ) -> StoreResult<Page<IndicatorObservation>> {
        let limit = page_limit(page);
        let after = after_id_descending(page)?;
        let mut conn = self.read.acquire().await?;
        let rows = match data_year {
            Some(data_year) => {
                let sql = format!(
                    "SELECT {OBSERVATION_COLUMNS} FROM indicator_observations o WHERE o.township = $1 AND o.id < $2 \
                     AND o.data_year = $3 ORDER BY o.id DESC LIMIT $4"
                );
                sqlx::query(&sql)
                    .bind(township.as_str())
                    .bind(after)
                    .bind(i64::from(data_year))
                    .bind(limit + 1)
                    .fetch_all(&mut *conn)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {OBSERVATION_COLUMNS} FROM indicator_observations o WHERE o.township = $1 AND o.id < $2 \
                     ORDER BY o.id DESC LIMIT $3"
                );
                sqlx::query(&sql).bind(township.as_str()).bind(after).bind(limit + 1).fetch_all(&mut *conn).await?
            }
        };
        if rows.is_empty() {
            ensure_scope(&mut conn, &Scope::Township(township.clone())).await?;
        }
        let observations = rows.iter().map(observation_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(observations, limit, |observation| observation.id.to_string()))
    }

    async fn cohort_inputs(&self, cohort: &CohortKey) -> StoreResult<Vec<(Township, IndicatorObservation)>> {
        let sql = format!(
            "SELECT {TOWNSHIP_COLUMNS}, {OBSERVATION_COLUMNS} FROM townships t \
             JOIN indicator_observations o ON o.township = t.code \
             WHERE t.city = $1 AND o.data_year = $2 AND o.id = (SELECT MAX(l.id) FROM indicator_observations l \
             WHERE l.township = t.code AND l.data_year = $2) ORDER BY t.code"
        );
        let rows = sqlx::query(&sql)
            .bind(cohort.city.as_str())
            .bind(i64::from(cohort.data_year))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|row| Ok((township_from_row(row)?, observation_from_row(row)?))).collect()
    }

    async fn latest_data_year(&self, city: &CityCode) -> StoreResult<Option<i32>> {
        let row = sqlx::query(
            "SELECT MAX(o.data_year) AS data_year FROM indicator_observations o \
             JOIN townships t ON t.code = o.township WHERE t.city = $1",
        )
        .bind(city.as_str())
        .fetch_one(&self.read)
        .await?;
        row.try_get::<Option<i64>, _>("data_year")?.map(year).transpose()
    }

    // --- policies ------------------------------------------------------------------------------------------

    async fn insert_city_policy(&self, city: &CityCode, policy: &Policy, actor: &str) -> StoreResult<CityPolicy> {
        let mut tx = self.begin_write().await?;
        let created = insert_policy(&mut tx, city, policy, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn latest_city_policy(&self, city: &CityCode) -> StoreResult<Option<CityPolicy>> {
        let sql =
            format!("SELECT {POLICY_COLUMNS} FROM city_policies p WHERE p.city = $1 ORDER BY p.version DESC LIMIT 1");
        sqlx::query(&sql)
            .bind(city.as_str())
            .fetch_optional(&self.read)
            .await?
            .map(|row| policy_from_row(&row))
            .transpose()
    }

    async fn get_city_policy(&self, city: &CityCode, version: i64) -> StoreResult<CityPolicy> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM city_policies p WHERE p.city = $1 AND p.version = $2");
        match sqlx::query(&sql).bind(city.as_str()).bind(version).fetch_optional(&self.read).await? {
            Some(row) => policy_from_row(&row),
            None => Err(StoreError::NotFound(format!("policy {}", policy_resource(city, version)))),
        }
    }

    async fn list_city_policies(&self, city: &CityCode, page: &PageRequest) -> StoreResult<Page<CityPolicy>> {
        let limit = page_limit(page);
        let after = after_id_descending(page)?;
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM city_policies p WHERE p.city = $1 AND p.version < $2 \
             ORDER BY p.version DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(city.as_str()).bind(after).bind(limit + 1).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            ensure_scope(&mut conn, &Scope::City(city.clone())).await?;
        }
        let policies = rows.iter().map(policy_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(policies, limit, |policy| policy.version.to_string()))
    }

    // --- the classification worker ---------------------------------------------------------------------------

    async fn claim_due_cohort(&self, worker: &str, lease_ms: i64) -> StoreResult<Option<CohortJob>> {
        let now = now_ms();
        // One statement: the subquery picks (and on PostgreSQL locks, skipping rows another replica is
        // claiming) the most overdue claimable cohort, and the update writes the lease.
        let sql = format!(
            "UPDATE cohort_jobs SET lease_owner = $1, lease_until = $2 \
             WHERE (city, data_year) IN (SELECT city, data_year FROM cohort_jobs \
             WHERE state = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
             ORDER BY next_attempt_at, city, data_year LIMIT 1{SKIP_LOCKED}) \
             RETURNING {JOB_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(worker)
            .bind(now.saturating_add(lease_ms.max(0)))
            .bind(now)
            .fetch_optional(&self.write)
            .await?;
        row.map(|row| job_from_row(&row)).transpose()
    }

    async fn release_leases(&self, worker: &str) -> StoreResult<u64> {
        let result =
            sqlx::query("UPDATE cohort_jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1")
                .bind(worker)
                .execute(&self.write)
                .await?;
        Ok(result.rows_affected())
    }

    async fn complete_run(&self, run: &NewRun, worker: &str) -> StoreResult<StoredRun> {
        let now = now_ms();
        let cohort = &run.cohort;
        let mut tx = self.begin_write().await?;
        let (job, holder) = lock_job(&mut tx, cohort).await?;
        check_lease(cohort, holder.as_deref(), worker)?;

        let rows = sqlx::query("SELECT code, name FROM townships WHERE city = $1")
            .bind(cohort.city.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let mut names = HashMap::with_capacity(rows.len());
        for row in rows {
            names.insert(row.try_get::<String, _>("code")?, row.try_get::<String, _>("name")?);
        }
        let rows = sqlx::query(
            "SELECT c.township, c.computed_class FROM township_classes c JOIN townships t ON t.code = c.township \
             WHERE t.city = $1 AND c.data_year = $2",
        )
        .bind(cohort.city.as_str())
        .bind(i64::from(cohort.data_year))
        .fetch_all(&mut *tx)
        .await?;
        let mut old_classes = HashMap::with_capacity(rows.len());
        for row in rows {
            old_classes.insert(row.try_get::<String, _>("township")?, optional_class(row.try_get("computed_class")?)?);
        }

        let mut seen = HashSet::new();
        let mut moved = Vec::new();
        for line in &run.lines {
            let code = line.township.as_str();
            if line.township.city() != cohort.city || !names.contains_key(code) {
                return Err(StoreError::NotFound(format!(
                    "township {code} (a line of the run of cohort {} {})",
                    cohort.city, cohort.data_year
                )));
            }
            if !seen.insert(code) {
                return Err(StoreError::AlreadyExists(format!("a line for township {code} in the run")));
            }
            let previous = old_classes.get(code).copied().flatten();
            if previous != Some(line.class) {
                moved.push((line, previous));
            }
        }

        let row = sqlx::query(
            "INSERT INTO classification_runs (city, data_year, generation, policy_version, policy_fingerprint, run_at, \
             run_by, classes_changed, lines, response) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(cohort.city.as_str())
        .bind(i64::from(cohort.data_year))
        .bind(run.generation)
        .bind(run.policy_version)
        .bind(&run.policy_fingerprint)
        .bind(now)
        .bind(worker)
        .bind(moved.len() as i64)
        .bind(json(&run.lines))
        .bind(&run.response)
        .fetch_one(&mut *tx)
        .await?;
        let run_id: i64 = row.try_get("id")?;

        for line in &run.lines {
            let previous = old_classes.get(line.township.as_str()).copied().flatten();
            sqlx::query(
                "INSERT INTO township_classes (township, data_year, computed_class, previous_class, score, class_rank, \
                 index_population, index_fiscal_revenue, index_land_area, run_id, explanation, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (township, data_year) DO UPDATE SET computed_class = excluded.computed_class, \
                 previous_class = excluded.previous_class, score = excluded.score, class_rank = excluded.class_rank, \
                 index_population = excluded.index_population, index_fiscal_revenue = excluded.index_fiscal_revenue, \
                 index_land_area = excluded.index_land_area, run_id = excluded.run_id, \
                 explanation = excluded.explanation, updated_at = excluded.updated_at",
            )
            .bind(line.township.as_str())
            .bind(i64::from(cohort.data_year))
            .bind(i64::from(line.class))
            .bind(previous.map(i64::from))
            .bind(line.score)
            .bind(i64::from(line.rank))
            .bind(line.indices.population)
            .bind(line.indices.fiscal_revenue)
            .bind(line.indices.land_area)
            .bind(run_id)
            .bind(&line.explanation)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }

        let mut changes = Vec::with_capacity(moved.len());
        for (line, previous) in moved {
            let change = ClassChange {
                township: line.township.clone(),
                township_name: names.get(line.township.as_str()).cloned().unwrap_or_default(),
                data_year: cohort.data_year,
                previous_class: previous,
                new_class: line.class,
                score: line.score,
                cause: ChangeCause::Classification,
                run_id: Some(run_id),
                changed_at: now,
            };
            insert_history(&mut tx, &change).await?;
            changes.push(change);
        }

        let job_cleared = job.generation == run.generation;
        let state = if job_cleared { CohortState::Current } else { CohortState::Pending };
        sqlx::query(
            "UPDATE cohort_jobs SET state = $1, attempts = 0, last_error = '', next_attempt_at = $2, last_run = $3, \
             lease_owner = NULL, lease_until = NULL, updated_at = $2 WHERE city = $4 AND data_year = $5",
        )
        .bind(state_text(state))
        .bind(now)
        .bind(run_id)
        .bind(cohort.city.as_str())
        .bind(i64::from(cohort.data_year))
        .execute(&mut *tx)
        .await?;

        let after = serde_json::json!({
            "id": run_id,
            "cohort": cohort,
            "generation": run.generation,
            "policy_version": run.policy_version,
            "policy_fingerprint": run.policy_fingerprint,
            "townships": run.lines.len(),
            "classes_changed": changes.len(),
            "job_cleared": job_cleared,
        });
        let resource = run_resource(&cohort.city, run_id);
        audit(&mut tx, worker, now, "ClassifyCohort", &resource, None, Some(after.to_string())).await?;
        tx.commit().await?;
        Ok(StoredRun { run_id, changes, job_cleared })
    }

    async fn fail_attempt(
        &self,
        cohort: &CohortKey,
        worker: &str,
        error: &str,
        next_attempt_at: TimestampMs,
        dead_letter: bool,
    ) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let (job, holder) = lock_job(&mut tx, cohort).await?;
        check_lease(cohort, holder.as_deref(), worker)?;
        let state = if dead_letter { CohortState::DeadLetter } else { CohortState::Pending };
        sqlx::query(
            "UPDATE cohort_jobs SET state = $1, attempts = attempts + 1, last_error = $2, next_attempt_at = $3, \
             lease_owner = NULL, lease_until = NULL, updated_at = $4 WHERE city = $5 AND data_year = $6",
        )
        .bind(state_text(state))
        .bind(error)
        .bind(next_attempt_at)
        .bind(now)
        .bind(cohort.city.as_str())
        .bind(i64::from(cohort.data_year))
        .execute(&mut *tx)
        .await?;
        let after = serde_json::json!({
            "cohort": cohort,
            "state": state_text(state),
            "generation": job.generation,
            "attempts": job.attempts + 1,
            "last_error": error,
            "next_attempt_at": next_attempt_at,
        });
        let action = if dead_letter { "DeadLetterClassification" } else { "FailClassificationAttempt" };
        audit(&mut tx, worker, now, action, &cohort_resource(cohort), None, Some(after.to_string())).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn cohort_job(&self, cohort: &CohortKey) -> StoreResult<Option<CohortJob>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM cohort_jobs WHERE city = $1 AND data_year = $2");
        sqlx::query(&sql)
            .bind(cohort.city.as_str())
            .bind(i64::from(cohort.data_year))
            .fetch_optional(&self.read)
            .await?
            .map(|row| job_from_row(&row))
            .transpose()
    }

    async fn next_due_at(&self) -> StoreResult<Option<TimestampMs>> {
        // A leased cohort is due again when its lease runs out (if its holder never reports back).
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at THEN lease_until \
             ELSE next_attempt_at END) AS due FROM cohort_jobs WHERE state = 'pending'",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get("due")?)
    }

    // --- classes and runs ------------------------------------------------------------------------------------

    async fn get_class(&self, township: &TownshipCode, data_year: i32) -> StoreResult<Option<ClassRecord>> {
        let mut conn = self.read.acquire().await?;
        let found = find_class(&mut conn, township, data_year).await?;
        if found.is_none() {
            ensure_scope(&mut conn, &Scope::Township(township.clone())).await?;
        }
        Ok(found)
    }

    async fn list_classes(&self, scope: &Scope, data_year: i32, page: &PageRequest) -> StoreResult<Page<ClassRecord>> {
        let limit = page_limit(page);
        let (column, value) = scope_filter(scope);
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {CLASS_COLUMNS} FROM township_classes c JOIN townships t ON t.code = c.township \
             WHERE t.{column} = $1 AND c.data_year = $2 AND c.township > $3 ORDER BY c.township LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(value)
            .bind(i64::from(data_year))
            .bind(after_text(page))
            .bind(limit + 1)
            .fetch_all(&mut *conn)
            .await?;
        if rows.is_empty() {
            ensure_scope(&mut conn, scope).await?;
        }
        let classes = rows.iter().map(class_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(classes, limit, |class| class.township.to_string()))
    }

    async fn class_history(&self, township: &TownshipCode, page: &PageRequest) -> StoreResult<Page<ClassChange>> {
        let limit = page_limit(page);
        let after = after_id_descending(page)?;
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {HISTORY_COLUMNS} FROM class_history h JOIN townships t ON t.code = h.township \
             WHERE h.township = $1 AND h.id < $2 ORDER BY h.id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(township.as_str()).bind(after).bind(limit + 1).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            ensure_scope(&mut conn, &Scope::Township(township.clone())).await?;
        }
        let changes = rows
            .iter()
            .map(|row| change_from_row(row).map(|(id, change)| (id.to_string(), change)))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(keyed_page(changes, limit))
    }

    async fn set_override(
        &self,
        township: &TownshipCode,
        data_year: i32,
        class_override: &ClassOverride,
        actor: &str,
    ) -> StoreResult<(ClassRecord, Option<ClassChange>)> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let stored_township = lock_township(&mut tx, township).await?;
        let before = find_class(&mut tx, township, data_year).await?;
        sqlx::query(
            "INSERT INTO township_classes (township, data_year, computed_class, previous_class, override_class, \
             override_reason, override_document_number, override_set_by, override_set_at, score, class_rank, \
             index_population, index_fiscal_revenue, index_land_area, run_id, explanation, updated_at) \
             VALUES ($1, $2, NULL, NULL, $3, $4, $5, $6, $7, 0, 0, 0, 0, 0, NULL, '', $8) \
             ON CONFLICT (township, data_year) DO UPDATE SET override_class = excluded.override_class, \
             override_reason = excluded.override_reason, \
             override_document_number = excluded.override_document_number, \
             override_set_by = excluded.override_set_by, override_set_at = excluded.override_set_at, \
             updated_at = excluded.updated_at",
        )
        .bind(township.as_str())
        .bind(i64::from(data_year))
        .bind(i64::from(class_override.class))
        .bind(&class_override.reason)
        .bind(&class_override.document_number)
        .bind(&class_override.set_by)
        .bind(class_override.set_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let after = find_class(&mut tx, township, data_year)
            .await?
            .ok_or_else(|| StoreError::Internal("the class row just written is missing".to_owned()))?;
        let previous = before.as_ref().and_then(ClassRecord::effective_class);
        let change = if previous == Some(class_override.class) {
            None
        } else {
            let change = ClassChange {
                township: township.clone(),
                township_name: stored_township.name.clone(),
                data_year,
                previous_class: previous,
                new_class: class_override.class,
                score: after.score,
                cause: ChangeCause::Override,
                run_id: None,
                changed_at: now,
            };
            insert_history(&mut tx, &change).await?;
            Some(change)
        };
        let resource = class_resource(township, data_year);
        audit(&mut tx, actor, now, "SetClassOverride", &resource, before.map(|b| json(&b)), Some(json(&after))).await?;
        tx.commit().await?;
        Ok((after, change))
    }

    async fn clear_override(
        &self,
        township: &TownshipCode,
        data_year: i32,
        actor: &str,
    ) -> StoreResult<(ClassRecord, Option<ClassChange>)> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let stored_township = lock_township(&mut tx, township).await?;
        let before = find_class(&mut tx, township, data_year)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("class of township {township} for data year {data_year}")))?;
        let Some(class_override) = &before.class_override else {
            // Nothing to clear: nothing changes, nothing to audit.
            return Ok((before, None));
        };
        let after = ClassRecord { class_override: None, ..before.clone() };
        if after.computed_class.is_none() {
            // The row existed only for the override: without it the township is unclassified that year.
            sqlx::query("DELETE FROM township_classes WHERE township = $1 AND data_year = $2")
                .bind(township.as_str())
                .bind(i64::from(data_year))
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "UPDATE township_classes SET override_class = NULL, override_reason = NULL, \
                 override_document_number = NULL, override_set_by = NULL, override_set_at = NULL, updated_at = $1 \
                 WHERE township = $2 AND data_year = $3",
            )
            .bind(now)
            .bind(township.as_str())
            .bind(i64::from(data_year))
            .execute(&mut *tx)
            .await?;
        }
        let change = match after.computed_class {
            Some(computed) if computed != class_override.class => {
                let change = ClassChange {
                    township: township.clone(),
                    township_name: stored_township.name.clone(),
                    data_year,
                    previous_class: Some(class_override.class),
                    new_class: computed,
                    score: after.score,
                    cause: ChangeCause::Override,
                    run_id: None,
                    changed_at: now,
                };
                insert_history(&mut tx, &change).await?;
                Some(change)
            }
            _ => None,
        };
        let resource = class_resource(township, data_year);
        audit(&mut tx, actor, now, "ClearClassOverride", &resource, Some(json(&before)), Some(json(&after))).await?;
        tx.commit().await?;
        Ok((after, change))
    }

    async fn get_run(&self, city: &CityCode, run_id: i64) -> StoreResult<ClassificationRun> {
        let sql = format!(
            "SELECT {RUN_COLUMNS}, r.lines, r.response FROM classification_runs r WHERE r.city = $1 AND r.id = $2"
        );
        match sqlx::query(&sql).bind(city.as_str()).bind(run_id).fetch_optional(&self.read).await? {
            Some(row) => run_from_row(&row, true),
            None => Err(StoreError::NotFound(format!("classification run {}", run_resource(city, run_id)))),
        }
    }

    async fn list_runs(&self, city: &CityCode, page: &PageRequest) -> StoreResult<Page<ClassificationRun>> {
        let limit = page_limit(page);
        let after = after_id_descending(page)?;
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM classification_runs r WHERE r.city = $1 AND r.id < $2 ORDER BY r.id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(city.as_str()).bind(after).bind(limit + 1).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            ensure_scope(&mut conn, &Scope::City(city.clone())).await?;
        }
        let runs = rows.iter().map(|row| run_from_row(row, false)).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(runs, limit, |run| run.id.to_string()))
    }

    // --- institutions, plaques, posts ----------------------------------------------------------------------

    async fn create_institution(
        &self,
        institution: &NewInstitution,
        max_of_kind: u32,
        actor: &str,
    ) -> StoreResult<Institution> {
        let mut tx = self.begin_write().await?;
        let created = insert_institution(&mut tx, institution, max_of_kind, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn get_institution(&self, township: &TownshipCode, id: i64) -> StoreResult<Institution> {
        let mut conn = self.read.acquire().await?;
        find_institution(&mut conn, township, id).await
    }

    async fn list_institutions(&self, township: &TownshipCode, page: &PageRequest) -> StoreResult<Page<Institution>> {
        let limit = page_limit(page);
        let after = after_id_ascending(page)?;
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {INSTITUTION_COLUMNS} FROM institutions i WHERE i.township = $1 AND i.id > $2 ORDER BY i.id LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(township.as_str()).bind(after).bind(limit + 1).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            ensure_scope(&mut conn, &Scope::Township(township.clone())).await?;
        }
        let institutions = rows.iter().map(institution_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(institutions, limit, |institution| institution.id.to_string()))
    }

    async fn delete_institution(&self, township: &TownshipCode, id: i64, actor: &str) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        lock_township(&mut tx, township).await?;
        let institution = find_institution(&mut tx, township, id).await?;
        let sql = format!("SELECT {PLAQUE_COLUMNS} FROM plaques p WHERE p.institution_id = $1 ORDER BY p.id");
        let plaques = sqlx::query(&sql).bind(id).fetch_all(&mut *tx).await?;
        let plaques = plaques.iter().map(plaque_from_row).collect::<StoreResult<Vec<_>>>()?;
        // The plaques go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM institutions WHERE id = $1").bind(id).execute(&mut *tx).await?;
        for plaque in &plaques {
            let resource = plaque_resource(township, id, plaque.id);
            audit(&mut tx, actor, now, "DeletePlaque", &resource, Some(json(plaque)), None).await?;
        }
        let resource = institution_resource(township, id);
        audit(&mut tx, actor, now, "DeleteInstitution", &resource, Some(json(&institution)), None).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_plaque(
        &self,
        township: &TownshipCode,
        plaque: &NewPlaque,
        max_per_township: u32,
        actor: &str,
    ) -> StoreResult<Plaque> {
        let mut tx = self.begin_write().await?;
        let created = insert_plaque(&mut tx, township, plaque, max_per_township, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn list_plaques(
        &self,
        township: &TownshipCode,
        institution_id: Option<i64>,
        page: &PageRequest,
    ) -> StoreResult<Page<Plaque>> {
        let limit = page_limit(page);
        let after = after_id_ascending(page)?;
        let mut conn = self.read.acquire().await?;
        let rows = match institution_id {
            Some(institution_id) => {
                let sql = format!(
                    "SELECT {PLAQUE_COLUMNS} FROM plaques p WHERE p.township = $1 AND p.institution_id = $2 \
                     AND p.id > $3 ORDER BY p.id LIMIT $4"
                );
                sqlx::query(&sql)
                    .bind(township.as_str())
                    .bind(institution_id)
                    .bind(after)
                    .bind(limit + 1)
                    .fetch_all(&mut *conn)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {PLAQUE_COLUMNS} FROM plaques p WHERE p.township = $1 AND p.id > $2 ORDER BY p.id LIMIT $3"
                );
                sqlx::query(&sql).bind(township.as_str()).bind(after).bind(limit + 1).fetch_all(&mut *conn).await?
            }
        };
        if rows.is_empty() {
            match institution_id {
                Some(institution_id) => drop(find_institution(&mut conn, township, institution_id).await?),
                None => ensure_scope(&mut conn, &Scope::Township(township.clone())).await?,
            }
        }
        let plaques = rows.iter().map(plaque_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(plaques, limit, |plaque| plaque.id.to_string()))
    }

    async fn delete_plaque(
        &self,
        township: &TownshipCode,
        institution_id: i64,
        id: i64,
        actor: &str,
    ) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        lock_township(&mut tx, township).await?;
        let sql = format!(
            "SELECT {PLAQUE_COLUMNS} FROM plaques p WHERE p.township = $1 AND p.institution_id = $2 AND p.id = $3"
        );
        let resource = plaque_resource(township, institution_id, id);
        let plaque = match sqlx::query(&sql)
            .bind(township.as_str())
            .bind(institution_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(row) => plaque_from_row(&row)?,
            None => return Err(StoreError::NotFound(format!("plaque {resource}"))),
        };
        sqlx::query("DELETE FROM plaques WHERE id = $1").bind(id).execute(&mut *tx).await?;
        audit(&mut tx, actor, now, "DeletePlaque", &resource, Some(json(&plaque)), None).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_post(&self, post: &NewPost, quota: u32, actor: &str) -> StoreResult<LeadershipPost> {
        let mut tx = self.begin_write().await?;
        let created = insert_post(&mut tx, post, quota, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn list_posts(&self, township: &TownshipCode, page: &PageRequest) -> StoreResult<Page<LeadershipPost>> {
        let limit = page_limit(page);
        let after = after_id_ascending(page)?;
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM leadership_posts p WHERE p.township = $1 AND p.id > $2 ORDER BY p.id LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(township.as_str()).bind(after).bind(limit + 1).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            ensure_scope(&mut conn, &Scope::Township(township.clone())).await?;
        }
        let posts = rows.iter().map(post_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(posts, limit, |post| post.id.to_string()))
    }

    async fn get_post(&self, township: &TownshipCode, id: i64) -> StoreResult<LeadershipPost> {
        let mut conn = self.read.acquire().await?;
        find_post(&mut conn, township, id).await
    }

    async fn update_post(
        &self,
        post: &LeadershipPost,
        expected_revision: i64,
        actor: &str,
    ) -> StoreResult<LeadershipPost> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        lock_township(&mut tx, &post.township).await?;
        let stored = find_post(&mut tx, &post.township, post.id).await?;
        if stored.revision != expected_revision {
            return Err(StoreError::Conflict(format!(
                "leadership post {} changed since it was read: expected revision {expected_revision}, stored revision \
                 {}; read it again and retry",
                post_resource(&post.township, post.id),
                stored.revision
            )));
        }
        let updated = LeadershipPost {
            role: post.role.clone(),
            holder: post.holder.clone(),
            mandated_role: post.mandated_role,
            revision: stored.revision + 1,
            updated_at: now,
            ..stored.clone()
        };
        sqlx::query(
            "UPDATE leadership_posts SET role = $1, holder = $2, mandated_role = $3, revision = $4, updated_at = $5 \
             WHERE id = $6 AND revision = $7",
        )
        .bind(&updated.role)
        .bind(&updated.holder)
        .bind(updated.mandated_role.map(MandatedRole::as_str))
        .bind(updated.revision)
        .bind(now)
        .bind(updated.id)
        .bind(stored.revision)
        .execute(&mut *tx)
        .await?;
        let resource = post_resource(&post.township, post.id);
        audit(&mut tx, actor, now, "UpdateLeadershipPost", &resource, Some(json(&stored)), Some(json(&updated)))
            .await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_post(&self, township: &TownshipCode, id: i64, actor: &str) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        lock_township(&mut tx, township).await?;
        let stored = find_post(&mut tx, township, id).await?;
        sqlx::query("DELETE FROM leadership_posts WHERE id = $1").bind(id).execute(&mut *tx).await?;
        let resource = post_resource(township, id);
        audit(&mut tx, actor, now, "DeleteLeadershipPost", &resource, Some(json(&stored)), None).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- duty catalogues -------------------------------------------------------------------------------------

    async fn create_catalogue_item(&self, item: &NewCatalogueItem, actor: &str) -> StoreResult<CatalogueItem> {
        let mut tx = self.begin_write().await?;
        let created = insert_catalogue_item(&mut tx, item, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn batch_create(
        &self,
        records: &[NewRecord],
        actor: &str,
        validate_only: bool,
    ) -> StoreResult<Vec<CreatedRecord>> {
        let mut tx = self.begin_write().await?;
        let created = batch_in(&mut tx, records, actor, now_ms()).await?;
        if validate_only {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(created)
    }

    async fn get_catalogue_item(&self, owner: &CatalogueOwner, id: i64) -> StoreResult<CatalogueItem> {
        let mut conn = self.read.acquire().await?;
        find_catalogue_item(&mut conn, owner, id).await
    }

    async fn list_catalogue_items(
        &self,
        owner: &CatalogueOwner,
        item_type: Option<CatalogueItemType>,
        page: &PageRequest,
    ) -> StoreResult<Page<CatalogueEntry>> {
        let limit = page_limit(page);
        let item_type = item_type.map_or("", CatalogueItemType::as_str);
        // One snapshot: the items and the institutions they resolve among.
        let mut tx = self.begin_snapshot().await?;
        let entries = match owner {
            CatalogueOwner::County(county) => {
                let sql = format!(
                    "SELECT {CATALOGUE_COLUMNS} FROM catalogue_items c WHERE c.owner = $1 AND c.code > $2 \
                     AND ($3 = '' OR c.item_type = $3) ORDER BY c.code LIMIT $4"
                );
                let rows = sqlx::query(&sql)
                    .bind(county.as_str())
                    .bind(after_text(page))
                    .bind(item_type)
                    .bind(limit + 1)
                    .fetch_all(&mut *tx)
                    .await?;
                if rows.is_empty() {
                    ensure_scope(&mut tx, &Scope::County(county.clone())).await?;
                }
                rows.iter()
                    .map(|row| {
                        let item = catalogue_item_from_row(row)?;
                        Ok(CatalogueEntry { item, inherited: false, resolution: Resolution::NotApplicable })
                    })
                    .collect::<StoreResult<Vec<_>>>()?
            }
            CatalogueOwner::Township(code) => {
                let township = find_township(&mut tx, code).await?.ok_or_else(|| township_not_found(code))?;
                // The same merge as domain::catalogue::effective_catalogue, done in SQL so that pages are exact.
                let sql = format!(
                    "SELECT {CATALOGUE_COLUMNS} FROM catalogue_items c WHERE (c.owner = $1 OR (c.owner = $2 \
                     AND c.duty_area IN ({areas}) AND NOT EXISTS (SELECT 1 FROM catalogue_items o \
                     WHERE o.owner = $1 AND o.code = c.code))) AND c.code > $3 AND ($4 = '' OR c.item_type = $4) \
                     ORDER BY c.code LIMIT $5",
                    areas = duty_area_list(township.kind)
                );
                let rows = sqlx::query(&sql)
                    .bind(code.as_str())
                    .bind(code.county().as_str())
                    .bind(after_text(page))
                    .bind(item_type)
                    .bind(limit + 1)
                    .fetch_all(&mut *tx)
                    .await?;
                let institutions = all_institutions(&mut tx, code).await?;
                let today = iso_date(now_ms());
                rows.iter()
                    .map(|row| {
                        let item = catalogue_item_from_row(row)?;
                        let resolution = resolve(&item, &institutions, &today);
                        Ok(CatalogueEntry { inherited: item.is_template(), item, resolution })
                    })
                    .collect::<StoreResult<Vec<_>>>()?
            }
        };
        tx.commit().await?;
        Ok(page_by(entries, limit, |entry| entry.item.code.clone()))
    }

    async fn delete_catalogue_item(&self, owner: &CatalogueOwner, id: i64, actor: &str) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        match owner {
            CatalogueOwner::County(county) => lock_county(&mut tx, county).await?,
            CatalogueOwner::Township(township) => drop(lock_township(&mut tx, township).await?),
        }
        let item = find_catalogue_item(&mut tx, owner, id).await?;
        sqlx::query("DELETE FROM catalogue_items WHERE id = $1").bind(id).execute(&mut *tx).await?;
        audit(&mut tx, actor, now, "DeleteCatalogueItem", &item.resource_name(), Some(json(&item)), None).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- compliance and audit --------------------------------------------------------------------------------

    async fn township_facts(&self, scope: &Scope) -> StoreResult<Vec<TownshipFacts>> {
        let (column, value) = scope_filter(scope);
        // Eight queries for the whole scope, in one snapshot.
        let mut tx = self.begin_snapshot().await?;
        let sql = format!("SELECT {TOWNSHIP_COLUMNS} FROM townships t WHERE t.{column} = $1 ORDER BY t.code");
        let rows = sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await?;
        if rows.is_empty() {
            ensure_scope(&mut tx, scope).await?;
            return Ok(Vec::new());
        }
        let mut facts = Vec::with_capacity(rows.len());
        let mut index = HashMap::with_capacity(rows.len());
        for row in &rows {
            let township = township_from_row(row)?;
            index.insert(township.code.clone(), facts.len());
            facts.push(TownshipFacts {
                township,
                class: None,
                institutions: Vec::new(),
                plaques: Vec::new(),
                posts: Vec::new(),
                catalogue: Vec::new(),
            });
        }
        let slot = |code: &TownshipCode| index.get(code).copied();

        let sql = format!(
            "SELECT {CLASS_COLUMNS} FROM township_classes c JOIN townships t ON t.code = c.township \
             WHERE t.{column} = $1 AND (c.computed_class IS NOT NULL OR c.override_class IS NOT NULL) \
             AND c.data_year = (SELECT MAX(l.data_year) FROM township_classes l WHERE l.township = c.township \
             AND (l.computed_class IS NOT NULL OR l.override_class IS NOT NULL))"
        );
        for row in sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await? {
            let class = class_from_row(&row)?;
            if let Some(i) = slot(&class.township) {
                facts[i].class = Some(class);
            }
        }
        // Only institutions still in force count, as they do for the write-time limits.
        let today = iso_date(now_ms());
        let sql = format!(
            "SELECT {INSTITUTION_COLUMNS} FROM institutions i JOIN townships t ON t.code = i.township \
             WHERE t.{column} = $1 AND (i.valid_to IS NULL OR i.valid_to >= $2) ORDER BY i.township, i.id"
        );
        for row in sqlx::query(&sql).bind(value).bind(&today).fetch_all(&mut *tx).await? {
            let institution = institution_from_row(&row)?;
            if let Some(i) = slot(&institution.township) {
                facts[i].institutions.push(institution);
            }
        }
        let sql = format!(
            "SELECT {PLAQUE_COLUMNS} FROM plaques p JOIN townships t ON t.code = p.township \
             WHERE t.{column} = $1 ORDER BY p.township, p.id"
        );
        for row in sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await? {
            let plaque = plaque_from_row(&row)?;
            if let Some(i) = slot(&plaque.township) {
                facts[i].plaques.push(plaque);
            }
        }
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM leadership_posts p JOIN townships t ON t.code = p.township \
             WHERE t.{column} = $1 ORDER BY p.township, p.id"
        );
        for row in sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await? {
            let post = post_from_row(&row)?;
            if let Some(i) = slot(&post.township) {
                facts[i].posts.push(post);
            }
        }

        // The effective catalogues: own items, the counties' templates, and the ended institutions that own
        // items may still name (resolved as "no longer in force").
        let mut own: Vec<Vec<CatalogueItem>> = vec![Vec::new(); facts.len()];
        let sql = format!(
            "SELECT {CATALOGUE_COLUMNS} FROM catalogue_items c JOIN townships t ON t.code = c.township \
             WHERE t.{column} = $1 ORDER BY c.township, c.code"
        );
        for row in sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await? {
            let item = catalogue_item_from_row(&row)?;
            if let Some(i) = item.owner.township().and_then(&slot) {
                own[i].push(item);
            }
        }
        let mut templates: HashMap<CountyCode, Vec<CatalogueItem>> = HashMap::new();
        let sql = format!(
            "SELECT {CATALOGUE_COLUMNS} FROM catalogue_items c WHERE c.township IS NULL \
             AND c.county IN (SELECT t.county FROM townships t WHERE t.{column} = $1) ORDER BY c.county, c.code"
        );
        for row in sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await? {
            let item = catalogue_item_from_row(&row)?;
            templates.entry(item.owner.county()).or_default().push(item);
        }
        let mut ended: Vec<Vec<Institution>> = vec![Vec::new(); facts.len()];
        let sql = format!(
            "SELECT {INSTITUTION_COLUMNS} FROM institutions i JOIN townships t ON t.code = i.township \
             WHERE t.{column} = $1 AND i.valid_to IS NOT NULL AND i.valid_to < $2 ORDER BY i.township, i.id"
        );
        for row in sqlx::query(&sql).bind(value).bind(&today).fetch_all(&mut *tx).await? {
            let institution = institution_from_row(&row)?;
            if let Some(i) = slot(&institution.township) {
                ended[i].push(institution);
            }
        }
        tx.commit().await?;
        for ((facts, own), ended) in facts.iter_mut().zip(own).zip(ended) {
            let institutions: Vec<Institution> = facts.institutions.iter().cloned().chain(ended).collect();
            let templates = templates.get(&facts.township.code.county()).map_or(&[][..], Vec::as_slice);
            facts.catalogue = effective_catalogue(facts.township.kind, own, templates, &institutions, &today);
        }
        Ok(facts)
    }

    async fn list_audit_events(&self, resource_prefix: &str, page: &PageRequest) -> StoreResult<Page<AuditEvent>> {
        let limit = page_limit(page);
        let after = after_id_descending(page)?;
        let rows = if resource_prefix.is_empty() {
            let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events a WHERE a.id < $1 ORDER BY a.id DESC LIMIT $2");
            sqlx::query(&sql).bind(after).bind(limit + 1).fetch_all(&self.read).await?
        } else {
            // LIKE can use the resource index; substr makes the match exact (SQLite's LIKE ignores ASCII case).
            let sql = format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_events a WHERE a.id < $1 AND a.resource LIKE $2 ESCAPE '\\' \
                 AND substr(a.resource, 1, $3) = $4 ORDER BY a.id DESC LIMIT $5"
            );
            let length = i32::try_from(resource_prefix.chars().count()).unwrap_or(i32::MAX);
            sqlx::query(&sql)
                .bind(after)
                .bind(like_prefix(resource_prefix))
                .bind(length)
                .bind(resource_prefix)
                .bind(limit + 1)
                .fetch_all(&self.read)
                .await?
        };
        let events = rows.iter().map(audit_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(events, limit, |event| event.id.to_string()))
    }

    async fn create_once(
        &self,
        key: Option<&RequestKey>,
        create: &Create,
        actor: &str,
    ) -> StoreResult<(Created, bool)> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        if let Some(key) = key
            && let Some(created) = remembered_request(&mut tx, key).await?
        {
            return Ok((created, true));
        }
        let created = match create {
            Create::Township(township) => Created::Township(insert_township(&mut tx, township, actor, now).await?),
            Create::Observations(observations) => {
                Created::Observations(record_in(&mut tx, observations, actor, now, false).await?)
            }
            Create::Policy { city, policy } => Created::Policy(insert_policy(&mut tx, city, policy, actor, now).await?),
            Create::Institution { institution, max_of_kind } => {
                Created::Institution(insert_institution(&mut tx, institution, *max_of_kind, actor, now).await?)
            }
            Create::Plaque { township, plaque, max_per_township } => {
                Created::Plaque(insert_plaque(&mut tx, township, plaque, *max_per_township, actor, now).await?)
            }
            Create::Post { post, quota } => Created::Post(insert_post(&mut tx, post, *quota, actor, now).await?),
            Create::CatalogueItem(item) => {
                Created::CatalogueItem(insert_catalogue_item(&mut tx, item, actor, now).await?)
            }
            Create::Batch(records) => Created::Batch(batch_in(&mut tx, records, actor, now).await?),
        };
        if let Some(key) = key {
            remember_request(&mut tx, key, &created, now).await?;
        }
        tx.commit().await?;
        Ok((created, false))
    }

    // --- updates (v1) --------------------------------------------------------------------------------------

    async fn update_institution(
        &self,
        institution: &Institution,
        expected_revision: i64,
        max_of_kind: u32,
        actor: &str,
    ) -> StoreResult<Institution> {
        let now = now_ms();
        let today = iso_date(now);
        let township = &institution.township;
        let mut tx = self.begin_write().await?;
        lock_township(&mut tx, township).await?;
        let stored = find_institution(&mut tx, township, institution.id).await?;
        let resource = institution_resource(township, institution.id);
        check_revision(&resource, expected_revision, stored.revision)?;
        if institution.valid_to.is_some() && stored.valid_to != institution.valid_to {
            // Ending it would leave the duties it is responsible for with no one: they must move first.
            let codes = sqlx::query(
                "SELECT code FROM catalogue_items WHERE owner = $1 AND responsible_institution_id = $2 ORDER BY code",
            )
            .bind(township.as_str())
            .bind(institution.id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get("code"))
            .collect::<Result<Vec<String>, _>>()?;
            if !codes.is_empty() {
                return Err(StoreError::FailedPrecondition(format!(
                    "institution {resource} ({}) is the responsible institution of {} catalogue item(s) ({}); \
                     make another institution responsible for them (UpdateCatalogueItem) before ending it",
                    stored.name,
                    codes.len(),
                    list_or_none(&codes)
                )));
            }
        }
        if !in_force(&stored, &today) && in_force(institution, &today) {
            // Brought back into force: it counts against the limit of its kind again.
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM institutions WHERE township = $1 AND kind = $2 AND id <> $3 \
                 AND (valid_to IS NULL OR valid_to >= $4)",
            )
            .bind(township.as_str())
            .bind(stored.kind.as_str())
            .bind(stored.id)
            .bind(&today)
            .fetch_one(&mut *tx)
            .await?;
            if others >= i64::from(max_of_kind) {
                return Err(StoreError::LimitExceeded(format!(
                    "township {township} already has {others} active {} ({}); the policy allows at most \
                     {max_of_kind}, so {resource} cannot come back into force",
                    stored.kind.label_zh(),
                    stored.kind.as_str()
                )));
            }
        }
        let updated = Institution {
            name: institution.name.clone(),
            staffing_quota: institution.staffing_quota,
            approving_document: institution.approving_document.clone(),
            valid_from: institution.valid_from.clone(),
            valid_to: institution.valid_to.clone(),
            revision: stored.revision + 1,
            updated_at: now,
            ..stored.clone()
        };
        sqlx::query(
            "UPDATE institutions SET name = $1, staffing_quota = $2, approving_document = $3, valid_from = $4, \
             valid_to = $5, revision = $6, updated_at = $7 WHERE id = $8 AND revision = $9",
        )
        .bind(&updated.name)
        .bind(i64::from(updated.staffing_quota))
        .bind(&updated.approving_document)
        .bind(&updated.valid_from)
        .bind(&updated.valid_to)
        .bind(updated.revision)
        .bind(now)
        .bind(updated.id)
        .bind(stored.revision)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, actor, now, "UpdateInstitution", &resource, Some(json(&stored)), Some(json(&updated))).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn get_plaque(&self, township: &TownshipCode, institution_id: i64, id: i64) -> StoreResult<Plaque> {
        let mut conn = self.read.acquire().await?;
        find_plaque(&mut conn, township, institution_id, id).await
    }

    async fn update_plaque(&self, plaque: &Plaque, expected_revision: i64, actor: &str) -> StoreResult<Plaque> {
        let now = now_ms();
        let township = &plaque.township;
        let mut tx = self.begin_write().await?;
        lock_township(&mut tx, township).await?;
        let stored = find_plaque(&mut tx, township, plaque.institution_id, plaque.id).await?;
        let resource = plaque_resource(township, plaque.institution_id, plaque.id);
        check_revision(&resource, expected_revision, stored.revision)?;
        let updated = Plaque {
            name: plaque.name.clone(),
            approving_document: plaque.approving_document.clone(),
            revision: stored.revision + 1,
            updated_at: now,
            ..stored.clone()
        };
        sqlx::query(
            "UPDATE plaques SET name = $1, approving_document = $2, revision = $3, updated_at = $4 \
             WHERE id = $5 AND revision = $6",
        )
        .bind(&updated.name)
        .bind(&updated.approving_document)
        .bind(updated.revision)
        .bind(now)
        .bind(updated.id)
        .bind(stored.revision)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, actor, now, "UpdatePlaque", &resource, Some(json(&stored)), Some(json(&updated))).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn update_catalogue_item(
        &self,
        item: &CatalogueItem,
        expected_revision: i64,
        actor: &str,
    ) -> StoreResult<CatalogueItem> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        lock_owner(&mut tx, &item.owner).await?;
        let stored = find_catalogue_item(&mut tx, &item.owner, item.id).await?;
        let resource = stored.resource_name();
        check_revision(&resource, expected_revision, stored.revision)?;
        if item.details.item_type() != stored.item_type() {
            return Err(StoreError::FailedPrecondition(format!(
                "catalogue item {resource} is a {} item; its type cannot change (create a new item instead)",
                stored.item_type().as_str()
            )));
        }
        let institution_title = responsible_title(
            &mut tx,
            &item.owner,
            &stored.code,
            item.responsible_institution_id,
            &item.responsible_institution_title,
            now,
        )
        .await?;
        check_power_link(&mut tx, &item.owner, &stored.code, &item.details).await?;
        let updated = CatalogueItem {
            title: item.title.clone(),
            duty_area: item.duty_area,
            responsible_institution_id: item.responsible_institution_id,
            responsible_institution_title: institution_title,
            details: item.details.clone(),
            revision: stored.revision + 1,
            updated_at: now,
            ..stored.clone()
        };
        let columns = DetailColumns::of(&updated.details);
        sqlx::query(
            "UPDATE catalogue_items SET title = $1, duty_area = $2, responsible_institution_id = $3, \
             responsible_institution_title = $4, power_category = $5, legal_basis = $6, power_origin = $7, \
             power_item_code = $8, duties = $9, accountability_cases = $10, service_domain = $11, \
             handling_mode = $12, revision = $13, updated_at = $14 WHERE id = $15 AND revision = $16",
        )
        .bind(&updated.title)
        .bind(updated.duty_area.as_str())
        .bind(updated.responsible_institution_id)
        .bind(&updated.responsible_institution_title)
        .bind(columns.power_category)
        .bind(columns.legal_basis)
        .bind(columns.power_origin)
        .bind(columns.power_item_code)
        .bind(columns.duties)
        .bind(columns.accountability_cases)
        .bind(columns.service_domain)
        .bind(columns.handling_mode)
        .bind(updated.revision)
        .bind(now)
        .bind(updated.id)
        .bind(stored.revision)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, actor, now, "UpdateCatalogueItem", &resource, Some(json(&stored)), Some(json(&updated))).await?;
        tx.commit().await?;
        Ok(updated)
    }
}

// ------------------------------------------------------------------------------------------------------------
// Inserts shared by the single and the batch creates: they run inside the caller's transaction.

/// Records the observations (see `Store::record_observations`) in the caller's transaction; marks their cohorts
/// PENDING unless `validate_only`.
async fn record_in(
    tx: &mut Conn,
    observations: &[NewObservation],
    actor: &str,
    now: TimestampMs,
    validate_only: bool,
) -> StoreResult<Vec<RecordedObservation>> {
    let mut known = HashSet::new();
    let mut cohorts = BTreeSet::new();
    let mut recorded = Vec::with_capacity(observations.len());
    for observation in observations {
        // Only existence matters here (the foreign key keeps it so): no row lock, so that concurrent
        // batches over the same townships cannot deadlock.
        if !known.contains(&observation.township) {
            if find_township(tx, &observation.township).await?.is_none() {
                return Err(township_not_found(&observation.township));
            }
            known.insert(observation.township.clone());
        }
        // Recording what is already the latest for the township and year adds nothing to the history and
        // reclassifies nothing, so a re-imported file or a retried call is harmless.
        let sql = format!(
            "SELECT {OBSERVATION_COLUMNS} FROM indicator_observations o WHERE o.township = $1 \
             AND o.data_year = $2 ORDER BY o.id DESC LIMIT 1"
        );
        let latest = sqlx::query(&sql)
            .bind(observation.township.as_str())
            .bind(i64::from(observation.data_year))
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| observation_from_row(&row))
            .transpose()?;
        if let Some(latest) = latest
            && latest.values == observation.values
            && latest.source == observation.source
        {
            recorded.push(RecordedObservation { observation: latest, unchanged: true });
            continue;
        }
        let row = sqlx::query(
            "INSERT INTO indicator_observations (township, data_year, population, fiscal_revenue, land_area, \
             source, recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(observation.township.as_str())
        .bind(i64::from(observation.data_year))
        .bind(observation.values.population)
        .bind(observation.values.fiscal_revenue)
        .bind(observation.values.land_area)
        .bind(&observation.source)
        .bind(now)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        let stored = IndicatorObservation {
            id: row.try_get("id")?,
            township: observation.township.clone(),
            data_year: observation.data_year,
            values: observation.values,
            source: observation.source.clone(),
            recorded_at: now,
            recorded_by: actor.to_owned(),
        };
        let resource = observation_resource(&stored);
        audit(tx, actor, now, "RecordIndicators", &resource, None, Some(json(&stored))).await?;
        cohorts.insert(CohortKey { city: observation.township.city(), data_year: observation.data_year });
        recorded.push(RecordedObservation { observation: stored, unchanged: false });
    }
    if !validate_only {
        for cohort in &cohorts {
            mark_pending(tx, cohort, now).await?;
        }
    }
    Ok(recorded)
}

/// Creates every record in order in the caller's transaction (see `Store::batch_create`).
async fn batch_in(
    tx: &mut Conn,
    records: &[NewRecord],
    actor: &str,
    now: TimestampMs,
) -> StoreResult<Vec<CreatedRecord>> {
    let mut created = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        // Each record sees the ones before it, so limits count the batch's own rows too.
        let outcome = match record {
            NewRecord::Institution { institution, max_of_kind } => {
                insert_institution(tx, institution, *max_of_kind, actor, now).await.map(CreatedRecord::Institution)
            }
            NewRecord::Post { post, quota } => insert_post(tx, post, *quota, actor, now).await.map(CreatedRecord::Post),
            NewRecord::CatalogueItem(item) => {
                insert_catalogue_item(tx, item, actor, now).await.map(CreatedRecord::CatalogueItem)
            }
        };
        created.push(outcome.map_err(|error| error.in_request(index))?);
    }
    Ok(created)
}

async fn insert_township(tx: &mut Conn, township: &Township, actor: &str, now: TimestampMs) -> StoreResult<Township> {
    let county = township.code.county();
    if !county_exists(tx, &county).await? {
        return Err(StoreError::NotFound(format!("county {county}")));
    }
    if find_township(tx, &township.code).await?.is_some() {
        return Err(StoreError::AlreadyExists(format!("township {}", township.code)));
    }
    let created = Township { revision: 1, updated_at: now, ..township.clone() };
    sqlx::query(
        "INSERT INTO townships (code, county, city, name, kind, flags, valid_from, valid_to, revision, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(created.code.as_str())
    .bind(county.as_str())
    .bind(created.code.city().as_str())
    .bind(&created.name)
    .bind(created.kind.as_str())
    .bind(json(&created.flags))
    .bind(&created.valid_from)
    .bind(&created.valid_to)
    .bind(created.revision)
    .bind(created.updated_at)
    .execute(&mut *tx)
    .await
    .map_err(|error| match error {
        // Created concurrently by another writer since the check above.
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            StoreError::AlreadyExists(format!("township {}", township.code))
        }
        other => other.into(),
    })?;
    audit(tx, actor, now, "CreateTownship", &township_name(&created.code), None, Some(json(&created))).await?;
    Ok(created)
}

async fn insert_policy(
    tx: &mut Conn,
    city: &CityCode,
    policy: &Policy,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<CityPolicy> {
    let locked = format!("SELECT code FROM cities WHERE code = $1{FOR_UPDATE}");
    if sqlx::query(&locked).bind(city.as_str()).fetch_optional(&mut *tx).await?.is_none() {
        return Err(StoreError::NotFound(format!("city {city}")));
    }
    let row = sqlx::query("SELECT MAX(version) AS version FROM city_policies WHERE city = $1")
        .bind(city.as_str())
        .fetch_one(&mut *tx)
        .await?;
    let version = row.try_get::<Option<i64>, _>("version")?.unwrap_or(0) + 1;
    let stored = CityPolicy {
        city: city.clone(),
        version,
        policy: policy.clone(),
        fingerprint: policy.fingerprint(),
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO city_policies (city, version, policy_toml, fingerprint, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(city.as_str())
    .bind(version)
    .bind(policy.to_toml())
    .bind(&stored.fingerprint)
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    let years = sqlx::query(
        "SELECT DISTINCT o.data_year FROM indicator_observations o JOIN townships t ON t.code = o.township \
         WHERE t.city = $1 ORDER BY o.data_year",
    )
    .bind(city.as_str())
    .fetch_all(&mut *tx)
    .await?;
    for row in years {
        let cohort = CohortKey { city: city.clone(), data_year: year(row.try_get("data_year")?)? };
        mark_pending(tx, &cohort, now).await?;
    }
    let after = serde_json::json!({
        "version": version,
        "fingerprint": stored.fingerprint,
        "policy": policy,
    });
    audit(tx, actor, now, "SetCityPolicy", &policy_resource(city, version), None, Some(after.to_string())).await?;
    Ok(stored)
}

async fn insert_plaque(
    tx: &mut Conn,
    township: &TownshipCode,
    plaque: &NewPlaque,
    max_per_township: u32,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<Plaque> {
    lock_township(tx, township).await?;
    find_institution(tx, township, plaque.institution_id).await?;
    let rows = sqlx::query("SELECT name FROM plaques WHERE township = $1 ORDER BY id")
        .bind(township.as_str())
        .fetch_all(&mut *tx)
        .await?;
    if rows.len() as u64 >= u64::from(max_per_township) {
        let names = rows.iter().map(|row| row.try_get("name")).collect::<Result<Vec<String>, _>>()?;
        return Err(StoreError::LimitExceeded(format!(
            "township {township} already has {} plaques ({}); the policy allows at most {max_per_township}",
            names.len(),
            list_or_none(&names)
        )));
    }
    let row = sqlx::query(
        "INSERT INTO plaques (institution_id, township, name, approving_document, created_at, revision, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 1, $5) RETURNING id",
    )
    .bind(plaque.institution_id)
    .bind(township.as_str())
    .bind(&plaque.name)
    .bind(&plaque.approving_document)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let created = Plaque {
        id: row.try_get("id")?,
        institution_id: plaque.institution_id,
        township: township.clone(),
        name: plaque.name.clone(),
        approving_document: plaque.approving_document.clone(),
        created_at: now,
        revision: 1,
        updated_at: now,
    };
    let resource = plaque_resource(township, plaque.institution_id, created.id);
    audit(tx, actor, now, "CreatePlaque", &resource, None, Some(json(&created))).await?;
    Ok(created)
}

async fn insert_institution(
    tx: &mut Conn,
    institution: &NewInstitution,
    max_of_kind: u32,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<Institution> {
    let township = &institution.township;
    lock_township(tx, township).await?;
    // Active: not ended before today (valid_to is the last day, inclusive).
    let rows = sqlx::query(
        "SELECT name FROM institutions WHERE township = $1 AND kind = $2 AND (valid_to IS NULL OR valid_to >= $3) \
         ORDER BY id",
    )
    .bind(township.as_str())
    .bind(institution.kind.as_str())
    .bind(iso_date(now))
    .fetch_all(&mut *tx)
    .await?;
    if rows.len() as u64 >= u64::from(max_of_kind) {
        let names = rows.iter().map(|row| row.try_get("name")).collect::<Result<Vec<String>, _>>()?;
        return Err(StoreError::LimitExceeded(format!(
            "township {township} already has {} active {} ({}) ({}); the policy allows at most {max_of_kind}",
            names.len(),
            institution.kind.label_zh(),
            institution.kind.as_str(),
            list_or_none(&names)
        )));
    }
    let row = sqlx::query(
        "INSERT INTO institutions (township, kind, name, staffing_quota, approving_document, valid_from, valid_to, \
         created_at, revision, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $8) RETURNING id",
    )
    .bind(township.as_str())
    .bind(institution.kind.as_str())
    .bind(&institution.name)
    .bind(i64::from(institution.staffing_quota))
    .bind(&institution.approving_document)
    .bind(&institution.valid_from)
    .bind(&institution.valid_to)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let created = Institution {
        id: row.try_get("id")?,
        township: township.clone(),
        kind: institution.kind,
        name: institution.name.clone(),
        staffing_quota: institution.staffing_quota,
        approving_document: institution.approving_document.clone(),
        valid_from: institution.valid_from.clone(),
        valid_to: institution.valid_to.clone(),
        created_at: now,
        revision: 1,
        updated_at: now,
    };
    let resource = institution_resource(township, created.id);
    audit(tx, actor, now, "CreateInstitution", &resource, None, Some(json(&created))).await?;
    Ok(created)
}

async fn insert_post(
    tx: &mut Conn,
    post: &NewPost,
    quota: u32,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<LeadershipPost> {
    let township = &post.township;
    lock_township(tx, township).await?;
    let sql = format!("SELECT {POST_COLUMNS} FROM leadership_posts p WHERE p.township = $1 ORDER BY p.id");
    let existing = sqlx::query(&sql).bind(township.as_str()).fetch_all(&mut *tx).await?;
    if existing.len() as u64 >= u64::from(quota) {
        let posts = existing
            .iter()
            .map(|row| post_from_row(row).map(|post| describe_post(&post)))
            .collect::<StoreResult<Vec<_>>>()?;
        return Err(StoreError::LimitExceeded(format!(
            "township {township} already has {} leadership posts ({}); the policy allows at most {quota}",
            posts.len(),
            list_or_none(&posts)
        )));
    }
    let row = sqlx::query(
        "INSERT INTO leadership_posts (township, role, holder, mandated_role, revision, updated_at) \
         VALUES ($1, $2, $3, $4, 1, $5) RETURNING id",
    )
    .bind(township.as_str())
    .bind(&post.role)
    .bind(&post.holder)
    .bind(post.mandated_role.map(MandatedRole::as_str))
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let created = LeadershipPost {
        id: row.try_get("id")?,
        township: township.clone(),
        role: post.role.clone(),
        holder: post.holder.clone(),
        mandated_role: post.mandated_role,
        revision: 1,
        updated_at: now,
    };
    let resource = post_resource(township, created.id);
    audit(tx, actor, now, "CreateLeadershipPost", &resource, None, Some(json(&created))).await?;
    Ok(created)
}

async fn insert_catalogue_item(
    tx: &mut Conn,
    item: &NewCatalogueItem,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<CatalogueItem> {
    let owner = &item.owner;
    lock_owner(tx, owner).await?;
    let institution_title = responsible_title(
        tx,
        owner,
        &item.code,
        item.responsible_institution_id,
        &item.responsible_institution_title,
        now,
    )
    .await?;
    let sql = format!("SELECT {CATALOGUE_COLUMNS} FROM catalogue_items c WHERE c.owner = $1 AND c.code = $2");
    if let Some(row) = sqlx::query(&sql).bind(owner.code()).bind(&item.code).fetch_optional(&mut *tx).await? {
        let existing = catalogue_item_from_row(&row)?;
        return Err(StoreError::AlreadyExists(format!(
            "catalogue item of code {:?} of {} ({} {})",
            item.code,
            owner.describe(),
            existing.resource_name(),
            existing.title
        )));
    }
    check_power_link(tx, owner, &item.code, &item.details).await?;
    let DetailColumns {
        power_category,
        legal_basis,
        power_origin,
        power_item_code,
        duties,
        accountability_cases,
        service_domain,
        handling_mode,
    } = DetailColumns::of(&item.details);
    let row = sqlx::query(
        "INSERT INTO catalogue_items (owner, county, township, code, title, item_type, duty_area, \
         responsible_institution_id, responsible_institution_title, power_category, legal_basis, power_origin, \
         power_item_code, duties, accountability_cases, service_domain, handling_mode, created_at, revision, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, 1, $18) \
         RETURNING id",
    )
    .bind(owner.code())
    .bind(owner.county().as_str())
    .bind(owner.township().map(TownshipCode::as_str))
    .bind(&item.code)
    .bind(&item.title)
    .bind(item.details.item_type().as_str())
    .bind(item.duty_area.as_str())
    .bind(item.responsible_institution_id)
    .bind(&institution_title)
    .bind(power_category)
    .bind(legal_basis)
    .bind(power_origin)
    .bind(power_item_code)
    .bind(duties)
    .bind(accountability_cases)
    .bind(service_domain)
    .bind(handling_mode)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let created = CatalogueItem {
        id: row.try_get("id")?,
        owner: owner.clone(),
        code: item.code.clone(),
        title: item.title.clone(),
        duty_area: item.duty_area,
        responsible_institution_id: item.responsible_institution_id,
        responsible_institution_title: institution_title,
        details: item.details.clone(),
        created_at: now,
        revision: 1,
        updated_at: now,
    };
    audit(tx, actor, now, "CreateCatalogueItem", &created.resource_name(), None, Some(json(&created))).await?;
    Ok(created)
}

/// Locks the catalogue's owner (its county or township row), so that concurrent writes to one catalogue queue.
async fn lock_owner(tx: &mut Conn, owner: &CatalogueOwner) -> StoreResult<()> {
    match owner {
        CatalogueOwner::County(county) => lock_county(tx, county).await,
        CatalogueOwner::Township(township) => lock_township(tx, township).await.map(|_| ()),
    }
}

/// The responsible institution's title of a catalogue item of `owner`: a template item's own title; a township
/// item's institution, which must be of the township and in force.
async fn responsible_title(
    tx: &mut Conn,
    owner: &CatalogueOwner,
    code: &str,
    responsible_institution_id: Option<i64>,
    responsible_institution_title: &str,
    now: TimestampMs,
) -> StoreResult<String> {
    let institution_title = match owner {
        CatalogueOwner::County(county) => {
            if responsible_institution_id.is_some() {
                return Err(StoreError::FailedPrecondition(format!(
                    "template item {} of county {county} names its responsible institution by title, not by \
                     an institution of one township",
                    code
                )));
            }
            responsible_institution_title.to_owned()
        }
        CatalogueOwner::Township(township) => {
            let Some(id) = responsible_institution_id else {
                return Err(StoreError::FailedPrecondition(format!(
                    "catalogue item {} of township {township} must name its responsible institution",
                    code
                )));
            };
            let institution = match find_institution(tx, township, id).await {
                Ok(institution) => institution,
                Err(StoreError::NotFound(_)) => {
                    return Err(StoreError::NotFound(format!(
                        "institution {} (the responsible institution of catalogue item {} of township \
                         {township})",
                        institution_resource(township, id),
                        code
                    )));
                }
                Err(other) => return Err(other),
            };
            if !in_force(&institution, &iso_date(now)) {
                return Err(StoreError::FailedPrecondition(format!(
                    "institution {} ({}) is no longer in force (valid to {}); catalogue item {} of township \
                     {township} must name an institution in force",
                    institution_resource(township, id),
                    institution.name,
                    institution.valid_to.as_deref().unwrap_or_default(),
                    code
                )));
            }
            institution.name
        }
    };
    Ok(institution_title)
}

/// A responsibility item's power item must exist in the owner's catalogue (a township's includes its county's
/// template).
async fn check_power_link(tx: &mut Conn, owner: &CatalogueOwner, code: &str, details: &ItemDetails) -> StoreResult<()> {
    if let ItemDetails::Responsibility { power_item_code: Some(linked), .. } = details {
        // A township's items may link its own power items or its county's template ones.
        let found = sqlx::query(
            "SELECT 1 FROM catalogue_items WHERE code = $1 AND item_type = 'power' AND (owner = $2 OR owner = $3)",
        )
        .bind(linked)
        .bind(owner.code())
        .bind(owner.county().as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_none() {
            return Err(StoreError::NotFound(format!(
                "power item of code {linked:?} (linked by responsibility item {}) in the catalogue of {}",
                code,
                owner.describe()
            )));
        }
    }
    Ok(())
}

/// The type-specific columns of a catalogue item: those of the other types are NULL.
#[derive(Default)]
struct DetailColumns {
    power_category: Option<String>,
    legal_basis: Option<String>,
    power_origin: Option<String>,
    power_item_code: Option<String>,
    duties: Option<String>,
    accountability_cases: Option<String>,
    service_domain: Option<String>,
    handling_mode: Option<String>,
}

impl DetailColumns {
    fn of(details: &ItemDetails) -> Self {
        let text = |value: &str| Some(value.to_owned());
        match details {
            ItemDetails::Power { category, legal_basis, origin } => Self {
                power_category: text(category.as_str()),
                legal_basis: text(legal_basis),
                power_origin: text(origin.as_str()),
                ..Self::default()
            },
            ItemDetails::Responsibility { power_item_code, duties, accountability_cases } => Self {
                power_item_code: power_item_code.clone(),
                duties: text(duties),
                accountability_cases: text(accountability_cases),
                ..Self::default()
            },
            ItemDetails::PublicService { service_domain, handling_mode } => Self {
                service_domain: text(service_domain),
                handling_mode: text(handling_mode.as_str()),
                ..Self::default()
            },
        }
    }
}

async fn find_plaque(conn: &mut Conn, township: &TownshipCode, institution_id: i64, id: i64) -> StoreResult<Plaque> {
    let sql =
        format!("SELECT {PLAQUE_COLUMNS} FROM plaques p WHERE p.township = $1 AND p.institution_id = $2 AND p.id = $3");
    match sqlx::query(&sql).bind(township.as_str()).bind(institution_id).bind(id).fetch_optional(&mut *conn).await? {
        Some(row) => plaque_from_row(&row),
        None => Err(StoreError::NotFound(format!("plaque {}", plaque_resource(township, institution_id, id)))),
    }
}

/// Refuses a lost update: the caller read `expected`, the store holds `stored`.
fn check_revision(resource: &str, expected: i64, stored: i64) -> StoreResult<()> {
    if expected == stored {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "{resource} changed since it was read: expected revision {expected}, stored revision {stored}; read it \
             again and retry"
        )))
    }
}

/// The remembered answer to an earlier request with this key's id; `AlreadyExists` when that id came with a
/// different request.
async fn remembered_request(tx: &mut Conn, key: &RequestKey) -> StoreResult<Option<Created>> {
    let Some(row) = sqlx::query("SELECT method, fingerprint, result FROM request_ids WHERE request_id = $1")
        .bind(&key.request_id)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let (method, fingerprint): (String, String) = (row.try_get("method")?, row.try_get("fingerprint")?);
    if method != key.method || fingerprint != key.fingerprint {
        return Err(StoreError::AlreadyExists(format!(
            "request_id {:?} (used before for a different {method} request; a retry repeats its request exactly, \
             a new request needs a new request_id)",
            key.request_id
        )));
    }
    let result: String = row.try_get("result")?;
    let created = serde_json::from_str(&result)
        .map_err(|e| corrupt(format!("the remembered result of request_id {:?}: {e}", key.request_id)))?;
    Ok(Some(created))
}

/// Remembers what a request made, in the transaction that made it, so a retry finds exactly this answer.
async fn remember_request(tx: &mut Conn, key: &RequestKey, created: &Created, now: TimestampMs) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO request_ids (request_id, method, fingerprint, result, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&key.request_id)
    .bind(&key.method)
    .bind(&key.fingerprint)
    .bind(json(created))
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|error| match error {
        // Another replica is making the same request right now; its answer is the one to replay.
        sqlx::Error::Database(e) if e.is_unique_violation() => StoreError::Conflict(format!(
            "a request with request_id {:?} is being made at this moment; retry it to get its answer",
            key.request_id
        )),
        other => other.into(),
    })?;
    Ok(())
}
