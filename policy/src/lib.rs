//! The policy document of the township reform (DESIGN.md §3): weights, normalisation, banding and the limits per
//! class, as TOML, validated field by field and fingerprinted; and its conversion to and from
//! `township.classifier.v1.Policy`. Both services use it, so that one definition of the document exists and the
//! registry never depends on the classifier. No I/O, no gRPC server code.

mod document;
mod indicator;
pub mod proto;
mod provenance;

pub use document::{
    AbsoluteBands, BandingMethod, ClassLimits, DEFAULT_POLICY_TOML, FigureProvenance, IndexCaps, MAX_WEIGHT,
    Normalization, Policy, PolicyError, RankQuota, ScoreThresholds, TownshipClass,
};
pub use indicator::{Indicator, MAX_INDICATOR_VALUE, PerIndicator};
pub use provenance::{INFERRED, leadership_posts_path};

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

/// A value from a request, quoted for an error message and cut to its first characters, so that an absurd input
/// never makes an error too large for a client to read.
pub fn quoted(value: &str) -> Quoted<'_> {
    Quoted(value)
}

/// See [`quoted`].
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(&'a str);

impl Quoted<'_> {
    /// Characters of the value shown; the rest is summarised by its length.
    pub const SHOWN: usize = 80;
}

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.char_indices().nth(Self::SHOWN) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?} ({} characters)", format!("{}…", &self.0[..cut]), self.0.chars().count()),
        }
    }
}

impl std::fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_value_is_cut_to_its_first_characters_and_its_length() {
        assert_eq!(quoted("cities/4301").to_string(), r#""cities/4301""#);
        let long = "县".repeat(10_000);
        let shown = quoted(&long).to_string();
        assert!(shown.ends_with("…\" (10000 characters)"), "{shown}");
        assert_eq!(shown.chars().filter(|&c| c == '县').count(), Quoted::SHOWN);
    }
}
