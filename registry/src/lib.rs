//! The township registry: the system of record of the reform, keeping every township's class current by
//! calling the classifier over gRPC.
//!
//! [`domain`] (pure) ← [`store`] (SQLite / PostgreSQL) ← [`limits`] and [`preview`] (the rules that read the
//! store) ← [`service`] (tonic handlers) and [`outbox`] (the reclassification worker) ← [`app`] / [`cli`].

pub mod app;
pub mod audit;
pub mod classification;
pub mod cli;
pub mod divisions;
pub mod domain;
pub mod limits;
pub mod metrics;
pub mod outbox;
pub mod preview;
pub mod sample;
pub mod service;
pub mod store;
