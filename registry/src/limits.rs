//! What the policy allows a township now — its class in force and the limits of that class — decided here for
//! every write that a limit governs (institutions, plaques, posts). No gRPC: the service asks, the store
//! enforces the numbers inside the inserting transaction.

use township_policy::{ClassLimits, Policy, TownshipClass};

use crate::domain::model::InstitutionKind;
use crate::domain::names::{CityCode, TownshipCode};
use crate::domain::rules;
use crate::store::{Store, StoreResult};

/// The data year a request means: `requested` when given (non-zero), else the city's latest with observations.
pub async fn data_year(store: &dyn Store, city: &CityCode, requested: i32) -> StoreResult<Option<i32>> {
    if requested > 0 { Ok(Some(requested)) } else { store.latest_data_year(city).await }
}

/// The policy a city's cohorts are classified with, and its stored version (0 = the default).
pub async fn effective_policy(store: &dyn Store, default: &Policy, city: &CityCode) -> StoreResult<(Policy, i64)> {
    Ok(match store.latest_city_policy(city).await? {
        Some(stored) => (stored.policy, stored.version),
        None => (default.clone(), 0),
    })
}

/// A township's class in force and the limits of that class under its city's effective policy.
#[derive(Debug, Clone)]
pub struct TownshipLimits {
    /// The effective class (override, else computed) in the city's latest data year; None before the first
    /// classification, when the most permissive limits of any class apply.
    pub class: Option<TownshipClass>,
    pub policy: Policy,
}

impl TownshipLimits {
    pub async fn now(store: &dyn Store, default_policy: &Policy, township: &TownshipCode) -> StoreResult<Self> {
        let city = township.city();
        let class = match data_year(store, &city, 0).await? {
            Some(year) => store.get_class(township, year).await?.and_then(|record| record.effective_class()),
            None => None,
        };
        let (policy, _) = effective_policy(store, default_policy, &city).await?;
        Ok(Self { class, policy })
    }

    pub fn of_class(&self) -> ClassLimits {
        rules::limits_for(&self.policy, self.class)
    }

    /// The most institutions of `kind` the township may have in force.
    pub fn institutions_of_kind(&self, kind: InstitutionKind) -> u32 {
        rules::institution_limit(&self.policy, self.class, kind)
    }

    pub fn leadership_posts(&self) -> u32 {
        self.of_class().leadership_posts
    }

    pub fn plaques(&self) -> u32 {
        self.policy.max_plaques_per_township
    }
}
