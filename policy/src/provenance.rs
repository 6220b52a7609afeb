//! Which figures of a policy are inferred: the `figure_provenance` list, its paths and its checks.

use serde_json::Value;

use crate::{FieldViolation, FigureProvenance, Indicator, Policy, TownshipClass};

/// What every message resting on an inferred figure says.
pub const INFERRED: &str = "推定值，未经核实";

/// Longest note accepted, in characters.
const MAX_NOTE_CHARS: usize = 500;
/// Most entries a policy may list.
const MAX_ENTRIES: usize = 200;

const LIMIT_FIELDS: [&str; 7] = [
    "leadership_posts",
    "min_party_government_offices",
    "max_party_government_offices",
    "max_public_institutions",
    "max_law_enforcement_units",
    "administrative_staff",
    "public_institution_staff",
];

/// The path of a class's leadership posts, the figure `leadership_posts_verified` mirrors.
pub fn leadership_posts_path(class: TownshipClass) -> String {
    format!("class_limits[class={class}].leadership_posts")
}

impl Policy {
    /// Whether the figure at `path` (or the section holding it) is listed as inferred.
    pub fn is_inferred(&self, path: &str) -> bool {
        self.inferred_note(path).is_some()
    }

    /// The note of the inferred entry covering `path`: its own entry, else its section's.
    pub fn inferred_note(&self, path: &str) -> Option<&str> {
        self.figure_provenance
            .iter()
            .filter(|entry| !entry.verified && covers(&entry.field, path))
            .max_by_key(|entry| entry.field.len())
            .map(|entry| entry.note.as_str())
    }

    /// The value at `path`, for telling whether a request changed a figure; None when the path names nothing
    /// or an optional figure is unset.
    pub fn figure(&self, path: &str) -> Option<Value> {
        let mut value = serde_json::to_value(self).ok()?;
        let mut rest = path;
        if let Some(after) = path.strip_prefix("class_limits[class=") {
            let (class, tail) = after.split_once(']')?;
            let class: u64 = class.parse().ok()?;
            value = value
                .get("class_limits")?
                .as_array()?
                .iter()
                .find(|limits| limits.get("township_class").and_then(Value::as_u64) == Some(class))?
                .clone();
            rest = tail.strip_prefix('.').unwrap_or(tail);
        }
        for segment in rest.split('.').filter(|s| !s.is_empty()) {
            value = value.get(segment)?.clone();
        }
        Some(value)
    }

    /// Keeps each class's `leadership_posts_verified` and the list in agreement: a class marked unverified
    /// without an entry gets one, then the flag is what the list says.
    pub(crate) fn reconcile_leadership_posts_verified(&mut self) {
        for index in 0..self.class_limits.len() {
            let limits = self.class_limits[index];
            let path = leadership_posts_path(limits.township_class);
            if !limits.leadership_posts_verified && !self.is_inferred(&path) {
                self.figure_provenance.push(FigureProvenance {
                    field: path.clone(),
                    verified: false,
                    note: "marked leadership_posts_verified = false".to_owned(),
                });
            }
            self.class_limits[index].leadership_posts_verified = !self.is_inferred(&path);
        }
    }

    pub(crate) fn provenance_violations(&self) -> Vec<FieldViolation> {
        let mut found = Vec::new();
        if self.figure_provenance.len() > MAX_ENTRIES {
            found.push(FieldViolation::new(
                "figure_provenance",
                format!("at most {MAX_ENTRIES} entries, got {}", self.figure_provenance.len()),
            ));
        }
        for (index, entry) in self.figure_provenance.iter().enumerate() {
            if let Err(problem) = Self::check_path(&entry.field) {
                found.push(FieldViolation::new(
                    format!("figure_provenance[{index}].field"),
                    format!("{} names no figure of the policy: {problem}", crate::quoted(&entry.field)),
                ));
            } else if self.figure_provenance[..index].iter().any(|earlier| earlier.field == entry.field) {
                found.push(FieldViolation::new(
                    format!("figure_provenance[{index}].field"),
                    format!("{} is listed twice", crate::quoted(&entry.field)),
                ));
            }
            let chars = entry.note.chars().count();
            if entry.note.trim().is_empty() || chars > MAX_NOTE_CHARS {
                found.push(FieldViolation::new(
                    format!("figure_provenance[{index}].note"),
                    format!("say where {} came from in 1 to {MAX_NOTE_CHARS} characters", entry.field),
                ));
            }
        }
        found
    }

    fn check_path(path: &str) -> Result<(), String> {
        if let Some(after) = path.strip_prefix("class_limits[class=") {
            let (class, tail) = after.split_once(']').ok_or("class_limits[class=N] lacks its ']'")?;
            if !["1", "2", "3"].contains(&class) {
                return Err(format!("class {class:?} is not 1, 2 or 3"));
            }
            return match tail.strip_prefix('.') {
                None if tail.is_empty() => Ok(()),
                Some(field) if LIMIT_FIELDS.contains(&field) => Ok(()),
                _ => Err(format!("a class's figures are {}", LIMIT_FIELDS.join(", "))),
            };
        }
        let indicators = Indicator::ALL.map(Indicator::field_name);
        let segments: Vec<&str> = path.split('.').collect();
        let known = match segments.as_slice() {
            ["normalization" | "max_plaques_per_township" | "weights" | "index_caps" | "score_thresholds"]
            | ["rank_quota" | "absolute_bands"] => true,
            ["weights" | "index_caps", indicator] => indicators.contains(indicator),
            ["score_thresholds", field] => ["class1_min_score", "class2_min_score"].contains(field),
            ["rank_quota", field] => ["class1_share", "class2_share"].contains(field),
            ["absolute_bands", field] => ["class1_minimum", "class2_minimum", "indicators_required"].contains(field),
            ["absolute_bands", "class1_minimum" | "class2_minimum", indicator] => indicators.contains(indicator),
            _ => false,
        };
        if known {
            Ok(())
        } else {
            Err("paths are e.g. score_thresholds.class1_min_score, weights.population, \
                 class_limits[class=1].leadership_posts, or a section such as absolute_bands"
                .to_owned())
        }
    }
}

/// Whether an entry for `listed` covers `path`: the same path, or a section of it.
fn covers(listed: &str, path: &str) -> bool {
    path.strip_prefix(listed).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

#[cfg(test)]
mod tests {
    use crate::{FigureProvenance, Policy, leadership_posts_path};

    /// Every figure the policy document (000_2e98fc682a88ee13.txt) does not give.
    const NOT_IN_THE_DOCUMENT: [&str; 14] = [
        "normalization",
        "score_thresholds.class1_min_score",
        "score_thresholds.class2_min_score",
        "rank_quota.class1_share",
        "absolute_bands.class2_minimum.land_area",
        "absolute_bands.indicators_required",
        "class_limits[class=1].leadership_posts",
        "class_limits[class=3].min_party_government_offices",
        "class_limits[class=3].max_party_government_offices",
        "class_limits[class=1].administrative_staff",
        "class_limits[class=2].public_institution_staff",
        "class_limits[class=3].administrative_staff",
        "class_limits[class=3].public_institution_staff",
        "class_limits[class=2].administrative_staff",
    ];

    /// And the figures it gives: weights 5 : 3 : 2, posts 11 and 9, 5–6 offices, 3 institutions, 1 brigade,
    /// at most 3 plaques.
    const IN_THE_DOCUMENT: [&str; 9] = [
        "weights.population",
        "weights",
        "max_plaques_per_township",
        "class_limits[class=2].leadership_posts",
        "class_limits[class=3].leadership_posts",
        "class_limits[class=1].min_party_government_offices",
        "class_limits[class=2].max_party_government_offices",
        "class_limits[class=3].max_public_institutions",
        "class_limits[class=1].max_law_enforcement_units",
    ];

    #[test]
    fn the_default_list_marks_every_figure_the_document_does_not_give_and_no_other() {
        let policy = Policy::builtin_default();
        for path in NOT_IN_THE_DOCUMENT {
            assert!(policy.is_inferred(path), "{path} should be inferred");
            assert!(!policy.inferred_note(path).unwrap().is_empty(), "{path} needs a note");
        }
        for path in IN_THE_DOCUMENT {
            assert!(!policy.is_inferred(path), "{path} is in the document");
        }
    }

    #[test]
    fn leadership_posts_verified_agrees_with_the_list() {
        let policy = Policy::builtin_default();
        for limits in &policy.class_limits {
            let path = leadership_posts_path(limits.township_class);
            assert_eq!(limits.leadership_posts_verified, !policy.is_inferred(&path), "{path}");
        }
        // A document marking a class unverified without listing it still reads as inferred.
        let text = crate::DEFAULT_POLICY_TOML.replace(
            "township_class = 2\nleadership_posts = 11\nleadership_posts_verified = true",
            "township_class = 2\nleadership_posts = 11\nleadership_posts_verified = false",
        );
        assert!(Policy::from_toml(&text).unwrap().is_inferred("class_limits[class=2].leadership_posts"));
    }

    #[test]
    fn a_path_that_names_no_figure_is_refused() {
        for bad in [
            "score_thresholds.class3_min_score",
            "class_limits[class=4].leadership_posts",
            "class_limits[class=1].township_class",
            "class_limits[1].leadership_posts",
            "weights.populaton",
            "name",
            "",
        ] {
            let mut policy = Policy::builtin_default();
            policy.figure_provenance.push(FigureProvenance {
                field: bad.to_owned(),
                verified: false,
                note: "a guess".to_owned(),
            });
            let violations = policy.violations();
            let index = policy.figure_provenance.len() - 1;
            assert_eq!(violations.len(), 1, "{bad}: {violations:?}");
            assert_eq!(violations[0].field, format!("figure_provenance[{index}].field"), "{bad}");
            assert!(violations[0].description.contains("names no figure"), "{bad}: {violations:?}");
        }
    }

    #[test]
    fn a_path_listed_twice_or_without_a_note_is_refused() {
        let mut policy = Policy::builtin_default();
        let mut twice = policy.figure_provenance[0].clone();
        twice.note = " ".to_owned();
        policy.figure_provenance.push(twice);
        let index = policy.figure_provenance.len() - 1;
        let fields: Vec<_> = policy.violations().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, [format!("figure_provenance[{index}].field"), format!("figure_provenance[{index}].note")]);
    }

    #[test]
    fn a_section_entry_covers_its_figures_and_a_verified_entry_marks_nothing() {
        let mut policy = Policy::builtin_default();
        assert!(policy.is_inferred("absolute_bands.class1_minimum.population"), "listed as the section");
        assert!(!policy.is_inferred("rank_quota_x"));
        let entry = policy.figure_provenance.iter_mut().find(|e| e.field == "normalization").unwrap();
        entry.verified = true;
        assert!(!policy.is_inferred("normalization"));
        assert!(policy.violations().is_empty());
    }

    #[test]
    fn the_list_is_not_part_of_the_fingerprint() {
        let policy = Policy::builtin_default();
        let mut listless = policy.clone();
        listless.figure_provenance.clear();
        assert_eq!(listless.fingerprint(), policy.fingerprint(), "where a figure came from is not a figure");
    }
}
