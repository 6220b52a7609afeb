//! Authorization of every RPC, before its handler runs: each request type says what it needs ([`Guarded`]:
//! an action on the division its resource name carries), and [`authorize`] asks `domain::access::decide` for
//! each need. What an allowed list may show ([`Visible`]) goes into the request's extensions, where the
//! handler reads it ([`visible`]) and hands it to the store, which filters in SQL.

use tonic::{Request, Status};
use township_proto::registry::v1 as pb;
use township_runtime::error::{ErrorKind, ServiceError};
use township_runtime::principal::Principal;

use township_policy::quoted;

use super::RegistryApi;
use super::error::{invalid, name_error};
use crate::domain::access::{Action, Reach, Visible, decide};
use crate::domain::names;

/// One division a call acts on, and how.
pub(super) struct Need {
    action: Action,
    reach: Reach,
    /// A division code; empty for the whole country.
    target: String,
    /// How a refusal names what was asked.
    name: String,
}

/// What a request needs: one need per resource it names (a batch names several).
pub(super) trait Guarded {
    fn needs(&self) -> Result<Vec<Need>, Status>;
}

/// Allows the call or refuses it: `UNAUTHENTICATED` without a principal (a server assembled without the
/// authentication layer refuses rather than trusts), `INVALID_ARGUMENT` for a name that does not parse,
/// `PERMISSION_DENIED` naming what the call needs. Returns what the call may show.
pub(super) fn authorize<T: Guarded>(request: &Request<T>) -> Result<Authorized, Refused> {
    let principal = Principal::of(request).ok_or_else(|| Status::unauthenticated("no authenticated caller"))?;
    let mut shown = Visible::All;
    let mut written = None;
    for need in request.get_ref().needs()? {
        match decide(principal, need.action, &need.target, &need.name, need.reach) {
            Ok(visible) => {
                shown = visible;
                if matches!(need.action, Action::Edit | Action::Administer) && written.is_none() {
                    written = Some(need.name);
                }
            }
            Err(denied) => {
                let status = ServiceError::new(ErrorKind::PermissionDenied, denied.0).into();
                return Err(Refused { status, denied: Some(need.name) });
            }
        }
    }
    Ok(Authorized { visible: shown, written })
}

/// An allowed call: what it may show, and for a write the (first) resource it writes.
pub(super) struct Authorized {
    pub visible: Visible,
    pub written: Option<String>,
}

/// A call [`authorize`] refused: the status to answer and, for a denial, the name asked for, which the audit
/// log records.
pub(super) struct Refused {
    pub status: Status,
    pub denied: Option<String>,
}

impl From<Status> for Refused {
    fn from(status: Status) -> Self {
        Self { status, denied: None }
    }
}

impl RegistryApi {
    /// Records a denial in the audit log and answers it. A log that cannot be written turns the denial into
    /// UNAVAILABLE rather than letting it go unrecorded.
    pub(super) async fn refuse<T>(&self, request: &Request<T>, method: &str, refused: Refused) -> Status {
        let Some(resource) = refused.denied else { return refused.status };
        crate::metrics::authorization_refused();
        let actor = super::request::actor(request);
        let outcome = format!("{}: {}", code_name(refused.status.code()), refused.status.message());
        match self.store().record_refusal(&actor, &format!("Refused {method}"), &resource, &outcome).await {
            Ok(()) => refused.status,
            Err(error) => Status::from(error),
        }
    }

    /// Records a write that failed (等保 2.0 asks for failed events too). The caller's answer stays the
    /// failure itself; a log that cannot be written (the database is down, say) is logged as an error.
    pub(super) async fn record_failure(
        &self,
        actor: &str,
        method: &str,
        resource: &str,
        (code, message): (tonic::Code, String),
    ) {
        let outcome = format!("{}: {message}", code_name(code));
        if let Err(error) = self.store().record_refusal(actor, &format!("Failed {method}"), resource, &outcome).await {
            tracing::error!(%error, method, "could not record a failed write in the audit log");
        }
    }
}

/// What the call may show, as [`authorize`] left it; everything when no decision was stored (an in-process
/// call that went around the table, which only tests make).
pub(super) fn visible<T>(request: &Request<T>) -> Visible {
    request.extensions().get::<Visible>().cloned().unwrap_or(Visible::All)
}

/// A gRPC code as the specification spells it (`INVALID_ARGUMENT`), for the audit log.
fn code_name(code: tonic::Code) -> String {
    let mut name = String::new();
    for (index, letter) in format!("{code:?}").chars().enumerate() {
        if letter.is_ascii_uppercase() && index > 0 {
            name.push('_');
        }
        name.push(letter.to_ascii_uppercase());
    }
    name
}

fn need(action: Action, reach: Reach, field: &str, name: &str) -> Result<Need, Status> {
    let scope = names::parse_leading_scope(name).map_err(name_error(field))?;
    Ok(Need { action, reach, target: scope.code_prefix().to_owned(), name: name.to_owned() })
}

fn one(action: Action, field: &str, name: &str) -> Result<Vec<Need>, Status> {
    Ok(vec![need(action, Reach::One, field, name)?])
}

fn within(action: Action, field: &str, name: &str) -> Result<Vec<Need>, Status> {
    Ok(vec![need(action, Reach::Within, field, name)?])
}

fn whole_country(action: Action) -> Vec<Need> {
    vec![Need { action, reach: Reach::Within, target: String::new(), name: "the whole country".into() }]
}

/// A city given by its bare code or name, in the fields that take either (`city` of cohort status, previews,
/// watches).
fn city_field(action: Action, reach: Reach, value: &str) -> Result<Vec<Need>, Status> {
    let city = names::parse_city(value).map_err(name_error("city"))?;
    Ok(vec![Need { action, reach, target: city.as_str().to_owned(), name: names::city_name(&city) }])
}

/// The resource name of an update's embedded message.
fn embedded<'a, M>(field: &str, message: Option<&'a M>, name: impl Fn(&'a M) -> &'a str) -> Result<&'a str, Status> {
    message.map(name).ok_or_else(|| invalid(field, "is required"))
}

/// Each item of a batch, named as `requests[i].field`. An empty batch names no division, yet still needs a
/// role that may take the action somewhere.
fn each<M>(action: Action, items: &[M], field: &str, name: impl Fn(&M) -> &str) -> Result<Vec<Need>, Status> {
    if items.is_empty() {
        return Ok(vec![Need { action, reach: Reach::Within, target: String::new(), name: "an empty batch".into() }]);
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| need(action, Reach::One, &format!("requests[{index}].{field}"), name(item)))
        .collect()
}

macro_rules! guard {
    ($($request:ident => |$r:ident| $needs:expr;)*) => {
        $(
            impl Guarded for pb::$request {
                fn needs(&self) -> Result<Vec<Need>, Status> {
                    let $r = self;
                    $needs
                }
            }
        )*
    };
}

use Action::{Administer, Edit, Read, ReadAudit};

guard! {
    // hierarchy: the divisions themselves are the city's; a county edits its townships.
    GetCityRequest => |r| one(Read, "name", &r.name);
    ListCitiesRequest => |_r| Ok(whole_country(Read));
    GetCountyRequest => |r| one(Read, "name", &r.name);
    ListCountiesRequest => |r| within(Read, "parent", &r.parent);
    GetTownshipRequest => |r| one(Read, "name", &r.name);
    ListTownshipsRequest => |r| within(Read, "parent", &r.parent);
    CreateTownshipRequest => |r| one(Edit, "parent", &r.parent);
    UpdateTownshipRequest => |r| one(Edit, "township.name", embedded("township", r.township.as_ref(), |t| &t.name)?);
    ImportDivisionsRequest => |r| division_import(&r.code_prefix);
    // indicators
    RecordIndicatorsRequest => |r| {
        one(Edit, "observation.township", embedded("observation", r.observation.as_ref(), |o| &o.township)?)
    };
    BatchRecordIndicatorsRequest => |r| {
        if r.observations.is_empty() {
            return each(Edit, &r.observations, "township", |o| &o.township);
        }
        r.observations
            .iter()
            .enumerate()
            .map(|(i, o)| need(Edit, Reach::One, &format!("observations[{i}].township"), &o.township))
            .collect()
    };
    ListIndicatorObservationsRequest => |r| one(Read, "parent", &r.parent);
    // policies: the city's to set; anyone in the city reads the policy its townships answer to.
    SetCityPolicyRequest => |r| one(Administer, "parent", &r.parent);
    GetEffectivePolicyRequest => |r| within(Read, "parent", &r.parent);
    ListCityPoliciesRequest => |r| within(Read, "parent", &r.parent);
    // classes: a run and a preview carry the whole city's cohort, so they are the city's to read.
    GetTownshipClassRequest => |r| one(Read, "township", &r.township);
    ListTownshipClassesRequest => |r| within(Read, "parent", &r.parent);
    ListClassHistoryRequest => |r| one(Read, "township", &r.township);
    GetCohortStatusRequest => |r| city_field(Read, Reach::Within, &r.city);
    GetClassificationRunRequest => |r| one(Read, "name", &r.name);
    ListClassificationRunsRequest => |r| one(Read, "parent", &r.parent);
    SetClassOverrideRequest => |r| one(Administer, "township", &r.township);
    ClearClassOverrideRequest => |r| one(Administer, "township", &r.township);
    PreviewClassificationRequest => |r| city_field(Read, Reach::One, &r.city);
    WatchClassChangesRequest => |r| {
        if r.city.is_empty() { Ok(whole_country(Read)) } else { city_field(Read, Reach::Within, &r.city) }
    };
    // years
    AdoptDataYearRequest => |r| one(Administer, "parent", &r.parent);
    ListDataYearsRequest => |r| within(Read, "parent", &r.parent);
    // institutions and plaques
    CreateInstitutionRequest => |r| one(Edit, "parent", &r.parent);
    BatchCreateInstitutionsRequest => |r| each(Edit, &r.requests, "parent", |one| &one.parent);
    GetInstitutionRequest => |r| one(Read, "name", &r.name);
    ListInstitutionsRequest => |r| one(Read, "parent", &r.parent);
    UpdateInstitutionRequest => |r| {
        one(Edit, "institution.name", embedded("institution", r.institution.as_ref(), |i| &i.name)?)
    };
    DeleteInstitutionRequest => |r| one(Edit, "name", &r.name);
    CreatePlaqueRequest => |r| one(Edit, "parent", &r.parent);
    GetPlaqueRequest => |r| one(Read, "name", &r.name);
    ListPlaquesRequest => |r| one(Read, "parent", &r.parent);
    UpdatePlaqueRequest => |r| one(Edit, "plaque.name", embedded("plaque", r.plaque.as_ref(), |p| &p.name)?);
    DeletePlaqueRequest => |r| one(Edit, "name", &r.name);
    // posts
    CreateLeadershipPostRequest => |r| one(Edit, "parent", &r.parent);
    BatchCreateLeadershipPostsRequest => |r| each(Edit, &r.requests, "parent", |one| &one.parent);
    GetLeadershipPostRequest => |r| one(Read, "name", &r.name);
    ListLeadershipPostsRequest => |r| one(Read, "parent", &r.parent);
    UpdateLeadershipPostRequest => |r| one(Edit, "post.name", embedded("post", r.post.as_ref(), |p| &p.name)?);
    DeleteLeadershipPostRequest => |r| one(Edit, "name", &r.name);
    // staffing
    CreateStaffingApprovalRequest => |r| one(Edit, "parent", &r.parent);
    BatchCreateStaffingApprovalsRequest => |r| each(Edit, &r.requests, "parent", |one| &one.parent);
    ListStaffingApprovalsRequest => |r| one(Read, "parent", &r.parent);
    SetStaffingHeadcountRequest => |r| one(Edit, "parent", &r.parent);
    BatchSetStaffingHeadcountsRequest => |r| each(Edit, &r.requests, "parent", |one| &one.parent);
    ListStaffingHeadcountsRequest => |r| one(Read, "parent", &r.parent);
    // catalogue
    CreateCatalogueItemRequest => |r| one(Edit, "parent", &r.parent);
    BatchCreateCatalogueItemsRequest => |r| each(Edit, &r.requests, "parent", |one| &one.parent);
    GetCatalogueItemRequest => |r| one(Read, "name", &r.name);
    ListCatalogueItemsRequest => |r| one(Read, "parent", &r.parent);
    UpdateCatalogueItemRequest => |r| {
        one(Edit, "catalogue_item.name", embedded("catalogue_item", r.catalogue_item.as_ref(), |i| &i.name)?)
    };
    DeleteCatalogueItemRequest => |r| one(Edit, "name", &r.name);
    // approved deviations: the city approves them; the county reads its own.
    CreateApprovedDeviationRequest => |r| one(Administer, "parent", &r.parent);
    GetApprovedDeviationRequest => |r| one(Read, "name", &r.name);
    ListApprovedDeviationsRequest => |r| one(Read, "parent", &r.parent);
    RevokeApprovedDeviationRequest => |r| one(Administer, "name", &r.name);
    // compliance: a report above the caller's jurisdiction covers only its townships.
    GetComplianceReportRequest => |r| within(Read, "scope", &r.scope);
    // audit
    ListAuditEventsRequest => |r| Ok(vec![audit_need(&r.resource_prefix)]);
}

/// Importing divisions changes the divisions under `code_prefix` (all of them when empty): the city's.
fn division_import(code_prefix: &str) -> Result<Vec<Need>, Status> {
    if code_prefix.len() > 9 || !code_prefix.bytes().all(|b| b.is_ascii_digit()) {
        let description = format!("{} is not a prefix of a division code (up to 9 digits)", quoted(code_prefix));
        return Err(invalid("code_prefix", description));
    }
    let name = if code_prefix.is_empty() { "the whole country".to_owned() } else { format!("divisions {code_prefix}") };
    Ok(vec![Need { action: Administer, reach: Reach::One, target: code_prefix.to_owned(), name }])
}

/// The audit log under a resource-name prefix: the division codes it spells (`cities/43` → `43`), partial
/// codes included; a prefix not under `cities/` is the whole log.
fn audit_need(resource_prefix: &str) -> Need {
    let mut target = String::new();
    let mut segments = resource_prefix.split('/');
    while let (Some(collection), Some(code)) = (segments.next(), segments.next()) {
        let known = matches!((target.len(), collection), (0, "cities") | (4, "counties") | (6, "townships"));
        if !known || !code.bytes().all(|b| b.is_ascii_digit()) || !code.starts_with(target.as_str()) {
            break;
        }
        target = code.to_owned();
        if code.len() != 4 && code.len() != 6 && code.len() != 9 {
            break;
        }
    }
    let name = if resource_prefix.is_empty() { "the whole audit log".to_owned() } else { resource_prefix.to_owned() };
    Need { action: ReadAudit, reach: Reach::Within, target, name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_prefix_targets_the_divisions_it_spells() {
        assert_eq!(audit_need("").target, "");
        assert_eq!(audit_need("cities/43").target, "43");
        assert_eq!(audit_need("cities/4301/counties/430181/townships/430181110/institutions/3").target, "430181110");
        assert_eq!(audit_need("cities/4301/counties/4301").target, "4301", "a partial county code");
        assert_eq!(audit_need("cities/4301/counties/430281").target, "4301", "a county outside its city");
        assert_eq!(audit_need("divisions").target, "");
    }

    #[test]
    fn codes_are_named_as_the_grpc_specification_spells_them() {
        assert_eq!(code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(tonic::Code::PermissionDenied), "PERMISSION_DENIED");
        assert_eq!(code_name(tonic::Code::Ok), "OK");
    }
}
