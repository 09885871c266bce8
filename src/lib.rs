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
//! - [`simulator`]: a faithful stand-in for the vendor API.
//! - [`pgserver`]: a private PostgreSQL for the demo and the tests.
//! - [`cli`]: the commands; [`demo`] runs the whole product on one machine.

pub mod api;
pub mod budget;
pub mod cli;
pub mod configuration;
pub mod database;
pub mod demo;
pub mod domain;
pub mod export;
pub mod metrics;
pub mod people;
pub mod pgserver;
pub mod plan;
pub mod progress;
pub mod report;
pub mod schedule;
pub mod service;
pub mod shutdown;
pub mod simulator;
pub mod status;
pub mod store;
pub mod sync;
pub mod telemetry;
