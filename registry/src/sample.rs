//! Seeded sample indicator values in the ranges of shared/data/divisions/SOURCE.md, for the demo, tests and
//! benchmarks: one generator, so that `townctl up`, the end-to-end tests and the benchmarks see the same kind of
//! province.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use township_proto::classifier::v1::{IndicatorValues, TownshipKind};

/// Indicators in the ranges SOURCE.md gives for Hunan: population 0.5–15 万人 (typically 1.5–5), land area
/// 5–600 km² (街道 5–50), fiscal revenue 200–50,000 万元 (typically 500–5,000), revenue growing with population.
///
/// The values depend only on `seed`, the township's `code` and its `kind`, never on the order of the calls.
pub fn indicators(seed: u64, code: &str, kind: TownshipKind) -> IndicatorValues {
    let mut rng = stream(seed, code);
    // (population median, land median, land range, revenue per 万人 median)
    let (population_median, land_median, land_range, revenue_per_person) = match kind {
        TownshipKind::Subdistrict => (4.2, 18.0, (5.0, 50.0), 900.0),
        TownshipKind::Town => (3.0, 115.0, (20.0, 600.0), 650.0),
        TownshipKind::Township | TownshipKind::EthnicTownship => (1.5, 140.0, (20.0, 600.0), 380.0),
        TownshipKind::Other | TownshipKind::Unspecified => (0.9, 45.0, (5.0, 300.0), 1200.0),
    };
    let population = skewed(&mut rng, population_median, 0.5, 0.5, 15.0);
    let land_area = skewed(&mut rng, land_median, 0.55, land_range.0, land_range.1);
    let fiscal_revenue = skewed(&mut rng, population * revenue_per_person, 0.7, 200.0, 50_000.0);
    IndicatorValues { population, fiscal_revenue, land_area }
}

/// The township's own stream. The mixing (and the purpose `1` in the high half) is the demo's, whose other
/// streams (institutions 2, posts 3) stay in `townctl`: the demo's indicators are unchanged by the move.
fn stream(seed: u64, code: &str) -> ChaCha8Rng {
    const PURPOSE: u64 = 1;
    let code: u64 = code.parse().unwrap_or(0);
    ChaCha8Rng::seed_from_u64(seed ^ code.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ PURPOSE.rotate_left(32))
}

/// A log-normal draw with the given median, clamped to `[low, high]` and rounded to 2 decimals: the indicators
/// are right-skewed.
fn skewed(rng: &mut ChaCha8Rng, median: f64, sigma: f64, low: f64, high: f64) -> f64 {
    let draw = LogNormal::new(median.ln(), sigma).map(|d| d.sample(rng)).unwrap_or(median);
    (draw.clamp(low, high) * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_indicators_are_seeded_and_within_hunan_ranges() {
        for code in ["430102001", "430181101", "433130200"] {
            for kind in [TownshipKind::Subdistrict, TownshipKind::Town, TownshipKind::Township] {
                let values = indicators(7, code, kind);
                assert_eq!(values, indicators(7, code, kind), "same seed, same values");
                assert!((0.5..=15.0).contains(&values.population), "{values:?}");
                assert!((200.0..=50_000.0).contains(&values.fiscal_revenue), "{values:?}");
                let land = if kind == TownshipKind::Subdistrict { 5.0..=50.0 } else { 5.0..=600.0 };
                assert!(land.contains(&values.land_area), "{values:?}");
            }
        }
        assert_ne!(indicators(7, "430102001", TownshipKind::Town), indicators(8, "430102001", TownshipKind::Town));
    }
}
