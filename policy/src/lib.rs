//! The policy document of the township reform (DESIGN.md §3): weights, normalisation, banding and the limits per
//! class, as TOML, validated field by field and fingerprinted; and its conversion to and from
//! `township.classifier.v1.Policy`. Both services use it, so that one definition of the document exists and the
//! registry never depends on the classifier. No I/O, no gRPC server code.

mod document;
mod indicator;
pub mod proto;

pub use document::{
    AbsoluteBands, BandingMethod, ClassLimits, DEFAULT_POLICY_TOML, IndexCaps, MAX_WEIGHT, Normalization, Policy,
    PolicyError, RankQuota, ScoreThresholds, TownshipClass,
};
pub use indicator::{Indicator, MAX_INDICATOR_VALUE, PerIndicator};

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
