//! [`YearRepo`]: data years' coverage, adoptions and the current year.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::Row;
use township_runtime::now_ms;

use super::rows::{township_code, unsigned, year};
use super::support::{audit, city_exists};
use super::{Conn, DbRow, FOR_UPDATE, ThisStore};
use crate::domain::model::TimestampMs;
use crate::domain::names::{CityCode, TownshipCode, city_name};
use crate::domain::years::{DataYear, NewYearAdoption, YearAdoption, current_year};
use crate::store::sql::{corrupt, iso_date, json};
use crate::store::{StoreError, StoreResult, YearRepo};

const ADOPTION_COLUMNS: &str = "a.city, a.data_year, a.document_number, a.adopted_on, a.reason, \
     a.townships_without_data, a.townships_in_force, a.adopted_by, a.adopted_at";

#[async_trait]
impl YearRepo for ThisStore {
    async fn adopt_data_year(&self, adoption: &NewYearAdoption, actor: &str) -> StoreResult<YearAdoption> {
        let mut tx = self.begin_write().await?;
        let stored = adopt_in(&mut tx, adoption, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn data_years(&self, city: &CityCode) -> StoreResult<Vec<DataYear>> {
        let mut tx = self.begin_snapshot().await?;
        if !city_exists(&mut tx, city).await? {
            return Err(StoreError::NotFound(format!("city {city}")));
        }
        let years = data_years_in(&mut tx, city, &iso_date(now_ms())).await?;
        tx.commit().await?;
        Ok(years)
    }

    async fn current_data_year(&self, city: &CityCode) -> StoreResult<Option<i32>> {
        let mut tx = self.begin_snapshot().await?;
        let current = current_year_in(&mut tx, city, &iso_date(now_ms())).await?;
        tx.commit().await?;
        Ok(current)
    }
}

/// Adopts a data year (see [`YearRepo::adopt_data_year`]) in the caller's transaction.
pub(super) async fn adopt_in(
    tx: &mut Conn,
    adoption: &NewYearAdoption,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<YearAdoption> {
    let today = iso_date(now);
    let city = &adoption.city;
    let data_year = i64::from(adoption.data_year);
    let locked = format!("SELECT code FROM cities WHERE code = $1{FOR_UPDATE}");
    if sqlx::query(&locked).bind(city.as_str()).fetch_optional(&mut *tx).await?.is_none() {
        return Err(StoreError::NotFound(format!("city {city}")));
    }
    let observed = sqlx::query(
        "SELECT 1 FROM indicator_observations o JOIN townships t ON t.code = o.township \
         WHERE t.city = $1 AND o.data_year = $2 LIMIT 1",
    )
    .bind(city.as_str())
    .bind(data_year)
    .fetch_optional(&mut *tx)
    .await?;
    if observed.is_none() {
        return Err(StoreError::FailedPrecondition(format!(
            "data_year: city {city} has no indicators for data year {}; record some before adopting it",
            adoption.data_year
        )));
    }
    let exists = sqlx::query("SELECT 1 FROM year_adoptions WHERE city = $1 AND data_year = $2")
        .bind(city.as_str())
        .bind(data_year)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_some() {
        return Err(StoreError::AlreadyExists(format!(
            "the adoption of data year {} by city {city}",
            adoption.data_year
        )));
    }
    let in_force = townships_in_force(tx, city, &today).await?;
    let rows = sqlx::query(
        "SELECT t.code FROM townships t WHERE t.city = $1 AND (t.valid_to IS NULL OR t.valid_to >= $2) \
         AND NOT EXISTS (SELECT 1 FROM indicator_observations o WHERE o.township = t.code AND o.data_year = $3) \
         ORDER BY t.code",
    )
    .bind(city.as_str())
    .bind(&today)
    .bind(data_year)
    .fetch_all(&mut *tx)
    .await?;
    let townships_without_data = rows
        .iter()
        .map(|row| township_code(row.try_get::<&str, _>("code")?))
        .collect::<StoreResult<Vec<TownshipCode>>>()?;
    let stored = YearAdoption {
        city: city.clone(),
        data_year: adoption.data_year,
        document_number: adoption.document_number.clone(),
        adopted_on: adoption.adopted_on.clone(),
        reason: adoption.reason.clone(),
        townships_without_data,
        townships_in_force: in_force,
        adopted_by: actor.to_owned(),
        adopted_at: now,
    };
    let without: Vec<&str> = stored.townships_without_data.iter().map(TownshipCode::as_str).collect();
    sqlx::query(
        "INSERT INTO year_adoptions (city, data_year, document_number, adopted_on, reason, \
         townships_without_data, townships_in_force, adopted_by, adopted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(city.as_str())
    .bind(data_year)
    .bind(&stored.document_number)
    .bind(&stored.adopted_on)
    .bind(&stored.reason)
    .bind(json(&without))
    .bind(i64::from(in_force))
    .bind(actor)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let resource = year_resource(city, adoption.data_year);
    audit(tx, actor, now, "AdoptDataYear", &resource, None, Some(json(&stored))).await?;
    Ok(stored)
}

/// `cities/{city}/dataYears/{year}`, the resource name of a city's data year.
pub(super) fn year_resource(city: &CityCode, data_year: i32) -> String {
    format!("{}/dataYears/{data_year}", city_name(city))
}

async fn townships_in_force(conn: &mut Conn, city: &CityCode, today: &str) -> StoreResult<u32> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM townships t WHERE t.city = $1 AND (t.valid_to IS NULL OR t.valid_to >= $2)",
    )
    .bind(city.as_str())
    .bind(today)
    .fetch_one(&mut *conn)
    .await?;
    unsigned(row.try_get("n")?, "township count")
}

/// The city's data years (see [`YearRepo::data_years`]) in the caller's transaction, counted as of `today`.
pub(super) async fn data_years_in(conn: &mut Conn, city: &CityCode, today: &str) -> StoreResult<Vec<DataYear>> {
    let in_force = townships_in_force(conn, city, today).await?;
    let rows = sqlx::query(
        "SELECT y.data_year, COUNT(DISTINCT f.township) AS with_data FROM \
         (SELECT DISTINCT o.data_year FROM indicator_observations o JOIN townships t ON t.code = o.township \
         WHERE t.city = $1) y LEFT JOIN \
         (SELECT DISTINCT o.data_year, o.township FROM indicator_observations o JOIN townships t \
         ON t.code = o.township WHERE t.city = $1 AND (t.valid_to IS NULL OR t.valid_to >= $2)) f \
         ON f.data_year = y.data_year GROUP BY y.data_year",
    )
    .bind(city.as_str())
    .bind(today)
    .fetch_all(&mut *conn)
    .await?;
    let mut years = BTreeMap::new();
    for row in rows {
        let data_year = year(row.try_get("data_year")?)?;
        let townships_with_data = unsigned(row.try_get("with_data")?, "township count")?;
        years.insert(
            data_year,
            DataYear { data_year, townships_with_data, townships_in_force: in_force, adoption: None },
        );
    }
    let sql = format!("SELECT {ADOPTION_COLUMNS} FROM year_adoptions a WHERE a.city = $1");
    for row in sqlx::query(&sql).bind(city.as_str()).fetch_all(&mut *conn).await? {
        let adoption = adoption_from_row(&row)?;
        let data_year = adoption.data_year;
        years
            .entry(data_year)
            .or_insert(DataYear { data_year, townships_with_data: 0, townships_in_force: in_force, adoption: None })
            .adoption = Some(adoption);
    }
    Ok(years.into_values().collect())
}

/// The city's current year, in the caller's transaction: [`current_year`] over [`data_years_in`].
pub(super) async fn current_year_in(conn: &mut Conn, city: &CityCode, today: &str) -> StoreResult<Option<i32>> {
    Ok(current_year(&data_years_in(conn, city, today).await?))
}

fn adoption_from_row(row: &DbRow) -> StoreResult<YearAdoption> {
    let city = row.try_get::<&str, _>("city")?;
    let without: Vec<String> = serde_json::from_str(row.try_get("townships_without_data")?)
        .map_err(|e| corrupt(format!("townships without data of an adoption of city {city}: {e}")))?;
    Ok(YearAdoption {
        city: CityCode::parse(city).map_err(|e| corrupt(e.0))?,
        data_year: year(row.try_get("data_year")?)?,
        document_number: row.try_get("document_number")?,
        adopted_on: row.try_get("adopted_on")?,
        reason: row.try_get("reason")?,
        townships_without_data: without.iter().map(|code| township_code(code)).collect::<StoreResult<_>>()?,
        townships_in_force: unsigned(row.try_get("townships_in_force")?, "township count")?,
        adopted_by: row.try_get("adopted_by")?,
        adopted_at: row.try_get("adopted_at")?,
    })
}
