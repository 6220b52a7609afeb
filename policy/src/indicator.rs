use serde::{Deserialize, Serialize};

/// The three indicators the policy weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Indicator {
    /// 人口, in 万人.
    Population,
    /// 财政收入, in 万元.
    FiscalRevenue,
    /// 土地面积, in km².
    LandArea,
}

impl Indicator {
    /// In the order of the policy's weights: 5 : 3 : 2.
    pub const ALL: [Indicator; 3] = [Indicator::Population, Indicator::FiscalRevenue, Indicator::LandArea];

    /// The field name used in requests and error paths.
    pub fn field_name(self) -> &'static str {
        match self {
            Indicator::Population => "population",
            Indicator::FiscalRevenue => "fiscal_revenue",
            Indicator::LandArea => "land_area",
        }
    }

    /// The Chinese name used in explanations.
    pub fn label_zh(self) -> &'static str {
        match self {
            Indicator::Population => "人口",
            Indicator::FiscalRevenue => "财政收入",
            Indicator::LandArea => "土地面积",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Indicator::Population => "万人",
            Indicator::FiscalRevenue => "万元",
            Indicator::LandArea => "km²",
        }
    }
}

/// Largest raw indicator accepted: far above any real township (10¹² 万元 is a hundred times China's GDP), and low
/// enough that sums over the largest cohort stay finite. The registry refuses at write what the classifier would
/// refuse at classification, so one bad write can never stall a whole cohort.
pub const MAX_INDICATOR_VALUE: f64 = 1e12;

impl Indicator {
    /// Why `value` is not an acceptable raw value of this indicator, or None when it is: finite, from 0 to
    /// [`MAX_INDICATOR_VALUE`].
    pub fn value_problem(self, value: f64) -> Option<String> {
        if value.is_finite() && (0.0..=MAX_INDICATOR_VALUE).contains(&value) {
            None
        } else {
            Some(format!(
                "{} is {value}; it must be a number from 0 to {MAX_INDICATOR_VALUE:e} ({})",
                self.field_name(),
                self.unit()
            ))
        }
    }
}

/// One value per indicator.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerIndicator<T> {
    pub population: T,
    pub fiscal_revenue: T,
    pub land_area: T,
}

impl<T> PerIndicator<T> {
    pub fn get_ref(&self, indicator: Indicator) -> &T {
        match indicator {
            Indicator::Population => &self.population,
            Indicator::FiscalRevenue => &self.fiscal_revenue,
            Indicator::LandArea => &self.land_area,
        }
    }

    pub fn from_fn(mut value: impl FnMut(Indicator) -> T) -> Self {
        Self {
            population: value(Indicator::Population),
            fiscal_revenue: value(Indicator::FiscalRevenue),
            land_area: value(Indicator::LandArea),
        }
    }

    pub fn map<U>(&self, mut f: impl FnMut(Indicator, &T) -> U) -> PerIndicator<U> {
        PerIndicator::from_fn(|indicator| f(indicator, self.get_ref(indicator)))
    }
}

impl<T: Copy> PerIndicator<T> {
    pub fn get(&self, indicator: Indicator) -> T {
        *self.get_ref(indicator)
    }
}
