//! Integration tests: one binary, so the shared PostgreSQL is started once per run.

mod pgserver;
mod support;
mod budget;
mod config;
