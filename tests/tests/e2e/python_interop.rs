//! The contract as other languages see it: a stock Python `grpcio` client (`tests/python/interop_test.py`, stubs
//! generated from `proto/` at test time), over TLS as deployed (a client certificate for the classifier, a token
//! for the registry), reads refusals of huge bad requests, lists services by v1alpha reflection, is told
//! INVALID_ARGUMENT for undecodable bytes and UNAUTHENTICATED without a token; the same reflection and raw-bytes checks in
//! Rust, over real loopback sockets.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut};
use tokio_stream::StreamExt;
use tonic::{
    Code, Request, Response, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http,
    transport::Channel,
};
use tonic_types::StatusExt;
use township_e2e::{Backend, TestApp, TestClassifier, TestDatabase, TestPki, TestRegistry};
use township_proto::classifier::v1 as cpb;
use township_runtime::auth::jwt::{Authenticator, JwtConfig, PinnedAlgorithm};
use township_runtime::auth::token::{Grant, LOCAL_ISSUER, REGISTRY_AUDIENCE, TokenDir};

/// How long the Python interop run may take (stub generation plus a 10,000-request batch) before it is killed.
const PYTHON_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_python_grpcio_client_reads_every_refusal_and_lists_services_by_v1alpha_reflection() {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "TEST_PYTHON is not set: run the suite with scripts/test.sh, which installs tests/python/requirements.txt \
             into a virtual environment and exports TEST_PYTHON (or set it to a Python with those packages)"
        )
    });
    // As deployed: the classifier under mutual TLS, the registry over TLS requiring a token.
    let pki = TestPki::new();
    let secrets = tempfile::tempdir().unwrap();
    let tokens = TokenDir::new(secrets.path());
    let key = tokens.generate().expect("a signing key");
    let token_file =
        tokens.mint_into(&key, "admin", &Grant::administrator("python", Duration::from_secs(600))).expect("a token");
    let config = JwtConfig {
        keys_dir: tokens.public_keys_dir(),
        algorithm: PinnedAlgorithm::EdDsa,
        issuer: LOCAL_ISSUER.to_owned(),
        audience: REGISTRY_AUDIENCE.to_owned(),
    };
    let authenticator = Authenticator::new(Some(config), false, Duration::from_secs(60)).unwrap();
    let database = TestDatabase::new(Backend::Sqlite).await;
    let classifier = TestClassifier::spawn_tls(&pki).await;
    let registry = TestRegistry::spawn_tls_authenticated(database.url(), &classifier.url(), &pki, authenticator).await;
    let token = township_runtime::auth::token::read_token_file(&token_file).unwrap();
    let mut client = registry.client_with_token(&token).await;
    township_e2e::import(&mut client, "43").await;
    let township = township_e2e::all_townships(&mut client, "cities/4301").await.remove(0).name;
    let (client_cert, client_key) = pki.pki.cert("townctl-client");

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/interop_test.py");
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .arg("-v")
        .env("TOWNSHIP_CLASSIFIER_URL", classifier.url())
        .env("TOWNSHIP_REGISTRY_URL", registry.url())
        .env("TOWNSHIP_CA_CERT", pki.ca_cert())
        .env("TOWNSHIP_CLIENT_CERT", client_cert)
        .env("TOWNSHIP_CLIENT_KEY", client_key)
        .env("TOWNSHIP_TOKEN_FILE", &token_file)
        .env("TOWNSHIP_NAME", &township)
        .env("TOWNSHIP_PROTO_ROOT", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto"))
        // grpc-core must not pick up a proxy for loopback targets.
        .env("no_grpc_proxy", "127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = tokio::task::spawn_blocking(move || run_with_timeout(command, PYTHON_TIMEOUT))
        .await
        .expect("the Python runner thread")
        .unwrap_or_else(|error| panic!("cannot run {python} {}: {error}", script.display()));
    let (status, stdout, stderr) = output;
    assert!(
        status.is_some_and(|s| s.success()),
        "the Python interop test failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        status.map_or_else(|| format!("killed after {PYTHON_TIMEOUT:?}"), |s| s.to_string())
    );
    println!("{stderr}");
    // A runner that found no tests also exits 0: every test of the script must have run and passed.
    let source = std::fs::read_to_string(&script).expect("the Python interop script");
    let tests: Vec<&str> = source.lines().filter_map(|l| l.trim().strip_prefix("def test_")).collect();
    assert!(tests.len() >= 7, "the script's tests: {tests:?}");
    for test in tests {
        let name = test.split('(').next().unwrap_or(test);
        assert!(
            stderr.contains(&format!("test_{name} (")) && stderr.contains("OK"),
            "test_{name} did not pass:\n{stderr}"
        );
    }

    registry.stop().await;
    classifier.stop().await;
}

/// Runs `command` to completion, or kills it after `timeout` (exit status `None`); returns its output.
fn run_with_timeout(
    mut command: Command,
    timeout: Duration,
) -> std::io::Result<(Option<std::process::ExitStatus>, String, String)> {
    let mut child = command.spawn()?;
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok((status, stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default()))
}

fn expected_services(service: &str) -> Vec<String> {
    let mut names: Vec<String> = [
        service,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
    .map(str::to_owned)
    .into();
    names.sort();
    names
}

async fn channel(url: String) -> Channel {
    Channel::from_shared(url).expect("a valid URL").connect().await.expect("connect")
}

async fn services_by_v1(url: String) -> Vec<String> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut client = ServerReflectionClient::new(channel(url).await);
    let mut answers = client.server_reflection_info(tokio_stream::once(request)).await.unwrap().into_inner();
    let answer = answers.next().await.expect("an answer").expect("a list");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a service list: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

async fn services_by_v1alpha(url: String) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut client = ServerReflectionClient::new(channel(url).await);
    let mut answers = client.server_reflection_info(tokio_stream::once(request)).await.unwrap().into_inner();
    let answer = answers.next().await.expect("an answer").expect("a list");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a service list: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

#[tokio::test]
async fn each_port_lists_exactly_what_it_serves_by_reflection_v1_and_v1alpha() {
    let app = TestApp::spawn().await;

    for (url, service) in [
        (app.classifier_url(), township_classifier::SERVICE_NAME),
        (app.registry_url(), township_registry::service::SERVICE_NAME),
    ] {
        assert_eq!(services_by_v1(url.clone()).await, expected_services(service), "v1 at {url}");
        assert_eq!(services_by_v1alpha(url.clone()).await, expected_services(service), "v1alpha at {url}");
    }

    app.stop().await;
}

/// Sends and receives message bodies as raw bytes, so a test can send what no generated client would (the
/// authorization matrix uses it too, to call every RPC by name).
#[derive(Debug, Clone, Default)]
pub(crate) struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

async fn raw_call(url: String, path: &'static str, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel(url).await);
    grpc.ready().await.expect("the channel is ready");
    let path = http::uri::PathAndQuery::from_static(path);
    grpc.unary(Request::new(body), path, RawCodec).await.map(Response::into_inner)
}

#[tokio::test]
async fn undecodable_request_bytes_are_invalid_argument_naming_the_message_type() {
    let app = TestApp::spawn().await;
    // Per method: not protobuf at all; a string that is not UTF-8 (ClassifyRequest.townships[0].id,
    // GetTownshipRequest.name); a length running past the end.
    let calls = [
        (
            app.classifier_url(),
            "/township.classifier.v1.ClassifierService/Classify",
            "township.classifier.v1.ClassifyRequest",
            [vec![0xff, 0xff, 0xff], vec![0x12, 0x04, 0x0a, 0x02, 0xc3, 0x28], vec![0x12, 0x7f, 0x0a]],
        ),
        (
            app.registry_url(),
            "/township.registry.v1.RegistryService/GetTownship",
            "township.registry.v1.GetTownshipRequest",
            [vec![0xff, 0xff, 0xff], vec![0x0a, 0x02, 0xc3, 0x28], vec![0x0a, 0x7f, 0x61]],
        ),
    ];

    for (url, path, message_type, bodies) in calls {
        for body in &bodies {
            let status = raw_call(url.clone(), path, body.clone()).await.expect_err("undecodable bytes are refused");
            assert_eq!(status.code(), Code::InvalidArgument, "{path} {body:02x?}: {status:?}");
            assert!(status.message().contains(message_type), "{path}: {}", status.message());
            let info = status.get_details_error_info().expect("ErrorInfo");
            assert_eq!(
                (info.reason.as_str(), info.domain.as_str()),
                ("INVALID_ARGUMENT", township_runtime::ERROR_DOMAIN)
            );
        }
        // An empty body is a valid (empty) message: the service's own validation answers.
        let empty = raw_call(url.clone(), path, Vec::new()).await.expect_err("an empty request is refused");
        assert_eq!(empty.code(), Code::InvalidArgument, "{path}: {empty:?}");
        assert!(!empty.message().contains(message_type), "refused by the service, not the codec: {}", empty.message());
    }

    app.stop().await;
}

/// A "classifier" answering every call with bytes that are no `ClassifyResponse`.
#[derive(Debug, Clone)]
struct GarbageClassifier;

impl tonic::server::NamedService for GarbageClassifier {
    const NAME: &'static str = township_classifier::SERVICE_NAME;
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for GarbageClassifier {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        struct Answer;
        impl tonic::server::UnaryService<Vec<u8>> for Answer {
            type Response = Vec<u8>;
            type Future = std::future::Ready<Result<Response<Vec<u8>>, Status>>;
            fn call(&mut self, _request: Request<Vec<u8>>) -> Self::Future {
                std::future::ready(Ok(Response::new(vec![0xff, 0xff, 0xff])))
            }
        }
        Box::pin(async move { Ok(tonic::server::Grpc::new(RawCodec).unary(Answer, request).await) })
    }
}

#[tokio::test]
async fn an_undecodable_response_is_still_internal_for_the_generated_clients() {
    let server = township_runtime::GrpcServer::bind("127.0.0.1:0".parse().unwrap(), township_classifier::SERVICE_NAME)
        .await
        .expect("bind");
    let url = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(
        tonic::service::Routes::new(GarbageClassifier),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));

    let mut client = cpb::classifier_service_client::ClassifierServiceClient::new(channel(url).await);
    let status = client.classify(cpb::ClassifyRequest::default()).await.expect_err("garbage is not a response");
    // The server sent garbage: not the caller's fault, so the registry keeps retrying such a classifier.
    assert_eq!(status.code(), Code::Internal, "{status:?}");

    let _ = stop.send(());
    task.await.expect("server task").expect("served");
}
