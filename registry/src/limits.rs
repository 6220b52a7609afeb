//! What the policy allows a township now — its class in force and the limits of that class — decided here for
//! every write that a limit governs (institutions, plaques, posts). No gRPC: the service asks, the store
//! enforces the numbers inside the inserting transaction. An approved deviation of the county raises a figure
//! (never lowers it), as compliance then reports the count as an approved exception.

use township_policy::{ClassLimits, Policy, TownshipClass};

use crate::domain::deviations::{ApprovedDeviation, Limit, covering};
use crate::domain::model::{ClassRecord, InstitutionKind};
use crate::domain::names::{CityCode, TownshipCode};
use crate::domain::rules;
use crate::store::{Store, StoreResult};

/// The data year a request means: `requested` when given (non-zero), else the city's latest with observations
/// (for the classification pipeline's views: cohort status, previews).
pub async fn data_year(store: &dyn Store, city: &CityCode, requested: i32) -> StoreResult<Option<i32>> {
    if requested > 0 { Ok(Some(requested)) } else { store.latest_data_year(city).await }
}

/// The data year a class read or override means: `requested` when given (non-zero), else the city's current
/// year ([`crate::domain::years::current_year`]); None when the city has no current year.
pub async fn class_year(store: &dyn Store, city: &CityCode, requested: i32) -> StoreResult<Option<i32>> {
    if requested > 0 { Ok(Some(requested)) } else { store.current_data_year(city).await }
}

/// A township's official class (DESIGN.md §3): the override, else the computed class, in its city's current
/// year; None when the city has no current year or the township is not classified in it. Every consumer asks
/// this: the write-time limits here, compliance (whose facts the store gathers with the same current year),
/// and the class views without a year.
pub async fn official_class(store: &dyn Store, township: &TownshipCode) -> StoreResult<Option<ClassRecord>> {
    match store.current_data_year(&township.city()).await? {
        Some(year) => store.get_class(township, year).await,
        None => Ok(None),
    }
}

/// The policy a city's cohorts are classified with, and its stored version (0 = the default).
pub async fn effective_policy(store: &dyn Store, default: &Policy, city: &CityCode) -> StoreResult<(Policy, i64)> {
    Ok(match store.latest_city_policy(city).await? {
        Some(stored) => (stored.policy, stored.version),
        None => (default.clone(), 0),
    })
}

/// A township's class in force and the limits of that class under its city's effective policy, raised where an
/// approved deviation of its county allows more (a refusal then names the deviation's 文号).
#[derive(Debug, Clone)]
pub struct TownshipLimits {
    /// The official class ([`official_class`]: override, else computed, in the city's current year); None while
    /// the city has no current year or the township is unclassified in it, when the most permissive limits of any
    /// class apply.
    pub class: Option<TownshipClass>,
    pub policy: Policy,
    pub township: TownshipCode,
    /// The approved deviations in force that apply to the township.
    pub deviations: Vec<ApprovedDeviation>,
}

impl TownshipLimits {
    pub async fn now(store: &dyn Store, default_policy: &Policy, township: &TownshipCode) -> StoreResult<Self> {
        let city = township.city();
        let class = official_class(store, township).await?.and_then(|record| record.effective_class());
        let (policy, _) = effective_policy(store, default_policy, &city).await?;
        let deviations = store.deviations_in_force(township).await?;
        Ok(Self { class, policy, township: township.clone(), deviations })
    }

    /// The policy's figure for `rule` (its class-limits `field`), or the covering deviation's where it is higher;
    /// a policy figure the policy lists as inferred is marked so that refusals say 推定值，未经核实.
    fn limit(&self, rule: &str, field: &str, policy_max: u32) -> Limit {
        let inferred = if field == "max_plaques_per_township" {
            self.policy.is_inferred(field)
        } else {
            rules::limit_is_inferred(&self.policy, &self.of_class(), field, policy_max)
        };
        Limit::new(policy_max, covering(&self.deviations, &self.township, rule)).inferred_if(inferred)
    }

    pub fn of_class(&self) -> ClassLimits {
        rules::limits_for(&self.policy, self.class)
    }

    /// The most institutions of `kind` the township may have in force.
    pub fn institutions_of_kind(&self, kind: InstitutionKind) -> Limit {
        let (rule, field) = match kind {
            InstitutionKind::PartyGovernmentOffice => ("offices.count", "max_party_government_offices"),
            InstitutionKind::PublicInstitution => ("public_institutions.max", "max_public_institutions"),
            InstitutionKind::LawEnforcementUnit => ("law_enforcement.max", "max_law_enforcement_units"),
        };
        self.limit(rule, field, rules::institution_limit(&self.policy, self.class, kind))
    }

    pub fn leadership_posts(&self) -> Limit {
        self.limit("posts.quota", "leadership_posts", self.of_class().leadership_posts)
    }

    pub fn plaques(&self) -> Limit {
        self.limit("plaques.max", "max_plaques_per_township", self.policy.max_plaques_per_township)
    }
}
