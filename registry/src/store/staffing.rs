//! The staffing ledger (编制) of the institutions and their actual headcounts (实有人数).

use async_trait::async_trait;

use super::{Page, PageRequest, StoreResult};
use crate::domain::model::{NewStaffingApproval, StaffingApproval, StaffingHeadcount, StaffingType};
use crate::domain::names::TownshipCode;

/// Approvals are only ever added: the approved figure of a type is the sum of its approvals.
#[async_trait]
pub trait StaffingRepo: Send + Sync {
    /// Adds one approval and keeps the institution's `staffing_quota` equal to the ledger's sum. Refused with
    /// `NotFound` when the township has no such institution, and with `FailedPrecondition` when a reduction would
    /// take the institution's approved figure of its type below 0.
    async fn create_staffing_approval(
        &self,
        approval: &NewStaffingApproval,
        actor: &str,
    ) -> StoreResult<StaffingApproval>;
    /// The approvals of one institution, or of every institution of the township when `institution_id` is None,
    /// in the order they were recorded.
    async fn list_staffing_approvals(
        &self,
        township: &TownshipCode,
        institution_id: Option<i64>,
        page: &PageRequest,
    ) -> StoreResult<Page<StaffingApproval>>;
    /// Sets the institution's actual headcount of `staffing_type`; audited unless it is the stored figure.
    async fn set_staffing_headcount(
        &self,
        township: &TownshipCode,
        institution_id: i64,
        staffing_type: StaffingType,
        actual: u32,
        actor: &str,
    ) -> StoreResult<StaffingHeadcount>;
    /// The headcounts of one institution, or of every institution of the township, in the order first set.
    async fn list_staffing_headcounts(
        &self,
        township: &TownshipCode,
        institution_id: Option<i64>,
        page: &PageRequest,
    ) -> StoreResult<Page<StaffingHeadcount>>;
}
