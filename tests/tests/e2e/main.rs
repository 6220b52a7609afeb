//! The end-to-end tests, one binary (one link, one `TestApp` harness), one module per theme: both services on
//! loopback sockets with real gRPC between them and a fresh database per test, and the service binaries run as
//! operators run them.

mod authentication;
mod authorization;
mod batches;
mod binaries;
mod catalogues;
mod data_years;
mod deviations;
mod metrics;
mod policies_and_overrides;
mod python_interop;
mod scenarios;
mod staffing;
mod tls;
mod updates_and_retries;
