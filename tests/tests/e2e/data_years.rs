//! Data years end to end (issue 11 §1): a partial new year stays provisional, the official class stays the
//! current year's for the write-time limits, compliance and the class views alike, and adopting the year
//! switches them all together.

use tonic::Code;
use township_e2e::*;
use township_proto::classifier::v1 as cpb;
use township_proto::registry::v1 as pb;

const CHANGSHA: &str = "cities/4301";
/// 长沙市 has 172 township-level rows in the 2023 division codes.
const CHANGSHA_TOWNSHIPS: u32 = 172;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_year_stays_provisional_and_limits_agree_with_compliance_until_it_is_adopted() {
    a_partial_year_stays_provisional_until_adopted_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_year_stays_provisional_and_limits_agree_with_compliance_until_it_is_adopted_on_postgres() {
    a_partial_year_stays_provisional_until_adopted_on(Backend::Postgres).await;
}

async fn data_years(client: &mut Client) -> pb::ListDataYearsResponse {
    let request = pb::ListDataYearsRequest { parent: CHANGSHA.to_owned(), ..Default::default() };
    client.list_data_years(request).await.unwrap().into_inner()
}

async fn official_class(client: &mut Client, township: &str) -> pb::TownshipClass {
    let request = pb::GetTownshipClassRequest { township: township.to_owned(), data_year: 0 };
    client.get_township_class(request).await.unwrap().into_inner()
}

async fn create_post(client: &mut Client, township: &str, role: &str) -> Result<pb::LeadershipPost, tonic::Status> {
    let post = pb::LeadershipPost { role: role.to_owned(), ..Default::default() };
    let request =
        pb::CreateLeadershipPostRequest { parent: township.to_owned(), post: Some(post), ..Default::default() };
    client.create_leadership_post(as_actor("bianban", request)).await.map(tonic::Response::into_inner)
}

/// Creates posts until the registry refuses one, and returns how many the township then holds; checks that
/// compliance over the township does not flag them (`posts.quota`).
async fn posts_accepted_and_not_flagged(client: &mut Client, township: &str) -> usize {
    let mut n = 0;
    loop {
        match create_post(client, township, &format!("副职{n}")).await {
            Ok(_) => n += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert!(status.message().contains("leadership posts"), "{}", status.message());
                break;
            }
        }
        assert!(n < 100, "no limit on posts");
    }
    let request = pb::ListLeadershipPostsRequest { parent: township.to_owned(), page_size: 100, ..Default::default() };
    let held = client.list_leadership_posts(request).await.unwrap().into_inner().posts.len();
    let report = client
        .get_compliance_report(pb::GetComplianceReportRequest { scope: township.to_owned() })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !report.findings.iter().any(|f| f.rule == "posts.quota"),
        "compliance flags the {held} posts the limits accepted: {:?}",
        report.findings
    );
    held
}

async fn a_partial_year_stays_provisional_until_adopted_on(backend: Backend) {
    let mut app = TestApp::spawn_on(backend).await;
    app.import("4301").await;
    let townships = app.townships(CHANGSHA).await;
    app.record_generated(&townships, 2023, 7).await;
    app.wait_until_current(CHANGSHA, 2023).await;
    let classes_2023 = app.classes(CHANGSHA, 2023).await;
    let class3: Vec<&pb::TownshipClass> = classes_2023.iter().filter(|c| c.effective_class == 3).collect();
    assert!(class3.len() >= 2, "the sample has class-3 townships");
    // absent: class 3 in 2023, no 2024 data. rising: class 3 in 2023, class 1 in a two-township 2024 cohort.
    let (absent, rising) = (class3[0].township.clone(), class3[1].township.clone());
    let other = classes_2023.iter().find(|c| c.township != absent && c.township != rising).unwrap().township.clone();

    let client = &mut app.client;
    let observation = |township: &str, scale: f64| pb::IndicatorObservation {
        township: township.to_owned(),
        data_year: 2024,
        values: Some(cpb::IndicatorValues {
            population: 10.0 * scale,
            fiscal_revenue: 10_000.0 * scale,
            land_area: 100.0 * scale,
        }),
        source: "2024 partial return".to_owned(),
        ..Default::default()
    };
    let request = pb::BatchRecordIndicatorsRequest {
        observations: vec![observation(&rising, 1.0), observation(&other, 0.1)],
        ..Default::default()
    };
    client.batch_record_indicators(as_actor("statistician", request)).await.unwrap();
    wait_until_current(client, CHANGSHA, 2024).await;
    let classes_2024 = all_classes(client, CHANGSHA, 2024).await;
    assert_eq!(classes_2024.len(), 2, "2024 is classified live, as a provisional cohort");
    assert_eq!(classes_2024.iter().find(|c| c.township == rising).unwrap().effective_class, 1);

    // 2024 is provisional; 2023 stays current, for every view without a year.
    let years = data_years(client).await;
    assert_eq!(years.current_year, 2023);
    let summary: Vec<_> = years
        .years
        .iter()
        .map(|y| (y.data_year, y.townships_with_data, y.townships_in_force, y.state(), y.adoption.is_some()))
        .collect();
    assert_eq!(
        summary,
        [
            (2024, 2, CHANGSHA_TOWNSHIPS, pb::DataYearState::Provisional, false),
            (2023, CHANGSHA_TOWNSHIPS, CHANGSHA_TOWNSHIPS, pb::DataYearState::Current, false),
        ]
    );
    let listed = client
        .list_township_classes(pb::ListTownshipClassesRequest {
            parent: CHANGSHA.to_owned(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((listed.data_year, listed.classes.len()), (2023, 172), "not 2 townships classed against each other");
    let class = official_class(client, &rising).await;
    assert_eq!((class.data_year, class.effective_class), (2023, 3));

    // The limits accept exactly what compliance does not flag: the 2023 class 3's 9 posts.
    assert_eq!(posts_accepted_and_not_flagged(client, &absent).await, 9, "the issue's class-3 township");
    assert_eq!(posts_accepted_and_not_flagged(client, &rising).await, 9);

    // Adopting 2024 switches the limits, compliance and the views together.
    let bad = client
        .adopt_data_year(pb::AdoptDataYearRequest {
            parent: CHANGSHA.to_owned(),
            data_year: 2024,
            adopted_on: "2025/03/01".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let request = pb::AdoptDataYearRequest {
        parent: CHANGSHA.to_owned(),
        data_year: 2024,
        document_number: "长政办发〔2025〕3号".to_owned(),
        adopted_on: "2025-03-01".to_owned(),
        reason: "2024 年度数据先行采用".to_owned(),
        request_id: "adopt-2024".to_owned(),
    };
    let adoption = client.adopt_data_year(as_actor("city-admin", request.clone())).await.unwrap().into_inner();
    // A retry with the same request_id replays the adoption and changes nothing; the id with a changed request
    // is refused.
    let retried = client.adopt_data_year(as_actor("city-admin", request.clone())).await.unwrap().into_inner();
    assert_eq!(retried, adoption);
    let changed = pb::AdoptDataYearRequest { reason: "另一个理由".to_owned(), ..request.clone() };
    let reused = client.adopt_data_year(changed).await.unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
    assert!(reused.message().contains("adopt-2024"), "{}", reused.message());
    let request = pb::AdoptDataYearRequest { request_id: String::new(), ..request };
    assert_eq!((adoption.data_year, adoption.townships_in_force), (2024, CHANGSHA_TOWNSHIPS));
    assert_eq!(adoption.townships_without_data.len(), 170);
    assert!(adoption.townships_without_data.contains(&absent) && !adoption.townships_without_data.contains(&rising));
    assert_eq!(adoption.adopted_by, "anonymous (authentication disabled); note: city-admin");
    let again = client.adopt_data_year(request).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);

    let years = data_years(client).await;
    assert_eq!(years.current_year, 2024);
    assert_eq!(years.years[0].state(), pb::DataYearState::Current);
    assert_eq!(years.years[0].adoption.as_ref(), Some(&adoption));
    assert_eq!(years.years[1].state(), pb::DataYearState::Complete);
    let class = official_class(client, &rising).await;
    assert_eq!((class.data_year, class.effective_class), (2024, 1));
    assert_eq!(posts_accepted_and_not_flagged(client, &rising).await, 13, "class 1's 13 posts");
    let class = official_class(client, &absent).await;
    assert_eq!((class.data_year, class.effective_class), (2024, 0), "no class in the adopted year");

    app.stop().await;
}
