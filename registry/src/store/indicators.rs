//! Indicator observations: the townships' yearly values the classification reads.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Page, PageRequest, StoreResult};
use crate::domain::model::{CohortKey, IndicatorObservation, NewObservation, Township};
use crate::domain::names::{CityCode, TownshipCode};

/// One observation as recorded: the new one, or the equal one already stored (`unchanged`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedObservation {
    pub observation: IndicatorObservation,
    pub unchanged: bool,
}

/// Observations, their history, and the inputs of a cohort (a city and data year).
#[async_trait]
pub trait IndicatorRepo: Send + Sync {
    /// Inserts the observations and, in the same transaction, marks each affected cohort (city, data year)
    /// PENDING with its generation bumped. All or nothing; every township must exist. An observation equal to
    /// the latest of its township and year (values and source) is not stored again: it comes back `unchanged`,
    /// as the stored one. With `validate_only` nothing is kept.
    async fn record_observations(
        &self,
        observations: &[NewObservation],
        actor: &str,
        validate_only: bool,
    ) -> StoreResult<Vec<RecordedObservation>>;
    /// A township's observations, newest first; `data_year` filters when given. Keys are observation ids.
    async fn list_observations(
        &self,
        township: &TownshipCode,
        data_year: Option<i32>,
        page: &PageRequest,
    ) -> StoreResult<Page<IndicatorObservation>>;
    /// The cohort's inputs: each township of the city with its latest observation for the year, in code order.
    async fn cohort_inputs(&self, cohort: &CohortKey) -> StoreResult<Vec<(Township, IndicatorObservation)>>;
    /// The newest data year with observations in the city.
    async fn latest_data_year(&self, city: &CityCode) -> StoreResult<Option<i32>>;
}
