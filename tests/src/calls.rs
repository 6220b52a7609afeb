//! What tests, benchmarks and `deploy-check` ask any registry, in-process or deployed: connect, import Hunan's
//! divisions, record sample indicators, wait until a cohort is classified, list across pages.

use std::{path::PathBuf, time::Duration};

use tonic::{metadata::AsciiMetadataValue, service::interceptor::InterceptedService, transport::Channel};
use township_proto::classifier::v1 as cpb;
use township_proto::registry::v1 as pb;
use township_proto::registry::v1::registry_service_client::RegistryServiceClient;

use crate::{MAX_MESSAGE_BYTES, PATIENCE};

pub type Client = RegistryServiceClient<InterceptedService<Channel, Bearer>>;

/// Presents a token (`authorization: Bearer …`) on every call of a client, or nothing.
#[derive(Debug, Clone, Default)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Bearer {
    pub fn new(token: &str) -> Self {
        let mut value: AsciiMetadataValue = format!("Bearer {token}").parse().expect("an ASCII token");
        value.set_sensitive(true);
        Self(Some(value))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A client of the registry at `url`, with the services' message limits.
pub async fn connect(url: &str) -> Client {
    connect_with(url, &township_runtime::tls::ClientTls::default()).await
}

/// [`connect`] to an `https://` registry, trusting and presenting what `tls` says.
pub async fn connect_with(url: &str, tls: &township_runtime::tls::ClientTls) -> Client {
    connect_presenting(url, tls, Bearer::default()).await
}

/// [`connect_with`], presenting `bearer` on every call.
pub async fn connect_presenting(url: &str, tls: &township_runtime::tls::ClientTls, bearer: Bearer) -> Client {
    let channel: Channel = tls.endpoint(url).expect("URL").connect().await.expect("connect to the registry");
    RegistryServiceClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// A request carrying the `x-actor` header.
pub fn as_actor<T>(actor: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("x-actor", actor.parse().expect("ASCII actor"));
    request
}

/// Hunan's division files, shipped in `fixtures/divisions/hunan/`.
pub fn hunan_divisions() -> (String, String, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/divisions/hunan");
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).expect("fixture present");
    (read("cities.csv"), read("areas.csv"), read("streets.csv"))
}

/// Imports Hunan's cities, counties and townships, restricted to `code_prefix` (e.g. "4301" for 长沙市).
pub async fn import(client: &mut Client, code_prefix: &str) -> pb::ImportDivisionsResponse {
    let (cities_csv, counties_csv, townships_csv) = hunan_divisions();
    client
        .import_divisions(as_actor(
            "importer",
            pb::ImportDivisionsRequest {
                cities_csv,
                counties_csv,
                townships_csv,
                code_prefix: code_prefix.to_owned(),
                validate_only: false,
            },
        ))
        .await
        .expect("import divisions")
        .into_inner()
}

/// Every township of a scope, across pages.
pub async fn all_townships(client: &mut Client, parent: &str) -> Vec<pb::Township> {
    let mut townships = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_townships(pb::ListTownshipsRequest { parent: parent.to_owned(), page_size: 100, page_token })
            .await
            .expect("list townships")
            .into_inner();
        townships.extend(page.townships);
        if page.next_page_token.is_empty() {
            return townships;
        }
        page_token = page.next_page_token;
    }
}

/// Records the seeded sample indicators ([`township_registry::sample`]) of every township given, in one batch.
pub async fn record_generated(client: &mut Client, townships: &[pb::Township], data_year: i32, seed: u64) {
    let observations = townships
        .iter()
        .map(|t| {
            let kind = cpb::TownshipKind::try_from(t.kind).unwrap_or(cpb::TownshipKind::Unspecified);
            pb::IndicatorObservation {
                township: t.name.clone(),
                data_year,
                values: Some(township_registry::sample::indicators(seed, &t.code, kind)),
                source: format!("generated (township_registry::sample), seed {seed}"),
                ..Default::default()
            }
        })
        .collect();
    client
        .batch_record_indicators(as_actor(
            "statistician",
            pb::BatchRecordIndicatorsRequest { observations, validate_only: false, ..Default::default() },
        ))
        .await
        .expect("record indicators");
}

/// Waits until the cohort's state is CURRENT (every change classified, the worker idle) and returns its status.
pub async fn wait_until_current(client: &mut Client, city: &str, data_year: i32) -> pb::CohortStatus {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = client
            .get_cohort_status(pb::GetCohortStatusRequest { city: city.to_owned(), data_year })
            .await
            .expect("cohort status")
            .into_inner();
        if status.state() == pb::CohortState::Current {
            return status;
        }
        assert!(tokio::time::Instant::now() < deadline, "cohort {city}/{data_year} did not become CURRENT: {status:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every township class of a scope, across pages.
pub async fn all_classes(client: &mut Client, parent: &str, data_year: i32) -> Vec<pb::TownshipClass> {
    let mut classes = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_township_classes(pb::ListTownshipClassesRequest {
                parent: parent.to_owned(),
                data_year,
                page_size: 100,
                page_token,
            })
            .await
            .expect("list classes")
            .into_inner();
        classes.extend(page.classes);
        if page.next_page_token.is_empty() {
            return classes;
        }
        page_token = page.next_page_token;
    }
}
