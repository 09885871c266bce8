//! Integration tests: one binary, so the shared PostgreSQL is started once per run.

mod backfill;
mod budget;
mod cli;
mod config;
mod leases;
mod ledger;
mod members_rollup;
mod people_api;
mod people_report;
mod people_sync;
mod pgserver;
mod plan;
mod priority;
mod reliability;
mod report;
mod service;
mod simulator;
mod status_page;
mod summaries;
mod support;
mod sync;
mod tls;
mod washes;
