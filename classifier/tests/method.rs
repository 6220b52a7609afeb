//! The classification method of DESIGN.md §3 on small cohorts computed by hand.
//!
//! Every test writes its arithmetic out in a comment, then asserts the exact indices, scores, ranks and
//! classes the method must give (floats to within 1e-9). Tests are named after the policy rule they check.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use township_classifier::domain::{
    BandingMethod, Classification, FieldViolation, Normalization, PerIndicator, Policy, RankQuota, ScoreThresholds,
    TownshipInput, TownshipKind, TownshipResult, classify,
};

const TOLERANCE: f64 = 1e-9;
const MAX_COHORT_SIZE: usize = 10_000;

fn town(id: &str, population: f64, fiscal_revenue: f64, land_area: f64) -> TownshipInput {
    TownshipInput {
        id: id.to_owned(),
        name: format!("{id}镇"),
        kind: TownshipKind::Town,
        indicators: PerIndicator { population, fiscal_revenue, land_area },
    }
}

fn policy(normalization: Normalization, banding: BandingMethod) -> Policy {
    let mut policy = Policy::builtin_default();
    policy.normalization = normalization;
    policy.banding = banding;
    policy
}

fn classify_ok(policy: &Policy, townships: &[TownshipInput]) -> Classification {
    match classify(policy, townships, MAX_COHORT_SIZE) {
        Ok(classification) => classification,
        Err(error) => panic!("expected a classification, got {error}"),
    }
}

fn violations(policy: &Policy, townships: &[TownshipInput]) -> Vec<FieldViolation> {
    violations_with_limit(policy, townships, MAX_COHORT_SIZE)
}

fn violations_with_limit(policy: &Policy, townships: &[TownshipInput], limit: usize) -> Vec<FieldViolation> {
    match classify(policy, townships, limit) {
        Ok(classification) => panic!("expected an error, got {classification:#?}"),
        Err(error) => {
            assert!(!error.violations.is_empty(), "an error must name at least one violation");
            error.violations
        }
    }
}

fn fields(violations: &[FieldViolation]) -> Vec<&str> {
    violations.iter().map(|v| v.field.as_str()).collect()
}

fn result<'a>(classification: &'a Classification, id: &str) -> &'a TownshipResult {
    classification.results.iter().find(|r| r.id == id).unwrap_or_else(|| panic!("no result for township {id}"))
}

#[track_caller]
fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() <= TOLERANCE, "expected {expected}, got {actual}");
}

#[track_caller]
fn assert_option_close(actual: Option<f64>, expected: Option<f64>) {
    match (actual, expected) {
        (Some(a), Some(e)) => assert_close(a, e),
        (None, None) => {}
        _ => panic!("expected {expected:?}, got {actual:?}"),
    }
}

#[track_caller]
fn assert_indices(result: &TownshipResult, population: f64, fiscal_revenue: f64, land_area: f64) {
    assert_close(result.indices.population, population);
    assert_close(result.indices.fiscal_revenue, fiscal_revenue);
    assert_close(result.indices.land_area, land_area);
}

/// Ids in rank order.
fn ranking(classification: &Classification) -> Vec<&str> {
    classification.results.iter().map(|r| r.id.as_str()).collect()
}

fn classes(classification: &Classification) -> Vec<u8> {
    classification.results.iter().map(|r| r.class).collect()
}

/// Population 2, 4, 6; revenue 3,000, 1,000, 2,000; area 100, 50, 150 — three indicators that disagree.
fn three_townships() -> Vec<TownshipInput> {
    vec![town("A", 2.0, 3000.0, 100.0), town("B", 4.0, 1000.0, 50.0), town("C", 6.0, 2000.0, 150.0)]
}

// ----------------------------------------------------------------------------------------------------------
// The default policy
// ----------------------------------------------------------------------------------------------------------

#[test]
fn weights_are_five_three_two_by_default() {
    let policy = Policy::builtin_default();
    assert_eq!(policy.weights, PerIndicator { population: 5.0, fiscal_revenue: 3.0, land_area: 2.0 });
    assert_eq!(policy.normalization, Normalization::MeanIndex);
    assert_eq!(policy.banding, BandingMethod::ScoreThresholds);
    assert_eq!(policy.score_thresholds, ScoreThresholds { class1_min_score: 120.0, class2_min_score: 80.0 });
    assert_eq!(policy.rank_quota, RankQuota { class1_share: 0.2, class2_share: 0.5 });
    assert_eq!(policy.index_caps, Default::default(), "no index is capped by default");

    // Contributions are wᵢ·Iᵢ / Σw: with indices 150, 100, 150 (township C of `three_townships` under
    // MEAN_INDEX) they are 5×150/10 = 75, 3×100/10 = 30, 2×150/10 = 30, and the score is their sum, 135.
    let classification = classify_ok(&policy, &three_townships());
    let c = result(&classification, "C");
    assert_close(c.contributions.population, 75.0);
    assert_close(c.contributions.fiscal_revenue, 30.0);
    assert_close(c.contributions.land_area, 30.0);
    assert_close(c.score, 135.0);
    assert_eq!(classification.policy_fingerprint, policy.fingerprint());
}

// ----------------------------------------------------------------------------------------------------------
// Normalisation
// ----------------------------------------------------------------------------------------------------------

#[test]
fn mean_index_is_value_over_cohort_mean_times_100() {
    // Means: population (2+4+6)/3 = 4, revenue (3000+1000+2000)/3 = 2000, area (100+50+150)/3 = 100.
    //   A: indices 2/4 = 50, 3000/2000 = 150, 100/100 = 100 → score (5×50 + 3×150 + 2×100)/10 = 900/10 = 90
    //   B: indices 4/4 = 100, 1000/2000 = 50, 50/100 = 50   → score (500 + 150 + 100)/10 = 75
    //   C: indices 6/4 = 150, 2000/2000 = 100, 150/100 = 150 → score (750 + 300 + 300)/10 = 135
    // Thresholds 120/80: C class 1 (135 ≥ 120), A class 2 (80 ≤ 90 < 120), B class 3 (75 < 80).
    let classification = classify_ok(&Policy::builtin_default(), &three_townships());
    assert_eq!(ranking(&classification), ["C", "A", "B"]);
    assert_eq!(classes(&classification), [1, 2, 3]);
    assert_eq!(classification.results.iter().map(|r| r.rank).collect::<Vec<_>>(), [1, 2, 3]);

    let (a, b, c) = (result(&classification, "A"), result(&classification, "B"), result(&classification, "C"));
    assert_indices(a, 50.0, 150.0, 100.0);
    assert_indices(b, 100.0, 50.0, 50.0);
    assert_indices(c, 150.0, 100.0, 150.0);
    assert_close(a.score, 90.0);
    assert_close(b.score, 75.0);
    assert_close(c.score, 135.0);

    // Statistics: raw indicator distributions, score distribution (75, 90, 135 → mean 100, median 90).
    let stats = &classification.statistics;
    assert_eq!(stats.township_count, 3);
    assert_eq!(stats.class_counts, [1, 1, 1]);
    assert_close(stats.indicators.population.min, 2.0);
    assert_close(stats.indicators.population.max, 6.0);
    assert_close(stats.indicators.population.mean, 4.0);
    assert_close(stats.indicators.population.median, 4.0);
    assert_close(stats.indicators.fiscal_revenue.mean, 2000.0);
    assert_close(stats.indicators.land_area.median, 100.0);
    assert_close(stats.score.min, 75.0);
    assert_close(stats.score.max, 135.0);
    assert_close(stats.score.mean, 100.0);
    assert_close(stats.score.median, 90.0);
}

#[test]
fn mean_index_scores_average_100_over_the_cohort() {
    // Each index averages 100 by construction (Σ x/mean × 100 / n = 100), so the scores do too:
    // (90 + 75 + 135)/3 = 100.
    let classification = classify_ok(&Policy::builtin_default(), &three_townships());
    let n = classification.results.len() as f64;
    let mean = |f: fn(&TownshipResult) -> f64| classification.results.iter().map(f).sum::<f64>() / n;
    assert_close(mean(|r| r.indices.population), 100.0);
    assert_close(mean(|r| r.indices.fiscal_revenue), 100.0);
    assert_close(mean(|r| r.indices.land_area), 100.0);
    assert_close(mean(|r| r.score), 100.0);
}

#[test]
fn max_index_is_value_over_cohort_max_times_100() {
    // Maxima: population 6, revenue 3000, area 150.
    //   A: 2/6 = 33⅓, 3000/3000 = 100, 100/150 = 66⅔ → (5×33⅓ + 3×100 + 2×66⅔)/10 = (166⅔ + 300 + 133⅓)/10 = 60
    //   B: 4/6 = 66⅔, 1000/3000 = 33⅓, 50/150 = 33⅓  → (333⅓ + 100 + 66⅔)/10 = 50
    //   C: 6/6 = 100, 2000/3000 = 66⅔, 150/150 = 100 → (500 + 200 + 200)/10 = 90
    // Thresholds 120/80: C class 2, A and B class 3.
    let classification =
        classify_ok(&policy(Normalization::MaxIndex, BandingMethod::ScoreThresholds), &three_townships());
    assert_eq!(ranking(&classification), ["C", "A", "B"]);
    assert_eq!(classes(&classification), [2, 3, 3]);
    let (a, b, c) = (result(&classification, "A"), result(&classification, "B"), result(&classification, "C"));
    assert_indices(a, 100.0 / 3.0, 100.0, 200.0 / 3.0);
    assert_indices(b, 200.0 / 3.0, 100.0 / 3.0, 100.0 / 3.0);
    assert_indices(c, 100.0, 200.0 / 3.0, 100.0);
    assert_close(a.score, 60.0);
    assert_close(b.score, 50.0);
    assert_close(c.score, 90.0);
    assert_eq!(classification.statistics.class_counts, [0, 1, 2]);
}

#[test]
fn min_max_is_value_minus_min_over_range_times_100() {
    // Ranges: population 2..6 (4), revenue 1000..3000 (2000), area 50..150 (100).
    //   A: (2−2)/4 = 0,    (3000−1000)/2000 = 100, (100−50)/100 = 50 → (0 + 300 + 100)/10 = 40
    //   B: (4−2)/4 = 50,   (1000−1000)/2000 = 0,   (50−50)/100 = 0   → (250 + 0 + 0)/10 = 25
    //   C: (6−2)/4 = 100,  (2000−1000)/2000 = 50,  (150−50)/100 = 100 → (500 + 150 + 200)/10 = 85
    // Thresholds 120/80: C class 2, A and B class 3.
    let classification =
        classify_ok(&policy(Normalization::MinMax, BandingMethod::ScoreThresholds), &three_townships());
    assert_eq!(ranking(&classification), ["C", "A", "B"]);
    assert_eq!(classes(&classification), [2, 3, 3]);
    let (a, b, c) = (result(&classification, "A"), result(&classification, "B"), result(&classification, "C"));
    assert_indices(a, 0.0, 100.0, 50.0);
    assert_indices(b, 50.0, 0.0, 0.0);
    assert_indices(c, 100.0, 50.0, 100.0);
    assert_close(a.score, 40.0);
    assert_close(b.score, 25.0);
    assert_close(c.score, 85.0);
}

#[test]
fn percentile_rank_ties_share_the_average_position() {
    // Five townships; a position p of 0..4 in ascending order gives p/4 × 100.
    //   population 1, 2, 2, 3, 5: 1 → 0; the two 2s hold positions 1 and 2, average 1.5 → 37.5; 3 → 75; 5 → 100
    //   revenue 50, 10, 40, 20, 30: 10 → 0, 20 → 25, 30 → 50, 40 → 75, 50 → 100
    //   area 7 for all: positions 0..4 average 2 → 50 each (a constant indicator is no error here)
    // Scores (5P + 3R + 2A)/10:
    //   T1: (0 + 300 + 100)/10 = 40       T2: (187.5 + 0 + 100)/10 = 28.75   T3: (187.5 + 225 + 100)/10 = 51.25
    //   T4: (375 + 75 + 100)/10 = 55      T5: (500 + 150 + 100)/10 = 75
    let cohort = [
        town("T1", 1.0, 50.0, 7.0),
        town("T2", 2.0, 10.0, 7.0),
        town("T3", 2.0, 40.0, 7.0),
        town("T4", 3.0, 20.0, 7.0),
        town("T5", 5.0, 30.0, 7.0),
    ];
    let classification = classify_ok(&policy(Normalization::PercentileRank, BandingMethod::ScoreThresholds), &cohort);
    assert_eq!(ranking(&classification), ["T5", "T4", "T3", "T1", "T2"]);
    assert_eq!(classes(&classification), [3, 3, 3, 3, 3]);
    let expected = [
        ("T1", [0.0, 100.0, 50.0], 40.0),
        ("T2", [37.5, 0.0, 50.0], 28.75),
        ("T3", [37.5, 75.0, 50.0], 51.25),
        ("T4", [75.0, 25.0, 50.0], 55.0),
        ("T5", [100.0, 50.0, 50.0], 75.0),
    ];
    for (id, [p, r, a], score) in expected {
        let t = result(&classification, id);
        assert_indices(t, p, r, a);
        assert_close(t.score, score);
    }
}

#[test]
fn index_cap_bounds_the_index_after_normalisation() {
    // Revenue 100, 100, 100, 700: mean 1000/4 = 250, indices 40, 40, 40 and 700/250 = 280 → capped at 200.
    // The cap does not renormalise: the mean is still taken over the raw values.
    // Population 3 and area 50 everywhere → indices 100.
    //   D (dominant): (5×100 + 3×200 + 2×100)/10 = 130 (uncapped it would be (500 + 840 + 200)/10 = 154)
    //   others:       (500 + 3×40 + 200)/10 = 82
    let cohort = [
        town("D", 3.0, 700.0, 50.0),
        town("E", 3.0, 100.0, 50.0),
        town("F", 3.0, 100.0, 50.0),
        town("G", 3.0, 100.0, 50.0),
    ];
    let mut capped = Policy::builtin_default();
    capped.index_caps.fiscal_revenue = Some(200.0);
    let classification = classify_ok(&capped, &cohort);
    let d = result(&classification, "D");
    assert_indices(d, 100.0, 200.0, 100.0);
    assert_close(d.score, 130.0);
    assert_eq!(d.class, 1);
    for id in ["E", "F", "G"] {
        let t = result(&classification, id);
        assert_indices(t, 100.0, 40.0, 100.0);
        assert_close(t.score, 82.0);
        assert_eq!(t.class, 2);
    }

    // Without the cap: 154 for D.
    let uncapped = classify_ok(&Policy::builtin_default(), &cohort);
    assert_close(result(&uncapped, "D").indices.fiscal_revenue, 280.0);
    assert_close(result(&uncapped, "D").score, 154.0);
}

#[test]
fn index_cap_applies_under_max_index_too() {
    // MAX_INDEX indices never exceed 100, so a cap of 50 on population halves the top: population 2, 4 → 50, 100
    // → capped 50, 50. Revenue and area equal → 100. Scores (5×50 + 300 + 200)/10 = 75 for both; the tie is
    // broken by the higher population (4), so Y ranks first.
    let mut capped = policy(Normalization::MaxIndex, BandingMethod::ScoreThresholds);
    capped.index_caps.population = Some(50.0);
    let classification = classify_ok(&capped, &[town("X", 2.0, 10.0, 10.0), town("Y", 4.0, 10.0, 10.0)]);
    assert_eq!(ranking(&classification), ["Y", "X"]);
    for t in &classification.results {
        assert_indices(t, 50.0, 100.0, 100.0);
        assert_close(t.score, 75.0);
    }
}

// ----------------------------------------------------------------------------------------------------------
// SCORE_THRESHOLDS
// ----------------------------------------------------------------------------------------------------------

/// Two townships with every indicator equal to `high` and `low` respectively: under MEAN_INDEX each index
/// is x / ((high+low)/2) × 100, and as all three indices are equal the score equals that index.
fn pair(high: f64, low: f64) -> Vec<TownshipInput> {
    vec![town("H", high, high, high), town("L", low, low, low)]
}

#[test]
fn score_exactly_on_class1_threshold_is_class1() {
    // 6 and 4: mean 5, indices 6/5 × 100 = 120 and 4/5 × 100 = 80; the scores are 120 and 80.
    // 120 ≥ 120 → class 1, 0 points above class 2's range.
    let classification = classify_ok(&Policy::builtin_default(), &pair(6.0, 4.0));
    let h = result(&classification, "H");
    assert_close(h.score, 120.0);
    assert_eq!(h.class, 1);
    assert_eq!(h.rank, 1);
    assert_option_close(h.points_to_next_class_up, None);
    assert_option_close(h.points_above_next_class_down, Some(0.0));
}

#[test]
fn score_exactly_on_class2_threshold_is_class2() {
    // As above: L scores 80, and 80 ≥ 80 → class 2; 120 − 80 = 40 points to class 1, 0 above class 3.
    let classification = classify_ok(&Policy::builtin_default(), &pair(6.0, 4.0));
    let l = result(&classification, "L");
    assert_close(l.score, 80.0);
    assert_eq!(l.class, 2);
    assert_eq!(l.rank, 2);
    assert_option_close(l.points_to_next_class_up, Some(40.0));
    assert_option_close(l.points_above_next_class_down, Some(0.0));
    assert_eq!(classification.statistics.class_counts, [1, 1, 0]);
}

#[test]
fn score_is_compared_after_rounding_to_two_decimals() {
    // 119.995 and 80.005: mean (119.995 + 80.005)/2 = 100, so the scores are 119.995 and 80.005.
    // 119.995 rounds (half away from zero) to 120.00 ≥ 120 → class 1; 0.00 points above class 2.
    // 80.005 rounds to 80.01 → class 2; 120 − 80.01 = 39.99 points to class 1, 80.01 − 80 = 0.01 above class 3.
    let classification = classify_ok(&Policy::builtin_default(), &pair(119.995, 80.005));
    let (h, l) = (result(&classification, "H"), result(&classification, "L"));
    assert_close(h.score, 119.995);
    assert_eq!(h.class, 1);
    assert_option_close(h.points_above_next_class_down, Some(0.0));
    assert_close(l.score, 80.005);
    assert_eq!(l.class, 2);
    assert_option_close(l.points_to_next_class_up, Some(39.99));
    assert_option_close(l.points_above_next_class_down, Some(0.01));
}

#[test]
fn score_just_below_class1_threshold_after_rounding_is_class2() {
    // 119.994 and 80.006: mean 100, scores 119.994 (→ 119.99 < 120, class 2, 0.01 to class 1, 39.99 above
    // class 3) and 80.006 (→ 80.01, class 2).
    let classification = classify_ok(&Policy::builtin_default(), &pair(119.994, 80.006));
    let h = result(&classification, "H");
    assert_close(h.score, 119.994);
    assert_eq!(h.class, 2);
    assert_option_close(h.points_to_next_class_up, Some(0.01));
    assert_option_close(h.points_above_next_class_down, Some(39.99));
    assert_eq!(result(&classification, "L").class, 2);
}

#[test]
fn score_just_below_class2_threshold_after_rounding_is_class3() {
    // 120.006 and 79.994: mean 100, scores 120.006 (class 1, 0.01 above class 2) and 79.994 (→ 79.99 < 80,
    // class 3, 80 − 79.99 = 0.01 points to class 2, nothing below class 3).
    let classification = classify_ok(&Policy::builtin_default(), &pair(120.006, 79.994));
    let (h, l) = (result(&classification, "H"), result(&classification, "L"));
    assert_eq!(h.class, 1);
    assert_option_close(h.points_above_next_class_down, Some(0.01));
    assert_close(l.score, 79.994);
    assert_eq!(l.class, 3);
    assert_option_close(l.points_to_next_class_up, Some(0.01));
    assert_option_close(l.points_above_next_class_down, None);
}

#[test]
fn points_to_the_neighbouring_classes_are_distances_to_the_thresholds() {
    // three_townships under the default policy: C 135, A 90, B 75 (see mean_index_is_value_over_cohort_mean…).
    //   C class 1: no class above; 135 − 120 = 15 above class 2.
    //   A class 2: 120 − 90 = 30 to class 1; 90 − 80 = 10 above class 3.
    //   B class 3: 80 − 75 = 5 to class 2; no class below.
    let classification = classify_ok(&Policy::builtin_default(), &three_townships());
    let (a, b, c) = (result(&classification, "A"), result(&classification, "B"), result(&classification, "C"));
    assert_option_close(c.points_to_next_class_up, None);
    assert_option_close(c.points_above_next_class_down, Some(15.0));
    assert_option_close(a.points_to_next_class_up, Some(30.0));
    assert_option_close(a.points_above_next_class_down, Some(10.0));
    assert_option_close(b.points_to_next_class_up, Some(5.0));
    assert_option_close(b.points_above_next_class_down, None);
}

#[test]
fn explanation_states_score_contributions_rank_and_class() {
    // C: score 135 = 75 + 30 + 30, rank 1 of 3, class 1. A: 90 = 25 + 45 + 20, rank 2 of 3, class 2.
    let classification = classify_ok(&Policy::builtin_default(), &three_townships());
    let c = &result(&classification, "C").explanation;
    assert!(c.contains("135.00"), "{c}");
    assert!(c.contains("75.00") && c.contains("30.00"), "{c}");
    assert!(c.contains("1/3"), "{c}");
    assert!(c.contains("一类"), "{c}");
    assert!(c.contains("15.00"), "{c}");
    let a = &result(&classification, "A").explanation;
    assert!(a.contains("90.00") && a.contains("25.00") && a.contains("45.00") && a.contains("20.00"), "{a}");
    assert!(a.contains("2/3") && a.contains("二类"), "{a}");
    assert!(a.contains("30.00") && a.contains("10.00"), "{a}");
}

#[test]
fn the_explanation_says_which_figures_it_rests_on_are_inferred() {
    let policy = Policy::builtin_default();
    let explanation = result(&classify_ok(&policy, &three_townships()), "C").explanation.clone();
    assert!(explanation.ends_with("；所用标准化方法、一类线、二类线为推定值，未经核实。"), "{explanation}");

    // A city that sets its own thresholds and adopts the normalisation: nothing of the explanation is inferred.
    let mut own = policy.clone();
    own.figure_provenance
        .retain(|entry| !entry.field.starts_with("score_thresholds") && entry.field != "normalization");
    let explanation = result(&classify_ok(&own, &three_townships()), "C").explanation.clone();
    assert!(!explanation.contains("推定值"), "{explanation}");
}

// ----------------------------------------------------------------------------------------------------------
// RANK_QUOTA
// ----------------------------------------------------------------------------------------------------------

/// Ten townships, population 1..10 and revenue/area equal: under MAX_INDEX the population index is 10·p,
/// the others 100, so the score is (5×10p + 300 + 200)/10 = 5p + 50: 55, 60, …, 100.
fn ten_townships() -> Vec<TownshipInput> {
    (1..=10).map(|p| town(&format!("P{p:02}"), f64::from(p), 500.0, 80.0)).collect()
}

#[test]
fn rank_quota_top_20_percent_class1_next_50_percent_class2() {
    // n = 10, shares 0.2/0.5: class 1 = ⌊10×0.2 + 0.5⌋ = 2, class 1+2 = ⌊10×0.7 + 0.5⌋ = 7 → 2 / 5 / 3.
    // Ranks by score 100, 95, …, 55: P10, P09 class 1; P08..P04 class 2; P03..P01 class 3.
    let classification = classify_ok(&policy(Normalization::MaxIndex, BandingMethod::RankQuota), &ten_townships());
    assert_eq!(ranking(&classification), ["P10", "P09", "P08", "P07", "P06", "P05", "P04", "P03", "P02", "P01"]);
    assert_eq!(classes(&classification), [1, 1, 2, 2, 2, 2, 2, 3, 3, 3]);
    assert_eq!(classification.statistics.class_counts, [2, 5, 3]);
    for (position, t) in classification.results.iter().enumerate() {
        assert_eq!(t.rank as usize, position + 1);
        assert_close(t.score, 100.0 - 5.0 * position as f64);
    }
}

#[test]
fn rank_quota_points_are_distances_to_the_neighbouring_class_boundaries() {
    // Same cohort (scores 100, 95, …, 55). The boundary of a class is the score of the township beside it:
    //   P10 (100, class 1): none up; 100 − 90 (best of class 2, P08) = 10 down.
    //   P09 (95, class 1):  none up; 95 − 90 = 5.
    //   P08 (90, class 2):  95 (last of class 1) − 90 = 5 up; 90 − 65 (best of class 3, P03) = 25 down.
    //   P04 (70, class 2):  95 − 70 = 25 up; 70 − 65 = 5 down.
    //   P03 (65, class 3):  70 (last of class 2) − 65 = 5 up; none down.
    //   P01 (55, class 3):  70 − 55 = 15 up.
    let classification = classify_ok(&policy(Normalization::MaxIndex, BandingMethod::RankQuota), &ten_townships());
    let expect = |id: &str, up: Option<f64>, down: Option<f64>| {
        let t = result(&classification, id);
        assert_option_close(t.points_to_next_class_up, up);
        assert_option_close(t.points_above_next_class_down, down);
    };
    expect("P10", None, Some(10.0));
    expect("P09", None, Some(5.0));
    expect("P08", Some(5.0), Some(25.0));
    expect("P04", Some(25.0), Some(5.0));
    expect("P03", Some(5.0), None);
    expect("P01", Some(15.0), None);
}

#[test]
fn rank_quota_counts_round_half_up() {
    // Class 1 = ⌊n·s₁ + 0.5⌋, classes 1+2 = ⌊n·(s₁+s₂) + 0.5⌋:
    //   n=5,  0.3/0.5: ⌊1.5+0.5⌋ = 2, ⌊4.0+0.5⌋ = 4 → 2/2/1 (1.5 rounds up even though 0.3×5 is inexact)
    //   n=3,  0.2/0.5: ⌊0.6+0.5⌋ = 1, ⌊2.1+0.5⌋ = 2 → 1/1/1
    //   n=1,  0.2/0.5: ⌊0.2+0.5⌋ = 0, ⌊0.7+0.5⌋ = 1 → 0/1/0
    //   n=7,  0.5/0.5: ⌊3.5+0.5⌋ = 4, ⌊7+0.5⌋ = 7   → 4/3/0
    //   n=10, 0.25/0.5: ⌊2.5+0.5⌋ = 3, ⌊7.5+0.5⌋ = 8 → 3/5/2
    //   n=4,  0/0:     0, 0                          → 0/0/4
    for (n, class1_share, class2_share, expected) in [
        (5, 0.3, 0.5, [2, 2, 1]),
        (3, 0.2, 0.5, [1, 1, 1]),
        (1, 0.2, 0.5, [0, 1, 0]),
        (7, 0.5, 0.5, [4, 3, 0]),
        (10, 0.25, 0.5, [3, 5, 2]),
        (4, 0.0, 0.0, [0, 0, 4]),
    ] {
        let mut quota = policy(Normalization::MaxIndex, BandingMethod::RankQuota);
        quota.rank_quota = RankQuota { class1_share, class2_share };
        let cohort: Vec<_> = ten_townships().into_iter().take(n).collect();
        let classification = classify_ok(&quota, &cohort);
        assert_eq!(classification.statistics.class_counts, expected, "n={n}, shares {class1_share}/{class2_share}");
        let mut sorted = classes(&classification);
        sorted.sort_unstable();
        assert_eq!(sorted, classes(&classification), "classes follow the ranks");
    }
}

#[test]
fn rank_quota_ties_broken_by_rounded_score_then_population_revenue_area_then_id() {
    // MAX_INDEX with maxima population 10, revenue 1000, area 100. Scores (5P + 3R + 2A)/10:
    //   e: pop 10, rev 400, area 40      → P100 R40 A40   → (500 + 120 + 80)/10 = 70
    //   d: pop 8,  rev 1000, area 0      → P80  R100 A0   → (400 + 300 + 0)/10  = 70
    //   c: pop 8,  rev 600, area 60.004  → P80  R60 A60.004 → (400 + 180 + 120.008)/10 = 70.0008 → 70.00
    //   a, b: pop 8, rev 600, area 60    → P80  R60 A60   → (400 + 180 + 120)/10 = 70
    //   z: pop 2, rev 0, area 100        → P20  R0  A100  → (100 + 0 + 200)/10 = 30
    // All but z score 70.00 after rounding, so:
    //   e first (population 10) — although c's unrounded score 70.0008 is the highest;
    //   d next (population 8, revenue 1000 beats 600);
    //   c next (population 8, revenue 600, area 60.004 beats 60);
    //   a before b (identical indicators, smaller id first); z last.
    // n = 6 at 0.2/0.5: class 1 = ⌊1.2+0.5⌋ = 1, class 1+2 = ⌊4.2+0.5⌋ = 4 → e | d c a | b z:
    // the identical a and b fall either side of the class 2/3 boundary, decided by id alone.
    let cohort = [
        town("z", 2.0, 0.0, 100.0),
        town("b", 8.0, 600.0, 60.0),
        town("c", 8.0, 600.0, 60.004),
        town("a", 8.0, 600.0, 60.0),
        town("d", 8.0, 1000.0, 0.0),
        town("e", 10.0, 400.0, 40.0),
    ];
    let classification = classify_ok(&policy(Normalization::MaxIndex, BandingMethod::RankQuota), &cohort);
    assert_eq!(ranking(&classification), ["e", "d", "c", "a", "b", "z"]);
    assert_eq!(classes(&classification), [1, 2, 2, 2, 3, 3]);
    assert_close(result(&classification, "c").score, 70.0008);
    assert_close(result(&classification, "z").score, 30.0);
    // Tied on rounded score, the boundaries are 0 points away.
    assert_option_close(result(&classification, "a").points_above_next_class_down, Some(0.0));
    assert_option_close(result(&classification, "b").points_to_next_class_up, Some(0.0));
}

#[test]
fn score_threshold_ties_share_the_class_and_take_consecutive_ranks() {
    // Three identical townships: every index 100, every score 100 → all class 2; ranks 1, 2, 3 by id.
    let cohort = [town("t3", 5.0, 900.0, 40.0), town("t1", 5.0, 900.0, 40.0), town("t2", 5.0, 900.0, 40.0)];
    let classification = classify_ok(&Policy::builtin_default(), &cohort);
    assert_eq!(ranking(&classification), ["t1", "t2", "t3"]);
    assert_eq!(classification.results.iter().map(|r| r.rank).collect::<Vec<_>>(), [1, 2, 3]);
    for t in &classification.results {
        assert_indices(t, 100.0, 100.0, 100.0);
        assert_close(t.score, 100.0);
        assert_eq!(t.class, 2);
    }
}

// ----------------------------------------------------------------------------------------------------------
// ABSOLUTE_BANDS
// ----------------------------------------------------------------------------------------------------------

#[test]
fn absolute_bands_need_two_of_three_indicators_at_the_class_minimum() {
    // Default minimums: class 1 population 5, revenue 5000, area 150; class 2: 2, 1500, 60; 2 of 3 required.
    //   A1: 6, 6000, 10   → class-1 minimums met: population, revenue (2)        → class 1
    //   E1: 5, 5000, 0    → exactly on population and revenue minimums (2, inclusive) → class 1
    //   C2: 3, 1000, 200  → class 1: area only (1); class 2: population, area (2) → class 2
    //   D2: 1, 1500, 60   → class 1: none; class 2: exactly revenue and area (2)  → class 2
    //   B3: 6, 1000, 10   → class 1: population only (1); class 2: population only (1) → class 3
    let cohort = [
        town("A1", 6.0, 6000.0, 10.0),
        town("B3", 6.0, 1000.0, 10.0),
        town("C2", 3.0, 1000.0, 200.0),
        town("D2", 1.0, 1500.0, 60.0),
        town("E1", 5.0, 5000.0, 0.0),
    ];
    let classification = classify_ok(&policy(Normalization::MeanIndex, BandingMethod::AbsoluteBands), &cohort);
    for (id, class) in [("A1", 1), ("E1", 1), ("C2", 2), ("D2", 2), ("B3", 3)] {
        let t = result(&classification, id);
        assert_eq!(t.class, class, "{id}: {}", t.explanation);
        assert_eq!(t.points_to_next_class_up, None, "points are not defined for absolute bands");
        assert_eq!(t.points_above_next_class_down, None);
    }
    assert_eq!(classification.statistics.class_counts, [2, 2, 1]);
    // The rank is still by score. Means: population 21/5 = 4.2, revenue 14500/5 = 2900, area 280/5 = 56.
    //   A1: (5×6/4.2 + 3×6000/2900 + 2×10/56) × 100/10 = 71.4286 + 62.0690 + 3.5714 = 137.0690 → rank 1
    //   (C2: 35.7143 + 10.3448 + 71.4286 = 117.4877; E1: 59.5238 + 51.7241 + 0 = 111.2479; B3: 85.3)
    let a1 = result(&classification, "A1");
    assert_close(a1.score, (5.0 * 6.0 / 4.2 + 3.0 * 6000.0 / 2900.0 + 2.0 * 10.0 / 56.0) * 10.0);
    assert_eq!(a1.rank, 1);
}

#[test]
fn absolute_bands_with_one_indicator_required_take_the_best_indicator() {
    // indicators_required = 1: B3 (population 6 ≥ 5) becomes class 1; D2 (revenue 1500 ≥ 1500) class 2.
    let mut bands = policy(Normalization::MeanIndex, BandingMethod::AbsoluteBands);
    bands.absolute_bands.indicators_required = 1;
    let cohort = [town("B3", 6.0, 1000.0, 10.0), town("D2", 1.0, 1500.0, 0.0), town("F3", 1.0, 100.0, 10.0)];
    let classification = classify_ok(&bands, &cohort);
    assert_eq!(result(&classification, "B3").class, 1);
    assert_eq!(result(&classification, "D2").class, 2);
    assert_eq!(result(&classification, "F3").class, 3);
}

// ----------------------------------------------------------------------------------------------------------
// Shapes of cohort
// ----------------------------------------------------------------------------------------------------------

#[test]
fn one_dominant_township_pushes_the_others_down() {
    // Four townships with revenue 100 and one with 10000 (100×). Population and area equal → indices 100.
    // Revenue mean (4×100 + 10000)/5 = 2080: small indices 100/2080 × 100 = 4.8077, dominant 480.7692.
    //   small: 70 + 0.3 × 4.8077  = 71.4423 → class 3
    //   big:   70 + 0.3 × 480.7692 = 214.2308 → class 1
    // With a revenue cap of 200 the dominant scores 70 + 0.3 × 200 = 130 and the others are unchanged.
    let mut cohort: Vec<_> = (1..=4).map(|i| town(&format!("S{i}"), 3.0, 100.0, 50.0)).collect();
    cohort.push(town("BIG", 3.0, 10_000.0, 50.0));
    let small_index = 100.0 / 2080.0 * 100.0;
    let big_index = 10_000.0 / 2080.0 * 100.0;

    let classification = classify_ok(&Policy::builtin_default(), &cohort);
    assert_eq!(ranking(&classification)[0], "BIG");
    let big = result(&classification, "BIG");
    assert_close(big.indices.fiscal_revenue, big_index);
    assert_close(big.score, 70.0 + 0.3 * big_index);
    assert_eq!(big.class, 1);
    for id in ["S1", "S2", "S3", "S4"] {
        let t = result(&classification, id);
        assert_close(t.indices.fiscal_revenue, small_index);
        assert_close(t.score, 70.0 + 0.3 * small_index);
        assert_eq!(t.class, 3);
    }
    assert_eq!(classification.statistics.class_counts, [1, 0, 4]);

    let mut capped = Policy::builtin_default();
    capped.index_caps.fiscal_revenue = Some(200.0);
    let classification = classify_ok(&capped, &cohort);
    assert_close(result(&classification, "BIG").score, 130.0);
    assert_close(result(&classification, "S1").score, 70.0 + 0.3 * small_index);
}

#[test]
fn zero_revenue_for_one_township_is_accepted() {
    // Revenue 0, 1000, 2000: mean 1000, indices 0, 100, 200. Population 2 and area 50 → 100.
    //   R0: (500 + 0 + 200)/10 = 70 → class 3; R1: 100 → class 2; R2: (500 + 600 + 200)/10 = 130 → class 1.
    let cohort = [town("R0", 2.0, 0.0, 50.0), town("R1", 2.0, 1000.0, 50.0), town("R2", 2.0, 2000.0, 50.0)];
    let classification = classify_ok(&Policy::builtin_default(), &cohort);
    assert_eq!(ranking(&classification), ["R2", "R1", "R0"]);
    assert_eq!(classes(&classification), [1, 2, 3]);
    assert_close(result(&classification, "R0").indices.fiscal_revenue, 0.0);
    assert_close(result(&classification, "R0").score, 70.0);
    assert_close(result(&classification, "R1").score, 100.0);
    assert_close(result(&classification, "R2").score, 130.0);

    // Under MIN_MAX the zero is the minimum: (0−0)/2000 = 0. Population and area are constant there, which
    // MIN_MAX refuses, so give them a spread: population 1, 2, 3 → 0, 50, 100; area 10, 20, 30 → 0, 50, 100.
    //   R0: (0 + 0 + 0)/10 = 0; R1: (250 + 150 + 100)/10 = 50; R2: (500 + 300 + 200)/10 = 100.
    let cohort = [town("R0", 1.0, 0.0, 10.0), town("R1", 2.0, 1000.0, 20.0), town("R2", 3.0, 2000.0, 30.0)];
    let classification = classify_ok(&policy(Normalization::MinMax, BandingMethod::ScoreThresholds), &cohort);
    assert_close(result(&classification, "R0").score, 0.0);
    assert_close(result(&classification, "R1").score, 50.0);
    assert_close(result(&classification, "R2").score, 100.0);
}

#[test]
fn cohort_of_one_scores_100_and_is_class2() {
    // One township: its value is the mean and the max, so MEAN_INDEX and MAX_INDEX give 100 per indicator;
    // PERCENTILE_RANK gives a lone township 100. Score 100 → class 2 (80 ≤ 100 < 120), rank 1.
    for normalization in [Normalization::MeanIndex, Normalization::MaxIndex, Normalization::PercentileRank] {
        let classification =
            classify_ok(&policy(normalization, BandingMethod::ScoreThresholds), &[town("ONE", 3.2, 4100.0, 77.0)]);
        let t = &classification.results[0];
        assert_indices(t, 100.0, 100.0, 100.0);
        assert_close(t.score, 100.0);
        assert_eq!((t.rank, t.class), (1, 2), "{normalization:?}");
        assert_eq!(classification.statistics.class_counts, [0, 1, 0]);
    }
    // RANK_QUOTA with n = 1: class 1 = ⌊0.2 + 0.5⌋ = 0, classes 1+2 = ⌊0.7 + 0.5⌋ = 1 → class 2.
    let classification =
        classify_ok(&policy(Normalization::MeanIndex, BandingMethod::RankQuota), &[town("ONE", 3.2, 4100.0, 77.0)]);
    assert_eq!(classification.results[0].class, 2);
}

#[test]
fn cohort_of_one_is_refused_under_min_max() {
    // max − min = 0 for every indicator of a lone township: MIN_MAX would divide by zero.
    let violations =
        violations(&policy(Normalization::MinMax, BandingMethod::ScoreThresholds), &[town("ONE", 3.2, 4100.0, 77.0)]);
    assert_eq!(
        fields(&violations),
        [
            "townships[*].indicators.population",
            "townships[*].indicators.fiscal_revenue",
            "townships[*].indicators.land_area"
        ]
    );
}

// ----------------------------------------------------------------------------------------------------------
// Bad input
// ----------------------------------------------------------------------------------------------------------

fn valid_cohort() -> Vec<TownshipInput> {
    vec![
        town("430102001", 3.0, 2000.0, 60.0),
        town("430102002", 4.0, 3000.0, 90.0),
        town("430102003", 5.0, 4000.0, 120.0),
        town("430102004", 6.0, 5000.0, 150.0),
    ]
}

#[track_caller]
fn assert_single_violation(violations: &[FieldViolation], field: &str, mentions: &[&str]) {
    assert_eq!(fields(violations), [field], "{violations:#?}");
    for mention in mentions {
        assert!(
            violations[0].description.contains(mention),
            "{:?} should mention {mention}",
            violations[0].description
        );
    }
}

#[test]
fn nan_indicator_is_refused_naming_the_township() {
    let mut cohort = valid_cohort();
    cohort[2].indicators.population = f64::NAN;
    let violations = violations(&Policy::builtin_default(), &cohort);
    assert_single_violation(&violations, "townships[2].indicators.population", &["430102003", "430102003镇", "NaN"]);
}

#[test]
fn positive_infinity_is_refused_naming_the_township() {
    let mut cohort = valid_cohort();
    cohort[1].indicators.fiscal_revenue = f64::INFINITY;
    let violations = violations(&Policy::builtin_default(), &cohort);
    assert_single_violation(&violations, "townships[1].indicators.fiscal_revenue", &["430102002", "inf"]);
}

#[test]
fn negative_infinity_is_refused_naming_the_township() {
    let mut cohort = valid_cohort();
    cohort[3].indicators.land_area = f64::NEG_INFINITY;
    let violations = violations(&Policy::builtin_default(), &cohort);
    assert_single_violation(&violations, "townships[3].indicators.land_area", &["430102004", "-inf"]);
}

#[test]
fn negative_indicator_is_refused_naming_the_township() {
    let mut cohort = valid_cohort();
    cohort[0].indicators.population = -1.5;
    let violations = violations(&Policy::builtin_default(), &cohort);
    assert_single_violation(&violations, "townships[0].indicators.population", &["430102001", "-1.5"]);
}

#[test]
fn every_bad_value_is_reported_at_once_by_position_in_the_request() {
    // Positions are those of the request, not of the id order: the cohort is given in reverse id order.
    let mut cohort = valid_cohort();
    cohort.reverse(); // positions: 0 → …004, 1 → …003, 2 → …002, 3 → …001
    cohort[0].indicators.fiscal_revenue = f64::NAN;
    cohort[2].indicators.population = -3.0;
    cohort[2].indicators.land_area = f64::INFINITY;
    let violations = violations(&Policy::builtin_default(), &cohort);
    assert_eq!(
        fields(&violations),
        [
            "townships[0].indicators.fiscal_revenue",
            "townships[2].indicators.population",
            "townships[2].indicators.land_area"
        ]
    );
    assert!(violations[0].description.contains("430102004"));
    assert!(violations[1].description.contains("430102002"));
    assert!(violations[2].description.contains("430102002"));
}

#[test]
fn indicator_zero_for_the_whole_cohort_is_refused_under_mean_index() {
    // mean = 0 → x / 0: no index can be computed.
    let mut cohort = valid_cohort();
    for t in &mut cohort {
        t.indicators.fiscal_revenue = 0.0;
    }
    let violations = violations(&Policy::builtin_default(), &cohort);
    assert_single_violation(&violations, "townships[*].indicators.fiscal_revenue", &["fiscal_revenue", "MEAN_INDEX"]);
}

#[test]
fn indicator_zero_for_the_whole_cohort_is_refused_under_max_index() {
    // max = 0 → x / 0.
    let mut cohort = valid_cohort();
    for t in &mut cohort {
        t.indicators.land_area = 0.0;
    }
    let violations = violations(&policy(Normalization::MaxIndex, BandingMethod::ScoreThresholds), &cohort);
    assert_single_violation(&violations, "townships[*].indicators.land_area", &["land_area", "MAX_INDEX"]);
}

#[test]
fn constant_indicator_is_refused_under_min_max() {
    // max − min = 7 − 7 = 0 → division by zero.
    let mut cohort = valid_cohort();
    for t in &mut cohort {
        t.indicators.population = 7.0;
    }
    let violations = violations(&policy(Normalization::MinMax, BandingMethod::ScoreThresholds), &cohort);
    assert_single_violation(&violations, "townships[*].indicators.population", &["population", "7", "MIN_MAX"]);
}

#[test]
fn constant_indicator_is_accepted_under_mean_and_max_index() {
    // A constant, non-zero indicator gives 100 to every township under MEAN_INDEX and MAX_INDEX.
    let mut cohort = valid_cohort();
    for t in &mut cohort {
        t.indicators.population = 7.0;
    }
    for normalization in [Normalization::MeanIndex, Normalization::MaxIndex] {
        let classification = classify_ok(&policy(normalization, BandingMethod::ScoreThresholds), &cohort);
        for t in &classification.results {
            assert_close(t.indices.population, 100.0);
        }
    }
}

#[test]
fn unweighted_indicator_may_be_zero_for_the_whole_cohort() {
    // Weight 0 on land area: an all-zero area cannot make the score undefined. Σw = 5 + 3 = 8.
    // Population 3, 4, 5, 6 (mean 4.5) and revenue 2000..5000 (mean 3500):
    //   …001: (5 × 3/4.5 + 3 × 2000/3500) × 100/8 = (3.3333 + 1.7143) × 12.5 = 63.0952
    let mut unweighted = Policy::builtin_default();
    unweighted.weights.land_area = 0.0;
    let mut cohort = valid_cohort();
    for t in &mut cohort {
        t.indicators.land_area = 0.0;
    }
    for normalization in [Normalization::MeanIndex, Normalization::MaxIndex, Normalization::MinMax] {
        let mut policy = unweighted.clone();
        policy.normalization = normalization;
        let classification = classify_ok(&policy, &cohort);
        for t in &classification.results {
            assert_close(t.indices.land_area, 0.0);
            assert_close(t.contributions.land_area, 0.0);
        }
    }
    let classification = classify_ok(&unweighted, &cohort);
    let first = result(&classification, "430102001");
    assert_close(first.score, (5.0 * 3.0 / 4.5 + 3.0 * 2000.0 / 3500.0) * 100.0 / 8.0);
}

#[test]
fn duplicate_ids_are_refused_naming_the_id() {
    let mut cohort = valid_cohort();
    cohort[2].id = "430102001".to_owned();
    let violations = violations(&Policy::builtin_default(), &cohort);
    assert_single_violation(&violations, "townships[2].id", &["430102001", "0", "2"]);
}

#[test]
fn empty_id_is_refused() {
    let mut cohort = valid_cohort();
    cohort[1].id = "  ".to_owned();
    let violations = violations(&Policy::builtin_default(), &cohort);
    assert_single_violation(&violations, "townships[1].id", &["1", "430102002镇"]);
}

#[test]
fn empty_cohort_is_refused() {
    let violations = violations(&Policy::builtin_default(), &[]);
    assert_single_violation(&violations, "townships", &["empty"]);
}

#[test]
fn cohort_over_max_cohort_size_is_refused() {
    let violations = violations_with_limit(&Policy::builtin_default(), &valid_cohort(), 3);
    assert_single_violation(&violations, "townships", &["4", "3"]);
    // Exactly at the limit is accepted.
    assert!(classify(&Policy::builtin_default(), &valid_cohort(), 4).is_ok());
}

#[test]
fn all_zero_weights_are_refused() {
    let mut policy = Policy::builtin_default();
    policy.weights = PerIndicator { population: 0.0, fiscal_revenue: 0.0, land_area: 0.0 };
    let violations = violations(&policy, &valid_cohort());
    assert_single_violation(&violations, "policy.weights", &["weight"]);
}

#[test]
fn negative_weight_is_refused() {
    let mut policy = Policy::builtin_default();
    policy.weights.fiscal_revenue = -3.0;
    let violations = violations(&policy, &valid_cohort());
    assert_single_violation(&violations, "policy.weights.fiscal_revenue", &["-3"]);
}

#[test]
fn thresholds_out_of_order_are_refused() {
    for (class1, class2) in [(80.0, 120.0), (100.0, 100.0)] {
        let mut policy = Policy::builtin_default();
        policy.score_thresholds = ScoreThresholds { class1_min_score: class1, class2_min_score: class2 };
        let violations = violations(&policy, &valid_cohort());
        assert_single_violation(&violations, "policy.score_thresholds", &["class1_min_score", "class2_min_score"]);
    }
}

#[test]
fn invalid_index_cap_is_refused() {
    let mut policy = Policy::builtin_default();
    policy.index_caps.fiscal_revenue = Some(0.0);
    let violations = violations(&policy, &valid_cohort());
    assert_single_violation(&violations, "policy.index_caps.fiscal_revenue", &["cap"]);
}

// ----------------------------------------------------------------------------------------------------------
// Determinism
// ----------------------------------------------------------------------------------------------------------

/// Forty townships with seeded, realistic values and a few exact ties.
fn seeded_cohort() -> Vec<TownshipInput> {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(20_240_101);
    let mut cohort: Vec<_> = (0..40)
        .map(|i| {
            town(
                &format!("4301{:05}", i * 7 % 40),
                rng.random_range(0.5..15.0),
                rng.random_range(200.0..50_000.0),
                rng.random_range(5.0..600.0),
            )
        })
        .collect();
    // Exact ties: two copies of one township's values, and one equal population.
    cohort[5].indicators = cohort[17].indicators;
    cohort[30].indicators = cohort[17].indicators;
    cohort[8].indicators.population = cohort[9].indicators.population;
    cohort
}

#[test]
fn shuffled_input_gives_an_identical_classification() {
    let cohort = seeded_cohort();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for normalization in
        [Normalization::MeanIndex, Normalization::MaxIndex, Normalization::MinMax, Normalization::PercentileRank]
    {
        for banding in [BandingMethod::ScoreThresholds, BandingMethod::RankQuota, BandingMethod::AbsoluteBands] {
            let mut policy = policy(normalization, banding);
            policy.index_caps.fiscal_revenue = Some(250.0);
            let reference = classify_ok(&policy, &cohort);
            for _ in 0..5 {
                let mut shuffled = cohort.clone();
                shuffled.shuffle(&mut rng);
                let again = classify_ok(&policy, &shuffled);
                assert_eq!(again, reference, "{normalization:?}/{banding:?}");
                // Bit for bit, explanations included (PartialEq on f64 would let 0.0 == -0.0 pass).
                for (a, b) in again.results.iter().zip(&reference.results) {
                    assert_eq!(a.explanation, b.explanation);
                    assert_eq!(a.score.to_bits(), b.score.to_bits());
                    assert_eq!(a.indices.population.to_bits(), b.indices.population.to_bits());
                    assert_eq!(a.indices.fiscal_revenue.to_bits(), b.indices.fiscal_revenue.to_bits());
                    assert_eq!(a.indices.land_area.to_bits(), b.indices.land_area.to_bits());
                }
            }
        }
    }
}

#[test]
fn identical_townships_are_ranked_by_id_whatever_the_input_order() {
    // The three exact copies of `seeded_cohort` (positions 5, 17, 30) must appear in ascending id order.
    let cohort = seeded_cohort();
    let copies: Vec<&str> = [5, 17, 30].iter().map(|&i| cohort[i].id.as_str()).collect();
    let classification = classify_ok(&Policy::builtin_default(), &cohort);
    let order: Vec<&str> =
        classification.results.iter().map(|r| r.id.as_str()).filter(|id| copies.contains(id)).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(order, sorted);
    let ranks: Vec<u32> =
        classification.results.iter().filter(|r| copies.contains(&r.id.as_str())).map(|r| r.rank).collect();
    assert_eq!(ranks[1], ranks[0] + 1, "identical townships take consecutive ranks");
    assert_eq!(ranks[2], ranks[1] + 1);
}

#[test]
fn repeated_classification_is_identical() {
    let cohort = seeded_cohort();
    let policy = Policy::builtin_default();
    assert_eq!(classify_ok(&policy, &cohort), classify_ok(&policy, &cohort));
}

// Extreme values: each once gave Ok with infinite or NaN scores.

#[test]
fn a_mean_too_small_to_divide_by_is_refused_under_mean_index() {
    // Populations 5e-324, 0, 0: the mean 5e-324 / 3 underflows to 0, so MEAN_INDEX cannot divide by it.
    let townships = [town("a", 5e-324, 100.0, 10.0), town("b", 0.0, 200.0, 20.0), town("c", 0.0, 300.0, 30.0)];
    let found = violations(&Policy::builtin_default(), &townships);
    assert_eq!(fields(&found), ["townships[*].indicators.population"]);
}

#[test]
fn indicators_above_the_maximum_are_refused_so_sums_stay_finite() {
    // 1e308 + 1e308 overflows to infinity; values above 1e12 are refused before any sum is taken.
    let townships = [town("a", 1e308, 100.0, 10.0), town("b", 1e308, 200.0, 20.0), town("c", 1.0, 300.0, 30.0)];
    let found = violations(&Policy::builtin_default(), &townships);
    assert_eq!(fields(&found), ["townships[0].indicators.population", "townships[1].indicators.population"]);
    assert!(found[0].description.contains("township a"), "{}", found[0].description);
}

#[test]
fn weights_above_the_maximum_are_refused_so_scores_stay_finite() {
    // 1e308 × 3 overflows to infinity, and then every score is NaN.
    let mut policy = Policy::builtin_default();
    policy.weights = PerIndicator { population: 1e308, fiscal_revenue: 1e308, land_area: 1e308 };
    let found = violations(&policy, &three_townships());
    assert_eq!(
        fields(&found),
        ["policy.weights.population", "policy.weights.fiscal_revenue", "policy.weights.land_area"]
    );
}

#[test]
fn the_explanation_shows_the_score_as_banding_rounds_it() {
    // 1.5 and 0.5: mean 1, so H's three indices are 150 and its score 150, 150 − 120 = 30 above the class-1 line.
    let classification = classify_ok(&Policy::builtin_default(), &pair(1.5, 0.5));
    let top = &classification.results[0];
    assert_eq!(top.class, 1);
    assert!(top.explanation.contains("综合得分 150.00"), "{}", top.explanation);
    assert!(top.explanation.contains("距降为二类的界线还有 30.00 分"), "{}", top.explanation);
}
