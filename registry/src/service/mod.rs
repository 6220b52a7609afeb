//! The gRPC adapter of `township.registry.v1`: one handler file per resource, each handler parsing its request,
//! calling the store or the registry's rules, and converting the answer. Errors become statuses in [`error`], so
//! handlers use `?`.

mod access;
mod audit;
mod catalogue;
mod classes;
mod compliance;
pub mod convert;
mod deviations;
mod error;
mod hierarchy;
mod idempotency;
mod indicators;
mod institutions;
mod policies;
mod posts;
mod request;
mod staffing;
mod years;

use std::{pin::Pin, time::Duration};

use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use township_proto::registry::v1 as pb;

use crate::classification::Classifier;
use crate::domain::names::TownshipCode;
use crate::limits::TownshipLimits;
use crate::outbox::Outbox;

/// Fully-qualified name of the service, as health checks name it.
pub const SERVICE_NAME: &str = "township.registry.v1.RegistryService";

type ServiceResult<T> = Result<Response<T>, Status>;

type ChangeStream = Pin<Box<dyn Stream<Item = Result<pb::WatchClassChangesResponse, Status>> + Send + 'static>>;

/// The registry's gRPC handlers.
#[derive(Debug, Clone)]
pub struct RegistryApi {
    outbox: Outbox,
    classifier: Classifier,
    /// Deadline of the classifier call a preview makes.
    preview_deadline: Duration,
}

impl RegistryApi {
    pub fn new(outbox: Outbox, classifier: Classifier, preview_deadline: Duration) -> Self {
        Self { outbox, classifier, preview_deadline }
    }

    pub fn into_server(self, max_message_bytes: usize) -> pb::registry_service_server::RegistryServiceServer<Self> {
        pb::registry_service_server::RegistryServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }

    fn store(&self) -> &dyn crate::store::Store {
        self.outbox.store.as_ref()
    }

    /// What the policy allows the township now (its class in force and that class's limits).
    async fn limits_now(&self, township: &TownshipCode) -> Result<TownshipLimits, Status> {
        Ok(TownshipLimits::now(self.store(), &self.outbox.default_policy, township).await?)
    }
}

/// Implements the generated service trait by delegating each RPC to the handler of the same name in its
/// resource's file, once the caller is authorized for it (`access.rs`: what each request type needs): this
/// table is the index of the API.
macro_rules! delegate_to_handlers {
    ($($method:ident($request:ident) -> $response:ty;)*) => {
        #[tonic::async_trait]
        impl pb::registry_service_server::RegistryService for RegistryApi {
            type WatchClassChangesStream = ChangeStream;
            $(
                async fn $method(&self, mut request: Request<pb::$request>) -> ServiceResult<$response> {
                    let method = stringify!($request).trim_end_matches("Request");
                    let authorized = match access::authorize(&request) {
                        Ok(authorized) => authorized,
                        Err(refused) => return Err(self.refuse(&request, method, refused).await),
                    };
                    request.extensions_mut().insert(authorized.visible);
                    let writer = authorized.written.map(|resource| (request::actor(&request), resource));
                    let answer = RegistryApi::$method(self, request).await;
                    let failed = answer.as_ref().err().map(|status| (status.code(), status.message().to_owned()));
                    if let (Some(failure), Some((actor, resource))) = (failed, writer) {
                        self.record_failure(&actor, method, &resource, failure).await;
                    }
                    answer
                }
            )*
        }
    };
}

delegate_to_handlers! {
    // hierarchy
    get_city(GetCityRequest) -> pb::City;
    list_cities(ListCitiesRequest) -> pb::ListCitiesResponse;
    get_county(GetCountyRequest) -> pb::County;
    list_counties(ListCountiesRequest) -> pb::ListCountiesResponse;
    get_township(GetTownshipRequest) -> pb::Township;
    list_townships(ListTownshipsRequest) -> pb::ListTownshipsResponse;
    create_township(CreateTownshipRequest) -> pb::Township;
    update_township(UpdateTownshipRequest) -> pb::Township;
    import_divisions(ImportDivisionsRequest) -> pb::ImportDivisionsResponse;
    // indicators
    record_indicators(RecordIndicatorsRequest) -> pb::IndicatorObservation;
    batch_record_indicators(BatchRecordIndicatorsRequest) -> pb::BatchRecordIndicatorsResponse;
    list_indicator_observations(ListIndicatorObservationsRequest) -> pb::ListIndicatorObservationsResponse;
    // policies
    set_city_policy(SetCityPolicyRequest) -> pb::CityPolicy;
    get_effective_policy(GetEffectivePolicyRequest) -> pb::CityPolicy;
    list_city_policies(ListCityPoliciesRequest) -> pb::ListCityPoliciesResponse;
    // classes
    get_township_class(GetTownshipClassRequest) -> pb::TownshipClass;
    list_township_classes(ListTownshipClassesRequest) -> pb::ListTownshipClassesResponse;
    list_class_history(ListClassHistoryRequest) -> pb::ListClassHistoryResponse;
    get_cohort_status(GetCohortStatusRequest) -> pb::CohortStatus;
    get_classification_run(GetClassificationRunRequest) -> pb::ClassificationRun;
    list_classification_runs(ListClassificationRunsRequest) -> pb::ListClassificationRunsResponse;
    set_class_override(SetClassOverrideRequest) -> pb::TownshipClass;
    clear_class_override(ClearClassOverrideRequest) -> pb::TownshipClass;
    preview_classification(PreviewClassificationRequest) -> pb::PreviewClassificationResponse;
    watch_class_changes(WatchClassChangesRequest) -> ChangeStream;
    // years
    adopt_data_year(AdoptDataYearRequest) -> pb::DataYearAdoption;
    list_data_years(ListDataYearsRequest) -> pb::ListDataYearsResponse;
    // institutions
    create_institution(CreateInstitutionRequest) -> pb::Institution;
    batch_create_institutions(BatchCreateInstitutionsRequest) -> pb::BatchCreateInstitutionsResponse;
    get_institution(GetInstitutionRequest) -> pb::Institution;
    list_institutions(ListInstitutionsRequest) -> pb::ListInstitutionsResponse;
    update_institution(UpdateInstitutionRequest) -> pb::Institution;
    delete_institution(DeleteInstitutionRequest) -> pb::DeleteInstitutionResponse;
    create_plaque(CreatePlaqueRequest) -> pb::Plaque;
    get_plaque(GetPlaqueRequest) -> pb::Plaque;
    list_plaques(ListPlaquesRequest) -> pb::ListPlaquesResponse;
    update_plaque(UpdatePlaqueRequest) -> pb::Plaque;
    delete_plaque(DeletePlaqueRequest) -> pb::DeletePlaqueResponse;
    // posts
    create_leadership_post(CreateLeadershipPostRequest) -> pb::LeadershipPost;
    batch_create_leadership_posts(BatchCreateLeadershipPostsRequest) -> pb::BatchCreateLeadershipPostsResponse;
    get_leadership_post(GetLeadershipPostRequest) -> pb::LeadershipPost;
    list_leadership_posts(ListLeadershipPostsRequest) -> pb::ListLeadershipPostsResponse;
    update_leadership_post(UpdateLeadershipPostRequest) -> pb::LeadershipPost;
    delete_leadership_post(DeleteLeadershipPostRequest) -> pb::DeleteLeadershipPostResponse;
    // staffing
    create_staffing_approval(CreateStaffingApprovalRequest) -> pb::StaffingApproval;
    batch_create_staffing_approvals(BatchCreateStaffingApprovalsRequest) -> pb::BatchCreateStaffingApprovalsResponse;
    list_staffing_approvals(ListStaffingApprovalsRequest) -> pb::ListStaffingApprovalsResponse;
    set_staffing_headcount(SetStaffingHeadcountRequest) -> pb::StaffingHeadcount;
    batch_set_staffing_headcounts(BatchSetStaffingHeadcountsRequest) -> pb::BatchSetStaffingHeadcountsResponse;
    list_staffing_headcounts(ListStaffingHeadcountsRequest) -> pb::ListStaffingHeadcountsResponse;
    // catalogue
    create_catalogue_item(CreateCatalogueItemRequest) -> pb::CatalogueItem;
    batch_create_catalogue_items(BatchCreateCatalogueItemsRequest) -> pb::BatchCreateCatalogueItemsResponse;
    get_catalogue_item(GetCatalogueItemRequest) -> pb::CatalogueItem;
    list_catalogue_items(ListCatalogueItemsRequest) -> pb::ListCatalogueItemsResponse;
    update_catalogue_item(UpdateCatalogueItemRequest) -> pb::CatalogueItem;
    delete_catalogue_item(DeleteCatalogueItemRequest) -> pb::DeleteCatalogueItemResponse;
    // approved deviations
    create_approved_deviation(CreateApprovedDeviationRequest) -> pb::ApprovedDeviation;
    get_approved_deviation(GetApprovedDeviationRequest) -> pb::ApprovedDeviation;
    list_approved_deviations(ListApprovedDeviationsRequest) -> pb::ListApprovedDeviationsResponse;
    revoke_approved_deviation(RevokeApprovedDeviationRequest) -> pb::ApprovedDeviation;
    // compliance
    get_compliance_report(GetComplianceReportRequest) -> pb::ComplianceReport;
    // audit
    list_audit_events(ListAuditEventsRequest) -> pb::ListAuditEventsResponse;
}
