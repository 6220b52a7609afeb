//! Staffing (编制): the approvals ledger of each institution and its actual headcounts (实有人数).

use tonic::{Request, Response, Status};
use township_policy::{FieldViolation, quoted};
use township_proto::registry::v1 as pb;

use super::convert::*;
use super::error::{invalid, invalid_all, name_error};
use super::idempotency::{check_no_nested_request_id, made, request_key};
use super::request::{
    MAX_NAME_TEXT_CHARS, actor, check_batch_size, check_date, check_optional_text, check_text, in_request, next_token,
    page_request,
};
use super::{RegistryApi, ServiceResult};
use crate::domain::model::{NewStaffingApproval, NewStaffingHeadcount};
use crate::domain::names::{self, Scope, TownshipCode};
use crate::store::{Create, Created, CreatedRecord, NewRecord};

/// Largest change of one approval, and largest headcount: a large township's whole establishment is a few
/// hundred (the same bound as an institution's staffing quota).
const MAX_STAFFING: u32 = 10_000;

impl RegistryApi {
    pub(super) async fn create_staffing_approval(
        &self,
        request: Request<pb::CreateStaffingApprovalRequest>,
    ) -> ServiceResult<pb::StaffingApproval> {
        let actor = actor(&request);
        let request = request.into_inner();
        let key = request_key("CreateStaffingApproval", &request.request_id, &request)?;
        let new = prepare_staffing_approval(request)?;
        let created = self.create_once(key, Create::StaffingApproval(new), &actor).await?;
        Ok(Response::new(staffing_approval_to_proto(made!(created, Created::StaffingApproval))))
    }

    pub(super) async fn batch_create_staffing_approvals(
        &self,
        request: Request<pb::BatchCreateStaffingApprovalsRequest>,
    ) -> ServiceResult<pb::BatchCreateStaffingApprovalsResponse> {
        let actor = actor(&request);
        let request = request.into_inner();
        check_batch_size(request.requests.len())?;
        let key = request_key("BatchCreateStaffingApprovals", &request.request_id, &request)?;
        let mut records = Vec::with_capacity(request.requests.len());
        for (index, one) in request.requests.into_iter().enumerate() {
            check_no_nested_request_id(index, &one.request_id)?;
            records.push(NewRecord::StaffingApproval(prepare_staffing_approval(one).map_err(in_request(index))?));
        }
        let created = self.batch_create(key, records, &actor, request.validate_only, &[]).await?;
        let staffing_approvals = created
            .into_iter()
            .filter_map(|record| match record {
                CreatedRecord::StaffingApproval(approval) => Some(staffing_approval_to_proto(approval)),
                _ => None,
            })
            .collect();
        Ok(Response::new(pb::BatchCreateStaffingApprovalsResponse { staffing_approvals }))
    }

    pub(super) async fn list_staffing_approvals(
        &self,
        request: Request<pb::ListStaffingApprovalsRequest>,
    ) -> ServiceResult<pb::ListStaffingApprovalsResponse> {
        let request = request.into_inner();
        let (code, institution) = township_or_institution(&request.parent)?;
        let page = page_request(request.page_size, &request.page_token)?;
        let page = self.store().list_staffing_approvals(&code, institution, &page).await?;
        Ok(Response::new(pb::ListStaffingApprovalsResponse {
            next_page_token: next_token(&page),
            staffing_approvals: page.items.into_iter().map(staffing_approval_to_proto).collect(),
        }))
    }

    pub(super) async fn set_staffing_headcount(
        &self,
        request: Request<pb::SetStaffingHeadcountRequest>,
    ) -> ServiceResult<pb::StaffingHeadcount> {
        let actor = actor(&request);
        let new = prepare_headcount(request.into_inner())?;
        let headcount = self
            .store()
            .set_staffing_headcount(&new.township, new.institution_id, new.staffing_type, new.actual, &actor)
            .await?;
        Ok(Response::new(staffing_headcount_to_proto(headcount)))
    }

    pub(super) async fn batch_set_staffing_headcounts(
        &self,
        request: Request<pb::BatchSetStaffingHeadcountsRequest>,
    ) -> ServiceResult<pb::BatchSetStaffingHeadcountsResponse> {
        let actor = actor(&request);
        let request = request.into_inner();
        check_batch_size(request.requests.len())?;
        let records = request
            .requests
            .into_iter()
            .enumerate()
            .map(|(index, one)| prepare_headcount(one).map(NewRecord::StaffingHeadcount).map_err(in_request(index)))
            .collect::<Result<Vec<_>, _>>()?;
        // No request id: setting the same figures again changes nothing.
        let set = self.batch_create(None, records, &actor, request.validate_only, &[]).await?;
        let staffing_headcounts = set
            .into_iter()
            .filter_map(|record| match record {
                CreatedRecord::StaffingHeadcount(headcount) => Some(staffing_headcount_to_proto(headcount)),
                _ => None,
            })
            .collect();
        Ok(Response::new(pb::BatchSetStaffingHeadcountsResponse { staffing_headcounts }))
    }

    pub(super) async fn list_staffing_headcounts(
        &self,
        request: Request<pb::ListStaffingHeadcountsRequest>,
    ) -> ServiceResult<pb::ListStaffingHeadcountsResponse> {
        let request = request.into_inner();
        let (code, institution) = township_or_institution(&request.parent)?;
        let page = page_request(request.page_size, &request.page_token)?;
        let page = self.store().list_staffing_headcounts(&code, institution, &page).await?;
        Ok(Response::new(pb::ListStaffingHeadcountsResponse {
            next_page_token: next_token(&page),
            staffing_headcounts: page.items.into_iter().map(staffing_headcount_to_proto).collect(),
        }))
    }
}

/// Checks a headcount to set: every problem at once, each naming its field and the township.
fn prepare_headcount(request: pb::SetStaffingHeadcountRequest) -> Result<NewStaffingHeadcount, Status> {
    let (code, institution_id) = institution_parent(&request.parent)?;
    let mut violations = Vec::new();
    let staffing_type = staffing_type_from_proto(request.staffing_type);
    if staffing_type.is_none() {
        violations.push(FieldViolation::new("staffing_type", staffing_type_required(&code)));
    }
    if request.actual_headcount > MAX_STAFFING {
        violations.push(FieldViolation::new(
            "actual_headcount",
            format!(
                "township {code}: {} exceeds {MAX_STAFFING}, more staff than any township office has",
                request.actual_headcount
            ),
        ));
    }
    let (Some(staffing_type), true) = (staffing_type, violations.is_empty()) else {
        return Err(invalid_all(violations));
    };
    Ok(NewStaffingHeadcount { township: code, institution_id, staffing_type, actual: request.actual_headcount })
}

fn staffing_type_required(township: &TownshipCode) -> String {
    format!("township {township}: 编制类型 must be ADMINISTRATIVE (行政) or PUBLIC_INSTITUTION (事业)")
}

/// Checks a create request: every problem at once, each naming its field and the township.
fn prepare_staffing_approval(request: pb::CreateStaffingApprovalRequest) -> Result<NewStaffingApproval, Status> {
    let (code, institution_id) = institution_parent(&request.parent)?;
    let approval = request
        .staffing_approval
        .ok_or_else(|| invalid("staffing_approval", format!("township {code}: the approval is missing")))?;
    let mut violations = Vec::new();
    let field = |name: &str| format!("staffing_approval.{name}");
    check_text(&field("document_number"), &approval.document_number, MAX_NAME_TEXT_CHARS, &mut violations);
    if approval.approved_on.is_empty() {
        violations.push(FieldViolation::new(
            field("approved_on"),
            format!("township {code}: the approval date (批准时间, YYYY-MM-DD) is missing"),
        ));
    } else {
        check_date(&field("approved_on"), &Some(approval.approved_on.clone()), &mut violations);
    }
    let staffing_type = staffing_type_from_proto(approval.staffing_type);
    if staffing_type.is_none() {
        violations.push(FieldViolation::new(field("staffing_type"), staffing_type_required(&code)));
    }
    let funding_type = funding_type_from_proto(approval.funding_type);
    if funding_type.is_none() {
        violations.push(FieldViolation::new(
            field("funding_type"),
            format!("township {code}: 经费类型 must be FULL (全额拨款), PARTIAL (差额拨款) or SELF_FUNDED (自收自支)"),
        ));
    }
    if approval.change == 0 || approval.change.unsigned_abs() > MAX_STAFFING {
        violations.push(FieldViolation::new(
            field("change"),
            format!(
                "township {code}: a change of {} staff; an approval changes the figure by 1 to {MAX_STAFFING} \
                     (negative for a reduction)",
                approval.change
            ),
        ));
    }
    check_optional_text(&field("summary"), &approval.summary, 500, &mut violations);
    let (Some(staffing_type), Some(funding_type), true) = (staffing_type, funding_type, violations.is_empty()) else {
        return Err(invalid_all(violations));
    };
    let new = NewStaffingApproval {
        township: code,
        institution_id,
        document_number: approval.document_number,
        approved_on: approval.approved_on,
        staffing_type,
        funding_type,
        change: i64::from(approval.change),
        summary: approval.summary,
    };
    Ok(new)
}

/// A listing's parent: a township (all its institutions) or one institution.
fn township_or_institution(parent: &str) -> Result<(TownshipCode, Option<i64>), Status> {
    match names::parse_township(parent) {
        Ok(code) => Ok((code, None)),
        Err(_) => {
            let (code, id) = institution_parent(parent)?;
            Ok((code, Some(id)))
        }
    }
}

/// An institution's resource name as a request's `parent`.
fn institution_parent(parent: &str) -> Result<(TownshipCode, i64), Status> {
    match names::parse_child(parent, "institutions").map_err(name_error("parent"))? {
        (Scope::Township(code), id) => Ok((code, id)),
        _ => Err(invalid(
            "parent",
            format!("{} is not an institution's name ({{township}}/institutions/{{id}})", quoted(parent)),
        )),
    }
}
