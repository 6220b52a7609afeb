//! [`PolicyRepo`]: the cities' policy versions.

use async_trait::async_trait;
use sqlx::Row;
use township_policy::Policy;
use township_runtime::now_ms;

use super::rows::{POLICY_COLUMNS, policy_from_row, year};
use super::support::{audit, ensure_scope, mark_pending, policy_resource};
use super::{Conn, FOR_UPDATE, ThisStore};
use crate::domain::model::{CityPolicy, CohortKey, TimestampMs};
use crate::domain::names::{CityCode, Scope};
use crate::store::sql::{after_id_descending, page_by, page_limit};
use crate::store::{Page, PageRequest, PolicyRepo, StoreError, StoreResult};

#[async_trait]
impl PolicyRepo for ThisStore {
    async fn insert_city_policy(
        &self,
        city: &CityCode,
        policy: &Policy,
        document_number: &str,
        actor: &str,
    ) -> StoreResult<CityPolicy> {
        let mut tx = self.begin_write().await?;
        let created = insert_policy(&mut tx, city, policy, document_number, actor, now_ms()).await?;
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
}

pub(super) async fn insert_policy(
    tx: &mut Conn,
    city: &CityCode,
    policy: &Policy,
    document_number: &str,
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
        document_number: document_number.to_owned(),
    };
    sqlx::query(
        "INSERT INTO city_policies (city, version, policy_toml, fingerprint, created_at, created_by, document_number) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(city.as_str())
    .bind(version)
    .bind(policy.to_toml())
    .bind(&stored.fingerprint)
    .bind(now)
    .bind(actor)
    .bind(document_number)
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
        "document_number": document_number,
        "policy": policy,
    });
    audit(tx, actor, now, "SetCityPolicy", &policy_resource(city, version), None, Some(after.to_string())).await?;
    Ok(stored)
}
