//! The classifier benchmark: in-process scoring throughput, and `Classify` over a real loopback gRPC socket
//! side by side with an echo baseline that answers the same request without computing anything.
//!
//! Run with `cargo bench -p township-classifier --bench classify`; the tables are printed to stdout as
//! markdown (BENCHMARKS.md at the workspace root holds a run and its reading). Without `--bench` (as under
//! `cargo test --benches`) it only checks that every path works once and measures nothing.
//!
//! 1. `domain::classify` in-process for 300, 1,947 (Hunan) and 41,352 (China) townships.
//! 2. `Classify` over TCP on 127.0.0.1 at 1, 16 and 64 requests in flight, the classifier against
//!    [`EchoClassifier`], (a) through `township_runtime::GrpcServer` as deployed, and (b) through tonic's
//!    `Server` with `TCP_NODELAY` on accepted sockets, which `GrpcServer` does not set.
//! 3. The in-process pieces of one Hunan round trip: handlers, protobuf encode and decode.
//! 4. The whole country (41,352 townships): in-process by detail against a minimal loop doing the same
//!    arithmetic and rank sort, and one `Classify` round trip by view against the echo of the same request.
//!
//! Knobs (environment): `BENCH_SCORING_SECONDS` (measuring time per cohort size, default 2.5),
//! `BENCH_GRPC_SECONDS` (measuring window per service and concurrency, default 3), `BENCH_WARMUP_SECONDS`
//! (warm-up before each gRPC window, default 1), `BENCH_CONNECTIONS` (HTTP/2 connections the concurrent
//! requests share, default 1), `BENCH_SECTIONS` (which sections to run, e.g. `4`; default all).

use std::{
    hint::black_box,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::{runtime::Runtime, sync::oneshot, task::JoinSet};
use tonic::{
    Request, Response, Status,
    transport::{Channel, Server, server::TcpIncoming},
};
use township_classifier::{
    ClassifierApi, SERVICE_NAME,
    domain::{self, PerIndicator, Policy, TownshipInput, TownshipKind},
};
use township_proto::classifier::v1::{
    self as pb, classifier_service_client::ClassifierServiceClient, classifier_service_server::ClassifierService,
};
use township_runtime::GrpcServer;

/// Seed of the ChaCha8 generator every cohort is drawn from. Each cohort restarts the generator, so the
/// 300-township cohort is the first 300 townships of the 1,947 one, and so on.
const SEED: u64 = 20_240_601;
/// Message size limit on both sides, as the services are deployed (a whole-China cohort is ~6 MiB).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// The `--max-cohort-size` the classifier binary uses by default.
const MAX_COHORT_SIZE: usize = 100_000;
/// Cohort sizes of the scoring benchmark: a sample, Hunan province, the whole of China.
const SCORING_COHORTS: [(&str, usize); 3] = [("sample", 300), ("Hunan", 1_947), ("China", 41_352)];
/// Cohort sizes sent over gRPC.
const GRPC_COHORTS: [(&str, usize); 2] = [("sample", 300), ("Hunan", 1_947)];
/// Which cohort sizes each way of serving is measured with.
const GRPC_RUNS: [(Serving, &[usize]); 2] = [(Serving::Production, &[300, 1_947]), (Serving::NoDelay, &[1_947])];
/// In-flight requests of the gRPC runs.
const CONCURRENCY: [usize; 3] = [1, 16, 64];

fn main() {
    let measure = std::env::args().any(|arg| arg == "--bench");
    if measure {
        run_benchmark();
    } else {
        smoke_check();
    }
}

// ---------------------------------------------------------------------------------------------------------
// Synthetic cohorts

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller; 1 − u keeps the logarithm's argument in (0, 1].
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal draw with the given median and log-scale spread, redrawn until it falls in `[low, high]`,
/// rounded to 2 decimals as statistical yearbooks print it.
fn log_normal_within(rng: &mut ChaCha8Rng, median: f64, sigma: f64, low: f64, high: f64) -> f64 {
    loop {
        let value = median * (sigma * standard_normal(rng)).exp();
        if (low..=high).contains(&value) {
            return domain::round2(value);
        }
    }
}

const PROVINCES: [u32; 31] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63,
    64, 65,
];
const SYLLABLES: [&str; 40] = [
    "长", "沙", "岳", "麓", "湘", "潭", "株", "洲", "衡", "阳", "邵", "东", "常", "德", "益", "永", "郴", "怀", "化",
    "娄", "底", "吉", "首", "桃", "花", "源", "石", "门", "龙", "山", "平", "江", "安", "乡", "新", "宁", "武", "冈",
    "南", "北",
];

/// `size` townships: 9-digit division codes (province, city, county, 3-digit township number), kinds in
/// roughly the national mix, and indicators drawn as documented in BENCHMARKS.md.
fn cohort(size: usize) -> Vec<TownshipInput> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut townships = Vec::with_capacity(size);
    let mut county = 0usize;
    while townships.len() < size {
        let province = PROVINCES[(county / 100) % PROVINCES.len()];
        let county_code = format!("{province:02}{:02}{:02}", (county / 10) % 10 + 1, county % 10 + 1);
        let in_county = rng.random_range(6..=24).min(size - townships.len());
        for number in 1..=in_county {
            let (kind, suffix) = match rng.random_range(0..100) {
                0..52 => (TownshipKind::Town, "镇"),
                52..72 => (TownshipKind::Township, "乡"),
                72..74 => (TownshipKind::EthnicTownship, "瑶族乡"),
                74..96 => (TownshipKind::Subdistrict, "街道"),
                _ => (TownshipKind::Other, "农场"),
            };
            let name = format!(
                "{}{}{suffix}",
                SYLLABLES[rng.random_range(0..SYLLABLES.len())],
                SYLLABLES[rng.random_range(0..SYLLABLES.len())]
            );
            townships.push(TownshipInput {
                id: format!("{county_code}{number:03}"),
                name,
                kind,
                indicators: PerIndicator {
                    // 万人: 0.5–15, typically 1.5–5.
                    population: log_normal_within(&mut rng, 2.7, 0.55, 0.5, 15.0),
                    // 万元: 200–50,000, typically 500–5,000 (±1σ of a median of 1,580).
                    fiscal_revenue: log_normal_within(&mut rng, 1_580.0, 1.15, 200.0, 50_000.0),
                    // km²: 5–600, typically 30–200.
                    land_area: log_normal_within(&mut rng, 80.0, 0.9, 5.0, 600.0),
                },
            });
        }
        county += 1;
    }
    assert!(county <= PROVINCES.len() * 100, "division codes would repeat");
    townships
}

fn to_proto(township: &TownshipInput) -> pb::TownshipInput {
    let kind = match township.kind {
        TownshipKind::Town => pb::TownshipKind::Town,
        TownshipKind::Township => pb::TownshipKind::Township,
        TownshipKind::EthnicTownship => pb::TownshipKind::EthnicTownship,
        TownshipKind::Subdistrict => pb::TownshipKind::Subdistrict,
        TownshipKind::Other => pb::TownshipKind::Other,
    };
    pb::TownshipInput {
        id: township.id.clone(),
        name: township.name.clone(),
        kind: kind.into(),
        indicators: Some(pb::IndicatorValues {
            population: township.indicators.population,
            fiscal_revenue: township.indicators.fiscal_revenue,
            land_area: township.indicators.land_area,
        }),
    }
}

fn request(size: usize) -> pb::ClassifyRequest {
    pb::ClassifyRequest { policy: None, townships: cohort(size).iter().map(to_proto).collect(), ..Default::default() }
}

// ---------------------------------------------------------------------------------------------------------
// The echo baseline

/// Answers `Classify` with one result per township — id, name and kind copied, indices set to the raw
/// indicators — and computes nothing: what the transport costs without the classification.
#[derive(Debug, Clone, Copy)]
struct EchoClassifier;

#[tonic::async_trait]
impl ClassifierService for EchoClassifier {
    async fn classify(&self, request: Request<pb::ClassifyRequest>) -> Result<Response<pb::ClassifyResponse>, Status> {
        let results = request
            .into_inner()
            .townships
            .into_iter()
            .map(|township| pb::TownshipResult {
                id: township.id,
                name: township.name,
                kind: township.kind,
                indices: township.indicators,
                ..Default::default()
            })
            .collect();
        Ok(Response::new(pb::ClassifyResponse { results, ..Default::default() }))
    }

    async fn get_default_policy(
        &self,
        _request: Request<pb::GetDefaultPolicyRequest>,
    ) -> Result<Response<pb::GetDefaultPolicyResponse>, Status> {
        Err(Status::unimplemented("the echo baseline only answers Classify"))
    }

    async fn validate_policy(
        &self,
        _request: Request<pb::ValidatePolicyRequest>,
    ) -> Result<Response<pb::ValidatePolicyResponse>, Status> {
        Err(Status::unimplemented("the echo baseline only answers Classify"))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Servers on 127.0.0.1:0

/// How the servers accept connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serving {
    /// `township_runtime::GrpcServer::bind` + `serve`, exactly as the binaries serve (health, reflection, a
    /// tracing span per request). Its accepted sockets keep Nagle's algorithm on.
    Production,
    /// tonic's `Server` directly, with `TCP_NODELAY` on accepted sockets: the transport without Nagle stalls.
    NoDelay,
}

impl Serving {
    fn label(self) -> &'static str {
        match self {
            Self::Production => "GrpcServer (production loop)",
            Self::NoDelay => "tonic Server + TCP_NODELAY",
        }
    }
}

/// The classifier and the echo baseline, each serving on its own port of 127.0.0.1.
struct Servers {
    classifier: SocketAddr,
    echo: SocketAddr,
    shutdown: Vec<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Servers {
    fn start(runtime: &Runtime, serving: Serving) -> Self {
        let classifier = ClassifierApi::new(Policy::builtin_default(), MAX_COHORT_SIZE).into_server(MAX_MESSAGE_BYTES);
        let echo = pb::classifier_service_server::ClassifierServiceServer::new(EchoClassifier)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut servers = Self { classifier: unspecified(), echo: unspecified(), shutdown: vec![], tasks: vec![] };
        servers.classifier = servers.spawn(runtime, serving, tonic::service::Routes::new(classifier));
        servers.echo = servers.spawn(runtime, serving, tonic::service::Routes::new(echo));
        servers
    }

    fn spawn(&mut self, runtime: &Runtime, serving: Serving, routes: tonic::service::Routes) -> SocketAddr {
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("a socket address");
        let (shutdown, signal) = oneshot::channel::<()>();
        let signal = async {
            let _ = signal.await;
        };
        let (addr, task) = match serving {
            Serving::Production => {
                let server = runtime.block_on(GrpcServer::bind(loopback, SERVICE_NAME)).expect("bind 127.0.0.1:0");
                let addr = server.local_addr();
                (addr, runtime.spawn(server.serve(routes, signal, Duration::from_secs(5))))
            }
            Serving::NoDelay => {
                let listener = runtime.block_on(tokio::net::TcpListener::bind(loopback)).expect("bind 127.0.0.1:0");
                let addr = listener.local_addr().expect("a bound listener has an address");
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                let server = Server::builder().add_routes(routes).serve_with_incoming_shutdown(incoming, signal);
                (addr, runtime.spawn(async move { server.await.map_err(anyhow::Error::from) }))
            }
        };
        self.tasks.push(task);
        self.shutdown.push(shutdown);
        addr
    }

    fn stop(self, runtime: &Runtime) {
        for shutdown in self.shutdown {
            let _ = shutdown.send(());
        }
        for task in self.tasks {
            runtime.block_on(task).expect("server task").expect("server");
        }
    }
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

type Client = ClassifierServiceClient<Channel>;

async fn clients(addr: SocketAddr, connections: usize) -> Vec<Client> {
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("a valid URL")
            .connect()
            .await
            .unwrap_or_else(|error| panic!("cannot connect to {addr}: {error}"));
        clients.push(
            ClassifierServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        );
    }
    clients
}

fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ---------------------------------------------------------------------------------------------------------
// Smoke check (no timing): what `cargo test --benches` runs

fn smoke_check() {
    let policy = Policy::builtin_default();
    let townships = cohort(300);
    let classification = domain::classify(&policy, &townships, MAX_COHORT_SIZE).expect("the cohort classifies");
    assert_eq!(classification.results.len(), 300);

    let server_runtime = runtime("bench-server");
    let client_runtime = runtime("bench-client");
    let request = request(300);
    for serving in [Serving::Production, Serving::NoDelay] {
        let servers = Servers::start(&server_runtime, serving);
        client_runtime.block_on(async {
            for addr in [servers.classifier, servers.echo] {
                let mut client = clients(addr, 1).await.remove(0);
                let response = client.classify(request.clone()).await.expect("Classify").into_inner();
                assert_eq!(response.results.len(), 300);
            }
        });
        servers.stop(&server_runtime);
    }
    let townships = cohort(300);
    assert_eq!(minimal_loop(&townships).len(), 300);
    let numbers = domain::classify_with(&policy, &townships, MAX_COHORT_SIZE, domain::Detail::Numbers).unwrap();
    assert!(numbers.results.is_empty() && numbers.numbers.is_some_and(|n| n.rank.len() == 300));
    println!("classify bench: smoke check passed (run `cargo bench` to measure)");
}

// ---------------------------------------------------------------------------------------------------------
// Measurement

fn env_seconds(name: &str, default: f64) -> Duration {
    let seconds = std::env::var(name).ok().and_then(|value| value.parse::<f64>().ok()).unwrap_or(default);
    Duration::from_secs_f64(seconds.max(0.0))
}

fn run_benchmark() {
    let scoring_budget = env_seconds("BENCH_SCORING_SECONDS", 2.5);
    let grpc_window = env_seconds("BENCH_GRPC_SECONDS", 3.0);
    let warm_up = env_seconds("BENCH_WARMUP_SECONDS", 1.0);
    let connections: usize =
        std::env::var("BENCH_CONNECTIONS").ok().and_then(|value| value.parse().ok()).unwrap_or(1).max(1);
    let started = Instant::now();

    println!("# township classifier benchmark\n");
    println!(
        "{} logical CPUs ({}); cohorts from ChaCha8Rng seed {SEED}.\n",
        std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model().unwrap_or_else(|| "unknown CPU".to_owned()),
    );

    println!("Load average at start: {}.\n", load_average());

    // BENCH_SECTIONS=4 (or 1,3, …) runs only those sections.
    let sections = std::env::var("BENCH_SECTIONS").unwrap_or_else(|_| "1,2,3,4".to_owned());
    let wanted = |section: &str| sections.split(',').any(|s| s.trim() == section);
    if wanted("1") {
        scoring_table(scoring_budget);
    }
    if wanted("2") {
        grpc_tables(grpc_window, warm_up, connections);
    }
    if wanted("3") {
        breakdown_table(scoring_budget / 3);
    }
    if wanted("4") {
        country_table(scoring_budget, grpc_window);
    }

    println!("Load average at end: {}. Whole run: {:.1} s.", load_average(), started.elapsed().as_secs_f64());
}

/// `/proc/loadavg`'s 1, 5 and 15-minute figures: anything near or above the CPU count means other work
/// shared the machine and the figures are pessimistic.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = cpuinfo.lines().find(|line| line.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

/// Sorted per-call times of `call`: after a warm-up of a fifth of `budget` (at least 3 calls), samples for
/// `budget` (at least 10), each running enough calls to take ≥ 10 ms and giving their mean.
fn measure_calls(budget: Duration, mut call: impl FnMut()) -> Vec<Duration> {
    let warm_start = Instant::now();
    let mut warm_calls = 0u32;
    while warm_calls < 3 || warm_start.elapsed() < budget / 5 {
        call();
        warm_calls += 1;
    }
    let estimate = warm_start.elapsed() / warm_calls;
    let calls_per_sample =
        u32::try_from((Duration::from_millis(10).as_nanos() / estimate.as_nanos().max(1)).max(1)).unwrap_or(u32::MAX);

    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 10 || start.elapsed() < budget {
        let sample_start = Instant::now();
        for _ in 0..calls_per_sample {
            call();
        }
        samples.push(sample_start.elapsed() / calls_per_sample);
    }
    samples.sort_unstable();
    samples
}

#[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a rounded index within the slice")]
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index]
}

fn scoring_table(budget: Duration) {
    let policy = Policy::builtin_default();
    println!("## 1. In-process scoring: `domain::classify` with `Policy::builtin_default()`\n");
    println!(
        "| cohort | townships | median time/call | p10–p90 time/call | townships/s (median) | calls/s | samples |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (label, size) in SCORING_COHORTS {
        let townships = cohort(size);
        let samples = measure_calls(budget, || {
            let classification = domain::classify(black_box(&policy), black_box(&townships), MAX_COHORT_SIZE)
                .expect("the cohort classifies");
            black_box(classification);
        });
        let median = percentile(&samples, 0.5);
        println!(
            "| {label} | {size} | {} | {} – {} | {} | {:.1} | {} |",
            duration(median),
            duration(percentile(&samples, 0.1)),
            duration(percentile(&samples, 0.9)),
            thousands(size as f64 / median.as_secs_f64()),
            1.0 / median.as_secs_f64(),
            samples.len(),
        );
    }
    println!();
}

/// The baseline of section 4: the method's arithmetic (mean-index normalisation, weighted sum, rank sort and
/// the two thresholds) in the plainest Rust, with no validation, explanation or allocation beyond one vector.
#[expect(clippy::cast_precision_loss, reason = "a cohort's size as the divisor of a mean")]
fn minimal_loop(townships: &[TownshipInput]) -> Vec<(usize, f64, u8)> {
    let n = townships.len() as f64;
    let mean = |value: fn(&TownshipInput) -> f64| townships.iter().map(value).sum::<f64>() / n;
    let means =
        [mean(|t| t.indicators.population), mean(|t| t.indicators.fiscal_revenue), mean(|t| t.indicators.land_area)];
    let mut scored: Vec<(usize, f64, u8)> = townships
        .iter()
        .enumerate()
        .map(|(position, t)| {
            let score = (5.0 * 100.0 * t.indicators.population / means[0]
                + 3.0 * 100.0 * t.indicators.fiscal_revenue / means[1]
                + 2.0 * 100.0 * t.indicators.land_area / means[2])
                / 10.0;
            (position, score, 0)
        })
        .collect();
    scored.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    for entry in &mut scored {
        entry.2 = if entry.1 >= 120.0 {
            1
        } else if entry.1 >= 80.0 {
            2
        } else {
            3
        };
    }
    scored
}

/// Section 4: the whole country, in-process and in one round trip, each figure against its baseline of the
/// same run (the minimal loop; the echo of the same request, which copies id, name, kind and indicators back).
fn country_table(budget: Duration, window: Duration) {
    const COUNTRY: usize = 41_352;
    let policy = Policy::builtin_default();
    let townships = cohort(COUNTRY);
    println!(
        "## 4. The whole country: {} townships
",
        thousands(COUNTRY as f64)
    );
    println!(
        "In-process, one thread; median of the samples (as in section 1):
"
    );
    println!(
        "| computation | median time/call | ÷ minimal loop |
|---|---:|---:|"
    );
    let median_of = |call: &mut dyn FnMut()| percentile(&measure_calls(budget, call), 0.5);
    let baseline = median_of(&mut || {
        black_box(minimal_loop(black_box(&townships)));
    });
    let numbers = median_of(&mut || {
        let detail = domain::Detail::Numbers;
        black_box(domain::classify_with(black_box(&policy), &townships, MAX_COHORT_SIZE, detail).unwrap());
    });
    let explained = median_of(&mut || {
        let detail = domain::Detail::Explained;
        black_box(domain::classify_with(black_box(&policy), &townships, MAX_COHORT_SIZE, detail).unwrap());
    });
    for (label, time) in [
        ("minimal loop (the baseline)", baseline),
        ("`classify_with`, `Detail::Numbers` (what BASIC computes)", numbers),
        ("`classify_with`, `Detail::Explained` (FULL)", explained),
    ] {
        println!("| {label} | {} | {:.2} |", duration(time), time.as_secs_f64() / baseline.as_secs_f64());
    }
    println!();

    let server_runtime = runtime("bench-server");
    let client_runtime = runtime("bench-client");
    let servers = Servers::start(&server_runtime, Serving::Production);
    let full = request(COUNTRY);
    let basic = pb::ClassifyRequest { view: pb::ClassificationView::Basic.into(), ..full.clone() };
    let (classifier, echo) = client_runtime
        .block_on(async { (clients(servers.classifier, 1).await.remove(0), clients(servers.echo, 1).await.remove(0)) });
    // One call at a time, the three alternating, so that drift on the machine touches each alike.
    let mut times: [Vec<Duration>; 3] = Default::default();
    let mut sizes = [0usize; 3];
    let start = Instant::now();
    while times[0].len() < 5 || start.elapsed() < window * 3 {
        for (slot, (client, message)) in
            [(&echo, &full), (&classifier, &full), (&classifier, &basic)].into_iter().enumerate()
        {
            let (mut client, message) = (client.clone(), message.clone());
            let sent = Instant::now();
            let answer = client_runtime.block_on(client.classify(message)).expect("Classify").into_inner();
            times[slot].push(sent.elapsed());
            sizes[slot] = answer.encoded_len();
        }
    }
    servers.stop(&server_runtime);
    for samples in &mut times {
        samples.sort_unstable();
    }
    let echo_median = percentile(&times[0], 0.5);
    println!(
        "One `Classify` round trip over loopback gRPC (`GrpcServer`, one call at a time, the three alternating; \
         request {}):\n",
        bytes(full.encoded_len())
    );
    println!("| service | answer | median round trip | ÷ echo | calls |\n|---|---:|---:|---:|---:|");
    for (slot, label) in
        ["echo (the baseline)", "classifier, FULL view", "classifier, BASIC view"].into_iter().enumerate()
    {
        let median = percentile(&times[slot], 0.5);
        println!(
            "| {label} | {} | {} | {:.2} | {} |",
            bytes(sizes[slot]),
            duration(median),
            median.as_secs_f64() / echo_median.as_secs_f64(),
            times[slot].len()
        );
    }
    println!();
}

/// A request as the authentication layer hands it to the handler (called directly here, without a server).
fn authenticated<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(township_runtime::auth::AuthDisabled::principal());
    request
}

/// Where a Hunan-sized call's time goes besides scoring, one thread, no network: the handler and each
/// protobuf encode and decode a round trip performs.
fn breakdown_table(budget: Duration) {
    let size = 1_947;
    let request = request(size);
    let server_runtime = runtime("bench-handler");
    let api = ClassifierApi::new(Policy::builtin_default(), MAX_COHORT_SIZE);
    let classifier_response =
        server_runtime.block_on(api.classify(authenticated(request.clone()))).expect("Classify").into_inner();
    let echo_response =
        server_runtime.block_on(EchoClassifier.classify(Request::new(request.clone()))).expect("Classify").into_inner();
    let request_bytes = request.encode_to_vec();
    let classifier_bytes = classifier_response.encode_to_vec();
    let echo_bytes = echo_response.encode_to_vec();

    println!("## 3. Where a Hunan call's time goes (in-process, one call at a time, {size} townships)\n");
    println!("| step | median | p10–p90 |\n|---|---:|---:|");
    let row = |step: &str, call: &mut dyn FnMut()| {
        let samples = measure_calls(budget, call);
        println!(
            "| {step} | {} | {} – {} |",
            duration(percentile(&samples, 0.5)),
            duration(percentile(&samples, 0.1)),
            duration(percentile(&samples, 0.9))
        );
    };
    row("clone the request message (load generator, per call)", &mut || {
        black_box(black_box(&request).clone());
    });
    row("encode the request", &mut || {
        black_box(black_box(&request).encode_to_vec());
    });
    row("decode the request", &mut || {
        black_box(pb::ClassifyRequest::decode(black_box(request_bytes.as_slice())).expect("decodes"));
    });
    row("`ClassifierApi::classify` handler: request message → response message", &mut || {
        let response = server_runtime.block_on(api.classify(authenticated(request.clone()))).expect("Classify");
        black_box(response);
    });
    row("echo handler: request message → response message", &mut || {
        let response = server_runtime.block_on(EchoClassifier.classify(Request::new(request.clone()))).expect("echo");
        black_box(response);
    });
    row("encode the classifier response", &mut || {
        black_box(black_box(&classifier_response).encode_to_vec());
    });
    row("decode the classifier response", &mut || {
        black_box(pb::ClassifyResponse::decode(black_box(classifier_bytes.as_slice())).expect("decodes"));
    });
    row("encode the echo response", &mut || {
        black_box(black_box(&echo_response).encode_to_vec());
    });
    row("decode the echo response", &mut || {
        black_box(pb::ClassifyResponse::decode(black_box(echo_bytes.as_slice())).expect("decodes"));
    });
    println!();
}

/// What one service did at one concurrency during the measuring window.
struct LoadResult {
    requests_per_second: f64,
    latency_us: Histogram<u64>,
}

impl LoadResult {
    fn p50_ms(&self) -> f64 {
        self.latency_us.value_at_quantile(0.5) as f64 / 1_000.0
    }

    fn p99_ms(&self) -> f64 {
        self.latency_us.value_at_quantile(0.99) as f64 / 1_000.0
    }
}

/// Keeps `concurrency` requests in flight over `clients` (round-robin) for `warm_up + window`; latencies
/// of the calls that complete inside the window are recorded (so the window sees a steady load), and
/// throughput is those calls over the window. Each call's clock starts after its request message has been
/// cloned and stops when the response has been decoded.
async fn load(
    clients: &[Client],
    request: &Arc<pb::ClassifyRequest>,
    concurrency: usize,
    warm_up: Duration,
    window: Duration,
) -> LoadResult {
    let window_start = Instant::now() + warm_up;
    let window_end = window_start + window;
    let expected = request.townships.len();
    let mut tasks = JoinSet::new();
    for worker in 0..concurrency {
        let mut client = clients[worker % clients.len()].clone();
        let request = Arc::clone(request);
        tasks.spawn(async move {
            let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            loop {
                let message = (*request).clone();
                let sent = Instant::now();
                if sent >= window_end {
                    break;
                }
                let response = client.classify(message).await.expect("Classify failed").into_inner();
                let done = Instant::now();
                assert_eq!(response.results.len(), expected, "one result per township");
                if done >= window_start && done < window_end {
                    latency_us
                        .saturating_record(u64::try_from(done.duration_since(sent).as_micros()).unwrap_or(u64::MAX));
                }
            }
            latency_us
        });
    }
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    while let Some(worker) = tasks.join_next().await {
        latency_us.add(worker.expect("load worker")).expect("histograms with equal bounds");
    }
    LoadResult { requests_per_second: latency_us.len() as f64 / window.as_secs_f64(), latency_us }
}

/// One service at one concurrency: the result of [`load`].
struct Row {
    cohort: &'static str,
    size: usize,
    concurrency: usize,
    classifier: LoadResult,
    echo: LoadResult,
}

fn grpc_tables(window: Duration, warm_up: Duration, connections: usize) {
    let server_runtime = runtime("bench-server");
    let client_runtime = runtime("bench-client");
    let requests: Vec<_> = GRPC_COHORTS.iter().map(|&(label, size)| (label, size, Arc::new(request(size)))).collect();

    println!("## 2. `Classify` over loopback gRPC: classifier vs echo baseline\n");
    println!(
        "Real TCP on 127.0.0.1; server and client in one process on separate 2-worker tokio runtimes; \
         {connections} shared HTTP/2 connection(s) per service; {:.1} s warm-up, then a {:.1} s window per row; \
         64 MiB message limits on both sides. Echo and classifier alternate at each concurrency.\n",
        warm_up.as_secs_f64(),
        window.as_secs_f64()
    );

    let mut sizes_printed = false;
    for (section, (serving, cohorts)) in GRPC_RUNS.into_iter().enumerate() {
        let servers = Servers::start(&server_runtime, serving);
        let (classifier_clients, echo_clients) = client_runtime.block_on(async {
            (clients(servers.classifier, connections).await, clients(servers.echo, connections).await)
        });
        if !sizes_printed {
            sizes_printed = true;
            println!("Encoded message sizes:\n");
            println!(
                "| cohort | townships | request | classifier response | echo response |\n|---|---:|---:|---:|---:|"
            );
            for (label, size, request) in &requests {
                let (classifier, echo) = client_runtime.block_on(async {
                    let classifier = classifier_clients[0].clone().classify((**request).clone()).await;
                    let echo = echo_clients[0].clone().classify((**request).clone()).await;
                    (classifier.expect("Classify").into_inner(), echo.expect("Classify").into_inner())
                });
                println!(
                    "| {label} | {size} | {} | {} | {} |",
                    bytes(request.encoded_len()),
                    bytes(classifier.encoded_len()),
                    bytes(echo.encoded_len())
                );
            }
            println!();
        }

        let mut rows = Vec::new();
        for (label, size, request) in requests.iter().filter(|(_, size, _)| cohorts.contains(size)) {
            for concurrency in CONCURRENCY {
                let echo = client_runtime.block_on(load(&echo_clients, request, concurrency, warm_up, window));
                let classifier =
                    client_runtime.block_on(load(&classifier_clients, request, concurrency, warm_up, window));
                rows.push(Row { cohort: label, size: *size, concurrency, classifier, echo });
            }
        }
        servers.stop(&server_runtime);
        print_rows(&format!("2{}. {}", char::from(b'a' + u8::try_from(section).unwrap()), serving.label()), &rows);
    }
}

fn print_rows(title: &str, rows: &[Row]) {
    println!("### {title}\n");
    println!("| cohort | in flight | service | req/s | townships/s | p50 ms | p99 ms | requests |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|");
    for row in rows {
        for (service, result) in [("echo", &row.echo), ("classifier", &row.classifier)] {
            println!(
                "| {} ({}) | {} | {service} | {:.1} | {} | {:.2} | {:.2} | {} |",
                row.cohort,
                row.size,
                row.concurrency,
                result.requests_per_second,
                thousands(result.requests_per_second * row.size as f64),
                result.p50_ms(),
                result.p99_ms(),
                result.latency_us.len(),
            );
        }
    }
    println!();
    println!("Classifier ÷ echo ({title}):\n");
    println!("| cohort | in flight | req/s ratio | p50 ratio | p99 ratio |\n|---|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} ({}) | {} | {:.2} | {:.2} | {:.2} |",
            row.cohort,
            row.size,
            row.concurrency,
            row.classifier.requests_per_second / row.echo.requests_per_second,
            row.classifier.p50_ms() / row.echo.p50_ms(),
            row.classifier.p99_ms() / row.echo.p99_ms(),
        );
    }
    println!();
}

// ---------------------------------------------------------------------------------------------------------
// Formatting

fn duration(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros >= 1_000.0 { format!("{:.2} ms", micros / 1_000.0) } else { format!("{micros:.1} µs") }
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.round());
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

fn bytes(count: usize) -> String {
    if count >= 1024 * 1024 {
        format!("{:.2} MiB", count as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", count as f64 / 1024.0)
    }
}
