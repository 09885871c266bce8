//! sonnys-etl: exports Sonny's Carwash Controls transactions into PostgreSQL.
//!
//! The data path, in the order a request travels:
//! - [`configuration`]: typed settings, checked at start-up.
//! - [`domain`]: accounts, sites, business days and the export windows of a day;
//!   `domain::days` holds every "which days" rule, `domain::states` the typed
//!   states the database records.
//! - [`budget`]: one request budget per API id, shared by all its workers.
//! - [`api`]: the vendor API client and its typed records and errors;
//!   `api::policy` is the retry policy every call goes through.
//! - `export`: the pipelined export of one site-day.
//! - [`people`]: the nightly export of labour and memberships, at the lowest priority.
//! - [`database`]: connecting to PostgreSQL, with TLS and errors that name their cause.
//! - [`store`]: all SQL, by concern: sites, claims, transactions, people,
//!   lookback checks, runs, and what `status` and `plan` read.
//! - [`sync`]: a run over accounts, sites and days; [`progress`] reports it.
//! - [`report`]: consolidated KPIs from the `reporting` views.
//!
//! Running it:
//! - [`schedule`]: when the service runs, a cron expression in a time zone.
//! - `service`: `sonnys-etl run`, the nightly export as a long-running service.
//! - [`status`]: what is exported, failed or missing, for the status page and command.
//! - [`plan`]: the request-budget forecast of a night or a date range.
//! - `metrics`: the service's Prometheus metrics, one place per event.
//! - [`telemetry`]: logging, as text or JSON.
//! - `shutdown`: one shutdown signal for every command.
//! - [`cli`]: the commands, one per job.
//!
//! Beside the data path, with the cargo feature `rehearsal` (on by default):
//! - [`rehearsal`]: the simulator of the vendor API, a private PostgreSQL
//!   and the demo, for trying and rehearsing without credentials.
//!
//! docs/architecture.md draws the data path and names the home of each rule.

pub mod api;
pub mod budget;
pub mod cli;
pub mod configuration;
pub mod database;
pub mod domain;
pub(crate) mod export;
pub(crate) mod metrics;
pub mod people;
pub mod plan;
pub mod progress;
#[cfg(feature = "rehearsal")]
pub mod rehearsal;
pub mod report;
pub mod schedule;
pub(crate) mod service;
pub(crate) mod shutdown;
pub mod status;
pub mod store;
pub mod sync;
pub mod telemetry;
