//! The classification method of DESIGN.md §3 as pure functions over plain types: no I/O, no gRPC.

mod classify;
mod indicator;
mod policy;

pub use classify::{
    Classification, ClassifyError, CohortStatistics, Distribution, TownshipInput, TownshipKind, TownshipResult,
    classify,
};
pub use indicator::{Indicator, PerIndicator};
pub use policy::{
    AbsoluteBands, BandingMethod, ClassLimits, IndexCaps, Normalization, Policy, PolicyError, RankQuota,
    ScoreThresholds, TownshipClass,
};

/// One problem with one field of a request, in the shape of `google.rpc.BadRequest.FieldViolation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field, e.g. `townships[3].indicators.population`.
    pub field: String,
    /// What is wrong and what would be accepted, naming the township where there is one.
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into() }
    }
}

impl std::fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Rounds half away from zero to 2 decimals: the precision at which scores are compared with thresholds.
pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
