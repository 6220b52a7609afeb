//! The township registry: the system of record of the reform, keeping every township's class current by
//! calling the classifier over gRPC.
//!
//! [`domain`] (pure) ← [`store`] (SQLite / PostgreSQL) ← [`service`] (tonic) and [`worker`] (the outbox) ←
//! `main.rs`.

pub mod app;
pub mod classification;
pub mod cli;
pub mod divisions;
pub mod domain;
pub mod service;
pub mod store;
pub mod worker;
