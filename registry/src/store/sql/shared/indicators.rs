//! [`IndicatorRepo`]: observations and the cohort inputs.

use std::collections::{BTreeSet, HashSet};

use async_trait::async_trait;
use sqlx::Row;
use township_runtime::now_ms;

use super::rows::{OBSERVATION_COLUMNS, TOWNSHIP_COLUMNS, observation_from_row, township_from_row, year};
use super::support::{audit, ensure_scope, find_township, mark_pending, observation_resource, township_not_found};
use super::{Conn, ThisStore};
use crate::domain::model::{CohortKey, IndicatorObservation, NewObservation, TimestampMs, Township};
use crate::domain::names::{CityCode, Scope, TownshipCode};
use crate::store::sql::{after_id_descending, json, page_by, page_limit};
use crate::store::{IndicatorRepo, Page, PageRequest, RecordedObservation, StoreResult};

#[async_trait]
impl IndicatorRepo for ThisStore {
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
}

/// Records the observations (see `IndicatorRepo::record_observations`) in the caller's transaction; marks their
/// cohorts PENDING unless `validate_only`.
pub(super) async fn record_in(
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
