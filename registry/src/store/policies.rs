//! The cities' classification policies.

use async_trait::async_trait;
use township_policy::Policy;

use super::{Page, PageRequest, StoreResult};
use crate::domain::model::CityPolicy;
use crate::domain::names::CityCode;

/// Each city's policy, versioned: a new version never replaces an old one.
#[async_trait]
pub trait PolicyRepo: Send + Sync {
    /// Stores the next version of the city's policy and marks every cohort of the city that has observations
    /// PENDING, in one transaction.
    /// `document_number`: the 文号 of a policy departing from the document, or empty.
    async fn insert_city_policy(
        &self,
        city: &CityCode,
        policy: &Policy,
        document_number: &str,
        actor: &str,
    ) -> StoreResult<CityPolicy>;
    async fn latest_city_policy(&self, city: &CityCode) -> StoreResult<Option<CityPolicy>>;
    async fn get_city_policy(&self, city: &CityCode, version: i64) -> StoreResult<CityPolicy>;
    /// Newest first; keys are versions.
    async fn list_city_policies(&self, city: &CityCode, page: &PageRequest) -> StoreResult<Page<CityPolicy>>;
}
