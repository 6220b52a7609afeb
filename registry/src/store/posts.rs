//! Leadership posts of the townships.

use async_trait::async_trait;

use super::{Page, PageRequest, StoreResult};
use crate::domain::model::{LeadershipPost, NewPost};
use crate::domain::names::TownshipCode;

/// A township's leadership posts, the create checked against the quota.
#[async_trait]
pub trait PostRepo: Send + Sync {
    /// Refused with `LimitExceeded` when the township already has `quota` posts.
    async fn create_post(&self, post: &NewPost, quota: u32, actor: &str) -> StoreResult<LeadershipPost>;
    async fn list_posts(&self, township: &TownshipCode, page: &PageRequest) -> StoreResult<Page<LeadershipPost>>;
    async fn get_post(&self, township: &TownshipCode, id: i64) -> StoreResult<LeadershipPost>;
    /// Replaces role, holder and mandated role when the stored revision equals `expected_revision`.
    async fn update_post(
        &self,
        post: &LeadershipPost,
        expected_revision: i64,
        actor: &str,
    ) -> StoreResult<LeadershipPost>;
    async fn delete_post(&self, township: &TownshipCode, id: i64, actor: &str) -> StoreResult<()>;
}
