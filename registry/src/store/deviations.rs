//! Approved deviations of counties and townships (issue 11 §2).

use async_trait::async_trait;

use super::{Page, PageRequest, StoreResult};
use crate::domain::deviations::{ApprovedDeviation, DeviationRevocation, DeviationScope, NewApprovedDeviation};
use crate::domain::names::TownshipCode;

/// A county's approved deviations: created, read, revoked, never deleted.
#[async_trait]
pub trait DeviationRepo: Send + Sync {
    /// NotFound for an unknown county or township; AlreadyExists while a deviation of the same rule and parent is
    /// unrevoked (revoke it first: one figure or waiver per parent and rule).
    async fn create_deviation(&self, deviation: &NewApprovedDeviation, actor: &str) -> StoreResult<ApprovedDeviation>;
    /// NotFound unless the deviation exists under exactly this parent.
    async fn get_deviation(&self, scope: &DeviationScope, id: i64) -> StoreResult<ApprovedDeviation>;
    /// The parent's own deviations (a county's: those recorded on the county itself, not its townships'), revoked
    /// ones included, in id order. NotFound for an unknown county or township.
    async fn list_deviations(&self, scope: &DeviationScope, page: &PageRequest)
    -> StoreResult<Page<ApprovedDeviation>>;
    /// Keeps the deviation with the revocation's 文号; FailedPrecondition when it was revoked before.
    async fn revoke_deviation(
        &self,
        scope: &DeviationScope,
        id: i64,
        revocation: &DeviationRevocation,
        actor: &str,
    ) -> StoreResult<ApprovedDeviation>;
    /// The deviations in force today that apply to the township (its county's and its own), in one query.
    async fn deviations_in_force(&self, township: &TownshipCode) -> StoreResult<Vec<ApprovedDeviation>>;
}
