//! [`CreateRepo`]: the batch and the retry-safe creates, made of the entities' inserts (`insert_*`,
//! `record_in`), which run inside the caller's transaction.

use async_trait::async_trait;
use sqlx::Row;
use township_runtime::now_ms;

use super::catalogue::insert_catalogue_item;
use super::deviations::insert_deviation;
use super::hierarchy::insert_township;
use super::indicators::record_in;
use super::institutions::{insert_institution, insert_plaque};
use super::policies::insert_policy;
use super::posts::insert_post;
use super::staffing::{insert_staffing_approval, set_headcount};
use super::years::adopt_in;
use super::{Conn, ThisStore};
use crate::domain::model::TimestampMs;
use crate::store::sql::{corrupt, json};
use crate::store::{Create, CreateRepo, Created, CreatedRecord, NewRecord, RequestKey, StoreError, StoreResult};

#[async_trait]
impl CreateRepo for ThisStore {
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
            Create::Policy { city, policy, document_number } => {
                Created::Policy(insert_policy(&mut tx, city, policy, document_number, actor, now).await?)
            }
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
            Create::StaffingApproval(approval) => {
                Created::StaffingApproval(insert_staffing_approval(&mut tx, approval, actor, now).await?)
            }
            Create::YearAdoption(adoption) => Created::YearAdoption(adopt_in(&mut tx, adoption, actor, now).await?),
            Create::ApprovedDeviation(deviation) => {
                Created::ApprovedDeviation(insert_deviation(&mut tx, deviation, actor, now).await?)
            }
            Create::Batch(records) => Created::Batch(batch_in(&mut tx, records, actor, now).await?),
        };
        if let Some(key) = key {
            remember_request(&mut tx, key, &created, now).await?;
        }
        tx.commit().await?;
        Ok((created, false))
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
}

/// Creates every record in order in the caller's transaction (see `CreateRepo::batch_create`).
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
            NewRecord::StaffingApproval(approval) => {
                insert_staffing_approval(tx, approval, actor, now).await.map(CreatedRecord::StaffingApproval)
            }
            NewRecord::StaffingHeadcount(headcount) => {
                set_headcount(tx, headcount, actor, now).await.map(CreatedRecord::StaffingHeadcount)
            }
        };
        created.push(outcome.map_err(|error| error.in_request(index))?);
    }
    Ok(created)
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
