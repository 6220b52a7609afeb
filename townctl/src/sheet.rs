//! The spreadsheet layer: CSV and XLSX in, CSV and XLSX out, with column names matched however a person
//! wrote them. No gRPC and no domain knowledge here.

use std::path::{Path, PathBuf};

use calamine::{Data, Reader as _};

/// A sheet as read: headers and rows of text, each row with the number a spreadsheet program shows for it
/// (the header row is 1).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub number: usize,
    pub cells: Vec<String>,
}

impl Row {
    pub(crate) fn get(&self, column: usize) -> &str {
        self.cells.get(column).map_or("", String::as_str)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SheetError {
    #[error("{path}: unsupported file type; use .csv (UTF-8) or .xlsx")]
    UnknownFormat { path: PathBuf },
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: line {line} is not UTF-8; save the file as \"CSV UTF-8\" (or as .xlsx) and import it again")]
    NotUtf8 { path: PathBuf, line: u64 },
    #[error("{path}: no header row (the file is empty)")]
    NoHeader { path: PathBuf },
    #[error("{path}: no worksheet named {wanted:?}; the workbook has {available}")]
    NoSuchSheet { path: PathBuf, wanted: String, available: String },
    #[error("{path}: cannot write: {message}")]
    Write { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub(crate) fn from_path(path: &Path) -> Result<Format, SheetError> {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_lowercase();
        match extension.as_str() {
            "csv" => Ok(Format::Csv),
            "xlsx" | "xlsm" => Ok(Format::Xlsx),
            _ => Err(SheetError::UnknownFormat { path: path.to_owned() }),
        }
    }
}

pub(crate) fn read_table(path: &Path, sheet: Option<&str>) -> Result<Table, SheetError> {
    let read_error = |message: String| SheetError::Read { path: path.to_owned(), message };
    let numbered: Vec<(usize, Vec<String>)> = match Format::from_path(path)? {
        Format::Csv => {
            let bytes = std::fs::read(path).map_err(|e| read_error(e.to_string()))?;
            let text = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
            let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text);
            let mut rows = Vec::new();
            // Newlines before `counted`, kept running so that numbering a file stays linear.
            let (mut counted, mut newlines) = (0, 0);
            for record in reader.byte_records() {
                let record = record.map_err(|e| read_error(e.to_string()))?;
                // The line the record starts on, counted from its byte offset (1 = the first line).
                // (The reader reports the end of the previous record, so skip its line terminator first.)
                let mut offset =
                    record.position().map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX)).min(text.len());
                while matches!(text.get(offset), Some(b'\r' | b'\n')) {
                    offset += 1;
                }
                newlines += text[counted..offset].iter().filter(|&&b| b == b'\n').count();
                counted = offset;
                let line = newlines as u64 + 1;
                let cells = record
                    .iter()
                    .map(|cell| std::str::from_utf8(cell).map(|c| unescape_formula(c.trim()).to_owned()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| SheetError::NotUtf8 { path: path.to_owned(), line })?;
                rows.push((usize::try_from(line).unwrap_or(usize::MAX), cells));
            }
            rows
        }
        Format::Xlsx => {
            let mut workbook = calamine::open_workbook_auto(path).map_err(|e| read_error(e.to_string()))?;
            let names = workbook.sheet_names();
            let name = match sheet {
                Some(wanted) => {
                    names.iter().find(|n| n.as_str() == wanted).cloned().ok_or_else(|| SheetError::NoSuchSheet {
                        path: path.to_owned(),
                        wanted: wanted.to_owned(),
                        available: names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", "),
                    })?
                }
                None => names.first().cloned().ok_or_else(|| SheetError::NoHeader { path: path.to_owned() })?,
            };
            let range = workbook.worksheet_range(&name).map_err(|e| read_error(e.to_string()))?;
            // A range starts at its first used cell, not necessarily A1: row numbers count from there.
            let first_row = range.start().map_or(0, |(row, _)| row as usize);
            range
                .rows()
                .enumerate()
                .map(|(index, cells)| (first_row + index + 1, cells.iter().map(cell_text).collect()))
                .collect()
        }
    };
    let mut rows = numbered.into_iter().filter(|(_, cells)| cells.iter().any(|c| !c.is_empty()));
    let (_, headers) = rows.next().ok_or_else(|| SheetError::NoHeader { path: path.to_owned() })?;
    Ok(Table { headers, rows: rows.map(|(number, cells)| Row { number, cells }).collect() })
}

/// Undoes the `'` that CSV exports put before text a spreadsheet would take for a formula (see `csv_bytes`).
fn unescape_formula(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

/// A cell as text: integral numbers without ".0" (a code stored as a number reads 430102001), dates as ISO.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(text) => text.trim().to_owned(),
        // A whole number below 1e15 is exact as an i64: a code typed as a number reads back without ".0".
        #[expect(clippy::cast_possible_truncation, reason = "a whole number below 1e15")]
        Data::Float(value) if value.fract() == 0.0 && value.abs() < 1e15 => format!("{}", *value as i64),
        Data::Float(value) => value.to_string(),
        Data::Int(value) => value.to_string(),
        Data::Bool(value) => value.to_string(),
        Data::DateTime(value) => value.as_datetime().map_or_else(|| value.to_string(), |d| d.date().to_string()),
        Data::DateTimeIso(text) => text.get(..10).unwrap_or(text).to_owned(),
        Data::DurationIso(text) => text.clone(),
        Data::Error(error) => format!("#{error:?}"),
    }
}

/// A column the importer wants, with the names people give it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub key: &'static str,
    pub aliases: &'static [&'static str],
    pub required: bool,
}

impl Field {
    pub(crate) const fn required(key: &'static str, aliases: &'static [&'static str]) -> Self {
        Field { key, aliases, required: true }
    }

    pub(crate) const fn optional(key: &'static str, aliases: &'static [&'static str]) -> Self {
        Field { key, aliases, required: false }
    }
}

/// Which column holds which field.
#[derive(Debug, Clone)]
pub(crate) struct Columns {
    positions: Vec<(&'static str, usize)>,
    headers: Vec<String>,
    ignored: Vec<String>,
}

impl Columns {
    pub(crate) fn index(&self, key: &str) -> Option<usize> {
        self.positions.iter().find(|(k, _)| *k == key).map(|(_, i)| *i)
    }

    /// The row's value of `key`; empty when the file has no such column.
    pub(crate) fn value<'r>(&self, row: &'r Row, key: &str) -> &'r str {
        self.index(key).map_or("", |i| row.get(i))
    }

    /// The header of the column that holds `key`, as the file writes it.
    pub(crate) fn header(&self, key: &str) -> Option<&str> {
        self.index(key).and_then(|i| self.headers.get(i)).map(String::as_str)
    }

    /// Headers no field claimed.
    pub(crate) fn ignored(&self) -> &[String] {
        &self.ignored
    }
}

/// Full-width ASCII (（）, ＡＢＣ, the ideographic space) as half-width.
fn half_width(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            '\u{3000}' => ' ',
            other => other,
        })
        .collect()
}

/// Where a header's trailing unit in parentheses opens: `人口（万人）` → the `(` after 人口.
fn unit_start(half_width: &str) -> Option<usize> {
    match half_width.find('(') {
        Some(open) if half_width.trim_end().ends_with(')') && open > 0 => Some(open),
        _ => None,
    }
}

/// The unit a header states in trailing parentheses, full- or half-width: `人口（人）` → `人`; None without one.
pub(crate) fn header_unit(header: &str) -> Option<String> {
    let text = half_width(header);
    let open = unit_start(&text)?;
    let unit = text[open + 1..].trim_end().strip_suffix(')')?.trim();
    (!unit.is_empty()).then(|| unit.to_owned())
}

/// Compares names the way people write them: case, width (（）→()), spaces, `_`/`-` and a trailing unit in
/// parentheses do not matter: "人口（万人）" is "人口", "Fiscal Revenue" is "fiscal_revenue".
fn normalise(name: &str) -> String {
    let half_width = half_width(name);
    let without_unit = match unit_start(&half_width) {
        Some(open) => &half_width[..open],
        None => half_width.as_str(),
    };
    without_unit.chars().filter(|c| !c.is_whitespace() && *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub(crate) struct HeaderError {
    pub problems: Vec<String>,
}

pub(crate) fn map_columns(headers: &[String], fields: &[Field]) -> Result<Columns, HeaderError> {
    let normalised: Vec<String> = headers.iter().map(|h| normalise(h)).collect();
    let mut positions = Vec::new();
    let mut problems = Vec::new();
    let mut claimed = vec![false; headers.len()];
    for field in fields {
        let names: Vec<String> =
            std::iter::once(field.key).chain(field.aliases.iter().copied()).map(normalise).collect();
        let matches: Vec<usize> =
            (0..headers.len()).filter(|&i| !claimed[i] && names.contains(&normalised[i])).collect();
        match matches.as_slice() {
            [] if field.required => problems.push(format!(
                "no column for {} (accepted names: {})",
                field.key,
                std::iter::once(field.key).chain(field.aliases.iter().copied()).collect::<Vec<_>>().join(", ")
            )),
            [] => {}
            [index] => {
                claimed[*index] = true;
                positions.push((field.key, *index));
            }
            several => problems.push(format!(
                "columns {} all name {}; keep one",
                several.iter().map(|&i| format!("{:?}", headers[i])).collect::<Vec<_>>().join(", "),
                field.key
            )),
        }
    }
    if !problems.is_empty() {
        return Err(HeaderError { problems });
    }
    let ignored = headers.iter().zip(&claimed).filter(|(h, c)| !**c && !h.is_empty()).map(|(h, _)| h.clone()).collect();
    Ok(Columns { positions, headers: headers.to_vec(), ignored })
}

/// A value to write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Text(String),
    Number(f64),
    Integer(i64),
    Empty,
}

#[derive(Debug, Clone)]
pub(crate) struct SheetData {
    pub name: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// Writes CSV or XLSX by the file's extension; a CSV holds one sheet.
pub(crate) fn write_table(path: &Path, sheets: &[SheetData]) -> Result<(), SheetError> {
    let write_error = |message: String| SheetError::Write { path: path.to_owned(), message };
    let bytes = match Format::from_path(path)? {
        Format::Csv => {
            let [sheet] = sheets else {
                return Err(write_error(format!("a CSV holds one sheet, not {}", sheets.len())));
            };
            csv_bytes(sheet).map_err(|e| write_error(e.to_string()))?
        }
        Format::Xlsx => xlsx_bytes(sheets).map_err(|e| write_error(e.to_string()))?,
    };
    write_atomically(path, &bytes)
}

/// First characters that make a spreadsheet read a cell as a formula.
const FORMULA_STARTS: [char; 4] = ['=', '+', '-', '@'];

/// UTF-8 with a BOM and CRLF, which Excel and WPS need to show Chinese; text that a spreadsheet would take
/// for a formula gets a leading `'` (CSV injection).
fn csv_bytes(sheet: &SheetData) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(b"\xEF\xBB\xBF".to_vec());
    writer.write_record(&sheet.headers)?;
    for row in &sheet.rows {
        writer.write_record(row.iter().map(|cell| match cell {
            Cell::Text(text) if text.starts_with(FORMULA_STARTS) => format!("'{text}"),
            Cell::Text(text) => text.clone(),
            Cell::Number(value) => value.to_string(),
            Cell::Integer(value) => value.to_string(),
            Cell::Empty => String::new(),
        }))?;
    }
    writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[expect(clippy::cast_possible_truncation, reason = "rows and columns are checked against the XLSX limits first")]
fn xlsx_bytes(sheets: &[SheetData]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format as CellFormat, Workbook};
    let mut workbook = Workbook::new();
    let bold = CellFormat::new().set_bold();
    for sheet in sheets {
        // XLSX holds 1,048,576 rows (the header is one) and 16,384 columns.
        if sheet.rows.len() >= 1 << 20 || sheet.headers.len() > 1 << 14 {
            return Err(rust_xlsxwriter::XlsxError::RowColumnLimitError);
        }
        let worksheet = workbook.add_worksheet();
        let name: String = sheet.name.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(31).collect::<String>();
        worksheet.set_name(if name.is_empty() { "sheet" } else { &name })?;
        let mut widths: Vec<usize> = sheet.headers.iter().map(|h| display_width(h)).collect();
        for (column, header) in sheet.headers.iter().enumerate() {
            worksheet.write_string_with_format(0, column as u16, header, &bold)?;
        }
        for (index, row) in sheet.rows.iter().enumerate() {
            let r = index as u32 + 1;
            for (column, cell) in row.iter().enumerate() {
                let c = column as u16;
                // Codes are text: 430102001 must never become a number in the spreadsheet.
                let width = match cell {
                    Cell::Text(text) => {
                        worksheet.write_string(r, c, text)?;
                        display_width(text)
                    }
                    Cell::Number(value) => {
                        worksheet.write_number(r, c, *value)?;
                        value.to_string().len()
                    }
                    Cell::Integer(value) => {
                        worksheet.write_number(r, c, *value as f64)?;
                        value.to_string().len()
                    }
                    Cell::Empty => 0,
                };
                if let Some(w) = widths.get_mut(column) {
                    *w = (*w).max(width);
                }
            }
        }
        for (column, width) in widths.iter().enumerate() {
            worksheet.set_column_width(column as u16, (*width).clamp(6, 60) as f64 + 2.0)?;
        }
        worksheet.set_freeze_panes(1, 0)?;
        if !sheet.headers.is_empty() {
            worksheet.autofilter(0, 0, sheet.rows.len() as u32, sheet.headers.len() as u16 - 1)?;
        }
    }
    workbook.save_to_buffer()
}

/// Columns a text takes on screen: CJK characters take two.
fn display_width(text: &str) -> usize {
    text.chars().map(|c| if (c as u32) >= 0x2E80 { 2 } else { 1 }).sum()
}

/// Writes through a temporary file in the same directory, so that a failed write never leaves half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SheetError> {
    let write_error = |message: String| SheetError::Write { path: path.to_owned(), message };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(directory).map_err(|e| write_error(e.to_string()))?;
    std::io::Write::write_all(&mut file, bytes).map_err(|e| write_error(e.to_string()))?;
    file.persist(path).map_err(|e| write_error(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: [Field; 3] = [
        Field { key: "township_code", aliases: &["乡镇代码"], required: true },
        Field { key: "population", aliases: &["人口"], required: true },
        Field { key: "fiscal_revenue", aliases: &["财政收入"], required: false },
    ];

    fn headers(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn headers_match_in_chinese_or_english_with_units_and_full_width_brackets() {
        let columns =
            map_columns(&headers(&["乡镇代码", "人口（万人）", "Fiscal Revenue (万元)", "备注"]), &FIELDS).unwrap();
        assert_eq!((columns.index("township_code"), columns.index("population")), (Some(0), Some(1)));
        assert_eq!(columns.index("fiscal_revenue"), Some(2));
        assert_eq!(columns.ignored(), ["备注"]);
        let error = map_columns(&headers(&["代码", "POPULATION"]), &FIELDS).unwrap_err().to_string();
        assert!(error.contains("no column for township_code (accepted names: township_code, 乡镇代码)"), "{error}");
        let error = map_columns(&headers(&["乡镇代码", "人口", "population"]), &FIELDS).unwrap_err().to_string();
        assert!(error.contains("all name population"), "{error}");
    }

    #[test]
    fn csv_with_or_without_bom_reads_the_same_with_spreadsheet_row_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.csv");
        let bom = dir.path().join("bom.csv");
        let text = "乡镇代码,人口\r\n430102001,3.1\r\n,\r\n\"430102002\", 4.2 \r\n";
        std::fs::write(&plain, text).unwrap();
        std::fs::write(&bom, format!("\u{feff}{text}")).unwrap();
        let table = read_table(&plain, None).unwrap();
        assert_eq!(table, read_table(&bom, None).unwrap());
        assert_eq!(table.headers, ["乡镇代码", "人口"]);
        let rows: Vec<(usize, &str, &str)> = table.rows.iter().map(|r| (r.number, r.get(0), r.get(1))).collect();
        assert_eq!(
            rows,
            [(2, "430102001", "3.1"), (4, "430102002", "4.2")],
            "the empty row 3 is skipped, not renumbered"
        );
    }

    #[test]
    fn non_utf8_csv_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gbk.csv");
        std::fs::write(&path, b"code,name\n430102001,\xce\xc4\xd2\xd5\n").unwrap();
        let error = read_table(&path, None).unwrap_err().to_string();
        assert!(error.contains("line 2 is not UTF-8") && error.contains("CSV UTF-8"), "{error}");
        assert!(read_table(&dir.path().join("x.ods"), None).unwrap_err().to_string().contains(".xlsx"));
    }

    #[test]
    fn xlsx_and_csv_round_trip_keeping_codes_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let sheet = SheetData {
            name: "classes/2023".to_owned(),
            headers: headers(&["code", "name", "score", "rank", "note"]),
            rows: vec![
                vec![
                    Cell::Text("430102001".into()),
                    Cell::Text("文艺路街道".into()),
                    Cell::Number(95.5),
                    Cell::Integer(3),
                    Cell::Empty,
                ],
                vec![
                    Cell::Text("430102002".into()),
                    Cell::Text("朝阳街街道".into()),
                    Cell::Number(101.25),
                    Cell::Integer(1),
                    Cell::Text("=1+1".into()),
                ],
            ],
        };
        let xlsx = dir.path().join("out.xlsx");
        let csv = dir.path().join("out.csv");
        write_table(&xlsx, std::slice::from_ref(&sheet)).unwrap();
        write_table(&csv, std::slice::from_ref(&sheet)).unwrap();
        let from_xlsx = read_table(&xlsx, Some("classes2023")).unwrap();
        let from_csv = read_table(&csv, None).unwrap();
        assert_eq!(from_xlsx.rows[0].cells, ["430102001", "文艺路街道", "95.5", "3", ""]);
        assert_eq!(from_xlsx.rows[1].number, 3);
        // The CSV defuses the formula with a leading ' that reading takes off again; the XLSX stores it as
        // text, which is never evaluated.
        assert!(std::str::from_utf8(&std::fs::read(&csv).unwrap()).unwrap().contains(",'=1+1\r\n"));
        assert_eq!(from_csv.rows[1].get(4), "=1+1");
        assert_eq!(from_xlsx.rows[1].get(4), "=1+1");
        assert_eq!(from_xlsx.headers, from_csv.headers);
        let error = read_table(&xlsx, Some("机构")).unwrap_err().to_string();
        assert!(error.contains("\"classes2023\""), "{error}");
        assert!(std::fs::read(&csv).unwrap().starts_with(b"\xEF\xBB\xBF"));
    }
}
