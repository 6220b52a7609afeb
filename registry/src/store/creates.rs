//! Creates across entities: several records in one transaction, and any create at most once per request id.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use township_policy::Policy;

use super::StoreResult;
use super::indicators::RecordedObservation;
use crate::domain::catalogue::{CatalogueItem, NewCatalogueItem};
use crate::domain::deviations::{ApprovedDeviation, NewApprovedDeviation};
use crate::domain::model::{
    CityPolicy, Institution, LeadershipPost, NewInstitution, NewObservation, NewPlaque, NewPost, NewStaffingApproval,
    NewStaffingHeadcount, Plaque, StaffingApproval, StaffingHeadcount, Township,
};
use crate::domain::names::{CityCode, TownshipCode};
use crate::domain::years::{NewYearAdoption, YearAdoption};

/// One record of a batch create, with the limit the service computed for its township.
#[derive(Debug, Clone)]
pub enum NewRecord {
    Institution {
        institution: NewInstitution,
        max_of_kind: u32,
    },
    Post {
        post: NewPost,
        quota: u32,
    },
    CatalogueItem(NewCatalogueItem),
    StaffingApproval(NewStaffingApproval),
    /// Set, not created: the stored figure again changes nothing.
    StaffingHeadcount(NewStaffingHeadcount),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CreatedRecord {
    Institution(Institution),
    Post(LeadershipPost),
    CatalogueItem(CatalogueItem),
    StaffingApproval(StaffingApproval),
    StaffingHeadcount(StaffingHeadcount),
}

/// A create's `request_id` (AIP-155) with what identifies the request it first came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub request_id: String,
    /// The RPC, e.g. `CreateInstitution`: one id names one request of one method.
    pub method: String,
    /// SHA-256 of the encoded request (its id included: it is the same on both sides of a comparison).
    pub fingerprint: String,
}

/// A create that [`CreateRepo::create_once`] makes at most once per request id.
#[derive(Debug, Clone)]
pub enum Create {
    Township(Township),
    Observations(Vec<NewObservation>),
    /// `document_number`: the 文号 of a policy departing from the document, or empty.
    Policy {
        city: CityCode,
        policy: Policy,
        document_number: String,
    },
    Institution {
        institution: NewInstitution,
        max_of_kind: u32,
    },
    Plaque {
        township: TownshipCode,
        plaque: NewPlaque,
        max_per_township: u32,
    },
    Post {
        post: NewPost,
        quota: u32,
    },
    CatalogueItem(NewCatalogueItem),
    StaffingApproval(NewStaffingApproval),
    YearAdoption(NewYearAdoption),
    ApprovedDeviation(NewApprovedDeviation),
    Batch(Vec<NewRecord>),
}

/// What a [`Create`] made, as it is remembered for a retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Created {
    Township(Township),
    Observations(Vec<RecordedObservation>),
    Policy(CityPolicy),
    Institution(Institution),
    Plaque(Plaque),
    Post(LeadershipPost),
    CatalogueItem(CatalogueItem),
    StaffingApproval(StaffingApproval),
    YearAdoption(YearAdoption),
    ApprovedDeviation(ApprovedDeviation),
    Batch(Vec<CreatedRecord>),
}

/// The creates that are not one entity's: a batch of institutions, posts and catalogue items in one
/// transaction, and the retry-safe create of any record (AIP-155).
#[async_trait]
pub trait CreateRepo: Send + Sync {
    /// Makes `create` under the same rules as its own method. With a key, in one transaction with a row that
    /// remembers the result under `key.request_id`: a retry with the same key returns the first result and
    /// changes nothing (`true`: replayed); the same id with another method or request is refused with
    /// `AlreadyExists`.
    async fn create_once(&self, key: Option<&RequestKey>, create: &Create, actor: &str)
    -> StoreResult<(Created, bool)>;
    /// Creates every record in one transaction, in order, under the same rules as the single creates: all or
    /// nothing; an error names the failing record (`requests[i]`). With `validate_only` nothing is kept.
    async fn batch_create(
        &self,
        records: &[NewRecord],
        actor: &str,
        validate_only: bool,
    ) -> StoreResult<Vec<CreatedRecord>>;
}
