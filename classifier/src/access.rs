//! Who may call the classifier: every role that works with classes (the registry's worker classifies; people
//! preview, check and read policies), but not the auditor, who reads the audit log and nothing else (等保 2.0
//! keeps audit apart from the work it audits).

use tonic::{Request, Status};
use township_runtime::{Principal, Role};

/// The roles every classifier RPC is open to.
const ALLOWED: [Role; 4] = [Role::Service, Role::CityAdmin, Role::CountyEditor, Role::Viewer];

/// Lets `request` through to `method` when its principal holds an allowed role. No principal means the server
/// was assembled without its authentication layer: refused as UNAUTHENTICATED rather than trusted.
pub(crate) fn authorize<T>(request: &Request<T>, method: &str) -> Result<(), Status> {
    match Principal::of(request) {
        Some(principal) => decide(principal, method),
        None => Err(Status::unauthenticated(format!("{method}: no authenticated caller (send credentials)"))),
    }
}

fn decide(principal: &Principal, method: &str) -> Result<(), Status> {
    if ALLOWED.iter().any(|role| principal.has_role(*role)) {
        return Ok(());
    }
    let held = principal.roles.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(", ");
    let needed = ALLOWED.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(", ");
    let subject: String = principal.subject.chars().take(64).collect();
    Err(Status::permission_denied(format!(
        "{subject} (roles: {}) may not call {method}: it needs one of {needed}",
        if held.is_empty() { "none" } else { &held }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use township_runtime::{Credential, auth::AuthDisabled};

    fn with_roles(roles: &[Role]) -> Request<()> {
        let mut request = Request::new(());
        request.extensions_mut().insert(Principal {
            subject: "li.si".to_owned(),
            roles: roles.to_vec(),
            jurisdiction: vec!["4301".to_owned()],
            credential: Credential::Token { key_id: "k1".to_owned() },
        });
        request
    }

    #[test]
    fn every_working_role_may_classify() {
        for role in ALLOWED {
            assert!(authorize(&with_roles(&[role]), "Classify").is_ok(), "{role:?}");
        }
        let mut disabled = Request::new(());
        disabled.extensions_mut().insert(AuthDisabled::principal());
        assert!(authorize(&disabled, "Classify").is_ok());
    }

    #[test]
    fn the_auditor_is_denied_naming_the_method_and_the_roles_needed() {
        let status = authorize(&with_roles(&[Role::Auditor]), "ValidatePolicy").unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert!(
            status.message().contains("li.si (roles: auditor) may not call ValidatePolicy"),
            "{}",
            status.message()
        );
        assert!(status.message().contains("service, city_admin, county_editor, viewer"), "{}", status.message());
        let none = authorize(&with_roles(&[]), "Classify").unwrap_err();
        assert_eq!(none.code(), tonic::Code::PermissionDenied);
        assert!(none.message().contains("roles: none"), "{}", none.message());
    }

    #[test]
    fn a_request_without_a_principal_is_unauthenticated() {
        let status = authorize(&Request::new(()), "GetDefaultPolicy").unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(status.message().contains("GetDefaultPolicy"), "{}", status.message());
    }
}
