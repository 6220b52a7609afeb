//! The registry's model and the policy's rules: plain types and pure functions, no I/O, no gRPC.

pub mod catalogue;
pub mod model;
pub mod names;
pub mod rules;
