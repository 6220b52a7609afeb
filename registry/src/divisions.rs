//! Parsing the National Bureau of Statistics division files (`cities.csv`, `areas.csv`, `streets.csv`).

use township_policy::FieldViolation;

use crate::domain::model::{City, County, TownshipKind};
use crate::domain::names::{CityCode, CountyCode, TownshipCode};
use crate::store::DivisionTownship;

#[derive(Debug, Default)]
pub struct Divisions {
    pub cities: Vec<City>,
    pub counties: Vec<County>,
    pub townships: Vec<DivisionTownship>,
}

/// Parses the three files, keeping rows whose code starts with `code_prefix`. Every bad row is reported
/// (field `townships_csv`, row number counted from 1 at the header) and nothing is returned if any is bad.
pub fn parse(
    cities_csv: &str,
    counties_csv: &str,
    townships_csv: &str,
    code_prefix: &str,
) -> Result<Divisions, Vec<FieldViolation>> {
    let mut divisions = Divisions::default();
    let mut violations = Vec::new();
    let wanted = |code: &str| code.starts_with(code_prefix) || code_prefix.starts_with(code);

    for_rows("cities_csv", cities_csv, &["code", "name", "provinceCode"], &mut violations, |row| {
        if !row[0].starts_with(code_prefix) && !code_prefix.starts_with(&row[0]) {
            return Ok(());
        }
        let code = CityCode::parse(&row[0]).map_err(|e| e.0)?;
        divisions.cities.push(City { code, name: non_empty(&row[1])?, province_code: row[2].clone() });
        Ok(())
    });
    for_rows("counties_csv", counties_csv, &["code", "name", "cityCode"], &mut violations, |row| {
        if !wanted(&row[0]) {
            return Ok(());
        }
        let code = CountyCode::parse(&row[0]).map_err(|e| e.0)?;
        if code.city().as_str() != row[2] {
            return Err(format!("county {code} is listed under city {}, but its code says {}", row[2], code.city()));
        }
        divisions.counties.push(County { code, name: non_empty(&row[1])? });
        Ok(())
    });
    for_rows("townships_csv", townships_csv, &["code", "name", "areaCode"], &mut violations, |row| {
        if !wanted(&row[0]) {
            return Ok(());
        }
        let code = TownshipCode::parse(&row[0]).map_err(|e| e.0)?;
        if code.county().as_str() != row[2] {
            return Err(format!(
                "township {code} is listed under county {}, but its code says {}",
                row[2],
                code.county()
            ));
        }
        let name = non_empty(&row[1])?;
        divisions.townships.push(DivisionTownship { kind: TownshipKind::from_division_name(&name), code, name });
        Ok(())
    });
    if violations.is_empty() { Ok(divisions) } else { Err(violations) }
}

fn non_empty(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() { Err("the name is empty".to_owned()) } else { Ok(text.to_owned()) }
}

/// Calls `row` for each record with the `columns` (found by header name) in order.
fn for_rows(
    field: &str,
    text: &str,
    columns: &[&str],
    violations: &mut Vec<FieldViolation>,
    mut row: impl FnMut(&[String]) -> Result<(), String>,
) {
    if text.trim().is_empty() {
        return;
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(error) => {
            violations.push(FieldViolation::new(field, format!("cannot read the header: {error}")));
            return;
        }
    };
    let mut positions = Vec::with_capacity(columns.len());
    for column in columns {
        match headers.iter().position(|h| h == *column) {
            Some(position) => positions.push(position),
            None => {
                violations.push(FieldViolation::new(field, format!("the header has no column {column:?}")));
                return;
            }
        }
    }
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let outcome = record.map_err(|e| e.to_string()).and_then(|record| {
            let values: Vec<String> = positions.iter().map(|&p| record.get(p).unwrap_or("").to_owned()).collect();
            row(&values)
        });
        if let Err(reason) = outcome {
            violations.push(FieldViolation::new(format!("{field}[row {line}]"), reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_files_parse_with_kinds_from_the_names() {
        let divisions = parse(
            "code,name,provinceCode\n4301,\"长沙市\",43\n4302,\"株洲市\",43\n",
            "code,name,cityCode,provinceCode\n430102,\"芙蓉区\",4301,43\n430202,\"荷塘区\",4302,43\n",
            "code,name,areaCode,provinceCode,cityCode\n430102001,\"文艺路街道\",430102,43,4301\n\
             430102100,\"某某镇\",430102,43,4301\n430102200,\"某某瑶族乡\",430102,43,4301\n\
             430102400,\"经济开发区\",430102,43,4301\n430202001,\"月塘街道\",430202,43,4302\n",
            "4301",
        )
        .unwrap();
        assert_eq!(divisions.cities.len(), 1);
        assert_eq!(divisions.counties.len(), 1);
        let kinds: Vec<_> = divisions.townships.iter().map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            [TownshipKind::Subdistrict, TownshipKind::Town, TownshipKind::EthnicTownship, TownshipKind::Other]
        );
    }

    #[test]
    fn every_bad_row_is_reported_with_its_row_number() {
        let violations = parse(
            "",
            "",
            "code,name,areaCode\n430102001,文艺路街道,430102\n43010200,短码,430102\n430103001,错县,430102\n",
            "",
        )
        .unwrap_err();
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["townships_csv[row 3]", "townships_csv[row 4]"]);
        assert!(violations[1].description.contains("listed under county 430102"));
    }
}
