//! Who is calling: the authenticated principal every handler and the audit log see. The authentication layer
//! (`auth`) puts one into each request's extensions before the handler runs; a handler reads it with
//! [`Principal::of`]. Authorization (what the principal may do to which resource) is decided by each service
//! from its own resource names.

/// A role a token grants (its `roles` claim carries these names). 等保 2.0 keeps system, security and audit
/// administration apart: the auditor reads the audit log and nothing else, and no other role reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// 市编办: everything in its cities, including policies, overrides, adoptions and approved deviations.
    CityAdmin,
    /// 县编办: townships, indicators, institutions, plaques, posts, staffing and catalogues of its counties.
    CountyEditor,
    /// Reads within its jurisdiction.
    Viewer,
    /// Reads the audit log within its jurisdiction, and nothing else.
    Auditor,
    /// A service calling another (the registry's worker calling the classifier), authenticated by its
    /// client certificate.
    Service,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::CityAdmin, Role::CountyEditor, Role::Viewer, Role::Auditor, Role::Service];

    /// The name tokens carry.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::CityAdmin => "city_admin",
            Role::CountyEditor => "county_editor",
            Role::Viewer => "viewer",
            Role::Auditor => "auditor",
            Role::Service => "service",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// A role as a person types it on a command line: `county-editor` as well as `county_editor`.
    pub fn from_flag(name: &str) -> Option<Role> {
        Role::parse(&name.trim().to_ascii_lowercase().replace('-', "_"))
    }
}

/// How the principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A verified JWT; `key_id` is the `kid` of the key that verified it.
    Token { key_id: String },
    /// A client certificate the server's client CA trusts; the certificate's subject.
    Certificate { subject: String },
    /// Authentication is switched off (`--insecure-no-auth`): every caller is this principal.
    AuthDisabled,
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`, or the certificate's subject.
    pub subject: String,
    pub roles: Vec<Role>,
    /// Division codes the principal acts for: a province (2 digits), city (4) or county (6) code, or `*` for
    /// the whole country. A resource is within it when its code starts with one of them.
    pub jurisdiction: Vec<String>,
    pub credential: Credential,
}

/// The jurisdiction entry that covers every division.
pub const WHOLE_COUNTRY: &str = "*";

impl Principal {
    /// The principal the authentication layer attached to `request`; None only when no layer ran (a bug of
    /// the server's assembly, which handlers report as UNAUTHENTICATED rather than trusting the caller).
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&Principal> {
        request.extensions().get::<Principal>()
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether a division `code` (of any level) lies within the principal's jurisdiction.
    pub fn covers(&self, code: &str) -> bool {
        self.jurisdiction.iter().any(|entry| entry == WHOLE_COUNTRY || code.starts_with(entry.as_str()))
    }

    /// How the audit log names the actor: subject, roles and how it authenticated.
    pub fn audit_actor(&self) -> String {
        let roles = self.roles.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(",");
        match &self.credential {
            Credential::Token { key_id } => format!("{} [{roles}] (token, kid {key_id})", self.subject),
            Credential::Certificate { subject } => format!("{} [{roles}] (certificate {subject})", self.subject),
            Credential::AuthDisabled => format!("{} (authentication disabled)", self.subject),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(jurisdiction: &[&str]) -> Principal {
        Principal {
            subject: "zhang.san".into(),
            roles: vec![Role::CountyEditor],
            jurisdiction: jurisdiction.iter().map(|code| (*code).to_owned()).collect(),
            credential: Credential::Token { key_id: "k1".into() },
        }
    }

    #[test]
    fn a_jurisdiction_covers_the_divisions_under_its_codes_only() {
        let county = principal(&["430181"]);
        assert!(county.covers("430181110"));
        assert!(county.covers("430181"));
        assert!(!county.covers("430102001"));
        assert!(!county.covers("4301"), "a county's editor does not cover its city");
        assert!(principal(&[WHOLE_COUNTRY]).covers("650100"));
        assert!(!principal(&[]).covers("430181"));
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Role::from_flag("county-editor"), Some(Role::CountyEditor));
        assert_eq!(Role::from_flag("City_Admin"), Some(Role::CityAdmin));
        assert_eq!(Role::parse("county-editor"), None, "tokens carry the exact names");
    }
}
