//! Scoring, ranking and banding of one cohort.
//!
//! Determinism: the cohort is first put in id order, so every sum is taken in the same order whatever the
//! order of the request, and the output is byte-identical for the same cohort and policy.

use std::cmp::Ordering;

use super::{BandingMethod, FieldViolation, Indicator, Normalization, PerIndicator, Policy, TownshipClass, round2};

/// The kind of a township-level unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TownshipKind {
    /// 镇
    Town,
    /// 乡
    Township,
    /// 民族乡
    EthnicTownship,
    /// 街道
    Subdistrict,
    /// Development zones, farms and other township-level units.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TownshipInput {
    pub id: String,
    pub name: String,
    pub kind: TownshipKind,
    /// Population (万人), fiscal revenue (万元), land area (km²).
    pub indicators: PerIndicator<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TownshipResult {
    pub id: String,
    pub name: String,
    pub kind: TownshipKind,
    pub indices: PerIndicator<f64>,
    pub contributions: PerIndicator<f64>,
    pub score: f64,
    /// 1-based and unique; see [`rank_order`].
    pub rank: u32,
    pub class: TownshipClass,
    pub points_to_next_class_up: Option<f64>,
    pub points_above_next_class_down: Option<f64>,
    pub explanation: String,
}

/// How much of each result to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// [`Numbers`] only: no result records, no id or name copied, no explanation written.
    Numbers,
    /// [`TownshipResult`]s with the explanation in Chinese.
    Explained,
}

/// The numbers of a classification in the order the townships were given (entry `i` is `townships[i]`):
/// what a program needs, a fifth of the bytes of the results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Numbers {
    pub score: Vec<f64>,
    /// 1-based and unique.
    pub rank: Vec<u32>,
    pub class: Vec<TownshipClass>,
    pub indices: Vec<PerIndicator<f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Distribution {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub median: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CohortStatistics {
    pub township_count: u32,
    pub indicators: PerIndicator<Distribution>,
    pub score: Distribution,
    /// Townships in class 1, 2 and 3.
    pub class_counts: [u32; 3],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// In rank order; empty in [`Detail::Numbers`].
    pub results: Vec<TownshipResult>,
    /// In input order; [`Detail::Numbers`] only.
    pub numbers: Option<Numbers>,
    pub statistics: CohortStatistics,
    pub policy_fingerprint: String,
}

/// Why a cohort cannot be classified: every problem found, each naming the field and the township.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the cohort cannot be classified: {}", .violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ClassifyError {
    pub violations: Vec<FieldViolation>,
}

/// Classifies `townships` under `policy`. `max_cohort_size` bounds the work one call may ask for.
///
/// Field paths in errors are those of the request: `policy.…` and `townships[i].…` with `i` the position
/// in the given slice.
pub fn classify(
    policy: &Policy,
    townships: &[TownshipInput],
    max_cohort_size: usize,
) -> Result<Classification, ClassifyError> {
    classify_with(policy, townships, max_cohort_size, Detail::Explained)
}

/// [`classify`], building each result to `detail`. The numbers are the same whatever the detail.
pub fn classify_with(
    policy: &Policy,
    townships: &[TownshipInput],
    max_cohort_size: usize,
    detail: Detail,
) -> Result<Classification, ClassifyError> {
    let mut violations: Vec<FieldViolation> = policy
        .violations()
        .into_iter()
        .map(|v| FieldViolation::new(format!("policy.{}", v.field), v.description))
        .collect();
    if !violations.is_empty() {
        return Err(ClassifyError { violations });
    }
    if townships.is_empty() {
        violations.push(FieldViolation::new("townships", "the cohort is empty; give at least one township"));
    } else if townships.len() > max_cohort_size {
        violations.push(FieldViolation::new(
            "townships",
            format!(
                "the cohort has {} townships, more than the limit of {max_cohort_size}; split it or raise the \
                 server's --max-cohort-size",
                townships.len()
            ),
        ));
    }
    if !violations.is_empty() {
        return Err(ClassifyError { violations });
    }

    // Id order: the one order every computation below follows.
    let order = id_order(townships);
    violations.extend(input_violations(townships, &order));
    if !violations.is_empty() {
        return Err(ClassifyError { violations });
    }
    let cohort: Vec<&TownshipInput> = order.iter().map(|&i| &townships[i]).collect();

    // Only percentile ranks need each column sorted; the other methods need its median, found in linear time.
    let keep_sorted = policy.normalization == Normalization::PercentileRank;
    let indicator_stats = PerIndicator::from_fn(|indicator| {
        distribution(cohort.iter().map(|t| t.indicators.get(indicator)).collect(), keep_sorted)
    });
    for indicator in Indicator::ALL {
        if policy.weights.get(indicator) == 0.0 {
            continue; // an unweighted indicator cannot make the score undefined
        }
        if let Some(problem) = degenerate(policy.normalization, indicator_stats.get_ref(indicator), cohort.len()) {
            violations.push(FieldViolation::new(
                format!("townships[*].indicators.{}", indicator.field_name()),
                format!("{} {problem}", indicator.field_name()),
            ));
        }
    }
    if !violations.is_empty() {
        return Err(ClassifyError { violations });
    }

    let indices = normalise(policy, &cohort, &indicator_stats);
    let weight_sum: f64 = Indicator::ALL.iter().map(|&i| policy.weights.get(i)).sum();
    let scored: Vec<Scored> = cohort
        .iter()
        .zip(&order)
        .zip(indices)
        .map(|((township, &position), indices)| {
            let contributions = indices.map(|indicator, &index| policy.weights.get(indicator) * index / weight_sum);
            let score = contributions.population + contributions.fiscal_revenue + contributions.land_area;
            Scored { township, position, indices, contributions, score, rounded: round2(score) }
        })
        .collect();
    // Sorting positions rather than the 80-byte records moves a tenth of the bytes; the order is total (ids
    // are unique), so an unstable sort gives the one ranking.
    // The rounded score sits beside each position, so most comparisons stay within the 16-byte keys.
    let mut ranking: Vec<(f64, usize)> = scored.iter().enumerate().map(|(i, s)| (s.rounded, i)).collect();
    ranking.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then_with(|| rank_order(&scored[a.1], &scored[b.1])));
    let scored: Vec<&Scored> = ranking.iter().map(|&(_, position)| &scored[position]).collect();

    let classes = band(policy, &scored);
    let (results, numbers) = match detail {
        Detail::Explained => (explain(policy, &scored, &classes), None),
        Detail::Numbers => (Vec::new(), Some(numbers_in_input_order(&scored, &classes))),
    };

    let mut class_counts = [0u32; 3];
    for &class in &classes {
        class_counts[usize::from(class - 1)] += 1;
    }
    let statistics = CohortStatistics {
        township_count: u32::try_from(cohort.len()).expect("cohort size is bounded by max_cohort_size"),
        indicators: indicator_stats.map(|_, stats| stats.distribution),
        score: distribution(scored.iter().map(|s| s.score).collect(), false).distribution,
        class_counts,
    };
    Ok(Classification { results, numbers, statistics, policy_fingerprint: policy.fingerprint() })
}

struct Scored<'a> {
    township: &'a TownshipInput,
    position: usize,
    indices: PerIndicator<f64>,
    contributions: PerIndicator<f64>,
    score: f64,
    /// `round2(score)`, which ranks compare: computed once, not twice per comparison.
    rounded: f64,
}

/// The documented tie-break: higher score rounded to 2 decimals first (the precision of banding, so that
/// float noise never decides a rank); then higher population, fiscal revenue and land area, in the order of
/// the policy's weights; then the smaller id in byte order.
fn rank_order(a: &Scored<'_>, b: &Scored<'_>) -> Ordering {
    let by_indicator =
        |indicator| b.township.indicators.get(indicator).total_cmp(&a.township.indicators.get(indicator));
    b.rounded
        .total_cmp(&a.rounded)
        .then_with(|| by_indicator(Indicator::Population))
        .then_with(|| by_indicator(Indicator::FiscalRevenue))
        .then_with(|| by_indicator(Indicator::LandArea))
        .then_with(|| a.township.id.cmp(&b.township.id))
}

fn input_violations(townships: &[TownshipInput], id_order: &[usize]) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    for (position, township) in townships.iter().enumerate() {
        if township.id.trim().is_empty() {
            violations.push(FieldViolation::new(
                format!("townships[{position}].id"),
                format!("township at position {position} ({}) has an empty id", display_name(township)),
            ));
        }
        for indicator in Indicator::ALL {
            if let Some(problem) = indicator.value_problem(township.indicators.get(indicator)) {
                violations.push(FieldViolation::new(
                    format!("townships[{position}].indicators.{}", indicator.field_name()),
                    format!("township {} ({}): {problem}", township.id, display_name(township)),
                ));
            }
        }
    }
    for pair in id_order.windows(2) {
        let (first, second) = (pair[0].min(pair[1]), pair[0].max(pair[1]));
        if townships[first].id == townships[second].id && !townships[first].id.trim().is_empty() {
            violations.push(FieldViolation::new(
                format!("townships[{second}].id"),
                format!(
                    "township id {} appears more than once (positions {first} and {second}); ids must be unique \
                     within a cohort",
                    townships[second].id
                ),
            ));
        }
    }
    violations
}

fn display_name(township: &TownshipInput) -> &str {
    if township.name.is_empty() { "unnamed" } else { &township.name }
}

struct Stats {
    distribution: Distribution,
    /// The values in ascending order, for percentile ranks.
    sorted: Vec<f64>,
}

/// The distribution of `values` (summed in the order given, so the mean does not depend on a sort), and the
/// values sorted when `keep_sorted`; otherwise the median is selected in linear time and `sorted` is empty.
/// Either way the figures are the same bits.
fn distribution(mut values: Vec<f64>, keep_sorted: bool) -> Stats {
    let sum: f64 = values.iter().sum();
    let n = values.len();
    if n == 0 {
        return Stats { distribution: Distribution::default(), sorted: Vec::new() };
    }
    let (min, max, median);
    if keep_sorted {
        values.sort_unstable_by(f64::total_cmp);
        (min, max) = (values[0], values[n - 1]);
        median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
    } else {
        min = values.iter().copied().min_by(f64::total_cmp).unwrap_or(0.0);
        max = values.iter().copied().max_by(f64::total_cmp).unwrap_or(0.0);
        let (below, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
        median = if n % 2 == 1 {
            upper
        } else {
            let lower = below.iter().copied().max_by(f64::total_cmp).unwrap_or(upper);
            (lower + upper) / 2.0
        };
        values = Vec::new();
    }
    let distribution = Distribution { min, max, mean: sum / n as f64, median };
    Stats { distribution, sorted: values }
}

/// Positions of `townships` in id order (byte order). Ids of one length made of digits only — division codes,
/// the usual case — order as numbers, so they are sorted as integers, several times faster than as strings.
fn id_order(townships: &[TownshipInput]) -> Vec<usize> {
    let length = townships.first().map_or(0, |t| t.id.len());
    let numeric = (1..=19).contains(&length)
        && townships.iter().all(|t| t.id.len() == length && t.id.bytes().all(|b| b.is_ascii_digit()));
    if numeric {
        let mut keyed: Vec<(u64, usize)> =
            townships.iter().enumerate().map(|(i, t)| (t.id.parse().unwrap_or(u64::MAX), i)).collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|(_, i)| i).collect()
    } else {
        let mut order: Vec<usize> = (0..townships.len()).collect();
        order.sort_unstable_by(|&a, &b| townships[a].id.cmp(&townships[b].id));
        order
    }
}

/// Why `normalization` cannot be applied to an indicator with these statistics, if it cannot.
fn degenerate(normalization: Normalization, stats: &Stats, cohort_size: usize) -> Option<String> {
    let Distribution { min, max, mean, .. } = stats.distribution;
    // The divisor itself is checked, so a mean that underflows to 0 is caught as well as an all-zero column.
    match normalization {
        Normalization::MeanIndex if mean <= 0.0 => Some(
            "is 0 (or too small to divide by) for every township of the cohort; MEAN_INDEX divides by its mean"
                .to_owned(),
        ),
        Normalization::MaxIndex if max <= 0.0 => {
            Some("is 0 for every township of the cohort; MAX_INDEX divides by its maximum".to_owned())
        }
        Normalization::MinMax if max == min => Some(format!(
            "is {min} for every township of the cohort ({cohort_size} township(s)); MIN_MAX divides by max − min"
        )),
        _ => None,
    }
}

fn normalise(policy: &Policy, cohort: &[&TownshipInput], stats: &PerIndicator<Stats>) -> Vec<PerIndicator<f64>> {
    cohort
        .iter()
        .map(|township| {
            PerIndicator::from_fn(|indicator| {
                if policy.weights.get(indicator) == 0.0 {
                    return 0.0;
                }
                let x = township.indicators.get(indicator);
                let stats = stats.get_ref(indicator);
                let Distribution { min, max, .. } = stats.distribution;
                let index = match policy.normalization {
                    Normalization::MeanIndex => x / stats.distribution.mean * 100.0,
                    Normalization::MaxIndex => x / max * 100.0,
                    Normalization::MinMax => (x - min) / (max - min) * 100.0,
                    Normalization::PercentileRank => percentile_rank(&stats.sorted, x),
                };
                match policy.index_caps.get(indicator) {
                    Some(cap) => index.min(cap),
                    None => index,
                }
            })
        })
        .collect()
}

/// 0 for the smallest value, 100 for the largest; equal values share the average of their positions.
/// A cohort of one scores 100.
fn percentile_rank(sorted: &[f64], x: f64) -> f64 {
    if sorted.len() == 1 {
        return 100.0;
    }
    let below = sorted.partition_point(|&v| v < x);
    let not_above = sorted.partition_point(|&v| v <= x);
    let average_position = (below + not_above - 1) as f64 / 2.0;
    average_position / (sorted.len() - 1) as f64 * 100.0
}

/// Classes in rank order.
fn band(policy: &Policy, scored: &[&Scored<'_>]) -> Vec<TownshipClass> {
    match policy.banding {
        BandingMethod::ScoreThresholds => {
            let thresholds = policy.score_thresholds;
            scored
                .iter()
                .map(|s| match round2(s.score) {
                    score if score >= thresholds.class1_min_score => 1,
                    score if score >= thresholds.class2_min_score => 2,
                    _ => 3,
                })
                .collect()
        }
        BandingMethod::RankQuota => {
            let (class1, class1_and_2) = quota_counts(policy, scored.len());
            (0..scored.len())
                .map(|position| match position {
                    p if p < class1 => 1,
                    p if p < class1_and_2 => 2,
                    _ => 3,
                })
                .collect()
        }
        BandingMethod::AbsoluteBands => {
            let bands = &policy.absolute_bands;
            let required = bands.indicators_required as usize;
            let meets = |s: &Scored<'_>, minimum: &PerIndicator<f64>| {
                Indicator::ALL.iter().filter(|&&i| s.township.indicators.get(i) >= minimum.get(i)).count()
            };
            scored
                .iter()
                .map(|s| {
                    if meets(s, &bands.class1_minimum) >= required {
                        1
                    } else if meets(s, &bands.class2_minimum) >= required {
                        2
                    } else {
                        3
                    }
                })
                .collect()
        }
    }
}

/// How many of `n` ranked townships are class 1, and class 1 or 2: each cumulative share of `n` rounded half
/// up (a tolerance of 1e-9 absorbs float noise such as 0.3 × 5 = 1.4999…).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a validated share in [0, 1] of n, rounded, then capped at n"
)]
pub(crate) fn quota_counts(policy: &Policy, n: usize) -> (usize, usize) {
    let quota = policy.rank_quota;
    let count = |share: f64| ((n as f64 * share + 0.5 + 1e-9).floor() as usize).min(n);
    let class1 = count(quota.class1_share);
    (class1, count(quota.class1_share + quota.class2_share).max(class1))
}

/// The ranked numbers put back in input order.
fn numbers_in_input_order(ranked: &[&Scored<'_>], classes: &[TownshipClass]) -> Numbers {
    let n = ranked.len();
    let mut numbers = Numbers {
        score: vec![0.0; n],
        rank: vec![0; n],
        class: vec![0; n],
        indices: vec![PerIndicator { population: 0.0, fiscal_revenue: 0.0, land_area: 0.0 }; n],
    };
    for ((rank, s), &class) in (1u32..).zip(ranked).zip(classes) {
        numbers.score[s.position] = s.score;
        numbers.rank[s.position] = rank;
        numbers.class[s.position] = class;
        numbers.indices[s.position] = s.indices;
    }
    numbers
}

fn explain(policy: &Policy, scored: &[&Scored<'_>], classes: &[TownshipClass]) -> Vec<TownshipResult> {
    let n = scored.len();
    // For rank quotas, the boundary between two classes lies at the scores of the townships either side of it.
    let lowest_score_of =
        |class: TownshipClass| classes.iter().rposition(|&c| c == class).map(|p| round2(scored[p].score));
    let highest_score_of =
        |class: TownshipClass| classes.iter().position(|&c| c == class).map(|p| round2(scored[p].score));

    scored
        .iter()
        .zip(classes)
        .enumerate()
        .map(|(position, (s, &class))| {
            let rank = u32::try_from(position + 1).expect("cohort size is bounded");
            let score = round2(s.score);
            let (up, down) = match policy.banding {
                BandingMethod::ScoreThresholds => {
                    let t = policy.score_thresholds;
                    match class {
                        1 => (None, Some(round2(score - t.class1_min_score))),
                        2 => (Some(round2(t.class1_min_score - score)), Some(round2(score - t.class2_min_score))),
                        _ => (Some(round2(t.class2_min_score - score)), None),
                    }
                }
                BandingMethod::RankQuota => {
                    let up = if class > 1 { lowest_score_of(class - 1).map(|b| round2(b - score)) } else { None };
                    let down = if class < 3 { highest_score_of(class + 1).map(|b| round2(score - b)) } else { None };
                    (up, down)
                }
                BandingMethod::AbsoluteBands => (None, None),
            };
            let explanation = explanation_zh(policy, s, class, rank, n, up, down);
            TownshipResult {
                id: s.township.id.clone(),
                name: s.township.name.clone(),
                kind: s.township.kind,
                indices: s.indices,
                contributions: s.contributions,
                score: s.score,
                rank,
                class,
                points_to_next_class_up: up,
                points_above_next_class_down: down,
                explanation,
            }
        })
        .collect()
}

const CLASS_ZH: [&str; 3] = ["一类", "二类", "三类"];

fn explanation_zh(
    policy: &Policy,
    s: &Scored<'_>,
    class: TownshipClass,
    rank: u32,
    n: usize,
    up: Option<f64>,
    down: Option<f64>,
) -> String {
    let c = &s.contributions;
    let class_zh = CLASS_ZH[usize::from(class - 1)];
    let head = format!(
        "综合得分 {:.2}（人口 {:.2} + 财政收入 {:.2} + 土地面积 {:.2}），排名第 {rank}/{n}",
        round2(s.score),
        c.population,
        c.fiscal_revenue,
        c.land_area
    );
    let reason = match policy.banding {
        BandingMethod::ScoreThresholds => {
            let t = policy.score_thresholds;
            match class {
                1 => format!("不低于一类线 {}，列为一类", t.class1_min_score),
                2 => format!("在二类区间 [{}, {})，列为二类", t.class2_min_score, t.class1_min_score),
                _ => format!("低于二类线 {}，列为三类", t.class2_min_score),
            }
        }
        BandingMethod::RankQuota => {
            let (class1, class1_and_2) = quota_counts(policy, n);
            format!("按名次配额前 {class1} 名为一类、前 {class1_and_2} 名为一类或二类，列为{class_zh}")
        }
        BandingMethod::AbsoluteBands => {
            let bands = &policy.absolute_bands;
            let met = |minimum: &PerIndicator<f64>| {
                Indicator::ALL
                    .iter()
                    .filter(|&&i| s.township.indicators.get(i) >= minimum.get(i))
                    .map(|&i| i.label_zh())
                    .collect::<Vec<_>>()
            };
            let (first, second) = (met(&bands.class1_minimum), met(&bands.class2_minimum));
            format!(
                "达到一类标准的指标 {} 项{}，达到二类标准的 {} 项{}（每类需 {} 项），列为{class_zh}",
                first.len(),
                listed(&first),
                second.len(),
                listed(&second),
                bands.indicators_required
            )
        }
    };
    let mut text = format!("{head}，{reason}");
    if let Some(up) = up {
        text.push_str(&format!("；距{}还差 {up:.2} 分", CLASS_ZH[usize::from(class - 2)]));
    }
    if let Some(down) = down {
        text.push_str(&format!("；距降为{}的界线还有 {down:.2} 分", CLASS_ZH[usize::from(class)]));
    }
    let inferred = inferred_figures_used(policy);
    if !inferred.is_empty() {
        text.push_str(&format!("；所用{}为{}", inferred.join("、"), township_policy::INFERRED));
    }
    text.push('。');
    text
}

/// The inferred figures (推定值，未经核实) this explanation rests on: the normalisation and those of the banding
/// used, as the policy's provenance list names them.
fn inferred_figures_used(policy: &Policy) -> Vec<&'static str> {
    let banding: &[(&str, &str)] = match policy.banding {
        BandingMethod::ScoreThresholds => {
            &[("score_thresholds.class1_min_score", "一类线"), ("score_thresholds.class2_min_score", "二类线")]
        }
        BandingMethod::RankQuota => &[("rank_quota", "名次配额")],
        BandingMethod::AbsoluteBands => &[("absolute_bands", "分类标准")],
    };
    std::iter::once(&("normalization", "标准化方法"))
        .chain(banding)
        .filter(|(path, _)| policy.is_inferred(path))
        .map(|&(_, label)| label)
        .collect()
}

fn listed(labels: &[&str]) -> String {
    if labels.is_empty() { String::new() } else { format!("（{}）", labels.join("、")) }
}
