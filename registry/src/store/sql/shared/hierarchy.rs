//! [`HierarchyRepo`]: the division import, cities, counties and townships.

use crate::domain::count_u32;
use std::collections::HashSet;

use async_trait::async_trait;
use township_runtime::now_ms;

use super::rows::{CITY_COLUMNS, COUNTY_COLUMNS, TOWNSHIP_COLUMNS, city_from_row, county_from_row, township_from_row};
use super::support::{
    audit, city_exists, county_exists, ensure_scope, find_township, lock_township, township_not_found,
};
use super::{Conn, ThisStore};
use crate::domain::access::Visible;
use crate::domain::model::{City, County, TimestampMs, Township};
use crate::domain::names::{CityCode, CountyCode, Scope, TownshipCode, city_name, county_name, township_name};
use crate::store::sql::{after_text, json, page_by, page_limit, scope_filter, visible_codes};
use crate::store::{DivisionTownship, HierarchyRepo, ImportCounts, Page, PageRequest, StoreError, StoreResult};

#[async_trait]
impl HierarchyRepo for ThisStore {
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
            cities: count_u32(cities.len()),
            counties: count_u32(counties.len()),
            townships: count_u32(townships.len()),
        })
    }

    async fn get_city(&self, city: &CityCode) -> StoreResult<City> {
        let sql = format!("SELECT {CITY_COLUMNS} FROM cities c WHERE c.code = $1");
        match sqlx::query(&sql).bind(city.as_str()).fetch_optional(&self.read).await? {
            Some(row) => city_from_row(&row),
            None => Err(StoreError::NotFound(format!("city {city}"))),
        }
    }

    async fn list_visible_cities(&self, page: &PageRequest, visible: &Visible) -> StoreResult<Page<City>> {
        let limit = page_limit(page);
        let (shown, codes) = visible_codes("c.code", visible, 3);
        let sql = format!("SELECT {CITY_COLUMNS} FROM cities c WHERE c.code > $1{shown} ORDER BY c.code LIMIT $2");
        let query = sqlx::query(&sql).bind(after_text(page)).bind(limit + 1);
        let rows = codes.into_iter().fold(query, |query, code| query.bind(code)).fetch_all(&self.read).await?;
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

    async fn list_visible_counties(
        &self,
        city: &CityCode,
        page: &PageRequest,
        visible: &Visible,
    ) -> StoreResult<Page<County>> {
        let limit = page_limit(page);
        let mut conn = self.read.acquire().await?;
        let (shown, codes) = visible_codes("k.code", visible, 4);
        let sql = format!(
            "SELECT {COUNTY_COLUMNS} FROM counties k WHERE k.city = $1 AND k.code > $2{shown} ORDER BY k.code LIMIT $3"
        );
        let query = sqlx::query(&sql).bind(city.as_str()).bind(after_text(page)).bind(limit + 1);
        let rows = codes.into_iter().fold(query, |query, code| query.bind(code)).fetch_all(&mut *conn).await?;
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

    async fn list_visible_townships(
        &self,
        scope: &Scope,
        page: &PageRequest,
        visible: &Visible,
    ) -> StoreResult<Page<Township>> {
        let limit = page_limit(page);
        let (column, value) = scope_filter(scope);
        let mut conn = self.read.acquire().await?;
        let (shown, codes) = visible_codes("t.code", visible, 4);
        let sql = format!(
            "SELECT {TOWNSHIP_COLUMNS} FROM townships t WHERE t.{column} = $1 AND t.code > $2{shown} ORDER BY t.code \
             LIMIT $3"
        );
        let query = sqlx::query(&sql).bind(value).bind(after_text(page)).bind(limit + 1);
        let rows = codes.into_iter().fold(query, |query, code| query.bind(code)).fetch_all(&mut *conn).await?;
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
}

pub(super) async fn insert_township(
    tx: &mut Conn,
    township: &Township,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<Township> {
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
