//! Retry-safe creates (AIP-155): a create that carries a `request_id` is made at most once, and its retry gets
//! the first answer back. The store keeps the key and the answer in the create's own transaction.

use prost::Message;
use sha2::{Digest, Sha256};
use tonic::Status;

use super::RegistryApi;
use super::error::invalid;
use crate::store::{Create, Created, CreatedRecord, NewRecord, RequestKey, StoreError};

/// Longest request id: a UUID is 36 characters.
const MAX_REQUEST_ID_CHARS: usize = 64;

/// The key `request` is remembered under, or `None` when it carries no `request_id`. The fingerprint is over the
/// request as decoded and re-encoded, so a retry that repeats the same fields matches however its client
/// ordered them on the wire.
pub(super) fn request_key(
    method: &str,
    request_id: &str,
    request: &impl Message,
) -> Result<Option<RequestKey>, Status> {
    if request_id.is_empty() {
        return Ok(None);
    }
    check_request_id("request_id", request_id)?;
    Ok(Some(RequestKey {
        request_id: request_id.to_owned(),
        method: method.to_owned(),
        fingerprint: hex::encode(Sha256::digest(request.encode_to_vec())),
    }))
}

/// A request inside a batch is covered by the batch's `request_id` and carries none of its own.
pub(super) fn check_no_nested_request_id(index: usize, request_id: &str) -> Result<(), Status> {
    if request_id.is_empty() {
        Ok(())
    } else {
        Err(invalid(
            &format!("requests[{index}].request_id"),
            "a request inside a batch has no request_id of its own; set request_id on the batch",
        ))
    }
}

fn check_request_id(field: &str, request_id: &str) -> Result<(), Status> {
    let well_formed = request_id.len() <= MAX_REQUEST_ID_CHARS
        && request_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!(
                "{} is not a request id: 1–{MAX_REQUEST_ID_CHARS} letters, digits, '-' or '_' (a UUID is best)",
                township_policy::quoted(request_id)
            ),
        ))
    }
}

/// Takes what [`RegistryApi::create_once`] made as the variant its create asked for.
macro_rules! made {
    ($created:expr, $variant:path) => {
        match $created {
            $variant(made) => made,
            _ => return Err(tonic::Status::internal("the store answered a create with another kind of record")),
        }
    };
}
pub(super) use made;

impl RegistryApi {
    /// Makes `create`, once per key when there is one; a new observation or policy wakes the outbox worker.
    pub(super) async fn create_once(
        &self,
        key: Option<RequestKey>,
        create: Create,
        actor: &str,
    ) -> Result<Created, Status> {
        self.create_once_noting(key, create, actor, &[]).await
    }

    /// [`RegistryApi::create_once`] of a create whose limit may be an approved deviation's: `notes[0]` (or the
    /// batch record's `notes[i]`) says so in a refusal over it.
    pub(super) async fn create_once_noting(
        &self,
        key: Option<RequestKey>,
        create: Create,
        actor: &str,
        notes: &[Option<String>],
    ) -> Result<Created, Status> {
        let (created, replayed) =
            self.store().create_once(key.as_ref(), &create, actor).await.map_err(noting_limits(notes))?;
        if !replayed && matches!(create, Create::Observations(_) | Create::Policy { .. }) {
            self.outbox.wake_worker();
        }
        Ok(created)
    }

    /// A batch create: checked and forgotten with `validate_only`, else made once per key.
    pub(super) async fn batch_create(
        &self,
        key: Option<RequestKey>,
        records: Vec<NewRecord>,
        actor: &str,
        validate_only: bool,
        notes: &[Option<String>],
    ) -> Result<Vec<CreatedRecord>, Status> {
        if validate_only {
            return Ok(self.store().batch_create(&records, actor, true).await.map_err(noting_limits(notes))?);
        }
        Ok(made!(self.create_once_noting(key, Create::Batch(records), actor, notes).await?, Created::Batch))
    }
}

/// Adds to a refusal over a limit where its figure comes from: the note of the refused record (a batch's
/// `requests[i]`, else the single create's).
pub(super) fn noting_limits(notes: &[Option<String>]) -> impl Fn(StoreError) -> StoreError + '_ {
    move |error| match error {
        StoreError::LimitExceeded(message) => {
            let index = StoreError::LimitExceeded(message.clone()).request_index().unwrap_or(0);
            match notes.get(index).and_then(Option::as_deref) {
                Some(note) => StoreError::LimitExceeded(format!("{message}{note}")),
                None => StoreError::LimitExceeded(message),
            }
        }
        other => other,
    }
}
