//! The real `townctl` binary against real servers: a classifier and a registry on loopback sockets (each test
//! its own, with its own SQLite file), or, for `up`, the two child processes `townctl up` starts itself.

use std::{
    path::Path,
    process::{Command, Output, Stdio},
    time::Duration,
};

use rust_xlsxwriter::Workbook;
use township_e2e::{
    TestClassifier, TestRegistry, all_classes, all_townships, import, record_generated, temp_sqlite, wait_until_current,
};
use township_proto::registry::v1 as pb;

struct Services {
    _classifier: TestClassifier,
    classifier_url: String,
    registry: TestRegistry,
    _database: tempfile::TempDir,
}

/// Both services, with 长沙市's divisions imported.
async fn services() -> Services {
    let classifier = TestClassifier::spawn().await;
    let (database, url) = temp_sqlite();
    let registry = TestRegistry::spawn(&url, &classifier.url()).await;
    import(&mut registry.client().await, "4301").await;
    Services { classifier_url: classifier.url(), _classifier: classifier, registry, _database: database }
}

/// Runs townctl with `args` against `registry` on a blocking thread (so the in-process servers keep serving).
async fn townctl(registry: &TestRegistry, args: &[&str]) -> Output {
    let url = registry.url();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_townctl"))
            .args(&args)
            .env("TOWNCTL_REGISTRY_URL", url)
            .env("TOWNCTL_ACTOR", "编办 tester")
            .output()
            .expect("run townctl")
    })
    .await
    .unwrap()
}

fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A CSV as a spreadsheet program saves it: UTF-8 with a BOM, Chinese headers with units.
fn write_csv(path: &Path, lines: &[&str]) {
    std::fs::write(path, format!("\u{feff}{}\r\n", lines.join("\r\n"))).unwrap();
}

async fn observations(registry: &TestRegistry, township: &str) -> usize {
    registry
        .client()
        .await
        .list_indicator_observations(pb::ListIndicatorObservationsRequest {
            parent: township.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .observations
        .len()
}

const GOOD_INDICATORS: [&str; 4] = [
    "430102001,文艺路街道,2023,3.1,\"2,400\",6.5",
    "430102002,朝阳街街道,2023,4.2,5100,3.9",
    "430181110,大瑶镇,2023,6.2,8800,138",
    "430103015,暮云街道,2023,1.2,700,40",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_file_with_bad_rows_is_reported_row_by_row_and_nothing_is_written() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("indicators.csv");
    let mut lines = vec!["乡镇代码,名称,年度,人口（万人）,财政收入（万元）,国土面积（km²）"];
    lines.extend(GOOD_INDICATORS);
    lines.extend([
        "430102003,坡子街街道,2023,abc,1000,5",   // row 6: not a number
        "430102999,不存在街道,2023,1,1000,5",     // row 7: no such township
        "430102001,文艺路街道,2023,3.2,2500,6.5", // row 8: duplicate of row 2
        "43010200,短码,2023,1,1,1",               // row 9: bad code
    ]);
    write_csv(&file, &lines);
    let path = file.to_str().unwrap();

    for extra in [&["--dry-run"][..], &[][..]] {
        let mut args = vec!["--json", "import", "indicators", path];
        args.extend(extra);
        let output = townctl(&services.registry, &args).await;
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        let report = stdout_json(&output);
        let bad: Vec<(u64, String)> = report["bad_rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["row"].as_u64().unwrap(), b["reason"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [6, 7, 8, 9], "{bad:?}");
        assert!(bad[0].1.contains("population \"abc\" is not a number"), "{}", bad[0].1);
        assert!(bad[1].1.contains("430102999 is not in the registry"), "{}", bad[1].1);
        assert!(bad[2].1.contains("already appears in row 2"), "{}", bad[2].1);
        assert!(bad[3].1.contains("not a 9-digit township code"), "{}", bad[3].1);
        assert_eq!(report["committed"], false);
    }
    // Neither the dry run nor the refused import wrote anything.
    let township = "cities/4301/counties/430102/townships/430102001";
    assert_eq!(observations(&services.registry, township).await, 0);

    // With --skip-bad-rows the four good rows go in, in one batch.
    let output = townctl(&services.registry, &["--json", "import", "indicators", path, "--skip-bad-rows"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(stdout_json(&output)["written"], 4);
    assert_eq!(observations(&services.registry, township).await, 1);

    // Importing the same file again records nothing new: the registry keeps one observation per change.
    let output = townctl(&services.registry, &["--json", "import", "indicators", path, "--skip-bad-rows"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = stdout_json(&output);
    assert_eq!((report["unchanged"].as_u64(), report["written"].as_u64()), (Some(4), Some(0)), "{report}");
    assert_eq!(observations(&services.registry, township).await, 1);
}

/// More rows the registry refuses than one answer names (a limit refusal names one request): each answer's rows
/// are taken out and the rest sent again, as often as it takes. (A second law-enforcement unit is what only the
/// registry can judge: townctl refuses implausible indicator values, the registry's other refusal, itself.)
#[tokio::test(flavor = "multi_thread")]
async fn rows_the_registry_refuses_one_answer_at_a_time_are_all_reported_and_the_rest_imported() {
    let services = services().await;
    let townships = all_townships(&mut services.registry.client().await, "cities/4301").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("institutions.csv");
    let mut lines = vec!["乡镇代码,类别,机构名称".to_owned()];
    for township in &townships[..20] {
        lines.push(format!("{},综合行政执法机构,综合行政执法大队", township.code));
        lines.push(format!("{},综合行政执法机构,第二执法大队", township.code));
    }
    write_csv(&file, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let path = file.to_str().unwrap();
    // Each township's second unit: rows 3, 5, …, 41.
    let expected: Vec<u64> = (0..20).map(|i| 3 + 2 * i).collect();

    for extra in [&["--dry-run"][..], &[][..], &["--skip-bad-rows"][..]] {
        let mut args = vec!["--json", "import", "institutions", path];
        args.extend(extra);
        let output = townctl(&services.registry, &args).await;
        let report = stdout_json(&output);
        let bad = report["bad_rows"].as_array().unwrap();
        assert_eq!(bad.iter().map(|b| b["row"].as_u64().unwrap()).collect::<Vec<_>>(), expected, "{report}");
        for row in bad {
            let reason = row["reason"].as_str().unwrap();
            assert!(reason.starts_with("refused by the registry") && reason.contains("law"), "{reason}");
        }
        if extra == ["--skip-bad-rows"] {
            assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
            assert_eq!((report["written"].as_u64(), report["committed"].as_bool()), (Some(20), Some(true)), "{report}");
        } else {
            assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
            assert_eq!(report["committed"], false);
        }
    }
    let first = townships[0].name.clone();
    let listed = services
        .registry
        .client()
        .await
        .list_institutions(pb::ListInstitutionsRequest { parent: first, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.institutions.len(), 1, "its first unit only");
}

/// Rows only the registry can judge (here: a township may have one law-enforcement unit).
const OVER_THE_LIMIT: [&str; 6] = [
    "乡镇代码,类别,机构名称",
    "430102001,综合行政执法机构,综合行政执法大队",
    "430102001,综合行政执法机构,第二执法大队", // row 3: a second unit
    "430102002,党政机构,党政办公室",
    "430102002,综合行政执法机构,执法一队",
    "430102002,综合行政执法机构,执法二队", // row 6: a second unit
];

async fn institution_names(registry: &TestRegistry, township: &str) -> Vec<String> {
    let parent = format!("cities/4301/counties/430102/townships/{township}");
    let request = pb::ListInstitutionsRequest { parent, ..Default::default() };
    let listed = registry.client().await.list_institutions(request).await.unwrap().into_inner();
    listed.institutions.into_iter().map(|i| i.display_name).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_row_the_registry_refuses_is_reported_and_skip_bad_rows_writes_the_rest() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("institutions.csv");
    write_csv(&file, &OVER_THE_LIMIT);
    let path = file.to_str().unwrap();

    for extra in [&["--dry-run"][..], &[][..]] {
        let mut args = vec!["--json", "import", "institutions", path];
        args.extend(extra);
        let output = townctl(&services.registry, &args).await;
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        let report = stdout_json(&output);
        let bad = report["bad_rows"].as_array().unwrap();
        assert_eq!(bad.iter().map(|b| b["row"].as_u64().unwrap()).collect::<Vec<_>>(), [3, 6], "{report}");
        for row in bad {
            let reason = row["reason"].as_str().unwrap();
            assert!(reason.starts_with("refused by the registry") && reason.contains("law"), "{reason}");
        }
        assert_eq!(report["committed"], false);
        assert!(institution_names(&services.registry, "430102001").await.is_empty(), "nothing half-imported");
    }

    let output = townctl(&services.registry, &["--json", "import", "institutions", path, "--skip-bad-rows"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = stdout_json(&output);
    assert_eq!((report["written"].as_u64(), report["bad_rows"].as_array().unwrap().len()), (Some(3), 2), "{report}");
    assert_eq!(institution_names(&services.registry, "430102001").await, ["综合行政执法大队"]);
    assert_eq!(institution_names(&services.registry, "430102002").await, ["党政办公室", "执法一队"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_post_rows_are_separate_posts_and_reimport_unchanged() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("posts.csv");
    // Two deputies not yet named: the same row twice is two posts.
    write_csv(
        &file,
        &["乡镇代码,职务,姓名,规定职务", "430102001,党工委书记,张三,", "430102001,副主任,,", "430102001,副主任,,"],
    );
    let path = file.to_str().unwrap();
    let output = townctl(&services.registry, &["--json", "import", "posts", path]).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(stdout_json(&output)["written"], 3);

    let output = townctl(&services.registry, &["--json", "import", "posts", path]).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = stdout_json(&output);
    assert_eq!((report["unchanged"].as_u64(), report["written"].as_u64()), (Some(3), Some(0)), "{report}");

    // A third deputy in the file is one more post, not "unchanged".
    write_csv(&file, &["乡镇代码,职务", "430102001,副主任", "430102001,副主任", "430102001,副主任"]);
    let output = townctl(&services.registry, &["--json", "import", "posts", path]).await;
    let report = stdout_json(&output);
    assert_eq!((report["unchanged"].as_u64(), report["written"].as_u64()), (Some(2), Some(1)), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_indicators_are_classified_and_shown_with_explanations() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("indicators.csv");
    let mut lines = vec!["code,population,fiscal_revenue,land_area"];
    lines.extend(GOOD_INDICATORS.iter().map(|l| {
        let cells: Vec<&str> = l.splitn(4, ',').collect();
        // Drop the name and year columns: English headers, --data-year for the year.
        Box::leak(format!("{},{}", cells[0], cells[3].replace("\"2,400\"", "2400")).into_boxed_str()) as &str
    }));
    write_csv(&file, &lines);
    let output =
        townctl(&services.registry, &["import", "indicators", file.to_str().unwrap(), "--data-year", "2023"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let mut client = services.registry.client().await;
    wait_until_current(&mut client, "cities/4301", 2023).await;
    let expected = all_classes(&mut client, "cities/4301", 2023).await;
    assert_eq!(expected.len(), 4);

    // 4 of 长沙市's 172 townships: 2023 is provisional, not the city's current year, so a view without a year
    // shows no official classes (issue 11 §1); the year named shows its live classes.
    let output = townctl(&services.registry, &["--json", "classes", "4301"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stdout_json(&output), serde_json::json!([]), "a partial year is not the city's current year");
    let output = townctl(&services.registry, &["--json", "classes", "4301", "--data-year", "2023"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let rows = stdout_json(&output);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        let registered = expected.iter().find(|c| c.township.ends_with(row["code"].as_str().unwrap())).unwrap();
        assert_eq!(row["class"].as_u64().unwrap(), u64::from(registered.effective_class));
        assert!((1..=3).contains(&row["class"].as_u64().unwrap()));
    }
    let table = townctl(&services.registry, &["classes", "4301", "--data-year", "2023"]).await;
    assert!(String::from_utf8_lossy(&table.stdout).contains("大瑶镇"), "{}", describe(&table));

    let output = townctl(&services.registry, &["--json", "explain", "430181110", "--data-year", "2023"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let explanation = stdout_json(&output);
    let contributions: f64 =
        explanation["indicators"].as_array().unwrap().iter().map(|l| l["contribution"].as_f64().unwrap()).sum();
    assert!((contributions - explanation["score"].as_f64().unwrap()).abs() < 1e-6, "{explanation}");
    assert_eq!(explanation["indicators"][0]["raw"], 6.2);
    let words = townctl(&services.registry, &["explain", "430181110", "--data-year", "2023"]).await;
    let words = String::from_utf8_lossy(&words.stdout);
    assert!(
        words.contains("大瑶镇") && words.contains("贡献") && words.contains("在 4 个乡镇（街道）中排第"),
        "{words}"
    );

    // `townctl classes … --json | head`: a reader that leaves early ends townctl quietly (issue 14).
    let url = services.registry.url();
    let quiet = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_townctl"))
            .args(["--json", "classes", "4301", "--data-year", "2023"])
            .env("TOWNCTL_REGISTRY_URL", url)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run townctl");
        drop(child.stdout.take()); // the reader is gone before townctl writes
        child.wait_with_output().expect("townctl ends")
    })
    .await
    .unwrap();
    assert!(quiet.status.success() && quiet.stderr.is_empty(), "{}", describe(&quiet));
}

/// An XLSX file as a spreadsheet program writes it, with a code stored as a number.
fn institutions_workbook(path: &Path) {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("机构").unwrap();
    for (column, header) in ["乡镇代码", "类别", "机构名称", "编制（名）", "批准文号"].iter().enumerate()
    {
        sheet.write_string(0, u16::try_from(column).unwrap(), *header).unwrap();
    }
    let rows = [
        (430102001.0, "党政机构", "党政办公室", 6.0, "长编办发〔2024〕1号"),
        (430102001.0, "党政机构", "经济发展办公室", 5.0, "长编办发〔2024〕1号"),
        (430102001.0, "事业单位", "党群服务中心", 8.0, "长编办发〔2024〕1号"),
        (430102001.0, "综合行政执法机构", "综合行政执法大队", 10.0, "长编办发〔2024〕1号"),
        (430102002.0, "党政机构", "党政办公室", 5.0, "长编办发〔2024〕2号"),
    ];
    for (index, (code, kind, name, quota, document)) in rows.iter().enumerate() {
        let row = u32::try_from(index).unwrap() + 1;
        sheet.write_number(row, 0, *code).unwrap();
        sheet.write_string(row, 1, *kind).unwrap();
        sheet.write_string(row, 2, *name).unwrap();
        sheet.write_number(row, 3, *quota).unwrap();
        sheet.write_string(row, 4, *document).unwrap();
    }
    workbook.save(path).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn xlsx_institutions_import_export_and_reimport_round_trip_equal() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("institutions.xlsx");
    institutions_workbook(&source);
    let source = source.to_str().unwrap();

    let output = townctl(&services.registry, &["--json", "import", "institutions", source, "--dry-run"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stdout_json(&output)["written"], 5);
    let township = "cities/4301/counties/430102/townships/430102001";
    let listed = |registry: &TestRegistry| {
        let registry_url = registry.url();
        async move {
            let channel = tonic::transport::Channel::from_shared(registry_url).unwrap().connect().await.unwrap();
            let mut client = pb::registry_service_client::RegistryServiceClient::new(channel);
            client
                .list_institutions(pb::ListInstitutionsRequest { parent: township.to_owned(), ..Default::default() })
                .await
                .unwrap()
                .into_inner()
                .institutions
        }
    };
    assert!(listed(&services.registry).await.is_empty(), "a dry run writes nothing");

    let output = townctl(&services.registry, &["--json", "import", "institutions", source]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let institutions = listed(&services.registry).await;
    assert_eq!(
        institutions.iter().map(|i| (i.display_name.as_str(), i.staffing_quota)).collect::<Vec<_>>(),
        [("党政办公室", 6), ("经济发展办公室", 5), ("党群服务中心", 8), ("综合行政执法大队", 10)]
    );

    // Export to both formats; each re-imports as "unchanged", and the two exports hold the same rows.
    let xlsx = dir.path().join("export.xlsx");
    let csv = dir.path().join("export.csv");
    for path in [&xlsx, &csv] {
        let output =
            townctl(&services.registry, &["export", "institutions", "430102", "--output", path.to_str().unwrap()])
                .await;
        assert!(output.status.success(), "{}", describe(&output));
        let output = townctl(&services.registry, &["--json", "import", "institutions", path.to_str().unwrap()]).await;
        assert!(output.status.success(), "{}", describe(&output));
        let report = stdout_json(&output);
        assert_eq!((report["unchanged"].as_u64(), report["written"].as_u64()), (Some(5), Some(0)), "{report}");
    }
    let from_xlsx = calamine_rows(&xlsx);
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert!(csv_text.starts_with('\u{feff}'), "the CSV carries a BOM so that spreadsheet programs read it as UTF-8");
    let from_csv: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv_text.trim_start_matches('\u{feff}').as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(from_xlsx, from_csv);
    assert_eq!(from_csv.len(), 1 + 5);
    assert_eq!(from_csv[1][0], "430102001", "codes stay text");
    assert_eq!(listed(&services.registry).await, institutions, "re-importing changed nothing");
    let audit = services
        .registry
        .client()
        .await
        .list_audit_events(pb::ListAuditEventsRequest { resource_prefix: township.to_owned(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events
        .into_iter()
        .filter(|e| e.action == "CreateInstitution")
        .collect::<Vec<_>>();
    assert_eq!(audit.len(), 4, "one event per institution created");
    assert!(
        audit.iter().all(|e| e.actor.ends_with("; note: 编办 tester")),
        "the actor's Chinese name survives the header: {audit:?}"
    );
}

fn calamine_rows(path: &Path) -> Vec<Vec<String>> {
    use calamine::{Reader, open_workbook_auto};
    let mut workbook = open_workbook_auto(path).unwrap();
    let range = workbook.worksheet_range_at(0).unwrap().unwrap();
    range.rows().map(|row| row.iter().map(|cell| cell.to_string()).collect()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn compliance_exits_with_status_2_when_an_error_level_finding_exists() {
    let services = services().await;
    // A township with no institutions and no posts breaks error-level rules (offices.count, posts.mandated_role).
    let output = townctl(&services.registry, &["--json", "compliance", "430102001"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let report = stdout_json(&output);
    let rules: Vec<&str> = report["rules"].as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"offices.count") && rules.contains(&"posts.mandated_role"), "{rules:?}");
    assert_eq!(report["rules"][0]["severity"], "error", "errors come first");
    let errors_only = townctl(&services.registry, &["--json", "compliance", "430102001", "--errors-only"]).await;
    assert!(stdout_json(&errors_only)["rules"].as_array().unwrap().iter().all(|r| r["severity"] == "error"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_service_is_named_with_its_address() {
    let services = services().await;
    let output = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_townctl"))
            .args(["classes", "4301", "--registry", "http://127.0.0.1:9"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot reach the registry at http://127.0.0.1:9"), "{stderr}");
    // A refused call says what the registry said, code and all: an unknown township.
    let output = townctl(&services.registry, &["explain", "430102999"]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NotFound") && stderr.contains("township 430102999"), "{}", describe(&output));

    // `status` asks both services whatever the first answers, and fails when either does not.
    let classifier_url = services.classifier_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_townctl"))
            .args(["--json", "status", "--registry", "http://127.0.0.1:9", "--classifier", &classifier_url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let status = stdout_json(&output);
    assert_eq!(
        (status["classifier"]["serving"].as_bool(), status["registry"]["serving"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(status["registry"]["detail"].as_str().unwrap().contains("127.0.0.1:9"), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_is_one_self_contained_html_file() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("indicators.csv");
    let mut lines = vec!["乡镇代码,名称,年度,人口,财政收入,国土面积"];
    lines.extend(GOOD_INDICATORS);
    write_csv(&file, &lines);
    assert!(townctl(&services.registry, &["import", "indicators", file.to_str().unwrap()]).await.status.success());
    wait_until_current(&mut services.registry.client().await, "cities/4301", 2023).await;
    let html = dir.path().join("report.html");
    // 4 townships of 172: the year is provisional, so the report names it.
    let output =
        townctl(&services.registry, &["report", "4301", "--output", html.to_str().unwrap(), "--data-year", "2023"])
            .await;
    assert!(output.status.success(), "{}", describe(&output));
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("长沙市") && html.contains("大瑶镇") && html.contains("<svg"), "{html}");
    let external = html.replace("http://www.w3.org/2000/svg", "");
    assert!(!external.contains("http://") && !external.contains("https://"), "no network is needed to read it");
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_prints_each_class_change_as_it_happens() {
    let services = services().await;
    let url = services.registry.url();
    let mut watcher = tokio::process::Command::new(env!("CARGO_BIN_EXE_townctl"))
        .args(["--json", "watch", "4301", "--registry", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt as _;
    let mut stdout = tokio::io::BufReader::new(watcher.stdout.take().unwrap()).lines();
    let mut stderr = tokio::io::BufReader::new(watcher.stderr.take().unwrap()).lines();
    // The watcher says so once the registry has subscribed it; a change made before would not be streamed.
    let said = tokio::time::timeout(Duration::from_secs(60), stderr.next_line()).await.unwrap().unwrap().unwrap();
    assert!(said.starts_with("Following class changes of cities/4301"), "{said}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("indicators.csv");
    let mut lines = vec!["乡镇代码,名称,年度,人口,财政收入,国土面积"];
    lines.extend(GOOD_INDICATORS);
    write_csv(&file, &lines);
    assert!(townctl(&services.registry, &["import", "indicators", file.to_str().unwrap()]).await.status.success());
    let line = tokio::time::timeout(Duration::from_secs(60), stdout.next_line()).await.unwrap().unwrap().unwrap();
    let change: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(change["township"].as_str().unwrap().starts_with("cities/4301/"), "{change}");
    assert_eq!(change["previous_class"], 0, "a first classification moves from no class");
    assert!((1..=3).contains(&change["new_class"].as_u64().unwrap()));
}

#[cfg(feature = "up")]
#[tokio::test(flavor = "multi_thread")]
async fn up_loads_hunan_once_and_reuses_it_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let free_port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let run = |dir: std::path::PathBuf, classifier: String, registry: String| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_townctl"))
                .args(["--json", "up", "--exit-after-summary", "--data-dir"])
                .arg(&dir)
                .args(["--classifier-listen", &classifier, "--registry-listen", &registry])
                .output()
                .unwrap()
        })
    };
    let first = run(dir.path().to_owned(), free_port(), free_port()).await.unwrap();
    assert!(first.status.success(), "{}", describe(&first));
    assert!(String::from_utf8_lossy(&first.stderr).contains("loading the Hunan demo"), "{}", describe(&first));
    // The registry requires tokens: the administrator's and the auditor's are minted for the person, owner-only,
    // named in the startup output and never printed.
    for name in ["admin.token", "auditor.token", "signing.key"] {
        let path = dir.path().join("auth").join(name);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        if name.ends_with(".token") {
            assert!(
                String::from_utf8_lossy(&first.stderr).contains(&path.display().to_string()),
                "{}",
                describe(&first)
            );
            let token = std::fs::read_to_string(&path).unwrap();
            assert!(!describe(&first).contains(token.trim()), "the token is not printed");
        }
    }
    let summary = stdout_json(&first);
    let cities = summary["cities"].as_array().unwrap();
    assert_eq!(cities.len(), 14);
    let townships: u64 = cities.iter().map(|c| c["townships"].as_u64().unwrap()).sum();
    assert_eq!(townships, 2008, "1,947 townships and 61 development zones and farms");
    for city in cities {
        let classes: u64 = city["classes"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum();
        assert_eq!(classes, city["townships"].as_u64().unwrap(), "every township classified: {city}");
    }
    let rules = summary["findings_by_rule"].as_object().unwrap();
    let approved = &summary["approved_exceptions_by_rule"]["offices.count"];
    assert!(approved.as_u64().is_some_and(|n| n > 0), "浏阳市's sixth offices are approved exceptions: {summary}");
    for rule in [
        "offices.count",
        "posts.quota",
        "law_enforcement.missing",
        "catalogue.duty_area_uncovered",
        "staffing.institution_over_approved",
        "policy.city_deviation",
    ] {
        assert!(rules.contains_key(rule), "the demo shows {rule}: {rules:?}");
    }

    let second = run(dir.path().to_owned(), free_port(), free_port()).await.unwrap();
    assert!(second.status.success(), "{}", describe(&second));
    assert!(String::from_utf8_lossy(&second.stderr).contains("Reusing the data"), "{}", describe(&second));
    assert_eq!(stdout_json(&second)["cities"], summary["cities"], "the same data, the same classes");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_county_catalogue_template_imports_and_its_township_export_reimports_unchanged() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("catalogue.csv");
    write_csv(
        &template,
        &[
            "所属代码,事项编码,事项名称,事项类型,职责领域,责任机构,法律依据,权力类别,权力来源,服务领域,办理方式",
            "430102,DJ-001,基层党组织建设指导,权力,加强党的建设,党政办,《中国共产党支部工作条例（试行）》,行政检查,法定,,",
            "430102,GG-001,城乡居民养老保险参保登记,公共服务,组织公共服务,政务服务中心,,,,社会保障,直接办理",
            "430102,XX-001,不存在的领域,权力,不存在,党政办,,,,,",
        ],
    );
    let path = template.to_str().unwrap();
    let output = townctl(&services.registry, &["--json", "import", "catalogue", path]).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let report = stdout_json(&output);
    assert_eq!(report["bad_rows"][0]["row"], 4);
    assert!(report["bad_rows"][0]["reason"].as_str().unwrap().contains("duty_area \"不存在\""), "{report}");

    let output = townctl(&services.registry, &["--json", "import", "catalogue", path, "--skip-bad-rows"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stdout_json(&output)["written"], 2);

    // 文艺路街道 inherits both items; its exported catalogue re-imports as unchanged.
    let export = dir.path().join("wenyilu.xlsx");
    let output =
        townctl(&services.registry, &["export", "catalogue", "430102001", "-o", export.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let rows = calamine_rows(&export);
    assert_eq!(rows.len(), 1 + 2, "{rows:?}");
    let output = townctl(&services.registry, &["--json", "import", "catalogue", export.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let report = stdout_json(&output);
    assert_eq!((report["unchanged"].as_u64(), report["written"].as_u64()), (Some(2), Some(0)), "{report}");

    // A row whose code is registered with other details is a bad row, never a silent "unchanged".
    let changed = dir.path().join("changed.csv");
    write_csv(
        &changed,
        &[
            "所属代码,事项编码,事项名称,事项类型,职责领域,责任机构",
            "430102,GG-001,城乡居民养老保险参保登记（新）,公共服务,组织公共服务,政务服务中心",
        ],
    );
    let output = townctl(&services.registry, &["--json", "import", "catalogue", changed.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let reason = stdout_json(&output)["bad_rows"][0]["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("GG-001") && reason.contains("other details"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn divisions_import_by_code_length_and_a_dry_run_writes_nothing() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("xiangtan.csv");
    write_csv(
        &file,
        &[
            "区划代码,名称",
            "4303,湘潭市",
            "430302,雨湖区",
            "430302001,雨湖路街道",
            "43030,坏代码",
            "430302002,城正街街道",
        ],
    );
    let path = file.to_str().unwrap();
    let township = pb::GetTownshipRequest { name: "cities/4303/counties/430302/townships/430302001".to_owned() };

    let output = townctl(&services.registry, &["--json", "import", "divisions", path, "--dry-run"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let report = stdout_json(&output);
    assert_eq!(report["bad_rows"][0]["row"], 5, "{report}");
    assert!(report["bad_rows"][0]["reason"].as_str().unwrap().contains("5 digits"), "{report}");
    let status = services.registry.client().await.get_township(township.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "a dry run writes nothing");

    let output = townctl(&services.registry, &["--json", "import", "divisions", path, "--skip-bad-rows"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stdout_json(&output)["written"], 4);
    let found = services.registry.client().await.get_township(township).await.unwrap().into_inner();
    assert_eq!(found.display_name, "雨湖路街道");
}

/// The observations of a township for a year, latest first: (population, fiscal revenue, land area).
async fn recorded_values(registry: &TestRegistry, township: &str) -> Vec<(f64, f64, f64)> {
    let request = pb::ListIndicatorObservationsRequest { parent: township.to_owned(), ..Default::default() };
    let listed = registry.client().await.list_indicator_observations(request).await.unwrap().into_inner();
    listed
        .observations
        .iter()
        .map(|o| o.values.map(|v| (v.population, v.fiscal_revenue, v.land_area)).unwrap_or_default())
        .collect()
}

fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_header_in_persons_yuan_or_hectares_is_converted_and_the_conversion_printed_once() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("indicators.csv");
    write_csv(
        &file,
        &[
            "乡镇代码,名称,年度,户籍人口（人）,财政收入（元）,面积（公顷）",
            "430102001,文艺路街道,2023,31000,\"24,000,000\",650",
            "430102002,朝阳街街道,2023,42000,51000000,390",
        ],
    );
    let output = townctl(&services.registry, &["import", "indicators", file.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let text = stdout_text(&output);
    for conversion in [
        "column \"户籍人口（人）\" in 人, converted to 万人 (÷10,000)",
        "column \"财政收入（元）\" in 元, converted to 万元 (÷10,000)",
        "column \"面积（公顷）\" in 公顷, converted to km² (÷100)",
    ] {
        assert_eq!(text.matches(conversion).count(), 1, "once per column: {conversion}\n{text}");
    }
    let township = "cities/4301/counties/430102/townships/430102001";
    assert_eq!(recorded_values(&services.registry, township).await, [(3.1, 2400.0, 6.5)], "stored in 万人, 万元, km²");

    // A unit that cannot be converted refuses the file, naming the column, before anything is read as 万人.
    write_csv(&file, &["乡镇代码,人口（户）,财政收入,国土面积", "430102003,12000,700,4"]);
    let output =
        townctl(&services.registry, &["import", "indicators", file.to_str().unwrap(), "--data-year", "2023"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("column \"人口（户）\" states the unit \"户\""), "{stderr}");
    assert_eq!(observations(&services.registry, "cities/4301/counties/430102/townships/430102003").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_population_of_46700_wan_ren_is_refused_as_a_column_in_persons() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("indicators.csv");
    write_csv(
        &file,
        &[
            "乡镇代码,名称,年度,人口（万人）,财政收入（万元）,国土面积（km²）",
            GOOD_INDICATORS[0],
            "430181110,大瑶镇,2023,46700,8800,138",
        ],
    );
    let path = file.to_str().unwrap();
    for extra in [&["--dry-run"][..], &[][..]] {
        let mut args = vec!["--json", "import", "indicators", path];
        args.extend(extra);
        let output = townctl(&services.registry, &args).await;
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        let report = stdout_json(&output);
        assert_eq!(report["bad_rows"].as_array().unwrap().len(), 1, "{report}");
        assert_eq!(report["bad_rows"][0]["row"], 3);
        let reason = report["bad_rows"][0]["reason"].as_str().unwrap();
        assert!(reason.contains("46700 万人 is more than any township has"), "{reason}");
        assert!(
            reason.contains("the column is probably in persons (人), not 万人 as its header says: 4.67 万人"),
            "{reason}"
        );
    }
    assert_eq!(observations(&services.registry, "cities/4301/counties/430181/townships/430181110").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_is_not_the_registrys_is_refused_unless_accepted() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("indicators.csv");
    write_csv(
        &file,
        &[
            "乡镇代码,乡镇名称,年度,人口,财政收入,国土面积",
            "430181110,淳口镇,2023,6.2,8800,138",
            " 430102001 ,文艺路街道办事处 ,2023,3.1,2400,6.5", // the same unit, written longer
            "430102002,,2023,4.2,5100,3.9",                    // no name: nothing to compare
        ],
    );
    let path = file.to_str().unwrap();
    let output = townctl(&services.registry, &["--json", "import", "indicators", path]).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let report = stdout_json(&output);
    let bad = report["bad_rows"].as_array().unwrap();
    assert_eq!(bad.iter().map(|b| b["row"].as_u64().unwrap()).collect::<Vec<_>>(), [2], "{report}");
    let reason = bad[0]["reason"].as_str().unwrap();
    assert!(reason.contains("430181110 is 大瑶镇 in the registry, the sheet says 淳口镇"), "{reason}");
    assert!(reason.contains("--accept-name-mismatch"), "{reason}");
    assert_eq!(observations(&services.registry, "cities/4301/counties/430181/townships/430181110").await, 0);

    let output = townctl(&services.registry, &["import", "indicators", path, "--accept-name-mismatch"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let text = stdout_text(&output);
    assert!(text.contains("1 warning(s):") && text.contains("row 2: 430181110 is 大瑶镇 in the registry"), "{text}");
    assert!(text.contains("Imported: wrote 3"), "{text}");
    assert_eq!(observations(&services.registry, "cities/4301/counties/430181/townships/430181110").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_and_dry_runs_print_the_coverage_and_state_of_the_year() {
    // Without a classifier no year is classified: the dry run cannot take the townships with data from the
    // year's classes and asks for their observations, as it must while a change waits to be classified.
    let Services { _classifier: classifier, registry, _database, .. } = services().await;
    classifier.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.csv");
    write_csv(
        &first,
        &[
            "乡镇代码,名称,年度,人口,财政收入,国土面积",
            "430102001,文艺路街道,2024,3.1,2400,6.5",
            "430102002,朝阳街街道,2024,4.2,5100,3.9",
        ],
    );
    let output = townctl(&registry, &["import", "indicators", first.to_str().unwrap(), "--dry-run"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let text = stdout_text(&output);
    assert!(text.contains("Data years after the import (dry run):"), "{text}");
    assert!(text.contains("长沙市 2024: 2 of 172 townships, provisional — the city has no current year yet"), "{text}");
    assert!(text.contains("RegistryService/AdoptDataYear") && text.contains("\"parent\": \"cities/4301\""), "{text}");
    assert_eq!(observations(&registry, "cities/4301/counties/430102/townships/430102001").await, 0);

    let output = townctl(&registry, &["--json", "import", "indicators", first.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let report = stdout_json(&output);
    let year = &report["data_years"][0];
    assert_eq!(
        (&year["data_year"], &year["townships_with_data"], &year["townships_in_force"], &year["state"]),
        (&serde_json::json!(2024), &serde_json::json!(2), &serde_json::json!(172), &serde_json::json!("provisional")),
        "{report}"
    );

    // A dry run counts what is registered and what the file adds: 430102002 has data already, 430181110 is new.
    let second = dir.path().join("second.csv");
    write_csv(
        &second,
        &["乡镇代码,年度,人口,财政收入,国土面积", "430102002,2024,4.3,5200,3.9", "430181110,2024,6.2,8800,138"],
    );
    let output = townctl(&registry, &["import", "indicators", second.to_str().unwrap(), "--dry-run"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    assert!(stdout_text(&output).contains("2024: 3 of 172 townships, provisional"), "{}", describe(&output));

    // Once 2023 covers every township, it is the city's current year, and stays so.
    let mut client = registry.client().await;
    let townships = all_townships(&mut client, "cities/4301").await;
    record_generated(&mut client, &townships, 2023, 7).await;
    let output = townctl(&registry, &["import", "indicators", second.to_str().unwrap(), "--dry-run"]).await;
    let text = stdout_text(&output);
    assert!(
        text.contains("长沙市 2024: 3 of 172 townships, provisional — the city's current year stays 2023"),
        "{text}"
    );
    assert!(!text.contains("AdoptDataYear"), "the city has a current year: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn class_views_without_a_current_year_say_why_and_list_the_years() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("indicators.csv");
    let mut lines = vec!["乡镇代码,名称,年度,人口,财政收入,国土面积"];
    lines.extend(GOOD_INDICATORS);
    write_csv(&file, &lines);
    assert!(townctl(&services.registry, &["import", "indicators", file.to_str().unwrap()]).await.status.success());

    let output = townctl(&services.registry, &["classes", "4301"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let text = stdout_text(&output);
    assert!(text.contains("cities/4301 has no current year yet"), "{text}");
    assert!(text.contains("2023: 4 of 172 townships, provisional") && text.contains("--data-year 2023"), "{text}");
    assert!(text.contains("AdoptDataYear"), "{text}");

    let output = townctl(&services.registry, &["explain", "430181110"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has no official class") && stderr.contains("2023: 4 of 172 townships"), "{stderr}");

    let html = dir.path().join("report.html");
    let output = townctl(&services.registry, &["report", "4301", "-o", html.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no current year"), "{}", describe(&output));
    assert!(!html.exists(), "no empty report");
    let xlsx = dir.path().join("classes.xlsx");
    let output = townctl(&services.registry, &["export", "classes", "4301", "-o", xlsx.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("2023: 4 of 172 townships"), "{}", describe(&output));
    assert!(!xlsx.exists(), "no empty export");
}

#[tokio::test(flavor = "multi_thread")]
async fn staffing_approvals_import_their_export_reimports_unchanged_and_a_reduction_below_zero_is_a_bad_row() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let institutions = dir.path().join("institutions.csv");
    write_csv(&institutions, &["乡镇代码,类别,机构名称,编制,批准文号", "430102001,党政机构,党政办公室,0,"]);
    let output = townctl(&services.registry, &["import", "institutions", institutions.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", describe(&output));

    let approvals = dir.path().join("approvals.csv");
    write_csv(
        &approvals,
        &[
            "乡镇代码,机构名称,批准文号,批准时间,编制类型,经费类型,数量,变动摘要",
            "430102001,党政办公室,长编委发〔2024〕5号,2024-03-01,行政编制,全额拨款,6,机构设立核定",
            "430102001,党政办公室,长编委发〔2025〕2号,2025-02-01,行政,全额拨款,-2,精简",
        ],
    );
    let output =
        townctl(&services.registry, &["--json", "import", "staffing-approvals", approvals.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stdout_json(&output)["written"], 2);

    // The export re-imports as unchanged: the ledger is not added to twice.
    let export = dir.path().join("export.csv");
    let output =
        townctl(&services.registry, &["export", "staffing-approvals", "430102", "--output", export.to_str().unwrap()])
            .await;
    assert!(output.status.success(), "{}", describe(&output));
    let output =
        townctl(&services.registry, &["--json", "import", "staffing-approvals", export.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let report = stdout_json(&output);
    assert_eq!((report["unchanged"].as_u64(), report["written"].as_u64()), (Some(2), Some(0)), "{report}");

    // A reduction the ledger cannot take (4 approved) is a bad row, named by the registry; nothing is written.
    let reduction = dir.path().join("reduction.csv");
    write_csv(
        &reduction,
        &[
            "乡镇代码,机构名称,批准文号,批准时间,编制类型,经费类型,数量,变动摘要",
            "430102001,党政办公室,长编委发〔2025〕9号,2025-06-01,行政编制,全额拨款,-5,核减",
        ],
    );
    let output =
        townctl(&services.registry, &["--json", "import", "staffing-approvals", reduction.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let report = stdout_json(&output);
    let reason = report["bad_rows"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("党政办公室") && reason.contains("below 0"), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn staffing_headcounts_import_their_export_reimports_unchanged_and_a_dry_run_writes_nothing() {
    let services = services().await;
    let dir = tempfile::tempdir().unwrap();
    let institutions = dir.path().join("institutions.csv");
    write_csv(
        &institutions,
        &["乡镇代码,类别,机构名称,编制,批准文号", "430102001,事业单位,农业综合服务中心,5,长编委发〔2024〕5号"],
    );
    let output = townctl(&services.registry, &["import", "institutions", institutions.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", describe(&output));

    let headcounts = dir.path().join("headcounts.csv");
    write_csv(&headcounts, &["乡镇代码,机构名称,编制类型,实有人数", "430102001,农业综合服务中心,事业编制,7"]);
    let path = headcounts.to_str().unwrap();
    let output = townctl(&services.registry, &["--json", "import", "staffing-headcounts", path, "--dry-run"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stdout_json(&output)["committed"], false);
    let output = townctl(&services.registry, &["--json", "import", "staffing-headcounts", path]).await;
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stdout_json(&output)["written"], 1, "the dry run wrote nothing, so the real run writes the row");

    // 7 staff on 5 事业编制 is 超编, and the export re-imports as unchanged.
    let export = dir.path().join("export.csv");
    let output =
        townctl(&services.registry, &["export", "staffing-headcounts", "430102", "--output", export.to_str().unwrap()])
            .await;
    assert!(output.status.success(), "{}", describe(&output));
    let output =
        townctl(&services.registry, &["--json", "import", "staffing-headcounts", export.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let report = stdout_json(&output);
    assert_eq!((report["unchanged"].as_u64(), report["written"].as_u64()), (Some(1), Some(0)), "{report}");

    // Two figures for one institution and type, and a negative headcount: bad rows, nothing written.
    write_csv(
        &headcounts,
        &[
            "乡镇代码,机构名称,编制类型,实有人数",
            "430102001,农业综合服务中心,事业编制,4",
            "430102001,农业综合服务中心,事业编制,6",
            "430102001,农业综合服务中心,行政编制,-1",
        ],
    );
    let output = townctl(&services.registry, &["--json", "import", "staffing-headcounts", path]).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let report = stdout_json(&output);
    let reasons: Vec<&str> =
        report["bad_rows"].as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 2, "{report}");
    assert!(reasons[0].contains("an earlier row too"), "{report}");
    assert!(reasons[1].contains("not a whole number of people"), "{report}");
}

/// Runs townctl with `args` and extra environment, on a blocking thread.
async fn townctl_with_env(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let envs: Vec<(String, String)> = envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_townctl")).args(&args).envs(envs).output().expect("run townctl")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_minted_by_townctl_are_presented_from_the_flag_the_environment_or_a_file() {
    use township_runtime::auth::jwt::{Authenticator, JwtConfig, PinnedAlgorithm};
    use township_runtime::auth::token::{Grant, LOCAL_ISSUER, REGISTRY_AUDIENCE, SigningKey};
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth");
    let keygen = townctl_with_env(&["token", "keygen", auth.to_str().unwrap()], &[]).await;
    assert!(keygen.status.success(), "{}", describe(&keygen));
    let again = townctl_with_env(&["token", "keygen", auth.to_str().unwrap()], &[]).await;
    assert!(!again.status.success(), "keygen never replaces a signing key: {}", describe(&again));
    let key_path = auth.join("signing.key");
    let key = key_path.to_str().unwrap();
    let mint = townctl_with_env(
        &["token", "mint", "--role", "county-editor,viewer", "--jurisdiction", "4301", "--ttl", "1h", "--key", key],
        &[],
    )
    .await;
    assert!(mint.status.success(), "{}", describe(&mint));
    let token = stdout_text(&mint).trim().to_owned();
    let bad_role =
        townctl_with_env(&["token", "mint", "--role", "superuser", "--jurisdiction", "*", "--key", key], &[]).await;
    assert!(!bad_role.status.success() && describe(&bad_role).contains("county_editor"), "{}", describe(&bad_role));

    let classifier = TestClassifier::spawn().await;
    let (_database, url) = temp_sqlite();
    let config = JwtConfig {
        keys_dir: auth.join("keys"),
        algorithm: PinnedAlgorithm::EdDsa,
        issuer: LOCAL_ISSUER.to_owned(),
        audience: REGISTRY_AUDIENCE.to_owned(),
    };
    let authenticator = Authenticator::new(Some(config), false, Duration::from_secs(60)).unwrap();
    let registry = TestRegistry::spawn_authenticated(&url, &classifier.url(), authenticator).await;
    let admin =
        SigningKey::load(&key_path).unwrap().mint(&Grant::administrator("importer", Duration::from_secs(600))).unwrap();
    import(&mut registry.client_with_token(&admin).await, "4301").await;
    let registry_url = registry.url();
    let at_registry = ("TOWNCTL_REGISTRY_URL", registry_url.as_str());

    let anonymous = townctl_with_env(&["classes", "4301"], &[at_registry]).await;
    assert_eq!(anonymous.status.code(), Some(1), "{}", describe(&anonymous));
    assert!(describe(&anonymous).contains("Unauthenticated"), "{}", describe(&anonymous));
    let token_file = dir.path().join("my.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    for (args, envs) in [
        (vec!["--token", token.as_str(), "classes", "4301"], vec![at_registry]),
        (vec!["classes", "4301"], vec![at_registry, ("TOWNCTL_TOKEN", token.as_str())]),
        (vec!["--token-file", token_file.to_str().unwrap(), "classes", "4301"], vec![at_registry]),
        (vec!["classes", "4301"], vec![at_registry, ("TOWNCTL_TOKEN_FILE", token_file.to_str().unwrap())]),
    ] {
        let output = townctl_with_env(&args, &envs).await;
        assert!(output.status.success(), "{args:?}: {}", describe(&output));
        assert!(stdout_text(&output).contains("cities/4301 has no official classes"), "{}", describe(&output));
    }
    // A refused token is named by the reason, never echoed.
    let secret = "not-a-jwt-but-a-secret";
    let refused = townctl_with_env(&["--token", secret, "classes", "4301"], &[at_registry]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    assert!(
        describe(&refused).contains("Unauthenticated") && !describe(&refused).contains(secret),
        "{}",
        describe(&refused)
    );
    registry.stop().await;
    classifier.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_classifier_its_certificate_and_the_registry_its_token() {
    use township_runtime::auth::jwt::{Authenticator, JwtConfig, PinnedAlgorithm};
    use township_runtime::auth::token::{Grant, LOCAL_ISSUER, REGISTRY_AUDIENCE, TokenDir};
    // As deployed: a mutual-TLS classifier that knows callers by certificate only, a registry that wants tokens.
    let pki = township_e2e::TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let tokens = TokenDir::new(dir.path());
    let key = tokens.generate().unwrap();
    let token_file = tokens.mint_into(&key, "admin", &Grant::administrator("admin", Duration::from_secs(600))).unwrap();
    let config = JwtConfig {
        keys_dir: tokens.public_keys_dir(),
        algorithm: PinnedAlgorithm::EdDsa,
        issuer: LOCAL_ISSUER.to_owned(),
        audience: REGISTRY_AUDIENCE.to_owned(),
    };
    let authenticator = Authenticator::new(Some(config), false, Duration::from_secs(60)).unwrap();
    let classifier = TestClassifier::spawn_tls(&pki).await;
    let (_database, url) = temp_sqlite();
    let registry = TestRegistry::spawn_tls_authenticated(&url, &classifier.url(), &pki, authenticator).await;
    let (cert, key) = pki.pki.cert("townctl-client");
    let ca = pki.ca_cert();
    let (classifier_url, registry_url) = (classifier.url(), registry.url());
    let args = [
        "--classifier",
        classifier_url.as_str(),
        "--registry",
        registry_url.as_str(),
        "--ca-cert",
        ca.to_str().unwrap(),
        "--client-cert",
        cert.to_str().unwrap(),
        "--client-key",
        key.to_str().unwrap(),
        "--token-file",
        token_file.to_str().unwrap(),
        "status",
    ];
    let output = townctl_with_env(&args, &[]).await;
    assert!(output.status.success(), "{}", describe(&output));
    assert!(stdout_text(&output).contains("serving"), "{}", describe(&output));
    registry.stop().await;
    classifier.stop().await;
}
