//! The registry's model and the policy's rules: plain types and pure functions, no I/O, no gRPC.

pub mod access;
pub mod audit_chain;
pub mod catalogue;
pub mod deviations;
pub mod model;
pub mod names;
pub mod rules;
pub mod years;

/// A count as the `u32` the contract carries; a count beyond `u32::MAX` (never met: a city has a few hundred
/// townships) saturates rather than wrapping.
pub fn count_u32(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}
