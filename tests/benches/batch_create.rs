//! What the batch creates buy a spreadsheet import: 长沙市's institutions (172 townships × 6 offices and units,
//! 1,032 records) created over gRPC on a fresh SQLite registry, three ways, in the same run:
//! one `CreateInstitution` at a time (the baseline), 16 in flight, and one `BatchCreateInstitutions`.
//!
//! `cargo bench -p township-e2e --bench batch_create` prints a markdown table; without `--bench` (as
//! `cargo test --benches` runs it) every path runs once on a few records and nothing is printed.

use std::time::{Duration, Instant};

use township_e2e::{TestClassifier, TestRegistry, all_townships, import, temp_sqlite};
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
                    ..Default::default()
                }),
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

/// Creates every request on a fresh registry the given way; returns the elapsed time.
async fn create(way: Way, limit: Option<usize>) -> Duration {
    let classifier = TestClassifier::spawn().await;
    let (_dir, url) = temp_sqlite();
    let registry = TestRegistry::spawn(&url, &classifier.url()).await;
    let mut client = registry.client().await;
    import(&mut client, "4301").await;
    let mut townships = all_townships(&mut client, "cities/4301").await;
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
                .batch_create_institutions(pb::BatchCreateInstitutionsRequest { requests, validate_only: false })
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
    registry.stop().await;
    classifier.stop().await;
    elapsed
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
        return;
    }
    let mut medians = Vec::new();
    for (way, _) in ways {
        let mut times: Vec<Duration> = (0..ROUNDS).map(|_| runtime.block_on(create(way, None))).collect();
        times.sort();
        medians.push(times[ROUNDS / 2]);
    }
    let baseline = medians[0].as_secs_f64();
    println!("| 1,032 institutions of 长沙市, SQLite | median of {ROUNDS} | records/s | time ÷ baseline |");
    println!("|---|---:|---:|---:|");
    for ((_, label), median) in ways.iter().zip(&medians) {
        let seconds = median.as_secs_f64();
        println!("| {label} | {:.0} ms | {:.0} | {:.3} |", seconds * 1000.0, 1032.0 / seconds, seconds / baseline);
    }
}
