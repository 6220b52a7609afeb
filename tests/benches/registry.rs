//! The registry benchmark: how long an indicator update takes to show as a new class, and how many durable
//! writes per second the registry acknowledges, side by side with a raw single-row commit loop on the same
//! database.
//!
//! Run with `cargo bench -p township-e2e --bench registry`; the tables are printed to stdout as markdown
//! (BENCHMARKS.md at the workspace root holds a run and its reading). Without `--bench` (as under
//! `cargo test --benches`) it runs every path once as a smoke check and measures nothing.
//!
//! The classifier and the registry are served in-process on `127.0.0.1:0` by the end-to-end harness
//! (`township_e2e::{TestClassifier, TestRegistry}`: `township_runtime::GrpcServer`, the registry by
//! `township_registry::app::run` as the binary does), with real gRPC between them and the registry's default
//! worker settings. 长沙市 (city 4301, 172 townships) is imported from the Hunan fixtures and
//! classified once before anything is measured.
//!
//! 1. SQLite: one township's indicators are recorded again and again, alternating between the largest and the
//!    smallest realistic values so that its class really moves (1 ↔ 3); each iteration is timed from sending
//!    `RecordIndicators` until `GetTownshipClass` shows the new class, and split into phases with the times
//!    at which the classifier's handler saw the worker's `Classify`.
//! 2. SQLite: `RecordIndicators` at 1 and 16 in flight for a fixed window, acked writes/s, against a raw loop
//!    of one `INSERT` per transaction with the registry's settings (WAL, `synchronous=FULL`, `BEGIN IMMEDIATE`,
//!    one writer connection) in another file of the same directory. The registry runs twice per concurrency:
//!    as deployed (its worker reclassifies the cohort meanwhile), and with its worker parked in a `Classify`
//!    call the classifier holds unanswered, which leaves the write path alone. A reference row runs the raw loop
//!    with `synchronous=NORMAL` (no flush at commit) to show what the flush costs.
//! 3. The same on PostgreSQL: a fresh database per run, created through the admin URL in `BENCH_POSTGRES_URL`
//!    and dropped at the end; the raw loops run on the same server, one of them also upserting one row that
//!    every transaction shares (as the cohort's outbox row is), and a reference one with
//!    `synchronous_commit=off`. Skipped, saying why, when the server cannot be reached.
//! 4. With the registry stopped, the worker's steps timed one by one through the public `Store` API on the
//!    registry's own database, before and after the throughput rows of each backend, with a raw reference for
//!    the run's 172 class upserts.
//!
//! Knobs (environment): `BENCH_ITERATIONS` (update → visible iterations, default 100), `BENCH_WINDOW_SECONDS`
//! (measuring window of each throughput row, default 4), `BENCH_WARMUP_SECONDS` (warm-up before each window,
//! default 1), `BENCH_BREAKDOWN_SAMPLES` (samples of each worker step in 4, default 30), `BENCH_POSTGRES_URL`
//! (admin URL, default `postgres://township:township@127.0.0.1:5432/postgres`).

use std::{
    path::Path,
    str::FromStr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use tokio::{runtime::Runtime, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, transport::Channel};
use township_classifier::{ClassifierApi, domain::Policy};
use township_e2e::{
    Client, MAX_MESSAGE_BYTES, PATIENCE, TestClassifier, TestDatabase, TestRegistry, all_townships, as_actor, connect,
    import, loopback, record_generated, wait_until_current,
};
use township_proto::classifier::v1::{
    self as cpb, classifier_service_client::ClassifierServiceClient, classifier_service_server::ClassifierService,
    classifier_service_server::ClassifierServiceServer,
};
use township_proto::registry::v1 as pb;
use township_registry::{
    classification::{check_answer, classify_request},
    domain::{
        model::{CohortKey, NewObservation, NewRun},
        names::{CityCode, TownshipCode},
    },
    outbox::WorkerConfig,
};
use township_runtime::now_ms;

/// The classifier binary's default `--max-cohort-size`.
const MAX_COHORT_SIZE: usize = 100_000;
const CITY: &str = "cities/4301";
const CITY_CODE: &str = "4301";
const CHANGSHA_TOWNSHIPS: usize = 172;
const YEAR: i32 = 2023;
/// Seed of every generator in the bench (the sample indicators, the load's townships and values).
const SEED: u64 = 20_240_601;
/// The largest and the smallest realistic indicators (the ranges of the division fixtures' README): a township
/// recorded with these moves to class 1 and to class 3.
const HIGH: cpb::IndicatorValues =
    cpb::IndicatorValues { population: 15.0, fiscal_revenue: 50_000.0, land_area: 600.0 };
const LOW: cpb::IndicatorValues = cpb::IndicatorValues { population: 0.5, fiscal_revenue: 200.0, land_area: 5.0 };
/// Unmeasured update → visible iterations before the measured ones.
const WARM_UP_ITERATIONS: usize = 4;
/// Sleep between two `GetTownshipClass` polls while waiting for the new class.
const POLL_INTERVAL: Duration = Duration::from_millis(1);
/// In-flight writes of the throughput rows.
const CONCURRENCY: [usize; 2] = [1, 16];
/// The registry's PostgreSQL pool size (`store/sql/postgres.rs`); the raw PostgreSQL loop uses as many.
const POSTGRES_CONNECTIONS: u32 = 10;
const DEFAULT_POSTGRES_URL: &str = "postgres://township:township@127.0.0.1:5432/postgres";

fn main() {
    let settings = Settings::from_args();
    run(settings);
    if !settings.measure {
        println!("Smoke check passed: every path ran once; nothing was measured (run with --bench to measure).");
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    /// False for the smoke check: every path once, nothing printed as a figure.
    measure: bool,
    iterations: usize,
    breakdown_samples: usize,
    warm_up: Duration,
    window: Duration,
}

impl Settings {
    fn from_args() -> Self {
        if std::env::args().any(|arg| arg == "--bench") {
            Self {
                measure: true,
                iterations: env_number("BENCH_ITERATIONS", 100),
                breakdown_samples: env_number("BENCH_BREAKDOWN_SAMPLES", 30),
                warm_up: Duration::from_secs_f64(env_number("BENCH_WARMUP_SECONDS", 1.0)),
                window: Duration::from_secs_f64(env_number("BENCH_WINDOW_SECONDS", 4.0)),
            }
        } else {
            Self {
                measure: false,
                iterations: 2,
                breakdown_samples: 1,
                warm_up: Duration::ZERO,
                window: Duration::from_millis(100),
            }
        }
    }
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text.parse().unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

/// Prints only when measuring: the smoke check runs the same code and stays quiet.
macro_rules! report {
    ($settings:expr, $($arg:tt)*) => {
        if $settings.measure {
            println!($($arg)*);
        }
    };
}

fn run(settings: Settings) {
    let started = Instant::now();
    // Servers (classifier, registry and its worker) and the load generator on separate 2-worker runtimes, as in
    // the classifier bench; they share the machine's CPUs.
    let server = runtime("bench-server");
    let client = runtime("bench-client");
    let dir = tempfile::tempdir().expect("temp dir");

    report!(settings, "# Registry benchmark\n");
    report!(
        settings,
        "Machine: {} logical CPUs ({}); load average at start: {}. SQLite files in {} (same disk as `/`).\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model().unwrap_or_else(|| "unknown CPU".to_owned()),
        load_average(),
        dir.path().display()
    );

    let classifier = server.block_on(Classifier::start());
    let mut steps = sqlite_part(settings, &server, &client, &classifier, dir.path());
    steps.extend(postgres_part(settings, &server, &client, &classifier));
    print_worker_steps(settings, &steps);
    server.block_on(classifier.stop());

    report!(settings, "Load average at end: {}. Whole run: {:.1} s.", load_average(), started.elapsed().as_secs_f64());
}

fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------------------------------------
// The services

/// When the classifier's `Classify` handler was entered (request decoded) and when it returned its answer.
#[derive(Debug, Clone, Copy)]
struct ClassifierCall {
    entered: Instant,
    answered: Instant,
}

type CallLog = Arc<Mutex<Vec<ClassifierCall>>>;

/// While set, `Classify` waits for the token to be cancelled and then answers UNAVAILABLE: the registry's worker
/// sits in one call and writes nothing.
type Hold = Arc<Mutex<Option<CancellationToken>>>;

/// The classifier's own handlers, with the time of each `Classify` logged.
#[derive(Debug, Clone)]
struct TimedClassifier {
    inner: ClassifierApi,
    calls: CallLog,
    hold: Hold,
}

#[tonic::async_trait]
impl ClassifierService for TimedClassifier {
    async fn classify(
        &self,
        request: Request<cpb::ClassifyRequest>,
    ) -> Result<Response<cpb::ClassifyResponse>, Status> {
        let held = self.hold.lock().expect("hold").clone();
        if let Some(release) = held {
            release.cancelled().await;
            return Err(Status::unavailable("held by the benchmark"));
        }
        let entered = Instant::now();
        let answer = self.inner.classify(request).await;
        let answered = Instant::now();
        self.calls.lock().expect("call log").push(ClassifierCall { entered, answered });
        answer
    }

    async fn get_default_policy(
        &self,
        request: Request<cpb::GetDefaultPolicyRequest>,
    ) -> Result<Response<cpb::GetDefaultPolicyResponse>, Status> {
        self.inner.get_default_policy(request).await
    }

    async fn validate_policy(
        &self,
        request: Request<cpb::ValidatePolicyRequest>,
    ) -> Result<Response<cpb::ValidatePolicyResponse>, Status> {
        self.inner.validate_policy(request).await
    }
}

/// The classifier on a loopback port (the harness's, serving the timed handlers).
struct Classifier {
    url: String,
    calls: CallLog,
    hold: Hold,
    server: TestClassifier,
}

impl Classifier {
    async fn start() -> Self {
        let calls = CallLog::default();
        let hold = Hold::default();
        let service = ClassifierServiceServer::new(TimedClassifier {
            inner: ClassifierApi::new(Policy::builtin_default(), MAX_COHORT_SIZE),
            calls: Arc::clone(&calls),
            hold: Arc::clone(&hold),
        })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let server = TestClassifier::spawn_with(loopback(), tonic::service::Routes::new(service)).await;
        Self { url: server.url(), calls, hold, server }
    }

    /// From now on `Classify` calls wait, unanswered, until [`Classifier::release`].
    fn hold(&self) {
        *self.hold.lock().expect("hold") = Some(CancellationToken::new());
    }

    /// Held calls answer UNAVAILABLE (the worker retries after its back-off); new calls are classified.
    fn release(&self) {
        if let Some(release) = self.hold.lock().expect("hold").take() {
            release.cancel();
        }
    }

    /// The calls logged since the last take.
    fn take_calls(&self) -> Vec<ClassifierCall> {
        std::mem::take(&mut *self.calls.lock().expect("call log"))
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// The registry on a loopback port with the binary's default worker settings (not the tests' fast retries).
async fn start_registry(database_url: &str, classifier_url: &str) -> TestRegistry {
    TestRegistry::spawn_with(database_url, classifier_url, WorkerConfig::default(), loopback()).await
}

// ---------------------------------------------------------------------------------------------------------
// 长沙市

/// A township of the cohort: its resource name (for the registry) and code (for the raw loops).
#[derive(Debug, Clone)]
struct Target {
    name: String,
    code: String,
}

/// Imports 长沙市, records the seeded sample indicators for every township in one batch, and waits until the
/// cohort is classified. Returns the townships.
async fn prepare_changsha(client: &mut Client) -> Vec<pb::Township> {
    let imported = import(client, CITY_CODE).await;
    assert_eq!(imported.townships as usize, CHANGSHA_TOWNSHIPS, "长沙市 has 172 townships in the fixtures");
    let townships = all_townships(client, CITY).await;
    assert_eq!(townships.len(), CHANGSHA_TOWNSHIPS);
    record_generated(client, &townships, YEAR, SEED).await;
    wait_until_current(client, CITY, YEAR).await;
    townships
}

/// Uniform values over the realistic ranges, for the throughput rows.
fn random_values(rng: &mut ChaCha8Rng) -> cpb::IndicatorValues {
    cpb::IndicatorValues {
        population: round2(rng.random_range(0.5..15.0)),
        fiscal_revenue: round2(rng.random_range(200.0..50_000.0)),
        land_area: round2(rng.random_range(5.0..600.0)),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

async fn record(client: &mut Client, township: &str, values: cpb::IndicatorValues, source: &str) {
    client
        .record_indicators(as_actor(
            "bench",
            pb::RecordIndicatorsRequest {
                observation: Some(pb::IndicatorObservation {
                    township: township.to_owned(),
                    data_year: YEAR,
                    values: Some(values),
                    source: source.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("RecordIndicators");
}

async fn computed_class(client: &mut Client, township: &str) -> u32 {
    client
        .get_township_class(pb::GetTownshipClassRequest { township: township.to_owned(), data_year: YEAR })
        .await
        .expect("GetTownshipClass")
        .into_inner()
        .computed_class
}

// ---------------------------------------------------------------------------------------------------------
// 1. Update → visible

/// One iteration of the update → visible loop.
#[derive(Debug, Clone, Copy)]
struct UpdateSample {
    sent: Instant,
    acked: Instant,
    visible: Instant,
    /// The worker's `Classify` of this update (the first call entered after the write was sent).
    call: ClassifierCall,
    calls: usize,
    polls: usize,
}

/// Records `HIGH` and `LOW` alternately for `target` and times each until `GetTownshipClass` shows the class
/// that the calibration found for those values. Returns the samples and the two classes.
async fn update_to_visible(
    client: &mut Client,
    classifier: &Classifier,
    target: &str,
    iterations: usize,
) -> (Vec<UpdateSample>, u32, u32) {
    // Calibration: which classes the two extremes give this township.
    record(client, target, HIGH, "benchmark: largest realistic values").await;
    wait_until_current(client, CITY, YEAR).await;
    let high_class = computed_class(client, target).await;
    record(client, target, LOW, "benchmark: smallest realistic values").await;
    wait_until_current(client, CITY, YEAR).await;
    let low_class = computed_class(client, target).await;
    assert_ne!(high_class, low_class, "the extremes must move {target}'s class");

    let mut samples = Vec::with_capacity(iterations);
    for iteration in 0..WARM_UP_ITERATIONS + iterations {
        // The township holds LOW's class before every even iteration.
        let (values, expected) = if iteration % 2 == 0 { (HIGH, high_class) } else { (LOW, low_class) };
        classifier.take_calls();
        let sent = Instant::now();
        record(client, target, values, "benchmark").await;
        let acked = Instant::now();
        let mut polls = 0;
        let visible = loop {
            polls += 1;
            if computed_class(client, target).await == expected {
                break Instant::now();
            }
            assert!(sent.elapsed() < PATIENCE, "{target} did not reach class {expected}");
            tokio::time::sleep(POLL_INTERVAL).await;
        };
        // Untimed: the worker is idle again before the next write.
        wait_until_current(client, CITY, YEAR).await;
        let calls: Vec<_> = classifier.take_calls().into_iter().filter(|call| call.entered >= sent).collect();
        let call = *calls.first().expect("the update reached the classifier");
        if iteration >= WARM_UP_ITERATIONS {
            samples.push(UpdateSample { sent, acked, visible, call, calls: calls.len(), polls });
        }
    }
    (samples, high_class, low_class)
}

/// Milliseconds from `from` to `to`, negative when `to` came first.
fn signed_ms(from: Instant, to: Instant) -> f64 {
    if to >= from {
        to.duration_since(from).as_secs_f64() * 1e3
    } else {
        -(from.duration_since(to).as_secs_f64() * 1e3)
    }
}

/// Nearest-rank quantile of an ascending slice.
#[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a rounded-up rank within the slice")]
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn print_update_table(settings: Settings, samples: &[UpdateSample], target: &str, classes: (u32, u32)) {
    let phase = |f: &dyn Fn(&UpdateSample) -> f64| sorted(samples.iter().map(f).collect());
    let total = phase(&|s| signed_ms(s.sent, s.visible));
    let ack = phase(&|s| signed_ms(s.sent, s.acked));
    let to_classifier = phase(&|s| signed_ms(s.acked, s.call.entered));
    let handler = phase(&|s| signed_ms(s.call.entered, s.call.answered));
    let to_visible = phase(&|s| signed_ms(s.call.answered, s.visible));
    let ack_share = sorted(samples.iter().map(|s| signed_ms(s.sent, s.acked) / signed_ms(s.sent, s.visible)).collect());
    let extra_calls = samples.iter().filter(|s| s.calls != 1).count();
    let polls = mean(&samples.iter().map(|s| s.polls as f64).collect::<Vec<_>>());

    report!(settings, "## 1. Indicator update → new class visible (SQLite)\n");
    report!(
        settings,
        "`RecordIndicators` for {target}, alternating between {HIGH_TEXT} (class {}) and {LOW_TEXT} (class {}); \
         the clock starts before the request is sent and stops when a `GetTownshipClass` (explicit data year, \
         polled every {} ms after the ack) shows the new computed class. The cohort is CURRENT before each write \
         (untimed wait). {} measured iterations after {WARM_UP_ITERATIONS} unmeasured; mean polls per iteration \
         {polls:.1}; iterations with more than one `Classify`: {extra_calls}.\n",
        classes.0,
        classes.1,
        POLL_INTERVAL.as_millis(),
        samples.len(),
    );
    report!(settings, "| phase | p50 ms | p99 ms | mean ms | min ms | share of mean total |");
    report!(settings, "|---|---:|---:|---:|---:|---:|");
    let rows: [(&str, &Vec<f64>); 5] = [
        ("**send → new class visible (total)**", &total),
        ("a. send → write acked (`RecordIndicators` round trip: one write transaction, commit)", &ack),
        (
            "b. ack → worker's `Classify` enters the classifier handler (wake-up, claim, cohort read, request)",
            &to_classifier,
        ),
        ("c. classifier handler (score 172 townships)", &handler),
        ("d. handler answered → class visible (answer back, check, store the run, commit; ≤ 1 poll)", &to_visible),
    ];
    let total_mean = mean(&total);
    for (label, values) in rows {
        report!(
            settings,
            "| {label} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} % |",
            quantile(values, 0.5),
            quantile(values, 0.99),
            mean(values),
            values[0],
            100.0 * mean(values) / total_mean
        );
    }
    report!(settings, "");
    report!(
        settings,
        "Share of the total spent before the write's ack: {:.0} % of the mean; per iteration p50 {:.0} %, \
         p10–p90 {:.0}–{:.0} %. Phase b is negative when the worker reaches the classifier before the ack reaches \
         the client. Section 4 times the worker's steps one by one.\n",
        100.0 * mean(&ack) / total_mean,
        100.0 * quantile(&ack_share, 0.5),
        100.0 * quantile(&ack_share, 0.1),
        100.0 * quantile(&ack_share, 0.9),
    );
}

const HIGH_TEXT: &str = "the largest realistic values (15 万人, 50,000 万元, 600 km²)";
const LOW_TEXT: &str = "the smallest (0.5 万人, 200 万元, 5 km²)";

/// What each step of the worker took, in ms, sorted, for one backend and moment; and the last answer.
struct StepTimes {
    column: &'static str,
    /// Observations stored for the cohort's city and year when the steps ran.
    observations: i64,
    steps: Vec<Vec<f64>>,
    /// A reference for `complete_run`: the raw loop's 172 upserts in one transaction (section 4).
    raw_upserts: Option<Vec<f64>>,
    answer: cpb::ClassifyResponse,
    /// Bytes one run stores: the encoded answer, the lines as JSON, the explanations of the class rows.
    stored_bytes: (usize, usize, usize),
}

const STEPS: [&str; 9] = [
    "`record_observations`: 1 observation (read township, insert, audit, mark cohort pending; commit)",
    "`claim_due_cohort`: lease the cohort (one UPDATE … RETURNING, autocommit)",
    "`cohort_inputs`: 172 townships with their latest observation",
    "`latest_city_policy` (none: the default applies)",
    "`classify_request`: build the 172-township request",
    "`Classify` over loopback gRPC (encode, send, score, answer, decode)",
    "`check_answer`",
    "encode the answer for storage (`encode_to_vec`)",
    "`complete_run`: run row with the answer, 172 class upserts, history, job, audit; commit",
];

/// The worker's steps, timed one at a time through the public `Store` API on the registry's database (the
/// registry stopped), with the same classifier over gRPC: what phases b and d of section 1 are made of.
async fn worker_steps(
    samples: usize,
    column: &'static str,
    database_url: &str,
    classifier: &Classifier,
    target: &str,
) -> StepTimes {
    let store = township_registry::store::open(database_url).await.expect("open the registry's store");
    let channel =
        Channel::from_shared(classifier.url.clone()).expect("URL").connect().await.expect("connect to classifier");
    let mut client = ClassifierServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let township = TownshipCode::parse(target.rsplit('/').next().expect("a township name")).expect("township code");
    let city = CityCode::parse(CITY_CODE).expect("city code");
    let cohort = CohortKey { city: city.clone(), data_year: YEAR };
    let worker = "bench-steps";
    let observations = count_observations(database_url).await;

    let mut times: Vec<Vec<f64>> = vec![Vec::new(); STEPS.len()];
    let mut last_answer = None;
    let mut stored_bytes = (0, 0, 0);
    for sample in 0..samples + 1 {
        let values = if sample % 2 == 0 { HIGH } else { LOW };
        let mut clock = Instant::now();
        let mut lap = |step: usize, times: &mut Vec<Vec<f64>>| {
            let now = Instant::now();
            if sample > 0 {
                times[step].push(now.duration_since(clock).as_secs_f64() * 1e3);
            }
            clock = now;
        };
        let observation = NewObservation {
            township: township.clone(),
            data_year: YEAR,
            values: township_classifier::domain::PerIndicator {
                population: values.population,
                fiscal_revenue: values.fiscal_revenue,
                land_area: values.land_area,
            },
            source: "benchmark".to_owned(),
        };
        store.record_observations(&[observation], "bench", false).await.expect("record_observations");
        lap(0, &mut times);
        let job = store.claim_due_cohort(worker, 60_000).await.expect("claim").expect("the cohort is due");
        lap(1, &mut times);
        let inputs = store.cohort_inputs(&cohort).await.expect("cohort_inputs");
        lap(2, &mut times);
        let stored_policy = store.latest_city_policy(&city).await.expect("latest_city_policy");
        lap(3, &mut times);
        let (policy, policy_version) = match stored_policy {
            Some(stored) => (stored.policy, stored.version),
            None => (Policy::builtin_default(), 0),
        };
        let request = classify_request(&policy, &inputs);
        lap(4, &mut times);
        let answer = client.classify(request).await.expect("Classify").into_inner();
        lap(5, &mut times);
        last_answer = Some(answer.clone());
        let lines = check_answer(&cohort, &policy, &inputs, &answer).expect("a valid answer");
        lap(6, &mut times);
        let response = prost::Message::encode_to_vec(&answer);
        lap(7, &mut times);
        stored_bytes = (
            response.len(),
            serde_json::to_string(&lines).map_or(0, |json| json.len()),
            lines.iter().map(|line| line.explanation.len()).sum(),
        );
        let run = NewRun {
            cohort: cohort.clone(),
            generation: job.generation,
            policy_version,
            policy_fingerprint: answer.policy_fingerprint.clone(),
            lines,
            response,
        };
        let stored = store.complete_run(&run, worker).await.expect("complete_run");
        lap(8, &mut times);
        assert!(stored.job_cleared, "nothing else writes while the steps are timed");
    }
    classifier.take_calls();
    StepTimes {
        column,
        observations,
        steps: times.into_iter().map(sorted).collect(),
        raw_upserts: None,
        answer: last_answer.expect("at least one sample"),
        stored_bytes,
    }
}

/// Observations stored for 长沙市's data year, read directly from the database.
async fn count_observations(database_url: &str) -> i64 {
    use sqlx::Connection;
    let sql = "SELECT COUNT(*) FROM indicator_observations WHERE data_year = $1";
    if database_url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(database_url).await.expect("open the registry's file");
        let count = sqlx::query_scalar(sql).bind(i64::from(YEAR)).fetch_one(&mut conn).await.expect("count");
        conn.close().await.expect("close");
        count
    } else {
        let mut conn = sqlx::PgConnection::connect(database_url).await.expect("connect to the registry's database");
        let count = sqlx::query_scalar(sql).bind(i64::from(YEAR)).fetch_one(&mut conn).await.expect("count");
        conn.close().await.expect("close");
        count
    }
}

/// A reference for `complete_run`'s class upserts: the run's 172 lines (township, class, score, rank,
/// explanation) upserted one statement at a time into a table of the raw database, in one transaction.
async fn raw_upserts(raw: &Writer, answer: &cpb::ClassifyResponse, samples: usize) -> Vec<f64> {
    const UPSERT: &str = "INSERT INTO raw_classes (township, data_year, class, score, class_rank, explanation) \
                          VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (township, data_year) DO UPDATE SET \
                          class = excluded.class, score = excluded.score, class_rank = excluded.class_rank, \
                          explanation = excluded.explanation";
    macro_rules! upsert_all {
        ($tx:expr) => {
            for result in &answer.results {
                sqlx::query(UPSERT)
                    .bind(&result.id)
                    .bind(i64::from(YEAR))
                    .bind(i64::from(result.township_class))
                    .bind(result.score)
                    .bind(i64::from(result.rank))
                    .bind(&result.explanation)
                    .execute(&mut *$tx)
                    .await
                    .expect("raw upsert");
            }
        };
    }
    let mut times = Vec::new();
    for sample in 0..samples + 1 {
        let started = Instant::now();
        match raw {
            Writer::RawSqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("BEGIN IMMEDIATE");
                upsert_all!(tx);
                tx.commit().await.expect("COMMIT");
            }
            Writer::RawPostgres(pool) => {
                let mut tx = pool.begin().await.expect("BEGIN");
                upsert_all!(tx);
                tx.commit().await.expect("COMMIT");
            }
            _ => unreachable!("a raw database"),
        }
        if sample > 0 {
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    sorted(times)
}

const RAW_CLASSES_TABLE: &str = "CREATE TABLE raw_classes (township TEXT NOT NULL, data_year BIGINT NOT NULL, \
                                 class BIGINT NOT NULL, score DOUBLE PRECISION NOT NULL, class_rank BIGINT NOT NULL, \
                                 explanation TEXT NOT NULL, PRIMARY KEY (township, data_year))";

fn print_worker_steps(settings: Settings, columns: &[StepTimes]) {
    if columns.is_empty() {
        return;
    }
    report!(settings, "## 4. The worker's steps one at a time\n");
    report!(
        settings,
        "With the registry stopped, each sample records one observation for the township of section 1 (values \
         alternating as there) and then does what the worker does for it, in order, through the public \
         `township_registry::store::Store` and `township_registry::classification` on the registry's own \
         database, with the same classifier over gRPC; {} samples after 1 unmeasured, per column. Median ms \
         (p10–p90). \"Before\" is right after section 1 or the PostgreSQL set-up; \"after\" follows the \
         throughput rows, which stored thousands more observations in the same cohort.\n",
        settings.breakdown_samples
    );
    let header: Vec<_> = columns.iter().map(|c| c.column).collect();
    report!(settings, "| step | {} |", header.join(" | "));
    report!(settings, "|---|{}", "---:|".repeat(columns.len()));
    let counts: Vec<_> = columns.iter().map(|c| thousands(c.observations as f64)).collect();
    report!(settings, "| observations stored in the cohort's year | {} |", counts.join(" | "));
    let cell = |values: &[f64]| {
        format!("{:.2} ({:.2}–{:.2})", quantile(values, 0.5), quantile(values, 0.1), quantile(values, 0.9))
    };
    for (step, label) in STEPS.iter().enumerate() {
        let cells: Vec<_> = columns.iter().map(|c| cell(&c.steps[step])).collect();
        report!(settings, "| {label} | {} |", cells.join(" | "));
    }
    let sums: Vec<_> = columns
        .iter()
        .map(|c| format!("{:.2}", c.steps.iter().map(|values| quantile(values, 0.5)).sum::<f64>()))
        .collect();
    report!(settings, "| sum of the medians | {} |", sums.join(" | "));
    let references: Vec<_> =
        columns.iter().map(|c| c.raw_upserts.as_deref().map_or_else(|| "–".to_owned(), cell)).collect();
    report!(
        settings,
        "| reference, raw database: the run's 172 lines upserted one statement at a time in one transaction | {} |",
        references.join(" | ")
    );
    let (answer, lines, explanations) = columns[0].stored_bytes;
    report!(
        settings,
        "\nOne run of the 172 townships stores the classifier's encoded answer ({:.1} KiB) and the run's lines as \
         JSON ({:.1} KiB) in the run row, and 172 class rows whose explanations total {:.1} KiB.\n",
        answer as f64 / 1024.0,
        lines as f64 / 1024.0,
        explanations as f64 / 1024.0
    );
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

// ---------------------------------------------------------------------------------------------------------
// 2 and 3. Sustained durable writes

/// Where the writes of a throughput row go.
#[derive(Clone)]
enum Writer {
    /// `RecordIndicators` for a random township of the city.
    Registry(Client),
    /// One `INSERT` per `BEGIN IMMEDIATE` transaction.
    RawSqlite(SqlitePool),
    /// One `INSERT` per transaction.
    RawPostgres(PgPool),
    /// One `INSERT` plus an upsert of one row every transaction shares (as the outbox row of a cohort is).
    RawPostgresSharedRow(PgPool),
}

const RAW_INSERT: &str = "INSERT INTO raw_observations (township, data_year, population, fiscal_revenue, land_area, \
                          source, recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const RAW_SHARED_ROW: &str = "INSERT INTO raw_jobs (id, generation) VALUES (1, 1) \
                              ON CONFLICT (id) DO UPDATE SET generation = raw_jobs.generation + 1";

impl Writer {
    async fn write(&mut self, target: &Target, values: cpb::IndicatorValues) {
        macro_rules! raw_insert {
            ($tx:expr) => {
                sqlx::query(RAW_INSERT)
                    .bind(&target.code)
                    .bind(i64::from(YEAR))
                    .bind(values.population)
                    .bind(values.fiscal_revenue)
                    .bind(values.land_area)
                    .bind("benchmark")
                    .bind(now_ms())
                    .bind("bench")
                    .execute(&mut *$tx)
                    .await
                    .expect("raw INSERT")
            };
        }
        match self {
            Writer::Registry(client) => record(client, &target.name, values, "benchmark").await,
            Writer::RawSqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("BEGIN IMMEDIATE");
                raw_insert!(tx);
                tx.commit().await.expect("COMMIT");
            }
            Writer::RawPostgres(pool) => {
                let mut tx = pool.begin().await.expect("BEGIN");
                raw_insert!(tx);
                tx.commit().await.expect("COMMIT");
            }
            Writer::RawPostgresSharedRow(pool) => {
                let mut tx = pool.begin().await.expect("BEGIN");
                raw_insert!(tx);
                sqlx::query(RAW_SHARED_ROW).execute(&mut *tx).await.expect("shared-row upsert");
                tx.commit().await.expect("COMMIT");
            }
        }
    }
}

/// What one writer did at one concurrency during the measuring window.
struct LoadResult {
    writes_per_second: f64,
    latency_us: Histogram<u64>,
    window_start: Instant,
    window_end: Instant,
    cpu: CpuUse,
}

impl LoadResult {
    fn p50_ms(&self) -> f64 {
        self.latency_us.value_at_quantile(0.5) as f64 / 1e3
    }

    fn p99_ms(&self) -> f64 {
        self.latency_us.value_at_quantile(0.99) as f64 / 1e3
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// Keeps `concurrency` writes in flight for `warm_up + window`, each to a random township; latencies of the
/// writes acked inside the window are recorded and throughput is their count over the window.
async fn load(
    writer: &Writer,
    townships: &Arc<Vec<Target>>,
    concurrency: usize,
    warm_up: Duration,
    window: Duration,
) -> LoadResult {
    let window_start = Instant::now() + warm_up;
    let window_end = window_start + window;
    let cpu_sampler = tokio::spawn(async move {
        tokio::time::sleep_until(window_start.into()).await;
        let start = CpuTimes::now();
        tokio::time::sleep_until(window_end.into()).await;
        CpuTimes::now().since(&start)
    });
    let mut tasks = JoinSet::new();
    for worker in 0..concurrency {
        let mut writer = writer.clone();
        let townships = Arc::clone(townships);
        tasks.spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(SEED.wrapping_add(worker as u64 + 1));
            let mut latency_us = histogram();
            loop {
                let target = &townships[rng.random_range(0..townships.len())];
                let values = random_values(&mut rng);
                let sent = Instant::now();
                if sent >= window_end {
                    break;
                }
                writer.write(target, values).await;
                let done = Instant::now();
                if done >= window_start && done < window_end {
                    latency_us
                        .saturating_record(u64::try_from(done.duration_since(sent).as_micros()).unwrap_or(u64::MAX));
                }
            }
            latency_us
        });
    }
    let mut latency_us = histogram();
    while let Some(worker) = tasks.join_next().await {
        latency_us.add(worker.expect("load worker")).expect("histograms with equal bounds");
    }
    LoadResult {
        writes_per_second: latency_us.len() as f64 / window.as_secs_f64(),
        latency_us,
        window_start,
        window_end,
        cpu: cpu_sampler.await.expect("CPU sampler"),
    }
}

/// Machine-wide CPU use over a window, from `/proc/stat` (all processes, the database server's included).
#[derive(Debug, Clone, Copy, Default)]
struct CpuUse {
    /// Busy share of all CPUs (user, nice, system, irq, softirq, steal), 0–100.
    busy: f64,
    /// Share of all CPUs idle while waiting for I/O, 0–100.
    iowait: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct CpuTimes {
    busy: u64,
    iowait: u64,
    total: u64,
}

impl CpuTimes {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let Some(line) = stat.lines().find(|line| line.starts_with("cpu ")) else { return Self::default() };
        let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (guest time is included in user).
        let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
        Self { busy, iowait: field(4), total: busy + field(3) + field(4) }
    }

    fn since(&self, start: &Self) -> CpuUse {
        let total = self.total.saturating_sub(start.total).max(1) as f64;
        CpuUse {
            busy: 100.0 * self.busy.saturating_sub(start.busy) as f64 / total,
            iowait: 100.0 * self.iowait.saturating_sub(start.iowait) as f64 / total,
        }
    }
}

/// One writer at one concurrency in a throughput table.
struct ThroughputRow {
    label: &'static str,
    concurrency: usize,
    result: LoadResult,
    /// `Classify` calls the worker completed inside the window (registry rows only).
    classifier_calls: Option<usize>,
    /// The raw loop's row is the baseline of the others at the same concurrency.
    baseline: bool,
}

const RAW_LABEL: &str = "raw `INSERT` commit loop";
const PARKED_LABEL: &str = "registry, worker parked (its `Classify` held unanswered)";
const REGISTRY_LABEL: &str = "registry `RecordIndicators`";

/// At each concurrency, in this order: the raw loop, the extra raw loop if any, the registry with its worker
/// parked, and the registry as deployed. After each registry row the bench waits (untimed) until the cohort is
/// CURRENT, so that every row starts with an idle worker.
fn throughput_rows(
    settings: Settings,
    client_runtime: &Runtime,
    classifier: &Classifier,
    registry_client: &Client,
    raw: &[(&'static str, Writer)],
    townships: &Arc<Vec<Target>>,
) -> Vec<ThroughputRow> {
    let mut rows = Vec::new();
    let (warm_up, window) = (settings.warm_up, settings.window);
    for concurrency in CONCURRENCY {
        for (index, (label, writer)) in raw.iter().enumerate() {
            let result = client_runtime.block_on(load(writer, townships, concurrency, warm_up, window));
            rows.push(ThroughputRow { label, concurrency, result, classifier_calls: None, baseline: index == 0 });
        }
        for (label, parked) in [(PARKED_LABEL, true), (REGISTRY_LABEL, false)] {
            classifier.take_calls();
            if parked {
                classifier.hold();
            }
            let result = client_runtime.block_on(async {
                let writer = Writer::Registry(registry_client.clone());
                let result = load(&writer, townships, concurrency, warm_up, window).await;
                classifier.release();
                wait_until_current(&mut registry_client.clone(), CITY, YEAR).await;
                result
            });
            let calls = classifier
                .take_calls()
                .iter()
                .filter(|call| call.answered >= result.window_start && call.answered < result.window_end)
                .count();
            rows.push(ThroughputRow { label, concurrency, result, classifier_calls: Some(calls), baseline: false });
        }
    }
    rows
}

fn print_throughput(settings: Settings, title: &str, rows: &[ThroughputRow]) {
    report!(settings, "{title}\n");
    report!(
        settings,
        "| writer | in flight | acked writes/s | p50 ms | p99 ms | writes | worker `Classify` calls | CPU busy | iowait |"
    );
    report!(settings, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let result = &row.result;
        report!(
            settings,
            "| {} | {} | {:.1} | {:.2} | {:.2} | {} | {} | {:.0} % | {:.0} % |",
            row.label,
            row.concurrency,
            result.writes_per_second,
            result.p50_ms(),
            result.p99_ms(),
            result.latency_us.len(),
            row.classifier_calls.map_or_else(|| "–".to_owned(), |c| c.to_string()),
            result.cpu.busy,
            result.cpu.iowait,
        );
    }
    report!(settings, "");
    report!(settings, "Each writer ÷ the raw `INSERT` loop at the same concurrency:\n");
    report!(settings, "| writer | in flight | writes/s ratio | p50 ratio | p99 ratio |\n|---|---:|---:|---:|---:|");
    for row in rows.iter().filter(|row| !row.baseline) {
        let Some(raw) = rows.iter().find(|raw| raw.baseline && raw.concurrency == row.concurrency) else { continue };
        report!(
            settings,
            "| {} | {} | {:.2} | {:.2} | {:.2} |",
            row.label,
            row.concurrency,
            row.result.writes_per_second / raw.result.writes_per_second,
            row.result.p50_ms() / raw.result.p50_ms(),
            row.result.p99_ms() / raw.result.p99_ms(),
        );
    }
    report!(settings, "");
}

/// The township whose indicators the update → visible loop and the step timings move: the first of the city
/// (in code order) that is not a sub-district (街道).
fn pick_target(townships: &[pb::Township]) -> pb::Township {
    townships.iter().find(|t| t.kind != cpb::TownshipKind::Subdistrict as i32).unwrap_or(&townships[0]).clone()
}

fn targets(townships: &[pb::Township]) -> Arc<Vec<Target>> {
    Arc::new(townships.iter().map(|t| Target { name: t.name.clone(), code: t.code.clone() }).collect())
}

// ---------------------------------------------------------------------------------------------------------
// SQLite

/// Sections 1 and 2; returns the worker's step timings before and after section 2 for section 4.
fn sqlite_part(
    settings: Settings,
    server: &Runtime,
    client_runtime: &Runtime,
    classifier: &Classifier,
    dir: &Path,
) -> Vec<StepTimes> {
    let database_url = format!("sqlite://{}", dir.join("registry.db").display());
    let registry = server.block_on(start_registry(&database_url, &classifier.url));
    let mut client = client_runtime.block_on(connect(&registry.url()));
    let townships = client_runtime.block_on(prepare_changsha(&mut client));
    let target = pick_target(&townships);
    let target_label = format!("{} ({})", target.display_name, target.code);
    let (samples, high, low) =
        client_runtime.block_on(update_to_visible(&mut client, classifier, &target.name, settings.iterations));
    print_update_table(settings, &samples, &target_label, (high, low));

    // The worker's steps on the same file with the registry stopped, then the registry again.
    server.block_on(registry.stop());
    let samples = settings.breakdown_samples;
    let mut before =
        server.block_on(worker_steps(samples, "SQLite, before 2", &database_url, classifier, &target.name));
    let registry = server.block_on(start_registry(&database_url, &classifier.url));
    let client = client_runtime.block_on(connect(&registry.url()));

    let raw_url = format!("sqlite://{}", dir.join("raw.db").display());
    let (raw_pool, version) = client_runtime.block_on(raw_sqlite(&raw_url, SqliteSynchronous::Full));
    let unsynced_url = format!("sqlite://{}", dir.join("raw-normal.db").display());
    let (unsynced_pool, _) = client_runtime.block_on(raw_sqlite(&unsynced_url, SqliteSynchronous::Normal));
    let rows = throughput_rows(
        settings,
        client_runtime,
        classifier,
        &client,
        &[
            (RAW_LABEL, Writer::RawSqlite(raw_pool.clone())),
            (
                "reference: the raw loop without a flush at commit (`synchronous=NORMAL`)",
                Writer::RawSqlite(unsynced_pool.clone()),
            ),
        ],
        &targets(&townships),
    );
    client_runtime.block_on(unsynced_pool.close());
    report!(settings, "## 2. Sustained durable writes: SQLite\n");
    report!(
        settings,
        "SQLite {version}. Raw loop: another file in the same directory, `journal_mode=WAL`, `synchronous=FULL`, \
         `foreign_keys=ON`, one writer connection (as the registry's write pool), each write `BEGIN IMMEDIATE`; \
         one `INSERT` into a table shaped like `indicator_observations`; `COMMIT`. The reference row is the same \
         loop on a third file with `synchronous=NORMAL`, which in WAL mode does not flush the log at commit (not \
         durable after a power loss): the difference is the cost of the flush. Registry: `RecordIndicators` \
         over one shared HTTP/2 connection, a random township of 长沙市 and random realistic values per write; its \
         worker reclassifies the cohort meanwhile, as in production. {:.1} s warm-up, then a {:.1} s window per \
         row; raw and registry alternate. CPU busy and iowait are machine-wide shares of all CPUs in the window.\n",
        settings.warm_up.as_secs_f64(),
        settings.window.as_secs_f64()
    );
    print_throughput(settings, "### 2a. Acked writes", &rows);

    drop(client);
    server.block_on(registry.stop());
    let after = server.block_on(worker_steps(samples, "SQLite, after 2", &database_url, classifier, &target.name));
    let raw = Writer::RawSqlite(raw_pool.clone());
    before.raw_upserts = Some(client_runtime.block_on(raw_upserts(&raw, &before.answer, samples)));
    client_runtime.block_on(raw_pool.close());
    vec![before, after]
}

/// The raw SQLite loop's pool: the registry's settings (but `synchronous` as given), one connection, a table
/// shaped like the registry's.
async fn raw_sqlite(url: &str, synchronous: SqliteSynchronous) -> (SqlitePool, String) {
    let expected = match synchronous {
        SqliteSynchronous::Full => 2,
        SqliteSynchronous::Normal => 1,
        _ => unreachable!("FULL or NORMAL"),
    };
    let options = SqliteConnectOptions::from_str(url)
        .expect("SQLite URL")
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool =
        SqlitePoolOptions::new().max_connections(1).connect_with(options).await.expect("open the raw SQLite file");
    sqlx::query(
        "CREATE TABLE raw_observations (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, township TEXT NOT NULL, \
         data_year INTEGER NOT NULL, population REAL NOT NULL, fiscal_revenue REAL NOT NULL, land_area REAL NOT NULL, \
         source TEXT NOT NULL, recorded_at INTEGER NOT NULL, recorded_by TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("create the raw table");
    sqlx::query("CREATE INDEX raw_observations_by_township ON raw_observations (township, data_year, id)")
        .execute(&pool)
        .await
        .expect("create the raw index");
    sqlx::query(RAW_CLASSES_TABLE).execute(&pool).await.expect("create the raw classes table");
    let (journal, synchronous): (String, i64) = (
        sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&pool).await.expect("journal_mode"),
        sqlx::query_scalar("PRAGMA synchronous").fetch_one(&pool).await.expect("synchronous"),
    );
    assert!(journal.eq_ignore_ascii_case("wal") && synchronous == expected, "raw SQLite pragmas not as set");
    let version: String = sqlx::query_scalar("SELECT sqlite_version()").fetch_one(&pool).await.expect("version");
    (pool, version)
}

// ---------------------------------------------------------------------------------------------------------
// PostgreSQL

/// Section 3 (or a line saying why it was skipped); returns the worker's step timings for section 4.
fn postgres_part(
    settings: Settings,
    server: &Runtime,
    client_runtime: &Runtime,
    classifier: &Classifier,
) -> Vec<StepTimes> {
    let admin_url = std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let database = match client_runtime.block_on(TestDatabase::postgres(&admin_url)) {
        Ok(database) => database,
        Err(error) => {
            println!(
                "## 3. Sustained durable writes: PostgreSQL — SKIPPED\n\nPart 3 was skipped: no database could be \
                 created on the PostgreSQL server at {} ({error:#}). Start it (`source scripts/postgres.sh; \
                 ensure_local_postgres`) or set BENCH_POSTGRES_URL to an admin URL whose role may CREATE DATABASE.\n",
                township_registry::app::redact(&admin_url)
            );
            return Vec::new();
        }
    };
    // The database is dropped with its guard, after a panic too.
    postgres_rows(settings, server, client_runtime, classifier, database.url())
}

fn postgres_rows(
    settings: Settings,
    server: &Runtime,
    client_runtime: &Runtime,
    classifier: &Classifier,
    database_url: &str,
) -> Vec<StepTimes> {
    let registry = server.block_on(start_registry(database_url, &classifier.url));
    let mut client = client_runtime.block_on(connect(&registry.url()));
    let townships = client_runtime.block_on(prepare_changsha(&mut client));
    let target = pick_target(&townships);
    drop(client);
    server.block_on(registry.stop());
    let samples = settings.breakdown_samples;
    let mut before =
        server.block_on(worker_steps(samples, "PostgreSQL, before 3a", database_url, classifier, &target.name));
    let registry = server.block_on(start_registry(database_url, &classifier.url));
    let client = client_runtime.block_on(connect(&registry.url()));

    let raw = client_runtime.block_on(async {
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .connect(database_url)
            .await
            .expect("connect for the raw loop");
        sqlx::query(
            "CREATE TABLE raw_observations (id BIGSERIAL PRIMARY KEY, township TEXT NOT NULL, data_year BIGINT NOT NULL, \
             population DOUBLE PRECISION NOT NULL, fiscal_revenue DOUBLE PRECISION NOT NULL, \
             land_area DOUBLE PRECISION NOT NULL, source TEXT NOT NULL, recorded_at BIGINT NOT NULL, \
             recorded_by TEXT NOT NULL)",
        )
        .execute(&pool)
        .await
        .expect("create the raw table");
        sqlx::query("CREATE INDEX raw_observations_by_township ON raw_observations (township, data_year, id)")
            .execute(&pool)
            .await
            .expect("create the raw index");
        sqlx::query("CREATE TABLE raw_jobs (id BIGINT PRIMARY KEY, generation BIGINT NOT NULL)")
            .execute(&pool)
            .await
            .expect("create the shared-row table");
        sqlx::query(RAW_CLASSES_TABLE).execute(&pool).await.expect("create the raw classes table");
        pool
    });
    let unsynced = client_runtime.block_on(async {
        let options = sqlx::postgres::PgConnectOptions::from_str(database_url)
            .expect("PostgreSQL URL")
            .options([("synchronous_commit", "off")]);
        PgPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .connect_with(options)
            .await
            .expect("connect for the unsynced raw loop")
    });
    let mut server_settings = Vec::new();
    for setting in ["server_version", "synchronous_commit", "fsync", "wal_sync_method", "commit_delay"] {
        let value: String = client_runtime
            .block_on(sqlx::query_scalar(&format!("SHOW {setting}")).fetch_one(&raw))
            .unwrap_or_else(|_| "?".to_owned());
        server_settings.push(format!("`{setting}={value}`"));
    }

    let rows = throughput_rows(
        settings,
        client_runtime,
        classifier,
        &client,
        &[
            (RAW_LABEL, Writer::RawPostgres(raw.clone())),
            (
                "reference: the raw loop without waiting for the flush (`synchronous_commit=off`)",
                Writer::RawPostgres(unsynced.clone()),
            ),
            ("raw `INSERT` + upsert of one shared row", Writer::RawPostgresSharedRow(raw.clone())),
        ],
        &targets(&townships),
    );
    client_runtime.block_on(unsynced.close());
    report!(settings, "## 3. Sustained durable writes: PostgreSQL\n");
    report!(
        settings,
        "A fresh database on the local server ({}), dropped at the end. Registry: as in 2, with a `postgres://` \
         URL (its pool: {POSTGRES_CONNECTIONS} connections). Raw loop: a pool of {POSTGRES_CONNECTIONS} \
         connections, `BEGIN`; one `INSERT` into a table shaped like `indicator_observations`; `COMMIT`; the \
         reference row runs it on connections with `synchronous_commit=off` (the commit does not wait for the WAL \
         flush). The \
         shared-row loop adds, in the same transaction, an upsert of one row all writers share, as \
         `RecordIndicators` does to its cohort's outbox row. {:.1} s warm-up, then a {:.1} s window per row.\n",
        server_settings.join(", "),
        settings.warm_up.as_secs_f64(),
        settings.window.as_secs_f64()
    );
    print_throughput(settings, "### 3a. Acked writes", &rows);

    drop(client);
    server.block_on(registry.stop());
    let after = server.block_on(worker_steps(samples, "PostgreSQL, after 3a", database_url, classifier, &target.name));
    before.raw_upserts =
        Some(client_runtime.block_on(raw_upserts(&Writer::RawPostgres(raw.clone()), &before.answer, samples)));
    client_runtime.block_on(raw.close());
    vec![before, after]
}

// ---------------------------------------------------------------------------------------------------------
// The machine

/// `/proc/loadavg`'s 1, 5 and 15-minute figures: anything near or above the CPU count means other work shared
/// the machine and the figures are pessimistic.
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
