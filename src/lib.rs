//! sonnys-etl: exports Sonny's Carwash Controls transactions into PostgreSQL.
//!
//! The data path, in the order a request travels:
//! - [`configuration`]: typed settings, checked at start-up.
//! - [`domain`]: accounts, sites, business days and the export windows of a day.
//! - [`budget`]: one request budget per API id, shared by all its workers.
//! - [`api`]: the vendor API client and its typed records and errors.
//! - [`export`]: the pipelined export of one site-day.
//! - [`people`]: the nightly export of labour and memberships, at the lowest priority.
//! - [`database`]: connecting to PostgreSQL, with TLS and errors that name their cause.
//! - [`store`]: idempotent, set-based upserts into PostgreSQL.
//! - [`sync`]: a run over accounts, sites and days; [`progress`] reports it.
//! - [`report`]: consolidated KPIs from the `reporting` views.
//! - [`cli`]: the commands.
//!
//! Beside the data path, with the cargo feature `rehearsal` (on by default):
//! - [`rehearsal`]: the simulator of the vendor API, a private PostgreSQL
//!   and the demo, for trying and rehearsing without credentials.

pub mod api;
pub mod budget;
pub mod cli;
pub mod configuration;
pub mod database;
pub mod domain;
pub mod export;
pub mod metrics;
pub mod people;
pub mod plan;
pub mod progress;
#[cfg(feature = "rehearsal")]
pub mod rehearsal;
pub mod report;
pub mod schedule;
pub mod service;
pub mod shutdown;
pub mod status;
pub mod store;
pub mod sync;
pub mod telemetry;
