//! The administrative hierarchy: cities, counties and their townships, as division files import them.

use async_trait::async_trait;

use super::{Page, PageRequest, StoreResult};
use crate::domain::access::Visible;
use crate::domain::model::{City, County, Township, TownshipKind};
use crate::domain::names::{CityCode, CountyCode, Scope, TownshipCode};

/// What an import upserted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub cities: u32,
    pub counties: u32,
    pub townships: u32,
}

/// A township of an imported division file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DivisionTownship {
    pub code: TownshipCode,
    pub name: String,
    pub kind: TownshipKind,
}

/// Cities, counties and townships: the division import, lookups and listings, and the township edits.
#[async_trait]
pub trait HierarchyRepo: Send + Sync {
    /// Upserts by code in one transaction: all rows or none. Counties' cities and townships' counties must be
    /// among the rows or already stored.
    async fn import_divisions(
        &self,
        cities: &[City],
        counties: &[County],
        townships: &[DivisionTownship],
        actor: &str,
    ) -> StoreResult<ImportCounts>;
    async fn get_city(&self, city: &CityCode) -> StoreResult<City>;
    async fn list_cities(&self, page: &PageRequest) -> StoreResult<Page<City>> {
        self.list_visible_cities(page, &Visible::All).await
    }
    /// The cities `visible` shows (those within or containing its codes).
    async fn list_visible_cities(&self, page: &PageRequest, visible: &Visible) -> StoreResult<Page<City>>;
    async fn get_county(&self, county: &CountyCode) -> StoreResult<County>;
    async fn list_counties(&self, city: &CityCode, page: &PageRequest) -> StoreResult<Page<County>> {
        self.list_visible_counties(city, page, &Visible::All).await
    }
    async fn list_visible_counties(
        &self,
        city: &CityCode,
        page: &PageRequest,
        visible: &Visible,
    ) -> StoreResult<Page<County>>;
    async fn get_township(&self, township: &TownshipCode) -> StoreResult<Township>;
    /// Townships in a city or county scope, in code order.
    async fn list_townships(&self, scope: &Scope, page: &PageRequest) -> StoreResult<Page<Township>> {
        self.list_visible_townships(scope, page, &Visible::All).await
    }
    async fn list_visible_townships(
        &self,
        scope: &Scope,
        page: &PageRequest,
        visible: &Visible,
    ) -> StoreResult<Page<Township>>;
    /// The county must exist. Revision starts at 1.
    async fn create_township(&self, township: &Township, actor: &str) -> StoreResult<Township>;
    /// Replaces the stored fields when the stored revision equals `expected_revision`; bumps the revision.
    async fn update_township(&self, township: &Township, expected_revision: i64, actor: &str) -> StoreResult<Township>;
}
