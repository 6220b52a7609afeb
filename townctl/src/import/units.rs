//! The units of the indicator columns. The registry stores population in 万人, fiscal revenue in 万元 and land
//! area in km²; a header may state another unit (`人口（人）`, `面积（公顷）`, `population (persons)`), which is
//! converted exactly, and a unit that cannot be converted refuses the file. A value no township can have in its
//! unit refuses the row with the likely cause: a column in 人 read as 万人 makes every township a megacity.

/// How a value in a unit becomes one in the stored unit. Dividing (or multiplying) by the factor rounds once, so
/// 46700 人 is exactly the 4.67 万人 a person would have typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scale {
    Same,
    Divide(f64),
    Multiply(f64),
}

impl Scale {
    pub(crate) fn apply(self, value: f64) -> f64 {
        match self {
            Scale::Same => value,
            Scale::Divide(factor) => value / factor,
            Scale::Multiply(factor) => value * factor,
        }
    }

    /// "÷10,000"; empty for the stored unit.
    pub(crate) fn describe(self) -> String {
        fn thousands(factor: f64) -> String {
            #[expect(clippy::cast_possible_truncation, reason = "the factors are small whole numbers")]
            let digits = (factor as i64).to_string();
            let mut text = String::new();
            for (index, digit) in digits.chars().enumerate() {
                if index > 0 && (digits.len() - index).is_multiple_of(3) {
                    text.push(',');
                }
                text.push(digit);
            }
            text
        }
        match self {
            Scale::Same => String::new(),
            Scale::Divide(factor) => format!("÷{}", thousands(factor)),
            Scale::Multiply(factor) => format!("×{}", thousands(factor)),
        }
    }
}

/// A unit a header may state.
#[derive(Debug)]
pub(crate) struct Unit {
    /// As people write it: 人, 亿元, 公顷.
    pub(crate) symbol: &'static str,
    /// In English, for messages: "persons".
    pub(crate) english: &'static str,
    /// Every way of writing it, folded (see [`fold`]).
    words: &'static [&'static str],
    pub(crate) scale: Scale,
}

/// One indicator's units and the values a township can have.
#[derive(Debug)]
pub(crate) struct Measure {
    pub(crate) indicator: &'static str,
    /// The units a header may state: the stored one first, then the others in the order a mistaken column is
    /// most likely to be in.
    units: &'static [Unit],
    /// The values a township can have, in the stored unit (see [`PLAUSIBLE`]).
    plausible: Plausible,
}

#[derive(Debug, Clone, Copy)]
struct Plausible {
    min: f64,
    max: f64,
}

/// The values a township can have, in the stored units: population, fiscal revenue, land area. The realistic
/// Hunan ranges (/work/shared/data/divisions/SOURCE.md, estimates) are 0.5–15 万人, 200–50,000 万元 and 5–600 km²
/// (街道 5–50). The bounds lie ten times or more outside them, for China's largest 镇 and 街道 and its vast western
/// townships, yet inside what a wrong unit does: a column in 人 or 元 is 10,000 times too large, one in 亿元
/// 10,000 times too small, one in 亩 1,500 times too large. Land area is the exception: townships of the Tibetan
/// and Qinghai plateau reach tens of thousands of km², and refusing a real one is worse than missing a unit slip,
/// so its bound is above any township-level unit of China and catches only columns in m² or 亩 of large areas.
/// Zero reads the same in every unit and is left to the registry.
pub(crate) const PLAUSIBLE: [(f64, f64); 3] = [(0.01, 150.0), (10.0, 1_000_000.0), (0.1, 200_000.0)];

pub(crate) const POPULATION: Measure = Measure {
    indicator: "population",
    units: &[
        Unit {
            symbol: "万人",
            english: "10,000 persons",
            words: &["万人", "万", "10kpersons", "10kpeople", "10000persons", "10000people", "tenthousandpersons"],
            scale: Scale::Same,
        },
        Unit {
            symbol: "人",
            english: "persons",
            words: &["人", "persons", "person", "people", "inhabitants"],
            scale: Scale::Divide(10_000.0),
        },
    ],
    plausible: Plausible { min: PLAUSIBLE[0].0, max: PLAUSIBLE[0].1 },
};

pub(crate) const FISCAL_REVENUE: Measure = Measure {
    indicator: "fiscal_revenue",
    units: &[
        Unit {
            symbol: "万元",
            english: "10,000 yuan",
            words: &["万元", "万", "10kyuan", "10000yuan", "tenthousandyuan", "万元人民币"],
            scale: Scale::Same,
        },
        Unit { symbol: "元", english: "yuan", words: &["元", "yuan", "rmb", "cny"], scale: Scale::Divide(10_000.0) },
        Unit {
            symbol: "千元",
            english: "1,000 yuan",
            words: &["千元", "1000yuan", "kyuan"],
            scale: Scale::Divide(10.0),
        },
        Unit {
            symbol: "亿元",
            english: "100 million yuan",
            words: &["亿元", "亿", "100millionyuan", "100myuan", "hundredmillionyuan"],
            scale: Scale::Multiply(10_000.0),
        },
    ],
    plausible: Plausible { min: PLAUSIBLE[1].0, max: PLAUSIBLE[1].1 },
};

pub(crate) const LAND_AREA: Measure = Measure {
    indicator: "land_area",
    units: &[
        Unit {
            symbol: "km²",
            english: "square kilometres",
            words: &["km2", "平方公里", "平方千米", "sqkm", "squarekilometres", "squarekilometers"],
            scale: Scale::Same,
        },
        Unit {
            symbol: "公顷",
            english: "hectares",
            words: &["公顷", "ha", "hectares", "hectare"],
            scale: Scale::Divide(100.0),
        },
        Unit { symbol: "亩", english: "mu", words: &["亩", "mu"], scale: Scale::Divide(1_500.0) },
        Unit {
            symbol: "m²",
            english: "square metres",
            words: &["m2", "平方米", "sqm", "squaremetres", "squaremeters"],
            scale: Scale::Divide(1_000_000.0),
        },
    ],
    plausible: Plausible { min: PLAUSIBLE[2].0, max: PLAUSIBLE[2].1 },
};

/// A value for a message, to six significant digits: 0.000467, not 0.00046699999999999997.
fn shown(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return value.to_string();
    }
    #[expect(clippy::cast_possible_truncation, reason = "the exponent of a finite f64 is within ±324")]
    let exponent = value.abs().log10().floor() as i32;
    let decimals = usize::try_from((5 - exponent).clamp(0, 15)).unwrap_or(0);
    let text = format!("{value:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}

/// A unit as written, compared without case, width, spaces or separators: "km²", "KM2" and "km^2" are one.
fn fold(unit: &str) -> String {
    unit.chars()
        .map(|c| match c {
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            '²' => '2',
            other => other,
        })
        .filter(|c| !c.is_whitespace() && !",.^_-'".contains(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The unit a column is read in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColumnUnit {
    pub(crate) measure: &'static Measure,
    pub(crate) unit: &'static Unit,
    /// Whether the header said so (or the stored unit was assumed).
    pub(crate) stated: bool,
}

impl Measure {
    pub(crate) fn stored(&self) -> &'static Unit {
        &self.units[0]
    }

    /// The unit a header states in its trailing brackets (`stated`, see [`crate::sheet::header_unit`]); the
    /// stored unit when it states none. Err names the column and the units it could be in.
    pub(crate) fn column_unit(&'static self, header: &str, stated: Option<&str>) -> Result<ColumnUnit, String> {
        let Some(text) = stated else {
            return Ok(ColumnUnit { measure: self, unit: self.stored(), stated: false });
        };
        let word = fold(text);
        match self.units.iter().find(|unit| unit.words.iter().any(|w| fold(w) == word)) {
            Some(unit) => Ok(ColumnUnit { measure: self, unit, stated: true }),
            None => Err(format!(
                "column {header:?} states the unit {text:?}, which townctl cannot convert to {} ({} is stored in \
                 {}); state one of {} in the header, or convert the column",
                self.stored().symbol,
                self.indicator,
                self.stored().symbol,
                self.units.iter().map(|u| u.symbol).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    fn is_plausible(&self, value: f64) -> bool {
        value == 0.0 || (self.plausible.min..=self.plausible.max).contains(&value)
    }
}

impl ColumnUnit {
    /// The value in the stored unit, or why no township has it, with the unit the column is probably in.
    pub(crate) fn read(&self, raw: f64) -> Result<f64, String> {
        let measure = self.measure;
        let stored = measure.stored().symbol;
        let value = self.unit.scale.apply(raw);
        if measure.is_plausible(value) {
            return Ok(value);
        }
        let converted =
            if self.unit.scale == Scale::Same { String::new() } else { format!(" ({} {stored})", shown(value)) };
        let (comparison, bound) = if value > measure.plausible.max {
            ("more", format!("at most {} {stored}", measure.plausible.max))
        } else {
            ("less", format!("at least {} {stored}", measure.plausible.min))
        };
        let mut reason = format!(
            "{} {} {}{converted} is {comparison} than any township has ({bound})",
            measure.indicator,
            shown(raw),
            self.unit.symbol
        );
        let likely = measure
            .units
            .iter()
            .find(|unit| !std::ptr::eq(*unit, self.unit) && measure.is_plausible(unit.scale.apply(raw)));
        match likely {
            Some(unit) => {
                let as_header_says =
                    if self.stated { format!(", not {} as its header says", self.unit.symbol) } else { String::new() };
                reason.push_str(&format!(
                    "; the column is probably in {} ({}){as_header_says}: {} {stored}",
                    unit.english,
                    unit.symbol,
                    shown(unit.scale.apply(raw))
                ));
            }
            None => reason.push_str("; check the figure and the unit of its column"),
        }
        Err(reason)
    }

    /// "in 人, converted to 万人 (÷10,000)"; None for the stored unit.
    pub(crate) fn conversion(&self) -> Option<String> {
        (self.unit.scale != Scale::Same).then(|| {
            format!(
                "in {}, converted to {} ({})",
                self.unit.symbol,
                self.measure.stored().symbol,
                self.unit.scale.describe()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sheet::header_unit;

    fn unit_of(measure: &'static Measure, header: &str) -> Result<&'static str, String> {
        measure.column_unit(header, header_unit(header).as_deref()).map(|c| c.unit.symbol)
    }

    #[test]
    fn headers_state_units_in_chinese_or_english_brackets() {
        assert_eq!(unit_of(&POPULATION, "人口"), Ok("万人"), "no unit: the stored one");
        for header in ["人口（人）", "人口(人)", "户籍人口（人）", "population (persons)", "Population (People)"]
        {
            assert_eq!(unit_of(&POPULATION, header), Ok("人"), "{header}");
        }
        assert_eq!(unit_of(&POPULATION, "人口（万人）"), Ok("万人"));
        assert_eq!(unit_of(&POPULATION, "population (10,000 persons)"), Ok("万人"));
        assert_eq!(unit_of(&FISCAL_REVENUE, "财政收入（元）"), Ok("元"));
        assert_eq!(unit_of(&FISCAL_REVENUE, "财政收入（亿元）"), Ok("亿元"));
        assert_eq!(unit_of(&FISCAL_REVENUE, "revenue (yuan)"), Ok("元"));
        assert_eq!(unit_of(&FISCAL_REVENUE, "一般公共预算收入（万元）"), Ok("万元"));
        assert_eq!(unit_of(&LAND_AREA, "面积（公顷）"), Ok("公顷"));
        assert_eq!(unit_of(&LAND_AREA, "面积（亩）"), Ok("亩"));
        assert_eq!(unit_of(&LAND_AREA, "国土面积（km²）"), Ok("km²"));
        assert_eq!(unit_of(&LAND_AREA, "area (KM^2)"), Ok("km²"));
        assert_eq!(unit_of(&LAND_AREA, "国土面积（平方公里）"), Ok("km²"));
        assert_eq!(unit_of(&LAND_AREA, "area (ha)"), Ok("公顷"));
    }

    #[test]
    fn a_unit_that_cannot_be_converted_names_the_column() {
        let error = unit_of(&POPULATION, "人口（户）").unwrap_err();
        assert!(
            error.contains("column \"人口（户）\" states the unit \"户\"") && error.contains("万人, 人"),
            "{error}"
        );
        assert!(unit_of(&FISCAL_REVENUE, "财政收入（美元）").is_err());
        assert!(unit_of(&LAND_AREA, "面积（万亩）").is_err(), "万亩 is not 亩");
        assert!(unit_of(&POPULATION, "人口（万人，2023年末）").is_err(), "a unit with more words is not guessed");
    }

    #[test]
    fn conversions_are_exact() {
        let read = |measure: &'static Measure, header: &str, raw: f64| {
            measure.column_unit(header, header_unit(header).as_deref()).unwrap().read(raw)
        };
        assert_eq!(read(&POPULATION, "人口（人）", 46_700.0), Ok(4.67));
        assert_eq!(read(&FISCAL_REVENUE, "财政收入（元）", 24_000_000.0), Ok(2_400.0));
        assert_eq!(read(&FISCAL_REVENUE, "财政收入（亿元）", 0.88), Ok(8_800.0));
        assert_eq!(read(&LAND_AREA, "面积（公顷）", 13_800.0), Ok(138.0));
        assert_eq!(read(&LAND_AREA, "面积（亩）", 9_750.0), Ok(6.5));
        assert_eq!(read(&LAND_AREA, "面积（亩）", 0.0), Ok(0.0));
        let conversion = POPULATION.column_unit("人口（人）", Some("人")).unwrap().conversion();
        assert_eq!(conversion.as_deref(), Some("in 人, converted to 万人 (÷10,000)"));
        assert_eq!(POPULATION.column_unit("人口", None).unwrap().conversion(), None);
    }

    #[test]
    fn implausible_values_are_refused_with_the_likely_unit() {
        let stored = POPULATION.column_unit("人口", None).unwrap();
        assert_eq!(
            stored.read(46_700.0).unwrap_err(),
            "population 46700 万人 is more than any township has (at most 150 万人); the column is probably in \
             persons (人): 4.67 万人"
        );
        assert_eq!(stored.read(3.1), Ok(3.1));
        let persons = POPULATION.column_unit("人口（人）", Some("人")).unwrap();
        let error = persons.read(4.67).unwrap_err();
        assert!(error.contains("4.67 人 (0.000467 万人) is less than any township has"), "{error}");
        assert!(error.contains("probably in 10,000 persons (万人), not 人 as its header says: 4.67 万人"), "{error}");
        let revenue = FISCAL_REVENUE.column_unit("财政收入", None).unwrap();
        assert!(revenue.read(0.88).unwrap_err().contains("probably in 100 million yuan (亿元): 8800 万元"));
        assert!(revenue.read(24_000_000.0).unwrap_err().contains("probably in yuan (元): 2400 万元"));
        let area = LAND_AREA.column_unit("面积", None).unwrap();
        assert_eq!(area.read(13_800.0), Ok(13_800.0), "a plateau township is that large");
        assert!(area.read(300_000.0).unwrap_err().contains("probably in hectares (公顷): 3000 km²"));
        assert!(area.read(1e12).unwrap_err().ends_with("check the figure and the unit of its column"));
        // Stated as 万人 and still 10,000 times too large: the header is what is wrong.
        let wan_ren = POPULATION.column_unit("人口（万人）", Some("万人")).unwrap();
        assert!(wan_ren.read(46_700.0).unwrap_err().contains("persons (人), not 万人 as its header says: 4.67 万人"));
        assert_eq!(shown(1e12), "1000000000000");
        assert_eq!(shown(0.1 + 0.2), "0.3");
    }
}
