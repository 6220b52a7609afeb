//! Data years: their coverage, the adopted ones, and the city's current year.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::names::CityCode;
use crate::domain::years::{DataYear, NewYearAdoption, YearAdoption};

/// A city's data years and their adoptions.
#[async_trait]
pub trait YearRepo: Send + Sync {
    /// Adopts a data year as the city's current year (if no later year is complete or adopted), storing the
    /// townships in force without an observation for it. NotFound for an unknown city, FailedPrecondition for a
    /// year without observations, AlreadyExists when the year was adopted before.
    async fn adopt_data_year(&self, adoption: &NewYearAdoption, actor: &str) -> StoreResult<YearAdoption>;
    /// Every data year with observations or an adoption in the city, oldest first, with its coverage (counted
    /// now, over the townships in force today) and adoption. NotFound for an unknown city.
    async fn data_years(&self, city: &CityCode) -> StoreResult<Vec<DataYear>>;
    /// The city's current year ([`crate::domain::years::current_year`] over [`YearRepo::data_years`]).
    async fn current_data_year(&self, city: &CityCode) -> StoreResult<Option<i32>>;
}
