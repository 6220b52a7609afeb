//! [`PostRepo`]: leadership posts.

use async_trait::async_trait;
use sqlx::Row;
use township_runtime::now_ms;

use super::rows::{POST_COLUMNS, post_from_row};
use super::support::{audit, lock_township, post_resource, township_records};
use super::{Conn, ThisStore};
use crate::domain::model::{LeadershipPost, MandatedRole, NewPost, TimestampMs};
use crate::domain::names::TownshipCode;
use crate::store::sql::{json, list_or_none};
use crate::store::{Page, PageRequest, PostRepo, StoreError, StoreResult};

#[async_trait]
impl PostRepo for ThisStore {
    async fn create_post(&self, post: &NewPost, quota: u32, actor: &str) -> StoreResult<LeadershipPost> {
        let mut tx = self.begin_write().await?;
        let created = insert_post(&mut tx, post, quota, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn list_posts(&self, township: &TownshipCode, page: &PageRequest) -> StoreResult<Page<LeadershipPost>> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM leadership_posts p WHERE p.township = $1 AND p.id > $2 ORDER BY p.id LIMIT $3"
        );
        township_records(self, &sql, township, page, post_from_row, |post| post.id).await
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
}

async fn find_post(conn: &mut Conn, township: &TownshipCode, id: i64) -> StoreResult<LeadershipPost> {
    let sql = format!("SELECT {POST_COLUMNS} FROM leadership_posts p WHERE p.township = $1 AND p.id = $2");
    match sqlx::query(&sql).bind(township.as_str()).bind(id).fetch_optional(&mut *conn).await? {
        Some(row) => post_from_row(&row),
        None => Err(StoreError::NotFound(format!("leadership post {}", post_resource(township, id)))),
    }
}

fn describe_post(post: &LeadershipPost) -> String {
    match &post.holder {
        Some(holder) => format!("{} {holder}", post.role),
        None => format!("{} (vacant)", post.role),
    }
}

pub(super) async fn insert_post(
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
