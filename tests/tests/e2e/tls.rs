//! TLS as deployed (issue 12): the registry serves TLS and reaches the classifier over mutual TLS with its client
//! certificate; the classifier answers no one else. Real handshakes on loopback with the development PKI.

use std::time::Duration;

use township_e2e::{Backend, TestApp};
use township_proto::classifier::v1 as cpb;
use township_proto::classifier::v1::classifier_service_client::ClassifierServiceClient;
use township_runtime::tls::ClientTls;

const CHANGSHA: &str = "cities/4301";

/// A classifier call with `tls`: Ok when the handshake and the call succeed, else the error's text.
async fn get_default_policy(url: &str, tls: &ClientTls) -> Result<(), String> {
    let endpoint = tls.endpoint(url).map_err(|e| format!("{e:#}"))?.connect_timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|e| format!("connect: {e:?}"))?;
    ClassifierServiceClient::new(channel)
        .get_default_policy(cpb::GetDefaultPolicyRequest {})
        .await
        .map(|_| ())
        .map_err(|status| format!("{status:?}"))
}

async fn reclassifies_through_a_mutual_tls_classifier(backend: Backend) {
    let mut app = TestApp::spawn_tls(backend).await;
    assert!(app.registry_url().starts_with("https://"), "{}", app.registry_url());
    app.import("4301").await;
    let townships = app.townships(CHANGSHA).await;
    app.record_generated(&townships, 2023, 7).await;
    app.wait_until_current(CHANGSHA, 2023).await;
    let classes = app.classes(CHANGSHA, 2023).await;
    assert_eq!(classes.len(), townships.len(), "every township classified over mutual TLS");
    assert!(classes.iter().all(|c| (1..=3).contains(&c.effective_class)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_reclassifies_through_a_mutual_tls_classifier_on_sqlite() {
    reclassifies_through_a_mutual_tls_classifier(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_reclassifies_through_a_mutual_tls_classifier_on_postgres() {
    reclassifies_through_a_mutual_tls_classifier(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_classifier_answers_only_callers_with_a_certificate_of_its_ca() {
    let app = TestApp::spawn_tls(Backend::Sqlite).await;
    let pki = app.pki();
    let url = app.classifier_url();
    // The registry's certificate: answered.
    get_default_policy(&url, &pki.client(Some("registry-client"))).await.expect("the registry's certificate");
    // No certificate, a certificate from another CA, plaintext to the TLS port, a client trusting another CA.
    let refused = [
        ("no client certificate", url.clone(), pki.client(None)),
        ("a certificate of another CA", url.clone(), pki.stranger_client()),
        ("plaintext", url.replace("https://", "http://"), ClientTls::default()),
        ("a client trusting another CA", url.clone(), pki.trusting_the_stranger()),
    ];
    for (what, url, tls) in refused {
        let outcome = get_default_policy(&url, &tls).await;
        assert!(outcome.is_err(), "{what}: the classifier must refuse, got {outcome:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_speaks_tls_only() {
    let app = TestApp::spawn_tls(Backend::Sqlite).await;
    let mut client = app.connect().await;
    let cities = client.list_cities(township_proto::registry::v1::ListCitiesRequest::default()).await;
    assert!(cities.is_ok(), "over TLS: {cities:?}");
    // Plaintext to the TLS port: no answer.
    let plaintext = app.registry_url().replace("https://", "http://");
    let channel = tonic::transport::Endpoint::from_shared(plaintext).unwrap().connect().await;
    if let Ok(channel) = channel {
        let answer = township_proto::registry::v1::registry_service_client::RegistryServiceClient::new(channel)
            .list_cities(township_proto::registry::v1::ListCitiesRequest::default())
            .await;
        assert!(answer.is_err(), "a plaintext call to the TLS port must fail: {answer:?}");
    }
    // A client that trusts another CA refuses the registry's certificate.
    let stranger = app.pki().trusting_the_stranger();
    let endpoint = stranger.endpoint(&app.registry_url()).unwrap().connect_timeout(Duration::from_secs(5));
    assert!(endpoint.connect().await.is_err(), "the handshake fails against an untrusted server certificate");
    app.stop().await;
}

/// `sslmode` in a PostgreSQL URL is honoured: the registry's store opens over TLS, and the server sees the
/// connection encrypted (`pg_stat_ssl`). The local server's certificate is self-signed, so `require` (encrypt,
/// do not verify) is what can be tested here; `verify-full` with `sslrootcert` uses the same path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_reaches_postgresql_over_tls() {
    let database = township_e2e::TestDatabase::new(Backend::Postgres).await;
    let url = format!("{}{}sslmode=require", database.url(), if database.url().contains('?') { '&' } else { '?' });
    township_registry::store::open(&url).await.expect("the store opens over TLS");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect with sslmode=require");
    let encrypted: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .expect("pg_stat_ssl");
    assert!(encrypted, "the connection is encrypted");
    pool.close().await;
}
