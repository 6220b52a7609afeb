//! Institutions of the townships and the plaques they carry.

use async_trait::async_trait;

use super::{Page, PageRequest, StoreResult};
use crate::domain::model::{Institution, NewInstitution, NewPlaque, Plaque};
use crate::domain::names::TownshipCode;

/// A township's institutions and their plaques, each create checked against its limit.
#[async_trait]
pub trait InstitutionRepo: Send + Sync {
    /// Refused with `LimitExceeded` when the township already has `max_of_kind` active institutions of this
    /// kind (checked in the same transaction as the insert).
    async fn create_institution(
        &self,
        institution: &NewInstitution,
        max_of_kind: u32,
        actor: &str,
    ) -> StoreResult<Institution>;
    async fn get_institution(&self, township: &TownshipCode, id: i64) -> StoreResult<Institution>;
    async fn list_institutions(&self, township: &TownshipCode, page: &PageRequest) -> StoreResult<Page<Institution>>;
    /// A `staffing_quota` above 0 is recorded as the ledger's first approval ([`crate::store::StaffingRepo`]).
    /// Replaces name, approving document and validity (the staffing quota is the ledger's sum: it stays) when the stored revision equals
    /// `expected_revision`; bumps the revision. Refused with `FailedPrecondition` when it sets a new `valid_to`
    /// while catalogue items of the township name the institution as responsible (they would be orphaned), and
    /// with `LimitExceeded` when it brings an ended institution back into force beyond `max_of_kind`.
    async fn update_institution(
        &self,
        institution: &Institution,
        expected_revision: i64,
        max_of_kind: u32,
        max_plaques: u32,
        actor: &str,
    ) -> StoreResult<Institution>;
    /// Deletes the institution and its plaques.
    async fn delete_institution(&self, township: &TownshipCode, id: i64, actor: &str) -> StoreResult<()>;
    /// Refused with `LimitExceeded` when the institution's township already has `max_per_township` plaques on
    /// institutions in force (an ended institution's plaques are history and do not count), and with
    /// `FailedPrecondition` when the institution is not a party/government office or public institution (党政机构和
    /// 事业单位可加挂牌子) or is no longer in force.
    async fn create_plaque(
        &self,
        township: &TownshipCode,
        plaque: &NewPlaque,
        max_per_township: u32,
        actor: &str,
    ) -> StoreResult<Plaque>;
    /// Plaques of one institution, or of every institution of the township when `institution_id` is None.
    async fn list_plaques(
        &self,
        township: &TownshipCode,
        institution_id: Option<i64>,
        page: &PageRequest,
    ) -> StoreResult<Page<Plaque>>;
    async fn get_plaque(&self, township: &TownshipCode, institution_id: i64, id: i64) -> StoreResult<Plaque>;
    /// Replaces name and approving document when the stored revision equals `expected_revision`.
    async fn update_plaque(&self, plaque: &Plaque, expected_revision: i64, actor: &str) -> StoreResult<Plaque>;
    async fn delete_plaque(
        &self,
        township: &TownshipCode,
        institution_id: i64,
        id: i64,
        actor: &str,
    ) -> StoreResult<()>;
}
