//! Authorization (issue 12): every RPC of the registry, enumerated from the descriptor set, called by every kind
//! of caller on resources of its own county, another county, its own city and another city — over TLS with
//! JWTs, on both backends. The expected code comes from this file's own reading of the roles (`allowed`), not
//! from the registry's table: a row missing here, or a decision that differs, fails the test.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use prost::Message;
use tonic::{Code, Request, Status, codegen::http};
use township_e2e::{Backend, TestClassifier, TestDatabase, TestPki, TestRegistry};

use crate::python_interop::RawCodec;
use township_proto::registry::v1 as pb;
use township_runtime::auth::jwt::{Authenticator, JwtConfig, PinnedAlgorithm};

const ISSUER: &str = "https://bianban.changsha.gov.cn";
const AUDIENCE: &str = "township-registry";

/// What a call does, in the issue's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Reads one resource: viewer, county editor, city administrator, within their jurisdiction.
    Read,
    /// Reads what lies under the target (lists, watches, reports, the city's policy and years): the same roles,
    /// allowed when the jurisdiction overlaps the target.
    List,
    /// Changes townships, indicators, institutions, plaques, posts, staffing, catalogues: county editor, city
    /// administrator.
    Edit,
    /// Policies, overrides, adoptions, deviations, divisions: the city administrator.
    Administer,
    /// The audit log: the auditor only.
    Audit,
}

/// The level of the division a request names.
#[derive(Debug, Clone, Copy)]
enum Level {
    Township,
    County,
    City,
    Country,
}

struct Row {
    method: &'static str,
    kind: Kind,
    level: Level,
    /// The request, naming a resource of the division with this code.
    request: fn(&str) -> Vec<u8>,
}

fn city(code: &str) -> String {
    format!("cities/{code}")
}

fn county(code: &str) -> String {
    format!("cities/{}/counties/{code}", &code[..4])
}

fn township(code: &str) -> String {
    format!("cities/{}/counties/{}/townships/{code}", &code[..4], &code[..6])
}

fn institution(code: &str) -> String {
    format!("{}/institutions/999999", township(code))
}

fn bytes(message: impl Message) -> Vec<u8> {
    message.encode_to_vec()
}

macro_rules! rows {
    ($($method:literal: $kind:ident $level:ident |$c:ident| $request:expr;)*) => {
        vec![$(Row { method: $method, kind: Kind::$kind, level: Level::$level, request: |$c: &str| bytes($request) },)*]
    };
}

fn rows() -> Vec<Row> {
    use pb::*;
    rows! {
        "GetCity": Read City |c| GetCityRequest { name: city(c) };
        "ListCities": List Country |_c| ListCitiesRequest::default();
        "GetCounty": Read County |c| GetCountyRequest { name: county(c) };
        "ListCounties": List City |c| ListCountiesRequest { parent: city(c), ..Default::default() };
        "GetTownship": Read Township |c| GetTownshipRequest { name: township(c) };
        "ListTownships": List City |c| ListTownshipsRequest { parent: city(c), ..Default::default() };
        "CreateTownship": Edit County |c| CreateTownshipRequest { parent: county(c), ..Default::default() };
        "UpdateTownship": Edit Township |c| UpdateTownshipRequest {
            township: Some(Township { name: township(c), ..Default::default() }),
            ..Default::default()
        };
        "ImportDivisions": Administer City |c| ImportDivisionsRequest {
            code_prefix: c.to_owned(), validate_only: true, ..Default::default()
        };
        "RecordIndicators": Edit Township |c| RecordIndicatorsRequest {
            observation: Some(IndicatorObservation { township: township(c), ..Default::default() }),
            ..Default::default()
        };
        "BatchRecordIndicators": Edit Township |c| BatchRecordIndicatorsRequest {
            observations: vec![IndicatorObservation { township: township(c), ..Default::default() }],
            validate_only: true,
            ..Default::default()
        };
        "ListIndicatorObservations": Read Township |c| ListIndicatorObservationsRequest {
            parent: township(c), ..Default::default()
        };
        "SetCityPolicy": Administer City |c| SetCityPolicyRequest { parent: city(c), ..Default::default() };
        "GetEffectivePolicy": List City |c| GetEffectivePolicyRequest { parent: city(c) };
        "ListCityPolicies": List City |c| ListCityPoliciesRequest { parent: city(c), ..Default::default() };
        "GetTownshipClass": Read Township |c| GetTownshipClassRequest { township: township(c), ..Default::default() };
        "ListTownshipClasses": List City |c| ListTownshipClassesRequest { parent: city(c), ..Default::default() };
        "ListClassHistory": Read Township |c| ListClassHistoryRequest { township: township(c), ..Default::default() };
        "GetCohortStatus": List City |c| GetCohortStatusRequest { city: city(c), ..Default::default() };
        "GetClassificationRun": Read City |c| GetClassificationRunRequest {
            name: format!("{}/classificationRuns/999999", city(c))
        };
        "ListClassificationRuns": Read City |c| ListClassificationRunsRequest {
            parent: city(c), ..Default::default()
        };
        "SetClassOverride": Administer Township |c| SetClassOverrideRequest {
            township: township(c), ..Default::default()
        };
        "ClearClassOverride": Administer Township |c| ClearClassOverrideRequest {
            township: township(c), ..Default::default()
        };
        "PreviewClassification": Read City |c| PreviewClassificationRequest { city: city(c), ..Default::default() };
        "WatchClassChanges": List City |c| WatchClassChangesRequest { city: city(c) };
        "AdoptDataYear": Administer City |c| AdoptDataYearRequest { parent: city(c), ..Default::default() };
        "ListDataYears": List City |c| ListDataYearsRequest { parent: city(c), ..Default::default() };
        "CreateInstitution": Edit Township |c| CreateInstitutionRequest { parent: township(c), ..Default::default() };
        "BatchCreateInstitutions": Edit Township |c| BatchCreateInstitutionsRequest {
            requests: vec![CreateInstitutionRequest { parent: township(c), ..Default::default() }],
            validate_only: true,
            ..Default::default()
        };
        "GetInstitution": Read Township |c| GetInstitutionRequest { name: institution(c) };
        "ListInstitutions": Read Township |c| ListInstitutionsRequest { parent: township(c), ..Default::default() };
        "UpdateInstitution": Edit Township |c| UpdateInstitutionRequest {
            institution: Some(Institution { name: institution(c), ..Default::default() }),
            ..Default::default()
        };
        "DeleteInstitution": Edit Township |c| DeleteInstitutionRequest { name: institution(c) };
        "CreatePlaque": Edit Township |c| CreatePlaqueRequest { parent: institution(c), ..Default::default() };
        "GetPlaque": Read Township |c| GetPlaqueRequest { name: format!("{}/plaques/1", institution(c)) };
        "ListPlaques": Read Township |c| ListPlaquesRequest { parent: institution(c), ..Default::default() };
        "UpdatePlaque": Edit Township |c| UpdatePlaqueRequest {
            plaque: Some(Plaque { name: format!("{}/plaques/1", institution(c)), ..Default::default() }),
            ..Default::default()
        };
        "DeletePlaque": Edit Township |c| DeletePlaqueRequest { name: format!("{}/plaques/1", institution(c)) };
        "CreateLeadershipPost": Edit Township |c| CreateLeadershipPostRequest {
            parent: township(c), ..Default::default()
        };
        "BatchCreateLeadershipPosts": Edit Township |c| BatchCreateLeadershipPostsRequest {
            requests: vec![CreateLeadershipPostRequest { parent: township(c), ..Default::default() }],
            validate_only: true,
            ..Default::default()
        };
        "GetLeadershipPost": Read Township |c| GetLeadershipPostRequest {
            name: format!("{}/posts/999999", township(c))
        };
        "ListLeadershipPosts": Read Township |c| ListLeadershipPostsRequest {
            parent: township(c), ..Default::default()
        };
        "UpdateLeadershipPost": Edit Township |c| UpdateLeadershipPostRequest {
            post: Some(LeadershipPost { name: format!("{}/posts/999999", township(c)), ..Default::default() }),
            ..Default::default()
        };
        "DeleteLeadershipPost": Edit Township |c| DeleteLeadershipPostRequest {
            name: format!("{}/posts/999999", township(c))
        };
        "CreateStaffingApproval": Edit Township |c| CreateStaffingApprovalRequest {
            parent: institution(c), ..Default::default()
        };
        "BatchCreateStaffingApprovals": Edit Township |c| BatchCreateStaffingApprovalsRequest {
            requests: vec![CreateStaffingApprovalRequest { parent: institution(c), ..Default::default() }],
            validate_only: true,
            ..Default::default()
        };
        "ListStaffingApprovals": Read Township |c| ListStaffingApprovalsRequest {
            parent: institution(c), ..Default::default()
        };
        "SetStaffingHeadcount": Edit Township |c| SetStaffingHeadcountRequest {
            parent: institution(c), ..Default::default()
        };
        "BatchSetStaffingHeadcounts": Edit Township |c| BatchSetStaffingHeadcountsRequest {
            requests: vec![SetStaffingHeadcountRequest { parent: institution(c), ..Default::default() }],
            validate_only: true,
        };
        "ListStaffingHeadcounts": Read Township |c| ListStaffingHeadcountsRequest {
            parent: institution(c), ..Default::default()
        };
        "CreateCatalogueItem": Edit County |c| CreateCatalogueItemRequest { parent: county(c), ..Default::default() };
        "BatchCreateCatalogueItems": Edit County |c| BatchCreateCatalogueItemsRequest {
            requests: vec![CreateCatalogueItemRequest { parent: county(c), ..Default::default() }],
            validate_only: true,
            ..Default::default()
        };
        "GetCatalogueItem": Read County |c| GetCatalogueItemRequest {
            name: format!("{}/catalogueItems/X1", county(c))
        };
        "ListCatalogueItems": Read County |c| ListCatalogueItemsRequest { parent: county(c), ..Default::default() };
        "UpdateCatalogueItem": Edit County |c| UpdateCatalogueItemRequest {
            catalogue_item: Some(CatalogueItem {
                name: format!("{}/catalogueItems/X1", county(c)), ..Default::default()
            }),
            ..Default::default()
        };
        "DeleteCatalogueItem": Edit County |c| DeleteCatalogueItemRequest {
            name: format!("{}/catalogueItems/X1", county(c))
        };
        "CreateApprovedDeviation": Administer County |c| CreateApprovedDeviationRequest {
            parent: county(c), ..Default::default()
        };
        "GetApprovedDeviation": Read County |c| GetApprovedDeviationRequest {
            name: format!("{}/approvedDeviations/999999", county(c))
        };
        "ListApprovedDeviations": Read County |c| ListApprovedDeviationsRequest {
            parent: county(c), ..Default::default()
        };
        "RevokeApprovedDeviation": Administer County |c| RevokeApprovedDeviationRequest {
            name: format!("{}/approvedDeviations/999999", county(c)), ..Default::default()
        };
        "GetComplianceReport": List City |c| GetComplianceReportRequest { scope: city(c) };
        "ListAuditEvents": Audit City |c| ListAuditEventsRequest { resource_prefix: city(c), ..Default::default() };
    }
}

/// A caller: its token's roles and jurisdiction; no roles at all is the anonymous caller (no token).
struct Caller {
    label: &'static str,
    roles: &'static [&'static str],
    jurisdiction: &'static [&'static str],
}

/// Each role once at city level and, where it acts for counties, at county level too, so that every pair of
/// kinds differs for some caller.
const CALLERS: [Caller; 9] = [
    Caller { label: "anonymous", roles: &[], jurisdiction: &[] },
    Caller { label: "city administrator of 4301", roles: &["city_admin"], jurisdiction: &["4301"] },
    Caller { label: "county editor of 430181", roles: &["county_editor"], jurisdiction: &["430181"] },
    Caller { label: "county editor of 430102", roles: &["county_editor"], jurisdiction: &["430102"] },
    Caller { label: "viewer of 430181", roles: &["viewer"], jurisdiction: &["430181"] },
    Caller { label: "viewer of 4301", roles: &["viewer"], jurisdiction: &["4301"] },
    Caller { label: "county editor of all 4301", roles: &["county_editor"], jurisdiction: &["4301"] },
    Caller { label: "auditor of 4301", roles: &["auditor"], jurisdiction: &["4301"] },
    Caller { label: "service", roles: &["service"], jurisdiction: &["*"] },
];

fn caller(label: &str) -> &'static Caller {
    CALLERS.iter().find(|caller| caller.label == label).expect("a caller of the table")
}

/// The codes a row is called on: own county (430181) and another county (430102) of city 4301 for township and
/// county resources; the city and another city for city resources.
fn targets(level: Level) -> &'static [&'static str] {
    match level {
        Level::Township => &["430181100", "430102100"],
        Level::County => &["430181", "430102"],
        Level::City => &["4301", "4302"],
        Level::Country => &[""],
    }
}

/// The issue's reading of the roles.
fn allowed(caller: &Caller, kind: Kind, code: &str) -> bool {
    let roles: &[&str] = match kind {
        Kind::Read | Kind::List => &["city_admin", "county_editor", "viewer"],
        Kind::Edit => &["city_admin", "county_editor"],
        Kind::Administer => &["city_admin"],
        Kind::Audit => &["auditor"],
    };
    let entitled = caller.roles.iter().any(|role| roles.contains(role));
    let covers = caller.jurisdiction.iter().any(|j| *j == "*" || code.starts_with(j));
    let overlaps = caller.jurisdiction.iter().any(|j| *j != "*" && j.starts_with(code));
    entitled && (covers || (matches!(kind, Kind::List | Kind::Audit) && overlaps))
}

struct Tokens {
    _dir: tempfile::TempDir,
    private_pem: Vec<u8>,
    config: JwtConfig,
}

impl Tokens {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("k1.key");
        let public = township_registry::audit::generate_key_pair(&private).expect("a key pair");
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        std::fs::rename(public, dir.path().join("keys/k1.pem")).unwrap();
        let config = JwtConfig {
            keys_dir: dir.path().join("keys"),
            algorithm: PinnedAlgorithm::EdDsa,
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
        };
        Self { private_pem: std::fs::read(&private).unwrap(), _dir: dir, config }
    }

    fn token(&self, caller: &Caller) -> Option<String> {
        if caller.roles.is_empty() {
            return None;
        }
        let claims = serde_json::json!({
            "sub": caller.label, "iss": ISSUER, "aud": AUDIENCE,
            "exp": township_runtime::now_ms() / 1000 + 600,
            "roles": caller.roles, "jurisdiction": caller.jurisdiction,
        });
        let header = Header { kid: Some("k1".into()), ..Header::new(Algorithm::EdDSA) };
        Some(jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_pem(&self.private_pem).unwrap()).unwrap())
    }
}

struct Secured {
    registry: TestRegistry,
    channel: tonic::transport::Channel,
    tokens: Tokens,
    _classifier: TestClassifier,
    _database: TestDatabase,
    _pki: TestPki,
}

async fn spawn(backend: Backend) -> Secured {
    let pki = TestPki::new();
    let tokens = Tokens::new();
    let authenticator = Authenticator::new(Some(tokens.config.clone()), false, Duration::from_secs(5)).unwrap();
    let database = TestDatabase::new(backend).await;
    let classifier = TestClassifier::spawn().await;
    let registry = TestRegistry::spawn_tls_authenticated(database.url(), &classifier.url(), &pki, authenticator).await;
    let tls = pki.client(None);
    let channel = tls.endpoint(&registry.url()).unwrap().connect().await.expect("TLS connection");
    Secured { channel, registry, tokens, _classifier: classifier, _database: database, _pki: pki }
}

/// Calls `method` with the encoded request over the TLS channel; a streaming method's status is that of
/// its response headers.
async fn call(app: &Secured, method: &str, streaming: bool, body: Vec<u8>, token: Option<&str>) -> Status {
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.expect("ready");
    let mut request = Request::new(body);
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let path = http::uri::PathAndQuery::try_from(format!("/township.registry.v1.RegistryService/{method}")).unwrap();
    let outcome = if streaming {
        grpc.server_streaming(request, path, RawCodec).await.map(|_| ())
    } else {
        grpc.unary(request, path, RawCodec).await.map(|_| ())
    };
    outcome.err().unwrap_or_else(|| Status::ok(""))
}

/// The registry's methods as its descriptor set lists them, with whether each streams its answer.
fn descriptor_methods() -> Vec<(String, bool)> {
    let set = prost_types::FileDescriptorSet::decode(township_proto::FILE_DESCRIPTOR_SET).unwrap();
    set.file
        .iter()
        .filter(|file| file.package() == "township.registry.v1")
        .flat_map(|file| file.service.iter())
        .filter(|service| service.name() == "RegistryService")
        .flat_map(|service| service.method.iter())
        .map(|method| (method.name().to_owned(), method.server_streaming()))
        .collect()
}

async fn every_rpc_answers_every_caller_as_the_roles_say(backend: Backend) {
    let app = spawn(backend).await;
    let rows = rows();
    let methods = descriptor_methods();
    let missing: Vec<&str> = methods
        .iter()
        .filter(|(name, _)| !rows.iter().any(|row| row.method == name))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(missing.is_empty(), "RPCs without a row in the authorization matrix: {missing:?}");
    assert_eq!(rows.len(), methods.len(), "a row names an RPC the descriptor set does not list");

    let mut wrong = Vec::new();
    let mut calls = 0;
    for caller in &CALLERS {
        let token = app.tokens.token(caller);
        for row in &rows {
            let streaming = methods.iter().any(|(name, streams)| name == row.method && *streams);
            for code in targets(row.level) {
                let status = call(&app, row.method, streaming, (row.request)(code), token.as_deref()).await;
                calls += 1;
                let expected = if token.is_none() {
                    Some(Code::Unauthenticated)
                } else if allowed(caller, row.kind, code) {
                    None
                } else {
                    Some(Code::PermissionDenied)
                };
                let fine = match expected {
                    Some(code) => status.code() == code,
                    None => !matches!(status.code(), Code::PermissionDenied | Code::Unauthenticated),
                };
                if !fine {
                    let want = expected.map_or_else(|| "allowed".to_owned(), |code| format!("{code:?}"));
                    wrong.push(format!(
                        "{} on {code:?} by {}: expected {want}, got {:?} {}",
                        row.method,
                        caller.label,
                        status.code(),
                        status.message()
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {calls} calls answered wrongly:\n{}", wrong.len(), wrong.join("\n"));
    app.registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_every_caller_as_the_roles_say_on_sqlite() {
    every_rpc_answers_every_caller_as_the_roles_say(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_every_caller_as_the_roles_say_on_postgres() {
    every_rpc_answers_every_caller_as_the_roles_say(Backend::Postgres).await;
}

/// AIP-211: a refusal reads the same whether the resource exists or not, so it tells an outsider nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_does_not_reveal_whether_the_resource_exists() {
    let app = spawn(Backend::Sqlite).await;
    let admin = app.tokens.token(caller("city administrator of 4301")).unwrap();
    let outsider = app.tokens.token(caller("county editor of 430102")).unwrap();
    let (cities_csv, counties_csv, townships_csv) = township_e2e::calls::hunan_divisions();
    let import = pb::ImportDivisionsRequest {
        cities_csv,
        counties_csv,
        townships_csv,
        code_prefix: "4301".into(),
        validate_only: false,
    };
    let status = call(&app, "ImportDivisions", false, bytes(import), Some(&admin)).await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");
    let ask = |code: &str| bytes(pb::GetTownshipRequest { name: township(code) });
    let existing = call(&app, "GetTownship", false, ask("430181102"), Some(&outsider)).await;
    let invented = call(&app, "GetTownship", false, ask("430181199"), Some(&outsider)).await;
    assert_eq!((existing.code(), invented.code()), (Code::PermissionDenied, Code::PermissionDenied));
    assert_eq!(
        existing.message().replace("430181102", "#"),
        invented.message().replace("430181199", "#"),
        "the two refusals differ only in the name asked for"
    );
    let admin_sees = call(&app, "GetTownship", false, ask("430181102"), Some(&admin)).await;
    assert_eq!(admin_sees.code(), Code::Ok, "the township exists: {admin_sees:?}");
    app.registry.stop().await;
}

/// A batch with no items names no division, but still needs a role that may write: the auditor is refused,
/// a county editor's empty batch is answered (creating nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_batch_still_needs_a_role_that_writes() {
    let app = spawn(Backend::Sqlite).await;
    let empty = || bytes(pb::BatchCreateInstitutionsRequest::default());
    let auditor = app.tokens.token(caller("auditor of 4301")).unwrap();
    let editor = app.tokens.token(caller("county editor of 430181")).unwrap();
    assert_eq!(
        call(&app, "BatchCreateInstitutions", false, empty(), Some(&auditor)).await.code(),
        Code::PermissionDenied
    );
    assert_eq!(call(&app, "BatchCreateInstitutions", false, empty(), Some(&editor)).await.code(), Code::Ok);
    let observations = bytes(pb::BatchRecordIndicatorsRequest::default());
    assert_eq!(
        call(&app, "BatchRecordIndicators", false, observations, Some(&auditor)).await.code(),
        Code::PermissionDenied
    );
    app.registry.stop().await;
}

/// A list above the caller's jurisdiction shows only what it covers, filtered in the query: a county viewer
/// listing its city's townships and classes, the cities, the compliance report and the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_above_the_jurisdiction_show_only_the_jurisdiction() {
    let app = spawn(Backend::Sqlite).await;
    let (cities_csv, counties_csv, townships_csv) = township_e2e::calls::hunan_divisions();
    let import = pb::ImportDivisionsRequest {
        cities_csv,
        counties_csv,
        townships_csv,
        code_prefix: "43".into(),
        validate_only: false,
    };
    let admin_of_43 = Caller { label: "city administrator of 43", roles: &["city_admin"], jurisdiction: &["43"] };
    let province_admin = app.tokens.token(&admin_of_43).unwrap();
    let status = call(&app, "ImportDivisions", false, bytes(import), Some(&province_admin)).await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");

    let viewer = app.tokens.token(caller("viewer of 430181")).unwrap();
    let mut client = app.registry.client().await;
    let cities = client.list_cities(with(pb::ListCitiesRequest::default(), &viewer)).await.unwrap().into_inner();
    let names: Vec<String> = cities.cities.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, ["cities/4301"], "the viewer's city only");
    let parent = city("4301");
    let townships = client
        .list_townships(with(pb::ListTownshipsRequest { parent: parent.clone(), ..Default::default() }, &viewer))
        .await
        .unwrap()
        .into_inner();
    assert!(!townships.townships.is_empty());
    assert!(
        townships.townships.iter().all(|t| t.name.starts_with(&county("430181"))),
        "浏阳市's townships only: {:?}",
        townships.townships.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    let counties = client
        .list_counties(with(pb::ListCountiesRequest { parent: parent.clone(), ..Default::default() }, &viewer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(counties.counties.len(), 1, "{counties:?}");

    let auditor_of_430181 = Caller { label: "auditor of 430181", roles: &["auditor"], jurisdiction: &["430181"] };
    let auditor = app.tokens.token(&auditor_of_430181).unwrap();
    let events = audit_events(&mut client, String::new(), &auditor).await;
    assert!(!events.is_empty(), "the import wrote events under 430181");
    assert!(
        events.iter().all(|e| e.resource.starts_with("cities/4301/counties/430181")),
        "{:?}",
        events.iter().map(|e| &e.resource).collect::<Vec<_>>()
    );
    app.registry.stop().await;
}

/// 等保 2.0 8.1.4.3: a refused call is in the audit log with its time, the caller, the event and the outcome:
/// a denial with the principal, an unauthenticated call with the caller's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_call_is_recorded_in_the_audit_log() {
    let app = spawn(Backend::Sqlite).await;
    let outsider = app.tokens.token(caller("county editor of 430102")).unwrap();
    let name = township("430181102");
    let create = bytes(pb::CreateInstitutionRequest { parent: name.clone(), ..Default::default() });
    let status = call(&app, "CreateInstitution", false, create, Some(&outsider)).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let auditor = app.tokens.token(caller("auditor of 4301")).unwrap();
    let mut client = app.registry.client().await;
    let events = audit_events(&mut client, name.clone(), &auditor).await;
    let refusal = events.iter().find(|e| e.action == "Refused CreateInstitution").expect("the refusal is logged");
    assert_eq!(refusal.resource, name);
    assert!(refusal.actor.starts_with("county editor of 430102 [county_editor] (token, kid k1)"), "{refusal:?}");
    assert!(refusal.after_json.starts_with("PERMISSION_DENIED: permission denied: changing"), "{refusal:?}");
    assert!(refusal.event_time.is_some());

    // A write that fails is recorded with its outcome.
    let admin = app.tokens.token(caller("city administrator of 4301")).unwrap();
    let bad = bytes(pb::CreateInstitutionRequest { parent: name.clone(), ..Default::default() });
    assert_eq!(call(&app, "CreateInstitution", false, bad, Some(&admin)).await.code(), Code::InvalidArgument);
    let events = audit_events(&mut client, name.clone(), &auditor).await;
    let failure = events.iter().find(|e| e.action == "Failed CreateInstitution").expect("the failure is logged");
    assert!(failure.actor.starts_with("city administrator of 4301 [city_admin]"), "{failure:?}");
    assert!(failure.after_json.starts_with("INVALID_ARGUMENT: "), "{failure:?}");

    // A call without credentials is refused by the authentication layer, and recorded before it is answered.
    let get = bytes(pb::GetCityRequest { name: city("4301") });
    assert_eq!(call(&app, "GetCity", false, get, None).await.code(), Code::Unauthenticated);
    let national = Caller { label: "national auditor", roles: &["auditor"], jurisdiction: &["*"] };
    let events = audit_events(&mut client, String::new(), &app.tokens.token(&national).unwrap()).await;
    let anonymous = events.iter().find(|e| e.action == "Unauthenticated GetCity").expect("the refusal is logged");
    assert!(anonymous.actor.starts_with("unauthenticated (127.0.0.1:"), "{anonymous:?}");
    assert!(anonymous.after_json.starts_with("UNAUTHENTICATED: "), "{anonymous:?}");
    app.registry.stop().await;
}

/// The audit events under `resource_prefix` that `token`'s holder may read, newest first.
async fn audit_events(client: &mut township_e2e::Client, resource_prefix: String, token: &str) -> Vec<pb::AuditEvent> {
    let request = pb::ListAuditEventsRequest { resource_prefix, ..Default::default() };
    client.list_audit_events(with(request, token)).await.unwrap().into_inner().events
}

fn with<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}
