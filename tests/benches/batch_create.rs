//! What the batch creates buy a spreadsheet import: 长沙市's institutions (172 townships × 6 offices and units,
//! 1,032 records) created over gRPC on a fresh SQLite registry, three ways, in the same run:
//! one `CreateInstitution` at a time (the baseline), 16 in flight, and one `BatchCreateInstitutions`. Then
//! what a re-imported indicator file costs: one `BatchRecordIndicators` of 长沙市's 172 townships with new values
//! (the baseline), the same file again (every row unchanged: nothing stored), and new values once more.
//!
//! `cargo bench -p township-e2e --bench batch_create` prints a markdown table; without `--bench` (as
//! `cargo test --benches` runs it) every path runs once on a few records and nothing is printed.

use std::time::{Duration, Instant};

use township_e2e::TestApp;
use township_proto::registry::v1 as pb;

const OFFICES: [&str; 6] =
    ["党政办公室", "经济发展办公室", "社会事务办公室", "自然资源办公室", "社会治安办公室", "党建办公室"];
const ROUNDS: usize = 3;

fn requests(townships: &[pb::Township]) -> Vec<pb::CreateInstitutionRequest> {
    townships
        .iter()
        .flat_map(|township| {
            OFFICES.iter().map(|name| pb::CreateInstitutionRequest {
                parent: township.name.clone(),
                institution: Some(pb::Institution {
                    kind: pb::InstitutionKind::PartyGovernmentOffice.into(),
                    display_name: (*name).to_owned(),
                    staffing_quota: 5,
                    approving_document: "长编办发〔2024〕1号".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Way {
    OneAtATime,
    SixteenInFlight,
    OneBatch,
}

/// Creates every request on a fresh registry the given way; returns the elapsed time and the record count.
async fn create(way: Way, limit: Option<usize>) -> (Duration, usize) {
    let mut app = TestApp::spawn().await;
    app.import("4301").await;
    let mut townships = app.townships("cities/4301").await;
    let client = &mut app.client;
    if let Some(limit) = limit {
        townships.truncate(limit);
    }
    let requests = requests(&townships);
    let count = requests.len();
    let started = Instant::now();
    match way {
        Way::OneAtATime => {
            for request in requests {
                client.create_institution(request).await.expect("create");
            }
        }
        Way::SixteenInFlight => {
            let mut in_flight = tokio::task::JoinSet::new();
            for request in requests {
                if in_flight.len() == 16 {
                    in_flight.join_next().await.expect("a call").expect("task");
                }
                let mut client = client.clone();
                in_flight.spawn(async move { client.create_institution(request).await.expect("create") });
            }
            while let Some(done) = in_flight.join_next().await {
                done.expect("task");
            }
        }
        Way::OneBatch => {
            client
                .batch_create_institutions(pb::BatchCreateInstitutionsRequest {
                    requests,
                    validate_only: false,
                    ..Default::default()
                })
                .await
                .expect("batch");
        }
    }
    let elapsed = started.elapsed();
    let listed = client
        .list_institutions(pb::ListInstitutionsRequest { parent: townships[0].name.clone(), ..Default::default() })
        .await
        .expect("list")
        .into_inner()
        .institutions
        .len();
    assert_eq!(listed, OFFICES.len(), "every record of {count} was created");
    app.stop().await;
    (elapsed, count)
}

fn observations(townships: &[pb::Township], population: f64) -> Vec<pb::IndicatorObservation> {
    townships
        .iter()
        .map(|township| pb::IndicatorObservation {
            township: township.name.clone(),
            data_year: 2023,
            values: Some(township_proto::classifier::v1::IndicatorValues {
                population,
                fiscal_revenue: 5000.0,
                land_area: 40.0,
            }),
            source: "bench".to_owned(),
            ..Default::default()
        })
        .collect()
}

/// On a fresh registry: new values, the same again, then other values; the time of each batch call and the
/// number of observations per call.
async fn record_again(limit: Option<usize>) -> ([Duration; 3], usize) {
    let mut app = TestApp::spawn().await;
    app.import("4301").await;
    let mut townships = app.townships("cities/4301").await;
    if let Some(limit) = limit {
        townships.truncate(limit);
    }
    let mut times = [Duration::ZERO; 3];
    for (time, (population, unchanged)) in times.iter_mut().zip([(3.0, 0), (3.0, townships.len()), (3.5, 0)]) {
        let request = pb::BatchRecordIndicatorsRequest {
            observations: observations(&townships, population),
            validate_only: false,
            ..Default::default()
        };
        let started = Instant::now();
        let response = app.client.batch_record_indicators(request).await.expect("record").into_inner();
        *time = started.elapsed();
        assert_eq!(response.unchanged.len(), unchanged);
    }
    app.stop().await;
    (times, townships.len())
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ways = [
        (Way::OneAtATime, "one `CreateInstitution` at a time (baseline)"),
        (Way::SixteenInFlight, "`CreateInstitution`, 16 in flight"),
        (Way::OneBatch, "one `BatchCreateInstitutions`"),
    ];
    if !measuring {
        for (way, _) in ways {
            runtime.block_on(create(way, Some(2)));
        }
        runtime.block_on(record_again(Some(2)));
        return;
    }
    let mut medians = Vec::new();
    let mut count = 0;
    for (way, _) in ways {
        let mut times: Vec<Duration> = (0..ROUNDS)
            .map(|_| {
                let (time, records) = runtime.block_on(create(way, None));
                count = records;
                time
            })
            .collect();
        times.sort();
        medians.push(times[ROUNDS / 2]);
    }
    let baseline = medians[0].as_secs_f64();
    println!("| {count} institutions of 长沙市, SQLite | median of {ROUNDS} | records/s | time ÷ baseline |");
    println!("|---|---:|---:|---:|");
    for ((_, label), median) in ways.iter().zip(&medians) {
        let seconds = median.as_secs_f64();
        let per_second = count as f64 / seconds;
        println!("| {label} | {:.0} ms | {per_second:.0} | {:.3} |", seconds * 1000.0, seconds / baseline);
    }

    let rounds: Vec<([Duration; 3], usize)> = (0..ROUNDS).map(|_| runtime.block_on(record_again(None))).collect();
    let count = rounds[0].1;
    let median = |call: usize| {
        let mut times: Vec<Duration> = rounds.iter().map(|(times, _)| times[call]).collect();
        times.sort();
        times[ROUNDS / 2].as_secs_f64()
    };
    println!();
    println!("| one `BatchRecordIndicators` of {count} townships, SQLite | median of {ROUNDS} | time ÷ baseline |");
    println!("|---|---:|---:|");
    let labels = [
        "new values (baseline)",
        "the same values again (all unchanged: nothing stored)",
        "other values (a second history row each)",
    ];
    for (call, label) in labels.iter().enumerate() {
        println!("| {label} | {:.1} ms | {:.3} |", median(call) * 1000.0, median(call) / median(0));
    }
}
