//! The six kinds of rows `townctl import` reads: what each checks a row against, what it sends, and what
//! "unchanged" means for it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use tonic::Status;
use tonic_types::StatusExt as _;
use township_proto::classifier::v1::IndicatorValues;
use township_proto::registry::v1 as pb;

use super::units::{self, ColumnUnit, Measure};
use super::{Cells, ImportArgs, ImportKind, ImportReport, Plan, Planned, coverage, refusal_reasons};
use crate::client::{Connection, Registry, is_not_found, scope_name, with_request_id};
use crate::list;
use crate::sheet::{Columns, Field, header_unit};
use crate::vocabulary::{self as words, *};

/// The largest batch of records the registry takes in one call.
const RECORD_BATCH_LIMIT: usize = 10_000;
/// The largest batch of indicator observations the registry takes in one call.
const OBSERVATION_BATCH_LIMIT: usize = 50_000;

/// A 12-digit statistical code is the 9-digit code followed by 000.
fn statistical_code(code: &str) -> &str {
    if code.len() == 12 && code.ends_with("000") { &code[..9] } else { code }
}

fn number(row: Cells, field: Field, errors: &mut Vec<String>) -> Option<f64> {
    let key = field.key;
    let text = row.get(field).replace([',', '，'], "");
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

fn township_code(row: Cells, errors: &mut Vec<String>) -> Option<String> {
    let code = statistical_code(row.get(TOWNSHIP_CODE));
    if code.len() == 9 && code.bytes().all(|b| b.is_ascii_digit()) {
        Some(code.to_owned())
    } else {
        errors.push(format!("{} {code:?} is not a 9-digit township code", TOWNSHIP_CODE.key));
        None
    }
}

fn township_name(code: &str) -> String {
    format!("cities/{}/counties/{}/townships/{code}", &code[..4], &code[..6])
}

fn is_iso_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    matches!(parts.as_slice(), [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())))
}

/// The cities (4-digit prefixes) the codes fall in.
fn cities_of<'a>(codes: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    codes.filter_map(|code| code.get(..4).map(str::to_owned)).collect()
}

/// The townships of the registry under the cities the rows name, by code: one listing per city.
async fn known_townships(registry: &Registry, rows: &[Cells<'_>]) -> anyhow::Result<HashMap<String, pb::Township>> {
    let mut known = HashMap::new();
    for city in cities_of(rows.iter().map(|row| row.get(TOWNSHIP_CODE))) {
        match list::townships(registry, &format!("cities/{city}")).await {
            Ok(townships) => known.extend(townships.into_iter().map(|t| (t.code.clone(), t))),
            // A city the registry does not know: its townships are reported row by row.
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(known)
}

/// A row naming a township the registry does not have is bad.
fn unknown_township(
    known: &HashMap<String, pb::Township>,
    code: &Option<String>,
    errors: &mut Vec<String>,
    advice: &str,
) {
    if let Some(code) = code
        && !known.contains_key(code)
    {
        errors.push(format!("township {code} is not in the registry{advice}"));
    }
}

/// Cities, counties and townships, sent as the three CSVs of one `ImportDivisions` call.
pub(super) struct Divisions {
    /// The name registered for every division of the cities the rows fall in.
    registered: HashMap<String, String>,
    /// The row each code first appears in.
    seen: HashMap<String, usize>,
}

/// One division row as a line of the CSV that `ImportDivisions` reads.
#[derive(Clone)]
pub(super) struct DivisionLine {
    level: DivisionLevel,
    line: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DivisionLevel {
    City,
    County,
    Township,
}

impl DivisionLevel {
    const ALL: [DivisionLevel; 3] = [DivisionLevel::City, DivisionLevel::County, DivisionLevel::Township];

    /// The request field the registry names in its refusals (`townships_csv[row 3]`).
    fn field(self) -> &'static str {
        match self {
            DivisionLevel::City => "cities_csv",
            DivisionLevel::County => "counties_csv",
            DivisionLevel::Township => "townships_csv",
        }
    }
}

impl ImportKind for Divisions {
    type Request = DivisionLine;
    const COLUMNS: &'static [Field] = words::DIVISIONS;
    /// `ImportDivisions` takes a file whole.
    const BATCH_LIMIT: usize = usize::MAX;

    async fn prepare(registry: &Registry, _: &ImportArgs, rows: &[Cells<'_>]) -> anyhow::Result<Self> {
        let cities = cities_of(rows.iter().map(|row| row.get(DIVISION_CODE)));
        let mut registered = HashMap::new();
        for city in list::cities(registry).await?.into_iter().filter(|c| cities.contains(&c.code)) {
            let parent = format!("cities/{}", city.code);
            for county in list::counties(registry, &parent).await? {
                registered.insert(county.code, county.display_name);
            }
            for township in list::townships(registry, &parent).await? {
                registered.insert(township.code, township.display_name);
            }
            registered.insert(city.code, city.display_name);
        }
        Ok(Self { registered, seen: HashMap::new() })
    }

    async fn plan(&mut self, _: &Registry, row: Cells<'_>) -> anyhow::Result<Plan<DivisionLine>> {
        let code = statistical_code(row.get(DIVISION_CODE)).to_owned();
        let name = row.get(DIVISION_NAME);
        if name.is_empty() {
            return Ok(Plan::Bad("name is empty".to_owned()));
        }
        if !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Plan::Bad(format!("code {code:?} is not a division code")));
        }
        if let Some(first) = self.seen.insert(code.clone(), row.number()) {
            return Ok(Plan::Bad(format!("code {code} already appears in row {first}")));
        }
        if self.registered.get(&code).is_some_and(|registered| registered == name) {
            return Ok(Plan::Unchanged);
        }
        let quoted = name.replace('"', "\"\"");
        let (level, line) = match code.len() {
            4 => (DivisionLevel::City, format!("{code},\"{quoted}\",{}", &code[..2])),
            6 => (DivisionLevel::County, format!("{code},\"{quoted}\",{},{}", &code[..4], &code[..2])),
            9 => (DivisionLevel::Township, format!("{code},\"{quoted}\",{},{},{}", &code[..6], &code[..2], &code[..4])),
            other => {
                return Ok(Plan::Bad(format!(
                    "code {code} has {other} digits; a city has 4, a county 6, a township 9"
                )));
            }
        };
        Ok(Plan::Create(DivisionLine { level, line }))
    }

    fn group(_: &DivisionLine) -> &str {
        ""
    }

    async fn send(registry: &Registry, lines: Vec<DivisionLine>, validate_only: bool) -> Result<usize, Status> {
        let csv = |level: DivisionLevel, header: &str| {
            let body: Vec<&str> = lines.iter().filter(|l| l.level == level).map(|l| l.line.as_str()).collect();
            format!("{header}\n{}\n", body.join("\n"))
        };
        let request = pb::ImportDivisionsRequest {
            cities_csv: csv(DivisionLevel::City, "code,name,provinceCode"),
            counties_csv: csv(DivisionLevel::County, "code,name,cityCode,provinceCode"),
            townships_csv: csv(DivisionLevel::Township, "code,name,areaCode,provinceCode,cityCode"),
            code_prefix: String::new(),
            validate_only,
        };
        registry.clone().import_divisions(request).await?;
        Ok(0)
    }

    /// The registry lists every bad line at once, each as `townships_csv[row N]`, N counted from 1 at the header;
    /// `ImportDivisions` takes no `request_id`, as importing the same lines again changes nothing.
    fn refused(status: &Status, chunk: &[Planned<DivisionLine>]) -> BTreeMap<usize, String> {
        let line_of = |field: &str, level: DivisionLevel| {
            let number: usize =
                field.strip_prefix(level.field())?.strip_prefix("[row ")?.strip_suffix(']')?.parse().ok()?;
            let mut lines = chunk.iter().enumerate().filter(|(_, p)| p.request.level == level);
            lines.nth(number.checked_sub(2)?).map(|(index, _)| index)
        };
        let violations = status.get_details_bad_request().map(|b| b.field_violations).unwrap_or_default();
        refusal_reasons(violations.into_iter().filter_map(|violation| {
            let index = DivisionLevel::ALL.into_iter().find_map(|level| line_of(&violation.field, level))?;
            Some((index, violation.description))
        }))
    }
}

/// The indicator columns with the measure of each: its field, and the units and values it takes.
const MEASURED: [(Field, &Measure); 3] =
    [(POPULATION, &units::POPULATION), (FISCAL_REVENUE, &units::FISCAL_REVENUE), (LAND_AREA, &units::LAND_AREA)];

/// The unit each indicator column of a file is in, from its header; Err names a column in a unit that cannot be
/// converted.
fn column_units(columns: &Columns) -> Result<[ColumnUnit; 3], String> {
    let unit = |(field, measure): (Field, &'static Measure)| {
        let header = columns.header(field.key).unwrap_or(field.key);
        measure.column_unit(header, header_unit(header).as_deref())
    };
    Ok([unit(MEASURED[0])?, unit(MEASURED[1])?, unit(MEASURED[2])?])
}

/// A value of the row in the stored unit, checked for what a township can have.
fn measured(row: Cells, field: Field, unit: &ColumnUnit, errors: &mut Vec<String>) -> Option<f64> {
    let raw = number(row, field, errors)?;
    unit.read(raw).map_err(|reason| errors.push(reason)).ok()
}

/// A name as compared: without spaces, full-width brackets as half-width.
fn fold_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            other => other,
        })
        .collect()
}

/// Whether the sheet's name is the registry's: the same once spaces and bracket widths are ignored, or the same
/// without its 镇, 乡 or 街道 (大瑶 for 大瑶镇), or with 办事处 (文艺路街道办事处 for 文艺路街道).
fn same_name(registered: &str, sheet: &str) -> bool {
    let (registered, sheet) = (fold_name(registered), fold_name(sheet));
    registered == sheet
        || ["镇", "乡", "街道"].iter().any(|suffix| registered.strip_suffix(suffix) == Some(sheet.as_str()))
        || sheet.strip_suffix("办事处") == Some(registered.as_str())
}

/// Indicator observations; the registry leaves alone one equal to the latest of its township and year.
pub(super) struct Indicators {
    known: HashMap<String, pb::Township>,
    /// The row each township and year first appears in.
    seen: HashMap<(String, i32), usize>,
    data_year: Option<i32>,
    source: String,
    accept_name_mismatch: bool,
    /// The units of each file's indicator columns, by file.
    units: HashMap<String, [ColumnUnit; 3]>,
    /// The data years of each city the rows name, before the import.
    before: HashMap<String, coverage::Before>,
}

impl ImportKind for Indicators {
    type Request = pb::IndicatorObservation;
    const COLUMNS: &'static [Field] = words::INDICATORS;
    const BATCH_LIMIT: usize = OBSERVATION_BATCH_LIMIT;

    fn check_columns(columns: &Columns) -> Result<Vec<(String, String)>, String> {
        let units = column_units(columns)?;
        Ok(MEASURED
            .iter()
            .zip(units)
            .filter_map(|((field, _), unit)| {
                Some((columns.header(field.key).unwrap_or(field.key).to_owned(), unit.conversion()?))
            })
            .collect())
    }

    async fn prepare(registry: &Registry, args: &ImportArgs, rows: &[Cells<'_>]) -> anyhow::Result<Self> {
        let known = known_townships(registry, rows).await?;
        let mut units = HashMap::new();
        for row in rows {
            if !units.contains_key(row.file) {
                let file_units = column_units(row.columns).map_err(|error| anyhow::anyhow!("{}: {error}", row.file))?;
                units.insert(row.file.to_owned(), file_units);
            }
        }
        let mut before = HashMap::new();
        for city in cities_of(known.keys().map(String::as_str)) {
            let city = format!("cities/{city}");
            before.insert(city.clone(), coverage::before(registry, &city).await?);
        }
        Ok(Self {
            known,
            seen: HashMap::new(),
            data_year: args.data_year,
            source: args.source.clone(),
            accept_name_mismatch: args.accept_name_mismatch,
            units,
            before,
        })
    }

    async fn plan(&mut self, _: &Registry, row: Cells<'_>) -> anyhow::Result<Plan<pb::IndicatorObservation>> {
        let mut errors = Vec::new();
        let code = township_code(row, &mut errors);
        let year_text = row.get(DATA_YEAR);
        let data_year = if year_text.is_empty() {
            self.data_year.or_else(|| {
                errors.push("data_year is empty and no --data-year was given".to_owned());
                None
            })
        } else {
            year_text.parse::<i32>().ok().filter(|y| (1949..=2100).contains(y)).or_else(|| {
                errors.push(format!("data_year {year_text:?} is not a year"));
                None
            })
        };
        let [population_unit, revenue_unit, area_unit] = &self.units[row.file];
        let values = (
            measured(row, POPULATION, population_unit, &mut errors),
            measured(row, FISCAL_REVENUE, revenue_unit, &mut errors),
            measured(row, LAND_AREA, area_unit, &mut errors),
        );
        unknown_township(&self.known, &code, &mut errors, " (import its divisions first)");
        let mut warning = None;
        let sheet_name = row.get(TOWNSHIP_NAME);
        if let Some(code) = &code
            && let Some(township) = self.known.get(code)
            && !sheet_name.is_empty()
            && !same_name(&township.display_name, sheet_name)
        {
            let mismatch = format!("{code} is {} in the registry, the sheet says {sheet_name}", township.display_name);
            if self.accept_name_mismatch {
                warning = Some(format!("{mismatch}; imported for {code} (--accept-name-mismatch)"));
            } else {
                errors.push(format!(
                    "{mismatch}; correct the code or the name, or import with --accept-name-mismatch if the code is right"
                ));
            }
        }
        if let (Some(code), Some(year)) = (&code, data_year)
            && let Some(first) = self.seen.insert((code.clone(), year), row.number())
        {
            errors.push(format!("township {code} {year} already appears in row {first}"));
        }
        let (true, Some(code), Some(data_year), (Some(population), Some(fiscal_revenue), Some(land_area))) =
            (errors.is_empty(), code, data_year, values)
        else {
            return Ok(Plan::Bad(errors.join("; ")));
        };
        let source = match row.get(SOURCE) {
            "" => self.source.clone(),
            given => given.to_owned(),
        };
        let observation = pb::IndicatorObservation {
            township: township_name(&code),
            data_year,
            values: Some(IndicatorValues { population, fiscal_revenue, land_area }),
            source,
            ..Default::default()
        };
        Ok(match warning {
            Some(warning) => Plan::CreateWithWarning(observation, warning),
            None => Plan::Create(observation),
        })
    }

    async fn summarise(
        &self,
        registry: &Registry,
        connection: &Connection,
        accepted: &[pb::IndicatorObservation],
        report: &mut ImportReport,
    ) -> anyhow::Result<()> {
        report.data_years = coverage::after(registry, &self.before, &self.known, accepted, !report.dry_run).await?;
        if let Some(year) = report.data_years.iter().find(|year| year.current_year == 0) {
            report.adopt_hint = Some(crate::years::adopt_hint(&connection.registry, &year.city, year.data_year));
        }
        Ok(())
    }

    fn group(observation: &pb::IndicatorObservation) -> &str {
        &observation.township
    }

    async fn send(
        registry: &Registry,
        observations: Vec<pb::IndicatorObservation>,
        validate_only: bool,
    ) -> Result<usize, Status> {
        let request = with_request_id(
            pb::BatchRecordIndicatorsRequest { observations, validate_only, ..Default::default() },
            |r| &mut r.request_id,
        );
        Ok(registry.clone().batch_record_indicators(request).await?.into_inner().unchanged.len())
    }
}

/// Institutions, keyed by township and name.
pub(super) struct Institutions {
    known: HashMap<String, pb::Township>,
    /// Each township's registered institutions, listed when a row first names it.
    registered: HashMap<String, Vec<pb::Institution>>,
    /// The row each township and name first appears in.
    seen: HashMap<(String, String), usize>,
}

impl ImportKind for Institutions {
    type Request = pb::CreateInstitutionRequest;
    const COLUMNS: &'static [Field] = words::INSTITUTIONS;
    const BATCH_LIMIT: usize = RECORD_BATCH_LIMIT;

    async fn prepare(registry: &Registry, _: &ImportArgs, rows: &[Cells<'_>]) -> anyhow::Result<Self> {
        Ok(Self { known: known_townships(registry, rows).await?, registered: HashMap::new(), seen: HashMap::new() })
    }

    async fn plan(&mut self, registry: &Registry, row: Cells<'_>) -> anyhow::Result<Plan<Self::Request>> {
        let mut errors = Vec::new();
        let code = township_code(row, &mut errors);
        let kind_text = row.get(INSTITUTION_KIND);
        let kind = INSTITUTION_KINDS.parse(kind_text);
        if kind.is_none() {
            errors.push(format!("kind {kind_text:?} is not {}", INSTITUTION_KINDS.expected()));
        }
        let name = row.get(INSTITUTION_NAME).to_owned();
        if name.is_empty() {
            errors.push("name is empty".to_owned());
        }
        let quota_text = row.get(STAFFING_QUOTA);
        let staffing_quota = if quota_text.is_empty() {
            0
        } else {
            quota_text.parse::<u32>().unwrap_or_else(|_| {
                errors.push(format!("staffing_quota {quota_text:?} is not a whole number ≥ 0"));
                0
            })
        };
        for field in [VALID_FROM, VALID_TO] {
            let date = row.get(field);
            if !date.is_empty() && !is_iso_date(date) {
                errors.push(format!("{} {date:?} is not a date YYYY-MM-DD", field.key));
            }
        }
        unknown_township(&self.known, &code, &mut errors, "");
        if let Some(code) = &code
            && let Some(first) = self.seen.insert((code.clone(), name.clone()), row.number())
        {
            errors.push(format!("{name} of township {code} already appears in row {first}"));
        }
        let (Some(code), Some(kind), true) = (code, kind, errors.is_empty()) else {
            return Ok(Plan::Bad(errors.join("; ")));
        };
        let parent = township_name(&code);
        if !self.registered.contains_key(&parent) {
            let listed = list::institutions(registry, &parent).await?;
            self.registered.insert(parent.clone(), listed);
        }
        let institution = pb::Institution {
            kind: kind as i32,
            display_name: name.clone(),
            staffing_quota,
            approving_document: row.get(APPROVING_DOCUMENT).to_owned(),
            valid_from: row.get(VALID_FROM).to_owned(),
            valid_to: row.get(VALID_TO).to_owned(),
            ..Default::default()
        };
        let Some(registered) = self.registered[&parent].iter().find(|i| i.display_name == name) else {
            return Ok(Plan::Create(pb::CreateInstitutionRequest {
                parent,
                institution: Some(institution),
                ..Default::default()
            }));
        };
        let same = registered.kind == institution.kind
            && registered.staffing_quota == institution.staffing_quota
            && registered.approving_document == institution.approving_document
            && registered.valid_from == institution.valid_from
            && registered.valid_to == institution.valid_to;
        Ok(if same {
            Plan::Unchanged
        } else {
            Plan::Bad(format!(
                "{name} of township {code} is registered ({}) with other details; change it in the registry, or end \
                 it (valid_to) and register the new one under another name",
                registered.name
            ))
        })
    }

    fn group(request: &pb::CreateInstitutionRequest) -> &str {
        &request.parent
    }

    async fn send(registry: &Registry, requests: Vec<Self::Request>, validate_only: bool) -> Result<usize, Status> {
        let request = with_request_id(
            pb::BatchCreateInstitutionsRequest { requests, validate_only, ..Default::default() },
            |r| &mut r.request_id,
        );
        registry.clone().batch_create_institutions(request).await?;
        Ok(0)
    }
}

fn mandated_role(text: &str) -> Result<pb::MandatedRole, String> {
    MANDATED_ROLES
        .parse(text)
        .ok_or_else(|| format!("mandated_role {text:?} is not {} (or empty)", MANDATED_ROLES.expected()))
}

/// Leadership posts. Two identical rows (two 副镇长 not yet named) are two posts.
pub(super) struct Posts {
    known: HashMap<String, pb::Township>,
    /// Registered posts per township, counted by (role, holder, mandated role): only as many rows as are
    /// registered count as unchanged.
    registered: HashMap<String, HashMap<(String, String, i32), usize>>,
}

impl ImportKind for Posts {
    type Request = pb::CreateLeadershipPostRequest;
    const COLUMNS: &'static [Field] = words::POSTS;
    const BATCH_LIMIT: usize = RECORD_BATCH_LIMIT;

    async fn prepare(registry: &Registry, _: &ImportArgs, rows: &[Cells<'_>]) -> anyhow::Result<Self> {
        Ok(Self { known: known_townships(registry, rows).await?, registered: HashMap::new() })
    }

    async fn plan(&mut self, registry: &Registry, row: Cells<'_>) -> anyhow::Result<Plan<Self::Request>> {
        let mut errors = Vec::new();
        let code = township_code(row, &mut errors);
        let role = row.get(ROLE).to_owned();
        if role.is_empty() {
            errors.push("role is empty".to_owned());
        }
        let mandated = mandated_role(row.get(MANDATED_ROLE)).map_err(|e| errors.push(e)).ok();
        unknown_township(&self.known, &code, &mut errors, "");
        let (Some(code), Some(mandated), true) = (code, mandated, errors.is_empty()) else {
            return Ok(Plan::Bad(errors.join("; ")));
        };
        let parent = township_name(&code);
        if !self.registered.contains_key(&parent) {
            let mut counts = HashMap::new();
            for post in list::posts(registry, &parent).await? {
                *counts.entry((post.role, post.holder, post.mandated_role)).or_insert(0) += 1;
            }
            self.registered.insert(parent.clone(), counts);
        }
        let holder = row.get(HOLDER).to_owned();
        let key = (role.clone(), holder.clone(), mandated as i32);
        if let Some(count) = self.registered.get_mut(&parent).and_then(|counts| counts.get_mut(&key))
            && *count > 0
        {
            *count -= 1;
            return Ok(Plan::Unchanged);
        }
        let post = pb::LeadershipPost { role, holder, mandated_role: mandated as i32, ..Default::default() };
        Ok(Plan::Create(pb::CreateLeadershipPostRequest { parent, post: Some(post), ..Default::default() }))
    }

    fn group(request: &pb::CreateLeadershipPostRequest) -> &str {
        &request.parent
    }

    async fn send(registry: &Registry, requests: Vec<Self::Request>, validate_only: bool) -> Result<usize, Status> {
        let request = with_request_id(
            pb::BatchCreateLeadershipPostsRequest { requests, validate_only, ..Default::default() },
            |r| &mut r.request_id,
        );
        registry.clone().batch_create_leadership_posts(request).await?;
        Ok(0)
    }
}

/// Catalogue items, keyed by owner (a county's template or a township) and code.
#[derive(Default)]
pub(super) struct Catalogue {
    /// Each owner's catalogue (a township's with the items it inherits), listed when a row first names it.
    registered: HashMap<String, Vec<pb::CatalogueItem>>,
    /// Each township's institutions, which its own items name.
    institutions: HashMap<String, Vec<pb::Institution>>,
}

impl ImportKind for Catalogue {
    type Request = pb::CreateCatalogueItemRequest;
    const COLUMNS: &'static [Field] = words::CATALOGUE;
    const BATCH_LIMIT: usize = RECORD_BATCH_LIMIT;

    async fn prepare(_: &Registry, _: &ImportArgs, _: &[Cells<'_>]) -> anyhow::Result<Self> {
        Ok(Self::default())
    }

    async fn plan(&mut self, registry: &Registry, row: Cells<'_>) -> anyhow::Result<Plan<Self::Request>> {
        use pb::catalogue_item::Details;
        let mut errors = Vec::new();
        let owner_code = row.get(OWNER_CODE);
        let owner = match owner_code.len() {
            6 | 9 if owner_code.bytes().all(|b| b.is_ascii_digit()) => scope_name(owner_code).ok(),
            _ => None,
        };
        if owner.is_none() {
            errors.push(format!("owner_code {owner_code:?} is neither a county (6 digits) nor a township (9)"));
        }
        let type_text = row.get(ITEM_TYPE);
        let item_type = ITEM_TYPES.parse(type_text);
        if item_type.is_none() {
            errors.push(format!("type {type_text:?} is not {}", ITEM_TYPES.expected()));
        }
        let area_text = row.get(DUTY_AREA);
        let area = DUTY_AREAS.parse(area_text);
        if area.is_none() {
            errors.push(format!(
                "duty_area {area_text:?} is not a duty area of the policy (e.g. 加强基层党建, 维护公共安全)"
            ));
        }
        for field in [ITEM_CODE, TITLE, RESPONSIBLE_INSTITUTION] {
            if row.get(field).is_empty() {
                errors.push(format!("{} is empty", field.key));
            }
        }
        let (Some(owner), Some(item_type), Some(area), true) = (owner, item_type, area, errors.is_empty()) else {
            return Ok(Plan::Bad(errors.join("; ")));
        };
        if !self.registered.contains_key(&owner) {
            match list::catalogue(registry, &owner).await {
                Ok(items) => self.registered.insert(owner.clone(), items),
                Err(error) if is_not_found(&error) => {
                    return Ok(Plan::Bad(format!("{owner_code} is not in the registry: {error:#}")));
                }
                Err(error) => return Err(error),
            };
        }
        let (code, title) = (row.get(ITEM_CODE), row.get(TITLE));
        // A template item shown under a township (exports list those) is the row when its title is; a row with
        // another title overrides it for the township.
        if self.registered[&owner].iter().any(|i| i.code == code && i.inherited && i.title == title) {
            return Ok(Plan::Unchanged);
        }
        let institution_text = row.get(RESPONSIBLE_INSTITUTION);
        let mut item = pb::CatalogueItem {
            item_type: item_type as i32,
            code: code.to_owned(),
            title: title.to_owned(),
            duty_area: area as i32,
            ..Default::default()
        };
        if owner.contains("/townships/") {
            // A township item names one of the township's institutions, given by its name in the sheet.
            if !self.institutions.contains_key(&owner) {
                let listed = list::institutions(registry, &owner).await?;
                self.institutions.insert(owner.clone(), listed);
            }
            match self.institutions[&owner].iter().find(|i| i.display_name == institution_text) {
                Some(institution) => item.responsible_institution = institution.name.clone(),
                None => {
                    return Ok(Plan::Bad(format!("township {owner_code} has no institution named {institution_text}")));
                }
            }
        } else {
            item.responsible_institution_title = institution_text.to_owned();
        }
        let value = |field: Field| row.get(field).to_owned();
        item.details = Some(match item_type {
            pb::CatalogueItemType::Power => Details::Power(pb::PowerDetails {
                category: POWER_CATEGORIES.parse(row.get(POWER_CATEGORY)).unwrap_or_default() as i32,
                legal_basis: value(LEGAL_BASIS),
                origin: POWER_ORIGINS.parse(row.get(POWER_ORIGIN)).unwrap_or_default() as i32,
            }),
            pb::CatalogueItemType::Responsibility => Details::Responsibility(pb::ResponsibilityDetails {
                power_item_code: value(POWER_ITEM_CODE),
                duties: value(DUTIES),
                accountability_cases: value(ACCOUNTABILITY_CASES),
            }),
            _ => Details::PublicService(pb::PublicServiceDetails {
                service_domain: value(SERVICE_DOMAIN),
                handling_mode: HANDLING_MODES.parse(row.get(HANDLING_MODE)).unwrap_or_default() as i32,
            }),
        });
        // The owner's own item of that code must be this very item (a template item was seen above).
        let Some(own) = self.registered[&owner].iter().find(|i| i.code == item.code && !i.inherited) else {
            let request =
                pb::CreateCatalogueItemRequest { parent: owner, catalogue_item: Some(item), ..Default::default() };
            return Ok(Plan::Create(request));
        };
        Ok(if same_item(own, &item) {
            Plan::Unchanged
        } else {
            Plan::Bad(format!(
                "item {} of {owner_code} is registered ({}) with other details; delete it in the registry and \
                 import again, or give the row another code",
                item.code, own.name
            ))
        })
    }

    /// A county's rows: its template and its townships' own items.
    fn group(request: &pb::CreateCatalogueItemRequest) -> &str {
        request.parent.split("/townships/").next().unwrap_or_default()
    }

    async fn send(registry: &Registry, requests: Vec<Self::Request>, validate_only: bool) -> Result<usize, Status> {
        let request = with_request_id(
            pb::BatchCreateCatalogueItemsRequest { requests, validate_only, ..Default::default() },
            |r| &mut r.request_id,
        );
        registry.clone().batch_create_catalogue_items(request).await?;
        Ok(0)
    }
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

/// Staffing approvals, each naming its institution by township and name. The ledger is only added to: a row
/// equal to a registered approval of the institution (document, date, types, change, summary) is unchanged, as
/// many times as it is registered.
pub(super) struct StaffingApprovals {
    known: HashMap<String, pb::Township>,
    /// Each township's institutions (resource name by display name), listed when a row first names it.
    institutions: HashMap<String, HashMap<String, String>>,
    /// Registered approvals per township, counted by institution and values.
    registered: HashMap<String, HashMap<ApprovalKey, usize>>,
}

type ApprovalKey = (String, String, String, i32, i32, i32, String);

fn approval_key(institution: &str, approval: &pb::StaffingApproval) -> ApprovalKey {
    (
        institution.to_owned(),
        approval.document_number.clone(),
        approval.approved_on.clone(),
        approval.staffing_type,
        approval.funding_type,
        approval.change,
        approval.summary.clone(),
    )
}

impl ImportKind for StaffingApprovals {
    type Request = pb::CreateStaffingApprovalRequest;
    const COLUMNS: &'static [Field] = words::STAFFING_APPROVALS;
    const BATCH_LIMIT: usize = RECORD_BATCH_LIMIT;

    async fn prepare(registry: &Registry, _: &ImportArgs, rows: &[Cells<'_>]) -> anyhow::Result<Self> {
        Ok(Self {
            known: known_townships(registry, rows).await?,
            institutions: HashMap::new(),
            registered: HashMap::new(),
        })
    }

    async fn plan(&mut self, registry: &Registry, row: Cells<'_>) -> anyhow::Result<Plan<Self::Request>> {
        let mut errors = Vec::new();
        let code = township_code(row, &mut errors);
        let name = row.get(INSTITUTION_NAME).to_owned();
        if name.is_empty() {
            errors.push("name is empty".to_owned());
        }
        let document_number = row.get(DOCUMENT_NUMBER).to_owned();
        if document_number.is_empty() {
            errors.push("document_number (批准文号) is empty".to_owned());
        }
        let approved_on = row.get(APPROVED_ON).to_owned();
        if !is_iso_date(&approved_on) {
            errors.push(format!("approved_on {approved_on:?} is not a date YYYY-MM-DD"));
        }
        let staffing_text = row.get(STAFFING_TYPE);
        let staffing_type = STAFFING_TYPES.parse(staffing_text);
        if staffing_type.is_none() {
            errors.push(format!("staffing_type {staffing_text:?} is not {}", STAFFING_TYPES.expected()));
        }
        let funding_text = row.get(FUNDING_TYPE);
        let funding_type = FUNDING_TYPES.parse(funding_text);
        if funding_type.is_none() {
            errors.push(format!("funding_type {funding_text:?} is not {}", FUNDING_TYPES.expected()));
        }
        let change_text = row.get(CHANGE).replace('＋', "+").replace('－', "-");
        let change = match change_text.trim_start_matches('+').parse::<i32>() {
            Ok(change) if change != 0 => Some(change),
            _ => {
                errors.push(format!("change {change_text:?} is not a whole number other than 0"));
                None
            }
        };
        unknown_township(&self.known, &code, &mut errors, "");
        let (Some(code), Some(staffing_type), Some(funding_type), Some(change), true) =
            (code, staffing_type, funding_type, change, errors.is_empty())
        else {
            return Ok(Plan::Bad(errors.join("; ")));
        };
        let township = township_name(&code);
        if !self.institutions.contains_key(&township) {
            let listed = list::institutions(registry, &township).await?;
            self.institutions.insert(township.clone(), listed.into_iter().map(|i| (i.display_name, i.name)).collect());
            let mut counts = HashMap::new();
            for approval in list::staffing_approvals(registry, &township).await? {
                let institution = approval.name.rsplit_once("/staffingApprovals/").map_or("", |(i, _)| i);
                *counts.entry(approval_key(institution, &approval)).or_insert(0) += 1;
            }
            self.registered.insert(township.clone(), counts);
        }
        let Some(parent) = self.institutions[&township].get(&name).cloned() else {
            return Ok(Plan::Bad(format!(
                "township {code} has no institution named {name}; import it first (townctl import institutions)"
            )));
        };
        let approval = pb::StaffingApproval {
            document_number,
            approved_on,
            staffing_type: staffing_type as i32,
            funding_type: funding_type as i32,
            change,
            summary: row.get(SUMMARY).to_owned(),
            ..Default::default()
        };
        let key = approval_key(&parent, &approval);
        if let Some(count) = self.registered.get_mut(&township).and_then(|counts| counts.get_mut(&key))
            && *count > 0
        {
            *count -= 1;
            return Ok(Plan::Unchanged);
        }
        Ok(Plan::Create(pb::CreateStaffingApprovalRequest {
            parent,
            staffing_approval: Some(approval),
            ..Default::default()
        }))
    }

    fn group(request: &pb::CreateStaffingApprovalRequest) -> &str {
        // A township's rows stay together: `{township}/institutions/{id}`.
        request.parent.rsplit_once("/institutions/").map_or(&request.parent, |(township, _)| township)
    }

    async fn send(registry: &Registry, requests: Vec<Self::Request>, validate_only: bool) -> Result<usize, Status> {
        let request = with_request_id(
            pb::BatchCreateStaffingApprovalsRequest { requests, validate_only, ..Default::default() },
            |r| &mut r.request_id,
        );
        registry.clone().batch_create_staffing_approvals(request).await?;
        Ok(0)
    }
}

/// Actual headcounts, each naming its institution by township and name. A headcount is set, not added: a row
/// equal to the registered figure is unchanged, and two rows for one institution and type are a bad row.
pub(super) struct StaffingHeadcounts {
    known: HashMap<String, pb::Township>,
    /// Each township's institutions (resource name by display name), listed when a row first names it.
    institutions: HashMap<String, HashMap<String, String>>,
    /// Registered figures by (institution, staffing type).
    registered: HashMap<(String, i32), u32>,
    /// (institution, staffing type) already set by an earlier row of this import.
    seen: HashSet<(String, i32)>,
}

impl ImportKind for StaffingHeadcounts {
    type Request = pb::SetStaffingHeadcountRequest;
    const COLUMNS: &'static [Field] = words::STAFFING_HEADCOUNTS;
    const BATCH_LIMIT: usize = RECORD_BATCH_LIMIT;

    async fn prepare(registry: &Registry, _: &ImportArgs, rows: &[Cells<'_>]) -> anyhow::Result<Self> {
        Ok(Self {
            known: known_townships(registry, rows).await?,
            institutions: HashMap::new(),
            registered: HashMap::new(),
            seen: HashSet::new(),
        })
    }

    async fn plan(&mut self, registry: &Registry, row: Cells<'_>) -> anyhow::Result<Plan<Self::Request>> {
        let mut errors = Vec::new();
        let code = township_code(row, &mut errors);
        let name = row.get(INSTITUTION_NAME).to_owned();
        if name.is_empty() {
            errors.push("name is empty".to_owned());
        }
        let staffing_text = row.get(STAFFING_TYPE);
        let staffing_type = STAFFING_TYPES.parse(staffing_text);
        if staffing_type.is_none() {
            errors.push(format!("staffing_type {staffing_text:?} is not {}", STAFFING_TYPES.expected()));
        }
        let headcount_text = row.get(ACTUAL_HEADCOUNT);
        let actual = headcount_text.trim().parse::<u32>().ok();
        if actual.is_none() {
            errors.push(format!("actual_headcount {headcount_text:?} is not a whole number of people (0 or more)"));
        }
        unknown_township(&self.known, &code, &mut errors, "");
        let (Some(code), Some(staffing_type), Some(actual), true) = (code, staffing_type, actual, errors.is_empty())
        else {
            return Ok(Plan::Bad(errors.join("; ")));
        };
        let township = township_name(&code);
        if !self.institutions.contains_key(&township) {
            let listed = list::institutions(registry, &township).await?;
            self.institutions.insert(township.clone(), listed.into_iter().map(|i| (i.display_name, i.name)).collect());
            for headcount in list::staffing_headcounts(registry, &township).await? {
                let institution = headcount.name.rsplit_once("/staffingHeadcounts/").map_or("", |(i, _)| i);
                self.registered.insert((institution.to_owned(), headcount.staffing_type), headcount.actual_headcount);
            }
        }
        let Some(parent) = self.institutions[&township].get(&name).cloned() else {
            return Ok(Plan::Bad(format!(
                "township {code} has no institution named {name}; import it first (townctl import institutions)"
            )));
        };
        let key = (parent.clone(), staffing_type as i32);
        if !self.seen.insert(key.clone()) {
            return Ok(Plan::Bad(format!(
                "{name} of township {code} has its {staffing_text} headcount set by an earlier row too: keep one"
            )));
        }
        if self.registered.get(&key) == Some(&actual) {
            return Ok(Plan::Unchanged);
        }
        Ok(Plan::Create(pb::SetStaffingHeadcountRequest {
            parent,
            staffing_type: staffing_type as i32,
            actual_headcount: actual,
        }))
    }

    fn group(request: &pb::SetStaffingHeadcountRequest) -> &str {
        request.parent.rsplit_once("/institutions/").map_or(&request.parent, |(township, _)| township)
    }

    async fn send(registry: &Registry, requests: Vec<Self::Request>, validate_only: bool) -> Result<usize, Status> {
        registry
            .clone()
            .batch_set_staffing_headcounts(pb::BatchSetStaffingHeadcountsRequest { requests, validate_only })
            .await?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_division_lines_are_found_by_level_and_csv_row() {
        let line = |level, row| Planned {
            file: "f.csv".to_owned(),
            row,
            request: DivisionLine { level, line: String::new() },
        };
        let chunk = [line(DivisionLevel::Township, 2), line(DivisionLevel::City, 3), line(DivisionLevel::Township, 4)];
        let mut details = tonic_types::ErrorDetails::new();
        details
            .add_bad_request_violation("townships_csv[row 3]", "the name is empty")
            .add_bad_request_violation("cities_csv[row 2]", "not a city code")
            .add_bad_request_violation("townships_csv[row 3]", "not in county 430102")
            .add_bad_request_violation("townships_csv", "and 70 more violations not listed");
        let status = Status::with_error_details(tonic::Code::InvalidArgument, "3 rows", details);
        let refused = Divisions::refused(&status, &chunk);
        // The second township line (csv row 3) is the chunk's third request; the city line its second.
        assert_eq!(refused.keys().collect::<Vec<_>>(), [&1, &2]);
        assert_eq!(refused[&2], "refused by the registry: the name is empty; not in county 430102");
    }

    #[test]
    fn kinds_and_roles_read_in_chinese_and_english() {
        let institution_kind = |text| INSTITUTION_KINDS.parse(text);
        let duty_area = |text| DUTY_AREAS.parse(text);
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
