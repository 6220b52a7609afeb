//! Properties of the classification method (DESIGN.md §3) over generated cohorts of 1–199 townships with
//! realistic values (population 0.5–15 万人, revenue 200–50,000 万元, area 5–600 km²) and some edge values:
//! zero, the ends of each range, a 100× outlier and exact copies of another township's indicators.

use std::ops::Range;

use proptest::prelude::*;
use proptest::sample::Index;
use township_classifier::domain::{
    BandingMethod, Classification, Indicator, Normalization, PerIndicator, Policy, RankQuota, TownshipInput,
    TownshipKind, classify,
};

const MAX_COHORT_SIZE: usize = 10_000;
const TOLERANCE: f64 = 1e-9;
const COHORT_SIZES: Range<usize> = 1..200;

// ----------------------------------------------------------------------------------------------------------
// Generators
// ----------------------------------------------------------------------------------------------------------

/// Mostly a realistic value in `low..high`, sometimes an edge value.
fn indicator_value(low: f64, high: f64) -> impl Strategy<Value = f64> {
    prop_oneof![
        16 => low..high,
        1 => Just(0.0),
        1 => Just(low),
        1 => Just(high),
        1 => Just(high * 100.0),
    ]
}

fn indicators() -> impl Strategy<Value = PerIndicator<f64>> {
    (indicator_value(0.5, 15.0), indicator_value(200.0, 50_000.0), indicator_value(5.0, 600.0))
        .prop_map(|(population, fiscal_revenue, land_area)| PerIndicator { population, fiscal_revenue, land_area })
}

/// Unique 9-digit ids that are not in the order of generation (7919 is prime, so `i·7919 mod 1000` is a
/// permutation of 0..1000), plus a few exact copies of one township's indicators onto another (ties).
fn cohort(sizes: Range<usize>) -> impl Strategy<Value = Vec<TownshipInput>> {
    (prop::collection::vec(indicators(), sizes), prop::collection::vec((any::<Index>(), any::<Index>()), 0..4))
        .prop_map(|(values, copies)| {
            let mut cohort: Vec<TownshipInput> = values
                .into_iter()
                .enumerate()
                .map(|(i, indicators)| {
                    let id = format!("{}", 430_000_000 + (i * 7919) % 1000);
                    TownshipInput { name: format!("{id}镇"), id, kind: TownshipKind::Town, indicators }
                })
                .collect();
            for (from, to) in copies {
                let (from, to) = (from.index(cohort.len()), to.index(cohort.len()));
                cohort[to].indicators = cohort[from].indicators;
            }
            cohort
        })
}

fn normalization() -> impl Strategy<Value = Normalization> {
    prop_oneof![
        Just(Normalization::MeanIndex),
        Just(Normalization::MaxIndex),
        Just(Normalization::MinMax),
        Just(Normalization::PercentileRank),
    ]
}

fn bounded_normalization() -> impl Strategy<Value = Normalization> {
    prop_oneof![Just(Normalization::MaxIndex), Just(Normalization::MinMax), Just(Normalization::PercentileRank)]
}

fn banding() -> impl Strategy<Value = BandingMethod> {
    prop_oneof![
        Just(BandingMethod::ScoreThresholds),
        Just(BandingMethod::RankQuota),
        Just(BandingMethod::AbsoluteBands)
    ]
}

/// The default 5 : 3 : 2 most of the time, otherwise small whole weights (some zero, never all zero).
fn weights() -> impl Strategy<Value = PerIndicator<f64>> {
    prop_oneof![
        3 => Just(PerIndicator { population: 5.0, fiscal_revenue: 3.0, land_area: 2.0 }),
        1 => (0u8..=10, 0u8..=10, 0u8..=10)
            .prop_filter("at least one weight above zero", |&(p, r, a)| p + r + a > 0)
            .prop_map(|(p, r, a)| PerIndicator {
                population: f64::from(p),
                fiscal_revenue: f64::from(r),
                land_area: f64::from(a),
            }),
    ]
}

/// Quota shares in hundredths, `(class1, class2)` with `class1 + class2 ≤ 100`.
fn quota_hundredths() -> impl Strategy<Value = (u32, u32)> {
    (0u32..=100).prop_flat_map(|class1| (Just(class1), 0..=100 - class1))
}

fn policy(normalization: Normalization, banding: BandingMethod, weights: PerIndicator<f64>) -> Policy {
    let mut policy = Policy::builtin_default();
    policy.normalization = normalization;
    policy.banding = banding;
    policy.weights = weights;
    policy
}

fn any_policy() -> impl Strategy<Value = Policy> {
    (normalization(), banding(), weights(), quota_hundredths(), proptest::option::of(50.0..300.0f64)).prop_map(
        |(normalization, banding, weights, (class1, class2), revenue_cap)| {
            let mut policy = policy(normalization, banding, weights);
            policy.rank_quota =
                RankQuota { class1_share: f64::from(class1) / 100.0, class2_share: f64::from(class2) / 100.0 };
            policy.index_caps.fiscal_revenue = revenue_cap;
            policy
        },
    )
}

// ----------------------------------------------------------------------------------------------------------
// Helpers
// ----------------------------------------------------------------------------------------------------------

/// The classification, or `None` when the cohort is degenerate for the policy (an indicator all zero under
/// MEAN_INDEX/MAX_INDEX, constant under MIN_MAX) — and then that must be the only reason given.
fn classify_valid(policy: &Policy, cohort: &[TownshipInput]) -> Option<Classification> {
    let error = match classify(policy, cohort, MAX_COHORT_SIZE) {
        Ok(classification) => return Some(classification),
        Err(error) => error,
    };
    for violation in &error.violations {
        let indicator = Indicator::ALL
            .into_iter()
            .find(|i| violation.field == format!("townships[*].indicators.{}", i.field_name()))
            .unwrap_or_else(|| panic!("a valid cohort was refused: {violation}"));
        let values: Vec<f64> = cohort.iter().map(|t| t.indicators.get(indicator)).collect();
        let degenerate = match policy.normalization {
            Normalization::MeanIndex | Normalization::MaxIndex => values.iter().all(|&x| x == 0.0),
            Normalization::MinMax => values.iter().all(|&x| x == values[0]),
            Normalization::PercentileRank => false,
        };
        assert!(degenerate, "refused although {indicator:?} is usable: {violation}");
        assert!(policy.weights.get(indicator) > 0.0, "an unweighted indicator was checked: {violation}");
    }
    None
}

/// Structural invariants of any classification of `n` townships.
fn check_shape(classification: &Classification, n: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(classification.results.len(), n);
    prop_assert_eq!(classification.statistics.township_count as usize, n);
    let mut counts = [0u32; 3];
    for (position, result) in classification.results.iter().enumerate() {
        prop_assert_eq!(result.rank as usize, position + 1, "ranks are 1..n in result order");
        prop_assert!((1..=3).contains(&result.class), "class {}", result.class);
        prop_assert!(result.score.is_finite(), "township {} has score {}", result.id, result.score);
        counts[usize::from(result.class - 1)] += 1;
    }
    prop_assert_eq!(classification.statistics.class_counts, counts);
    Ok(())
}

/// `cases` cases, or `PROPTEST_CASES` when set (for a longer run: `PROPTEST_CASES=10000 cargo test …`).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

// ----------------------------------------------------------------------------------------------------------
// Properties
// ----------------------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(96))]

    /// Same cohort and policy ⇒ the same classification (explanations included), whatever the input order.
    #[test]
    fn results_do_not_depend_on_input_order(
        policy in any_policy(),
        (cohort, shuffled) in cohort(COHORT_SIZES).prop_flat_map(|c| (Just(c.clone()), Just(c).prop_shuffle())),
    ) {
        let first = classify(&policy, &cohort, MAX_COHORT_SIZE);
        let second = classify(&policy, &shuffled, MAX_COHORT_SIZE);
        // Valid values can only fail as a degenerate cohort, whose errors name no position: equal too.
        prop_assert_eq!(&first, &second);
        if let Ok(classification) = &first {
            check_shape(classification, cohort.len())?;
        }
    }

    /// MAX_INDEX, MIN_MAX and PERCENTILE_RANK put every index in [0, 100], and so the score.
    #[test]
    fn bounded_normalisations_keep_indices_and_scores_within_0_and_100(
        normalization in bounded_normalization(),
        banding in banding(),
        weights in weights(),
        cohort in cohort(COHORT_SIZES),
    ) {
        let policy = policy(normalization, banding, weights);
        let Some(classification) = classify_valid(&policy, &cohort) else { return Ok(()) };
        check_shape(&classification, cohort.len())?;
        for result in &classification.results {
            for indicator in Indicator::ALL {
                let index = result.indices.get(indicator);
                prop_assert!((0.0..=100.0).contains(&index), "{} index {} of {}", indicator.field_name(), index, result.id);
            }
            prop_assert!((0.0..=100.0 + TOLERANCE).contains(&result.score), "score {} of {}", result.score, result.id);
        }
    }

    /// MEAN_INDEX scores are ≥ 0, each weighted indicator's index averages 100 over the cohort, and so does
    /// the score (Σ wᵢ·mean(Iᵢ) / Σ wᵢ = 100).
    #[test]
    fn mean_index_averages_100_per_indicator_and_scores_are_non_negative(
        banding in banding(),
        weights in weights(),
        cohort in cohort(COHORT_SIZES),
    ) {
        let policy = policy(Normalization::MeanIndex, banding, weights);
        let Some(classification) = classify_valid(&policy, &cohort) else { return Ok(()) };
        check_shape(&classification, cohort.len())?;
        let n = cohort.len() as f64;
        for result in &classification.results {
            prop_assert!(result.score >= 0.0, "score {} of {}", result.score, result.id);
        }
        for indicator in Indicator::ALL {
            if weights.get(indicator) == 0.0 {
                continue;
            }
            let mean = classification.results.iter().map(|r| r.indices.get(indicator)).sum::<f64>() / n;
            prop_assert!((mean - 100.0).abs() <= TOLERANCE, "mean {} index {}", indicator.field_name(), mean);
        }
        let mean_score = classification.results.iter().map(|r| r.score).sum::<f64>() / n;
        prop_assert!((mean_score - 100.0).abs() <= TOLERANCE, "mean score {}", mean_score);
        prop_assert!((classification.statistics.score.mean - 100.0).abs() <= TOLERANCE);
    }

    /// Raising one of a township's indicators never lowers its own standing: its rank number and its class
    /// number do not increase, under score thresholds and under rank quotas.
    #[test]
    fn raising_an_indicator_never_lowers_the_townships_rank_or_class(
        normalization in normalization(),
        banding in prop_oneof![Just(BandingMethod::ScoreThresholds), Just(BandingMethod::RankQuota)],
        weights in weights(),
        cohort in cohort(COHORT_SIZES),
        which in any::<Index>(),
        indicator in prop::sample::select(Indicator::ALL.to_vec()),
        factor in 1.01..5.0f64,
        bump in 0.0..1.0f64,
    ) {
        let policy = policy(normalization, banding, weights);
        let k = which.index(cohort.len());
        let mut raised = cohort.clone();
        let before_value = cohort[k].indicators.get(indicator);
        // Multiply, and add up to 1 (so that a zero rises too).
        let after_value = before_value * factor + bump;
        match indicator {
            Indicator::Population => raised[k].indicators.population = after_value,
            Indicator::FiscalRevenue => raised[k].indicators.fiscal_revenue = after_value,
            Indicator::LandArea => raised[k].indicators.land_area = after_value,
        }
        let Some(before) = classify_valid(&policy, &cohort) else { return Ok(()) };
        let Some(after) = classify_valid(&policy, &raised) else { return Ok(()) };
        let id = &cohort[k].id;
        let find = |c: &Classification| c.results.iter().find(|r| &r.id == id).cloned().unwrap();
        let (old, new) = (find(&before), find(&after));
        prop_assert!(
            new.rank <= old.rank,
            "{} raised {} from {} to {}: rank {} → {} (score {} → {})",
            id, indicator.field_name(), before_value, after_value, old.rank, new.rank, old.score, new.score
        );
        prop_assert!(
            new.class <= old.class,
            "{} raised {} from {} to {}: class {} → {} (score {} → {})",
            id, indicator.field_name(), before_value, after_value, old.class, new.class, old.score, new.score
        );
    }

    /// RANK_QUOTA gives class 1 to ⌊n·s₁ + ½⌋ townships and class 1 or 2 to ⌊n·(s₁+s₂) + ½⌋, in rank order.
    #[test]
    fn rank_quota_class_counts_are_the_rounded_half_up_quotas(
        normalization in normalization(),
        (class1, class2) in quota_hundredths(),
        cohort in cohort(COHORT_SIZES),
    ) {
        let mut policy = policy(normalization, BandingMethod::RankQuota, Policy::builtin_default().weights);
        policy.rank_quota = RankQuota { class1_share: f64::from(class1) / 100.0, class2_share: f64::from(class2) / 100.0 };
        let Some(classification) = classify_valid(&policy, &cohort) else { return Ok(()) };
        check_shape(&classification, cohort.len())?;
        // Exact in integers: ⌊n·k/100 + ½⌋ = ⌊(n·k + 50)/100⌋.
        let n = u32::try_from(cohort.len()).unwrap();
        let first = (n * class1 + 50) / 100;
        let first_two = (n * (class1 + class2) + 50) / 100;
        prop_assert_eq!(classification.statistics.class_counts, [first, first_two - first, n - first_two]);
        let classes: Vec<u8> = classification.results.iter().map(|r| r.class).collect();
        prop_assert!(classes.windows(2).all(|w| w[0] <= w[1]), "classes follow rank order: {:?}", classes);
    }
}

// ----------------------------------------------------------------------------------------------------------
// No input panics
// ----------------------------------------------------------------------------------------------------------

/// Any f64 at all: NaN, ±inf, ±0, subnormals, huge — or, half the time, a realistic value.
fn wild_f64(realistic: Range<f64>) -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        realistic,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(0.0),
        Just(f64::MIN_POSITIVE / 4.0),
        Just(f64::MAX),
    ]
}

fn wild_township() -> impl Strategy<Value = TownshipInput> {
    (
        prop_oneof![Just(String::new()), Just(" ".to_owned()), "[a-c]{1,2}", "[0-9]{9}"],
        wild_f64(0.5..15.0),
        wild_f64(200.0..50_000.0),
        wild_f64(5.0..600.0),
    )
        .prop_map(|(id, population, fiscal_revenue, land_area)| TownshipInput {
            id,
            name: String::new(),
            kind: TownshipKind::Other,
            indicators: PerIndicator { population, fiscal_revenue, land_area },
        })
}

fn wild_policy() -> impl Strategy<Value = Policy> {
    (
        (normalization(), banding()),
        (wild_f64(0.0..10.0), wild_f64(0.0..10.0), wild_f64(0.0..10.0)),
        (wild_f64(50.0..150.0), wild_f64(50.0..150.0)),
        (wild_f64(0.0..1.0), wild_f64(0.0..1.0)),
        proptest::option::of(wild_f64(50.0..300.0)),
        0u32..5,
    )
        .prop_map(|((normalization, banding), (p, r, a), (t1, t2), (s1, s2), cap, required)| {
            let mut policy =
                policy(normalization, banding, PerIndicator { population: p, fiscal_revenue: r, land_area: a });
            policy.score_thresholds.class1_min_score = t1;
            policy.score_thresholds.class2_min_score = t2;
            policy.rank_quota = RankQuota { class1_share: s1, class2_share: s2 };
            policy.index_caps.population = cap;
            policy.absolute_bands.indicators_required = required;
            policy
        })
}

proptest! {
    #![proptest_config(config(128))]

    /// Whatever the numbers, `classify` answers `Ok` or `Err` and never panics; an `Err` names at least one
    /// field, and an `Ok` is a well-formed classification.
    #[test]
    fn no_input_panics(
        policy in prop_oneof![1 => wild_policy(), 1 => any_policy()],
        townships in prop::collection::vec(wild_township(), 0..40),
        max_cohort_size in 0usize..60,
    ) {
        match classify(&policy, &townships, max_cohort_size) {
            Ok(classification) => check_shape(&classification, townships.len())?,
            Err(error) => {
                prop_assert!(!error.violations.is_empty());
                for violation in &error.violations {
                    prop_assert!(!violation.field.is_empty() && !violation.description.is_empty(), "{:?}", violation);
                }
            }
        }
    }
}
