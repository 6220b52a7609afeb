//! Townships' classes, their overrides and history, and the classification runs that computed them.

use crate::domain::access::Visible;
use async_trait::async_trait;

use super::{Page, PageRequest, StoreResult};
use crate::domain::model::{ClassChange, ClassOverride, ClassRecord, ClassificationRun};
use crate::domain::names::{CityCode, Scope, TownshipCode};

/// Classes per township and data year, the overrides set over them, the history of every move, and the
/// runs.
#[async_trait]
pub trait ClassRepo: Send + Sync {
    async fn get_class(&self, township: &TownshipCode, data_year: i32) -> StoreResult<Option<ClassRecord>>;
    /// Classes of the townships in scope for the year, in code order; keys are township codes.
    async fn list_classes(&self, scope: &Scope, data_year: i32, page: &PageRequest) -> StoreResult<Page<ClassRecord>> {
        self.list_visible_classes(scope, data_year, page, &Visible::All).await
    }
    /// The same, of the townships `visible` shows.
    async fn list_visible_classes(
        &self,
        scope: &Scope,
        data_year: i32,
        page: &PageRequest,
        visible: &Visible,
    ) -> StoreResult<Page<ClassRecord>>;
    /// Newest first; keys are opaque.
    async fn class_history(&self, township: &TownshipCode, page: &PageRequest) -> StoreResult<Page<ClassChange>>;
    /// Sets the override and records the change in the history when the effective class moves.
    async fn set_override(
        &self,
        township: &TownshipCode,
        data_year: i32,
        class_override: &ClassOverride,
        actor: &str,
    ) -> StoreResult<(ClassRecord, Option<ClassChange>)>;
    async fn clear_override(
        &self,
        township: &TownshipCode,
        data_year: i32,
        actor: &str,
    ) -> StoreResult<(ClassRecord, Option<ClassChange>)>;
    async fn get_run(&self, city: &CityCode, run_id: i64) -> StoreResult<ClassificationRun>;
    /// Newest first, without lines or response; keys are run ids.
    async fn list_runs(&self, city: &CityCode, page: &PageRequest) -> StoreResult<Page<ClassificationRun>>;
}
