//! `townctl import`: spreadsheet rows to registry records, all or nothing.
//!
//! Every row is checked first (columns, numbers, codes, the township exists); a file with bad rows is refused
//! whole, unless `--skip-bad-rows`. Rows that match a record already registered (same key, same values) are
//! left alone, so importing a file twice changes nothing. The remaining rows go to the registry in one batch
//! call per file, which the registry applies in one transaction (or, with `--dry-run`, checks against every
//! rule of the policy and rolls back).

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    process::ExitCode,
};

use township_proto::classifier::v1::IndicatorValues;
use township_proto::registry::v1 as pb;

use crate::client::{Connection, Registry, all_pages, call_error, describe};
use crate::output::Output;
use crate::sheet::{self, Columns, Field, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    /// Cities, counties and townships: columns code and name (the code's length gives the level).
    Divisions,
    /// Population (万人), fiscal revenue (万元) and land area (km²) per township and data year.
    Indicators,
    /// Party/government offices, public institutions and law-enforcement units of townships.
    Institutions,
    /// Leadership posts of townships.
    Posts,
    /// Catalogue items: a county's template (owner a 6-digit code) or a township's own (9 digits).
    Catalogue,
}

/// The columns each kind reads (Chinese or English names; case, spaces, `_` and a unit in brackets ignored).
const COLUMNS_HELP: &str = "\
Columns (* required; other names accepted, e.g. 人口（万人） for population):
  divisions     code* (4, 6 or 9 digits: city, county, township), name*
  indicators    township_code* (乡镇代码), population* (人口, 万人), fiscal_revenue* (财政收入, 万元),
                land_area* (国土面积, km²), data_year (年度; or --data-year), source (来源)
  institutions  township_code*, kind* (党政机构 | 事业单位 | 综合行政执法机构), name* (机构名称),
                staffing_quota (编制), approving_document (批准文号), valid_from, valid_to (YYYY-MM-DD)
  posts         township_code*, role* (职务), holder (姓名), mandated_role (抓党建副书记 | 纪委书记 | 组织委员)
  catalogue     owner_code* (county: template; township: own item), code* (事项编码), title* (事项名称),
                type* (权力 | 责任 | 公共服务), duty_area* (e.g. 加强基层党建), responsible_institution* (责任机构),
                legal_basis, power_category, power_origin, power_item_code, duties, accountability_cases,
                service_domain, handling_mode

Rows already registered with the same key and values are left alone, so importing a file twice changes
nothing. Exit status: 0 imported (or dry run clean), 1 failed, 2 bad rows (nothing written).";

#[derive(Debug, clap::Args)]
#[command(after_help = COLUMNS_HELP)]
pub struct ImportArgs {
    kind: ImportKind,
    /// CSV (UTF-8, with or without BOM) or XLSX files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The worksheet to read in XLSX files (default: the first).
    #[arg(long)]
    sheet: Option<String>,
    /// Check every row, and ask the registry to check the writes, but write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Import the good rows of a file with bad rows (the bad ones are listed) instead of refusing the file.
    #[arg(long)]
    skip_bad_rows: bool,
    /// Data year for indicator rows without a data_year column.
    #[arg(long)]
    data_year: Option<i32>,
    /// Where the indicators come from, recorded with each observation.
    #[arg(long, default_value = "")]
    source: String,
}

#[derive(Debug, serde::Serialize)]
struct BadRow {
    file: String,
    row: usize,
    reason: String,
}

#[derive(Debug, serde::Serialize)]
struct ImportReport {
    kind: ImportKind,
    rows: usize,
    bad_rows: Vec<BadRow>,
    /// Rows already registered with the same values: left as they are.
    unchanged: usize,
    /// Rows written (with --dry-run: that would be written).
    written: usize,
    dry_run: bool,
    /// Whether anything was written.
    committed: bool,
    ignored_columns: Vec<String>,
}

/// One checked row on its way to the registry.
struct Planned<T> {
    file: String,
    row: usize,
    request: T,
}

const CODE: Field =
    Field {
        key: "code", aliases: &["代码", "区划代码", "统计用区划代码", "division code"], required: true
    };
const NAME: Field = Field { key: "name", aliases: &["名称", "区划名称", "division name"], required: true };
const TOWNSHIP_CODE: Field = Field {
    key: "township_code",
    aliases: &["乡镇代码", "乡镇（街道）代码", "乡镇(街道)代码", "township code", "code", "代码", "区划代码"],
    required: true,
};

pub const INSTITUTION_EXPORT_HEADERS: [&str; 8] =
    ["township_code", "township", "kind", "name", "staffing_quota", "approving_document", "valid_from", "valid_to"];

fn fields(kind: ImportKind) -> Vec<Field> {
    let f = |key, aliases, required| Field { key, aliases, required };
    match kind {
        ImportKind::Divisions => vec![CODE, NAME],
        ImportKind::Indicators => vec![
            TOWNSHIP_CODE,
            f("data_year", &["年度", "数据年度", "年份", "year"], false),
            f("population", &["人口", "户籍人口", "常住人口", "人口数"], true),
            f("fiscal_revenue", &["财政收入", "一般公共预算收入", "revenue"], true),
            f("land_area", &["国土面积", "面积", "行政区域面积", "area"], true),
            f("source", &["来源", "数据来源"], false),
        ],
        ImportKind::Institutions => vec![
            TOWNSHIP_CODE,
            f("kind", &["类别", "机构类别", "类型", "type"], true),
            f("name", &["机构名称", "名称", "institution"], true),
            f("staffing_quota", &["编制", "编制数", "核定编制", "quota", "staffing"], false),
            f("approving_document", &["批准文号", "文号", "document"], false),
            f("valid_from", &["设立日期", "起始日期", "from"], false),
            f("valid_to", &["撤销日期", "终止日期", "to"], false),
        ],
        ImportKind::Posts => vec![
            TOWNSHIP_CODE,
            f("role", &["职务", "领导职务", "post"], true),
            f("holder", &["姓名", "任职人", "name"], false),
            f("mandated_role", &["规定职务", "指定职务", "mandated"], false),
        ],
        ImportKind::Catalogue => vec![
            f("owner_code", &["所属代码", "县乡代码", "owner", "township_code", "county_code"], true),
            f("code", &["事项编码", "编码", "item code"], true),
            f("title", &["事项名称", "名称", "item"], true),
            f("type", &["事项类型", "清单类型", "item type"], true),
            f("duty_area", &["职责领域", "职能领域", "area"], true),
            f("responsible_institution", &["责任机构", "承办机构", "institution"], true),
            f("legal_basis", &["法律依据", "设定依据", "basis"], false),
            f("power_category", &["权力类别", "category"], false),
            f("power_origin", &["权力来源", "origin"], false),
            f("power_item_code", &["对应权力事项编码", "linked power"], false),
            f("duties", &["职责", "具体职责"], false),
            f("accountability_cases", &["追责情形", "问责情形"], false),
            f("service_domain", &["服务领域", "domain"], false),
            f("handling_mode", &["办理方式", "mode"], false),
        ],
    }
}

pub async fn run(args: ImportArgs, connection: &Connection, output: Output) -> anyhow::Result<ExitCode> {
    let mut report = ImportReport {
        kind: args.kind,
        rows: 0,
        bad_rows: Vec::new(),
        unchanged: 0,
        written: 0,
        dry_run: args.dry_run,
        committed: false,
        ignored_columns: Vec::new(),
    };
    // Read and map every file before contacting anyone: a file problem is found in a second.
    let mut tables = Vec::new();
    for path in &args.files {
        let table = sheet::read_table(path, args.sheet.as_deref())?;
        let columns = sheet::map_columns(&table.headers, &fields(args.kind))
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        report.ignored_columns.extend(columns.ignored().iter().cloned());
        report.rows += table.rows.len();
        tables.push((path.display().to_string(), columns, table.rows));
    }
    let mut registry = connection.registry().await?;
    let progress = crate::output::progress_bar("rows checked");
    progress.set_length(report.rows as u64);
    let written = match args.kind {
        ImportKind::Divisions => import_divisions(&mut registry, &args, &tables, &mut report).await?,
        ImportKind::Indicators => import_indicators(&mut registry, &args, &tables, &mut report, &progress).await?,
        ImportKind::Institutions => import_institutions(&mut registry, &args, &tables, &mut report, &progress).await?,
        ImportKind::Posts => import_posts(&mut registry, &args, &tables, &mut report, &progress).await?,
        ImportKind::Catalogue => import_catalogue(&mut registry, &args, &tables, &mut report, &progress).await?,
    };
    progress.finish_and_clear();
    let refused = !report.bad_rows.is_empty() && !args.skip_bad_rows;
    report.written = if refused && !args.dry_run { 0 } else { written };
    report.committed = !args.dry_run && !refused && report.written > 0;
    output.print(&report, || report_text(&report))?;
    Ok(if refused { ExitCode::from(crate::EXIT_DATA) } else { ExitCode::SUCCESS })
}

fn report_text(report: &ImportReport) -> String {
    let mut text = format!("{} row(s) read", report.rows);
    if !report.ignored_columns.is_empty() {
        text.push_str(&format!(" (columns ignored: {})", report.ignored_columns.join(", ")));
    }
    text.push('\n');
    if !report.bad_rows.is_empty() {
        text.push_str(&format!("{} bad row(s):\n", report.bad_rows.len()));
        for bad in &report.bad_rows {
            text.push_str(&format!("  {} row {}: {}\n", bad.file, bad.row, bad.reason));
        }
    }
    if report.dry_run {
        text.push_str(&format!(
            "Dry run: would write {}, {} unchanged; nothing was written.\n",
            report.written, report.unchanged
        ));
    } else if report.committed || report.bad_rows.is_empty() {
        let written = if report.committed { report.written } else { 0 };
        text.push_str(&format!("Imported: wrote {written}, {} unchanged.\n", report.unchanged));
    } else {
        text.push_str("Nothing was written: fix the rows above and import again, or use --skip-bad-rows.\n");
    }
    text
}

/// Whether the file may still be written after the checks (no bad rows, or asked to skip them).
fn may_write(args: &ImportArgs, report: &ImportReport) -> bool {
    report.bad_rows.is_empty() || args.skip_bad_rows
}

fn bad(report: &mut ImportReport, file: &str, row: usize, reason: impl Into<String>) {
    report.bad_rows.push(BadRow { file: file.to_owned(), row, reason: reason.into() });
}

/// The batch index a registry error names (`requests[7]`, `observations[7]`), to report its row.
fn failing_index(status: &tonic::Status) -> Option<usize> {
    let text = describe(status);
    let start = text.find("s[")? + 2;
    text[start..].split(']').next()?.parse().ok()
}

/// Sends one batch; a refusal becomes a bad row (the row the registry named) rather than an error.
fn refused<T>(report: &mut ImportReport, planned: &[Planned<T>], status: &tonic::Status) -> anyhow::Result<usize> {
    match failing_index(status).and_then(|i| planned.get(i)) {
        Some(row) => {
            let file = row.file.clone();
            bad(report, &file, row.row, format!("refused by the registry: {}", describe(status)));
            Ok(0)
        }
        None => anyhow::bail!("the registry refused the import: {}", describe(status)),
    }
}

fn number(columns: &Columns, row: &Row, key: &str, errors: &mut Vec<String>) -> Option<f64> {
    let text = columns.value(row, key).replace([',', '，'], "");
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Some(value),
        _ if text.is_empty() => {
            errors.push(format!("{key} is empty"));
            None
        }
        _ => {
            errors.push(format!("{key} {text:?} is not a number ≥ 0"));
            None
        }
    }
}

fn township_code(columns: &Columns, row: &Row, key: &str, errors: &mut Vec<String>) -> Option<String> {
    let code = columns.value(row, key).to_owned();
    // A 12-digit statistical code is the 9-digit code followed by 000.
    let code = if code.len() == 12 && code.ends_with("000") { code[..9].to_owned() } else { code };
    if code.len() == 9 && code.bytes().all(|b| b.is_ascii_digit()) {
        Some(code)
    } else {
        errors.push(format!("{key} {code:?} is not a 9-digit township code"));
        None
    }
}

fn township_name(code: &str) -> String {
    format!("cities/{}/counties/{}/townships/{code}", &code[..4], &code[..6])
}

/// The townships of the registry under the cities the rows name: one listing per city.
async fn known_townships(
    registry: &mut Registry,
    codes: impl Iterator<Item = String>,
) -> anyhow::Result<HashMap<String, pb::Township>> {
    let cities: BTreeSet<String> = codes.filter_map(|code| code.get(..4).map(str::to_owned)).collect();
    let mut known = HashMap::new();
    for city in cities {
        match crate::demo::list_townships(registry, &format!("cities/{city}")).await {
            Ok(townships) => known.extend(townships.into_iter().map(|t| (t.code.clone(), t))),
            // A city the registry does not know: its townships are reported row by row.
            Err(error) if error.to_string().contains("NotFound") => {}
            Err(error) => return Err(error),
        }
    }
    Ok(known)
}

async fn import_divisions(
    registry: &mut Registry,
    args: &ImportArgs,
    tables: &[(String, Columns, Vec<Row>)],
    report: &mut ImportReport,
) -> anyhow::Result<usize> {
    let (mut cities, mut counties, mut townships) = (Vec::new(), Vec::new(), Vec::new());
    for (file, columns, rows) in tables {
        for row in rows {
            let code = columns.value(row, "code").to_owned();
            let name = columns.value(row, "name").to_owned();
            let code = if code.len() == 12 && code.ends_with("000") { code[..9].to_owned() } else { code };
            if name.is_empty() {
                bad(report, file, row.number, "name is empty");
                continue;
            }
            if !code.bytes().all(|b| b.is_ascii_digit()) {
                bad(report, file, row.number, format!("code {code:?} is not a division code"));
                continue;
            }
            let quoted = name.replace('"', "\"\"");
            match code.len() {
                4 => cities.push(format!("{code},\"{quoted}\",{}", &code[..2])),
                6 => counties.push(format!("{code},\"{quoted}\",{},{}", &code[..4], &code[..2])),
                9 => townships.push(format!("{code},\"{quoted}\",{},{},{}", &code[..6], &code[..2], &code[..4])),
                other => bad(
                    report,
                    file,
                    row.number,
                    format!("code {code} has {other} digits; a city has 4, a county 6, a township 9"),
                ),
            }
        }
    }
    if !may_write(args, report) && !args.dry_run {
        return Ok(0);
    }
    let count = cities.len() + counties.len() + townships.len();
    let request = pb::ImportDivisionsRequest {
        cities_csv: format!("code,name,provinceCode\n{}\n", cities.join("\n")),
        counties_csv: format!("code,name,cityCode,provinceCode\n{}\n", counties.join("\n")),
        townships_csv: format!("code,name,areaCode,provinceCode,cityCode\n{}\n", townships.join("\n")),
        code_prefix: String::new(),
        validate_only: args.dry_run || !may_write(args, report),
    };
    match registry.import_divisions(request).await {
        Ok(_) => Ok(count),
        Err(status) => anyhow::bail!("the registry refused the divisions: {}", describe(&status)),
    }
}

async fn import_indicators(
    registry: &mut Registry,
    args: &ImportArgs,
    tables: &[(String, Columns, Vec<Row>)],
    report: &mut ImportReport,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<usize> {
    let codes = tables.iter().flat_map(|(_, c, rows)| rows.iter().map(|r| c.value(r, "township_code").to_owned()));
    let known = known_townships(registry, codes.collect::<Vec<_>>().into_iter()).await?;
    let mut planned = Vec::new();
    let mut seen = HashMap::new();
    for (file, columns, rows) in tables {
        for row in rows {
            progress.inc(1);
            let mut errors = Vec::new();
            let code = township_code(columns, row, "township_code", &mut errors);
            let year_text = columns.value(row, "data_year");
            let data_year = if year_text.is_empty() {
                args.data_year.or_else(|| {
                    errors.push("data_year is empty and no --data-year was given".to_owned());
                    None
                })
            } else {
                year_text.parse::<i32>().ok().filter(|y| (1949..=2100).contains(y)).or_else(|| {
                    errors.push(format!("data_year {year_text:?} is not a year"));
                    None
                })
            };
            let values = (
                number(columns, row, "population", &mut errors),
                number(columns, row, "fiscal_revenue", &mut errors),
                number(columns, row, "land_area", &mut errors),
            );
            if let Some(code) = &code
                && !known.contains_key(code)
            {
                errors.push(format!("township {code} is not in the registry (import its divisions first)"));
            }
            if let (Some(code), Some(year)) = (&code, data_year)
                && let Some(first) = seen.insert((code.clone(), year), row.number)
            {
                errors.push(format!("township {code} {year} already appears in row {first}"));
            }
            match (errors.is_empty(), code, data_year, values) {
                (true, Some(code), Some(data_year), (Some(population), Some(fiscal_revenue), Some(land_area))) => {
                    let source = match columns.value(row, "source") {
                        "" => args.source.clone(),
                        given => given.to_owned(),
                    };
                    planned.push(Planned {
                        file: file.clone(),
                        row: row.number,
                        request: pb::IndicatorObservation {
                            township: township_name(&code),
                            data_year,
                            values: Some(IndicatorValues { population, fiscal_revenue, land_area }),
                            source,
                            ..Default::default()
                        },
                    });
                }
                _ => bad(report, file, row.number, errors.join("; ")),
            }
        }
    }
    // Recording is an upsert by (township, year); a row equal to the latest observation changes nothing.
    if !may_write(args, report) || args.dry_run || planned.is_empty() {
        return Ok(planned.len());
    }
    let observations = planned.iter().map(|p| p.request.clone()).collect();
    match registry.batch_record_indicators(pb::BatchRecordIndicatorsRequest { observations }).await {
        Ok(_) => Ok(planned.len()),
        Err(status) => refused(report, &planned, &status),
    }
}

pub async fn list_institutions(registry: &mut Registry, township: &str) -> anyhow::Result<Vec<pb::Institution>> {
    all_pages(|page_token| {
        let (mut registry, township) = (registry.clone(), township.to_owned());
        async move {
            let request = pb::ListInstitutionsRequest { parent: township.clone(), page_size: 1000, page_token };
            let page = registry
                .list_institutions(request)
                .await
                .map_err(call_error(format!("listing the institutions of {township}")))?
                .into_inner();
            Ok((page.institutions, page.next_page_token))
        }
    })
    .await
}

async fn list_posts(registry: &mut Registry, township: &str) -> anyhow::Result<Vec<pb::LeadershipPost>> {
    all_pages(|page_token| {
        let (mut registry, township) = (registry.clone(), township.to_owned());
        async move {
            let request = pb::ListLeadershipPostsRequest { parent: township.clone(), page_size: 1000, page_token };
            let page = registry
                .list_leadership_posts(request)
                .await
                .map_err(call_error(format!("listing the posts of {township}")))?
                .into_inner();
            Ok((page.posts, page.next_page_token))
        }
    })
    .await
}

pub fn institution_kind_word(kind: i32) -> &'static str {
    match pb::InstitutionKind::try_from(kind) {
        Ok(pb::InstitutionKind::PartyGovernmentOffice) => "党政机构",
        Ok(pb::InstitutionKind::PublicInstitution) => "事业单位",
        Ok(pb::InstitutionKind::LawEnforcementUnit) => "综合行政执法机构",
        _ => "",
    }
}

fn institution_kind(text: &str) -> Option<pb::InstitutionKind> {
    let text = text.trim().to_lowercase().replace([' ', '-'], "_");
    match text.as_str() {
        "党政机构" | "党政办事机构" | "党政综合办事机构" | "party_government_office" | "office" => {
            Some(pb::InstitutionKind::PartyGovernmentOffice)
        }
        "事业单位" | "直属事业单位" | "public_institution" => Some(pb::InstitutionKind::PublicInstitution),
        "综合行政执法机构" | "综合行政执法大队" | "执法机构" | "law_enforcement_unit" => {
            Some(pb::InstitutionKind::LawEnforcementUnit)
        }
        _ => None,
    }
}

async fn import_institutions(
    registry: &mut Registry,
    args: &ImportArgs,
    tables: &[(String, Columns, Vec<Row>)],
    report: &mut ImportReport,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<usize> {
    let codes = tables.iter().flat_map(|(_, c, rows)| rows.iter().map(|r| c.value(r, "township_code").to_owned()));
    let known = known_townships(registry, codes.collect::<Vec<_>>().into_iter()).await?;
    let mut existing: HashMap<String, Vec<pb::Institution>> = HashMap::new();
    let mut planned = Vec::new();
    let mut seen = HashMap::new();
    for (file, columns, rows) in tables {
        for row in rows {
            progress.inc(1);
            let mut errors = Vec::new();
            let code = township_code(columns, row, "township_code", &mut errors);
            let kind_text = columns.value(row, "kind");
            let kind = institution_kind(kind_text);
            if kind.is_none() {
                errors.push(format!("kind {kind_text:?} is not 党政机构, 事业单位 or 综合行政执法机构"));
            }
            let name = columns.value(row, "name").to_owned();
            if name.is_empty() {
                errors.push("name is empty".to_owned());
            }
            let quota_text = columns.value(row, "staffing_quota");
            let staffing_quota = if quota_text.is_empty() {
                0
            } else {
                quota_text.parse::<u32>().unwrap_or_else(|_| {
                    errors.push(format!("staffing_quota {quota_text:?} is not a whole number ≥ 0"));
                    0
                })
            };
            for key in ["valid_from", "valid_to"] {
                let date = columns.value(row, key);
                if !date.is_empty() && !is_iso_date(date) {
                    errors.push(format!("{key} {date:?} is not a date YYYY-MM-DD"));
                }
            }
            if let Some(code) = &code
                && !known.contains_key(code)
            {
                errors.push(format!("township {code} is not in the registry"));
            }
            if let Some(code) = &code
                && let Some(first) = seen.insert((code.clone(), name.clone()), row.number)
            {
                errors.push(format!("{name} of township {code} already appears in row {first}"));
            }
            let (Some(code), Some(kind), true) = (code, kind, errors.is_empty()) else {
                bad(report, file, row.number, errors.join("; "));
                continue;
            };
            let parent = township_name(&code);
            if !existing.contains_key(&parent) {
                let list = list_institutions(registry, &parent).await?;
                existing.insert(parent.clone(), list);
            }
            let institution = pb::Institution {
                kind: kind as i32,
                display_name: name.clone(),
                staffing_quota,
                approving_document: columns.value(row, "approving_document").to_owned(),
                valid_from: columns.value(row, "valid_from").to_owned(),
                valid_to: columns.value(row, "valid_to").to_owned(),
                ..Default::default()
            };
            // The key is the township and the institution's name.
            match existing[&parent].iter().find(|i| i.display_name == name) {
                Some(registered) => {
                    let same = registered.kind == institution.kind
                        && registered.staffing_quota == institution.staffing_quota
                        && registered.approving_document == institution.approving_document
                        && registered.valid_from == institution.valid_from
                        && registered.valid_to == institution.valid_to;
                    if same {
                        report.unchanged += 1;
                    } else {
                        bad(
                            report,
                            file,
                            row.number,
                            format!(
                                "{name} of township {code} is registered ({}) with other details; change it in the \
                                 registry, or end it (valid_to) and register the new one under another name",
                                registered.name
                            ),
                        );
                    }
                }
                None => planned.push(Planned {
                    file: file.clone(),
                    row: row.number,
                    request: pb::CreateInstitutionRequest { parent, institution: Some(institution) },
                }),
            }
        }
    }
    if planned.is_empty() || (!may_write(args, report) && !args.dry_run) {
        return Ok(if may_write(args, report) { planned.len() } else { 0 });
    }
    let requests = planned.iter().map(|p| p.request.clone()).collect();
    let validate_only = args.dry_run || !may_write(args, report);
    match registry.batch_create_institutions(pb::BatchCreateInstitutionsRequest { requests, validate_only }).await {
        Ok(_) => Ok(planned.len()),
        Err(status) => refused(report, &planned, &status),
    }
}

fn is_iso_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    matches!(parts.as_slice(), [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())))
}

fn mandated_role(text: &str) -> Result<pb::MandatedRole, String> {
    let normalised = text.trim().to_lowercase().replace([' ', '-'], "_");
    match normalised.as_str() {
        "" | "无" | "none" => Ok(pb::MandatedRole::Unspecified),
        "抓党建副书记" | "党建副书记" | "party_building_deputy_secretary" => {
            Ok(pb::MandatedRole::PartyBuildingDeputySecretary)
        }
        "纪委书记" | "纪检监察负责人" | "discipline_inspection_secretary" => {
            Ok(pb::MandatedRole::DisciplineInspectionSecretary)
        }
        "组织委员" | "organisation_committee_member" | "organization_committee_member" => {
            Ok(pb::MandatedRole::OrganisationCommitteeMember)
        }
        _ => Err(format!("mandated_role {text:?} is not 抓党建副书记, 纪委书记, 组织委员 or empty")),
    }
}

async fn import_posts(
    registry: &mut Registry,
    args: &ImportArgs,
    tables: &[(String, Columns, Vec<Row>)],
    report: &mut ImportReport,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<usize> {
    let codes = tables.iter().flat_map(|(_, c, rows)| rows.iter().map(|r| c.value(r, "township_code").to_owned()));
    let known = known_townships(registry, codes.collect::<Vec<_>>().into_iter()).await?;
    let mut existing: HashMap<String, Vec<pb::LeadershipPost>> = HashMap::new();
    let mut planned = Vec::new();
    for (file, columns, rows) in tables {
        for row in rows {
            progress.inc(1);
            let mut errors = Vec::new();
            let code = township_code(columns, row, "township_code", &mut errors);
            let role = columns.value(row, "role").to_owned();
            if role.is_empty() {
                errors.push("role is empty".to_owned());
            }
            let mandated = mandated_role(columns.value(row, "mandated_role")).map_err(|e| errors.push(e)).ok();
            if let Some(code) = &code
                && !known.contains_key(code)
            {
                errors.push(format!("township {code} is not in the registry"));
            }
            let (Some(code), Some(mandated), true) = (code, mandated, errors.is_empty()) else {
                bad(report, file, row.number, errors.join("; "));
                continue;
            };
            let parent = township_name(&code);
            if !existing.contains_key(&parent) {
                let posts = list_posts(registry, &parent).await?;
                existing.insert(parent.clone(), posts);
            }
            let holder = columns.value(row, "holder").to_owned();
            // The key is the township, the role and its holder: a township has several 副职.
            let registered = existing[&parent]
                .iter()
                .any(|p| p.role == role && p.holder == holder && p.mandated_role == mandated as i32);
            if registered {
                report.unchanged += 1;
                continue;
            }
            planned.push(Planned {
                file: file.clone(),
                row: row.number,
                request: pb::CreateLeadershipPostRequest {
                    parent,
                    post: Some(pb::LeadershipPost {
                        role,
                        holder,
                        mandated_role: mandated as i32,
                        ..Default::default()
                    }),
                },
            });
        }
    }
    if planned.is_empty() || (!may_write(args, report) && !args.dry_run) {
        return Ok(if may_write(args, report) { planned.len() } else { 0 });
    }
    let requests = planned.iter().map(|p| p.request.clone()).collect();
    let validate_only = args.dry_run || !may_write(args, report);
    match registry
        .batch_create_leadership_posts(pb::BatchCreateLeadershipPostsRequest { requests, validate_only })
        .await
    {
        Ok(_) => Ok(planned.len()),
        Err(status) => refused(report, &planned, &status),
    }
}

/// The value a cell names: the whole text, or else any word of it (exports write "权力 power").
fn enum_value<E: Copy>(text: &str, table: &[(&[&str], E)]) -> Option<E> {
    let lookup = |word: &str| {
        let word = word.trim().to_lowercase().replace([' ', '-'], "_");
        table.iter().find(|(names, _)| names.iter().any(|n| *n == word)).map(|(_, value)| *value)
    };
    lookup(text).or_else(|| text.split_whitespace().find_map(lookup))
}

async fn import_catalogue(
    registry: &mut Registry,
    args: &ImportArgs,
    tables: &[(String, Columns, Vec<Row>)],
    report: &mut ImportReport,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<usize> {
    use pb::catalogue_item::Details;
    let item_types: &[(&[&str], pb::CatalogueItemType)] = &[
        (&["权力", "权力清单", "power"], pb::CatalogueItemType::Power),
        (&["责任", "责任清单", "responsibility"], pb::CatalogueItemType::Responsibility),
        (&["公共服务", "公共服务事项", "public_service"], pb::CatalogueItemType::PublicService),
    ];
    let mut existing: HashMap<String, Vec<pb::CatalogueItem>> = HashMap::new();
    let mut institutions: HashMap<String, Vec<pb::Institution>> = HashMap::new();
    let mut planned = Vec::new();
    for (file, columns, rows) in tables {
        for row in rows {
            progress.inc(1);
            let mut errors = Vec::new();
            let owner_code = columns.value(row, "owner_code").to_owned();
            let owner = match owner_code.len() {
                6 | 9 if owner_code.bytes().all(|b| b.is_ascii_digit()) => crate::client::scope_name(&owner_code).ok(),
                _ => None,
            };
            if owner.is_none() {
                errors.push(format!("owner_code {owner_code:?} is neither a county (6 digits) nor a township (9)"));
            }
            let type_text = columns.value(row, "type");
            let item_type = enum_value(type_text, item_types);
            if item_type.is_none() {
                errors.push(format!("type {type_text:?} is not 权力, 责任 or 公共服务"));
            }
            let area_text = columns.value(row, "duty_area");
            let area = duty_area(area_text);
            if area.is_none() {
                errors.push(format!(
                    "duty_area {area_text:?} is not a duty area of the policy (e.g. 加强基层党建, 维护公共安全)"
                ));
            }
            for key in ["code", "title", "responsible_institution"] {
                if columns.value(row, key).is_empty() {
                    errors.push(format!("{key} is empty"));
                }
            }
            let (Some(owner), Some(item_type), Some(area), true) = (owner, item_type, area, errors.is_empty()) else {
                bad(report, file, row.number, errors.join("; "));
                continue;
            };
            let code = columns.value(row, "code").to_owned();
            if !existing.contains_key(&owner) {
                match list_catalogue(registry, &owner).await {
                    Ok(items) => existing.insert(owner.clone(), items),
                    Err(error) => {
                        bad(report, file, row.number, format!("{owner_code}: {error:#}"));
                        continue;
                    }
                };
            }
            // An item of that code is already in the catalogue: the owner's own, or a template item with the
            // same title (an exported catalogue lists those under each township). Another title overrides it.
            let title = columns.value(row, "title");
            if existing[&owner].iter().any(|item| item.code == code && (!item.inherited || item.title == title)) {
                report.unchanged += 1;
                continue;
            }
            let institution_text = columns.value(row, "responsible_institution").to_owned();
            let mut item = pb::CatalogueItem {
                item_type: item_type as i32,
                code,
                title: columns.value(row, "title").to_owned(),
                duty_area: area as i32,
                ..Default::default()
            };
            if owner.contains("/townships/") {
                // A township item names one of the township's institutions, given by its name in the sheet.
                if !institutions.contains_key(&owner) {
                    let list = list_institutions(registry, &owner).await?;
                    institutions.insert(owner.clone(), list);
                }
                match institutions[&owner].iter().find(|i| i.display_name == institution_text) {
                    Some(institution) => item.responsible_institution = institution.name.clone(),
                    None => {
                        bad(
                            report,
                            file,
                            row.number,
                            format!("township {owner_code} has no institution named {institution_text}"),
                        );
                        continue;
                    }
                }
            } else {
                item.responsible_institution_title = institution_text;
            }
            let value = |key: &str| columns.value(row, key).to_owned();
            item.details = Some(match item_type {
                pb::CatalogueItemType::Power => Details::Power(pb::PowerDetails {
                    category: power_category(&value("power_category")) as i32,
                    legal_basis: value("legal_basis"),
                    origin: power_origin(&value("power_origin")) as i32,
                }),
                pb::CatalogueItemType::Responsibility => Details::Responsibility(pb::ResponsibilityDetails {
                    power_item_code: value("power_item_code"),
                    duties: value("duties"),
                    accountability_cases: value("accountability_cases"),
                }),
                _ => Details::PublicService(pb::PublicServiceDetails {
                    service_domain: value("service_domain"),
                    handling_mode: handling_mode(&value("handling_mode")) as i32,
                }),
            });
            planned.push(Planned {
                file: file.clone(),
                row: row.number,
                request: pb::CreateCatalogueItemRequest { parent: owner, catalogue_item: Some(item) },
            });
        }
    }
    if planned.is_empty() || (!may_write(args, report) && !args.dry_run) {
        return Ok(if may_write(args, report) { planned.len() } else { 0 });
    }
    let requests = planned.iter().map(|p| p.request.clone()).collect();
    let validate_only = args.dry_run || !may_write(args, report);
    match registry.batch_create_catalogue_items(pb::BatchCreateCatalogueItemsRequest { requests, validate_only }).await
    {
        Ok(_) => Ok(planned.len()),
        Err(status) => refused(report, &planned, &status),
    }
}

/// A county's template, or a township's effective catalogue (inherited items marked).
pub async fn list_catalogue(registry: &mut Registry, owner: &str) -> anyhow::Result<Vec<pb::CatalogueItem>> {
    all_pages(|page_token| {
        let (mut registry, owner) = (registry.clone(), owner.to_owned());
        async move {
            let request = pb::ListCatalogueItemsRequest {
                parent: owner.clone(),
                page_size: 1000,
                page_token,
                ..Default::default()
            };
            let page = registry
                .list_catalogue_items(request)
                .await
                .map_err(call_error(format!("listing the catalogue of {owner}")))?
                .into_inner();
            Ok((page.catalogue_items, page.next_page_token))
        }
    })
    .await
}

fn duty_area(text: &str) -> Option<pb::DutyArea> {
    use pb::DutyArea as A;
    let table: &[(&[&str], A)] = &[
        (&["加强基层党建", "加强党的建设", "党建", "party_building"], A::PartyBuilding),
        (&["促进经济发展", "economic_development"], A::EconomicDevelopment),
        (&["强化公共服务", "public_service"], A::PublicService),
        (&["加强社会治理", "social_governance"], A::SocialGovernance),
        (&["提升城镇管理水平", "town_management"], A::TownManagement),
        (&["推进基层民主", "grassroots_democracy"], A::GrassrootsDemocracy),
        (&["服务经济发展", "serve_economic_development"], A::ServeEconomicDevelopment),
        (&["组织公共服务", "organise_public_service", "organize_public_service"], A::OrganisePublicService),
        (&["实施公共管理", "public_management"], A::PublicManagement),
        (&["监督行政执法", "supervise_law_enforcement"], A::SuperviseLawEnforcement),
        (
            &["动员社会参与", "mobilise_social_participation", "mobilize_social_participation"],
            A::MobiliseSocialParticipation,
        ),
        (&["指导基层自治", "guide_grassroots_autonomy"], A::GuideGrassrootsAutonomy),
        (&["维护公共安全", "maintain_public_safety"], A::MaintainPublicSafety),
    ];
    // Exports write the label the registry gives, e.g. "加强基层党建"; accept the enum's name too.
    let text = text.trim().trim_start_matches("DUTY_AREA_").to_lowercase();
    enum_value(&text, table)
}

fn power_category(text: &str) -> pb::PowerCategory {
    use pb::PowerCategory as P;
    let table: &[(&[&str], P)] = &[
        (&["行政许可", "licensing"], P::Licensing),
        (&["行政处罚", "penalty"], P::Penalty),
        (&["行政强制", "coercion"], P::Coercion),
        (&["行政征收", "levy"], P::Levy),
        (&["行政给付", "benefit"], P::Benefit),
        (&["行政检查", "inspection"], P::Inspection),
        (&["行政确认", "confirmation"], P::Confirmation),
        (&["行政奖励", "reward"], P::Reward),
        (&["行政裁决", "adjudication"], P::Adjudication),
        (&["其他", "其他行政权力", "other"], P::Other),
    ];
    enum_value(text, table).unwrap_or(P::Unspecified)
}

fn power_origin(text: &str) -> pb::PowerOrigin {
    use pb::PowerOrigin as P;
    let table: &[(&[&str], P)] = &[
        (&["法定", "statutory"], P::Statutory),
        (&["下放", "赋权", "devolved"], P::Devolved),
        (&["委托", "entrusted"], P::Entrusted),
    ];
    enum_value(text, table).unwrap_or(P::Unspecified)
}

fn handling_mode(text: &str) -> pb::HandlingMode {
    use pb::HandlingMode as H;
    let table: &[(&[&str], H)] = &[
        (&["直接办理", "direct"], H::Direct),
        (&["代办", "代理", "on_behalf"], H::OnBehalf),
        (&["协助办理", "assisted"], H::Assisted),
        (&["告知", "notify"], H::Notify),
    ];
    enum_value(text, table).unwrap_or(H::Unspecified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_name_the_failing_batch_index() {
        let status = tonic::Status::failed_precondition("requests[17]: township 430102001 already has 6");
        assert_eq!(failing_index(&status), Some(17));
        let status = tonic::Status::invalid_argument("observations[3].values.population: must be finite");
        assert_eq!(failing_index(&status), Some(3));
        assert_eq!(failing_index(&tonic::Status::unavailable("down")), None);
    }

    #[test]
    fn kinds_and_roles_read_in_chinese_and_english() {
        assert_eq!(institution_kind("事业单位"), Some(pb::InstitutionKind::PublicInstitution));
        assert_eq!(institution_kind("Law Enforcement Unit"), Some(pb::InstitutionKind::LawEnforcementUnit));
        assert_eq!(institution_kind("委员会"), None);
        assert_eq!(mandated_role("纪委书记"), Ok(pb::MandatedRole::DisciplineInspectionSecretary));
        assert_eq!(mandated_role(""), Ok(pb::MandatedRole::Unspecified));
        assert!(mandated_role("镇长").is_err());
        assert_eq!(duty_area("维护公共安全"), Some(pb::DutyArea::MaintainPublicSafety));
        assert_eq!(duty_area("DUTY_AREA_PARTY_BUILDING"), Some(pb::DutyArea::PartyBuilding));
        assert!(is_iso_date("2024-01-31") && !is_iso_date("2024/01/31"));
    }
}
