//! The classification method of DESIGN.md §3 as pure functions over plain types: no I/O, no gRPC.

mod classify;

pub use classify::{
    Classification, ClassifyError, CohortStatistics, Detail, Distribution, Numbers, TownshipInput, TownshipKind,
    TownshipResult, classify, classify_with,
};
// The policy document is its own crate, shared with the registry; the method reads it through these names.
pub use township_policy::{
    AbsoluteBands, BandingMethod, ClassLimits, FieldViolation, IndexCaps, Indicator, Normalization, PerIndicator,
    Policy, PolicyError, RankQuota, ScoreThresholds, TownshipClass,
};

/// Rounds half away from zero to 2 decimals: the precision at which scores are compared with thresholds.
pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
