//! Data years and the current year (DESIGN.md §3, "Data years and the official class"): which of a city's data
//! years is the one whose classes are official. Pure: the store counts, these functions decide.

use serde::{Deserialize, Serialize};

use super::model::TimestampMs;
use super::names::{CityCode, TownshipCode};

/// A city administrator's decision that a data year is the city's current year although its cohort does not
/// cover every township in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewYearAdoption {
    pub city: CityCode,
    pub data_year: i32,
    /// The approving document (文号).
    pub document_number: String,
    /// The date the adoption takes effect (ISO date, YYYY-MM-DD).
    pub adopted_on: String,
    pub reason: String,
}

/// An adoption as stored: with the townships in force that had no observation for the year when it was adopted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearAdoption {
    pub city: CityCode,
    pub data_year: i32,
    pub document_number: String,
    pub adopted_on: String,
    pub reason: String,
    /// In code order.
    pub townships_without_data: Vec<TownshipCode>,
    /// The townships in force when it was adopted.
    pub townships_in_force: u32,
    pub adopted_by: String,
    pub adopted_at: TimestampMs,
}

/// One data year of a city: how much of the city its cohort covers, and its adoption if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataYear {
    pub data_year: i32,
    /// Townships in force with at least one observation for the year.
    pub townships_with_data: u32,
    /// Townships of the city in force today (no `valid_to`, or `valid_to` today or later).
    pub townships_in_force: u32,
    pub adoption: Option<YearAdoption>,
}

/// What a data year is to its city.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YearState {
    /// The city's current year: its classes are the official ones.
    Current,
    /// Adopted, but a later year is current.
    Adopted,
    /// Covers every township in force, but a later year is current.
    Complete,
    /// Neither complete nor adopted: classified live as data arrives, never current by itself.
    Provisional,
}

impl YearState {
    pub fn as_str(self) -> &'static str {
        match self {
            YearState::Current => "current",
            YearState::Adopted => "adopted",
            YearState::Complete => "complete",
            YearState::Provisional => "provisional",
        }
    }
}

impl DataYear {
    /// Its cohort covers every township of the city in force.
    pub fn is_complete(&self) -> bool {
        self.townships_in_force > 0 && self.townships_with_data >= self.townships_in_force
    }

    /// Complete or adopted: a year that may be current.
    pub fn may_be_current(&self) -> bool {
        self.is_complete() || self.adoption.is_some()
    }

    pub fn state(&self, current: Option<i32>) -> YearState {
        if current == Some(self.data_year) {
            YearState::Current
        } else if self.adoption.is_some() {
            YearState::Adopted
        } else if self.is_complete() {
            YearState::Complete
        } else {
            YearState::Provisional
        }
    }

    /// The share of the townships in force with data, 0 to 1 (0 when none is in force).
    pub fn coverage(&self) -> f64 {
        if self.townships_in_force == 0 {
            0.0
        } else {
            f64::from(self.townships_with_data) / f64::from(self.townships_in_force)
        }
    }
}

/// The city's current year: the latest year that is complete or adopted; None when there is none (the city has
/// no official classes yet). This is the one place that decides it: every rule, view and limit goes through it.
pub fn current_year(years: &[DataYear]) -> Option<i32> {
    years.iter().filter(|year| year.may_be_current()).map(|year| year.data_year).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn year(data_year: i32, with_data: u32, in_force: u32, adopted: bool) -> DataYear {
        DataYear {
            data_year,
            townships_with_data: with_data,
            townships_in_force: in_force,
            adoption: adopted.then(|| YearAdoption {
                city: CityCode::parse("4301").unwrap(),
                data_year,
                document_number: "长政发〔2025〕3号".into(),
                adopted_on: "2025-03-01".into(),
                reason: "两个乡镇数据缺失".into(),
                townships_without_data: Vec::new(),
                townships_in_force: in_force,
                adopted_by: "admin".into(),
                adopted_at: 0,
            }),
        }
    }

    #[test]
    fn a_partial_year_never_becomes_current_by_itself() {
        let years = [year(2023, 172, 172, false), year(2024, 2, 172, false)];
        assert_eq!(current_year(&years), Some(2023));
        assert_eq!(years[1].state(Some(2023)), YearState::Provisional);
        assert_eq!(years[0].state(Some(2023)), YearState::Current);
    }

    #[test]
    fn an_adopted_year_is_current_until_a_later_one_is_complete_or_adopted() {
        let years = [year(2022, 172, 172, false), year(2023, 170, 172, true), year(2024, 5, 172, false)];
        assert_eq!(current_year(&years), Some(2023));
        assert_eq!(years[0].state(Some(2023)), YearState::Complete);
        let years = [year(2023, 170, 172, true), year(2024, 172, 172, false)];
        assert_eq!(current_year(&years), Some(2024));
        assert_eq!(years[0].state(Some(2024)), YearState::Adopted);
    }

    #[test]
    fn no_complete_or_adopted_year_means_no_current_year() {
        assert_eq!(current_year(&[year(2024, 2, 172, false)]), None);
        assert_eq!(current_year(&[year(2024, 0, 0, false)]), None, "a city with no township in force");
        assert_eq!(current_year(&[]), None);
        assert!((year(2024, 43, 172, false).coverage() - 0.25).abs() < 1e-12);
    }
}
