//! The township classifier: a stateless gRPC service that applies a classification policy to a cohort.
//!
//! [`domain`] holds the method (pure functions); [`service`] adapts it to `township.classifier.v1`, after `access`
//! has checked the caller's role.

mod access;
pub mod cli;
pub mod domain;
pub mod service;

pub use service::{ClassifierApi, SERVICE_NAME};
