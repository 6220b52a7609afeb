//! The compliance report: every rule of the policy broken in a township, county or city.

use crate::domain::count_u32;
use tonic::{Request, Response, Status};
use township_proto::registry::v1 as pb;

use super::access::visible;
use super::convert::*;
use super::error::name_error;
use super::{RegistryApi, ServiceResult};
use crate::domain::names;
use crate::domain::rules;

impl RegistryApi {
    pub(super) async fn get_compliance_report(
        &self,
        request: Request<pb::GetComplianceReportRequest>,
    ) -> ServiceResult<pb::ComplianceReport> {
        let visible = visible(&request);
        let scope_name = request.into_inner().scope;
        let scope = names::parse_scope(&scope_name).map_err(name_error("scope"))?;
        let (policy, _) = self.outbox.effective_policy(&scope.city()).await?;
        let facts = self.store().visible_township_facts(&scope, &visible).await?;
        if facts.is_empty() {
            return Err(Status::not_found(format!("no townships in {scope_name}")));
        }
        // The city's departures from the policy document head the report, once, whatever its scope.
        let city_policy = self.store().latest_city_policy(&scope.city()).await?;
        let city_level = city_policy.and_then(|stored| {
            let departures = rules::city_policy_departures(&stored.policy);
            (!departures.is_empty()).then(|| {
                rules::city_deviation_finding(&names::city_name(&stored.city), &departures, &stored.document_number)
            })
        });
        let staffing = facts
            .iter()
            .filter_map(|facts| {
                rules::staffing_summary(&policy, facts).map(|summary| pb::TownshipStaffing {
                    township: names::township_name(&facts.township.code),
                    township_display_name: facts.township.name.clone(),
                    township_class: summary.class.map_or(0, u32::from),
                    approved_administrative: summary.approved[0],
                    approved_public_institution: summary.approved[1],
                    actual_administrative: summary.actual[0],
                    actual_public_institution: summary.actual[1],
                    administrative_norm: summary.norm[0],
                    public_institution_norm: summary.norm[1],
                })
            })
            .collect();
        let findings = city_level
            .into_iter()
            .chain(facts.iter().flat_map(|facts| rules::findings(&policy, facts)))
            .map(finding_to_proto)
            .collect();
        Ok(Response::new(pb::ComplianceReport {
            scope: scope.name(),
            townships: count_u32(facts.len()),
            findings,
            staffing,
        }))
    }
}
