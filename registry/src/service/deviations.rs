//! Approved deviations (issue 11 §2): recorded, read and revoked; compliance and the write-time limits apply them.

use tonic::{Request, Response, Status};
use township_policy::{FieldViolation, quoted};
use township_proto::registry::v1 as pb;

use super::convert::*;
use super::error::{invalid, invalid_all, name_error};
use super::idempotency::{made, request_key};
use super::request::{
    MAX_NAME_TEXT_CHARS, actor, check_date, check_optional_text, check_text, next_token, optional, page_request,
};
use super::{RegistryApi, ServiceResult};
use crate::domain::deviations::{COLLECTION, DeviationRevocation, DeviationScope, NewApprovedDeviation, is_count_rule};
use crate::domain::names::{self, Scope};
use crate::domain::rules::RULE_IDS;
use crate::store::{Create, Created, iso_date};
use township_runtime::now_ms;

/// The largest approved figure: no township has a thousand offices, plaques or posts.
const MAX_ALLOWED: u32 = 1000;
/// Longest reason or description.
const MAX_REASON_CHARS: usize = 1000;

impl RegistryApi {
    pub(super) async fn create_approved_deviation(
        &self,
        request: Request<pb::CreateApprovedDeviationRequest>,
    ) -> ServiceResult<pb::ApprovedDeviation> {
        let actor = actor(&request);
        let request = request.into_inner();
        let key = request_key("CreateApprovedDeviation", &request.request_id, &request)?;
        let scope = deviation_parent("parent", &request.parent)?;
        let deviation = request
            .approved_deviation
            .ok_or_else(|| invalid("approved_deviation", format!("{}: the deviation is missing", scope.name())))?;
        let new = new_deviation(scope, deviation)?;
        let created = self.create_once(key, Create::ApprovedDeviation(new), &actor).await?;
        Ok(Response::new(deviation_to_proto(made!(created, Created::ApprovedDeviation), &today())))
    }

    pub(super) async fn get_approved_deviation(
        &self,
        request: Request<pb::GetApprovedDeviationRequest>,
    ) -> ServiceResult<pb::ApprovedDeviation> {
        let (scope, id) = deviation_ref(&request.get_ref().name)?;
        Ok(Response::new(deviation_to_proto(self.store().get_deviation(&scope, id).await?, &today())))
    }

    pub(super) async fn list_approved_deviations(
        &self,
        request: Request<pb::ListApprovedDeviationsRequest>,
    ) -> ServiceResult<pb::ListApprovedDeviationsResponse> {
        let request = request.into_inner();
        let scope = deviation_parent("parent", &request.parent)?;
        let page = self.store().list_deviations(&scope, &page_request(request.page_size, &request.page_token)?).await?;
        let today = today();
        Ok(Response::new(pb::ListApprovedDeviationsResponse {
            next_page_token: next_token(&page),
            approved_deviations: page.items.into_iter().map(|d| deviation_to_proto(d, &today)).collect(),
        }))
    }

    pub(super) async fn revoke_approved_deviation(
        &self,
        request: Request<pb::RevokeApprovedDeviationRequest>,
    ) -> ServiceResult<pb::ApprovedDeviation> {
        let actor = actor(&request);
        let request = request.into_inner();
        let (scope, id) = deviation_ref(&request.name)?;
        let mut violations = Vec::new();
        check_text("document_number", &request.document_number, MAX_NAME_TEXT_CHARS, &mut violations);
        check_optional_text("reason", &request.reason, MAX_REASON_CHARS, &mut violations);
        if !violations.is_empty() {
            return Err(invalid_all(in_parent(&scope, violations)));
        }
        let revocation = DeviationRevocation { document_number: request.document_number, reason: request.reason };
        let revoked = self.store().revoke_deviation(&scope, id, &revocation, &actor).await?;
        Ok(Response::new(deviation_to_proto(revoked, &today())))
    }
}

fn today() -> String {
    iso_date(now_ms())
}

/// A county's or a township's name: the parents a deviation may have.
fn deviation_parent(field: &str, name: &str) -> Result<DeviationScope, Status> {
    match names::parse_scope(name).map_err(name_error(field))? {
        Scope::County(county) => Ok(DeviationScope::County(county)),
        Scope::Township(township) => Ok(DeviationScope::Township(township)),
        Scope::City(_) => Err(invalid(
            field,
            format!("{} is a city; an approved deviation belongs to a county or a township", quoted(name)),
        )),
    }
}

/// Parses `{county or township}/approvedDeviations/{id}`.
fn deviation_ref(name: &str) -> Result<(DeviationScope, i64), Status> {
    let bad = || {
        invalid(
            "name",
            format!(
                "{} is not an approved deviation's name ({{county or township}}/{COLLECTION}/{{id}})",
                quoted(name)
            ),
        )
    };
    let (parent, id) = name.rsplit_once(&format!("/{COLLECTION}/")).ok_or_else(bad)?;
    let id: i64 = id.parse().map_err(|_| bad())?;
    Ok((deviation_parent("name", parent)?, id))
}

/// Each violation's description prefixed with the parent it concerns.
fn in_parent(scope: &DeviationScope, violations: Vec<FieldViolation>) -> Vec<FieldViolation> {
    let parent = scope.name();
    violations.into_iter().map(|v| FieldViolation::new(v.field, format!("{parent}: {}", v.description))).collect()
}

fn new_deviation(scope: DeviationScope, deviation: pb::ApprovedDeviation) -> Result<NewApprovedDeviation, Status> {
    let mut violations = Vec::new();
    let rule = deviation.rule.trim().to_owned();
    if !RULE_IDS.contains(&rule.as_str()) {
        violations.push(FieldViolation::new(
            "approved_deviation.rule",
            format!("{} is not a rule the registry knows; the rules are {}", quoted(&rule), RULE_IDS.join(", ")),
        ));
    } else if crate::domain::deviations::NOT_DEVIABLE.contains(&rule.as_str()) {
        violations.push(FieldViolation::new(
            "approved_deviation.rule",
            format!(
                "{rule} reports the city's own policy departing from the document; a county deviation cannot waive \
                 it: the city policy's document_number answers for it"
            ),
        ));
    } else if is_count_rule(&rule) {
        if !(1..=MAX_ALLOWED).contains(&deviation.allowed) {
            violations.push(FieldViolation::new(
                "approved_deviation.allowed",
                format!("{rule} is a count rule: give the approved figure, 1–{MAX_ALLOWED}, got {}", deviation.allowed),
            ));
        }
        check_optional_text(
            "approved_deviation.allowed_description",
            &deviation.allowed_description,
            MAX_REASON_CHARS,
            &mut violations,
        );
    } else {
        if deviation.allowed != 0 {
            violations.push(FieldViolation::new(
                "approved_deviation.allowed",
                format!(
                    "{rule} is not a count rule ({}): it is waived, with no figure; leave allowed 0 and say what is \
                     done instead in allowed_description",
                    crate::domain::deviations::COUNT_RULES.join(", ")
                ),
            ));
        }
        check_text(
            "approved_deviation.allowed_description",
            &deviation.allowed_description,
            MAX_REASON_CHARS,
            &mut violations,
        );
    }
    check_text("approved_deviation.document_number", &deviation.document_number, MAX_NAME_TEXT_CHARS, &mut violations);
    if deviation.approved_on.is_empty() {
        violations.push(FieldViolation::new("approved_deviation.approved_on", "the date of approval is missing"));
    } else {
        check_date("approved_deviation.approved_on", &Some(deviation.approved_on.clone()), &mut violations);
    }
    let valid_to = optional(deviation.valid_to);
    check_date("approved_deviation.valid_to", &valid_to, &mut violations);
    if let Some(to) = &valid_to
        && !deviation.approved_on.is_empty()
        && *to < deviation.approved_on
    {
        violations.push(FieldViolation::new(
            "approved_deviation.valid_to",
            format!("valid_to {to} is before approved_on {}", deviation.approved_on),
        ));
    }
    check_optional_text("approved_deviation.reason", &deviation.reason, MAX_REASON_CHARS, &mut violations);
    if !violations.is_empty() {
        return Err(invalid_all(in_parent(&scope, violations)));
    }
    let allowed = is_count_rule(&rule).then_some(deviation.allowed);
    Ok(NewApprovedDeviation {
        scope,
        rule,
        allowed,
        allowed_description: deviation.allowed_description,
        document_number: deviation.document_number,
        approved_on: deviation.approved_on,
        reason: deviation.reason,
        valid_to,
    })
}
