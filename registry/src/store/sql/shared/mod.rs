//! The store's methods, written once for both backends: one module per entity, each holding its `impl …Repo for
//! ThisStore` and its own helpers; `rows` holds the column lists and the row decoding, `support` the statements
//! and resource names several entities use.
//!
//! This folder is compiled twice, as `sqlite::shared` and `postgres::shared` (see `sql.rs`): `super::Db` is the
//! sqlx database, `super::ThisStore` the store type, `FOR_UPDATE` / `SKIP_LOCKED` the row-locking clauses
//! (empty on SQLite, whose single writer connection serialises writes), and `begin_write` / `begin_snapshot`
//! start transactions the backend's way. Every `$N` placeholder first appears in increasing order.

mod audit;
mod catalogue;
mod classes;
mod creates;
mod deviations;
mod facts;
mod gauges;
mod hierarchy;
mod indicators;
mod institutions;
mod outbox;
mod policies;
mod posts;
mod rows;
mod staffing;
mod support;
mod years;

use super::{Db, FOR_UPDATE, SKIP_LOCKED, ThisStore};

type Conn = <Db as sqlx::Database>::Connection;
type DbRow = <Db as sqlx::Database>::Row;
