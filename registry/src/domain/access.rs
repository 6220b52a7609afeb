//! Who may do what to which part of the record: one pure decision, taken from the resource name alone before
//! any database read, so a refusal cannot depend on (or reveal) whether the resource exists (AIP-211).
//!
//! A target is a division code of any length — `""` (the whole country), a province (2 digits), city (4),
//! county (6) or township (9) — taken from the resource name; a principal's jurisdiction is a list of such
//! codes (or `*`). A code lies within a jurisdiction entry when it starts with it.

use township_runtime::principal::{Principal, Role, WHOLE_COUNTRY};

/// What a call does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reads the record (not the audit log): viewers, county editors and city administrators.
    Read,
    /// Changes townships, indicators, institutions, plaques, posts, staffing or catalogues: county editors
    /// and city administrators.
    Edit,
    /// Changes what only the city decides — policies, overrides, data-year adoptions, approved deviations,
    /// the divisions themselves: city administrators.
    Administer,
    /// Reads the audit log: auditors only, and auditors nothing else (等保 2.0 keeps the duties apart).
    ReadAudit,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Read, Action::Edit, Action::Administer, Action::ReadAudit];

    /// The roles that may take this action.
    pub fn roles(self) -> &'static [Role] {
        match self {
            Action::Read => &[Role::CityAdmin, Role::CountyEditor, Role::Viewer],
            Action::Edit => &[Role::CityAdmin, Role::CountyEditor],
            Action::Administer => &[Role::CityAdmin],
            Action::ReadAudit => &[Role::Auditor],
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Action::Read => "reading",
            Action::Edit => "changing",
            Action::Administer => "administering",
            Action::ReadAudit => "reading the audit log of",
        }
    }
}

/// How far the answer reaches from the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The target itself (a get or a write): the jurisdiction must cover it.
    One,
    /// What lies under the target (a list, a watch, a report): the caller sees the part its jurisdiction
    /// covers, so it is enough that the jurisdiction and the target overlap.
    Within,
}

/// Which divisions an allowed call may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    /// Everything under the target.
    All,
    /// Only divisions whose code starts with one of these codes, or that contain one of them (the city of a
    /// county the caller edits is listed, with only that county under it). Never empty.
    Under(Vec<String>),
}

impl Visible {
    /// Whether a division `code` (of any level) may be shown.
    pub fn shows(&self, code: &str) -> bool {
        match self {
            Visible::All => true,
            Visible::Under(entries) => entries.iter().any(|entry| related(code, entry)),
        }
    }
}

/// A refusal; its message names what was asked and what it needs, never whether the target exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// Decides whether `principal` may take `action` on `target` (a division code, `""` for the whole country;
/// `target_name` is how the message names it).
pub fn decide(
    principal: &Principal,
    action: Action,
    target: &str,
    target_name: &str,
    reach: Reach,
) -> Result<Visible, Denied> {
    let entitled = action.roles().iter().any(|role| principal.has_role(*role));
    if entitled {
        if principal.jurisdiction.iter().any(|entry| entry == WHOLE_COUNTRY || target.starts_with(entry.as_str())) {
            return Ok(Visible::All);
        }
        if reach == Reach::Within {
            let inside: Vec<String> =
                principal.jurisdiction.iter().filter(|entry| entry.starts_with(target)).cloned().collect();
            if !inside.is_empty() {
                return Ok(Visible::Under(inside));
            }
        }
    }
    let needs = action.roles().iter().map(|role| role.as_str()).collect::<Vec<_>>().join(" or ");
    let has = principal.roles.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(", ");
    let covering = if target.is_empty() { "the whole country".to_owned() } else { target.to_owned() };
    Err(Denied(format!(
        "permission denied: {} {target_name} needs the role {needs} with a jurisdiction covering {covering}; {} \
         has the role(s) [{has}] for [{}]",
        action.verb(),
        principal.subject,
        principal.jurisdiction.join(", ")
    )))
}

/// One code lies within the other.
fn related(code: &str, entry: &str) -> bool {
    entry == WHOLE_COUNTRY || code.starts_with(entry) || entry.starts_with(code)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use township_runtime::principal::Credential;

    use super::*;

    fn principal(roles: &[Role], jurisdiction: &[&str]) -> Principal {
        Principal {
            subject: "li.si".into(),
            roles: roles.to_vec(),
            jurisdiction: jurisdiction.iter().map(|code| (*code).to_owned()).collect(),
            credential: Credential::Token { key_id: "k1".into() },
        }
    }

    const TOWNSHIP: &str = "430181110";

    #[test]
    fn a_county_editor_changes_its_own_counties_townships_only() {
        let editor = principal(&[Role::CountyEditor], &["430181"]);
        assert_eq!(decide(&editor, Action::Edit, TOWNSHIP, "t", Reach::One), Ok(Visible::All));
        assert!(decide(&editor, Action::Edit, "430102001", "t", Reach::One).is_err());
        assert!(decide(&editor, Action::Administer, "4301", "c", Reach::One).is_err(), "policies are the city's");
    }

    #[test]
    fn the_auditor_reads_the_audit_log_and_nothing_else() {
        let auditor = principal(&[Role::Auditor], &[WHOLE_COUNTRY]);
        assert_eq!(decide(&auditor, Action::ReadAudit, "", "the log", Reach::Within), Ok(Visible::All));
        for action in [Action::Read, Action::Edit, Action::Administer] {
            assert!(decide(&auditor, action, TOWNSHIP, "t", Reach::One).is_err(), "{action:?}");
        }
        let admin = principal(&[Role::CityAdmin], &[WHOLE_COUNTRY]);
        assert!(decide(&admin, Action::ReadAudit, "", "the log", Reach::Within).is_err(), "duties kept apart");
    }

    #[test]
    fn a_list_above_the_jurisdiction_shows_only_the_jurisdiction() {
        let viewer = principal(&[Role::Viewer], &["430181", "430102"]);
        let visible = decide(&viewer, Action::Read, "4301", "cities/4301", Reach::Within).unwrap();
        assert_eq!(visible, Visible::Under(vec!["430181".into(), "430102".into()]));
        assert!(visible.shows("4301"), "the city that holds the county is listed");
        assert!(visible.shows("430181110"));
        assert!(!visible.shows("430103"));
        assert!(decide(&viewer, Action::Read, "4301", "cities/4301", Reach::One).is_err(), "not the city itself");
        assert!(decide(&viewer, Action::Read, "4302", "cities/4302", Reach::Within).is_err());
    }

    #[test]
    fn a_refusal_names_the_need_and_not_the_record() {
        let editor = principal(&[Role::CountyEditor], &["430181"]);
        let name = "cities/4301/counties/430102/townships/430102001/institutions/7";
        let Denied(message) = decide(&editor, Action::Edit, "430102001", name, Reach::One).unwrap_err();
        assert!(message.contains(name) && message.contains("city_admin or county_editor"), "{message}");
        assert!(message.contains("covering 430102001") && message.contains("[430181]"), "{message}");
    }

    fn role() -> impl Strategy<Value = Role> {
        prop::sample::select(Role::ALL.to_vec())
    }

    fn code() -> impl Strategy<Value = String> {
        // Short digit strings from few digits, so that prefixes meet often.
        prop::collection::vec(prop::sample::select(vec!['4', '3', '0', '1']), 0..=9)
            .prop_map(|digits| digits.into_iter().collect())
    }

    fn jurisdiction_entry() -> impl Strategy<Value = String> {
        prop_oneof![Just(WHOLE_COUNTRY.to_owned()), code()]
    }

    proptest! {
        /// The decision is exactly this: a role of the action, and a jurisdiction entry that covers the target
        /// (or, for a list, lies within it); a list then shows what those entries cover and nothing else.
        #[test]
        fn the_decision_follows_roles_and_jurisdiction(
            roles in prop::collection::vec(role(), 0..3),
            jurisdiction in prop::collection::vec(jurisdiction_entry(), 0..3),
            action in prop::sample::select(Action::ALL.to_vec()),
            target in code(),
            within in any::<bool>(),
            probe in code(),
        ) {
            let refs: Vec<&str> = jurisdiction.iter().map(String::as_str).collect();
            let caller = principal(&roles, &refs);
            let reach = if within { Reach::Within } else { Reach::One };
            let entitled = action.roles().iter().any(|role| roles.contains(role));
            let covers = jurisdiction.iter().any(|e| e == WHOLE_COUNTRY || target.starts_with(e.as_str()));
            let overlaps = jurisdiction.iter().any(|e| e != WHOLE_COUNTRY && e.starts_with(target.as_str()));
            match decide(&caller, action, &target, "x", reach) {
                Ok(Visible::All) => prop_assert!(entitled && covers),
                Ok(Visible::Under(entries)) => {
                    prop_assert!(entitled && !covers && within && overlaps);
                    prop_assert!(!entries.is_empty());
                    // A shown code under the target lies within one of the caller's entries.
                    if probe.starts_with(target.as_str()) && probe.len() >= 9 {
                        let shown = Visible::Under(entries).shows(&probe);
                        prop_assert_eq!(shown, jurisdiction.iter().any(|e| probe.starts_with(e.as_str())));
                    }
                }
                Err(_) => prop_assert!(!entitled || !(covers || (within && overlaps))),
            }
        }
    }
}
