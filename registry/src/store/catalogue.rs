//! Duty catalogues: a county's template items and a township's own items.

use async_trait::async_trait;

use super::{Page, PageRequest, StoreResult};
use crate::domain::catalogue::{CatalogueEntry, CatalogueItem, CatalogueItemType, CatalogueOwner, NewCatalogueItem};

/// Catalogue items of a county (templates) or a township, and a township's effective catalogue.
#[async_trait]
pub trait CatalogueRepo: Send + Sync {
    /// Stores a county's template item or a township's own item, in one transaction with its audit event.
    /// Refused with `AlreadyExists` when the owner has an item of that code, `NotFound` when the owner, a
    /// township item's responsible institution (of that township) or a responsibility item's linked power item
    /// (in the owner's catalogue, a township's including its county's template) does not exist, and
    /// `FailedPrecondition` when that institution is no longer in force.
    async fn create_catalogue_item(&self, item: &NewCatalogueItem, actor: &str) -> StoreResult<CatalogueItem>;
    async fn get_catalogue_item(&self, owner: &CatalogueOwner, id: i64) -> StoreResult<CatalogueItem>;
    /// A county's template items; or a township's effective catalogue: its own items and its county's template
    /// items of its duty areas whose code no own item takes (marked inherited), each with its responsible
    /// institution resolved among the township's institutions. In code order; keys are codes.
    async fn list_catalogue_items(
        &self,
        owner: &CatalogueOwner,
        item_type: Option<CatalogueItemType>,
        page: &PageRequest,
    ) -> StoreResult<Page<CatalogueEntry>>;
    /// Replaces title, duty area, responsible institution and details (of the same type) when the stored
    /// revision equals `expected_revision`, under the links rules of the create; code and type never change.
    async fn update_catalogue_item(
        &self,
        item: &CatalogueItem,
        expected_revision: i64,
        actor: &str,
    ) -> StoreResult<CatalogueItem>;
    async fn delete_catalogue_item(&self, owner: &CatalogueOwner, id: i64, actor: &str) -> StoreResult<()>;
}
