//! The facts the compliance checks read.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::access::Visible;
use crate::domain::model::TownshipFacts;
use crate::domain::names::Scope;

/// What the compliance rules judge: each township of a scope with its class, institutions, plaques, posts
/// and effective catalogue.
#[async_trait]
pub trait FactsRepo: Send + Sync {
    /// Facts of every township in scope (city, county or one township), in code order, with its class in
    /// the city's current year (none when the city has no current year: see [`crate::store::YearRepo`]) and the institutions still in force (no `valid_to`, or
    /// `valid_to` today or later), and its effective catalogue with each item's responsible institution resolved.
    async fn township_facts(&self, scope: &Scope) -> StoreResult<Vec<TownshipFacts>> {
        self.visible_township_facts(scope, &Visible::All).await
    }
    /// The same, of the townships `visible` shows.
    async fn visible_township_facts(&self, scope: &Scope, visible: &Visible) -> StoreResult<Vec<TownshipFacts>>;
}
