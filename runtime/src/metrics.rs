//! Prometheus metrics: per-RPC counters and latency histograms under the names of go-grpc-prometheus (which
//! dashboards expect), for the calls a server answers ([`MetricsLayer`], applied by `GrpcServer`) and the calls a
//! service makes ([`ClientCall`]), served as text on a plain-HTTP listener of its own ([`MetricsListener`]).
//!
//! The metrics are process-wide: one process serves one service, and a service adds its own (the registry's
//! domain gauges) with [`register`]. Health and reflection calls are counted like any other: a probe's traffic is
//! real load, and the `grpc_service` label tells it apart.

use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, LazyLock, Mutex},
    task::{Context, Poll},
    time::Instant,
};

use anyhow::Context as _;
use http_body::Frame;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use prost::Message as _;
use tokio::net::TcpListener;

/// The buckets of go-grpc-prometheus (Prometheus' defaults), in seconds.
const LATENCY_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The labels of the started counter and the latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub grpc_type: &'static str,
    pub grpc_service: String,
    pub grpc_method: String,
}

/// The labels of the handled counter: the method's and the status code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
    grpc_code: &'static str,
}

type LatencyFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

/// The three metrics of one side (server or client) of the calls.
struct RpcMetrics {
    started: Family<MethodLabels, Counter>,
    handled: Family<CodeLabels, Counter>,
    seconds: LatencyFamily,
}

impl RpcMetrics {
    fn register(registry: &mut Registry, side: &str) -> Self {
        fn latency_histogram() -> Histogram {
            Histogram::new(LATENCY_BUCKETS)
        }
        let metrics = Self {
            started: Family::default(),
            handled: Family::default(),
            seconds: Family::new_with_constructor(latency_histogram),
        };
        // prometheus-client appends `_total` to counters.
        registry.register(
            format!("grpc_{side}_started"),
            format!("Total number of RPCs started on the {side}."),
            metrics.started.clone(),
        );
        registry.register(
            format!("grpc_{side}_handled"),
            format!("Total number of RPCs completed on the {side}, regardless of success or failure."),
            metrics.handled.clone(),
        );
        registry.register(
            format!("grpc_{side}_handling_seconds"),
            format!(
                "Histogram of response latency (seconds) of gRPC that had been application-level handled by the {side}."
            ),
            metrics.seconds.clone(),
        );
        metrics
    }

    fn start(&'static self, labels: MethodLabels) -> InFlight {
        self.started.get_or_create(&labels).inc();
        InFlight { metrics: self, labels, started: Instant::now(), code: None }
    }
}

struct Metrics {
    registry: Mutex<Registry>,
    server: RpcMetrics,
    client: RpcMetrics,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let server = RpcMetrics::register(&mut registry, "server");
    let client = RpcMetrics::register(&mut registry, "client");
    Metrics { registry: Mutex::new(registry), server, client }
});

/// Adds a service's own metric (e.g. a gauge of its store) to what `/metrics` serves.
pub fn register(name: &str, help: &str, metric: impl prometheus_client::registry::Metric) {
    METRICS.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner).register(name, help, metric);
}

/// Everything registered, in the OpenMetrics text format Prometheus scrapes.
pub fn encode() -> String {
    let registry = METRICS.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("writing to a String cannot fail");
    text
}

/// A call counted as started whose outcome is not known yet. Dropped without [`InFlight::finish`] (the caller
/// went away, the response was abandoned), it counts as `Canceled`.
struct InFlight {
    metrics: &'static RpcMetrics,
    labels: MethodLabels,
    started: Instant,
    code: Option<tonic::Code>,
}

impl InFlight {
    fn finish(mut self, code: tonic::Code) {
        self.code = Some(code);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(tonic::Code::Cancelled);
        let MethodLabels { grpc_type, grpc_service, grpc_method } = self.labels.clone();
        let labels = CodeLabels { grpc_type, grpc_service, grpc_method, grpc_code: code_name(code) };
        self.metrics.handled.get_or_create(&labels).inc();
        self.metrics.seconds.get_or_create(&self.labels).observe(self.started.elapsed().as_secs_f64());
    }
}

/// A status code as go-grpc-prometheus labels it (Go's `codes.Code.String()`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Each served method's path (`/package.Service/Method`) and its `grpc_type`, from the descriptor sets of
/// every service a township server may serve.
static METHOD_TYPES: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| {
    let sets = [
        township_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut types = HashMap::new();
    for encoded in sets {
        let set = prost_types::FileDescriptorSet::decode(encoded).expect("a built-in descriptor set decodes");
        for file in set.file {
            for service in &file.service {
                let service_name = format!("{}.{}", file.package(), service.name());
                for method in &service.method {
                    let grpc_type = match (method.client_streaming(), method.server_streaming()) {
                        (false, false) => "unary",
                        (true, false) => "client_stream",
                        (false, true) => "server_stream",
                        (true, true) => "bidi_stream",
                    };
                    types.insert(format!("/{service_name}/{}", method.name()), grpc_type);
                }
            }
        }
    }
    types
});

/// The labels of a request path. A path no known service serves is labelled `unknown`, so that callers
/// inventing paths cannot create series without bound.
fn labels_of_path(path: &str) -> MethodLabels {
    match (METHOD_TYPES.get(path), path.trim_start_matches('/').split_once('/')) {
        (Some(grpc_type), Some((service, method))) => {
            MethodLabels { grpc_type, grpc_service: service.to_owned(), grpc_method: method.to_owned() }
        }
        _ => MethodLabels { grpc_type: "unary", grpc_service: "unknown".to_owned(), grpc_method: "unknown".to_owned() },
    }
}

/// The `grpc-status` of a header map (response headers of a trailers-only response, or trailers).
fn status_in(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(tonic::Code::from_i32(value))
}

/// Counts every call a server answers (`GrpcServer` puts it outermost, so calls the authentication refuses
/// are counted too).
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer;

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for MetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = METRICS.server.start(labels_of_path(request.uri().path()));
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(error) => {
                    call.finish(tonic::Code::Unknown);
                    return Err(error);
                }
            };
            // A trailers-only response (how tonic answers most errors) carries its status in the headers.
            if let Some(code) = status_in(response.headers()) {
                call.finish(code);
                return Ok(response);
            }
            Ok(response.map(|body| tonic::body::Body::new(MeteredBody { inner: body, call: Some(call) })))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that reads the status from its trailers when they pass through.
    struct MeteredBody {
        #[pin]
        inner: tonic::body::Body,
        call: Option<InFlight>,
    }
}

impl http_body::Body for MeteredBody {
    type Data = <tonic::body::Body as http_body::Body>::Data;
    type Error = <tonic::body::Body as http_body::Body>::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(call) = this.call.take()
                {
                    call.finish(status_in(trailers).unwrap_or(tonic::Code::Unknown));
                }
            }
            // A body that fails, or ends without trailers, gave the caller no status.
            Poll::Ready(Some(Err(_)) | None) => {
                if let Some(call) = this.call.take() {
                    call.finish(tonic::Code::Unknown);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// One call a service makes to another, counted in the `grpc_client_*` metrics: started when made, handled
/// with its code by [`ClientCall::finish`] (dropped unfinished, it counts as `Canceled`).
pub struct ClientCall(InFlight);

impl std::fmt::Debug for ClientCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClientCall").field(&self.0.labels).finish()
    }
}

impl ClientCall {
    /// Starts counting a call of `path` (`/package.Service/Method`).
    pub fn start(path: &str) -> Self {
        Self(METRICS.client.start(labels_of_path(path)))
    }

    pub fn finish(self, code: tonic::Code) {
        self.0.finish(code);
    }
}

/// What a service reads just before each scrape (the registry: its store's gauges).
pub type Refresh = Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

/// The bound plain-HTTP listener that serves `GET /metrics`.
pub struct MetricsListener {
    listener: TcpListener,
}

impl MetricsListener {
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen for metrics on {addr}"))?;
        Ok(Self { listener })
    }

    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound TCP listener has an address")
    }

    /// Serves until the returned future is dropped; each scrape first awaits `refresh`.
    pub async fn serve(self, refresh: Option<Refresh>) {
        tracing::info!(metrics_addr = %self.local_addr(), "serving metrics on http://{}/metrics", self.local_addr());
        loop {
            let (stream, _) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a metrics connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let refresh = refresh.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| scrape(request, refresh.clone()));
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "metrics connection ended with an error");
                }
            });
        }
    }
}

type ScrapeBody = http_body_util::Full<hyper::body::Bytes>;

async fn scrape(
    request: http::Request<hyper::body::Incoming>,
    refresh: Option<Refresh>,
) -> Result<http::Response<ScrapeBody>, std::convert::Infallible> {
    let response = if request.uri().path() != "/metrics" {
        http::Response::builder().status(http::StatusCode::NOT_FOUND).body(ScrapeBody::from("try /metrics\n"))
    } else if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
        http::Response::builder().status(http::StatusCode::METHOD_NOT_ALLOWED).body(ScrapeBody::default())
    } else {
        if let Some(refresh) = refresh {
            refresh().await;
        }
        http::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(ScrapeBody::from(encode()))
    };
    Ok(response.expect("a response of constant parts builds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_get_their_method_type_and_unknown_paths_one_label() {
        let watch = labels_of_path("/township.registry.v1.RegistryService/WatchClassChanges");
        assert_eq!((watch.grpc_type, watch.grpc_method.as_str()), ("server_stream", "WatchClassChanges"));
        assert_eq!(labels_of_path("/grpc.health.v1.Health/Check").grpc_type, "unary");
        assert_eq!(
            labels_of_path("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo").grpc_type,
            "bidi_stream"
        );
        assert_eq!(labels_of_path("/made.Up/Path").grpc_service, "unknown");
    }

    /// What a tonic server sends for a stream that fails after its first message: 200 with no status in the
    /// headers, a data frame, then the status in the trailers.
    fn failing_stream() -> http::Response<tonic::body::Body> {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("5"));
        let frames: Vec<Result<Frame<hyper::body::Bytes>, tonic::Status>> =
            vec![Ok(Frame::data(hyper::body::Bytes::from_static(b"\0\0\0\0\0"))), Ok(Frame::trailers(trailers))];
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
        http::Response::new(tonic::body::Body::new(body))
    }

    #[tokio::test]
    async fn the_code_of_a_stream_is_read_from_its_trailers_once_the_body_is_read() {
        use http_body_util::BodyExt as _;
        use tower::{Layer as _, Service as _};
        let path = "/township.registry.v1.RegistryService/WatchClassChanges";
        let mut service = MetricsLayer.layer(tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(failing_stream())
        }));
        let response = service.call(http::Request::get(path).body(()).unwrap()).await.unwrap();
        let handled = |code| {
            let labels = labels_of_path(path);
            let labels = CodeLabels {
                grpc_type: labels.grpc_type,
                grpc_service: labels.grpc_service,
                grpc_method: labels.grpc_method,
                grpc_code: code,
            };
            METRICS.server.handled.get_or_create(&labels).get()
        };
        assert_eq!(handled("NotFound"), 0, "not known before the trailers");
        response.into_body().collect().await.unwrap();
        assert_eq!((handled("NotFound"), handled("OK")), (1, 0));
        assert!(encode().contains(r#"grpc_server_started_total{grpc_type="server_stream",grpc_service="township.registry.v1.RegistryService",grpc_method="WatchClassChanges"} 1"#));
    }

    #[test]
    fn codes_are_named_as_go_names_them() {
        assert_eq!(code_name(tonic::Code::InvalidArgument), "InvalidArgument");
        assert_eq!(code_name(tonic::Code::Cancelled), "Canceled");
        assert_eq!(code_name(tonic::Code::Ok), "OK");
    }
}
