//! One small error vocabulary for every township service, mapped to gRPC status codes in one place.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed; fix the named fields and retry.
    InvalidArgument,
    /// The named resource does not exist.
    NotFound,
    /// The resource already exists.
    AlreadyExists,
    /// The request is well-formed but breaks a rule given the current state (a quota, a limit).
    FailedPrecondition,
    /// A concurrent change won (stale etag); re-read and retry.
    Aborted,
    /// A dependency is down; retrying later may succeed.
    Unavailable,
    /// A bug or a broken invariant on our side.
    Internal,
}

impl ErrorKind {
    pub fn code(self) -> Code {
        match self {
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::AlreadyExists => Code::AlreadyExists,
            ErrorKind::FailedPrecondition => Code::FailedPrecondition,
            ErrorKind::Aborted => Code::Aborted,
            ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::Internal => Code::Internal,
        }
    }
}

/// An error a service answers with: a kind, a message for people, and per-field details for programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub message: String,
    /// `(field, description)` pairs, sent as `google.rpc.BadRequest` field violations.
    pub field_violations: Vec<(String, String)>,
}

impl ServiceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), field_violations: Vec::new() }
    }

    /// INVALID_ARGUMENT listing every violation; the message names the first ones so that a caller reading only
    /// the message still learns what to fix.
    pub fn invalid_arguments(violations: impl IntoIterator<Item = (String, String)>) -> Self {
        let field_violations: Vec<_> = violations.into_iter().collect();
        const SHOWN: usize = 3;
        let mut message = field_violations
            .iter()
            .take(SHOWN)
            .map(|(field, description)| format!("{field}: {description}"))
            .collect::<Vec<_>>()
            .join("; ");
        if field_violations.len() > SHOWN {
            message.push_str(&format!(" (and {} more in the error details)", field_violations.len() - SHOWN));
        }
        Self { kind: ErrorKind::InvalidArgument, message, field_violations }
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ServiceError {}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        if error.kind == ErrorKind::Internal {
            tracing::error!(message = %error.message, "internal error");
        }
        if error.field_violations.is_empty() {
            return Status::new(error.kind.code(), error.message);
        }
        let mut details = ErrorDetails::new();
        for (field, description) in &error.field_violations {
            details.add_bad_request_violation(field.clone(), description.clone());
        }
        Status::with_error_details(error.kind.code(), error.message, details)
    }
}
