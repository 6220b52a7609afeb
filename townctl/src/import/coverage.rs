//! What an indicator import does to the data years it touches: each year's coverage and state as the registry
//! reports it after the import, or, for a dry run, as it would be: the registry's coverage with the townships
//! the file adds.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use township_proto::registry::v1 as pb;

use crate::client::{Registry, call_error};
use crate::list;
use crate::years::{self, data_years, state_word};

/// One data year of a city after the import.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct YearCoverage {
    pub(super) city: String,
    pub(super) city_name: String,
    pub(super) data_year: i32,
    pub(super) townships_with_data: u32,
    pub(super) townships_in_force: u32,
    /// current, adopted, complete or provisional.
    pub(super) state: &'static str,
    /// The city's current year before the import and after it (0: none).
    pub(super) current_year_before: i32,
    pub(super) current_year: i32,
}

impl YearCoverage {
    /// "长沙市 2024: 2 of 172 townships, provisional — the city's current year stays 2023".
    pub(super) fn line(&self) -> String {
        let coverage = years::coverage(self.data_year, self.townships_with_data, self.townships_in_force, self.state);
        let consequence = match (self.current_year, self.current_year_before) {
            (now, before) if now == self.data_year && before == now => String::new(),
            (now, 0) if now == self.data_year => " — now the city's current year".to_owned(),
            (now, before) if now == self.data_year => format!(" — now the city's current year (was {before})"),
            (0, _) => " — the city has no current year yet; adopt one with AdoptDataYear (below)".to_owned(),
            (now, before) if now == before => format!(" — the city's current year stays {now}"),
            (now, _) => format!(" — the city's current year is now {now}"),
        };
        format!("{} {coverage}{consequence}", self.city_name)
    }
}

/// The city's years before the import, read before anything is sent.
pub(super) struct Before {
    years: Vec<pb::DataYear>,
    current_year: i32,
    city_name: String,
}

pub(super) async fn before(registry: &Registry, city: &str) -> anyhow::Result<Before> {
    let (years, current_year) = data_years(registry, city).await?;
    let city_name = registry
        .clone()
        .get_city(pb::GetCityRequest { name: city.to_owned() })
        .await
        .map_err(call_error(format!("reading {city}")))?
        .into_inner()
        .display_name;
    Ok(Before { years, current_year, city_name })
}

/// Whether a township is in force today, as the registry counts it (no valid_to, or valid_to today or later).
fn in_force(township: &pb::Township, today: &str) -> bool {
    township.valid_to.is_empty() || township.valid_to.as_str() >= today
}

/// The coverage after the import of the years `accepted` touches, city by city. `written`: the import was
/// committed (the registry counts); otherwise a dry run (counted here).
pub(super) async fn after(
    registry: &Registry,
    before: &HashMap<String, Before>,
    known: &HashMap<String, pb::Township>,
    accepted: &[pb::IndicatorObservation],
    written: bool,
) -> anyhow::Result<Vec<YearCoverage>> {
    let today = crate::views::today_utc();
    let mut touched: BTreeMap<String, BTreeMap<i32, BTreeSet<&str>>> = BTreeMap::new();
    for observation in accepted {
        let code = observation.township.rsplit('/').next().unwrap_or_default();
        let city = format!("cities/{}", code.get(..4).unwrap_or_default());
        touched.entry(city).or_default().entry(observation.data_year).or_default().insert(code);
    }
    let mut coverage = Vec::new();
    for (city, touched_years) in touched {
        let Some(was) = before.get(&city) else { continue };
        let (years, current_year) = if written {
            data_years(registry, &city).await?
        } else {
            would_be(registry, &city, was, known, &touched_years, &today).await?
        };
        for year in years.iter().filter(|y| touched_years.contains_key(&y.data_year)) {
            coverage.push(YearCoverage {
                city: city.clone(),
                city_name: was.city_name.clone(),
                data_year: year.data_year,
                townships_with_data: year.townships_with_data,
                townships_in_force: year.townships_in_force,
                state: state_word(year.state),
                current_year_before: was.current_year,
                current_year,
            });
        }
    }
    Ok(coverage)
}

/// The city's years as they would be with the townships the file adds, and its current year: the latest year
/// complete or adopted (the registry's rule, `domain::years::current_year`).
async fn would_be(
    registry: &Registry,
    city: &str,
    was: &Before,
    known: &HashMap<String, pb::Township>,
    touched: &BTreeMap<i32, BTreeSet<&str>>,
    today: &str,
) -> anyhow::Result<(Vec<pb::DataYear>, i32)> {
    let city_code = city.trim_start_matches("cities/");
    let in_force_count = known.values().filter(|t| t.code.starts_with(city_code) && in_force(t, today)).count();
    let mut years: BTreeMap<i32, pb::DataYear> = was.years.iter().map(|y| (y.data_year, y.clone())).collect();
    for (&data_year, codes) in touched {
        let year = years.entry(data_year).or_insert_with(|| pb::DataYear {
            data_year,
            townships_in_force: u32::try_from(in_force_count).unwrap_or(u32::MAX),
            ..Default::default()
        });
        let adding: Vec<&str> =
            codes.iter().copied().filter(|code| known.get(*code).is_some_and(|t| in_force(t, today))).collect();
        let with_data = with_data(registry, city, year, &adding, known, today).await?;
        let new = adding.iter().filter(|code| !with_data.contains(**code)).count();
        year.townships_with_data += u32::try_from(new).unwrap_or(u32::MAX);
    }
    let complete = |y: &pb::DataYear| y.townships_in_force > 0 && y.townships_with_data >= y.townships_in_force;
    let current_year =
        years.values().filter(|y| complete(y) || y.adoption.is_some()).map(|y| y.data_year).max().unwrap_or(0);
    for year in years.values_mut() {
        let state = if year.data_year == current_year {
            pb::DataYearState::Current
        } else if year.adoption.is_some() {
            pb::DataYearState::Adopted
        } else if complete(year) {
            pb::DataYearState::Complete
        } else {
            pb::DataYearState::Provisional
        };
        year.state = state.into();
    }
    Ok((years.into_values().rev().collect(), current_year))
}

/// Which of `codes` have data for the year already. The year's classes name the townships of its cohort as last
/// classified; when they account for every township the registry counts with data, they are the answer, and
/// otherwise (a change not yet classified) each code they do not name is asked for one observation.
async fn with_data(
    registry: &Registry,
    city: &str,
    year: &pb::DataYear,
    codes: &[&str],
    known: &HashMap<String, pb::Township>,
    today: &str,
) -> anyhow::Result<HashSet<String>> {
    if year.townships_with_data == 0 || codes.is_empty() {
        return Ok(HashSet::new());
    }
    let mut with_data: HashSet<String> = list::classes(registry, city, year.data_year)
        .await?
        .into_iter()
        .filter_map(|class| class.township.rsplit('/').next().map(str::to_owned))
        .collect();
    let classified_in_force = with_data.iter().filter(|code| known.get(*code).is_some_and(|t| in_force(t, today)));
    if classified_in_force.count() >= year.townships_with_data as usize {
        return Ok(with_data);
    }
    let unclassified: Vec<&str> = codes.iter().copied().filter(|code| !with_data.contains(*code)).collect();
    for code in unclassified {
        let request = pb::ListIndicatorObservationsRequest {
            parent: known[code].name.clone(),
            data_year: year.data_year,
            page_size: 1,
            page_token: String::new(),
        };
        let page = registry
            .clone()
            .list_indicator_observations(request)
            .await
            .map_err(call_error(format!("listing the observations of township {code}")))?
            .into_inner();
        if !page.observations.is_empty() {
            with_data.insert(code.to_owned());
        }
    }
    Ok(with_data)
}
