//! Statistical division codes and the resource names built on them.
//!
//! `cities/4301/counties/430102/townships/430102001`: a county code starts with its city's code and a township
//! code with its county's, so each name is checked for consistency when parsed.

use std::fmt;
use township_policy::quoted;

/// Why a code or resource name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

macro_rules! code_type {
    ($name:ident, $digits:literal, $what:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(code: &str) -> Result<Self, NameError> {
                if code.len() == $digits && code.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(Self(code.to_owned()))
                } else {
                    Err(NameError(format!(
                        concat!("{} is not a ", $what, " code: expected ", stringify!($digits), " digits"),
                        quoted(code)
                    )))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

code_type!(CityCode, 4, "city");
code_type!(CountyCode, 6, "county");
code_type!(TownshipCode, 9, "township");

impl CountyCode {
    pub fn city(&self) -> CityCode {
        CityCode(self.0[..4].to_owned())
    }
}

impl TownshipCode {
    pub fn county(&self) -> CountyCode {
        CountyCode(self.0[..6].to_owned())
    }

    pub fn city(&self) -> CityCode {
        CityCode(self.0[..4].to_owned())
    }
}

pub fn city_name(city: &CityCode) -> String {
    format!("cities/{city}")
}

pub fn county_name(county: &CountyCode) -> String {
    format!("cities/{}/counties/{county}", county.city())
}

pub fn township_name(township: &TownshipCode) -> String {
    format!("cities/{}/counties/{}/townships/{township}", township.city(), township.county())
}

/// What a parent or scope name designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    City(CityCode),
    County(CountyCode),
    Township(TownshipCode),
}

impl Scope {
    /// The resource name.
    pub fn name(&self) -> String {
        match self {
            Scope::City(city) => city_name(city),
            Scope::County(county) => county_name(county),
            Scope::Township(township) => township_name(township),
        }
    }

    pub fn city(&self) -> CityCode {
        match self {
            Scope::City(city) => city.clone(),
            Scope::County(county) => county.city(),
            Scope::Township(township) => township.city(),
        }
    }

    /// The code prefix every township in scope shares.
    pub fn code_prefix(&self) -> &str {
        match self {
            Scope::City(city) => city.as_str(),
            Scope::County(county) => county.as_str(),
            Scope::Township(township) => township.as_str(),
        }
    }
}

/// Parses `cities/C`, `cities/C/counties/K` or `cities/C/counties/K/townships/T`, checking that each code
/// extends its parent's. Trailing segments (e.g. `/institutions/7`) are refused: use [`parse_child`].
pub fn parse_scope(name: &str) -> Result<Scope, NameError> {
    let (scope, rest) = parse_prefix(name)?;
    if rest.is_empty() {
        Ok(scope)
    } else {
        Err(NameError(format!("{} is not a city, county or township name", quoted(name))))
    }
}

/// Parses a name of the form `{scope}/{collection}/{id}` and returns the scope and the numeric id.
pub fn parse_child(name: &str, collection: &str) -> Result<(Scope, i64), NameError> {
    let (scope, rest) = parse_prefix(name)?;
    let bad = || NameError(format!("{} is not a name of the form {{parent}}/{collection}/{{id}}", quoted(name)));
    let rest = rest.strip_prefix('/').ok_or_else(bad)?;
    let (found, id) = rest.split_once('/').ok_or_else(bad)?;
    if found != collection {
        return Err(bad());
    }
    let id: i64 = id.parse().map_err(|_| bad())?;
    Ok((scope, id))
}

/// The city, county or township a resource name starts with, whatever follows it (`…/institutions/7`).
pub fn parse_leading_scope(name: &str) -> Result<Scope, NameError> {
    parse_prefix(name).map(|(scope, _)| scope)
}

/// Parses a township name.
pub fn parse_township(name: &str) -> Result<TownshipCode, NameError> {
    match parse_scope(name)? {
        Scope::Township(code) => Ok(code),
        _ => Err(NameError(format!(
            "{} is not a township name (cities/{{city}}/counties/{{county}}/townships/{{township}})",
            quoted(name)
        ))),
    }
}

/// Parses a city name.
pub fn parse_city(name: &str) -> Result<CityCode, NameError> {
    match parse_scope(name)? {
        Scope::City(code) => Ok(code),
        _ => Err(NameError(format!("{} is not a city name (cities/{{city}})", quoted(name)))),
    }
}

/// The longest resource name accepted: the longest real one (a catalogue item's) has under 80 characters.
pub const MAX_NAME_CHARS: usize = 200;

fn parse_prefix(name: &str) -> Result<(Scope, &str), NameError> {
    if name.len() > MAX_NAME_CHARS {
        return Err(NameError(format!(
            "{} is {} characters long; resource names have at most {MAX_NAME_CHARS}",
            quoted(name),
            name.chars().count()
        )));
    }
    let segments: Vec<&str> = name.splitn(7, '/').collect();
    let rest_after = |count: usize| -> &str {
        let consumed: usize = segments[..count].iter().map(|s| s.len() + 1).sum::<usize>() - 1;
        &name[consumed.min(name.len())..]
    };
    match segments.as_slice() {
        ["cities", city, rest @ ..] => {
            let city = CityCode::parse(city)?;
            match rest {
                ["counties", county, rest @ ..] => {
                    let county = CountyCode::parse(county)?;
                    if county.city() != city {
                        return Err(NameError(format!("county {county} is not in city {city}")));
                    }
                    match rest {
                        ["townships", township, ..] => {
                            let township = TownshipCode::parse(township)?;
                            if township.county() != county {
                                return Err(NameError(format!("township {township} is not in county {county}")));
                            }
                            Ok((Scope::Township(township), rest_after(6)))
                        }
                        _ => Ok((Scope::County(county), rest_after(4))),
                    }
                }
                _ => Ok((Scope::City(city), rest_after(2))),
            }
        }
        _ => Err(NameError(format!("{} is not a resource name; names start with cities/{{city code}}", quoted(name)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nest() {
        let township = parse_township("cities/4301/counties/430102/townships/430102001").unwrap();
        assert_eq!(township.as_str(), "430102001");
        assert_eq!(township_name(&township), "cities/4301/counties/430102/townships/430102001");
        assert_eq!(parse_scope("cities/4301").unwrap(), Scope::City(CityCode::parse("4301").unwrap()));
        assert_eq!(
            parse_scope("cities/4301/counties/430102").unwrap(),
            Scope::County(CountyCode::parse("430102").unwrap())
        );
    }

    #[test]
    fn a_code_outside_its_parent_is_refused() {
        let error = parse_scope("cities/4301/counties/430202/townships/430202001").unwrap_err();
        assert!(error.0.contains("not in city 4301"), "{error}");
        assert!(parse_scope("cities/4301/counties/430102/townships/430103001").is_err());
        assert!(parse_scope("cities/43011").is_err());
        assert!(parse_scope("towns/4301").is_err());
    }

    #[test]
    fn an_overlong_name_is_refused_with_only_its_beginning_quoted() {
        let name = format!("cities/4301/{}", "x".repeat(10_000));
        let error = parse_scope(&name).unwrap_err();
        assert!(error.0.contains("10012 characters long"), "{error}");
        assert!(error.0.len() < 300, "the message quotes at most the name's beginning: {} bytes", error.0.len());
    }

    #[test]
    fn child_names_carry_a_numeric_id() {
        let (scope, id) =
            parse_child("cities/4301/counties/430102/townships/430102001/institutions/17", "institutions").unwrap();
        assert_eq!(scope, Scope::Township(TownshipCode::parse("430102001").unwrap()));
        assert_eq!(id, 17);
        assert!(parse_child("cities/4301/counties/430102/townships/430102001/posts/17", "institutions").is_err());
        assert!(parse_child("cities/4301/classificationRuns/x", "classificationRuns").is_err());
        let (scope, id) = parse_child("cities/4301/classificationRuns/3", "classificationRuns").unwrap();
        assert_eq!((scope, id), (Scope::City(CityCode::parse("4301").unwrap()), 3));
    }
}
