//! `townctl import`: spreadsheet rows to registry records, all or nothing.
//!
//! Every row is checked here first (columns, numbers, codes, the township exists); then the registry checks the
//! rest (limits of the policy, institutions named) with `validate_only`. A file with bad rows is refused whole,
//! unless `--skip-bad-rows`. Rows equal to what is registered (same key, same values) are left alone, so
//! importing a file twice changes nothing. The registry takes at most 10,000 records a call (50,000
//! observations), each call one transaction: a file that fits is written in one call; a longer one is checked
//! whole first, chunk by chunk with `validate_only`, and only then written chunk by chunk, a township's rows
//! (a county's, for catalogues) never split between two chunks.

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    process::ExitCode,
};

use tonic_types::StatusExt as _;
use township_proto::classifier::v1::IndicatorValues;
use township_proto::registry::v1 as pb;

use crate::client::{Connection, Registry, all_pages, call_error, describe, is_not_found};
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
    /// Rows left unchecked after too many refusals (nothing was written then).
    unchecked: usize,
    skip_bad_rows: bool,
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
        unchecked: 0,
        skip_bad_rows: args.skip_bad_rows,
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
    let (registry, report_mut) = (&mut registry, &mut report);
    match args.kind {
        ImportKind::Divisions => import_divisions(registry, &args, &tables, report_mut, &progress).await?,
        ImportKind::Indicators => import_indicators(registry, &args, &tables, report_mut, &progress).await?,
        ImportKind::Institutions => import_institutions(registry, &args, &tables, report_mut, &progress).await?,
        ImportKind::Posts => import_posts(registry, &args, &tables, report_mut, &progress).await?,
        ImportKind::Catalogue => import_catalogue(registry, &args, &tables, report_mut, &progress).await?,
    }
    progress.finish_and_clear();
    let refused = (!report.bad_rows.is_empty() && !args.skip_bad_rows) || report.unchecked > 0;
    if !report.committed && !args.dry_run {
        report.written = 0;
    }
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
    if report.unchecked > 0 {
        text.push_str(&format!(
            "Stopped checking after {MAX_REFUSALS} refusals, {} row(s) unchecked; nothing was written.\n",
            report.unchecked
        ));
    } else if report.dry_run && !report.bad_rows.is_empty() && !report.skip_bad_rows {
        text.push_str(&format!(
            "Dry run: the file would be refused (with --skip-bad-rows: write {}, {} unchanged); nothing was \
             written.\n",
            report.written, report.unchanged
        ));
    } else if report.dry_run {
        text.push_str(&format!(
            "Dry run: would write {}, {} unchanged; nothing was written.\n",
            report.written, report.unchanged
        ));
    } else if report.committed || report.bad_rows.is_empty() || report.skip_bad_rows {
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

/// The batch indices a registry refusal names: a leading `requests[7]` (or `observations[7]`) of its message
/// or of a field violation. Empty when the refusal is not about one record.
fn failing_indices(status: &tonic::Status) -> Vec<usize> {
    fn leading_index(text: &str) -> Option<usize> {
        let rest = text.strip_prefix("requests[").or_else(|| text.strip_prefix("observations["))?;
        rest.split_once(']')?.0.parse().ok()
    }
    let mut fields: Vec<String> = vec![status.message().to_owned()];
    if let Some(bad_request) = status.get_details_bad_request() {
        fields.extend(bad_request.field_violations.into_iter().map(|v| v.field));
    }
    let indices: BTreeSet<usize> = fields.iter().filter_map(|text| leading_index(text)).collect();
    indices.into_iter().collect()
}

/// The largest batch of records the registry takes in one call.
const RECORD_BATCH_LIMIT: usize = 10_000;
/// The largest batch of indicator observations the registry takes in one call.
const OBSERVATION_BATCH_LIMIT: usize = 50_000;
/// Refusals after which the rest is left unchecked: a file as bad as that needs fixing before anything else.
const MAX_REFUSALS: usize = 200;

/// What one batch call answered: how many of its records were already registered as they are.
type BatchOutcome = Result<usize, tonic::Status>;

/// Sends the planned rows to the registry (see the module doc), removing each row it refuses as a bad row and
/// trying again, so that every bad row is reported and, with `--skip-bad-rows`, the good ones still written.
/// `group` keeps related rows in one chunk; `send(requests, validate_only)` makes one batch call.
async fn send_rows<T: Clone, Fut: Future<Output = BatchOutcome>>(
    args: &ImportArgs,
    report: &mut ImportReport,
    planned: Vec<Planned<T>>,
    limit: usize,
    group: impl Fn(&T) -> String,
    mut send: impl FnMut(Vec<T>, bool) -> Fut,
) -> anyhow::Result<()> {
    let mut write = !args.dry_run && may_write(args, report);
    let chunks = chunked(planned, limit, group);
    let chunk_count = chunks.len();
    let mut checked = Vec::with_capacity(chunk_count);
    let mut refusals = 0;
    for mut chunk in chunks {
        let unchanged = loop {
            if chunk.is_empty() {
                break 0;
            }
            // A file that fits in one call is written by that call (the registry checks and writes in one
            // transaction); a longer one is checked whole before any chunk is written.
            let direct = write && chunk_count == 1;
            let requests = chunk.iter().map(|p| p.request.clone()).collect();
            let status = match send(requests, !direct).await {
                Ok(unchanged) => break unchanged,
                Err(status) => status,
            };
            let indices = failing_indices(&status);
            if indices.is_empty() || indices.iter().any(|&i| i >= chunk.len()) {
                anyhow::bail!("the registry refused the import: {}", describe(&status));
            }
            for &index in indices.iter().rev() {
                let row = chunk.remove(index);
                let reason = format!("refused by the registry: {}", describe(&status));
                bad(report, &row.file, row.row, reason);
            }
            refusals += 1;
            if refusals >= MAX_REFUSALS {
                report.unchecked = chunk.len() + checked.iter().map(|(c, _): &(Vec<_>, usize)| c.len()).sum::<usize>();
                return Ok(());
            }
            // Without --skip-bad-rows the file is now refused whole: go on checking, to list every bad row.
            write = write && args.skip_bad_rows;
        };
        report.unchanged += unchanged;
        report.written += chunk.len() - unchanged;
        checked.push((chunk, unchanged));
    }
    if !write {
        return Ok(());
    }
    if chunk_count == 1 {
        report.committed = report.written > 0;
        return Ok(());
    }
    let mut written = 0;
    for (number, (chunk, _)) in checked.into_iter().enumerate() {
        if chunk.is_empty() {
            continue;
        }
        let requests = chunk.iter().map(|p| p.request.clone()).collect();
        if let Err(status) = send(requests, false).await {
            report.committed = written > 0;
            anyhow::bail!(
                "chunk {} of {chunk_count} was refused after the whole file had been checked (changed meanwhile?); \
                 {written} row(s) of the earlier chunks were written: import the file again, rows already \
                 registered are left alone. The registry said: {}",
                number + 1,
                describe(&status)
            );
        }
        written += chunk.len();
    }
    report.committed = report.written > 0;
    Ok(())
}

/// Splits the rows into chunks of at most `limit`, never splitting a group unless it alone exceeds the limit.
fn chunked<T>(planned: Vec<Planned<T>>, limit: usize, group: impl Fn(&T) -> String) -> Vec<Vec<Planned<T>>> {
    let mut groups: Vec<Vec<Planned<T>>> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for row in planned {
        let key = group(&row.request);
        let index = *position.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[index].push(row);
    }
    let mut chunks: Vec<Vec<Planned<T>>> = Vec::new();
    for rows in groups {
        for part in chunks_of(rows, limit) {
            match chunks.last_mut() {
                Some(last) if last.len() + part.len() <= limit => last.extend(part),
                _ => chunks.push(part),
            }
        }
    }
    chunks
}

fn chunks_of<T>(mut rows: Vec<T>, limit: usize) -> Vec<Vec<T>> {
    let mut parts = Vec::new();
    while rows.len() > limit {
        let rest = rows.split_off(limit);
        parts.push(std::mem::replace(&mut rows, rest));
    }
    parts.push(rows);
    parts
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
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(known)
}

/// One division row on its way to the registry, as a line of the CSV that `ImportDivisions` reads.
struct DivisionLine {
    level: DivisionLevel,
    line: String,
    file: String,
    row: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DivisionLevel {
    City,
    County,
    Township,
}

impl DivisionLevel {
    /// The request field the registry names in its refusals (`townships_csv[row 3]`).
    fn field(self) -> &'static str {
        match self {
            DivisionLevel::City => "cities_csv",
            DivisionLevel::County => "counties_csv",
            DivisionLevel::Township => "townships_csv",
        }
    }
}

/// The names registered for every division of the cities the codes fall in (none for a city not registered).
async fn registered_divisions(
    registry: &mut Registry,
    codes: impl Iterator<Item = String>,
) -> anyhow::Result<HashMap<String, String>> {
    let cities: BTreeSet<String> = codes.filter_map(|code| code.get(..4).map(str::to_owned)).collect();
    let mut names = HashMap::new();
    let registered_cities = crate::demo::list_cities(registry).await?;
    for city in registered_cities.into_iter().filter(|c| cities.contains(&c.code)) {
        let parent = format!("cities/{}", city.code);
        for county in crate::demo::list_counties(registry, &parent).await? {
            names.insert(county.code, county.display_name);
        }
        for township in crate::demo::list_townships(registry, &parent).await? {
            names.insert(township.code, township.display_name);
        }
        names.insert(city.code, city.display_name);
    }
    Ok(names)
}

async fn import_divisions(
    registry: &mut Registry,
    args: &ImportArgs,
    tables: &[(String, Columns, Vec<Row>)],
    report: &mut ImportReport,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let codes = tables.iter().flat_map(|(_, c, rows)| rows.iter().map(|r| c.value(r, "code").to_owned()));
    let registered = registered_divisions(registry, codes.collect::<Vec<_>>().into_iter()).await?;
    let mut lines = Vec::new();
    let mut seen = HashMap::new();
    for (file, columns, rows) in tables {
        for row in rows {
            progress.inc(1);
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
            if let Some(first) = seen.insert(code.clone(), row.number) {
                bad(report, file, row.number, format!("code {code} already appears in row {first}"));
                continue;
            }
            if registered.get(&code) == Some(&name) {
                report.unchanged += 1;
                continue;
            }
            let quoted = name.replace('"', "\"\"");
            let (level, line) = match code.len() {
                4 => (DivisionLevel::City, format!("{code},\"{quoted}\",{}", &code[..2])),
                6 => (DivisionLevel::County, format!("{code},\"{quoted}\",{},{}", &code[..4], &code[..2])),
                9 => (
                    DivisionLevel::Township,
                    format!("{code},\"{quoted}\",{},{},{}", &code[..6], &code[..2], &code[..4]),
                ),
                other => {
                    let reason = format!("code {code} has {other} digits; a city has 4, a county 6, a township 9");
                    bad(report, file, row.number, reason);
                    continue;
                }
            };
            lines.push(DivisionLine { level, line, file: file.clone(), row: row.number });
        }
    }
    let mut write = !args.dry_run && may_write(args, report);
    // The registry lists every bad line at once; take them out and ask again, as for the other kinds.
    for _ in 0..3 {
        if lines.is_empty() {
            return Ok(());
        }
        let csv = |level: DivisionLevel, header: &str| {
            let body: Vec<&str> = lines.iter().filter(|l| l.level == level).map(|l| l.line.as_str()).collect();
            format!("{header}\n{}\n", body.join("\n"))
        };
        let request = pb::ImportDivisionsRequest {
            cities_csv: csv(DivisionLevel::City, "code,name,provinceCode"),
            counties_csv: csv(DivisionLevel::County, "code,name,cityCode,provinceCode"),
            townships_csv: csv(DivisionLevel::Township, "code,name,areaCode,provinceCode,cityCode"),
            code_prefix: String::new(),
            validate_only: !write,
        };
        let status = match registry.import_divisions(request).await {
            Ok(_) => {
                report.written = lines.len();
                report.committed = write;
                return Ok(());
            }
            Err(status) => status,
        };
        // A refused line is named `townships_csv[row N]`, N counted from 1 at the header.
        let mut refused = BTreeSet::new();
        for violation in status.get_details_bad_request().map(|b| b.field_violations).unwrap_or_default() {
            let line_of = |level: DivisionLevel| {
                let number: usize = violation
                    .field
                    .strip_prefix(level.field())?
                    .strip_prefix("[row ")?
                    .strip_suffix(']')?
                    .parse()
                    .ok()?;
                lines.iter().enumerate().filter(|(_, l)| l.level == level).nth(number.checked_sub(2)?).map(|(i, _)| i)
            };
            let levels = [DivisionLevel::City, DivisionLevel::County, DivisionLevel::Township];
            let Some(index) = levels.into_iter().find_map(line_of) else { continue };
            let line = &lines[index];
            bad(report, &line.file.clone(), line.row, format!("refused by the registry: {}", violation.description));
            refused.insert(index);
        }
        if refused.is_empty() {
            anyhow::bail!("the registry refused the divisions: {}", describe(&status));
        }
        for index in refused.into_iter().rev() {
            lines.remove(index);
        }
        write = write && args.skip_bad_rows;
    }
    anyhow::bail!("the registry kept refusing the divisions; fix the rows above and import again")
}

async fn import_indicators(
    registry: &mut Registry,
    args: &ImportArgs,
    tables: &[(String, Columns, Vec<Row>)],
    report: &mut ImportReport,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
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
    // The registry leaves alone a row equal to the latest observation of its township and year.
    send_rows(
        args,
        report,
        planned,
        OBSERVATION_BATCH_LIMIT,
        |o| o.township.clone(),
        |observations, validate_only| {
            let mut registry = registry.clone();
            async move {
                let request = pb::BatchRecordIndicatorsRequest { observations, validate_only, ..Default::default() };
                Ok(registry.batch_record_indicators(request).await?.into_inner().unchanged.len())
            }
        },
    )
    .await
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
) -> anyhow::Result<()> {
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
                    request: pb::CreateInstitutionRequest {
                        parent,
                        institution: Some(institution),
                        ..Default::default()
                    },
                }),
            }
        }
    }
    send_rows(
        args,
        report,
        planned,
        RECORD_BATCH_LIMIT,
        |r| r.parent.clone(),
        |requests, validate_only| {
            let mut registry = registry.clone();
            async move {
                registry
                    .batch_create_institutions(pb::BatchCreateInstitutionsRequest {
                        requests,
                        validate_only,
                        ..Default::default()
                    })
                    .await?;
                Ok(0)
            }
        },
    )
    .await
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
) -> anyhow::Result<()> {
    let codes = tables.iter().flat_map(|(_, c, rows)| rows.iter().map(|r| c.value(r, "township_code").to_owned()));
    let known = known_townships(registry, codes.collect::<Vec<_>>().into_iter()).await?;
    // Registered posts per township, counted by (role, holder, mandated role): two identical rows (two 副镇长
    // not yet named) are two posts, and only as many rows as are registered count as unchanged.
    let mut existing: HashMap<String, HashMap<(String, String, i32), usize>> = HashMap::new();
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
                let mut counts = HashMap::new();
                for post in list_posts(registry, &parent).await? {
                    *counts.entry((post.role, post.holder, post.mandated_role)).or_insert(0) += 1;
                }
                existing.insert(parent.clone(), counts);
            }
            let holder = columns.value(row, "holder").to_owned();
            let key = (role.clone(), holder.clone(), mandated as i32);
            if let Some(count) = existing.get_mut(&parent).and_then(|counts| counts.get_mut(&key))
                && *count > 0
            {
                *count -= 1;
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
                    ..Default::default()
                },
            });
        }
    }
    send_rows(
        args,
        report,
        planned,
        RECORD_BATCH_LIMIT,
        |r| r.parent.clone(),
        |requests, validate_only| {
            let mut registry = registry.clone();
            async move {
                registry
                    .batch_create_leadership_posts(pb::BatchCreateLeadershipPostsRequest {
                        requests,
                        validate_only,
                        ..Default::default()
                    })
                    .await?;
                Ok(0)
            }
        },
    )
    .await
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
) -> anyhow::Result<()> {
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
                    Err(error) if is_not_found(&error) => {
                        bad(report, file, row.number, format!("{owner_code} is not in the registry: {error:#}"));
                        continue;
                    }
                    Err(error) => return Err(error),
                };
            }
            // The key is the owner and the code. A template item shown under a township (exports list those)
            // is the row when its title is; a row with another title overrides it for the township.
            let title = columns.value(row, "title");
            if existing[&owner].iter().any(|i| i.code == code && i.inherited && i.title == title) {
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
            // The owner's own item of that code must be this very item (a template item was seen above).
            if let Some(registered) = existing[&owner].iter().find(|i| i.code == item.code && !i.inherited) {
                if same_item(registered, &item) {
                    report.unchanged += 1;
                } else {
                    let reason = format!(
                        "item {} of {owner_code} is registered ({}) with other details; delete it in the registry \
                         and import again, or give the row another code",
                        item.code, registered.name
                    );
                    bad(report, file, row.number, reason);
                }
                continue;
            }
            planned.push(Planned {
                file: file.clone(),
                row: row.number,
                request: pb::CreateCatalogueItemRequest {
                    parent: owner,
                    catalogue_item: Some(item),
                    ..Default::default()
                },
            });
        }
    }
    send_rows(
        args,
        report,
        planned,
        RECORD_BATCH_LIMIT,
        |r| r.parent.split("/townships/").next().unwrap_or_default().to_owned(),
        |requests, validate_only| {
            let mut registry = registry.clone();
            async move {
                registry
                    .batch_create_catalogue_items(pb::BatchCreateCatalogueItemsRequest {
                        requests,
                        validate_only,
                        ..Default::default()
                    })
                    .await?;
                Ok(0)
            }
        },
    )
    .await
}

/// Whether a registered item says what the row says (output-only fields aside).
fn same_item(registered: &pb::CatalogueItem, row: &pb::CatalogueItem) -> bool {
    let institution_same = if row.responsible_institution.is_empty() {
        registered.responsible_institution_title == row.responsible_institution_title
    } else {
        registered.responsible_institution == row.responsible_institution
    };
    registered.title == row.title
        && registered.item_type == row.item_type
        && registered.duty_area == row.duty_area
        && registered.details == row.details
        && institution_same
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
        assert_eq!(failing_indices(&status), [17]);
        let violations = tonic_types::BadRequest::new(vec![
            tonic_types::FieldViolation::new("observations[3].values.population", "must be finite"),
            tonic_types::FieldViolation::new("observations[1].data_year", "not a year"),
        ]);
        let status = tonic::Status::with_error_details(
            tonic::Code::InvalidArgument,
            "2 fields are invalid",
            tonic_types::ErrorDetails::with_bad_request(violations.field_violations),
        );
        assert_eq!(failing_indices(&status), [1, 3]);
        // Only a leading index counts: a message that merely mentions one names no record.
        let status = tonic::Status::failed_precondition("township 430102001: see requests[2] of yesterday");
        assert!(failing_indices(&status).is_empty());
        assert!(failing_indices(&tonic::Status::unavailable("down")).is_empty());
    }

    #[test]
    fn chunks_keep_a_township_together_and_respect_the_limit() {
        let rows: Vec<Planned<String>> = ["a", "b", "a", "c", "b", "a"]
            .iter()
            .enumerate()
            .map(|(row, key)| Planned { file: "f.csv".into(), row: row + 2, request: key.to_string() })
            .collect();
        let chunks = chunked(rows, 3, |key| key.clone());
        let keys: Vec<Vec<&str>> = chunks.iter().map(|c| c.iter().map(|p| p.request.as_str()).collect()).collect();
        assert_eq!(keys, [vec!["a", "a", "a"], vec!["b", "b", "c"]]);
        assert_eq!(chunks[0].iter().map(|p| p.row).collect::<Vec<_>>(), [2, 4, 7], "file order within a chunk");
        // A group larger than the limit is split, as it must be.
        let big: Vec<Planned<String>> =
            (0..7).map(|row| Planned { file: "f.csv".into(), row, request: "a".to_owned() }).collect();
        assert_eq!(chunked(big, 3, |key| key.clone()).iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
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
