//! Errors become statuses here and nowhere else: store errors by kind (so handlers use `?`), request problems
//! as `INVALID_ARGUMENT` with `google.rpc.BadRequest` field violations.

use tonic::Status;
use township_policy::FieldViolation;
use township_runtime::{ErrorKind, ServiceError};

use crate::domain::names::NameError;
use crate::store::StoreError;

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        let kind = match &error {
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            StoreError::LimitExceeded(_) | StoreError::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            StoreError::Conflict(_) => ErrorKind::Aborted,
            // Only an unreachable database is worth retrying; a broken one needs an operator.
            StoreError::Unavailable(_) => ErrorKind::Unavailable,
            StoreError::Internal(_) => ErrorKind::Internal,
        };
        let index = error.request_index();
        let service_error = ServiceError::new(kind, error.to_string());
        match index {
            Some(index) => service_error.with_metadata(REQUEST_INDEX, index.to_string()),
            None => service_error,
        }
    }
}

/// The `google.rpc.ErrorInfo.metadata` key naming the refused request of a batch (decimal), so that a client finds
/// it without reading the message.
pub(super) const REQUEST_INDEX: &str = "request_index";

/// The gRPC code's kind, for statuses rebuilt with more details.
pub(super) fn kind_of(code: tonic::Code) -> ErrorKind {
    match code {
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange => ErrorKind::InvalidArgument,
        tonic::Code::NotFound => ErrorKind::NotFound,
        tonic::Code::AlreadyExists => ErrorKind::AlreadyExists,
        tonic::Code::FailedPrecondition => ErrorKind::FailedPrecondition,
        tonic::Code::Aborted => ErrorKind::Aborted,
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Self {
        ServiceError::from(error).into()
    }
}

/// INVALID_ARGUMENT for one field.
pub(super) fn invalid(field: &str, description: impl Into<String>) -> Status {
    ServiceError::invalid_arguments([(field.to_owned(), description.into())]).into()
}

/// INVALID_ARGUMENT listing every violation found.
pub(super) fn invalid_all(violations: Vec<FieldViolation>) -> Status {
    ServiceError::invalid_arguments(violations.into_iter().map(|v| (v.field, v.description))).into()
}

/// A resource name that does not parse, as a violation of `field`.
pub(super) fn name_error(field: &str) -> impl Fn(NameError) -> Status + '_ {
    move |error| invalid(field, error.0)
}

/// A request that is well-formed but meets a state that refuses it.
pub(super) fn failed_precondition(message: impl Into<String>) -> Status {
    ServiceError::new(ErrorKind::FailedPrecondition, message).into()
}
