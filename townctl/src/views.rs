//! The read side: classes, explain, compliance, export, watch and report.

use std::{collections::BTreeMap, io::Write as _, path::PathBuf, process::ExitCode};

use anyhow::Context;
use tokio_stream::StreamExt as _;
use township_proto::classifier::v1 as cpb;
use township_proto::registry::v1 as pb;

use crate::client::{Connection, Registry, call_error, city_of, scope_name};
use crate::list;
use crate::output::{Output, table};
use crate::report;
use crate::sheet::{Cell, SheetData};
use crate::vocabulary as words;

/// Why a view of the official classes (`data_year` 0) of a scope has none: its city has no current year. None
/// when it has one, or a year was asked.
async fn no_current_year(
    registry: &Registry,
    connection: &Connection,
    scope: &str,
    data_year: i32,
) -> anyhow::Result<Option<String>> {
    if data_year != 0 {
        return Ok(None);
    }
    let city = city_of(scope);
    let (_, current_year) = crate::years::data_years(registry, &city).await?;
    if current_year != 0 {
        return Ok(None);
    }
    Ok(Some(crate::years::no_current_year(registry, &connection.registry, &city).await?))
}

fn code_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn class_text(class: u32) -> String {
    if class == 0 { "—".to_owned() } else { class.to_string() }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ClassesArgs {
    /// A city or county: its code (4301, 430102) or resource name.
    scope: String,
    /// The data year; the city's current year (the one whose classes are official) when omitted.
    #[arg(long, default_value_t = 0)]
    data_year: i32,
}

#[derive(Debug, serde::Serialize)]
struct ClassRow {
    code: String,
    name: String,
    data_year: i32,
    score: f64,
    rank: u32,
    class: u32,
    previous_class: u32,
    computed_class: u32,
    overridden: bool,
}

fn class_row(class: &pb::TownshipClass) -> ClassRow {
    ClassRow {
        code: code_of(&class.township).to_owned(),
        name: class.display_name.clone(),
        data_year: class.data_year,
        score: class.score,
        rank: class.rank,
        class: class.effective_class,
        previous_class: class.previous_class,
        computed_class: class.computed_class,
        overridden: class.r#override.is_some(),
    }
}

pub(crate) async fn classes(args: ClassesArgs, connection: &Connection, output: Output) -> anyhow::Result<ExitCode> {
    let scope = scope_name(&args.scope)?;
    let registry = connection.registry().await?;
    let rows: Vec<ClassRow> = list::classes(&registry, &scope, args.data_year).await?.iter().map(class_row).collect();
    if rows.is_empty()
        && let Some(hint) = no_current_year(&registry, connection, &scope, args.data_year).await?
    {
        // Scripts still read an empty list; people read why it is empty.
        if output.json {
            eprint!("{hint}");
            output.print(&rows, String::new)?;
        } else {
            print!("{hint}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    output.print(&rows, || {
        let mut t = table(&["code", "name", "score", "rank", "class", "before", "note"]);
        for row in &rows {
            let note =
                if row.overridden { format!("override (computed {})", row.computed_class) } else { String::new() };
            t.add_row(vec![
                row.code.clone(),
                row.name.clone(),
                format!("{:.2}", row.score),
                row.rank.to_string(),
                class_text(row.class),
                class_text(row.previous_class),
                note,
            ]);
        }
        let year = rows.first().map_or(String::new(), |r| format!(", data year {}", r.data_year));
        format!("{scope}: {} townships{year}\n{t}\n", rows.len())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExplainArgs {
    /// The township: its 9-digit code or resource name.
    township: String,
    #[arg(long, default_value_t = 0)]
    data_year: i32,
}

#[derive(Debug, serde::Serialize)]
struct Explanation {
    code: String,
    name: String,
    data_year: i32,
    class: u32,
    computed_class: u32,
    override_reason: Option<String>,
    score: f64,
    rank: u32,
    cohort_size: usize,
    indicators: Vec<IndicatorLine>,
    points_to_next_class_up: Option<f64>,
    points_above_next_class_down: Option<f64>,
    explanation: String,
    policy: String,
}

#[derive(Debug, serde::Serialize)]
struct IndicatorLine {
    indicator: &'static str,
    raw: f64,
    unit: &'static str,
    index: f64,
    weight: f64,
    contribution: f64,
}

const CLASS_WORDS: [&str; 4] = ["未分类", "一类", "二类", "三类"];

pub(crate) async fn explain(args: ExplainArgs, connection: &Connection, output: Output) -> anyhow::Result<ExitCode> {
    let township = scope_name(&args.township)?;
    anyhow::ensure!(township.contains("/townships/"), "{} is not a township: give its 9-digit code", args.township);
    let code = code_of(&township).to_owned();
    let mut registry = connection.registry().await?;
    let class = match registry
        .get_township_class(pb::GetTownshipClassRequest { township: township.clone(), data_year: args.data_year })
        .await
    {
        Ok(class) => class.into_inner(),
        Err(status) if status.code() == tonic::Code::NotFound => {
            let error = call_error(format!("reading the class of {township}"))(status);
            // An unknown township is what the registry said; a known one may lack a class for want of a year.
            let exists = registry.get_township(pb::GetTownshipRequest { name: township.clone() }).await.is_ok();
            match no_current_year(&registry, connection, &township, args.data_year).await {
                Ok(Some(hint)) if exists => anyhow::bail!("{township} has no official class.\n{hint}"),
                _ => return Err(error),
            }
        }
        Err(status) => return Err(call_error(format!("reading the class of {township}"))(status)),
    };
    let run = registry
        .get_classification_run(pb::GetClassificationRunRequest { name: class.run.clone() })
        .await
        .map_err(call_error(format!("reading classification run {}", class.run)))?
        .into_inner();
    let result = run.result.unwrap_or_default();
    let line = result
        .results
        .iter()
        .find(|r| r.id == code)
        .with_context(|| format!("run {} holds no result for {code}", class.run))?;
    let input = run.inputs.iter().find(|i| i.id == code).and_then(|i| i.indicators).unwrap_or_default();
    let policy = result.policy.unwrap_or_default();
    let weights = policy.weights.unwrap_or_default();
    let (indices, contributions) = (line.indices.unwrap_or_default(), line.contributions.unwrap_or_default());
    let explanation = Explanation {
        code: code.clone(),
        name: class.display_name.clone(),
        data_year: class.data_year,
        class: class.effective_class,
        computed_class: class.computed_class,
        override_reason: class.r#override.as_ref().map(|o| format!("{} ({})", o.reason, o.document_number)),
        score: line.score,
        rank: line.rank,
        cohort_size: result.results.len(),
        indicators: vec![
            IndicatorLine {
                indicator: "人口 population",
                raw: input.population,
                unit: "万人",
                index: indices.population,
                weight: weights.population,
                contribution: contributions.population,
            },
            IndicatorLine {
                indicator: "财政收入 fiscal revenue",
                raw: input.fiscal_revenue,
                unit: "万元",
                index: indices.fiscal_revenue,
                weight: weights.fiscal_revenue,
                contribution: contributions.fiscal_revenue,
            },
            IndicatorLine {
                indicator: "国土面积 land area",
                raw: input.land_area,
                unit: "km²",
                index: indices.land_area,
                weight: weights.land_area,
                contribution: contributions.land_area,
            },
        ],
        points_to_next_class_up: line.points_to_next_class_up,
        points_above_next_class_down: line.points_above_next_class_down,
        explanation: line.explanation.clone(),
        policy: format!("{} {}", policy.name, policy.version),
    };
    output.print(&explanation, || explanation_text(&explanation))?;
    Ok(ExitCode::SUCCESS)
}

fn explanation_text(e: &Explanation) -> String {
    let class_word = |class: u32| CLASS_WORDS.get(class as usize).copied().unwrap_or("?");
    let mut text = format!(
        "{} ({}), {} 年度: {}乡镇 (class {}), 得分 {:.2}, 在 {} 个乡镇（街道）中排第 {} 名\n",
        e.name,
        e.code,
        e.data_year,
        class_word(e.class),
        e.class,
        e.score,
        e.cohort_size,
        e.rank
    );
    if let Some(reason) = &e.override_reason {
        text.push_str(&format!(
            "  按文件调整为{}；按得分应为{}。调整理由: {reason}\n",
            class_word(e.class),
            class_word(e.computed_class)
        ));
    }
    let mut t = table(&["指标 indicator", "原始值 raw", "指数 index", "权重 weight", "贡献 contribution"]);
    for line in &e.indicators {
        t.add_row(vec![
            line.indicator.to_owned(),
            format!("{:.2} {}", line.raw, line.unit),
            format!("{:.1}", line.index),
            format!("{}", line.weight),
            format!("{:.2}", line.contribution),
        ]);
    }
    text.push_str(&format!("{t}\n"));
    text.push_str(&format!("  三项贡献之和即得分: {:.2}\n", e.indicators.iter().map(|l| l.contribution).sum::<f64>()));
    match e.points_to_next_class_up {
        Some(points) => text
            .push_str(&format!("  距{}还差 {points:.2} 分。\n", class_word(e.computed_class.saturating_sub(1).max(1)))),
        None if e.computed_class == 1 => text.push_str("  已是一类，没有更高的类别。\n"),
        None => {}
    }
    match e.points_above_next_class_down {
        Some(points) => text.push_str(&format!(
            "  比{}线高 {points:.2} 分：得分再降 {points:.2} 分将降为{}。\n",
            class_word(e.computed_class + 1),
            class_word(e.computed_class + 1)
        )),
        None if e.computed_class == 3 => text.push_str("  已是三类，没有更低的类别。\n"),
        None => {}
    }
    text.push_str(&format!("  说明: {}\n  政策: {}\n", e.explanation, e.policy));
    text
}

#[derive(Debug, clap::Args)]
pub(crate) struct ComplianceArgs {
    /// A township, county or city: its code or resource name.
    scope: String,
    /// Only error-level findings.
    #[arg(long)]
    errors_only: bool,
}

#[derive(Debug, serde::Serialize)]
struct ComplianceSummary {
    scope: String,
    townships: u32,
    errors: usize,
    warnings: usize,
    /// Rule id → its findings, errors first.
    rules: Vec<RuleFindings>,
}

#[derive(Debug, serde::Serialize)]
struct RuleFindings {
    rule: String,
    severity: &'static str,
    count: usize,
    findings: Vec<FindingRow>,
}

#[derive(Debug, serde::Serialize)]
struct FindingRow {
    code: String,
    name: String,
    message: String,
}

fn is_error(finding: &pb::Finding) -> bool {
    finding.severity == pb::Severity::Error as i32
}

pub(crate) async fn compliance_report(registry: &mut Registry, scope: &str) -> anyhow::Result<pb::ComplianceReport> {
    Ok(registry
        .get_compliance_report(pb::GetComplianceReportRequest { scope: scope.to_owned() })
        .await
        .map_err(call_error(format!("the compliance report of {scope}")))?
        .into_inner())
}

pub(crate) async fn compliance(
    args: ComplianceArgs,
    connection: &Connection,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let scope = scope_name(&args.scope)?;
    let mut registry = connection.registry().await?;
    let report = compliance_report(&mut registry, &scope).await?;
    let mut groups: BTreeMap<(bool, String), Vec<FindingRow>> = BTreeMap::new();
    for finding in report.findings.iter().filter(|f| !args.errors_only || is_error(f)) {
        groups.entry((!is_error(finding), finding.rule.clone())).or_default().push(FindingRow {
            code: code_of(&finding.township).to_owned(),
            name: finding.township_display_name.clone(),
            message: finding.message.clone(),
        });
    }
    let errors = report.findings.iter().filter(|f| is_error(f)).count();
    let summary = ComplianceSummary {
        scope: scope.clone(),
        townships: report.townships,
        errors,
        warnings: report.findings.len() - errors,
        rules: groups
            .into_iter()
            .map(|((warning, rule), findings)| RuleFindings {
                rule,
                severity: if warning { "warning" } else { "error" },
                count: findings.len(),
                findings,
            })
            .collect(),
    };
    output.print(&summary, || {
        let mut text = format!(
            "{}: {} townships examined, {} errors, {} warnings\n",
            summary.scope, summary.townships, summary.errors, summary.warnings
        );
        if summary.rules.is_empty() {
            text.push_str("无合规问题 / no findings\n");
            return text;
        }
        let mut counts = table(&["rule", "severity", "findings"]);
        for rule in &summary.rules {
            counts.add_row(vec![rule.rule.clone(), rule.severity.to_owned(), rule.count.to_string()]);
        }
        text.push_str(&format!("{counts}\n"));
        for rule in &summary.rules {
            let mut t = table(&["code", "name", "finding"]);
            for finding in &rule.findings {
                t.add_row(vec![finding.code.clone(), finding.name.clone(), finding.message.clone()]);
            }
            text.push_str(&format!("\n{} ({}, {}):\n{t}\n", rule.rule, rule.severity, rule.count));
        }
        text
    })?;
    Ok(if errors > 0 { ExitCode::from(crate::EXIT_DATA) } else { ExitCode::SUCCESS })
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ExportKind {
    /// Score, rank and class of each township (one row per township).
    Classes,
    /// Institutions of each township, in the columns `townctl import institutions` reads.
    Institutions,
    /// Each township's effective catalogue (its own and inherited items).
    Catalogue,
    /// The staffing ledger (编制): every approval of each institution, in the order recorded.
    StaffingApprovals,
    /// The actual headcount (实有人数) of each institution per staffing type.
    StaffingHeadcounts,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    what: ExportKind,
    /// A city or county (code or resource name); a township for institutions and catalogue.
    scope: String,
    /// The file to write: `.csv` or `.xlsx`.
    #[arg(long, short)]
    output: PathBuf,
    #[arg(long, default_value_t = 0)]
    data_year: i32,
}

/// Every township under a scope (a township scope is itself).
async fn townships_in(registry: &mut Registry, scope: &str) -> anyhow::Result<Vec<(String, String)>> {
    if scope.contains("/townships/") {
        let township = registry
            .get_township(pb::GetTownshipRequest { name: scope.to_owned() })
            .await
            .map_err(call_error(format!("reading {scope}")))?
            .into_inner();
        return Ok(vec![(township.name, township.display_name)]);
    }
    Ok(list::townships(registry, scope).await?.into_iter().map(|t| (t.name, t.display_name)).collect())
}

fn text(value: impl Into<String>) -> Cell {
    Cell::Text(value.into())
}

pub(crate) async fn export(args: ExportArgs, connection: &Connection) -> anyhow::Result<ExitCode> {
    let scope = scope_name(&args.scope)?;
    let mut registry = connection.registry().await?;
    let sheet = match args.what {
        ExportKind::Classes => {
            let classes = list::classes(&registry, &scope, args.data_year).await?;
            if classes.is_empty()
                && let Some(hint) = no_current_year(&registry, connection, &scope, args.data_year).await?
            {
                anyhow::bail!("nothing exported: {hint}");
            }
            SheetData {
                name: "classes".to_owned(),
                headers: words::CLASS_EXPORT.map(String::from).to_vec(),
                rows: classes
                    .iter()
                    .map(|c| {
                        vec![
                            text(code_of(&c.township)),
                            text(c.display_name.clone()),
                            Cell::Integer(i64::from(c.data_year)),
                            Cell::Number((c.score * 100.0).round() / 100.0),
                            Cell::Integer(i64::from(c.rank)),
                            Cell::Integer(i64::from(c.effective_class)),
                            if c.previous_class == 0 {
                                Cell::Empty
                            } else {
                                Cell::Integer(i64::from(c.previous_class))
                            },
                            Cell::Integer(i64::from(c.computed_class)),
                        ]
                    })
                    .collect(),
            }
        }
        ExportKind::Institutions => {
            let mut rows = Vec::new();
            for (township, township_name) in townships_in(&mut registry, &scope).await? {
                for institution in list::institutions(&registry, &township).await? {
                    rows.push(vec![
                        text(code_of(&township)),
                        text(township_name.clone()),
                        text(words::INSTITUTION_KINDS.zh(institution.kind)),
                        text(institution.display_name),
                        Cell::Integer(i64::from(institution.staffing_quota)),
                        text(institution.approving_document),
                        text(institution.valid_from),
                        text(institution.valid_to),
                    ]);
                }
            }
            SheetData {
                name: "institutions".to_owned(),
                headers: words::INSTITUTION_EXPORT.map(String::from).to_vec(),
                rows,
            }
        }
        ExportKind::StaffingApprovals | ExportKind::StaffingHeadcounts => {
            let approvals = matches!(args.what, ExportKind::StaffingApprovals);
            let mut rows = Vec::new();
            for (township, township_name) in townships_in(&mut registry, &scope).await? {
                let names: BTreeMap<String, String> = list::institutions(&registry, &township)
                    .await?
                    .into_iter()
                    .map(|i| (i.name, i.display_name))
                    .collect();
                // A record names its institution: `{institution}/staffingApprovals/{id}`.
                let institution = |name: &str| {
                    let parent = name.rsplit_once("/staffing").map_or(name, |(parent, _)| parent);
                    text(names.get(parent).cloned().unwrap_or_default())
                };
                let head = || vec![text(code_of(&township)), text(township_name.clone())];
                if approvals {
                    for a in list::staffing_approvals(&registry, &township).await? {
                        let mut row = head();
                        row.extend([
                            institution(&a.name),
                            text(a.document_number),
                            text(a.approved_on),
                            text(words::STAFFING_TYPES.zh(a.staffing_type)),
                            text(words::FUNDING_TYPES.zh(a.funding_type)),
                            Cell::Integer(i64::from(a.change)),
                            text(a.summary),
                        ]);
                        rows.push(row);
                    }
                } else {
                    for h in list::staffing_headcounts(&registry, &township).await? {
                        let mut row = head();
                        row.extend([
                            institution(&h.name),
                            text(words::STAFFING_TYPES.zh(h.staffing_type)),
                            Cell::Integer(i64::from(h.actual_headcount)),
                        ]);
                        rows.push(row);
                    }
                }
            }
            let (name, headers) = if approvals {
                ("staffing_approvals", words::STAFFING_APPROVAL_EXPORT.to_vec())
            } else {
                ("staffing_headcounts", words::STAFFING_HEADCOUNT_EXPORT.to_vec())
            };
            SheetData { name: name.to_owned(), headers: headers.into_iter().map(String::from).collect(), rows }
        }
        ExportKind::Catalogue => {
            let mut rows = Vec::new();
            for (township, township_name) in townships_in(&mut registry, &scope).await? {
                for item in list::catalogue(&registry, &township).await? {
                    rows.push(vec![
                        text(code_of(&township)),
                        text(township_name.clone()),
                        text(item.code),
                        text(item.title),
                        text(words::ITEM_TYPES.bilingual(item.item_type)),
                        text(item.duty_area_label),
                        text(item.responsible_institution_title),
                        text(if item.inherited { words::INHERITED } else { words::OWN }),
                    ]);
                }
            }
            SheetData {
                name: "catalogue".to_owned(),
                headers: words::CATALOGUE_EXPORT.map(String::from).to_vec(),
                rows,
            }
        }
    };
    let count = sheet.rows.len();
    crate::sheet::write_table(&args.output, std::slice::from_ref(&sheet))
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!("{count} rows written to {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub(crate) struct WatchArgs {
    /// A city (code or resource name); every city when omitted.
    city: Option<String>,
}

pub(crate) async fn watch(args: WatchArgs, connection: &Connection, output: Output) -> anyhow::Result<ExitCode> {
    let city = match &args.city {
        Some(city) => city_of(&scope_name(city)?),
        None => String::new(),
    };
    let mut registry = connection.registry().await?;
    let mut stream = registry
        .watch_class_changes(pb::WatchClassChangesRequest { city: city.clone() })
        .await
        .map_err(call_error("following class changes"))?
        .into_inner();
    eprintln!(
        "Following class changes{} (Ctrl-C to stop)",
        if city.is_empty() { String::new() } else { format!(" of {city}") }
    );
    // One signal future for the whole loop: a new one per message could miss a Ctrl-C between two.
    let shutdown = township_runtime::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(ExitCode::SUCCESS),
            message = stream.next() => {
                let Some(message) = message else { anyhow::bail!("the registry closed the stream") };
                let change = message.map_err(call_error("following class changes"))?.change.unwrap_or_default();
                // One JSON object per line with --json, so that scripts can read the stream as it comes.
                // Written with `?` rather than println!, so a reader that goes away (`| head`) ends the watch
                // quietly instead of panicking.
                let mut stdout = std::io::stdout().lock();
                if output.json {
                    writeln!(stdout, "{}", serde_json::json!({
                        "township": change.township, "name": change.display_name, "data_year": change.data_year,
                        "previous_class": change.previous_class, "new_class": change.new_class, "score": change.score,
                        "run": change.run,
                    }))?;
                } else {
                    writeln!(
                        stdout,
                        "{}  {} {}: class {} → {} (score {:.2}, {})",
                        change.data_year, code_of(&change.township), change.display_name,
                        class_text(change.previous_class), change.new_class, change.score, change.run
                    )?;
                }
                stdout.flush()?;
            }
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// A city or county: its code or resource name.
    scope: String,
    /// The HTML file to write.
    #[arg(long, short)]
    output: PathBuf,
    #[arg(long, default_value_t = 0)]
    data_year: i32,
}

pub(crate) async fn report(args: ReportArgs, connection: &Connection) -> anyhow::Result<ExitCode> {
    let scope = scope_name(&args.scope)?;
    anyhow::ensure!(!scope.contains("/townships/"), "a report covers a city or a county, not one township");
    let mut registry = connection.registry().await?;
    let classes = list::classes(&registry, &scope, args.data_year).await?;
    if classes.is_empty()
        && let Some(hint) = no_current_year(&registry, connection, &scope, args.data_year).await?
    {
        anyhow::bail!("no report written: {hint}");
    }
    let city = city_of(&scope);
    let counties: BTreeMap<String, String> =
        list::counties(&registry, &city).await?.into_iter().map(|c| (c.code, c.display_name)).collect();
    let policy = registry
        .get_effective_policy(pb::GetEffectivePolicyRequest { parent: city.clone() })
        .await
        .map_err(call_error(format!("the policy of {city}")))?
        .into_inner();
    let policy_doc = policy.policy.unwrap_or_default();
    let banding = cpb::Banding::try_from(policy_doc.banding).unwrap_or(cpb::Banding::Unspecified);
    let boundaries = match (banding, policy_doc.score_thresholds) {
        (cpb::Banding::ScoreThresholds, Some(t)) => vec![
            report::Boundary {
                label: format!(
                    "一类 ≥ {}{}",
                    t.class1_min_score,
                    inferred_mark(&policy_doc, "score_thresholds.class1_min_score")
                ),
                score: t.class1_min_score,
            },
            report::Boundary {
                label: format!(
                    "二类 ≥ {}{}",
                    t.class2_min_score,
                    inferred_mark(&policy_doc, "score_thresholds.class2_min_score")
                ),
                score: t.class2_min_score,
            },
        ],
        // Other bandings have no score line; the lowest score of classes 1 and 2 shows where they fell.
        _ => [1u32, 2]
            .iter()
            .filter_map(|&class| {
                classes.iter().filter(|c| c.computed_class == class).map(|c| c.score).min_by(f64::total_cmp).map(
                    |score| report::Boundary { label: format!("{} 最低分", CLASS_WORDS[class as usize]), score },
                )
            })
            .collect(),
    };
    let compliance = compliance_report(&mut registry, &scope).await?;
    let findings = compliance.findings;
    let scope_title = match counties.get(code_of(&scope)) {
        Some(county) => county.clone(),
        None => {
            registry
                .get_city(pb::GetCityRequest { name: city.clone() })
                .await
                .map_err(call_error(format!("reading {city}")))?
                .into_inner()
                .display_name
        }
    };
    // Counties appear in the order of their first township: code order, as the statistical yearbooks list them.
    let mut by_code: Vec<&pb::TownshipClass> = classes.iter().collect();
    by_code.sort_by(|a, b| a.township.cmp(&b.township));
    let staffing = compliance.staffing.iter().map(staffing_row).collect();
    let data = report::ReportData {
        title: format!("{scope_title} 乡镇（街道）分类与合规报告"),
        scope: scope.clone(),
        data_year: classes.first().map_or(args.data_year, |c| c.data_year),
        generated_at: now_utc(),
        policy: format!(
            "{} {} ({})",
            policy_doc.name,
            policy_doc.version,
            banding.as_str_name().trim_start_matches("BANDING_")
        ),
        boundaries,
        townships: by_code
            .iter()
            .map(|c| {
                let code = code_of(&c.township).to_owned();
                report::ReportTownship {
                    county: counties.get(code.get(..6).unwrap_or_default()).cloned().unwrap_or_default(),
                    code,
                    name: c.display_name.clone(),
                    score: c.score,
                    rank: c.rank,
                    class: u8::try_from(c.effective_class).unwrap_or(0),
                    previous_class: u8::try_from(c.previous_class).unwrap_or(0),
                }
            })
            .collect(),
        findings: findings
            .iter()
            .map(|f| report::ReportFinding {
                rule: f.rule.clone(),
                error: is_error(f),
                // A city-level finding (policy.city_deviation) names its resource instead.
                township_code: if f.township.is_empty() { f.resource.clone() } else { code_of(&f.township).to_owned() },
                township_name: f.township_display_name.clone(),
                message: f.message.clone(),
                inferred: f.inferred,
            })
            .collect(),
        staffing,
    };
    let html = report::render(&data);
    crate::sheet::write_atomically(&args.output, html.as_bytes())
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "Report of {} townships and {} findings written to {}",
        classes.len(),
        findings.len(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A township's approved 行政/事业编制 beside its class's norms, as the compliance report counted them (its
/// institutions in force): one call for the whole scope, the same figures the staffing findings judged.
fn staffing_row(s: &pb::TownshipStaffing) -> report::ReportStaffing {
    report::ReportStaffing {
        code: code_of(&s.township).to_owned(),
        name: s.township_display_name.clone(),
        class: u8::try_from(s.township_class).unwrap_or(0),
        administrative: s.approved_administrative,
        administrative_norm: s.administrative_norm,
        public_institution: s.approved_public_institution,
        public_institution_norm: s.public_institution_norm,
    }
}

/// RFC 3339 of now, e.g. 2026-11-28T18:05:00Z; no date crate for a date line.
fn now_rfc3339() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    prost_types::Timestamp { seconds, nanos: 0 }.to_string()
}

/// Minutes are enough for a report's date line.
fn now_utc() -> String {
    let text = now_rfc3339();
    format!("{} UTC", text.get(..16).unwrap_or(&text).replace('T', " "))
}

/// Today's date (UTC, YYYY-MM-DD), as the registry dates what is in force.
pub(crate) fn today_utc() -> String {
    let text = now_rfc3339();
    text.get(..10).unwrap_or(&text).to_owned()
}

#[derive(Debug, serde::Serialize)]
struct Status {
    classifier: ServiceStatus,
    registry: ServiceStatus,
}

#[derive(Debug, serde::Serialize)]
struct ServiceStatus {
    url: String,
    serving: bool,
    /// What it answered: the default policy, or the number of cities; why not, when it did not.
    detail: String,
}

/// Health of both services, each asked whatever the other answers; exit status 1 when either does not.
pub(crate) async fn status(connection: &Connection, output: Output) -> anyhow::Result<ExitCode> {
    let classifier = async {
        let mut classifier = connection.classifier().await?;
        let answer = classifier
            .get_default_policy(cpb::GetDefaultPolicyRequest {})
            .await
            .map_err(call_error("asking for its default policy"))?
            .into_inner();
        let document = answer.policy.unwrap_or_default();
        anyhow::Ok(format!("default policy {} {} ({})", document.name, document.version, answer.policy_fingerprint))
    };
    let registry = async {
        let registry = connection.registry().await?;
        let cities = list::cities(&registry).await?.len();
        anyhow::Ok(format!("{cities} {}", if cities == 1 { "city" } else { "cities" }))
    };
    let (classifier, registry) = tokio::join!(classifier, registry);
    let service = |url: &str, answer: anyhow::Result<String>| match answer {
        Ok(detail) => ServiceStatus { url: url.to_owned(), serving: true, detail },
        Err(error) => ServiceStatus { url: url.to_owned(), serving: false, detail: format!("{error:#}") },
    };
    let status = Status {
        classifier: service(&connection.classifier, classifier),
        registry: service(&connection.registry, registry),
    };
    let line = |name: &str, service: &ServiceStatus| {
        let state = if service.serving { "serving" } else { "NOT ANSWERING" };
        format!("{name:<10} {}: {state}, {}\n", service.url, service.detail)
    };
    output.print(&status, || line("classifier", &status.classifier) + &line("registry", &status.registry))?;
    Ok(if status.classifier.serving && status.registry.serving { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// "（推定值，未经核实）" when the policy lists the figure at `path` (or its section) as inferred.
fn inferred_mark(policy: &cpb::Policy, path: &str) -> &'static str {
    let inferred = policy.figure_provenance.iter().any(|entry| {
        !entry.verified
            && path.strip_prefix(entry.field.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    });
    if inferred { "（推定值，未经核实）" } else { "" }
}
