//! `townctl import`: spreadsheet rows to registry records, all or nothing.
//!
//! Every row is checked here first (columns, numbers, codes, the township exists); then the registry checks the
//! rest (limits of the policy, institutions named) with `validate_only`. A file with bad rows is refused whole,
//! unless `--skip-bad-rows`. Rows equal to what is registered (same key, same values) are left alone, so
//! importing a file twice changes nothing. The registry takes at most 10,000 records a call (50,000
//! observations), each call one transaction: a file that fits is written in one call; a longer one is checked
//! whole first, chunk by chunk with `validate_only`, and only then written chunk by chunk, a township's rows
//! (a county's, for catalogues) never split between two chunks. The rows a refusal names are taken out as bad
//! rows and the rest sent again, until the registry takes them or none is left. A call that fails on the way
//! (registry unreachable, answer lost) is made again with the same `request_id`, so it is never written twice.

mod coverage;
mod kinds;
mod units;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use tonic::Status;
use tonic_types::StatusExt as _;

use crate::client::{Connection, Registry, describe};
use crate::output::Output;
use crate::sheet::{self, Columns, Field, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// Cities, counties and townships: columns code and name (the code's length gives the level).
    Divisions,
    /// Population (万人), fiscal revenue (万元) and land area (km²) per township and data year; a unit the header
    /// states (人口（人）, 面积（公顷）, …) is converted.
    Indicators,
    /// Party/government offices, public institutions and law-enforcement units of townships.
    Institutions,
    /// Leadership posts of townships.
    Posts,
    /// Catalogue items: a county's template (owner a 6-digit code) or a township's own (9 digits).
    Catalogue,
    /// Staffing approvals (编制), each added to its institution's ledger.
    StaffingApprovals,
    /// Actual headcounts (实有人数) of institutions, per staffing type.
    StaffingHeadcounts,
}

/// The columns each kind reads (Chinese or English names; case, spaces, `_` and a unit in brackets ignored).
const COLUMNS_HELP: &str = "\
Columns (* required; other names accepted, e.g. 人口（万人） for population):
  divisions     code* (4, 6 or 9 digits: city, county, township), name*
  indicators    township_code* (乡镇代码), population* (人口, 万人), fiscal_revenue* (财政收入, 万元),
                land_area* (国土面积, km²), data_year (年度; or --data-year), source (来源),
                township_name (名称: checked against the registry's name for the code)
                A unit in the header is converted: 人口（人）, 财政收入（元）/（千元）/（亿元）,
                面积（公顷）/（亩）/（平方米）; a value no township has in its unit is a bad row.
  institutions  township_code*, kind* (党政机构 | 事业单位 | 综合行政执法机构), name* (机构名称),
                staffing_quota (编制), approving_document (批准文号), valid_from, valid_to (YYYY-MM-DD)
  posts         township_code*, role* (职务), holder (姓名), mandated_role (抓党建副书记 | 纪委书记 | 组织委员)
  catalogue     owner_code* (county: template; township: own item), code* (事项编码), title* (事项名称),
                type* (权力 | 责任 | 公共服务), duty_area* (e.g. 加强基层党建), responsible_institution* (责任机构),
                legal_basis, power_category, power_origin, power_item_code, duties, accountability_cases,
                service_domain, handling_mode
  staffing-approvals  township_code*, name* (机构名称), document_number* (批准文号), approved_on* (批准时间,
                YYYY-MM-DD), staffing_type* (行政编制 | 事业编制), funding_type* (全额拨款 | 差额拨款 | 自收自支),
                change* (数量, negative for a reduction), summary (变动摘要)
  staffing-headcounts  township_code*, name* (机构名称), staffing_type* (行政编制 | 事业编制),
                actual_headcount* (实有人数)

Rows already registered with the same key and values are left alone, so importing a file twice changes
nothing. Exit status: 0 imported (or dry run clean), 1 failed, 2 bad rows (nothing written).";

#[derive(Debug, clap::Args)]
#[command(after_help = COLUMNS_HELP)]
pub(crate) struct ImportArgs {
    kind: Kind,
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
    /// Import indicator rows whose township name differs from the registry's name for the code (each is listed
    /// as a warning) instead of refusing them.
    #[arg(long)]
    accept_name_mismatch: bool,
}

#[derive(Debug, serde::Serialize)]
struct BadRow {
    file: String,
    row: usize,
    reason: String,
}

#[derive(Debug, serde::Serialize)]
struct ImportReport {
    kind: Kind,
    rows: usize,
    bad_rows: Vec<BadRow>,
    /// Rows already registered with the same values: left as they are.
    unchanged: usize,
    /// Rows written (with --dry-run: that would be written).
    written: usize,
    dry_run: bool,
    /// Whether anything was written.
    committed: bool,
    skip_bad_rows: bool,
    ignored_columns: Vec<String>,
    /// Columns in another unit than the stored one, converted.
    conversions: Vec<Conversion>,
    /// Rows imported with something to know (a name that differs from the registry's, with
    /// --accept-name-mismatch).
    warnings: Vec<BadRow>,
    /// The data years an indicator import touches, after it (with --dry-run: as they would be).
    data_years: Vec<coverage::YearCoverage>,
    /// How to adopt a year, when a city touched has no current year.
    #[serde(skip_serializing_if = "Option::is_none")]
    adopt_hint: Option<String>,
}

#[derive(Debug, serde::Serialize)]
struct Conversion {
    file: String,
    column: String,
    /// "in 人, converted to 万人 (÷10,000)".
    conversion: String,
}

/// One checked row on its way to the registry.
struct Planned<T> {
    file: String,
    row: usize,
    request: T,
}

pub(crate) async fn run(args: ImportArgs, connection: &Connection, output: Output) -> anyhow::Result<ExitCode> {
    let mut report = ImportReport {
        kind: args.kind,
        rows: 0,
        bad_rows: Vec::new(),
        unchanged: 0,
        written: 0,
        dry_run: args.dry_run,
        committed: false,
        skip_bad_rows: args.skip_bad_rows,
        ignored_columns: Vec::new(),
        conversions: Vec::new(),
        warnings: Vec::new(),
        data_years: Vec::new(),
        adopt_hint: None,
    };
    match args.kind {
        Kind::Divisions => import::<kinds::Divisions>(&args, connection, &mut report).await?,
        Kind::Indicators => import::<kinds::Indicators>(&args, connection, &mut report).await?,
        Kind::Institutions => import::<kinds::Institutions>(&args, connection, &mut report).await?,
        Kind::Posts => import::<kinds::Posts>(&args, connection, &mut report).await?,
        Kind::Catalogue => import::<kinds::Catalogue>(&args, connection, &mut report).await?,
        Kind::StaffingApprovals => import::<kinds::StaffingApprovals>(&args, connection, &mut report).await?,
        Kind::StaffingHeadcounts => import::<kinds::StaffingHeadcounts>(&args, connection, &mut report).await?,
    }
    let refused = !report.bad_rows.is_empty() && !args.skip_bad_rows;
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
    for conversion in &report.conversions {
        text.push_str(&format!("{}: column {:?} {}\n", conversion.file, conversion.column, conversion.conversion));
    }
    if !report.warnings.is_empty() {
        text.push_str(&format!("{} warning(s):\n", report.warnings.len()));
        for warning in &report.warnings {
            text.push_str(&format!("  {} row {}: {}\n", warning.file, warning.row, warning.reason));
        }
    }
    if !report.bad_rows.is_empty() {
        text.push_str(&format!("{} bad row(s):\n", report.bad_rows.len()));
        for bad in &report.bad_rows {
            text.push_str(&format!("  {} row {}: {}\n", bad.file, bad.row, bad.reason));
        }
    }
    if report.dry_run && !report.bad_rows.is_empty() && !report.skip_bad_rows {
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
    if !report.data_years.is_empty() {
        let refused = !report.bad_rows.is_empty() && !report.skip_bad_rows;
        text.push_str(match (report.dry_run, refused) {
            (true, true) => "Data years after the import with --skip-bad-rows (dry run):\n",
            (true, false) => "Data years after the import (dry run):\n",
            (false, _) => "Data years, as the registry reports them now:\n",
        });
        for year in &report.data_years {
            text.push_str(&format!("  {}\n", year.line()));
        }
    }
    if let Some(hint) = &report.adopt_hint {
        text.push_str(hint);
    }
    text
}

fn bad(report: &mut ImportReport, file: &str, row: usize, reason: impl Into<String>) {
    report.bad_rows.push(BadRow { file: file.to_owned(), row, reason: reason.into() });
}

/// A row of a sheet, its columns mapped.
#[derive(Clone, Copy)]
struct Cells<'a> {
    file: &'a str,
    columns: &'a Columns,
    row: &'a Row,
}

impl<'a> Cells<'a> {
    /// The row's value of `field`; empty when the file has no such column.
    fn get(&self, field: Field) -> &'a str {
        self.columns.value(self.row, field.key)
    }

    fn number(&self) -> usize {
        self.row.number
    }
}

/// What a kind makes of one row.
enum Plan<T> {
    Create(T),
    /// To be created, with a warning to list beside it.
    CreateWithWarning(T, String),
    /// Registered already, with the same values: left alone.
    Unchanged,
    Bad(String),
}

/// What differs between the kinds of rows; reading, batching, refusals, chunks and the report are [`import`]'s.
trait ImportKind: Sized {
    /// One record of a batch call.
    type Request: Clone;
    const COLUMNS: &'static [Field];
    /// The most records one call takes.
    const BATCH_LIMIT: usize;

    /// Checks a file's columns before anyone is contacted: Err refuses the file. Answers what to tell of them.
    fn check_columns(_columns: &Columns) -> Result<Vec<(String, String)>, String> {
        Ok(Vec::new())
    }

    /// Reads what the rows are checked against (what is registered) before the first row.
    async fn prepare(registry: &Registry, args: &ImportArgs, rows: &[Cells<'_>]) -> anyhow::Result<Self>;

    /// Checks one row (and what is registered for its key).
    async fn plan(&mut self, registry: &Registry, row: Cells<'_>) -> anyhow::Result<Plan<Self::Request>>;

    /// Requests with the same group are never split between two chunks (a township's rows, say).
    fn group(request: &Self::Request) -> &str;

    /// One batch call; answers how many of the records were already registered as they are.
    async fn send(registry: &Registry, requests: Vec<Self::Request>, validate_only: bool) -> Result<usize, Status>;

    /// What the import did beyond its rows, told in the report: `accepted` are the requests written (or, in a
    /// dry run, that would be).
    async fn summarise(
        &self,
        _registry: &Registry,
        _connection: &Connection,
        _accepted: &[Self::Request],
        _report: &mut ImportReport,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    /// The requests of the chunk a refusal names, each with the reason its row is listed with.
    fn refused(status: &Status, _chunk: &[Planned<Self::Request>]) -> BTreeMap<usize, String> {
        refused_requests(status)
    }
}

/// Reads the files, checks every row as `K` says, then sends the good ones (see the module doc).
async fn import<K: ImportKind>(
    args: &ImportArgs,
    connection: &Connection,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    // Read and map every file before contacting anyone: a file problem is found in a second.
    let mut tables = Vec::new();
    for path in &args.files {
        let table = sheet::read_table(path, args.sheet.as_deref())?;
        let columns = sheet::map_columns(&table.headers, K::COLUMNS)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        let file = path.display().to_string();
        for (column, conversion) in K::check_columns(&columns).map_err(|error| anyhow::anyhow!("{file}: {error}"))? {
            report.conversions.push(Conversion { file: file.clone(), column, conversion });
        }
        report.ignored_columns.extend(columns.ignored().iter().cloned());
        report.rows += table.rows.len();
        tables.push((path.display().to_string(), columns, table.rows));
    }
    let rows: Vec<Cells> = tables
        .iter()
        .flat_map(|(file, columns, rows)| rows.iter().map(move |row| Cells { file, columns, row }))
        .collect();
    let registry = connection.registry().await?;
    let progress = crate::output::progress_bar("rows checked");
    progress.set_length(report.rows as u64);
    let mut kind = K::prepare(&registry, args, &rows).await?;
    let mut planned = Vec::new();
    for row in rows {
        progress.inc(1);
        match kind.plan(&registry, row).await? {
            Plan::Create(request) => planned.push(Planned { file: row.file.to_owned(), row: row.number(), request }),
            Plan::CreateWithWarning(request, warning) => {
                report.warnings.push(BadRow { file: row.file.to_owned(), row: row.number(), reason: warning });
                planned.push(Planned { file: row.file.to_owned(), row: row.number(), request });
            }
            Plan::Unchanged => report.unchanged += 1,
            Plan::Bad(reason) => bad(report, row.file, row.number(), reason),
        }
    }
    let sent = send_rows::<K>(&registry, args, report, planned).await;
    progress.finish_and_clear();
    let accepted = sent?;
    // A refused file wrote nothing; a dry run tells what the import would do, with --skip-bad-rows if need be.
    let refused = !report.bad_rows.is_empty() && !args.skip_bad_rows;
    if args.dry_run || !refused {
        kind.summarise(&registry, connection, &accepted, report).await?;
    }
    Ok(())
}

/// The `google.rpc.ErrorInfo` metadata key of the refused request of a batch.
const REQUEST_INDEX: &str = "request_index";

/// The requests of a batch a refusal names, read from its details and never from its message: each field
/// violation of `requests[7]…` (`observations[7]…` in an indicator batch), and the `ErrorInfo`'s `request_index`.
/// A violation's reason is its own (a refusal lists many requests at once); an index named only by `ErrorInfo` has
/// the whole refusal as its reason. Empty when the refusal is not about particular requests.
fn refused_requests(status: &Status) -> BTreeMap<usize, String> {
    fn in_batch(field: &str) -> Option<(usize, &str)> {
        let rest = field.strip_prefix("requests[").or_else(|| field.strip_prefix("observations["))?;
        let (index, field) = rest.split_once(']')?;
        Some((index.parse().ok()?, field.trim_start_matches('.')))
    }
    let violations = status.get_details_bad_request().map(|b| b.field_violations).unwrap_or_default();
    let mut named: Vec<(usize, String)> = violations
        .into_iter()
        .filter_map(|violation| {
            let (index, field) = in_batch(&violation.field)?;
            let reason = match field {
                "" => violation.description,
                field => format!("{field}: {}", violation.description),
            };
            Some((index, reason))
        })
        .collect();
    let index = status.get_details_error_info().and_then(|info| info.metadata.get(REQUEST_INDEX)?.parse().ok());
    if let Some(index) = index.filter(|index| !named.iter().any(|(named, _)| named == index)) {
        named.push((index, describe(status)));
    }
    refusal_reasons(named)
}

/// The reason of each refused request, from what the refusal says of it.
fn refusal_reasons(named: impl IntoIterator<Item = (usize, String)>) -> BTreeMap<usize, String> {
    let mut reasons: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (index, reason) in named {
        reasons.entry(index).or_default().push(reason);
    }
    reasons
        .into_iter()
        .map(|(index, reasons)| (index, format!("refused by the registry: {}", reasons.join("; "))))
        .collect()
}

/// How many times a batch is sent before a transient failure is given up on.
const SEND_ATTEMPTS: u32 = 4;

/// Whether a failed call may succeed if made again unchanged: the registry (or its database) was unreachable, the
/// answer was lost, or the same request was being made at that moment.
fn is_transient(status: &Status) -> bool {
    matches!(status.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Aborted)
}

/// One batch call, made again after a transient failure. The retry is the same request with the same
/// `request_id` (see [`crate::client::with_request_id`]): a batch whose answer was lost is answered, not written twice.
async fn send<K: ImportKind>(
    registry: &Registry,
    chunk: &[Planned<K::Request>],
    validate_only: bool,
) -> Result<usize, Status> {
    let mut wait = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        let requests = chunk.iter().map(|p| p.request.clone()).collect();
        match K::send(registry, requests, validate_only).await {
            Err(status) if attempt < SEND_ATTEMPTS && is_transient(&status) => {
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Sends the planned rows to the registry (see the module doc), removing every row a refusal names as a bad row
/// and trying again, so that every bad row is reported and, with `--skip-bad-rows`, the good ones still written.
async fn send_rows<K: ImportKind>(
    registry: &Registry,
    args: &ImportArgs,
    report: &mut ImportReport,
    planned: Vec<Planned<K::Request>>,
) -> anyhow::Result<Vec<K::Request>> {
    let mut write = !args.dry_run && (report.bad_rows.is_empty() || args.skip_bad_rows);
    let chunks = chunked(planned, K::BATCH_LIMIT, |request| K::group(request).to_owned());
    let chunk_count = chunks.len();
    let mut checked = Vec::with_capacity(chunk_count);
    for mut chunk in chunks {
        // Every refusal takes at least one row out, so this ends within the chunk's length.
        let unchanged = loop {
            if chunk.is_empty() {
                break 0;
            }
            // A file that fits in one call is written by that call (the registry checks and writes in one
            // transaction); a longer one is checked whole before any chunk is written.
            let direct = write && chunk_count == 1;
            let status = match send::<K>(registry, &chunk, !direct).await {
                Ok(unchanged) => break unchanged,
                Err(status) => status,
            };
            let refused = K::refused(&status, &chunk);
            if refused.is_empty() || refused.keys().any(|&index| index >= chunk.len()) {
                anyhow::bail!("the registry refused the import: {}", describe(&status));
            }
            for (&index, reason) in &refused {
                bad(report, &chunk[index].file, chunk[index].row, reason.clone());
            }
            for &index in refused.keys().rev() {
                chunk.remove(index);
            }
            // Without --skip-bad-rows the file is now refused whole: go on checking, to list every bad row.
            write = write && args.skip_bad_rows;
        };
        report.unchanged += unchanged;
        report.written += chunk.len() - unchanged;
        checked.push(chunk);
    }
    let accepted = || checked.iter().flatten().map(|p| p.request.clone()).collect();
    if !write {
        return Ok(accepted());
    }
    if chunk_count == 1 {
        report.committed = report.written > 0;
        return Ok(accepted());
    }
    let mut written = 0;
    for (number, chunk) in checked.iter().enumerate() {
        if chunk.is_empty() {
            continue;
        }
        if let Err(status) = send::<K>(registry, chunk, false).await {
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
    Ok(accepted())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_their_requests_in_the_details_only() {
        // A batch refused field by field: each request with its own violations, the summary of those not
        // listed (a field without an index) naming none.
        let mut details = tonic_types::ErrorDetails::new();
        details
            .add_bad_request_violation("observations[3].values.population", "population is 1e13")
            .add_bad_request_violation("observations[1].data_year", "not a year")
            .add_bad_request_violation("observations[3].values.land_area", "land_area is -1")
            .add_bad_request_violation("observations", "and 40 more violations not listed");
        let refused = refused_requests(&Status::with_error_details(tonic::Code::InvalidArgument, "3 fields", details));
        assert_eq!(
            refused.into_iter().collect::<Vec<_>>(),
            [
                (1, "refused by the registry: data_year: not a year".to_owned()),
                (
                    3,
                    "refused by the registry: values.population: population is 1e13; values.land_area: land_area is -1"
                        .to_owned()
                ),
            ]
        );
        // A request refused other than as INVALID_ARGUMENT: ErrorInfo names it, the reason is the whole answer.
        let info = |metadata: &[(&str, &str)]| {
            let metadata: HashMap<String, String> =
                metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            tonic_types::ErrorDetails::with_error_info("FAILED_PRECONDITION", "township.registry", metadata)
        };
        let status = Status::with_error_details(
            tonic::Code::FailedPrecondition,
            "township 430102001 already has 1",
            info(&[(REQUEST_INDEX, "17")]),
        );
        let refused = refused_requests(&status);
        assert_eq!(refused.keys().collect::<Vec<_>>(), [&17]);
        assert!(
            refused[&17].starts_with("refused by the registry: FailedPrecondition: township 430102001"),
            "{refused:?}"
        );
        // The message is never read for an index.
        let status = Status::with_error_details(tonic::Code::FailedPrecondition, "requests[2]: busy", info(&[]));
        assert!(refused_requests(&status).is_empty(), "an ErrorInfo without request_index names no request");
        assert!(refused_requests(&Status::failed_precondition("requests[17]: no details")).is_empty());
        assert!(refused_requests(&Status::unavailable("down")).is_empty());
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
}
